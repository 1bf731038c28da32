/* The CRM's owners and pipeline stages per connection, as last read. */
#include "store/store.h"

#include "base/alloc.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

void store_owners_free(struct store_owner *owners, size_t n)
{
    for (size_t i = 0; i < n && owners; i++) {
        free(owners[i].id);
        free(owners[i].email);
        free(owners[i].name);
    }
    free(owners);
}

void store_stages_free(struct store_stage *stages, size_t n)
{
    for (size_t i = 0; i < n && stages; i++) {
        free(stages[i].pipeline_id);
        free(stages[i].id);
        free(stages[i].label);
    }
    free(stages);
}

static fs_result delete_for(struct store *s, const char *sql, int64_t conn)
{
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, conn);
    return store_step_done(st);
}

fs_result store_crm_owners_replace(struct store *s, int64_t connection_id,
                                   const struct store_owner *owners, size_t n)
{
    static const char del[] = "DELETE FROM crm_owners WHERE connection_id = ?1";
    static const char ins[] =
        "INSERT OR REPLACE INTO crm_owners (connection_id, id, email, name) "
        "VALUES (?1, ?2, ?3, ?4)";
    sqlite3_stmt *st = NULL;
    bool own = false;

    for (size_t i = 0; i < n; i++) {
        if (!owners[i].id)
            return FS_ERR_INVALID;
    }
    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;
    r = delete_for(s, del, connection_id);
    if (r == FS_OK)
        r = store_prepare(s, ins, &st);
    for (size_t i = 0; i < n && r == FS_OK; i++) {
        sqlite3_bind_int64(st, 1, connection_id);
        store_bind_text(st, 2, owners[i].id);
        store_bind_text(st, 3, owners[i].email);
        store_bind_text(st, 4, owners[i].name);
        r = store_step_done(st);
    }
    return store_txn_leave(s, own, r);
}

fs_result store_crm_owners_list(struct store *s, int64_t connection_id,
                                struct store_owner **out, size_t *n_out)
{
    static const char sql[] = "SELECT id, email, name FROM crm_owners "
                              "WHERE connection_id = ?1 ORDER BY id";
    sqlite3_stmt *st = NULL;
    struct store_owner *list = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof(*list));
        list[n].id = store_column_text(st, 0);
        list[n].email = store_column_text(st, 1);
        list[n].name = store_column_text(st, 2);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_owners_free(list, n);
        return store_map_rc(rc);
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

fs_result store_crm_owner_by_email(struct store *s, int64_t connection_id,
                                   const char *email, char **id_out)
{
    static const char sql[] =
        "SELECT id FROM crm_owners WHERE connection_id = ?1 AND "
        "email = ?2 COLLATE NOCASE ORDER BY id LIMIT 1";
    sqlite3_stmt *st = NULL;

    *id_out = NULL;
    if (!email)
        return FS_ERR_NOT_FOUND;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    store_bind_text(st, 2, email);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id_out = store_column_text(st, 0);
    else
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_crm_stages_replace(struct store *s, int64_t connection_id,
                                   const struct store_stage *stages, size_t n)
{
    static const char del[] = "DELETE FROM crm_stages WHERE connection_id = ?1";
    static const char ins[] =
        "INSERT OR REPLACE INTO crm_stages (connection_id, pipeline_id, id, "
        "label, position) VALUES (?1, ?2, ?3, ?4, ?5)";
    sqlite3_stmt *st = NULL;
    bool own = false;

    for (size_t i = 0; i < n; i++) {
        if (!stages[i].id)
            return FS_ERR_INVALID;
    }
    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;
    r = delete_for(s, del, connection_id);
    if (r == FS_OK)
        r = store_prepare(s, ins, &st);
    for (size_t i = 0; i < n && r == FS_OK; i++) {
        sqlite3_bind_int64(st, 1, connection_id);
        store_bind_text(
            st, 2, stages[i].pipeline_id ? stages[i].pipeline_id : "default");
        store_bind_text(st, 3, stages[i].id);
        store_bind_text(st, 4, stages[i].label);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)i);
        r = store_step_done(st);
    }
    if (r == FS_OK)
        r = store_stage_version_bump_for(s, connection_id);
    return store_txn_leave(s, own, r);
}

fs_result store_crm_stages_list(struct store *s, int64_t connection_id,
                                struct store_stage **out, size_t *n_out)
{
    static const char sql[] = "SELECT pipeline_id, id, label FROM crm_stages "
                              "WHERE connection_id = ?1 ORDER BY position";
    sqlite3_stmt *st = NULL;
    struct store_stage *list = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof(*list));
        list[n].pipeline_id = store_column_text(st, 0);
        list[n].id = store_column_text(st, 1);
        list[n].label = store_column_text(st, 2);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_stages_free(list, n);
        return store_map_rc(rc);
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

fs_result store_crm_owner_known(struct store *s, int64_t connection_id,
                                const char *id, bool *known)
{
    static const char sql[] =
        "SELECT count(*), coalesce(sum(id = ?2), 0) FROM crm_owners "
        "WHERE connection_id = ?1";
    sqlite3_stmt *st = NULL;

    *known = true;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    store_bind_text(st, 2, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *known =
            sqlite3_column_int64(st, 0) == 0 || sqlite3_column_int64(st, 1) > 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? FS_OK : store_map_rc(rc);
}

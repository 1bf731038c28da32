/* The org's stages and each connection's map of CRM stages onto them. */
#include "store/store.h"

#include "base/alloc.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

static fs_result load_org_stages(struct store *s, int64_t org_id,
                                 struct stage_map *m)
{
    static const char sql[] = "SELECT key, label, kind FROM org_stages "
                              "WHERE org_id = ?1 ORDER BY position";
    sqlite3_stmt *st = NULL;
    int rc;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        m->stages = xrealloc(m->stages, (m->n_stages + 1) * sizeof(*m->stages));
        struct stage_def *d = &m->stages[m->n_stages++];
        d->key = store_column_text(st, 0);
        d->label = store_column_text(st, 1);
        d->kind = STAGE_OPEN;
        stage_kind_parse((const char *)sqlite3_column_text(st, 2), &d->kind);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
}

static fs_result load_crm_side(struct store *s, int64_t connection_id,
                               struct stage_map *m)
{
    static const char crm[] = "SELECT pipeline_id, id, label FROM crm_stages "
                              "WHERE connection_id = ?1 ORDER BY position";
    static const char links[] = "SELECT crm_stage, key FROM stage_links "
                                "WHERE connection_id = ?1 ORDER BY crm_stage";
    static const char defaults[] =
        "SELECT pipeline_id, key, crm_stage FROM stage_defaults "
        "WHERE connection_id = ?1 ORDER BY pipeline_id, key";
    sqlite3_stmt *st = NULL;
    int rc = SQLITE_DONE;

    fs_result r = store_prepare(s, crm, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        m->crm = xrealloc(m->crm, (m->n_crm + 1) * sizeof(*m->crm));
        m->crm[m->n_crm++] = (struct crm_stage_ref){store_column_text(st, 0),
                                                    store_column_text(st, 1),
                                                    store_column_text(st, 2)};
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_map_rc(rc);

    r = store_prepare(s, links, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        m->links = xrealloc(m->links, (m->n_links + 1) * sizeof(*m->links));
        m->links[m->n_links++] = (struct stage_link){store_column_text(st, 0),
                                                     store_column_text(st, 1)};
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_map_rc(rc);

    r = store_prepare(s, defaults, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        m->defaults =
            xrealloc(m->defaults, (m->n_defaults + 1) * sizeof(*m->defaults));
        m->defaults[m->n_defaults++] = (struct stage_default){
            store_column_text(st, 0), store_column_text(st, 1),
            store_column_text(st, 2)};
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
}

fs_result store_stage_map_load(struct store *s, int64_t org_id,
                               int64_t connection_id, struct stage_map *out)
{
    memset(out, 0, sizeof(*out));
    fs_result r = load_org_stages(s, org_id, out);
    if (r == FS_OK && connection_id > 0)
        r = load_crm_side(s, connection_id, out);
    if (r != FS_OK)
        stage_map_clear(out);
    return r;
}

static fs_result exec_for(struct store *s, const char *sql, int64_t id)
{
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    return store_step_done(st);
}

/* Whether a connection of the org still maps onto a stage the org would
 * no longer have. */
static fs_result stage_in_use(struct store *s, int64_t org_id,
                              const struct stage_def *stages, size_t n,
                              char **in_use)
{
    static const char sql[] =
        "SELECT key FROM stage_links l JOIN connections c "
        "  ON c.id = l.connection_id WHERE c.org_id = ?1 "
        "UNION SELECT key FROM stage_defaults d JOIN connections c "
        "  ON c.id = d.connection_id WHERE c.org_id = ?1";
    sqlite3_stmt *st = NULL;
    int rc;

    *in_use = NULL;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    while (!*in_use && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        bool kept = false;
        for (size_t i = 0; i < n && !kept; i++)
            kept = key && strcmp(stages[i].key, key) == 0;
        if (!kept)
            *in_use = xstrdup(key ? key : "");
    }
    sqlite3_reset(st);
    return *in_use || rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
}

fs_result store_org_stages_replace(struct store *s, int64_t org_id,
                                   const struct stage_def *stages, size_t n,
                                   char **in_use)
{
    static const char del[] = "DELETE FROM org_stages WHERE org_id = ?1";
    static const char ins[] =
        "INSERT INTO org_stages (org_id, key, label, kind, position) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    sqlite3_stmt *st = NULL;
    bool own = false;

    *in_use = NULL;
    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;
    r = stage_in_use(s, org_id, stages, n, in_use);
    if (r == FS_OK && *in_use)
        r = FS_ERR_CONFLICT;
    if (r == FS_OK)
        r = exec_for(s, del, org_id);
    if (r == FS_OK)
        r = store_prepare(s, ins, &st);
    for (size_t i = 0; i < n && r == FS_OK; i++) {
        sqlite3_bind_int64(st, 1, org_id);
        store_bind_text(st, 2, stages[i].key);
        store_bind_text(st, 3, stages[i].label);
        store_bind_text(st, 4, stage_kind_name(stages[i].kind));
        sqlite3_bind_int64(st, 5, (sqlite3_int64)i);
        r = store_step_done(st);
    }
    if (r == FS_OK)
        r = store_stage_version_bump(s, org_id);
    return store_txn_leave(s, own, r);
}

fs_result store_stage_links_replace(struct store *s, int64_t connection_id,
                                    const struct stage_map *m)
{
    static const char del_links[] =
        "DELETE FROM stage_links WHERE connection_id = ?1";
    static const char del_defaults[] =
        "DELETE FROM stage_defaults WHERE connection_id = ?1";
    static const char ins_link[] =
        "INSERT INTO stage_links (connection_id, crm_stage, key) "
        "VALUES (?1, ?2, ?3)";
    static const char ins_default[] =
        "INSERT INTO stage_defaults (connection_id, pipeline_id, key, "
        "crm_stage) VALUES (?1, ?2, ?3, ?4)";

    sqlite3_stmt *st = NULL;
    bool own = false;

    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;
    r = exec_for(s, del_links, connection_id);
    if (r == FS_OK)
        r = exec_for(s, del_defaults, connection_id);
    if (r == FS_OK)
        r = store_prepare(s, ins_link, &st);
    for (size_t i = 0; i < m->n_links && r == FS_OK; i++) {
        sqlite3_bind_int64(st, 1, connection_id);
        store_bind_text(st, 2, m->links[i].crm_stage);
        store_bind_text(st, 3, m->links[i].key);
        r = store_step_done(st);
    }
    if (r == FS_OK)
        r = store_prepare(s, ins_default, &st);
    for (size_t i = 0; i < m->n_defaults && r == FS_OK; i++) {
        sqlite3_bind_int64(st, 1, connection_id);
        store_bind_text(st, 2, m->defaults[i].pipeline_id);
        store_bind_text(st, 3, m->defaults[i].key);
        store_bind_text(st, 4, m->defaults[i].crm_stage);
        r = store_step_done(st);
    }
    if (r == FS_OK)
        r = store_stage_version_bump_for(s, connection_id);
    return store_txn_leave(s, own, r);
}

fs_result store_stage_version(struct store *s, int64_t org_id, int64_t *version)
{
    static const char sql[] = "SELECT stage_version FROM orgs WHERE id = ?1";
    sqlite3_stmt *st = NULL;

    *version = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return FS_ERR_NOT_FOUND;
    return rc == SQLITE_ROW ? FS_OK : store_map_rc(rc);
}

fs_result store_stage_version_bump_for(struct store *s, int64_t connection_id)
{
    static const char sql[] =
        "UPDATE orgs SET stage_version = stage_version + 1 "
        "WHERE id = (SELECT org_id FROM connections WHERE id = ?1)";

    return exec_for(s, sql, connection_id);
}

fs_result store_stage_version_bump(struct store *s, int64_t org_id)
{
    static const char sql[] =
        "UPDATE orgs SET stage_version = stage_version + 1 WHERE id = ?1";

    return exec_for(s, sql, org_id);
}

/* Push retry state per record, and the sync status reps and admins see. */
#include "store/store.h"

#include "base/alloc.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

#define STATUS_DEFAULT_LIMIT 1000

void sync_state_clear(struct sync_state *st)
{
    free(st->last_error);
    memset(st, 0, sizeof(*st));
}

fs_result store_sync_get(struct store *s, int64_t rowid, struct sync_state *out)
{
    static const char sql[] =
        "SELECT attempts, next_try_at, first_failure_at, last_error, failed "
        "FROM sync_state WHERE record = ?1";
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, rowid);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->attempts = sqlite3_column_int(st, 0);
        out->next_try_at = sqlite3_column_int64(st, 1);
        out->first_failure_at = sqlite3_column_int64(st, 2);
        out->last_error = store_column_text(st, 3);
        out->failed = sqlite3_column_int(st, 4) != 0;
    } else {
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    }
    sqlite3_reset(st);
    return r;
}

fs_result store_sync_put(struct store *s, int64_t rowid,
                         const struct sync_state *in)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO sync_state (record, attempts, next_try_at, "
        "first_failure_at, last_error, failed) "
        "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS "
        "(SELECT 1 FROM records WHERE rowid = ?1 AND pending = 1)";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int(st, 2, in->attempts);
    sqlite3_bind_int64(st, 3, in->next_try_at);
    sqlite3_bind_int64(st, 4, in->first_failure_at);
    store_bind_text(st, 5, in->last_error);
    sqlite3_bind_int(st, 6, in->failed ? 1 : 0);
    r = store_step_done(st);
    /* The record is gone, or caught up meanwhile (a webhook brought the
     * deal a timed-out create made): nothing to retry. */
    if (r == FS_OK && sqlite3_changes(s->db) == 0)
        r = FS_ERR_NOT_FOUND;
    return r;
}

fs_result store_sync_clear(struct store *s, int64_t rowid)
{
    static const char sql[] = "DELETE FROM sync_state WHERE record = ?1";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, rowid);
    return store_step_done(st);
}

fs_result store_sync_retry_failed(struct store *s, int64_t org_id,
                                  int64_t *count_out)
{
    static const char sql[] =
        "UPDATE sync_state SET failed = 0, attempts = 0, next_try_at = 0, "
        "first_failure_at = 0 WHERE failed = 1 AND record IN "
        "(SELECT rowid FROM records WHERE org_id = ?1)";
    sqlite3_stmt *st = NULL;

    if (count_out)
        *count_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    r = store_step_done(st);
    if (r == FS_OK && count_out)
        *count_out = sqlite3_changes(s->db);
    return r;
}

void store_sync_status_free(struct sync_status_entry *entries, size_t n)
{
    for (size_t i = 0; i < n && entries; i++) {
        free(entries[i].record_id);
        free(entries[i].crm_id);
        free(entries[i].last_error);
    }
    free(entries);
}

static fs_result pending_mask(struct store *s, int64_t rowid, unsigned *mask)
{
    static const char sql[] =
        "SELECT field FROM record_fields WHERE record = ?1 AND origin = ?2 "
        "AND value IS NOT crm_value";
    sqlite3_stmt *st = NULL;
    int rc;

    *mask = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int(st, 2, ORIGIN_LOCAL);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int field = sqlite3_column_int(st, 0);
        if (field >= 0 && field < DEAL_FIELD_COUNT)
            *mask |= 1u << field;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
}

/* The records the sync status lists: the org's live records that are
 * pending or have a sync_state row, of one owner when ?3 is not NULL. */
#define STATUS_FROM                                                            \
    "FROM records r LEFT JOIN sync_state s ON s.record = r.rowid "             \
    "WHERE r.org_id = ?1 AND r.deleted_at = 0 AND r.rowid IN ("                \
    "  SELECT rowid FROM records WHERE org_id = ?1 AND pending = 1 "           \
    "  UNION SELECT record FROM sync_state) "                                  \
    "AND (?3 IS NULL OR EXISTS (SELECT 1 FROM record_fields f "                \
    "  WHERE f.record = r.rowid AND f.field = ?4 AND f.value = ?3)) "

static void bind_status(sqlite3_stmt *st, int64_t org_id, const char *owner)
{
    sqlite3_bind_int64(st, 1, org_id);
    if (owner)
        sqlite3_bind_text(st, 3, owner, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int(st, 4, DEAL_OWNER);
}

fs_result store_sync_status_counts(struct store *s, int64_t org_id,
                                   const char *owner, int64_t *pending_out,
                                   int64_t *failed_out)
{
    static const char sql[] =
        "SELECT coalesce(sum(coalesce(s.failed, 0) = 0), "
        "0), coalesce(sum(coalesce(s.failed, 0) != 0), 0) " STATUS_FROM;
    sqlite3_stmt *st = NULL;

    *pending_out = 0;
    *failed_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    bind_status(st, org_id, owner);
    int64_t counts[2];
    r = store_step_int64s(st, counts, 2);
    *pending_out = counts[0];
    *failed_out = counts[1];
    return r;
}

fs_result store_sync_status(struct store *s, int64_t org_id, const char *owner,
                            int limit, struct sync_status_entry **out,
                            size_t *n_out)
{
    static const char sql[] =
        "SELECT r.rowid, r.id, r.crm_id, coalesce(s.failed, 0), "
        "coalesce(s.attempts, 0), s.last_error, "
        "coalesce(s.first_failure_at, 0), coalesce(s.next_try_at, 0) " STATUS_FROM
        "ORDER BY r.id LIMIT ?2";
    sqlite3_stmt *st = NULL;
    struct sync_status_entry *list = NULL;
    int64_t *rowids = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    bind_status(st, org_id, owner);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : STATUS_DEFAULT_LIMIT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof(*list));
        rowids = xrealloc(rowids, (n + 1) * sizeof(*rowids));
        struct sync_status_entry *e = &list[n];
        rowids[n++] = sqlite3_column_int64(st, 0);
        e->record_id = store_column_text(st, 1);
        e->crm_id = store_column_text(st, 2);
        e->failed = sqlite3_column_int(st, 3) != 0;
        e->attempts = sqlite3_column_int(st, 4);
        e->last_error = store_column_text(st, 5);
        e->first_failure_at = sqlite3_column_int64(st, 6);
        e->next_try_at = sqlite3_column_int64(st, 7);
        e->pending_mask = 0;
    }
    sqlite3_reset(st);

    r = rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
    for (size_t i = 0; i < n && r == FS_OK; i++)
        r = pending_mask(s, rowids[i], &list[i].pending_mask);
    free(rowids);
    if (r != FS_OK) {
        store_sync_status_free(list, n);
        return r;
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

fs_result store_sync_counts(struct store *s, int64_t connection_id,
                            int64_t *pending_out, int64_t *failed_out)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM records WHERE connection_id = ?1 AND "
        "pending = 1), "
        "(SELECT count(*) FROM sync_state s JOIN records r ON "
        "r.rowid = s.record WHERE r.connection_id = ?1 AND s.failed = 1 "
        "AND r.pending = 1)";
    sqlite3_stmt *st = NULL;

    *pending_out = 0;
    *failed_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    int64_t counts[2];
    r = store_step_int64s(st, counts, 2);
    *pending_out = counts[0];
    *failed_out = counts[1];
    return r;
}

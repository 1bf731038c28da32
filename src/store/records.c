/* Records (deals) with the merge state of each field, CRM id aliases, the
 * field API's listing and the pusher's pending query. */
#include "store/store.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "store/internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_COLUMNS                                                         \
    "r.rowid, r.id, r.org_id, r.connection_id, r.crm_id, r.deleted_at, "       \
    "r.deleted_reason, r.merged_into, r.created_at, r.updated_at, "            \
    "r.unverified_push_at, r.territory_id, r.geo_lat, r.geo_lng"

#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 1000

void record_clear(struct record *r)
{
    free(r->id);
    free(r->crm_id);
    free(r->deleted_reason);
    free(r->merged_into);
    for (int i = 0; i < DEAL_FIELD_COUNT; i++)
        field_state_clear(&r->fields[i]);
    memset(r, 0, sizeof(*r));
}

void store_records_free(struct record *records, size_t n)
{
    for (size_t i = 0; i < n && records; i++)
        record_clear(&records[i]);
    free(records);
}

static void read_record_row(sqlite3_stmt *st, struct record *r)
{
    r->rowid = sqlite3_column_int64(st, 0);
    r->id = store_column_text(st, 1);
    r->org_id = sqlite3_column_int64(st, 2);
    r->connection_id = sqlite3_column_int64(st, 3);
    r->crm_id = store_column_text(st, 4);
    r->deleted_at = sqlite3_column_int64(st, 5);
    r->deleted_reason = store_column_text(st, 6);
    r->merged_into = store_column_text(st, 7);
    r->created_at = sqlite3_column_int64(st, 8);
    r->updated_at = sqlite3_column_int64(st, 9);
    r->unverified_push_at = sqlite3_column_int64(st, 10);
    r->territory_id = sqlite3_column_int64(st, 11);
    r->located = sqlite3_column_type(st, 12) != SQLITE_NULL &&
                 sqlite3_column_type(st, 13) != SQLITE_NULL;
    r->lat = r->located ? sqlite3_column_double(st, 12) : 0;
    r->lng = r->located ? sqlite3_column_double(st, 13) : 0;
}

static fs_result load_fields(struct store *s, struct record *r)
{
    static const char sql[] =
        "SELECT field, value, time, origin, crm_value, crm_time, "
        "pushed_value, has_pushed FROM record_fields WHERE record = ?1";
    sqlite3_stmt *st = NULL;
    int rc;

    fs_result res = store_prepare(s, sql, &st);
    if (res != FS_OK)
        return res;
    sqlite3_bind_int64(st, 1, r->rowid);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int field = sqlite3_column_int(st, 0);
        if (field < 0 || field >= DEAL_FIELD_COUNT)
            continue;
        struct field_state *f = &r->fields[field];
        field_state_clear(f);
        f->value = store_column_text(st, 1);
        f->time = sqlite3_column_int64(st, 2);
        int origin = sqlite3_column_int(st, 3);
        f->origin = origin == ORIGIN_CRM     ? ORIGIN_CRM
                    : origin == ORIGIN_LOCAL ? ORIGIN_LOCAL
                                             : ORIGIN_NONE;
        f->crm_value = store_column_text(st, 4);
        f->crm_time = sqlite3_column_int64(st, 5);
        f->pushed_value = store_column_text(st, 6);
        f->has_pushed = sqlite3_column_int(st, 7) != 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
}

/* Steps a bound query selecting RECORD_COLUMNS and loads its first row with
 * its fields. */
static fs_result record_query_one(struct store *s, sqlite3_stmt *st,
                                  struct record *out)
{
    int rc = sqlite3_step(st);
    fs_result r = FS_OK;

    if (rc == SQLITE_ROW)
        read_record_row(st, out);
    else
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    sqlite3_reset(st);
    if (r == FS_OK)
        r = load_fields(s, out);
    if (r != FS_OK)
        record_clear(out);
    return r;
}

/* Steps a bound query selecting RECORD_COLUMNS and loads every row. */
static fs_result record_query_all(struct store *s, sqlite3_stmt *st,
                                  struct record **out, size_t *n_out)
{
    struct record *list = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof(*list));
        memset(&list[n], 0, sizeof(list[n]));
        read_record_row(st, &list[n++]);
    }
    sqlite3_reset(st);

    fs_result r = rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
    for (size_t i = 0; i < n && r == FS_OK; i++)
        r = load_fields(s, &list[i]);
    if (r != FS_OK) {
        store_records_free(list, n);
        return r;
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

fs_result store_record_get(struct store *s, int64_t org_id, const char *id,
                           struct record *out)
{
    static const char sql[] =
        "SELECT " RECORD_COLUMNS " FROM records r WHERE r.id = ?1 AND "
        "r.org_id = ?2";
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    if (!id)
        return FS_ERR_NOT_FOUND;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    store_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, org_id);
    return record_query_one(s, st, out);
}

fs_result store_record_by_rowid(struct store *s, int64_t rowid,
                                struct record *out)
{
    static const char sql[] =
        "SELECT " RECORD_COLUMNS " FROM records r WHERE r.rowid = ?1";
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, rowid);
    return record_query_one(s, st, out);
}

/* A CRM id merged away leads to the survivor through its alias, so a late
 * change reported under the old id lands on the deal that kept it. The
 * loser's own tombstone comes only after that, and a direct match on any
 * other record wins over an alias (a merged-away id later reused, never
 * seen but cheap to honour, still finds its own). The rank is an extra
 * last column the record reader ignores. */
fs_result store_record_by_crm_id(struct store *s, int64_t connection_id,
                                 const char *crm_id, struct record *out)
{
    static const char sql[] =
        "SELECT * FROM ("
        "SELECT " RECORD_COLUMNS ", "
        "CASE WHEN r.deleted_reason = 'merged' THEN 2 ELSE 0 END AS rank "
        "FROM records r "
        "WHERE r.connection_id = ?1 AND r.crm_id = ?2 "
        "UNION ALL "
        "SELECT " RECORD_COLUMNS ", 1 AS rank FROM crm_aliases a "
        "JOIN records r ON r.connection_id = a.connection_id "
        "AND r.crm_id = a.crm_id "
        "WHERE a.connection_id = ?1 AND a.old_crm_id = ?2) "
        "ORDER BY rank LIMIT 1";
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    if (!crm_id)
        return FS_ERR_NOT_FOUND;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    store_bind_text(st, 2, crm_id);
    return record_query_one(s, st, out);
}

fs_result store_merged_at(struct store *s, int64_t connection_id,
                          const char *crm_id, int64_t *merged_at)
{
    static const char sql[] =
        "SELECT deleted_at FROM records WHERE connection_id = ?1 AND "
        "crm_id = ?2 AND deleted_reason = 'merged' LIMIT 1";
    sqlite3_stmt *st = NULL;

    *merged_at = 0;
    if (!crm_id)
        return FS_ERR_NOT_FOUND;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    store_bind_text(st, 2, crm_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *merged_at = sqlite3_column_int64(st, 0);
    else
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_crm_alias_add(struct store *s, int64_t connection_id,
                              const char *old_crm_id, const char *crm_id)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO crm_aliases (connection_id, old_crm_id, "
        "crm_id) VALUES (?1, ?2, ?3)";
    static const char repoint[] =
        "UPDATE crm_aliases SET crm_id = ?3 WHERE connection_id = ?1 AND "
        "crm_id = ?2";
    sqlite3_stmt *st = NULL;
    bool own = false;

    if (!old_crm_id || !crm_id || strcmp(old_crm_id, crm_id) == 0)
        return FS_ERR_INVALID;
    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;

    r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        goto out;
    sqlite3_bind_int64(st, 1, connection_id);
    store_bind_text(st, 2, old_crm_id);
    store_bind_text(st, 3, crm_id);
    r = store_step_done(st);
    if (r != FS_OK)
        goto out;

    /* Aliases that pointed at the old id follow it, so chains of merges
     * resolve in one step. */
    r = store_prepare(s, repoint, &st);
    if (r != FS_OK)
        goto out;
    sqlite3_bind_int64(st, 1, connection_id);
    store_bind_text(st, 2, old_crm_id);
    store_bind_text(st, 3, crm_id);
    r = store_step_done(st);

out:
    return store_txn_leave(s, own, r);
}

static bool field_is_empty(const struct field_state *f)
{
    return !f->value && f->time == 0 && f->origin == ORIGIN_NONE &&
           !f->crm_value && f->crm_time == 0 && !f->pushed_value &&
           !f->has_pushed;
}

bool store_record_pending(const struct record *r)
{
    if (r->deleted_at != 0)
        return false;
    if (!r->crm_id)
        return true;
    for (int i = 0; i < DEAL_FIELD_COUNT; i++) {
        if (merge_field_pending(&r->fields[i]))
            return true;
    }
    return false;
}

static fs_result save_field(struct store *s, int64_t rowid, int field,
                            const struct field_state *f, bool is_new)
{
    /* An unchanged field is left as it is: no page or index is written for
     * it, so saving a record after a one-field merge costs one row. */
    static const char put[] =
        "INSERT INTO record_fields (record, field, value, time, origin, "
        "crm_value, crm_time, pushed_value, has_pushed) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT (record, field) DO UPDATE SET value = excluded.value, "
        "time = excluded.time, origin = excluded.origin, "
        "crm_value = excluded.crm_value, crm_time = excluded.crm_time, "
        "pushed_value = excluded.pushed_value, "
        "has_pushed = excluded.has_pushed "
        "WHERE value IS NOT excluded.value OR time <> excluded.time "
        "OR origin <> excluded.origin OR crm_value IS NOT excluded.crm_value "
        "OR crm_time <> excluded.crm_time "
        "OR pushed_value IS NOT excluded.pushed_value "
        "OR has_pushed <> excluded.has_pushed";
    static const char del[] =
        "DELETE FROM record_fields WHERE record = ?1 AND field = ?2";
    sqlite3_stmt *st = NULL;
    bool empty = field_is_empty(f);

    if (empty && is_new)
        return FS_OK;
    fs_result r = store_prepare(s, empty ? del : put, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int(st, 2, field);
    if (!empty) {
        store_bind_text(st, 3, f->value);
        sqlite3_bind_int64(st, 4, f->time);
        sqlite3_bind_int(st, 5, (int)f->origin);
        store_bind_text(st, 6, f->crm_value);
        sqlite3_bind_int64(st, 7, f->crm_time);
        store_bind_text(st, 8, f->pushed_value);
        sqlite3_bind_int(st, 9, f->has_pushed ? 1 : 0);
    }
    return store_step_done(st);
}

static fs_result save_row(struct store *s, struct record *rec, bool pending)
{
    static const char insert[] =
        "INSERT INTO records (id, org_id, connection_id, crm_id, deleted_at, "
        "deleted_reason, merged_into, created_at, updated_at, pending, "
        "unverified_push_at, territory_id, geo_lat, geo_lng) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?13, ?14, ?15)";
    static const char update[] =
        "UPDATE records SET id = ?1, org_id = ?2, connection_id = ?3, "
        "crm_id = ?4, deleted_at = ?5, deleted_reason = ?6, merged_into = ?7, "
        "created_at = ?8, updated_at = ?9, pending = ?10, "
        "unverified_push_at = ?12, territory_id = ?13, geo_lat = ?14, "
        "geo_lng = ?15 WHERE rowid = ?11";
    sqlite3_stmt *st = NULL;
    bool is_new = rec->rowid == 0;

    fs_result r = store_prepare(s, is_new ? insert : update, &st);
    if (r != FS_OK)
        return r;
    store_bind_text(st, 1, rec->id);
    sqlite3_bind_int64(st, 2, rec->org_id);
    if (rec->connection_id)
        sqlite3_bind_int64(st, 3, rec->connection_id);
    else
        sqlite3_bind_null(st, 3);
    store_bind_text(st, 4, rec->crm_id);
    sqlite3_bind_int64(st, 5, rec->deleted_at);
    store_bind_text(st, 6, rec->deleted_reason);
    store_bind_text(st, 7, rec->merged_into);
    sqlite3_bind_int64(st, 8, rec->created_at);
    sqlite3_bind_int64(st, 9, rec->updated_at);
    sqlite3_bind_int(st, 10, pending ? 1 : 0);
    if (!is_new)
        sqlite3_bind_int64(st, 11, rec->rowid);
    sqlite3_bind_int64(st, 12, rec->unverified_push_at);
    sqlite3_bind_int64(st, 13, rec->territory_id);
    if (rec->located) {
        sqlite3_bind_double(st, 14, rec->lat);
        sqlite3_bind_double(st, 15, rec->lng);
    } else {
        sqlite3_bind_null(st, 14);
        sqlite3_bind_null(st, 15);
    }
    r = store_step_done(st);
    if (r != FS_OK)
        return r;
    if (is_new)
        rec->rowid = sqlite3_last_insert_rowid(s->db);
    else if (sqlite3_changes(s->db) == 0)
        return FS_ERR_NOT_FOUND;
    return FS_OK;
}

fs_result store_field_save(struct store *s, int64_t rowid, int field,
                           const struct field_state *f)
{
    return save_field(s, rowid, field, f, false);
}

fs_result store_record_save(struct store *s, struct record *rec)
{
    bool own = false;
    bool made_id = false;
    int64_t old_rowid = rec->rowid;
    int64_t old_created = rec->created_at;

    if (!rec->id) {
        rec->id = crypto_random_hex(STORE_RECORD_ID_LEN / 2);
        made_id = true;
    }
    if (rec->created_at == 0)
        rec->created_at = clock_now_ms();
    int64_t updated = rec->created_at;
    for (int i = 0; i < DEAL_FIELD_COUNT; i++) {
        if (rec->fields[i].time > updated)
            updated = rec->fields[i].time;
    }
    if (rec->deleted_at > updated)
        updated = rec->deleted_at;
    rec->updated_at = updated;

    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        goto out;
    bool pending = store_record_pending(rec);
    r = save_row(s, rec, pending);
    for (int i = 0; i < DEAL_FIELD_COUNT && r == FS_OK; i++)
        r = save_field(s, rec->rowid, i, &rec->fields[i], old_rowid == 0);
    /* Nothing left to push (the CRM side caught up, or the deal is gone):
     * a push failure noted earlier no longer stands. */
    if (r == FS_OK && !pending && old_rowid != 0)
        r = store_sync_clear(s, rec->rowid);
    r = store_txn_leave(s, own, r);

out:
    if (r != FS_OK) {
        /* Leave the caller's record as it was, so a retry inserts again. */
        rec->rowid = old_rowid;
        rec->created_at = old_created;
        if (made_id) {
            free(rec->id);
            rec->id = NULL;
        }
    }
    return r;
}

/* The filter's conditions, bound by bind_filter. */
#define RECORD_FILTER_WHERE                                                    \
    "WHERE r.org_id = ?1 "                                                     \
    "AND (?2 IS NULL OR EXISTS (SELECT 1 FROM record_fields f "                \
    "  WHERE f.record = r.rowid AND f.field = ?8 AND f.value = ?2)) "          \
    "AND (?3 IS NULL OR EXISTS (SELECT 1 FROM record_fields f "                \
    "  WHERE f.record = r.rowid AND f.field = ?9 AND f.value IS NOT NULL "     \
    "  AND (f.value IN (SELECT value FROM json_each(?3))) = ?10)) "            \
    "AND r.updated_at >= ?4 "                                                  \
    "AND (?5 OR r.deleted_at = 0) "                                            \
    "AND (?6 IS NULL OR r.id > ?6) "                                           \
    "AND (?11 = 0 OR (r.geo_lng BETWEEN ?12 AND ?14 "                          \
    "  AND r.geo_lat BETWEEN ?13 AND ?15)) "

static void bind_filter(sqlite3_stmt *st, const struct record_filter *f)
{
    char *stages = NULL;

    sqlite3_bind_int64(st, 1, f->org_id);
    store_bind_text(st, 2, f->owner);
    if (f->by_stage) {
        json_t *list = json_array();
        for (size_t i = 0; i < f->n_stages; i++)
            json_array_append_new(list, json_string(f->stages[i]));
        stages = json_dumps(list, JSON_COMPACT);
        json_decref(list);
    }
    store_bind_text(st, 3, stages);
    free(stages);
    sqlite3_bind_int64(st, 4, f->updated_since);
    sqlite3_bind_int(st, 5, f->include_deleted ? 1 : 0);
    store_bind_text(st, 6, f->after_id);
    sqlite3_bind_int(st, 8, DEAL_OWNER);
    sqlite3_bind_int(st, 9, DEAL_STAGE);
    sqlite3_bind_int(st, 10, f->stage_not_in ? 0 : 1);
    sqlite3_bind_int(st, 11, f->has_bbox ? 1 : 0);
    for (int i = 0; i < 4; i++)
        sqlite3_bind_double(st, 12 + i, f->has_bbox ? f->bbox[i] : 0);
}

fs_result store_records_list(struct store *s, const struct record_filter *f,
                             struct record **out, size_t *n_out)
{
    static const char sql[] =
        "SELECT " RECORD_COLUMNS " FROM records r " RECORD_FILTER_WHERE
        "ORDER BY r.id LIMIT ?7";
    sqlite3_stmt *st = NULL;

    *out = NULL;
    *n_out = 0;
    int limit = f->limit <= 0 ? LIST_DEFAULT_LIMIT : f->limit;
    if (limit > LIST_MAX_LIMIT)
        limit = LIST_MAX_LIMIT;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    bind_filter(st, f);
    sqlite3_bind_int(st, 7, limit);
    return record_query_all(s, st, out, n_out);
}

fs_result store_records_count(struct store *s, const struct record_filter *f,
                              int64_t *n_out)
{
    static const char sql[] =
        "SELECT count(*) FROM records r " RECORD_FILTER_WHERE;
    sqlite3_stmt *st = NULL;

    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    bind_filter(st, f);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n_out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? FS_OK : store_map_rc(rc);
}

fs_result store_records_pending(struct store *s, int64_t connection_id,
                                int64_t now, size_t limit, struct record **out,
                                size_t *n_out)
{
    static const char sql[] =
        "SELECT " RECORD_COLUMNS " FROM records r "
        "LEFT JOIN sync_state s ON s.record = r.rowid "
        "WHERE r.connection_id = ?1 AND r.pending = 1 AND r.deleted_at = 0 "
        "AND (s.record IS NULL OR (s.failed = 0 AND s.next_try_at <= ?2)) "
        "ORDER BY r.updated_at, r.rowid LIMIT ?3";
    sqlite3_stmt *st = NULL;

    *out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, limit > 0 ? (int64_t)limit : 100);
    return record_query_all(s, st, out, n_out);
}

fs_result store_pending_next_due(struct store *s, int64_t connection_id,
                                 int64_t *due_out)
{
    static const char sql[] =
        "SELECT coalesce(min(s.next_try_at), 0) FROM records r "
        "JOIN sync_state s ON s.record = r.rowid "
        "WHERE r.connection_id = ?1 AND r.pending = 1 AND s.failed = 0";
    sqlite3_stmt *st = NULL;

    *due_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *due_out = sqlite3_column_int64(st, 0);
    else
        r = store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_records_unverified(struct store *s, int64_t connection_id,
                                   int64_t before, size_t limit, char ***out,
                                   size_t *n_out)
{
    static const char sql[] =
        "SELECT crm_id FROM records WHERE connection_id = ?1 "
        "AND unverified_push_at > 0 AND unverified_push_at < ?2 "
        "AND crm_id IS NOT NULL AND deleted_at = 0 "
        "ORDER BY unverified_push_at LIMIT ?3";
    sqlite3_stmt *st = NULL;
    char **ids = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, connection_id);
    sqlite3_bind_int64(st, 2, before);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids = xrealloc(ids, (n + 1) * sizeof(*ids));
        ids[n++] = store_column_text(st, 0);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
        return store_map_rc(rc);
    }
    *out = ids;
    *n_out = n;
    return FS_OK;
}

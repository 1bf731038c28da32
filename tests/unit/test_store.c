/* Unit tests of the SQLite store on a temporary database file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/crypto.h"
#include "store/internal.h"
#include "store/store.h"
#include "store_fixture.h"
#include "test_env.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A second, raw SQLite handle on the file, to look at what is stored. */
static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    return db;
}

static int64_t raw_count(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Whether any column of any row of the table contains needle. */
static bool table_contains(sqlite3 *db, const char *table, const char *needle)
{
    sqlite3_stmt *st = NULL;
    bool found = false;
    char *sql = xasprintf("SELECT * FROM %s", table);

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *v = (const char *)sqlite3_column_text(st, i);
            if (v && strstr(v, needle))
                found = true;
        }
    }
    sqlite3_finalize(st);
    free(sql);
    return found;
}

struct open_arg {
    const char *path;
    fs_result result;
    int version;
};

static void *open_thread(void *p)
{
    struct open_arg *arg = p;
    struct store *s = NULL;

    arg->result = store_open(arg->path, &s);
    if (arg->result == FS_OK)
        arg->version = store_schema_version(s);
    store_close(s);
    return NULL;
}

static void test_migrations_idempotent(void **state)
{
    struct store_fixture *fx = *state;
    int version = store_schema_version(fx->store);
    struct store *again = NULL;

    assert_true(version >= 1);
    assert_int_equal(store_open(fx->path, &again), FS_OK);
    assert_int_equal(store_schema_version(again), version);
    store_close(again);

    sqlite3 *db = raw_open(fx->path);
    assert_int_equal(raw_count(db, "SELECT count(*) FROM schema_version", NULL),
                     version);
    assert_int_equal(raw_count(db, "SELECT count(*) FROM orgs", NULL), 1);
    sqlite3_close(db);

    /* Several connections opening a fresh file at once all succeed and
     * the migrations run once. */
    char *fresh = xasprintf("%s/fresh.db", fx->dir);
    pthread_t threads[4];
    struct open_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct open_arg){.path = fresh, .result = FS_ERR_DB};
        assert_int_equal(
            pthread_create(&threads[i], NULL, open_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].result, FS_OK);
        assert_int_equal(args[i].version, version);
    }
    db = raw_open(fresh);
    assert_int_equal(raw_count(db, "SELECT count(*) FROM schema_version", NULL),
                     version);
    sqlite3_close(db);
    store_fixture_remove_files(fresh);
    free(fresh);
}

/* A database an earlier fieldsync wrote (schema 4) opens: migration 5
 * drops the index on (field, value) and adds the one on the org, and its
 * deals are still found by owner. */
static void test_upgrade_from_schema_4(void **state)
{
    struct store_fixture *fx = *state;
    char *path = xasprintf("%s/old.db", fx->dir);
    sqlite3 *db = raw_open(path);

    assert_true(store_migration_count >= 5);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_version (version "
                                  "INTEGER NOT NULL, applied_at INTEGER NOT "
                                  "NULL)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 4; i++) {
        char *sql = xasprintf("%s; INSERT INTO schema_version VALUES (%d, 0)",
                              store_migrations[i], i + 1);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        free(sql);
    }
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO orgs (id, name) VALUES (1, 'old');"
                     "INSERT INTO records (rowid, id, org_id, created_at, "
                     "updated_at) VALUES (1, 'a1', 1, 10, 10), "
                     "(2, 'a2', 1, 10, 10);"
                     "INSERT INTO record_fields (record, field, value, time, "
                     "origin) VALUES (1, 4, '77', 10, 1), (2, 4, '78', 10, 1)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    static const char index_sql[] =
        "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?1";
    assert_int_equal(raw_count(db, index_sql, "record_fields_value"), 1);

    struct store *s = NULL;
    assert_int_equal(store_open(path, &s), FS_OK);
    assert_int_equal(store_schema_version(s), (int)store_migration_count);
    assert_int_equal(raw_count(db, index_sql, "record_fields_value"), 0);
    assert_int_equal(raw_count(db, index_sql, "records_org"), 1);

    struct record_filter f = {.org_id = 1, .owner = "78"};
    struct record *list = NULL;
    size_t n = 0;
    assert_int_equal(store_records_list(s, &f, &list, &n), FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "a2");
    assert_string_equal(list[0].fields[DEAL_OWNER].value, "78");
    store_records_free(list, n);

    store_close(s);
    sqlite3_close(db);
    store_fixture_remove_files(path);
    free(path);
}

static void test_orgs(void **state)
{
    struct store_fixture *fx = *state;
    int64_t id = 0;
    char *name = NULL;

    assert_int_equal(store_org_add(fx->store, "acme", &id), FS_ERR_CONFLICT);
    assert_int_equal(store_org_find(fx->store, "acme", &id), FS_OK);
    assert_int_equal(id, fx->org);
    assert_int_equal(store_org_find(fx->store, "nope", &id), FS_ERR_NOT_FOUND);
    assert_int_equal(store_org_name(fx->store, fx->org, &name), FS_OK);
    assert_string_equal(name, "acme");
    free(name);
}

static void test_inbox_dedup(void **state)
{
    struct store_fixture *fx = *state;
    struct inbox_event ev[3] = {
        {.connection_id = fx->conn, .dedup_key = "k1", .body = "{\"a\":1}"},
        {.connection_id = fx->conn, .dedup_key = "k1", .body = "{\"a\":2}"},
        {.connection_id = fx->conn, .dedup_key = "k2", .body = "{\"b\":1}"},
    };
    size_t inserted = 99;
    int64_t depth = -1;

    assert_int_equal(store_begin(fx->store), FS_OK);
    assert_int_equal(store_inbox_add(fx->store, ev, 3, &inserted), FS_OK);
    assert_int_equal(inserted, 2);
    assert_int_equal(store_inbox_add(fx->store, ev, 1, &inserted), FS_OK);
    assert_int_equal(inserted, 0);
    assert_int_equal(store_commit(fx->store), FS_OK);

    /* A retried delivery after the commit is still one row. */
    assert_int_equal(store_inbox_add(fx->store, &ev[2], 1, &inserted), FS_OK);
    assert_int_equal(inserted, 0);
    assert_int_equal(store_inbox_depth(fx->store, &depth), FS_OK);
    assert_int_equal(depth, 2);

    /* A rolled-back batch leaves nothing. */
    struct inbox_event late = {
        .connection_id = fx->conn, .dedup_key = "k3", .body = "{}"};
    assert_int_equal(store_begin(fx->store), FS_OK);
    assert_int_equal(store_inbox_add(fx->store, &late, 1, &inserted), FS_OK);
    assert_int_equal(store_rollback(fx->store), FS_OK);
    assert_int_equal(store_inbox_depth(fx->store, &depth), FS_OK);
    assert_int_equal(depth, 2);

    struct inbox_event *next = NULL;
    size_t n = 0;
    assert_int_equal(store_inbox_next(fx->store, 10, &next, &n), FS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(next[0].dedup_key, "k1");
    assert_string_equal(next[0].body, "{\"a\":1}");
    assert_string_equal(next[1].dedup_key, "k2");
    assert_true(next[0].received_at > 0);
    assert_int_equal(next[0].connection_id, fx->conn);

    assert_int_equal(store_inbox_mark(fx->store, next[0].id, INBOX_DONE, NULL),
                     FS_OK);
    assert_int_equal(
        store_inbox_mark(fx->store, next[1].id, INBOX_FAILED, "parse error"),
        FS_OK);
    store_inbox_events_free(next, n);
    assert_int_equal(store_inbox_depth(fx->store, &depth), FS_OK);
    assert_int_equal(depth, 0);
    assert_int_equal(store_inbox_next(fx->store, 10, &next, &n), FS_OK);
    assert_int_equal(n, 0);
    store_inbox_events_free(next, n);

    /* Done events can go; the failed one stays for inspection. */
    int64_t deleted = 0;
    assert_int_equal(store_inbox_purge(fx->store, INT64_MAX, &deleted), FS_OK);
    assert_int_equal(deleted, 1);
}

static void set_field(struct field_state *f, const char *value, int64_t time,
                      enum field_origin origin, const char *crm_value,
                      int64_t crm_time, const char *pushed)
{
    field_state_clear(f);
    f->value = value ? xstrdup(value) : NULL;
    f->time = time;
    f->origin = origin;
    f->crm_value = crm_value ? xstrdup(crm_value) : NULL;
    f->crm_time = crm_time;
    f->pushed_value = pushed ? xstrdup(pushed) : NULL;
    f->has_pushed = pushed != NULL;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (!a)
        assert_null(b);
    else
        assert_string_equal(a, b);
}

static void assert_records_equal(const struct record *a, const struct record *b)
{
    assert_int_equal(a->rowid, b->rowid);
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->org_id, b->org_id);
    assert_int_equal(a->connection_id, b->connection_id);
    assert_str_or_null(a->crm_id, b->crm_id);
    assert_int_equal(a->deleted_at, b->deleted_at);
    assert_str_or_null(a->deleted_reason, b->deleted_reason);
    assert_str_or_null(a->merged_into, b->merged_into);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->updated_at, b->updated_at);
    for (int i = 0; i < DEAL_FIELD_COUNT; i++) {
        const struct field_state *x = &a->fields[i];
        const struct field_state *y = &b->fields[i];
        assert_str_or_null(x->value, y->value);
        assert_int_equal(x->time, y->time);
        assert_int_equal(x->origin, y->origin);
        assert_str_or_null(x->crm_value, y->crm_value);
        assert_int_equal(x->crm_time, y->crm_time);
        assert_str_or_null(x->pushed_value, y->pushed_value);
        assert_int_equal(x->has_pushed, y->has_pushed);
    }
}

/* A saved record of the fixture's connection with the CRM id given. */
static void make_record(struct store_fixture *fx, const char *crm_id,
                        struct record *r)
{
    memset(r, 0, sizeof(*r));
    r->org_id = fx->org;
    r->connection_id = fx->conn;
    r->crm_id = crm_id ? xstrdup(crm_id) : NULL;
    r->created_at = 1000;
    set_field(&r->fields[DEAL_NAME], "Deal", 1000, ORIGIN_CRM, "Deal", 1000,
              NULL);
    assert_int_equal(store_record_save(fx->store, r), FS_OK);
}

static void test_record_round_trip(void **state)
{
    struct store_fixture *fx = *state;
    struct record r = {0};
    struct record got = {0};

    r.org_id = fx->org;
    r.connection_id = fx->conn;
    r.crm_id = xstrdup("9001");
    r.created_at = 500;
    set_field(&r.fields[DEAL_NAME], "Acme \xe2\x82\xac", 1000, ORIGIN_CRM,
              "Acme \xe2\x82\xac", 1000, NULL);
    set_field(&r.fields[DEAL_STAGE], "closedwon", 3000, ORIGIN_LOCAL,
              "appointmentscheduled", 2000, "closedwon");
    set_field(&r.fields[DEAL_AMOUNT], NULL, 2500, ORIGIN_LOCAL, "10.5", 2400,
              NULL);
    set_field(&r.fields[DEAL_OWNER], "77", 1200, ORIGIN_CRM, "77", 1200, "76");
    r.fields[DEAL_PRODUCT].has_pushed = true; /* pushed a clear */

    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    assert_true(r.rowid > 0);
    assert_non_null(r.id);
    assert_int_equal(strlen(r.id), STORE_RECORD_ID_LEN);
    assert_int_equal(r.updated_at, 3000);

    assert_int_equal(store_record_get(fx->store, fx->org, r.id, &got), FS_OK);
    assert_records_equal(&r, &got);
    record_clear(&got);
    assert_int_equal(store_record_by_rowid(fx->store, r.rowid, &got), FS_OK);
    assert_records_equal(&r, &got);
    record_clear(&got);
    assert_int_equal(store_record_by_crm_id(fx->store, fx->conn, "9001", &got),
                     FS_OK);
    assert_records_equal(&r, &got);
    record_clear(&got);

    /* Another org cannot see it. */
    int64_t other = 0;
    assert_int_equal(store_org_add(fx->store, "other", &other), FS_OK);
    assert_int_equal(store_record_get(fx->store, other, r.id, &got),
                     FS_ERR_NOT_FOUND);

    /* Update in place: a tombstone and a changed field. */
    r.deleted_at = 4000;
    r.deleted_reason = xstrdup("merged");
    r.merged_into = xstrdup("0123456789abcdef0123456789abcdef");
    set_field(&r.fields[DEAL_STAGE], "closedlost", 3500, ORIGIN_CRM,
              "closedlost", 3500, "closedwon");
    field_state_clear(&r.fields[DEAL_OWNER]);
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    assert_int_equal(r.updated_at, 4000);
    assert_int_equal(store_record_get(fx->store, fx->org, r.id, &got), FS_OK);
    assert_records_equal(&r, &got);
    record_clear(&got);

    /* A second record may not take the same CRM id. */
    struct record dup = {0};
    dup.org_id = fx->org;
    dup.connection_id = fx->conn;
    dup.crm_id = xstrdup("9001");
    assert_int_equal(store_record_save(fx->store, &dup), FS_ERR_CONFLICT);
    assert_int_equal(dup.rowid, 0);
    assert_null(dup.id);
    record_clear(&dup);
    record_clear(&r);
}

static void test_record_list(void **state)
{
    struct store_fixture *fx = *state;
    struct record r[3];
    struct record *list = NULL;
    size_t n = 0;

    for (int i = 0; i < 3; i++) {
        char crm_id[16];
        snprintf(crm_id, sizeof(crm_id), "%d", 100 + i);
        memset(&r[i], 0, sizeof(r[i]));
        r[i].org_id = fx->org;
        r[i].connection_id = fx->conn;
        r[i].crm_id = xstrdup(crm_id);
        r[i].created_at = 1000;
        set_field(&r[i].fields[DEAL_OWNER], i == 1 ? "o2" : "o1",
                  1000 + i * 1000, ORIGIN_CRM, NULL, 0, NULL);
        set_field(&r[i].fields[DEAL_STAGE], "s", 1000, ORIGIN_CRM, NULL, 0,
                  NULL);
        if (i == 2)
            r[i].deleted_at = 5000;
        assert_int_equal(store_record_save(fx->store, &r[i]), FS_OK);
    }

    struct record_filter f = {.org_id = fx->org};
    assert_int_equal(store_records_list(fx->store, &f, &list, &n), FS_OK);
    assert_int_equal(n, 2);
    assert_true(strcmp(list[0].id, list[1].id) < 0);
    store_records_free(list, n);

    f.include_deleted = true;
    assert_int_equal(store_records_list(fx->store, &f, &list, &n), FS_OK);
    assert_int_equal(n, 3);
    char *first = xstrdup(list[0].id);
    store_records_free(list, n);

    f.after_id = first;
    f.limit = 1;
    assert_int_equal(store_records_list(fx->store, &f, &list, &n), FS_OK);
    assert_int_equal(n, 1);
    assert_true(strcmp(list[0].id, first) > 0);
    store_records_free(list, n);
    free(first);

    struct record_filter by_owner = {.org_id = fx->org, .owner = "o2"};
    assert_int_equal(store_records_list(fx->store, &by_owner, &list, &n),
                     FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].crm_id, "101");
    assert_string_equal(list[0].fields[DEAL_OWNER].value, "o2");
    store_records_free(list, n);

    const char *other[] = {"x", "y"};
    struct record_filter by_stage = {
        .org_id = fx->org, .by_stage = true, .stages = other, .n_stages = 2};
    assert_int_equal(store_records_list(fx->store, &by_stage, &list, &n),
                     FS_OK);
    assert_int_equal(n, 0);
    store_records_free(list, n);

    const char *known[] = {"x", "s"};
    by_stage.stages = known;
    assert_int_equal(store_records_list(fx->store, &by_stage, &list, &n),
                     FS_OK);
    assert_int_equal(n, 2);
    store_records_free(list, n);
    int64_t count = 0;
    assert_int_equal(store_records_count(fx->store, &by_stage, &count), FS_OK);
    assert_int_equal(count, 2);

    /* None of the known stages: the unmapped listing. */
    by_stage.stage_not_in = true;
    assert_int_equal(store_records_list(fx->store, &by_stage, &list, &n),
                     FS_OK);
    assert_int_equal(n, 0);
    store_records_free(list, n);
    by_stage.stages = other;
    assert_int_equal(store_records_count(fx->store, &by_stage, &count), FS_OK);
    assert_int_equal(count, 2);

    struct record_filter since = {.org_id = fx->org, .updated_since = 2000};
    assert_int_equal(store_records_list(fx->store, &since, &list, &n), FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].crm_id, "101");
    store_records_free(list, n);

    for (int i = 0; i < 3; i++)
        record_clear(&r[i]);
}

static size_t pending_count(struct store_fixture *fx, int64_t now)
{
    struct record *list = NULL;
    size_t n = 0;

    assert_int_equal(
        store_records_pending(fx->store, fx->conn, now, 100, &list, &n), FS_OK);
    store_records_free(list, n);
    return n;
}

/* Notes a first failed push of the record ("http 503"), to be tried
 * again at next_try_at. */
static void put_failure(struct store_fixture *fx, int64_t rowid,
                        int64_t first_failure_at, int64_t next_try_at)
{
    struct sync_state st = {0};

    st.attempts = 1;
    st.next_try_at = next_try_at;
    st.first_failure_at = first_failure_at;
    st.last_error = xstrdup("http 503");
    assert_int_equal(store_sync_put(fx->store, rowid, &st), FS_OK);
    sync_state_clear(&st);
}

static void test_pending_and_sync_state(void **state)
{
    struct store_fixture *fx = *state;
    struct record r = {0};
    struct sync_state st = {0};
    int64_t pending = 0, failed = 0;

    make_record(fx, "500", &r);
    set_field(&r.fields[DEAL_OWNER], "100001", 1000, ORIGIN_CRM, "100001", 1000,
              NULL);
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    assert_int_equal(pending_count(fx, 10000), 0);

    /* A local edit makes it pending. */
    assert_int_equal(merge_local_edit(&r.fields[DEAL_AMOUNT], "42", 2000, 0),
                     EDIT_APPLIED);
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    assert_int_equal(pending_count(fx, 10000), 1);
    assert_int_equal(store_sync_counts(fx->store, fx->conn, &pending, &failed),
                     FS_OK);
    assert_int_equal(pending, 1);
    assert_int_equal(failed, 0);

    /* Backing off: not due before next_try_at. */
    assert_int_equal(store_sync_get(fx->store, r.rowid, &st), FS_ERR_NOT_FOUND);
    put_failure(fx, r.rowid, 4000, 5000);
    assert_int_equal(pending_count(fx, 4999), 0);
    assert_int_equal(pending_count(fx, 5000), 1);
    int64_t due = 0;
    assert_int_equal(store_pending_next_due(fx->store, fx->conn, &due), FS_OK);
    assert_int_equal(due, 5000);

    assert_int_equal(store_sync_get(fx->store, r.rowid, &st), FS_OK);
    assert_int_equal(st.attempts, 1);
    assert_int_equal(st.next_try_at, 5000);
    assert_int_equal(st.first_failure_at, 4000);
    assert_string_equal(st.last_error, "http 503");
    assert_false(st.failed);

    /* Failed: out of line until a retry. */
    st.failed = true;
    assert_int_equal(store_sync_put(fx->store, r.rowid, &st), FS_OK);
    sync_state_clear(&st);
    assert_int_equal(pending_count(fx, 1000000), 0);
    assert_int_equal(store_sync_counts(fx->store, fx->conn, &pending, &failed),
                     FS_OK);
    assert_int_equal(pending, 1);
    assert_int_equal(failed, 1);

    struct sync_status_entry *status = NULL;
    size_t n = 0;
    assert_int_equal(
        store_sync_status(fx->store, fx->org, NULL, 0, &status, &n), FS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(
        store_sync_status_counts(fx->store, fx->org, NULL, &pending, &failed),
        FS_OK);
    assert_int_equal(pending, 0);
    assert_int_equal(failed, 1);
    /* Of one owner: only their deals, in the list and the counts. */
    store_sync_status_free(status, n);
    assert_int_equal(
        store_sync_status(fx->store, fx->org, "no-such-owner", 0, &status, &n),
        FS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_sync_status_counts(fx->store, fx->org,
                                              "no-such-owner", &pending,
                                              &failed),
                     FS_OK);
    assert_int_equal(pending + failed, 0);
    assert_int_equal(store_sync_status_counts(fx->store, fx->org, "100001",
                                              &pending, &failed),
                     FS_OK);
    assert_int_equal(failed, 1);
    assert_int_equal(
        store_sync_status(fx->store, fx->org, "100001", 0, &status, &n), FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(status[0].record_id, r.id);
    assert_string_equal(status[0].crm_id, "500");
    assert_true(status[0].failed);
    assert_string_equal(status[0].last_error, "http 503");
    assert_int_equal(status[0].pending_mask, 1u << DEAL_AMOUNT);
    store_sync_status_free(status, n);

    int64_t count = 0;
    assert_int_equal(store_sync_retry_failed(fx->store, fx->org, &count),
                     FS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(pending_count(fx, 1), 1);

    /* Pushed and echoed: no longer pending, state cleared. */
    merge_mark_pushed(&r.fields[DEAL_AMOUNT], "42");
    struct crm_change echo = {.value = "42", .time = 6000, .actor = ACTOR_US};
    assert_int_equal(merge_crm_change(&r.fields[DEAL_AMOUNT], &echo),
                     MERGE_ECHO);
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    assert_int_equal(store_sync_clear(fx->store, r.rowid), FS_OK);
    assert_int_equal(pending_count(fx, 1000000), 0);

    /* A failure noted while pending ends when the record stops being
     * pending some other way: here a newer CRM change takes the field, so
     * the sync status lists nothing (it listed the deal as failing for
     * good before). */
    merge_local_edit(&r.fields[DEAL_AMOUNT], "43", 6500, 0);
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    put_failure(fx, r.rowid, 6600, 7000);
    struct crm_change newer = {
        .value = "44", .time = 6800, .actor = ACTOR_OTHER};
    merge_crm_change(&r.fields[DEAL_AMOUNT], &newer);
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    assert_int_equal(store_sync_get(fx->store, r.rowid, &st), FS_ERR_NOT_FOUND);
    assert_int_equal(
        store_sync_status(fx->store, fx->org, NULL, 0, &status, &n), FS_OK);
    assert_int_equal(n, 0);
    store_sync_status_free(status, n);
    /* A push's failure that comes back after the record caught up (a
     * create that timed out, whose deal a webhook brought meanwhile) is
     * not noted. */
    st.attempts = 1;
    st.last_error = xstrdup("HTTP 504");
    assert_int_equal(store_sync_put(fx->store, r.rowid, &st), FS_ERR_NOT_FOUND);
    sync_state_clear(&st);
    assert_int_equal(store_sync_get(fx->store, r.rowid, &st), FS_ERR_NOT_FOUND);

    /* A deleted record is never pending. */
    merge_local_edit(&r.fields[DEAL_NAME], "Renamed", 7000, 0);
    r.deleted_at = 8000;
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    assert_int_equal(pending_count(fx, 1000000), 0);

    /* A record created in the field (no CRM id yet) is pending. */
    struct record fresh = {0};
    fresh.org_id = fx->org;
    fresh.connection_id = fx->conn;
    merge_local_edit(&fresh.fields[DEAL_NAME], "New", 9000, 0);
    assert_int_equal(store_record_save(fx->store, &fresh), FS_OK);
    assert_int_equal(pending_count(fx, 1000000), 1);

    record_clear(&fresh);
    record_clear(&r);
}

static void test_alias_lookup(void **state)
{
    struct store_fixture *fx = *state;
    struct record r = {0};
    struct record got = {0};

    make_record(fx, "200", &r);
    assert_int_equal(store_crm_alias_add(fx->store, fx->conn, "100", "200"),
                     FS_OK);
    assert_int_equal(store_record_by_crm_id(fx->store, fx->conn, "100", &got),
                     FS_OK);
    assert_string_equal(got.id, r.id);
    record_clear(&got);

    /* The survivor later gets a new CRM id: old aliases follow. */
    free(r.crm_id);
    r.crm_id = xstrdup("300");
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    assert_int_equal(store_crm_alias_add(fx->store, fx->conn, "200", "300"),
                     FS_OK);
    assert_int_equal(store_record_by_crm_id(fx->store, fx->conn, "100", &got),
                     FS_OK);
    assert_string_equal(got.id, r.id);
    record_clear(&got);
    assert_int_equal(store_record_by_crm_id(fx->store, fx->conn, "200", &got),
                     FS_OK);
    assert_string_equal(got.crm_id, "300");
    record_clear(&got);

    assert_int_equal(store_record_by_crm_id(fx->store, fx->conn, "999", &got),
                     FS_ERR_NOT_FOUND);
    record_clear(&r);
}

/* The merge time of a merged-away deal is its own tombstone's, not what
 * its alias leads to; other deletes are not merges. */
static void test_merged_at(void **state)
{
    struct store_fixture *fx = *state;
    struct record loser = {0};
    struct record gone = {0};
    int64_t t = -1;

    make_record(fx, "400", &loser);
    assert_int_equal(store_merged_at(fx->store, fx->conn, "400", &t),
                     FS_ERR_NOT_FOUND);
    loser.deleted_at = 4500;
    loser.deleted_reason = xstrdup("merged");
    assert_int_equal(store_record_save(fx->store, &loser), FS_OK);
    assert_int_equal(store_crm_alias_add(fx->store, fx->conn, "400", "500"),
                     FS_OK);
    assert_int_equal(store_merged_at(fx->store, fx->conn, "400", &t), FS_OK);
    assert_int_equal(t, 4500);

    make_record(fx, "600", &gone);
    gone.deleted_at = 6500;
    gone.deleted_reason = xstrdup("crm_delete");
    assert_int_equal(store_record_save(fx->store, &gone), FS_OK);
    assert_int_equal(store_merged_at(fx->store, fx->conn, "600", &t),
                     FS_ERR_NOT_FOUND);
    assert_int_equal(store_merged_at(fx->store, fx->conn, "500", &t),
                     FS_ERR_NOT_FOUND);
    record_clear(&gone);
    record_clear(&loser);
}

static void test_user_tokens(void **state)
{
    struct store_fixture *fx = *state;
    char *token = NULL;
    char *token2 = NULL;
    int64_t uid = 0;
    struct user u = {0};

    assert_int_equal(store_user_add(fx->store, fx->org, "Ann", "ann@x.io",
                                    USER_ROLE_ADMIN, "77", &uid, &token),
                     FS_OK);
    assert_non_null(token);
    assert_int_equal(strlen(token), 3 + 64);
    assert_memory_equal(token, "fs_", 3);

    assert_int_equal(store_user_by_token(fx->store, token, &u), FS_OK);
    assert_int_equal(u.id, uid);
    assert_int_equal(u.org_id, fx->org);
    assert_string_equal(u.name, "Ann");
    assert_string_equal(u.email, "ann@x.io");
    assert_int_equal(u.role, USER_ROLE_ADMIN);
    assert_string_equal(u.crm_owner_id, "77");
    user_clear(&u);

    assert_int_equal(store_user_by_token(fx->store, "fs_nope", &u),
                     FS_ERR_AUTH);
    char *wrong = xstrdup(token);
    wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
    assert_int_equal(store_user_by_token(fx->store, wrong, &u), FS_ERR_AUTH);
    free(wrong);

    assert_int_equal(store_user_add(fx->store, fx->org, "Ann 2", "ann@x.io",
                                    USER_ROLE_REP, NULL, NULL, &token2),
                     FS_ERR_CONFLICT);
    assert_null(token2);
    assert_int_equal(store_user_add(fx->store, fx->org, "Bob", "bob@x.io",
                                    USER_ROLE_REP, "78", NULL, &token2),
                     FS_OK);

    /* Only the hash is stored. */
    sqlite3 *db = raw_open(fx->path);
    assert_false(table_contains(db, "users", token));
    assert_false(table_contains(db, "users", token + 3));
    uint8_t digest[CRYPTO_SHA256_LEN];
    crypto_sha256(token, strlen(token), digest);
    char *hex = crypto_hex(digest, sizeof(digest));
    assert_int_equal(
        raw_count(db, "SELECT count(*) FROM users WHERE token_hash = ?1", hex),
        1);
    free(hex);
    sqlite3_close(db);

    struct user *users = NULL;
    size_t n = 0;
    assert_int_equal(store_users_list(fx->store, fx->org, &users, &n), FS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(users[1].role, USER_ROLE_REP);
    store_users_free(users, n);

    /* Revoked tokens stop working; other orgs cannot revoke. */
    assert_int_equal(store_user_revoke(fx->store, fx->org + 100, uid),
                     FS_ERR_NOT_FOUND);
    assert_int_equal(store_user_revoke(fx->store, fx->org, uid), FS_OK);
    assert_int_equal(store_user_by_token(fx->store, token, &u), FS_ERR_AUTH);
    assert_int_equal(store_user_by_token(fx->store, token2, &u), FS_OK);
    user_clear(&u);

    enum user_role role;
    assert_int_equal(store_role_parse("admin", &role), FS_OK);
    assert_int_equal(role, USER_ROLE_ADMIN);
    assert_int_equal(store_role_parse("root", &role), FS_ERR_INVALID);
    free(token);
    free(token2);
}

static void test_connection_secrets_apart(void **state)
{
    struct store_fixture *fx = *state;
    struct connection c = {0};

    sqlite3 *db = raw_open(fx->path);
    assert_false(table_contains(db, "connections", "tok-secret"));
    assert_false(table_contains(db, "connections", "client-secret"));
    assert_true(table_contains(db, "connection_secrets", "tok-secret"));
    sqlite3_close(db);

    assert_int_equal(store_connection_get(fx->store, fx->conn, &c), FS_OK);
    assert_string_equal(c.provider, "hubspot");
    assert_string_equal(c.token, "tok-secret-0123456789");
    assert_string_equal(c.client_secret, "client-secret-abcdef");
    assert_string_equal(c.account_id, "portal-1");
    assert_true(c.active);
    connection_clear(&c);

    assert_int_equal(store_connection_find_route(fx->store, "hubspot",
                                                 "portal-1", "app-1", &c),
                     FS_OK);
    assert_int_equal(c.id, fx->conn);
    connection_clear(&c);
    assert_int_equal(
        store_connection_find_route(fx->store, "hubspot", "portal-1", NULL, &c),
        FS_OK);
    connection_clear(&c);
    assert_int_equal(store_connection_find_route(fx->store, "hubspot",
                                                 "portal-1", "app-2", &c),
                     FS_ERR_NOT_FOUND);
    assert_int_equal(store_connection_find_route(fx->store, "hubspot",
                                                 "portal-9", "app-1", &c),
                     FS_ERR_NOT_FOUND);

    assert_int_equal(store_connection_set_watermark(fx->store, fx->conn, 777),
                     FS_OK);
    assert_int_equal(store_connection_for_org(fx->store, fx->org, &c), FS_OK);
    assert_int_equal(c.watermark, 777);
    connection_clear(&c);

    struct connection *list = NULL;
    size_t n = 0;
    assert_int_equal(store_connections_active(fx->store, &list, &n), FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].token, "tok-secret-0123456789");
    store_connections_free(list, n);

    assert_int_equal(store_connection_set_active(fx->store, fx->conn, false),
                     FS_OK);
    assert_int_equal(store_connection_for_org(fx->store, fx->org, &c),
                     FS_ERR_NOT_FOUND);
    /* Still found, for the webhooks an old CRM goes on sending, but as
     * inactive so they are dropped. */
    assert_int_equal(store_connection_find_route(fx->store, "hubspot",
                                                 "portal-1", "app-1", &c),
                     FS_OK);
    assert_false(c.active);
    connection_clear(&c);
}

static void test_owners_stages_audit(void **state)
{
    struct store_fixture *fx = *state;
    struct store_owner owners[] = {
        {.id = "1", .email = "a@x.io", .name = "A"},
        {.id = "2", .email = "B@x.io", .name = "B"},
    };
    struct store_stage stages[] = {
        {.pipeline_id = "default", .id = "closedwon", .label = "Won"},
    };
    struct store_owner *ol = NULL;
    struct store_stage *sl = NULL;
    size_t n = 0;
    char *id = NULL;

    assert_int_equal(store_crm_owners_replace(fx->store, fx->conn, owners, 2),
                     FS_OK);
    assert_int_equal(
        store_crm_owners_replace(fx->store, fx->conn, &owners[1], 1), FS_OK);
    assert_int_equal(store_crm_owners_list(fx->store, fx->conn, &ol, &n),
                     FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ol[0].id, "2");
    store_owners_free(ol, n);
    assert_int_equal(
        store_crm_owner_by_email(fx->store, fx->conn, "b@X.io", &id), FS_OK);
    assert_string_equal(id, "2");
    free(id);

    assert_int_equal(store_crm_stages_replace(fx->store, fx->conn, stages, 1),
                     FS_OK);
    assert_int_equal(store_crm_stages_list(fx->store, fx->conn, &sl, &n),
                     FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(sl[0].label, "Won");
    store_stages_free(sl, n);

    struct audit_entry *audit = NULL;
    assert_int_equal(store_audit_add(fx->store, fx->org, "edit_dropped", "abc",
                                     "amount", "crm delete"),
                     FS_OK);
    assert_int_equal(store_audit_list(fx->store, fx->org, 0, 10, &audit, &n),
                     FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(audit[0].kind, "edit_dropped");
    assert_string_equal(audit[0].field, "amount");
    store_audit_free(audit, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_idempotent,
                                        store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_schema_4,
                                        store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_orgs, store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_inbox_dedup, store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_record_round_trip,
                                        store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_record_list, store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_pending_and_sync_state,
                                        store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_alias_lookup, store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_merged_at, store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_user_tokens, store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_connection_secrets_apart,
                                        store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_owners_stages_audit,
                                        store_fixture_setup,
                                        store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Opening the store, migrations, transactions, statement helpers, orgs and
 * the audit log. */
#include "store/store.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "store/internal.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 10000
/* One wait for a lock another connection holds. */
#define BUSY_STEP_US 200

fs_result store_map_rc(int rc)
{
    switch (rc & 0xFF) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return FS_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return FS_ERR_BUSY;
    case SQLITE_CONSTRAINT:
        return FS_ERR_CONFLICT;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
        return FS_ERR_IO;
    default:
        return FS_ERR_DB;
    }
}

fs_result store_prepare(struct store *s, const char *sql, sqlite3_stmt **out)
{
    for (size_t i = 0; i < s->stmt_count; i++) {
        if (s->stmts[i].sql == sql) {
            sqlite3_reset(s->stmts[i].stmt);
            sqlite3_clear_bindings(s->stmts[i].stmt);
            *out = s->stmts[i].stmt;
            return FS_OK;
        }
    }

    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                                NULL);
    if (rc != SQLITE_OK)
        return store_map_rc(rc);
    s->stmts = xrealloc(s->stmts, (s->stmt_count + 1) * sizeof(*s->stmts));
    s->stmts[s->stmt_count].sql = sql;
    s->stmts[s->stmt_count].stmt = st;
    s->stmt_count++;
    *out = st;
    return FS_OK;
}

fs_result store_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
}

fs_result store_step_int64s(sqlite3_stmt *st, int64_t *out, int n)
{
    fs_result r = FS_OK;
    int rc = sqlite3_step(st);

    for (int i = 0; i < n; i++)
        out[i] = rc == SQLITE_ROW ? sqlite3_column_int64(st, i) : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_exec(struct store *s, const char *sql)
{
    return store_map_rc(sqlite3_exec(s->db, sql, NULL, NULL, NULL));
}

void store_bind_text(sqlite3_stmt *st, int idx, const char *v)
{
    if (v)
        sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, idx);
}

char *store_column_text(sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    if (!v)
        return NULL;
    return xstrndup((const char *)v, (size_t)sqlite3_column_bytes(st, col));
}

fs_result store_txn_enter(struct store *s, bool *own)
{
    *own = sqlite3_get_autocommit(s->db) != 0;
    if (*own)
        return store_begin(s);
    return store_exec(s, "SAVEPOINT store_op");
}

fs_result store_txn_leave(struct store *s, bool own, fs_result result)
{
    if (own) {
        if (result != FS_OK) {
            store_rollback(s);
            return result;
        }
        return store_commit(s);
    }
    if (result != FS_OK)
        store_exec(s, "ROLLBACK TO store_op");
    fs_result r = store_exec(s, "RELEASE store_op");
    return result != FS_OK ? result : r;
}

fs_result store_begin(struct store *s)
{
    return store_exec(s, "BEGIN IMMEDIATE");
}

fs_result store_commit(struct store *s)
{
    return store_exec(s, "COMMIT");
}

fs_result store_rollback(struct store *s)
{
    if (sqlite3_get_autocommit(s->db))
        return FS_OK;
    return store_exec(s, "ROLLBACK");
}

const char *store_last_error(struct store *s)
{
    return s && s->db ? sqlite3_errmsg(s->db) : "no store";
}

int store_schema_version(struct store *s)
{
    return s->version;
}

static fs_result read_version(struct store *s, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        s->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &st,
        NULL);
    if (rc != SQLITE_OK)
        return store_map_rc(rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? FS_OK : store_map_rc(rc);
}

/* Applies the migrations the database lacks, all in one BEGIN IMMEDIATE
 * transaction: a second process opening at the same time waits on the
 * lock, then finds the work done. A database that lacks none is only
 * read, so another process's write lock or a full disk does not keep a
 * connection from opening (serve opens one per busy thread). */
static fs_result migrate(struct store *s)
{
    int version = 0;
    if (read_version(s, &version) == FS_OK &&
        version == (int)store_migration_count) {
        s->version = version;
        return FS_OK;
    }

    fs_result r = store_begin(s);
    if (r != FS_OK)
        return r;

    r = store_exec(s, "CREATE TABLE IF NOT EXISTS schema_version ("
                      "version INTEGER NOT NULL, applied_at INTEGER NOT "
                      "NULL)");
    if (r != FS_OK)
        goto out;
    r = read_version(s, &version);
    if (r != FS_OK)
        goto out;
    if (version > (int)store_migration_count) {
        r = FS_ERR_DB; /* a newer fieldsync wrote this database */
        goto out;
    }

    for (size_t i = (size_t)version; i < store_migration_count; i++) {
        r = store_exec(s, store_migrations[i]);
        if (r != FS_OK)
            goto out;
        char *sql = xasprintf("INSERT INTO schema_version VALUES (%zu, "
                              "%lld)",
                              i + 1, (long long)clock_now_ms());
        r = store_exec(s, sql);
        free(sql);
        if (r != FS_OK)
            goto out;
    }
    s->version = (int)store_migration_count;

out:
    if (r != FS_OK) {
        store_rollback(s);
        return r;
    }
    return store_commit(s);
}

/* SQLite's own busy wait sleeps longer after each try (up to 100 ms), so a
 * writer that has waited a while keeps missing the short gaps between
 * another thread's transactions: the webhook committer starved behind the
 * reconciler. Short even steps let it in soon after the lock frees. The
 * total wait, BUSY_TIMEOUT_MS, is measured on the clock: a count of steps
 * overran it many times on a loaded machine, where a step sleeps longer. */
static int on_busy(void *ctx, int tries)
{
    struct store *s = ctx;
    struct timespec step = {.tv_nsec = BUSY_STEP_US * 1000L};

    if (tries == 0)
        s->busy_since_ms = clock_mono_ms();
    else if (clock_mono_ms() - s->busy_since_ms >= BUSY_TIMEOUT_MS)
        return 0;
    nanosleep(&step, NULL);
    return 1;
}

fs_result store_set_flush(struct store *s, bool flush)
{
    return store_exec(s, flush ? "PRAGMA synchronous=FULL"
                               : "PRAGMA synchronous=NORMAL");
}

fs_result store_set_page_limit(struct store *s, int64_t pages)
{
    char *sql = xasprintf("PRAGMA max_page_count=%lld", (long long)pages);
    fs_result r = store_exec(s, sql);
    free(sql);
    return r;
}

fs_result store_open(const char *path, struct store **out)
{
    struct store *s = xcalloc(1, sizeof(*s));
    fs_result r;

    *out = NULL;
    int rc = sqlite3_open_v2(
        path, &s->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = store_map_rc(rc);
        goto out;
    }
    sqlite3_busy_handler(s->db, on_busy, s);

    r = store_exec(s, "PRAGMA journal_mode=WAL");
    if (r != FS_OK)
        goto out;
    r = store_exec(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON");
    if (r != FS_OK)
        goto out;
    r = migrate(s);

out:
    if (r != FS_OK) {
        store_close(s);
        return r;
    }
    *out = s;
    return FS_OK;
}

fs_result store_open_reader(struct store *s, struct store **out)
{
    const char *path = sqlite3_db_filename(s->db, "main");
    struct store *rd = NULL;

    *out = NULL;
    if (!path || !*path)
        return FS_ERR_NOT_FOUND; /* in memory or temporary: no file */
    rd = xcalloc(1, sizeof(*rd));
    int rc = sqlite3_open_v2(path, &rd->db,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    fs_result r = rc == SQLITE_OK ? FS_OK : store_map_rc(rc);
    if (r == FS_OK) {
        sqlite3_busy_handler(rd->db, on_busy, NULL);
        rd->version = s->version;
    }
    if (r != FS_OK) {
        store_close(rd);
        return r;
    }
    *out = rd;
    return FS_OK;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->stmt_count; i++)
        sqlite3_finalize(s->stmts[i].stmt);
    free(s->stmts);
    sqlite3_close(s->db);
    free(s);
}

fs_result store_org_add(struct store *s, const char *name, int64_t *id_out)
{
    static const char sql[] =
        "INSERT INTO orgs (name, created_at) VALUES (?1, ?2)";
    sqlite3_stmt *st = NULL;

    struct stage_map defaults = {0};
    char *in_use = NULL;
    bool own = false;
    int64_t id = 0;

    if (!name || !*name)
        return FS_ERR_INVALID;
    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;
    r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        goto out;
    store_bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, clock_now_ms());
    r = store_step_done(st);
    if (r != FS_OK)
        goto out;
    id = sqlite3_last_insert_rowid(s->db);

    /* Every org starts with the default stages. */
    stage_map_default_stages(&defaults);
    r = store_org_stages_replace(s, id, defaults.stages, defaults.n_stages,
                                 &in_use);
out:
    free(in_use);
    stage_map_clear(&defaults);
    r = store_txn_leave(s, own, r);
    if (r == FS_OK && id_out)
        *id_out = id;
    return r;
}

fs_result store_org_find(struct store *s, const char *name, int64_t *id_out)
{
    static const char sql[] = "SELECT id FROM orgs WHERE name = ?1";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    store_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id_out = sqlite3_column_int64(st, 0);
    else
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_org_name(struct store *s, int64_t id, char **name_out)
{
    static const char sql[] = "SELECT name FROM orgs WHERE id = ?1";
    sqlite3_stmt *st = NULL;

    *name_out = NULL;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *name_out = store_column_text(st, 0);
    else
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_audit_add(struct store *s, int64_t org_id, const char *kind,
                          const char *record_id, const char *field,
                          const char *detail)
{
    static const char sql[] =
        "INSERT INTO audit (org_id, at, kind, record_id, field, detail) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    sqlite3_stmt *st = NULL;

    if (!kind)
        return FS_ERR_INVALID;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    sqlite3_bind_int64(st, 2, clock_now_ms());
    store_bind_text(st, 3, kind);
    store_bind_text(st, 4, record_id);
    store_bind_text(st, 5, field);
    store_bind_text(st, 6, detail);
    return store_step_done(st);
}

void store_audit_free(struct audit_entry *entries, size_t n)
{
    for (size_t i = 0; i < n && entries; i++) {
        free(entries[i].kind);
        free(entries[i].record_id);
        free(entries[i].field);
        free(entries[i].detail);
    }
    free(entries);
}

fs_result store_audit_list(struct store *s, int64_t org_id, int64_t after_id,
                           int limit, struct audit_entry **out, size_t *n_out)
{
    static const char sql[] =
        "SELECT id, at, kind, record_id, field, detail FROM audit "
        "WHERE org_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
    sqlite3_stmt *st = NULL;
    struct audit_entry *list = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : 1000);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof(*list));
        struct audit_entry *e = &list[n++];
        e->id = sqlite3_column_int64(st, 0);
        e->at = sqlite3_column_int64(st, 1);
        e->kind = store_column_text(st, 2);
        e->record_id = store_column_text(st, 3);
        e->field = store_column_text(st, 4);
        e->detail = store_column_text(st, 5);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_audit_free(list, n);
        return store_map_rc(rc);
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

fs_result store_set_cache_mib(struct store *s, int mib)
{
    char sql[64];

    snprintf(sql, sizeof(sql), "PRAGMA cache_size=%d",
             mib > 0 ? -1024 * mib : -2000);
    return store_exec(s, sql);
}

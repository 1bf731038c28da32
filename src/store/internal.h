/* Shared between the store's source files only: the connection, a cache of
 * prepared statements, and small helpers over the SQLite API. */
#ifndef FIELDSYNC_STORE_INTERNAL_H
#define FIELDSYNC_STORE_INTERNAL_H

#include "base/result.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_stmt_slot {
    const char *sql; /* the call site's literal: cached by address */
    sqlite3_stmt *stmt;
};

struct store {
    sqlite3 *db;
    struct store_stmt_slot *stmts;
    size_t stmt_count;
    int version;
    int64_t busy_since_ms; /* when the current wait for a lock began */
};

/* The numbered migrations, applied in order; version i+1 is entry i. */
extern const char *const store_migrations[];
extern const size_t store_migration_count;

/* A prepared statement for the literal sql, reset and unbound. It stays
 * owned by the store; callers sqlite3_reset it when done so it holds no
 * read snapshot. */
fs_result store_prepare(struct store *s, const char *sql, sqlite3_stmt **out);
/* Maps an SQLite result code to fs_result. */
fs_result store_map_rc(int rc);
/* Steps a statement that returns no rows, then resets it. */
fs_result store_step_done(sqlite3_stmt *st);
/* Steps a statement that returns at most one row of n integers into
 * out[0..n) (left 0 when no row), then resets it. */
fs_result store_step_int64s(sqlite3_stmt *st, int64_t *out, int n);
/* Runs sql (one or more statements) without caching. */
fs_result store_exec(struct store *s, const char *sql);

/* Binds text, NULL as SQL NULL. */
void store_bind_text(sqlite3_stmt *st, int idx, const char *v);
/* The column as a new string, or NULL. */
char *store_column_text(sqlite3_stmt *st, int col);

struct field_state;
/* Writes (or, when it holds nothing, deletes) one field of a record. */
fs_result store_field_save(struct store *s, int64_t rowid, int field,
                           const struct field_state *f);

/* Opens a transaction when none is open, else a savepoint inside the
 * caller's; leave commits or rolls back what enter opened, by result. */
fs_result store_txn_enter(struct store *s, bool *own);
fs_result store_txn_leave(struct store *s, bool own, fs_result result);

/* Bumps the stage version of the connection's org (see
 * store_stage_version). */
fs_result store_stage_version_bump_for(struct store *s, int64_t connection_id);

#endif

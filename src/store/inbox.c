/* The durable webhook inbox: events land here before the 2xx, and the
 * reconciler takes them oldest first. */
#include "store/store.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

static const char *state_name(enum inbox_state state)
{
    switch (state) {
    case INBOX_DONE:
        return "done";
    case INBOX_FAILED:
        return "failed";
    case INBOX_NEW:
        break;
    }
    return "new";
}

void inbox_event_clear(struct inbox_event *e)
{
    free(e->dedup_key);
    free(e->body);
    memset(e, 0, sizeof(*e));
}

void store_inbox_events_free(struct inbox_event *events, size_t n)
{
    for (size_t i = 0; i < n && events; i++)
        inbox_event_clear(&events[i]);
    free(events);
}

fs_result store_inbox_add(struct store *s, const struct inbox_event *events,
                          size_t n, size_t *inserted_out)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO inbox (connection_id, dedup_key, received_at, "
        "body, state) VALUES (?1, ?2, ?3, ?4, 'new')";
    sqlite3_stmt *st = NULL;
    size_t inserted = 0;
    int64_t now = clock_now_ms();

    if (inserted_out)
        *inserted_out = 0;
    for (size_t i = 0; i < n; i++) {
        if (!events[i].body)
            return FS_ERR_INVALID;
    }
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    for (size_t i = 0; i < n && r == FS_OK; i++) {
        const struct inbox_event *e = &events[i];
        sqlite3_bind_int64(st, 1, e->connection_id);
        store_bind_text(st, 2, e->dedup_key);
        sqlite3_bind_int64(st, 3, e->received_at ? e->received_at : now);
        store_bind_text(st, 4, e->body);
        r = store_step_done(st);
        if (r == FS_OK)
            inserted += (size_t)sqlite3_changes(s->db);
    }
    if (inserted_out)
        *inserted_out = inserted;
    return r;
}

fs_result store_inbox_next(struct store *s, size_t limit,
                           struct inbox_event **out, size_t *n_out)
{
    static const char sql[] =
        "SELECT id, connection_id, dedup_key, body, received_at FROM inbox "
        "WHERE state = 'new' ORDER BY id LIMIT ?1";
    sqlite3_stmt *st = NULL;
    struct inbox_event *list = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, limit > 0 ? (int64_t)limit : 100);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof(*list));
        struct inbox_event *e = &list[n++];
        e->id = sqlite3_column_int64(st, 0);
        e->connection_id = sqlite3_column_int64(st, 1);
        e->dedup_key = store_column_text(st, 2);
        e->body = store_column_text(st, 3);
        if (!e->body)
            e->body = xstrdup("");
        e->received_at = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_inbox_events_free(list, n);
        return store_map_rc(rc);
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

fs_result store_inbox_mark(struct store *s, int64_t id, enum inbox_state state,
                           const char *error)
{
    static const char sql[] =
        "UPDATE inbox SET state = ?2, error = ?3 WHERE id = ?1";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    store_bind_text(st, 2, state_name(state));
    store_bind_text(st, 3, error);
    r = store_step_done(st);
    if (r == FS_OK && sqlite3_changes(s->db) == 0)
        r = FS_ERR_NOT_FOUND;
    return r;
}

fs_result store_inbox_depth(struct store *s, int64_t *n_out)
{
    static const char sql[] = "SELECT count(*) FROM inbox WHERE state = 'new'";
    sqlite3_stmt *st = NULL;

    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n_out = sqlite3_column_int64(st, 0);
    else
        r = store_map_rc(rc);
    sqlite3_reset(st);
    return r;
}

fs_result store_inbox_purge(struct store *s, int64_t before,
                            int64_t *deleted_out)
{
    static const char sql[] =
        "DELETE FROM inbox WHERE state = 'done' AND received_at < ?1";
    sqlite3_stmt *st = NULL;

    if (deleted_out)
        *deleted_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, before);
    r = store_step_done(st);
    if (r == FS_OK && deleted_out)
        *deleted_out = sqlite3_changes(s->db);
    return r;
}

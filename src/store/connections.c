/* CRM connections: settings in one table, secrets in another, so settings
 * can be listed or logged without ever touching a credential. */
#include "store/store.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "store/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECTION_COLUMNS                                                     \
    "id, org_id, provider, base_url, account_id, app_id, watermark, "          \
    "rate_window, rate_daily, active, settings"

static const char secret_token[] = "token";
static const char secret_client[] = "client_secret";
static const char secret_webhook_user[] = "webhook_user";
static const char secret_refresh[] = "refresh_token";
static const char secret_oauth_client[] = "oauth_client_id";
static const char secret_oauth_secret[] = "oauth_client_secret";
/* Not secret, but they belong with the token they describe. */
static const char secret_expires[] = "token_expires_at";
static const char secret_refresh_at[] = "token_refresh_at";

/* The text slots of a connection's secrets table, by name. */
static char **secret_slot(struct connection *c, const char *name)
{
    const struct {
        const char *name;
        char **slot;
    } slots[] = {
        {secret_token, &c->token},
        {secret_client, &c->client_secret},
        {secret_webhook_user, &c->webhook_user},
        {secret_refresh, &c->refresh_token},
        {secret_oauth_client, &c->oauth_client_id},
        {secret_oauth_secret, &c->oauth_client_secret},
    };

    for (size_t i = 0; name && i < sizeof(slots) / sizeof(slots[0]); i++) {
        if (strcmp(name, slots[i].name) == 0)
            return slots[i].slot;
    }
    return NULL;
}

static int64_t *time_slot(struct connection *c, const char *name)
{
    if (name && strcmp(name, secret_expires) == 0)
        return &c->token_expires_at;
    if (name && strcmp(name, secret_refresh_at) == 0)
        return &c->token_refresh_at;
    return NULL;
}

static void read_connection(sqlite3_stmt *st, struct connection *c)
{
    c->id = sqlite3_column_int64(st, 0);
    c->org_id = sqlite3_column_int64(st, 1);
    c->provider = store_column_text(st, 2);
    c->base_url = store_column_text(st, 3);
    c->account_id = store_column_text(st, 4);
    c->app_id = store_column_text(st, 5);
    c->watermark = sqlite3_column_int64(st, 6);
    c->rate_window = sqlite3_column_int(st, 7);
    c->rate_daily = sqlite3_column_int(st, 8);
    c->active = sqlite3_column_int(st, 9) != 0;
    c->settings = store_column_text(st, 10);
}

static fs_result put_secret(struct store *s, int64_t id, const char *name,
                            const char *value)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO connection_secrets (connection_id, name, "
        "value) VALUES (?1, ?2, ?3)";
    sqlite3_stmt *st = NULL;

    if (!value)
        return FS_OK;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    store_bind_text(st, 2, name);
    store_bind_text(st, 3, value);
    return store_step_done(st);
}

static fs_result put_time(struct store *s, int64_t id, const char *name,
                          int64_t ms)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)ms);
    return put_secret(s, id, name, text);
}

static fs_result put_tokens(struct store *s, int64_t id, const char *access,
                            const char *refresh, int64_t expires_at,
                            int64_t refresh_at)
{
    fs_result r = put_secret(s, id, secret_token, access);
    if (r == FS_OK)
        r = put_secret(s, id, secret_refresh, refresh);
    if (r == FS_OK)
        r = put_time(s, id, secret_expires, expires_at);
    if (r == FS_OK)
        r = put_time(s, id, secret_refresh_at, refresh_at);
    return r;
}

static fs_result load_secrets(struct store *s, struct connection *c)
{
    static const char sql[] = "SELECT name, value FROM connection_secrets "
                              "WHERE connection_id = ?1";
    sqlite3_stmt *st = NULL;
    int rc;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, c->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        char **slot = secret_slot(c, name);
        int64_t *time = time_slot(c, name);
        if (slot) {
            free(*slot);
            *slot = store_column_text(st, 1);
        } else if (time) {
            const char *text = (const char *)sqlite3_column_text(st, 1);
            *time = text ? strtoll(text, NULL, 10) : 0;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
}

fs_result store_connection_add(struct store *s, const struct connection *c,
                               int64_t *id_out)
{
    static const char sql[] =
        "INSERT INTO connections (org_id, provider, base_url, account_id, "
        "app_id, watermark, rate_window, rate_daily, active, created_at, "
        "settings) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    sqlite3_stmt *st = NULL;
    bool own = false;
    int64_t id = 0;

    if (!c->provider || !*c->provider)
        return FS_ERR_INVALID;
    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;
    r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        goto out;
    sqlite3_bind_int64(st, 1, c->org_id);
    store_bind_text(st, 2, c->provider);
    store_bind_text(st, 3, c->base_url);
    store_bind_text(st, 4, c->account_id);
    store_bind_text(st, 5, c->app_id);
    sqlite3_bind_int64(st, 6, c->watermark);
    sqlite3_bind_int(st, 7, c->rate_window);
    sqlite3_bind_int(st, 8, c->rate_daily);
    sqlite3_bind_int(st, 9, c->active ? 1 : 0);
    sqlite3_bind_int64(st, 10, clock_now_ms());
    store_bind_text(st, 11, c->settings);
    r = store_step_done(st);
    if (r != FS_OK)
        goto out;
    id = sqlite3_last_insert_rowid(s->db);

    r = put_secret(s, id, secret_token, c->token);
    if (r != FS_OK)
        goto out;
    r = put_secret(s, id, secret_client, c->client_secret);
    if (r != FS_OK)
        goto out;
    r = put_secret(s, id, secret_webhook_user, c->webhook_user);
    if (r == FS_OK)
        r = put_secret(s, id, secret_oauth_client, c->oauth_client_id);
    if (r == FS_OK)
        r = put_secret(s, id, secret_oauth_secret, c->oauth_client_secret);
    if (r == FS_OK && c->refresh_token)
        r = put_tokens(s, id, c->token, c->refresh_token, c->token_expires_at,
                       c->token_refresh_at);
    if (r == FS_OK)
        r = store_stage_version_bump_for(s, id);

out:
    r = store_txn_leave(s, own, r);
    if (r == FS_OK && id_out)
        *id_out = id;
    return r;
}

/* Steps a bound query selecting CONNECTION_COLUMNS and takes the first row
 * with its secrets. */
static fs_result connection_query(struct store *s, sqlite3_stmt *st,
                                  struct connection *out)
{
    int rc = sqlite3_step(st);
    fs_result r = FS_OK;

    if (rc == SQLITE_ROW)
        read_connection(st, out);
    else
        r = rc == SQLITE_DONE ? FS_ERR_NOT_FOUND : store_map_rc(rc);
    sqlite3_reset(st);
    if (r == FS_OK)
        r = load_secrets(s, out);
    if (r != FS_OK)
        connection_clear(out);
    return r;
}

fs_result store_connection_get(struct store *s, int64_t id,
                               struct connection *out)
{
    static const char sql[] =
        "SELECT " CONNECTION_COLUMNS " FROM connections WHERE id = ?1";
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    return connection_query(s, st, out);
}

fs_result store_connection_find_route(struct store *s, const char *provider,
                                      const char *account_id,
                                      const char *app_id,
                                      struct connection *out)
{
    static const char sql[] =
        "SELECT " CONNECTION_COLUMNS " FROM connections "
        "WHERE provider = ?1 AND account_id = ?2 "
        "AND (?3 IS NULL OR app_id IS NULL OR app_id = ?3) "
        "ORDER BY active DESC, id DESC LIMIT 1";
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    if (!provider || !account_id)
        return FS_ERR_NOT_FOUND;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    store_bind_text(st, 1, provider);
    store_bind_text(st, 2, account_id);
    store_bind_text(st, 3, app_id);
    return connection_query(s, st, out);
}

fs_result store_connection_for_org(struct store *s, int64_t org_id,
                                   struct connection *out)
{
    static const char sql[] =
        "SELECT " CONNECTION_COLUMNS " FROM connections "
        "WHERE org_id = ?1 AND active = 1 ORDER BY id DESC LIMIT 1";
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof(*out));
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, org_id);
    return connection_query(s, st, out);
}

void store_connections_free(struct connection *list, size_t n)
{
    for (size_t i = 0; i < n && list; i++)
        connection_clear(&list[i]);
    free(list);
}

fs_result store_connections_active(struct store *s, struct connection **out,
                                   size_t *n_out)
{
    static const char sql[] =
        "SELECT " CONNECTION_COLUMNS " FROM connections WHERE active = 1 "
        "ORDER BY id";
    sqlite3_stmt *st = NULL;
    struct connection *list = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    *n_out = 0;
    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        list = xrealloc(list, (n + 1) * sizeof(*list));
        memset(&list[n], 0, sizeof(list[n]));
        read_connection(st, &list[n++]);
    }
    sqlite3_reset(st);
    r = rc == SQLITE_DONE ? FS_OK : store_map_rc(rc);
    for (size_t i = 0; i < n && r == FS_OK; i++)
        r = load_secrets(s, &list[i]);
    if (r != FS_OK) {
        store_connections_free(list, n);
        return r;
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

fs_result store_connection_set_watermark(struct store *s, int64_t id,
                                         int64_t watermark)
{
    static const char sql[] =
        "UPDATE connections SET watermark = ?2 WHERE id = ?1";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, watermark);
    r = store_step_done(st);
    if (r == FS_OK && sqlite3_changes(s->db) == 0)
        r = FS_ERR_NOT_FOUND;
    return r;
}

fs_result store_connection_set_active(struct store *s, int64_t id, bool active)
{
    static const char sql[] =
        "UPDATE connections SET active = ?2 WHERE id = ?1";
    sqlite3_stmt *st = NULL;
    bool own = false;

    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;
    r = store_prepare(s, sql, &st);
    if (r == FS_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, active ? 1 : 0);
        r = store_step_done(st);
    }
    if (r == FS_OK && sqlite3_changes(s->db) == 0)
        r = FS_ERR_NOT_FOUND;
    /* Which connection is active decides which map the org's deals show. */
    if (r == FS_OK)
        r = store_stage_version_bump_for(s, id);
    return store_txn_leave(s, own, r);
}

fs_result store_connection_set_settings(struct store *s, int64_t id,
                                        const char *settings)
{
    static const char sql[] =
        "UPDATE connections SET settings = ?2 WHERE id = ?1";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    store_bind_text(st, 2, settings);
    r = store_step_done(st);
    if (r == FS_OK && sqlite3_changes(s->db) == 0)
        r = FS_ERR_NOT_FOUND;
    return r;
}

fs_result store_connection_set_app_id(struct store *s, int64_t id,
                                      const char *app_id)
{
    static const char sql[] = "UPDATE connections SET app_id = ?2 WHERE id = "
                              "?1";
    sqlite3_stmt *st = NULL;

    fs_result r = store_prepare(s, sql, &st);
    if (r != FS_OK)
        return r;
    sqlite3_bind_int64(st, 1, id);
    store_bind_text(st, 2, app_id);
    r = store_step_done(st);
    if (r == FS_OK && sqlite3_changes(s->db) == 0)
        r = FS_ERR_NOT_FOUND;
    return r;
}

fs_result store_connection_set_client_secret(struct store *s, int64_t id,
                                             const char *secret)
{
    if (!secret)
        return FS_ERR_INVALID;
    return put_secret(s, id, secret_client, secret);
}

fs_result store_connection_set_tokens(struct store *s, int64_t id,
                                      const char *access, const char *refresh,
                                      int64_t expires_at, int64_t refresh_at,
                                      const char *base_url)
{
    static const char sql[] =
        "UPDATE connections SET base_url = ?2 WHERE id = ?1";
    sqlite3_stmt *st = NULL;
    bool own = false;

    if (!access || !refresh)
        return FS_ERR_INVALID;
    fs_result r = store_txn_enter(s, &own);
    if (r != FS_OK)
        return r;
    r = put_tokens(s, id, access, refresh, expires_at, refresh_at);
    if (r == FS_OK && base_url) {
        r = store_prepare(s, sql, &st);
        if (r == FS_OK) {
            sqlite3_bind_int64(st, 1, id);
            store_bind_text(st, 2, base_url);
            r = store_step_done(st);
        }
    }
    return store_txn_leave(s, own, r);
}

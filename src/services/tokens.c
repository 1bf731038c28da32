/* The keeper's store: each load or save opens the database briefly (a
 * refresh comes every few minutes at most), so any thread or process may
 * call it, and a save commits with the store's default full flush. */
#include "services/tokens.h"

#include "base/alloc.h"
#include "store/store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static fs_result on_load(void *ctx, int64_t connection_id,
                         struct oauth_tokens *out)
{
    struct store *store = NULL;
    struct connection c = {0};

    memset(out, 0, sizeof(*out));
    fs_result r = store_open(ctx, &store);
    if (r == FS_OK)
        r = store_connection_get(store, connection_id, &c);
    if (r == FS_OK) {
        out->access_token = c.token;
        out->refresh_token = c.refresh_token;
        out->expires_at = c.token_expires_at;
        out->refresh_at = c.token_refresh_at;
        c.token = c.refresh_token = NULL;
    }
    connection_clear(&c);
    store_close(store);
    return r;
}

static fs_result on_save(void *ctx, int64_t connection_id,
                         const struct oauth_tokens *t)
{
    struct store *store = NULL;

    fs_result r = store_open(ctx, &store);
    if (r == FS_OK)
        r = store_connection_set_tokens(store, connection_id, t->access_token,
                                        t->refresh_token, t->expires_at,
                                        t->refresh_at, t->api_base);
    store_close(store);
    return r;
}

struct oauth_keeper *tokens_keeper_new(const char *db_path)
{
    struct oauth_store_ops ops = {
        .load = on_load,
        .save = on_save,
        .ctx = (void *)(uintptr_t)db_path,
    };
    return oauth_keeper_new(&ops);
}

void tokens_session_open(const struct connection *conn, long timeout_ms,
                         const char *db_path, struct provider_session *out)
{
    provider_session_open(conn, timeout_ms, out);
    out->tokens = tokens_keeper_new(db_path);
}

void tokens_session_close(struct provider_session *s)
{
    oauth_keeper_free(s->tokens);
    s->tokens = NULL;
    provider_session_close(s);
}

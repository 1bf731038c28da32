/* The steps of making a connection that talk to the CRM. */
#include "services/connect.h"

#include "base/alloc.h"
#include "providers/provider.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

fs_result connect_prepare(struct connection *c, long timeout_ms, char **error)
{
    const struct provider *p = provider_by_name(c->provider);
    struct provider_session session;
    char *settings = NULL;

    *error = NULL;
    if (!p)
        return FS_ERR_INVALID;
    if (!p->prepare)
        return FS_OK;
    provider_session_open(c, timeout_ms, &session);
    fs_result r = p->prepare(&session, &settings, error);
    provider_session_close(&session);
    if (r != FS_OK) {
        free(settings);
        return r;
    }
    free(*error);
    *error = NULL;
    free(c->settings);
    c->settings = settings;
    return FS_OK;
}

fs_result connect_register_webhook(struct store *s, struct connection *c,
                                   int64_t id, const char *public_url,
                                   long timeout_ms, char **target, char **error)
{
    const struct provider *p = provider_by_name(c->provider);
    struct provider_session session;
    char *secret = NULL;
    size_t len = strlen(public_url);

    *error = NULL;
    if (target)
        *target = NULL;
    if (!p || !p->register_webhook)
        return FS_ERR_INVALID;
    while (len > 0 && public_url[len - 1] == '/')
        len--;
    char *url = xasprintf("%.*s/webhooks/%s/%" PRId64, (int)len, public_url,
                          c->provider, id);
    c->id = id;
    provider_session_open(c, timeout_ms, &session);
    fs_result r = p->register_webhook(&session, url, &secret, error);
    provider_session_close(&session);
    if (r == FS_OK)
        r = store_connection_set_client_secret(s, id, secret);
    if (r == FS_OK) {
        free(c->client_secret);
        c->client_secret = secret;
        secret = NULL;
    }
    if (target)
        *target = url;
    else
        free(url);
    free(secret);
    return r;
}

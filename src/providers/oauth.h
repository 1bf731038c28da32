/* OAuth access tokens of CRM connections. A keeper holds each connection's
 * current access token for every thread of a process, refreshes it before
 * it expires with exactly one refresh in flight per connection (the other
 * callers go on with the old token while it is still valid, or wait for
 * the new one), keeps a refresh token the CRM rotated, and hands new
 * tokens to its owner to store durably before they are used. Providers
 * plug in one hook, provider.oauth_token, usually a call of
 * oauth_token_request with the CRM's URL and client authentication. */
#ifndef FIELDSYNC_PROVIDERS_OAUTH_H
#define FIELDSYNC_PROVIDERS_OAUTH_H

#include "base/result.h"
#include "providers/provider.h"

#include <stdint.h>

struct oauth_tokens {
    char *access_token;
    char *refresh_token;
    int64_t expires_at; /* epoch ms the access token stops working */
    int64_t refresh_at; /* epoch ms from which to refresh it */
    char *api_base;     /* the API root the CRM named with them (Pipedrive's
                         * api_domain), or NULL */
};

void oauth_tokens_clear(struct oauth_tokens *t);

/* Sets expires_at from the CRM's expires_in (seconds) and refresh_at
 * ahead of it: 5 minutes ahead for lifetimes of 20 minutes and more (so a
 * clock a few minutes off still refreshes in time), a quarter of the
 * lifetime ahead for shorter ones. */
void oauth_tokens_set_lifetime(struct oauth_tokens *t, int64_t now_ms,
                               int64_t expires_in_s);

/* What is exchanged at the token endpoint. */
struct oauth_grant {
    const char *type;         /* "refresh_token" or "authorization_code" */
    const char *value;        /* the refresh token or the code */
    const char *redirect_uri; /* authorization_code only */
};

/* How the token endpoint takes the client's credentials. */
enum oauth_client_auth {
    OAUTH_CLIENT_IN_BODY, /* client_id and client_secret form fields */
    OAUTH_CLIENT_BASIC,   /* Authorization: Basic base64(id:secret) */
};

/* Longest token or id taken from a token endpoint's answer. */
#define OAUTH_TOKEN_MAX_LEN 4096

/* One standard token request (RFC 6749 section 6): POSTs the grant
 * form-encoded to url with the client's credentials, not governed by the
 * API's rate budget. On success out holds the access token, its lifetime,
 * the refresh token (the grant's own when the answer has none) and
 * api_domain when given. FS_ERR_AUTH when the CRM refuses the grant or
 * the client (400 or 401; *error its message, never a token);
 * FS_ERR_RATE_LIMITED, FS_ERR_UNAVAILABLE or FS_ERR_TIMEOUT as for any
 * call; FS_ERR_REMOTE for an answer without a usable access token. */
fs_result oauth_token_request(struct provider_session *s, const char *url,
                              enum oauth_client_auth auth,
                              const char *client_id, const char *client_secret,
                              const struct oauth_grant *grant,
                              struct oauth_tokens *out, char **error);

/* Where a keeper keeps tokens durably. load reads a connection's stored
 * tokens (another process may have refreshed them); save stores new ones
 * (with api_base when set) and must not return before they are on disk.
 * exchange, when set, stands in for the provider's hook (tests). */
struct oauth_store_ops {
    fs_result (*load)(void *ctx, int64_t connection_id,
                      struct oauth_tokens *out);
    fs_result (*save)(void *ctx, int64_t connection_id,
                      const struct oauth_tokens *tokens);
    fs_result (*exchange)(void *ctx, struct provider_session *s,
                          const struct oauth_grant *grant,
                          struct oauth_tokens *out, char **error);
    void *ctx;
};

struct oauth_keeper;

struct oauth_keeper *oauth_keeper_new(const struct oauth_store_ops *ops);
void oauth_keeper_free(struct oauth_keeper *k);

/* The access token to call the CRM with (caller frees): the connection's
 * static token when it has no refresh token, else its OAuth access token,
 * refreshed first when due. A failed refresh is retried after a backoff
 * (1 s doubling to 60 s); meanwhile the old token serves while valid,
 * else the failure is returned (FS_ERR_AUTH: the CRM refused the refresh
 * token). FS_ERR_TIMEOUT when another thread's refresh outlasted the
 * session's timeout. */
fs_result oauth_keeper_token(struct oauth_keeper *k, struct provider_session *s,
                             char **token);

/* The CRM refused this access token (401): unless a newer one already
 * replaced it, the next call refreshes first. */
void oauth_keeper_rejected(struct oauth_keeper *k, int64_t connection_id,
                           const char *token);

/* Calls of the token endpoint this keeper made, successful or not. */
int64_t oauth_keeper_refreshes(struct oauth_keeper *k);

#endif

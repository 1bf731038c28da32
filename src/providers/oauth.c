/* The OAuth token keeper and the standard token request. */
#include "providers/oauth.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "providers/provider_call.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REFRESH_AHEAD_MS (5 * 60 * 1000)
#define LONG_LIFETIME_MS (20 * 60 * 1000)
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 60000
/* Longest lifetime believed: a year (a bigger expires_in is an error). */
#define LIFETIME_MAX_S (366 * 24 * 3600)

void oauth_tokens_clear(struct oauth_tokens *t)
{
    if (!t)
        return;
    free(t->access_token);
    free(t->refresh_token);
    free(t->api_base);
    memset(t, 0, sizeof(*t));
}

void oauth_tokens_set_lifetime(struct oauth_tokens *t, int64_t now_ms,
                               int64_t expires_in_s)
{
    int64_t life = expires_in_s * 1000;
    int64_t ahead = life >= LONG_LIFETIME_MS ? REFRESH_AHEAD_MS : life / 4;

    t->expires_at = now_ms + life;
    t->refresh_at = now_ms + life - ahead;
}

static void tokens_copy(struct oauth_tokens *to,
                        const struct oauth_tokens *from)
{
    oauth_tokens_clear(to);
    to->access_token = from->access_token ? xstrdup(from->access_token) : NULL;
    to->refresh_token =
        from->refresh_token ? xstrdup(from->refresh_token) : NULL;
    to->api_base = from->api_base ? xstrdup(from->api_base) : NULL;
    to->expires_at = from->expires_at;
    to->refresh_at = from->refresh_at;
}

/* ---- the token request ---- */

static void form_field(struct buf *b, const char *name, const char *value)
{
    if (!value)
        return;
    char *escaped = provider_url_escape(value);
    if (b->len > 0)
        buf_append(b, "&", 1);
    buf_append_str(b, name);
    buf_append(b, "=", 1);
    buf_append_str(b, escaped);
    free(escaped);
}

/* A string member within the token length limit, copied; NULL if not. */
static char *token_member(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    size_t len = v ? strlen(v) : 0;
    return len > 0 && len <= OAUTH_TOKEN_MAX_LEN ? xstrdup(v) : NULL;
}

/* expires_in as a number or numeric text; -1 when absent or bad. */
static int64_t expires_in_of(const json_t *obj)
{
    const json_t *v = json_object_get(obj, "expires_in");
    int64_t n = -1;

    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_string(v)) {
        char *end = NULL;
        long long parsed = strtoll(json_string_value(v), &end, 10);
        if (end != json_string_value(v) && *end == '\0')
            n = parsed;
    }
    return n > 0 && n <= LIFETIME_MAX_S ? n : -1;
}

/* The CRM's words for a refusal, from the usual members. */
static char *refusal_message(const json_t *body, long status)
{
    static const char *const keys[] = {"message", "error_description", "error",
                                       "status"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = json_string_value(json_object_get(body, keys[i]));
        if (v && *v)
            return xasprintf("%.200s", v);
    }
    return xasprintf("the token endpoint answered %ld", status);
}

static fs_result parse_token_answer(const struct http_client_response *resp,
                                    const struct oauth_grant *grant,
                                    struct oauth_tokens *out, char **error)
{
    json_t *body = json_loadb(resp->body.data ? resp->body.data : "",
                              resp->body.len, 0, NULL);
    fs_result result = FS_OK;

    if (resp->status == 429) {
        result = FS_ERR_RATE_LIMITED;
    } else if (resp->status >= 500 || resp->status < 100) {
        result = FS_ERR_UNAVAILABLE;
    } else if (resp->status >= 400) {
        result = FS_ERR_AUTH;
        *error = refusal_message(body, resp->status);
    } else {
        int64_t life = expires_in_of(body);
        out->access_token = token_member(body, "access_token");
        out->refresh_token = token_member(body, "refresh_token");
        out->api_base = token_member(body, "api_domain");
        if (!out->access_token || life < 0) {
            result = FS_ERR_REMOTE;
            *error = xstrdup("the token endpoint's answer has no access "
                             "token or lifetime");
        } else {
            oauth_tokens_set_lifetime(out, clock_now_ms(), life);
            if (!out->refresh_token && grant->type &&
                strcmp(grant->type, "refresh_token") == 0)
                out->refresh_token = xstrdup(grant->value);
        }
    }
    json_decref(body);
    if (result != FS_OK)
        oauth_tokens_clear(out);
    return result;
}

fs_result oauth_token_request(struct provider_session *s, const char *url,
                              enum oauth_client_auth auth,
                              const char *client_id, const char *client_secret,
                              const struct oauth_grant *grant,
                              struct oauth_tokens *out, char **error)
{
    struct buf form = {0};
    struct http_client_response resp = {0};
    char *basic = NULL;
    const char *headers[4] = {"Content-Type: application/x-www-form-urlencoded",
                              "Accept: application/json", NULL, NULL};

    memset(out, 0, sizeof(*out));
    *error = NULL;
    if (!grant->type || !grant->value || !client_id || !client_secret) {
        *error = xstrdup("the connection lacks an OAuth client or grant");
        return FS_ERR_AUTH;
    }
    form_field(&form, "grant_type", grant->type);
    form_field(&form,
               strcmp(grant->type, "authorization_code") == 0 ? "code"
                                                              : "refresh_token",
               grant->value);
    form_field(&form, "redirect_uri", grant->redirect_uri);
    if (auth == OAUTH_CLIENT_IN_BODY) {
        form_field(&form, "client_id", client_id);
        form_field(&form, "client_secret", client_secret);
    } else {
        char *pair = xasprintf("%s:%s", client_id, client_secret);
        char *b64 = crypto_base64((const uint8_t *)pair, strlen(pair));
        basic = xasprintf("Authorization: Basic %s", b64);
        headers[2] = basic;
        free(b64);
        free(pair);
    }

    long timeout =
        s->timeout_ms > 0 ? s->timeout_ms : PROVIDER_CALL_DEFAULT_TIMEOUT_MS;
    fs_result result = http_client_request(s->http, "POST", url, headers,
                                           form.data, form.len, timeout, &resp);
    if (result == FS_OK)
        result = parse_token_answer(&resp, grant, out, error);
    http_client_response_free(&resp);
    buf_free(&form);
    free(basic);
    return result;
}

/* ---- the keeper ---- */

struct keeper_entry {
    int64_t connection_id;
    struct oauth_tokens tokens;
    bool refreshing;  /* a thread is at the token endpoint */
    bool unsaved;     /* tokens the store has not taken yet */
    int failures;     /* refreshes failed in a row */
    int64_t retry_at; /* no refresh before this after a failure */
    fs_result last_result;
    struct keeper_entry *next;
};

struct oauth_keeper {
    struct oauth_store_ops ops;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct keeper_entry *entries;
    int64_t refreshes;
};

struct oauth_keeper *oauth_keeper_new(const struct oauth_store_ops *ops)
{
    struct oauth_keeper *k = xcalloc(1, sizeof(*k));
    pthread_condattr_t attr;

    if (ops)
        k->ops = *ops;
    pthread_mutex_init(&k->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&k->changed, &attr);
    pthread_condattr_destroy(&attr);
    return k;
}

void oauth_keeper_free(struct oauth_keeper *k)
{
    if (!k)
        return;
    while (k->entries) {
        struct keeper_entry *e = k->entries;
        k->entries = e->next;
        oauth_tokens_clear(&e->tokens);
        free(e);
    }
    pthread_cond_destroy(&k->changed);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

int64_t oauth_keeper_refreshes(struct oauth_keeper *k)
{
    pthread_mutex_lock(&k->lock);
    int64_t n = k->refreshes;
    pthread_mutex_unlock(&k->lock);
    return n;
}

/* The connection's entry, made from the connection's stored tokens on
 * first use. Called with the lock held. */
static struct keeper_entry *entry_for(struct oauth_keeper *k,
                                      const struct connection *conn)
{
    struct keeper_entry *e;

    for (e = k->entries; e; e = e->next) {
        if (e->connection_id == conn->id)
            return e;
    }
    e = xcalloc(1, sizeof(*e));
    e->connection_id = conn->id;
    e->tokens.access_token = conn->token ? xstrdup(conn->token) : NULL;
    e->tokens.refresh_token = xstrdup(conn->refresh_token);
    e->tokens.expires_at = conn->token_expires_at;
    e->tokens.refresh_at = conn->token_refresh_at;
    e->next = k->entries;
    k->entries = e;
    return e;
}

static bool same_text(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Tokens another process stored since ours (a newer access token still
 * fresh) are taken instead of refreshing; a refresh token it rotated is
 * the one to present. */
static bool take_stored(struct oauth_keeper *k, const struct connection *conn,
                        const struct oauth_tokens *ours,
                        struct oauth_tokens *out, char **grant_token)
{
    struct oauth_tokens stored = {0};

    if (!k->ops.load || k->ops.load(k->ops.ctx, conn->id, &stored) != FS_OK)
        return false;
    if (stored.access_token && stored.refresh_token &&
        !same_text(stored.access_token, ours->access_token) &&
        clock_now_ms() < stored.refresh_at) {
        *out = stored;
        return true;
    }
    if (stored.refresh_token &&
        !same_text(stored.refresh_token, ours->refresh_token)) {
        free(*grant_token);
        *grant_token = xstrdup(stored.refresh_token);
    }
    oauth_tokens_clear(&stored);
    return false;
}

static fs_result exchange(struct oauth_keeper *k, struct provider_session *s,
                          const char *refresh_token, struct oauth_tokens *out)
{
    const struct provider *p = provider_by_name(s->conn->provider);
    struct oauth_grant grant = {"refresh_token", refresh_token, NULL};
    char *error = NULL;
    fs_result r;

    pthread_mutex_lock(&k->lock);
    k->refreshes++;
    pthread_mutex_unlock(&k->lock);
    if (k->ops.exchange)
        r = k->ops.exchange(k->ops.ctx, s, &grant, out, &error);
    else if (p && p->oauth_token)
        r = p->oauth_token(s, &grant, out, &error);
    else
        r = FS_ERR_INVALID;
    if (r != FS_OK)
        log_warn("event=oauth_refresh_failed connection=%" PRId64 " result=%s",
                 s->conn->id, fs_result_name(r));
    free(error);
    return r;
}

/* One refresh, outside the lock: the stored tokens when another process
 * was first, else the token endpoint; then the store. */
static fs_result refresh(struct oauth_keeper *k, struct provider_session *s,
                         const struct oauth_tokens *ours,
                         struct oauth_tokens *out, bool *unsaved)
{
    const struct connection *conn = s->conn;
    char *grant_token = xstrdup(ours->refresh_token);
    fs_result r = FS_OK;

    *unsaved = false;
    if (take_stored(k, conn, ours, out, &grant_token)) {
        log_info("event=oauth_tokens_taken connection=%" PRId64 " source=store",
                 conn->id);
        free(grant_token);
        return FS_OK;
    }
    r = exchange(k, s, grant_token, out);
    if (r == FS_ERR_AUTH) {
        /* Another process may have rotated the refresh token meanwhile. */
        char *again = xstrdup(grant_token);
        if (take_stored(k, conn, ours, out, &again)) {
            r = FS_OK;
        } else if (!same_text(again, grant_token)) {
            r = exchange(k, s, again, out);
        }
        free(again);
    }
    free(grant_token);
    if (r != FS_OK)
        return r;

    bool rotated = !same_text(out->refresh_token, ours->refresh_token);
    if (k->ops.save && k->ops.save(k->ops.ctx, conn->id, out) != FS_OK) {
        *unsaved = true;
        log_error("event=oauth_tokens_unsaved connection=%" PRId64
                  " rotated=%d",
                  conn->id, rotated);
    }
    log_notice("event=oauth_refreshed connection=%" PRId64
               " expires_in_s=%" PRId64 " rotated=%d",
               conn->id, (out->expires_at - clock_now_ms() + 500) / 1000,
               rotated);
    return FS_OK;
}

static void wait_changed(struct oauth_keeper *k, int64_t deadline_mono)
{
    struct timespec until;
    int64_t left = deadline_mono - clock_mono_ms();

    clock_gettime(CLOCK_MONOTONIC, &until);
    if (left > 200)
        left = 200; /* look again soon: a failure may need our turn */
    until.tv_sec += left / 1000;
    until.tv_nsec += (left % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&k->changed, &k->lock, &until);
}

static int64_t retry_delay(int failures)
{
    int64_t delay = RETRY_FIRST_MS;
    for (int i = 1; i < failures && delay < RETRY_MAX_MS; i++)
        delay *= 2;
    return delay < RETRY_MAX_MS ? delay : RETRY_MAX_MS;
}

/* Stores tokens a failed save left in memory, outside the lock. */
static void resave(struct oauth_keeper *k, struct keeper_entry *e)
{
    struct oauth_tokens copy = {0};

    tokens_copy(&copy, &e->tokens);
    e->refreshing = true;
    pthread_mutex_unlock(&k->lock);
    fs_result r = k->ops.save(k->ops.ctx, e->connection_id, &copy);
    pthread_mutex_lock(&k->lock);
    e->refreshing = false;
    if (r == FS_OK)
        e->unsaved = false;
    pthread_cond_broadcast(&k->changed);
    oauth_tokens_clear(&copy);
}

fs_result oauth_keeper_token(struct oauth_keeper *k, struct provider_session *s,
                             char **token)
{
    const struct connection *conn = s->conn;
    long timeout =
        s->timeout_ms > 0 ? s->timeout_ms : PROVIDER_CALL_DEFAULT_TIMEOUT_MS;
    int64_t deadline = clock_mono_ms() + timeout;
    fs_result result = FS_OK;

    *token = NULL;
    if (!k || !conn->refresh_token) {
        *token = xstrdup(conn->token ? conn->token : "");
        return FS_OK;
    }
    pthread_mutex_lock(&k->lock);
    struct keeper_entry *e = entry_for(k, conn);
    for (;;) {
        int64_t now = clock_now_ms();
        bool valid = e->tokens.access_token && now < e->tokens.expires_at;

        if (valid && now < e->tokens.refresh_at) {
            if (e->unsaved && !e->refreshing && now >= e->retry_at) {
                e->retry_at = now + RETRY_FIRST_MS;
                resave(k, e);
            }
            break;
        }
        if (e->refreshing || now < e->retry_at) {
            if (valid)
                break; /* the old token serves until the new one is in */
            if (!e->refreshing) {
                result = e->last_result;
                break;
            }
            if (clock_mono_ms() >= deadline) {
                result = FS_ERR_TIMEOUT;
                break;
            }
            wait_changed(k, deadline);
            continue;
        }

        struct oauth_tokens ours = {0};
        struct oauth_tokens fresh = {0};
        bool unsaved = false;
        tokens_copy(&ours, &e->tokens);
        e->refreshing = true;
        pthread_mutex_unlock(&k->lock);
        fs_result r = refresh(k, s, &ours, &fresh, &unsaved);
        pthread_mutex_lock(&k->lock);
        e->refreshing = false;
        e->last_result = r;
        if (r == FS_OK) {
            oauth_tokens_clear(&e->tokens);
            e->tokens = fresh;
            e->unsaved = unsaved;
            e->failures = 0;
            e->retry_at = 0;
        } else {
            e->failures++;
            e->retry_at = clock_now_ms() + retry_delay(e->failures);
        }
        oauth_tokens_clear(&ours);
        pthread_cond_broadcast(&k->changed);
    }
    if (result == FS_OK)
        *token = xstrdup(e->tokens.access_token);
    pthread_mutex_unlock(&k->lock);
    return result;
}

void oauth_keeper_rejected(struct oauth_keeper *k, int64_t connection_id,
                           const char *token)
{
    if (!k || !token)
        return;
    pthread_mutex_lock(&k->lock);
    for (struct keeper_entry *e = k->entries; e; e = e->next) {
        if (e->connection_id == connection_id &&
            same_text(e->tokens.access_token, token)) {
            e->tokens.expires_at = 0;
            e->tokens.refresh_at = 0;
        }
    }
    pthread_mutex_unlock(&k->lock);
}

/* Governed HTTP calls to a CRM, shared by the providers. */
#include "providers/provider_call.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "providers/oauth.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <stdlib.h>

/* Longest single sleep while waiting for budget, so a waiting thread
 * notices a freed slot soon. */
#define ACQUIRE_STEP_MS 50

static long session_timeout(const struct provider_session *s)
{
    return s->timeout_ms > 0 ? s->timeout_ms : PROVIDER_CALL_DEFAULT_TIMEOUT_MS;
}

fs_result provider_call_acquire(struct provider_session *s,
                                const struct call_cost *cost)
{
    static const struct call_cost one_read = {CALL_READ, 1};
    int64_t deadline;

    if (!cost)
        cost = &one_read;
    struct rate_governor *gov = provider_session_governor(s, cost->cls);
    if (!gov)
        return FS_OK;
    deadline = clock_mono_ms() + session_timeout(s);
    for (;;) {
        int64_t wait = rate_governor_try_acquire_units(
            gov, 1, cost->daily_units, clock_now_ms());
        if (wait == 0)
            return FS_OK;

        int64_t left = deadline - clock_mono_ms();
        if (wait > left)
            return FS_ERR_RATE_LIMITED;
        clock_sleep_ms(wait < ACQUIRE_STEP_MS ? wait : ACQUIRE_STEP_MS);
    }
}

/* What an answer means for the provider: 429 and 5xx are results of
 * their own, anything else is for the provider to read. */
static fs_result answer_result(fs_result sent,
                               const struct http_client_response *resp)
{
    if (sent != FS_OK)
        return sent;
    if (resp->status == 429)
        return FS_ERR_RATE_LIMITED;
    if (resp->status >= 500 || resp->status < 100)
        return FS_ERR_UNAVAILABLE;
    return FS_OK;
}

fs_result provider_call_send(struct provider_session *s,
                             const struct call_cost *cost, const char *method,
                             const char *url, const char *const *headers,
                             const char *body, size_t body_len,
                             struct http_client_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    fs_result result = provider_call_acquire(s, cost);
    if (result != FS_OK)
        return result;

    result = http_client_request(s->http, method, url, headers, body, body_len,
                                 session_timeout(s), resp);
    return answer_result(result, resp);
}

void provider_call_send_many(struct provider_session *s,
                             const struct call_cost *cost,
                             struct http_client_call *calls, size_t n,
                             size_t max_parallel)
{
    size_t ready = 0;

    while (ready < n && provider_call_acquire(s, cost) == FS_OK)
        ready++;
    for (size_t i = ready; i < n; i++) {
        memset(&calls[i].resp, 0, sizeof(calls[i].resp));
        calls[i].result = FS_ERR_RATE_LIMITED;
    }
    http_client_request_many(s->http, calls, ready, max_parallel,
                             session_timeout(s));
    for (size_t i = 0; i < ready; i++)
        calls[i].result = answer_result(calls[i].result, &calls[i].resp);
}

fs_result provider_status_result(long status)
{
    if (status >= 200 && status < 300)
        return FS_OK;
    switch (status) {
    case 400:
    case 422:
        return FS_ERR_INVALID;
    case 401:
        return FS_ERR_AUTH;
    case 403:
        return FS_ERR_FORBIDDEN;
    case 404:
        return FS_ERR_NOT_FOUND;
    case 409:
        return FS_ERR_CONFLICT;
    case 429:
        return FS_ERR_RATE_LIMITED;
    default:
        return status >= 500 ? FS_ERR_UNAVAILABLE : FS_ERR_REMOTE;
    }
}

fs_result provider_access_token(struct provider_session *s, char **token)
{
    return oauth_keeper_token(s->tokens, s, token);
}

void provider_token_rejected(struct provider_session *s, const char *token)
{
    oauth_keeper_rejected(s->tokens, s->conn->id, token);
}

int provider_header_int(const struct http_client_response *resp,
                        const char *name, int fallback)
{
    char *value = http_client_response_header(resp, name);
    char *end = NULL;
    long v;
    int result = fallback;

    if (!value)
        return fallback;
    errno = 0;
    v = strtol(value, &end, 10);
    if (errno == 0 && end != value && *end == '\0' && v >= INT_MIN &&
        v <= INT_MAX)
        result = (int)v;
    free(value);
    return result;
}

char *provider_url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    struct buf b = {0};

    buf_append(&b, "", 0);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            buf_append(&b, p, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(&b, esc, 3);
        }
    }
    return buf_steal(&b);
}

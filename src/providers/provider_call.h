/* One governed HTTP call to a CRM: wait for the connection's rate budget,
 * send, and turn transport failures, 429s and 5xx into results. Shared by
 * every provider. */
#ifndef FIELDSYNC_PROVIDERS_PROVIDER_CALL_H
#define FIELDSYNC_PROVIDERS_PROVIDER_CALL_H

#include "base/result.h"
#include "net/http_client.h"
#include "providers/provider.h"

#include <stddef.h>

/* Used when a session carries no timeout of its own. */
#define PROVIDER_CALL_DEFAULT_TIMEOUT_MS 30000

/* What one call spends: its class, and the daily units it costs (one for
 * most CRMs; the endpoint's token cost on Pipedrive). */
struct call_cost {
    enum call_class cls;
    int daily_units;
};

/* Waits (in short sleeps) until the session's governor for the class lets
 * the call out. FS_ERR_RATE_LIMITED when that would take longer than the
 * session's timeout. A session without a governor goes at once. */
fs_result provider_call_acquire(struct provider_session *s,
                                const struct call_cost *cost);

/* Acquires, then sends. headers is a NULL-terminated "Name: value" list.
 * Returns FS_OK for any answer the provider should interpret itself
 * (2xx, 4xx but 429), FS_ERR_RATE_LIMITED for 429, FS_ERR_UNAVAILABLE for
 * 5xx or no connection, FS_ERR_TIMEOUT when no answer came in time. resp
 * holds whatever answer arrived in every case; the caller frees it. A
 * NULL cost is a read costing one unit. */
fs_result provider_call_send(struct provider_session *s,
                             const struct call_cost *cost, const char *method,
                             const char *url, const char *const *headers,
                             const char *body, size_t body_len,
                             struct http_client_response *resp);

/* Sends a set of calls at once, at most max_parallel in flight, each taking
 * its budget first as provider_call_send does (calls past a budget that
 * stays spent beyond the session's timeout are not sent and end
 * FS_ERR_RATE_LIMITED). Each call's result is as provider_call_send's. */
void provider_call_send_many(struct provider_session *s,
                             const struct call_cost *cost,
                             struct http_client_call *calls, size_t n,
                             size_t max_parallel);

/* The result a CRM's HTTP status stands for where the CRM gives it no
 * meaning of its own: 2xx FS_OK, 400/422 invalid, 401 auth, 403
 * forbidden, 404 not found, 409 conflict, 429 rate limited, 5xx
 * unavailable, anything else remote. */
fs_result provider_status_result(long status);
/* The access token for the session's next call (caller frees): from the
 * session's OAuth keeper, refreshed first when due, or the connection's
 * static token. */
fs_result provider_access_token(struct provider_session *s, char **token);
/* After a 401 to a call made with token: an OAuth connection refreshes
 * before its next call. */
void provider_token_rejected(struct provider_session *s, const char *token);

/* A response header as an int, or fallback when absent or not a number. */
int provider_header_int(const struct http_client_response *resp,
                        const char *name, int fallback);

/* Percent-encodes everything but unreserved characters (RFC 3986), for a
 * path segment or a query value. The caller frees. */
char *provider_url_escape(const char *s);

#endif

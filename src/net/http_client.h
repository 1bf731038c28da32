/* A blocking HTTP client over libcurl, one per thread, reusing connections
 * to the same host between calls; one request at a time, or several at
 * once. */
#ifndef FIELDSYNC_NET_HTTP_CLIENT_H
#define FIELDSYNC_NET_HTTP_CLIENT_H

#include "base/buf.h"
#include "base/result.h"

#include <stddef.h>

struct http_client;

struct http_client_response {
    long status; /* 0 when no answer arrived */
    struct buf body;
    struct buf headers; /* raw "Name: value\r\n" lines of the last answer */
};

struct http_client *http_client_new(void);
/* Trusts the certificates in this PEM file for HTTPS instead of the
 * system's (a private CA, a test's self-signed server). Process-wide; set
 * it before any client is used. NULL goes back to the system's. */
void http_client_set_ca_file(const char *path);
void http_client_free(struct http_client *client);

/* Sends one request. headers is a NULL-terminated list of "Name: value"
 * strings (may be NULL). Returns FS_OK when any HTTP answer arrived (check
 * status), FS_ERR_TIMEOUT or FS_ERR_UNAVAILABLE when none did. */
fs_result http_client_request(struct http_client *client, const char *method,
                              const char *url, const char *const *headers,
                              const char *body, size_t body_len,
                              long timeout_ms,
                              struct http_client_response *out);

/* One request of a set sent at once; result and resp are filled in as
 * http_client_request fills them. */
struct http_client_call {
    const char *method;
    const char *url;
    const char *const *headers;
    const char *body;
    size_t body_len;
    fs_result result;
    struct http_client_response resp;
};

/* Sends the calls concurrently, at most max_parallel in flight, and
 * returns when every one has its answer or has failed (CRMs without a
 * batch write take one request per record; sent one after the other they
 * would be bound by the round trip rather than by the CRM's budget). */
void http_client_request_many(struct http_client *client,
                              struct http_client_call *calls, size_t n,
                              size_t max_parallel, long timeout_ms);

/* A response header's value (case-insensitive name), copied; NULL when
 * absent. The caller frees. */
char *http_client_response_header(const struct http_client_response *resp,
                                  const char *name);
void http_client_response_free(struct http_client_response *resp);

#endif

/* HTTP calls and polling for integration tests: one request in, status,
 * headers and parsed JSON out; wait for a condition with a deadline. */
#ifndef FIELDSYNC_TESTS_HTTP_TEST_H
#define FIELDSYNC_TESTS_HTTP_TEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per-request timeout of these helpers. */
#define HTTP_TEST_TIMEOUT_MS 30000

struct http_test_response {
    long status; /* 0 when no answer arrived */
    char *body;  /* NUL-terminated, never NULL after a call */
    size_t body_len;
    char *headers; /* raw "Name: value\r\n" lines */
    json_t *json;  /* the body parsed, or NULL when it is not JSON */
};

/* Sends one request. headers is a NULL-terminated list of "Name: value"
 * strings or NULL; body may be NULL. Returns true when an answer arrived.
 * Free out with http_test_response_free even on false. */
bool http_test_request(const char *method, const char *url,
                       const char *const *headers, const char *body,
                       struct http_test_response *out);

/* Sends body (a JSON value, may be NULL) with Content-Type application/json
 * and returns the parsed answer (caller decrefs) or NULL; *status gets the
 * HTTP status (0 when none). */
json_t *http_test_json(const char *method, const char *url,
                       const char *const *headers, const json_t *body,
                       long *status);

/* A response header's value (case-insensitive), copied; NULL when absent. */
char *http_test_header(const struct http_test_response *resp, const char *name);
void http_test_response_free(struct http_test_response *resp);

/* Calls cond every few ms until it returns true (returns true) or
 * timeout_ms passes (returns false). Never use sleeps instead. */
bool http_test_poll(bool (*cond)(void *ctx), void *ctx, int64_t timeout_ms);

#endif

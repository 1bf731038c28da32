/* What every JSON API handler under /api/v1 shares: the call (request,
 * response, a store connection, the authenticated user), errors answered
 * and logged once, and the route tables the modules contribute. */
#ifndef FIELDSYNC_SERVICES_API_CALL_H
#define FIELDSYNC_SERVICES_API_CALL_H

#include "base/result.h"
#include "net/http_server.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct app;

/* Longest id accepted in a path segment. */
#define API_ID_MAX_LEN 64
#define API_MAX_DEPTH 8     /* JSON nesting of a request body */
#define API_MAX_STRING 4096 /* bytes of one JSON string or key */
/* Attempts of a transaction that found the database busy, and how long
 * after the first they may still begin. */
#define API_TXN_ATTEMPTS 4
#define API_TXN_RETRY_MS 1000

struct api_call {
    struct app *app;
    const struct http_request *req;
    struct http_response *resp;
    struct store *store; /* a handler that outlives the call releases it
                          * and sets it NULL */
    struct user user;
    bool authed;
    const struct stage_map *stages; /* see api_stages */
};

/* A client error being built: the HTTP status, a stable code, the
 * offending field or parameter (or NULL) and a message. */
struct api_error {
    int status;
    const char *code;
    char *field;
    char *message;
};

void api_error_clear(struct api_error *err);
/* Fills err (freeing what it held) with a formatted message. */
void api_error_set(struct api_error *err, int status, const char *code,
                   const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Answers with the error and logs it once at info (client errors) or
 * error (server failures). */
void api_fail(struct api_call *c, int status, const char *code,
              const char *field, const char *message);
void api_fail_with(struct api_call *c, const struct api_error *err);
/* A store failure: busy means come back shortly, anything else is ours. */
void api_fail_store(struct api_call *c, fs_result r);
/* Whether to make attempt (from 0) of a transaction begun at started_ms
 * (clock_mono_ms) whose last attempt found the database busy: a busy lost
 * to another thread's commit comes soon and is tried again; a lock held
 * for the store's whole busy wait (another process's transaction) is
 * answered 503 at once rather than waited out again, past the rep's
 * client's patience. */
bool api_txn_again(int attempt, int64_t started_ms);
/* Answers with obj (taken) as the body. */
void api_respond(struct api_call *c, int status, json_t *obj);

/* Walks the query part of raw_url: each parameter must be one of
 * names[0..n) and given once, its percent-encoding well formed; else a
 * 400 (unknown_param, invalid_param) naming it. each (may be NULL) gets
 * the index in names and the decoded value of each one (taken), and may
 * fail with err filled. */
typedef fs_result (*api_query_fn)(size_t which, char *value, void *ctx,
                                  struct api_error *err);
fs_result api_query_each(const char *raw_url, const char *const *names,
                         size_t n, api_query_fn each, void *ctx,
                         struct api_error *err);
/* The same for a handler: answers the error and returns false unless
 * every parameter of the request is one of names (a NULL-terminated
 * list). */
bool api_query_only(struct api_call *c, const char *const *names);

/* The caller's org's stage map, from the cache, held until the call
 * ends; NULL when it cannot be read. */
const struct stage_map *api_stages(struct api_call *c);

bool api_is_admin(const struct api_call *c);
/* Answers 403 and returns false unless the caller is an admin. */
bool api_require_admin(struct api_call *c);

/* Parses the request body as a JSON object within the API's limits (depth,
 * string length); answers the error and returns NULL otherwise. */
json_t *api_body_object(struct api_call *c);

/* The pure part of it: *out is the object, or err says why not. */
fs_result api_json_parse_object(const char *body, size_t len, json_t **out,
                                struct api_error *err);

/* One endpoint. A path ending in "/{id}" takes one id segment, handed to
 * the handler (NULL otherwise). */
struct api_route {
    const char *path;
    const char *methods; /* "GET, PATCH": the Allow header */
    void (*handle)(struct api_call *c, const char *id);
};

/* Answers any request whose path starts with /api/v1, from the route
 * tables of every API module. */
void api_handle(struct app *app, const struct http_request *req,
                struct http_response *resp);

#endif

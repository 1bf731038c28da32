/* Small helpers every simulator module uses: a seeded random stream for
 * the fault dice, random UUIDs, request paths split into segments and
 * JSON replies. */
#ifndef FIELDSYNC_SIM_SIM_UTIL_H
#define FIELDSYNC_SIM_SIM_UTIL_H

#include "net/http_server.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most path segments looked at. */
#define SIM_PATH_MAX_SEGMENTS 10

/* SplitMix64: the next number of the stream whose state is *state. */
uint64_t sim_rng_next(uint64_t *state);
/* A number in [0, 1) from the stream. */
double sim_rng_unit(uint64_t *state);
/* A random (version 4) UUID in lower-case text. The caller frees. */
char *sim_uuid_new(void);

/* A request path split at '/', empty segments skipped. */
struct sim_path {
    char *copy;
    char *seg[SIM_PATH_MAX_SEGMENTS];
    size_t count;
};

void sim_path_split(struct sim_path *p, const char *path);
void sim_path_free(struct sim_path *p);
/* True when segment i exists and is s. */
bool sim_path_is(const struct sim_path *p, size_t i, const char *s);

/* True when the request carries "Authorization: Bearer <token>" (the
 * scheme in any case; the token compared in constant time). */
bool sim_bearer_ok(const struct http_request *req, const char *token);

/* Answers obj (consumed) as compact JSON, keys in insertion order. */
void sim_reply(struct http_response *resp, int status, json_t *obj);

#endif

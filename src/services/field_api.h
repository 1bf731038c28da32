/* The field API under /api/v1: deals (list, read, edit, create), sync
 * status and retry, the live event stream and the caller's own user. Reps
 * and admins authenticate with bearer tokens; everything is scoped to the
 * token's org. */
#ifndef FIELDSYNC_SERVICES_FIELD_API_H
#define FIELDSYNC_SERVICES_FIELD_API_H

#include "base/result.h"
#include "model/deal.h"
#include "services/api_call.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The deal, sync and live stream endpoints under /api/v1. */
extern const struct api_route field_api_routes[];
extern const size_t field_api_route_count;

/* ---- the pure parts, exposed for tests ---- */

#define FIELD_API_MAX_FIELDS 32     /* entries in "fields" */
#define FIELD_API_DEFAULT_LIMIT 100 /* deals per page */
#define FIELD_API_MAX_LIMIT 1000
#define FIELD_API_MAX_PARAM 255 /* bytes of a query value */

/* GET /api/v1/deals query parameters. */
struct field_api_query {
    char *owner;           /* NULL: any */
    char *stage;           /* NULL: any */
    int64_t updated_since; /* 0: any */
    int limit;
    char *cursor; /* NULL: from the start */
    bool include_deleted;
    bool has_bbox;  /* bbox=min_lng,min_lat,max_lng,max_lat: only deals */
    double bbox[4]; /* whose point (location or postcode centroid) is in */
};

void field_api_query_clear(struct field_api_query *q);
/* Parses the query part of raw_url. Unknown, repeated or malformed
 * parameters are 400 errors naming the parameter. */
fs_result field_api_parse_query(const char *raw_url,
                                struct field_api_query *out,
                                struct api_error *err);

/* A validated edit body: {"fields":{...},"client_time"?:ms}. */
struct field_api_edit {
    bool set[DEAL_FIELD_COUNT];
    char *values[DEAL_FIELD_COUNT]; /* canonical; NULL clears the field */
    size_t count;                   /* fields set */
    int64_t client_time;            /* 0: none */
};

void field_api_edit_clear(struct field_api_edit *edit);
/* Parses and canonicalises a whole edit before anything is written:
 * depth, sizes, keys, field names, JSON types and values. */
fs_result field_api_parse_edit(const char *body, size_t len,
                               struct field_api_edit *out,
                               struct api_error *err);

#endif

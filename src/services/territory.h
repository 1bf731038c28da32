/* Territory reassignment: a change to an org's territories (an import, an
 * edit, a delete) worked out over every live deal, previewed or applied in
 * one transaction; a deal placed again when its address changes; and the
 * lookup each org's deals are placed with, built once and rebuilt when
 * its territories or centroids change. An owner change made here is an
 * ordinary local edit of the owner field, so the pusher takes it to the
 * CRM in batches within the rate budget. */
#ifndef FIELDSYNC_SERVICES_TERRITORY_H
#define FIELDSYNC_SERVICES_TERRITORY_H

#include "base/result.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TERRITORY_MAX_IMPORT_BYTES (64u << 20) /* a GeoJSON or CSV file */
#define TERRITORY_MAX_FEATURES 20000           /* features of one import */
#define TERRITORY_MAX_PER_ORG 10000
#define TERRITORY_MAX_DEPTH 16          /* JSON nesting of a change */
#define TERRITORY_MAX_CENTROIDS 3000000 /* rows of one centroid file */
#define TERRITORY_MAX_PROPERTY 200      /* bytes of a property value */
/* Deals whose move is published one by one on the live stream; a larger
 * change publishes one territories.reassigned event instead. */
#define TERRITORY_LIVE_DETAIL_MAX 2000

/* A client error: HTTP status, a stable code, the field at fault. */
struct territory_error {
    int status;
    const char *code;
    char *field;
    char *message;
};

void territory_error_clear(struct territory_error *e);
/* Fills *e (freeing what it held, taking field) and returns
 * FS_ERR_INVALID. */
fs_result territory_error_set(struct territory_error *e, int status,
                              const char *code, char *field, const char *fmt,
                              ...) __attribute__((format(printf, 5, 6)));

/* One territory as a change gives it; unset parts keep their value. */
struct territory_input {
    int64_t id; /* an edit of this territory; 0: matched by name or new */
    char *name;
    bool has_owner;
    int64_t owner_user; /* a user id, or 0 with owner_text */
    char *owner_text;   /* a user's email or name */
    bool has_priority;
    int priority;
    bool has_postcodes;
    char **postcodes; /* canonical */
    size_t n_postcodes;
    bool has_geometry;
    json_t *geometry; /* NULL (with has_geometry): cleared */
    char *where;      /* the input's place in the request, "features[3]" */
    size_t *polygon_feature; /* import: the feature of each polygon */
    size_t n_polygons;
};

struct territory_change {
    struct territory_input *inputs;
    size_t n_inputs;
    int64_t *deletes;
    size_t n_deletes;
    bool replace; /* the org's territories become exactly the inputs */
    bool repair;  /* close open rings and make invalid polygons valid */
    bool create;  /* the inputs are new territories: a name another
                   * territory has is a 409, never an edit of it */
};

void territory_change_clear(struct territory_change *c);

/* A GeoJSON FeatureCollection, one feature per territory (properties
 * name, owner, priority, postcodes), or with group_by many features per
 * territory: those with the same value of that property form one, whose
 * polygons are all of theirs (owner, priority and postcodes given on any
 * of them, the same wherever given). */
fs_result territory_parse_import(const char *body, size_t len,
                                 const char *group_by,
                                 struct territory_change *out,
                                 struct territory_error *err);
/* One territory as JSON {name, owner, priority, postcodes, geometry}: a
 * new one (id 0, with create set) or an edit of territory id. */
fs_result territory_parse_one(const char *body, size_t len, int64_t id,
                              struct territory_change *out,
                              struct territory_error *err);

/* A deal whose owner a change gives to someone else. */
struct territory_move {
    char *deal_id;
    char *from_owner; /* may be NULL */
    char *to_owner;
    int64_t from_territory; /* 0: none */
    int64_t to_territory;
};

struct territory_plan {
    char *provider;                /* whose owner ids the owners resolve to */
    struct territory *territories; /* the org's territories after it
                                    * (name, owner, priority only) */
    size_t n_territories;
    struct territory_move *moves; /* in the store's order */
    size_t n_moves;
    size_t deals;       /* live deals looked at */
    size_t by_postcode; /* placed by a postcode rule */
    size_t by_polygon;  /* placed by a polygon */
    size_t replaced;    /* whose territory or point changes, moves too */
    size_t unresolved;  /* in a territory whose owner has no owner id with
                         * the provider: the owner is kept */
    char **unplaced;    /* ids of deals in no territory: owner kept */
    size_t n_unplaced;
    char **repairs; /* "features[3].geometry: ..." for each repair */
    size_t n_repairs;
};

void territory_plan_clear(struct territory_plan *p);

/* Works the change out over every live deal of the org. Without apply
 * nothing is written: the plan is what apply would do. With apply, in one
 * transaction: territories written, each moved deal's owner set by a
 * local edit, every deal's placement (territory, point) written, the
 * revision bumped, one audit entry. A deal is reassigned when it lands in
 * a territory other than the one it was in, or its territory's owner
 * changes; a deal whose owner was edited by hand stays with that owner
 * otherwise. A deal in no territory keeps its owner and is listed.
 * Client errors come back as FS_ERR_INVALID with *err filled. */
fs_result territory_change_run(struct store *s, int64_t org_id,
                               const struct territory_change *change,
                               bool apply, struct territory_plan *plan,
                               struct territory_error *err);

/* The one hook for a deal whose postcode or location may have changed,
 * from either side: when either differs from what is stored (r->rowid 0:
 * a new deal with either set) the deal is placed again and, when it lands
 * in a territory, takes that territory's owner by a local edit at now.
 * Then saves it (store_record_save). *moved (may be NULL) says whether
 * the owner changed. Inside the caller's transaction. */
fs_result territory_save_deal(struct store *s, struct record *r, int64_t now,
                              bool *moved);

/* Parses a centroid CSV: a header naming a postcode, sector or district
 * column and latitude and longitude columns, then one row each. The
 * postcodes in *out are canonical (caller frees each and the array).
 * Bad rows are a 422 naming the line. */
fs_result territory_parse_centroids(const char *text, size_t len,
                                    struct store_centroid **out, size_t *n_out,
                                    struct territory_error *err);
void territory_centroids_free(struct store_centroid *list, size_t n);
/* Adds the centroids to the org's table (replacing it first when
 * replace) and bumps the revision. Deals are placed with them from the
 * next change or reassignment on. */
fs_result territory_load_centroids(struct store *s, int64_t org_id,
                                   const struct store_centroid *list, size_t n,
                                   bool replace);

struct live_stream;
struct stage_cache;
/* Publishes an applied plan: each moved deal as deal.updated (up to
 * TERRITORY_LIVE_DETAIL_MAX), else one territories.reassigned event. */
void territory_announce(struct store *s, struct live_stream *live,
                        struct stage_cache *stages, int64_t org_id,
                        const struct territory_plan *plan);

/* Forgets every org's cached lookup (at shutdown). */
void territory_cache_clear(void);

#endif

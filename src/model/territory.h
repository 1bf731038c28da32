/* Territory lookup: which territory a deal's postcode or point falls in.
 * Postcode rules are matched on the postcode's prefixes; polygons (GeoJSON
 * Polygon or MultiPolygon, WGS84) through GEOS prepared geometries in an
 * STRtree. Pure: no I/O. An index is built once and then only read; it is
 * not safe to use from two threads at once. */
#ifndef FIELDSYNC_MODEL_TERRITORY_H
#define FIELDSYNC_MODEL_TERRITORY_H

#include "base/result.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on a territory's definition. */
#define TERRITORY_MAX_NAME 200         /* bytes of a name */
#define TERRITORY_MAX_POSTCODES 20000  /* postcode rules of one territory */
#define TERRITORY_MAX_POLYGONS 10000   /* polygons of one territory */
#define TERRITORY_MAX_RING 100000      /* positions of one ring */
#define TERRITORY_MAX_VERTICES 1000000 /* positions of one territory */
#define TERRITORY_PRIORITY_MAX 1000000 /* priorities are -MAX..MAX */

/* A problem with one territory's definition: where (a path inside the
 * geometry, e.g. "coordinates[2][0]", or NULL) and why. The result code
 * says which kind: FS_ERR_INVALID for a malformed or invalid geometry,
 * FS_ERR_TOO_LARGE past a limit. */
struct territory_problem {
    char *where;
    char *message;
    json_t *repaired; /* after a repair: the geometry as added, a GeoJSON
                       * MultiPolygon, to be kept instead of the one
                       * given */
};

void territory_problem_clear(struct territory_problem *p);

/* How a point or postcode was placed. */
enum territory_how {
    TERRITORY_NONE = 0, /* in no territory */
    TERRITORY_BY_POSTCODE,
    TERRITORY_BY_POLYGON,
};

struct territory_match {
    int64_t id; /* 0 when in none */
    enum territory_how how;
};

struct territory_index;

struct territory_index *territory_index_new(void);
void territory_index_free(struct territory_index *ix);

/* Adds territory id (> 0, unique in the index) with its priority, its
 * postcode rules (canonical postcodes or prefixes, as postcode_normalize
 * gives them) and its geometry (a GeoJSON geometry object, or NULL). The
 * geometry is checked whole (types, ranges, closed rings, limits, GEOS
 * validity) before anything is kept: on an error nothing of the
 * territory is added and *problem says what. With repair, a ring that
 * does not end where it starts is closed and an invalid polygon is
 * replaced by GEOS's valid version of it (GEOSMakeValid); the territory
 * is then added (FS_OK) and *problem says what was repaired and where
 * the first repair was, with the repaired geometry. Not after build. */
fs_result territory_index_add(struct territory_index *ix, int64_t id,
                              int priority, const char *const *postcodes,
                              size_t n_postcodes, const json_t *geometry,
                              bool repair, struct territory_problem *problem);

/* Prepares the geometries and builds the STRtree; call once, after the
 * last add. */
fs_result territory_index_build(struct territory_index *ix);

/* Where a deal belongs. A postcode rule matches before polygons: the
 * territories with a rule on any prefix of postcode (canonical, may be
 * NULL) are ranked by priority (higher first), then by the longer rule,
 * then by the lower id. Else the territories whose polygons cover the
 * point (boundary included, so a point on an edge two territories share
 * is covered by both) are ranked by priority, then lower id. */
struct territory_match territory_index_find(struct territory_index *ix,
                                            const char *postcode,
                                            bool has_point, double lat,
                                            double lng);

/* The same placement of a point with neither the STRtree nor prepared
 * geometries: every polygon tested in turn. The reference the indexed
 * lookup is checked and measured against. */
struct territory_match territory_index_find_linear(struct territory_index *ix,
                                                   double lat, double lng);

/* Counts, for logs and tests. */
size_t territory_index_polygons(const struct territory_index *ix);
size_t territory_index_territories(const struct territory_index *ix);

/* ---- postcode centroids ---- */

/* Postcode centroids (units, sectors, districts or ZIPs), so a deal with
 * a postcode and no coordinates gets a point. */
struct centroid_table;

struct centroid_table *centroid_table_new(void);
void centroid_table_free(struct centroid_table *t);
/* Adds one centroid; postcode canonical. A later add of the same postcode
 * replaces the earlier one. */
void centroid_table_add(struct centroid_table *t, const char *postcode,
                        double lat, double lng);
/* The centroid of the most specific prefix of postcode (canonical) the
 * table has: the unit, else its sector, else its district. False when
 * none (an area alone is too coarse to place a deal). */
bool centroid_table_find(struct centroid_table *t, const char *postcode,
                         double *lat, double *lng);
size_t centroid_table_size(const struct centroid_table *t);

#endif

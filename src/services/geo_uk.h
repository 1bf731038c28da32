/* The shared UK postcode files as the demo, the bench and the tests use
 * them: the 2,736 district polygons dealt out to territories, one owner
 * each. */
#ifndef FIELDSYNC_SERVICES_GEO_UK_H
#define FIELDSYNC_SERVICES_GEO_UK_H

#include "base/result.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Reads the districts FeatureCollection (properties district, area) and
 * gives every feature the properties territory ("Territory 07") and owner
 * (owners[k]) of territory k. Territories are made of whole local
 * authorities (each postcode district's admin district in the district
 * centroids CSV): the authorities in alphabetical order are dealt in
 * contiguous blocks to the n territories, so a city's neighbouring
 * boroughs (Manchester, Salford, Trafford, ...) mostly fall in different
 * territories. A district the CSV does not know goes with its postcode
 * area's first district that it does. *out is the collection (caller
 * decrefs). */
fs_result geo_uk_territories(const char *districts_path,
                             const char *centroids_path,
                             const char *const *owners, size_t n, json_t **out);

/* Gives every district of territory `from` to territory k with its
 * owner; returns how many. */
size_t geo_uk_move_territory(json_t *collection, const char *from, size_t k,
                             const char *owner);

struct territory_index;
/* The polygons of the features whose territory property is name (inside)
 * or is not (!inside), as one territory (id 1) of a built index: to tell,
 * by the polygons alone, whether a point lies in a block of districts.
 * The caller frees it. */
struct territory_index *geo_uk_index(json_t *collection, const char *name,
                                     bool inside);

/* Renames the territory of the districts of territory `from` that are
 * among districts (NULL-terminated) to `block`; returns how many. */
size_t geo_uk_mark_block(json_t *collection, const char *from,
                         const char *const *districts, const char *block);

/* The name of territory k, "Territory 07"; the caller frees. */
char *geo_uk_territory_name(size_t k);

#endif

/* The shared UK postcode files as the demo, the bench and the tests use
 * them: the 2,736 district polygons dealt out to territories, one owner
 * each. */
#ifndef FIELDSYNC_SERVICES_GEO_UK_H
#define FIELDSYNC_SERVICES_GEO_UK_H

#include "base/result.h"

#include <jansson.h>
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
                             const char *const *owners, size_t n,
                             json_t **out);

/* Moves every district of the collection whose name is in districts
 * (NULL-terminated) to territory k with its owner; returns how many. */
size_t geo_uk_move_districts(json_t *collection, const char *const *districts,
                             size_t k, const char *owner);

/* The name of territory k, "Territory 07"; the caller frees. */
char *geo_uk_territory_name(size_t k);

#endif

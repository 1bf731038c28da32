/* The territory admin API under /api/v1/territories (see docs/API.md):
 * GET lists the territories as GeoJSON; POST, PATCH, DELETE, import,
 * reassign and centroids change them, each with ?preview=true to see which
 * deals would move before anything is applied. */
#ifndef FIELDSYNC_SERVICES_TERRITORY_API_H
#define FIELDSYNC_SERVICES_TERRITORY_API_H

#include "services/api_call.h"

#include <stddef.h>

extern const struct api_route territory_api_routes[];
extern const size_t territory_api_route_count;

#endif

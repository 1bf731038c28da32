/* The territory admin API under /api/v1/territories (see docs/API.md):
 * GET lists the territories as GeoJSON; POST, PATCH, DELETE, import,
 * reassign and centroids change them, each with ?preview=true to see which
 * deals would move before anything is applied. */
#ifndef FIELDSYNC_SERVICES_TERRITORY_API_H
#define FIELDSYNC_SERVICES_TERRITORY_API_H

#include "net/http_server.h"

#include <stdbool.h>

struct app;

/* Whether path is /api/v1/territories or below it. */
bool territory_api_owns(const char *path);
/* Answers a request whose path territory_api_owns. */
void territory_api_handle(struct app *app, const struct http_request *req,
                          struct http_response *resp);

#endif

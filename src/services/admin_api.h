/* The admin API under /api/v1/admin: the org's stages and its CRM's map
 * onto them, and the deals left in unmapped stages. Admins only. */
#ifndef FIELDSYNC_SERVICES_ADMIN_API_H
#define FIELDSYNC_SERVICES_ADMIN_API_H

#include "services/api_call.h"

#include <stddef.h>

extern const struct api_route admin_api_routes[];
extern const size_t admin_api_route_count;

#endif

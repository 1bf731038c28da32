/* Admin endpoints: stage definitions, the stage map, unmapped deals. A
 * change is validated whole before anything is stored; it bumps the org's
 * stage version, so every deal shows the new mapping at once. */
#include "services/admin_api.h"

#include "base/alloc.h"
#include "base/log.h"
#include "services/app.h"
#include "services/deal_json.h"
#include "services/stages.h"

#include <stdlib.h>
#include <string.h>

#define UNMAPPED_PAGE 100

static void respond_view(struct api_call *c, int status, int64_t conn_id)
{
    json_t *view = NULL;
    fs_result r = stages_view(c->store, c->user.org_id, conn_id, &view);

    if (r == FS_ERR_NOT_FOUND)
        api_fail(c, 404, "not_found", "connection",
                 "no such connection in the org");
    else if (r != FS_OK)
        api_fail_store(c, r);
    else
        api_respond(c, status, view);
}

/* ?connection=N names a standby connection; none: the active one. */
static bool connection_param(struct api_call *c, int64_t *id)
{
    const char *q = strchr(c->req->raw_url, '?');
    char *end = NULL;

    *id = 0;
    if (!q || !q[1])
        return true;
    if (strncmp(q + 1, "connection=", 11) == 0) {
        long long v = strtoll(q + 12, &end, 10);
        if (end != q + 12 && *end == '\0' && v > 0) {
            *id = v;
            return true;
        }
    }
    api_fail(c, 400, "invalid_parameter", "connection",
             "the only parameter is connection, a connection id");
    return false;
}

/* Answers a stages_define or stages_map outcome. */
static void respond_change(struct api_call *c, fs_result r, const char *error,
                           const char *what, int64_t conn_id)
{
    if (r == FS_OK) {
        log_notice("event=stages_changed org=%lld user=%lld what=%s",
                   (long long)c->user.org_id, (long long)c->user.id, what);
        respond_view(c, 200, conn_id);
    } else if (r == FS_ERR_INVALID) {
        api_fail(c, 422, "invalid_stages", what, error);
    } else if (r == FS_ERR_CONFLICT) {
        api_fail(c, 409, "stage_in_use", what, error);
    } else if (r == FS_ERR_NOT_FOUND) {
        api_fail(c, 409, "no_connection", NULL, error);
    } else {
        api_fail_store(c, r);
    }
}

/* GET, PUT /api/v1/admin/stages */
static void handle_stages(struct api_call *c, const char *id)
{
    int64_t conn_id = 0;

    if (!api_require_admin(c))
        return;
    if (strcmp(c->req->method, "GET") == 0) {
        if (connection_param(c, &conn_id))
            respond_view(c, 200, conn_id);
        return;
    }
    json_t *body = api_body_object(c);
    if (!body)
        return;
    char *error = NULL;
    fs_result r = stages_define(c->store, c->user.org_id, body, &error);
    respond_change(c, r, error, "stages", 0);
    free(error);
    json_decref(body);
}

/* PUT /api/v1/admin/stage-map */
static void handle_stage_map(struct api_call *c, const char *id)
{
    if (!api_require_admin(c))
        return;
    json_t *body = api_body_object(c);
    if (!body)
        return;
    /* "connection" names a standby whose map is set before switching. */
    json_t *conn = json_object_get(body, "connection");
    int64_t conn_id = json_is_integer(conn) ? json_integer_value(conn) : 0;
    if (conn && conn_id <= 0) {
        api_fail(c, 400, "invalid_type", "connection",
                 "connection is a connection id");
        json_decref(body);
        return;
    }
    json_object_del(body, "connection");
    char *error = NULL;
    fs_result r = stages_map(c->store, c->user.org_id, conn_id, body, &error);
    respond_change(c, r, error, "map", conn_id);
    free(error);
    json_decref(body);
}

/* GET /api/v1/admin/stages/unmapped?cursor= */
static void handle_unmapped(struct api_call *c, const char *id)
{
    struct record *records = NULL;
    size_t n = 0;

    if (!api_require_admin(c))
        return;
    const char *q = strchr(c->req->raw_url, '?');
    const char *after = NULL;
    char *cursor = NULL;
    if (q && strncmp(q + 1, "cursor=", 7) == 0 && q[8] &&
        strlen(q + 8) <= API_ID_MAX_LEN && !strchr(q + 8, '&')) {
        cursor = xstrdup(q + 8);
        after = cursor;
    } else if (q && q[1]) {
        api_fail(c, 400, "unknown_parameter", NULL,
                 "the only parameter is cursor");
        return;
    }

    fs_result r = stages_unmapped_deals(c->store, c->user.org_id, after,
                                        UNMAPPED_PAGE, &records, &n);
    if (r != FS_OK) {
        api_fail_store(c, r);
        goto out;
    }
    const struct stage_map *map = api_stages(c);
    json_t *deals = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(deals, deal_json(&records[i], NULL, map));
    json_t *next =
        n == UNMAPPED_PAGE ? json_string(records[n - 1].id) : json_null();
    api_respond(c, 200,
                json_pack("{s:o, s:o}", "deals", deals, "next_cursor", next));
out:
    free(cursor);
    store_records_free(records, n);
}

const struct api_route admin_api_routes[] = {
    {"/api/v1/admin/stages", "GET, PUT", handle_stages},
    {"/api/v1/admin/stage-map", "PUT", handle_stage_map},
    {"/api/v1/admin/stages/unmapped", "GET", handle_unmapped},
};
const size_t admin_api_route_count =
    sizeof(admin_api_routes) / sizeof(admin_api_routes[0]);

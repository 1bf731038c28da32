/* The territory admin API under /api/v1/territories: the territories as a
 * GeoJSON FeatureCollection with owners and deal counts, and changes
 * (create, edit, delete, GeoJSON import, reassignment, centroid load),
 * each previewed with ?preview=true before it is applied. */
#include "services/territory_api.h"

#include "base/alloc.h"
#include "base/log.h"
#include "services/app.h"
#include "services/api_call.h"
#include "services/territory.h"
#include "store/store.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Moves and unplaced deals listed in an answer; the counts are whole. */
#define PLAN_LIST_MAX 1000
#define ID_MAX_LEN 19

/* A boolean query parameter; false when absent, -1 when malformed. */
static int flag(struct api_call *c, const char *name)
{
    const char *v = http_request_query(c->req, name);

    if (!v)
        return 0;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        return 1;
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        return 0;
    api_fail(c, 400, "invalid_param", name, "expected true or false");
    return -1;
}

/* ---- answers ---- */

static json_t *owner_json(struct api_call *c, int64_t user_id)
{
    struct user u = {0};
    json_t *obj;

    if (store_user_get(c->store, c->user.org_id, user_id, &u) != FS_OK)
        return json_pack("{s:I}", "user_id", (json_int_t)user_id);
    obj = json_pack(
        "{s:I, s:s, s:o, s:o}", "user_id", (json_int_t)u.id, "name", u.name,
        "email", u.email ? json_string(u.email) : json_null(), "crm_owner_id",
        u.crm_owner_id ? json_string(u.crm_owner_id) : json_null());
    user_clear(&u);
    return obj;
}

static json_t *territory_feature(struct api_call *c, const struct territory *t,
                                 int64_t deals)
{
    json_t *postcodes = json_array();
    json_t *geometry = t->geometry ? json_loads(t->geometry, 0, NULL) : NULL;

    for (size_t i = 0; i < t->n_postcodes; i++)
        json_array_append_new(postcodes, json_string(t->postcodes[i]));
    return json_pack("{s:s, s:I, s:{s:I, s:s, s:o, s:i, s:o, s:I}, s:o}",
                     "type", "Feature", "id", (json_int_t)t->id, "properties",
                     "id", (json_int_t)t->id, "name", t->name, "owner",
                     owner_json(c, t->owner_user_id), "priority", t->priority,
                     "postcodes", postcodes, "deals", (json_int_t)deals,
                     "geometry", geometry ? geometry : json_null());
}

static int64_t count_of(const int64_t *ids, const int64_t *counts, size_t n,
                        int64_t id)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == id)
            return counts[i];
    }
    return 0;
}

/* GET /api/v1/territories */
static void handle_list(struct api_call *c)
{
    struct territory *list = NULL;
    size_t n = 0, n_counts = 0;
    int64_t *ids = NULL, *counts = NULL;

    fs_result r = store_territories_list(c->store, c->user.org_id, &list, &n);
    if (r == FS_OK)
        r = store_territory_deal_counts(c->store, c->user.org_id, &ids, &counts,
                                        &n_counts);
    if (r != FS_OK) {
        api_fail_store(c, r);
        goto out;
    }
    json_t *features = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            features,
            territory_feature(c, &list[i],
                              count_of(ids, counts, n_counts, list[i].id)));
    api_respond(c, 200,
                json_pack("{s:s, s:o, s:I}", "type", "FeatureCollection",
                          "features", features, "unplaced_deals",
                          (json_int_t)count_of(ids, counts, n_counts, 0)));

out:
    store_territories_free(list, n);
    free(ids);
    free(counts);
}

static json_t *plan_json(const struct territory_plan *p, bool applied)
{
    json_t *moves = json_array();
    json_t *unplaced = json_array();
    json_t *repairs = json_array();
    json_t *territories = json_array();
    json_t *pairs = json_object();

    for (size_t i = 0; i < p->n_moves; i++) {
        const struct territory_move *m = &p->moves[i];
        char *key =
            xasprintf("%s>%s", m->from_owner ? m->from_owner : "", m->to_owner);
        json_t *count = json_object_get(pairs, key);
        json_object_set_new(pairs, key,
                            json_integer(json_integer_value(count) + 1));
        free(key);
        if (i >= PLAN_LIST_MAX)
            continue;
        json_array_append_new(
            moves,
            json_pack("{s:s, s:o, s:s, s:o, s:I}", "deal", m->deal_id, "from",
                      m->from_owner ? json_string(m->from_owner) : json_null(),
                      "to", m->to_owner, "from_territory",
                      m->from_territory ? json_integer(m->from_territory)
                                        : json_null(),
                      "to_territory", (json_int_t)m->to_territory));
    }
    json_t *by_owner = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(pairs, key, v)
    {
        const char *sep = strchr(key, '>');
        json_t *from =
            sep == key ? json_null() : json_stringn(key, (size_t)(sep - key));
        json_array_append_new(by_owner,
                              json_pack("{s:o, s:s, s:O}", "from", from, "to",
                                        sep + 1, "deals", v));
    }
    json_decref(pairs);
    for (size_t i = 0; i < p->n_unplaced && i < PLAN_LIST_MAX; i++)
        json_array_append_new(unplaced, json_string(p->unplaced[i]));
    for (size_t i = 0; i < p->n_repairs; i++)
        json_array_append_new(repairs, json_string(p->repairs[i]));
    for (size_t i = 0; i < p->n_territories; i++)
        json_array_append_new(
            territories, json_pack("{s:I, s:s, s:I, s:i}", "id",
                                   (json_int_t)p->territories[i].id, "name",
                                   p->territories[i].name, "owner_user_id",
                                   (json_int_t)p->territories[i].owner_user_id,
                                   "priority", p->territories[i].priority));
    return json_pack(
        "{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, "
        "s:I, s:o, s:o, s:o}",
        "applied", applied, "provider", p->provider, "deals",
        (json_int_t)p->deals, "by_postcode", (json_int_t)p->by_postcode,
        "by_polygon", (json_int_t)p->by_polygon, "replaced",
        (json_int_t)p->replaced, "unresolved", (json_int_t)p->unresolved,
        "moves_count", (json_int_t)p->n_moves, "moves", moves, "moves_by_owner",
        by_owner, "unplaced_count", (json_int_t)p->n_unplaced, "unplaced",
        unplaced, "repairs", repairs, "territories", territories);
}

/* Runs a parsed change (preview or apply) and answers with its plan. */
static void run_change(struct api_call *c, struct territory_change *change,
                       bool preview)
{
    struct territory_plan plan;
    struct territory_error err = {0};

    fs_result r = territory_change_run(c->store, c->user.org_id, change,
                                       !preview, &plan, &err);
    if (r == FS_ERR_INVALID && err.status) {
        api_fail(c, err.status, err.code, err.field, err.message);
        territory_error_clear(&err);
        return;
    }
    if (r != FS_OK) {
        api_fail_store(c, r);
        return;
    }
    if (!preview) {
        log_info("api_territory_change org=%lld user=%lld moves=%zu",
                 (long long)c->user.org_id, (long long)c->user.id,
                 plan.n_moves);
        territory_announce(c->store, app_live_stream(c->app),
                           app_stage_cache(c->app), c->user.org_id, &plan);
        app_wake_pusher(c->app);
    }
    api_respond(c, 200, plan_json(&plan, !preview));
    territory_plan_clear(&plan);
}

static bool parse_id(const char *s, int64_t *out)
{
    char *end = NULL;

    if (!s || !*s || strlen(s) > ID_MAX_LEN || *s < '1' || *s > '9')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0)
        return false;
    *out = v;
    return true;
}

/* POST /api/v1/territories, PATCH and DELETE /api/v1/territories/{id},
 * POST .../import, .../reassign */
static void handle_change(struct api_call *c, const char *what, int64_t id)
{
    static const char *const import_params[] = {"group_by", "replace", "repair",
                                                "preview", NULL};
    static const char *const one_params[] = {"repair", "preview", NULL};
    static const char *const preview_only[] = {"preview", NULL};
    struct territory_change change = {0};
    struct territory_error err = {0};
    bool import = strcmp(what, "import") == 0;
    bool one = strcmp(what, "one") == 0;

    if (!api_query_only(c, import ? import_params
                           : one  ? one_params
                                  : preview_only))
        return;
    int preview = flag(c, "preview");
    int replace = preview < 0 ? -1 : flag(c, "replace");
    int repair = replace < 0 ? -1 : flag(c, "repair");
    fs_result r = FS_OK;

    if (repair < 0)
        return;
    if (import) {
        const char *group_by = http_request_query(c->req, "group_by");
        if (group_by &&
            (!*group_by || strlen(group_by) > TERRITORY_MAX_PROPERTY)) {
            api_fail(c, 400, "invalid_param", "group_by",
                     "group_by names a feature property");
            return;
        }
        r = territory_parse_import(c->req->body, c->req->body_len, group_by,
                                   &change, &err);
    } else if (strcmp(what, "delete") == 0) {
        change.deletes = xcalloc(1, sizeof(*change.deletes));
        change.deletes[0] = id;
        change.n_deletes = 1;
    } else if (one) {
        r = territory_parse_one(c->req->body, c->req->body_len, id, &change,
                                &err);
    }
    if (r == FS_ERR_INVALID) {
        api_fail(c, err.status, err.code, err.field, err.message);
        territory_error_clear(&err);
        return;
    }
    change.replace = replace == 1;
    change.repair = repair == 1;
    run_change(c, &change, preview == 1);
    territory_change_clear(&change);
}

/* POST /api/v1/territories/centroids: a CSV body. */
static void handle_centroids(struct api_call *c)
{
    struct store_centroid *list = NULL;
    size_t n = 0;
    struct territory_error err = {0};
    static const char *const params[] = {"replace", NULL};
    int64_t total = 0;

    if (!api_query_only(c, params))
        return;
    int replace = flag(c, "replace");
    if (replace < 0)
        return;
    if (territory_parse_centroids(c->req->body, c->req->body_len, &list, &n,
                                  &err) != FS_OK) {
        api_fail(c, err.status, err.code, err.field, err.message);
        territory_error_clear(&err);
        return;
    }
    fs_result r = territory_load_centroids(c->store, c->user.org_id, list, n,
                                           replace == 1);
    if (r == FS_OK)
        r = store_centroids_count(c->store, c->user.org_id, &total);
    if (r != FS_OK)
        api_fail_store(c, r);
    else
        api_respond(c, 200,
                    json_pack("{s:I, s:I}", "loaded", (json_int_t)n,
                              "centroids", (json_int_t)total));
    territory_centroids_free(list, n);
}

static void on_territories(struct api_call *c, const char *id)
{
    static const char *const none[] = {NULL};

    if (strcmp(c->req->method, "GET") == 0) {
        if (api_query_only(c, none))
            handle_list(c);
    } else if (api_require_admin(c)) {
        handle_change(c, "one", 0);
    }
}

static void on_import(struct api_call *c, const char *id)
{
    if (api_require_admin(c))
        handle_change(c, "import", 0);
}

static void on_reassign(struct api_call *c, const char *id)
{
    if (api_require_admin(c))
        handle_change(c, "reassign", 0);
}

static void on_centroids(struct api_call *c, const char *id)
{
    if (api_require_admin(c))
        handle_centroids(c);
}

static void on_territory(struct api_call *c, const char *id)
{
    int64_t tid = 0;

    if (!parse_id(id, &tid)) {
        api_fail(c, 404, "not_found", NULL, "no such territory");
        return;
    }
    if (api_require_admin(c))
        handle_change(
            c, strcmp(c->req->method, "DELETE") == 0 ? "delete" : "one", tid);
}

/* The literal paths before the one with an id. */
const struct api_route territory_api_routes[] = {
    {"/api/v1/territories", "GET, POST", on_territories},
    {"/api/v1/territories/import", "POST", on_import},
    {"/api/v1/territories/reassign", "POST", on_reassign},
    {"/api/v1/territories/centroids", "POST", on_centroids},
    {"/api/v1/territories/{id}", "PATCH, DELETE", on_territory},
};

const size_t territory_api_route_count =
    sizeof(territory_api_routes) / sizeof(territory_api_routes[0]);

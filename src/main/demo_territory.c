/* The demo's territory step, on the real files: the simulator's deals sit
 * on real Manchester postcodes; the 2,736 district polygons, grouped by
 * local authority, become a territory for each of the agents; then a
 * block of city-centre districts moves to the Salford territory (on Attio
 * and Pipedrive, which write a deal a call, the simulator places only a
 * share of the deals; demo_internal.h). The step
 * previews the move, applies it, checks that every moved deal lies inside
 * the block and that the CRM shows each one's new owner. */
#include "main/demo_internal.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "model/territory.h"
#include "services/geo_uk.h"
#include "services/territory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMPORT_TIMEOUT_MS 120000
#define CRM_WAIT_MS 120000
#define POLL_MS 100

char *demo_geo_path(const struct demo *d, const char *file)
{
    return xasprintf("%s/../geo_uk/%s", d->opt.data_dir, file);
}

/* POSTs a body of text as the admin; *reply the parsed answer. */
static fs_result post_text(struct demo *d, struct http_client *http,
                           const char *path, const char *body, size_t len,
                           long *status, json_t **reply)
{
    struct http_client_response resp = {0};
    char *url = xasprintf("%s%s", d->api_base, path);
    char *auth = xasprintf("Authorization: Bearer %s", d->admin_token);
    const char *headers[] = {"Accept: application/json", auth, NULL};

    *reply = NULL;
    fs_result r = http_client_request(http, "POST", url, headers, body, len,
                                      IMPORT_TIMEOUT_MS, &resp);
    if (r == FS_OK) {
        *status = resp.status;
        if (resp.body.len > 0)
            *reply = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    }
    http_client_response_free(&resp);
    free(auth);
    free(url);
    return r;
}

static fs_result import_collection(struct demo *d, struct http_client *http,
                                   json_t *fc, bool preview, json_t **plan)
{
    char *body = json_dumps(fc, JSON_COMPACT);
    long status = 0;
    const char *path =
        preview ? "/api/v1/territories/import?group_by=territory&repair=true"
                  "&preview=true"
                : "/api/v1/territories/import?group_by=territory&repair=true";

    fs_result r = post_text(d, http, path, body, strlen(body), &status, plan);
    free(body);
    if (r == FS_OK && status != 200) {
        fprintf(stderr, "fieldsync demo: territory import answered %ld: %s\n",
                status,
                *plan ? json_string_value(json_object_get(*plan, "message"))
                      : "?");
        r = FS_ERR_REMOTE;
    }
    return r;
}

static const char *props_of(json_t *fc, const char *district, const char *key)
{
    size_t i;
    json_t *f;

    json_array_foreach(json_object_get(fc, "features"), i, f)
    {
        json_t *p = json_object_get(f, "properties");
        if (strcmp(json_string_value(json_object_get(p, "district")),
                   district) == 0)
            return json_string_value(json_object_get(p, key));
    }
    return NULL;
}

static size_t territory_index_of(const char *name, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        char *t = geo_uk_territory_name(k);
        bool same = strcmp(t, name) == 0;
        free(t);
        if (same)
            return k;
    }
    return 0;
}

/* The moves of two plans are the same: same deals, same new owners. */
static bool same_moves(json_t *a, json_t *b)
{
    json_t *ma = json_object_get(a, "moves");
    json_t *mb = json_object_get(b, "moves");

    if (json_array_size(ma) != json_array_size(mb) ||
        json_integer_value(json_object_get(a, "moves_count")) !=
            json_integer_value(json_object_get(b, "moves_count")))
        return false;
    for (size_t i = 0; i < json_array_size(ma); i++) {
        json_t *x = json_array_get(ma, i), *y = json_array_get(mb, i);
        if (!json_equal(json_object_get(x, "deal"),
                        json_object_get(y, "deal")) ||
            !json_equal(json_object_get(x, "to"), json_object_get(y, "to")))
            return false;
    }
    return true;
}

/* Checks each moved deal: inside the block by its point, and in the CRM
 * with its new owner before the deadline. */
static void check_moves(struct demo *d, struct http_client *http, json_t *plan,
                        struct territory_index *block)
{
    json_t *moves = json_object_get(plan, "moves");
    int64_t deadline = clock_mono_ms() + CRM_WAIT_MS;
    struct demo_territories *t = &d->territories;

    for (size_t i = 0; i < json_array_size(moves); i++) {
        json_t *m = json_array_get(moves, i);
        const char *to = json_string_value(json_object_get(m, "to"));
        char *url = xasprintf("%s/api/v1/deals/%s", d->api_base,
                              json_string_value(json_object_get(m, "deal")));
        json_t *deal = NULL;
        long status = 0;
        demo_http_json(http, "GET", url, d->admin_token, NULL, &status, &deal);
        free(url);
        json_t *p = json_object_get(deal, "point");
        if (json_is_array(p) &&
            territory_index_find(block, NULL, true,
                                 json_real_value(json_array_get(p, 1)),
                                 json_real_value(json_array_get(p, 0)))
                .id)
            t->block_inside++;
        const char *crm_id = json_string_value(json_object_get(deal, "crm_id"));
        char *sim_url = xasprintf("%s/_sim/deals/%s", d->sim_base,
                                  crm_id ? crm_id : "none");
        bool seen = false;
        while (!seen && clock_mono_ms() < deadline) {
            json_t *sim = NULL;
            demo_http_json(http, "GET", sim_url, NULL, NULL, &status, &sim);
            const char *owner = json_string_value(
                json_object_get(json_object_get(sim, "fields"), "owner"));
            seen = owner && to && strcmp(owner, to) == 0;
            json_decref(sim);
            if (!seen && !demo_sleep(d, POLL_MS))
                break;
        }
        t->block_in_crm += seen;
        free(sim_url);
        json_decref(deal);
    }
}

fs_result demo_territories(struct demo *d)
{
    struct demo_territories *t = &d->territories;
    char *districts = demo_geo_path(d, "uk_postcode_districts.geojson");
    char *centroids = demo_geo_path(d, "uk_postcode_district_centroids.csv");
    char *units = demo_geo_path(d, "uk_postcode_units_area_M.csv");
    struct http_client *http = http_client_new();
    const char **names = xcalloc(d->n_reps + 1, sizeof(*names));
    json_t *fc = NULL, *first = NULL, *preview = NULL, *applied = NULL;
    struct territory_index *block = NULL;
    long status = 0;
    struct buf csv = {0};
    fs_result r = FS_OK;

    if (access(districts, R_OK) != 0 || access(units, R_OK) != 0 ||
        d->n_reps == 0)
        goto out; /* no geography beside the data: the step is skipped */
    printf("territories: loading postcode centroids and district "
           "polygons\n");
    fflush(stdout);
    int64_t started = clock_mono_ms();
    json_t *loaded = NULL;
    r = buf_read_file(&csv, units, TERRITORY_MAX_IMPORT_BYTES);
    if (r == FS_OK)
        r = post_text(d, http, "/api/v1/territories/centroids?replace=true",
                      csv.data, csv.len, &status, &loaded);
    json_decref(loaded);
    if (r == FS_OK && status != 200)
        r = FS_ERR_REMOTE;

    for (size_t i = 0; i < d->n_reps; i++)
        names[i] = d->reps[i].name;
    if (r == FS_OK)
        r = geo_uk_territories(districts, centroids, names, d->n_reps, &fc);
    if (r == FS_OK)
        r = import_collection(d, http, fc, false, &first);
    if (r != FS_OK)
        goto out;
    t->ran = true;
    t->count = json_array_size(json_object_get(first, "territories"));
    t->deals = (size_t)json_integer_value(json_object_get(first, "deals"));
    t->placed =
        (size_t)json_integer_value(json_object_get(first, "by_polygon")) +
        (size_t)json_integer_value(json_object_get(first, "by_postcode"));
    t->unplaced =
        (size_t)json_integer_value(json_object_get(first, "unplaced_count"));
    t->first_moves =
        (size_t)json_integer_value(json_object_get(first, "moves_count"));
    t->repairs = json_array_size(json_object_get(first, "repairs"));

    /* The block: the city-centre districts of M1's territory, to M5's. */
    static const char *const wanted[] = {"M1",  "M2",  "M4", "M11",
                                         "M12", "M13", NULL};
    const char *from = props_of(fc, "M1", "territory");
    const char *m5 = props_of(fc, "M5", "territory");
    if (!from || !m5) {
        r = FS_ERR_INVALID;
        goto out;
    }
    size_t from_k = territory_index_of(from, d->n_reps);
    size_t to_k = territory_index_of(m5, d->n_reps);
    if (to_k == from_k)
        to_k = (from_k + 1) % d->n_reps;
    snprintf(t->from, sizeof(t->from), "%s", names[from_k]);
    snprintf(t->to, sizeof(t->to), "%s", names[to_k]);
    t->block_districts = geo_uk_mark_block(fc, from, wanted, "block");
    block = geo_uk_index(fc, "block", true);
    geo_uk_move_territory(fc, "block", to_k, names[to_k]);
    if (!block) {
        r = FS_ERR_INVALID;
        goto out;
    }
    r = import_collection(d, http, fc, true, &preview);
    if (r == FS_OK)
        r = import_collection(d, http, fc, false, &applied);
    if (r != FS_OK)
        goto out;
    t->block_moves =
        (size_t)json_integer_value(json_object_get(applied, "moves_count"));
    t->preview_equal = same_moves(preview, applied);
    check_moves(d, http, applied, block);
    t->seconds = (double)(clock_mono_ms() - started) / 1000.0;

out:
    if (r != FS_OK)
        fprintf(stderr, "fieldsync demo: territory step failed: %s\n",
                fs_result_name(r));
    territory_index_free(block);
    json_decref(first);
    json_decref(preview);
    json_decref(applied);
    json_decref(fc);
    free(names);
    buf_free(&csv);
    http_client_free(http);
    free(districts);
    free(centroids);
    free(units);
    return r;
}

void demo_report_territories(const struct demo *d)
{
    const struct demo_territories *t = &d->territories;

    if (!t->ran) {
        printf("  territories            skipped (no geo_uk data beside the "
               "pipeline)\n");
        return;
    }
    printf("  territories            %zu from 2,736 district polygons (%zu "
           "repaired), %zu of %zu deals placed, %zu in none (owner kept); "
           "%zu owners set\n",
           t->count, t->repairs, t->placed, t->deals, t->unplaced,
           t->first_moves);
    if (d->opt.crm->placed_percent < 100)
        printf("    postcodes            on %d%% of the deals: %s writes one "
               "deal a call, and 8,000 owner changes would take minutes\n",
               d->opt.crm->placed_percent, d->opt.crm->label);
    printf("    block moved          %zu districts of M1's territory, %s -> "
           "%s: %zu deals moved (preview %s apply), %zu inside the block by "
           "polygon, %zu with the new owner in the CRM (%.1f s)\n",
           t->block_districts, t->from, t->to, t->block_moves,
           t->preview_equal ? "equals" : "DIFFERS FROM", t->block_inside,
           t->block_in_crm, t->seconds);
}

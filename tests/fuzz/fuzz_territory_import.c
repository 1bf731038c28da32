/* Territory imports as an admin uploads them: a GeoJSON FeatureCollection
 * (territory_parse_import), each territory it yields then indexed with its
 * postcode rules and polygons (territory_index_add, GEOS). The input's
 * first line is options: "repair" and/or "group_by=PROPERTY"; the rest is
 * the body. Checks that a refusal is a client error naming its field, that
 * a territory refused by the index says why, and that the indexed lookup
 * places points exactly as testing every polygon in turn does. */
#include "fuzz.h"

#include "base/alloc.h"
#include "model/territory.h"
#include "services/territory.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Points to place: each polygon's first few vertices, and a few fixed. */
#define MAX_PROBES 64

struct probes {
    double lat[MAX_PROBES];
    double lng[MAX_PROBES];
    size_t n;
};

static void add_probe(struct probes *p, double lat, double lng)
{
    if (p->n < MAX_PROBES) {
        p->lat[p->n] = lat;
        p->lng[p->n] = lng;
        p->n++;
    }
}

/* A MultiPolygon's vertices as [lng, lat] pairs. */
static void probe_geometry(struct probes *p, const json_t *geometry)
{
    size_t i, j, k;
    const json_t *poly, *ring, *pos;

    json_array_foreach(json_object_get(geometry, "coordinates"), i, poly)
    {
        json_array_foreach(poly, j, ring)
        {
            json_array_foreach(ring, k, pos)
            {
                if (k >= 3)
                    break;
                const json_t *x = json_array_get(pos, 0);
                const json_t *y = json_array_get(pos, 1);
                if (json_is_number(x) && json_is_number(y))
                    add_probe(p, json_number_value(y), json_number_value(x));
            }
        }
    }
}

static void check_index(const struct territory_change *change, bool repair)
{
    struct territory_index *ix = territory_index_new();
    struct probes probes = {.n = 0};

    add_probe(&probes, 53.483471, -2.231184);
    add_probe(&probes, 0, 0);
    for (size_t i = 0; i < change->n_inputs; i++) {
        const struct territory_input *in = &change->inputs[i];
        struct territory_problem problem = {0};
        fs_result r = territory_index_add(
            ix, (int64_t)i + 1, in->has_priority ? in->priority : 0,
            (const char *const *)in->postcodes, in->n_postcodes, in->geometry,
            repair, &problem);
        if (r != FS_OK)
            FUZZ_CHECK((r == FS_ERR_INVALID || r == FS_ERR_TOO_LARGE) &&
                           problem.message,
                       "a territory the index refuses says why");
        else
            probe_geometry(&probes, in->geometry);
        territory_problem_clear(&problem);
    }
    FUZZ_CHECK(territory_index_build(ix) == FS_OK, "an index builds");
    for (size_t i = 0; i < probes.n; i++) {
        struct territory_match fast =
            territory_index_find(ix, NULL, true, probes.lat[i], probes.lng[i]);
        struct territory_match slow =
            territory_index_find_linear(ix, probes.lat[i], probes.lng[i]);
        FUZZ_CHECK(fast.id == slow.id,
                   "the indexed lookup agrees with testing every polygon");
    }
    territory_index_free(ix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    char *options = fuzz_take(&in, "\n");
    size_t len = 0;
    char *body = fuzz_rest(&in, &len);
    const char *group = options ? strstr(options, "group_by=") : NULL;
    char *group_by =
        group ? xstrndup(group + 9, strcspn(group + 9, " ")) : NULL;
    bool repair = options && strstr(options, "repair");
    struct territory_change change;
    struct territory_error err = {0};

    fs_result r = territory_parse_import(body, len, group_by, &change, &err);
    if (r == FS_OK) {
        for (size_t i = 0; i < change.n_inputs; i++)
            FUZZ_CHECK(change.inputs[i].name && change.inputs[i].has_owner,
                       "an imported territory has a name and an owner");
        check_index(&change, repair);
    } else {
        FUZZ_CHECK(err.status >= 400 && err.status < 500 && err.code &&
                       err.message,
                   "a refused import is a client error with a message");
        FUZZ_CHECK(change.n_inputs == 0, "a refused import yields nothing");
    }
    territory_change_clear(&change);
    territory_error_clear(&err);
    free(group_by);
    free(body);
    free(options);
    return 0;
}

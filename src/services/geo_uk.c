/* Dealing the real UK district polygons out to territories. */
#include "services/geo_uk.h"

#include "base/alloc.h"
#include "model/territory.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_LINE_MAX 1024

char *geo_uk_territory_name(size_t k)
{
    return xasprintf("Territory %02zu", k);
}

static int compare_text(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void set_territory(json_t *props, size_t k, const char *owner)
{
    char *name = geo_uk_territory_name(k);

    json_object_set_new(props, "territory", json_string(name));
    json_object_set_new(props, "owner", json_string(owner));
    free(name);
}

/* district -> admin district name, from the centroid CSV's header. */
static json_t *admin_codes(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[CSV_LINE_MAX];
    int district = -1, admin = -1;
    json_t *map = NULL;

    if (!f)
        return NULL;
    map = json_object();
    while (fgets(line, sizeof(line), f)) {
        char *cols[16];
        int n = 0;
        char *p = line;
        line[strcspn(line, "\r\n")] = '\0';
        while (n < 16) {
            /* A quoted field ("Bristol, City of") keeps its commas. */
            bool quoted = *p == '"';
            char *end = quoted ? strchr(p + 1, '"') : NULL;
            cols[n++] = quoted ? p + 1 : p;
            if (quoted && end) {
                *end = '\0';
                p = end + 1;
            }
            char *comma = strchr(p, ',');
            if (!comma)
                break;
            *comma = '\0';
            p = comma + 1;
        }
        if (district < 0) {
            for (int i = 0; i < n; i++) {
                if (strcmp(cols[i], "district") == 0)
                    district = i;
                if (strcmp(cols[i], "admin_district_name") == 0)
                    admin = i;
            }
            if (district < 0 || admin < 0)
                break;
            continue;
        }
        if (district < n && admin < n && *cols[admin])
            json_object_set_new(map, cols[district], json_string(cols[admin]));
    }
    fclose(f);
    if (district < 0 || admin < 0) {
        json_decref(map);
        return NULL;
    }
    return map;
}

static const char *code_of(json_t *codes, json_t *area_codes, json_t *props)
{
    const char *d = json_string_value(json_object_get(props, "district"));
    const char *a = json_string_value(json_object_get(props, "area"));
    const char *code = d ? json_string_value(json_object_get(codes, d)) : NULL;

    if (code)
        return code;
    return a ? json_string_value(json_object_get(area_codes, a)) : NULL;
}

fs_result geo_uk_territories(const char *districts_path,
                             const char *centroids_path,
                             const char *const *owners, size_t n, json_t **out)
{
    json_t *fc = json_load_file(districts_path, 0, NULL);
    json_t *codes = admin_codes(centroids_path);
    json_t *area_codes = json_object();
    const char **list = NULL;
    size_t n_list = 0;
    size_t i;
    json_t *f;
    fs_result r = FS_OK;

    *out = NULL;
    json_t *features = json_object_get(fc, "features");
    if (!fc || !codes || !json_is_array(features) || n == 0) {
        r = fc && codes ? FS_ERR_INVALID : FS_ERR_IO;
        goto out;
    }
    /* An area's first known code stands for its districts with none. */
    json_array_foreach(features, i, f)
    {
        json_t *props = json_object_get(f, "properties");
        const char *a = json_string_value(json_object_get(props, "area"));
        const char *d = json_string_value(json_object_get(props, "district"));
        json_t *code = d ? json_object_get(codes, d) : NULL;
        if (a && code && !json_object_get(area_codes, a))
            json_object_set(area_codes, a, code);
    }
    list = xcalloc(json_array_size(features) + 1, sizeof(*list));
    json_array_foreach(features, i, f)
    {
        const char *code =
            code_of(codes, area_codes, json_object_get(f, "properties"));
        if (code)
            list[n_list++] = code;
    }
    qsort(list, n_list, sizeof(*list), compare_text);
    size_t distinct = 0;
    for (size_t k = 0; k < n_list; k++) {
        if (distinct == 0 || strcmp(list[distinct - 1], list[k]) != 0)
            list[distinct++] = list[k];
    }
    json_array_foreach(features, i, f)
    {
        json_t *props = json_object_get(f, "properties");
        const char *code = code_of(codes, area_codes, props);
        const char **at =
            code ? bsearch(&code, list, distinct, sizeof(*list), compare_text)
                 : NULL;
        size_t index = at ? (size_t)(at - list) : 0;
        size_t k = index * n / (distinct ? distinct : 1);
        set_territory(props, k, owners[k]);
    }
    *out = fc;
    fc = NULL;

out:
    free(list);
    json_decref(area_codes);
    json_decref(codes);
    json_decref(fc);
    return r;
}

size_t geo_uk_move_territory(json_t *collection, const char *from, size_t k,
                             const char *owner)
{
    json_t *features = json_object_get(collection, "features");
    size_t moved = 0;
    size_t i;
    json_t *f;

    json_array_foreach(features, i, f)
    {
        json_t *props = json_object_get(f, "properties");
        const char *t = json_string_value(json_object_get(props, "territory"));
        if (t && strcmp(t, from) == 0) {
            set_territory(props, k, owner);
            moved++;
        }
    }
    return moved;
}

struct territory_index *geo_uk_index(json_t *collection, const char *name,
                                     bool inside)
{
    struct territory_index *ix = territory_index_new();
    json_t *all =
        json_pack("{s:s, s:[]}", "type", "MultiPolygon", "coordinates");
    json_t *polygons = json_object_get(all, "coordinates");
    struct territory_problem pb = {0};
    size_t i;
    json_t *f;

    json_array_foreach(json_object_get(collection, "features"), i, f)
    {
        const char *t = json_string_value(
            json_object_get(json_object_get(f, "properties"), "territory"));
        json_t *g = json_object_get(f, "geometry");
        const char *type = json_string_value(json_object_get(g, "type"));
        if (!t || (strcmp(t, name) == 0) != inside || !type)
            continue;
        if (strcmp(type, "Polygon") == 0)
            json_array_append(polygons, json_object_get(g, "coordinates"));
        else
            json_array_extend(polygons, json_object_get(g, "coordinates"));
    }
    if (json_array_size(polygons) == 0 ||
        territory_index_add(ix, 1, 0, NULL, 0, all, true, &pb) != FS_OK ||
        territory_index_build(ix) != FS_OK) {
        territory_index_free(ix);
        ix = NULL;
    }
    territory_problem_clear(&pb);
    json_decref(all);
    return ix;
}

size_t geo_uk_mark_block(json_t *collection, const char *from,
                         const char *const *districts, const char *block)
{
    json_t *features = json_object_get(collection, "features");
    char *name = xstrdup(from); /* from may be a property renamed below */
    size_t marked = 0;
    size_t i;
    json_t *f;

    json_array_foreach(features, i, f)
    {
        json_t *props = json_object_get(f, "properties");
        const char *d = json_string_value(json_object_get(props, "district"));
        const char *t = json_string_value(json_object_get(props, "territory"));
        for (size_t j = 0; d && t && districts[j]; j++) {
            if (strcmp(d, districts[j]) == 0 && strcmp(t, name) == 0) {
                json_object_set_new(props, "territory", json_string(block));
                marked++;
                break;
            }
        }
    }
    free(name);
    return marked;
}

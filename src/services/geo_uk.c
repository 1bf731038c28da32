/* Dealing the real UK district polygons out to territories. */
#include "services/geo_uk.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

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

fs_result geo_uk_territories(const char *districts_path,
                             const char *const *owners, size_t n, json_t **out)
{
    json_error_t jerr;
    json_t *fc = json_load_file(districts_path, 0, &jerr);
    const char **areas = NULL;
    size_t n_areas = 0;
    size_t i;
    json_t *f;

    *out = NULL;
    if (!fc)
        return FS_ERR_IO;
    json_t *features = json_object_get(fc, "features");
    if (!json_is_array(features) || n == 0) {
        json_decref(fc);
        return FS_ERR_INVALID;
    }
    areas = xcalloc(json_array_size(features) + 1, sizeof(*areas));
    json_array_foreach(features, i, f)
    {
        const char *area = json_string_value(
            json_object_get(json_object_get(f, "properties"), "area"));
        if (area)
            areas[n_areas++] = area;
    }
    qsort(areas, n_areas, sizeof(*areas), compare_text);
    size_t distinct = 0;
    for (size_t k = 0; k < n_areas; k++) {
        if (distinct == 0 || strcmp(areas[distinct - 1], areas[k]) != 0)
            areas[distinct++] = areas[k];
    }
    json_array_foreach(features, i, f)
    {
        json_t *props = json_object_get(f, "properties");
        const char *area = json_string_value(json_object_get(props, "area"));
        const char **at =
            area ? bsearch(&area, areas, distinct, sizeof(*areas), compare_text)
                 : NULL;
        size_t index = at ? (size_t)(at - areas) : 0;
        size_t k = index * n / (distinct ? distinct : 1);
        set_territory(props, k, owners[k]);
    }
    free(areas);
    *out = fc;
    return FS_OK;
}

size_t geo_uk_move_districts(json_t *collection, const char *const *districts,
                             size_t k, const char *owner)
{
    json_t *features = json_object_get(collection, "features");
    size_t moved = 0;
    size_t i;
    json_t *f;

    json_array_foreach(features, i, f)
    {
        json_t *props = json_object_get(f, "properties");
        const char *d = json_string_value(json_object_get(props, "district"));
        for (size_t j = 0; d && districts[j]; j++) {
            if (strcmp(d, districts[j]) == 0) {
                set_territory(props, k, owner);
                moved++;
                break;
            }
        }
    }
    return moved;
}

/* Territory changes and centroid tables as clients send them: GeoJSON
 * imports, one territory's JSON, centroid CSV files. Everything is checked
 * and made canonical before anything is written; the first problem found
 * is the answer, naming where it is. */
#include "services/territory.h"

#include "base/alloc.h"
#include "model/postcode.h"
#include "model/territory.h"
#include "base/json_text.h"
#include "services/api_call.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void territory_error_clear(struct territory_error *e)
{
    if (!e)
        return;
    free(e->field);
    free(e->message);
    memset(e, 0, sizeof(*e));
}

fs_result territory_error_set(struct territory_error *e, int status,
                              const char *code, char *field, const char *fmt,
                              ...)
{
    va_list ap;
    char msg[512];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    territory_error_clear(e);
    e->status = status;
    e->code = code;
    e->field = field;
    e->message = xstrdup(msg);
    return FS_ERR_INVALID;
}

static void input_clear(struct territory_input *in)
{
    free(in->name);
    free(in->owner_text);
    for (size_t i = 0; i < in->n_postcodes; i++)
        free(in->postcodes[i]);
    free(in->postcodes);
    json_decref(in->geometry);
    free(in->where);
    free(in->polygon_feature);
    memset(in, 0, sizeof(*in));
}

void territory_change_clear(struct territory_change *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_inputs; i++)
        input_clear(&c->inputs[i]);
    free(c->inputs);
    free(c->deletes);
    memset(c, 0, sizeof(*c));
}

/* Parses body as one JSON value within the depth limit. */
static fs_result load_json(const char *body, size_t len, json_t **out,
                           struct territory_error *err)
{
    json_error_t jerr;

    *out = NULL;
    if (len > TERRITORY_MAX_IMPORT_BYTES)
        return territory_error_set(err, 413, "too_large", NULL,
                                   "the body is over %u bytes",
                                   TERRITORY_MAX_IMPORT_BYTES);
    if (json_text_depth(body, len) > TERRITORY_MAX_DEPTH)
        return territory_error_set(err, 400, "too_deep", NULL,
                                   "JSON nested deeper than %d levels",
                                   TERRITORY_MAX_DEPTH);
    *out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*out)
        return territory_error_set(err, 400, "invalid_json", NULL,
                                   "not JSON: %s at %d:%d", jerr.text,
                                   jerr.line, jerr.column);
    return FS_OK;
}

static fs_result set_name(struct territory_input *in, const json_t *v,
                          const char *where, struct territory_error *err)
{
    const char *name = json_string_value(v);
    size_t len = name ? strlen(name) : 0;

    if (!name || len == 0 || len > TERRITORY_MAX_NAME)
        return territory_error_set(
            err, 422, "invalid_value", xstrdup(where),
            "a territory's name is text of 1 to %d bytes", TERRITORY_MAX_NAME);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)name[i] < 0x20)
            return territory_error_set(
                err, 422, "invalid_value", xstrdup(where),
                "a territory's name has no control characters");
    }
    free(in->name);
    in->name = xstrdup(name);
    return FS_OK;
}

/* owner: a user id, or a user's email or name. */
static fs_result set_owner(struct territory_input *in, const json_t *v,
                           const char *where, struct territory_error *err)
{
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        in->owner_user = json_integer_value(v);
    } else if (json_is_string(v) && json_string_length(v) > 0 &&
               json_string_length(v) <= TERRITORY_MAX_PROPERTY) {
        free(in->owner_text);
        in->owner_text = xstrdup(json_string_value(v));
    } else {
        return territory_error_set(
            err, 422, "invalid_value", xstrdup(where),
            "owner is a user id, or a user's email or name");
    }
    in->has_owner = true;
    return FS_OK;
}

static fs_result set_priority(struct territory_input *in, const json_t *v,
                              const char *where, struct territory_error *err)
{
    json_int_t p = json_integer_value(v);

    if (!json_is_integer(v) || p < -TERRITORY_PRIORITY_MAX ||
        p > TERRITORY_PRIORITY_MAX)
        return territory_error_set(
            err, 422, "invalid_value", xstrdup(where),
            "priority is an integer from %d to %d (higher wins)",
            -TERRITORY_PRIORITY_MAX, TERRITORY_PRIORITY_MAX);
    in->priority = (int)p;
    in->has_priority = true;
    return FS_OK;
}

/* Appends the postcode rules of v (an array of strings), canonical. */
static fs_result add_postcodes(struct territory_input *in, const json_t *v,
                               const char *where, struct territory_error *err)
{
    size_t n = json_array_size(v);

    if (!json_is_array(v))
        return territory_error_set(
            err, 422, "invalid_value", xstrdup(where),
            "postcodes is an array of postcodes or prefixes");
    if (in->n_postcodes + n > TERRITORY_MAX_POSTCODES)
        return territory_error_set(err, 413, "too_large", xstrdup(where),
                                   "a territory has at most %d postcode rules",
                                   TERRITORY_MAX_POSTCODES);
    in->postcodes =
        xrealloc(in->postcodes, (in->n_postcodes + n + 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *text = json_string_value(json_array_get(v, i));
        char *canon = NULL;
        if (!text)
            return territory_error_set(err, 422, "invalid_value",
                                       xasprintf("%s[%zu]", where, i),
                                       "a postcode rule is a string");
        if (postcode_rule_normalize(text, &canon) != FS_OK)
            return territory_error_set(err, 422, "invalid_value",
                                       xasprintf("%s[%zu]", where, i),
                                       "'%.40s' is not " POSTCODE_PLACE, text);
        in->postcodes[in->n_postcodes++] = canon;
    }
    in->has_postcodes = true;
    return FS_OK;
}

/* Adds geometry's polygons to in's MultiPolygon (made on first use). */
static fs_result add_polygons(struct territory_input *in, const json_t *geom,
                              size_t feature, const char *where,
                              struct territory_error *err)
{
    const char *type = json_string_value(json_object_get(geom, "type"));
    json_t *coords = json_object_get(geom, "coordinates");

    if (!json_is_object(geom) || !type || !json_is_array(coords))
        return territory_error_set(
            err, 422, "invalid_geometry", xstrdup(where),
            "a geometry is an object with type and coordinates");
    if (!in->geometry)
        in->geometry =
            json_pack("{s:s, s:[]}", "type", "MultiPolygon", "coordinates");
    json_t *all = json_object_get(in->geometry, "coordinates");
    if (strcmp(type, "Polygon") == 0) {
        json_array_append(all, coords);
    } else if (strcmp(type, "MultiPolygon") == 0) {
        json_array_extend(all, coords);
    } else {
        return territory_error_set(
            err, 422, "invalid_geometry", xstrdup(where),
            "a territory's geometry is a Polygon or MultiPolygon, "
            "not %.40s",
            type);
    }
    if (json_array_size(all) > TERRITORY_MAX_POLYGONS)
        return territory_error_set(err, 413, "too_large", xstrdup(where),
                                   "a territory has at most %d polygons",
                                   TERRITORY_MAX_POLYGONS);
    size_t n = json_array_size(all);
    in->polygon_feature =
        xrealloc(in->polygon_feature, n * sizeof(*in->polygon_feature));
    for (size_t i = in->n_polygons; i < n; i++)
        in->polygon_feature[i] = feature;
    in->n_polygons = n;
    in->has_geometry = true;
    return FS_OK;
}

/* A property as text for grouping: a string, or an integer. */
static char *group_key(const json_t *v)
{
    if (json_is_string(v) && json_string_length(v) > 0 &&
        json_string_length(v) <= TERRITORY_MAX_NAME)
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    return NULL;
}

static struct territory_input *find_input(struct territory_change *c,
                                          const char *name)
{
    for (size_t i = 0; i < c->n_inputs; i++) {
        if (strcmp(c->inputs[i].name, name) == 0)
            return &c->inputs[i];
    }
    return NULL;
}

/* A property given on several features of one territory must agree. */
static fs_result merge_scalar(struct territory_input *in, const json_t *props,
                              const char *key, const char *where,
                              struct territory_error *err)
{
    const json_t *v = json_object_get(props, key);
    struct territory_input probe = {0};
    char *path = xasprintf("%s.properties.%s", where, key);
    fs_result r = FS_OK;

    if (!v || json_is_null(v))
        goto out;
    if (strcmp(key, "owner") == 0)
        r = set_owner(&probe, v, path, err);
    else
        r = set_priority(&probe, v, path, err);
    if (r != FS_OK)
        goto out;
    bool had = strcmp(key, "owner") == 0 ? in->has_owner : in->has_priority;
    bool same = strcmp(key, "owner") == 0
                    ? probe.owner_user == in->owner_user &&
                          merge_value_equal(probe.owner_text, in->owner_text)
                    : probe.priority == in->priority;
    if (had && !same) {
        r = territory_error_set(err, 422, "conflict", path,
                                "the features of territory '%s' disagree on %s",
                                in->name, key);
        path = NULL;
        goto out;
    }
    if (strcmp(key, "owner") == 0) {
        in->has_owner = true;
        in->owner_user = probe.owner_user;
        free(in->owner_text);
        in->owner_text = probe.owner_text;
        probe.owner_text = NULL;
    } else {
        in->has_priority = true;
        in->priority = probe.priority;
    }

out:
    free(path);
    input_clear(&probe);
    return r;
}

static fs_result import_feature(struct territory_change *c, const json_t *f,
                                size_t index, const char *group_by,
                                struct territory_error *err)
{
    char *where = xasprintf("features[%zu]", index);
    char *path = NULL;
    char *name = NULL;
    fs_result r = FS_OK;
    const json_t *props = json_object_get(f, "properties");
    const json_t *geom = json_object_get(f, "geometry");

    if (!json_is_object(f) || !json_is_string(json_object_get(f, "type")) ||
        strcmp(json_string_value(json_object_get(f, "type")), "Feature") != 0) {
        r = territory_error_set(err, 422, "invalid_value", where,
                                "not a GeoJSON Feature");
        return r;
    }
    if (!json_is_object(props)) {
        r = territory_error_set(
            err, 422, "missing_key", xasprintf("%s.properties", where),
            "a feature needs properties naming its territory");
        goto out;
    }

    const char *key = group_by ? group_by : "name";
    path = xasprintf("%s.properties.%s", where, key);
    name = group_key(json_object_get(props, key));
    if (!name) {
        r = territory_error_set(
            err, 422, "missing_key", path,
            "a feature needs %s: its territory's name (1 to %d bytes)", key,
            TERRITORY_MAX_NAME);
        path = NULL;
        goto out;
    }

    struct territory_input *in = find_input(c, name);
    if (in && !group_by) {
        r = territory_error_set(
            err, 422, "conflict", path,
            "two features name territory '%s'; import with group_by to "
            "join them",
            name);
        path = NULL;
        goto out;
    }
    if (!in) {
        if (c->n_inputs >= TERRITORY_MAX_PER_ORG) {
            r = territory_error_set(err, 413, "too_large", NULL,
                                    "an org has at most %d territories",
                                    TERRITORY_MAX_PER_ORG);
            goto out;
        }
        c->inputs = xrealloc(c->inputs, (c->n_inputs + 1) * sizeof(*in));
        in = &c->inputs[c->n_inputs++];
        memset(in, 0, sizeof(*in));
        json_t *jname = json_string(name);
        r = set_name(in, jname, path, err);
        json_decref(jname);
        in->where = xstrdup(where);
        if (r != FS_OK)
            goto out;
        /* An import defines its territories whole. */
        in->has_postcodes = true;
        in->has_geometry = true;
    }

    r = merge_scalar(in, props, "owner", where, err);
    if (r == FS_OK)
        r = merge_scalar(in, props, "priority", where, err);
    const json_t *pcs = json_object_get(props, "postcodes");
    if (r == FS_OK && pcs && !json_is_null(pcs)) {
        char *pc_path = xasprintf("%s.properties.postcodes", where);
        r = add_postcodes(in, pcs, pc_path, err);
        free(pc_path);
    }
    if (r == FS_OK && geom && !json_is_null(geom)) {
        char *g_path = xasprintf("%s.geometry", where);
        r = add_polygons(in, geom, index, g_path, err);
        free(g_path);
    }

out:
    free(name);
    free(path);
    free(where);
    return r;
}

fs_result territory_parse_import(const char *body, size_t len,
                                 const char *group_by,
                                 struct territory_change *out,
                                 struct territory_error *err)
{
    json_t *root = NULL;

    memset(out, 0, sizeof(*out));
    fs_result r = load_json(body, len, &root, err);
    if (r != FS_OK)
        return r;

    const json_t *features = json_object_get(root, "features");
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type || strcmp(type, "FeatureCollection") != 0 ||
        !json_is_array(features)) {
        r = territory_error_set(err, 422, "invalid_value", xstrdup("type"),
                                "an import is a GeoJSON FeatureCollection");
        goto out;
    }
    if (json_array_size(features) > TERRITORY_MAX_FEATURES) {
        r = territory_error_set(err, 413, "too_large", xstrdup("features"),
                                "an import has at most %d features",
                                TERRITORY_MAX_FEATURES);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(features) && r == FS_OK; i++)
        r = import_feature(out, json_array_get(features, i), i, group_by, err);
    for (size_t i = 0; i < out->n_inputs && r == FS_OK; i++) {
        if (!out->inputs[i].has_owner)
            r = territory_error_set(
                err, 422, "missing_key",
                xasprintf("%s.properties.owner", out->inputs[i].where),
                "territory '%s' has no owner", out->inputs[i].name);
    }

out:
    json_decref(root);
    if (r != FS_OK)
        territory_change_clear(out);
    return r;
}

fs_result territory_parse_one(const char *body, size_t len, int64_t id,
                              struct territory_change *out,
                              struct territory_error *err)
{
    json_t *root = NULL;
    const char *key;
    json_t *v;

    memset(out, 0, sizeof(*out));
    fs_result r = load_json(body, len, &root, err);
    if (r != FS_OK)
        return r;
    if (!json_is_object(root)) {
        r = territory_error_set(err, 400, "invalid_body", NULL,
                                "the body is a JSON object");
        goto out;
    }

    out->inputs = xcalloc(1, sizeof(*out->inputs));
    out->n_inputs = 1;
    struct territory_input *in = &out->inputs[0];
    in->id = id;
    out->create = id == 0;
    in->where = xstrdup("");
    json_object_foreach(root, key, v)
    {
        if (r != FS_OK)
            break;
        if (strcmp(key, "name") == 0) {
            r = set_name(in, v, "name", err);
        } else if (strcmp(key, "owner") == 0) {
            r = set_owner(in, v, "owner", err);
        } else if (strcmp(key, "priority") == 0) {
            r = set_priority(in, v, "priority", err);
        } else if (strcmp(key, "postcodes") == 0) {
            r = add_postcodes(in, v, "postcodes", err);
        } else if (strcmp(key, "geometry") == 0) {
            in->has_geometry = true;
            if (!json_is_null(v))
                in->geometry = json_incref(v);
        } else {
            r = territory_error_set(
                err, 400, "unknown_key", xstrdup(key),
                "a territory has name, owner, priority, postcodes and "
                "geometry");
        }
    }
    if (r == FS_OK && id == 0 && !in->name)
        r = territory_error_set(err, 422, "missing_key", xstrdup("name"),
                                "a new territory needs a name");
    if (r == FS_OK && id == 0 && !in->has_owner)
        r = territory_error_set(err, 422, "missing_key", xstrdup("owner"),
                                "a new territory needs an owner");

out:
    json_decref(root);
    if (r != FS_OK)
        territory_change_clear(out);
    return r;
}

/* ---- centroid CSV ---- */

void territory_centroids_free(struct store_centroid *list, size_t n)
{
    for (size_t i = 0; i < n && list; i++)
        free(list[i].postcode);
    free(list);
}

/* The columns of a header line, at most max. */
static size_t split_csv(char *line, char **cols, size_t max)
{
    size_t n = 0;
    char *p = line;

    while (n < max) {
        cols[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

static bool parse_double(const char *s, double *out)
{
    char *end = NULL;

    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

#define CSV_MAX_COLUMNS 32
#define CSV_MAX_LINE 4096

fs_result territory_parse_centroids(const char *text, size_t len,
                                    struct store_centroid **out, size_t *n_out,
                                    struct territory_error *err)
{
    static const char *const code_names[] = {"postcode", "sector", "district",
                                             "zip"};
    struct store_centroid *list = NULL;
    size_t n = 0, cap = 0, line_no = 0;
    int code_col = -1, lat_col = -1, lng_col = -1;
    const char *p = text, *end = text + len;
    char line[CSV_MAX_LINE + 1];
    fs_result r = FS_OK;

    *out = NULL;
    *n_out = 0;
    if (len > TERRITORY_MAX_IMPORT_BYTES)
        return territory_error_set(err, 413, "too_large", NULL,
                                   "the file is over %u bytes",
                                   TERRITORY_MAX_IMPORT_BYTES);
    while (p < end && r == FS_OK) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line_no++;
        if (l > 0 && p[l - 1] == '\r')
            l--;
        if (l > CSV_MAX_LINE) {
            r = territory_error_set(err, 413, "too_large",
                                    xasprintf("line %zu", line_no),
                                    "a line is at most %d bytes", CSV_MAX_LINE);
            break;
        }
        memcpy(line, p, l);
        line[l] = '\0';
        p = nl ? nl + 1 : end;
        if (l == 0)
            continue;

        char *cols[CSV_MAX_COLUMNS];
        size_t nc = split_csv(line, cols, CSV_MAX_COLUMNS);
        if (code_col < 0) {
            for (size_t i = 0; i < nc; i++) {
                for (size_t k = 0; k < 4 && code_col < 0; k++) {
                    if (strcmp(cols[i], code_names[k]) == 0)
                        code_col = (int)i;
                }
                if (strcmp(cols[i], "latitude") == 0 ||
                    strcmp(cols[i], "lat") == 0)
                    lat_col = (int)i;
                if (strcmp(cols[i], "longitude") == 0 ||
                    strcmp(cols[i], "lng") == 0 || strcmp(cols[i], "lon") == 0)
                    lng_col = (int)i;
            }
            if (code_col < 0 || lat_col < 0 || lng_col < 0)
                r = territory_error_set(
                    err, 422, "invalid_value", xstrdup("line 1"),
                    "the header needs a postcode, sector, district or "
                    "zip column and latitude and longitude columns");
            continue;
        }

        double lat = 0, lng = 0;
        char *canon = NULL;
        int need = code_col > lat_col ? code_col : lat_col;
        need = need > lng_col ? need : lng_col;
        if ((int)nc <= need || !parse_double(cols[lat_col], &lat) ||
            !parse_double(cols[lng_col], &lng) || lat < -90 || lat > 90 ||
            lng < -180 || lng > 180) {
            r = territory_error_set(
                err, 422, "invalid_value", xasprintf("line %zu", line_no),
                "not a postcode with a WGS84 latitude and longitude");
            break;
        }
        if (postcode_rule_normalize(cols[code_col], &canon) != FS_OK) {
            r = territory_error_set(
                err, 422, "invalid_value", xasprintf("line %zu", line_no),
                "'%.40s' is not " POSTCODE_PLACE, cols[code_col]);
            break;
        }
        if (n == TERRITORY_MAX_CENTROIDS) {
            free(canon);
            r = territory_error_set(
                err, 413, "too_large", xasprintf("line %zu", line_no),
                "a file has at most %d centroids", TERRITORY_MAX_CENTROIDS);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            list = xrealloc(list, cap * sizeof(*list));
        }
        list[n++] = (struct store_centroid){canon, lat, lng};
    }
    if (r == FS_OK && code_col < 0)
        r = territory_error_set(err, 422, "invalid_value", xstrdup("line 1"),
                                "the file has no header");
    if (r != FS_OK) {
        territory_centroids_free(list, n);
        return r;
    }
    *out = list;
    *n_out = n;
    return FS_OK;
}

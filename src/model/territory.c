/* Territory lookup over GEOS: GeoJSON polygons checked and turned into
 * GEOS geometries, prepared and put in an STRtree; postcode rules in a
 * sorted array searched by prefix; postcode centroids likewise. */
#include "model/territory.h"

#include "base/alloc.h"
#include "model/postcode.h"

#include <geos_c.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRTREE_NODE_CAPACITY 10

struct part {
    GEOSGeometry *polygon;
    const GEOSPreparedGeometry *prepared;
    size_t terr; /* index into terrs */
};

struct terr {
    int64_t id;
    int priority;
};

struct rule {
    char prefix[POSTCODE_MAX_LEN + 1];
    size_t len;
    size_t terr;
};

struct territory_index {
    GEOSContextHandle_t geos;
    char geos_error[256];
    struct terr *terrs;
    size_t n_terrs;
    struct part *parts;
    size_t n_parts;
    struct rule *rules;
    size_t n_rules;
    GEOSSTRtree *tree;
    bool built;
    /* scratch of one lookup */
    struct part **hits;
    size_t n_hits;
    size_t cap_hits;
};

void territory_problem_clear(struct territory_problem *p)
{
    if (!p)
        return;
    free(p->where);
    free(p->message);
    json_decref(p->repaired);
    p->where = NULL;
    p->message = NULL;
    p->repaired = NULL;
}

static fs_result problem(struct territory_problem *p, fs_result code,
                         char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills *p (taking where) and returns code. */
static fs_result problem(struct territory_problem *p, fs_result code,
                         char *where, const char *fmt, ...)
{
    va_list ap;
    char msg[512];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    territory_problem_clear(p);
    p->where = where;
    p->message = xstrdup(msg);
    return code;
}

static void on_geos_message(const char *message, void *userdata)
{
    struct territory_index *ix = userdata;

    snprintf(ix->geos_error, sizeof(ix->geos_error), "%s", message);
}

struct territory_index *territory_index_new(void)
{
    struct territory_index *ix = xcalloc(1, sizeof(*ix));

    ix->geos = GEOS_init_r();
    if (!ix->geos)
        abort(); /* out of memory */
    GEOSContext_setErrorMessageHandler_r(ix->geos, on_geos_message, ix);
    GEOSContext_setNoticeMessageHandler_r(ix->geos, NULL, NULL);
    return ix;
}

void territory_index_free(struct territory_index *ix)
{
    if (!ix)
        return;
    if (ix->tree)
        GEOSSTRtree_destroy_r(ix->geos, ix->tree);
    for (size_t i = 0; i < ix->n_parts; i++) {
        if (ix->parts[i].prepared)
            GEOSPreparedGeom_destroy_r(ix->geos, ix->parts[i].prepared);
        GEOSGeom_destroy_r(ix->geos, ix->parts[i].polygon);
    }
    free(ix->parts);
    free(ix->terrs);
    free(ix->rules);
    free(ix->hits);
    GEOS_finish_r(ix->geos);
    free(ix);
}

size_t territory_index_polygons(const struct territory_index *ix)
{
    return ix->n_parts;
}

size_t territory_index_territories(const struct territory_index *ix)
{
    return ix->n_terrs;
}

/* ---- GeoJSON geometry to GEOS ---- */

/* Polygons parsed from one geometry, not yet owned by the index. */
struct parsed {
    GEOSGeometry **polygons;
    size_t n;
    size_t vertices;
    bool repair;         /* close open rings, make invalid polygons valid */
    size_t rings_closed; /* repairs made */
    size_t polygons_made_valid;
    char *first_repair; /* where the first repair was */
};

static void parsed_free(GEOSContextHandle_t h, struct parsed *p)
{
    for (size_t i = 0; i < p->n; i++)
        GEOSGeom_destroy_r(h, p->polygons[i]);
    free(p->polygons);
    free(p->first_repair);
    memset(p, 0, sizeof(*p));
}

static void note_repair(struct parsed *acc, const char *path)
{
    if (!acc->first_repair)
        acc->first_repair = xstrdup(path);
}

static void keep_polygon(struct parsed *acc, GEOSGeometry *polygon)
{
    acc->polygons =
        xrealloc(acc->polygons, (acc->n + 1) * sizeof(*acc->polygons));
    acc->polygons[acc->n++] = polygon;
}

/* A GEOS ring's positions as GeoJSON [lng, lat] pairs. */
static json_t *ring_json(GEOSContextHandle_t h, const GEOSGeometry *ring)
{
    const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(h, ring);
    unsigned n = 0;
    json_t *out = json_array();

    if (!seq || !GEOSCoordSeq_getSize_r(h, seq, &n))
        return out;
    for (unsigned i = 0; i < n; i++) {
        double x = 0, y = 0;
        GEOSCoordSeq_getXY_r(h, seq, i, &x, &y);
        json_array_append_new(out, json_pack("[f, f]", x, y));
    }
    return out;
}

/* The polygons as one GeoJSON MultiPolygon. */
static json_t *polygons_json(GEOSContextHandle_t h,
                             GEOSGeometry *const *polygons, size_t n)
{
    json_t *coords = json_array();

    for (size_t i = 0; i < n; i++) {
        json_t *rings = json_array();
        json_array_append_new(
            rings, ring_json(h, GEOSGetExteriorRing_r(h, polygons[i])));
        int holes = GEOSGetNumInteriorRings_r(h, polygons[i]);
        for (int k = 0; k < holes; k++)
            json_array_append_new(
                rings, ring_json(h, GEOSGetInteriorRingN_r(h, polygons[i], k)));
        json_array_append_new(coords, rings);
    }
    return json_pack("{s:s, s:o}", "type", "MultiPolygon", "coordinates",
                     coords);
}

/* One ring: at least four [lng, lat] positions, the last equal to the
 * first. path is e.g. "coordinates[0]" for messages. */
static fs_result parse_ring(struct territory_index *ix, const json_t *ring,
                            const char *path, struct parsed *acc,
                            GEOSGeometry **out, struct territory_problem *pb)
{
    size_t n = json_is_array(ring) ? json_array_size(ring) : 0;

    if (!json_is_array(ring))
        return problem(pb, FS_ERR_INVALID, xstrdup(path),
                       "a ring must be an array of positions");
    if (n > TERRITORY_MAX_RING)
        return problem(pb, FS_ERR_TOO_LARGE, xstrdup(path),
                       "a ring has at most %d positions", TERRITORY_MAX_RING);
    if (acc->vertices + n > TERRITORY_MAX_VERTICES)
        return problem(pb, FS_ERR_TOO_LARGE, xstrdup(path),
                       "a territory has at most %d positions",
                       TERRITORY_MAX_VERTICES);
    if (n < 4)
        return problem(pb, FS_ERR_INVALID, xstrdup(path),
                       "a ring needs at least 4 positions");

    /* Room for one more position, in case a repair closes the ring. */
    GEOSCoordSequence *seq =
        GEOSCoordSeq_create_r(ix->geos, (unsigned)n + 1, 2);
    if (!seq)
        abort(); /* out of memory */
    for (size_t i = 0; i < n; i++) {
        const json_t *pos = json_array_get(ring, i);
        const json_t *x = json_array_get(pos, 0);
        const json_t *y = json_array_get(pos, 1);
        size_t dims = json_is_array(pos) ? json_array_size(pos) : 0;
        double lng = json_number_value(x);
        double lat = json_number_value(y);
        if (dims < 2 || dims > 3 || !json_is_number(x) || !json_is_number(y)) {
            GEOSCoordSeq_destroy_r(ix->geos, seq);
            return problem(pb, FS_ERR_INVALID, xasprintf("%s[%zu]", path, i),
                           "a position is [longitude, latitude]");
        }
        if (!isfinite(lng) || !isfinite(lat) || lng < -180 || lng > 180 ||
            lat < -90 || lat > 90) {
            GEOSCoordSeq_destroy_r(ix->geos, seq);
            return problem(pb, FS_ERR_INVALID, xasprintf("%s[%zu]", path, i),
                           "longitude must be in -180..180 and latitude in "
                           "-90..90 (WGS84 degrees)");
        }
        GEOSCoordSeq_setXY_r(ix->geos, seq, (unsigned)i, lng, lat);
    }
    double x0, y0, xn, yn;
    GEOSCoordSeq_getXY_r(ix->geos, seq, 0, &x0, &y0);
    GEOSCoordSeq_getXY_r(ix->geos, seq, (unsigned)n - 1, &xn, &yn);
    size_t used = n;
    if (x0 != xn || y0 != yn) {
        if (!acc->repair) {
            GEOSCoordSeq_destroy_r(ix->geos, seq);
            return problem(pb, FS_ERR_INVALID, xstrdup(path),
                           "a ring must end where it starts");
        }
        GEOSCoordSeq_setXY_r(ix->geos, seq, (unsigned)n, x0, y0);
        used = n + 1;
        acc->rings_closed++;
        note_repair(acc, path);
    }
    if (used == n) {
        /* Drop the spare position: copy the n used ones. */
        GEOSCoordSequence *exact =
            GEOSCoordSeq_create_r(ix->geos, (unsigned)n, 2);
        if (!exact)
            abort(); /* out of memory */
        for (size_t i = 0; i < n; i++) {
            double x, y;
            GEOSCoordSeq_getXY_r(ix->geos, seq, (unsigned)i, &x, &y);
            GEOSCoordSeq_setXY_r(ix->geos, exact, (unsigned)i, x, y);
        }
        GEOSCoordSeq_destroy_r(ix->geos, seq);
        seq = exact;
    }
    *out = GEOSGeom_createLinearRing_r(ix->geos, seq);
    if (!*out)
        return problem(pb, FS_ERR_INVALID, xstrdup(path),
                       "not a usable ring: %s", ix->geos_error);
    acc->vertices += n;
    return FS_OK;
}

/* GEOS's repair of an invalid polygon, kept as the polygons it yields
 * (lines and points left by the repair cover no area and are dropped). */
static fs_result make_valid(struct territory_index *ix,
                            const GEOSGeometry *polygon, const char *path,
                            struct parsed *acc, struct territory_problem *pb)
{
    GEOSGeometry *fixed = GEOSMakeValid_r(ix->geos, polygon);
    size_t kept = 0;

    if (!fixed)
        return problem(pb, FS_ERR_INVALID, xstrdup(path),
                       "invalid polygon that GEOS cannot repair: %s",
                       ix->geos_error);
    int n = GEOSGetNumGeometries_r(ix->geos, fixed);
    for (int i = 0; i < n; i++) {
        const GEOSGeometry *g = GEOSGetGeometryN_r(ix->geos, fixed, i);
        int type = GEOSGeomTypeId_r(ix->geos, g);
        if (type == GEOS_POLYGON) {
            keep_polygon(acc, GEOSGeom_clone_r(ix->geos, g));
            kept++;
        } else if (type == GEOS_MULTIPOLYGON) {
            for (int j = 0; j < GEOSGetNumGeometries_r(ix->geos, g); j++) {
                keep_polygon(
                    acc, GEOSGeom_clone_r(ix->geos,
                                          GEOSGetGeometryN_r(ix->geos, g, j)));
                kept++;
            }
        }
    }
    GEOSGeom_destroy_r(ix->geos, fixed);
    if (kept == 0)
        return problem(pb, FS_ERR_INVALID, xstrdup(path),
                       "invalid polygon with no area left once repaired");
    acc->polygons_made_valid++;
    note_repair(acc, path);
    return FS_OK;
}

/* One polygon: an outer ring and its holes, GEOS-valid (or repaired). */
static fs_result parse_polygon(struct territory_index *ix, const json_t *rings,
                               const char *path, struct parsed *acc,
                               struct territory_problem *pb)
{
    size_t n = json_is_array(rings) ? json_array_size(rings) : 0;
    GEOSGeometry **geoms = NULL;
    GEOSGeometry *polygon = NULL;
    fs_result result = FS_OK;
    size_t made = 0;

    if (n == 0)
        return problem(pb, FS_ERR_INVALID, xstrdup(path),
                       "a polygon is a non-empty array of rings");
    if (acc->n >= TERRITORY_MAX_POLYGONS)
        return problem(pb, FS_ERR_TOO_LARGE, xstrdup(path),
                       "a territory has at most %d polygons",
                       TERRITORY_MAX_POLYGONS);
    geoms = xcalloc(n, sizeof(*geoms));
    for (; made < n; made++) {
        char *ring_path = xasprintf("%s[%zu]", path, made);
        result = parse_ring(ix, json_array_get(rings, made), ring_path, acc,
                            &geoms[made], pb);
        free(ring_path);
        if (result != FS_OK)
            goto out;
    }

    polygon = GEOSGeom_createPolygon_r(ix->geos, geoms[0], geoms + 1,
                                       (unsigned)(n - 1));
    if (!polygon) {
        result = problem(pb, FS_ERR_INVALID, xstrdup(path),
                         "not a usable polygon: %s", ix->geos_error);
        goto out;
    }
    made = 0; /* the polygon owns the rings now */
    if (GEOSisValid_r(ix->geos, polygon) == 1) {
        keep_polygon(acc, polygon);
    } else if (acc->repair) {
        result = make_valid(ix, polygon, path, acc, pb);
        GEOSGeom_destroy_r(ix->geos, polygon);
    } else {
        char *reason = GEOSisValidReason_r(ix->geos, polygon);
        result = problem(pb, FS_ERR_INVALID, xstrdup(path),
                         "invalid polygon: %s", reason ? reason : "unknown");
        GEOSFree_r(ix->geos, reason);
        GEOSGeom_destroy_r(ix->geos, polygon);
    }

out:
    for (size_t i = 0; i < made; i++) {
        if (geoms[i])
            GEOSGeom_destroy_r(ix->geos, geoms[i]);
    }
    free(geoms);
    return result;
}

static fs_result parse_geometry(struct territory_index *ix,
                                const json_t *geometry, struct parsed *out,
                                struct territory_problem *pb)
{
    const char *type = json_string_value(json_object_get(geometry, "type"));
    const json_t *coords = json_object_get(geometry, "coordinates");
    fs_result result = FS_OK;

    if (!json_is_object(geometry) || !type)
        return problem(pb, FS_ERR_INVALID, xstrdup("type"),
                       "a geometry is an object with a type");
    if (!json_is_array(coords))
        return problem(pb, FS_ERR_INVALID, xstrdup("coordinates"),
                       "coordinates must be an array");
    if (strcmp(type, "Polygon") == 0)
        return parse_polygon(ix, coords, "coordinates", out, pb);
    if (strcmp(type, "MultiPolygon") != 0)
        return problem(pb, FS_ERR_INVALID, xstrdup("type"),
                       "a territory's geometry is a Polygon or MultiPolygon, "
                       "not %.40s",
                       type);
    if (json_array_size(coords) == 0)
        return problem(pb, FS_ERR_INVALID, xstrdup("coordinates"),
                       "a MultiPolygon needs at least one polygon");
    for (size_t i = 0; i < json_array_size(coords) && result == FS_OK; i++) {
        char *path = xasprintf("coordinates[%zu]", i);
        result = parse_polygon(ix, json_array_get(coords, i), path, out, pb);
        free(path);
    }
    return result;
}

/* ---- building ---- */

static int compare_rules(const void *a, const void *b)
{
    const struct rule *x = a;
    const struct rule *y = b;
    int c = strcmp(x->prefix, y->prefix);

    if (c != 0)
        return c;
    return x->terr < y->terr ? -1 : x->terr > y->terr;
}

fs_result territory_index_add(struct territory_index *ix, int64_t id,
                              int priority, const char *const *postcodes,
                              size_t n_postcodes, const json_t *geometry,
                              bool repair, struct territory_problem *pb)
{
    struct parsed parsed = {.repair = repair};

    if (ix->built || id <= 0)
        return FS_ERR_INVALID;
    for (size_t i = 0; i < ix->n_terrs; i++) {
        if (ix->terrs[i].id == id)
            return FS_ERR_CONFLICT;
    }
    if (n_postcodes > TERRITORY_MAX_POSTCODES)
        return problem(pb, FS_ERR_TOO_LARGE, xstrdup("postcodes"),
                       "a territory has at most %d postcode rules",
                       TERRITORY_MAX_POSTCODES);
    for (size_t i = 0; i < n_postcodes; i++) {
        if (!postcodes[i] || strlen(postcodes[i]) > POSTCODE_MAX_LEN)
            return problem(pb, FS_ERR_INVALID, xasprintf("postcodes[%zu]", i),
                           "not a canonical postcode");
    }
    if (geometry && !json_is_null(geometry)) {
        fs_result result = parse_geometry(ix, geometry, &parsed, pb);
        if (result != FS_OK) {
            parsed_free(ix->geos, &parsed);
            return result;
        }
    }

    size_t t = ix->n_terrs++;
    ix->terrs = xrealloc(ix->terrs, ix->n_terrs * sizeof(*ix->terrs));
    ix->terrs[t] = (struct terr){.id = id, .priority = priority};

    if (n_postcodes > 0)
        ix->rules = xrealloc(ix->rules,
                             (ix->n_rules + n_postcodes) * sizeof(*ix->rules));
    for (size_t i = 0; i < n_postcodes; i++) {
        struct rule *r = &ix->rules[ix->n_rules++];
        r->len = strlen(postcodes[i]);
        memcpy(r->prefix, postcodes[i], r->len + 1);
        r->terr = t;
    }

    if (parsed.n > 0)
        ix->parts =
            xrealloc(ix->parts, (ix->n_parts + parsed.n) * sizeof(*ix->parts));
    for (size_t i = 0; i < parsed.n; i++) {
        ix->parts[ix->n_parts++] =
            (struct part){.polygon = parsed.polygons[i], .terr = t};
    }
    if (parsed.rings_closed || parsed.polygons_made_valid) {
        problem(pb, FS_OK, parsed.first_repair,
                "repaired: %zu ring(s) closed, %zu polygon(s) made valid",
                parsed.rings_closed, parsed.polygons_made_valid);
        parsed.first_repair = NULL;
        if (pb) {
            json_decref(pb->repaired);
            pb->repaired = polygons_json(ix->geos, parsed.polygons, parsed.n);
        }
    }
    free(parsed.first_repair);
    free(parsed.polygons);
    return FS_OK;
}

fs_result territory_index_build(struct territory_index *ix)
{
    if (ix->built)
        return FS_ERR_INVALID;
    if (ix->n_rules > 0)
        qsort(ix->rules, ix->n_rules, sizeof(*ix->rules), compare_rules);
    ix->tree = GEOSSTRtree_create_r(ix->geos, STRTREE_NODE_CAPACITY);
    if (!ix->tree)
        abort(); /* out of memory */
    for (size_t i = 0; i < ix->n_parts; i++) {
        struct part *p = &ix->parts[i];
        p->prepared = GEOSPrepare_r(ix->geos, p->polygon);
        if (!p->prepared)
            return FS_ERR_INVALID;
        GEOSSTRtree_insert_r(ix->geos, ix->tree, p->polygon, p);
    }
    /* GEOS builds the tree on its first query: make one now, so the cost
     * is paid here rather than by the first lookup. */
    ix->built = true;
    (void)territory_index_find(ix, NULL, true, 0.0, 0.0);
    return FS_OK;
}

/* ---- lookup ---- */

/* Whether territory a (matched by a rule of length alen) ranks before b. */
static bool ranks_before(const struct territory_index *ix, size_t a,
                         size_t alen, size_t b, size_t blen)
{
    const struct terr *x = &ix->terrs[a];
    const struct terr *y = &ix->terrs[b];

    if (x->priority != y->priority)
        return x->priority > y->priority;
    if (alen != blen)
        return alen > blen;
    return x->id < y->id;
}

static bool find_by_postcode(const struct territory_index *ix,
                             const char *postcode, size_t *terr)
{
    char prefixes[POSTCODE_MAX_PREFIXES][POSTCODE_MAX_LEN + 1];
    size_t n = postcode_prefixes(postcode, prefixes);
    bool found = false;
    size_t best = 0, best_len = 0;

    for (size_t i = 0; i < n; i++) {
        struct rule key = {.terr = 0};
        memcpy(key.prefix, prefixes[i], sizeof(key.prefix));
        /* The first rule with this prefix: lower bound by binary search. */
        size_t lo = 0, hi = ix->n_rules;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(ix->rules[mid].prefix, key.prefix) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (;
             lo < ix->n_rules && strcmp(ix->rules[lo].prefix, key.prefix) == 0;
             lo++) {
            const struct rule *r = &ix->rules[lo];
            if (!found || ranks_before(ix, r->terr, r->len, best, best_len)) {
                best = r->terr;
                best_len = r->len;
                found = true;
            }
        }
    }
    *terr = best;
    return found;
}

static void on_candidate(void *item, void *userdata)
{
    struct territory_index *ix = userdata;

    if (ix->n_hits == ix->cap_hits) {
        ix->cap_hits = ix->cap_hits ? ix->cap_hits * 2 : 16;
        ix->hits = xrealloc(ix->hits, ix->cap_hits * sizeof(*ix->hits));
    }
    ix->hits[ix->n_hits++] = item;
}

/* The best-ranked territory among the parts that cover the point: the
 * STRtree's hits with prepared predicates (indexed), or every part with
 * plain ones. */
static struct territory_match best_cover(struct territory_index *ix,
                                         bool indexed, size_t n,
                                         const GEOSGeometry *pt)
{
    struct territory_match m = {0, TERRITORY_NONE};
    bool found = false;
    size_t best = 0;

    for (size_t i = 0; i < n; i++) {
        const struct part *p = indexed ? ix->hits[i] : &ix->parts[i];
        if (found && !ranks_before(ix, p->terr, 0, best, 0))
            continue;
        char covers = indexed
                          ? GEOSPreparedIntersects_r(ix->geos, p->prepared, pt)
                          : GEOSIntersects_r(ix->geos, p->polygon, pt);
        if (covers == 1) {
            best = p->terr;
            found = true;
        }
    }
    if (found) {
        m.id = ix->terrs[best].id;
        m.how = TERRITORY_BY_POLYGON;
    }
    return m;
}

struct territory_match territory_index_find(struct territory_index *ix,
                                            const char *postcode,
                                            bool has_point, double lat,
                                            double lng)
{
    struct territory_match m = {0, TERRITORY_NONE};
    size_t terr = 0;

    if (!ix || !ix->built)
        return m;
    if (postcode && ix->n_rules > 0 && find_by_postcode(ix, postcode, &terr)) {
        m.id = ix->terrs[terr].id;
        m.how = TERRITORY_BY_POSTCODE;
        return m;
    }
    if (!has_point || ix->n_parts == 0)
        return m;

    GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(ix->geos, lng, lat);
    if (!pt)
        abort(); /* out of memory */
    ix->n_hits = 0;
    GEOSSTRtree_query_r(ix->geos, ix->tree, pt, on_candidate, ix);
    m = best_cover(ix, true, ix->n_hits, pt);
    GEOSGeom_destroy_r(ix->geos, pt);
    return m;
}

struct territory_match territory_index_find_linear(struct territory_index *ix,
                                                   double lat, double lng)
{
    struct territory_match m = {0, TERRITORY_NONE};

    if (!ix || ix->n_parts == 0)
        return m;
    GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(ix->geos, lng, lat);
    if (!pt)
        abort(); /* out of memory */
    m = best_cover(ix, false, ix->n_parts, pt);
    GEOSGeom_destroy_r(ix->geos, pt);
    return m;
}

/* ---- centroids ---- */

struct centroid {
    char postcode[POSTCODE_MAX_LEN + 1];
    double lat;
    double lng;
    size_t seq; /* order of adding: the later of two equal postcodes wins */
};

struct centroid_table {
    struct centroid *items;
    size_t n;
    size_t cap;
    bool sorted;
};

struct centroid_table *centroid_table_new(void)
{
    return xcalloc(1, sizeof(struct centroid_table));
}

void centroid_table_free(struct centroid_table *t)
{
    if (!t)
        return;
    free(t->items);
    free(t);
}

void centroid_table_add(struct centroid_table *t, const char *postcode,
                        double lat, double lng)
{
    size_t len = strlen(postcode);

    if (len == 0 || len > POSTCODE_MAX_LEN)
        return;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->items = xrealloc(t->items, t->cap * sizeof(*t->items));
    }
    struct centroid *c = &t->items[t->n];
    memcpy(c->postcode, postcode, len + 1);
    c->lat = lat;
    c->lng = lng;
    c->seq = t->n++;
    t->sorted = false;
}

static int compare_centroids(const void *a, const void *b)
{
    const struct centroid *x = a;
    const struct centroid *y = b;
    int c = strcmp(x->postcode, y->postcode);

    if (c != 0)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts and keeps the last added of each postcode. */
static void centroid_sort(struct centroid_table *t)
{
    size_t kept = 0;

    qsort(t->items, t->n, sizeof(*t->items), compare_centroids);
    for (size_t i = 0; i < t->n; i++) {
        if (i + 1 < t->n &&
            strcmp(t->items[i].postcode, t->items[i + 1].postcode) == 0)
            continue;
        t->items[kept++] = t->items[i];
    }
    t->n = kept;
    t->sorted = true;
}

static int compare_key(const void *key, const void *item)
{
    const struct centroid *c = item;

    return strcmp(key, c->postcode);
}

bool centroid_table_find(struct centroid_table *t, const char *postcode,
                         double *lat, double *lng)
{
    char prefixes[POSTCODE_MAX_PREFIXES][POSTCODE_MAX_LEN + 1];

    if (!t || !postcode || t->n == 0)
        return false;
    if (!t->sorted)
        centroid_sort(t);
    size_t n = postcode_prefixes(postcode, prefixes);
    /* A UK postcode's last prefix is its area (letters only): too coarse
     * to place a deal. */
    if (n > 1 && strspn(prefixes[n - 1], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
                     strlen(prefixes[n - 1]))
        n--;
    for (size_t i = 0; i < n; i++) {
        const struct centroid *c = bsearch(prefixes[i], t->items, t->n,
                                           sizeof(*t->items), compare_key);
        if (c) {
            *lat = c->lat;
            *lng = c->lng;
            return true;
        }
    }
    return false;
}

size_t centroid_table_size(const struct centroid_table *t)
{
    return t ? t->n : 0;
}

/* Unit tests of the territory lookup: postcode rules and their prefixes,
 * priority where territories overlap, a point on a real shared district
 * boundary, postcode rules before polygons, the STRtree against the plain
 * scan on real points, geometry checks and repairs, centroids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "model/postcode.h"
#include "model/territory.h"
#include "services/territory.h"
#include "test_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A square polygon from (lng0, lat0) to (lng1, lat1). */
static json_t *square(double lng0, double lat0, double lng1, double lat1)
{
    return json_pack("{s:s, s:[[[f,f],[f,f],[f,f],[f,f],[f,f]]]}", "type",
                     "Polygon", "coordinates", lng0, lat0, lng1, lat0, lng1,
                     lat1, lng0, lat1, lng0, lat0);
}

static void add(struct territory_index *ix, int64_t id, int priority,
                const char *const *postcodes, size_t n, json_t *geometry)
{
    struct territory_problem pb = {0};

    assert_int_equal(territory_index_add(ix, id, priority, postcodes, n,
                                         geometry, false, &pb),
                     FS_OK);
    assert_null(pb.message);
    json_decref(geometry);
}

static int64_t find(struct territory_index *ix, const char *postcode,
                    double lat, double lng, enum territory_how *how)
{
    struct territory_match m =
        territory_index_find(ix, postcode, true, lat, lng);
    if (how)
        *how = m.how;
    return m.id;
}

static void test_postcode_prefixes(void **state)
{
    char p[POSTCODE_MAX_PREFIXES][POSTCODE_MAX_LEN + 1];

    assert_int_equal(postcode_prefixes("M1 1AE", p), 4);
    assert_string_equal(p[0], "M1 1AE");
    assert_string_equal(p[1], "M1 1");
    assert_string_equal(p[2], "M1");
    assert_string_equal(p[3], "M");
    assert_int_equal(postcode_prefixes("EC1A 1BB", p), 4);
    assert_string_equal(p[2], "EC1A");
    assert_string_equal(p[3], "EC");
    assert_int_equal(postcode_prefixes("M1 1", p), 3);
    assert_int_equal(postcode_prefixes("M1", p), 2);
    assert_int_equal(postcode_prefixes("02134-1234", p), 2);
    assert_string_equal(p[1], "02134");
    assert_int_equal(postcode_prefixes("02134", p), 1);
}

/* Rules are written the way people write them and still match: case,
 * spaces and lost leading zeros are normalised on every path. */
static void test_rules_normalised_and_on_word_boundaries(void **state)
{
    const char *inputs[] = {"m1", " m2  1 ", "2134", "sw1a1aa"};
    char *rules[4];

    for (int i = 0; i < 4; i++)
        assert_int_equal(postcode_normalize(inputs[i], &rules[i]), FS_OK);
    struct territory_index *ix = territory_index_new();
    add(ix, 1, 0, (const char *const *)&rules[0], 1, NULL);
    add(ix, 2, 0, (const char *const *)&rules[1], 1, NULL);
    add(ix, 3, 0, (const char *const *)&rules[2], 1, NULL);
    add(ix, 4, 0, (const char *const *)&rules[3], 1, NULL);
    assert_int_equal(territory_index_build(ix), FS_OK);

    struct territory_match m = territory_index_find(ix, "M1 1AE", false, 0, 0);
    assert_int_equal(m.id, 1);
    assert_int_equal(m.how, TERRITORY_BY_POSTCODE);
    assert_int_equal(territory_index_find(ix, "M2 1AB", false, 0, 0).id, 2);
    assert_int_equal(territory_index_find(ix, "M2 4AB", false, 0, 0).id, 0);
    /* M11 is not under M1. */
    assert_int_equal(territory_index_find(ix, "M11 1AA", false, 0, 0).id, 0);
    assert_int_equal(territory_index_find(ix, "02134-5678", false, 0, 0).id, 3);
    assert_int_equal(territory_index_find(ix, "SW1A 1AA", false, 0, 0).id, 4);
    territory_index_free(ix);
    for (int i = 0; i < 4; i++)
        free(rules[i]);
}

static void test_priority_decides_overlaps(void **state)
{
    struct territory_index *ix = territory_index_new();

    add(ix, 1, 0, NULL, 0, square(0, 0, 2, 2));
    add(ix, 2, 5, NULL, 0, square(1, 1, 3, 3));
    add(ix, 3, 5, NULL, 0, square(1, 1, 3, 3)); /* same priority as 2 */
    assert_int_equal(territory_index_build(ix), FS_OK);

    assert_int_equal(find(ix, NULL, 0.5, 0.5, NULL), 1);
    /* In all three: priority 5 wins, and of 2 and 3 the lower id. */
    assert_int_equal(find(ix, NULL, 1.5, 1.5, NULL), 2);
    assert_int_equal(find(ix, NULL, 2.5, 2.5, NULL), 2);
    assert_int_equal(find(ix, NULL, 5, 5, NULL), 0);
    territory_index_free(ix);

    /* Postcode rules: priority first, then the longer rule, then id. */
    const char *area[] = {"M"};
    const char *sector[] = {"M1 1"};
    ix = territory_index_new();
    add(ix, 7, 0, area, 1, NULL);
    add(ix, 8, 0, sector, 1, NULL);
    assert_int_equal(territory_index_build(ix), FS_OK);
    assert_int_equal(territory_index_find(ix, "M1 1AE", false, 0, 0).id, 8);
    territory_index_free(ix);
    ix = territory_index_new();
    add(ix, 7, 1, area, 1, NULL);
    add(ix, 8, 0, sector, 1, NULL);
    assert_int_equal(territory_index_build(ix), FS_OK);
    assert_int_equal(territory_index_find(ix, "M1 1AE", false, 0, 0).id, 7);
    territory_index_free(ix);
}

static void test_postcode_rule_before_polygon(void **state)
{
    const char *rule[] = {"M1"};
    struct territory_index *ix = territory_index_new();
    enum territory_how how;

    add(ix, 1, 100, NULL, 0, square(-3, 53, -2, 54)); /* covers Manchester */
    add(ix, 2, 0, rule, 1, NULL);
    assert_int_equal(territory_index_build(ix), FS_OK);
    /* The rule wins although the polygon has the higher priority. */
    assert_int_equal(find(ix, "M1 1AE", 53.48, -2.24, &how), 2);
    assert_int_equal(how, TERRITORY_BY_POSTCODE);
    assert_int_equal(find(ix, "M4 5AB", 53.48, -2.24, &how), 1);
    assert_int_equal(how, TERRITORY_BY_POLYGON);
    /* In no territory at all. */
    assert_int_equal(find(ix, "AB10 1AA", 57.1, -2.1, &how), 0);
    assert_int_equal(how, TERRITORY_NONE);
    territory_index_free(ix);
}

static json_t *load_districts(void)
{
    char *path = test_shared_path("data/geo_uk/uk_postcode_districts.geojson");
    json_t *fc = json_load_file(path, 0, NULL);

    free(path);
    assert_non_null(fc);
    return fc;
}

static json_t *district(json_t *fc, const char *name)
{
    size_t i;
    json_t *f;

    json_array_foreach(json_object_get(fc, "features"), i, f)
    {
        const char *d = json_string_value(
            json_object_get(json_object_get(f, "properties"), "district"));
        if (d && strcmp(d, name) == 0)
            return json_object_get(f, "geometry");
    }
    fail_msg("no district %s", name);
    return NULL;
}

/* A vertex of a's outer ring that is also a vertex of b's. */
static bool shared_vertex(json_t *a, json_t *b, double *lng, double *lat)
{
    json_t *ra = json_array_get(json_object_get(a, "coordinates"), 0);
    json_t *rb = json_array_get(json_object_get(b, "coordinates"), 0);

    for (size_t i = 0; i < json_array_size(ra); i++) {
        json_t *pa = json_array_get(ra, i);
        for (size_t j = 0; j < json_array_size(rb); j++) {
            json_t *pb = json_array_get(rb, j);
            if (json_real_value(json_array_get(pa, 0)) ==
                    json_real_value(json_array_get(pb, 0)) &&
                json_real_value(json_array_get(pa, 1)) ==
                    json_real_value(json_array_get(pb, 1))) {
                *lng = json_real_value(json_array_get(pa, 0));
                *lat = json_real_value(json_array_get(pa, 1));
                return true;
            }
        }
    }
    return false;
}

/* M1 and M4 share a boundary in the real data: a point on it is covered
 * by both polygons and belongs to exactly one territory, the same one on
 * every lookup and whatever order the territories were added in. */
static void test_real_shared_edge_is_deterministic(void **state)
{
    json_t *fc = load_districts();
    json_t *m1 = district(fc, "M1");
    json_t *m4 = district(fc, "M4");
    double lng = 0, lat = 0;

    assert_true(shared_vertex(m1, m4, &lng, &lat));
    for (int order = 0; order < 2; order++) {
        for (int prio = 0; prio < 3; prio++) {
            struct territory_index *ix = territory_index_new();
            int p1 = prio == 1 ? 1 : 0, p4 = prio == 2 ? 1 : 0;
            if (order == 0) {
                add(ix, 10, p1, NULL, 0, json_incref(m1));
                add(ix, 20, p4, NULL, 0, json_incref(m4));
            } else {
                add(ix, 20, p4, NULL, 0, json_incref(m4));
                add(ix, 10, p1, NULL, 0, json_incref(m1));
            }
            assert_int_equal(territory_index_build(ix), FS_OK);
            /* Both cover the point: the plain scan agrees. */
            int64_t want = prio == 2 ? 20 : 10;
            for (int k = 0; k < 5; k++)
                assert_int_equal(find(ix, NULL, lat, lng, NULL), want);
            assert_int_equal(territory_index_find_linear(ix, lat, lng).id,
                             want);
            territory_index_free(ix);
        }
    }
    json_decref(fc);
}

static char *read_text(const char *relative, size_t *len)
{
    char *path = test_shared_path(relative);
    struct buf b = {0};

    assert_int_equal(buf_read_file(&b, path, 1u << 30), FS_OK);
    free(path);
    *len = b.len;
    return buf_steal(&b);
}

/* Every district its own territory (id = index + 1). */
static struct territory_index *district_index(json_t *fc)
{
    struct territory_index *ix = territory_index_new();
    size_t i;
    json_t *f;

    json_array_foreach(json_object_get(fc, "features"), i, f)
    {
        struct territory_problem pb = {0};
        assert_int_equal(territory_index_add(ix, (int64_t)i + 1, 0, NULL, 0,
                                             json_object_get(f, "geometry"),
                                             true, &pb),
                         FS_OK);
        territory_problem_clear(&pb);
    }
    assert_int_equal(territory_index_build(ix), FS_OK);
    return ix;
}

/* The STRtree with prepared geometries places real M-area unit postcodes
 * exactly as testing every one of the 2,736 polygons does; nearly all
 * fall in their own district, and the few that do not are the files'
 * real boundary disagreements, placed by the polygon that covers them. */
static void test_index_matches_plain_scan_on_real_points(void **state)
{
    size_t len = 0, n = 0;
    char *csv = read_text("data/geo_uk/uk_postcode_units_area_M.csv", &len);
    struct store_centroid *units = NULL;
    struct territory_error err = {0};
    json_t *fc = load_districts();
    json_t *features = json_object_get(fc, "features");
    size_t sampled = 0, own = 0, outside = 0;

    assert_int_equal(territory_parse_centroids(csv, len, &units, &n, &err),
                     FS_OK);
    assert_int_equal(n, 32317);
    assert_int_equal(json_array_size(features), 2736);
    struct territory_index *ix = district_index(fc);
    assert_true(territory_index_polygons(ix) >= 2736);

    for (size_t i = 0; i < n; i += 97) {
        char p[POSTCODE_MAX_PREFIXES][POSTCODE_MAX_LEN + 1];
        struct territory_match m =
            territory_index_find(ix, NULL, true, units[i].lat, units[i].lng);
        struct territory_match plain =
            territory_index_find_linear(ix, units[i].lat, units[i].lng);
        assert_int_equal(m.id, plain.id);
        sampled++;
        if (m.id == 0) {
            outside++;
            continue;
        }
        assert_int_equal(postcode_prefixes(units[i].postcode, p), 4);
        const char *d = json_string_value(json_object_get(
            json_object_get(json_array_get(features, (size_t)m.id - 1),
                            "properties"),
            "district"));
        own += strcmp(d, p[2]) == 0;
    }
    print_message("units sampled=%zu in own district=%zu in none=%zu\n",
                  sampled, own, outside);
    assert_true(own * 100 >= sampled * 97);
    assert_true(own < sampled); /* the disagreements are there */

    territory_index_free(ix);
    territory_centroids_free(units, n);
    json_decref(fc);
    free(csv);
}

static void test_geometry_checked_and_repaired(void **state)
{
    struct territory_index *ix = territory_index_new();
    struct territory_problem pb = {0};
    /* Open ring: refused, then closed on request. */
    json_t *open =
        json_pack("{s:s, s:[[[f,f],[f,f],[f,f],[f,f]]]}", "type", "Polygon",
                  "coordinates", 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0);
    /* A bow tie: self-intersecting. */
    json_t *bow = json_pack("{s:s, s:[[[f,f],[f,f],[f,f],[f,f],[f,f]]]}",
                            "type", "Polygon", "coordinates", 10.0, 10.0, 11.0,
                            11.0, 11.0, 10.0, 10.0, 11.0, 10.0, 10.0);
    json_t *point =
        json_pack("{s:s, s:[f,f]}", "type", "Point", "coordinates", 1.0, 1.0);
    json_t *far = square(0, 0, 200, 1);

    assert_int_equal(territory_index_add(ix, 1, 0, NULL, 0, open, false, &pb),
                     FS_ERR_INVALID);
    assert_string_equal(pb.where, "coordinates[0]");
    assert_non_null(strstr(pb.message, "end where it starts"));
    assert_int_equal(territory_index_add(ix, 1, 0, NULL, 0, bow, false, &pb),
                     FS_ERR_INVALID);
    assert_non_null(strstr(pb.message, "Self-intersection"));
    assert_int_equal(territory_index_add(ix, 1, 0, NULL, 0, point, false, &pb),
                     FS_ERR_INVALID);
    assert_string_equal(pb.where, "type");
    assert_int_equal(territory_index_add(ix, 1, 0, NULL, 0, far, false, &pb),
                     FS_ERR_INVALID);
    assert_string_equal(pb.where, "coordinates[0][1]");
    assert_int_equal(territory_index_territories(ix), 0);

    territory_problem_clear(&pb);
    assert_int_equal(territory_index_add(ix, 1, 0, NULL, 0, open, true, &pb),
                     FS_OK);
    assert_non_null(strstr(pb.message, "1 ring(s) closed"));
    territory_problem_clear(&pb);
    assert_int_equal(territory_index_add(ix, 2, 0, NULL, 0, bow, true, &pb),
                     FS_OK);
    assert_non_null(strstr(pb.message, "1 polygon(s) made valid"));
    territory_problem_clear(&pb);
    assert_int_equal(territory_index_build(ix), FS_OK);
    assert_int_equal(find(ix, NULL, 0.5, 0.5, NULL), 1);
    assert_int_equal(find(ix, NULL, 10.5, 10.2, NULL), 2);
    territory_index_free(ix);
    json_decref(open);
    json_decref(bow);
    json_decref(point);
    json_decref(far);
}

static void test_vertex_limit(void **state)
{
    struct territory_index *ix = territory_index_new();
    struct territory_problem pb = {0};
    json_t *ring = json_array();

    for (int i = 0; i <= TERRITORY_MAX_RING; i++)
        json_array_append_new(ring, json_pack("[f,f]", 0.0, 0.0));
    json_t *g =
        json_pack("{s:s, s:[o]}", "type", "Polygon", "coordinates", ring);
    assert_int_equal(territory_index_add(ix, 1, 0, NULL, 0, g, true, &pb),
                     FS_ERR_TOO_LARGE);
    assert_string_equal(pb.where, "coordinates[0]");
    territory_problem_clear(&pb);
    json_decref(g);
    territory_index_free(ix);
}

static void test_centroids_unit_sector_district(void **state)
{
    struct centroid_table *t = centroid_table_new();
    double lat = 0, lng = 0;

    centroid_table_add(t, "M1 1AE", 53.1, -2.1);
    centroid_table_add(t, "M1 1", 53.2, -2.2);
    centroid_table_add(t, "M1", 53.3, -2.3);
    centroid_table_add(t, "M", 53.9, -2.9);
    centroid_table_add(t, "M1", 53.4, -2.4); /* the later one wins */
    assert_true(centroid_table_find(t, "M1 1AE", &lat, &lng));
    assert_true(lat == 53.1 && lng == -2.1);
    assert_true(centroid_table_find(t, "M1 1ZZ", &lat, &lng));
    assert_true(lat == 53.2);
    assert_true(centroid_table_find(t, "M1 7ZZ", &lat, &lng));
    assert_true(lat == 53.4);
    /* An area alone places nothing. */
    assert_false(centroid_table_find(t, "M9 9ZZ", &lat, &lng));
    assert_int_equal(centroid_table_size(t), 4);
    centroid_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postcode_prefixes),
        cmocka_unit_test(test_rules_normalised_and_on_word_boundaries),
        cmocka_unit_test(test_priority_decides_overlaps),
        cmocka_unit_test(test_postcode_rule_before_polygon),
        cmocka_unit_test(test_real_shared_edge_is_deterministic),
        cmocka_unit_test(test_index_matches_plain_scan_on_real_points),
        cmocka_unit_test(test_geometry_checked_and_repaired),
        cmocka_unit_test(test_vertex_limit),
        cmocka_unit_test(test_centroids_unit_sector_district),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

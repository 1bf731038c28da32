/* The territory API's refusals, on the real binaries: a query parameter
 * an endpoint does not take, a new territory named like an existing one,
 * a repaired ring, a postcode rule that names no place. Each is refused
 * with a clear error and changes nothing, or stored as it was repaired. */
#include "stack.h"

#include "base/alloc.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define REP "Terri Rep"

static struct stack st;

static int setup(void **state)
{
    struct stack_options o = {.deals = 12};

    if (!stack_start(&st, &o))
        return -1;
    char *token =
        stack_user_add(&st, STACK_ORG, REP, "rep", stack_owner_id(&st, 0));
    bool ok = token != NULL;
    free(token);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    return stack_stop(&st) ? 0 : -1;
}

/* The territories as GET answers them, as compact text. */
static char *territories_text(void)
{
    long status = 0;
    json_t *list =
        stack_api(&st, st.admin, "GET", "/api/v1/territories", NULL, &status);
    assert_int_equal(status, 200);
    char *text = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(list);
    return text;
}

/* The call answers status with error code naming field, and the
 * territories are as they were. */
static void assert_refused(const char *method, const char *path,
                           const char *body, long want, const char *code,
                           const char *field)
{
    char *before = territories_text();
    long status = 0;
    json_t *answer = stack_api(&st, st.admin, method, path, body, &status);

    assert_int_equal(status, want);
    assert_string_equal(stack_text(answer, "error"), code);
    assert_non_null(stack_text(answer, "message"));
    if (field)
        assert_string_equal(stack_text(answer, "field"), field);
    json_decref(answer);
    char *after = territories_text();
    assert_string_equal(after, before);
    free(after);
    free(before);
}

/* Adds a territory by the API and returns its id. */
static int64_t add_territory(const char *body)
{
    long status = 0;
    json_t *plan =
        stack_api(&st, st.admin, "POST", "/api/v1/territories", body, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(plan, "applied")));
    json_t *terrs = json_object_get(plan, "territories");
    int64_t id = 0;
    size_t i;
    json_t *t;
    json_array_foreach(terrs, i, t)
    {
        json_int_t tid = json_integer_value(json_object_get(t, "id"));
        if (tid > id)
            id = tid;
    }
    json_decref(plan);
    assert_true(id > 0);
    return id;
}

static void test_unknown_params_refused(void **state)
{
    int64_t id = add_territory("{\"name\":\"Params\",\"owner\":\"" REP "\","
                               "\"postcodes\":[\"M1\"]}");
    char *path =
        xasprintf("/api/v1/territories/%lld?dry_run=true", (long long)id);
    const char *import = "{\"type\":\"FeatureCollection\",\"features\":[{"
                         "\"type\":\"Feature\",\"properties\":{\"name\":"
                         "\"Typo\",\"owner\":\"" REP "\",\"postcodes\":"
                         "[\"M2\"]},\"geometry\":null}]}";

    assert_refused("POST",
                   "/api/v1/territories/import?preveiw=true&repair=true",
                   import, 400, "unknown_param", "preveiw");
    assert_refused("POST", "/api/v1/territories/reassign?preveiw=true", NULL,
                   400, "unknown_param", "preveiw");
    assert_refused("DELETE", path, NULL, 400, "unknown_param", "dry_run");
    assert_refused("PATCH", path, "{\"priority\":3}", 400, "unknown_param",
                   "dry_run");
    assert_refused("POST", "/api/v1/territories?preveiw=true",
                   "{\"name\":\"New\",\"owner\":\"" REP "\"}", 400,
                   "unknown_param", "preveiw");
    assert_refused("POST", "/api/v1/territories?replace=true",
                   "{\"name\":\"New\",\"owner\":\"" REP "\"}", 400,
                   "unknown_param", "replace");
    assert_refused("POST", "/api/v1/territories/centroids?replace=1&x=1",
                   "postcode,latitude,longitude\nM1 1AE,53.4,-2.2\n", 400,
                   "unknown_param", "x");
    assert_refused("GET", "/api/v1/territories?limt=5", NULL, 400,
                   "unknown_param", "limt");
    assert_refused("POST", "/api/v1/territories/import?preview=true&preview=1",
                   import, 400, "invalid_param", "preview");

    /* The documented ones still work. */
    long status = 0;
    json_t *plan =
        stack_api(&st, st.admin, "POST",
                  "/api/v1/territories/reassign?preview=true", NULL, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_false(json_object_get(plan, "applied")));
    json_decref(plan);
    free(path);
}

static void test_new_territory_never_replaces(void **state)
{
    int64_t id = add_territory("{\"name\":\"Taken\",\"owner\":\"" REP "\","
                               "\"priority\":2,\"postcodes\":[\"M3\"]}");

    assert_refused("POST", "/api/v1/territories",
                   "{\"name\":\"Taken\",\"owner\":\"" REP "\","
                   "\"postcodes\":[\"M4\"]}",
                   409, "conflict", "name");
    assert_refused("POST", "/api/v1/territories?preview=true",
                   "{\"name\":\"Taken\",\"owner\":\"" REP "\"}", 409,
                   "conflict", "name");

    /* Editing stays PATCH; an import matches its features by name. */
    char *path = xasprintf("/api/v1/territories/%lld", (long long)id);
    long status = 0;
    json_t *plan =
        stack_api(&st, st.admin, "PATCH", path, "{\"priority\":5}", &status);
    assert_int_equal(status, 200);
    json_decref(plan);
    plan = stack_api(&st, st.admin, "POST", "/api/v1/territories/import",
                     "{\"type\":\"FeatureCollection\",\"features\":[{"
                     "\"type\":\"Feature\",\"properties\":{\"name\":"
                     "\"Taken\",\"owner\":\"" REP "\",\"priority\":7,"
                     "\"postcodes\":[\"M3\"]},\"geometry\":null}]}",
                     &status);
    assert_int_equal(status, 200);
    json_decref(plan);
    char *after = territories_text();
    assert_non_null(strstr(after, "\"name\":\"Taken\",\"owner\""));
    assert_non_null(strstr(after, "\"priority\":7"));
    free(after);
    free(path);
}

/* The first ring of territory name as GET serves it. */
static json_t *served_ring(const char *name)
{
    long status = 0;
    json_t *list =
        stack_api(&st, st.admin, "GET", "/api/v1/territories", NULL, &status);
    json_t *ring = NULL;
    size_t i;
    json_t *f;

    assert_int_equal(status, 200);
    json_array_foreach(json_object_get(list, "features"), i, f)
    {
        if (strcmp(stack_text(json_object_get(f, "properties"), "name"),
                   name) != 0)
            continue;
        json_t *g = json_object_get(f, "geometry");
        json_t *coords = json_object_get(g, "coordinates");
        if (strcmp(stack_text(g, "type"), "MultiPolygon") == 0)
            coords = json_array_get(coords, 0);
        ring = json_incref(json_array_get(coords, 0));
    }
    json_decref(list);
    assert_non_null(ring);
    return ring;
}

static void assert_closed(const json_t *ring)
{
    size_t n = json_array_size(ring);

    assert_true(n >= 4);
    assert_true(
        json_equal(json_array_get(ring, 0), json_array_get(ring, n - 1)));
}

#define OPEN_RING "[[-2.30,53.40],[-2.20,53.40],[-2.20,53.50],[-2.30,53.50]]"

static void test_repaired_ring_stored_closed(void **state)
{
    long status = 0;
    json_t *plan = stack_api(
        &st, st.admin, "POST", "/api/v1/territories?repair=true",
        "{\"name\":\"Open\",\"owner\":\"" REP "\",\"geometry\":{\"type\":"
        "\"Polygon\",\"coordinates\":[" OPEN_RING "]}}",
        &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_array_size(json_object_get(plan, "repairs")), 1);
    int64_t id = 0;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(plan, "territories"), i, t)
    {
        if (strcmp(stack_text(t, "name"), "Open") == 0)
            id = json_integer_value(json_object_get(t, "id"));
    }
    json_decref(plan);
    assert_true(id > 0);

    json_t *ring = served_ring("Open");
    assert_int_equal(json_array_size(ring), 5);
    assert_closed(ring);
    json_decref(ring);

    /* Later edits need no repair: one without geometry, and one sending
     * back the geometry as served. */
    char *path = xasprintf("/api/v1/territories/%lld", (long long)id);
    plan = stack_api(&st, st.admin, "PATCH", path, "{\"priority\":4}", &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_array_size(json_object_get(plan, "repairs")), 0);
    json_decref(plan);
    ring = served_ring("Open");
    json_t *body = json_pack("{s:{s:s, s:[O]}}", "geometry", "type", "Polygon",
                             "coordinates", ring);
    char *text = json_dumps(body, JSON_COMPACT);
    plan = stack_api(&st, st.admin, "PATCH", path, text, &status);
    assert_int_equal(status, 200);
    json_decref(plan);
    free(text);
    json_decref(body);
    json_decref(ring);

    /* An import repaired the same way is stored closed too. */
    plan = stack_api(
        &st, st.admin, "POST", "/api/v1/territories/import?repair=true",
        "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":"
        "\"Feature\",\"properties\":{\"name\":\"Open import\",\"owner\":"
        "\"" REP "\"},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
        "[" OPEN_RING "]}}]}",
        &status);
    assert_int_equal(status, 200);
    json_decref(plan);
    ring = served_ring("Open import");
    assert_closed(ring);
    json_decref(ring);
    free(path);
}

static void test_postcode_rules_name_places(void **state)
{
    int64_t id = add_territory("{\"name\":\"Rules\",\"owner\":\"" REP "\","
                               "\"postcodes\":[\"M1\",\"m2 1\",\"2134\","
                               "\"M3 4AB\",\"SK\"]}");
    char *path = xasprintf("/api/v1/territories/%lld", (long long)id);
    const char *const bad[] = {"banana", "ZZ99 9ZZ", "M1 1AE 1AE"};

    for (size_t i = 0; i < 3; i++) {
        char *one = xasprintf("{\"name\":\"Bad\",\"owner\":\"" REP "\","
                              "\"postcodes\":[\"M1\",\"%s\"]}",
                              bad[i]);
        char *patch = xasprintf("{\"postcodes\":[\"%s\"]}", bad[i]);
        char *import = xasprintf(
            "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":"
            "\"Feature\",\"properties\":{\"name\":\"Bad\",\"owner\":"
            "\"" REP "\",\"postcodes\":[\"%s\"]},\"geometry\":null}]}",
            bad[i]);
        char *csv = xasprintf("postcode,latitude,longitude\nM1 1AE,53.4,-2.2\n"
                              "%s,53.4,-2.2\n",
                              bad[i]);
        assert_refused("POST", "/api/v1/territories", one, 422, "invalid_value",
                       "postcodes[1]");
        assert_refused("PATCH", path, patch, 422, "invalid_value",
                       "postcodes[0]");
        assert_refused("POST", "/api/v1/territories/import", import, 422,
                       "invalid_value", "features[0].properties.postcodes[0]");
        assert_refused("POST", "/api/v1/territories/centroids", csv, 422,
                       "invalid_value", "line 3");
        free(csv);
        free(import);
        free(patch);
        free(one);
    }

    /* The CLI refuses the same way, changing nothing. */
    char *before = territories_text();
    char *id_text = xasprintf("%lld", (long long)id);
    const char *edit[] = {"territory",   "edit",      "--org",
                          STACK_ORG,     "--id",      id_text,
                          "--postcodes", "M1,banana", NULL};
    int code = 0;
    char *out = stack_cli(&st, &code, edit);
    assert_int_not_equal(code, 0);
    assert_non_null(strstr(out, "postcodes[1]"));
    assert_non_null(strstr(out, "banana"));
    free(out);
    char *csv_path = xasprintf("%s/bad_centroids.csv", st.dir);
    FILE *f = fopen(csv_path, "w");
    assert_non_null(f);
    fputs("district,latitude,longitude\nM1,53.4,-2.2\nZZ99,53.4,-2.2\n", f);
    fclose(f);
    const char *centroids[] = {"territory", "centroids", csv_path,
                               "--org",     STACK_ORG,   NULL};
    out = stack_cli(&st, &code, centroids);
    assert_int_not_equal(code, 0);
    assert_non_null(strstr(out, "line 3"));
    free(out);
    free(csv_path);
    free(id_text);
    char *after = territories_text();
    assert_string_equal(after, before);
    free(after);
    free(before);

    /* The rules as stored, canonical; the centroid table loads prefixes. */
    char *list = territories_text();
    assert_non_null(strstr(list, "[\"M1\",\"M2 1\",\"02134\",\"M3 4AB\","
                                 "\"SK\"]"));
    free(list);
    long status = 0;
    json_t *loaded =
        stack_api(&st, st.admin, "POST", "/api/v1/territories/centroids",
                  "sector,latitude,longitude\nM1 1,53.48,-2.24\n"
                  "m2 1,53.47,-2.25\n",
                  &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(loaded, "loaded")), 2);
    json_decref(loaded);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_params_refused),
        cmocka_unit_test(test_new_territory_never_replaces),
        cmocka_unit_test(test_repaired_ring_stored_closed),
        cmocka_unit_test(test_postcode_rules_name_places),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

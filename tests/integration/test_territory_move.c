/* The territory move end to end, on the real files: the 8,800 pipeline
 * deals placed by the simulator on real Manchester postcodes, the 2,736
 * district polygons grouped into territories for the 35 agents, then a
 * block of districts moved to another territory. Exactly the deals inside
 * move (preview and apply agree), the rep who loses them sees them go on
 * the live stream, and the simulator ends up with the new owners. The
 * API's numbers (deal points, polygon coordinates) carry at most six
 * decimals, never the binary noise of a double. */
#include "http_test.h"
#include "stack.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "model/territory.h"
#include "services/geo_uk.h"
#include "sse_test.h"
#include "test_env.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define AGENTS_MAX 64
#define POLL_MS 20

static struct stack st;
static char *districts_path;
static char *centroids_path;
static char *units_path;
static size_t n_agents;
static char *agent_names[AGENTS_MAX];
static char *agent_ids[AGENTS_MAX];
static char *agent_tokens[AGENTS_MAX];

static int setup(void **state)
{
    char *data = test_shared_path("data/crm_deals");
    units_path = test_shared_path("data/geo_uk/uk_postcode_units_area_M.csv");
    districts_path =
        test_shared_path("data/geo_uk/uk_postcode_districts.geojson");
    centroids_path =
        test_shared_path("data/geo_uk/uk_postcode_district_centroids.csv");
    struct stack_options o = {.data_dir = data, .postcodes = units_path};
    bool ok = stack_start(&st, &o);
    free(data);
    if (!ok)
        return -1;

    /* One rep per agent of the pipeline, with the CRM's owner id. */
    long status;
    json_t *owners = stack_sim(&st, "GET", "/_sim/owners", NULL, &status);
    size_t i;
    json_t *o_json;
    json_array_foreach(json_object_get(owners, "owners"), i, o_json)
    {
        if (n_agents == AGENTS_MAX)
            break;
        const char *name = stack_text(o_json, "name");
        const char *id = stack_text(o_json, "id");
        agent_names[n_agents] = xstrdup(name);
        agent_ids[n_agents] = xstrdup(id);
        agent_tokens[n_agents] =
            stack_user_add(&st, STACK_ORG, name, "rep", id);
        if (!agent_tokens[n_agents])
            return -1;
        n_agents++;
    }
    json_decref(owners);
    return n_agents == 35 ? 0 : -1;
}

static int teardown(void **state)
{
    bool ok = stack_stop(&st);

    for (size_t i = 0; i < n_agents; i++) {
        free(agent_names[i]);
        free(agent_ids[i]);
        free(agent_tokens[i]);
    }
    free(districts_path);
    free(centroids_path);
    free(units_path);
    return ok ? 0 : -1;
}

static const char *owner_id_of(const char *name)
{
    for (size_t i = 0; i < n_agents; i++) {
        if (strcmp(agent_names[i], name) == 0)
            return agent_ids[i];
    }
    return NULL;
}

static char *write_json(json_t *obj, const char *name)
{
    char *path = xasprintf("%s/%s", st.dir, name);

    assert_int_equal(json_dump_file(obj, path, JSON_COMPACT), 0);
    return path;
}

static char *read_text(const char *path)
{
    struct buf b = {0};

    assert_int_equal(buf_read_file(&b, path, 1u << 30), FS_OK);
    return buf_steal(&b);
}

/* Nothing waits to reach the CRM and every webhook has been applied. */
static bool quiet(void)
{
    int64_t until = clock_now_ms() + 60000;

    while (clock_now_ms() < until) {
        long status;
        json_t *sync = stack_api(&st, st.admin, "GET", "/api/v1/sync/status",
                                 NULL, &status);
        bool done = status == 200 &&
                    json_integer_value(json_object_get(sync, "pending")) == 0;
        json_decref(sync);
        if (done && stack_settled(&st, 30000))
            return true;
        clock_sleep_ms(POLL_MS * 10);
    }
    return false;
}

/* Every deal's owner is the same in fieldsync and in the simulator. */
static void assert_sim_agrees(void)
{
    json_t *ours = stack_deals(&st, false);
    json_t *sims = stack_sim_deals(&st);
    json_t *sim_owner = json_object();
    size_t i;
    json_t *d;

    assert_non_null(ours);
    assert_non_null(sims);
    json_array_foreach(sims, i, d)
    {
        const char *owner = stack_text(json_object_get(d, "fields"), "owner");
        json_object_set_new(sim_owner, stack_text(d, "id"),
                            owner ? json_string(owner) : json_null());
    }
    json_array_foreach(ours, i, d)
    {
        const char *crm_id = stack_text(d, "crm_id");
        const char *sim = json_string_value(json_object_get(sim_owner, crm_id));
        const char *mine = stack_text(d, "owner");
        if (!(mine ? sim && strcmp(mine, sim) == 0 : !sim))
            fail_msg("deal %s: owner %s here, %s in the CRM", crm_id,
                     mine ? mine : "-", sim ? sim : "-");
    }
    json_decref(sim_owner);
    json_decref(ours);
    json_decref(sims);
}

static bool point_of(const json_t *deal, double *lat, double *lng)
{
    const json_t *p = json_object_get(deal, "point");

    if (!json_is_array(p))
        return false;
    *lng = json_real_value(json_array_get(p, 0));
    *lat = json_real_value(json_array_get(p, 1));
    return true;
}

static json_t *move_by_deal(json_t *plan)
{
    json_t *by = json_object();
    size_t i;
    json_t *m;

    json_array_foreach(json_object_get(plan, "moves"), i, m)
        json_object_set(by, stack_text(m, "deal"), m);
    return by;
}

static bool wait_event(struct sse_test *sse, const char *id, const char *owner)
{
    int64_t until = clock_now_ms() + STACK_WAIT_MS;

    while (clock_now_ms() < until) {
        if (sse_test_has(sse, "deal.updated", id, "owner", owner))
            return true;
        clock_sleep_ms(POLL_MS);
    }
    return false;
}

static void test_move_block_of_districts(void **state)
{
    int code;
    long status;
    json_t *fc = NULL;
    const char *centroids[] = {"territory", "centroids", units_path,
                               "--org",     STACK_ORG,   NULL};

    free(stack_cli(&st, &code, centroids));
    assert_int_equal(code, 0);

    /* The districts grouped by local authority for the 35 agents. */
    assert_int_equal(geo_uk_territories(districts_path, centroids_path,
                                        (const char *const *)agent_names,
                                        n_agents, &fc),
                     FS_OK);
    char *first = write_json(fc, "territories.geojson");
    const char *import[] = {"territory", "import",   first,
                            "--org",     STACK_ORG,  "--group-by",
                            "territory", "--repair", NULL};
    char *out = stack_cli(&st, &code, import);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "applied: 35 territories"));
    /* The real file's broken polygons are repaired and said so. */
    assert_non_null(strstr(out, "repaired features["));
    free(out);
    assert_true(quiet());
    assert_sim_agrees();

    /* Every district of M1's territory among M1, M2, M4, M11..M13 moves to
     * the territory of M5 (Salford), or the next one if it is the same. */
    json_t *feats = json_object_get(fc, "features");
    const char *from = NULL, *from_owner = NULL, *m5 = NULL;
    size_t i;
    json_t *f;
    json_array_foreach(feats, i, f)
    {
        json_t *p = json_object_get(f, "properties");
        if (strcmp(stack_text(p, "district"), "M1") == 0) {
            from = stack_text(p, "territory");
            from_owner = stack_text(p, "owner");
        }
        if (strcmp(stack_text(p, "district"), "M5") == 0)
            m5 = stack_text(p, "territory");
    }
    assert_non_null(from);
    assert_non_null(m5);
    size_t to_k = 0;
    for (size_t k = 0; k < n_agents; k++) {
        char *name = geo_uk_territory_name(k);
        if (strcmp(name, strcmp(m5, from) == 0 ? from : m5) == 0)
            to_k = strcmp(m5, from) == 0 ? (k + 1) % n_agents : k;
        free(name);
    }
    const char *to_owner_name = agent_names[to_k];
    const char *to_owner = owner_id_of(to_owner_name);
    const char *block[] = {"M1", "M2", "M4", "M11", "M12", "M13", NULL};
    char *from_name = xstrdup(from);
    char *from_owner_name = xstrdup(from_owner);
    /* The block, marked apart, then handed to the other territory. */
    size_t n_block = geo_uk_mark_block(fc, from_name, block, "block");
    assert_true(n_block >= 1);
    struct territory_index *in_block = geo_uk_index(fc, "block", true);
    struct territory_index *elsewhere = geo_uk_index(fc, "block", false);
    assert_non_null(in_block);
    assert_non_null(elsewhere);
    assert_int_equal(geo_uk_move_territory(fc, "block", to_k, to_owner_name),
                     n_block);
    char *second = write_json(fc, "moved.geojson");

    /* Which deals lie inside the block, by the polygons alone. */
    json_t *deals = stack_deals(&st, false);
    json_t *inside = json_object(); /* sure: in the block and nothing else */
    json_t *maybe = json_object();  /* on an overlap with a neighbour */
    size_t placed = 0;
    json_t *d;
    json_array_foreach(deals, i, d)
    {
        double lat, lng;
        if (!point_of(d, &lat, &lng))
            continue;
        placed++;
        bool in = territory_index_find(in_block, NULL, true, lat, lng).id;
        bool out_too = territory_index_find(elsewhere, NULL, true, lat, lng).id;
        if (in)
            json_object_set(out_too ? maybe : inside, stack_text(d, "id"), d);
    }
    assert_true(placed > 7000);
    assert_true(json_object_size(inside) > 0);
    print_message("deals placed=%zu inside the block=%zu on its edge=%zu\n",
                  placed, json_object_size(inside), json_object_size(maybe));

    /* Preview over the API: exactly those deals, to the new owner. */
    char *body = read_text(second);
    const char *url = "/api/v1/territories/import?group_by=territory&"
                      "repair=true&preview=true";
    json_t *preview = stack_api(&st, st.admin, "POST", url, body, &status);
    assert_int_equal(status, 200);
    assert_false(json_is_true(json_object_get(preview, "applied")));
    json_t *pmoves = move_by_deal(preview);
    assert_int_equal(
        json_integer_value(json_object_get(preview, "moves_count")),
        json_object_size(pmoves));
    const char *key;
    json_t *m;
    json_object_foreach(inside, key, d)
    {
        if (strcmp(stack_text(d, "owner") ? stack_text(d, "owner") : "",
                   to_owner) == 0)
            continue; /* already the new owner's */
        m = json_object_get(pmoves, key);
        if (!m)
            fail_msg("deal %s inside the block is not moved", key);
        assert_string_equal(stack_text(m, "to"), to_owner);
    }
    json_object_foreach(pmoves, key, m)
    {
        if (!json_object_get(inside, key) && !json_object_get(maybe, key))
            fail_msg("deal %s outside the block would move", key);
    }

    /* The rep who loses the first of them watches the live stream. */
    const char *lost = NULL;
    json_object_foreach(pmoves, key, m)
    {
        if (stack_text(m, "from") &&
            strcmp(stack_text(m, "from"), owner_id_of(from_owner_name)) == 0) {
            lost = key;
            break;
        }
    }
    assert_non_null(lost);
    char *events = xasprintf("%s/api/v1/events", st.api_base);
    size_t from_k = 0;
    for (size_t k = 0; k < n_agents; k++) {
        if (strcmp(agent_names[k], from_owner_name) == 0)
            from_k = k;
    }
    struct sse_test *sse = sse_test_open(events, agent_tokens[from_k]);
    assert_non_null(sse);

    /* Apply: the same moves. */
    url = "/api/v1/territories/import?group_by=territory&repair=true";
    json_t *applied = stack_api(&st, st.admin, "POST", url, body, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(applied, "applied")));
    json_t *amoves = move_by_deal(applied);
    assert_int_equal(json_object_size(amoves), json_object_size(pmoves));
    json_object_foreach(pmoves, key, m)
    {
        json_t *a = json_object_get(amoves, key);
        assert_non_null(a);
        assert_string_equal(stack_text(a, "to"), stack_text(m, "to"));
    }
    assert_true(wait_event(sse, lost, to_owner));
    sse_test_close(sse);

    /* The CRM gets the new owners, and only those. */
    int64_t limited = stack_sim_stat(&st, "rate_limited", NULL);
    json_object_foreach(amoves, key, m)
    {
        json_t *deal = stack_deal(&st, key);
        assert_true(
            stack_wait_sim(&st, stack_text(deal, "crm_id"), "owner", to_owner));
        json_decref(deal);
    }
    assert_true(quiet());
    assert_sim_agrees();
    assert_int_equal(stack_sim_stat(&st, "rate_limited", NULL), limited);

    /* The map's view: territories with owners and counts, deals by bbox. */
    json_t *terr =
        stack_api(&st, st.admin, "GET", "/api/v1/territories", NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_array_size(json_object_get(terr, "features")), 35);
    json_int_t counted =
        json_integer_value(json_object_get(terr, "unplaced_deals"));
    json_array_foreach(json_object_get(terr, "features"), i, f) counted +=
        json_integer_value(
            json_object_get(json_object_get(f, "properties"), "deals"));
    assert_int_equal(counted, (json_int_t)json_array_size(deals));
    json_t *box = stack_api(&st, st.admin, "GET",
                            "/api/v1/deals?bbox=-2.25,53.47,-2.22,53.49&"
                            "limit=1000",
                            NULL, &status);
    assert_int_equal(status, 200);
    assert_true(json_array_size(json_object_get(box, "deals")) > 0);
    json_array_foreach(json_object_get(box, "deals"), i, d)
    {
        double lat, lng;
        assert_true(point_of(d, &lat, &lng));
        assert_true(lng >= -2.25 && lng <= -2.22 && lat >= 53.47 &&
                    lat <= 53.49);
    }

    json_decref(box);
    json_decref(terr);
    json_decref(amoves);
    json_decref(applied);
    json_decref(pmoves);
    json_decref(preview);
    free(events);
    free(body);
    json_decref(inside);
    json_decref(maybe);
    json_decref(deals);
    territory_index_free(in_block);
    territory_index_free(elsewhere);
    free(from_name);
    free(from_owner_name);
    free(first);
    free(second);
    json_decref(fc);
}

/* The body of a GET as the admin, as text (caller frees). */
static char *get_text(const char *path)
{
    char *url = xasprintf("%s%s", st.api_base, path);
    char *auth = xasprintf("Authorization: Bearer %s", st.admin);
    const char *headers[] = {auth, NULL};
    struct http_test_response r = {0};

    assert_true(http_test_request("GET", url, headers, NULL, &r));
    assert_int_equal(r.status, 200);
    char *body = xstrdup(r.body);
    http_test_response_free(&r);
    free(auth);
    free(url);
    return body;
}

/* The most digits after a decimal point anywhere in text. */
static size_t longest_fraction(const char *text)
{
    size_t longest = 0;

    for (const char *p = strchr(text, '.'); p; p = strchr(p + 1, '.')) {
        size_t n = strspn(p + 1, "0123456789");
        longest = n > longest ? n : longest;
    }
    return longest;
}

/* "53.480000" as JSON writes the number: "53.48". */
static char *trimmed(const char *text, size_t len)
{
    char *t = xstrndup(text, len);
    size_t n = strlen(t);

    while (n > 0 && strchr(t, '.') && t[n - 1] == '0')
        t[--n] = '\0';
    if (n > 0 && t[n - 1] == '.')
        t[n - 1] = '\0';
    return t;
}

static void test_api_numbers_have_six_decimals(void **state)
{
    char *deals = get_text("/api/v1/deals?bbox=-2.25,53.47,-2.22,53.49&"
                           "limit=50");
    json_t *parsed = json_loads(deals, 0, NULL);
    const char *location = NULL;
    size_t i;
    json_t *deal;

    /* Some deals are placed by their postcode alone (no location). */
    json_array_foreach(json_object_get(parsed, "deals"), i, deal)
    {
        if (!location)
            location = stack_text(deal, "location");
    }

    assert_true(strchr(deals, '.') != NULL);
    assert_in_range(longest_fraction(deals), 1, 6);
    /* The point is the location's own numbers, [lng, lat]. */
    assert_non_null(location);
    const char *comma = strchr(location, ',');
    assert_non_null(comma);
    char *lat = trimmed(location, (size_t)(comma - location));
    char *lng = trimmed(comma + 1, strlen(comma + 1));
    char *point = xasprintf("\"point\":[%s,%s]", lng, lat);
    assert_non_null(strstr(deals, point));

    char *territories = get_text("/api/v1/territories");
    assert_non_null(strstr(territories, "\"coordinates\":[[[["));
    assert_in_range(longest_fraction(territories), 1, 6);

    free(territories);
    free(point);
    free(lng);
    free(lat);
    json_decref(parsed);
    free(deals);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_move_block_of_districts),
        cmocka_unit_test(test_api_numbers_have_six_decimals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

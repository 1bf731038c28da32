/* Unit tests of territory reassignment over a real store: preview equals
 * apply, owners become pending local edits, a hand edit is respected
 * until a change touches the deal, a deal in no territory keeps its owner
 * and is listed, moving a deal re-places it, bad input changes nothing,
 * owner ids are kept per CRM provider, and an apply reads the state at its
 * start while other connections write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "services/territory.h"
#include "store_fixture.h"
#include "test_env.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct world {
    struct store_fixture *fx;
    int64_t ann, bob, cat; /* cat has no CRM owner id */
};

static int setup(void **state)
{
    struct world *w = xcalloc(1, sizeof(*w));
    char *token = NULL;

    if (store_fixture_setup((void **)&w->fx) != 0)
        return -1;
    struct store *s = w->fx->store;
    store_user_add(s, w->fx->org, "Ann", "ann@x.test", USER_ROLE_REP, "101",
                   &w->ann, &token);
    free(token);
    store_user_add(s, w->fx->org, "Bob", "bob@x.test", USER_ROLE_REP, "102",
                   &w->bob, &token);
    free(token);
    store_user_add(s, w->fx->org, "Cat", "cat@x.test", USER_ROLE_REP, NULL,
                   &w->cat, &token);
    free(token);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    void *fx = w->fx;

    territory_cache_clear();
    store_fixture_teardown(&fx);
    free(w);
    return 0;
}

/* A deal as the CRM gave it: every value known to be in the CRM. */
static void crm_value(struct field_state *f, const char *v)
{
    f->value = v ? xstrdup(v) : NULL;
    f->crm_value = v ? xstrdup(v) : NULL;
    f->time = f->crm_time = 1000;
    f->origin = ORIGIN_CRM;
}

static char *make_deal(struct world *w, const char *crm_id, const char *owner,
                       const char *postcode, const char *location)
{
    struct record r = {0};

    r.org_id = w->fx->org;
    r.connection_id = w->fx->conn;
    r.crm_id = xstrdup(crm_id);
    crm_value(&r.fields[DEAL_NAME], crm_id);
    crm_value(&r.fields[DEAL_OWNER], owner);
    crm_value(&r.fields[DEAL_POSTCODE], postcode);
    crm_value(&r.fields[DEAL_LOCATION], location);
    assert_int_equal(store_record_save(w->fx->store, &r), FS_OK);
    char *id = xstrdup(r.id);
    record_clear(&r);
    return id;
}

static void get(struct world *w, const char *id, struct record *r)
{
    record_clear(r);
    assert_int_equal(store_record_get(w->fx->store, w->fx->org, id, r), FS_OK);
}

/* West and east of lng -2.24 around Manchester, sharing that edge. */
static const char two_squares[] =
    "{\"type\":\"FeatureCollection\",\"features\":["
    "{\"type\":\"Feature\",\"properties\":{\"name\":\"West\",\"owner\":"
    "\"ann@x.test\"},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
    "[[[-2.30,53.45],[-2.24,53.45],[-2.24,53.50],[-2.30,53.50],[-2.30,53.45]"
    "]]}},"
    "{\"type\":\"Feature\",\"properties\":{\"name\":\"East\",\"owner\":\"Bob\"},"
    "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
    "[[[-2.24,53.45],[-2.18,53.45],[-2.18,53.50],[-2.24,53.50],[-2.24,53.45]"
    "]]}},"
    "{\"type\":\"Feature\",\"properties\":{\"name\":\"Centre\",\"owner\":\"bob@x.test\","
    "\"postcodes\":[\"m1 1\"]},\"geometry\":null}]}";

static void run(struct world *w, const char *geojson, bool apply,
                struct territory_plan *plan)
{
    struct territory_change ch;
    struct territory_error err = {0};

    assert_int_equal(
        territory_parse_import(geojson, strlen(geojson), NULL, &ch, &err),
        FS_OK);
    fs_result r =
        territory_change_run(w->fx->store, w->fx->org, &ch, apply, plan, &err);
    if (r != FS_OK)
        fail_msg("change failed: %s %s", err.field, err.message);
    territory_change_clear(&ch);
}

static const struct territory_move *move_of(const struct territory_plan *p,
                                            const char *id)
{
    for (size_t i = 0; i < p->n_moves; i++) {
        if (strcmp(p->moves[i].deal_id, id) == 0)
            return &p->moves[i];
    }
    return NULL;
}

static bool listed(char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i], id) == 0)
            return true;
    }
    return false;
}

/* The connection's pending records, as the pusher sees them; *found
 * tells whether id is among them. */
static size_t count_pending(struct world *w, const char *id, bool *found)
{
    struct record *pending = NULL;
    size_t n = 0;

    assert_int_equal(store_records_pending(w->fx->store, w->fx->conn,
                                           clock_now_ms(), 100, &pending, &n),
                     FS_OK);
    for (size_t i = 0; found && i < n; i++)
        *found = *found || strcmp(pending[i].id, id) == 0;
    store_records_free(pending, n);
    return n;
}

static void test_preview_equals_apply(void **state)
{
    struct world *w = *state;
    struct store_centroid c = {xstrdup("M1 2"), 53.47, -2.20};
    struct territory_plan preview, applied;
    struct record r = {0};

    assert_int_equal(
        territory_load_centroids(w->fx->store, w->fx->org, &c, 1, false),
        FS_OK);
    free(c.postcode);
    char *west = make_deal(w, "1", "900", NULL, "53.470000,-2.270000");
    char *east = make_deal(w, "2", "900", NULL, "53.470000,-2.200000");
    char *edge = make_deal(w, "3", "900", NULL, "53.470000,-2.240000");
    char *rule = make_deal(w, "4", "900", "M1 1AE", "53.470000,-2.270000");
    char *far = make_deal(w, "5", "900", "SW1A 1AA", "51.501000,-0.141000");
    char *by_centroid = make_deal(w, "6", "900", "M1 2AB", NULL);
    char *already = make_deal(w, "7", "101", NULL, "53.460000,-2.280000");

    run(w, two_squares, false, &preview);
    get(w, west, &r);
    assert_string_equal(r.fields[DEAL_OWNER].value, "900"); /* untouched */
    assert_int_equal(r.territory_id, 0);
    run(w, two_squares, true, &applied);

    assert_int_equal(preview.n_moves, applied.n_moves);
    for (size_t i = 0; i < applied.n_moves; i++) {
        const struct territory_move *a = &applied.moves[i];
        const struct territory_move *p = &preview.moves[i];
        assert_string_equal(a->deal_id, p->deal_id);
        assert_string_equal(a->to_owner, p->to_owner);
        assert_true(merge_value_equal(a->from_owner, p->from_owner));
        assert_int_equal(a->to_territory, p->to_territory);
    }
    assert_int_equal(preview.n_unplaced, applied.n_unplaced);
    assert_int_equal(applied.n_moves, 5);
    assert_int_equal(applied.deals, 7);
    assert_int_equal(applied.by_postcode, 1);

    int64_t west_id = applied.territories[0].id;
    assert_string_equal(move_of(&applied, west)->to_owner, "101");
    assert_string_equal(move_of(&applied, east)->to_owner, "102");
    /* On the shared edge: both cover it, equal priority, the lower id. */
    assert_string_equal(move_of(&applied, edge)->to_owner, "101");
    assert_int_equal(move_of(&applied, edge)->to_territory, west_id);
    /* A postcode rule before the polygon the point is in. */
    assert_string_equal(move_of(&applied, rule)->to_owner, "102");
    /* Placed by its sector centroid. */
    assert_string_equal(move_of(&applied, by_centroid)->to_owner, "102");
    /* Already with its territory's owner: placed, not moved. */
    assert_null(move_of(&applied, already));
    /* In no territory: listed, owner kept. */
    assert_null(move_of(&applied, far));
    assert_true(listed(applied.unplaced, applied.n_unplaced, far));

    get(w, west, &r);
    assert_string_equal(r.fields[DEAL_OWNER].value, "101");
    assert_int_equal(r.fields[DEAL_OWNER].origin, ORIGIN_LOCAL);
    assert_true(merge_field_pending(&r.fields[DEAL_OWNER]));
    assert_int_equal(r.territory_id, west_id);
    assert_true(r.located);
    get(w, far, &r);
    assert_string_equal(r.fields[DEAL_OWNER].value, "900");
    assert_false(merge_field_pending(&r.fields[DEAL_OWNER]));
    assert_int_equal(r.territory_id, 0);
    get(w, by_centroid, &r);
    assert_true(r.located && r.lat == 53.47 && r.lng == -2.20);
    /* The pusher sees them: pending records of the connection. */
    assert_int_equal(count_pending(w, NULL, NULL), 5);

    record_clear(&r);
    territory_plan_clear(&preview);
    territory_plan_clear(&applied);
    free(west);
    free(east);
    free(edge);
    free(rule);
    free(far);
    free(by_centroid);
    free(already);
}

/* Edits an owner by hand, as the field API or a CRM user would. */
static void hand_edit(struct world *w, const char *id, const char *owner)
{
    struct record r = {0};

    get(w, id, &r);
    merge_local_edit(&r.fields[DEAL_OWNER], owner, clock_now_ms(), 0);
    assert_int_equal(store_record_save(w->fx->store, &r), FS_OK);
    record_clear(&r);
}

static void test_hand_edit_respected_until_touched(void **state)
{
    struct world *w = *state;
    struct territory_plan plan;
    struct territory_change ch;
    struct territory_error err = {0};
    struct record r = {0};
    char *a = make_deal(w, "11", "900", NULL, "53.470000,-2.270000");
    char *b = make_deal(w, "12", "900", NULL, "53.480000,-2.280000");

    run(w, two_squares, true, &plan);
    territory_plan_clear(&plan);
    hand_edit(w, a, "555");

    /* Nothing about the deal's territory changed: the hand edit stays. */
    assert_int_equal(
        territory_change_run(w->fx->store, w->fx->org, NULL, true, &plan, &err),
        FS_OK);
    assert_int_equal(plan.n_moves, 0);
    territory_plan_clear(&plan);
    get(w, a, &r);
    assert_string_equal(r.fields[DEAL_OWNER].value, "555");

    /* West gets a new owner: every deal of West is touched. */
    int64_t west = r.territory_id;
    char *body = xasprintf("{\"owner\":%lld}", (long long)w->bob);
    assert_int_equal(territory_parse_one(body, strlen(body), west, &ch, &err),
                     FS_OK);
    free(body);
    assert_int_equal(
        territory_change_run(w->fx->store, w->fx->org, &ch, true, &plan, &err),
        FS_OK);
    assert_int_equal(plan.n_moves, 2);
    assert_string_equal(move_of(&plan, a)->from_owner, "555");
    assert_string_equal(move_of(&plan, b)->to_owner, "102");
    get(w, a, &r);
    assert_string_equal(r.fields[DEAL_OWNER].value, "102");

    territory_plan_clear(&plan);
    territory_change_clear(&ch);
    record_clear(&r);
    free(a);
    free(b);
}

static void test_moving_a_deal_places_it_again(void **state)
{
    struct world *w = *state;
    struct territory_plan plan;
    struct record r = {0};
    bool moved = false;
    char *a = make_deal(w, "21", "900", NULL, "53.470000,-2.270000");

    run(w, two_squares, true, &plan);
    territory_plan_clear(&plan);
    get(w, a, &r);
    assert_string_equal(r.fields[DEAL_OWNER].value, "101");

    /* A save that leaves the address alone changes nothing. */
    merge_local_edit(&r.fields[DEAL_STAGE], "closedwon", clock_now_ms(), 0);
    assert_int_equal(
        territory_save_deal(w->fx->store, &r, clock_now_ms(), &moved), FS_OK);
    assert_false(moved);

    /* A new address east of the edge: the deal goes to East's owner. */
    merge_local_edit(&r.fields[DEAL_LOCATION], "53.460000,-2.190000",
                     clock_now_ms(), 0);
    assert_int_equal(
        territory_save_deal(w->fx->store, &r, clock_now_ms(), &moved), FS_OK);
    assert_true(moved);
    get(w, a, &r);
    assert_string_equal(r.fields[DEAL_OWNER].value, "102");
    assert_true(merge_field_pending(&r.fields[DEAL_OWNER]));

    /* Moved out of every territory: placed nowhere, owner kept. */
    merge_local_edit(&r.fields[DEAL_LOCATION], "51.500000,-0.100000",
                     clock_now_ms(), 0);
    assert_int_equal(
        territory_save_deal(w->fx->store, &r, clock_now_ms(), &moved), FS_OK);
    assert_false(moved);
    get(w, a, &r);
    assert_string_equal(r.fields[DEAL_OWNER].value, "102");
    assert_int_equal(r.territory_id, 0);

    record_clear(&r);
    free(a);
}

/* Another connection's writer: renames a deal again and again, each in a
 * transaction of its own, while the test applies a change. */
struct renamer {
    const char *path;
    const char *id;
    int64_t org;
    int rounds;
    fs_result result;
};

static void *rename_loop(void *arg)
{
    struct renamer *rn = arg;
    struct store *s = NULL;

    rn->result = store_open(rn->path, &s);
    for (int i = 0; i < rn->rounds && rn->result == FS_OK; i++) {
        struct record r = {0};
        char name[32];
        snprintf(name, sizeof(name), "renamed %d", i);
        rn->result = store_begin(s);
        if (rn->result == FS_OK)
            rn->result = store_record_get(s, rn->org, rn->id, &r);
        if (rn->result == FS_OK) {
            merge_local_edit(&r.fields[DEAL_NAME], name, clock_now_ms(), 0);
            rn->result = store_record_save(s, &r);
        }
        rn->result = rn->result == FS_OK ? store_commit(s)
                                         : (store_rollback(s), rn->result);
        record_clear(&r);
    }
    store_close(s);
    return NULL;
}

static void test_apply_beside_other_writers(void **state)
{
    struct world *w = *state;
    struct territory_plan plan;
    struct record r = {0};
    struct store *other = NULL;
    char *a = make_deal(w, "31", "900", NULL, "53.470000,-2.270000");
    char *b = make_deal(w, "32", "900", NULL, "53.480000,-2.280000");
    char *kept = make_deal(w, "33", "101", NULL, "53.460000,-2.280000");

    /* Committed by another connection just before: the apply, which reads
     * on a connection of its own, places b east by it. */
    assert_int_equal(store_open(w->fx->path, &other), FS_OK);
    assert_int_equal(store_record_get(other, w->fx->org, b, &r), FS_OK);
    merge_local_edit(&r.fields[DEAL_LOCATION], "53.470000,-2.200000",
                     clock_now_ms(), 0);
    assert_int_equal(store_record_save(other, &r), FS_OK);
    store_close(other);
    get(w, kept, &r);
    int64_t kept_updated = r.updated_at;

    /* Renames of a while the change is applied: each waits for the
     * apply's transaction or goes before it, none is lost. */
    struct renamer rn = {
        .path = w->fx->path, .id = a, .org = w->fx->org, .rounds = 20};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, rename_loop, &rn), 0);
    run(w, two_squares, true, &plan);
    pthread_join(thread, NULL);
    assert_int_equal(rn.result, FS_OK);

    assert_int_equal(plan.n_moves, 2);
    get(w, a, &r);
    assert_string_equal(r.fields[DEAL_NAME].value, "renamed 19");
    assert_string_equal(r.fields[DEAL_OWNER].value, "101");
    assert_true(merge_field_pending(&r.fields[DEAL_OWNER]));
    get(w, b, &r);
    assert_string_equal(r.fields[DEAL_OWNER].value, "102");
    assert_int_equal(r.territory_id, move_of(&plan, b)->to_territory);
    assert_int_equal(r.updated_at, r.fields[DEAL_OWNER].time);
    /* Placed but not moved: its territory is written, its update time
     * and pending flag stay. */
    get(w, kept, &r);
    assert_int_equal(r.territory_id, plan.territories[0].id);
    assert_int_equal(r.updated_at, kept_updated);
    bool kept_pending = false;
    assert_int_equal(count_pending(w, kept, &kept_pending), 2);
    assert_false(kept_pending);

    record_clear(&r);
    territory_plan_clear(&plan);
    free(a);
    free(b);
    free(kept);
}

static void expect_refused(struct world *w, const char *geojson, bool repair,
                           int status, const char *field)
{
    struct territory_change ch;
    struct territory_error err = {0};
    struct territory_plan plan;
    fs_result r =
        territory_parse_import(geojson, strlen(geojson), NULL, &ch, &err);

    if (r == FS_OK) {
        ch.repair = repair;
        r = territory_change_run(w->fx->store, w->fx->org, &ch, true, &plan,
                                 &err);
        territory_change_clear(&ch);
    }
    assert_int_equal(r, FS_ERR_INVALID);
    assert_int_equal(err.status, status);
    if (field)
        assert_string_equal(err.field, field);
    else
        assert_null(err.field);
    territory_error_clear(&err);
}

static void test_bad_input_changes_nothing(void **state)
{
    struct world *w = *state;
    struct territory *list = NULL;
    size_t n = 0;
    char *deep = NULL;
    static const char bow_tie[] =
        "{\"type\":\"FeatureCollection\",\"features\":["
        "{\"type\":\"Feature\",\"properties\":{\"name\":\"A\",\"owner\":\"Ann\"},"
        "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,1],[1,0],"
        "[0,1],[0,0]]]}},"
        "{\"type\":\"Feature\",\"properties\":{\"name\":\"B\",\"owner\":\"Ann\"},"
        "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[5,5],[6,6],[6,5],"
        "[5,6],[5,5]]]}}]}";
    static const char unknown_owner[] =
        "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\","
        "\"properties\":{\"name\":\"A\",\"owner\":\"nobody@x.test\"},"
        "\"geometry\":null}]}";
    static const char unlinked_owner[] =
        "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\","
        "\"properties\":{\"name\":\"A\",\"owner\":\"Cat\"},\"geometry\":null}]}";
    static const char bad_postcode[] =
        "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\","
        "\"properties\":{\"name\":\"A\",\"owner\":\"Ann\",\"postcodes\":[\"M1\","
        "\"M1;1\"]},\"geometry\":null}]}";
    static const char no_name[] =
        "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\","
        "\"properties\":{\"owner\":\"Ann\"},\"geometry\":null}]}";

    expect_refused(w, bow_tie, false, 422, "features[0].geometry");
    expect_refused(w, unknown_owner, false, 422,
                   "features[0].properties.owner");
    expect_refused(w, unlinked_owner, false, 422,
                   "features[0].properties.owner");
    expect_refused(w, bad_postcode, false, 422,
                   "features[0].properties.postcodes[1]");
    expect_refused(w, no_name, false, 422, "features[0].properties.name");
    expect_refused(w, "{\"type\":\"Feature\"}", false, 422, "type");
    deep = xmalloc(64);
    memset(deep, '[', 40);
    memset(deep + 40, ']', 20);
    deep[60] = '\0';
    expect_refused(w, deep, false, 400, NULL);
    free(deep);

    assert_int_equal(
        store_territories_list(w->fx->store, w->fx->org, &list, &n), FS_OK);
    assert_int_equal(n, 0);
    store_territories_free(list, n);
}

static void test_owner_ids_per_provider(void **state)
{
    struct world *w = *state;
    struct connection c = {0};
    struct user u = {0};
    char *provider = NULL, *id = NULL;
    int64_t conn = 0;

    assert_int_equal(store_org_provider(w->fx->store, w->fx->org, &provider),
                     FS_OK);
    assert_string_equal(provider, "hubspot");
    free(provider);

    c.org_id = w->fx->org;
    c.provider = "pipedrive";
    c.base_url = "http://127.0.0.1:1";
    c.account_id = "company-1";
    c.token = "tok";
    c.active = true;
    assert_int_equal(store_connection_add(w->fx->store, &c, &conn), FS_OK);
    assert_int_equal(store_org_provider(w->fx->store, w->fx->org, &provider),
                     FS_OK);
    assert_string_equal(provider, "pipedrive");
    free(provider);

    /* After the switch Ann has no owner id until one is set for it. */
    assert_int_equal(store_user_get(w->fx->store, w->fx->org, w->ann, &u),
                     FS_OK);
    assert_null(u.crm_owner_id);
    user_clear(&u);
    assert_int_equal(
        store_user_set_owner_id(w->fx->store, w->fx->org, w->ann, NULL, "p-7"),
        FS_OK);
    assert_int_equal(store_user_get(w->fx->store, w->fx->org, w->ann, &u),
                     FS_OK);
    assert_string_equal(u.crm_owner_id, "p-7");
    user_clear(&u);
    assert_int_equal(
        store_user_owner_id(w->fx->store, w->fx->org, w->ann, "hubspot", &id),
        FS_OK);
    assert_string_equal(id, "101");
    free(id);
    assert_int_equal(store_user_set_owner_id(w->fx->store, w->fx->org + 1,
                                             w->ann, "hubspot", "x"),
                     FS_ERR_NOT_FOUND);
}

static void test_centroid_csv(void **state)
{
    struct store_centroid *list = NULL;
    size_t n = 0;
    struct territory_error err = {0};
    static const char ok[] = "sector,district,latitude,longitude\n"
                             "m1 1,M1,53.48,-2.24\n"
                             "2134,x,42.35,-71.05\r\n";
    static const char bad[] = "postcode,latitude,longitude\n"
                              "M1 1AE,53.4,-2.2\n"
                              "M1 1AF,95,-2.2\n";

    assert_int_equal(territory_parse_centroids(ok, strlen(ok), &list, &n, &err),
                     FS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].postcode, "M1 1");
    assert_string_equal(list[1].postcode, "02134");
    territory_centroids_free(list, n);
    assert_int_equal(
        territory_parse_centroids(bad, strlen(bad), &list, &n, &err),
        FS_ERR_INVALID);
    assert_string_equal(err.field, "line 3");
    territory_error_clear(&err);
    assert_int_equal(
        territory_parse_centroids("a,b\n1,2\n", 8, &list, &n, &err),
        FS_ERR_INVALID);
    territory_error_clear(&err);

    /* A key that names no place is refused, naming the line. */
    static const char banana[] = "postcode,latitude,longitude\n"
                                 "M1 1AE,53.4,-2.2\n"
                                 "banana,53.4,-2.2\n";
    assert_int_equal(
        territory_parse_centroids(banana, strlen(banana), &list, &n, &err),
        FS_ERR_INVALID);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.field, "line 3");
    assert_non_null(strstr(err.message, "banana"));
    territory_error_clear(&err);
}

/* The real centroid tables (units, sectors, districts) load whole. */
static void test_real_centroids_load(void **state)
{
    static const char *const files[] = {
        "data/geo_uk/uk_postcode_district_centroids.csv",
        "data/geo_uk/uk_postcode_sector_centroids.csv",
        "data/geo_uk/uk_postcode_units_area_M.csv",
    };

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *path = test_shared_path(files[i]);
        struct buf b = {0};
        struct store_centroid *list = NULL;
        size_t n = 0;
        struct territory_error err = {0};

        assert_int_equal(buf_read_file(&b, path, 1u << 30), FS_OK);
        fs_result r = territory_parse_centroids(b.data, b.len, &list, &n, &err);
        if (r != FS_OK)
            print_error("%s: %s: %s\n", files[i], err.field, err.message);
        assert_int_equal(r, FS_OK);
        assert_true(n > 1000);
        territory_centroids_free(list, n);
        buf_free(&b);
        free(path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_preview_equals_apply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hand_edit_respected_until_touched,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_moving_a_deal_places_it_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_changes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_owner_ids_per_provider, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_centroid_csv, setup, teardown),
        cmocka_unit_test(test_real_centroids_load),
        cmocka_unit_test_setup_teardown(test_apply_beside_other_writers, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

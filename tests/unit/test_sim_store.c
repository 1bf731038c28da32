/* Unit tests of the simulators' neutral store and seed data: canonical
 * values, refusals, change events with old and new values and actors,
 * merges (with and without a new id), and the postcode placement rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sim_fixture.h"
#include "sim_seed.h"
#include "sim_store.h"
#include "test_env.h"

#include "base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the sink saw, flattened to text lines such as
 * "changed d1 stage s-open>s-work by user u1". */
struct seen {
    char lines[32][160];
    size_t count;
};

static void on_event(void *ctx, const struct sim_event *ev)
{
    static const char *const kinds[] = {"created", "changed", "deleted",
                                        "restored", "merged"};
    struct seen *seen = ctx;
    char *line = seen->lines[seen->count++ % 32];
    int n = snprintf(line, 160, "%s %s", kinds[ev->kind], ev->deal->id);

    for (size_t i = 0; i < ev->change_count && n < 150; i++)
        n +=
            snprintf(line + n, 160 - (size_t)n, " %s %s>%s",
                     sim_field_name(ev->changes[i].field),
                     ev->changes[i].old_value ? ev->changes[i].old_value : "-",
                     ev->changes[i].new_value ? ev->changes[i].new_value : "-");
    for (size_t i = 0; i < ev->merged_count && n < 150; i++)
        n += snprintf(line + n, 160 - (size_t)n, " <%s", ev->merged[i]->id);
    if (n < 150)
        snprintf(line + n, 160 - (size_t)n, " by %d %s", (int)ev->actor.kind,
                 ev->actor.id ? ev->actor.id : "-");
}

static struct sim_store *new_store(bool mint, struct seen *seen)
{
    struct sim_store_config config = sim_fixture_config(mint);
    struct sim_store *store = sim_store_new(&config);
    sim_store_add_owner(store, "Ann Example");
    if (seen)
        sim_store_set_sink(store, on_event, seen);
    return store;
}

static void put(struct sim_store *store, struct sim_write *w, int field,
                const char *value)
{
    enum sim_bad why;
    assert_int_equal(sim_write_set(store, w, field, value, &why), FS_OK);
}

static void refused(struct sim_store *store, int field, const char *value,
                    enum sim_bad want)
{
    struct sim_write w = {0};
    enum sim_bad why = SIM_BAD_VALUE;
    assert_int_equal(sim_write_set(store, &w, field, value, &why),
                     FS_ERR_INVALID);
    assert_int_equal(why, want);
    assert_null(w.values[field]);
}

static const struct sim_actor user = {SIM_ACTOR_USER, "u1"};
static const struct sim_actor token = {SIM_ACTOR_TOKEN, "app7"};

static struct sim_deal *create(struct sim_store *store, const char *name,
                               const char *our_id)
{
    struct sim_write w = {0};
    struct sim_deal *deal = NULL, *clash = NULL;

    put(store, &w, DEAL_NAME, name);
    if (our_id)
        put(store, &w, SIM_F_OUR_ID, our_id);
    assert_int_equal(sim_store_create(store, &w, &user, &deal, &clash), FS_OK);
    sim_write_clear(&w);
    return deal;
}

static void test_values_are_canonical_and_checked(void **state)
{
    struct sim_store *store = new_store(false, NULL);
    struct sim_write w = {0};

    sim_store_lock(store);
    put(store, &w, DEAL_AMOUNT, "0012.50");
    assert_string_equal(w.values[DEAL_AMOUNT], "12.5");
    put(store, &w, DEAL_POSTCODE, "m11ae");
    assert_string_equal(w.values[DEAL_POSTCODE], "M1 1AE");
    put(store, &w, DEAL_LOCATION, "53.4,-2.25");
    assert_string_equal(w.values[DEAL_LOCATION], "53.400000,-2.250000");
    put(store, &w, DEAL_STAGE, "s-won");
    put(store, &w, DEAL_OWNER, "o1");
    put(store, &w, DEAL_ACCOUNT, "");
    assert_string_equal(w.values[DEAL_ACCOUNT], "");
    sim_write_clear(&w);

    refused(store, DEAL_STAGE, "closedwon", SIM_BAD_STAGE);
    refused(store, DEAL_OWNER, "o9", SIM_BAD_OWNER);
    refused(store, SIM_F_PIPELINE, "default", SIM_BAD_PIPELINE);
    refused(store, DEAL_CLOSE_DATE, "2017-02-30", SIM_BAD_VALUE);
    refused(store, DEAL_AMOUNT, "1e3", SIM_BAD_VALUE);
    char *long_name = xcalloc(1, 300);
    memset(long_name, 'x', 299);
    refused(store, DEAL_NAME, long_name, SIM_BAD_TOO_LONG);
    free(long_name);
    assert_int_equal(sim_field_by_name("close_date"), DEAL_CLOSE_DATE);
    assert_int_equal(sim_field_by_name("our_id"), SIM_F_OUR_ID);
    assert_int_equal(sim_field_by_name("dealname"), -1);
    sim_store_unlock(store);
    sim_store_free(store);
}

static void test_changes_are_events_with_old_and_new_values(void **state)
{
    struct seen seen = {0};
    struct sim_store *store = new_store(false, &seen);
    struct sim_write w = {0};
    struct sim_deal *clash = NULL;

    sim_store_lock(store);
    struct sim_deal *deal = create(store, "First", "our-1");
    assert_string_equal(deal->id, "d1");
    assert_string_equal(sim_deal_value(deal, SIM_F_PIPELINE), "p1");
    assert_string_equal(seen.lines[0],
                        "created d1 name ->First our_id ->our-1 pipeline ->p1 "
                        "by 1 u1");

    put(store, &w, DEAL_NAME, "First");
    put(store, &w, DEAL_STAGE, "s-work");
    put(store, &w, DEAL_AMOUNT, "10");
    int64_t before = deal->modified_ms;
    assert_int_equal(sim_store_update(store, deal, &w, &token, &clash), FS_OK);
    sim_write_clear(&w);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.lines[1],
                        "changed d1 stage ->s-work amount ->10 by 2 app7");
    assert_true(deal->modified_ms > before);
    assert_int_equal(sim_deal_time(deal, DEAL_STAGE), deal->modified_ms);
    assert_int_equal(deal->fields[DEAL_STAGE]->actor, SIM_ACTOR_TOKEN);
    assert_string_equal(deal->fields[DEAL_STAGE]->actor_id, "app7");

    /* Writing what is there changes nothing and says nothing. */
    put(store, &w, DEAL_STAGE, "s-work");
    assert_int_equal(sim_store_update(store, deal, &w, &user, &clash), FS_OK);
    assert_int_equal(seen.count, 2);
    put(store, &w, DEAL_STAGE, "");
    assert_int_equal(sim_store_update(store, deal, &w, &user, &clash), FS_OK);
    sim_write_clear(&w);
    assert_string_equal(seen.lines[2], "changed d1 stage s-work>- by 1 u1");
    assert_null(sim_deal_value(deal, DEAL_STAGE));
    assert_non_null(deal->fields[DEAL_STAGE]->prev);

    /* Our id is unique among live deals; a restore honours that too. */
    put(store, &w, DEAL_NAME, "Second");
    put(store, &w, SIM_F_OUR_ID, "our-1");
    struct sim_deal *second = NULL;
    assert_int_equal(sim_store_create(store, &w, &user, &second, &clash),
                     FS_ERR_CONFLICT);
    assert_ptr_equal(clash, deal);
    sim_store_delete(store, deal, &user);
    assert_int_equal(sim_store_create(store, &w, &user, &second, &clash),
                     FS_OK);
    sim_write_clear(&w);
    assert_int_equal(sim_store_restore(store, deal, &user, &clash),
                     FS_ERR_CONFLICT);
    assert_ptr_equal(clash, second);
    assert_int_equal(sim_store_restore(store, second, &user, &clash),
                     FS_ERR_INVALID);
    assert_ptr_equal(sim_store_find_our_id(store, "our-1"), second);
    assert_string_equal(seen.lines[3], "deleted d1 by 1 u1");
    sim_store_unlock(store);
    sim_store_free(store);
}

static void test_merge_keeps_the_primary_or_mints_an_id(void **state)
{
    for (int mint = 0; mint < 2; mint++) {
        struct seen seen = {0};
        struct sim_store *store = new_store(mint, &seen);
        struct sim_write w = {0};
        struct sim_deal *result = NULL, *clash = NULL;

        sim_store_lock(store);
        struct sim_deal *a = create(store, "A", NULL);
        struct sim_deal *b = create(store, "B", NULL);
        put(store, &w, DEAL_ACCOUNT, "Acme");
        assert_int_equal(sim_store_update(store, b, &w, &user, &clash), FS_OK);
        sim_write_clear(&w);
        struct sim_deal *others[] = {b};
        assert_int_equal(sim_store_merge(store, a, others, 1, &user, &result),
                         FS_OK);

        assert_string_equal(sim_deal_value(result, DEAL_NAME), "A");
        assert_string_equal(sim_deal_value(result, DEAL_ACCOUNT), "Acme");
        assert_ptr_equal(sim_store_resolve(store, "d2"), result);
        assert_ptr_equal(sim_store_find(store, "d2"), b);
        assert_true(b->archived);
        assert_ptr_equal(b->merged_into, result);
        const char *want = mint ? "merged d3 account ->Acme <d1 <d2 by 1 u1"
                                : "merged d1 account ->Acme <d2 by 1 u1";
        assert_string_equal(seen.lines[seen.count - 1], want);
        if (mint) {
            assert_string_equal(result->id, "d3");
            assert_ptr_equal(a->merged_into, result);
            assert_ptr_equal(sim_store_resolve(store, "d1"), result);
        } else {
            assert_ptr_equal(result, a);
            assert_false(a->archived);
        }
        assert_int_equal(
            sim_store_merge(store, result, others, 1, &user, &result),
            FS_ERR_NOT_FOUND);
        struct sim_deal *self[] = {result};
        assert_int_equal(
            sim_store_merge(store, result, self, 1, &user, &result),
            FS_ERR_INVALID);
        sim_store_unlock(store);
        sim_store_free(store);
    }
}

/* ---- seed data and placement ---- */

static void test_placement_rule(void **state)
{
    size_t i;

    /* FNV-1a 64 of "1C1I7A6R" is 0x2fafe81d32b53387: bucket 15 of 100,
     * index 94 of 1000. */
    assert_int_equal(sim_seed_place("1C1I7A6R", 1000, &i), SIM_PLACE_LOCATED);
    assert_int_equal(i, 94);
    /* "K26": bucket 90, index 408; "Z063OYW0": bucket 95. */
    assert_int_equal(sim_seed_place("K26", 1000, &i), SIM_PLACE_POSTCODE_ONLY);
    assert_int_equal(i, 408);
    assert_int_equal(sim_seed_place("Z063OYW0", 1000, &i), SIM_PLACE_NONE);
    assert_int_equal(sim_seed_place("1C1I7A6R", 0, &i), SIM_PLACE_NONE);

    size_t counts[3] = {0};
    for (int k = 0; k < 10000; k++) {
        char key[16];
        snprintf(key, sizeof(key), "DEAL%05d", k);
        counts[sim_seed_place(key, 50, &i)]++;
        assert_true(i < 50);
    }
    assert_true(counts[SIM_PLACE_LOCATED] > 8700);
    assert_true(counts[SIM_PLACE_POSTCODE_ONLY] > 300);
    assert_true(counts[SIM_PLACE_NONE] > 300);
}

/* --placed-percent: the FNV-1a hash through MurmurHash3's finaliser,
 * 0x07d3e9e203fcf19f for "1C1I7A6R", bucket 47 of 100. */
static void test_placement_share(void **state)
{
    assert_false(sim_seed_in_share("1C1I7A6R", 47));
    assert_true(sim_seed_in_share("1C1I7A6R", 48));

    size_t kept = 0;
    for (int k = 0; k < 10000; k++) {
        char key[16];
        snprintf(key, sizeof(key), "DEAL%05d", k);
        assert_true(sim_seed_in_share(key, 100));
        assert_false(sim_seed_in_share(key, 0));
        kept += sim_seed_in_share(key, 5);
    }
    assert_in_range(kept, 400, 600);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

/* One seed folder: rows in the given order, and a postcode table. */
static char *seed_dir(const char *const *rows, size_t n, const char *postcodes)
{
    char *dir = test_temp_dir();
    char *rows_text =
        xstrdup("opportunity_id,sales_agent,product,account,"
                "deal_stage,engage_date,close_date,close_value\n");
    for (size_t i = 0; i < n; i++) {
        char *next = xasprintf("%s%s\n", rows_text, rows[i]);
        free(rows_text);
        rows_text = next;
    }
    write_text(dir, "sales_teams.csv",
               "sales_agent,manager,regional_office\nAnn Example,Bo,East\n");
    write_text(dir, "sales_pipeline.csv", rows_text);
    write_text(dir, "postcodes.csv", postcodes);
    free(rows_text);
    return dir;
}

static struct sim_store *load(const char *dir)
{
    struct sim_store *store = new_store(false, NULL);
    char *postcodes = xasprintf("%s/postcodes.csv", dir);
    char *err = NULL;

    assert_int_equal(sim_seed_load(store, dir, postcodes, 100, &err), FS_OK);
    assert_null(err);
    free(postcodes);
    return store;
}

static void test_seed_placement_ignores_load_order(void **state)
{
    const char *rows[40];
    char text[40][96];
    for (int i = 0; i < 40; i++) {
        snprintf(text[i], sizeof(text[i]),
                 "K%d,Ann Example,GTX,Acme,%s,2016-11-01,%s,%s", i,
                 i % 2 ? "Won" : "Prospecting", i % 2 ? "2017-03-01" : "",
                 i % 2 ? "100.50" : "");
        rows[i] = text[i];
    }
    const char *reversed[40];
    for (int i = 0; i < 40; i++)
        reversed[i] = rows[39 - i];
    char *one = seed_dir(rows, 40,
                         "postcode,district,latitude,longitude\n"
                         "M1 1AE,M1,53.483471,-2.231184\n"
                         "m11ad,M1,53.483813,-2.244854\n"
                         "M2 1AB,M2,53.48,-2.24\n"
                         "M3 1AA,M3,,\n");
    char *two = seed_dir(reversed, 40,
                         "latitude,longitude,postcode\n"
                         "53.48,-2.24,M2 1AB\n"
                         "53.483813,-2.244854,M1 1AD\n"
                         "53.483471,-2.231184,M1 1AE\n");
    struct sim_store *a = load(one);
    struct sim_store *b = load(two);
    size_t kinds[3] = {0};

    sim_store_lock(a);
    sim_store_lock(b);
    assert_int_equal(sim_store_deal_count(a), 40);
    for (size_t i = 0; i < 40; i++) {
        struct sim_deal *x = sim_store_deal_at(a, i);
        struct sim_deal *y = sim_store_deal_at(b, 39 - i);
        assert_string_equal(x->seed, y->seed);
        const char *pc = sim_deal_value(x, DEAL_POSTCODE);
        const char *loc = sim_deal_value(x, DEAL_LOCATION);
        size_t at;
        enum sim_place how = sim_seed_place(x->seed, 3, &at);
        kinds[how]++;
        static const char *const sorted[] = {"M1 1AD", "M1 1AE", "M2 1AB"};
        static const char *const where[] = {"53.483813,-2.244854",
                                            "53.483471,-2.231184",
                                            "53.480000,-2.240000"};
        if (how == SIM_PLACE_NONE) {
            assert_null(pc);
        } else {
            assert_string_equal(pc, sorted[at]);
            assert_string_equal(sim_deal_value(y, DEAL_POSTCODE), pc);
        }
        if (how == SIM_PLACE_LOCATED) {
            assert_string_equal(loc, where[at]);
            assert_string_equal(sim_deal_value(y, DEAL_LOCATION), loc);
        } else {
            assert_null(loc);
        }
        /* The rest of the row, canonical. */
        assert_string_equal(sim_deal_value(x, DEAL_STAGE),
                            i % 2 ? "s-won" : "s-open");
        assert_string_equal(sim_deal_value(x, DEAL_OWNER), "o1");
        if (i % 2) {
            assert_string_equal(sim_deal_value(x, DEAL_AMOUNT), "100.5");
            assert_string_equal(sim_deal_value(x, DEAL_CLOSE_DATE),
                                "2017-03-01");
        } else {
            assert_null(sim_deal_value(x, DEAL_AMOUNT));
            assert_null(x->fields[DEAL_CLOSE_DATE]);
        }
    }
    assert_true(kinds[SIM_PLACE_LOCATED] > 0);
    sim_store_unlock(b);
    sim_store_unlock(a);
    sim_store_free(a);
    sim_store_free(b);

    /* A malformed table is refused with its line. */
    char *bad = seed_dir(rows, 1,
                         "postcode,latitude,longitude\n"
                         "M1 1AE,53.4,-2.2\n"
                         "M1 1AF,north,-2.2\n");
    struct sim_store *c = new_store(false, NULL);
    char *path = xasprintf("%s/postcodes.csv", bad);
    char *err = NULL;
    assert_int_equal(sim_seed_load(c, bad, path, 100, &err), FS_ERR_INVALID);
    assert_non_null(strstr(err, "line 3"));
    free(err);
    free(path);
    sim_store_free(c);
    char *cmd = xasprintf("rm -rf '%s' '%s' '%s'", one, two, bad);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(one);
    free(two);
    free(bad);
}

/* A pipeline row shorter than the header is refused with its line, and a
 * postcode table with a header only places nothing. */
static void test_seed_short_row_and_empty_table(void **state)
{
    const char *rows[] = {
        "K1,Ann Example,GTX,Acme,Won,2016-11-01,2017-03-01,100",
        "K2,Ann Example,GTX",
    };
    char *dir = seed_dir(rows, 2, "postcode,latitude,longitude\n");
    char *path = xasprintf("%s/postcodes.csv", dir);
    struct sim_store *store = new_store(false, NULL);
    char *err = NULL;

    assert_int_equal(sim_seed_load(store, dir, path, 100, &err),
                     FS_ERR_INVALID);
    assert_non_null(strstr(err, "sales_pipeline.csv line 3"));
    free(err);
    err = NULL;
    sim_store_free(store);

    char *ok = seed_dir(rows, 1, "postcode,latitude,longitude\n");
    char *ok_path = xasprintf("%s/postcodes.csv", ok);
    store = new_store(false, NULL);
    assert_int_equal(sim_seed_load(store, ok, ok_path, 100, &err), FS_OK);
    sim_store_lock(store);
    assert_int_equal(sim_store_deal_count(store), 1);
    assert_null(sim_deal_value(sim_store_deal_at(store, 0), DEAL_POSTCODE));
    sim_store_unlock(store);
    sim_store_free(store);

    char *cmd = xasprintf("rm -rf '%s' '%s'", dir, ok);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(ok_path);
    free(ok);
    free(path);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_are_canonical_and_checked),
        cmocka_unit_test(test_changes_are_events_with_old_and_new_values),
        cmocka_unit_test(test_merge_keeps_the_primary_or_mints_an_id),
        cmocka_unit_test(test_placement_rule),
        cmocka_unit_test(test_placement_share),
        cmocka_unit_test(test_seed_placement_ignores_load_order),
        cmocka_unit_test(test_seed_short_row_and_empty_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

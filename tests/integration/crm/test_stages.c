/* The org's stages and the CRM's map onto them, on the real programs with
 * a CRM's simulator (FS_CRM): the admin API and the command line validate
 * a map whole, a deal in an unmapped stage keeps its CRM stage, is
 * flagged and listed and is never written back, re-mapping changes what
 * every deal shows without a call to the CRM, and edits name the org's
 * stages. CRM stages are named by their labels in the seed pipeline. */
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

static struct stack st;
static char *rep_token;

/* The stack's own map, put back after each test. */
static const char *const full_map[] = {STACK_STAGE_MAP, NULL};

/* Lost deals no longer map anywhere; Lost is still written as Lost. */
static const char *const map_without_lost[] = {
    "Prospecting=new",   "Engaging=qualified", "Won=won", "--default",
    "in_quote=Engaging", "lost=Lost",          NULL};

static int setup(void **state)
{
    struct stack_options o = {.deals = 24, .owners = 3};

    if (!stack_start(&st, &o))
        return -1;
    rep_token = stack_user_add(&st, STACK_ORG, "Rob Rep", "rep",
                               stack_owner_id(&st, 0));
    return rep_token ? 0 : -1;
}

/* The CRM's id of the seed pipeline's stage with that label. */
static const char *stage(const char *label)
{
    return stack_stage_id(&st, label);
}

static int teardown(void **state)
{
    free(rep_token);
    return stack_stop(&st) ? 0 : -1;
}

static json_t *admin_call(const char *method, const char *path,
                          const char *body, long *status)
{
    return stack_api(&st, st.admin, method, path, body, status);
}

static int restore_map(void **state)
{
    return stack_set_stage_map(&st, full_map) ? 0 : -1;
}

/* How many of the simulator's deals are in the CRM stage. */
static size_t sim_deals_in(const char *crm_stage)
{
    json_t *sim = stack_sim_deals(&st);
    size_t i, n = 0;
    json_t *d;

    json_array_foreach(sim, i, d)
    {
        json_t *fields = stack_sim_fields(d);
        const char *stage = stack_text(fields, "stage");
        n += stage && strcmp(stage, crm_stage) == 0;
        json_decref(fields);
    }
    json_decref(sim);
    return n;
}

/* The first deal in the CRM stage, from the field API (caller decrefs). */
static json_t *deal_in(const char *crm_stage)
{
    json_t *deals = stack_deals(&st, false);
    json_t *found = NULL;
    size_t i;
    json_t *d;

    json_array_foreach(deals, i, d)
    {
        const char *stage = stack_text(d, "crm_stage");
        if (!found && stage && strcmp(stage, crm_stage) == 0)
            found = json_incref(d);
    }
    json_decref(deals);
    return found;
}

static void test_view_shows_stages_and_the_crm_map(void **state)
{
    long status;
    json_t *view = admin_call("GET", "/api/v1/admin/stages", NULL, &status);

    assert_int_equal(status, 200);
    json_t *stages = json_object_get(view, "stages");
    assert_int_equal(json_array_size(stages), 5);
    assert_string_equal(stack_text(json_array_get(stages, 2), "key"),
                        "in_quote");
    assert_string_equal(stack_text(json_array_get(stages, 3), "kind"), "won");
    json_t *pipeline = json_array_get(
        json_object_get(json_object_get(view, "crm"), "pipelines"), 0);
    assert_string_equal(stack_text(pipeline, "id"), stack_pipeline_id(&st));
    json_t *engaging = json_array_get(json_object_get(pipeline, "stages"), 1);
    assert_string_equal(stack_text(engaging, "id"), stage("Engaging"));
    assert_string_equal(stack_text(engaging, "maps_to"), "qualified");
    assert_int_equal(json_array_size(json_object_get(engaging, "default_for")),
                     2);
    assert_int_equal(json_array_size(json_object_get(view, "problems")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(view, "unmapped_deals")), 0);
    json_decref(view);

    /* Reps see deals, not the admin's settings. */
    json_decref(stack_api(&st, rep_token, "GET", "/api/v1/admin/stages", NULL,
                          &status));
    assert_int_equal(status, 403);
    char *body = stack_stage_map_body(&st, full_map);
    json_decref(stack_api(&st, rep_token, "PUT", "/api/v1/admin/stage-map",
                          body, &status));
    assert_int_equal(status, 403);
    free(body);
}

static void test_bad_map_refused_whole(void **state)
{
    long status;
    int64_t calls = stack_sim_stat(&st, "api_calls", NULL);
    char *body = xasprintf("{\"map\":{\"%s\":\"new\","
                           "\"decisionmaker\":\"won\"}}",
                           stage("Prospecting"));
    json_t *r = admin_call("PUT", "/api/v1/admin/stage-map", body, &status);

    assert_int_equal(status, 422);
    assert_non_null(strstr(stack_text(r, "message"), "decisionmaker"));
    json_decref(r);
    free(body);

    /* A stage of the org with no CRM stage to write is refused too. */
    const char *const no_quote[] = {"Prospecting=new", "Engaging=qualified",
                                    "Won=won", "Lost=lost", NULL};
    body = stack_stage_map_body(&st, no_quote);
    r = admin_call("PUT", "/api/v1/admin/stage-map", body, &status);
    assert_int_equal(status, 422);
    assert_non_null(strstr(stack_text(r, "message"), "in_quote"));
    json_decref(r);
    free(body);

    /* Nothing changed. */
    json_t *deal = deal_in(stage("Lost"));
    assert_non_null(deal);
    assert_string_equal(stack_text(deal, "stage"), "lost");
    json_decref(deal);
    assert_int_equal(stack_sim_stat(&st, "api_calls", NULL), calls);
}

/* `fieldsync stages map` takes the CRM's stage ids, through the same
 * checks as the admin API. */
static void test_cli_map_takes_crm_stage_ids(void **state)
{
    char *won = xasprintf("%s=won", stage("Won"));
    char *lost = xasprintf("%s=lost", stage("Lost"));
    char *quote =
        xasprintf("%s/in_quote=%s", stack_pipeline_id(&st), stage("Engaging"));
    const char *bad[] = {
        "stages", "map", "--org", STACK_ORG, won, "decisionmaker=lost", NULL};
    int code;
    char *out = stack_cli(&st, &code, bad);
    long status;

    assert_int_not_equal(code, 0);
    assert_non_null(strstr(out, "decisionmaker"));
    free(out);

    /* Prospecting maps nowhere now, but is what New is written as. */
    char *engaging = xasprintf("%s=qualified", stage("Engaging"));
    char *new_stage =
        xasprintf("%s/new=%s", stack_pipeline_id(&st), stage("Prospecting"));
    const char *map[] = {"stages", "map",       "--org",   STACK_ORG,
                         won,      lost,        engaging,  "--default",
                         quote,    "--default", new_stage, NULL};
    out = stack_cli(&st, &code, map);
    assert_int_equal(code, 0);
    free(out);
    json_t *view = admin_call("GET", "/api/v1/admin/stages", NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_array_size(json_object_get(view, "problems")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(view, "unmapped_deals")),
        (json_int_t)sim_deals_in(stage("Prospecting")));
    json_decref(view);
    json_t *deal = deal_in(stage("Prospecting"));
    assert_non_null(deal);
    assert_true(json_is_true(json_object_get(deal, "stage_unmapped")));
    json_decref(deal);
    deal = deal_in(stage("Engaging"));
    assert_non_null(deal);
    assert_string_equal(stack_text(deal, "stage"), "qualified");
    json_decref(deal);
    free(new_stage);
    free(engaging);
    free(quote);
    free(lost);
    free(won);
}

/* A stage written as a CRM stage that reads back as a stage of another
 * kind (open as lost, won as lost) is refused, by the API and the CLI; a
 * CRM stage given twice on the command line is refused by name. */
static void test_default_of_another_kind_refused(void **state)
{
    long status;
    int code;
    int64_t calls = stack_sim_stat(&st, "api_calls", NULL);
    const char *const quote_lost[] = {
        "Prospecting=new", "Engaging=qualified", "Won=won", "Lost=lost",
        "--default",       "in_quote=Lost",      NULL};
    const char *const won_lost[] = {
        "Prospecting=new", "Engaging=qualified", "Won=lost", "Lost=lost",
        "--default",       "in_quote=Engaging",  "won=Lost", NULL};
    const char *const *bad[] = {quote_lost, won_lost};
    const char *want[] = {"stage in_quote (open)", "stage won (won)"};

    for (size_t i = 0; i < 2; i++) {
        char *body = stack_stage_map_body(&st, bad[i]);
        json_t *r = admin_call("PUT", "/api/v1/admin/stage-map", body, &status);
        assert_int_equal(status, 422);
        assert_non_null(strstr(stack_text(r, "message"), want[i]));
        assert_non_null(strstr(stack_text(r, "message"), "reads back as lost"));
        json_decref(r);
        free(body);
    }

    char *won = xasprintf("%s=won", stage("Won"));
    char *lost = xasprintf("%s=lost", stage("Lost"));
    char *quote =
        xasprintf("%s/in_quote=%s", stack_pipeline_id(&st), stage("Lost"));
    const char *cli_lost[] = {"stages", "map",       "--org", STACK_ORG, won,
                              lost,     "--default", quote,   NULL};
    char *out = stack_cli(&st, &code, cli_lost);
    assert_int_equal(code, 1);
    assert_non_null(strstr(out, "stage in_quote (open) cannot be written"));
    free(out);

    char *twice = xasprintf("%s=qualified", stage("Won"));
    const char *cli_twice[] = {"stages", "map", "--org", STACK_ORG,
                               won,      twice, NULL};
    out = stack_cli(&st, &code, cli_twice);
    char *want_twice = xasprintf("stage %s mapped twice", stage("Won"));
    assert_int_equal(code, 1);
    assert_non_null(strstr(out, want_twice));
    free(out);

    /* Nothing changed. */
    json_t *deal = deal_in(stage("Lost"));
    assert_non_null(deal);
    assert_string_equal(stack_text(deal, "stage"), "lost");
    json_decref(deal);
    deal = deal_in(stage("Won"));
    assert_non_null(deal);
    assert_string_equal(stack_text(deal, "stage"), "won");
    json_decref(deal);
    assert_int_equal(stack_sim_stat(&st, "api_calls", NULL), calls);
    free(want_twice);
    free(twice);
    free(quote);
    free(lost);
    free(won);
}

static void test_unmapped_stage_flagged_listed_and_never_written(void **state)
{
    long status;
    size_t lost = sim_deals_in(stage("Lost"));
    int64_t calls = stack_sim_stat(&st, "api_calls", NULL);

    assert_true(lost > 0);
    assert_true(stack_set_stage_map(&st, map_without_lost));

    /* Re-mapping is a local matter: no call reached the CRM. */
    assert_int_equal(stack_sim_stat(&st, "api_calls", NULL), calls);

    json_t *deal = deal_in(stage("Lost"));
    assert_non_null(deal);
    assert_true(json_is_null(json_object_get(deal, "stage")));
    assert_true(json_is_true(json_object_get(deal, "stage_unmapped")));

    json_t *view = admin_call("GET", "/api/v1/admin/stages", NULL, &status);
    assert_int_equal(
        json_integer_value(json_object_get(view, "unmapped_deals")),
        (json_int_t)lost);
    json_decref(view);
    json_t *list =
        admin_call("GET", "/api/v1/admin/stages/unmapped", NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_array_size(json_object_get(list, "deals")), lost);
    json_decref(list);

    /* Filtering by an org stage follows the map. */
    json_t *by_lost =
        admin_call("GET", "/api/v1/deals?stage=lost", NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_array_size(json_object_get(by_lost, "deals")), 0);
    json_decref(by_lost);

    /* Editing another field of the deal leaves its CRM stage alone. */
    const char *id = stack_text(deal, "id");
    const char *crm_id = stack_text(deal, "crm_id");
    json_decref(stack_patch(&st, st.admin, id,
                            "{\"fields\":{\"name\":\"Kept lost\"}}", &status));
    assert_int_equal(status, 200);
    assert_true(stack_wait_sim(&st, crm_id, "name", "Kept lost"));
    assert_true(stack_wait_state(&st, id, "synced"));
    assert_true(stack_wait_sim(&st, crm_id, "stage", stage("Lost")));
    json_decref(deal);
}

static void test_edits_name_the_orgs_stages(void **state)
{
    long status;
    json_t *deal = deal_in(stage("Prospecting"));
    assert_non_null(deal);
    const char *id = stack_text(deal, "id");
    const char *crm_id = stack_text(deal, "crm_id");

    /* In Quote is written as Engaging, which reads back as Qualified. */
    json_t *r = stack_patch(&st, st.admin, id,
                            "{\"fields\":{\"stage\":\"in_quote\"}}", &status);
    assert_int_equal(status, 200);
    assert_string_equal(stack_text(json_object_get(r, "deal"), "crm_stage"),
                        stage("Engaging"));
    assert_string_equal(stack_text(json_object_get(r, "deal"), "stage"),
                        "qualified");
    /* The answer says the deal does not read as the stage asked. */
    assert_string_equal(stack_text(json_object_get(r, "edits"), "stage"),
                        "remapped");
    json_decref(r);
    assert_true(stack_wait_sim(&st, crm_id, "stage", stage("Engaging")));

    /* Asked again, or for the stage it reads as, nothing changes. */
    r = stack_patch(&st, st.admin, id, "{\"fields\":{\"stage\":\"in_quote\"}}",
                    &status);
    assert_int_equal(status, 200);
    assert_string_equal(stack_text(json_object_get(r, "edits"), "stage"),
                        "unchanged");
    json_decref(r);
    r = stack_patch(&st, st.admin, id, "{\"fields\":{\"stage\":\"qualified\"}}",
                    &status);
    assert_int_equal(status, 200);
    assert_string_equal(stack_text(json_object_get(r, "edits"), "stage"),
                        "unchanged");
    json_decref(r);

    /* A CRM stage id, or anything else that is not one of the org's
     * stages, is refused and changes nothing. */
    char *body = xasprintf("{\"fields\":{\"stage\":\"%s\"}}", stage("Won"));
    r = stack_patch(&st, st.admin, id, body, &status);
    free(body);
    assert_int_equal(status, 422);
    assert_string_equal(stack_text(r, "error"), "unknown_stage");
    json_decref(r);
    json_t *after = stack_deal(&st, id);
    assert_string_equal(stack_text(after, "crm_stage"), stage("Engaging"));
    json_decref(after);

    char *path = xasprintf("/api/v1/deals?stage=%s", stage("Won"));
    json_t *list = admin_call("GET", path, NULL, &status);
    assert_int_equal(status, 400);
    free(path);
    json_decref(list);
    json_decref(deal);
}

static void test_removing_a_mapped_stage_refused(void **state)
{
    const char *define[] = {
        "stages",      "define",         "--org",
        STACK_ORG,     "new=New",        "qualified=Qualified",
        "won=Won:won", "lost=Lost:lost", NULL};
    int code;
    char *out = stack_cli(&st, &code, define);

    assert_int_equal(code, 1);
    assert_non_null(strstr(out, "in_quote"));
    free(out);

    long status;
    json_t *view = admin_call("GET", "/api/v1/admin/stages", NULL, &status);
    assert_int_equal(json_array_size(json_object_get(view, "stages")), 5);
    json_decref(view);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_shows_stages_and_the_crm_map),
        cmocka_unit_test_teardown(test_bad_map_refused_whole, restore_map),
        cmocka_unit_test_teardown(test_default_of_another_kind_refused,
                                  restore_map),
        cmocka_unit_test_teardown(test_cli_map_takes_crm_stage_ids,
                                  restore_map),
        cmocka_unit_test_teardown(
            test_unmapped_stage_flagged_listed_and_never_written, restore_map),
        cmocka_unit_test_teardown(test_edits_name_the_orgs_stages, restore_map),
        cmocka_unit_test(test_removing_a_mapped_stage_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

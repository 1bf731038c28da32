/* Bad requests to the field API of fieldsync serve, on the real program:
 * each gets a clear JSON error with the documented status and code, and
 * nothing changes, neither in fieldsync nor in the CRM. */
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

#define OTHER_ORG "globex"
#define OTHER_PORTAL "9002"
#define REP_OWNER "100001"
/* Past serve's 1 MiB request limit. */
#define OVERSIZE_BODY (1200 * 1024)

static struct stack st;
static char *rep_token;    /* a rep of STACK_ORG owning REP_OWNER's deals */
static char *own_deal;     /* our id of a deal the rep owns */
static char *other_deal;   /* our id of a deal of another owner */
static char *foreign_deal; /* our id of a deal of OTHER_ORG */

/* A second org on the same simulator, imported through the CLI. */
static bool add_other_org(void)
{
    const char *org[] = {"org", "add", OTHER_ORG, NULL};
    const char *import[] = {"import", "--org", OTHER_ORG, NULL};
    int code;

    free(stack_cli(&st, &code, org));
    if (code != 0 || !stack_connect(&st, OTHER_ORG, OTHER_PORTAL, 100000))
        return false;
    free(stack_cli(&st, &code, import));
    char *admin = stack_user_add(&st, OTHER_ORG, "Other Admin", "admin", NULL);
    if (code != 0 || !admin)
        return false;

    long status;
    json_t *page =
        stack_api(&st, admin, "GET", "/api/v1/deals?limit=1", NULL, &status);
    const char *id =
        stack_text(json_array_get(json_object_get(page, "deals"), 0), "id");
    foreign_deal = id ? xstrdup(id) : NULL;
    json_decref(page);
    free(admin);
    return status == 200 && foreign_deal;
}

static int setup(void **state)
{
    struct stack_options o = {.deals = 12, .owners = 3};

    if (!stack_start(&st, &o))
        return -1;
    rep_token = stack_user_add(&st, STACK_ORG, "Rob Rep", "rep", REP_OWNER);
    /* Seed deals go to the agents in turn: the first to owner 100001. */
    own_deal = stack_record_id(&st, "20000000001");
    other_deal = stack_record_id(&st, "20000000002");
    return rep_token && own_deal && other_deal && add_other_org() ? 0 : -1;
}

static int teardown(void **state)
{
    free(rep_token);
    free(own_deal);
    free(other_deal);
    free(foreign_deal);
    return stack_stop(&st) ? 0 : -1;
}

static int64_t crm_writes(void)
{
    return stack_sim_stat(&st, "api_calls_by_class", "write");
}

/* PATCHes the deal with body as token and checks the error answer; then
 * that the deal (as the admin sees it) and the CRM are unchanged. */
static void assert_patch_refused(const char *token, const char *id,
                                 const char *body, long status,
                                 const char *code, const char *field)
{
    json_t *before = stack_deal(&st, own_deal);
    int64_t writes = crm_writes();
    long got;
    json_t *r = stack_patch(&st, token, id, body, &got);

    assert_int_equal(got, status);
    assert_non_null(r);
    assert_string_equal(stack_text(r, "error"), code);
    assert_non_null(stack_text(r, "message"));
    if (field)
        assert_string_equal(stack_text(r, "field"), field);
    json_decref(r);

    json_t *after = stack_deal(&st, own_deal);
    assert_true(json_equal(before, after));
    assert_string_equal(stack_text(json_object_get(after, "sync"), "state"),
                        "synced");
    assert_int_equal(crm_writes(), writes);
    json_decref(after);
    json_decref(before);
}

static void test_malformed_json(void **state)
{
    assert_patch_refused(st.admin, own_deal, "{\"fields\":{\"name\":", 400,
                         "invalid_json", NULL);
    assert_patch_refused(st.admin, own_deal, "[\"fields\"]", 400,
                         "invalid_json", NULL);
}

static void test_unknown_field(void **state)
{
    assert_patch_refused(st.admin, own_deal,
                         "{\"fields\":{\"name\":\"ok\",\"colour\":\"red\"}}",
                         400, "unknown_field", "colour");
}

static void test_wrong_type(void **state)
{
    assert_patch_refused(st.admin, own_deal,
                         "{\"fields\":{\"stage\":\"closedwon\","
                         "\"name\":[\"x\"]}}",
                         400, "invalid_type", "name");
}

static void test_invalid_value(void **state)
{
    assert_patch_refused(st.admin, own_deal,
                         "{\"fields\":{\"close_date\":\"2017-02-30\"}}", 422,
                         "invalid_value", "close_date");
}

static void test_oversize_bodies(void **state)
{
    char *long_name = xcalloc(5000, 1);
    memset(long_name, 'x', 4999);
    char *body = xasprintf("{\"fields\":{\"name\":\"%s\"}}", long_name);
    assert_patch_refused(st.admin, own_deal, body, 413, "too_large", NULL);
    free(body);
    free(long_name);

    char *huge = xcalloc(OVERSIZE_BODY + 1, 1);
    memset(huge, ' ', OVERSIZE_BODY);
    memcpy(huge, "{\"fields\":{\"name\":\"big\"}}", 25);
    assert_patch_refused(st.admin, own_deal, huge, 413, "too_large", NULL);
    free(huge);
}

static void test_another_orgs_deal_is_not_found(void **state)
{
    long status;
    char *path = xasprintf("/api/v1/deals/%s", foreign_deal);
    json_t *r = stack_api(&st, st.admin, "GET", path, NULL, &status);

    assert_int_equal(status, 404);
    assert_string_equal(stack_text(r, "error"), "not_found");
    json_decref(r);
    free(path);
    assert_patch_refused(st.admin, foreign_deal,
                         "{\"fields\":{\"name\":\"not yours\"}}", 404,
                         "not_found", NULL);
}

static void test_rep_cannot_edit_another_reps_deal(void **state)
{
    json_t *before = stack_deal(&st, other_deal);
    assert_patch_refused(rep_token, other_deal,
                         "{\"fields\":{\"name\":\"not mine\"}}", 403,
                         "forbidden", NULL);
    json_t *after = stack_deal(&st, other_deal);
    assert_true(json_equal(before, after));
    json_decref(after);
    json_decref(before);

    /* Nor give away a deal the rep owns. */
    assert_patch_refused(rep_token, own_deal,
                         "{\"fields\":{\"owner\":\"100002\"}}", 403,
                         "forbidden", "owner");
}

static void test_missing_or_unknown_token(void **state)
{
    assert_patch_refused(NULL, own_deal, "{\"fields\":{\"name\":\"anon\"}}",
                         401, "unauthorized", NULL);
    assert_patch_refused("fs_not_a_real_token", own_deal,
                         "{\"fields\":{\"name\":\"anon\"}}", 401,
                         "unauthorized", NULL);
}

/* The same rep can edit their own deal: the refusals above were about
 * the request, not a broken user. */
static void test_rep_edits_own_deal(void **state)
{
    long status;
    json_t *r =
        stack_patch(&st, rep_token, own_deal,
                    "{\"fields\":{\"product\":\"Rep's own edit\"}}", &status);

    assert_int_equal(status, 200);
    json_decref(r);
    assert_true(
        stack_wait_sim(&st, "20000000001", "product", "Rep's own edit"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_invalid_value),
        cmocka_unit_test(test_oversize_bodies),
        cmocka_unit_test(test_another_orgs_deal_is_not_found),
        cmocka_unit_test(test_rep_cannot_edit_another_reps_deal),
        cmocka_unit_test(test_missing_or_unknown_token),
        cmocka_unit_test(test_rep_edits_own_deal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* Bad requests to the field API of fieldsync serve, on the real program
 * with a CRM's simulator (FS_CRM): each gets a clear JSON error with the
 * documented status and code, and nothing changes, neither in fieldsync
 * nor in the CRM. The access rules: no token or a revoked one opens
 * nothing, a rep is refused what the roles forbid, and nobody reaches
 * another org's deals, stages or sync. */
#include "http_test.h"
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
/* Past serve's 1 MiB request limit. */
#define OVERSIZE_BODY (1200 * 1024)

static struct stack st;
static char *rep_token;    /* a rep of STACK_ORG owning owner 0's deals */
static char *own_deal;     /* our id of a deal the rep owns */
static char *other_deal;   /* our id of a deal of another owner */
static char *foreign_deal; /* our id of a deal of OTHER_ORG */
static char *other_admin;  /* an admin of OTHER_ORG */
static char *revoked;      /* the token of a revoked admin of STACK_ORG */

/* A second org on another account of the same simulator, imported
 * through the CLI. */
static bool add_other_org(void)
{
    const char *org[] = {"org", "add", OTHER_ORG, NULL};
    const char *import[] = {"import", "--org", OTHER_ORG, NULL};
    int code;

    free(stack_cli(&st, &code, org));
    if (code != 0 || !stack_connect(&st, OTHER_ORG, 1, 100000))
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
    other_admin = admin;
    return status == 200 && foreign_deal;
}

/* An admin added, then revoked: its token (caller frees), or NULL. */
static char *revoked_token(void)
{
    const char *add[] = {"user",       "add",    "--org", STACK_ORG, "--name",
                         "Gone Admin", "--role", "admin", NULL};
    int code;
    char *out = stack_cli(&st, &code, add);
    long long id = 0;
    char *token = NULL;
    const char *at = strstr(out, "token: ");

    if (code == 0 && at && sscanf(out, "user %lld", &id) == 1) {
        token = xstrndup(at + 7, strcspn(at + 7, "\r\n"));
        char *id_text = xasprintf("%lld", id);
        const char *revoke[] = {"user", "revoke", "--org", STACK_ORG,
                                "--id", id_text,  NULL};
        free(stack_cli(&st, &code, revoke));
        free(id_text);
        if (code != 0) {
            free(token);
            token = NULL;
        }
    }
    free(out);
    return token;
}

static int setup(void **state)
{
    struct stack_options o = {.deals = 12, .owners = 3, .fail_after_ms = 1500};

    if (!stack_start(&st, &o))
        return -1;
    revoked = revoked_token();
    if (!revoked)
        return -1;
    rep_token = stack_user_add(&st, STACK_ORG, "Rob Rep", "rep",
                               stack_owner_id(&st, 0));
    /* Seed deals go to the agents in turn: the first to owner 0. */
    own_deal = stack_record_id(&st, stack_seed_id(&st, 0));
    other_deal = stack_record_id(&st, stack_seed_id(&st, 1));
    return rep_token && own_deal && other_deal && add_other_org() ? 0 : -1;
}

static int teardown(void **state)
{
    free(rep_token);
    free(own_deal);
    free(other_deal);
    free(foreign_deal);
    free(other_admin);
    free(revoked);
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
                         "{\"fields\":{\"stage\":\"won\","
                         "\"name\":[\"x\"]}}",
                         400, "invalid_type", "name");
}

static void test_invalid_value(void **state)
{
    assert_patch_refused(st.admin, own_deal,
                         "{\"fields\":{\"close_date\":\"2017-02-30\"}}", 422,
                         "invalid_value", "close_date");
}

/* Values the CRM could never take are refused before anything is stored:
 * an owner it does not have, a "postcode" that names no place. */
static void test_values_the_crm_lacks(void **state)
{
    assert_patch_refused(st.admin, own_deal,
                         "{\"fields\":{\"owner\":\"no-such-owner-77\"}}", 422,
                         "unknown_owner", "owner");
    assert_patch_refused(st.admin, own_deal,
                         "{\"fields\":{\"postcode\":\"HELLO\"}}", 422,
                         "invalid_value", "postcode");
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
    char *give =
        xasprintf("{\"fields\":{\"owner\":\"%s\"}}", stack_owner_id(&st, 1));
    assert_patch_refused(rep_token, own_deal, give, 403, "forbidden", "owner");
    free(give);
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
    assert_true(stack_wait_sim(&st, stack_seed_id(&st, 0), "product",
                               "Rep's own edit"));
    assert_true(stack_wait_state(&st, own_deal, "synced"));
}

/* ---- access ---- */

/* What a refused call must not have changed: the deals, the org's
 * stages, the CRM's writes. */
struct snapshot {
    json_t *deals;
    json_t *stages;
    int64_t writes;
};

static json_t *stages_of(const char *admin)
{
    long status;
    json_t *stages =
        stack_api(&st, admin, "GET", "/api/v1/admin/stages", NULL, &status);
    assert_int_equal(status, 200);
    return stages;
}

static void snapshot_take(struct snapshot *s, const char *admin)
{
    long status;

    assert_true(stack_settled(&st, STACK_WAIT_MS));
    s->deals =
        stack_api(&st, admin, "GET", "/api/v1/deals?limit=100", NULL, &status);
    assert_int_equal(status, 200);
    s->stages = stages_of(admin);
    s->writes = crm_writes();
}

static void snapshot_same(struct snapshot *s, const char *admin)
{
    struct snapshot now;
    snapshot_take(&now, admin);
    assert_true(json_equal(s->deals, now.deals));
    assert_true(json_equal(s->stages, now.stages));
    assert_int_equal(s->writes, now.writes);
    json_decref(now.deals);
    json_decref(now.stages);
    json_decref(s->deals);
    json_decref(s->stages);
}

struct endpoint {
    const char *method;
    const char *path; /* followed by own_deal's id when on_deal */
    const char *body;
    bool on_deal;
};

static const struct endpoint endpoints[] = {
    {"GET", "/api/v1/deals", NULL, false},
    {"GET", "/api/v1/deals/", NULL, true},
    {"PATCH", "/api/v1/deals/", "{\"fields\":{\"name\":\"taken\"}}", true},
    {"POST", "/api/v1/deals", "{\"fields\":{\"name\":\"made\"}}", false},
    {"GET", "/api/v1/sync/status", NULL, false},
    {"POST", "/api/v1/sync/retry", NULL, false},
    {"GET", "/api/v1/me", NULL, false},
    {"GET", "/api/v1/events", NULL, false},
    {"GET", "/api/v1/admin/stages", NULL, false},
    {"PUT", "/api/v1/admin/stages", "{\"stages\":[]}", false},
    {"PUT", "/api/v1/admin/stage-map", "{\"map\":{}}", false},
    {"GET", "/api/v1/admin/stages/unmapped", NULL, false},
};
#define N_ENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))
/* The admin endpoints, last in the table. */
#define FIRST_ADMIN_ENDPOINT 8

static void assert_call_refused(const char *token, const struct endpoint *e,
                                long status, const char *code)
{
    char *path = xasprintf("%s%s", e->path, e->on_deal ? own_deal : "");
    long got;
    json_t *r = stack_api(&st, token, e->method, path, e->body, &got);

    if (got != status)
        fprintf(stderr, "%s %s answered %ld\n", e->method, path, got);
    assert_int_equal(got, status);
    assert_string_equal(stack_text(r, "error"), code);
    json_decref(r);
    free(path);
}

/* No token, a made-up one and a revoked one: every endpoint answers 401
 * and changes nothing. */
static void test_no_token_opens_nothing(void **state)
{
    const char *tokens[] = {NULL, "fs_0123456789abcdef", revoked};
    struct snapshot before;

    snapshot_take(&before, st.admin);
    for (size_t t = 0; t < 3; t++) {
        for (size_t i = 0; i < N_ENDPOINTS; i++)
            assert_call_refused(tokens[t], &endpoints[i], 401, "unauthorized");
    }
    snapshot_same(&before, st.admin);
}

/* A rep is refused every admin endpoint (403), and changes nothing. */
static void test_rep_refused_admin_endpoints(void **state)
{
    struct snapshot before;

    snapshot_take(&before, st.admin);
    for (size_t i = FIRST_ADMIN_ENDPOINT; i < N_ENDPOINTS; i++)
        assert_call_refused(rep_token, &endpoints[i], 403, "forbidden");
    snapshot_same(&before, st.admin);
}

/* A rep creates deals for themselves only. */
static void test_rep_cannot_create_for_another_owner(void **state)
{
    struct snapshot before;
    long status;

    snapshot_take(&before, st.admin);
    json_t *r = stack_api(&st, rep_token, "POST", "/api/v1/deals",
                          "{\"fields\":{\"name\":\"For someone else\","
                          "\"owner\":\"100002\"}}",
                          &status);
    assert_int_equal(status, 403);
    assert_string_equal(stack_text(r, "error"), "forbidden");
    assert_string_equal(stack_text(r, "field"), "owner");
    json_decref(r);
    snapshot_same(&before, st.admin);
}

static bool foreign_deal_failed(void *ctx)
{
    long status;
    char *path = xasprintf("/api/v1/deals/%s", foreign_deal);
    json_t *deal = stack_api(&st, other_admin, "GET", path, NULL, &status);
    const char *state = stack_text(json_object_get(deal, "sync"), "state");
    bool failed = state && strcmp(state, ctx) == 0;

    json_decref(deal);
    free(path);
    return failed;
}

/* An admin of one org reaches nothing of another: not its deals (404),
 * not its stages (an admin's stage endpoints are their own org's), not
 * its failed deals in sync status, and a retry does not requeue them. */
static void test_admin_cannot_touch_another_org(void **state)
{
    long status;
    json_t *other_stages = stages_of(other_admin);

    /* Stages: this org's admin replaces its own, the other's stay. */
    json_t *mine = stages_of(st.admin);
    char *body = json_dumps(mine, JSON_COMPACT);
    json_decref(
        stack_api(&st, st.admin, "PUT", "/api/v1/admin/stages", body, &status));
    assert_int_equal(status, 200);
    json_t *after = stages_of(other_admin);
    assert_true(json_equal(other_stages, after));
    json_decref(after);
    free(body);
    json_decref(mine);

    /* A failed deal of the other org. */
    assert_true(stack_faults(&st, "{\"api_5xx\":1.0}"));
    char *path = xasprintf("/api/v1/deals/%s", foreign_deal);
    json_decref(stack_api(&st, other_admin, "PATCH", path,
                          "{\"fields\":{\"product\":\"Will fail\"}}", &status));
    assert_int_equal(status, 200);
    assert_true(http_test_poll(foreign_deal_failed, "failed", STACK_WAIT_MS));

    struct http_test_response resp;
    char *url = xasprintf("%s/api/v1/sync/status", st.api_base);
    char *auth = xasprintf("Authorization: Bearer %s", st.admin);
    const char *headers[] = {auth, NULL};
    http_test_request("GET", url, headers, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_null(strstr(resp.body, foreign_deal));
    http_test_response_free(&resp);

    json_t *r =
        stack_api(&st, st.admin, "POST", "/api/v1/sync/retry", NULL, &status);
    assert_int_equal(status, 200);
    json_decref(r);
    assert_true(foreign_deal_failed("failed"));

    /* Its own admin can. */
    assert_true(stack_faults(&st, "{\"api_5xx\":0.0}"));
    json_decref(stack_api(&st, other_admin, "POST", "/api/v1/sync/retry", NULL,
                          &status));
    assert_int_equal(status, 200);
    assert_true(http_test_poll(foreign_deal_failed, "synced", STACK_WAIT_MS));
    free(auth);
    free(url);
    free(path);
    json_decref(other_stages);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_invalid_value),
        cmocka_unit_test(test_values_the_crm_lacks),
        cmocka_unit_test(test_oversize_bodies),
        cmocka_unit_test(test_another_orgs_deal_is_not_found),
        cmocka_unit_test(test_rep_cannot_edit_another_reps_deal),
        cmocka_unit_test(test_missing_or_unknown_token),
        cmocka_unit_test(test_rep_edits_own_deal),
        cmocka_unit_test(test_no_token_opens_nothing),
        cmocka_unit_test(test_rep_refused_admin_endpoints),
        cmocka_unit_test(test_rep_cannot_create_for_another_owner),
        cmocka_unit_test(test_admin_cannot_touch_another_org),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* Unit tests for the pure parts of the field API: the deal's JSON form
 * and sync state, the list query parser and the edit body parser with its
 * limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/json_text.h"
#include "services/deal_json.h"
#include "services/field_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- deal_json ---- */

static void crm_sets(struct record *r, enum deal_field f, const char *v,
                     int64_t t)
{
    struct crm_change change = {.value = v, .time = t, .actor = ACTOR_OTHER};
    assert_int_equal(merge_crm_change(&r->fields[f], &change), MERGE_TAKEN);
}

static void make_synced_record(struct record *r)
{
    memset(r, 0, sizeof(*r));
    r->rowid = 1;
    r->id = xstrdup("00112233445566778899aabbccddeeff");
    r->crm_id = xstrdup("9001");
    r->org_id = 1;
    r->created_at = 100;
    r->updated_at = 200;
    crm_sets(r, DEAL_NAME, "Acme roof", 150);
    crm_sets(r, DEAL_STAGE, "appointmentscheduled", 200);
}

static const char *sync_state_of(json_t *deal)
{
    return json_string_value(
        json_object_get(json_object_get(deal, "sync"), "state"));
}

static json_t *field_sync(json_t *deal, const char *name)
{
    return json_object_get(
        json_object_get(json_object_get(deal, "sync"), "fields"), name);
}

static void test_deal_json_synced_record(void **state)
{
    struct record r;
    make_synced_record(&r);

    json_t *j = deal_json(&r, NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "id")), r.id);
    assert_string_equal(json_string_value(json_object_get(j, "crm_id")),
                        "9001");
    assert_string_equal(json_string_value(json_object_get(j, "name")),
                        "Acme roof");
    assert_true(json_is_null(json_object_get(j, "amount")));
    assert_true(json_is_false(json_object_get(j, "deleted")));
    assert_true(json_is_null(json_object_get(j, "deleted_reason")));
    assert_int_equal(json_integer_value(json_object_get(j, "updated_at")), 200);
    assert_string_equal(sync_state_of(j), "synced");
    assert_null(json_object_get(json_object_get(j, "sync"), "error"));

    json_t *name = field_sync(j, "name");
    assert_string_equal(json_string_value(json_object_get(name, "state")),
                        "synced");
    assert_string_equal(json_string_value(json_object_get(name, "origin")),
                        "crm");
    assert_int_equal(json_integer_value(json_object_get(name, "time")), 150);
    json_t *never = field_sync(j, "engage_date");
    assert_true(json_is_null(json_object_get(never, "origin")));

    /* Every field of a deal is present, null or text. */
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        assert_non_null(json_object_get(j, deal_fields[f].name));
    json_decref(j);
    record_clear(&r);
}

static void test_deal_json_pending_and_failed(void **state)
{
    struct record r;
    make_synced_record(&r);
    assert_int_equal(
        merge_local_edit(&r.fields[DEAL_STAGE], "closedwon", 300, 0),
        EDIT_APPLIED);

    /* The CRM stage shows as the org's stage it maps to. */
    struct stage_map map = {0};
    stage_map_default_stages(&map);
    map.links = xcalloc(1, sizeof(*map.links));
    map.links[0] = (struct stage_link){xstrdup("closedwon"), xstrdup("won")};
    map.n_links = 1;

    json_t *j = deal_json(&r, NULL, &map);
    assert_string_equal(sync_state_of(j), "pending");
    json_t *stage = field_sync(j, "stage");
    assert_string_equal(json_string_value(json_object_get(stage, "state")),
                        "pending");
    assert_string_equal(json_string_value(json_object_get(stage, "origin")),
                        "local");
    assert_string_equal(json_string_value(json_object_get(j, "stage")), "won");
    assert_string_equal(json_string_value(json_object_get(j, "crm_stage")),
                        "closedwon");
    assert_false(json_is_true(json_object_get(j, "stage_unmapped")));
    json_decref(j);

    /* A CRM stage mapped to none keeps its raw id and is flagged. */
    free(map.links[0].crm_stage);
    map.links[0].crm_stage = xstrdup("closedlost");
    j = deal_json(&r, NULL, &map);
    assert_true(json_is_null(json_object_get(j, "stage")));
    assert_string_equal(json_string_value(json_object_get(j, "crm_stage")),
                        "closedwon");
    assert_true(json_is_true(json_object_get(j, "stage_unmapped")));
    json_decref(j);
    stage_map_clear(&map);

    /* Failed wins over pending and carries the last error. */
    struct sync_state sync = {.attempts = 7,
                              .failed = true,
                              .last_error = xstrdup("HTTP 400: bad stage")};
    j = deal_json(&r, &sync, NULL);
    assert_string_equal(sync_state_of(j), "failed");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "sync"), "error")),
        "HTTP 400: bad stage");
    json_decref(j);

    /* A retrying record shows its error while still pending. */
    sync.failed = false;
    j = deal_json(&r, &sync, NULL);
    assert_string_equal(sync_state_of(j), "pending");
    assert_non_null(json_object_get(json_object_get(j, "sync"), "error"));
    json_decref(j);
    sync_state_clear(&sync);
    record_clear(&r);
}

static void test_deal_json_new_and_deleted(void **state)
{
    struct record r = {0};
    r.id = xstrdup("ffeeddccbbaa99887766554433221100");
    merge_local_edit(&r.fields[DEAL_NAME], "Field deal", 500, 0);

    /* Not in the CRM yet: pending even before any field check. */
    json_t *j = deal_json(&r, NULL, NULL);
    assert_true(json_is_null(json_object_get(j, "crm_id")));
    assert_string_equal(sync_state_of(j), "pending");
    json_decref(j);

    r.crm_id = xstrdup("77");
    merge_mark_pushed(&r.fields[DEAL_NAME], "Field deal");
    struct crm_change echo = {.value = "Field deal", .time = 600};
    merge_crm_change(&r.fields[DEAL_NAME], &echo);
    r.deleted_at = 700;
    r.deleted_reason = xstrdup("crm_delete");
    j = deal_json(&r, NULL, NULL);
    assert_string_equal(sync_state_of(j), "synced");
    assert_true(json_is_true(json_object_get(j, "deleted")));
    assert_string_equal(json_string_value(json_object_get(j, "deleted_reason")),
                        "crm_delete");
    json_decref(j);
    record_clear(&r);
}

/* ---- query ---- */

static void expect_query_error(const char *url, int status, const char *code,
                               const char *field)
{
    struct field_api_query q;
    struct api_error err = {0};

    assert_int_not_equal(field_api_parse_query(url, &q, &err), FS_OK);
    assert_int_equal(err.status, status);
    assert_string_equal(err.code, code);
    if (field)
        assert_string_equal(err.field, field);
    else
        assert_null(err.field);
    assert_non_null(err.message);
    assert_null(q.owner);
    api_error_clear(&err);
}

static void test_query_defaults_and_values(void **state)
{
    struct field_api_query q;
    struct api_error err = {0};

    assert_int_equal(field_api_parse_query("/api/v1/deals", &q, &err), FS_OK);
    assert_int_equal(q.limit, FIELD_API_DEFAULT_LIMIT);
    assert_null(q.owner);
    assert_null(q.cursor);
    assert_int_equal(q.updated_since, 0);
    assert_false(q.include_deleted);
    field_api_query_clear(&q);

    assert_int_equal(
        field_api_parse_query("/api/v1/deals?owner=a%20b+c&stage=closedwon"
                              "&updated_since=1796292000000&limit=1000"
                              "&cursor=00ff&include_deleted=true&",
                              &q, &err),
        FS_OK);
    assert_string_equal(q.owner, "a b c");
    assert_string_equal(q.stage, "closedwon");
    assert_int_equal(q.updated_since, INT64_C(1796292000000));
    assert_int_equal(q.limit, 1000);
    assert_string_equal(q.cursor, "00ff");
    assert_true(q.include_deleted);
    field_api_query_clear(&q);
    assert_int_equal(err.status, 0);
}

static void test_query_errors_name_the_param(void **state)
{
    expect_query_error("/d?owner=1&colour=red", 400, "unknown_param", "colour");
    expect_query_error("/d?limit=0", 400, "invalid_param", "limit");
    expect_query_error("/d?limit=1001", 400, "invalid_param", "limit");
    expect_query_error("/d?limit=12abc", 400, "invalid_param", "limit");
    expect_query_error("/d?limit=", 400, "invalid_param", "limit");
    expect_query_error("/d?updated_since=-5", 400, "invalid_param",
                       "updated_since");
    expect_query_error("/d?updated_since=99999999999999999999", 400,
                       "invalid_param", "updated_since");
    expect_query_error("/d?cursor=not-hex", 400, "invalid_param", "cursor");
    expect_query_error("/d?stage=a&stage=b", 400, "invalid_param", "stage");
    expect_query_error("/d?include_deleted=maybe", 400, "invalid_param",
                       "include_deleted");
    expect_query_error("/d?owner=%00", 400, "invalid_param", "owner");
    expect_query_error("/d?owner=%4", 400, "invalid_param", "owner");

    char *long_owner = xmalloc(FIELD_API_MAX_PARAM + 16);
    memcpy(long_owner, "/d?owner=", 9);
    memset(long_owner + 9, 'x', FIELD_API_MAX_PARAM + 1);
    long_owner[9 + FIELD_API_MAX_PARAM + 1] = '\0';
    expect_query_error(long_owner, 400, "invalid_param", "owner");
    free(long_owner);
}

/* ---- edit bodies ---- */

static fs_result parse(const char *body, struct field_api_edit *edit,
                       struct api_error *err)
{
    return field_api_parse_edit(body, strlen(body), edit, err);
}

static void expect_edit_error(const char *body, int status, const char *code,
                              const char *field)
{
    struct field_api_edit edit;
    struct api_error err = {0};

    assert_int_not_equal(parse(body, &edit, &err), FS_OK);
    assert_int_equal(err.status, status);
    assert_string_equal(err.code, code);
    if (field)
        assert_string_equal(err.field, field);
    else
        assert_null(err.field);
    /* Nothing is left half-parsed. */
    assert_int_equal(edit.count, 0);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        assert_null(edit.values[f]);
    api_error_clear(&err);
}

static void test_edit_canonicalises_values(void **state)
{
    struct field_api_edit edit;
    struct api_error err = {0};

    assert_int_equal(parse("{\"fields\":{\"stage\":\"closedwon\","
                           "\"amount\":\"1200.50\",\"account\":null,"
                           "\"close_date\":\"2026-02-28\"},"
                           "\"client_time\":1796292000000}",
                           &edit, &err),
                     FS_OK);
    assert_int_equal(edit.count, 4);
    assert_true(edit.set[DEAL_STAGE]);
    assert_string_equal(edit.values[DEAL_STAGE], "closedwon");
    assert_string_equal(edit.values[DEAL_AMOUNT], "1200.5");
    assert_true(edit.set[DEAL_ACCOUNT]);
    assert_null(edit.values[DEAL_ACCOUNT]);
    assert_string_equal(edit.values[DEAL_CLOSE_DATE], "2026-02-28");
    assert_false(edit.set[DEAL_NAME]);
    assert_int_equal(edit.client_time, INT64_C(1796292000000));
    field_api_edit_clear(&edit);

    /* Amounts may be JSON numbers; an empty string clears like null. */
    assert_int_equal(
        parse("{\"fields\":{\"amount\":1200.5,\"account\":\"\"}}", &edit, &err),
        FS_OK);
    assert_string_equal(edit.values[DEAL_AMOUNT], "1200.5");
    assert_true(edit.set[DEAL_ACCOUNT]);
    assert_null(edit.values[DEAL_ACCOUNT]);
    assert_int_equal(edit.client_time, 0);
    field_api_edit_clear(&edit);

    assert_int_equal(parse("{\"fields\":{\"amount\":42}}", &edit, &err), FS_OK);
    assert_string_equal(edit.values[DEAL_AMOUNT], "42");
    field_api_edit_clear(&edit);

    assert_int_equal(parse("{\"fields\":{\"amount\":0.1}}", &edit, &err),
                     FS_OK);
    assert_string_equal(edit.values[DEAL_AMOUNT], "0.1");
    field_api_edit_clear(&edit);

    assert_int_equal(parse("{\"fields\":{}}", &edit, &err), FS_OK);
    assert_int_equal(edit.count, 0);
    field_api_edit_clear(&edit);
    assert_int_equal(err.status, 0);
}

static void test_edit_rejects_bad_shapes(void **state)
{
    expect_edit_error("", 400, "invalid_json", NULL);
    expect_edit_error("{\"fields\":", 400, "invalid_json", NULL);
    expect_edit_error("[1]", 400, "invalid_json", NULL);
    expect_edit_error("{\"stage\":\"closedwon\"}", 400, "unknown_key", "stage");
    expect_edit_error("{}", 400, "missing_key", "fields");
    expect_edit_error("{\"fields\":[]}", 400, "invalid_type", "fields");
    expect_edit_error("{\"fields\":{\"colour\":\"red\"}}", 400, "unknown_field",
                      "colour");
    expect_edit_error("{\"fields\":{\"stage\":3}}", 400, "invalid_type",
                      "stage");
    expect_edit_error("{\"fields\":{\"amount\":true}}", 400, "invalid_type",
                      "amount");
    expect_edit_error("{\"fields\":{\"name\":{\"x\":1}}}", 400, "invalid_type",
                      "name");
    expect_edit_error("{\"fields\":{\"name\":\"a\",\"name\":\"b\"}}", 400,
                      "invalid_json", NULL);
    expect_edit_error("{\"fields\":{},\"client_time\":-1}", 400, "invalid_type",
                      "client_time");
    expect_edit_error("{\"fields\":{},\"client_time\":\"now\"}", 400,
                      "invalid_type", "client_time");
    /* A valid field before an invalid one is not kept. */
    expect_edit_error("{\"fields\":{\"stage\":\"closedwon\","
                      "\"close_date\":\"2026-02-30\"}}",
                      422, "invalid_value", "close_date");
    expect_edit_error("{\"fields\":{\"amount\":\"12,50\"}}", 422,
                      "invalid_value", "amount");
    /* A name is never cleared or blank. */
    expect_edit_error("{\"fields\":{\"name\":\"\"}}", 422, "invalid_value",
                      "name");
    expect_edit_error("{\"fields\":{\"name\":null}}", 422, "invalid_value",
                      "name");
    expect_edit_error("{\"fields\":{\"name\":\"  \"}}", 422, "invalid_value",
                      "name");
    expect_edit_error("{\"fields\":{\"amount\":0.00001}}", 422, "invalid_value",
                      "amount");
}

static void test_edit_limits(void **state)
{
    /* Nine levels deep. */
    expect_edit_error("{\"fields\":{\"name\":[[[[[[[\"x\"]]]]]]]}}", 400,
                      "too_deep", NULL);

    /* A string just over 4 KiB, named by its field. */
    struct buf_like {
        char *p;
    } big;
    size_t n = API_MAX_STRING + 1;
    big.p = xmalloc(n + 64);
    int len = snprintf(big.p, 64, "{\"fields\":{\"product\":\"");
    memset(big.p + len, 'x', n);
    memcpy(big.p + len + n, "\"}}", 4);
    expect_edit_error(big.p, 413, "too_large", "product");
    free(big.p);

    /* 33 entries in fields. */
    char body[2048];
    size_t at = (size_t)snprintf(body, sizeof(body), "{\"fields\":{");
    for (int i = 0; i <= FIELD_API_MAX_FIELDS; i++)
        at += (size_t)snprintf(body + at, sizeof(body) - at, "%s\"f%d\":null",
                               i ? "," : "", i);
    snprintf(body + at, sizeof(body) - at, "}}");
    expect_edit_error(body, 413, "too_large", "fields");

    /* Over a field's own length: a value error, named. */
    char name[400];
    memset(name, 'n', 300);
    name[300] = '\0';
    char *text = xasprintf("{\"fields\":{\"name\":\"%s\"}}", name);
    expect_edit_error(text, 422, "invalid_value", "name");
    free(text);
}

static void test_json_depth_skips_strings(void **state)
{
    const char *s = "{\"a\":\"[[[{{{\\\"]]\",\"b\":[{\"c\":[]}]}";
    assert_int_equal(json_text_depth(s, strlen(s)), 4);
    assert_int_equal(json_text_depth("\"[[[\"", 5), 0);
    assert_int_equal(json_text_depth("[[[]]]", 6), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deal_json_synced_record),
        cmocka_unit_test(test_deal_json_pending_and_failed),
        cmocka_unit_test(test_deal_json_new_and_deleted),
        cmocka_unit_test(test_query_defaults_and_values),
        cmocka_unit_test(test_query_errors_name_the_param),
        cmocka_unit_test(test_edit_canonicalises_values),
        cmocka_unit_test(test_edit_rejects_bad_shapes),
        cmocka_unit_test(test_edit_limits),
        cmocka_unit_test(test_json_depth_skips_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

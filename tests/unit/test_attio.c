/* Unit tests for the Attio provider's pure parts: the signature, cutting
 * and parsing every delivery of Attio's documentation, the attribute map
 * and its checks, the value codecs, records with value history, and
 * Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "providers/attio.h"
#include "providers/provider.h"
#include "test_env.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECRET                                                                 \
    "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
/* The object and attribute of Attio's documentation examples. */
#define DOC_OBJECT "97052eb9-e65e-443f-a297-f2d9a4a7f795"
#define DOC_ATTRIBUTE "41252299-f8c7-4b5e-99c9-4ff8321d2f96"
#define TOKEN_ACTOR "a1b2c3d4-0000-4000-8000-00000000a11e"

/* ---- fixtures ---- */

struct fake_headers {
    const char *names[4];
    const char *values[4];
    int count;
};

static const char *on_header(const void *ctx, const char *name)
{
    const struct fake_headers *h = ctx;

    for (int i = 0; i < h->count; i++) {
        if (strcasecmp(h->names[i], name) == 0)
            return h->values[i];
    }
    return NULL;
}

static struct webhook_request request(const char *body,
                                      const struct fake_headers *h)
{
    return (struct webhook_request){
        .method = "POST",
        .url = "https://sync.example.com/webhooks/attio/1",
        .body = body,
        .body_len = strlen(body),
        .header = on_header,
        .header_ctx = h,
    };
}

/* One attribute as GET /v2/objects/deals/attributes lists it. */
static json_t *attribute(const char *slug, const char *type, const char *id,
                         bool unique)
{
    return json_pack(
        "{s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:b, s:b, s:b, s:b}", "id",
        "workspace_id", "14beef7a-99f7-4534-a87e-70b564330a4c", "object_id",
        DOC_OBJECT, "attribute_id", id, "title", slug, "api_slug", slug, "type",
        type, "is_system_attribute", false, "is_writable", true, "is_unique",
        unique, "is_multiselect", false);
}

/* Attio's standard deals object plus the custom attributes the README
 * asks for, the stage on the documentation's attribute id. */
static json_t *deal_attributes(void)
{
    json_t *a = json_array();

    json_array_append_new(a, attribute("name", "text",
                                       "00000000-0000-4000-8000-000000000001",
                                       false));
    json_array_append_new(a,
                          attribute("stage", "status", DOC_ATTRIBUTE, false));
    json_array_append_new(a, attribute("owner", "actor-reference",
                                       "00000000-0000-4000-8000-000000000003",
                                       false));
    json_array_append_new(a, attribute("value", "currency",
                                       "00000000-0000-4000-8000-000000000004",
                                       false));
    json_array_append_new(a, attribute("close_date", "date",
                                       "00000000-0000-4000-8000-000000000005",
                                       false));
    json_array_append_new(a, attribute("account_name", "text",
                                       "00000000-0000-4000-8000-000000000006",
                                       false));
    json_array_append_new(a, attribute("product_name", "text",
                                       "00000000-0000-4000-8000-000000000007",
                                       false));
    json_array_append_new(a, attribute("engage_date", "timestamp",
                                       "00000000-0000-4000-8000-000000000008",
                                       false));
    json_array_append_new(a, attribute("location", "location",
                                       "00000000-0000-4000-8000-000000000009",
                                       false));
    json_array_append_new(a, attribute("fieldsync_id", "text",
                                       "00000000-0000-4000-8000-00000000000a",
                                       true));
    return a;
}

static void remove_attribute(json_t *attrs, const char *slug)
{
    size_t i;
    json_t *a;

    json_array_foreach(attrs, i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "api_slug")), slug) ==
            0) {
            json_array_remove(attrs, i);
            return;
        }
    }
    fail_msg("no attribute %s", slug);
}

static void build_map(struct attio_map *m)
{
    json_t *attrs = deal_attributes();
    char *error = NULL;

    assert_int_equal(attio_map_build("deals", DOC_OBJECT, NULL, NULL, attrs, m,
                                     NULL, &error),
                     FS_OK);
    assert_null(error);
    json_decref(attrs);
}

/* A connection whose settings hold the default map. */
static void connection_with_map(struct connection *c, const char *app_id)
{
    struct attio_map m;

    memset(c, 0, sizeof(*c));
    build_map(&m);
    json_t *j = attio_map_to_json(&m);
    c->id = 7;
    c->provider = xstrdup("attio");
    c->settings = json_dumps(j, JSON_COMPACT);
    c->client_secret = xstrdup(SECRET);
    c->app_id = app_id ? xstrdup(app_id) : NULL;
    json_decref(j);
    attio_map_clear(&m);
}

static json_t *vendor_examples(void)
{
    char *path = test_shared_path(
        "data/crm_api_payloads/attio/attio_webhook_and_api_examples.json");
    json_t *root = json_load_file(path, 0, NULL);

    assert_non_null(root);
    free(path);
    return root;
}

/* ---- signatures ---- */

static void test_signature_is_hex_hmac(void **state)
{
    /* RFC 4231, test case 2. */
    char *sig = attio_signature("Jefe", "what do ya want for nothing?", 28);
    assert_string_equal(sig, "5bdcc146bf60754e6a042426089575c75a003f089d27398"
                             "39dec58b964ec3843");
    free(sig);
}

static void test_verify_on_raw_body(void **state)
{
    struct connection c;
    const char *body =
        "{\"webhook_id\":\"w\",\"events\":[{\"event_type\":\"record.created\"}]}";
    char *sig = attio_signature(SECRET, body, strlen(body));
    struct fake_headers h = {{"Attio-Signature"}, {sig}, 1};
    struct webhook_request req = request(body, &h);

    connection_with_map(&c, NULL);
    assert_int_equal(attio_provider.verify_webhook(&c, &req, 0), FS_OK);

    /* The duplicate header alone, in upper case, also verifies. */
    for (char *p = sig; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
    h.names[0] = "X-Attio-Signature";
    assert_int_equal(attio_provider.verify_webhook(&c, &req, 0), FS_OK);

    /* One byte changed, a re-serialised body, no signature: refused. */
    char *other = xstrdup(body);
    other[3] = 'W';
    struct webhook_request changed = request(other, &h);
    assert_int_equal(attio_provider.verify_webhook(&c, &changed, 0),
                     FS_ERR_AUTH);
    h.count = 0;
    assert_int_equal(attio_provider.verify_webhook(&c, &req, 0), FS_ERR_AUTH);
    free(other);
    free(sig);
    connection_clear(&c);
}

/* ---- every documented delivery ---- */

static void test_vendor_deliveries(void **state)
{
    json_t *root = vendor_examples();
    const json_t *deliveries = json_object_get(root, "webhook_deliveries");
    struct connection c;
    size_t i;
    const json_t *d;

    connection_with_map(&c, NULL);
    assert_true(json_array_size(deliveries) >= 5);
    json_array_foreach(deliveries, i, d)
    {
        char *body = json_dumps(json_object_get(d, "body"), JSON_COMPACT);
        const char *type = json_string_value(json_object_get(d, "event_type"));
        struct fake_headers h = {{"Idempotency-Key"}, {"key-1"}, 1};
        struct webhook_request req = request(body, &h);
        struct webhook_item *items = NULL;
        size_t n = 0;
        struct crm_event ev;

        assert_int_equal(attio_provider.split_webhook(&req, &items, &n), FS_OK);
        assert_int_equal(n, 1);
        assert_string_equal(items[0].dedup_key, "key-1");
        assert_string_equal(items[0].account_id, "");
        assert_int_equal(attio_provider.parse_event(&c, items[0].body, &ev),
                         FS_OK);
        assert_true(ev.time > 0);
        if (strcmp(type, "record.updated") == 0) {
            /* The example's attribute is our stage: read the record. */
            assert_int_equal(ev.kind, CRM_EVENT_READ);
            assert_string_equal(ev.crm_id,
                                "bf071e1f-6035-429d-b874-d83ea64ea13b");
            assert_int_equal(ev.actor, ACTOR_OTHER);
        } else if (strcmp(type, "record.deleted") == 0) {
            assert_int_equal(ev.kind, CRM_EVENT_DELETE);
            assert_string_equal(ev.crm_id,
                                "bf071e1f-6035-429d-b874-d83ea64ea13b");
        } else if (strcmp(type, "record.merged") == 0) {
            assert_int_equal(ev.kind, CRM_EVENT_MERGE);
            assert_string_equal(ev.new_id,
                                "bf071e1f-6035-429d-b874-d83ea64ea13b");
            assert_int_equal(ev.merged_count, 1);
            assert_string_equal(ev.merged_ids[0],
                                "3405be95-8375-46a0-bde0-03b3753f8c79");
        } else {
            /* list-entry.*: not about the deal object's records. */
            assert_int_equal(ev.kind, CRM_EVENT_IGNORED);
            assert_non_null(strstr(ev.ignored_type, "list-entry"));
        }
        crm_event_clear(&ev);
        webhook_items_free(items, n);
        free(body);
    }
    connection_clear(&c);
    json_decref(root);
}

static void test_split_keys_and_limits(void **state)
{
    struct fake_headers none = {{NULL}, {NULL}, 0};
    struct webhook_item *items = NULL;
    size_t n = 0;
    const char *two = "{\"webhook_id\":\"w\",\"events\":["
                      "{\"event_type\":\"record.created\"},"
                      "{\"event_type\":\"record.deleted\"}]}";
    struct fake_headers h = {{"Idempotency-Key"}, {"k"}, 1};
    struct webhook_request req = request(two, &h);

    /* Several events of one delivery get keys of their own. */
    assert_int_equal(attio_provider.split_webhook(&req, &items, &n), FS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].dedup_key, "k:0");
    assert_string_equal(items[1].dedup_key, "k:1");
    webhook_items_free(items, n);

    /* No Idempotency-Key: the body's hash, the same on a retry. */
    req = request(two, &none);
    assert_int_equal(attio_provider.split_webhook(&req, &items, &n), FS_OK);
    char *first = xstrdup(items[0].dedup_key);
    webhook_items_free(items, n);
    assert_int_equal(attio_provider.split_webhook(&req, &items, &n), FS_OK);
    assert_string_equal(first, items[0].dedup_key);
    assert_int_equal(strncmp(first, "body:", 5), 0);
    webhook_items_free(items, n);
    free(first);

    static const char *const bad[] = {
        "[]",
        "{\"events\":[{\"event_type\":\"record.created\"}]}",
        "{\"webhook_id\":\"w\",\"events\":[]}",
        "{\"webhook_id\":\"w\",\"events\":[{\"id\":{}}]}",
        "{\"webhook_id\":\"w\",\"webhook_id\":\"x\",\"events\":[{}]}",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req = request(bad[i], &h);
        assert_int_equal(attio_provider.split_webhook(&req, &items, &n),
                         FS_ERR_INVALID);
    }

    char *long_key = xcalloc(ATTIO_MAX_KEY_LEN + 2, 1);
    memset(long_key, 'k', ATTIO_MAX_KEY_LEN + 1);
    struct fake_headers lh = {{"Idempotency-Key"}, {long_key}, 1};
    req = request(two, &lh);
    assert_int_equal(attio_provider.split_webhook(&req, &items, &n),
                     FS_ERR_INVALID);
    free(long_key);
}

static void parse(const struct connection *c, const char *event,
                  struct crm_event *ev)
{
    assert_int_equal(attio_provider.parse_event(c, event, ev), FS_OK);
}

static void test_parse_filters_and_actors(void **state)
{
    struct connection c;
    struct crm_event ev;

    connection_with_map(&c, TOKEN_ACTOR);

    /* Another object's record: ignored. */
    parse(
        &c,
        "{\"event_type\":\"record.updated\",\"id\":{\"workspace_id\":\"w\","
        "\"object_id\":\"other\",\"record_id\":\"r1\",\"attribute_id\":\"a\"},"
        "\"actor\":{\"type\":\"workspace-member\",\"id\":\"m\"}}",
        &ev);
    assert_int_equal(ev.kind, CRM_EVENT_IGNORED);
    crm_event_clear(&ev);

    /* An attribute we do not sync: no read. */
    parse(&c,
          "{\"event_type\":\"record.updated\",\"id\":{\"workspace_id\":\"w\","
          "\"object_id\":\"" DOC_OBJECT "\",\"record_id\":\"r1\","
          "\"attribute_id\":\"not-mapped\"},\"actor\":{\"type\":\"system\","
          "\"id\":null}}",
          &ev);
    assert_int_equal(ev.kind, CRM_EVENT_IGNORED);
    assert_non_null(strstr(ev.ignored_type, "unsynced_attribute"));
    crm_event_clear(&ev);

    /* Our token's write: an echo, not worth a read (its answer said what
     * it did); someone else's creation is read. */
    parse(&c,
          "{\"event_type\":\"record.updated\",\"id\":{\"workspace_id\":\"w\","
          "\"object_id\":\"" DOC_OBJECT "\",\"record_id\":\"r2\","
          "\"attribute_id\":\"" DOC_ATTRIBUTE "\"},"
          "\"actor\":{\"type\":\"api-token\",\"id\":\"" TOKEN_ACTOR "\"},"
          "\"fieldsync_received_at\":1796292000000}",
          &ev);
    assert_int_equal(ev.kind, CRM_EVENT_IGNORED);
    assert_int_equal(ev.actor, ACTOR_US);
    assert_non_null(strstr(ev.ignored_type, "echo"));
    assert_int_equal(ev.time, 1796292000000);
    crm_event_clear(&ev);
    parse(&c,
          "{\"event_type\":\"record.created\",\"id\":{\"workspace_id\":\"w\","
          "\"object_id\":\"" DOC_OBJECT "\",\"record_id\":\"r2\"},"
          "\"actor\":{\"type\":\"api-token\",\"id\":\"another-token\"}}",
          &ev);
    assert_int_equal(ev.kind, CRM_EVENT_CREATE);
    assert_int_equal(ev.actor, ACTOR_OTHER);
    crm_event_clear(&ev);

    /* Not yet knowing our token's id, a token's write may be ours. */
    free(c.app_id);
    c.app_id = NULL;
    parse(&c,
          "{\"event_type\":\"record.created\",\"id\":{\"workspace_id\":\"w\","
          "\"object_id\":\"" DOC_OBJECT "\",\"record_id\":\"r2\"},"
          "\"actor\":{\"type\":\"api-token\",\"id\":\"x\"}}",
          &ev);
    assert_int_equal(ev.actor, ACTOR_UNKNOWN);
    crm_event_clear(&ev);

    /* A merge event without its duplicate is not an event. */
    assert_int_equal(
        attio_provider.parse_event(
            &c,
            "{\"event_type\":\"record.merged\",\"id\":{\"workspace_id\":\"w\","
            "\"object_id\":\"" DOC_OBJECT "\",\"record_id\":\"r3\"}}",
            &ev),
        FS_ERR_INVALID);
    connection_clear(&c);
}

/* ---- the attribute map ---- */

static void test_map_defaults(void **state)
{
    struct attio_map m, back;

    build_map(&m);
    assert_string_equal(m.fields[DEAL_STAGE].slug, "stage");
    assert_int_equal(m.fields[DEAL_STAGE].kind, ATTIO_KIND_STATUS);
    assert_string_equal(m.fields[DEAL_AMOUNT].slug, "value");
    assert_string_equal(m.fields[DEAL_POSTCODE].slug, "location");
    assert_string_equal(m.our_id.slug, "fieldsync_id");
    assert_int_equal(attio_map_synced(&m), (1u << DEAL_FIELD_COUNT) - 1);
    assert_int_equal(attio_map_field_of_attribute(&m, DOC_ATTRIBUTE),
                     DEAL_STAGE);
    assert_int_equal(attio_map_field_of_attribute(
                         &m, "00000000-0000-4000-8000-000000000009"),
                     DEAL_LOCATION);

    json_t *j = attio_map_to_json(&m);
    char *text = json_dumps(j, JSON_COMPACT);
    assert_int_equal(attio_map_from_settings(text, &back), FS_OK);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        assert_string_equal(back.fields[f].slug, m.fields[f].slug);
        assert_string_equal(back.fields[f].id, m.fields[f].id);
        assert_int_equal(back.fields[f].kind, m.fields[f].kind);
    }
    assert_string_equal(back.object_id, DOC_OBJECT);
    free(text);
    json_decref(j);
    attio_map_clear(&back);
    attio_map_clear(&m);
    assert_int_equal(attio_map_from_settings("{}", &back), FS_ERR_INVALID);
    assert_int_equal(attio_map_from_settings(NULL, &back), FS_ERR_INVALID);
}

/* Builds with one change to the attributes or the overrides; returns
 * the error text (caller frees) or NULL. */
static char *build_error(const char *drop, const char *const *overrides,
                         json_t *extra, char **notes)
{
    json_t *attrs = deal_attributes();
    struct attio_map m;
    char *error = NULL;

    if (drop)
        remove_attribute(attrs, drop);
    if (extra)
        json_array_append_new(attrs, extra);
    fs_result r = attio_map_build("deals", DOC_OBJECT, overrides, NULL, attrs,
                                  &m, notes, &error);
    assert_true((r == FS_OK) == (error == NULL));
    attio_map_clear(&m);
    json_decref(attrs);
    return error;
}

static void test_map_checks(void **state)
{
    const char *overrides[DEAL_FIELD_COUNT] = {NULL};
    char *notes = NULL;
    char *err;

    /* An optional field the object lacks is not synced, and said so. */
    assert_null(build_error("close_date", NULL, NULL, &notes));
    assert_string_equal(notes, "close_date");
    free(notes);

    /* A missing core field is a clear error naming it. */
    err = build_error("stage", NULL, NULL, NULL);
    assert_non_null(strstr(err, "'stage'"));
    assert_non_null(strstr(err, "status attribute"));
    free(err);
    err = build_error("owner", NULL, NULL, NULL);
    assert_non_null(strstr(err, "owner"));
    free(err);
    err = build_error("location", NULL, NULL, NULL);
    assert_non_null(strstr(err, "location"));
    free(err);
    err = build_error("fieldsync_id", NULL, NULL, NULL);
    assert_non_null(strstr(err, "our record id"));
    free(err);

    /* A type that does not fit, named. */
    overrides[DEAL_CLOSE_DATE] = "account_name";
    err = build_error(NULL, overrides, NULL, NULL);
    assert_non_null(strstr(err, "type text"));
    assert_non_null(strstr(err, "close_date"));
    free(err);

    /* An override naming an attribute that is not there. */
    overrides[DEAL_CLOSE_DATE] = "expected_close";
    err = build_error(NULL, overrides, NULL, NULL);
    assert_non_null(strstr(err, "'expected_close'"));
    free(err);

    /* An override onto another attribute of the right type. */
    overrides[DEAL_CLOSE_DATE] = "expected_close";
    assert_null(
        build_error(NULL, overrides,
                    attribute("expected_close", "date",
                              "00000000-0000-4000-8000-0000000000ee", false),
                    NULL));

    /* "" leaves an optional field out, never a core one. */
    overrides[DEAL_CLOSE_DATE] = "";
    assert_null(build_error(NULL, overrides, NULL, &notes));
    assert_string_equal(notes, "close_date");
    free(notes);
    overrides[DEAL_STAGE] = "";
    err = build_error(NULL, overrides, NULL, NULL);
    assert_non_null(strstr(err, "stage is a core field"));
    free(err);
    overrides[DEAL_STAGE] = NULL;

    /* Postcode and location on two location attributes. */
    overrides[DEAL_POSTCODE] = "site";
    err = build_error(NULL, overrides,
                      attribute("site", "location",
                                "00000000-0000-4000-8000-0000000000ef", false),
                      NULL);
    assert_non_null(strstr(err, "two location attributes"));
    free(err);

    /* Our id must be unique. */
    json_t *attrs = deal_attributes();
    struct attio_map m;
    remove_attribute(attrs, "fieldsync_id");
    json_array_append_new(
        attrs, attribute("fieldsync_id", "text",
                         "00000000-0000-4000-8000-00000000000a", false));
    assert_int_equal(
        attio_map_build("deals", DOC_OBJECT, NULL, NULL, attrs, &m, NULL, &err),
        FS_ERR_INVALID);
    assert_non_null(strstr(err, "must be unique"));
    free(err);
    json_decref(attrs);

    /* A multiselect attribute cannot hold a field. */
    attrs = deal_attributes();
    remove_attribute(attrs, "product_name");
    json_t *multi = attribute("product_name", "text",
                              "00000000-0000-4000-8000-000000000007", false);
    json_object_set_new(multi, "is_multiselect", json_true());
    json_array_append_new(attrs, multi);
    assert_int_equal(
        attio_map_build("deals", DOC_OBJECT, NULL, NULL, attrs, &m, NULL, &err),
        FS_ERR_INVALID);
    assert_non_null(strstr(err, "several values"));
    free(err);
    json_decref(attrs);
}

/* ---- values ---- */

static char *in(enum attio_kind kind, int field, const char *json)
{
    json_t *v = json_loads(json, 0, NULL);
    char *out = NULL;

    assert_non_null(v);
    assert_int_equal(attio_value_in(kind, field, v, &out), FS_OK);
    json_decref(v);
    return out;
}

static void expect_in(enum attio_kind kind, int field, const char *json,
                      const char *want)
{
    char *got = in(kind, field, json);

    if (want)
        assert_string_equal(got, want);
    else
        assert_null(got);
    free(got);
}

static void test_values_in(void **state)
{
    expect_in(ATTIO_KIND_TEXT, DEAL_NAME,
              "{\"value\":\"Contract with Fundstack\",\"attribute_type\":"
              "\"text\"}",
              "Contract with Fundstack");
    /* Currency values come as a number or as a string. */
    expect_in(ATTIO_KIND_CURRENCY, DEAL_AMOUNT,
              "{\"currency_value\":\"499.00\",\"currency_code\":\"USD\"}",
              "499");
    expect_in(ATTIO_KIND_CURRENCY, DEAL_AMOUNT,
              "{\"currency_value\":4200,\"currency_code\":\"USD\"}", "4200");
    expect_in(ATTIO_KIND_CURRENCY, DEAL_AMOUNT, "{\"currency_value\":1054.5}",
              "1054.5");
    expect_in(ATTIO_KIND_NUMBER, DEAL_AMOUNT, "{\"value\":12.125}", "12.125");
    expect_in(ATTIO_KIND_DATE, DEAL_CLOSE_DATE, "{\"value\":\"2017-03-01\"}",
              "2017-03-01");
    /* Timestamps carry nanoseconds; the field keeps the UTC day. */
    expect_in(ATTIO_KIND_TIMESTAMP, DEAL_ENGAGE_DATE,
              "{\"value\":\"2023-01-01T15:00:00.000000000Z\"}", "2023-01-01");
    expect_in(ATTIO_KIND_STATUS, DEAL_STAGE,
              "{\"status\":{\"id\":{\"workspace_id\":\"w\",\"object_id\":\"o\","
              "\"attribute_id\":\"a\",\"status_id\":"
              "\"11f07f01-c10f-4e05-a522-33e050bc52ee\"},\"title\":\"In "
              "Progress\",\"is_archived\":false}}",
              "11f07f01-c10f-4e05-a522-33e050bc52ee");
    expect_in(
        ATTIO_KIND_ACTOR, DEAL_OWNER,
        "{\"referenced_actor_type\":\"workspace-member\","
        "\"referenced_actor_id\":\"50cf242c-7fa3-4cad-87d0-75b1af71c57b\"}",
        "50cf242c-7fa3-4cad-87d0-75b1af71c57b");

    const char *loc = "{\"line_1\":null,\"line_2\":null,\"line_3\":null,"
                      "\"line_4\":null,\"locality\":\"Manchester\",\"region\":"
                      "null,\"postcode\":\"m11ae\",\"country_code\":\"GB\","
                      "\"latitude\":\"53.4808\",\"longitude\":\"-2.2426\"}";
    expect_in(ATTIO_KIND_LOCATION, DEAL_POSTCODE, loc, "M1 1AE");
    expect_in(ATTIO_KIND_LOCATION, DEAL_LOCATION, loc, "53.480800,-2.242600");
    /* A location with a postcode and no coordinates. */
    expect_in(ATTIO_KIND_LOCATION, DEAL_LOCATION,
              "{\"postcode\":\"M1 1AE\",\"latitude\":null,\"longitude\":null}",
              NULL);

    /* Wrong shapes are refused. */
    json_t *v = json_pack("{s:s, s:s}", "referenced_actor_type", "api-token",
                          "referenced_actor_id", "x");
    char *out = NULL;
    assert_int_equal(attio_value_in(ATTIO_KIND_ACTOR, DEAL_OWNER, v, &out),
                     FS_ERR_INVALID);
    json_decref(v);
    v = json_pack("{s:s}", "value", "not a date");
    assert_int_equal(attio_value_in(ATTIO_KIND_DATE, DEAL_CLOSE_DATE, v, &out),
                     FS_ERR_INVALID);
    json_decref(v);
}

static char *out_text(const struct attio_map *m, int field,
                      const char *const values[DEAL_FIELD_COUNT])
{
    json_t *list = NULL;

    assert_int_equal(attio_value_out(m, field, values, &list), FS_OK);
    char *text = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(list);
    return text;
}

static void test_values_out(void **state)
{
    struct attio_map m;
    const char *values[DEAL_FIELD_COUNT] = {NULL};
    char *t;

    build_map(&m);
    values[DEAL_AMOUNT] = "1054.5";
    values[DEAL_STAGE] = "11f07f01-c10f-4e05-a522-33e050bc52ee";
    values[DEAL_OWNER] = "50cf242c-7fa3-4cad-87d0-75b1af71c57b";
    values[DEAL_ENGAGE_DATE] = "2016-10-20";
    values[DEAL_CLOSE_DATE] = "2017-03-01";
    values[DEAL_POSTCODE] = "M1 1AE";
    values[DEAL_LOCATION] = "53.480800,-2.242600";

    t = out_text(&m, DEAL_AMOUNT, values);
    assert_string_equal(t, "[{\"currency_value\":1054.5}]");
    free(t);
    values[DEAL_AMOUNT] = "4200";
    t = out_text(&m, DEAL_AMOUNT, values);
    assert_string_equal(t, "[{\"currency_value\":4200}]");
    free(t);
    t = out_text(&m, DEAL_STAGE, values);
    assert_string_equal(
        t, "[{\"status\":\"11f07f01-c10f-4e05-a522-33e050bc52ee\"}]");
    free(t);
    t = out_text(&m, DEAL_OWNER, values);
    assert_string_equal(t, "[{\"referenced_actor_id\":\"50cf242c-7fa3-4cad-"
                           "87d0-75b1af71c57b\",\"referenced_actor_type\":"
                           "\"workspace-member\"}]");
    free(t);
    t = out_text(&m, DEAL_CLOSE_DATE, values);
    assert_string_equal(t, "[\"2017-03-01\"]");
    free(t);
    t = out_text(&m, DEAL_ENGAGE_DATE, values);
    assert_string_equal(t, "[\"2016-10-20T00:00:00.000000000Z\"]");
    free(t);

    /* One location value from both fields, whichever was edited. */
    char *a = out_text(&m, DEAL_POSTCODE, values);
    char *b = out_text(&m, DEAL_LOCATION, values);
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "\"postcode\":\"M1 1AE\""));
    assert_non_null(strstr(a, "\"latitude\":\"53.480800\""));
    assert_non_null(strstr(a, "\"longitude\":\"-2.242600\""));
    assert_non_null(strstr(a, "\"line_1\":null"));
    /* The postcode's form gives the country Attio wants. */
    assert_non_null(strstr(a, "\"country_code\":\"GB\""));
    free(a);
    free(b);
    values[DEAL_LOCATION] = NULL;
    t = out_text(&m, DEAL_POSTCODE, values);
    assert_non_null(strstr(t, "\"latitude\":null"));
    free(t);

    /* Empty values clear. */
    values[DEAL_POSTCODE] = NULL;
    t = out_text(&m, DEAL_LOCATION, values);
    assert_string_equal(t, "[]");
    free(t);
    t = out_text(&m, DEAL_NAME, values);
    assert_string_equal(t, "[]");
    free(t);
    attio_map_clear(&m);
}

/* ---- records ---- */

static void test_record_with_history(void **state)
{
    struct connection c;
    struct attio_map m;
    struct crm_deal d;
    const char *text =
        "{\"id\":{\"workspace_id\":\"w\",\"object_id\":\"" DOC_OBJECT "\","
        "\"record_id\":\"bf071e1f-6035-429d-b874-d83ea64ea13b\"},"
        "\"created_at\":\"2026-12-01T09:00:00.000000000Z\",\"web_url\":"
        "\"https://app.attio.com/x\",\"values\":{"
        "\"name\":[{\"active_from\":\"2026-12-01T09:00:00.000000000Z\","
        "\"active_until\":\"2026-12-02T10:00:00.000000000Z\","
        "\"created_by_actor\":{\"type\":\"system\",\"id\":null},"
        "\"value\":\"old\",\"attribute_type\":\"text\"},"
        "{\"active_from\":\"2026-12-02T10:00:00.250000000Z\","
        "\"active_until\":null,\"created_by_actor\":{\"type\":\"api-token\","
        "\"id\":\"" TOKEN_ACTOR "\"},\"value\":\"new\",\"attribute_type\":"
        "\"text\"}],"
        "\"stage\":[{\"active_from\":\"2026-12-01T09:00:00.000000000Z\","
        "\"active_until\":null,\"created_by_actor\":{\"type\":"
        "\"workspace-member\",\"id\":\"m1\"},\"status\":{\"id\":{\"status_id\":"
        "\"s1\"},\"title\":\"Lead\"},\"attribute_type\":\"status\"}],"
        "\"close_date\":[],"
        "\"fieldsync_id\":[{\"active_from\":\"2026-12-01T09:00:00Z\","
        "\"active_until\":null,\"created_by_actor\":{\"type\":\"api-token\","
        "\"id\":\"" TOKEN_ACTOR "\"},\"value\":\"ours1\"}]}}";
    json_t *rec = json_loads(text, 0, NULL);

    connection_with_map(&c, TOKEN_ACTOR);
    build_map(&m);
    assert_int_equal(attio_deal_from_record(&c, &m, rec, &d), FS_OK);
    assert_string_equal(d.crm_id, "bf071e1f-6035-429d-b874-d83ea64ea13b");
    assert_string_equal(d.our_id, "ours1");
    /* The current value, with its own time and actor. */
    assert_string_equal(d.values[DEAL_NAME], "new");
    assert_int_equal(d.times[DEAL_NAME], 1796205600250);
    assert_int_equal(d.actors[DEAL_NAME], ACTOR_US);
    assert_string_equal(d.values[DEAL_STAGE], "s1");
    assert_int_equal(d.actors[DEAL_STAGE], ACTOR_OTHER);
    /* Emptied (or never set): no time to be had from a read. */
    assert_null(d.values[DEAL_CLOSE_DATE]);
    assert_int_equal(d.times[DEAL_CLOSE_DATE], CRM_TIME_UNKNOWN);
    assert_int_equal(d.modified, 1796205600250);
    free(d.crm_id);
    free(d.our_id);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        free(d.values[f]);
    attio_map_clear(&m);
    connection_clear(&c);
    json_decref(rec);
}

static void test_retry_after(void **state)
{
    int64_t now = 1445412480000; /* 2015-10-21T07:28:00Z */

    assert_int_equal(attio_retry_after("Wed, 21 Oct 2015 07:28:01 GMT", now),
                     now + 1000);
    assert_int_equal(attio_retry_after("2", now), now + 2000);
    assert_int_equal(attio_retry_after("soon", now), 0);
    assert_int_equal(attio_retry_after("", now), 0);
    assert_int_equal(attio_retry_after(NULL, now), 0);
}

static void test_budgets_and_fields(void **state)
{
    struct connection c;
    struct rate_budget b;

    connection_with_map(&c, NULL);
    assert_true(attio_provider.separate_write_budget);
    assert_true(attio_provider.webhooks_by_url);
    attio_provider.rate_budget(&c, CALL_READ, &b);
    assert_int_equal(b.window_calls, 100);
    assert_int_equal(b.window_ms, 1000);
    attio_provider.rate_budget(&c, CALL_WRITE, &b);
    assert_int_equal(b.window_calls, 25);
    c.rate_window = 40;
    attio_provider.rate_budget(&c, CALL_READ, &b);
    assert_int_equal(b.window_calls, 40);
    assert_ptr_equal(provider_by_name("attio"), &attio_provider);
    assert_int_equal(provider_synced_fields(&c), (1u << DEAL_FIELD_COUNT) - 1);
    connection_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_is_hex_hmac),
        cmocka_unit_test(test_verify_on_raw_body),
        cmocka_unit_test(test_vendor_deliveries),
        cmocka_unit_test(test_split_keys_and_limits),
        cmocka_unit_test(test_parse_filters_and_actors),
        cmocka_unit_test(test_map_defaults),
        cmocka_unit_test(test_map_checks),
        cmocka_unit_test(test_values_in),
        cmocka_unit_test(test_values_out),
        cmocka_unit_test(test_record_with_history),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_budgets_and_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

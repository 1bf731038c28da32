/* Unit tests for the Pipedrive provider: every vendor example of the
 * shapes it reads (webhooks v2, v2 deals, the v1 changelog and users),
 * Basic credentials, each event kind and merges, the deal fields that
 * become settings, and the bodies of writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "providers/pipedrive.h"
#include "providers/provider.h"
#include "test_env.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USER "fieldsync-hook"
#define PASSWORD "p4ss-w0rd-long-and-random"
#define OUR_USER "13377001"
#define K_ACCOUNT "aaaa0000aaaa0000aaaa0000aaaa0000aaaa0000"
#define K_PRODUCT "5e8c2d0a1f3b4c6d7e8f9a0b1c2d3e4f5a6b7c8d"
#define K_ENGAGE "eeee0000eeee0000eeee0000eeee0000eeee0000"
#define K_POSTCODE "pppp0000pppp0000pppp0000pppp0000pppp0000"
#define K_LOCATION "llll0000llll0000llll0000llll0000llll0000"
#define K_OURS "ffff0000ffff0000ffff0000ffff0000ffff0000"

/* The settings connect would learn: product an option field. */
static char settings[] =
    "{\"custom_fields\":{"
    "\"account\":{\"key\":\"" K_ACCOUNT "\",\"type\":\"varchar\"},"
    "\"product\":{\"key\":\"" K_PRODUCT "\",\"type\":\"enum\","
    "\"options\":{\"41\":\"GTX Pro\",\"42\":\"GTX Basic\"}},"
    "\"engage_date\":{\"key\":\"" K_ENGAGE "\",\"type\":\"date\"},"
    "\"postcode\":{\"key\":\"" K_POSTCODE "\",\"type\":\"varchar\"},"
    "\"location\":{\"key\":\"" K_LOCATION "\",\"type\":\"varchar\"},"
    "\"fieldsync_id\":{\"key\":\"" K_OURS "\",\"type\":\"varchar\"}}}";

static struct connection make_conn(void)
{
    struct connection c = {0};

    c.id = 7;
    c.provider = "pipedrive";
    c.account_id = "9120044";
    c.app_id = OUR_USER;
    c.webhook_user = USER;
    c.client_secret = PASSWORD;
    c.settings = settings;
    return c;
}

/* ---- the vendor's files ---- */

static json_t *load_shared(const char *relative)
{
    char *path = test_shared_path(relative);
    json_t *j = json_load_file(path, 0, NULL);

    assert_non_null(j);
    free(path);
    return j;
}

/* The example of one operation in the API response examples. */
static json_t *vendor_example(const char *api, const char *method,
                              const char *path, const char *status)
{
    json_t *all = load_shared(
        "data/crm_api_payloads/pipedrive/pipedrive_api_response_examples.json");
    json_t *found = NULL;
    size_t i;
    json_t *e;

    json_array_foreach(json_object_get(all, "examples"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "api")), api) == 0 &&
            strcmp(json_string_value(json_object_get(e, "method")), method) ==
                0 &&
            strcmp(json_string_value(json_object_get(e, "path")), path) == 0 &&
            strcmp(json_string_value(json_object_get(e, "status")), status) ==
                0) {
            found = json_incref(json_object_get(e, "example"));
            break;
        }
    }
    json_decref(all);
    assert_non_null(found);
    return found;
}

/* ---- webhook requests ---- */

struct fake_headers {
    const char *auth;
};

static const char *on_header(const void *ctx, const char *name)
{
    const struct fake_headers *h = ctx;
    return strcasecmp(name, "Authorization") == 0 ? h->auth : NULL;
}

static struct webhook_request make_request(const char *body,
                                           struct fake_headers *h)
{
    struct webhook_request req = {
        .method = "POST",
        .url = "https://fs.example.com/webhooks/pipedrive/7",
        .body = body,
        .body_len = strlen(body),
        .header = on_header,
        .header_ctx = h,
    };
    return req;
}

static void test_basic_credentials(void **state)
{
    struct connection c = make_conn();
    char *good = pipedrive_basic_auth(USER, PASSWORD);
    char *wrong = pipedrive_basic_auth(USER, "p4ss-w0rd-long-and-randoM");
    char *other = pipedrive_basic_auth("someone", PASSWORD);
    struct fake_headers h = {good};
    struct webhook_request req = make_request("{}", &h);

    assert_string_equal(good, "Basic ZmllbGRzeW5jLWhvb2s6cDRzcy13MHJkLWxvbmct"
                              "YW5kLXJhbmRvbQ==");
    assert_int_equal(pipedrive_provider.verify_webhook(&c, &req, 0), FS_OK);
    char *lower = xasprintf("basic %s", good + 6);
    h.auth = lower;
    assert_int_equal(pipedrive_provider.verify_webhook(&c, &req, 0), FS_OK);
    h.auth = wrong;
    assert_int_equal(pipedrive_provider.verify_webhook(&c, &req, 0),
                     FS_ERR_AUTH);
    h.auth = other;
    assert_int_equal(pipedrive_provider.verify_webhook(&c, &req, 0),
                     FS_ERR_AUTH);
    h.auth = NULL;
    assert_int_equal(pipedrive_provider.verify_webhook(&c, &req, 0),
                     FS_ERR_AUTH);
    h.auth = "Bearer abc";
    assert_int_equal(pipedrive_provider.verify_webhook(&c, &req, 0),
                     FS_ERR_AUTH);

    /* A connection without a password takes nothing. */
    h.auth = good;
    c.client_secret = NULL;
    assert_int_equal(pipedrive_provider.verify_webhook(&c, &req, 0),
                     FS_ERR_AUTH);
    free(lower);
    free(good);
    free(wrong);
    free(other);
}

static void test_split_vendor_template(void **state)
{
    json_t *formats = load_shared(
        "data/crm_api_payloads/pipedrive/pipedrive_webhook_formats.json");
    json_t *v2 = json_object_get(json_object_get(formats, "v2"), "normalised");
    char *body = json_dumps(v2, JSON_COMPACT);
    struct fake_headers h = {NULL};
    struct webhook_request req = make_request(body, &h);
    struct webhook_item *items = NULL;
    size_t n = 0;

    assert_int_equal(pipedrive_provider.split_webhook(&req, &items, &n), FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].dedup_key,
                        "2023-01-01T00:00:00.000Z:"
                        "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
    assert_string_equal(items[0].account_id, "xxxxx");
    assert_string_equal(items[0].app_id, "");
    webhook_items_free(items, n);

    /* The template is a create of a deal without data: read it whole. */
    struct connection c = make_conn();
    struct crm_event ev;
    assert_int_equal(pipedrive_provider.parse_event(&c, body, &ev), FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_CREATE);
    crm_event_clear(&ev);
    free(body);

    /* The v1 body is not one of ours: taken and ignored. */
    json_t *v1 = json_object_get(json_object_get(formats, "v1"), "normalised");
    body = json_dumps(v1, JSON_COMPACT);
    req = make_request(body, &h);
    assert_int_equal(pipedrive_provider.split_webhook(&req, &items, &n), FS_OK);
    assert_int_equal(pipedrive_provider.parse_event(&c, items[0].body, &ev),
                     FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_IGNORED);
    assert_non_null(strstr(ev.ignored_type, "webhooks_v1"));
    crm_event_clear(&ev);
    webhook_items_free(items, n);
    free(body);
    json_decref(formats);
}

static void test_split_refuses(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "[{\"meta\":{\"id\":\"a\"}}]",
        "{\"meta\":{}}",
        "{\"meta\":{\"id\":\"\"}}",
        "{\"meta\":{\"id\":\"a\"},\"meta\":{}}",
        "{\"data\":{}}",
    };
    struct fake_headers h = {NULL};
    struct webhook_item *items = NULL;
    size_t n = 0;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct webhook_request req = make_request(bad[i], &h);
        assert_int_equal(pipedrive_provider.split_webhook(&req, &items, &n),
                         FS_ERR_INVALID);
        assert_null(items);
    }
    char *big = xcalloc(PIPEDRIVE_MAX_EVENT_BYTES + 2, 1);
    memset(big, ' ', PIPEDRIVE_MAX_EVENT_BYTES + 1);
    struct webhook_request req = make_request(big, &h);
    assert_int_equal(pipedrive_provider.split_webhook(&req, &items, &n),
                     FS_ERR_TOO_LARGE);
    free(big);
}

/* The stage move of the team's reference, as Pipedrive sends it. */
static const char stage_move[] =
    "{\"meta\":{\"action\":\"change\",\"entity\":\"deal\",\"entity_id\":"
    "\"4711\",\"id\":\"0c6f7a52-3b9e-4a55-9f7e-1a2b3c4d5e6f\","
    "\"company_id\":\"9120044\",\"user_id\":\"%s\",\"webhook_id\":"
    "\"2210987\",\"version\":\"2.0\",\"type\":\"general\","
    "\"is_bulk_edit\":false,\"timestamp\":\"%s\","
    "\"change_source\":\"%s\",\"attempt\":1,\"host\":\"acme.pipedrive.com\"},"
    "\"data\":{\"id\":4711,\"title\":\"Acme 40 units\",\"value\":12500,"
    "\"currency\":\"EUR\",\"status\":\"open\",\"pipeline_id\":2,"
    "\"stage_id\":9,\"owner_id\":13377001,\"expected_close_date\":"
    "\"2026-12-31\",\"update_time\":\"2026-12-02T09:41:07Z\","
    "\"custom_fields\":{\"" K_PRODUCT "\":{\"type\":\"enum\",\"id\":41},"
    "\"" K_ACCOUNT "\":{\"type\":\"varchar\",\"value\":\"Acme\"}}},"
    "\"previous\":%s}";

static void parse(const char *user, const char *ts, const char *source,
                  const char *previous, struct crm_event *ev)
{
    struct connection c = make_conn();
    char *body = xasprintf(stage_move, user, ts, source, previous);

    assert_int_equal(pipedrive_provider.parse_event(&c, body, ev), FS_OK);
    free(body);
}

static void test_change_sets_changed_fields_only(void **state)
{
    struct crm_event ev;

    parse("13377002", "2026-12-02T09:41:07.312Z", "app",
          "{\"stage_id\":8,\"stage_change_time\":\"2026-11-28T15:02:44Z\","
          "\"update_time\":\"2026-11-28T15:02:44Z\"}",
          &ev);
    assert_int_equal(ev.kind, CRM_EVENT_CHANGE);
    assert_string_equal(ev.crm_id, "4711");
    assert_int_equal(ev.actor, ACTOR_OTHER);
    int64_t t = 0;
    assert_int_equal(clock_parse_iso("2026-12-02T09:41:07.312Z", &t), 0);
    assert_int_equal(ev.time, t);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        assert_int_equal(ev.present[f], f == DEAL_STAGE);
    assert_string_equal(ev.values[DEAL_STAGE], "9");
    crm_event_clear(&ev);

    /* Custom fields changed appear under previous.custom_fields; option
     * ids become their labels. */
    parse("13377002", "2026-12-02T09:41:07.312Z", "app",
          "{\"value\":100,\"custom_fields\":{\"" K_PRODUCT
          "\":{\"type\":\"enum\",\"id\":42}}}",
          &ev);
    assert_int_equal(ev.kind, CRM_EVENT_CHANGE);
    assert_true(ev.present[DEAL_AMOUNT]);
    assert_string_equal(ev.values[DEAL_AMOUNT], "12500");
    assert_true(ev.present[DEAL_PRODUCT]);
    assert_string_equal(ev.values[DEAL_PRODUCT], "GTX Pro");
    assert_false(ev.present[DEAL_ACCOUNT]);
    crm_event_clear(&ev);

    /* Won is a status: the deal moves to its pipeline's won stage. */
    {
        struct connection c = make_conn();
        char *body = xasprintf(stage_move, "1", "2026-12-02T09:41:07.312Z",
                               "app", "{\"status\":\"open\"}");
        char *won = strstr(body, "\"status\":\"open\",\"pipeline_id\"");
        assert_non_null(won);
        memcpy(won, "\"status\":\"won\" ,", 15);
        assert_int_equal(pipedrive_provider.parse_event(&c, body, &ev), FS_OK);
        assert_int_equal(ev.kind, CRM_EVENT_CHANGE);
        assert_true(ev.present[DEAL_STAGE]);
        assert_string_equal(ev.values[DEAL_STAGE], "won-2");
        crm_event_clear(&ev);
        free(body);
    }

    /* Only fields we do not sync: nothing to apply. */
    parse("13377002", "2026-12-02T09:41:07.312Z", "app",
          "{\"update_time\":\"2026-11-28T15:02:44Z\"}", &ev);
    assert_int_equal(ev.kind, CRM_EVENT_IGNORED);
    crm_event_clear(&ev);

    /* No previous at all: the deal is read whole. */
    parse("13377002", "2026-12-02T09:41:07.312Z", "app", "null", &ev);
    assert_int_equal(ev.kind, CRM_EVENT_READ);
    crm_event_clear(&ev);
}

static void test_echo_and_times(void **state)
{
    struct crm_event ev;

    /* Our integration user through the API: an echo. */
    parse(OUR_USER, "2026-12-02T09:41:07.312Z", "api", "{\"stage_id\":8}", &ev);
    assert_int_equal(ev.actor, ACTOR_US);
    crm_event_clear(&ev);

    /* Our user in the app (a person logged in as it), or another API
     * client: not ours. */
    parse(OUR_USER, "2026-12-02T09:41:07.312Z", "app", "{\"stage_id\":8}", &ev);
    assert_int_equal(ev.actor, ACTOR_OTHER);
    crm_event_clear(&ev);
    parse("555", "2026-12-02T09:41:07.312Z", "api", "{\"stage_id\":8}", &ev);
    assert_int_equal(ev.actor, ACTOR_OTHER);
    crm_event_clear(&ev);

    /* The meta table's other reading: 10-digit epoch seconds. */
    parse("555", "1796204467", "app", "{\"stage_id\":8}", &ev);
    assert_int_equal(ev.time, INT64_C(1796204467000));
    crm_event_clear(&ev);

    /* No time at all is not an event we can order. */
    struct connection c = make_conn();
    char *body = xasprintf(stage_move, "1", "", "app", "{\"stage_id\":8}");
    assert_int_equal(pipedrive_provider.parse_event(&c, body, &ev),
                     FS_ERR_INVALID);
    free(body);
}

static const char delete_tmpl[] =
    "{\"meta\":{\"action\":\"%s\",\"entity\":\"deal\",\"entity_id\":\"%s\","
    "\"id\":\"e1\",\"version\":\"2.0\",\"timestamp\":"
    "\"2026-12-02T09:41:07.312Z\",\"change_source\":\"app\","
    "\"user_id\":\"1\"%s},\"data\":%s,\"previous\":%s}";

static void test_deletes_and_merges(void **state)
{
    struct connection c = make_conn();
    struct crm_event ev;
    char *body;

    body = xasprintf(delete_tmpl, "delete", "4710", "", "null",
                     "{\"id\":4710,\"title\":\"x\"}");
    assert_int_equal(pipedrive_provider.parse_event(&c, body, &ev), FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_DELETE);
    assert_string_equal(ev.crm_id, "4710");
    crm_event_clear(&ev);
    free(body);

    /* The merged-away deal's delete names the survivor. */
    body = xasprintf(delete_tmpl, "delete", "4710",
                     ",\"merged_to_id\":\"4711\"", "null", "{\"id\":4710}");
    assert_int_equal(pipedrive_provider.parse_event(&c, body, &ev), FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_MERGE);
    assert_string_equal(ev.new_id, "4711");
    assert_string_equal(ev.crm_id, "4711");
    assert_int_equal(ev.merged_count, 1);
    assert_string_equal(ev.merged_ids[0], "4710");
    crm_event_clear(&ev);
    free(body);

    /* The survivor's change names the loser: the same merge. */
    body =
        xasprintf(delete_tmpl, "change", "4711", ",\"merged_from_id\":\"4710\"",
                  "{\"id\":4711,\"title\":\"y\"}", "{\"title\":\"z\"}");
    assert_int_equal(pipedrive_provider.parse_event(&c, body, &ev), FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_MERGE);
    assert_string_equal(ev.new_id, "4711");
    assert_string_equal(ev.merged_ids[0], "4710");
    crm_event_clear(&ev);
    free(body);

    /* Other objects are taken and ignored, never refused. */
    body = "{\"meta\":{\"action\":\"change\",\"entity\":\"person\","
           "\"entity_id\":\"3\",\"id\":\"p1\",\"version\":\"2.0\","
           "\"timestamp\":\"2026-12-02T09:41:07.312Z\"},\"data\":{},"
           "\"previous\":{}}";
    assert_int_equal(pipedrive_provider.parse_event(&c, body, &ev), FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_IGNORED);
    assert_string_equal(ev.ignored_type, "change.person");
    crm_event_clear(&ev);
}

/* ---- REST shapes ---- */

static void check_vendor_deal(const json_t *obj)
{
    struct connection c = make_conn();
    struct crm_deal d;
    char *text = json_dumps(obj, JSON_COMPACT);
    int64_t t = 0;

    assert_int_equal(pipedrive_parse_deal(&c, text, &d), FS_OK);
    assert_string_equal(d.crm_id, "1");
    assert_string_equal(d.values[DEAL_NAME], "Deal Title");
    assert_string_equal(d.values[DEAL_STAGE], "1");
    assert_string_equal(d.values[DEAL_AMOUNT], "200");
    assert_string_equal(d.values[DEAL_CLOSE_DATE], "2021-01-01");
    assert_string_equal(d.values[DEAL_OWNER], "1");
    assert_null(d.values[DEAL_ACCOUNT]);
    assert_null(d.our_id);
    assert_int_equal(clock_parse_iso("2021-01-01T00:00:00Z", &t), 0);
    assert_int_equal(d.modified, t);
    /* Whole seconds read as the second's start. */
    assert_int_equal(d.times[DEAL_NAME], t);
    assert_false(d.archived);
    free(d.crm_id);
    free(d.our_id);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        free(d.values[f]);
    free(text);
}

static void test_vendor_deals(void **state)
{
    json_t *list = vendor_example("v2", "GET", "/deals", "200");
    json_t *one = vendor_example("v2", "GET", "/deals/{id}", "200");
    json_t *patched = vendor_example("v2", "PATCH", "/deals/{id}", "200");
    json_t *added = vendor_example("v2", "POST", "/deals", "200");

    check_vendor_deal(json_array_get(json_object_get(list, "data"), 0));
    check_vendor_deal(json_object_get(one, "data"));
    check_vendor_deal(json_object_get(patched, "data"));
    check_vendor_deal(json_object_get(added, "data"));
    json_decref(list);
    json_decref(one);
    json_decref(patched);
    json_decref(added);
}

static void test_deal_custom_fields(void **state)
{
    struct connection c = make_conn();
    struct crm_deal d;
    const char *json =
        "{\"id\":9,\"title\":\"t\",\"value\":0,\"stage_id\":2,"
        "\"owner_id\":null,\"expected_close_date\":null,\"is_deleted\":true,"
        "\"update_time\":\"2026-01-02T03:04:05Z\",\"custom_fields\":{"
        "\"" K_ACCOUNT "\":\"Cancity\",\"" K_PRODUCT "\":42,"
        "\"" K_ENGAGE "\":\"2016-10-20\",\"" K_POSTCODE "\":\"m11ae\","
        "\"" K_LOCATION "\":\"53.5,-2.2\",\"" K_OURS "\":\"rec-1\"}}";

    assert_int_equal(pipedrive_parse_deal(&c, json, &d), FS_OK);
    assert_true(d.archived);
    assert_null(d.values[DEAL_AMOUNT]); /* 0 is Pipedrive's "no value" */
    assert_null(d.values[DEAL_OWNER]);
    assert_string_equal(d.values[DEAL_ACCOUNT], "Cancity");
    assert_string_equal(d.values[DEAL_PRODUCT], "GTX Basic");
    assert_string_equal(d.values[DEAL_ENGAGE_DATE], "2016-10-20");
    assert_string_equal(d.values[DEAL_POSTCODE], "M1 1AE");
    assert_string_equal(d.values[DEAL_LOCATION], "53.500000,-2.200000");
    assert_string_equal(d.our_id, "rec-1");
    free(d.crm_id);
    free(d.our_id);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        free(d.values[f]);

    /* An option id the field does not have is refused, never guessed. */
    json = "{\"id\":9,\"title\":\"t\",\"update_time\":\"2026-01-02T03:04:05Z\","
           "\"value\":10.25,\"custom_fields\":{\"" K_PRODUCT "\":77}}";
    assert_int_equal(pipedrive_parse_deal(&c, json, &d), FS_OK);
    assert_null(d.values[DEAL_PRODUCT]);
    assert_int_equal(d.times[DEAL_PRODUCT], 0);
    assert_string_equal(d.values[DEAL_AMOUNT], "10.25");
    free(d.crm_id);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        free(d.values[f]);

    /* A whole amount sent as a real is still a plain decimal. */
    json = "{\"id\":9,\"title\":\"t\",\"update_time\":"
           "\"2026-01-02T03:04:05Z\",\"value\":1200.0}";
    assert_int_equal(pipedrive_parse_deal(&c, json, &d), FS_OK);
    assert_string_equal(d.values[DEAL_AMOUNT], "1200");
    free(d.crm_id);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        free(d.values[f]);
}

/* Changelog entries of 2024-02-12: ours (the integration user's API
 * change) or a CRM user's in the app; a page of them. */
#define OURS "\"actor_user_id\":13377001,\"change_source\":\"api\""
#define THEIRS "\"actor_user_id\":42,\"change_source\":\"app\""
#define LOG_ENTRY(key, old, new_, who, time)                                   \
    "{\"field_key\":\"" key "\",\"old_value\":\"" old                          \
    "\",\"new_value\":\"" new_ "\"," who ",\"time\":\"2024-02-12 " time "\"}"
#define LOG_PAGE2(a, b) "{\"success\":true,\"data\":[" a "," b "]}"
#define LOG_PAGE3(a, b, c) "{\"success\":true,\"data\":[" a "," b "," c "]}"

/* Reads a changelog page afresh for the deal's stage in pipeline 1, the
 * deal read with stage_id (NULL: not known); asserts what the page says
 * our push landed on (want NULL: nothing). */
static void assert_landed_on(const struct connection *c, const char *page,
                             struct crm_deal *d, const char *stage_id,
                             const char *want)
{
    struct pipedrive_changelog seen = {.pipeline_id = "1",
                                       .stage_id = stage_id};

    free(d->others[DEAL_STAGE].value);
    d->others[DEAL_STAGE].value = NULL;
    d->others[DEAL_STAGE].present = false;
    pipedrive_apply_changelog(c, page, d, &seen);
    if (!want) {
        assert_false(d->others[DEAL_STAGE].present);
        return;
    }
    assert_true(d->others[DEAL_STAGE].present);
    assert_string_equal(d->others[DEAL_STAGE].value, want);
}

static void test_vendor_changelog(void **state)
{
    struct connection c = make_conn();
    json_t *log = vendor_example("v1", "GET", "/deals/{id}/changelog", "200");
    char *text = json_dumps(log, JSON_COMPACT);
    struct crm_deal d = {0};
    struct pipedrive_changelog seen = {0};
    int64_t t = 0;

    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        d.times[f] = 1;
    d.values[DEAL_NAME] = xstrdup("My Deal");
    d.values[DEAL_AMOUNT] = xstrdup("100");
    assert_int_equal(pipedrive_apply_changelog(&c, text, &d, &seen), 2);
    assert_true(seen.timed[DEAL_NAME]);
    assert_true(seen.timed[DEAL_AMOUNT]);
    assert_false(seen.timed[DEAL_STAGE]);
    assert_int_equal(clock_parse_iso("2024-02-12T09:14:35Z", &t), 0);
    assert_int_equal(d.times[DEAL_NAME], t + 999);
    assert_int_equal(clock_parse_iso("2024-02-12T09:10:12Z", &t), 0);
    assert_int_equal(d.times[DEAL_AMOUNT], t + 999);
    assert_int_equal(d.actors[DEAL_NAME], ACTOR_OTHER);
    /* The newest values are someone else's and current: nothing past. */
    assert_false(d.others[DEAL_NAME].present);
    assert_false(d.others[DEAL_AMOUNT].present);

    /* A second page never overrides what a newer entry timed. */
    assert_int_equal(pipedrive_apply_changelog(&c, text, &d, &seen), 0);

    /* Our push landed on someone else's value: the title is ours now,
     * "My Deal" was the other's, kept as the newest value not ours. */
    json_t *entry = json_array_get(json_object_get(log, "data"), 0);
    json_t *older = json_deep_copy(entry);
    json_object_set_new(entry, "actor_user_id", json_integer(13377001));
    json_object_set_new(entry, "change_source", json_string("api"));
    json_object_set_new(entry, "new_value", json_string("Ours"));
    json_object_set_new(older, "time", json_string("2024-02-12 09:14:30"));
    json_array_insert_new(json_object_get(log, "data"), 1, older);
    free(text);
    text = json_dumps(log, JSON_COMPACT);
    memset(&seen, 0, sizeof(seen));
    free(d.values[DEAL_NAME]);
    d.values[DEAL_NAME] = xstrdup("Ours");
    pipedrive_apply_changelog(&c, text, &d, &seen);
    assert_int_equal(d.actors[DEAL_NAME], ACTOR_US);
    assert_int_equal(d.actors[DEAL_AMOUNT], ACTOR_OTHER);
    assert_true(d.others[DEAL_NAME].present);
    assert_string_equal(d.others[DEAL_NAME].value, "My Deal");
    /* Before our push of a later second: made in its own second, at its
     * end at the latest (so it can beat a CRM value a webhook told of
     * earlier in that second). */
    assert_int_equal(clock_parse_iso("2024-02-12T09:14:30Z", &t), 0);
    assert_int_equal(d.others[DEAL_NAME].time, t);
    assert_int_equal(d.others[DEAL_NAME].time_latest, t + 999);

    /* Our push of the same second may be the later one: at its start. */
    json_object_set_new(older, "time", json_string("2024-02-12 09:14:35"));
    free(text);
    text = json_dumps(log, JSON_COMPACT);
    memset(&seen, 0, sizeof(seen));
    pipedrive_apply_changelog(&c, text, &d, &seen);
    assert_int_equal(clock_parse_iso("2024-02-12T09:14:35Z", &t), 0);
    assert_int_equal(d.others[DEAL_NAME].time, t);
    assert_int_equal(d.others[DEAL_NAME].time_latest, 0);
    json_object_set_new(older, "time", json_string("2024-02-12 09:14:30"));
    free(text);
    text = json_dumps(log, JSON_COMPACT);

    /* A change landing between the deal's read and its changelog's (our
     * push): the newest entry is not what the deal shows; the older one
     * that set the value read times it, not the deal's update_time. */
    memset(&seen, 0, sizeof(seen));
    d.modified = 5000;
    free(d.values[DEAL_NAME]);
    d.values[DEAL_NAME] = xstrdup("My Deal");
    pipedrive_apply_changelog(&c, text, &d, &seen);
    assert_true(seen.timed[DEAL_NAME]);
    assert_int_equal(clock_parse_iso("2024-02-12T09:14:30Z", &t), 0);
    assert_int_equal(d.times[DEAL_NAME], t + 999);
    assert_int_equal(d.actors[DEAL_NAME], ACTOR_OTHER);
    /* Changed again within that second: at the second's start, behind
     * the newer change (its webhook timed it to the ms). */
    json_object_set_new(entry, "time", json_string("2024-02-12 09:14:30"));
    char *same_second = json_dumps(log, JSON_COMPACT);
    memset(&seen, 0, sizeof(seen));
    pipedrive_apply_changelog(&c, same_second, &d, &seen);
    assert_int_equal(d.times[DEAL_NAME], t);
    free(same_second);
    json_object_set_new(entry, "time", json_string("2024-02-12 09:14:35"));
    /* No entry set it: left untimed, for the creation to time. */
    memset(&seen, 0, sizeof(seen));
    d.times[DEAL_NAME] = 1;
    free(d.values[DEAL_NAME]);
    d.values[DEAL_NAME] = xstrdup("Read before the change");
    pipedrive_apply_changelog(&c, text, &d, &seen);
    assert_false(seen.timed[DEAL_NAME]);
    assert_int_equal(d.times[DEAL_NAME], 1);

    /* Read 300 ms into the entry's second: it was made no later than
     * that, and a change made after the read, in the same second, is the
     * newer (timed at the second's end, it stayed behind for good). */
    memset(&seen, 0, sizeof(seen));
    free(d.values[DEAL_NAME]);
    d.values[DEAL_NAME] = xstrdup("Ours");
    assert_int_equal(clock_parse_iso("2024-02-12T09:14:35Z", &t), 0);
    seen.answered_at = t + 300;
    pipedrive_apply_changelog(&c, text, &d, &seen);
    assert_int_equal(d.times[DEAL_NAME], t + 300);

    /* Our push reopened a deal a CRM user had won: the won is the
     * pipeline's Won stage our push landed on. */
    static const char status_log[] =
        LOG_PAGE2(LOG_ENTRY("status", "won", "open", OURS, "09:15:00"),
                  LOG_ENTRY("status", "open", "won", THEIRS, "09:14:50"));
    free(d.values[DEAL_STAGE]);
    d.values[DEAL_STAGE] = xstrdup("1");
    assert_landed_on(&c, status_log, &d, NULL, "won-1");
    assert_int_equal(d.actors[DEAL_STAGE], ACTOR_US);
    assert_int_equal(clock_parse_iso("2024-02-12T09:14:50Z", &t), 0);
    assert_int_equal(d.others[DEAL_STAGE].time_latest, t + 999);

    /* A CRM user reopened a lost deal into stage 3 (a status and a
     * stage_id entry of one change), and our push moved it to stage 1:
     * stage 3 is what our push landed on. */
    static const char reopen_log[] =
        LOG_PAGE3(LOG_ENTRY("stage_id", "3", "1", OURS, "09:16:00"),
                  LOG_ENTRY("status", "lost", "open", THEIRS, "09:15:50"),
                  LOG_ENTRY("stage_id", "2", "3", THEIRS, "09:15:50"));
    assert_landed_on(&c, reopen_log, &d, NULL, "3");
    /* The CRM user's own status entry of that second is not our push. */
    assert_int_equal(clock_parse_iso("2024-02-12T09:15:50Z", &t), 0);
    assert_int_equal(d.others[DEAL_STAGE].time_latest, t + 999);

    /* A CRM user reopened a won deal in its stage 3 (a status entry
     * only), and our push moved it to stage 1: stage 3, the old value of
     * the newer stage_id entry, is what our push landed on. */
    static const char reopen_in_place[] =
        LOG_PAGE3(LOG_ENTRY("stage_id", "3", "1", OURS, "09:17:00"),
                  LOG_ENTRY("status", "won", "open", THEIRS, "09:16:50"),
                  LOG_ENTRY("status", "open", "won", THEIRS, "09:16:40"));
    assert_landed_on(&c, reopen_in_place, &d, NULL, "3");
    assert_int_equal(d.actors[DEAL_STAGE], ACTOR_US);
    assert_int_equal(clock_parse_iso("2024-02-12T09:16:50Z", &t), 0);
    assert_int_equal(d.others[DEAL_STAGE].time_latest, t + 999);

    /* Our push lost that deal, no stage_id entry after the reopening:
     * the deal's stage_id as read (its values say "lost-1") is where the
     * CRM user reopened it. */
    static const char lost_over_reopen[] =
        LOG_PAGE2(LOG_ENTRY("status", "open", "lost", OURS, "09:18:00"),
                  LOG_ENTRY("status", "won", "open", THEIRS, "09:17:50"));
    free(d.values[DEAL_STAGE]);
    d.values[DEAL_STAGE] = xstrdup("lost-1");
    assert_landed_on(&c, lost_over_reopen, &d, "3", "3");
    /* Not known (no stage_id read, a lost deal): nothing is claimed,
     * not the CRM user's older values either. */
    assert_landed_on(&c, lost_over_reopen, &d, NULL, NULL);

    /* A reopening into stage 3 with its stage_id entry listed first (the
     * order within one change is not documented): the same stage 3. */
    static const char stage_first[] =
        LOG_PAGE3(LOG_ENTRY("status", "open", "lost", OURS, "09:19:00"),
                  LOG_ENTRY("stage_id", "2", "3", THEIRS, "09:18:50"),
                  LOG_ENTRY("status", "won", "open", THEIRS, "09:18:50"));
    assert_landed_on(&c, stage_first, &d, "3", "3");

    /* A CRM user moved a won deal to stage 2 (it stays won), and our
     * push reopened it there: the won is what our push landed on. */
    static const char moved_won[] =
        LOG_PAGE2(LOG_ENTRY("status", "won", "open", OURS, "09:20:00"),
                  LOG_ENTRY("stage_id", "1", "2", THEIRS, "09:19:50"));
    free(d.values[DEAL_STAGE]);
    d.values[DEAL_STAGE] = xstrdup("2");
    assert_landed_on(&c, moved_won, &d, "2", "won-1");
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        free(d.values[f]);
        free(d.others[f].value);
    }
    free(text);
    json_decref(log);
}

static void test_vendor_users_and_errors(void **state)
{
    json_t *users = vendor_example("v1", "GET", "/users", "200");
    json_t *me = vendor_example("v1", "GET", "/users/me", "200");
    json_t *denied = vendor_example("v1", "GET", "/users/me", "401");

    /* What list_owners and prepare read from them. */
    json_t *first = json_array_get(json_object_get(users, "data"), 0);
    assert_int_equal(json_integer_value(json_object_get(first, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(first, "email")),
                        "john@pipedrive.com");
    json_t *data = json_object_get(me, "data");
    assert_true(json_is_integer(json_object_get(data, "company_id")));
    assert_false(json_is_true(json_object_get(denied, "success")));
    json_decref(users);
    json_decref(me);
    json_decref(denied);
}

/* ---- deal fields into settings ---- */

static char *field_def(const char *name, const char *code, const char *type)
{
    return xasprintf("{\"field_name\":\"%s\",\"field_code\":\"%s\","
                     "\"field_type\":\"%s\",\"is_custom_field\":true,"
                     "\"is_optional_response_field\":false,\"options\":"
                     "[{\"id\":41,\"label\":\"GTX Pro\"}]}",
                     name, code, type);
}

static void test_settings_from_fields(void **state)
{
    char *a = field_def("Account", K_ACCOUNT, "varchar");
    char *p = field_def("Product", K_PRODUCT, "enum");
    char *e = field_def("Engage date", K_ENGAGE, "date");
    char *o = field_def("Fieldsync ID", K_OURS, "varchar");
    char *page1 = xasprintf("{\"success\":true,\"data\":[{\"field_name\":"
                            "\"Deal Title\",\"field_code\":\"title\","
                            "\"field_type\":\"varchar\",\"is_custom_field\":"
                            "false},%s,%s],\"additional_data\":{"
                            "\"next_cursor\":\"c2\"}}",
                            a, p);
    char *page2 = xasprintf("{\"success\":true,\"data\":[%s,%s]}", e, o);
    const char *pages[] = {page1, page2};
    char *settings_out = NULL;
    char *error = NULL;

    assert_int_equal(
        pipedrive_settings_from_fields(pages, 2, &settings_out, &error), FS_OK);
    assert_null(error);
    struct connection c = make_conn();
    c.settings = settings_out;
    char *key = pipedrive_field_key(&c, DEAL_PRODUCT);
    assert_string_equal(key, K_PRODUCT);
    free(key);
    key = pipedrive_field_key(&c, DEAL_ENGAGE_DATE);
    assert_string_equal(key, K_ENGAGE);
    free(key);
    /* Not in the account: not synced. */
    assert_null(pipedrive_field_key(&c, DEAL_POSTCODE));
    assert_int_equal(
        pipedrive_provider.synced_fields(&c) & (1u << DEAL_POSTCODE), 0);
    assert_int_not_equal(
        pipedrive_provider.synced_fields(&c) & (1u << DEAL_PRODUCT), 0);
    free(settings_out);

    /* Without fieldsync_id a create could not be found again. */
    assert_int_equal(
        pipedrive_settings_from_fields(pages, 1, &settings_out, &error),
        FS_ERR_INVALID);
    assert_non_null(strstr(error, "fieldsync_id"));
    free(error);

    /* A field of a type we cannot map is named. */
    char *bad = field_def("Engage date", K_ENGAGE, "monetary");
    char *page3 = xasprintf("{\"success\":true,\"data\":[%s,%s]}", bad, o);
    pages[1] = page3;
    assert_int_equal(
        pipedrive_settings_from_fields(pages, 2, &settings_out, &error),
        FS_ERR_INVALID);
    assert_non_null(strstr(error, "monetary"));
    free(error);
    free(bad);
    free(page3);
    free(a);
    free(p);
    free(e);
    free(o);
    free(page1);
    free(page2);
}

/* ---- writes ---- */

static void test_write_bodies(void **state)
{
    struct connection c = make_conn();
    struct crm_write w = {0};
    char *json = NULL;

    w.our_id = "rec-1";
    w.crm_id = "4711";
    w.present[DEAL_STAGE] = true;
    w.values[DEAL_STAGE] = "3";
    w.present[DEAL_AMOUNT] = true;
    w.values[DEAL_AMOUNT] = "1054.5";
    w.present[DEAL_ACCOUNT] = true;
    w.values[DEAL_ACCOUNT] = "Cancity";
    w.present[DEAL_PRODUCT] = true;
    w.values[DEAL_PRODUCT] = "GTX Basic";
    w.present[DEAL_CLOSE_DATE] = true;
    w.values[DEAL_CLOSE_DATE] = NULL;
    w.values[DEAL_NAME] = "not sent";
    assert_int_equal(pipedrive_write_body(&c, &w, false, &json), FS_OK);
    assert_string_equal(json, "{\"custom_fields\":{\"" K_PRODUCT
                              "\":42,\"" K_ACCOUNT "\":\"Cancity\"},"
                              "\"expected_close_date\":null,"
                              "\"stage_id\":3,\"status\":\"open\","
                              "\"value\":1054.5}");
    free(json);

    /* The won and lost stages are the deal's status. */
    memset(w.present, 0, sizeof(w.present));
    w.present[DEAL_STAGE] = true;
    w.values[DEAL_STAGE] = "won-2";
    assert_int_equal(pipedrive_write_body(&c, &w, false, &json), FS_OK);
    assert_string_equal(json, "{\"status\":\"won\"}");
    free(json);
    w.values[DEAL_STAGE] = "lost-2";
    assert_int_equal(pipedrive_write_body(&c, &w, false, &json), FS_OK);
    assert_string_equal(json, "{\"status\":\"lost\"}");
    free(json);
    w.values[DEAL_STAGE] = "closedwon";
    assert_int_equal(pipedrive_write_body(&c, &w, false, &json),
                     FS_ERR_INVALID);

    /* Clearing the amount writes Pipedrive's 0. */
    memset(w.present, 0, sizeof(w.present));
    w.present[DEAL_AMOUNT] = true;
    w.values[DEAL_AMOUNT] = NULL;
    assert_int_equal(pipedrive_write_body(&c, &w, false, &json), FS_OK);
    assert_string_equal(json, "{\"value\":0}");
    free(json);

    /* A create carries our id and leaves out empty fields. */
    memset(w.present, 0, sizeof(w.present));
    w.crm_id = NULL;
    w.present[DEAL_NAME] = true;
    w.values[DEAL_NAME] = "New lead";
    w.present[DEAL_OWNER] = true;
    w.values[DEAL_OWNER] = "13377001";
    w.present[DEAL_AMOUNT] = true;
    w.values[DEAL_AMOUNT] = "1200";
    assert_int_equal(pipedrive_write_body(&c, &w, true, &json), FS_OK);
    assert_string_equal(json, "{\"custom_fields\":{\"" K_OURS
                              "\":\"rec-1\"},\"owner_id\":13377001,"
                              "\"title\":\"New lead\",\"value\":1200}");
    free(json);

    /* A label the option field does not have is refused. */
    w.present[DEAL_PRODUCT] = true;
    w.values[DEAL_PRODUCT] = "GTX Ultra";
    assert_int_equal(pipedrive_write_body(&c, &w, true, &json), FS_ERR_INVALID);
    assert_null(json);
    w.present[DEAL_PRODUCT] = false;

    /* Without settings there is nowhere to keep our id. */
    c.settings = NULL;
    assert_int_equal(pipedrive_write_body(&c, &w, true, &json), FS_ERR_INVALID);
}

/* An answer naming a deal, user or stage by an empty id: none of them is
 * taken, a write so answered is not done with an empty id, and a search
 * finds the next hit (else a retried create would PATCH the deals
 * collection). */
static void test_empty_ids_refused(void **state)
{
    struct connection c = make_conn();
    struct pipedrive_answer a;
    struct crm_write_result r;
    const struct crm_write create = {
        .our_id = "r-1",
        .values = {[DEAL_NAME] = "Deal One"},
        .present = {[DEAL_NAME] = true},
    };
    const char *page =
        "{\"success\":true,\"data\":[{\"id\":\"\",\"title\":\"No id\"},"
        "{\"id\":7,\"title\":\"Seven\"}],\"additional_data\":"
        "{\"next_cursor\":\"\"}}";
    const char *users = "{\"data\":[{\"id\":\"\",\"name\":\"No id\"},"
                        "{\"id\":3,\"name\":\"Three\"}]}";
    const char *stages = "{\"data\":[{\"id\":\"\",\"pipeline_id\":1},"
                         "{\"id\":4,\"pipeline_id\":\"\"}]}";
    const char *search = "{\"data\":{\"items\":[{\"item\":{\"id\":\"\"}},"
                         "{\"item\":{\"id\":12}}]}}";
    const char *written = "{\"success\":true,\"data\":{\"id\":\"\"}}";

    assert_int_equal(pipedrive_read_answer(&c, page, strlen(page), &a), FS_OK);
    assert_int_equal(a.deal_count, 1);
    assert_string_equal(a.deals[0].crm_id, "7");
    assert_null(a.next_cursor);
    pipedrive_answer_clear(&a);
    assert_int_equal(pipedrive_read_answer(&c, users, strlen(users), &a),
                     FS_OK);
    assert_int_equal(a.owner_count, 1);
    assert_string_equal(a.owners[0].id, "3");
    pipedrive_answer_clear(&a);
    assert_int_equal(pipedrive_read_answer(&c, stages, strlen(stages), &a),
                     FS_OK);
    assert_int_equal(a.stage_count, 0);
    pipedrive_answer_clear(&a);
    assert_int_equal(pipedrive_read_answer(&c, search, strlen(search), &a),
                     FS_OK);
    assert_string_equal(a.found_id, "12");
    pipedrive_answer_clear(&a);

    assert_int_equal(pipedrive_read_write_answer(&c, &create, 201, written,
                                                 strlen(written), &r),
                     FS_OK);
    assert_true(r.done);
    assert_int_equal(r.result, FS_ERR_REMOTE);
    assert_null(r.crm_id);
    assert_string_equal(r.error, "Pipedrive returned no deal id");
    crm_write_results_clear(&r, 1);
}

static void test_provider_shape(void **state)
{
    struct connection c = make_conn();
    struct rate_budget b;

    assert_ptr_equal(provider_by_name("pipedrive"), &pipedrive_provider);
    assert_true(pipedrive_provider.webhooks_by_url);
    assert_true(pipedrive_provider.bans_failing_hooks);
    assert_non_null(pipedrive_provider.register_webhook);
    /* API tokens and OAuth apps (refreshed by the token keeper). */
    assert_non_null(pipedrive_provider.oauth_token);
    pipedrive_provider.rate_budget(&c, CALL_WRITE, &b);
    assert_int_equal(b.window_ms, 2200);
    assert_int_equal(b.window_calls, 20);
    assert_int_equal(b.daily_units, 30000);
    c.rate_window = 80;
    c.rate_daily = 300000;
    pipedrive_provider.rate_budget(&c, CALL_READ, &b);
    assert_int_equal(b.window_calls, 80);
    assert_int_equal(b.daily_units, 300000);
}

/* A token answer's api_domain as the root calls go to: the spec's
 * reading (an https URL) and the others seen (a bare host, an API path,
 * a trailing slash); anything else is not taken. */
static void test_api_domain_root(void **state)
{
    static const char *const taken[][2] = {
        {"https://acme.pipedrive.com", "https://acme.pipedrive.com"},
        {"https://acme.pipedrive.com/", "https://acme.pipedrive.com"},
        {"acme.pipedrive.com", "https://acme.pipedrive.com"},
        {"https://acme.pipedrive.com/api/v2", "https://acme.pipedrive.com"},
        {"https://acme.pipedrive.com/api/v1/", "https://acme.pipedrive.com"},
        {"https://acme.pipedrive.com/v1", "https://acme.pipedrive.com"},
        {"http://127.0.0.1:4100", "http://127.0.0.1:4100"},
    };
    static const char *const refused[] = {
        "ftp://acme.pipedrive.com",
        "https://",
        "https:///path",
        "https://acme.pipedrive.com?x=1",
        "https://user@evil.example",
        "acme pipedrive",
        "/",
        "",
    };
    char *root = NULL;

    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
        assert_int_equal(pipedrive_api_root(taken[i][0], &root), FS_OK);
        assert_string_equal(root, taken[i][1]);
        free(root);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(pipedrive_api_root(refused[i], &root), FS_ERR_INVALID);
        assert_null(root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_credentials),
        cmocka_unit_test(test_split_vendor_template),
        cmocka_unit_test(test_split_refuses),
        cmocka_unit_test(test_change_sets_changed_fields_only),
        cmocka_unit_test(test_echo_and_times),
        cmocka_unit_test(test_deletes_and_merges),
        cmocka_unit_test(test_vendor_deals),
        cmocka_unit_test(test_deal_custom_fields),
        cmocka_unit_test(test_vendor_changelog),
        cmocka_unit_test(test_vendor_users_and_errors),
        cmocka_unit_test(test_settings_from_fields),
        cmocka_unit_test(test_write_bodies),
        cmocka_unit_test(test_empty_ids_refused),
        cmocka_unit_test(test_provider_shape),
        cmocka_unit_test(test_api_domain_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Attio webhook deliveries: the input's first line is the
 * Idempotency-Key header (empty: absent), the rest a body as an attacker
 * could POST it. It is cut into events (split_webhook), and each event,
 * like any text in the inbox, is parsed (parse_event) for a connection
 * mapping the documentation's deals object, once with our token's id
 * known and once without. Checks that a retry of the delivery gets the
 * same dedup keys, that the events of one delivery have distinct keys,
 * that every event read names its record, and that our own writes' echoes
 * never lead to a read. */
#include "fuzz.h"

#include "base/alloc.h"
#include "providers/attio.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *on_header(const void *ctx, const char *name)
{
    return strcmp(name, "Idempotency-Key") == 0 ? (const char *)ctx : NULL;
}

static void check_event(const struct crm_event *ev, bool from_split)
{
    if (ev->kind == CRM_EVENT_IGNORED) {
        /* As given: an empty type is one more type we do not handle. */
        FUZZ_CHECK(ev->ignored_type, "an ignored event names its type");
    } else {
        FUZZ_CHECK(ev->crm_id && *ev->crm_id, "a record event names it");
        FUZZ_CHECK(ev->kind == CRM_EVENT_CREATE || ev->kind == CRM_EVENT_READ ||
                       ev->kind == CRM_EVENT_DELETE ||
                       ev->kind == CRM_EVENT_MERGE,
                   "an Attio event is a create, read, delete or merge");
    }
    if (ev->kind == CRM_EVENT_CREATE || ev->kind == CRM_EVENT_READ)
        FUZZ_CHECK(ev->actor != ACTOR_US, "our own write's echo is no read");
    if (ev->kind == CRM_EVENT_MERGE)
        FUZZ_CHECK(ev->new_id && strcmp(ev->new_id, ev->crm_id) == 0 &&
                       ev->merged_count == 1 && ev->merged_ids[0] &&
                       *ev->merged_ids[0],
                   "a merge names the record made and the one merged in");
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        FUZZ_CHECK(!ev->present[f] && !ev->values[f],
                   "an Attio event carries ids only");
    /* split_webhook stamps the time it received the event. */
    if (from_split)
        FUZZ_CHECK(ev->time > 0, "a delivered event has a time");
}

static void parse_one(const char *json, bool from_split)
{
    static char ours[] = "token-ours";
    char *const app_ids[] = {ours, NULL};

    for (size_t i = 0; i < 2; i++) {
        struct connection conn = {
            .id = 1,
            .provider = "attio",
            .app_id = app_ids[i],
            .settings = fuzz_attio_settings(),
            .active = true,
        };
        struct crm_event ev;

        if (attio_provider.parse_event(&conn, json, &ev) == FS_OK)
            check_event(&ev, from_split);
        else
            FUZZ_CHECK(!ev.crm_id && !ev.ignored_type,
                       "a refused event reads as nothing");
        crm_event_clear(&ev);
    }
}

static void check_items(const struct webhook_item *items, size_t n,
                        const struct webhook_item *again, size_t n_again)
{
    FUZZ_CHECK(n > 0 && n <= ATTIO_MAX_EVENTS,
               "a delivery holds 1 to 100 events");
    FUZZ_CHECK(n_again == n, "a retried delivery holds the same events");
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(items[i].dedup_key && *items[i].dedup_key &&
                       items[i].account_id && items[i].app_id && items[i].body,
                   "an event carries its key, routing and body");
        FUZZ_CHECK(strcmp(items[i].dedup_key, again[i].dedup_key) == 0,
                   "a retried delivery's events have the same keys");
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(items[i].dedup_key, items[j].dedup_key) != 0,
                       "the events of a delivery have distinct keys");
        json_t *event = json_loads(items[i].body, 0, NULL);
        FUZZ_CHECK(json_is_object(event) &&
                       json_is_string(json_object_get(event, "event_type")),
                   "an event cut out is an object with its type");
        json_decref(event);
        parse_one(items[i].body, true);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    char *key = fuzz_take(&in, "\n");
    size_t len = 0;
    char *body = fuzz_rest(&in, &len);
    struct webhook_request req = {
        .method = "POST",
        .url = "https://fieldsync.example/webhooks/attio/1",
        .body = body,
        .body_len = len,
        .header = on_header,
        .header_ctx = key && *key ? key : NULL,
    };
    struct webhook_item *items = NULL, *again = NULL;
    size_t n = 0, n_again = 0;

    fs_result r = attio_provider.split_webhook(&req, &items, &n);
    fs_result r_again = attio_provider.split_webhook(&req, &again, &n_again);
    FUZZ_CHECK(r == r_again, "a retried delivery is taken or refused alike");
    if (r == FS_OK)
        check_items(items, n, again, n_again);
    else
        FUZZ_CHECK(!items && n == 0, "a refused delivery yields no events");
    webhook_items_free(items, n);
    webhook_items_free(again, n_again);

    /* An inbox event is parsed from text too. */
    parse_one(body, false);
    free(body);
    free(key);
    return 0;
}

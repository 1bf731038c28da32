/* HubSpot webhook deliveries: a body as an attacker could POST it is cut
 * into events (split_webhook), and each event, like any text in the inbox,
 * is parsed (parse_event). Checks that every event cut out carries its
 * routing and dedup key, and that every value a change event sets is in
 * its field's canonical form. */
#include "fuzz.h"

#include "base/alloc.h"
#include "model/deal.h"
#include "providers/hubspot.h"

#include <stdlib.h>
#include <string.h>

static const struct connection conn = {
    .id = 1,
    .provider = "hubspot",
    .account_id = "62515",
    .app_id = "54321",
    .client_secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
    .active = true,
};

static void check_event(const struct crm_event *ev)
{
    if (ev->kind == CRM_EVENT_IGNORED)
        FUZZ_CHECK(ev->ignored_type, "an ignored event names its type");
    if (ev->kind == CRM_EVENT_MERGE)
        FUZZ_CHECK(ev->new_id && *ev->new_id,
                   "a merge names the surviving deal");
    for (size_t i = 0; i < ev->merged_count; i++)
        FUZZ_CHECK(*ev->merged_ids[i], "a merge names each deal merged in");
    if (ev->kind != CRM_EVENT_IGNORED)
        FUZZ_CHECK(ev->crm_id && *ev->crm_id && ev->time > 0,
                   "a deal event has an id and a time");
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!ev->values[f])
            continue;
        FUZZ_CHECK(ev->present[f], "a value is only set on a present field");
        FUZZ_CHECK(fuzz_is_canonical(f, ev->values[f]),
                   "an event's value is valid and canonical");
    }
}

static void parse_one(const char *json)
{
    struct crm_event ev;

    if (hubspot_provider.parse_event(&conn, json, &ev) == FS_OK)
        check_event(&ev);
    crm_event_clear(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_text(data, size);
    struct webhook_request req = {
        .method = "POST",
        .url = "https://fieldsync.example/webhooks/hubspot",
        .body = body,
        .body_len = size,
    };
    struct webhook_item *items = NULL;
    size_t n = 0;

    if (hubspot_provider.split_webhook(&req, &items, &n) == FS_OK) {
        FUZZ_CHECK(n > 0 && n <= HUBSPOT_MAX_EVENTS,
                   "a delivery holds 1 to 100 events");
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(items[i].dedup_key && items[i].account_id &&
                           *items[i].account_id && items[i].app_id &&
                           items[i].body,
                       "an event carries its key, routing and body");
            parse_one(items[i].body);
        }
    } else {
        FUZZ_CHECK(!items && n == 0, "a refused delivery yields no events");
    }
    webhook_items_free(items, n);

    /* An inbox event is parsed from text too. */
    parse_one(body);
    free(body);
    return 0;
}

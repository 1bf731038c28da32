/* Pipedrive webhooks v2 deliveries: a body as anyone who knows the
 * webhook's Basic credentials (or the CRM on a bad day) could POST it is
 * cut into its event (split_webhook), and the event, like any text in
 * the inbox, is parsed (parse_event) for a connection with custom fields,
 * once with our user's id known and once without. Checks that a retry
 * gets the same dedup key, that every deal event names its deal and
 * time, that a change sets only synced fields to canonical values, and
 * that a merge names the survivor and the deal merged in (the same one
 * twice is a read of it: apply_merge skips a loser that is the
 * survivor, as HubSpot lists it among the merged). */
#include "fuzz.h"

#include "base/alloc.h"
#include "base/log.h"
#include "providers/pipedrive.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void check_event(const struct connection *conn,
                        const struct crm_event *ev)
{
    bool any = false;

    if (ev->kind == CRM_EVENT_IGNORED) {
        FUZZ_CHECK(ev->ignored_type && *ev->ignored_type,
                   "an ignored event names its type");
        return;
    }
    FUZZ_CHECK(ev->crm_id && *ev->crm_id && ev->time > 0,
               "a deal event has an id and a time");
    if (ev->kind == CRM_EVENT_MERGE)
        FUZZ_CHECK(ev->new_id && strcmp(ev->new_id, ev->crm_id) == 0 &&
                       ev->merged_count == 1 && ev->merged_ids[0] &&
                       *ev->merged_ids[0],
                   "a merge names the survivor and the deal merged in");
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!ev->present[f]) {
            FUZZ_CHECK(!ev->values[f], "a value is only set on a present "
                                       "field");
            continue;
        }
        char *key = pipedrive_field_key(conn, f);
        FUZZ_CHECK(key, "a change sets only synced fields");
        free(key);
        FUZZ_CHECK(!ev->values[f] || fuzz_is_canonical(f, ev->values[f]),
                   "an event's value is valid and canonical");
        any = true;
    }
    FUZZ_CHECK(ev->kind != CRM_EVENT_CHANGE || any,
               "a change sets at least one field");
}

static void parse_one(const char *json)
{
    static char ours[] = "13377001";
    char *const app_ids[] = {ours, NULL};

    for (size_t i = 0; i < 2; i++) {
        struct connection conn = {
            .id = 1,
            .provider = "pipedrive",
            .account_id = "9120044",
            .app_id = app_ids[i],
            .settings = fuzz_pipedrive_settings(),
            .active = true,
        };
        struct crm_event ev;

        if (pipedrive_provider.parse_event(&conn, json, &ev) == FS_OK)
            check_event(&conn, &ev);
        else
            FUZZ_CHECK(!ev.crm_id && !ev.ignored_type,
                       "a refused event reads as nothing");
        crm_event_clear(&ev);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Rejected values are logged one by one. */
    log_set_level(LOG_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_text(data, size);
    struct webhook_request req = {
        .method = "POST",
        .url = "https://fieldsync.example/webhooks/pipedrive/1",
        .body = body,
        .body_len = size,
    };
    struct webhook_item *items = NULL, *again = NULL;
    size_t n = 0, n_again = 0;

    fs_result r = pipedrive_provider.split_webhook(&req, &items, &n);
    fs_result r_again =
        pipedrive_provider.split_webhook(&req, &again, &n_again);
    FUZZ_CHECK(r == r_again, "a retried delivery is taken or refused alike");
    if (r == FS_OK) {
        FUZZ_CHECK(n == 1 && n_again == 1, "a delivery holds one event");
        FUZZ_CHECK(items[0].dedup_key && strchr(items[0].dedup_key, ':') &&
                       items[0].account_id && items[0].app_id && items[0].body,
                   "an event carries its key, routing and body");
        FUZZ_CHECK(strcmp(items[0].dedup_key, again[0].dedup_key) == 0,
                   "a retried delivery's event has the same key");
        parse_one(items[0].body);
    } else {
        FUZZ_CHECK(!items && n == 0, "a refused delivery yields no events");
        FUZZ_CHECK(r != FS_ERR_TOO_LARGE || size > PIPEDRIVE_MAX_EVENT_BYTES,
                   "only a body past the limit is too large");
    }
    webhook_items_free(items, n);
    webhook_items_free(again, n_again);

    /* An inbox event is parsed from text too. */
    parse_one(body);
    free(body);
    return 0;
}

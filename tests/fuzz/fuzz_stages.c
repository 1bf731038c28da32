/* The admin API's stage bodies, PUT /api/v1/admin/stages and
 * /api/v1/admin/stage-map, on an in-memory store holding one org with a
 * HubSpot connection, its two pipelines and a valid map. Each input is
 * one JSON object (through the API's own JSON gate): its "stages" go to
 * stages_define, the rest to stages_map, inside a transaction rolled back
 * afterwards so every input meets the same store. Checks that a refusal
 * says why, and that whatever was taken reads back as a valid map. */
#include "fuzz.h"

#include "base/alloc.h"
#include "services/api_call.h"
#include "services/stages.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct store *store;
static int64_t org;

static void must(fs_result r, const char *what)
{
    if (r != FS_OK) {
        fprintf(stderr, "fuzz_stages: %s: %s\n", what, fs_result_name(r));
        abort();
    }
}

static void set_up_store(void)
{
    static const struct store_stage crm[] = {
        {"default", "appointmentscheduled", "Appointment Scheduled"},
        {"default", "qualifiedtobuy", "Qualified To Buy"},
        {"default", "contractsent", "Contract Sent"},
        {"default", "closedwon", "Closed Won"},
        {"default", "closedlost", "Closed Lost"},
        {"812723471", "1234912", "In Progress"},
        {"812723471", "1234914", "Done"},
        {"812723471", "1234915", "Dropped"},
    };
    struct connection c = {
        .provider = "hubspot",
        .base_url = "http://127.0.0.1:1",
        .account_id = "62515",
        .app_id = "54321",
        .token = "token",
        .client_secret = "secret",
        .active = true,
    };
    int64_t conn = 0;
    char *error = NULL;

    must(store_open(":memory:", &store), "store_open");
    must(store_org_add(store, "acme", &org), "store_org_add");
    c.org_id = org;
    must(store_connection_add(store, &c, &conn), "store_connection_add");
    must(store_crm_stages_replace(store, conn, crm, sizeof(crm) / sizeof(*crm)),
         "store_crm_stages_replace");

    json_t *map = json_loads(
        "{\"map\":{\"appointmentscheduled\":\"new\","
        "\"qualifiedtobuy\":\"qualified\",\"contractsent\":\"in_quote\","
        "\"closedwon\":\"won\",\"closedlost\":\"lost\",\"1234912\":\"new\","
        "\"1234914\":\"won\",\"1234915\":\"lost\"},\"defaults\":{\"812723471\":{"
        "\"qualified\":\"1234912\",\"in_quote\":\"1234912\","
        "\"lost\":\"1234915\"}}}",
        0, NULL);
    must(stages_map(store, org, 0, map, &error), "stages_map");
    json_decref(map);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    set_up_store();
    return 0;
}

/* What the store holds now reads back as a map without problems. */
static void check_view(void)
{
    json_t *view = NULL;

    must(stages_view(store, org, 0, &view), "stages_view");
    FUZZ_CHECK(json_array_size(json_object_get(view, "problems")) == 0,
               "a map taken validates when read back");
    json_decref(view);
}

static void check_refusal(fs_result r, const char *error)
{
    FUZZ_CHECK(r == FS_ERR_INVALID || r == FS_ERR_CONFLICT,
               "a body is taken or refused, never a store failure");
    FUZZ_CHECK(error && *error, "a refusal says why");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_error err = {0};
    json_t *body = NULL;
    char *error = NULL;

    if (api_json_parse_object((const char *)data, size, &body, &err) != FS_OK) {
        api_error_clear(&err);
        return 0;
    }
    must(store_begin(store), "store_begin");

    if (json_object_get(body, "stages")) {
        fs_result r = stages_define(store, org, body, &error);
        if (r == FS_OK)
            FUZZ_CHECK(!error, "a body taken has no error");
        else
            check_refusal(r, error);
        free(error);
        error = NULL;
        json_object_del(body, "stages");
    }
    if (json_object_size(body) > 0) {
        fs_result r = stages_map(store, org, 0, body, &error);
        if (r == FS_OK)
            check_view();
        else
            check_refusal(r, error);
        free(error);
    }

    must(store_rollback(store), "store_rollback");
    json_decref(body);
    return 0;
}

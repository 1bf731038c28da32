/* Pipedrive REST answers, as the CRM (or anything in the middle) could
 * send them: one body read the way the deal list and ids= reads, users,
 * stages and search read theirs (pipedrive_read_answer), as one deal
 * (pipedrive_parse_deal), as a changelog page applied to that deal, as a
 * /dealFields page connect learns the custom fields from (then the body
 * read again, and a create written, with what it learnt), and as the
 * answer to a PATCH and a POST at a few statuses. Checks that every deal
 * read has an id and canonical values, that ids and cursors are never
 * empty, that each pipeline gets its won and lost stages, and that every
 * write ends with a definite outcome. */
#include "fuzz.h"

#include "base/alloc.h"
#include "base/log.h"
#include "model/deal.h"
#include "providers/pipedrive.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct connection conn = {
    .id = 1,
    .provider = "pipedrive",
    .account_id = "9120044",
    .app_id = "13377001",
    .active = true,
};

static bool has_stage(const struct pipedrive_answer *a, const char *id)
{
    for (size_t i = 0; i < a->stage_count; i++) {
        if (strcmp(a->stages[i].id, id) == 0)
            return true;
    }
    return false;
}

static void check_answer(const struct connection *c, const char *body,
                         size_t len)
{
    struct pipedrive_answer a;

    if (pipedrive_read_answer(c, body, len, &a) != FS_OK) {
        FUZZ_CHECK(!a.deals && !a.owners && !a.stages && !a.next_cursor &&
                       !a.found_id && !a.error,
                   "a body that is not JSON reads as nothing");
        return;
    }
    for (size_t i = 0; i < a.deal_count; i++)
        fuzz_check_read_deal(&a.deals[i]);
    for (size_t i = 0; i < a.owner_count; i++)
        FUZZ_CHECK(a.owners[i].id, "a user read has an id");
    for (size_t i = 0; i < a.stage_count; i++) {
        const struct crm_stage *st = &a.stages[i];
        FUZZ_CHECK(st->id && st->pipeline_id, "a stage has its pipeline");
        char *won = xasprintf("won-%s", st->pipeline_id);
        char *lost = xasprintf("lost-%s", st->pipeline_id);
        FUZZ_CHECK(has_stage(&a, won) && has_stage(&a, lost),
                   "each pipeline has its won and lost stages");
        free(won);
        free(lost);
    }
    FUZZ_CHECK(!a.next_cursor || *a.next_cursor, "a cursor is never empty");
    FUZZ_CHECK(!a.found_id || *a.found_id, "a deal found has an id");
    FUZZ_CHECK(a.error && *a.error, "an answer has an error text to log");
    pipedrive_answer_clear(&a);
}

/* The body as one deal, then as a changelog page on it. */
static void check_deal_and_changelog(const char *body)
{
    struct crm_deal d;
    struct pipedrive_changelog log = {.pipeline_id = "1", .stage_id = "2"};

    if (pipedrive_parse_deal(&conn, body, &d) != FS_OK) {
        FUZZ_CHECK(!d.crm_id, "a refused deal reads as nothing");
        d.crm_id = xstrdup("1");
    } else {
        fuzz_check_read_deal(&d);
    }
    int64_t times[DEAL_FIELD_COUNT];
    memcpy(times, d.times, sizeof(times));
    size_t timed = pipedrive_apply_changelog(&conn, body, &d, &log);
    size_t count = 0;
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        count += log.timed[f];
        FUZZ_CHECK(times[f] != 0 || d.times[f] == 0,
                   "a value read as unusable stays without a time");
    }
    FUZZ_CHECK(timed == count, "each field is timed once");
    fuzz_check_read_deal(&d);
    crm_deal_clear(&d);
}

/* The body as a /dealFields page: settings learnt, or why not; with
 * them, the body read as deals and a create's body written. */
static void check_fields(const char *body, size_t len)
{
    const char *pages[] = {body};
    char *settings = NULL, *error = NULL;

    fs_result r = pipedrive_settings_from_fields(pages, 1, &settings, &error);
    if (r != FS_OK) {
        FUZZ_CHECK(!settings && error && *error,
                   "fields that do not fit say why");
        free(error);
        return;
    }
    FUZZ_CHECK(!error, "settings learnt carry no error");
    json_t *root = json_loads(settings, 0, NULL);
    FUZZ_CHECK(json_is_string(json_object_get(
                   json_object_get(json_object_get(root, "custom_fields"),
                                   "fieldsync_id"),
                   "key")),
               "settings learnt name our id's field");
    json_decref(root);

    struct connection learnt = conn;
    learnt.settings = settings;
    check_answer(&learnt, body, len);
    struct crm_write w = {
        .our_id = "r-1",
        .values = {[DEAL_NAME] = "Cancity GTX Plus Basic",
                   [DEAL_STAGE] = "won-1",
                   [DEAL_AMOUNT] = "1054",
                   [DEAL_ACCOUNT] = "Cancity",
                   [DEAL_PRODUCT] = "GTX Plus Basic",
                   [DEAL_ENGAGE_DATE] = "2016-10-20",
                   [DEAL_POSTCODE] = "M1 1AE"},
    };
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        w.present[f] = w.values[f] != NULL;
    char *json = NULL;
    if (pipedrive_write_body(&learnt, &w, true, &json) == FS_OK) {
        json_t *j = json_loads(json, 0, NULL);
        FUZZ_CHECK(json_is_object(j), "a write's body is a JSON object");
        json_decref(j);
    } else {
        FUZZ_CHECK(!json, "a write refused has no body");
    }
    free(json);
    free(settings);
}

static void check_write_answer(const char *body, size_t len)
{
    /* Done, refused credentials, a refused write, the rate limit. */
    static const long statuses[] = {200, 401, 404, 429};
    struct crm_write update = {
        .crm_id = "1",
        .values = {[DEAL_NAME] = "Deal One", [DEAL_STAGE] = "2"},
        .present = {[DEAL_NAME] = true, [DEAL_STAGE] = true},
    };
    struct crm_write create = {
        .our_id = "r-1",
        .values = {[DEAL_NAME] = "Deal One"},
        .present = {[DEAL_NAME] = true},
    };
    const struct crm_write *writes[] = {&update, &create};

    for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
        for (size_t i = 0; i < 2; i++) {
            const struct crm_write *w = writes[i];
            struct crm_write_result res;
            fs_result r = pipedrive_read_write_answer(&conn, w, statuses[s],
                                                      body, len, &res);
            FUZZ_CHECK(r == FS_OK || (r == res.result && statuses[s] >= 400 &&
                                      statuses[s] != 404),
                       "only the token, plan or rate limit stop the call");
            fuzz_check_write_result(w, statuses[s], &res);
            crm_write_results_clear(&res, 1);
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Rejected values are logged one by one. */
    log_set_level(LOG_ERROR);
    conn.settings = fuzz_pipedrive_settings();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_text(data, size);

    check_answer(&conn, body, size);
    check_deal_and_changelog(body);
    check_fields(body, size);
    check_write_answer(body, size);
    free(body);
    return 0;
}

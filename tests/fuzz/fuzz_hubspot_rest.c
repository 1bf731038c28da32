/* HubSpot CRM v3 REST answers, as a CRM (or anything in the middle) could
 * send them: one body read the way the list, search, batch read, owners
 * and pipelines calls read theirs, and as the answer to a batch update of
 * three deals. Checks that every deal read has an id and canonical
 * values, and that every write ends with a definite outcome. */
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
    .active = true,
};

static void check_deal(const struct crm_deal *d)
{
    fuzz_check_read_deal(d);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        FUZZ_CHECK(!d->others[f].present || d->others[f].time > 0,
                   "an overwritten edit read has its time");
}

static void check_answer(const char *body, size_t len)
{
    struct hubspot_answer a;

    if (hubspot_read_answer(&conn, body, len, &a) != FS_OK) {
        FUZZ_CHECK(!a.deals && !a.owners && !a.stages && !a.next_after,
                   "a body that is not JSON reads as nothing");
        return;
    }
    for (size_t i = 0; i < a.deal_count; i++)
        check_deal(&a.deals[i]);
    for (size_t i = 0; i < a.owner_count; i++)
        FUZZ_CHECK(a.owners[i].id && *a.owners[i].id,
                   "an owner read has an id");
    for (size_t i = 0; i < a.stage_count; i++)
        FUZZ_CHECK(a.stages[i].id && *a.stages[i].id &&
                       a.stages[i].pipeline_id && *a.stages[i].pipeline_id,
                   "a stage read has its id and pipeline");
    FUZZ_CHECK(!a.next_after || *a.next_after, "a page token is never empty");
    hubspot_answer_clear(&a);
}

static void check_update_answer(const char *body, size_t len)
{
    static const struct crm_write writes[] = {
        {.our_id = "r-1", .crm_id = "101"},
        {.our_id = "r-2", .crm_id = "102"},
        {.our_id = NULL, .crm_id = "103"},
    };
    struct crm_write_result results[3];

    fs_result r = hubspot_read_update_answer(body, len, writes, 3, results);
    for (size_t i = 0; i < 3; i++) {
        const struct crm_write_result *w = &results[i];
        if (r != FS_OK) {
            FUZZ_CHECK(!w->done, "an unreadable answer decides nothing");
            continue;
        }
        FUZZ_CHECK(w->done, "every write of a batch answer has an outcome");
        if (w->result == FS_OK)
            FUZZ_CHECK(w->crm_id && *w->crm_id && !w->error,
                       "a write done names its deal");
        else
            FUZZ_CHECK(w->error && !w->crm_id, "a write failed says why");
    }
    crm_write_results_clear(results, 3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_text(data, size);

    check_answer(body, size);
    check_update_answer(body, size);
    free(body);
    return 0;
}

/* Attio REST v2 answers, as the CRM (or anything in the middle) could
 * send them: one body read the way the record query, workspace members,
 * statuses and value history calls read theirs (attio_read_answer), as
 * the attribute list connect builds its map from (attio_map_build), and
 * as the answer to an update and to a create (attio_read_write_answer)
 * with the statuses 200, 401 and 404. Checks that every record read has an id
 * and canonical values, that a map built round-trips through the settings, and
 * that every write ends with a definite outcome. */
#include "fuzz.h"

#include "base/alloc.h"
#include "base/log.h"
#include "model/deal.h"
#include "providers/attio.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static struct connection conn = {
    .id = 1,
    .provider = "attio",
    .app_id = "token-ours",
    .active = true,
};

static void check_deal(const struct crm_deal *d)
{
    fuzz_check_read_deal(d);
    FUZZ_CHECK(!d->archived, "a record read is not gone");
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        FUZZ_CHECK(!d->values[f] || d->times[f] != CRM_TIME_UNKNOWN,
                   "a value read is not an emptied one");
        FUZZ_CHECK(!d->values[f] || d->modified >= d->times[f],
                   "a record's time is its newest value's");
        FUZZ_CHECK(!d->others[f].present, "a query read reads no history");
    }
}

static void check_answer(const char *body, size_t len)
{
    struct attio_answer a;

    if (attio_read_answer(&conn, body, len, &a) != FS_OK) {
        FUZZ_CHECK(!a.deals && !a.owners && !a.stages && !a.error,
                   "a body that is not JSON reads as nothing");
        return;
    }
    for (size_t i = 0; i < a.deal_count; i++)
        check_deal(&a.deals[i]);
    for (size_t i = 0; i < a.owner_count; i++)
        FUZZ_CHECK(a.owners[i].id && (!a.owners[i].name || *a.owners[i].name),
                   "a member read has an id, and a name or none");
    for (size_t i = 0; i < a.stage_count; i++)
        FUZZ_CHECK(a.stages[i].id && a.stages[i].pipeline_id &&
                       strcmp(a.stages[i].pipeline_id, "stage") == 0,
                   "a status read is a stage of the stage attribute");
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        const struct crm_past_value *o = &a.others[f];
        FUZZ_CHECK(!o->value || (o->present && fuzz_is_canonical(f, o->value)),
                   "an overwritten edit read holds a canonical value");
    }
    FUZZ_CHECK(a.error && *a.error, "an answer has an error text to log");
    attio_answer_clear(&a);
}

/* The body as an object's attribute list: a map built from it names an
 * attribute for every core field and our id, and reads back the same
 * from the settings it is stored as. */
static void check_map(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    struct attio_map m, back;
    char *notes = NULL, *error = NULL;

    fs_result r =
        attio_map_build("deals", FUZZ_ATTIO_OBJECT, NULL, NULL,
                        json_object_get(root, "data"), &m, &notes, &error);
    if (r != FS_OK) {
        FUZZ_CHECK(error && *error && !m.object,
                   "a refused attribute list says why and maps nothing");
    } else {
        FUZZ_CHECK(!error, "a map built has no error");
        for (int f = 0; f < DEAL_FIELD_COUNT; f++)
            FUZZ_CHECK(!attio_field_is_core(f) || m.fields[f].slug,
                       "a map syncs every core field");
        FUZZ_CHECK(m.our_id.slug && m.our_id.kind == ATTIO_KIND_TEXT,
                   "a map keeps our id in a text attribute");
        json_t *j = attio_map_to_json(&m);
        char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        FUZZ_CHECK(attio_map_from_settings(text, &back) == FS_OK,
                   "a map built reads back from its settings");
        json_t *j2 = attio_map_to_json(&back);
        FUZZ_CHECK(json_equal(j, j2), "a map reads back the same");
        json_decref(j2);
        attio_map_clear(&back);
        free(text);
        json_decref(j);
        attio_map_clear(&m);
    }
    free(notes);
    free(error);
    json_decref(root);
}

static void check_write_answer(const char *body, size_t len)
{
    /* One of each way an answer is read: done, refused credentials, a
     * refused write. */
    static const long statuses[] = {200, 401, 404};
    struct crm_write update = {
        .crm_id = "bf071e1f-6035-429d-b874-d83ea64ea13b",
        .values = {[DEAL_NAME] = "Kinetic", [DEAL_STAGE] = "won"},
        .present = {[DEAL_NAME] = true, [DEAL_STAGE] = true},
    };
    struct crm_write create = {
        .our_id = "r-1",
        .values = {[DEAL_NAME] = "Kinetic", [DEAL_POSTCODE] = "M1 1AE"},
        .present = {[DEAL_NAME] = true, [DEAL_POSTCODE] = true},
    };
    const struct crm_write *writes[] = {&update, &create};

    for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
        for (size_t i = 0; i < 2; i++) {
            const struct crm_write *w = writes[i];
            struct crm_write_result res;
            fs_result r =
                attio_read_write_answer(&conn, w, statuses[s], body, len, &res);
            if (r == FS_ERR_REMOTE) {
                FUZZ_CHECK(statuses[s] < 300 && !res.done,
                           "an unreadable answer decides nothing");
                continue;
            }
            FUZZ_CHECK(r == FS_OK || (r == res.result && statuses[s] == 401),
                       "only a refusal of our credentials stops the batch");
            fuzz_check_write_result(w, statuses[s], &res);
            crm_write_results_clear(&res, 1);
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Unreadable records are logged one by one. */
    log_set_level(LOG_ERROR);
    conn.settings = fuzz_attio_settings();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_text(data, size);

    check_answer(body, size);
    check_map(body, size);
    check_write_answer(body, size);
    free(body);
    return 0;
}

/* The simulator's seed loader (sim_seed_load_streams) on CSVs as a
 * developer might hand it: the input is sales_teams.csv, a line "==",
 * sales_pipeline.csv, and optionally another "==" line and a postcode
 * table. Checks that a load either succeeds with every seed deal holding
 * canonical values or fails naming the file and line. */
#include "fuzz.h"

#include "base/alloc.h"
#include "model/deal.h"
#include "sim_fixture.h"
#include "sim_seed.h"
#include "sim_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PART_SEP "\n==\n"

/* A stream over text, or over nothing when text is NULL. */
static FILE *stream_of(const char *text)
{
    static const char empty[] = "";

    return text ? fmemopen((void *)(uintptr_t)text, strlen(text), "r")
                : fmemopen((void *)(uintptr_t)empty, 0, "r");
}

static void check_deals(struct sim_store *store)
{
    sim_store_lock(store);
    for (size_t i = 0; i < sim_store_deal_count(store); i++) {
        const struct sim_deal *d = sim_store_deal_at(store, i);
        FUZZ_CHECK(d->seed && *d->seed, "a seed deal keeps its seed id");
        for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
            const char *v = sim_deal_value(d, f);
            FUZZ_CHECK(!v || fuzz_is_canonical(f, v),
                       "a seed deal holds canonical values");
        }
    }
    sim_store_unlock(store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    char *teams_text = fuzz_take(&in, PART_SEP);
    char *pipeline_text = fuzz_take(&in, PART_SEP);
    size_t len = 0;
    char *postcodes_text = in.size > 0 ? fuzz_rest(&in, &len) : NULL;
    struct sim_store_config config = sim_fixture_config(false);
    struct sim_store *store = sim_store_new(&config);
    FILE *teams = stream_of(teams_text);
    FILE *deals = stream_of(pipeline_text);
    FILE *postcodes = postcodes_text ? stream_of(postcodes_text) : NULL;
    char *err = NULL;

    if (!teams || !deals || (postcodes_text && !postcodes))
        abort();
    fs_result r = sim_seed_load_streams(store, teams, deals, postcodes, &err);
    if (r == FS_OK) {
        FUZZ_CHECK(!err, "a load that succeeds reports no error");
        check_deals(store);
    } else {
        FUZZ_CHECK(err && strstr(err, " line "),
                   "a load that fails names the file and line");
    }

    free(err);
    if (postcodes)
        fclose(postcodes);
    fclose(deals);
    fclose(teams);
    sim_store_free(store);
    free(postcodes_text);
    free(pipeline_text);
    free(teams_text);
    return 0;
}

/* The simulator's seed data: owners from sales_teams.csv, deals from
 * sales_pipeline.csv and, when a postcode table is given, each seed
 * deal's postcode and location, placed by a rule that depends only on the
 * deal's opportunity_id and the set of postcodes (docs/SIMULATOR.md). */
#ifndef FIELDSYNC_SIM_SIM_SEED_H
#define FIELDSYNC_SIM_SIM_SEED_H

#include "sim_store.h"

#include "base/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Most rows read from a postcode table. */
#define SIM_SEED_POSTCODES_MAX 2000000

/* Of every 100 seed deals (by the hash of their opportunity_id), this
 * many get a postcode and its location, and this many the postcode only;
 * the rest get neither. */
#define SIM_SEED_LOCATED_PERCENT 90
#define SIM_SEED_POSTCODE_ONLY_PERCENT 5

enum sim_place {
    SIM_PLACE_LOCATED,       /* postcode and its "lat,lng" */
    SIM_PLACE_POSTCODE_ONLY, /* postcode, no location */
    SIM_PLACE_NONE,          /* neither */
};

/* Where the seed deal with that opportunity_id goes among n postcodes
 * sorted by their canonical text: *index is the postcode's position
 * (unless SIM_PLACE_NONE, or n is 0, which places nothing). */
enum sim_place sim_seed_place(const char *opportunity_id, size_t n,
                              size_t *index);

/* Whether the seed deal with that opportunity_id is among the percent
 * of 100 (by a part of its hash sim_seed_place does not use) that keep
 * their placement: 100 keeps every deal, 0 none. */
bool sim_seed_in_share(const char *opportunity_id, int percent);

/* Loads dir's sales_teams.csv and sales_pipeline.csv into the store,
 * with placements from the postcodes CSV (columns postcode, latitude,
 * longitude, found by the header) when postcodes is not NULL, for the
 * placed_percent share of the deals (sim_seed_in_share). Takes the
 * store's lock. On failure *err names the file and line (caller
 * frees). */
fs_result sim_seed_load(struct sim_store *store, const char *dir,
                        const char *postcodes, int placed_percent, char **err);

/* The same from streams already open (postcodes NULL: no placements;
 * every deal keeps its placement), for data held elsewhere than in a
 * folder: tests and the fuzz target. */
fs_result sim_seed_load_streams(struct sim_store *store, FILE *teams,
                                FILE *pipeline, FILE *postcodes, char **err);

#endif

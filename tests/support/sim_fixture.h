/* A simulator store configuration for tests and fuzz targets: one
 * pipeline "p1" of four stages (s-open, s-work, s-won, s-lost, seeded from
 * Prospecting, Engaging, Won and Lost) and ids d1, o1, u1 counting up. */
#ifndef FIELDSYNC_TESTS_SIM_FIXTURE_H
#define FIELDSYNC_TESTS_SIM_FIXTURE_H

#include "sim_store.h"

#include <stdbool.h>

/* The configuration; merges mint a new id when mint. */
struct sim_store_config sim_fixture_config(bool mint);

#endif

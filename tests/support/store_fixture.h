/* A fresh SQLite store on a temporary file with one org and one active
 * HubSpot connection, for the unit tests that need a real store. */
#ifndef FIELDSYNC_TESTS_STORE_FIXTURE_H
#define FIELDSYNC_TESTS_STORE_FIXTURE_H

#include "store/store.h"

#include <stdint.h>

struct store_fixture {
    char *dir;
    char *path;
    struct store *store;
    int64_t org;
    int64_t conn;
};

/* cmocka group or test setup and teardown; *state is the fixture. */
int store_fixture_setup(void **state);
int store_fixture_teardown(void **state);

/* Removes a database file with its -wal and -shm companions. */
void store_fixture_remove_files(const char *path);

#endif

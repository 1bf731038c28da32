/* The temporary store shared by the store and reconciler unit tests. */
#include "store_fixture.h"

#include "base/alloc.h"
#include "test_env.h"

#include <stdlib.h>
#include <unistd.h>

int store_fixture_setup(void **state)
{
    struct store_fixture *fx = xcalloc(1, sizeof(*fx));
    struct connection c = {0};

    fx->dir = test_temp_dir();
    fx->path = xasprintf("%s/store.db", fx->dir);
    if (store_open(fx->path, &fx->store) != FS_OK)
        return -1;
    if (store_org_add(fx->store, "acme", &fx->org) != FS_OK)
        return -1;
    c.org_id = fx->org;
    c.provider = "hubspot";
    c.base_url = "http://127.0.0.1:1";
    c.account_id = "portal-1";
    c.app_id = "app-1";
    c.token = "tok-secret-0123456789";
    c.client_secret = "client-secret-abcdef";
    c.active = true;
    if (store_connection_add(fx->store, &c, &fx->conn) != FS_OK)
        return -1;
    *state = fx;
    return 0;
}

void store_fixture_remove_files(const char *path)
{
    const char *suffixes[] = {"", "-wal", "-shm"};

    for (size_t i = 0; i < 3; i++) {
        char *p = xasprintf("%s%s", path, suffixes[i]);
        unlink(p);
        free(p);
    }
}

int store_fixture_teardown(void **state)
{
    struct store_fixture *fx = *state;

    store_close(fx->store);
    store_fixture_remove_files(fx->path);
    rmdir(fx->dir);
    free(fx->path);
    free(fx->dir);
    free(fx);
    return 0;
}

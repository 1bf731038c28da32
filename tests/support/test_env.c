/* Test environment lookups. */
#include "test_env.h"

#include "proc.h"

#include "base/alloc.h"

#include <stdio.h>
#include <stdlib.h>

/* npm may have to fetch prism the first time. */
#define PRISM_INSTALL_MS 300000

char *test_shared_path(const char *relative)
{
    const char *shared = getenv("FS_SHARED_DIR");
    if (!shared || !*shared) {
        fprintf(stderr, "FS_SHARED_DIR is not set\n");
        abort();
    }
    return xasprintf("%s/%s", shared, relative);
}

char *test_temp_dir(void)
{
    char *dir = xstrdup("/tmp/fieldsync-test-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    return dir;
}

char *test_prism_bin(const char *log_path)
{
    const char *script = getenv("FS_PRISM_SCRIPT");
    const char *dir = getenv("FS_PRISM_DIR");

    if (!script || !dir) {
        fprintf(stderr, "FS_PRISM_SCRIPT and FS_PRISM_DIR are not set\n");
        return NULL;
    }
    const char *argv[] = {"bash", script, dir, NULL};
    pid_t pid = proc_spawn(argv, NULL, log_path);
    int code = pid > 0 ? proc_wait(pid, PRISM_INSTALL_MS) : -1;
    if (code != 0) {
        fprintf(stderr, "%s %s exited %d (see %s)\n", script, dir, code,
                log_path);
        return NULL;
    }
    return xasprintf("%s/node_modules/.bin/prism", dir);
}

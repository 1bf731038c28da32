/* Test environment lookups. */
#include "test_env.h"

#include "base/alloc.h"

#include <stdio.h>
#include <stdlib.h>

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

/* FS_FAILPOINT, read once. */
#include "base/failpoint.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAILPOINT_NAME_MAX 64

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char armed[FAILPOINT_NAME_MAX];
static long hits_left;
static atomic_long passes;

static void read_env(void)
{
    const char *env = getenv("FS_FAILPOINT");
    if (!env || !*env)
        return;
    size_t len = strcspn(env, ":");
    if (len >= sizeof(armed))
        return;
    memcpy(armed, env, len);
    armed[len] = '\0';
    hits_left = 1;
    if (env[len] == ':') {
        char *end = NULL;
        long n = strtol(env + len + 1, &end, 10);
        hits_left = end && *end == '\0' && n > 0 ? n : 1;
    }
}

void failpoint(const char *name)
{
    pthread_once(&once, read_env);
    if (!armed[0] || strcmp(name, armed) != 0)
        return;
    if (atomic_fetch_add(&passes, 1) + 1 != hits_left)
        return;
    /* Said on stderr first, so a test can tell this death from others. */
    static const char said[] = "event=failpoint_reached name=";
    if (write(STDERR_FILENO, said, sizeof(said) - 1) < 0 ||
        write(STDERR_FILENO, name, strlen(name)) < 0 ||
        write(STDERR_FILENO, "\n", 1) < 0) {
        /* Nothing to do: the kill is what matters. */
    }
    kill(getpid(), SIGKILL);
}

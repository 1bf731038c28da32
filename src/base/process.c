/* Child processes over fork/exec and waitpid. */
#include "base/process.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

fs_result process_spawn(const char *const *argv, const char *const *env_extra,
                        const char *log_path, pid_t *pid_out)
{
    int log_fd = -1;

    if (log_path) {
        log_fd =
            open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0)
            return FS_ERR_IO;
    }
    pid_t pid = fork();
    if (pid < 0) {
        if (log_fd >= 0)
            close(log_fd);
        return FS_ERR_IO;
    }
    if (pid == 0) {
        for (size_t i = 0; env_extra && env_extra[i]; i++)
            putenv(xstrdup(env_extra[i]));
        if (log_fd >= 0) {
            dup2(log_fd, STDOUT_FILENO);
            dup2(log_fd, STDERR_FILENO);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        size_t argc = 0;
        while (argv[argc])
            argc++;
        char **args = xcalloc(argc + 1, sizeof(*args));
        for (size_t i = 0; i < argc; i++)
            args[i] = xstrdup(argv[i]);
        execv(args[0], args);
        _exit(127);
    }
    if (log_fd >= 0)
        close(log_fd);
    *pid_out = pid;
    return FS_OK;
}

fs_result process_stop(pid_t pid, int sig, int64_t timeout_ms, int *status_out)
{
    int status = 0;
    int64_t deadline = clock_mono_ms() + timeout_ms;

    if (pid <= 0)
        return FS_ERR_INVALID;
    kill(pid, sig);
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return FS_ERR_NOT_FOUND;
        if (clock_mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        clock_sleep_ms(10);
    }
    if (status_out)
        *status_out = status;
    return FS_OK;
}

static char *read_small_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char data[256];

    if (!f)
        return NULL;
    size_t n = fread(data, 1, sizeof(data) - 1, f);
    fclose(f);
    data[n] = '\0';
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == ' '))
        data[--n] = '\0';
    return n ? xstrdup(data) : NULL;
}

fs_result process_wait_file(const char *path, pid_t pid, int64_t timeout_ms,
                            char **content_out)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    for (;;) {
        char *content = read_small_file(path);
        if (content) {
            *content_out = content;
            return FS_OK;
        }
        int status;
        if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid)
            return FS_ERR_UNAVAILABLE;
        if (clock_mono_ms() >= deadline)
            return FS_ERR_TIMEOUT;
        clock_sleep_ms(10);
    }
}

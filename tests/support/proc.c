/* Child process helpers for integration tests: spawn with extra
 * environment, wait for a port file, stop and reap. */
#include "proc.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The inherited environment with the extra "NAME=value" entries replacing
 * or adding to it; the array is the caller's, the strings are borrowed. */
static char **build_env(const char *const *extra)
{
    size_t n = 0, m = 0, k = 0;
    while (environ[n])
        n++;
    while (extra && extra[m])
        m++;
    char **out = xcalloc(n + m + 1, sizeof(*out));

    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < m && !replaced; j++) {
            const char *eq = strchr(extra[j], '=');
            size_t len = eq ? (size_t)(eq - extra[j]) : strlen(extra[j]);
            replaced = strncmp(environ[i], extra[j], len) == 0 &&
                       environ[i][len] == '=';
        }
        if (!replaced)
            out[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        out[k++] = (char *)(uintptr_t)extra[j];
    return out;
}

/* Everything the child needs is prepared before fork, so the child only
 * makes async-signal-safe calls (the test process has threads). */
pid_t proc_spawn(const char *const *argv, const char *const *env,
                 const char *log_path)
{
    int fd = -1;
    char **envp = build_env(env);
    char *const *args = (char *const *)(uintptr_t)argv;

    if (log_path) {
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            free(envp);
            return -1;
        }
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        signal(SIGPIPE, SIG_DFL);
        if (strchr(argv[0], '/'))
            execve(argv[0], args, envp);
        else
            execvpe(argv[0], args, envp);
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    free(envp);
    return pid;
}

static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

bool proc_alive(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

/* Reads a positive port number from the file; 0 when absent or partial. */
static int read_port(const char *path)
{
    char text[16] = {0};
    int port = 0;
    FILE *f = fopen(path, "r");

    if (!f)
        return 0;
    if (fgets(text, sizeof(text), f) && strchr(text, '\n')) {
        char *end = NULL;
        long v = strtol(text, &end, 10);
        if (end != text && v > 0 && v < 65536)
            port = (int)v;
    }
    fclose(f);
    return port;
}

int proc_wait_port_file(const char *path, pid_t pid, int64_t timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    int status;

    for (;;) {
        int port = read_port(path);
        if (port > 0)
            return port;
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            fprintf(stderr, "proc: pid %d exited with %d before writing %s\n",
                    (int)pid, status_code(status), path);
            return 0;
        }
        if (clock_mono_ms() > deadline) {
            fprintf(stderr, "proc: no port in %s after %lld ms\n", path,
                    (long long)timeout_ms);
            return 0;
        }
        clock_sleep_ms(10);
    }
}

/* Waits for the child until the deadline; returns its status code, or -2
 * when it is still running, -1 when it is not our child. */
static int reap_until(pid_t pid, int64_t deadline)
{
    int status;

    for (;;) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return status_code(status);
        if (done < 0 && errno != EINTR)
            return -1;
        if (clock_mono_ms() > deadline)
            return -2;
        clock_sleep_ms(5);
    }
}

int proc_stop(pid_t pid, int64_t timeout_ms)
{
    if (pid <= 0)
        return -1;
    if (kill(pid, SIGTERM) != 0 && errno == ESRCH)
        return reap_until(pid, clock_mono_ms());
    int code = reap_until(pid, clock_mono_ms() + timeout_ms);
    if (code != -2)
        return code;
    fprintf(stderr, "proc: pid %d ignored SIGTERM for %lld ms; killing\n",
            (int)pid, (long long)timeout_ms);
    return proc_kill(pid);
}

int proc_wait(pid_t pid, int64_t timeout_ms)
{
    if (pid <= 0)
        return -1;
    int code = reap_until(pid, clock_mono_ms() + timeout_ms);
    if (code != -2)
        return code;
    fprintf(stderr, "proc: pid %d still running after %lld ms; killing\n",
            (int)pid, (long long)timeout_ms);
    return proc_kill(pid);
}

int proc_poll(pid_t pid)
{
    return pid > 0 ? reap_until(pid, clock_mono_ms()) : -1;
}

int proc_kill(pid_t pid)
{
    int status;

    if (pid <= 0)
        return -1;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return status_code(status);
}

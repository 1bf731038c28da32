/* Starting, watching and stopping the programs under test (fieldsync,
 * crmsim) from integration tests. */
#ifndef FIELDSYNC_TESTS_PROC_H
#define FIELDSYNC_TESTS_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Starts argv[0] (a path, or a name looked up in PATH) with the arguments
 * argv (NULL-terminated). env lists extra "NAME=value" entries added to the
 * inherited environment (NULL for none). When log_path is set, the child's
 * stdout and stderr are appended to that file; otherwise they are the
 * test's own. Returns the child's pid, or -1 when fork failed. A child that
 * cannot exec exits with status 127. */
pid_t proc_spawn(const char *const *argv, const char *const *env,
                 const char *log_path);

/* Waits until path holds a port number written by the child pid (e.g.
 * crmsim --port-file). Returns the port, or 0 when timeout_ms passed or
 * the child exited first (the reason is printed to stderr). */
int proc_wait_port_file(const char *path, pid_t pid, int64_t timeout_ms);

/* True while the child has not exited (reaps it when it has). */
bool proc_alive(pid_t pid);

/* Sends SIGTERM, waits up to timeout_ms, then SIGKILLs; always reaps.
 * Returns the exit code, 128 + signal when killed by a signal, or -1 when
 * the pid was not ours or was already reaped. */
int proc_stop(pid_t pid, int64_t timeout_ms);

/* Waits up to timeout_ms for the child to exit on its own, then SIGKILLs;
 * always reaps. Returns as proc_stop. */
int proc_wait(pid_t pid, int64_t timeout_ms);

/* Reaps the child if it has exited: its exit code as proc_stop, or -2
 * while it runs. */
int proc_poll(pid_t pid);

/* SIGKILLs (a crash) and reaps; returns as proc_stop. */
int proc_kill(pid_t pid);

#endif

/* Child processes for the demo, the benchmarks and the integration tests:
 * start a program, wait for the file it writes when ready, stop it. */
#ifndef FIELDSYNC_BASE_PROCESS_H
#define FIELDSYNC_BASE_PROCESS_H

#include "base/result.h"

#include <stdint.h>
#include <sys/types.h>

/* Starts argv[0] (a path) with argv. env_extra ("NAME=value", NULL-ended,
 * may be NULL) is added to our environment. Output goes to log_path
 * (appended) when given, else to ours. */
fs_result process_spawn(const char *const *argv, const char *const *env_extra,
                        const char *log_path, pid_t *pid_out);

/* Sends sig, waits up to timeout_ms for the exit, then SIGKILLs. The exit
 * status (as from waitpid) goes to *status_out when not NULL. */
fs_result process_stop(pid_t pid, int sig, int64_t timeout_ms, int *status_out);

/* Waits until path exists and is not empty, or the process exits, or the
 * time runs out (FS_ERR_TIMEOUT). The content is returned (caller frees). */
fs_result process_wait_file(const char *path, pid_t pid, int64_t timeout_ms,
                            char **content_out);

#endif

/* Crash points for the crash tests. With FS_FAILPOINT=name[:n] in the
 * environment the process writes "event=failpoint_reached name=NAME" to
 * stderr and SIGKILLs itself the n-th time (default the first) any thread
 * passes the failpoint of that name; without it a failpoint costs one
 * load. The names are listed in docs/TESTING.md. */
#ifndef FIELDSYNC_BASE_FAILPOINT_H
#define FIELDSYNC_BASE_FAILPOINT_H

void failpoint(const char *name);

#endif

/* The one result type every fallible fieldsync function returns. */
#ifndef FIELDSYNC_BASE_RESULT_H
#define FIELDSYNC_BASE_RESULT_H

typedef enum fs_result {
    FS_OK = 0,
    FS_ERR_INVALID,      /* input malformed or out of its limits */
    FS_ERR_NOT_FOUND,    /* no such org, record, connection, ... */
    FS_ERR_CONFLICT,     /* already exists, or lost to a newer write */
    FS_ERR_AUTH,         /* missing or wrong credentials or signature */
    FS_ERR_FORBIDDEN,    /* credentials fine, but not allowed */
    FS_ERR_TOO_LARGE,    /* over a size or count limit */
    FS_ERR_STALE,        /* older than what is already known */
    FS_ERR_DB,           /* the store failed */
    FS_ERR_BUSY,         /* store locked or queue full: try again later */
    FS_ERR_IO,           /* file or socket failure */
    FS_ERR_TIMEOUT,      /* peer did not answer in time */
    FS_ERR_RATE_LIMITED, /* peer refused us for its rate limit */
    FS_ERR_REMOTE,       /* peer answered with an error */
    FS_ERR_UNAVAILABLE,  /* peer unreachable or 5xx */
} fs_result;

/* A short stable name for logs and JSON error bodies, e.g. "invalid". */
const char *fs_result_name(fs_result r);

#endif

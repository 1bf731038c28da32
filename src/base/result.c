/* Names for result codes. */
#include "base/result.h"

const char *fs_result_name(fs_result r)
{
    switch (r) {
    case FS_OK:
        return "ok";
    case FS_ERR_INVALID:
        return "invalid";
    case FS_ERR_NOT_FOUND:
        return "not_found";
    case FS_ERR_CONFLICT:
        return "conflict";
    case FS_ERR_AUTH:
        return "unauthorized";
    case FS_ERR_FORBIDDEN:
        return "forbidden";
    case FS_ERR_TOO_LARGE:
        return "too_large";
    case FS_ERR_STALE:
        return "stale";
    case FS_ERR_DB:
        return "store_error";
    case FS_ERR_BUSY:
        return "busy";
    case FS_ERR_IO:
        return "io_error";
    case FS_ERR_TIMEOUT:
        return "timeout";
    case FS_ERR_RATE_LIMITED:
        return "rate_limited";
    case FS_ERR_REMOTE:
        return "remote_error";
    case FS_ERR_UNAVAILABLE:
        return "unavailable";
    }
    return "unknown";
}

/* A growable byte buffer, always NUL-terminated for convenience. */
#ifndef FIELDSYNC_BASE_BUF_H
#define FIELDSYNC_BASE_BUF_H

#include "base/result.h"

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
/* Gives the contents to the caller (never NULL) and empties the buffer. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);

/* Reads the whole file into b (replacing what it held). FS_ERR_IO when it
 * cannot be read, FS_ERR_TOO_LARGE past max bytes. */
fs_result buf_read_file(struct buf *b, const char *path, size_t max);

#endif

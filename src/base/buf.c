/* Growable buffer. */
#include "base/buf.h"

#include "base/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
    reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void buf_append_str(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *buf_steal(struct buf *b)
{
    char *out = b->data ? b->data : xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return out;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

fs_result buf_read_file(struct buf *b, const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    char chunk[65536];
    fs_result r = FS_OK;
    size_t got;

    buf_reset(b);
    if (!f)
        return FS_ERR_IO;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b->len + got > max) {
            r = FS_ERR_TOO_LARGE;
            break;
        }
        buf_append(b, chunk, got);
    }
    if (r == FS_OK && ferror(f))
        r = FS_ERR_IO;
    fclose(f);
    if (!b->data) {
        b->data = xcalloc(1, 1);
        b->cap = 1;
    }
    return r;
}

/* Input cutting and invariant failures for the fuzz targets. */
#include "fuzz.h"

#include "base/alloc.h"
#include "model/deal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *fuzz_text(const uint8_t *data, size_t size)
{
    char *text = xmalloc(size + 1);

    if (size > 0)
        memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

char *fuzz_take(struct fuzz_input *in, const char *sep)
{
    size_t sep_len = strlen(sep);
    size_t n = in->size;
    size_t skip = 0;

    if (in->size == 0)
        return NULL;
    for (size_t i = 0; sep_len > 0 && i + sep_len <= in->size; i++) {
        if (memcmp(in->data + i, sep, sep_len) == 0) {
            n = i;
            skip = sep_len;
            break;
        }
    }
    char *part = fuzz_text(in->data, n);
    in->data += n + skip;
    in->size -= n + skip;
    return part;
}

char *fuzz_rest(struct fuzz_input *in, size_t *len)
{
    char *rest = fuzz_text(in->data, in->size);

    *len = in->size;
    in->data += in->size;
    in->size = 0;
    return rest;
}

bool fuzz_is_canonical(int field, const char *value)
{
    char *again = NULL;
    bool same =
        deal_field_canonical((enum deal_field)field, value, &again) == FS_OK &&
        again && strcmp(again, value) == 0;

    free(again);
    return same;
}

void fuzz_fail(const char *file, int line, const char *msg)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, msg);
    abort();
}

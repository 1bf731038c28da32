/* Input cutting and invariant failures for the fuzz targets. */
#include "fuzz.h"

#include "base/alloc.h"
#include "model/deal.h"
#include "providers/attio.h"

#include <jansson.h>

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

/* The attributes of the standard deals object and the custom ones the
 * README asks for, as GET /v2/objects/deals/attributes lists them. */
static const char attio_attributes[] =
    "[{\"id\":{\"attribute_id\":\"a-name\"},\"api_slug\":\"name\","
    "\"type\":\"text\"},"
    "{\"id\":{\"attribute_id\":\"" FUZZ_ATTIO_STAGE "\"},"
    "\"api_slug\":\"stage\",\"type\":\"status\"},"
    "{\"id\":{\"attribute_id\":\"a-owner\"},\"api_slug\":\"owner\","
    "\"type\":\"actor-reference\"},"
    "{\"id\":{\"attribute_id\":\"a-value\"},\"api_slug\":\"value\","
    "\"type\":\"currency\"},"
    "{\"id\":{\"attribute_id\":\"a-close\"},"
    "\"api_slug\":\"close_date\",\"type\":\"date\"},"
    "{\"id\":{\"attribute_id\":\"a-account\"},"
    "\"api_slug\":\"account_name\",\"type\":\"text\"},"
    "{\"id\":{\"attribute_id\":\"a-product\"},"
    "\"api_slug\":\"product_name\",\"type\":\"text\"},"
    "{\"id\":{\"attribute_id\":\"a-engage\"},"
    "\"api_slug\":\"engage_date\",\"type\":\"timestamp\"},"
    "{\"id\":{\"attribute_id\":\"a-location\"},"
    "\"api_slug\":\"location\",\"type\":\"location\"},"
    "{\"id\":{\"attribute_id\":\"a-our-id\"},"
    "\"api_slug\":\"fieldsync_id\",\"type\":\"text\","
    "\"is_unique\":true}]";

char *fuzz_attio_settings(void)
{
    static char *settings;
    struct attio_map m;
    char *error = NULL;

    if (settings)
        return settings;
    json_t *attrs = json_loads(attio_attributes, 0, NULL);
    if (attio_map_build("deals", FUZZ_ATTIO_OBJECT, NULL, NULL, attrs, &m, NULL,
                        &error) != FS_OK)
        fuzz_fail(__FILE__, __LINE__, error);
    json_t *j = attio_map_to_json(&m);
    settings = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    json_decref(attrs);
    attio_map_clear(&m);
    return settings;
}

void fuzz_fail(const char *file, int line, const char *msg)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, msg);
    abort();
}

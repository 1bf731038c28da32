/* Input cutting and invariant failures for the fuzz targets. */
#include "fuzz.h"

#include "base/alloc.h"
#include "model/deal.h"
#include "providers/attio.h"
#include "providers/provider.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

const char *fuzz_header_value(const char *const *names,
                              const char *const *values, int n,
                              const char *name)
{
    for (int i = 0; i < n; i++) {
        if (strcasecmp(name, names[i]) == 0)
            return values[i];
    }
    return NULL;
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

char *fuzz_pipedrive_settings(void)
{
    static char settings[] =
        "{\"custom_fields\":{"
        "\"account\":{\"key\":\"aaaa0000aaaa0000aaaa0000aaaa0000aaaa0000\","
        "\"type\":\"varchar\"},"
        "\"product\":{\"key\":\"" FUZZ_PD_PRODUCT "\",\"type\":\"enum\","
        "\"options\":{\"41\":\"GTX Pro\",\"42\":\"GTX Basic\"}},"
        "\"engage_date\":{\"key\":\"eeee0000eeee0000eeee0000eeee0000eeee0000\","
        "\"type\":\"date\"},"
        "\"postcode\":{\"key\":\"pppp0000pppp0000pppp0000pppp0000pppp0000\","
        "\"type\":\"varchar\"},"
        "\"location\":{\"key\":\"llll0000llll0000llll0000llll0000llll0000\","
        "\"type\":\"varchar\"},"
        "\"fieldsync_id\":{\"key\":\"" FUZZ_PD_OURS "\","
        "\"type\":\"varchar\"}}}";

    return settings;
}

void fuzz_check_read_deal(const struct crm_deal *d)
{
    FUZZ_CHECK(d->crm_id && *d->crm_id, "a deal read has its id");
    FUZZ_CHECK(!d->our_id || *d->our_id, "our id read is never empty");
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        const struct crm_past_value *o = &d->others[f];
        FUZZ_CHECK(!d->values[f] || fuzz_is_canonical(f, d->values[f]),
                   "a deal read holds canonical values");
        FUZZ_CHECK(!o->value || (o->present && fuzz_is_canonical(f, o->value)),
                   "an overwritten edit read holds a canonical value");
    }
}

void fuzz_check_write_result(const struct crm_write *w, long status,
                             const struct crm_write_result *res)
{
    FUZZ_CHECK(res->done, "a write answered has an outcome");
    if (res->result == FS_OK)
        FUZZ_CHECK(status >= 200 && status < 300 && res->crm_id &&
                       *res->crm_id && !res->error,
                   "a write done names its record");
    else
        FUZZ_CHECK(res->error && *res->error && !res->crm_id,
                   "a write failed says why");
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        FUZZ_CHECK(!res->defaults[f] ||
                       (!w->crm_id && !w->present[f] &&
                        fuzz_is_canonical(f, res->defaults[f])),
                   "a default is a create's unset field, canonical");
}

void fuzz_fail(const char *file, int line, const char *msg)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, msg);
    abort();
}

/* Decimal numbers between JSON values and text. */
#include "base/json_num.h"

#include "base/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

char *json_num_text(const json_t *v, int text_ok)
{
    if (json_is_integer(v))
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_real(v))
        return isfinite(json_real_value(v))
                   ? xasprintf("%.4f", json_real_value(v))
                   : NULL;
    if (text_ok && json_is_string(v))
        return xstrdup(json_string_value(v));
    return NULL;
}

json_t *json_num_of(const char *text)
{
    char *end = NULL;

    if (!text || !*text)
        return NULL;
    if (!strchr(text, '.')) {
        long long v = strtoll(text, &end, 10);
        if (end && *end == '\0')
            return json_integer(v);
    }
    double d = strtod(text, &end);
    if (!end || *end != '\0' || !isfinite(d))
        return NULL;
    return json_real(d);
}

#define OUT_SCALE 1e6 /* six decimals */

static void round_reals(json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;

    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (isfinite(d) && fabs(d) < 1e15 / OUT_SCALE)
            json_real_set(v, round(d * OUT_SCALE) / OUT_SCALE);
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, item) round_reals(item);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) round_reals(item);
    }
}

char *json_num_dumps(json_t *v, size_t flags)
{
    /* 15 significant digits hold six decimals below a billion and never
     * show the binary rounding of a decimal. */
    round_reals(v);
    return json_dumps(v, flags | JSON_REAL_PRECISION(15));
}

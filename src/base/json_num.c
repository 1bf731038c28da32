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

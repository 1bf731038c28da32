/* Small helpers the providers share (provider_util.h). */
#include "providers/provider_util.h"

#include "base/alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

char *provider_json_text(const json_t *v)
{
    if (json_is_integer(v))
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    return NULL;
}

const char *provider_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

int provider_parse_int64(const char *s, int64_t *out)
{
    const char *p = s;
    char *end = NULL;
    long long v;

    if (!s || !*s)
        return -1;
    if (*p == '-')
        p++;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 18 || p[digits] != '\0')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

void provider_result_ok(struct crm_write_result *r, const char *crm_id,
                        int64_t time)
{
    r->done = true;
    r->result = FS_OK;
    free(r->crm_id);
    r->crm_id = crm_id ? xstrdup(crm_id) : NULL;
    free(r->error);
    r->error = NULL;
    r->time = time;
}

void provider_result_fail(struct crm_write_result *r, fs_result code,
                          const char *message)
{
    r->done = true;
    r->result = code;
    free(r->crm_id);
    r->crm_id = NULL;
    free(r->error);
    r->error = xstrdup(message ? message : fs_result_name(code));
}

char *provider_url(const struct connection *conn, const char *path)
{
    const char *base = conn->base_url ? conn->base_url : "";
    size_t len = strlen(base);

    while (len > 0 && base[len - 1] == '/')
        len--;
    return xasprintf("%.*s%s", (int)len, base, path);
}

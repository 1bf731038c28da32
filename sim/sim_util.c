/* The simulators' random streams, UUIDs, paths and JSON replies. */
#include "sim_util.h"

#include "base/alloc.h"
#include "base/crypto.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t sim_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double sim_rng_unit(uint64_t *state)
{
    return (double)(sim_rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

char *sim_uuid_new(void)
{
    uint8_t b[16];
    crypto_random(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                     "%02x%02x%02x%02x%02x%02x",
                     b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                     b[10], b[11], b[12], b[13], b[14], b[15]);
}

void sim_path_split(struct sim_path *p, const char *path)
{
    char *s = p->copy = xstrdup(path);

    p->count = 0;
    while (*s && p->count < SIM_PATH_MAX_SEGMENTS) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        p->seg[p->count++] = s;
        char *slash = strchr(s, '/');
        if (!slash)
            break;
        *slash = '\0';
        s = slash + 1;
    }
}

void sim_path_free(struct sim_path *p)
{
    free(p->copy);
    p->copy = NULL;
    p->count = 0;
}

bool sim_path_is(const struct sim_path *p, size_t i, const char *s)
{
    return i < p->count && strcmp(p->seg[i], s) == 0;
}

void sim_reply(struct http_response *resp, int status, json_t *obj)
{
    char *body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                     JSON_REAL_PRECISION(10));
    json_decref(obj);
    http_response_set_body(resp, status, body);
}

bool sim_bearer_ok(const struct http_request *req, const char *token)
{
    const char *auth = http_request_header(req, "Authorization");
    const char *prefix = "Bearer ";

    if (!auth || strncasecmp(auth, prefix, strlen(prefix)) != 0)
        return false;
    auth += strlen(prefix);
    return crypto_equal(auth, strlen(auth), token, strlen(token));
}

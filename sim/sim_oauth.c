/* The simulators' OAuth state and token request forms. */
#include "sim_oauth.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/urlform.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Access tokens remembered (older ones are unknown). */
#define SIM_OAUTH_ISSUED_MAX 64
#define SIM_OAUTH_TOKEN_BYTES 24

void sim_form_parse(struct sim_form *f, const char *body, size_t len)
{
    const char *p = body;
    const char *end = body + len;

    memset(f, 0, sizeof(*f));
    while (body && p < end && f->n < SIM_FORM_MAX) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        char *name = eq ? urlform_decode(p, (size_t)(eq - p)) : NULL;
        char *value =
            eq ? urlform_decode(eq + 1, (size_t)(stop - eq - 1)) : NULL;
        if (name && value) {
            f->name[f->n] = name;
            f->value[f->n] = value;
            f->n++;
        } else {
            free(name);
            free(value);
        }
        p = stop + 1;
    }
}

const char *sim_form_get(const struct sim_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->name[i], name) == 0)
            return f->value[i];
    }
    return NULL;
}

void sim_form_free(struct sim_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->name[i]);
        free(f->value[i]);
    }
    memset(f, 0, sizeof(*f));
}

bool sim_same_secret(const char *a, const char *b)
{
    return a && b && crypto_equal(a, strlen(a), b, strlen(b));
}

struct issued_token {
    char *token;
    int64_t expires_at; /* epoch ms */
};

struct sim_oauth {
    pthread_mutex_t mu;
    int64_t ttl_s;
    bool rotate;
    char *refresh_token; /* the one that works now */
    struct issued_token issued[SIM_OAUTH_ISSUED_MAX];
    size_t next;
};

struct sim_oauth *sim_oauth_new(const struct sim_oauth_config *config)
{
    struct sim_oauth *o = xcalloc(1, sizeof(*o));

    pthread_mutex_init(&o->mu, NULL);
    o->ttl_s = config->ttl_s;
    o->rotate = config->rotate;
    o->refresh_token =
        config->refresh_token ? xstrdup(config->refresh_token) : NULL;
    return o;
}

void sim_oauth_free(struct sim_oauth *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < SIM_OAUTH_ISSUED_MAX; i++)
        free(o->issued[i].token);
    free(o->refresh_token);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

enum sim_oauth_check sim_oauth_check(struct sim_oauth *o, const char *token,
                                     int64_t *expired_ms)
{
    enum sim_oauth_check outcome = SIM_OAUTH_UNKNOWN;
    int64_t now = clock_now_ms();

    if (!o || !token)
        return SIM_OAUTH_UNKNOWN;
    pthread_mutex_lock(&o->mu);
    for (size_t i = 0; i < SIM_OAUTH_ISSUED_MAX; i++) {
        const struct issued_token *t = &o->issued[i];
        if (!sim_same_secret(token, t->token))
            continue;
        outcome = now < t->expires_at ? SIM_OAUTH_OK : SIM_OAUTH_EXPIRED;
        *expired_ms = now - t->expires_at;
        break;
    }
    pthread_mutex_unlock(&o->mu);
    return outcome;
}

const char *sim_bearer_token(const struct http_request *req)
{
    const char *auth = http_request_header(req, "Authorization");
    const char *prefix = "Bearer ";

    if (!auth || strncasecmp(auth, prefix, strlen(prefix)) != 0)
        return NULL;
    return auth + strlen(prefix);
}

static char *random_token(const char *prefix)
{
    char *hex = crypto_random_hex(SIM_OAUTH_TOKEN_BYTES);
    char *token = xasprintf("%s%s", prefix, hex);
    free(hex);
    return token;
}

bool sim_oauth_refresh(struct sim_oauth *o, const char *refresh_token,
                       struct sim_oauth_issue *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&o->mu);
    if (!sim_same_secret(refresh_token, o->refresh_token)) {
        pthread_mutex_unlock(&o->mu);
        return false;
    }
    struct issued_token *slot = &o->issued[o->next++ % SIM_OAUTH_ISSUED_MAX];
    free(slot->token);
    slot->token = random_token("sim-at-");
    slot->expires_at = clock_now_ms() + o->ttl_s * 1000;
    if (o->rotate) {
        free(o->refresh_token);
        o->refresh_token = random_token("sim-rt-");
    }
    out->access_token = xstrdup(slot->token);
    out->refresh_token = xstrdup(o->refresh_token);
    out->ttl_s = o->ttl_s;
    pthread_mutex_unlock(&o->mu);
    return true;
}

void sim_oauth_issue_clear(struct sim_oauth_issue *issue)
{
    free(issue->access_token);
    free(issue->refresh_token);
    memset(issue, 0, sizeof(*issue));
}

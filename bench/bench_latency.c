/* Latency on loopback: the round-trip floors, a change made as a CRM user
 * until the field API shows it, and a field edit until the CRM holds it.
 * One change at a time, each on a deal of its own, polled for every
 * millisecond or so. */
#include "bench.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A change not visible after this long is counted as lost. */
#define SAMPLE_TIMEOUT_MS 5000
/* Pause between polls, so the poller leaves the CPU to the programs. */
#define POLL_PAUSE_MS 1

/* Where a deal's name is read, and the value awaited. */
struct watch {
    const char *url;
    const char *const *headers;
    bool crm_shape; /* the control API's fields.name, else the API's name */
    const char *want;
};

static bool shows(const struct watch *w, const json_t *deal)
{
    const char *name =
        w->crm_shape ? bench_json_str(json_object_get(deal, "fields"), "name")
                     : bench_json_str(deal, "name");
    return name && strcmp(name, w->want) == 0;
}

/* Polls until the deal shows the value; false when the time ran out. */
static bool wait_visible(struct http_client *client, const struct watch *w)
{
    int64_t deadline = bench_now_us() + SAMPLE_TIMEOUT_MS * 1000LL;

    for (;;) {
        long status = 0;
        json_t *deal = NULL;
        bench_http(client, "GET", w->url, w->headers, NULL, &status, &deal);
        bool seen = status == 200 && shows(w, deal);
        json_decref(deal);
        if (seen)
            return true;
        if (bench_now_us() > deadline)
            return false;
        clock_sleep_ms(POLL_PAUSE_MS);
    }
}

static fs_result round_trips(struct http_client *client, const char *url,
                             const char *const *headers, int n,
                             struct bench_latency *lat)
{
    int64_t *us = xcalloc((size_t)n, sizeof(*us));
    fs_result result = FS_OK;

    for (int i = 0; i < n && result == FS_OK; i++) {
        long status = 0;
        int64_t t0 = bench_now_us();
        result = bench_http(client, "GET", url, headers, NULL, &status, NULL);
        us[i] = bench_now_us() - t0;
        if (result == FS_OK && status != 200)
            result = FS_ERR_UNAVAILABLE;
    }
    if (result == FS_OK)
        bench_latency_fill(lat, us, n, 0);
    else
        fprintf(stderr, "fsbench: GET %s failed\n", url);
    free(us);
    return result;
}

static fs_result floors(struct bench_env *env, struct http_client *client,
                        const char *const *api_headers,
                        struct bench_results *res)
{
    int n = env->opt->samples;
    char *healthz = xasprintf("%s/healthz", env->fs_url);
    char *api = xasprintf("%s/api/v1/deals/%s", env->fs_url, env->deals[0].id);
    char *sim =
        xasprintf("%s/_sim/deals/%s", env->sim_url, env->deals[0].crm_id);

    fs_result result = round_trips(client, healthz, NULL, n, &res->healthz);
    if (result == FS_OK)
        result = round_trips(client, api, api_headers, n, &res->api_get);
    if (result == FS_OK)
        result = round_trips(client, sim, NULL, n, &res->sim_get);
    res->floor_ok = result == FS_OK;
    free(healthz);
    free(api);
    free(sim);
    return result;
}

/* Changes deals[first + i] on one side, times until the other shows it. */
enum side { SIDE_CRM, SIDE_FIELD };

static fs_result change_and_watch(struct bench_env *env,
                                  struct http_client *client,
                                  const char *const *api_headers,
                                  enum side from, size_t first,
                                  struct bench_latency *lat)
{
    static const char *const sim_headers[] = {"Content-Type: application/json",
                                              NULL};
    int n = env->opt->samples;
    int64_t *us = xcalloc((size_t)n, sizeof(*us));
    int measured = 0, missed = 0;
    fs_result result = FS_OK;

    for (int i = 0; i < n && result == FS_OK; i++) {
        const struct bench_deal *deal = &env->deals[first + (size_t)i];
        char *value =
            xasprintf("bench %s %d", from == SIDE_CRM ? "crm" : "field", i);
        char *sim_url =
            xasprintf("%s/_sim/deals/%s", env->sim_url, deal->crm_id);
        char *api_url = xasprintf("%s/api/v1/deals/%s", env->fs_url, deal->id);
        json_t *body = from == SIDE_CRM
                           ? json_pack("{s:{s:s}}", "fields", "name", value)
                           : json_pack("{s:{s:s}}", "fields", "name", value);
        char *text = json_dumps(body, JSON_COMPACT);
        struct watch w = {
            .url = from == SIDE_CRM ? api_url : sim_url,
            .headers = from == SIDE_CRM ? api_headers : NULL,
            .crm_shape = from == SIDE_FIELD,
            .want = value,
        };
        long status = 0;

        int64_t t0 = bench_now_us();
        result = from == SIDE_CRM
                     ? bench_http(client, "PATCH", sim_url, sim_headers, text,
                                  &status, NULL)
                     : bench_http(client, "PATCH", api_url, api_headers, text,
                                  &status, NULL);
        if (result == FS_OK && status != 200) {
            fprintf(stderr, "fsbench: PATCH answered %ld\n", status);
            result = FS_ERR_UNAVAILABLE;
        }
        if (result == FS_OK && wait_visible(client, &w))
            us[measured++] = bench_now_us() - t0;
        else if (result == FS_OK)
            missed++;
        free(text);
        json_decref(body);
        free(api_url);
        free(sim_url);
        free(value);
    }
    bench_latency_fill(lat, us, measured, missed);
    free(us);
    return result;
}

fs_result bench_latency(struct bench_env *env, struct bench_results *res)
{
    struct http_client *client = http_client_new();
    const char *api_headers[] = {env->auth_header,
                                 "Content-Type: application/json", NULL};
    size_t samples = (size_t)env->opt->samples;

    fs_result result = bench_wait_quiet(env, client);
    if (result == FS_OK) {
        fprintf(stderr, "fsbench: round-trip floors\n");
        result = floors(env, client, api_headers, res);
    }
    if (result == FS_OK) {
        fprintf(stderr, "fsbench: CRM change to field API\n");
        result = change_and_watch(env, client, api_headers, SIDE_CRM, 0,
                                  &res->crm_to_api);
        res->crm_ok = result == FS_OK;
    }
    if (result == FS_OK)
        result = bench_wait_quiet(env, client);
    if (result == FS_OK) {
        fprintf(stderr, "fsbench: field edit to CRM\n");
        result = change_and_watch(env, client, api_headers, SIDE_FIELD, samples,
                                  &res->edit_to_crm);
        res->edit_ok = result == FS_OK;
    }
    http_client_free(client);
    return result;
}

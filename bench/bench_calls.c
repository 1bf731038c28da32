/* CRM calls per field edit: one edit on each of opt->edits deals, fired by
 * several clients at once, counted by the simulator once every edit is in
 * the CRM and the echoes have settled. The floor is one batch update per
 * HubSpot batch of 100. */
#include "bench.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long the edits may take to reach the CRM. */
#define CONVERGE_TIMEOUT_MS 60000
#define CONVERGE_POLL_MS 5

struct edit_run {
    struct bench_env *env;
    size_t first;      /* deals[first ..] are edited */
    atomic_int next;   /* next edit to fire */
    atomic_int failed; /* edits not answered 200 */
};

struct sim_counts {
    int64_t api_calls;
    json_t *by_kind; /* calls per kind of call */
};

static fs_result read_counts(struct bench_env *env, struct http_client *client,
                             struct sim_counts *out)
{
    char *url = xasprintf("%s/_sim/stats", env->sim_url);
    json_t *stats = NULL;
    long status = 0;

    fs_result result =
        bench_http(client, "GET", url, NULL, NULL, &status, &stats);
    if (result == FS_OK && status != 200)
        result = FS_ERR_UNAVAILABLE;
    if (result == FS_OK) {
        out->api_calls =
            json_integer_value(json_object_get(stats, "api_calls"));
        out->by_kind = json_incref(json_object_get(stats, "api_calls_by_kind"));
    }
    json_decref(stats);
    free(url);
    return result;
}

static char *edit_value(int i)
{
    return xasprintf("bench calls %d", i);
}

static void *editor_main(void *arg)
{
    struct edit_run *run = arg;
    struct bench_env *env = run->env;
    struct http_client *client = http_client_new();
    const char *headers[] = {env->auth_header, "Content-Type: application/json",
                             NULL};

    for (;;) {
        int i = atomic_fetch_add(&run->next, 1);
        if (i >= env->opt->edits)
            break;
        const struct bench_deal *deal = &env->deals[run->first + (size_t)i];
        char *url = xasprintf("%s/api/v1/deals/%s", env->fs_url, deal->id);
        char *value = edit_value(i);
        json_t *body = json_pack("{s:{s:s}}", "fields", "name", value);
        char *text = json_dumps(body, JSON_COMPACT);
        long status = 0;

        bench_http(client, "PATCH", url, headers, text, &status, NULL);
        if (status != 200)
            atomic_fetch_add(&run->failed, 1);
        free(text);
        json_decref(body);
        free(value);
        free(url);
    }
    http_client_free(client);
    return NULL;
}

static bool crm_holds(struct http_client *client, const char *url,
                      const char *want)
{
    json_t *deal = NULL;
    long status = 0;

    bench_http(client, "GET", url, NULL, NULL, &status, &deal);
    const char *name = bench_json_str(json_object_get(deal, "fields"), "name");
    bool held = status == 200 && name && strcmp(name, want) == 0;
    json_decref(deal);
    return held;
}

/* Waits until every edited deal shows its edit in the simulator, checking
 * each deal until it does, in order. */
static fs_result wait_converged(struct bench_env *env,
                                struct http_client *client, size_t first)
{
    int64_t deadline = clock_mono_ms() + CONVERGE_TIMEOUT_MS;
    fs_result result = FS_OK;

    for (int i = 0; i < env->opt->edits && result == FS_OK; i++) {
        const struct bench_deal *deal = &env->deals[first + (size_t)i];
        char *url = xasprintf("%s/_sim/deals/%s", env->sim_url, deal->crm_id);
        char *value = edit_value(i);

        while (!crm_holds(client, url, value)) {
            if (clock_mono_ms() > deadline) {
                fprintf(stderr, "fsbench: deal %s never reached the CRM\n",
                        deal->id);
                result = FS_ERR_TIMEOUT;
                break;
            }
            clock_sleep_ms(CONVERGE_POLL_MS);
        }
        free(value);
        free(url);
    }
    return result;
}

static fs_result fire_edits(struct edit_run *run, int threads)
{
    pthread_t *tids = xcalloc((size_t)threads, sizeof(*tids));

    for (int i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, editor_main, run);
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    if (atomic_load(&run->failed) > 0) {
        fprintf(stderr, "fsbench: %d edits were refused\n",
                atomic_load(&run->failed));
        return FS_ERR_UNAVAILABLE;
    }
    return FS_OK;
}

static int64_t kind_delta(const struct sim_counts *before,
                          const struct sim_counts *after, const char *kind)
{
    return json_integer_value(json_object_get(after->by_kind, kind)) -
           json_integer_value(json_object_get(before->by_kind, kind));
}

/* Names every kind of call the edits cost, so a surplus over the batch
 * updates can be traced. */
static void print_kinds(const struct sim_counts *before,
                        const struct sim_counts *after)
{
    const char *kind;
    json_t *value;

    fprintf(stderr, "fsbench: calls by kind:");
    json_object_foreach(after->by_kind, kind, value)
    {
        int64_t delta = kind_delta(before, after, kind);
        if (delta != 0)
            fprintf(stderr, " %s %lld", kind, (long long)delta);
    }
    fprintf(stderr, "\n");
}

fs_result bench_calls(struct bench_env *env, struct bench_results *res)
{
    const struct bench_options *opt = env->opt;
    struct http_client *client = http_client_new();
    struct edit_run run = {
        .env = env,
        .first = 2 * (size_t)opt->samples,
    };
    struct sim_counts before = {0}, after = {0};

    fprintf(stderr, "fsbench: CRM calls for %d edits\n", opt->edits);
    fs_result result = bench_wait_quiet(env, client);
    if (result == FS_OK)
        result = read_counts(env, client, &before);

    int64_t started = bench_now_us();
    if (result == FS_OK)
        result = fire_edits(&run, opt->threads);
    res->edits_seconds = (double)(bench_now_us() - started) / 1e6;
    if (result == FS_OK)
        result = wait_converged(env, client, run.first);
    res->converge_seconds = (double)(bench_now_us() - started) / 1e6;

    /* Counted once the echoes are back too, so late calls are not lost. */
    if (result == FS_OK)
        result = bench_wait_quiet(env, client);
    if (result == FS_OK)
        result = read_counts(env, client, &after);
    if (result == FS_OK) {
        res->edits = opt->edits;
        res->api_calls = after.api_calls - before.api_calls;
        res->batch_update_calls = kind_delta(&before, &after, "batch_update");
        res->create_calls = kind_delta(&before, &after, "create") +
                            kind_delta(&before, &after, "batch_create");
        res->record_writes = kind_delta(&before, &after, "update") +
                             kind_delta(&before, &after, "assert");
        res->calls_ok = true;
        print_kinds(&before, &after);
    }
    json_decref(before.by_kind);
    json_decref(after.by_kind);
    http_client_free(client);
    return result;
}

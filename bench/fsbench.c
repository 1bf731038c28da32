/* fsbench: the figures of `make bench`, each printed beside a baseline
 * measured in the same run, with the target it is held to. */
#include "bench.h"

#include "base/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Targets from the project's performance goals. */
#define TARGET_INGEST_RATE 20000.0
#define TARGET_INGEST_RATIO 0.5
#define TARGET_P99_MS 100.0
#define TARGET_CALLS_PER_1000 11.0
/* Pipedrive writes one deal a call: the floor is a call per edited deal;
 * a retried or re-pushed write is 1 % more at most. */
#define TARGET_PD_CALLS_PER_1000 1010.0
/* Attio writes one record a call: the floor is 1,000, plus the reads of
 * the few changes that were not our own. */
#define TARGET_ATTIO_CALLS_PER_1000 1050.0
#define TARGET_LOOKUP_RATE 200000.0
#define TARGET_REASSIGN_S 10.0
/* HubSpot's batch update takes 100 records a call. */
#define PUSH_BATCH 100

/* Exit codes: every target met, a target missed, a measurement failed. */
#define EXIT_MET 0
#define EXIT_MISSED 1
#define EXIT_FAILED 2

static void usage(FILE *out)
{
    fputs("usage: fsbench --fieldsync PATH --crmsim PATH --data DIR "
          "[options]\n"
          "\n"
          "Runs crmsim and fieldsync on loopback and measures webhook\n"
          "ingest, CRM-to-API and edit-to-CRM latency, and CRM calls per\n"
          "1,000 field edits, each beside a baseline from the same run.\n"
          "\n"
          "options:\n"
          "  --fieldsync PATH      the fieldsync binary\n"
          "  --crmsim PATH         the crmsim binary\n"
          "  --data DIR            folder with the pipeline CSV files\n"
          "  --work-dir DIR        databases and logs (default: beside\n"
          "                        the fieldsync binary, fsbench.run)\n"
          "  --threads N           concurrent clients (default 8)\n"
          "  --ingest-events N     webhook events to post (default 200000)\n"
          "  --ingest-ms N         stop posting after this long (15000)\n"
          "  --samples N           samples per latency figure (200)\n"
          "  --edits N             edits of the call count figure (1000)\n"
          "  --rate-10s N          CRM calls per 10 s budget (1000)\n"
          "  --keep                keep the work folder afterwards\n"
          "  --geo DIR             folder with the UK postcode files\n"
          "                        (default DATA/../geo_uk)\n"
          "  --territory-deals N   deals of the reassignment figure\n"
          "                        (default 1000000)\n"
          "  --help                show this help\n"
          "\n"
          "Exit status: 0 every target met, 1 a target missed, 2 a\n"
          "measurement could not be made.\n",
          out);
}

static bool parse_int(const char *name, const char *text, int64_t lo,
                      int64_t hi, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);

    if (end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "fsbench: --%s wants a number in %lld..%lld\n", name,
                (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

/* Fills opt from argv; returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct bench_options *opt)
{
    static const struct option longopts[] = {
        {"fieldsync", required_argument, NULL, 'f'},
        {"crmsim", required_argument, NULL, 'c'},
        {"data", required_argument, NULL, 'd'},
        {"work-dir", required_argument, NULL, 'w'},
        {"threads", required_argument, NULL, 't'},
        {"ingest-events", required_argument, NULL, 'e'},
        {"ingest-ms", required_argument, NULL, 'm'},
        {"samples", required_argument, NULL, 's'},
        {"edits", required_argument, NULL, 'n'},
        {"rate-10s", required_argument, NULL, 'r'},
        {"keep", no_argument, NULL, 'k'},
        {"geo", required_argument, NULL, 'g'},
        {"territory-deals", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t v = 0;
    int c;

    *opt = (struct bench_options){
        .threads = 8,
        .ingest_events = 200000,
        .ingest_ms = 15000,
        .samples = 200,
        .edits = 1000,
        .rate_10s = 1000,
        .territory_deals = 1000000,
    };
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'f':
            opt->fieldsync_bin = optarg;
            break;
        case 'c':
            opt->crmsim_bin = optarg;
            break;
        case 'd':
            opt->data_dir = optarg;
            break;
        case 'w':
            opt->work_dir = optarg;
            break;
        case 't':
            ok = parse_int("threads", optarg, 1, 64, &v);
            opt->threads = (int)v;
            break;
        case 'e':
            ok = parse_int("ingest-events", optarg, 100, 10000000, &v);
            opt->ingest_events = v;
            break;
        case 'm':
            ok = parse_int("ingest-ms", optarg, 100, 600000, &v);
            opt->ingest_ms = v;
            break;
        case 's':
            ok = parse_int("samples", optarg, 10, 1000, &v);
            opt->samples = (int)v;
            break;
        case 'n':
            ok = parse_int("edits", optarg, 100, 2000, &v);
            opt->edits = (int)v;
            break;
        case 'r':
            ok = parse_int("rate-10s", optarg, 10, 1000000, &v);
            opt->rate_10s = (int)v;
            break;
        case 'k':
            opt->keep = true;
            break;
        case 'g':
            opt->geo_dir = optarg;
            break;
        case 'T':
            ok = parse_int("territory-deals", optarg, 1000, 10000000, &v);
            opt->territory_deals = v;
            break;
        case 'h':
            usage(stdout);
            return EXIT_MET;
        default:
            usage(stderr);
            return EXIT_FAILED;
        }
        if (!ok)
            return EXIT_FAILED;
    }
    if (optind < argc || !opt->fieldsync_bin || !opt->crmsim_bin ||
        !opt->data_dir) {
        usage(stderr);
        return EXIT_FAILED;
    }
    return -1;
}

static const char *yes_no(bool measured, bool met)
{
    if (!measured)
        return "n/a";
    return met ? "yes" : "NO";
}

static void print_row(const char *figure, const char *value,
                      const char *baseline, const char *target, const char *met)
{
    printf("%-30s %14s  %-30s %-20s %s\n", figure, value, baseline, target,
           met);
}

/* One latency figure as two rows, p50 and p99; only p99 has a target. */
static bool print_latency(const char *figure, bool measured,
                          const struct bench_latency *lat,
                          const char *base_name,
                          const struct bench_latency *base)
{
    char name[64], value[32], baseline[64], met_note[32];
    bool met = measured && lat->missed == 0 && lat->p99_ms < TARGET_P99_MS;

    snprintf(name, sizeof(name), "%s p50", figure);
    snprintf(value, sizeof(value), "%.1f ms", lat->p50_ms);
    snprintf(baseline, sizeof(baseline), "%s p50 %.2f ms", base_name,
             base->p50_ms);
    print_row(name, measured ? value : "-", baseline, "", "");

    snprintf(name, sizeof(name), "%s p99", figure);
    snprintf(value, sizeof(value), "%.1f ms", lat->p99_ms);
    snprintf(baseline, sizeof(baseline), "%s p99 %.2f ms", base_name,
             base->p99_ms);
    snprintf(met_note, sizeof(met_note), "%s", yes_no(measured, met));
    if (measured && lat->missed > 0)
        snprintf(met_note, sizeof(met_note), "NO (%d lost)", lat->missed);
    print_row(name, measured ? value : "-", baseline, "< 100 ms", met_note);
    return met;
}

/* The territory rows; returns how many targets were missed. */
/* The calls row of a CRM that writes a record a call; true when met. */
static bool print_record_calls(const char *crm,
                               const struct bench_record_calls *rc, int edits,
                               double target)
{
    char figure[64], value[32], limit[32];
    double per_1000 = edits > 0 ? (double)rc->api_calls * 1000.0 / edits : 0;
    bool met = rc->ok && per_1000 <= target;

    snprintf(figure, sizeof(figure), "%s calls / 1,000 edits", crm);
    snprintf(value, sizeof(value), "%.1f", per_1000);
    snprintf(limit, sizeof(limit), "<= %.0f", target);
    print_row(figure, rc->ok ? value : "-", "floor 1000 (a PATCH a deal)",
              limit, yes_no(rc->ok, met));
    return met;
}

static int print_territory(const struct bench_options *opt,
                           const struct bench_results *res)
{
    char value[32], baseline[64], name[64];
    int missed = 0;

    bool met = res->lookups_ok && res->lookup_rate >= TARGET_LOOKUP_RATE;
    snprintf(value, sizeof(value), "%.0f /s", res->lookup_rate);
    snprintf(baseline, sizeof(baseline), "GEOS, no index %.0f /s (x%.0f)",
             res->linear_rate,
             res->linear_rate > 0 ? res->lookup_rate / res->linear_rate : 0);
    print_row("deals located (2,736 polys)", res->lookups_ok ? value : "-",
              baseline, ">= 200000/s, 1 core", yes_no(res->lookups_ok, met));
    missed += !met;

    snprintf(name, sizeof(name), "preview, %lldk deals move",
             (long long)(res->reassign_deals / 1000));
    snprintf(value, sizeof(value), "%.2f s", res->reassign_preview_s);
    print_row(name, res->reassign_ok ? value : "-", "", "", "");
    met = res->reassign_ok && res->reassign_apply_s < TARGET_REASSIGN_S;
    snprintf(name, sizeof(name), "apply, %lldk deals move",
             (long long)(res->reassign_deals / 1000));
    snprintf(value, sizeof(value), "%.2f s", res->reassign_apply_s);
    snprintf(baseline, sizeof(baseline), "raw SQLite owner writes %.2f s",
             res->reassign_raw_s);
    print_row(name, res->reassign_ok ? value : "-", baseline, "< 10 s",
              yes_no(res->reassign_ok, met));
    missed += !met;

    if (res->lookups_ok)
        printf("\nterritory lookup: %zu points of the M area, %lld placed, "
               "over %zu district polygons (index built in %.0f ms)\n",
               res->lookup_points, (long long)res->lookup_found,
               res->lookup_polygons, res->lookup_build_ms);
    if (res->reassign_ok) {
        size_t calls = (res->reassign_moves + PUSH_BATCH - 1) / PUSH_BATCH;
        printf("reassignment: %lld deals inserted in %.1f s; first placement "
               "moved %zu in %.2f s; the measured change moved %zu "
               "(preview and apply agree)\n",
               (long long)res->reassign_deals, res->reassign_insert_s,
               res->reassign_first_moves, res->reassign_first_s,
               res->reassign_moves);
        printf("CRM pushes that follow: %zu batch updates of %d; at the "
               "bench's %d calls/10 s they take at least %.0f s, and HubSpot's "
               "default 100 calls/10 s %.0f s: the pusher sends them through "
               "the rate governor, never faster (computed from the batch "
               "size, not measured here)\n",
               calls, PUSH_BATCH, opt->rate_10s,
               (double)calls * 10.0 / opt->rate_10s, (double)calls / 10.0);
    }
    return missed;
}

/* Prints the table; returns how many targets were missed. */
static int print_report(const struct bench_options *opt,
                        const struct bench_results *res)
{
    char value[32], baseline[64];
    int missed = 0;

    printf("\nfsbench: %d clients, %d latency samples, %d edits, CRM budget "
           "%d calls/10 s\n\n",
           opt->threads, opt->samples, opt->edits, opt->rate_10s);
    print_row("figure", "value", "baseline (same run)", "target", "met");
    print_row("------", "-----", "-------------------", "------", "---");

    double ratio =
        res->baseline_rate > 0 ? res->ingest_rate / res->baseline_rate : 0;
    bool measured = res->ingest_ok && res->baseline_ok;
    bool met = measured && res->ingest_rate >= TARGET_INGEST_RATE &&
               ratio >= TARGET_INGEST_RATIO &&
               res->inbox_rows >= res->ingest_events;
    snprintf(value, sizeof(value), "%.0f /s", res->ingest_rate);
    snprintf(baseline, sizeof(baseline), "SQLite %.0f /s (x%.2f)",
             res->baseline_rate, ratio);
    print_row("webhook events accepted", measured ? value : "-", baseline,
              ">= 20000/s, >= x0.5", yes_no(measured, met));
    missed += !met;

    missed += !print_latency("CRM change to API", res->crm_ok && res->floor_ok,
                             &res->crm_to_api, "GET /healthz", &res->healthz);
    missed += !print_latency("field edit to CRM", res->edit_ok && res->floor_ok,
                             &res->edit_to_crm, "sim GET", &res->sim_get);

    double per_1000 =
        res->edits > 0 ? (double)res->api_calls * 1000.0 / res->edits : 0;
    met = res->calls_ok && per_1000 <= TARGET_CALLS_PER_1000;
    snprintf(value, sizeof(value), "%.1f", per_1000);
    print_row("HubSpot calls / 1,000 edits", res->calls_ok ? value : "-",
              "floor 10 (100 per batch)", "<= 11", yes_no(res->calls_ok, met));
    missed += !met;

    missed += !print_record_calls("Attio", &res->attio, res->edits,
                                  TARGET_ATTIO_CALLS_PER_1000);
    missed += !print_record_calls("Pipedrive", &res->pipedrive, res->edits,
                                  TARGET_PD_CALLS_PER_1000);
    missed += print_territory(opt, res);

    printf("\ningest: %lld events acknowledged in %.2f s (%lld refused), "
           "%lld in the inbox; baseline %lld rows in %.2f s\n",
           (long long)res->ingest_events, res->ingest_seconds,
           (long long)res->ingest_refused, (long long)res->inbox_rows,
           (long long)res->baseline_rows, res->baseline_seconds);
    printf("API GET of one deal: p50 %.2f ms, p99 %.2f ms\n",
           res->api_get.p50_ms, res->api_get.p99_ms);
    printf("calls: %lld batch updates, %lld creates, %lld in all for %d "
           "edits fired in %.2f s, all in the CRM after %.2f s\n",
           (long long)res->batch_update_calls, (long long)res->create_calls,
           (long long)res->api_calls, res->edits, res->edits_seconds,
           res->converge_seconds);
    printf("attio: %lld writes, %lld calls in all for %d edits, all in the "
           "CRM after %.2f s\n",
           (long long)res->attio.writes, (long long)res->attio.api_calls,
           res->edits, res->attio.converge_seconds);
    printf("pipedrive: %lld writes, %lld calls in all for %d edits, all in "
           "the CRM after %.2f s\n",
           (long long)res->pipedrive.writes,
           (long long)res->pipedrive.api_calls, res->edits,
           res->pipedrive.converge_seconds);
    return missed;
}

/* The call count again against another CRM's simulator (attio,
 * pipedrive), in an environment of its own. */
static fs_result run_record_calls(const struct bench_options *opt,
                                  const char *crm,
                                  struct bench_record_calls *out)
{
    struct bench_env env;
    struct bench_results r = {0};

    fs_result result = bench_env_setup(&env, opt, crm);
    if (result == FS_OK)
        result = bench_fieldsync_start(&env, env.db_path, env.fs_port,
                                       "fieldsync", &env.fs_pid, &env.fs_url);
    if (result == FS_OK)
        result = bench_calls(&env, &r);
    if (result == FS_OK) {
        out->ok = r.calls_ok;
        out->api_calls = r.api_calls;
        out->writes = r.record_writes;
        out->converge_seconds = r.converge_seconds;
    }
    bench_env_teardown(&env, result == FS_OK && !opt->keep);
    return result;
}

static fs_result run(struct bench_env *env, struct bench_results *res)
{
    fs_result result = bench_ingest(env, res);
    if (result != FS_OK)
        return result;

    result = bench_fieldsync_start(env, env->db_path, env->fs_port, "fieldsync",
                                   &env->fs_pid, &env->fs_url);
    if (result == FS_OK)
        result = bench_latency(env, res);
    if (result == FS_OK)
        result = bench_calls(env, res);
    /* Last: a million deals written must not load the figures above. */
    if (result == FS_OK)
        result = bench_territory(env->opt, env->work_dir, res);
    return result;
}

int main(int argc, char **argv)
{
    struct bench_options opt;
    struct bench_env env;
    struct bench_results res = {0};

    int status = parse_options(argc, argv, &opt);
    if (status >= 0)
        return status;
    log_set_level(LOG_WARN);

    fs_result result = bench_env_setup(&env, &opt, "hubspot");
    if (result == FS_OK)
        result = run(&env, &res);
    bench_env_teardown(&env, result == FS_OK && !opt.keep);
    if (result == FS_OK)
        result = run_record_calls(&opt, "attio", &res.attio);
    if (result == FS_OK)
        result = run_record_calls(&opt, "pipedrive", &res.pipedrive);
    if (result != FS_OK)
        fprintf(stderr, "fsbench: stopped: %s\n", fs_result_name(result));

    int missed = print_report(&opt, &res);
    if (result != FS_OK)
        return EXIT_FAILED;
    printf("\n%s\n", missed ? "some targets missed" : "all targets met");
    return missed ? EXIT_MISSED : EXIT_MET;
}

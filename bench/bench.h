/* Shared by the parts of fsbench: the programs under test running on
 * loopback, small HTTP and JSON helpers, and latency statistics. */
#ifndef FIELDSYNC_BENCH_BENCH_H
#define FIELDSYNC_BENCH_BENCH_H

#include "base/result.h"
#include "net/http_client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The fixed identity of the simulated HubSpot account. */
#define BENCH_CLIENT_SECRET "fsbench-client-secret"
#define BENCH_TOKEN "fsbench-api-token"
#define BENCH_APP_ID "7001"
#define BENCH_PORTAL_ID "62001"
#define BENCH_ORG "bench"
/* The simulated Pipedrive company's. */
#define BENCH_PD_COMPANY "62001"
#define BENCH_PD_USER "7001"
#define BENCH_PD_HOOK_USER "fsbench"

/* Longest one HTTP call of the bench may take. */
#define BENCH_HTTP_TIMEOUT_MS 10000

struct bench_options {
    const char *fieldsync_bin;
    const char *crmsim_bin;
    const char *data_dir;
    const char *work_dir;    /* NULL: beside the fieldsync binary */
    int threads;             /* webhook clients and edit clients */
    int64_t ingest_events;   /* events to post, at most */
    int64_t ingest_ms;       /* posting stops after this long anyway */
    int samples;             /* per latency measurement */
    int edits;               /* edits of the call-count measurement */
    int rate_10s;            /* CRM budget, simulator and connection */
    bool keep;               /* leave the work folder behind */
    const char *geo_dir;     /* NULL: DATA/../geo_uk */
    int64_t territory_deals; /* deals of the reassignment figure */
};

/* A deal as both sides name it. */
struct bench_deal {
    char *id;     /* fieldsync record id */
    char *crm_id; /* HubSpot deal id */
};

struct bench_env {
    const struct bench_options *opt;
    const char *crm; /* "hubspot", "attio" or "pipedrive" */
    char *work_dir;
    char *db_path;        /* the database of the main fieldsync */
    char *ingest_db_path; /* a copy for the ingest measurement */
    uint16_t fs_port;     /* picked before the simulator starts */

    pid_t sim_pid;
    char *sim_url; /* "http://127.0.0.1:port" */

    pid_t fs_pid;
    char *fs_url;

    char *auth_header; /* "Authorization: Bearer fs_..." */
    struct bench_deal *deals;
    size_t n_deals;
};

/* Latency samples reduced to what the report prints. */
struct bench_latency {
    double p50_ms;
    double p99_ms;
    double max_ms;
    int samples; /* measured */
    int missed;  /* timed out: not in the percentiles */
};

/* The calls figure against a CRM that writes a record a call. */
struct bench_record_calls {
    bool ok;
    int64_t api_calls;
    int64_t writes; /* updates and asserts */
    double converge_seconds;
};

struct bench_results {
    bool ingest_ok;
    int64_t ingest_events;  /* acknowledged 2xx */
    int64_t ingest_refused; /* in deliveries answered otherwise */
    double ingest_seconds;
    double ingest_rate;
    int64_t inbox_rows; /* rows found in the inbox afterwards */
    bool baseline_ok;
    int64_t baseline_rows;
    double baseline_seconds;
    double baseline_rate;

    bool floor_ok;
    struct bench_latency healthz;
    struct bench_latency api_get;
    bool crm_ok;
    struct bench_latency crm_to_api;
    bool edit_ok;
    struct bench_latency sim_get;
    struct bench_latency edit_to_crm;

    bool calls_ok;
    int edits;
    int64_t api_calls;
    int64_t batch_update_calls;
    int64_t create_calls;
    double edits_seconds;    /* firing the edits */
    double converge_seconds; /* first edit to all in the CRM */
    int64_t record_writes;   /* updates and asserts, a record a call */
    /* The same edits against Attio and Pipedrive, which write a record a
     * call. */
    struct bench_record_calls attio;
    struct bench_record_calls pipedrive;

    bool lookups_ok;
    size_t lookup_polygons;
    size_t lookup_points;
    int64_t lookup_found;
    double lookup_build_ms;
    double lookup_rate; /* STRtree + prepared */
    double linear_rate; /* plain GEOS over every polygon */
    bool reassign_ok;
    int64_t reassign_deals;
    double reassign_insert_s;
    double reassign_first_s;
    size_t reassign_first_moves;
    double reassign_preview_s;
    double reassign_apply_s;
    size_t reassign_moves;
    double reassign_raw_s; /* raw SQLite writes of as many owners */
};

/* ---- bench_env.c ---- */

/* Starts the simulator of crm ("hubspot", "attio", "pipedrive"), builds
 * the database (org, connection, admin, import) and, for HubSpot, its
 * copy for the ingest run. Logs go to the work folder (crm's own under
 * it). */
fs_result bench_env_setup(struct bench_env *env,
                          const struct bench_options *opt, const char *crm);
/* Starts `fieldsync serve` on db_path and port (0: any); fills *pid and
 * *url (caller frees). */
fs_result bench_fieldsync_start(struct bench_env *env, const char *db_path,
                                uint16_t port, const char *name, pid_t *pid,
                                char **url);
void bench_fieldsync_stop(pid_t pid);
/* A consistent copy of a database (VACUUM INTO), so webhook ingest and its
 * baseline each start from the imported state without slowing the
 * latency runs. */
fs_result bench_copy_db(const char *from, const char *to);
/* Stops what is running and removes the work folder unless kept. */
void bench_env_teardown(struct bench_env *env, bool remove_files);

/* Sends a request; *status gets the HTTP status (0 for none) and *json,
 * when not NULL, the parsed body (NULL if not JSON; caller decrefs). */
fs_result bench_http(struct http_client *client, const char *method,
                     const char *url, const char *const *headers,
                     const char *body, long *status, json_t **json);
/* Waits until the simulator has delivered every webhook and fieldsync has
 * nothing left to push, so one measurement does not load the next. */
fs_result bench_wait_quiet(struct bench_env *env, struct http_client *client);
/* A string member of obj, or NULL. */
const char *bench_json_str(const json_t *obj, const char *key);
/* Wall time on the monotonic clock, microseconds. */
int64_t bench_now_us(void);

/* Sorts the microsecond samples and fills the percentiles. */
void bench_latency_fill(struct bench_latency *lat, int64_t *us, int n,
                        int missed);

/* ---- bench_ingest.c ---- */

/* Webhook ingest against a fieldsync of its own, then the SQLite
 * baseline with as many rows. */
fs_result bench_ingest(struct bench_env *env, struct bench_results *res);

/* ---- bench_latency.c ---- */

/* The loopback floor, CRM change to API, and field edit to CRM write. */
fs_result bench_latency(struct bench_env *env, struct bench_results *res);

/* ---- bench_calls.c ---- */

/* CRM calls per opt->edits field edits over as many deals. */
fs_result bench_calls(struct bench_env *env, struct bench_results *res);

/* ---- bench_territory.c ---- */

/* Territory lookups per second and a reassignment of every deal, in a
 * database of its own under work_dir. */
fs_result bench_territory(const struct bench_options *opt, const char *work_dir,
                          struct bench_results *res);

#endif

/* What the `import` and `demo` commands share: import progress on stderr,
 * JSON calls over HTTP, and the demo's state passed between its steps. */
#ifndef FIELDSYNC_MAIN_DEMO_INTERNAL_H
#define FIELDSYNC_MAIN_DEMO_INTERNAL_H

#include "base/result.h"
#include "net/http_client.h"

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The command entry points main dispatches to. */
int cli_import(int argc, char **argv);
int demo_main(int argc, char **argv);

/* ---- import progress ---- */

/* Redraws one line on a terminal, else prints a line per thousand. */
struct import_progress {
    bool tty;
    bool drawn;
    bool show_seconds;
    size_t lines_printed;
    int64_t started_ms;
};

void import_progress_init(struct import_progress *p, bool show_seconds);
/* An import_on_progress callback; ctx is the import_progress. */
void import_progress_on_page(void *ctx, size_t deals_read);
/* Ends the redrawn line, if any. */
void import_progress_finish(struct import_progress *p);
/* Seconds since init. */
double import_progress_seconds(const struct import_progress *p);

/* ---- HTTP with JSON ---- */

#define DEMO_HTTP_TIMEOUT_MS 10000

/* Sends body (may be NULL; not consumed) with the bearer token (may be
 * NULL). FS_OK when an answer came: *status_out holds its status and
 * *reply_out (may be NULL) its parsed JSON, or NULL when not JSON. */
fs_result demo_http_json(struct http_client *http, const char *method,
                         const char *url, const char *token, json_t *body,
                         long *status_out, json_t **reply_out);

/* ---- the demo's state ---- */

/* The connection's Attio budgets: calls per second. */
#define DEMO_ATTIO_READS 100
#define DEMO_ATTIO_WRITES 25

/* The CRM a demo runs against and the connection's budget there: calls
 * per rolling window (Attio: reads, its writes are DEMO_ATTIO_WRITES),
 * and per day (calls, or Pipedrive's tokens; 0: no daily budget). */
struct demo_crm {
    const char *name;  /* crmsim's and connect's word */
    const char *label; /* for the report */
    int rate_window;
    int64_t window_ms;
    int rate_daily;
};

/* The CRM named name ("hubspot", "attio", "pipedrive"), or NULL. */
const struct demo_crm *demo_crm_by_name(const char *name);

struct demo_options {
    const struct demo_crm *crm;
    const char *data_dir;
    const char *workdir;
    const char *crmsim;
    const char *listen;
    bool once;
    long edits;
    uint64_t seed;
};

/* A deal as the demo knows it from the import. */
struct demo_deal {
    char *id;     /* our record id */
    char *crm_id; /* the simulator's id */
    int rep;      /* index into reps of its owner, -1 when none */
};

struct demo_rep {
    char *owner_id;
    char *name;
    char *token;
};

/* The same field edited on both sides near-simultaneously: values are
 * canonical, times those each side stamped its edit with. */
struct demo_conflict {
    size_t deal; /* index into deals */
    int field;
    char *local_value;
    char *crm_value;
    int64_t local_time;
    int64_t crm_time;
};

/* An edit's trip to the other side taking longer than this (a dropped
 * webhook waits for the backstop, a push for the rate budget) is counted
 * apart rather than waited for. */
#define DEMO_TRIP_WAIT_MS 3000

/* Samples of one propagation direction, in microseconds. */
struct demo_samples {
    pthread_mutex_t lock;
    int64_t *us;
    size_t n;
    size_t cap;
    size_t timed_out;
};

/* What the territory step did, for the report. */
struct demo_territories {
    bool ran;
    size_t count;       /* territories imported */
    size_t repairs;     /* polygons the import repaired */
    size_t deals;       /* deals looked at */
    size_t placed;      /* in a territory */
    size_t unplaced;    /* in none */
    size_t first_moves; /* owners the first import set */
    size_t block_districts;
    char from[128];
    char to[128];
    size_t block_moves;
    bool preview_equal;
    size_t block_inside; /* moved deals whose point is in the block */
    size_t block_in_crm; /* moved deals the CRM shows with the new owner */
    double seconds;
};

struct demo {
    struct demo_options opt;
    unsigned synced; /* the deal fields the connection syncs */
    char *workdir;
    char *db_path;
    char *api_base; /* http://127.0.0.1:<port> */
    char *sim_base;
    struct app *app;
    pid_t sim_pid;
    int64_t org_id;
    int64_t conn_id;

    char *admin_token;
    struct demo_rep *reps;
    size_t n_reps;
    struct demo_deal *deals;
    size_t n_deals;
    char **stages;     /* the CRM's stage ids */
    char **stage_keys; /* the org's stage each maps to, for the field API */
    size_t n_stages;

    size_t imported;
    double import_seconds;
    double day_seconds;
    double converge_seconds;

    atomic_long edits_field;
    atomic_long edits_crm;
    atomic_long creates;
    atomic_long conflicts;
    atomic_long failed_calls;
    struct demo_samples to_crm;
    struct demo_samples to_field;

    struct demo_conflict *conflict_log;
    size_t n_conflict_log;
    size_t won_local;   /* conflicts the field edit won, as it should */
    size_t won_crm;     /* conflicts the CRM edit won, as it should */
    size_t won_earlier; /* conflicts where the earlier edit won: wrong */
    size_t deals_compared;
    bool settled;
    struct demo_territories territories;
    json_t *sim_stats; /* the simulator's counters after convergence */

    /* Set by the signal thread on SIGINT or SIGTERM. */
    atomic_bool stop;
};

/* Step 2: the working day of edits on both sides, with faults on. */
fs_result demo_run_day(struct demo *d);
/* Turns the simulator's webhook faults on (the day's mix) or off. */
fs_result demo_set_faults(struct demo *d, struct http_client *http, bool on);
/* Step 2b: territories from the real district polygons, and a block of
 * districts moved (src/main/demo_territory.c); skipped without the
 * geo_uk files beside the pipeline. */
fs_result demo_territories(struct demo *d);
void demo_report_territories(const struct demo *d);
/* A file of the shared geo_uk folder beside the pipeline's; the caller
 * frees. */
char *demo_geo_path(const struct demo *d, const char *file);

/* Step 3: waits for the sync to settle and compares both sides; the
 * differences found go to *differences_out. */
fs_result demo_converge(struct demo *d, size_t *differences_out);
/* Step 4: the report on stdout. */
void demo_report(struct demo *d, size_t differences);

void demo_samples_add(struct demo_samples *s, int64_t us);
/* Counts an edit whose propagation was not seen in time. */
void demo_samples_timed_out(struct demo_samples *s);
/* The q-quantile (0..1) of the samples in ms; 0 when none. */
double demo_samples_quantile(struct demo_samples *s, double q);

/* Sleeps up to ms, returning early (false) when a stop was asked for. */
bool demo_sleep(struct demo *d, int64_t ms);

/* The index into reps of the rep with that CRM owner id, or -1. */
int demo_rep_of(const struct demo *d, const char *owner_id);
/* The org's stage a pipeline stage of that label maps to in the demo. */
const char *demo_stage_key_of(const char *label);
/* A value as the field API takes it: a CRM stage id as its org stage. */
const char *demo_api_value(const struct demo *d, int field, const char *value);

/* A field's value in a deal of the field API as the CRM holds it (the
 * stage as the CRM's stage id), or NULL when empty. */
const char *demo_field_value(const json_t *deal, int field);
/* A field's value, canonical, in a deal as GET /_sim/deals shows it; *out
 * NULL when empty. The caller frees. */
fs_result demo_crm_value(const json_t *sim_deal, int field, char **out);

#endif

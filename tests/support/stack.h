/* The whole system on loopback for integration tests: a CRM's simulator
 * and `fieldsync serve` on a fresh database in a temporary folder, wired
 * together through the real command line (org add, connect, user add,
 * import) and the admin API (the stage map), with helpers to call each
 * side and to tear it all down. What differs between CRMs is the CRM's
 * entry in stack_crm.h; everything here speaks fieldsync's field names
 * and the simulator's neutral /_sim control API (docs/SIMULATOR.md). */
#ifndef FIELDSYNC_TESTS_STACK_H
#define FIELDSYNC_TESTS_STACK_H

#include "stack_crm.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define STACK_ORG "acme"
/* The map stack_start sets for the seed pipeline, in the words of
 * stack_stage_map_body: each CRM stage (by its label) onto one of the
 * org's default stages, and In Quote written as Engaging. */
#define STACK_STAGE_MAP                                                        \
    "Prospecting=new", "Engaging=qualified", "Won=won", "Lost=lost",           \
        "--default", "in_quote=Engaging"
/* How long a change may take to cross between the two sides. */
#define STACK_WAIT_MS 15000

struct stack_options {
    const char *crm;       /* a CRM entry's name; NULL: stack_crm_default */
    const char *data_dir;  /* seed CSVs; NULL: generate `deals` rows */
    int deals;             /* rows to generate (default 24) */
    int owners;            /* sales agents to generate (default 3) */
    int sim_rate;          /* the simulator's budget per CRM rate window
                              (default 100000) */
    int conn_rate;         /* the connection's budget per window (default
                              100000) */
    int64_t backstop_ms;   /* serve --backstop-ms; 0: 60000, and the
                              import runs as `fieldsync import` instead of
                              in serve's first backstop pass */
    int64_t fail_after_ms; /* serve --fail-after-ms (default: serve's) */
    const char *postcodes; /* crmsim --postcodes FILE, or NULL */
    /* More words for `fieldsync serve` (NULL-terminated), e.g. limits. */
    const char *const *serve_args;
    /* Extra "NAME=value" environment of serve (NULL-terminated). */
    const char *const *serve_env;
    /* Serve HTTPS with a certificate the stack makes (openssl), which
     * the tests' client and the simulator's webhooks trust. */
    bool tls;
    /* More words for the CRM's `crmsim` (NULL-terminated). */
    const char *const *sim_args;
    /* How long a CRM that bans a failing webhook (Pipedrive: after 10
     * failed first attempts, for 30 minutes, its events lost meanwhile)
     * bans it; 0: the CRM's own. A test that kills serve again and again
     * makes the ban happen and still needs webhooks after it. */
    int64_t ban_ms;
    /* A proxy fieldsync calls the CRM through (a spec-validating one):
     * given the simulator's base URL once it runs, returns the base URL to
     * connect with (the stack frees it). NULL: the simulator itself. */
    char *(*crm_front)(void *ctx, const char *sim_base);
    void *crm_front_ctx;
};

struct stack {
    const struct stack_crm *crm;
    const char *sim_name; /* the simulator's log and port file names */
    bool beside;          /* a second simulator: dir, db, serve, api_base
                             and admin are another stack's */
    int64_t connection;   /* the id the last stack_connect made */
    int account_base;     /* the simulator's own account number: 0, or
                             more for one beside another (so two CRMs of
                             one kind never share an account) */
    char *dir;
    char *db;
    pid_t sim;
    pid_t serve;
    char *sim_base;   /* http://127.0.0.1:PORT of the simulator */
    char *crm_base;   /* where fieldsync calls the CRM: sim_base or the
                         crm_front's proxy */
    char *api_base;   /* http(s)://127.0.0.1:PORT of fieldsync */
    char *admin;      /* an admin's API token in STACK_ORG */
    size_t deals;     /* deals the simulator was seeded with */
    json_t *seed;     /* the seed deals' CRM ids, in seed order */
    json_t *owners;   /* GET /_sim/owners' list */
    json_t *pipeline; /* GET /_sim/pipeline */
    char *cert;       /* with tls: the certificate's PEM file */
    struct stack_options options;
};

/* Writes a small seed in the real files' format into dir (which exists):
 * sales_teams.csv with owners agents "AgentN Test", sales_pipeline.csv
 * with deals rows, stages in turn. */
bool stack_write_seed(const char *dir, int deals, int owners);

/* Starts both programs, connects STACK_ORG to the simulator, adds an
 * admin, waits until every deal has been imported and sets the stage map
 * STACK_STAGE_MAP.
 * Returns false (after stopping what it started) on any failure. */
bool stack_start(struct stack *s, const struct stack_options *options);

/* Starts a second simulator beside base's (of any CRM of the suite, seeded
 * as options say) for the same fieldsync; s then connects to it and calls
 * it like any stack. stack_stop(s) stops only that simulator; stop it
 * before base. */
bool stack_start_beside(struct stack *base, struct stack *s,
                        const struct stack_options *options);

/* Stops fieldsync serve (SIGTERM, a clean exit expected) and starts it
 * again on the same database and port, with extra_args (NULL-terminated,
 * or NULL) after the stack's own. False when either step failed. */
bool stack_restart_serve(struct stack *s, const char *const *extra_args);

/* SIGKILLs fieldsync serve (a crash: nothing is flushed or closed) and
 * reaps it. */
void stack_crash_serve(struct stack *s);

/* Waits up to timeout_ms for serve to exit by itself (say at a failpoint,
 * FS_FAILPOINT in docs/TESTING.md), SIGKILLs it after that, and reaps it.
 * Returns its exit code, 128 + signal when a signal ended it. */
int stack_wait_serve_exit(struct stack *s, int64_t timeout_ms);

/* Starts serve again on the same database and port after a crash, with
 * extra "NAME=value" environment (NULL-terminated, or NULL) beside the
 * stack's own. False when it did not start. */
bool stack_start_serve_again(struct stack *s, const char *const *env);

/* Stops both programs and removes the folder. Returns false when either
 * program did not exit cleanly (a sanitizer report makes exit non-zero). */
bool stack_stop(struct stack *s);

/* Runs `fieldsync --db DB args...` (args NULL-terminated) to completion.
 * Returns its output (stdout and stderr; the caller frees) and puts the
 * exit code in *code. */
char *stack_cli(struct stack *s, int *code, const char *const *args);
/* stack_cli in two steps: start the command (its pid, or -1), then wait
 * for it and collect its output as stack_cli does. code_now is the exit
 * code proc_poll already reaped, or -2 to wait (up to the CLI's time). */
pid_t stack_cli_start(struct stack *s, const char *const *args);
char *stack_cli_finish(struct stack *s, pid_t pid, int code_now, int *code,
                       const char *name);

/* `fieldsync user add` in org; returns the printed token (caller frees) or
 * NULL. owner_id may be NULL. */
char *stack_user_add(struct stack *s, const char *org, const char *name,
                     const char *role, const char *owner_id);

/* Connects org to the simulator's account (0: the stack's own; see
 * stack_crm.h) through the command line with a budget of rate calls per
 * window, then runs the CRM's after_connect; true on success. */
bool stack_connect(struct stack *s, const char *org, int account, int rate);

/* The CRM id of the nth seed deal (from 0, the seed CSV's order).
 * Borrowed; aborts the test when there is no such deal. */
const char *stack_seed_id(const struct stack *s, size_t n);

/* The id of the nth owner (from 0, the teams CSV's order). Borrowed;
 * aborts the test when there is no such owner. */
const char *stack_owner_id(const struct stack *s, size_t n);

/* The seed pipeline's id, and the id of its stage with that label
 * (Prospecting, Engaging, Won, Lost on every CRM). Borrowed; aborts the
 * test when there is no such stage. */
const char *stack_pipeline_id(const struct stack *s);
const char *stack_stage_id(const struct stack *s, const char *label);

/* The body of PUT /api/v1/admin/stage-map for the seed pipeline, from
 * words (NULL-terminated) as in STACK_STAGE_MAP: "Label=stage" maps the
 * CRM stage with that label onto an org stage; after "--default",
 * "stage=Label" names the CRM stage written for an org stage. The caller
 * frees. */
char *stack_stage_map_body(const struct stack *s, const char *const *words);

/* PUTs that map as the admin; true when fieldsync took it (200). */
bool stack_set_stage_map(struct stack *s, const char *const *words);

/* A field API call with the token (NULL: none); body is sent as it is
 * (JSON text, or anything for error cases) or NULL.
 * Returns the parsed answer (caller decrefs) and the status in *status. */
json_t *stack_api(struct stack *s, const char *token, const char *method,
                  const char *path, const char *body, long *status);

/* GET /api/v1/deals/{id} as the admin; NULL unless 200. */
json_t *stack_deal(struct stack *s, const char *id);

/* Every deal of STACK_ORG through the paged list, as the admin (with the
 * tombstones when include_deleted); NULL on an error. */
json_t *stack_deals(struct stack *s, bool include_deleted);

/* The admin's view of the deal with that CRM id, or NULL. */
json_t *stack_deal_by_crm_id(struct stack *s, const char *crm_id);

/* Our record id of the deal with that CRM id (caller frees), or NULL. */
char *stack_record_id(struct stack *s, const char *crm_id);

/* PATCH /api/v1/deals/{id} with the token and JSON body text. */
json_t *stack_patch(struct stack *s, const char *token, const char *id,
                    const char *body, long *status);

/* Polls until the deal's sync state (GET /api/v1/deals/{id}) is state. */
bool stack_wait_state(struct stack *s, const char *id, const char *state);

/* Polls until the sync status lists the deal (our id) with at least
 * attempts failed pushes: its next try is then the backoff's
 * attempts-th step away (1 s doubling, +-25%). */
bool stack_wait_attempts(struct stack *s, const char *id, int attempts);

/* Polls until the deal (our id) is deleted or not, as deleted says, and
 * when reason is set, deleted for that reason ("crm_delete", "merged"). */
bool stack_wait_deleted(struct stack *s, const char *id, bool deleted,
                        const char *reason);

/* A string member of a JSON object, or NULL. */
const char *stack_text(const json_t *obj, const char *key);

/* A field of a field API deal as the CRM holds it, to compare with the
 * simulator: the stage as the CRM's stage id (crm_stage), the rest as
 * they are. Borrowed from deal. */
json_t *stack_crm_view(const json_t *deal, const char *field);

/* A simulator control call (/_sim/...); body is JSON text or NULL. */
json_t *stack_sim(struct stack *s, const char *method, const char *path,
                  const char *body, long *status);

/* Every fault of POST /_sim/faults off. */
#define STACK_NO_FAULTS                                                        \
    "{\"drop\":0,\"duplicate\":0,\"reorder\":false,\"delay_ms\":0,"            \
    "\"api_5xx\":0,\"api_timeout\":0,\"webhooks_paused\":false,"               \
    "\"api_reads_paused\":false}"

/* Sets simulator faults (a JSON object as for POST /_sim/faults); true
 * when the simulator took them. */
bool stack_faults(struct stack *s, const char *faults);

/* One number of GET /_sim/stats, e.g. "api_calls" or, with kind set, a
 * count of api_calls_by_kind; -1 on an error. */
int64_t stack_sim_stat(struct stack *s, const char *name, const char *kind);

/* The simulator's deal (control view: id, our_id, archived, merged_into,
 * fields, times; docs/SIMULATOR.md), or NULL. */
json_t *stack_sim_deal(struct stack *s, const char *crm_id);

/* Every simulator deal (archived and merged-away ones too) through the
 * paged control list, in the CRM's order; NULL on an error. */
json_t *stack_sim_deals(struct stack *s);

/* A simulator deal's fields in field API names and canonical values, as
 * the field API shows them: {"name":..,"stage":..,...}; the caller
 * decrefs. */
json_t *stack_sim_fields(const json_t *sim_deal);

/* Changes a simulator deal as a CRM user (PATCH /_sim/deals/{crm_id} with
 * fields, a JSON object's text in field API names). Returns the CRM's
 * modification time of the deal (ms), or -1 when refused. */
int64_t stack_sim_edit(struct stack *s, const char *crm_id, const char *fields);

/* The sum of a /metrics counter or gauge over its label sets; -1 when
 * /metrics did not answer. */
int64_t stack_metric(struct stack *s, const char *name);

/* Waits until the simulator has no webhook queued or in flight and every
 * inbox event has been applied (inbox depth 0). */
bool stack_settled(struct stack *s, int64_t timeout_ms);

/* Waits until the sync is quiet: the simulator has no webhook queued or
 * in flight, the inbox is empty, nothing is pending or failed in the sync
 * status, and at least two backstop passes have ended since the call (so
 * one began after it), all seen on two polls in a row. */
bool stack_quiet(struct stack *s, int64_t timeout_ms);

/* Polls until the deal's field (API name) has the value in fieldsync
 * (id: our record id) or, for stack_wait_sim, in the simulator (crm_id). */
bool stack_wait_field(struct stack *s, const char *id, const char *field,
                      const char *value);
bool stack_wait_sim(struct stack *s, const char *crm_id, const char *field,
                    const char *value);
/* stack_wait_sim for up to timeout_ms. */
bool stack_wait_sim_ms(struct stack *s, const char *crm_id, const char *field,
                       const char *value, int64_t timeout_ms);

/* Polls cond for the whole of ms and returns false as soon as it fails:
 * for things that must stay true (nothing re-pushed, nothing stored). */
bool stack_holds(bool (*cond)(void *ctx), void *ctx, int64_t ms);

/* A file's whole text (caller frees); "" when it cannot be read. */
char *stack_read_file(const char *path);

/* A secret fieldsync keeps for the connection of that account (the
 * connection_secrets row name: "token", "refresh_token", ...), read from
 * the database; the caller frees; NULL when there is none. */
char *stack_connection_secret(struct stack *s, const char *account_id,
                              const char *name);

/* The database's size in pages (PRAGMA page_count); -1 when it cannot be
 * read. */
int64_t stack_db_pages(struct stack *s);

/* How many times text occurs in the log of a program of the stack
 * ("serve", or s->sim_name for the simulator). */
size_t stack_log_count(const struct stack *s, const char *program,
                       const char *text);

/* Webhook events fieldsync's inbox holds that arrived at or after since
 * (epoch ms), read from the database; -1 when it cannot be read. */
int64_t stack_inbox_count_since(struct stack *s, int64_t since);

/* Waits until the wall clock has passed t (epoch ms), so the next write
 * is strictly later than one made at t. */
void stack_wait_past(int64_t t);

#endif

/* What every crmsim subcommand shares: the common options and the life of
 * a simulator, from the seed data through webhooks, the control API and
 * the HTTP server to a clean stop on SIGINT or SIGTERM. A front-end brings
 * its ids and pipeline, its webhook format and its REST API. */
#ifndef FIELDSYNC_SIM_SIM_SERVE_H
#define FIELDSYNC_SIM_SIM_SERVE_H

#include "sim_control.h"
#include "sim_store.h"
#include "webhook_sender.h"

#include "net/http_server.h"

#include <getopt.h>
#include <stdint.h>

struct sim_common_options {
    const char *listen;
    const char *data_dir;
    const char *postcodes;
    int64_t placed_percent; /* share of seed deals placed (default 100) */
    const char *webhook_url;
    const char *port_file;
    const char *log_level;
    int64_t seed;
};

/* getopt_long codes of the common options; a front-end's own codes stay
 * below SIM_OPT_FIRST. */
enum {
    SIM_OPT_FIRST = 1000,
    SIM_OPT_LISTEN = SIM_OPT_FIRST,
    SIM_OPT_DATA,
    SIM_OPT_POSTCODES,
    SIM_OPT_WEBHOOK_URL,
    SIM_OPT_PORT_FILE,
    SIM_OPT_SEED,
    SIM_OPT_LOG_LEVEL,
    SIM_OPT_WEBHOOK_CA,
    SIM_OPT_PLACED_PERCENT,
};

/* A getopt_long table: the front-end's own entries (up to their zero
 * entry), then the common options, then the zero entry. The caller
 * frees. */
struct option *sim_longopts(const struct option *own);

/* Help lines of the common options, for a front-end's --help. */
extern const char sim_common_help[];

void sim_common_defaults(struct sim_common_options *o);
/* Takes a common option: 1 taken, 0 not a common one, -1 a bad value
 * (said on stderr). */
int sim_common_option(struct sim_common_options *o, int code, const char *arg);
/* 0 when --listen, --data and --webhook-url are there; else says so on
 * stderr and returns -1. */
int sim_common_check(const struct sim_common_options *o);
/* A number option in lo..hi; -1 (said on stderr) when it is not. */
int sim_parse_number(const char *name, const char *text, int64_t lo, int64_t hi,
                     int64_t *out);

/* The parts every simulator has, made by sim_serve. */
struct sim_core {
    struct sim_store *store;
    struct webhook_sender *sender;
    struct sim_control *control;
};

struct sim_frontend {
    const char *name; /* "hubspot", for the logs */
    const struct sim_store_config *store;
    const struct webhook_format *webhook;
    const struct sim_call_kind *call_kinds; /* see sim_control.h */
    size_t call_kind_count;
    /* Once the core exists and the seed is loaded, before serving. */
    void (*on_start)(void *ctx, const struct sim_core *core);
    /* Once the server listens on port (before the port file is
     * written); NULL: nothing to do. */
    void (*on_listening)(void *ctx, uint16_t port);
    /* The CRM's own API: every request outside /_sim. */
    http_on_request on_request;
    /* Spends what is left of the API's rolling burst window(s) now, as
     * other clients of the account would, so the next calls get the
     * CRM's own 429 until the window moves on (POST
     * /_sim/limits/exhaust). Daily budgets are left alone. */
    void (*on_exhaust)(void *ctx);
    void *ctx;
};

/* Runs the simulator until SIGINT or SIGTERM; returns the exit code. */
int sim_serve(const struct sim_common_options *o,
              const struct sim_frontend *fe);

#endif

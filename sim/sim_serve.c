/* The common crmsim options and a simulator's life: load the seed, start
 * the webhook sender, the control API and the HTTP server, route each
 * request to the control API or the front-end, stop on a signal. */
#include "sim_serve.h"

#include "sim_seed.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "net/http_client.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct option common_longopts[] = {
    {"listen", required_argument, NULL, SIM_OPT_LISTEN},
    {"data", required_argument, NULL, SIM_OPT_DATA},
    {"postcodes", required_argument, NULL, SIM_OPT_POSTCODES},
    {"placed-percent", required_argument, NULL, SIM_OPT_PLACED_PERCENT},
    {"webhook-url", required_argument, NULL, SIM_OPT_WEBHOOK_URL},
    {"port-file", required_argument, NULL, SIM_OPT_PORT_FILE},
    {"seed", required_argument, NULL, SIM_OPT_SEED},
    {"log-level", required_argument, NULL, SIM_OPT_LOG_LEVEL},
    {"webhook-ca", required_argument, NULL, SIM_OPT_WEBHOOK_CA},
    {NULL, 0, NULL, 0},
};

const char sim_common_help[] =
    "  --listen HOST:PORT    address to serve; port 0 picks a free one\n"
    "  --data DIR            folder holding the seed CSV files\n"
    "  --postcodes FILE      CSV of postcode, latitude, longitude to place\n"
    "                        the seed deals on (see docs/SIMULATOR.md)\n"
    "  --placed-percent N    only this share of the seed deals (picked by\n"
    "                        their opportunity_id) is placed (default 100)\n"
    "  --webhook-url URL     where webhooks are POSTed\n"
    "  --webhook-ca PEM      trust this certificate for an https URL\n"
    "  --port-file PATH      write the bound port here once serving\n"
    "  --seed N              seed of the fault dice (default 1)\n"
    "  --log-level LEVEL     error|warn|notice|info|debug\n";

struct option *sim_longopts(const struct option *own)
{
    size_t n = 0, m = sizeof(common_longopts) / sizeof(common_longopts[0]);
    while (own[n].name)
        n++;
    struct option *all = xcalloc(n + m, sizeof(*all));
    memcpy(all, own, n * sizeof(*all));
    memcpy(all + n, common_longopts, m * sizeof(*all));
    return all;
}

void sim_common_defaults(struct sim_common_options *o)
{
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->placed_percent = 100;
}

int sim_parse_number(const char *name, const char *text, int64_t lo, int64_t hi,
                     int64_t *out)
{
    char *end = NULL;

    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr,
                "crmsim: %s must be a number in %" PRId64 "..%" PRId64 "\n",
                name, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int sim_common_option(struct sim_common_options *o, int code, const char *arg)
{
    switch (code) {
    case SIM_OPT_LISTEN:
        o->listen = arg;
        return 1;
    case SIM_OPT_DATA:
        o->data_dir = arg;
        return 1;
    case SIM_OPT_POSTCODES:
        o->postcodes = arg;
        return 1;
    case SIM_OPT_WEBHOOK_URL:
        o->webhook_url = arg;
        return 1;
    case SIM_OPT_PORT_FILE:
        o->port_file = arg;
        return 1;
    case SIM_OPT_LOG_LEVEL:
        o->log_level = arg;
        return 1;
    case SIM_OPT_WEBHOOK_CA:
        http_client_set_ca_file(arg);
        return 1;
    case SIM_OPT_PLACED_PERCENT:
        return sim_parse_number("--placed-percent", arg, 0, 100,
                                &o->placed_percent) == 0
                   ? 1
                   : -1;
    case SIM_OPT_SEED:
        return sim_parse_number("--seed", arg, 0, INT64_MAX, &o->seed) == 0
                   ? 1
                   : -1;
    default:
        return 0;
    }
}

int sim_common_check(const struct sim_common_options *o)
{
    if (o->listen && o->data_dir && o->webhook_url)
        return 0;
    fprintf(stderr, "crmsim: --listen, --data and --webhook-url are "
                    "required\n");
    return -1;
}

/* Writes the port to a temporary file renamed into place, so a reader
 * never sees a partial number. */
static int write_port_file(const char *path, uint16_t port)
{
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;

    if (!f)
        goto out;
    fprintf(f, "%u\n", (unsigned)port);
    if (fclose(f) != 0)
        goto out;
    rc = rename(tmp, path);
out:
    free(tmp);
    return rc;
}

struct router {
    const struct sim_frontend *fe;
    struct sim_control *control;
};

static void on_request(void *ctx, const struct http_request *req,
                       struct http_response *resp)
{
    struct router *r = ctx;
    int64_t started = clock_mono_ms();

    if (sim_control_path(req->path))
        sim_control_on_request(r->control, req, resp);
    else
        r->fe->on_request(r->fe->ctx, req, resp);
    log_info("event=request method=%s path=%s status=%d ms=%" PRId64,
             req->method, req->path, resp->status, clock_mono_ms() - started);
}

static void wait_for_signal(void)
{
    sigset_t signals;
    int sig = 0;

    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigwait(&signals, &sig);
    log_notice("event=stopping signal=%d", sig);
}

int sim_serve(const struct sim_common_options *o, const struct sim_frontend *fe)
{
    struct sim_core core = {0};
    struct http_server *server = NULL;
    struct router router = {fe, NULL};
    enum log_level level;
    sigset_t signals;
    char *err = NULL;
    int rc = 1;

    if (o->log_level) {
        if (log_parse_level(o->log_level, &level) != 0) {
            fprintf(stderr, "crmsim: unknown log level '%s'\n", o->log_level);
            return 2;
        }
        log_set_level(level);
    }
    /* Threads started later inherit the mask, so only sigwait sees these. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    core.store = sim_store_new(fe->store);
    if (sim_seed_load(core.store, o->data_dir, o->postcodes,
                      (int)o->placed_percent, &err) != FS_OK) {
        log_error("event=load_failed error=\"%s\"", err ? err : "unknown");
        goto out;
    }
    struct webhook_sender_config wcfg = {
        .url = o->webhook_url,
        .seed = (uint64_t)o->seed,
        .format = fe->webhook,
    };
    if (webhook_sender_start(&wcfg, &core.sender) != FS_OK) {
        log_error("event=start_failed what=webhook_sender");
        goto out;
    }
    sim_store_set_sink(core.store, webhook_sender_on_event, core.sender);
    struct sim_control_config ccfg = {
        .store = core.store,
        .sender = core.sender,
        .call_kinds = fe->call_kinds,
        .call_kind_count = fe->call_kind_count,
        .seed = (uint64_t)o->seed,
        .on_exhaust = fe->on_exhaust,
        .ctx = fe->ctx,
    };
    core.control = router.control = sim_control_new(&ccfg);
    fe->on_start(fe->ctx, &core);

    struct http_server_config scfg = {
        .listen = o->listen,
        .max_body = 8u << 20,
        .max_connections = 512,
        .timeout_s = 60,
        .on_request = on_request,
        .ctx = &router,
    };
    if (http_server_start(&scfg, &server) != FS_OK) {
        log_error("event=listen_failed listen=%s", o->listen);
        goto out;
    }
    uint16_t port = http_server_port(server);
    if (fe->on_listening)
        fe->on_listening(fe->ctx, port);
    if (o->port_file && write_port_file(o->port_file, port) != 0) {
        log_error("event=port_file_failed path=%s", o->port_file);
        goto out;
    }
    sim_store_lock(core.store);
    size_t deals = sim_store_deal_count(core.store);
    size_t owners = sim_store_owner_count(core.store);
    sim_store_unlock(core.store);
    log_notice("event=serving crm=%s port=%u deals=%zu owners=%zu", fe->name,
               (unsigned)port, deals, owners);

    wait_for_signal();
    rc = 0;
out:
    if (core.control)
        sim_control_release_reads(core.control);
    http_server_stop(server);
    sim_store_set_sink(core.store, NULL, NULL);
    webhook_sender_stop(core.sender);
    sim_control_free(core.control);
    sim_store_free(core.store);
    free(err);
    return rc;
}

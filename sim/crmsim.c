/* crmsim: command line and lifetime of the CRM simulator (HubSpot for
 * now): parse options, load the seed data, serve until SIGINT/SIGTERM. */
#include "hubspot_sim.h"
#include "sim_store.h"
#include "webhook_sender.h"

#include "base/alloc.h"
#include "base/log.h"
#include "net/http_server.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct options {
    const char *listen;
    const char *data_dir;
    const char *webhook_url;
    const char *client_secret;
    const char *token;
    const char *port_file;
    int64_t app_id;
    int64_t portal_id;
    int64_t rate_10s;
    int64_t rate_daily;
    int64_t search_per_s;
    int64_t seed;
    const char *log_level;
};

static void usage_top(FILE *out)
{
    fputs("usage: crmsim <crm> [options]\n"
          "\n"
          "A CRM simulator for fieldsync tests and demos.\n"
          "\n"
          "crms:\n"
          "  hubspot   HubSpot CRM v3 deals API and webhooks\n"
          "\n"
          "Run 'crmsim hubspot --help' for the options.\n",
          out);
}

static void usage_hubspot(FILE *out)
{
    fputs("usage: crmsim hubspot --listen HOST:PORT --data DIR\n"
          "         --webhook-url URL --client-secret S --app-id N\n"
          "         --portal-id N --token T [options]\n"
          "\n"
          "Serves the HubSpot CRM v3 API for deals, owners and pipelines,\n"
          "seeded from DIR/sales_pipeline.csv and DIR/sales_teams.csv, and\n"
          "POSTs signed webhooks for every change to URL. The /_sim control\n"
          "endpoint (no auth) changes deals as a CRM user and injects\n"
          "faults; see docs/SIMULATOR.md.\n"
          "\n"
          "options:\n"
          "  --listen HOST:PORT    address to serve; port 0 picks a free one\n"
          "  --data DIR            folder holding the seed CSV files\n"
          "  --webhook-url URL     where webhook batches are POSTed\n"
          "  --client-secret S     app client secret that signs webhooks\n"
          "  --app-id N            app id (sourceId of API changes)\n"
          "  --portal-id N         portal (account) id\n"
          "  --token T             bearer token the API accepts\n"
          "  --rate-10s N          API calls per rolling 10 s (default 100)\n"
          "  --rate-daily N        API calls per UTC day (default 250000)\n"
          "  --search-per-s N      search calls per second (default 5)\n"
          "  --port-file PATH      write the bound port here once serving\n"
          "  --seed N              seed of the fault dice (default 1)\n"
          "  --log-level LEVEL     error|warn|notice|info|debug\n"
          "  --help                show this help\n",
          out);
}

static int parse_num(const char *name, const char *text, int64_t lo, int64_t hi,
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

/* Returns 0 to run, 1 when help was shown, -1 on a usage error. */
static int parse_options(int argc, char **argv, struct options *o)
{
    enum {
        OPT_LISTEN = 256,
        OPT_DATA,
        OPT_WEBHOOK_URL,
        OPT_SECRET,
        OPT_APP_ID,
        OPT_PORTAL_ID,
        OPT_TOKEN,
        OPT_RATE_10S,
        OPT_RATE_DAILY,
        OPT_SEARCH,
        OPT_PORT_FILE,
        OPT_SEED,
        OPT_LOG_LEVEL,
        OPT_HELP,
    };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"data", required_argument, NULL, OPT_DATA},
        {"webhook-url", required_argument, NULL, OPT_WEBHOOK_URL},
        {"client-secret", required_argument, NULL, OPT_SECRET},
        {"app-id", required_argument, NULL, OPT_APP_ID},
        {"portal-id", required_argument, NULL, OPT_PORTAL_ID},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"rate-10s", required_argument, NULL, OPT_RATE_10S},
        {"rate-daily", required_argument, NULL, OPT_RATE_DAILY},
        {"search-per-s", required_argument, NULL, OPT_SEARCH},
        {"port-file", required_argument, NULL, OPT_PORT_FILE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    int rc = 0;

    o->rate_10s = 100;
    o->rate_daily = 250000;
    o->search_per_s = 5;
    o->seed = 1;
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN:
            o->listen = optarg;
            break;
        case OPT_DATA:
            o->data_dir = optarg;
            break;
        case OPT_WEBHOOK_URL:
            o->webhook_url = optarg;
            break;
        case OPT_SECRET:
            o->client_secret = optarg;
            break;
        case OPT_TOKEN:
            o->token = optarg;
            break;
        case OPT_PORT_FILE:
            o->port_file = optarg;
            break;
        case OPT_LOG_LEVEL:
            o->log_level = optarg;
            break;
        case OPT_APP_ID:
            rc = parse_num("--app-id", optarg, 1, INT64_MAX, &o->app_id);
            break;
        case OPT_PORTAL_ID:
            rc = parse_num("--portal-id", optarg, 1, INT64_MAX, &o->portal_id);
            break;
        case OPT_RATE_10S:
            rc = parse_num("--rate-10s", optarg, 1, 1000000, &o->rate_10s);
            break;
        case OPT_RATE_DAILY:
            rc = parse_num("--rate-daily", optarg, 1, 1000000000,
                           &o->rate_daily);
            break;
        case OPT_SEARCH:
            rc = parse_num("--search-per-s", optarg, 1, 100000,
                           &o->search_per_s);
            break;
        case OPT_SEED:
            rc = parse_num("--seed", optarg, 0, INT64_MAX, &o->seed);
            break;
        case OPT_HELP:
            usage_hubspot(stdout);
            return 1;
        default:
            rc = -1;
        }
    }
    if (rc != 0)
        return -1;
    if (optind < argc) {
        fprintf(stderr, "crmsim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!o->listen || !o->data_dir || !o->webhook_url || !o->client_secret ||
        !o->token || !o->app_id || !o->portal_id) {
        fprintf(stderr, "crmsim: --listen, --data, --webhook-url, "
                        "--client-secret, --app-id, --portal-id and --token "
                        "are required\n");
        return -1;
    }
    return 0;
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

static int run_hubspot(const struct options *o)
{
    struct sim_store *store = sim_store_new();
    struct webhook_sender *sender = NULL;
    struct hubspot_sim *sim = NULL;
    struct http_server *server = NULL;
    char *err = NULL;
    int rc = 1;
    sigset_t signals;
    int sig = 0;

    if (sim_store_load(store, o->data_dir, &err) != FS_OK) {
        log_error("event=load_failed error=\"%s\"", err ? err : "unknown");
        goto out;
    }

    struct webhook_sender_config wcfg = {
        .url = o->webhook_url,
        .client_secret = o->client_secret,
        .app_id = o->app_id,
        .portal_id = o->portal_id,
        .seed = (uint64_t)o->seed,
    };
    if (webhook_sender_start(&wcfg, &sender) != FS_OK) {
        log_error("event=start_failed what=webhook_sender");
        goto out;
    }
    sim_store_set_sink(store, webhook_sender_on_event, sender);

    struct hubspot_sim_config hcfg = {
        .token = o->token,
        .app_id = o->app_id,
        .portal_id = o->portal_id,
        .rate_10s = (int)o->rate_10s,
        .rate_daily = (int)o->rate_daily,
        .search_per_s = (int)o->search_per_s,
        .seed = (uint64_t)o->seed,
    };
    sim = hubspot_sim_new(&hcfg, store, sender);

    struct http_server_config scfg = {
        .listen = o->listen,
        .max_body = 8u << 20,
        .max_connections = 512,
        .timeout_s = 60,
        .on_request = hubspot_sim_on_request,
        .ctx = sim,
    };
    if (http_server_start(&scfg, &server) != FS_OK) {
        log_error("event=listen_failed listen=%s", o->listen);
        goto out;
    }
    uint16_t port = http_server_port(server);
    if (o->port_file && write_port_file(o->port_file, port) != 0) {
        log_error("event=port_file_failed path=%s", o->port_file);
        goto out;
    }
    sim_store_lock(store);
    size_t deals = sim_store_deal_count(store);
    size_t owners = sim_store_owner_count(store);
    sim_store_unlock(store);
    log_notice("event=serving crm=hubspot port=%u deals=%zu owners=%zu",
               (unsigned)port, deals, owners);

    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigwait(&signals, &sig);
    log_notice("event=stopping signal=%d", sig);
    rc = 0;
out:
    http_server_stop(server);
    sim_store_set_sink(store, NULL, NULL);
    webhook_sender_stop(sender);
    hubspot_sim_free(sim);
    sim_store_free(store);
    free(err);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    sigset_t signals;
    enum log_level level;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage_top(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "hubspot") != 0) {
        fprintf(stderr, "crmsim: unknown crm '%s'\n", argv[1]);
        usage_top(stderr);
        return 2;
    }

    int rc = parse_options(argc - 1, argv + 1, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (o.log_level) {
        if (log_parse_level(o.log_level, &level) != 0) {
            fprintf(stderr, "crmsim: unknown log level '%s'\n", o.log_level);
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
    return run_hubspot(&o);
}

/* `fieldsync demo`: the service and a simulated CRM (HubSpot, or Attio or
 * Pipedrive with --crm) side by side on loopback, an import, a working day
 * of edits on both sides with webhook faults, a field-by-field check that
 * both sides converged, a report, and (unless --once) the service left
 * running for curl. */
#include "demo_internal.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "base/process.h"
#include "providers/provider.h"
#include "services/app.h"
#include "services/backstop.h"
#include "services/connect.h"
#include "services/stages.h"
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEMO_ORG "demo"
#define DEMO_APP_ID "1988123"
#define DEMO_PORTAL_ID "44012345"
#define DEMO_BACKSTOP_MS 2000
#define DEMO_PUSH_WINDOW_MS 20
#define DEMO_SIM_START_MS 60000
#define DEMO_SIM_STOP_MS 5000
#define DEMO_MAX_EDITS 1000000
#define DEMO_PAGE 1000
#define DEMO_PD_COMPANY "9120044"
#define DEMO_PD_USER "13377001"
#define DEMO_PD_HOOK_USER "fieldsync-demo"

/* HubSpot: a private app on Free or Starter. Attio: its published API
 * limits. Pipedrive: an API token on Premium (100 calls per 2 s), 30,000
 * tokens x 5 x 35 seats a day. */
static const struct demo_crm demo_crms[] = {
    {"hubspot", "HubSpot", 100, 10000, 250000},
    {"attio", "Attio", DEMO_ATTIO_READS, 1000, 0},
    {"pipedrive", "Pipedrive", 100, 2000, 5250000},
};

const struct demo_crm *demo_crm_by_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof(demo_crms) / sizeof(*demo_crms);
         i++) {
        if (strcmp(demo_crms[i].name, name) == 0)
            return &demo_crms[i];
    }
    return NULL;
}

static void demo_usage(FILE *out)
{
    fputs("usage: fieldsync demo [options]\n"
          "Runs fieldsync against a simulated CRM: import, a day of edits\n"
          "on both sides with webhook faults, a check that both sides agree,\n"
          "and a report.\n"
          "\n"
          "  --crm CRM       hubspot (default), attio or pipedrive\n"
          "  --data DIR      seed CSVs (default ../shared/data/crm_deals)\n"
          "  --once          stop after the report; exit 0 when converged\n"
          "  --workdir DIR   where the database and logs go (default: a new\n"
          "                  /tmp/fieldsync-demo-* folder)\n"
          "  --crmsim PATH   the simulator (default: crmsim beside fieldsync)\n"
          "  --edits N       edits in the day, both sides (default 2000)\n"
          "  --seed N        seed of the day's plan (default 1)\n"
          "  --listen ADDR   the service's address (default 127.0.0.1:0)\n",
          out);
}

static bool take_value(int argc, char **argv, int *i, const char *name,
                       const char **value)
{
    size_t len = strlen(name);
    const char *arg = argv[*i];

    if (strncmp(arg, name, len) != 0)
        return false;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return true;
    }
    if (arg[len] != '\0' || *i + 1 >= argc)
        return false;
    *value = argv[++*i];
    return true;
}

static bool parse_count(const char *s, long long max, long long *out)
{
    char *end = NULL;

    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
        return false;
    *out = v;
    return true;
}

/* Returns 0 when parsed, 1 after --help, 2 on a usage error. */
static int parse_options(int argc, char **argv, struct demo_options *opt)
{
    const char *edits = NULL;
    const char *seed = NULL;
    const char *crm = "hubspot";
    long long n = 0;

    *opt = (struct demo_options){
        .data_dir = "../shared/data/crm_deals",
        .listen = "127.0.0.1:0",
        .edits = 2000,
        .seed = 1,
    };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            demo_usage(stdout);
            return 1;
        }
        if (strcmp(argv[i], "--once") == 0) {
            opt->once = true;
            continue;
        }
        if (take_value(argc, argv, &i, "--crm", &crm) ||
            take_value(argc, argv, &i, "--data", &opt->data_dir) ||
            take_value(argc, argv, &i, "--workdir", &opt->workdir) ||
            take_value(argc, argv, &i, "--crmsim", &opt->crmsim) ||
            take_value(argc, argv, &i, "--listen", &opt->listen) ||
            take_value(argc, argv, &i, "--edits", &edits) ||
            take_value(argc, argv, &i, "--seed", &seed))
            continue;
        fprintf(stderr, "fieldsync demo: unknown or incomplete option '%s'\n",
                argv[i]);
        demo_usage(stderr);
        return 2;
    }
    opt->crm = demo_crm_by_name(crm);
    if (!opt->crm) {
        fprintf(stderr, "fieldsync demo: --crm is hubspot, attio or "
                        "pipedrive\n");
        return 2;
    }
    if (edits) {
        if (!parse_count(edits, DEMO_MAX_EDITS, &n)) {
            fprintf(stderr, "fieldsync demo: --edits takes 0..%d\n",
                    DEMO_MAX_EDITS);
            return 2;
        }
        opt->edits = (long)n;
    }
    if (seed) {
        if (!parse_count(seed, LLONG_MAX, &n)) {
            fprintf(stderr, "fieldsync demo: --seed takes a number\n");
            return 2;
        }
        opt->seed = (uint64_t)n;
    }
    return 0;
}

bool demo_sleep(struct demo *d, int64_t ms)
{
    int64_t end = clock_mono_ms() + ms;

    for (;;) {
        if (atomic_load(&d->stop))
            return false;
        int64_t left = end - clock_mono_ms();
        if (left <= 0)
            return true;
        clock_sleep_ms(left < 50 ? left : 50);
    }
}

/* ---- signals ---- */

struct signal_watch {
    pthread_t thread;
    sigset_t set;
    struct demo *demo;
    bool running;
};

static void *signal_main(void *arg)
{
    struct signal_watch *w = arg;
    int sig = 0;

    if (sigwait(&w->set, &sig) == 0 && !atomic_load(&w->demo->stop)) {
        atomic_store(&w->demo->stop, true);
        fprintf(stderr, "\nfieldsync demo: %s, stopping\n",
                sig == SIGINT ? "interrupted" : "terminated");
    }
    return NULL;
}

/* Blocks SIGINT and SIGTERM in every thread started from now on; one
 * thread takes them with sigwait and asks the demo to stop. */
static void signal_watch_start(struct signal_watch *w, struct demo *d)
{
    memset(w, 0, sizeof(*w));
    w->demo = d;
    sigemptyset(&w->set);
    sigaddset(&w->set, SIGINT);
    sigaddset(&w->set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &w->set, NULL);
    signal(SIGPIPE, SIG_IGN);
    w->running = pthread_create(&w->thread, NULL, signal_main, w) == 0;
}

static void signal_watch_stop(struct signal_watch *w)
{
    if (!w->running)
        return;
    atomic_store(&w->demo->stop, true);
    pthread_kill(w->thread, SIGTERM);
    pthread_join(w->thread, NULL);
    w->running = false;
}

/* ---- set-up ---- */

static char *default_crmsim(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n <= 0)
        return xstrdup("crmsim");
    self[n] = '\0';
    return xasprintf("%s/crmsim", dirname(self));
}

static fs_result make_workdir(struct demo *d)
{
    if (d->opt.workdir) {
        if (mkdir(d->opt.workdir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "fieldsync demo: cannot create %s: %s\n",
                    d->opt.workdir, strerror(errno));
            return FS_ERR_IO;
        }
        d->workdir = xstrdup(d->opt.workdir);
    } else {
        char tmpl[] = "/tmp/fieldsync-demo-XXXXXX";
        if (!mkdtemp(tmpl)) {
            fprintf(stderr,
                    "fieldsync demo: cannot create a folder in "
                    "/tmp: %s\n",
                    strerror(errno));
            return FS_ERR_IO;
        }
        d->workdir = xstrdup(tmpl);
    }
    d->db_path = xasprintf("%s/fieldsync.db", d->workdir);
    return FS_OK;
}

static fs_result create_org(struct demo *d)
{
    struct store *store = NULL;

    fs_result result = store_open(d->db_path, &store);
    if (result == FS_OK)
        result = store_org_add(store, DEMO_ORG, &d->org_id);
    if (result == FS_ERR_CONFLICT)
        fprintf(stderr,
                "fieldsync demo: %s already holds an org '%s'; use "
                "a fresh --workdir\n",
                d->db_path, DEMO_ORG);
    else if (result != FS_OK)
        fprintf(stderr, "fieldsync demo: cannot create %s: %s\n", d->db_path,
                fs_result_name(result));
    store_close(store);
    return result;
}

static fs_result start_service(struct demo *d)
{
    struct app_config config;

    app_config_defaults(&config);
    config.db_path = d->db_path;
    config.listen = d->opt.listen;
    config.backstop_interval_ms = DEMO_BACKSTOP_MS;
    config.push_window_ms = DEMO_PUSH_WINDOW_MS;
    fs_result result = app_start(&config, &d->app);
    if (result != FS_OK) {
        fprintf(stderr,
                "fieldsync demo: cannot start the service on %s: "
                "%s\n",
                d->opt.listen, fs_result_name(result));
        return result;
    }
    d->api_base = xasprintf("http://127.0.0.1:%u", app_port(d->app));
    return FS_OK;
}

static fs_result start_crmsim(struct demo *d, const char *token,
                              const char *secret)
{
    const struct demo_crm *crm = d->opt.crm;
    char *crmsim = d->opt.crmsim ? xstrdup(d->opt.crmsim) : default_crmsim();
    char *port_file = xasprintf("%s/crmsim.port", d->workdir);
    char *log_path = xasprintf("%s/crmsim.log", d->workdir);
    /* Attio's and Pipedrive's webhooks are registered once the connection
     * exists (their URL holds the connection's id); until then nothing
     * changes. */
    char *hook = strcmp(crm->name, "attio") == 0
                     ? xasprintf("%s/webhooks/attio/0", d->api_base)
                     : xasprintf("%s/webhooks/%s", d->api_base, crm->name);
    char *seed = xasprintf("%" PRIu64, d->opt.seed);
    char *rate = xasprintf("%d", crm->rate_window);
    char *daily = xasprintf("%d", crm->rate_daily);
    char *units = demo_geo_path(d, "uk_postcode_units_area_M.csv");
    bool placed = access(units, R_OK) == 0;
    char *port_text = NULL;
    const char *hubspot_words[] = {"--client-secret",
                                   secret,
                                   "--app-id",
                                   DEMO_APP_ID,
                                   "--portal-id",
                                   DEMO_PORTAL_ID,
                                   "--rate-10s",
                                   rate,
                                   placed ? "--postcodes" : NULL,
                                   units,
                                   NULL};
    const char *attio_words[] = {"--webhook-secret", secret, NULL};
    /* Attio and Pipedrive write a deal a call: their deals get no
     * postcodes, so the territory step moves none (8,000 owner changes
     * would take minutes at their budgets; docs/DEMO.md). */
    const char *pipedrive_words[] = {
        "--company-id", DEMO_PD_COMPANY, "--user-id", DEMO_PD_USER, "--rate-2s",
        rate,           "--rate-daily",  daily,       NULL};
    const char *const *crm_words = strcmp(crm->name, "attio") == 0 ? attio_words
                                   : strcmp(crm->name, "pipedrive") == 0
                                       ? pipedrive_words
                                       : hubspot_words;
    const char *argv[32] = {
        crmsim,          crm->name, "--listen", "127.0.0.1:0",
        "--port-file",   port_file, "--data",   d->opt.data_dir,
        "--webhook-url", hook,      "--token",  token,
        "--seed",        seed};
    size_t argc = 14;
    for (size_t i = 0; crm_words[i]; i++)
        argv[argc++] = crm_words[i];
    argv[argc] = NULL;

    unlink(port_file);
    fs_result result = process_spawn(argv, NULL, log_path, &d->sim_pid);
    if (result == FS_OK)
        result = process_wait_file(port_file, d->sim_pid, DEMO_SIM_START_MS,
                                   &port_text);
    if (result != FS_OK) {
        fprintf(stderr,
                "fieldsync demo: crmsim (%s) did not start: %s; "
                "see %s\n",
                crmsim, fs_result_name(result), log_path);
        goto out;
    }
    long port = strtol(port_text, NULL, 10);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "fieldsync demo: crmsim wrote a bad port file\n");
        result = FS_ERR_INVALID;
        goto out;
    }
    d->sim_base = xasprintf("http://127.0.0.1:%ld", port);

out:
    free(port_text);
    free(units);
    free(daily);
    free(rate);
    free(seed);
    free(hook);
    free(log_path);
    free(port_file);
    free(crmsim);
    return result;
}

/* The connection as `fieldsync connect` makes it: the provider checks
 * the account and learns what it maps (Attio's attributes, Pipedrive's
 * custom field keys), then, for a CRM whose webhooks are registered
 * through its API, the webhook is registered with the simulator and its
 * secret kept (connect --public-url). */
static fs_result add_connection(struct demo *d, struct store *store,
                                const char *token, const char *secret)
{
    const struct demo_crm *crm = d->opt.crm;
    bool hubspot = strcmp(crm->name, "hubspot") == 0;
    bool pipedrive = strcmp(crm->name, "pipedrive") == 0;
    struct connection c = {
        .org_id = d->org_id,
        .provider = xstrdup(crm->name),
        .base_url = xstrdup(d->sim_base),
        .token = xstrdup(token),
        .rate_window = crm->rate_window,
        .rate_daily = crm->rate_daily,
        .active = false,
    };
    if (hubspot) {
        c.account_id = xstrdup(DEMO_PORTAL_ID);
        c.app_id = xstrdup(DEMO_APP_ID);
        c.client_secret = xstrdup(secret);
    } else if (pipedrive) {
        c.account_id = xstrdup(DEMO_PD_COMPANY);
        c.app_id = xstrdup(DEMO_PD_USER);
        c.webhook_user = xstrdup(DEMO_PD_HOOK_USER);
    }
    const struct provider *p = provider_by_name(c.provider);
    char *error = NULL;

    fs_result result = connect_prepare(&c, DEMO_HTTP_TIMEOUT_MS, &error);
    if (result == FS_OK)
        result = store_connection_add(store, &c, &d->conn_id);
    if (result == FS_OK && p->register_webhook) {
        free(error);
        result = connect_register_webhook(store, &c, d->conn_id, d->api_base,
                                          DEMO_HTTP_TIMEOUT_MS, NULL, &error);
    }
    if (result != FS_OK)
        fprintf(stderr, "fieldsync demo: the %s connection failed: %s\n",
                crm->label, error ? error : fs_result_name(result));
    free(error);
    connection_clear(&c);
    return result;
}

/* Reads the whole CRM while the connection is inactive, so no webhook or
 * backstop pass races the import; then lets the service see it. */
static fs_result import_and_activate(struct demo *d, struct store *store)
{
    struct connection conn = {0};
    struct import_progress progress;

    fs_result result = store_connection_get(store, d->conn_id, &conn);
    if (result != FS_OK)
        return result;
    d->synced = provider_synced_fields(&conn);
    struct http_client *http = http_client_new();
    struct provider_session session = app_session(d->app, &conn, http);

    import_progress_init(&progress, true);
    result = import_connection(store, &session, import_progress_on_page,
                               &progress, &d->imported);
    import_progress_finish(&progress);
    d->import_seconds = import_progress_seconds(&progress);
    http_client_free(http);
    connection_clear(&conn);
    if (result != FS_OK) {
        fprintf(stderr, "fieldsync demo: import failed after %zu deals: %s\n",
                d->imported, fs_result_name(result));
        return result;
    }
    printf("imported %zu deals in %.1f s\n", d->imported, d->import_seconds);
    fflush(stdout);
    return store_connection_set_active(store, d->conn_id, true);
}

static fs_result add_users(struct demo *d, struct store *store)
{
    struct store_owner *owners = NULL;
    size_t n = 0;

    fs_result result =
        store_user_add(store, d->org_id, "Demo Admin", "admin@demo.invalid",
                       USER_ROLE_ADMIN, NULL, NULL, &d->admin_token);
    if (result == FS_OK)
        result = store_crm_owners_list(store, d->conn_id, &owners, &n);
    if (result != FS_OK)
        return result;
    d->reps = xcalloc(n + 1, sizeof(*d->reps));
    for (size_t i = 0; i < n && result == FS_OK; i++) {
        struct demo_rep *rep = &d->reps[d->n_reps];
        result = store_user_add(
            store, d->org_id, owners[i].name ? owners[i].name : owners[i].id,
            owners[i].email, USER_ROLE_REP, owners[i].id, NULL, &rep->token);
        if (result == FS_OK) {
            rep->owner_id = xstrdup(owners[i].id);
            rep->name = xstrdup(owners[i].name ? owners[i].name : owners[i].id);
            d->n_reps++;
        }
    }
    store_owners_free(owners, n);
    return result;
}

int demo_rep_of(const struct demo *d, const char *owner_id)
{
    for (size_t i = 0; owner_id && i < d->n_reps; i++) {
        if (strcmp(d->reps[i].owner_id, owner_id) == 0)
            return (int)i;
    }
    return -1;
}

/* The imported deals and stages, which the day's plan draws from. */
static fs_result load_deals(struct demo *d, struct store *store)
{
    struct store_stage *stages = NULL;
    size_t n_stages = 0;
    size_t cap = 0;
    char *after = NULL;
    fs_result result = FS_OK;

    for (;;) {
        struct record *rows = NULL;
        size_t n = 0;
        struct record_filter f = {
            .org_id = d->org_id, .after_id = after, .limit = DEMO_PAGE};
        result = store_records_list(store, &f, &rows, &n);
        if (result != FS_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            if (!rows[i].crm_id || rows[i].deleted_at)
                continue;
            if (d->n_deals == cap) {
                cap = cap ? cap * 2 : 1024;
                d->deals = xrealloc(d->deals, cap * sizeof(*d->deals));
            }
            d->deals[d->n_deals++] = (struct demo_deal){
                .id = xstrdup(rows[i].id),
                .crm_id = xstrdup(rows[i].crm_id),
                .rep = demo_rep_of(d, rows[i].fields[DEAL_OWNER].value),
            };
        }
        free(after);
        after = n > 0 ? xstrdup(rows[n - 1].id) : NULL;
        store_records_free(rows, n);
        if (n < DEMO_PAGE)
            break;
    }
    free(after);

    if (result == FS_OK)
        result = store_crm_stages_list(store, d->conn_id, &stages, &n_stages);
    if (result == FS_OK) {
        d->stages = xcalloc(n_stages + 1, sizeof(*d->stages));
        d->stage_keys = xcalloc(n_stages + 1, sizeof(*d->stage_keys));
        for (size_t i = 0; i < n_stages; i++) {
            d->stage_keys[d->n_stages] =
                xstrdup(demo_stage_key_of(stages[i].label));
            d->stages[d->n_stages++] = xstrdup(stages[i].id);
        }
    }
    store_stages_free(stages, n_stages);
    return result;
}

const char *demo_api_value(const struct demo *d, int field, const char *value)
{
    for (size_t i = 0; field == DEAL_STAGE && value && i < d->n_stages; i++) {
        if (strcmp(d->stages[i], value) == 0)
            return d->stage_keys[i];
    }
    return value;
}

/* The org's stage each of the pipeline's stages stands for, by label. */
const char *demo_stage_key_of(const char *label)
{
    static const struct {
        const char *label;
        const char *key;
    } keys[] = {{"Prospecting", "new"},
                {"Engaging", "qualified"},
                {"Won", "won"},
                {"Lost", "lost"}};

    for (size_t i = 0; label && i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].label, label) == 0)
            return keys[i].key;
    }
    return "new";
}

/* Maps the CRM's stages onto the org's default ones as an admin would: by
 * label, and In Quote written as the stage Qualified maps from. */
static fs_result map_stages(struct demo *d, struct store *store)
{
    struct store_stage *stages = NULL;
    size_t n = 0;
    char *error = NULL;

    fs_result result = store_crm_stages_list(store, d->conn_id, &stages, &n);
    if (result != FS_OK)
        return result;
    json_t *map = json_object();
    json_t *defaults = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *key = demo_stage_key_of(stages[i].label);
        json_object_set_new(map, stages[i].id, json_string(key));
        if (strcmp(key, "qualified") == 0)
            json_object_set_new(defaults, stages[i].pipeline_id,
                                json_pack("{s:s}", "in_quote", stages[i].id));
    }
    json_t *body = json_pack("{s:o, s:o}", "map", map, "defaults", defaults);
    result = stages_map(store, d->org_id, 0, body, &error);
    if (result != FS_OK)
        fprintf(stderr, "fieldsync demo: stage map refused: %s\n",
                error ? error : fs_result_name(result));
    free(error);
    json_decref(body);
    store_stages_free(stages, n);
    return result;
}

/* Step 1: org, service, simulator, connection, import, users. */
static fs_result set_up(struct demo *d)
{
    char *token = crypto_random_hex(32);
    char *secret = crypto_random_hex(32);
    struct store *store = NULL;

    fs_result result = start_service(d);
    if (result == FS_OK)
        result = start_crmsim(d, token, secret);
    if (result != FS_OK)
        goto out;
    printf("service on %s, simulated %s on %s, workdir %s\n", d->api_base,
           d->opt.crm->label, d->sim_base, d->workdir);
    fflush(stdout);

    store = app_store_acquire(d->app);
    if (!store) {
        result = FS_ERR_DB;
        goto out;
    }
    result = add_connection(d, store, token, secret);
    if (result == FS_OK)
        result = import_and_activate(d, store);
    if (result == FS_OK)
        result = map_stages(d, store);
    if (result == FS_OK)
        result = add_users(d, store);
    if (result == FS_OK)
        result = load_deals(d, store);
    if (result != FS_OK)
        fprintf(stderr, "fieldsync demo: set-up failed: %s (%s)\n",
                fs_result_name(result), store_last_error(store));

out:
    app_store_release(d->app, store);
    free(secret);
    free(token);
    return result;
}

/* ---- step 5 and tear-down ---- */

static void serve_until_signal(struct demo *d)
{
    printf("\nThe service keeps running until Ctrl-C.\n"
           "  field API:   %s/api/v1\n"
           "  admin token: %s\n"
           "  try:         curl -H 'Authorization: Bearer %s' "
           "'%s/api/v1/deals?limit=5'\n"
           "  simulator:   %s/_sim/stats\n",
           d->api_base, d->admin_token, d->admin_token, d->api_base,
           d->sim_base);
    fflush(stdout);
    while (demo_sleep(d, 1000))
        ;
}

static void tear_down(struct demo *d)
{
    if (d->sim_pid > 0)
        process_stop(d->sim_pid, SIGTERM, DEMO_SIM_STOP_MS, NULL);
    d->sim_pid = 0;
    app_stop(d->app);
    d->app = NULL;
}

static void demo_free(struct demo *d)
{
    for (size_t i = 0; i < d->n_reps; i++) {
        free(d->reps[i].owner_id);
        free(d->reps[i].name);
        free(d->reps[i].token);
    }
    free(d->reps);
    for (size_t i = 0; i < d->n_deals; i++) {
        free(d->deals[i].id);
        free(d->deals[i].crm_id);
    }
    free(d->deals);
    for (size_t i = 0; i < d->n_stages; i++) {
        free(d->stages[i]);
        free(d->stage_keys[i]);
    }
    free(d->stages);
    free(d->stage_keys);
    for (size_t i = 0; i < d->n_conflict_log; i++) {
        free(d->conflict_log[i].local_value);
        free(d->conflict_log[i].crm_value);
    }
    free(d->conflict_log);
    json_decref(d->sim_stats);
    free(d->to_crm.us);
    free(d->to_field.us);
    pthread_mutex_destroy(&d->to_crm.lock);
    pthread_mutex_destroy(&d->to_field.lock);
    free(d->admin_token);
    free(d->sim_base);
    free(d->api_base);
    free(d->db_path);
    free(d->workdir);
}

int demo_main(int argc, char **argv)
{
    struct demo d = {0};
    struct signal_watch watch;
    size_t differences = 0;
    int status = 1;

    int parsed = parse_options(argc, argv, &d.opt);
    if (parsed != 0)
        return parsed == 1 ? 0 : 2;
    pthread_mutex_init(&d.to_crm.lock, NULL);
    pthread_mutex_init(&d.to_field.lock, NULL);
    signal_watch_start(&watch, &d);

    if (make_workdir(&d) != FS_OK || create_org(&d) != FS_OK ||
        set_up(&d) != FS_OK)
        goto out;
    if (demo_run_day(&d) != FS_OK || demo_territories(&d) != FS_OK)
        goto out;
    if (demo_converge(&d, &differences) != FS_OK)
        goto out;
    demo_report(&d, differences);
    status = differences == 0 ? 0 : 1;
    if (!d.opt.once && !atomic_load(&d.stop))
        serve_until_signal(&d);

out:
    if (atomic_load(&d.stop) && status != 0)
        fprintf(stderr, "fieldsync demo: stopped before the end\n");
    tear_down(&d);
    signal_watch_stop(&watch);
    demo_free(&d);
    return status;
}

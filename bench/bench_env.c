/* The bench's world: the simulator and fieldsync as child processes on
 * loopback, the database they start from, and small HTTP and statistics
 * helpers the measurements share. */
#include "bench.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/process.h"
#include "net/rate_governor.h"
#include "providers/provider.h"
#include "services/backstop.h"
#include "services/connect.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define START_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 15000
/* Deals the measurements may use; they need 2 x samples + edits. */
#define DEALS_WANTED 4000
#define IMPORT_TIMEOUT_MS 10000
#define SIM_RATE_DAILY 250000000
/* How long the programs may take to settle between measurements. */
#define QUIET_TIMEOUT_MS 30000
#define QUIET_POLL_MS 20
/* Long enough that no incremental read runs during a measurement. */
#define BACKSTOP_MS "600000"

int64_t bench_now_us(void)
{
    return clock_mono_us();
}

const char *bench_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

fs_result bench_http(struct http_client *client, const char *method,
                     const char *url, const char *const *headers,
                     const char *body, long *status, json_t **json)
{
    struct http_client_response resp;
    fs_result result = http_client_request(client, method, url, headers, body,
                                           body ? strlen(body) : 0,
                                           BENCH_HTTP_TIMEOUT_MS, &resp);

    *status = resp.status;
    if (json)
        *json = result == FS_OK && resp.body.len > 0
                    ? json_loadb(resp.body.data, resp.body.len, 0, NULL)
                    : NULL;
    http_client_response_free(&resp);
    return result;
}

/* The first sample of a Prometheus metric whose line starts with name
 * (labels included), or -1 when there is none. */
static long long metric_value(const struct buf *text, const char *name)
{
    size_t len = strlen(name);
    const char *end = text->data + text->len;

    for (const char *line = text->data; line && line < end;) {
        const char *next = memchr(line, '\n', (size_t)(end - line));
        if ((size_t)(end - line) > len && strncmp(line, name, len) == 0 &&
            (line[len] == ' ' || line[len] == '{')) {
            const char *space = memchr(line, ' ', (size_t)(end - line));
            return space ? strtoll(space + 1, NULL, 10) : -1;
        }
        line = next ? next + 1 : NULL;
    }
    return -1;
}

/* One check of quiet: the simulator has no webhook to deliver, and
 * fieldsync has finished its first backstop pass (which re-reads the
 * seeded deals), reconciled its inbox and has nothing left to push. */
static bool is_quiet(struct http_client *client, const char *idle_url,
                     const char *metrics_url)
{
    struct http_client_response resp;
    json_t *idle = NULL;
    long status = 0;

    bench_http(client, "GET", idle_url, NULL, NULL, &status, &idle);
    bool quiet = status == 200 && json_is_true(json_object_get(idle, "idle"));
    json_decref(idle);
    if (!quiet)
        return false;

    fs_result result =
        http_client_request(client, "GET", metrics_url, NULL, NULL, 0,
                            BENCH_HTTP_TIMEOUT_MS, &resp);
    if (result == FS_OK && resp.status == 200 && resp.body.data) {
        quiet =
            metric_value(&resp.body, "fieldsync_backstop_passes_total") > 0 &&
            metric_value(&resp.body, "fieldsync_inbox_depth") == 0 &&
            metric_value(&resp.body, "fieldsync_push_pending") == 0;
    } else {
        quiet = false;
    }
    http_client_response_free(&resp);
    return quiet;
}

fs_result bench_wait_quiet(struct bench_env *env, struct http_client *client)
{
    char *idle_url = xasprintf("%s/_sim/idle", env->sim_url);
    char *metrics_url = xasprintf("%s/metrics", env->fs_url);
    int64_t deadline = clock_mono_ms() + QUIET_TIMEOUT_MS;
    int quiet_checks = 0;
    fs_result result = FS_OK;

    /* Twice in a row: an echo may be between the two sides. */
    while (quiet_checks < 2) {
        if (clock_mono_ms() > deadline) {
            fprintf(stderr, "fsbench: still busy after %d ms\n",
                    QUIET_TIMEOUT_MS);
            result = FS_ERR_TIMEOUT;
            break;
        }
        quiet_checks =
            is_quiet(client, idle_url, metrics_url) ? quiet_checks + 1 : 0;
        clock_sleep_ms(QUIET_POLL_MS);
    }
    free(idle_url);
    free(metrics_url);
    return result;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them at or below. */
static double rank_ms(const int64_t *sorted, int n, double p)
{
    int idx = (int)((double)n * p + 0.999999) - 1;

    if (idx < 0)
        idx = 0;
    if (idx >= n)
        idx = n - 1;
    return (double)sorted[idx] / 1000.0;
}

void bench_latency_fill(struct bench_latency *lat, int64_t *us, int n,
                        int missed)
{
    memset(lat, 0, sizeof(*lat));
    lat->samples = n;
    lat->missed = missed;
    if (n == 0)
        return;
    qsort(us, (size_t)n, sizeof(*us), cmp_i64);
    lat->p50_ms = rank_ms(us, n, 0.50);
    lat->p99_ms = rank_ms(us, n, 0.99);
    lat->max_ms = (double)us[n - 1] / 1000.0;
}

static int on_remove(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void remove_tree(const char *path)
{
    nftw(path, on_remove, 16, FTW_DEPTH | FTW_PHYS);
}

/* A free loopback port for the main fieldsync, known before the simulator
 * starts because the simulator needs the webhook URL up front. */
static fs_result pick_port(uint16_t *port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    fs_result result = FS_ERR_IO;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return FS_ERR_IO;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        *port = ntohs(addr.sin_port);
        result = FS_OK;
    }
    close(fd);
    return result;
}

/* Starts a program that reports its port in a file, and waits for it. */
static fs_result start_listener(struct bench_env *env, const char *const *argv,
                                const char *name, const char *port_file,
                                pid_t *pid, uint16_t *port)
{
    char *log_path = xasprintf("%s/%s.log", env->work_dir, name);
    char *content = NULL;
    char *end = NULL;

    unlink(port_file);
    fs_result result = process_spawn(argv, NULL, log_path, pid);
    if (result != FS_OK) {
        fprintf(stderr, "fsbench: cannot start %s: %s\n", argv[0],
                fs_result_name(result));
        goto out;
    }
    result = process_wait_file(port_file, *pid, START_TIMEOUT_MS, &content);
    if (result != FS_OK) {
        fprintf(stderr, "fsbench: %s did not start (%s); see %s\n", name,
                fs_result_name(result), log_path);
        process_stop(*pid, SIGKILL, STOP_TIMEOUT_MS, NULL);
        *pid = 0;
        goto out;
    }
    errno = 0;
    unsigned long value = strtoul(content, &end, 10);
    if (errno || end == content || value == 0 || value > 65535) {
        fprintf(stderr, "fsbench: %s wrote no port to %s\n", name, port_file);
        result = FS_ERR_INVALID;
        goto out;
    }
    *port = (uint16_t)value;
out:
    free(content);
    free(log_path);
    return result;
}

/* crmsim attio at its documented limits; its webhook is registered once
 * the connection exists. */
static fs_result start_attio_sim(struct bench_env *env)
{
    const struct bench_options *opt = env->opt;
    char *port_file = xasprintf("%s/crmsim.port", env->work_dir);
    char *hook = xasprintf("http://127.0.0.1:%u/webhooks/attio/0",
                           (unsigned)env->fs_port);
    const char *argv[] = {opt->crmsim_bin,
                          "attio",
                          "--listen",
                          "127.0.0.1:0",
                          "--port-file",
                          port_file,
                          "--data",
                          opt->data_dir,
                          "--webhook-url",
                          hook,
                          "--webhook-secret",
                          BENCH_CLIENT_SECRET,
                          "--token",
                          BENCH_TOKEN,
                          NULL};
    uint16_t port = 0;

    fs_result result =
        start_listener(env, argv, "crmsim", port_file, &env->sim_pid, &port);
    if (result == FS_OK)
        env->sim_url = xasprintf("http://127.0.0.1:%u", (unsigned)port);
    free(port_file);
    free(hook);
    return result;
}

static fs_result start_sim(struct bench_env *env)
{
    const struct bench_options *opt = env->opt;
    if (strcmp(env->crm, "attio") == 0)
        return start_attio_sim(env);
    bool pipedrive = strcmp(env->crm, "pipedrive") == 0;
    char *port_file = xasprintf("%s/crmsim.port", env->work_dir);
    char *hook = xasprintf("http://127.0.0.1:%u/webhooks/%s",
                           (unsigned)env->fs_port, env->crm);
    /* Pipedrive counts its burst in 2 s: the same calls a second. */
    char *rate = xasprintf("%d", pipedrive ? opt->rate_10s / 5 : opt->rate_10s);
    char *daily = xasprintf("%d", SIM_RATE_DAILY);
    const char *hubspot_words[] = {"--client-secret",
                                   BENCH_CLIENT_SECRET,
                                   "--app-id",
                                   BENCH_APP_ID,
                                   "--portal-id",
                                   BENCH_PORTAL_ID,
                                   "--rate-10s",
                                   rate,
                                   NULL};
    const char *pipedrive_words[] = {"--company-id",
                                     BENCH_PD_COMPANY,
                                     "--user-id",
                                     BENCH_PD_USER,
                                     "--rate-2s",
                                     rate,
                                     NULL};
    const char *argv[32] = {
        opt->crmsim_bin, env->crm,  "--listen", "127.0.0.1:0",
        "--port-file",   port_file, "--data",   opt->data_dir,
        "--webhook-url", hook,      "--token",  BENCH_TOKEN,
        "--rate-daily",  daily};
    size_t argc = 14;
    for (const char *const *w = pipedrive ? pipedrive_words : hubspot_words; *w;
         w++)
        argv[argc++] = *w;
    argv[argc] = NULL;
    uint16_t port = 0;

    fs_result result =
        start_listener(env, argv, "crmsim", port_file, &env->sim_pid, &port);
    if (result == FS_OK)
        env->sim_url = xasprintf("http://127.0.0.1:%u", (unsigned)port);
    free(port_file);
    free(hook);
    free(rate);
    free(daily);
    return result;
}

fs_result bench_fieldsync_start(struct bench_env *env, const char *db_path,
                                uint16_t port, const char *name, pid_t *pid,
                                char **url)
{
    char *port_file = xasprintf("%s/%s.port", env->work_dir, name);
    char *listen = xasprintf("127.0.0.1:%u", (unsigned)port);
    const char *argv[] = {env->opt->fieldsync_bin,
                          "--db",
                          db_path,
                          "serve",
                          "--listen",
                          listen,
                          "--port-file",
                          port_file,
                          "--backstop-ms",
                          BACKSTOP_MS,
                          NULL};
    uint16_t bound = 0;

    fs_result result = start_listener(env, argv, name, port_file, pid, &bound);
    if (result == FS_OK)
        *url = xasprintf("http://127.0.0.1:%u", (unsigned)bound);
    free(port_file);
    free(listen);
    return result;
}

void bench_fieldsync_stop(pid_t pid)
{
    int status = 0;

    if (pid <= 0)
        return;
    process_stop(pid, SIGTERM, STOP_TIMEOUT_MS, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "fsbench: fieldsync pid %d ended with status %d\n",
                (int)pid, status);
}

static fs_result import_deals(struct store *store, const struct connection *c)
{
    struct provider_session session;
    size_t imported = 0;

    provider_session_open(c, IMPORT_TIMEOUT_MS, &session);
    fs_result result =
        import_connection(store, &session, NULL, NULL, &imported);
    if (result == FS_OK)
        fprintf(stderr, "fsbench: imported %zu deals\n", imported);
    provider_session_close(&session);
    return result;
}

/* Remembers the first DEALS_WANTED live deals that the CRM has. */
static fs_result collect_deals(struct bench_env *env, struct store *store,
                               int64_t org_id)
{
    char *after = NULL;
    fs_result result = FS_OK;

    env->deals = xcalloc(DEALS_WANTED, sizeof(*env->deals));
    while (env->n_deals < DEALS_WANTED) {
        struct record *records = NULL;
        size_t n = 0;
        struct record_filter filter = {
            .org_id = org_id, .after_id = after, .limit = 1000};

        result = store_records_list(store, &filter, &records, &n);
        if (result != FS_OK || n == 0) {
            store_records_free(records, n);
            break;
        }
        for (size_t i = 0; i < n && env->n_deals < DEALS_WANTED; i++) {
            if (!records[i].crm_id || records[i].deleted_at)
                continue;
            env->deals[env->n_deals].id = xstrdup(records[i].id);
            env->deals[env->n_deals].crm_id = xstrdup(records[i].crm_id);
            env->n_deals++;
        }
        free(after);
        after = xstrdup(records[n - 1].id);
        store_records_free(records, n);
    }
    free(after);
    return result;
}

/* An Attio or Pipedrive connection as `connect CRM --public-url` makes
 * it: the provider's check of the account (Attio's attribute map,
 * Pipedrive's custom field keys), then the webhook registered at the
 * fieldsync the bench starts later on fs_port. */
static fs_result add_registered_connection(struct bench_env *env,
                                           struct store *store, int64_t org_id,
                                           int64_t *conn_id)
{
    struct connection c = {
        .org_id = org_id,
        .provider = xstrdup(env->crm),
        .base_url = xstrdup(env->sim_url),
        .token = xstrdup(BENCH_TOKEN),
        .active = true,
    };
    if (strcmp(env->crm, "pipedrive") == 0) {
        c.account_id = xstrdup(BENCH_PD_COMPANY);
        c.app_id = xstrdup(BENCH_PD_USER);
        c.webhook_user = xstrdup(BENCH_PD_HOOK_USER);
        c.rate_window = env->opt->rate_10s / 5;
        c.rate_daily = SIM_RATE_DAILY;
    }
    char *error = NULL;
    char *public_url = xasprintf("http://127.0.0.1:%u", (unsigned)env->fs_port);

    fs_result result = connect_prepare(&c, IMPORT_TIMEOUT_MS, &error);
    if (result == FS_OK)
        result = store_connection_add(store, &c, conn_id);
    if (result == FS_OK) {
        free(error);
        result = connect_register_webhook(store, &c, *conn_id, public_url,
                                          IMPORT_TIMEOUT_MS, NULL, &error);
    }
    if (result != FS_OK)
        fprintf(stderr, "fsbench: the %s connection failed: %s\n", env->crm,
                error ? error : fs_result_name(result));
    free(public_url);
    free(error);
    connection_clear(&c);
    return result;
}

/* The org, its connection to the simulator, an admin, the import, all
 * in-process through the store, before any fieldsync runs. */
static fs_result build_db(struct bench_env *env)
{
    struct store *store = NULL;
    struct connection conn = {
        .provider = "hubspot",
        .base_url = env->sim_url,
        .account_id = BENCH_PORTAL_ID,
        .app_id = BENCH_APP_ID,
        .token = BENCH_TOKEN,
        .client_secret = BENCH_CLIENT_SECRET,
        .rate_window = env->opt->rate_10s,
        .rate_daily = SIM_RATE_DAILY,
        .active = true,
    };
    struct connection saved = {0};
    int64_t org_id = 0;
    int64_t conn_id = 0;
    char *token = NULL;

    fs_result result = store_open(env->db_path, &store);
    if (result == FS_OK)
        result = store_org_add(store, BENCH_ORG, &org_id);
    conn.org_id = org_id;
    if (result == FS_OK && strcmp(env->crm, "hubspot") != 0)
        result = add_registered_connection(env, store, org_id, &conn_id);
    else if (result == FS_OK)
        result = store_connection_add(store, &conn, &conn_id);
    if (result == FS_OK)
        result = store_user_add(store, org_id, "bench admin", NULL,
                                USER_ROLE_ADMIN, NULL, NULL, &token);
    if (result == FS_OK)
        result = store_connection_get(store, conn_id, &saved);
    if (result != FS_OK) {
        fprintf(stderr, "fsbench: cannot set up %s: %s (%s)\n", env->db_path,
                fs_result_name(result),
                store ? store_last_error(store) : "open failed");
        goto out;
    }
    env->auth_header = xasprintf("Authorization: Bearer %s", token);

    result = import_deals(store, &saved);
    if (result == FS_OK)
        result = collect_deals(env, store, org_id);
    if (result != FS_OK)
        fprintf(stderr, "fsbench: import failed: %s\n", fs_result_name(result));
out:
    connection_clear(&saved);
    free(token);
    store_close(store);
    return result;
}

fs_result bench_copy_db(const char *from, const char *to)
{
    sqlite3 *db = NULL;
    fs_result result = FS_ERR_DB;

    if (sqlite3_open_v2(from, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        char *sql = sqlite3_mprintf("VACUUM INTO %Q", to);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
            result = FS_OK;
        else
            fprintf(stderr, "fsbench: copying the database: %s\n",
                    sqlite3_errmsg(db));
        sqlite3_free(sql);
    }
    sqlite3_close(db);
    return result;
}

static char *default_work_dir(const char *fieldsync_bin)
{
    char *copy = xstrdup(fieldsync_bin);
    char *dir = xasprintf("%s/fsbench.run", dirname(copy));

    free(copy);
    return dir;
}

fs_result bench_env_setup(struct bench_env *env,
                          const struct bench_options *opt, const char *crm)
{
    memset(env, 0, sizeof(*env));
    env->opt = opt;
    env->crm = crm;
    char *base = opt->work_dir ? xstrdup(opt->work_dir)
                               : default_work_dir(opt->fieldsync_bin);
    env->work_dir = strcmp(crm, "hubspot") == 0 ? xstrdup(base)
                                                : xasprintf("%s.%s", base, crm);
    free(base);
    remove_tree(env->work_dir);
    if (mkdir(env->work_dir, 0700) != 0) {
        fprintf(stderr, "fsbench: cannot create %s: %s\n", env->work_dir,
                strerror(errno));
        return FS_ERR_IO;
    }
    env->db_path = xasprintf("%s/fieldsync.db", env->work_dir);
    env->ingest_db_path = xasprintf("%s/ingest.db", env->work_dir);

    fs_result result = pick_port(&env->fs_port);
    if (result != FS_OK) {
        fprintf(stderr, "fsbench: no free loopback port\n");
        return result;
    }
    result = start_sim(env);
    if (result == FS_OK)
        result = build_db(env);
    if (result == FS_OK && strcmp(crm, "hubspot") == 0)
        result = bench_copy_db(env->db_path, env->ingest_db_path);
    size_t needed = 2 * (size_t)opt->samples + (size_t)opt->edits;
    if (result == FS_OK && env->n_deals < needed) {
        fprintf(stderr, "fsbench: %zu deals imported, %zu needed\n",
                env->n_deals, needed);
        result = FS_ERR_NOT_FOUND;
    }
    return result;
}

void bench_env_teardown(struct bench_env *env, bool remove_files)
{
    bench_fieldsync_stop(env->fs_pid);
    if (env->sim_pid > 0)
        process_stop(env->sim_pid, SIGTERM, STOP_TIMEOUT_MS, NULL);
    if (remove_files && env->work_dir)
        remove_tree(env->work_dir);
    else if (env->work_dir)
        fprintf(stderr, "fsbench: logs and databases kept in %s\n",
                env->work_dir);
    for (size_t i = 0; i < env->n_deals; i++) {
        free(env->deals[i].id);
        free(env->deals[i].crm_id);
    }
    free(env->deals);
    free(env->work_dir);
    free(env->db_path);
    free(env->ingest_db_path);
    free(env->sim_url);
    free(env->fs_url);
    free(env->auth_header);
    memset(env, 0, sizeof(*env));
}

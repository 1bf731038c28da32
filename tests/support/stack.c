/* Starting, wiring, calling and stopping a CRM's simulator and fieldsync
 * for integration tests. Everything goes through the programs' real
 * interfaces: the command line, the field and admin APIs, /metrics and
 * /_sim; the CRM's entry (stack_crm.h) supplies what differs. */
#include "stack.h"

#include "http_test.h"
#include "proc.h"
#include "test_env.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "net/http_client.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000
/* The account number a simulator beside another starts at. */
#define STACK_BESIDE_ACCOUNTS 100
#define STOP_TIMEOUT_MS 15000
#define CLI_TIMEOUT_MS 30000
#define IMPORT_TIMEOUT_MS 60000
#define PAGE_LIMIT 1000

static const char *const stages[] = {"Prospecting", "Engaging", "Won", "Lost"};

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* A small pipeline in the real files' format: agents "Agent N Test", one
 * deal a row, stages in turn, close dates only on closed deals. */
bool stack_write_seed(const char *dir, int deals, int owners)
{
    char *teams = xstrdup("sales_agent,manager,regional_office\n");
    char *pipeline = xstrdup("opportunity_id,sales_agent,product,account,"
                             "deal_stage,engage_date,close_date,"
                             "close_value\n");

    for (int i = 0; i < owners; i++) {
        char *next = xasprintf("%sAgent%d Test,Boss Test,Central\n", teams, i);
        free(teams);
        teams = next;
    }
    for (int i = 0; i < deals; i++) {
        const char *stage = stages[i % 4];
        bool closed = i % 4 >= 2;
        char close[16] = "";
        char value[16] = "";
        if (closed) {
            snprintf(close, sizeof(close), "2017-03-%02d", 1 + i % 28);
            snprintf(value, sizeof(value), "%d", 100 + 37 * i);
        }
        char *next = xasprintf("%sT%07d,Agent%d Test,GTX Test,Account %d,%s,"
                               "2016-11-%02d,%s,%s\n",
                               pipeline, i, i % owners, i, stage, 1 + i % 28,
                               close, value);
        free(pipeline);
        pipeline = next;
    }

    char *teams_path = xasprintf("%s/sales_teams.csv", dir);
    char *pipeline_path = xasprintf("%s/sales_pipeline.csv", dir);
    bool ok =
        write_file(teams_path, teams) && write_file(pipeline_path, pipeline);
    free(teams_path);
    free(pipeline_path);
    free(teams);
    free(pipeline);
    return ok;
}

char *stack_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0;

    if (!f)
        return xstrdup("");
    FILE *out = open_memstream(&text, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, out);
    fclose(out);
    fclose(f);
    return text;
}

pid_t stack_cli_start(struct stack *s, const char *const *args)
{
    const char *bin = getenv("FS_BIN");
    const char *argv[STACK_WORDS_MAX + 4];
    size_t n = 0;
    char *out_path = xasprintf("%s/cli.out", s->dir);

    argv[n++] = bin ? bin : "fieldsync";
    argv[n++] = "--db";
    argv[n++] = s->db;
    for (size_t i = 0; args[i] && n < STACK_WORDS_MAX + 3; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    unlink(out_path);
    pid_t pid = proc_spawn(argv, NULL, out_path);
    free(out_path);
    return pid;
}

char *stack_cli_finish(struct stack *s, pid_t pid, int code_now, int *code,
                       const char *name)
{
    char *out_path = xasprintf("%s/cli.out", s->dir);

    if (code_now != -2)
        *code = code_now;
    else
        *code = pid > 0 ? proc_wait(pid, CLI_TIMEOUT_MS) : -1;
    char *text = stack_read_file(out_path);
    free(out_path);
    if (*code != 0)
        fprintf(stderr, "stack: fieldsync %s exited %d: %s\n", name, *code,
                text);
    return text;
}

char *stack_cli(struct stack *s, int *code, const char *const *args)
{
    return stack_cli_finish(s, stack_cli_start(s, args), -2, code, args[0]);
}

char *stack_user_add(struct stack *s, const char *org, const char *name,
                     const char *role, const char *owner_id)
{
    const char *args[] = {"user",   "add",    "--org",
                          org,      "--name", name,
                          "--role", role,     owner_id ? "--owner-id" : NULL,
                          owner_id, NULL};
    int code;
    char *out = stack_cli(s, &code, args);
    char *token = NULL;
    const char *at = strstr(out, "token: ");

    if (code == 0 && at) {
        at += strlen("token: ");
        token = xstrndup(at, strcspn(at, "\r\n"));
    }
    free(out);
    return token;
}

/* The connection id `connect` printed ("connection N added ..."), or
 * -1. */
static int64_t connection_id(const char *out)
{
    const char *at = strstr(out, "connection ");
    char *end = NULL;

    if (!at)
        return -1;
    long long id = strtoll(at + strlen("connection "), &end, 10);
    return end && *end == ' ' && id > 0 ? (int64_t)id : -1;
}

bool stack_connect(struct stack *s, const char *org, int account, int rate)
{
    struct stack_words w = {0};
    int code;

    stack_words_add(&w, "connect");
    stack_words_add(&w, s->crm->name);
    stack_words_add(&w, "--org");
    stack_words_add(&w, org);
    stack_words_add(&w, "--base-url");
    stack_words_add(&w, s->crm_base ? s->crm_base : s->sim_base);
    s->crm->connect_words(s, &w, account, rate);
    char *out = stack_cli(s, &code, w.w);
    int64_t id = code == 0 ? connection_id(out) : -1;
    bool ok = id > 0;

    if (code == 0 && !ok)
        fprintf(stderr, "stack: no connection id in: %s\n", out);
    if (ok)
        s->connection = id;
    if (ok && s->crm->after_connect && !s->crm->after_connect(s, account, id)) {
        fprintf(stderr, "stack: %s after_connect failed for connection %lld\n",
                s->crm->name, (long long)id);
        ok = false;
    }
    free(out);
    stack_words_clear(&w);
    return ok;
}

/* Spawns a program that writes its port to dir/name.port, logging to
 * dir/name.log; returns the pid and the base URL, or -1. */
static pid_t start_program(struct stack *s, const char *name,
                           const char *const *argv, const char *const *env,
                           const char *port_file, char **base)
{
    char *log_path = xasprintf("%s/%s.log", s->dir, name);
    pid_t pid = proc_spawn(argv, env, log_path);
    int port =
        pid > 0 ? proc_wait_port_file(port_file, pid, START_TIMEOUT_MS) : 0;

    if (port == 0) {
        char *log = stack_read_file(log_path);
        fprintf(stderr, "stack: %s did not start:\n%s\n", name, log);
        free(log);
        if (pid > 0)
            proc_kill(pid);
        pid = -1;
    } else {
        *base = xasprintf("http://127.0.0.1:%d", port);
    }
    free(log_path);
    return pid;
}

/* A self-signed certificate for 127.0.0.1 in dir (openssl req). */
static bool make_cert(struct stack *s)
{
    char *key = xasprintf("%s/tls.key", s->dir);
    s->cert = xasprintf("%s/tls.crt", s->dir);
    char *log = xasprintf("%s/openssl.log", s->dir);
    const char *argv[] = {
        "openssl",  "req",           "-x509",   "-newkey",
        "rsa:2048", "-nodes",        "-keyout", key,
        "-out",     s->cert,         "-days",   "2",
        "-subj",    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        NULL};
    pid_t pid = proc_spawn(argv, NULL, log);
    bool ok = pid > 0 && proc_wait(pid, CLI_TIMEOUT_MS) == 0;

    if (!ok)
        fprintf(stderr, "stack: openssl could not make a certificate\n");
    else
        http_client_set_ca_file(s->cert);
    free(log);
    free(key);
    return ok;
}

/* Starts serve on listen with the stack's options and extra words. */
static bool start_serve_on(struct stack *s, const char *listen,
                           const char *const *extra,
                           const char *const *extra_env)
{
    const struct stack_options *o = &s->options;
    const char *bin = getenv("FS_BIN");
    char *port_file = xasprintf("%s/serve.port", s->dir);
    char *key = xasprintf("%s/tls.key", s->dir);
    char *backstop = xasprintf("%" PRId64, o->backstop_ms > 0 ? o->backstop_ms
                                                              : (int64_t)60000);
    char *fail_after =
        o->fail_after_ms > 0 ? xasprintf("%" PRId64, o->fail_after_ms) : NULL;
    const char *argv[64];
    size_t n = 0;

    argv[n++] = bin;
    /* FS_TEST_LOG_LEVEL=info keeps every event in serve.log (FS_KEEP). */
    const char *level = getenv("FS_TEST_LOG_LEVEL");
    if (level && *level) {
        argv[n++] = "--log-level";
        argv[n++] = level;
    }
    const char *fixed[] = {"--db",     s->db,           "serve",
                           "--listen", listen,          "--port-file",
                           port_file,  "--backstop-ms", backstop};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        argv[n++] = fixed[i];
    if (fail_after) {
        argv[n++] = "--fail-after-ms";
        argv[n++] = fail_after;
    }
    if (o->tls) {
        argv[n++] = "--tls-cert";
        argv[n++] = s->cert;
        argv[n++] = "--tls-key";
        argv[n++] = key;
    }
    for (size_t i = 0; o->serve_args && o->serve_args[i] && n < 48; i++)
        argv[n++] = o->serve_args[i];
    for (size_t i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    const char *env[32];
    size_t n_env = 0;
    for (size_t i = 0; o->serve_env && o->serve_env[i] && n_env < 16; i++)
        env[n_env++] = o->serve_env[i];
    for (size_t i = 0; extra_env && extra_env[i] && n_env < 31; i++)
        env[n_env++] = extra_env[i];
    env[n_env] = NULL;

    unlink(port_file);
    free(s->api_base);
    s->api_base = NULL;
    s->serve =
        bin ? start_program(s, "serve", argv, env, port_file, &s->api_base)
            : -1;
    if (s->serve > 0 && o->tls) {
        /* start_program names it http://; this one speaks https. */
        char *https = xasprintf("https://%s", s->api_base + strlen("http://"));
        free(s->api_base);
        s->api_base = https;
    }
    free(fail_after);
    free(backstop);
    free(key);
    free(port_file);
    return s->serve > 0;
}

static bool start_serve(struct stack *s)
{
    return start_serve_on(s, "127.0.0.1:0", NULL, NULL);
}

/* "127.0.0.1:PORT" of the running serve's API (caller frees), or NULL. */
static char *serve_listen(const struct stack *s)
{
    const char *colon = s->api_base ? strrchr(s->api_base, ':') : NULL;
    return colon ? xasprintf("127.0.0.1%s", colon) : NULL;
}

bool stack_restart_serve(struct stack *s, const char *const *extra_args)
{
    char *listen = serve_listen(s);
    bool ok =
        listen && s->serve > 0 && proc_stop(s->serve, STOP_TIMEOUT_MS) == 0;

    if (!ok)
        fprintf(stderr, "stack: fieldsync serve did not stop cleanly\n");
    s->serve = -1;
    ok = ok && start_serve_on(s, listen, extra_args, NULL);
    free(listen);
    return ok;
}

void stack_crash_serve(struct stack *s)
{
    if (s->serve > 0)
        proc_kill(s->serve);
    s->serve = -1;
}

int stack_wait_serve_exit(struct stack *s, int64_t timeout_ms)
{
    int code = s->serve > 0 ? proc_wait(s->serve, timeout_ms) : -1;
    s->serve = -1;
    return code;
}

bool stack_start_serve_again(struct stack *s, const char *const *env)
{
    char *listen = serve_listen(s);
    bool ok = listen && s->serve <= 0 && start_serve_on(s, listen, NULL, env);

    free(listen);
    return ok;
}

static bool start_sim(struct stack *s, const struct stack_options *o,
                      const char *data_dir)
{
    const char *bin = getenv("FS_SIM_BIN");
    char *port_file = xasprintf("%s/%s.port", s->dir, s->sim_name);
    struct stack_words w = {0};

    stack_words_add(&w, bin);
    stack_words_add(&w, s->crm->name);
    stack_words_add(&w, "--listen");
    stack_words_add(&w, "127.0.0.1:0");
    stack_words_add(&w, "--data");
    stack_words_add(&w, data_dir);
    /* Where the CRM's webhooks go when they are not per connection; a
     * CRM whose are says where in after_connect. */
    stack_words_add(&w, "--webhook-url");
    stack_words_addf(&w, "%s/webhooks/%s", s->api_base, s->crm->name);
    stack_words_add(&w, "--port-file");
    stack_words_add(&w, port_file);
    if (o->postcodes) {
        stack_words_add(&w, "--postcodes");
        stack_words_add(&w, o->postcodes);
    }
    if (o->tls) {
        stack_words_add(&w, "--webhook-ca");
        stack_words_add(&w, s->cert);
    }
    for (size_t i = 0; o->sim_args && o->sim_args[i]; i++)
        stack_words_add(&w, o->sim_args[i]);
    s->crm->sim_words(s, &w, o->sim_rate > 0 ? o->sim_rate : 100000);

    s->sim =
        bin ? start_program(s, s->sim_name, w.w, NULL, port_file, &s->sim_base)
            : -1;
    stack_words_clear(&w);
    free(port_file);
    return s->sim > 0;
}

struct count_wait {
    struct stack *s;
    size_t want;
};

static bool all_imported(void *ctx)
{
    struct count_wait *w = ctx;
    json_t *deals = stack_deals(w->s, false);
    bool done = deals && json_array_size(deals) == w->want;
    json_decref(deals);
    return done;
}

/* Rows of the seed pipeline, not counting the header. */
static size_t seed_rows(const char *data_dir)
{
    char *path = xasprintf("%s/sales_pipeline.csv", data_dir);
    char *text = stack_read_file(path);
    size_t lines = 0;

    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    free(text);
    free(path);
    return lines > 0 ? lines - 1 : 0;
}

/* What the simulator was seeded with, read once: the seed deals' ids in
 * order, the owners and the pipeline. */
static bool read_seed(struct stack *s)
{
    json_t *deals = stack_sim_deals(s);
    long status;
    size_t i;
    json_t *d;

    s->seed = json_array();
    json_array_foreach(deals, i, d)
    {
        if (i < s->deals)
            json_array_append(s->seed, json_object_get(d, "id"));
    }
    json_decref(deals);
    json_t *owners = stack_sim(s, "GET", "/_sim/owners", NULL, &status);
    s->owners = json_incref(json_object_get(owners, "owners"));
    json_decref(owners);
    s->pipeline = stack_sim(s, "GET", "/_sim/pipeline", NULL, &status);
    if (json_array_size(s->seed) != s->deals || !json_is_array(s->owners) ||
        status != 200) {
        fprintf(stderr, "stack: cannot read the simulator's seed\n");
        return false;
    }
    return true;
}

/* Writes the seed a stack's options ask for and counts its rows. */
static char *seed_dir(struct stack *s, const struct stack_options *o)
{
    char *dir = NULL;

    if (o->data_dir) {
        dir = xstrdup(o->data_dir);
    } else {
        dir = xasprintf("%s/seed-%s", s->dir, s->sim_name);
        if (mkdir(dir, 0700) != 0 ||
            !stack_write_seed(dir, o->deals > 0 ? o->deals : 24,
                              o->owners > 0 ? o->owners : 3)) {
            free(dir);
            return NULL;
        }
    }
    s->deals = seed_rows(dir);
    return dir;
}

bool stack_start(struct stack *s, const struct stack_options *options)
{
    struct stack_options o = *options;
    char *data_dir = NULL;
    bool ok = false;
    int code;

    memset(s, 0, sizeof(*s));
    s->sim = s->serve = -1;
    s->sim_name = "sim";
    s->options = o;
    s->dir = test_temp_dir();
    s->db = xasprintf("%s/fieldsync.db", s->dir);
    const char *crm = o.crm ? o.crm : stack_crm_default();
    s->crm = stack_crm_by_name(crm);
    if (!s->crm) {
        fprintf(stderr, "stack: the suite has no CRM entry '%s'\n", crm);
        goto out;
    }
    data_dir = seed_dir(s, &o);
    if (!data_dir)
        goto out;

    const char *org_add[] = {"org", "add", STACK_ORG, NULL};
    free(stack_cli(s, &code, org_add));
    if (o.tls && !make_cert(s))
        goto out;
    if (code != 0 || !start_serve(s) || !start_sim(s, &o, data_dir) ||
        !read_seed(s))
        goto out;
    s->crm_base = o.crm_front ? o.crm_front(o.crm_front_ctx, s->sim_base)
                              : xstrdup(s->sim_base);
    if (!s->crm_base)
        goto out;
    if (!stack_connect(s, STACK_ORG, 0, o.conn_rate > 0 ? o.conn_rate : 100000))
        goto out;
    s->admin = stack_user_add(s, STACK_ORG, "Ann Admin", "admin", NULL);
    if (!s->admin)
        goto out;

    /* With the default backstop period the import is the command line's;
     * with a short one it is serve's backstop, which imports a connection
     * whose watermark is 0 on its first pass after the connection appears
     * (running both would race two imports). */
    if (o.backstop_ms == 0) {
        const char *import[] = {"import", "--org", STACK_ORG, NULL};
        free(stack_cli(s, &code, import));
        if (code != 0)
            goto out;
    }
    struct count_wait w = {s, s->deals};
    ok = http_test_poll(all_imported, &w, IMPORT_TIMEOUT_MS);
    if (!ok)
        fprintf(stderr, "stack: the import did not bring all %zu deals\n",
                s->deals);
    const char *map[] = {STACK_STAGE_MAP, NULL};
    if (ok && !stack_set_stage_map(s, map)) {
        fprintf(stderr, "stack: the stage map was refused\n");
        ok = false;
    }
out:
    free(data_dir);
    if (!ok)
        stack_stop(s);
    return ok;
}

bool stack_start_beside(struct stack *base, struct stack *s,
                        const struct stack_options *options)
{
    const char *crm = options->crm ? options->crm : stack_crm_default();

    memset(s, 0, sizeof(*s));
    s->sim = s->serve = -1;
    s->beside = true;
    s->sim_name = "sim-beside";
    s->account_base = STACK_BESIDE_ACCOUNTS;
    s->dir = base->dir;
    s->db = base->db;
    s->api_base = base->api_base;
    s->admin = base->admin;
    s->crm = stack_crm_by_name(crm);
    if (!s->crm) {
        fprintf(stderr, "stack: the suite has no CRM entry '%s'\n", crm);
        return false;
    }
    char *data_dir = seed_dir(s, options);
    bool ok = data_dir && start_sim(s, options, data_dir) && read_seed(s);
    free(data_dir);
    if (!ok)
        stack_stop(s);
    return ok;
}

bool stack_stop(struct stack *s)
{
    bool clean = true;

    if (s->beside) {
        if (s->sim > 0 && proc_stop(s->sim, STOP_TIMEOUT_MS) != 0) {
            fprintf(stderr, "stack: crmsim %s did not exit cleanly\n",
                    s->sim_name);
            clean = false;
        }
        free(s->sim_base);
        json_decref(s->seed);
        json_decref(s->owners);
        json_decref(s->pipeline);
        memset(s, 0, sizeof(*s));
        s->sim = s->serve = -1;
        return clean;
    }

    /* Exit status 0 also means the sanitizers found nothing at exit. */
    if (s->serve > 0 && proc_stop(s->serve, STOP_TIMEOUT_MS) != 0) {
        fprintf(stderr, "stack: fieldsync serve did not exit cleanly\n");
        clean = false;
    }
    if (s->sim > 0 && proc_stop(s->sim, STOP_TIMEOUT_MS) != 0) {
        fprintf(stderr, "stack: crmsim did not exit cleanly\n");
        clean = false;
    }
    if (!clean) {
        char *serve_log = xasprintf("%s/serve.log", s->dir);
        char *sim_log = xasprintf("%s/sim.log", s->dir);
        char *a = stack_read_file(serve_log);
        char *b = stack_read_file(sim_log);
        fprintf(stderr, "--- serve log ---\n%s\n--- sim log ---\n%s\n", a, b);
        free(a);
        free(b);
        free(serve_log);
        free(sim_log);
    }
    const char *keep = getenv("FS_KEEP");
    if (s->dir && keep && *keep) {
        fprintf(stderr, "stack: kept %s (FS_KEEP)\n", s->dir);
    } else if (s->dir) {
        char *cmd = xasprintf("rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            clean = false;
        free(cmd);
    }
    free(s->dir);
    free(s->db);
    free(s->sim_base);
    free(s->crm_base);
    free(s->api_base);
    free(s->admin);
    json_decref(s->seed);
    json_decref(s->owners);
    json_decref(s->pipeline);
    free(s->cert);
    memset(s, 0, sizeof(*s));
    s->sim = s->serve = -1;
    return clean;
}

/* Sends body_text as it is (it need not be valid JSON) and parses the
 * answer. */
static json_t *call(const char *base, const char *token, const char *method,
                    const char *path, const char *body_text, long *status)
{
    char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    char *url = xasprintf("%s%s", base, path);
    struct http_test_response resp;

    http_test_request(method, url, headers, body_text, &resp);
    json_t *out = json_incref(resp.json);
    *status = resp.status;
    http_test_response_free(&resp);
    free(url);
    free(auth);
    return out;
}

json_t *stack_api(struct stack *s, const char *token, const char *method,
                  const char *path, const char *body, long *status)
{
    return call(s->api_base, token, method, path, body, status);
}

json_t *stack_deal(struct stack *s, const char *id)
{
    long status;
    char *path = xasprintf("/api/v1/deals/%s", id);
    json_t *deal = stack_api(s, s->admin, "GET", path, NULL, &status);

    free(path);
    if (status != 200) {
        json_decref(deal);
        return NULL;
    }
    return deal;
}

json_t *stack_deals(struct stack *s, bool include_deleted)
{
    json_t *all = json_array();
    char *cursor = NULL;

    for (;;) {
        long status;
        char *path = xasprintf("/api/v1/deals?limit=%d%s%s%s", PAGE_LIMIT,
                               include_deleted ? "&include_deleted=true" : "",
                               cursor ? "&cursor=" : "", cursor ? cursor : "");
        json_t *page = stack_api(s, s->admin, "GET", path, NULL, &status);
        free(path);
        free(cursor);
        cursor = NULL;
        if (status != 200) {
            json_decref(page);
            json_decref(all);
            return NULL;
        }
        json_array_extend(all, json_object_get(page, "deals"));
        const char *next =
            json_string_value(json_object_get(page, "next_cursor"));
        cursor = next ? xstrdup(next) : NULL;
        json_decref(page);
        if (!cursor)
            return all;
    }
}

json_t *stack_deal_by_crm_id(struct stack *s, const char *crm_id)
{
    json_t *deals = stack_deals(s, true);
    json_t *found = NULL;
    size_t i;
    json_t *d;

    json_array_foreach(deals, i, d)
    {
        const char *id = json_string_value(json_object_get(d, "crm_id"));
        if (id && strcmp(id, crm_id) == 0)
            found = json_incref(d);
    }
    json_decref(deals);
    return found;
}

char *stack_record_id(struct stack *s, const char *crm_id)
{
    json_t *deal = stack_deal_by_crm_id(s, crm_id);
    const char *id = stack_text(deal, "id");
    char *copy = id ? xstrdup(id) : NULL;

    json_decref(deal);
    return copy;
}

json_t *stack_patch(struct stack *s, const char *token, const char *id,
                    const char *body, long *status)
{
    char *path = xasprintf("/api/v1/deals/%s", id);
    json_t *r = stack_api(s, token, "PATCH", path, body, status);

    free(path);
    return r;
}

struct state_wait {
    struct stack *s;
    const char *id;
    const char *state;
};

static bool state_is(void *ctx)
{
    struct state_wait *w = ctx;
    json_t *deal = stack_deal(w->s, w->id);
    const char *state = stack_text(json_object_get(deal, "sync"), "state");
    bool match = state && strcmp(state, w->state) == 0;

    json_decref(deal);
    return match;
}

bool stack_wait_state(struct stack *s, const char *id, const char *state)
{
    struct state_wait w = {s, id, state};
    return http_test_poll(state_is, &w, STACK_WAIT_MS);
}

struct attempts_wait {
    struct stack *s;
    const char *id;
    int attempts;
};

static bool attempts_reached(void *ctx)
{
    struct attempts_wait *w = ctx;
    long status;
    json_t *r = stack_api(w->s, w->s->admin, "GET", "/api/v1/sync/status", NULL,
                          &status);
    size_t i;
    json_t *e;
    bool reached = false;

    json_array_foreach(json_object_get(r, "records"), i, e)
    {
        const char *id = stack_text(e, "id");
        reached |=
            id && strcmp(id, w->id) == 0 &&
            json_integer_value(json_object_get(e, "attempts")) >= w->attempts;
    }
    json_decref(r);
    return status == 200 && reached;
}

bool stack_wait_attempts(struct stack *s, const char *id, int attempts)
{
    struct attempts_wait w = {s, id, attempts};
    return http_test_poll(attempts_reached, &w, STACK_WAIT_MS);
}

struct deleted_wait {
    struct stack *s;
    const char *id;
    bool deleted;
    const char *reason;
};

static bool deleted_is(void *ctx)
{
    struct deleted_wait *w = ctx;
    json_t *deal = stack_deal(w->s, w->id);
    const char *reason = stack_text(deal, "deleted_reason");
    bool match = deal &&
                 json_is_true(json_object_get(deal, "deleted")) == w->deleted &&
                 (!w->reason || (reason && strcmp(reason, w->reason) == 0));

    json_decref(deal);
    return match;
}

bool stack_wait_deleted(struct stack *s, const char *id, bool deleted,
                        const char *reason)
{
    struct deleted_wait w = {s, id, deleted, reason};
    return http_test_poll(deleted_is, &w, STACK_WAIT_MS);
}

const char *stack_text(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

json_t *stack_sim(struct stack *s, const char *method, const char *path,
                  const char *body, long *status)
{
    return call(s->sim_base, NULL, method, path, body, status);
}

bool stack_faults(struct stack *s, const char *faults)
{
    long status;
    json_decref(stack_sim(s, "POST", "/_sim/faults", faults, &status));
    return status == 200;
}

int64_t stack_sim_stat(struct stack *s, const char *name, const char *kind)
{
    long status;
    json_t *stats = stack_sim(s, "GET", "/_sim/stats", NULL, &status);
    json_t *v = kind ? json_object_get(json_object_get(stats, name), kind)
                     : json_object_get(stats, name);
    int64_t n =
        status == 200 && json_is_integer(v) ? json_integer_value(v) : -1;
    json_decref(stats);
    return n;
}

json_t *stack_sim_deal(struct stack *s, const char *crm_id)
{
    long status;
    char *path = xasprintf("/_sim/deals/%s", crm_id);
    json_t *deal = stack_sim(s, "GET", path, NULL, &status);

    free(path);
    if (status != 200) {
        json_decref(deal);
        return NULL;
    }
    return deal;
}

json_t *stack_sim_deals(struct stack *s)
{
    json_t *all = json_array();
    int64_t offset = 0;

    for (;;) {
        long status;
        char *path = xasprintf("/_sim/deals?limit=%d&offset=%" PRId64,
                               PAGE_LIMIT, offset);
        json_t *page = stack_sim(s, "GET", path, NULL, &status);
        free(path);
        json_t *next = json_object_get(page, "next_offset");
        if (status != 200) {
            json_decref(page);
            json_decref(all);
            return NULL;
        }
        json_array_extend(all, json_object_get(page, "deals"));
        offset = json_is_integer(next) ? json_integer_value(next) : -1;
        json_decref(page);
        if (offset < 0)
            return all;
    }
}

json_t *stack_sim_fields(const json_t *sim_deal)
{
    json_t *fields = json_object_get(sim_deal, "fields");
    return fields ? json_deep_copy(fields) : json_object();
}

int64_t stack_sim_edit(struct stack *s, const char *crm_id, const char *fields)
{
    long status;
    char *path = xasprintf("/_sim/deals/%s", crm_id);
    char *body = xasprintf("{\"fields\":%s}", fields);
    json_t *r = stack_sim(s, "PATCH", path, body, &status);
    json_t *modified = json_object_get(r, "modified");
    int64_t t = status == 200 && json_is_integer(modified)
                    ? json_integer_value(modified)
                    : -1;

    json_decref(r);
    free(body);
    free(path);
    return t;
}

int64_t stack_metric(struct stack *s, const char *name)
{
    struct http_test_response resp;
    char *url = xasprintf("%s/metrics", s->api_base);
    size_t len = strlen(name);
    int64_t sum = 0;

    bool ok =
        http_test_request("GET", url, NULL, NULL, &resp) && resp.status == 200;
    free(url);
    for (const char *line = resp.body; ok && line && *line;) {
        if (strncmp(line, name, len) == 0 &&
            (line[len] == '{' || line[len] == ' ')) {
            const char *value = strchr(line + len, ' ');
            if (value)
                sum += strtoll(value + 1, NULL, 10);
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    http_test_response_free(&resp);
    return ok ? sum : -1;
}

static bool settled(void *ctx)
{
    struct stack *s = ctx;
    long status;
    json_t *idle = stack_sim(s, "GET", "/_sim/idle", NULL, &status);
    bool sim_idle =
        status == 200 && json_is_true(json_object_get(idle, "idle"));

    json_decref(idle);
    return sim_idle && stack_metric(s, "fieldsync_inbox_depth") == 0;
}

bool stack_settled(struct stack *s, int64_t timeout_ms)
{
    return http_test_poll(settled, s, timeout_ms);
}

struct quiet_wait {
    struct stack *s;
    int64_t passes; /* backstop passes needed */
    int quiet_polls;
};

static bool nothing_pending(struct stack *s)
{
    long status;
    json_t *r =
        stack_api(s, s->admin, "GET", "/api/v1/sync/status", NULL, &status);
    bool none = status == 200 &&
                json_integer_value(json_object_get(r, "pending")) == 0 &&
                json_integer_value(json_object_get(r, "failed")) == 0;

    json_decref(r);
    return none;
}

static bool quiet_twice(void *ctx)
{
    struct quiet_wait *w = ctx;
    bool quiet =
        stack_metric(w->s, "fieldsync_backstop_passes_total") >= w->passes &&
        settled(w->s) && nothing_pending(w->s);

    w->quiet_polls = quiet ? w->quiet_polls + 1 : 0;
    return w->quiet_polls >= 2;
}

bool stack_quiet(struct stack *s, int64_t timeout_ms)
{
    int64_t passes = stack_metric(s, "fieldsync_backstop_passes_total");
    struct quiet_wait w = {s, passes + 2, 0};

    return passes >= 0 && http_test_poll(quiet_twice, &w, timeout_ms);
}

struct field_wait {
    struct stack *s;
    const char *id;
    const char *field;
    const char *value;
    bool sim;
};

json_t *stack_crm_view(const json_t *deal, const char *field)
{
    if (strcmp(field, "stage") == 0)
        return json_object_get(deal, "crm_stage");
    return json_object_get(deal, field);
}

static bool field_has(void *ctx)
{
    struct field_wait *w = ctx;
    json_t *deal = NULL;
    json_t *fields = NULL;
    json_t *v;

    if (w->sim) {
        deal = stack_sim_deal(w->s, w->id);
        fields = deal ? stack_sim_fields(deal) : NULL;
        v = json_object_get(fields, w->field);
    } else {
        deal = stack_deal(w->s, w->id);
        v = stack_crm_view(deal, w->field);
    }
    bool match =
        v && (w->value ? json_is_string(v) &&
                             strcmp(json_string_value(v), w->value) == 0
                       : json_is_null(v));
    json_decref(fields);
    json_decref(deal);
    return match;
}

bool stack_wait_field(struct stack *s, const char *id, const char *field,
                      const char *value)
{
    struct field_wait w = {s, id, field, value, false};
    return http_test_poll(field_has, &w, STACK_WAIT_MS);
}

bool stack_wait_sim(struct stack *s, const char *crm_id, const char *field,
                    const char *value)
{
    return stack_wait_sim_ms(s, crm_id, field, value, STACK_WAIT_MS);
}

bool stack_wait_sim_ms(struct stack *s, const char *crm_id, const char *field,
                       const char *value, int64_t timeout_ms)
{
    struct field_wait w = {s, crm_id, field, value, true};
    return http_test_poll(field_has, &w, timeout_ms);
}

bool stack_holds(bool (*cond)(void *ctx), void *ctx, int64_t ms)
{
    int64_t end = clock_mono_ms() + ms;

    do {
        if (!cond(ctx))
            return false;
        clock_sleep_ms(10);
    } while (clock_mono_ms() < end);
    return cond(ctx);
}

void stack_wait_past(int64_t t)
{
    while (clock_now_ms() <= t)
        clock_sleep_ms(1);
}

/* Aborts the test run: a scenario asked for seed data that is not
 * there, which no assertion of its own could report. */
static void no_such(const char *what, const char *which)
{
    fprintf(stderr, "stack: the seed has no %s %s\n", what, which);
    abort();
}

const char *stack_seed_id(const struct stack *s, size_t n)
{
    const char *id = json_string_value(json_array_get(s->seed, n));
    if (!id) {
        char num[32];
        snprintf(num, sizeof(num), "%zu", n);
        no_such("deal", num);
    }
    return id;
}

const char *stack_owner_id(const struct stack *s, size_t n)
{
    const char *id = stack_text(json_array_get(s->owners, n), "id");
    if (!id) {
        char num[32];
        snprintf(num, sizeof(num), "%zu", n);
        no_such("owner", num);
    }
    return id;
}

const char *stack_pipeline_id(const struct stack *s)
{
    const char *id = stack_text(s->pipeline, "id");
    if (!id)
        no_such("pipeline", "id");
    return id;
}

const char *stack_stage_id(const struct stack *s, const char *label)
{
    size_t i;
    json_t *stage;

    json_array_foreach(json_object_get(s->pipeline, "stages"), i, stage)
    {
        const char *name = stack_text(stage, "seed_name");
        if (name && strcmp(name, label) == 0)
            return stack_text(stage, "id");
    }
    no_such("stage", label);
    return NULL;
}

char *stack_stage_map_body(const struct stack *s, const char *const *words)
{
    json_t *map = json_object();
    json_t *defaults = json_object();
    bool after_default = false;

    for (size_t i = 0; words[i]; i++) {
        const char *eq = strchr(words[i], '=');
        if (strcmp(words[i], "--default") == 0) {
            after_default = true;
            continue;
        }
        if (!eq)
            no_such("stage map word", words[i]);
        char *left = xstrndup(words[i], (size_t)(eq - words[i]));
        if (after_default)
            json_object_set_new(defaults, left,
                                json_string(stack_stage_id(s, eq + 1)));
        else
            json_object_set_new(map, stack_stage_id(s, left),
                                json_string(eq + 1));
        free(left);
    }
    json_t *body = json_pack("{s:o, s:{s:o}}", "map", map, "defaults",
                             stack_pipeline_id(s), defaults);
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    return text;
}

bool stack_set_stage_map(struct stack *s, const char *const *words)
{
    char *text = stack_stage_map_body(s, words);
    long status;

    /* Beside another stack, the map is its standby connection's. */
    if (s->beside) {
        json_t *body = json_loads(text, 0, NULL);
        json_object_set_new(body, "connection", json_integer(s->connection));
        free(text);
        text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(body);
    }
    json_decref(stack_api(s, s->admin, "PUT", "/api/v1/admin/stage-map", text,
                          &status));
    free(text);
    return status == 200;
}

char *stack_connection_secret(struct stack *s, const char *account_id,
                              const char *name)
{
    static const char sql[] =
        "SELECT value FROM connection_secrets t JOIN connections c ON "
        "c.id = t.connection_id WHERE c.account_id = ?1 AND t.name = ?2 "
        "ORDER BY c.id DESC LIMIT 1";
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    char *value = NULL;

    /* Opened read-write though it only reads: a read-only connection to
     * the WAL database while the server opened or closed it at the same
     * moment failed with SQLITE_CANTOPEN (test_limits, under load). */
    if (sqlite3_open_v2(s->db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(q, 1, account_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW)
        value = xstrdup((const char *)sqlite3_column_text(q, 0));
out:
    sqlite3_finalize(q);
    sqlite3_close(db);
    return value;
}

/* One number the query (with ?1 bound to arg) reads from the database;
 * -1 when it cannot be read. */
static int64_t db_number(const struct stack *s, const char *sql, int64_t arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int64_t n = -1;

    if (sqlite3_open_v2(s->db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_bind_parameter_count(q) > 0)
        sqlite3_bind_int64(q, 1, arg);
    if (sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
out:
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

int64_t stack_db_pages(struct stack *s)
{
    return db_number(s, "PRAGMA page_count", 0);
}

size_t stack_log_count(const struct stack *s, const char *program,
                       const char *text)
{
    char *path = xasprintf("%s/%s.log", s->dir, program);
    char *log = stack_read_file(path);
    size_t n = 0;

    for (const char *at = log; *text && (at = strstr(at, text));
         at += strlen(text))
        n++;
    free(log);
    free(path);
    return n;
}

int64_t stack_inbox_count_since(struct stack *s, int64_t since)
{
    return db_number(s, "SELECT count(*) FROM inbox WHERE received_at >= ?1",
                     since);
}

/* The fieldsync commands: serve, org, connect, user, status and retry,
 * with the option parser they share. Errors are one line on stderr. */
#include "main/cli.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "services/app.h"
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ORG_LIST_MAX_GAP 16

static const char *db_path = CLI_DEFAULT_DB;

const char *cli_db_path(void)
{
    return db_path;
}

void cli_set_db_path(const char *path)
{
    db_path = path;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("fieldsync: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_EXIT_FAIL;
}

bool cli_global_option(const char *name, const char *value, bool *bad)
{
    enum log_level level;

    if (strcmp(name, "db") == 0) {
        cli_set_db_path(value);
        return true;
    }
    if (strcmp(name, "log-level") == 0) {
        if (log_parse_level(value, &level) != 0) {
            fprintf(stderr, "fieldsync: --log-level takes error, warn, notice, "
                            "info or debug\n");
            *bad = true;
        } else {
            log_set_level(level);
        }
        return true;
    }
    return false;
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;

    fputs("fieldsync: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return CLI_EXIT_USAGE;
}

static struct cli_option *find_option(struct cli_option *opts, size_t n,
                                      const char *name, size_t name_len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(opts[i].name) == name_len &&
            strncmp(opts[i].name, name, name_len) == 0)
            return &opts[i];
    }
    return NULL;
}

static bool is_global(const char *name, size_t len)
{
    return (len == 2 && strncmp(name, "db", 2) == 0) ||
           (len == 9 && strncmp(name, "log-level", 9) == 0);
}

int cli_parse(int argc, char **argv, const char *usage, struct cli_option *opts,
              size_t n_opts, const char **positional, size_t n_positional)
{
    size_t n_pos = 0;
    bool only_positional = false;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (only_positional || arg[0] != '-' || arg[1] == '\0') {
            if (n_pos == n_positional)
                return cli_usage_error(usage, "unexpected argument '%s'", arg);
            positional[n_pos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        if (arg[1] != '-')
            return cli_usage_error(usage, "unknown option '%s'", arg);

        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        struct cli_option *opt = find_option(opts, n_opts, name, name_len);
        bool global = !opt && is_global(name, name_len);
        if (!opt && !global)
            return cli_usage_error(usage, "unknown option '--%.*s'",
                                   (int)name_len, name);

        const char *value = NULL;
        if (global || opt->metavar) {
            /* "--group-by --preview" is a forgotten value, not a name. */
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                value = argv[++i];
            else
                return cli_usage_error(usage, "--%.*s needs a value",
                                       (int)name_len, name);
        } else if (eq) {
            return cli_usage_error(usage, "--%s takes no value", opt->name);
        }

        if (global) {
            char *gname = xstrndup(name, name_len);
            bool bad = false;
            cli_global_option(gname, value, &bad);
            free(gname);
            if (bad)
                return CLI_EXIT_USAGE;
            continue;
        }
        if (opt->given)
            return cli_usage_error(usage, "--%s given twice", opt->name);
        opt->given = true;
        opt->value = value;
    }
    if (n_pos < n_positional)
        return cli_usage_error(usage, "missing argument");
    return -1;
}

/* Checks that every named option was given. */
int cli_require(const char *usage, const struct cli_option *opts, size_t n_opts,
                const char *const *names, size_t n_names)
{
    for (size_t i = 0; i < n_names; i++) {
        for (size_t j = 0; j < n_opts; j++) {
            if (strcmp(opts[j].name, names[i]) == 0 && !opts[j].given)
                return cli_usage_error(usage, "--%s is required", names[i]);
        }
    }
    return -1;
}

bool cli_parse_count(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;

    if (!s || *s == '\0')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int cli_create_store(struct store **out)
{
    fs_result r = store_open(cli_db_path(), out);

    if (r != FS_OK)
        return cli_fail("cannot open the database %s: %s", cli_db_path(),
                        fs_result_name(r));
    return CLI_EXIT_OK;
}

int cli_open_store(struct store **out)
{
    /* A mistyped --db or the wrong folder must not make an empty one. */
    if (access(cli_db_path(), F_OK) != 0)
        return cli_fail("no database at %s (give --db PATH; "
                        "`fieldsync org add` makes a new one)",
                        cli_db_path());
    return cli_create_store(out);
}

int cli_find_org(struct store *s, const char *name, int64_t *id)
{
    fs_result r = store_org_find(s, name, id);

    if (r == FS_ERR_NOT_FOUND)
        return cli_fail("no org named '%s' in %s", name, cli_db_path());
    if (r != FS_OK)
        return cli_fail("cannot read orgs: %s", fs_result_name(r));
    return CLI_EXIT_OK;
}

/* ---- serve ---- */

static const char serve_usage[] =
    "usage: fieldsync serve [--listen ADDR] [--port-file PATH]\n"
    "                       [--tls-cert PEM --tls-key PEM]\n"
    "                       [--backstop-ms N] [--fail-after-ms N]\n"
    "                       [--push-window-ms N] [--max-connections N]\n"
    "                       [--max-connections-per-ip N]\n"
    "                       [--request-timeout-ms N] [--ingest-queue N]\n"
    "Runs the service until SIGINT or SIGTERM.\n"
    "  --listen ADDR        host:port to listen on (default "
    "127.0.0.1:8080;\n"
    "                       port 0 picks a free one)\n"
    "  --port-file PATH     write the bound port to PATH once listening\n"
    "  --tls-cert PEM       serve HTTPS with this certificate (chain) file\n"
    "  --tls-key PEM        and this private key file\n"
    "  --backstop-ms N      period of the incremental CRM read (60000)\n"
    "  --fail-after-ms N    failing this long marks a record failed "
    "(300000)\n"
    "  --push-window-ms N   wait for more edits to batch (20)\n"
    "  --max-connections N  connections open at once; more get 503 (256)\n"
    "  --max-connections-per-ip N  from one address (0: no limit)\n"
    "  --request-timeout-ms N  a request must arrive whole within (30000)\n"
    "  --ingest-queue N     webhook events waiting for a commit; more get\n"
    "                       503 (200000)\n"
    "  --max-db-pages N     test hook: cap the database at N pages, as a\n"
    "                       full disk would\n";

/* A PEM file read whole. */
#define PEM_MAX_BYTES (256 * 1024)

static int read_pem(const char *option, const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    struct buf b = {0};
    char chunk[4096];
    size_t n;

    if (!f)
        return cli_fail("cannot read --%s %s: %s", option, path,
                        strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 &&
           b.len <= PEM_MAX_BYTES)
        buf_append(&b, chunk, n);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || b.len == 0 || b.len > PEM_MAX_BYTES) {
        buf_free(&b);
        return cli_fail("--%s %s is empty, unreadable or over %d bytes", option,
                        path, PEM_MAX_BYTES);
    }
    buf_append(&b, "", 1); /* the NUL libmicrohttpd expects */
    *out = buf_steal(&b);
    return CLI_EXIT_OK;
}

/* Written whole under a temporary name, then renamed, so a reader never
 * sees a partial port. */
static int write_port_file(const char *path, unsigned port)
{
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = CLI_EXIT_OK;
    bool ok = f != NULL;

    if (f) {
        ok = fprintf(f, "%u\n", port) > 0;
        ok = fclose(f) == 0 && ok;
    }
    if (!ok) {
        rc = cli_fail("cannot write the port file %s: %s", path,
                      strerror(errno));
    } else if (rename(tmp, path) != 0) {
        rc = cli_fail("cannot write the port file %s: %s", path,
                      strerror(errno));
    }
    free(tmp);
    return rc;
}

enum serve_opt {
    SERVE_LISTEN,
    SERVE_PORT_FILE,
    SERVE_BACKSTOP_MS,
    SERVE_FAIL_AFTER_MS,
    SERVE_PUSH_WINDOW_MS,
    SERVE_MAX_CONNECTIONS,
    SERVE_MAX_PER_IP,
    SERVE_REQUEST_TIMEOUT_MS,
    SERVE_INGEST_QUEUE,
    SERVE_MAX_DB_PAGES,
    SERVE_TLS_CERT,
    SERVE_TLS_KEY,
    SERVE_OPT_COUNT,
};

/* The numeric options into the config. */
static int serve_numbers(const struct cli_option *opts,
                         struct app_config *config)
{
    static const struct {
        enum serve_opt opt;
        int64_t min, max;
        const char *what;
    } ranges[] = {
        {SERVE_BACKSTOP_MS, 0, INT64_C(86400000) * 365, "milliseconds"},
        {SERVE_FAIL_AFTER_MS, 0, INT64_C(86400000) * 365, "milliseconds"},
        {SERVE_PUSH_WINDOW_MS, 0, INT64_C(86400000) * 365, "milliseconds"},
        {SERVE_MAX_CONNECTIONS, 1, 100000, "count"},
        {SERVE_MAX_PER_IP, 0, 100000, "count"},
        {SERVE_REQUEST_TIMEOUT_MS, 100, 3600000, "milliseconds"},
        {SERVE_INGEST_QUEUE, 1, 100000000, "count"},
        {SERVE_MAX_DB_PAGES, 1, INT32_MAX, "count"},
    };
    int64_t v[sizeof(ranges) / sizeof(ranges[0])];

    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        const struct cli_option *o = &opts[ranges[i].opt];
        v[i] = -1;
        if (o->given &&
            !cli_parse_count(o->value, ranges[i].min, ranges[i].max, &v[i]))
            return cli_usage_error(
                serve_usage, "--%s takes a %s in %" PRId64 "..%" PRId64,
                o->name, ranges[i].what, ranges[i].min, ranges[i].max);
    }
    if (v[0] >= 0)
        config->backstop_interval_ms = v[0];
    if (v[1] >= 0)
        config->fail_after_ms = v[1];
    if (v[2] >= 0)
        config->push_window_ms = v[2];
    if (v[3] >= 0)
        config->max_connections = (unsigned)v[3];
    if (v[4] >= 0)
        config->max_per_ip = (unsigned)v[4];
    if (v[5] >= 0)
        config->request_timeout_ms = (unsigned)v[5];
    if (v[6] >= 0)
        config->ingest_max_queued = (size_t)v[6];
    if (v[7] >= 0)
        config->max_db_pages = v[7];
    return -1;
}

int cli_serve(int argc, char **argv)
{
    struct cli_option opts[SERVE_OPT_COUNT] = {
        [SERVE_LISTEN] = {"listen", "ADDR", NULL, false},
        [SERVE_PORT_FILE] = {"port-file", "PATH", NULL, false},
        [SERVE_BACKSTOP_MS] = {"backstop-ms", "N", NULL, false},
        [SERVE_FAIL_AFTER_MS] = {"fail-after-ms", "N", NULL, false},
        [SERVE_PUSH_WINDOW_MS] = {"push-window-ms", "N", NULL, false},
        [SERVE_MAX_CONNECTIONS] = {"max-connections", "N", NULL, false},
        [SERVE_MAX_PER_IP] = {"max-connections-per-ip", "N", NULL, false},
        [SERVE_REQUEST_TIMEOUT_MS] = {"request-timeout-ms", "N", NULL, false},
        [SERVE_INGEST_QUEUE] = {"ingest-queue", "N", NULL, false},
        [SERVE_MAX_DB_PAGES] = {"max-db-pages", "N", NULL, false},
        [SERVE_TLS_CERT] = {"tls-cert", "PEM", NULL, false},
        [SERVE_TLS_KEY] = {"tls-key", "PEM", NULL, false},
    };
    char *cert = NULL;
    char *key = NULL;
    struct app *app = NULL;
    int rc = cli_parse(argc, argv, serve_usage, opts, SERVE_OPT_COUNT, NULL, 0);
    if (rc >= 0)
        return rc;

    struct app_config config;
    app_config_defaults(&config);
    config.db_path = cli_db_path();
    if (opts[SERVE_LISTEN].given)
        config.listen = opts[SERVE_LISTEN].value;
    if ((rc = serve_numbers(opts, &config)) >= 0)
        return rc;
    if (opts[SERVE_TLS_CERT].given != opts[SERVE_TLS_KEY].given)
        return cli_usage_error(serve_usage,
                               "--tls-cert and --tls-key go together");
    if (opts[SERVE_TLS_CERT].given) {
        rc = read_pem("tls-cert", opts[SERVE_TLS_CERT].value, &cert);
        if (rc == CLI_EXIT_OK)
            rc = read_pem("tls-key", opts[SERVE_TLS_KEY].value, &key);
        if (rc != CLI_EXIT_OK)
            goto out;
        config.tls_cert = cert;
        config.tls_key = key;
    }

    /* Blocked before any thread starts, so every thread inherits the mask
     * and only sigwait below sees these signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    fs_result r = app_start(&config, &app);
    if (r != FS_OK) {
        rc = cli_fail("cannot start on %s: %s%s", config.listen,
                      fs_result_name(r),
                      cert && r == FS_ERR_INVALID
                          ? " (is the key the certificate's, both PEM?)"
                          : "");
        goto out;
    }

    const char *colon = strrchr(config.listen, ':');
    int host_len = colon ? (int)(colon - config.listen) : 0;
    printf("fieldsync serving on %s://%.*s:%u\n", cert ? "https" : "http",
           host_len, host_len ? config.listen : "127.0.0.1",
           (unsigned)app_port(app));
    fflush(stdout);
    rc = CLI_EXIT_OK;
    if (opts[SERVE_PORT_FILE].given)
        rc = write_port_file(opts[SERVE_PORT_FILE].value, app_port(app));

    int sig = 0;
    if (rc == CLI_EXIT_OK) {
        sigwait(&set, &sig);
        log_notice("stopping signal=%d", sig);
    }
    app_stop(app);
out:
    free(cert);
    free(key);
    return rc;
}

/* ---- org ---- */

static const char org_usage[] = "usage: fieldsync org add NAME\n"
                                "       fieldsync org list\n"
                                "Adds an org (printing its id) or lists "
                                "them.\n";

/* Org ids are never deleted, so listing walks them in order; a short gap
 * is tolerated in case an insert's id was skipped. */
static int org_list(struct store *s)
{
    int misses = 0;

    printf("id\tname\n");
    for (int64_t id = 1; misses < ORG_LIST_MAX_GAP; id++) {
        char *name = NULL;
        fs_result r = store_org_name(s, id, &name);
        if (r == FS_ERR_NOT_FOUND) {
            misses++;
            continue;
        }
        if (r != FS_OK)
            return cli_fail("cannot read orgs: %s", fs_result_name(r));
        misses = 0;
        printf("%" PRId64 "\t%s\n", id, name);
        free(name);
    }
    return CLI_EXIT_OK;
}

int cli_org(int argc, char **argv)
{
    const char *pos[1] = {NULL};
    struct store *s = NULL;
    int rc;

    if (argc < 2)
        return cli_usage_error(org_usage, "org needs add or list");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(org_usage, stdout);
        return CLI_EXIT_OK;
    }
    bool add = strcmp(argv[1], "add") == 0;
    if (!add && strcmp(argv[1], "list") != 0)
        return cli_usage_error(org_usage, "unknown org command '%s'", argv[1]);

    rc = cli_parse(argc - 1, argv + 1, org_usage, NULL, 0, pos, add ? 1 : 0);
    if (rc >= 0)
        return rc;
    if (add && (pos[0][0] == '\0' || strlen(pos[0]) > 255))
        return cli_usage_error(org_usage, "an org name is 1 to 255 bytes");
    rc = add ? cli_create_store(&s) : cli_open_store(&s);
    if (rc != CLI_EXIT_OK)
        return rc;

    if (add) {
        int64_t id = 0;
        fs_result r = store_org_add(s, pos[0], &id);
        if (r == FS_ERR_CONFLICT)
            rc = cli_fail("an org named '%s' exists", pos[0]);
        else if (r != FS_OK)
            rc = cli_fail("cannot add the org: %s", fs_result_name(r));
        else
            printf("%" PRId64 "\n", id);
    } else {
        rc = org_list(s);
    }
    store_close(s);
    return rc;
}

/* ---- user ---- */

static const char user_usage[] =
    "usage: fieldsync user add --org NAME --name N --role rep|admin\n"
    "                          [--email E] [--owner-id ID]\n"
    "       fieldsync user list --org NAME\n"
    "       fieldsync user revoke --org NAME --id N\n"
    "       fieldsync user set-owner --org NAME --id N --owner-id ID\n"
    "                                [--provider P]\n"
    "add prints the new user's API token once; only its hash is kept.\n"
    "  --owner-id ID   the user's owner id in the CRM (a rep edits the\n"
    "                  deals with that owner, and owns the deals of their\n"
    "                  territories); set-owner with '' removes it\n"
    "  --provider P    hubspot, pipedrive or attio (default: the org's\n"
    "                  current CRM); a user has one owner id per CRM\n";

/* An owner id the org's CRM does not have would give the user deals of
 * no one: refused, when the CRM's owners have been read. */
static int check_owner_known(struct store *s, int64_t org_id, const char *owner)
{
    struct connection conn = {0};
    bool known = true;

    if (!owner || !*owner)
        return CLI_EXIT_OK;
    fs_result r = store_connection_for_org(s, org_id, &conn);
    if (r == FS_OK)
        r = store_crm_owner_known(s, conn.id, owner, &known);
    connection_clear(&conn);
    if (r != FS_OK && r != FS_ERR_NOT_FOUND)
        return cli_fail("cannot read the CRM's owners: %s", fs_result_name(r));
    if (!known)
        return cli_fail("%s is not an owner in the org's CRM", owner);
    return CLI_EXIT_OK;
}

static int user_add(struct store *s, int64_t org_id, struct cli_option *opts)
{
    enum user_role role;
    int64_t id = 0;
    char *token = NULL;

    if (store_role_parse(opts[2].value, &role) != FS_OK)
        return cli_usage_error(user_usage, "--role is rep or admin");
    int rc = check_owner_known(s, org_id, opts[4].value);
    if (rc != CLI_EXIT_OK)
        return rc;
    fs_result r = store_user_add(s, org_id, opts[1].value, opts[3].value, role,
                                 opts[4].value, &id, &token);
    if (r == FS_ERR_CONFLICT)
        return cli_fail("the org already has a user with that email");
    if (r != FS_OK)
        return cli_fail("cannot add the user: %s", fs_result_name(r));
    printf("user %" PRId64 " added (%s)\ntoken: %s\n", id,
           store_role_name(role), token);
    free(token);
    return CLI_EXIT_OK;
}

static int user_list(struct store *s, int64_t org_id)
{
    struct user *users = NULL;
    size_t n = 0;
    fs_result r = store_users_list(s, org_id, &users, &n);

    if (r != FS_OK)
        return cli_fail("cannot list users: %s", fs_result_name(r));
    printf("id\trole\tstate\towner_id\temail\tname\n");
    for (size_t i = 0; i < n; i++)
        printf("%" PRId64 "\t%s\t%s\t%s\t%s\t%s\n", users[i].id,
               store_role_name(users[i].role),
               users[i].revoked ? "revoked" : "active",
               users[i].crm_owner_id ? users[i].crm_owner_id : "-",
               users[i].email ? users[i].email : "-", users[i].name);
    store_users_free(users, n);
    return CLI_EXIT_OK;
}

/* An org whose last admin is revoked could no longer be run from the API
 * at all. */
static int check_not_last_admin(struct store *s, int64_t org_id, int64_t id)
{
    struct user *users = NULL;
    size_t n = 0, admins = 0;
    bool is_admin = false;

    fs_result r = store_users_list(s, org_id, &users, &n);
    if (r != FS_OK)
        return cli_fail("cannot list users: %s", fs_result_name(r));
    for (size_t i = 0; i < n; i++) {
        if (users[i].role != USER_ROLE_ADMIN || users[i].revoked)
            continue;
        admins++;
        is_admin = is_admin || users[i].id == id;
    }
    store_users_free(users, n);
    if (is_admin && admins == 1)
        return cli_fail("user %" PRId64 " is the org's only admin; add "
                        "another admin first",
                        id);
    return CLI_EXIT_OK;
}

static int user_revoke(struct store *s, int64_t org_id, const char *id_text)
{
    int64_t id = 0;

    if (!cli_parse_count(id_text, 1, INT64_MAX, &id))
        return cli_usage_error(user_usage, "--id takes a user id");
    int rc = check_not_last_admin(s, org_id, id);
    if (rc != CLI_EXIT_OK)
        return rc;
    fs_result r = store_user_revoke(s, org_id, id);
    if (r == FS_ERR_NOT_FOUND)
        return cli_fail("no user %" PRId64 " in that org", id);
    if (r != FS_OK)
        return cli_fail("cannot revoke the user: %s", fs_result_name(r));
    printf("user %" PRId64 " revoked\n", id);
    return CLI_EXIT_OK;
}

static int user_set_owner(struct store *s, int64_t org_id,
                          const struct cli_option *opts)
{
    int64_t id = 0;
    const char *owner = opts[4].value;

    if (!cli_parse_count(opts[5].value, 1, INT64_MAX, &id))
        return cli_usage_error(user_usage, "--id takes a user id");
    if (strlen(owner) > 255)
        return cli_usage_error(user_usage, "an owner id is at most 255 bytes");
    fs_result r = store_user_set_owner_id(s, org_id, id, opts[6].value,
                                          *owner ? owner : NULL);
    if (r == FS_ERR_NOT_FOUND)
        return cli_fail("no user %" PRId64 " in that org", id);
    if (r != FS_OK)
        return cli_fail("cannot set the owner id: %s", fs_result_name(r));
    printf("user %" PRId64 " owner id %s\n", id, *owner ? owner : "removed");
    return CLI_EXIT_OK;
}

int cli_user(int argc, char **argv)
{
    struct cli_option opts[] = {
        {"org", "NAME", NULL, false},    {"name", "N", NULL, false},
        {"role", "ROLE", NULL, false},   {"email", "E", NULL, false},
        {"owner-id", "ID", NULL, false}, {"id", "N", NULL, false},
        {"provider", "P", NULL, false},
    };
    static const char *const set_owner_required[] = {"org", "id", "owner-id"};
    static const char *const add_required[] = {"org", "name", "role"};
    static const char *const list_required[] = {"org"};
    static const char *const revoke_required[] = {"org", "id"};
    const char *pos[1] = {NULL};
    struct store *s = NULL;
    int64_t org_id = 0;
    int rc;

    if (argc < 2)
        return cli_usage_error(user_usage, "user needs add, list or revoke");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(user_usage, stdout);
        return CLI_EXIT_OK;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "add") != 0 && strcmp(cmd, "list") != 0 &&
        strcmp(cmd, "revoke") != 0 && strcmp(cmd, "set-owner") != 0)
        return cli_usage_error(user_usage, "unknown user command '%s'", cmd);

    rc = cli_parse(argc - 1, argv + 1, user_usage, opts, 7, pos, 0);
    if (rc >= 0)
        return rc;
    if (strcmp(cmd, "add") == 0)
        rc = cli_require(user_usage, opts, 7, add_required, 3);
    else if (strcmp(cmd, "list") == 0)
        rc = cli_require(user_usage, opts, 7, list_required, 1);
    else if (strcmp(cmd, "set-owner") == 0)
        rc = cli_require(user_usage, opts, 7, set_owner_required, 3);
    else
        rc = cli_require(user_usage, opts, 7, revoke_required, 2);
    if (rc >= 0)
        return rc;
    if (opts[1].given &&
        (opts[1].value[0] == '\0' || strlen(opts[1].value) > 255))
        return cli_usage_error(user_usage, "a user name is 1 to 255 bytes");

    if ((rc = cli_open_store(&s)) != CLI_EXIT_OK)
        return rc;
    if ((rc = cli_find_org(s, opts[0].value, &org_id)) == CLI_EXIT_OK) {
        if (strcmp(cmd, "add") == 0)
            rc = user_add(s, org_id, opts);
        else if (strcmp(cmd, "list") == 0)
            rc = user_list(s, org_id);
        else if (strcmp(cmd, "set-owner") == 0)
            rc = user_set_owner(s, org_id, opts);
        else
            rc = user_revoke(s, org_id, opts[5].value);
    }
    store_close(s);
    return rc;
}

/* ---- status and retry ---- */

static const char status_usage[] =
    "usage: fieldsync status --org NAME\n"
    "Prints how many of the org's deals wait to reach the CRM, and the\n"
    "failed ones with their errors.\n";

static const char retry_usage[] =
    "usage: fieldsync retry --org NAME\n"
    "Puts the org's failed deals back in line for the CRM. A running\n"
    "service picks them up on its next push pass.\n";

/* Opens the store and finds the org named by the only option. */
static int org_command_setup(int argc, char **argv, const char *usage,
                             struct store **s, int64_t *org_id)
{
    struct cli_option opts[] = {{"org", "NAME", NULL, false}};
    static const char *const required[] = {"org"};

    int rc = cli_parse(argc, argv, usage, opts, 1, NULL, 0);
    if (rc >= 0)
        return rc;
    if ((rc = cli_require(usage, opts, 1, required, 1)) >= 0)
        return rc;
    if ((rc = cli_open_store(s)) != CLI_EXIT_OK)
        return rc;
    if ((rc = cli_find_org(*s, opts[0].value, org_id)) != CLI_EXIT_OK) {
        store_close(*s);
        *s = NULL;
        return rc;
    }
    return -1;
}

static void print_pending_fields(unsigned mask)
{
    const char *sep = "";

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (mask & (1u << f)) {
            printf("%s%s", sep, deal_fields[f].name);
            sep = ",";
        }
    }
    if (!*sep)
        printf("-");
}

int cli_status(int argc, char **argv)
{
    struct store *s = NULL;
    struct sync_status_entry *entries = NULL;
    size_t n = 0;
    int64_t org_id = 0;

    int rc = org_command_setup(argc, argv, status_usage, &s, &org_id);
    if (rc >= 0)
        return rc;
    fs_result r = store_sync_status(s, org_id, 0, &entries, &n);
    if (r != FS_OK) {
        store_close(s);
        return cli_fail("cannot read the sync status: %s", fs_result_name(r));
    }

    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += entries[i].failed ? 1 : 0;
    printf("pending: %zu\nfailed: %zu\n", n - failed, failed);
    for (size_t i = 0; i < n; i++) {
        char since[32];
        if (!entries[i].failed)
            continue;
        clock_format_iso(entries[i].first_failure_at, since);
        printf("failed %s crm_id=%s attempts=%d since=%s fields=",
               entries[i].record_id,
               entries[i].crm_id ? entries[i].crm_id : "-", entries[i].attempts,
               since);
        print_pending_fields(entries[i].pending_mask);
        printf(" error: %s\n",
               entries[i].last_error ? entries[i].last_error : "-");
    }
    store_sync_status_free(entries, n);
    store_close(s);
    return CLI_EXIT_OK;
}

int cli_retry(int argc, char **argv)
{
    struct store *s = NULL;
    int64_t org_id = 0;
    int64_t count = 0;

    int rc = org_command_setup(argc, argv, retry_usage, &s, &org_id);
    if (rc >= 0)
        return rc;
    fs_result r = store_sync_retry_failed(s, org_id, &count);
    store_close(s);
    if (r != FS_OK)
        return cli_fail("cannot retry: %s", fs_result_name(r));
    printf("requeued %" PRId64 "\n", count);
    return CLI_EXIT_OK;
}

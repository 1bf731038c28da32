/* fieldsync connect: links an org to a CRM account. Each CRM names the
 * options it needs in a table here; the connection is then checked
 * against the CRM by its provider (credentials, the fields it maps)
 * before it is stored. An org's first connection is its primary CRM; a
 * later one waits as a standby until `fieldsync switch` makes it primary. */
#include "main/cli.h"

#include "base/alloc.h"
#include "providers/oauth.h"
#include "providers/provider.h"
#include "services/connect.h"
#include "services/backstop.h"
#include "services/tokens.h"
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_FILE_MAX 4096
#define CONNECT_TIMEOUT_MS 30000
#define CONNECT_MAX_OPTIONS 24

/* Where an option's value goes. */
enum connect_target {
    TO_TOKEN,               /* secret */
    TO_CLIENT_SECRET,       /* secret */
    TO_WEBHOOK_USER,        /* secret */
    TO_REFRESH_TOKEN,       /* secret: OAuth, instead of a static token */
    TO_OAUTH_CLIENT_SECRET, /* secret: when not the client secret */
    TO_OAUTH_CLIENT_ID,
    TO_ACCOUNT,
    TO_APP,
    TO_RATE_WINDOW,
    TO_RATE_DAILY,
    TO_SETTING,    /* a string in the provider's settings under its name */
    TO_PUBLIC_URL, /* where the CRM reaches fieldsync, to register its
                      webhook (providers with register_webhook) */
};

struct connect_flag {
    const char *name;
    const char *metavar;
    enum connect_target target;
    bool required;
    bool numeric;
};

struct connect_spec {
    const char *crm;
    const char *default_base_url;
    const struct connect_flag *flags;
    size_t n_flags;
    const char *usage;
};

static const struct connect_flag hubspot_flags[] = {
    {"token", "T", TO_TOKEN, false, false},
    {"refresh-token", "T", TO_REFRESH_TOKEN, false, false},
    {"oauth-client-id", "ID", TO_OAUTH_CLIENT_ID, false, false},
    {"client-secret", "S", TO_CLIENT_SECRET, true, false},
    {"app-id", "N", TO_APP, true, true},
    {"portal-id", "N", TO_ACCOUNT, true, true},
    {"rate-10s", "N", TO_RATE_WINDOW, false, true},
    {"rate-daily", "N", TO_RATE_DAILY, false, true},
};

static const struct connect_flag attio_flags[] = {
    {"token", "T", TO_TOKEN, true, false},
    {"webhook-secret", "S", TO_CLIENT_SECRET, false, false},
    {"public-url", "URL", TO_PUBLIC_URL, false, false},
    {"object", "SLUG", TO_SETTING, false, false},
    {"map", "FIELD=ATTR,...", TO_SETTING, false, false},
    {"rate-reads", "N", TO_RATE_WINDOW, false, true},
    {"rate-writes", "N", TO_SETTING, false, true},
};

static const struct connect_flag pipedrive_flags[] = {
    {"token", "T", TO_TOKEN, true, false},
    {"company-id", "N", TO_ACCOUNT, true, true},
    {"user-id", "N", TO_APP, true, true},
    {"webhook-user", "U", TO_WEBHOOK_USER, true, false},
    {"webhook-password", "P", TO_CLIENT_SECRET, false, false},
    {"public-url", "URL", TO_PUBLIC_URL, false, false},
    {"rate-2s", "N", TO_RATE_WINDOW, false, true},
    {"rate-daily", "N", TO_RATE_DAILY, false, true},
};

static const struct connect_spec specs[] = {
    {"hubspot", "https://api.hubapi.com", hubspot_flags,
     sizeof(hubspot_flags) / sizeof(hubspot_flags[0]),
     "usage: fieldsync connect hubspot --org NAME (--token T | --token-file "
     "PATH\n"
     "         | --oauth-client-id ID (--refresh-token T | --refresh-token-file "
     "PATH))\n"
     "         (--client-secret S | --client-secret-file PATH)\n"
     "         --app-id N --portal-id N [--base-url URL]\n"
     "         [--rate-10s N] [--rate-daily N]\n"
     "  --token          the private app's access token\n"
     "  --oauth-client-id, --refresh-token  or a public app's OAuth client\n"
     "                   id and the refresh token of its install: access\n"
     "                   tokens are then refreshed before they expire\n"
     "  --client-secret  the app's client secret (signs webhooks; OAuth)\n"
     "  --app-id         the app's id (HubSpot names our writes by it)\n"
     "  --portal-id      the HubSpot account (portal) id\n"
     "  --base-url URL   default https://api.hubapi.com\n"
     "  --rate-10s N     calls allowed per rolling 10 s (default 100)\n"
     "  --rate-daily N   calls allowed per day (default 250000)\n"},
    {"attio", "https://api.attio.com", attio_flags,
     sizeof(attio_flags) / sizeof(attio_flags[0]),
     "usage: fieldsync connect attio --org NAME (--token T | --token-file "
     "PATH)\n"
     "         (--public-url URL | --webhook-secret S | --webhook-secret-file "
     "PATH)\n"
     "         [--object SLUG] [--map FIELD=ATTR,...] [--base-url URL]\n"
     "         [--rate-reads N] [--rate-writes N]\n"
     "  --token          the workspace's API token (record_permission:"
     "read-write,\n"
     "                   object_configuration:read, user_management:read,\n"
     "                   webhook:read-write)\n"
     "  --public-url URL fieldsync's public base URL: registers the webhook\n"
     "                   with Attio (POST /v2/webhooks) and keeps its secret\n"
     "  --webhook-secret the secret of a webhook registered by hand\n"
     "  --object SLUG    the object synced as deals (default deals)\n"
     "  --map F=A,...    a deal field onto an attribute other than its\n"
     "                   default; F= leaves an optional field out; our_id=A\n"
     "                   names the unique attribute holding our id\n"
     "                   (docs/ATTIO.md lists fields, defaults and types)\n"
     "  --base-url URL   default https://api.attio.com\n"
     "  --rate-reads N   read calls allowed per second (default 100)\n"
     "  --rate-writes N  write calls allowed per second (default 25)\n"},
    {"pipedrive", "https://api.pipedrive.com", pipedrive_flags,
     sizeof(pipedrive_flags) / sizeof(pipedrive_flags[0]),
     "usage: fieldsync connect pipedrive --org NAME (--token T | --token-file "
     "PATH)\n"
     "         --company-id N --user-id N\n"
     "         (--webhook-user U | --webhook-user-file PATH)\n"
     "         (--public-url URL | --webhook-password P |\n"
     "          --webhook-password-file PATH)\n"
     "         [--base-url URL] [--rate-2s N] [--rate-daily N]\n"
     "  --token             the integration user's API token\n"
     "  --company-id        the Pipedrive company id\n"
     "  --user-id           the integration user's id (Pipedrive names our\n"
     "                      writes by it); checked against the token\n"
     "  --webhook-user      the webhook's HTTP Basic user (with the\n"
     "                      password, its only proof of origin)\n"
     "  --public-url URL    fieldsync's public base URL: registers the\n"
     "                      webhook at URL/webhooks/pipedrive/<id> with a\n"
     "                      password fieldsync makes and keeps\n"
     "  --webhook-password  the Basic password of a webhook registered by\n"
     "                      hand\n"
     "  --base-url URL      default https://api.pipedrive.com (an OAuth\n"
     "                      app's api_domain goes here)\n"
     "  --rate-2s N         calls allowed per rolling 2 s (default 20)\n"
     "  --rate-daily N      API tokens allowed per day (default 30000)\n"
     "The deal fields account, product, engage_date, postcode, location\n"
     "and fieldsync_id are found by name; see docs/PIPEDRIVE.md.\n"},
};

static const char connect_intro[] =
    "Connects the org to a CRM account. The org's first connection is its\n"
    "primary CRM; a later one is added as a standby, made primary by\n"
    "`fieldsync switch`. Every secret option has a -file form reading the\n"
    "value from a file's first line, so it need not appear in the process\n"
    "list; secrets are never printed.\n";

static void print_all_usage(FILE *out)
{
    fputs("usage: fieldsync connect CRM --org NAME [options]\n", out);
    fputs(connect_intro, out);
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        fprintf(out, "\n%s", specs[i].usage);
}

static const struct connect_spec *spec_for(const char *crm)
{
    for (size_t i = 0; crm && i < sizeof(specs) / sizeof(specs[0]); i++) {
        if (strcmp(specs[i].crm, crm) == 0)
            return &specs[i];
    }
    return NULL;
}

static bool is_secret(enum connect_target t)
{
    return t == TO_TOKEN || t == TO_CLIENT_SECRET || t == TO_WEBHOOK_USER ||
           t == TO_REFRESH_TOKEN || t == TO_OAUTH_CLIENT_SECRET;
}

static char **secret_slot(struct connection *c, enum connect_target t)
{
    switch (t) {
    case TO_TOKEN:
        return &c->token;
    case TO_CLIENT_SECRET:
        return &c->client_secret;
    case TO_WEBHOOK_USER:
        return &c->webhook_user;
    case TO_REFRESH_TOKEN:
        return &c->refresh_token;
    default:
        return &c->oauth_client_secret;
    }
}

/* A secret from the option or from the first line of its file. */
static int read_secret(const char *usage, const struct cli_option *direct,
                       const struct cli_option *file, char **out)
{
    if (direct->given && file->given)
        return cli_usage_error(usage, "give one of --%s and --%s", direct->name,
                               file->name);
    if (direct->given) {
        *out = xstrdup(direct->value);
    } else {
        FILE *f = fopen(file->value, "r");
        char line[SECRET_FILE_MAX];
        if (!f)
            return cli_fail("cannot read %s: %s", file->value, strerror(errno));
        bool ok = fgets(line, sizeof(line), f) != NULL;
        fclose(f);
        if (!ok)
            return cli_fail("%s is empty", file->value);
        line[strcspn(line, "\r\n")] = '\0';
        *out = xstrdup(line);
    }
    if (**out == '\0') {
        free(*out);
        *out = NULL;
        return cli_usage_error(usage, "--%s is empty", direct->name);
    }
    return CLI_EXIT_OK;
}

static bool all_digits(const char *s)
{
    if (!s || *s == '\0')
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
    }
    return true;
}

/* The option table: --org, --base-url, then each flag (secrets with a
 * -file twin). */
static size_t build_options(const struct connect_spec *spec,
                            struct cli_option *opts, char **file_names)
{
    size_t n = 0;

    opts[n++] = (struct cli_option){"org", "NAME", NULL, false};
    opts[n++] = (struct cli_option){"base-url", "URL", NULL, false};
    for (size_t i = 0; i < spec->n_flags; i++) {
        const struct connect_flag *f = &spec->flags[i];
        opts[n++] = (struct cli_option){f->name, f->metavar, NULL, false};
        if (is_secret(f->target)) {
            file_names[i] = xasprintf("%s-file", f->name);
            opts[n++] = (struct cli_option){file_names[i], "PATH", NULL, false};
        }
    }
    return n;
}

/* Puts one flag's value where it belongs. */
static int take_flag(const struct connect_spec *spec,
                     const struct connect_flag *f, const struct cli_option *opt,
                     const struct cli_option *file_opt, struct connection *c,
                     json_t *settings)
{
    int64_t number = 0;
    char *secret = NULL;

    if (is_secret(f->target)) {
        if (!opt->given && !file_opt->given) {
            if (f->required)
                return cli_usage_error(spec->usage, "--%s is required",
                                       f->name);
            return CLI_EXIT_OK;
        }
        int rc = read_secret(spec->usage, opt, file_opt, &secret);
        if (rc != CLI_EXIT_OK)
            return rc;
        char **slot = secret_slot(c, f->target);
        free(*slot);
        *slot = secret;
        return CLI_EXIT_OK;
    }
    if (!opt->given) {
        if (f->required)
            return cli_usage_error(spec->usage, "--%s is required", f->name);
        return CLI_EXIT_OK;
    }
    if (f->numeric && !all_digits(opt->value))
        return cli_usage_error(spec->usage, "--%s is a number", f->name);
    switch (f->target) {
    case TO_ACCOUNT:
        c->account_id = xstrdup(opt->value);
        break;
    case TO_APP:
        c->app_id = xstrdup(opt->value);
        break;
    case TO_OAUTH_CLIENT_ID:
        c->oauth_client_id = xstrdup(opt->value);
        break;
    case TO_RATE_WINDOW:
    case TO_RATE_DAILY:
        if (!cli_parse_count(opt->value, 1, INT32_MAX, &number))
            return cli_usage_error(spec->usage, "--%s is a count", f->name);
        if (f->target == TO_RATE_WINDOW)
            c->rate_window = (int)number;
        else
            c->rate_daily = (int)number;
        break;
    case TO_SETTING:
        json_object_set_new(settings, f->name, json_string(opt->value));
        break;
    case TO_PUBLIC_URL:
        if (strncmp(opt->value, "https://", 8) != 0 &&
            strncmp(opt->value, "http://", 7) != 0)
            return cli_usage_error(spec->usage, "--%s is an http(s) URL",
                                   f->name);
        json_object_set_new(settings, "public_url", json_string(opt->value));
        break;
    default:
        break;
    }
    return CLI_EXIT_OK;
}

/* A static token or OAuth: one of the two, OAuth with its client id. */
static int check_credentials(const struct connect_spec *spec,
                             const struct connection *c)
{
    if (!c->token == !c->refresh_token)
        return cli_usage_error(spec->usage,
                               "give --token or --refresh-token, not both");
    if (c->refresh_token && !c->oauth_client_id)
        return cli_usage_error(spec->usage,
                               "--refresh-token needs --oauth-client-id");
    return CLI_EXIT_OK;
}

/* Exchanges an OAuth connection's refresh token for its first access
 * token, which also checks the client and the grant. The CRM may rotate
 * the refresh token: the new one is what is stored. */
static int oauth_start(struct connection *c)
{
    const struct provider *p = provider_by_name(c->provider);
    struct provider_session session;
    struct oauth_grant grant = {"refresh_token", c->refresh_token, NULL};
    struct oauth_tokens t = {0};
    char *error = NULL;

    if (!c->refresh_token)
        return CLI_EXIT_OK;
    if (!p || !p->oauth_token)
        return cli_fail("%s connections take no refresh token", c->provider);
    provider_session_open(c, CONNECT_TIMEOUT_MS, &session);
    fs_result r = p->oauth_token(&session, &grant, &t, &error);
    provider_session_close(&session);
    if (r != FS_OK) {
        int rc = cli_fail("the %s token endpoint refused the OAuth client or "
                          "refresh token: %s",
                          c->provider, error ? error : fs_result_name(r));
        free(error);
        return rc;
    }
    free(error);
    free(c->token);
    free(c->refresh_token);
    c->token = t.access_token;
    c->refresh_token = t.refresh_token;
    c->token_expires_at = t.expires_at;
    c->token_refresh_at = t.refresh_at;
    if (t.api_base) {
        free(c->base_url);
        c->base_url = t.api_base;
    }
    return CLI_EXIT_OK;
}

/* Lets the provider check the connection against the CRM and fill in
 * what it learns (custom field keys, attribute ids, our actor id). */
static int prepare(struct connection *c)
{
    char *error = NULL;
    fs_result r = connect_prepare(c, CONNECT_TIMEOUT_MS, &error);
    int rc = CLI_EXIT_OK;

    if (r != FS_OK)
        rc = cli_fail("the %s account does not fit: %s", c->provider,
                      error ? error : fs_result_name(r));
    free(error);
    return rc;
}

/* Registers the CRM's webhook at <public_url>/webhooks/<crm>/<id> and
 * keeps the secret it answers as the connection's. */
static int register_webhook(struct store *s, struct connection *c, int64_t id,
                            const char *public_url)
{
    char *target = NULL, *error = NULL;
    fs_result r = connect_register_webhook(s, c, id, public_url,
                                           CONNECT_TIMEOUT_MS, &target, &error);
    int rc = CLI_EXIT_OK;

    if (r != FS_OK)
        rc = cli_fail("cannot register the webhook at %s: %s", target,
                      error ? error : fs_result_name(r));
    else
        printf("webhook registered: %s\n", target);
    free(error);
    free(target);
    return rc;
}

/* Adds the connection: primary when the org has none, else a standby.
 * With a public URL its webhook is registered inside the same
 * transaction, so a refusal leaves nothing behind. */
static int add_connection(struct store *s, struct connection *c,
                          const char *public_url, int64_t *id, bool *standby)
{
    struct connection active = {0};
    int rc = CLI_EXIT_OK;
    fs_result r = store_begin(s);

    if (r == FS_OK)
        r = store_connection_for_org(s, c->org_id, &active);
    *standby = r == FS_OK;
    if (r == FS_ERR_NOT_FOUND)
        r = FS_OK;
    c->active = !*standby;
    if (r == FS_OK)
        r = store_connection_add(s, c, id);
    if (r == FS_OK && public_url) {
        rc = register_webhook(s, c, *id, public_url);
        if (rc != CLI_EXIT_OK)
            r = FS_ERR_REMOTE;
    }
    if (r == FS_OK)
        r = store_commit(s);
    if (r != FS_OK)
        store_rollback(s);
    if (r != FS_OK && rc == CLI_EXIT_OK)
        rc = cli_fail("cannot add the connection: %s", fs_result_name(r));
    connection_clear(&active);
    return rc;
}

int cli_connect(int argc, char **argv)
{
    struct cli_option opts[CONNECT_MAX_OPTIONS];
    char *file_names[CONNECT_MAX_OPTIONS] = {NULL};
    const char *pos[1] = {NULL};
    struct connection c = {0};
    struct store *s = NULL;
    json_t *settings = json_object();
    char *public_url = NULL;
    const struct provider *p = NULL;
    int rc = CLI_EXIT_OK;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        print_all_usage(argc < 2 ? stderr : stdout);
        json_decref(settings);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const struct connect_spec *spec = spec_for(argv[1]);
    if (!spec) {
        fprintf(stderr, "fieldsync: unsupported CRM '%s'\n", argv[1]);
        print_all_usage(stderr);
        json_decref(settings);
        return CLI_EXIT_USAGE;
    }

    size_t n = build_options(spec, opts, file_names);
    rc = cli_parse(argc, argv, spec->usage, opts, n, pos, 1);
    if (rc >= 0)
        goto out;
    static const char *const required[] = {"org"};
    if ((rc = cli_require(spec->usage, opts, n, required, 1)) >= 0)
        goto out;

    size_t o = 2;
    rc = CLI_EXIT_OK;
    for (size_t i = 0; i < spec->n_flags && rc == CLI_EXIT_OK; i++) {
        const struct connect_flag *f = &spec->flags[i];
        const struct cli_option *file_opt =
            is_secret(f->target) ? &opts[o + 1] : NULL;
        rc = take_flag(spec, f, &opts[o], file_opt, &c, settings);
        o += is_secret(f->target) ? 2 : 1;
    }
    if (rc != CLI_EXIT_OK)
        goto out;

    c.provider = xstrdup(spec->crm);
    c.base_url =
        xstrdup(opts[1].given ? opts[1].value : spec->default_base_url);
    p = provider_by_name(c.provider);
    if (json_string_value(json_object_get(settings, "public_url"))) {
        public_url =
            xstrdup(json_string_value(json_object_get(settings, "public_url")));
        json_object_del(settings, "public_url");
    }
    if (p && p->register_webhook && !public_url && !c.client_secret) {
        rc = cli_usage_error(spec->usage, "give --public-url (fieldsync "
                                          "registers the webhook) or the "
                                          "secret of one registered by hand");
        goto out;
    }
    if (public_url && c.client_secret) {
        rc = cli_usage_error(spec->usage, "--public-url registers a new "
                                          "webhook with its own secret; give "
                                          "no secret with it");
        goto out;
    }
    if (json_object_size(settings) > 0)
        c.settings = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
    if ((rc = check_credentials(spec, &c)) != CLI_EXIT_OK)
        goto out;
    if ((rc = oauth_start(&c)) != CLI_EXIT_OK)
        goto out;
    if ((rc = prepare(&c)) != CLI_EXIT_OK)
        goto out;
    if ((rc = cli_open_store(&s)) != CLI_EXIT_OK)
        goto out;
    if ((rc = cli_find_org(s, opts[0].value, &c.org_id)) != CLI_EXIT_OK)
        goto out;

    int64_t id = 0;
    bool standby = false;
    if ((rc = add_connection(s, &c, public_url, &id, &standby)) != CLI_EXIT_OK)
        goto out;
    printf("connection %" PRId64 " added for org %s (%s account %s)\n", id,
           opts[0].value, c.provider, c.account_id ? c.account_id : "-");
    if (p && p->webhooks_by_url && !public_url)
        printf("webhooks: point the CRM's webhook at "
               "https://<your host>/webhooks/%s/%" PRId64 "\n",
               c.provider, id);
    if (standby) {
        /* Its owners and stages now, so its stages can be mapped before
         * the switch. */
        struct provider_session session;
        c.id = id;
        tokens_session_open(&c, CONNECT_TIMEOUT_MS, cli_db_path(), &session);
        fs_result r = import_crm_meta(s, &session);
        tokens_session_close(&session);
        if (r != FS_OK) {
            rc = cli_fail("the standby was added but its owners and stages "
                          "could not be read: %s",
                          fs_result_name(r));
            goto out;
        }
        printf("standby: the org keeps its primary CRM until `fieldsync "
               "switch --org %s --to %" PRId64 "`; map its stages first "
               "(fieldsync stages map --org %s --connection %" PRId64 ")\n",
               opts[0].value, id, opts[0].value, id);
    }

out:
    free(public_url);
    for (size_t i = 0; i < CONNECT_MAX_OPTIONS; i++)
        free(file_names[i]);
    json_decref(settings);
    connection_clear(&c);
    store_close(s);
    return rc;
}

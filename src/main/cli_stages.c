/* fieldsync stages: the org's stages and its CRM's map onto them, from the
 * command line. The words given become the same JSON the admin API takes,
 * and go through the same checks. */
#include "main/cli.h"

#include "base/alloc.h"
#include "services/stages.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGES_MAX_ARGS 256

static const char stages_usage[] =
    "usage: fieldsync stages show --org NAME [--connection ID]\n"
    "       fieldsync stages define --org NAME KEY=LABEL[:KIND] ...\n"
    "       fieldsync stages map --org NAME [--connection ID] CRM_STAGE=KEY "
    "...\n"
    "                 [--default PIPELINE/KEY=CRM_STAGE ...]\n"
    "       fieldsync stages unmapped --org NAME\n"
    "show      the org's stages, the CRM's pipelines and stages, what each\n"
    "          maps to, and what is still missing\n"
    "define    replaces the org's stages (KIND is open, won or lost;\n"
    "          open unless given), e.g. new=New won=Won:won lost=Lost:lost\n"
    "map       replaces the map of the org's CRM stages onto its stages;\n"
    "          where one CRM stage of a pipeline maps to a stage it is the\n"
    "          stage written for it, else --default names the one\n"
    "unmapped  lists the deals in CRM stages mapped to none\n"
    "--connection names a standby connection (one about to become the\n"
    "primary CRM) instead of the org's active one\n";

struct stages_args {
    const char *org;
    int64_t connection; /* 0: the active one */
    const char *words[STAGES_MAX_ARGS];
    size_t n_words;
    const char *defaults[STAGES_MAX_ARGS];
    size_t n_defaults;
};

/* A bad command line: what is wrong, then the usage. */
static int usage(const char *what, const char *arg)
{
    fprintf(stderr, "fieldsync stages: %s%s%s\n%s", what, arg ? ": " : "",
            arg ? arg : "", stages_usage);
    return CLI_EXIT_USAGE;
}

/* Takes --org, --default and the words after the subcommand. */
static int parse_args(int argc, char **argv, bool with_defaults,
                      struct stages_args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0) {
            fputs(stages_usage, stdout);
            return CLI_EXIT_OK;
        }
        bool org = strcmp(arg, "--org") == 0;
        bool def = with_defaults && strcmp(arg, "--default") == 0;
        bool conn = strcmp(arg, "--connection") == 0;
        if (org || def || conn) {
            if (i + 1 >= argc)
                return usage("this option needs a value", arg);
            const char *value = argv[++i];
            if (org)
                a->org = value;
            else if (conn &&
                     !cli_parse_count(value, 1, INT64_MAX, &a->connection))
                return usage("--connection takes a connection id", value);
            else if (def && a->n_defaults < STAGES_MAX_ARGS)
                a->defaults[a->n_defaults++] = value;
            continue;
        }
        if (arg[0] == '-')
            return usage("unknown option", arg);
        if (a->n_words == STAGES_MAX_ARGS)
            return usage("too many words, at", arg);
        a->words[a->n_words++] = arg;
    }
    if (!a->org)
        return usage("--org is required", NULL);
    return -1;
}

/* "left=right" split at its first '='; false when there is none. */
static bool split_pair(const char *word, char **left, const char **right)
{
    const char *eq = strchr(word, '=');

    if (!eq || eq == word || !eq[1])
        return false;
    *left = xstrndup(word, (size_t)(eq - word));
    *right = eq + 1;
    return true;
}

static json_t *define_body(const struct stages_args *a, char **bad)
{
    json_t *stages = json_array();

    for (size_t i = 0; i < a->n_words; i++) {
        char *key = NULL;
        const char *rest = NULL;
        if (!split_pair(a->words[i], &key, &rest)) {
            *bad = xstrdup(a->words[i]);
            json_decref(stages);
            return NULL;
        }
        const char *colon = strrchr(rest, ':');
        char *label =
            colon ? xstrndup(rest, (size_t)(colon - rest)) : xstrdup(rest);
        json_array_append_new(stages, json_pack("{s:s, s:s, s:s}", "key", key,
                                                "label", label, "kind",
                                                colon ? colon + 1 : "open"));
        free(label);
        free(key);
    }
    return json_pack("{s:o}", "stages", stages);
}

static json_t *map_body(const struct stages_args *a, char **bad)
{
    json_t *map = json_object();
    json_t *defaults = json_object();

    for (size_t i = 0; i < a->n_words; i++) {
        char *crm = NULL;
        const char *key = NULL;
        if (!split_pair(a->words[i], &crm, &key)) {
            *bad = xstrdup(a->words[i]);
            goto fail;
        }
        json_object_set_new(map, crm, json_string(key));
        free(crm);
    }
    for (size_t i = 0; i < a->n_defaults; i++) {
        char *left = NULL;
        const char *crm = NULL;
        const char *slash = strchr(a->defaults[i], '/');
        if (!slash || !split_pair(slash + 1, &left, &crm)) {
            *bad = xstrdup(a->defaults[i]);
            goto fail;
        }
        char *pipeline =
            xstrndup(a->defaults[i], (size_t)(slash - a->defaults[i]));
        json_t *per = json_object_get(defaults, pipeline);
        if (!per) {
            per = json_object();
            json_object_set_new(defaults, pipeline, per);
        }
        json_object_set_new(per, left, json_string(crm));
        free(pipeline);
        free(left);
    }
    return json_pack("{s:o, s:o}", "map", map, "defaults", defaults);
fail:
    json_decref(map);
    json_decref(defaults);
    return NULL;
}

static void print_view(const json_t *view)
{
    size_t i, j;
    const json_t *v, *p, *s;

    printf("stages:\n");
    json_array_foreach(json_object_get(view, "stages"), i, v)
    {
        printf("  %-16s %-24s %s\n",
               json_string_value(json_object_get(v, "key")),
               json_string_value(json_object_get(v, "label")),
               json_string_value(json_object_get(v, "kind")));
    }
    const json_t *crm = json_object_get(view, "crm");
    if (json_is_object(crm)) {
        printf("crm: %s (connection %" JSON_INTEGER_FORMAT ")\n",
               json_string_value(json_object_get(crm, "provider")),
               json_integer_value(json_object_get(crm, "connection")));
        json_array_foreach(json_object_get(crm, "pipelines"), i, p)
        {
            printf("  pipeline %s\n",
                   json_string_value(json_object_get(p, "id")));
            json_array_foreach(json_object_get(p, "stages"), j, s)
            {
                const char *to =
                    json_string_value(json_object_get(s, "maps_to"));
                char *written =
                    json_dumps(json_object_get(s, "default_for"), JSON_COMPACT);
                const char *label =
                    json_string_value(json_object_get(s, "label"));
                printf("    %-24s %-20s -> %-16s written for %s\n",
                       json_string_value(json_object_get(s, "id")),
                       label ? label : "", to ? to : "(unmapped)", written);
                free(written);
            }
        }
    } else {
        printf("crm: none connected\n");
    }
    json_array_foreach(json_object_get(view, "problems"), i, v)
    {
        printf("problem: %s\n", json_string_value(v));
    }
    printf("deals in unmapped stages: %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(view, "unmapped_deals")));
}

static int show(struct store *s, int64_t org_id, int64_t connection)
{
    json_t *view = NULL;
    fs_result r = stages_view(s, org_id, connection, &view);

    if (r == FS_ERR_NOT_FOUND)
        return cli_fail("connection %" PRId64 " is not one of the org's "
                        "(`fieldsync connect` prints the ids)",
                        connection);
    if (r != FS_OK)
        return cli_fail("cannot read the stages: %s", fs_result_name(r));
    print_view(view);
    json_decref(view);
    return CLI_EXIT_OK;
}

static int change(struct store *s, int64_t org_id, bool is_map,
                  const struct stages_args *a)
{
    char *bad = NULL;
    char *error = NULL;
    json_t *body = is_map ? map_body(a, &bad) : define_body(a, &bad);

    if (!body) {
        int rc = usage("cannot read this word", bad);
        free(bad);
        return rc;
    }
    fs_result r = is_map ? stages_map(s, org_id, a->connection, body, &error)
                         : stages_define(s, org_id, body, &error);
    json_decref(body);
    if (r != FS_OK) {
        int rc = cli_fail("%s", error ? error : fs_result_name(r));
        free(error);
        return rc;
    }
    return show(s, org_id, a->connection);
}

static int unmapped(struct store *s, int64_t org_id)
{
    const char *after = NULL;
    char *cursor = NULL;
    size_t total = 0;

    for (;;) {
        struct record *records = NULL;
        size_t n = 0;
        fs_result r =
            stages_unmapped_deals(s, org_id, after, 1000, &records, &n);
        if (r != FS_OK) {
            free(cursor);
            return cli_fail("cannot list deals: %s", fs_result_name(r));
        }
        for (size_t i = 0; i < n; i++)
            printf("%s crm_id=%s crm_stage=%s name=%s\n", records[i].id,
                   records[i].crm_id ? records[i].crm_id : "-",
                   records[i].fields[DEAL_STAGE].value,
                   records[i].fields[DEAL_NAME].value
                       ? records[i].fields[DEAL_NAME].value
                       : "-");
        total += n;
        free(cursor);
        cursor = n ? xstrdup(records[n - 1].id) : NULL;
        after = cursor;
        store_records_free(records, n);
        if (n < 1000)
            break;
    }
    free(cursor);
    printf("%zu deals in unmapped stages\n", total);
    return CLI_EXIT_OK;
}

int cli_stages(int argc, char **argv)
{
    struct stages_args a;
    struct store *s = NULL;
    int64_t org_id = 0;

    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fputs(stages_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *sub = argv[1];
    bool is_map = strcmp(sub, "map") == 0;
    if (!is_map && strcmp(sub, "show") != 0 && strcmp(sub, "define") != 0 &&
        strcmp(sub, "unmapped") != 0)
        return usage("unknown subcommand", sub);
    int rc = parse_args(argc, argv, is_map, &a);
    if (rc >= 0)
        return rc;
    bool takes_words = is_map || strcmp(sub, "define") == 0;
    if (takes_words != (a.n_words > 0))
        return usage(takes_words ? "words are needed after"
                                 : "no words are taken after",
                     sub);
    if ((rc = cli_open_store(&s)) != CLI_EXIT_OK)
        return rc;
    if ((rc = cli_find_org(s, a.org, &org_id)) == CLI_EXIT_OK) {
        if (strcmp(sub, "show") == 0)
            rc = show(s, org_id, a.connection);
        else if (strcmp(sub, "unmapped") == 0)
            rc = unmapped(s, org_id);
        else
            rc = change(s, org_id, is_map, &a);
    }
    store_close(s);
    return rc;
}

/* fieldsync territory: list, import, edit, delete, reassign and load
 * postcode centroids, each change previewed with --preview first. A change
 * made here reaches the CRM through a running `fieldsync serve`, whose
 * pusher finds the pending owners within a second. */
#include "main/cli.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "services/territory.h"
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Moves printed one by one; the counts are whole. */
#define PRINT_MOVES_MAX 20

static const char usage[] =
    "usage: fieldsync territory list --org NAME\n"
    "       fieldsync territory import FILE --org NAME [--group-by PROP]\n"
    "                                [--replace] [--repair] [--preview]\n"
    "       fieldsync territory edit --org NAME --id N [--name N]\n"
    "                                [--owner USER] [--priority P]\n"
    "                                [--postcodes LIST] [--preview]\n"
    "       fieldsync territory delete --org NAME --id N [--preview]\n"
    "       fieldsync territory reassign --org NAME [--preview]\n"
    "       fieldsync territory centroids FILE --org NAME [--replace]\n"
    "A territory owns the deals whose postcode matches one of its rules or\n"
    "whose point lies in its polygons; its owner is a fieldsync user (id,\n"
    "email or name) with a CRM owner id.\n"
    "  import       a GeoJSON FeatureCollection: one feature per territory\n"
    "               (properties name, owner, priority, postcodes), or with\n"
    "               --group-by PROP the features sharing PROP's value\n"
    "  --replace    import: territories not in the file are deleted;\n"
    "               centroids: the table is emptied first\n"
    "  --repair     close open rings and make invalid polygons valid\n"
    "               (each repair is listed) instead of refusing them\n"
    "  --preview    print which deals would move, from whom to whom, and\n"
    "               change nothing\n"
    "  --postcodes  comma-separated postcodes or prefixes (M1,M2 3,02134)\n"
    "  reassign     places every deal again with the territories as they\n"
    "               are (after loading centroids)\n"
    "  centroids    a CSV with a postcode, sector, district or zip column\n"
    "               and latitude and longitude columns\n";

enum {
    OPT_ORG,
    OPT_GROUP_BY,
    OPT_REPLACE,
    OPT_REPAIR,
    OPT_PREVIEW,
    OPT_ID,
    OPT_NAME,
    OPT_OWNER,
    OPT_PRIORITY,
    OPT_POSTCODES,
    OPT_COUNT
};

/* The whole file, at most TERRITORY_MAX_IMPORT_BYTES. */
static int read_file(const char *path, char **out, size_t *len)
{
    struct buf b = {0};
    fs_result r = buf_read_file(&b, path, TERRITORY_MAX_IMPORT_BYTES);

    if (r != FS_OK) {
        buf_free(&b);
        if (r == FS_ERR_TOO_LARGE)
            return cli_fail("%s is over %u bytes", path,
                            TERRITORY_MAX_IMPORT_BYTES);
        return cli_fail("cannot read %s: %s", path, strerror(errno));
    }
    *len = b.len;
    *out = buf_steal(&b);
    return CLI_EXIT_OK;
}

/* Opens the database and finds the org; nothing is left open on failure. */
static int open_org(const char *org, struct store **s, int64_t *org_id)
{
    int rc = cli_open_store(s);

    if (rc != CLI_EXIT_OK)
        return rc;
    rc = cli_find_org(*s, org, org_id);
    if (rc != CLI_EXIT_OK) {
        store_close(*s);
        *s = NULL;
    }
    return rc;
}

static int report_error(const struct territory_error *err)
{
    return cli_fail("%s%s%s (%d %s)", err->field ? err->field : "",
                    err->field ? ": " : "", err->message, err->status,
                    err->code);
}

static void print_plan(const struct territory_plan *p, bool applied)
{
    printf("%s: %zu territories, %zu deals looked at (%zu by postcode "
           "rule, %zu by polygon)\n",
           applied ? "applied" : "preview", p->n_territories, p->deals,
           p->by_postcode, p->by_polygon);
    printf("moves: %zu deals change owner (owner ids with %s)\n", p->n_moves,
           p->provider);

    /* Moves by (from, to); the plan is in deal order, so count pairs. */
    struct pair {
        const char *from, *to;
        size_t n;
    } *pairs = NULL;
    size_t n_pairs = 0;
    for (size_t i = 0; i < p->n_moves; i++) {
        const struct territory_move *m = &p->moves[i];
        size_t k = 0;
        while (k < n_pairs &&
               !(merge_value_equal(pairs[k].from, m->from_owner) &&
                 strcmp(pairs[k].to, m->to_owner) == 0))
            k++;
        if (k == n_pairs) {
            pairs = xrealloc(pairs, (n_pairs + 1) * sizeof(*pairs));
            pairs[n_pairs++] = (struct pair){m->from_owner, m->to_owner, 0};
        }
        pairs[k].n++;
    }
    for (size_t k = 0; k < n_pairs; k++)
        printf("  %s -> %s: %zu\n", pairs[k].from ? pairs[k].from : "(none)",
               pairs[k].to, pairs[k].n);
    free(pairs);
    for (size_t i = 0; i < p->n_moves && i < PRINT_MOVES_MAX; i++)
        printf("  deal %s: %s -> %s (territory %" PRId64 " -> %" PRId64 ")\n",
               p->moves[i].deal_id,
               p->moves[i].from_owner ? p->moves[i].from_owner : "(none)",
               p->moves[i].to_owner, p->moves[i].from_territory,
               p->moves[i].to_territory);
    if (p->n_moves > PRINT_MOVES_MAX)
        printf("  ... and %zu more\n", p->n_moves - PRINT_MOVES_MAX);
    printf("in no territory (owner kept): %zu\n", p->n_unplaced);
    for (size_t i = 0; i < p->n_unplaced && i < PRINT_MOVES_MAX; i++)
        printf("  deal %s\n", p->unplaced[i]);
    if (p->unresolved)
        printf("in a territory whose owner has no %s owner id (owner "
               "kept): %zu\n",
               p->provider, p->unresolved);
    for (size_t i = 0; i < p->n_repairs; i++)
        printf("repaired %s\n", p->repairs[i]);
}

static int run_change(struct store *s, int64_t org_id,
                      struct territory_change *change, bool preview)
{
    struct territory_plan plan;
    struct territory_error err = {0};
    int rc = CLI_EXIT_OK;

    fs_result r =
        territory_change_run(s, org_id, change, !preview, &plan, &err);
    if (r == FS_ERR_INVALID && err.status) {
        rc = report_error(&err);
        territory_error_clear(&err);
        return rc;
    }
    if (r != FS_OK)
        return cli_fail("cannot change territories: %s (%s)", fs_result_name(r),
                        store_last_error(s));
    print_plan(&plan, !preview);
    territory_plan_clear(&plan);
    return rc;
}

static int list(struct store *s, int64_t org_id)
{
    struct territory *t = NULL;
    size_t n = 0, n_counts = 0;
    int64_t *ids = NULL, *counts = NULL;

    fs_result r = store_territories_list(s, org_id, &t, &n);
    if (r == FS_OK)
        r = store_territory_deal_counts(s, org_id, &ids, &counts, &n_counts);
    if (r != FS_OK) {
        store_territories_free(t, n);
        return cli_fail("cannot list territories: %s", fs_result_name(r));
    }
    printf("id\towner\tpriority\tpostcodes\tgeometry\tdeals\tname\n");
    for (size_t i = 0; i < n; i++) {
        int64_t deals = 0;
        for (size_t k = 0; k < n_counts; k++) {
            if (ids[k] == t[i].id)
                deals = counts[k];
        }
        printf("%" PRId64 "\t%" PRId64 "\t%d\t%zu\t%s\t%" PRId64 "\t%s\n",
               t[i].id, t[i].owner_user_id, t[i].priority, t[i].n_postcodes,
               t[i].geometry ? "yes" : "no", deals, t[i].name);
    }
    for (size_t k = 0; k < n_counts; k++) {
        if (ids[k] == 0)
            printf("deals in no territory: %" PRId64 "\n", counts[k]);
    }
    store_territories_free(t, n);
    free(ids);
    free(counts);
    return CLI_EXIT_OK;
}

/* The edit options as the JSON body the API takes. */
static json_t *edit_body(const struct cli_option *o)
{
    json_t *body = json_object();

    if (o[OPT_NAME].given)
        json_object_set_new(body, "name", json_string(o[OPT_NAME].value));
    if (o[OPT_OWNER].given) {
        const char *v = o[OPT_OWNER].value;
        bool digits =
            *v && strspn(v, "0123456789") == strlen(v) && strlen(v) < 19;
        json_object_set_new(body, "owner",
                            digits ? json_integer(strtoll(v, NULL, 10))
                                   : json_string(v));
    }
    if (o[OPT_PRIORITY].given) {
        char *end = NULL;
        long long p = strtoll(o[OPT_PRIORITY].value, &end, 10);
        json_object_set_new(body, "priority",
                            *end == '\0' && end != o[OPT_PRIORITY].value
                                ? json_integer(p)
                                : json_string(o[OPT_PRIORITY].value));
    }
    if (o[OPT_POSTCODES].given) {
        json_t *list = json_array();
        const char *p = o[OPT_POSTCODES].value;
        while (*p) {
            size_t len = strcspn(p, ",");
            if (len > 0)
                json_array_append_new(list, json_stringn(p, len));
            p += len;
            if (*p == ',')
                p++;
        }
        json_object_set_new(body, "postcodes", list);
    }
    return body;
}

static int parse_id(const struct cli_option *o, int64_t *id)
{
    char *end = NULL;

    errno = 0;
    long long v = strtoll(o[OPT_ID].value, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0)
        return cli_usage_error(usage, "--id takes a territory id");
    *id = v;
    return -1;
}

static int change_command(struct store *s, int64_t org_id, const char *cmd,
                          const char *file, struct cli_option *o)
{
    struct territory_change change = {0};
    struct territory_error err = {0};
    fs_result r = FS_OK;
    int64_t id = 0;
    int rc;

    if (strcmp(cmd, "edit") == 0 || strcmp(cmd, "delete") == 0) {
        if ((rc = parse_id(o, &id)) >= 0)
            return rc;
    }
    if (strcmp(cmd, "import") == 0) {
        char *text = NULL;
        size_t len = 0;
        if ((rc = read_file(file, &text, &len)) != CLI_EXIT_OK)
            return rc;
        r = territory_parse_import(text, len, o[OPT_GROUP_BY].value, &change,
                                   &err);
        free(text);
    } else if (strcmp(cmd, "edit") == 0) {
        json_t *body = edit_body(o);
        char *text = json_dumps(body, JSON_COMPACT);
        r = territory_parse_one(text, strlen(text), id, &change, &err);
        free(text);
        json_decref(body);
    } else if (strcmp(cmd, "delete") == 0) {
        change.deletes = xcalloc(1, sizeof(*change.deletes));
        change.deletes[0] = id;
        change.n_deletes = 1;
    }
    if (r == FS_ERR_INVALID) {
        rc = report_error(&err);
        territory_error_clear(&err);
        return rc;
    }
    change.replace = o[OPT_REPLACE].given;
    change.repair = o[OPT_REPAIR].given;
    rc = run_change(s, org_id, &change, o[OPT_PREVIEW].given);
    territory_change_clear(&change);
    return rc;
}

static int centroids(struct store *s, int64_t org_id, const char *file,
                     bool replace)
{
    char *text = NULL;
    size_t len = 0, n = 0;
    struct store_centroid *list = NULL;
    struct territory_error err = {0};
    int64_t total = 0;
    int rc = read_file(file, &text, &len);

    if (rc != CLI_EXIT_OK)
        return rc;
    if (territory_parse_centroids(text, len, &list, &n, &err) != FS_OK) {
        free(text);
        rc = report_error(&err);
        territory_error_clear(&err);
        return rc;
    }
    free(text);
    fs_result r = territory_load_centroids(s, org_id, list, n, replace);
    territory_centroids_free(list, n);
    if (r == FS_OK)
        r = store_centroids_count(s, org_id, &total);
    if (r != FS_OK)
        return cli_fail("cannot load centroids: %s", fs_result_name(r));
    printf("loaded %zu centroids from %s; the org has %" PRId64 "\n"
           "run `fieldsync territory reassign` to place deals with them\n",
           n, file, total);
    return CLI_EXIT_OK;
}

int cli_territory(int argc, char **argv)
{
    struct cli_option o[OPT_COUNT] = {
        [OPT_ORG] = {"org", "NAME", NULL, false},
        [OPT_GROUP_BY] = {"group-by", "PROP", NULL, false},
        [OPT_REPLACE] = {"replace", NULL, NULL, false},
        [OPT_REPAIR] = {"repair", NULL, NULL, false},
        [OPT_PREVIEW] = {"preview", NULL, NULL, false},
        [OPT_ID] = {"id", "N", NULL, false},
        [OPT_NAME] = {"name", "N", NULL, false},
        [OPT_OWNER] = {"owner", "USER", NULL, false},
        [OPT_PRIORITY] = {"priority", "P", NULL, false},
        [OPT_POSTCODES] = {"postcodes", "LIST", NULL, false},
    };
    static const char *const org_only[] = {"org"};
    static const char *const with_id[] = {"org", "id"};
    static const char *const commands[] = {"list",   "import",   "edit",
                                           "delete", "reassign", "centroids"};
    const char *file = NULL;
    struct store *s = NULL;
    int64_t org_id = 0;
    bool known = false;

    if (argc < 2)
        return cli_usage_error(usage, "territory needs a command");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    const char *cmd = argv[1];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        known = known || strcmp(cmd, commands[i]) == 0;
    if (!known)
        return cli_usage_error(usage, "unknown territory command '%s'", cmd);

    bool takes_file =
        strcmp(cmd, "import") == 0 || strcmp(cmd, "centroids") == 0;
    int rc = cli_parse(argc - 1, argv + 1, usage, o, OPT_COUNT, &file,
                       takes_file ? 1 : 0);
    if (rc >= 0)
        return rc;
    bool needs_id = strcmp(cmd, "edit") == 0 || strcmp(cmd, "delete") == 0;
    rc = cli_require(usage, o, OPT_COUNT, needs_id ? with_id : org_only,
                     needs_id ? 2 : 1);
    if (rc >= 0)
        return rc;
    if ((rc = open_org(o[OPT_ORG].value, &s, &org_id)) != CLI_EXIT_OK)
        return rc;

    if (strcmp(cmd, "list") == 0)
        rc = list(s, org_id);
    else if (strcmp(cmd, "centroids") == 0)
        rc = centroids(s, org_id, file, o[OPT_REPLACE].given);
    else
        rc = change_command(s, org_id, cmd, file, o);
    store_close(s);
    territory_cache_clear();
    return rc;
}

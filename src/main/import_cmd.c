/* `fieldsync import`: the first full read of an org's CRM connection into
 * the store, with its progress on stderr. */
#include "demo_internal.h"

#include "base/clock.h"
#include "base/log.h"
#include "net/rate_governor.h"
#include "providers/provider.h"
#include "services/backstop.h"
#include "services/tokens.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define IMPORT_LINE_EVERY 1000
#define IMPORT_TIMEOUT_MS 10000

void import_progress_init(struct import_progress *p, bool show_seconds)
{
    memset(p, 0, sizeof(*p));
    p->tty = isatty(STDERR_FILENO) == 1;
    p->show_seconds = show_seconds;
    p->started_ms = clock_mono_ms();
}

double import_progress_seconds(const struct import_progress *p)
{
    return (double)(clock_mono_ms() - p->started_ms) / 1000.0;
}

static void print_progress(struct import_progress *p, size_t deals_read,
                           const char *lead, const char *end)
{
    if (p->show_seconds)
        fprintf(stderr, "%simporting deals: %zu (%.1f s)%s", lead, deals_read,
                import_progress_seconds(p), end);
    else
        fprintf(stderr, "%simporting deals: %zu%s", lead, deals_read, end);
}

void import_progress_on_page(void *ctx, size_t deals_read)
{
    struct import_progress *p = ctx;

    if (p->tty) {
        print_progress(p, deals_read, "\r", "");
        p->drawn = true;
    } else if (deals_read / IMPORT_LINE_EVERY > p->lines_printed) {
        p->lines_printed = deals_read / IMPORT_LINE_EVERY;
        print_progress(p, deals_read, "", "\n");
    }
    fflush(stderr);
}

void import_progress_finish(struct import_progress *p)
{
    if (p->drawn)
        fputc('\n', stderr);
    p->drawn = false;
}

static void import_usage(FILE *out)
{
    fputs("usage: fieldsync import --db PATH --org NAME\n"
          "Reads every deal of the org's active CRM connection into the\n"
          "store, with its owners and stages.\n",
          out);
}

/* Takes "--name value" or "--name=value"; advances *i past what it used. */
static bool take_option(int argc, char **argv, int *i, const char *name,
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

static fs_result run_import(struct store *store, const char *db,
                            struct connection *conn, size_t *imported)
{
    struct provider_session session;
    struct import_progress progress;

    tokens_session_open(conn, IMPORT_TIMEOUT_MS, db, &session);
    import_progress_init(&progress, false);
    fs_result result = import_connection(
        store, &session, import_progress_on_page, &progress, imported);
    import_progress_finish(&progress);
    tokens_session_close(&session);
    return result;
}

int cli_import(int argc, char **argv)
{
    const char *db = NULL;
    const char *org = NULL;
    struct store *store = NULL;
    struct connection conn = {0};
    int64_t org_id = 0;
    size_t imported = 0;
    int status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            import_usage(stdout);
            return 0;
        }
        if (!take_option(argc, argv, &i, "--db", &db) &&
            !take_option(argc, argv, &i, "--org", &org)) {
            fprintf(stderr,
                    "fieldsync import: unknown or incomplete "
                    "option '%s'\n",
                    argv[i]);
            import_usage(stderr);
            return 2;
        }
    }
    if (!db || !org) {
        import_usage(stderr);
        return 2;
    }

    fs_result result =
        access(db, F_OK) == 0 ? store_open(db, &store) : FS_ERR_NOT_FOUND;
    if (result != FS_OK) {
        fprintf(stderr, "fieldsync import: cannot open %s: %s\n", db,
                fs_result_name(result));
        goto out;
    }
    result = store_org_find(store, org, &org_id);
    if (result == FS_OK)
        result = store_connection_for_org(store, org_id, &conn);
    if (result == FS_ERR_NOT_FOUND) {
        fprintf(stderr, "fieldsync import: org '%s' has no active connection\n",
                org);
        goto out;
    }
    if (result != FS_OK) {
        fprintf(stderr, "fieldsync import: cannot load org '%s': %s\n", org,
                fs_result_name(result));
        goto out;
    }

    result = run_import(store, db, &conn, &imported);
    if (result != FS_OK) {
        log_error("event=import_failed org=%s connection=%lld deals=%zu "
                  "result=%s",
                  org, (long long)conn.id, imported, fs_result_name(result));
        fprintf(stderr, "fieldsync import: failed after %zu deals: %s\n",
                imported, fs_result_name(result));
        goto out;
    }
    printf("imported %zu deals\n", imported);
    status = 0;

out:
    connection_clear(&conn);
    store_close(store);
    return status;
}

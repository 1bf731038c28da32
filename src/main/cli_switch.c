/* fieldsync switch: makes a standby connection the org's primary CRM and
 * prints what was linked, created and left unmatched. */
#include "main/cli.h"

#include "providers/provider.h"
#include "services/switch.h"
#include "services/tokens.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWITCH_TIMEOUT_MS 30000

static const char switch_usage[] =
    "usage: fieldsync switch --org NAME --to CONNECTION [--match FIELDS]\n"
    "         [--dry-run]\n"
    "Makes the standby connection CONNECTION (see `fieldsync connect`) the\n"
    "org's primary CRM. Its deals are read and linked to the org's: by the\n"
    "fieldsync id the CRM carries, else by --match, fields whose values\n"
    "(case and outer blanks aside) identify a deal on both sides, e.g.\n"
    "name,postcode. Linked deals keep the newer of each field's values;\n"
    "deals only fieldsync has are created in the new CRM; deals only the\n"
    "new CRM has are imported. The old connection stops receiving and\n"
    "pushing. Map the new CRM's stages first (fieldsync stages map\n"
    "--connection). --dry-run prints the report and changes nothing.\n"
    "A running service pushes what the switch queued.\n";

static void print_report(const struct switch_report *r, bool dry_run)
{
    printf("%s\n", dry_run ? "dry run: nothing changed" : "switched");
    printf("  deals in the new CRM      %zu\n", r->crm_deals);
    printf("  linked by fieldsync id    %zu\n", r->linked_by_id);
    printf("  linked by match key       %zu\n", r->linked_by_key);
    printf("  to create in the new CRM  %zu\n", r->to_create);
    printf("  imported from it          %zu\n", r->imported);
    printf("  left unmatched            %zu of the new CRM's, imported apart; "
           "%zu of ours, held failed until retried (match key not unique)\n",
           r->ambiguous_crm, r->ambiguous_local);
    printf("  fields kept from here     %zu\n", r->local_kept);
    printf("  fields taken from the CRM %zu (newer there)\n", r->crm_taken);
    printf("  values with no equivalent %zu (stage or owner)\n",
           r->untranslated);
    printf("  users given new owner ids %zu (%zu without a match)\n",
           r->users_reassigned, r->users_unmatched);
    if (r->linked_by_id + r->linked_by_key == 0 && r->to_create > 0 &&
        r->imported > 0)
        printf("warning: no deal was linked, so every deal would exist twice; "
               "without --match only deals carrying fieldsync's id link\n");
}

int cli_switch(int argc, char **argv)
{
    struct cli_option opts[] = {
        {"org", "NAME", NULL, false},
        {"to", "CONNECTION", NULL, false},
        {"match", "FIELDS", NULL, false},
        {"dry-run", NULL, NULL, false},
    };
    static const char *const required[] = {"org", "to"};
    struct switch_options sw = {0};
    struct switch_report report;
    struct connection conn = {0};
    struct store *s = NULL;
    int64_t org_id = 0, conn_id = 0;
    char *error = NULL;

    int rc = cli_parse(argc, argv, switch_usage, opts, 4, NULL, 0);
    if (rc >= 0)
        return rc;
    if ((rc = cli_require(switch_usage, opts, 4, required, 2)) >= 0)
        return rc;
    if (!cli_parse_count(opts[1].value, 1, INT64_MAX, &conn_id))
        return cli_usage_error(switch_usage, "--to takes a connection id");
    if (opts[2].given && switch_parse_key(opts[2].value, &sw) != FS_OK)
        return cli_usage_error(switch_usage,
                               "--match takes up to %d deal field names, "
                               "comma-separated, such as name,postcode "
                               "(the field API's names)",
                               SWITCH_MAX_KEY_FIELDS);
    sw.dry_run = opts[3].given;

    if ((rc = cli_open_store(&s)) != CLI_EXIT_OK)
        return rc;
    if ((rc = cli_find_org(s, opts[0].value, &org_id)) != CLI_EXIT_OK)
        goto out;
    fs_result r = store_connection_get(s, conn_id, &conn);
    if (r != FS_OK || conn.org_id != org_id) {
        rc = cli_fail("connection %" PRId64 " is not one of org %s's", conn_id,
                      opts[0].value);
        goto out;
    }

    struct provider_session session;
    tokens_session_open(&conn, SWITCH_TIMEOUT_MS, cli_db_path(), &session);
    r = switch_primary(s, &session, org_id, &sw, &report, &error);
    tokens_session_close(&session);
    if (r != FS_OK) {
        rc = cli_fail("cannot switch: %s", error ? error : fs_result_name(r));
        goto out;
    }
    print_report(&report, sw.dry_run);

out:
    free(error);
    connection_clear(&conn);
    store_close(s);
    return rc;
}

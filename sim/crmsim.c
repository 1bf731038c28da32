/* crmsim: the CRM simulators for fieldsync's tests and demo. Each CRM is a
 * subcommand with its own options on top of the common ones. */
#include "attio_sim.h"
#include "hubspot_sim.h"
#include "pipedrive_sim.h"

#include <stdio.h>
#include <string.h>

struct crm {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv); /* argv[0] is the crm's name */
};

static const struct crm crms[] = {
    {"hubspot", "HubSpot CRM v3 deals API and webhooks", hubspot_sim_main},
    {"attio", "Attio REST v2 records, attributes and webhooks", attio_sim_main},
    {"pipedrive", "Pipedrive API v2 deals and webhooks v2", pipedrive_sim_main},
};

static void usage(FILE *out)
{
    fputs("usage: crmsim <crm> [options]\n"
          "\n"
          "A CRM simulator for fieldsync tests and demos.\n"
          "\n"
          "crms:\n",
          out);
    for (size_t i = 0; i < sizeof(crms) / sizeof(crms[0]); i++)
        fprintf(out, "  %-10s%s\n", crms[i].name, crms[i].summary);
    fputs("\nRun 'crmsim <crm> --help' for its options, and see\n"
          "docs/SIMULATOR.md for the /_sim control API they share.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(crms) / sizeof(crms[0]); i++)
        if (strcmp(argv[1], crms[i].name) == 0)
            return crms[i].main(argc - 1, argv + 1);
    fprintf(stderr, "crmsim: unknown crm '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

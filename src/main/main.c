/* fieldsync command line entry point: global options, then one command. */
#include "main/cli.h"

#include "base/alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run_import(int argc, char **argv);

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"serve", cli_serve, "run the service (webhooks, API, sync)"},
    {"org", cli_org, "add or list orgs"},
    {"connect", cli_connect, "connect an org to its CRM account"},
    {"connections", cli_connections, "list an org's CRM connections"},
    {"user", cli_user, "add, list or revoke API users"},
    {"import", run_import, "read an org's deals from its CRM"},
    {"stages", cli_stages, "the org's stages and the CRM's map onto them"},
    {"switch", cli_switch, "make a standby connection the primary CRM"},
    {"status", cli_status, "show what waits to reach the CRM"},
    {"retry", cli_retry, "put failed deals back in line"},
    {"territory", cli_territory, "import, edit and preview territories"},
    {"demo", demo_main, "run the demo against the CRM simulator"},
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

/* import takes the database as its own --db; the global one (or the
 * default) is passed on unless the command line gives it there. */
static int run_import(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 || strncmp(argv[i], "--db=", 5) == 0)
            return cli_import(argc, argv);
    }

    char **args = xcalloc((size_t)argc + 3, sizeof(*args));
    char db_flag[] = "--db";
    args[0] = argv[0];
    args[1] = db_flag;
    args[2] = xstrdup(cli_db_path());
    for (int i = 1; i < argc; i++)
        args[i + 2] = argv[i];

    int rc = cli_import(argc + 2, args);
    free(args[2]);
    free(args);
    return rc;
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: fieldsync [--db PATH] [--log-level LEVEL] "
            "<command> [options]\n"
            "  --db PATH          the database (default %s)\n"
            "  --log-level LEVEL  error, warn, notice (default), info "
            "or debug\n"
            "commands:\n",
            CLI_DEFAULT_DB);
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "Run 'fieldsync <command> --help' for a command's "
                 "options.\n");
}

/* Takes the global options before the command; returns the index of the
 * command word, or -1 with *exit_code set when main should stop. */
static int parse_globals(int argc, char **argv, int *exit_code)
{
    int i = 1;

    while (i < argc && argv[i][0] == '-') {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_usage(stdout);
            *exit_code = CLI_EXIT_OK;
            return -1;
        }

        const char *name = arg + 2;
        const char *eq = strchr(arg, '=');
        char key[16];
        const char *value = NULL;
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (strncmp(arg, "--", 2) != 0 || len >= sizeof(key))
            len = 0;
        memcpy(key, name, len);
        key[len] = '\0';
        if (strcmp(key, "db") != 0 && strcmp(key, "log-level") != 0) {
            fprintf(stderr, "fieldsync: unknown option '%s'\n", arg);
            print_usage(stderr);
            *exit_code = CLI_EXIT_USAGE;
            return -1;
        }
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        }

        bool bad = false;
        if (!value) {
            fprintf(stderr, "fieldsync: %s needs a value\n", arg);
            print_usage(stderr);
            bad = true;
        } else {
            cli_global_option(key, value, &bad);
        }
        if (bad) {
            *exit_code = CLI_EXIT_USAGE;
            return -1;
        }
        i++;
    }
    return i;
}

int main(int argc, char **argv)
{
    int exit_code = CLI_EXIT_OK;
    int at = parse_globals(argc, argv, &exit_code);

    if (at < 0)
        return exit_code;
    if (at >= argc) {
        fprintf(stderr, "fieldsync: no command given\n");
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(argv[at], commands[i].name) == 0)
            return commands[i].run(argc - at, argv + at);
    }
    fprintf(stderr, "fieldsync: unknown command '%s'\n", argv[at]);
    print_usage(stderr);
    return CLI_EXIT_USAGE;
}

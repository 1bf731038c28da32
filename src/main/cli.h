/* The fieldsync commands and the small option parser they share. Each
 * command is called with argv[0] set to its own name, after main has
 * applied the global options given before it. */
#ifndef FIELDSYNC_MAIN_CLI_H
#define FIELDSYNC_MAIN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1  /* the command failed: one line on stderr */
#define CLI_EXIT_USAGE 2 /* bad command line: usage on stderr */

#define CLI_DEFAULT_DB "./fieldsync.db"

/* The database path from --db (CLI_DEFAULT_DB unless given). */
const char *cli_db_path(void);
void cli_set_db_path(const char *path);

/* Applies a global option (--db, --log-level) by name; returns false when
 * the name is not global, or prints the error and sets *bad when the
 * value is unusable. */
bool cli_global_option(const char *name, const char *value, bool *bad);

struct cli_option {
    const char *name;    /* long name without "--" */
    const char *metavar; /* NULL: a flag that takes no value */
    const char *value;   /* after parsing: the value, or NULL */
    bool given;
};

/* Parses argv[1..argc) as "--name value", "--name=value", flags and
 * positionals; the global options are accepted too. Returns -1 when the
 * command should go on, else the exit code to return at once: 0 after
 * printing usage for --help, 2 after printing the error and usage to
 * stderr. Exactly n_positional positionals are required. */
int cli_parse(int argc, char **argv, const char *usage, struct cli_option *opts,
              size_t n_opts, const char **positional, size_t n_positional);

struct store;

/* Opens the --db database, which must exist; on failure prints why and
 * returns CLI_EXIT_FAIL. */
int cli_open_store(struct store **out);
/* The same, making the database when there is none (org add). */
int cli_create_store(struct store **out);
/* The org's id by name; prints why and returns CLI_EXIT_FAIL when none. */
int cli_find_org(struct store *s, const char *name, int64_t *id);

/* Prints "fieldsync: <message>" and the usage on stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Checks that every named option was given; -1 when they were, else the
 * exit code after the usage error. */
int cli_require(const char *usage, const struct cli_option *opts, size_t n_opts,
                const char *const *names, size_t n_names);
/* A whole decimal number within [min, max]. */
bool cli_parse_count(const char *s, int64_t min, int64_t max, int64_t *out);

/* Prints "fieldsync: <message>" on stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cli_serve(int argc, char **argv);
int cli_org(int argc, char **argv);
int cli_user(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_retry(int argc, char **argv);
/* Written apart: src/main/cli_territory.c. */
int cli_territory(int argc, char **argv);

/* Written apart: src/main/import_cmd.c, src/main/cli_connect.c,
 * src/main/cli_stages.c, src/main/cli_switch.c and src/main/demo.c. */
int cli_import(int argc, char **argv);
int cli_connect(int argc, char **argv);
int cli_stages(int argc, char **argv);
int cli_switch(int argc, char **argv);
int demo_main(int argc, char **argv);

#endif

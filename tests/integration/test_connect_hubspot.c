/* `fieldsync connect hubspot` and `fieldsync connections` through the real
 * binary: credentials the CRM refuses, or a CRM that cannot be reached,
 * are refused with the reason and store nothing; a second connection of
 * the org to the same account is refused; a standby whose owners and
 * stages cannot be read is not added; and `connections` lists each
 * connection with its CRM, account, role and state. */
#include "stack.h"
#include "stack_hubspot.h"

#include "base/alloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define OTHER_ORG "otherco"
/* The simulator beside the stack's takes one call per 10 s: the check of
 * the credentials passes, the read of owners and stages after it gets
 * HubSpot's 429. */
#define TIGHT_SIM_RATE 1

static struct stack st;
static struct stack tight;

static int setup(void **state)
{
    struct stack_options o = {.crm = "hubspot", .deals = 6};
    struct stack_options t = {
        .crm = "hubspot", .deals = 2, .sim_rate = TIGHT_SIM_RATE};

    if (!stack_start(&st, &o))
        return -1;
    return stack_start_beside(&st, &tight, &t) ? 0 : -1;
}

static int teardown(void **state)
{
    bool ok = stack_stop(&tight);
    return stack_stop(&st) && ok ? 0 : -1;
}

/* `fieldsync connect hubspot --org ORG --base-url BASE ...` with the
 * stack's credentials but token and portal as given; returns the output
 * (caller frees), *code the exit code. */
static char *connect_with(const char *org, const char *base, const char *token,
                          const char *portal, int *code)
{
    const char *args[] = {"connect",
                          "hubspot",
                          "--org",
                          org,
                          "--base-url",
                          base,
                          "--token",
                          token,
                          "--client-secret",
                          STACK_HUBSPOT_SECRET,
                          "--app-id",
                          STACK_HUBSPOT_APP_ID,
                          "--portal-id",
                          portal,
                          NULL};
    return stack_cli(&st, code, args);
}

static char *connections_of(const char *org, int *code)
{
    const char *args[] = {"connections", "--org", org, NULL};
    return stack_cli(&st, code, args);
}

/* Lines of the listing after its header. */
static size_t rows_of(const char *listing)
{
    size_t lines = 0;
    for (const char *p = listing; *p; p++)
        lines += *p == '\n';
    return lines > 0 ? lines - 1 : 0;
}

static void test_wrong_token_is_refused(void **state)
{
    int code = -1;
    const char *org_args[] = {"org", "add", OTHER_ORG, NULL};
    free(stack_cli(&st, &code, org_args));
    assert_int_equal(code, 0);

    char *out = connect_with(OTHER_ORG, st.sim_base, "pat-not-the-token",
                             "9001", &code);
    assert_int_equal(code, 1);
    assert_non_null(strstr(out, "cannot connect hubspot"));
    assert_non_null(strstr(out, "check the access token"));
    assert_null(strstr(out, "pat-not-the-token"));
    free(out);

    out = connections_of(OTHER_ORG, &code);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "(none"));
    free(out);
}

static void test_unreachable_crm_is_refused(void **state)
{
    int code = -1;
    /* Port 1 on loopback: nothing listens there. */
    char *out = connect_with(OTHER_ORG, "http://127.0.0.1:1",
                             STACK_HUBSPOT_TOKEN, "9001", &code);
    assert_int_equal(code, 1);
    assert_non_null(strstr(out, "cannot connect hubspot"));
    assert_non_null(strstr(out, "http://127.0.0.1:1/crm/v3/pipelines/deals"));
    free(out);

    out = connections_of(OTHER_ORG, &code);
    assert_non_null(strstr(out, "(none"));
    free(out);
}

static void test_same_account_twice_is_refused(void **state)
{
    int code = -1;
    char *out = connect_with(STACK_ORG, st.sim_base, STACK_HUBSPOT_TOKEN,
                             "9001", &code);
    assert_int_equal(code, 1);
    assert_non_null(
        strstr(out, "already connected to hubspot account 9001 (connection"));
    free(out);

    out = connections_of(STACK_ORG, &code);
    assert_int_equal(code, 0);
    assert_int_equal(rows_of(out), 1);
    free(out);
}

static void test_standby_without_owners_is_not_added(void **state)
{
    int code = -1;
    char *portal = xasprintf("%d", STACK_HUBSPOT_PORTAL + tight.account_base);
    char *out = connect_with(STACK_ORG, tight.sim_base, STACK_HUBSPOT_TOKEN,
                             portal, &code);
    assert_int_equal(code, 1);
    assert_non_null(strstr(out, "could not be read"));
    assert_non_null(strstr(out, "the connection was not added"));
    free(out);
    free(portal);

    out = connections_of(STACK_ORG, &code);
    assert_int_equal(rows_of(out), 1);
    free(out);
}

static void test_connections_lists_primary_and_standby(void **state)
{
    int code = -1;
    char *out = connect_with(STACK_ORG, st.sim_base, STACK_HUBSPOT_TOKEN,
                             "9002", &code);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "standby:"));
    free(out);

    out = connections_of(STACK_ORG, &code);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "id\tcrm\taccount\trole\tstate\n"));
    char *primary = xasprintf("%lld\thubspot\t9001\tprimary\tsyncing\n",
                              (long long)st.connection);
    assert_non_null(strstr(out, primary));
    assert_non_null(strstr(out, "\thubspot\t9002\tstandby\twaiting for "
                                "switch\n"));
    assert_int_equal(rows_of(out), 2);
    free(primary);
    free(out);

    const char *unknown[] = {"connections", "--org", "nosuchorg", NULL};
    out = stack_cli(&st, &code, unknown);
    assert_int_equal(code, 1);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_token_is_refused),
        cmocka_unit_test(test_unreachable_crm_is_refused),
        cmocka_unit_test(test_same_account_twice_is_refused),
        cmocka_unit_test(test_standby_without_owners_is_not_added),
        cmocka_unit_test(test_connections_lists_primary_and_standby),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

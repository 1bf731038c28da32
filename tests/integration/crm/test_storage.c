/* A database that cannot take a write, with a CRM's simulator (FS_CRM):
 * locked by another process, or full (serve --max-db-pages, SQLite's
 * max_page_count, stands in for a full disk, as in test_limits.c). The
 * CRM's own deliveries are then answered 503, a status every CRM retries,
 * never 2xx: the inbox holds exactly the events answered 2xx, the CRM
 * retries the rest, and once the database takes writes again every CRM
 * edit is applied and no event is stored twice. A field API edit made
 * while the database is locked is answered 503 too and changes nothing. */
#include "http_test.h"
#include "stack.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DEALS 12
#define QUIET_MS 120000
/* CRM edits, at most, until a delivery needs a page the full database
 * does not have. */
#define FILL_EDITS 400

static struct stack st;
/* The test's own connection holding the write lock, if any. */
static sqlite3 *locker;

static int setup(void **state)
{
    /* The simulator logs each refused delivery's status at info. */
    static const char *const sim_args[] = {"--log-level", "info", NULL};
    struct stack_options o = {
        .deals = DEALS, .backstop_ms = 1000, .sim_args = sim_args};
    return stack_start(&st, &o) ? 0 : -1;
}

/* The lock released and serve running uncapped, whatever a failed test
 * left. */
static int release(void **state)
{
    if (locker) {
        sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(locker);
        locker = NULL;
    }
    if (!stack_faults(&st, STACK_NO_FAULTS))
        return -1;
    return stack_restart_serve(&st, NULL) ? 0 : -1;
}

static int teardown(void **state)
{
    return stack_stop(&st) ? 0 : -1;
}

/* How many of the simulator's deliveries were answered with status (its
 * log's event=webhook_failed lines). */
static size_t deliveries_answered(long status)
{
    char *said = xasprintf("event=webhook_failed status=%ld ", status);
    size_t n = stack_log_count(&st, st.sim_name, said);

    free(said);
    return n;
}

struct refused {
    int64_t failed_before;
};

static bool delivery_refused(void *ctx)
{
    struct refused *r = ctx;
    return stack_sim_stat(&st, "webhooks_failed", NULL) > r->failed_before;
}

/* Waits until the inbox holds exactly the events the simulator had
 * answered 2xx since `since` (sent counted from sent_before), with no
 * delivery in flight changing either count meanwhile. */
struct acked {
    int64_t since, sent_before, held, acked, lost_banned_before;
};

static bool inbox_holds_the_acked(void *ctx)
{
    struct acked *a = ctx;
    int64_t before = stack_sim_stat(&st, "events_sent", NULL);
    a->held = stack_inbox_count_since(&st, a->since);
    int64_t after = stack_sim_stat(&st, "events_sent", NULL);
    a->acked = after - a->sent_before;
    return before == after && a->held == a->acked;
}

static void edit_name(size_t deal, const char *name)
{
    char *fields = xasprintf("{\"name\":\"%s\"}", name);
    assert_true(stack_sim_edit(&st, stack_seed_id(&st, deal), fields) > 0);
    free(fields);
}

static void assert_name(size_t deal, const char *name)
{
    json_t *d = stack_deal_by_crm_id(&st, stack_seed_id(&st, deal));
    const char *now = stack_text(d, "name");
    if (!now || strcmp(now, name) != 0)
        printf("  deal %zu: fieldsync has \"%s\", the CRM \"%s\"\n", deal,
               now ? now : "(none)", name);
    assert_true(now && strcmp(now, name) == 0);
    json_decref(d);
}

/* A rep's edit while the database takes no write: 503 "busy", and the
 * deal keeps its value. */
static void assert_edit_refused(size_t deal)
{
    long status;
    char *id = stack_record_id(&st, stack_seed_id(&st, deal));
    json_t *before = stack_deal(&st, id);
    json_t *r =
        stack_patch(&st, st.admin, id,
                    "{\"fields\":{\"account\":\"Never stored\"}}", &status);

    assert_int_equal(status, 503);
    assert_string_equal(stack_text(r, "error"), "busy");
    json_t *after = stack_deal(&st, id);
    const char *a = stack_text(before, "account");
    const char *b = stack_text(after, "account");
    assert_true((!a && !b) || (a && b && strcmp(a, b) == 0));
    json_decref(after);
    json_decref(r);
    json_decref(before);
    free(id);
}

/* Another process holds SQLite's write lock: a CRM edit's delivery is
 * answered 503 and stored nowhere; with the lock gone the CRM's retry is
 * taken and the edit applied. */
static void test_locked_database_answers_retryable(void **state)
{
    struct refused r = {stack_sim_stat(&st, "webhooks_failed", NULL)};
    size_t answered_503 = deliveries_answered(503);
    int64_t given_up = stack_sim_stat(&st, "webhooks_given_up", NULL);

    assert_true(stack_quiet(&st, QUIET_MS));
    struct acked a = {.since = clock_now_ms(),
                      .sent_before = stack_sim_stat(&st, "events_sent", NULL)};
    assert_int_equal(sqlite3_open(st.db, &locker), SQLITE_OK);
    sqlite3_busy_timeout(locker, 10000);
    assert_int_equal(sqlite3_exec(locker, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);

    edit_name(0, "Locked out");
    assert_true(http_test_poll(delivery_refused, &r, QUIET_MS));
    assert_true(deliveries_answered(503) > answered_503);
    assert_int_equal(stack_inbox_count_since(&st, a.since), 0);
    assert_edit_refused(1);

    assert_int_equal(sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(locker);
    locker = NULL;
    assert_true(stack_quiet(&st, QUIET_MS));
    assert_name(0, "Locked out");
    assert_true(http_test_poll(inbox_holds_the_acked, &a, QUIET_MS));
    assert_true(a.acked > 0);
    assert_int_equal(stack_sim_stat(&st, "webhooks_given_up", NULL), given_up);
}

/* The database may not grow past its size: CRM edits, each adding to the
 * inbox, until a delivery is refused for want of a page. Until then every
 * event answered 2xx is in the inbox, and none refused is; with room
 * again the CRM's retries are taken and the last name of every deal is
 * applied. */
static void test_full_database_answers_retryable(void **state)
{
    char pages_text[32];
    struct refused r = {0};
    size_t answered_503 = deliveries_answered(503);
    int64_t given_up = stack_sim_stat(&st, "webhooks_given_up", NULL);
    char *names[DEALS] = {0};
    int edits = 0;

    assert_true(stack_quiet(&st, QUIET_MS));
    int64_t pages = stack_db_pages(&st);
    assert_true(pages > 0);
    snprintf(pages_text, sizeof(pages_text), "%" PRId64, pages);
    const char *cap[] = {"--max-db-pages", pages_text, NULL};
    assert_true(stack_restart_serve(&st, cap));
    assert_true(stack_settled(&st, QUIET_MS));

    r.failed_before = stack_sim_stat(&st, "webhooks_failed", NULL);
    struct acked a = {.since = clock_now_ms(),
                      .sent_before = stack_sim_stat(&st, "events_sent", NULL),
                      .lost_banned_before =
                          stack_sim_stat(&st, "events_lost_banned", NULL)};
    while (edits < FILL_EDITS && !delivery_refused(&r)) {
        size_t deal = (size_t)edits % DEALS;
        free(names[deal]);
        names[deal] = xasprintf("Full disk %d %0200d", edits, edits);
        edit_name(deal, names[deal]);
        edits++;
    }
    printf("full database: %d CRM edits until a delivery was refused\n", edits);
    assert_true(http_test_poll(delivery_refused, &r, QUIET_MS));
    assert_true(deliveries_answered(503) > answered_503);
    /* Held back while counting, so no delivery is in flight. */
    assert_true(stack_faults(&st, "{\"webhooks_paused\":true}"));
    assert_true(http_test_poll(inbox_holds_the_acked, &a, QUIET_MS));

    assert_true(stack_restart_serve(&st, NULL));
    assert_true(stack_faults(&st, STACK_NO_FAULTS));
    assert_true(stack_quiet(&st, QUIET_MS));
    for (size_t i = 0; i < DEALS; i++)
        if (names[i])
            assert_name(i, names[i]);
    assert_true(http_test_poll(inbox_holds_the_acked, &a, QUIET_MS));
    /* Every edit's event was taken, or lost to a ban of the webhook (a
     * CRM that bans a failing one, Pipedrive, may: its refused deliveries
     * count toward it), and the edit then read by the backstop above. */
    int64_t banned =
        stack_sim_stat(&st, "events_lost_banned", NULL) - a.lost_banned_before;
    printf("full database: %" PRId64 " events taken, %" PRId64
           " lost to a ban\n",
           a.acked, banned);
    assert_true(a.acked + banned >= edits);
    assert_int_equal(stack_sim_stat(&st, "webhooks_given_up", NULL), given_up);
    for (size_t i = 0; i < DEALS; i++)
        free(names[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_locked_database_answers_retryable,
                                  release),
        cmocka_unit_test_teardown(test_full_database_answers_retryable,
                                  release),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

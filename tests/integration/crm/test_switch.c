/* Switching an org's primary CRM from HubSpot to the CRM under test (a
 * second HubSpot account when that is HubSpot), on the real programs:
 * every deal and every local edit is kept, deals only fieldsync has are
 * created in the new CRM once, the new CRM's own deals are imported, a
 * newer value there wins, and the old CRM is left alone afterwards; edits
 * made and confirmed by the old CRM while the switch reads the new one
 * are kept too, and a deal deleted before the switch stays deleted. */
#include "http_test.h"
#include "proc.h"
#include "stack.h"

#include "base/alloc.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The new CRM has the old one's deals and a few more. */
#define OLD_DEALS 24
#define NEW_DEALS 28

static struct stack old; /* HubSpot, the org's first CRM */
static struct stack neu; /* the CRM under test, beside it */

static int setup(void **state)
{
    struct stack_options o = {.crm = "hubspot", .deals = OLD_DEALS};
    struct stack_options n = {.deals = NEW_DEALS};

    if (!stack_start(&old, &o))
        return -1;
    return stack_start_beside(&old, &neu, &n) ? 0 : -1;
}

static int teardown(void **state)
{
    bool clean = stack_stop(&neu);
    return stack_stop(&old) && clean ? 0 : -1;
}

/* Deals edited while the switch reads: one per held read, at most. */
#define DURING_EDITS 4
/* Most reads of the new CRM one switch makes here, held one at a time. */
#define DURING_READS_MAX 64

/* Connects the new CRM as a standby, maps its stages and starts `fieldsync
 * switch` to it, matching by name and postcode; returns its pid. */
static pid_t start_switch(void)
{
    assert_true(stack_connect(&neu, STACK_ORG, 0, 100000));
    const char *map[] = {STACK_STAGE_MAP, NULL};
    assert_true(stack_set_stage_map(&neu, map));
    char *to = xasprintf("%lld", (long long)neu.connection);
    const char *sw[] = {"switch", "--org",   STACK_ORG,       "--to",
                        to,       "--match", "name,postcode", NULL};
    pid_t pid = stack_cli_start(&old, sw);
    free(to);
    assert_true(pid > 0);
    return pid;
}

/* The fieldsync record of the old CRM's nth seed deal (caller frees). */
static char *old_record(size_t n)
{
    return stack_record_id(&old, stack_seed_id(&old, n));
}

static size_t sim_deals_named(struct stack *s, const char *name)
{
    json_t *deals = stack_sim_deals(s);
    size_t i, count = 0;
    json_t *d;

    json_array_foreach(deals, i, d)
    {
        const char *v = stack_text(json_object_get(d, "fields"), "name");
        count += !json_is_true(json_object_get(d, "archived")) && v &&
                 strcmp(v, name) == 0;
    }
    json_decref(deals);
    return count;
}

/* Every synced field of every live fieldsync deal equals the new CRM's. */
static void assert_sides_equal(void)
{
    json_t *mine = stack_deals(&old, false);
    json_t *theirs = stack_sim_deals(&neu);
    json_t *by_id = json_object();
    size_t i;
    json_t *d;

    json_array_foreach(theirs, i, d)
    {
        if (!json_is_true(json_object_get(d, "archived")))
            json_object_set(by_id, stack_text(d, "id"), d);
    }
    assert_int_equal(json_array_size(mine), json_object_size(by_id));
    json_array_foreach(mine, i, d)
    {
        const char *crm_id = stack_text(d, "crm_id");
        json_t *crm = crm_id ? json_object_get(by_id, crm_id) : NULL;
        if (!crm)
            fail_msg("deal %s has no deal in the new CRM (crm_id %s)",
                     stack_text(d, "id"), crm_id ? crm_id : "-");
        const char *field;
        json_t *value;
        json_object_foreach(json_object_get(crm, "fields"), field, value)
        {
            json_t *ours = stack_crm_view(d, field);
            if (ours && !json_equal(value, ours))
                fail_msg("deal %s field %s: new CRM %s, fieldsync %s",
                         stack_text(d, "id"), field, json_string_value(value),
                         json_string_value(ours));
        }
    }
    json_decref(by_id);
    json_decref(theirs);
    json_decref(mine);
}

static void test_switch_keeps_every_deal_and_every_local_edit(void **state)
{
    long status;
    int code;

    /* Edits the old CRM never got: its pushes fail from now on. */
    assert_true(stack_faults(&old, "{\"api_5xx\": 1.0}"));
    char *edited = old_record(3);
    json_decref(stack_patch(&old, old.admin, edited,
                            "{\"fields\":{\"account\":\"Edited before the "
                            "switch\"}}",
                            &status));
    assert_int_equal(status, 200);
    json_t *born =
        stack_api(&old, old.admin, "POST", "/api/v1/deals",
                  "{\"fields\":{\"name\":\"Born in the field\"}}", &status);
    assert_int_equal(status, 201);
    char *born_id = xstrdup(stack_text(born, "id"));
    json_decref(born);

    /* The new CRM changed one deal later than anything fieldsync holds. */
    char *newer = old_record(5);
    char *seventh = old_record(7);
    assert_true(stack_sim_edit(&neu, stack_seed_id(&neu, 5),
                               "{\"product\":\"Newer in the new CRM\"}") > 0);

    /* A standby, its stages mapped, then the switch. The seeds have no
     * postcodes: an empty key field matches an empty one. */
    char *out = stack_cli_finish(&old, start_switch(), -2, &code, "switch");
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "linked by match key       24"));
    assert_non_null(strstr(out, "to create in the new CRM  1"));
    free(out);
    int64_t old_writes = stack_sim_stat(&old, "api_calls_by_class", "write");

    /* The local edit and the field's own deal reach the new CRM, once. */
    assert_true(stack_wait_sim(&neu, stack_seed_id(&neu, 3), "account",
                               "Edited before the switch"));
    assert_true(stack_wait_state(&old, born_id, "synced"));
    assert_int_equal(sim_deals_named(&neu, "Born in the field"), 1);
    assert_true(
        stack_wait_field(&old, newer, "product", "Newer in the new CRM"));

    /* Every deal is on both sides, field by field. */
    assert_true(stack_settled(&neu, STACK_WAIT_MS));
    assert_sides_equal();
    json_t *all = stack_deals(&old, false);
    assert_int_equal(json_array_size(all), NEW_DEALS + 1);
    json_decref(all);

    /* The old CRM gets nothing more, and its changes change nothing. */
    assert_true(stack_faults(&old, STACK_NO_FAULTS));
    assert_true(stack_sim_edit(&old, stack_seed_id(&old, 7),
                               "{\"name\":\"Changed in the old CRM\"}") > 0);
    assert_true(stack_settled(&old, STACK_WAIT_MS));
    json_t *deal = stack_deal(&old, seventh);
    assert_string_not_equal(stack_text(deal, "name"), "Changed in the old CRM");
    json_decref(deal);
    assert_int_equal(stack_sim_stat(&old, "api_calls_by_class", "write"),
                     old_writes);

    free(seventh);
    free(born_id);
    free(newer);
    free(edited);
}

/* The switch running in the background, its exit code once reaped (-2
 * while it runs), and how many reads of the new CRM it had made when the
 * last one was held. */
struct running_switch {
    pid_t pid;
    int code;
    int64_t reads;
};

/* The switch has exited, or a read it made since the last one held is
 * held (a read released a moment ago may not have left the count yet;
 * the next one is admitted only after it has). */
static bool next_read_held_or_done(void *ctx)
{
    struct running_switch *sw = ctx;

    sw->code = proc_poll(sw->pid);
    if (sw->code != -2)
        return true;
    int64_t reads = stack_sim_stat(&neu, "api_calls_by_class", "read");
    if (reads <= sw->reads || stack_sim_stat(&neu, "api_reads_held", NULL) < 1)
        return false;
    sw->reads = reads;
    return true;
}

/* Deletes the old CRM's nth seed deal there, as a CRM user, and waits
 * until fieldsync has it deleted; returns its record id (caller frees). */
static char *delete_in_old(size_t n)
{
    long status;
    char *id = old_record(n);
    char *path = xasprintf("/_sim/deals/%s", stack_seed_id(&old, n));

    json_decref(stack_sim(&old, "DELETE", path, NULL, &status));
    free(path);
    assert_int_equal(status, 200);
    assert_true(stack_wait_deleted(&old, id, true, "crm_delete"));
    return id;
}

static char *record_name(const char *id)
{
    json_t *deal = stack_deal(&old, id);
    char *name = xstrdup(stack_text(deal, "name"));

    json_decref(deal);
    return name;
}

static bool live_named(const char *name)
{
    json_t *all = stack_deals(&old, false);
    size_t i;
    json_t *d;
    bool found = false;

    json_array_foreach(all, i, d) found |=
        strcmp(stack_text(d, "name") ? stack_text(d, "name") : "", name) == 0;
    json_decref(all);
    return found;
}

static void
test_switch_keeps_edits_made_while_it_reads_and_deletes(void **state)
{
    char *edited[DURING_EDITS] = {0};
    char *values[DURING_EDITS] = {0};
    size_t n_edited = 0;
    long status;
    int code;

    /* Deleted in the old CRM before the switch; the new CRM still has the
     * deals of those names, the first last changed before the delete, the
     * second changed there after it. */
    char *gone = delete_in_old(2);
    char *revived = delete_in_old(3);
    /* Past the delete's second: Pipedrive times edits in whole seconds. */
    json_t *deal = stack_deal(&old, revived);
    stack_wait_past(json_integer_value(json_object_get(deal, "updated_at")) +
                    1000);
    json_decref(deal);
    assert_true(stack_sim_edit(&neu, stack_seed_id(&neu, 3),
                               "{\"product\":\"Still sold here\"}") > 0);
    char *gone_name = record_name(gone);
    char *revived_name = record_name(revived);

    /* Every read of the new CRM waits; while each waits, a rep edits a
     * deal and the old CRM confirms the edit, then the read goes on. */
    assert_true(stack_faults(&neu, "{\"api_reads_paused\": true}"));
    struct running_switch sw = {
        .code = -2,
        .reads = stack_sim_stat(&neu, "api_calls_by_class", "read")};
    sw.pid = start_switch();
    for (size_t reads = 0; sw.code == -2; reads++) {
        assert_true(reads < DURING_READS_MAX);
        assert_true(http_test_poll(next_read_held_or_done, &sw, STACK_WAIT_MS));
        if (sw.code != -2)
            break;
        /* Not found by the old CRM's id: the switch has committed (the
         * held read is fieldsync serve's, of its new CRM) and is exiting. */
        char *id = n_edited < DURING_EDITS ? old_record(9 + n_edited) : NULL;
        if (id) {
            char *v = xasprintf("Edited during switch %zu", n_edited);
            char *body = xasprintf("{\"fields\":{\"account\":\"%s\"}}", v);
            json_decref(stack_patch(&old, old.admin, id, body, &status));
            free(body);
            assert_int_equal(status, 200);
            assert_true(stack_wait_state(&old, id, "synced"));
            assert_true(stack_wait_sim(&old, stack_seed_id(&old, 9 + n_edited),
                                       "account", v));
            edited[n_edited] = id;
            values[n_edited++] = v;
        }
        assert_true(stack_faults(&neu, "{\"api_reads_paused\": false}"));
        assert_true(stack_faults(&neu, "{\"api_reads_paused\": true}"));
    }
    assert_true(stack_faults(&neu, STACK_NO_FAULTS));
    char *out = stack_cli_finish(&old, sw.pid, sw.code, &code, "switch");
    assert_int_equal(code, 0);
    assert_true(n_edited > 0);
    assert_non_null(strstr(out, "linked by match key       22"));
    assert_non_null(strstr(out, "deleted here, kept so     1"));
    assert_non_null(strstr(out, "deleted here, revived     1"));
    assert_non_null(strstr(out, "imported from it          5"));
    free(out);

    /* Each edit stands in fieldsync and reaches the new CRM. */
    for (size_t k = 0; k < n_edited; k++) {
        assert_true(stack_wait_sim(&neu, stack_seed_id(&neu, 9 + k), "account",
                                   values[k]));
        assert_true(stack_wait_field(&old, edited[k], "account", values[k]));
    }

    /* The deleted deal stays deleted, and its copy in the new CRM is not
     * imported as another deal; the one changed there since the delete is
     * that CRM's own deal now, beside our deleted one. */
    assert_true(stack_settled(&neu, STACK_WAIT_MS));
    assert_true(stack_wait_deleted(&old, gone, true, "crm_delete"));
    assert_false(live_named(gone_name));
    assert_int_equal(sim_deals_named(&neu, gone_name), 1);
    assert_true(stack_wait_deleted(&old, revived, true, "crm_delete"));
    assert_true(live_named(revived_name));
    assert_int_equal(sim_deals_named(&neu, revived_name), 1);
    json_t *all = stack_deals(&old, false);
    assert_int_equal(json_array_size(all), NEW_DEALS - 1);
    json_decref(all);

    for (size_t k = 0; k < n_edited; k++) {
        free(edited[k]);
        free(values[k]);
    }
    free(revived_name);
    free(gone_name);
    free(revived);
    free(gone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_switch_keeps_every_deal_and_every_local_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_switch_keeps_edits_made_while_it_reads_and_deletes, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

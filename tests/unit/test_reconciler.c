/* Unit tests of the record-level merge rules of the reconciler on a real
 * SQLite store: deletes ending pending edits, reads merged per field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "services/reconciler.h"
#include "store_fixture.h"

#include <stdlib.h>
#include <string.h>

static char seed_values[DEAL_FIELD_COUNT][16] = {
    "Deal one", "prospecting", "1200",      "2026-12-31",
    "100001",   "Acme",        "GTX Basic", "2026-11-01"};

/* The CRM deal 20000000001 as a read would return it, every field
 * stamped at time. */
static void crm_read(struct crm_deal *deal, int64_t time, bool archived)
{
    memset(deal, 0, sizeof(*deal));
    deal->crm_id = "20000000001";
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        deal->values[f] = seed_values[f];
        deal->times[f] = time;
    }
    deal->modified = time;
    deal->archived = archived;
}

static void merge_read(struct store_fixture *fx, const struct crm_deal *deal)
{
    struct connection conn = {0};
    struct reconcile_effects effects = {0};
    bool needs_read = false;

    assert_int_equal(store_connection_get(fx->store, fx->conn, &conn), FS_OK);
    assert_int_equal(store_begin(fx->store), FS_OK);
    assert_int_equal(
        reconcile_deal(fx->store, &conn, deal, true, &needs_read, &effects),
        FS_OK);
    assert_int_equal(store_commit(fx->store), FS_OK);
    connection_clear(&conn);
}

static void load(struct store_fixture *fx, struct record *r)
{
    assert_int_equal(
        store_record_by_crm_id(fx->store, fx->conn, "20000000001", r), FS_OK);
}

static size_t pending_records(struct store_fixture *fx, int64_t now)
{
    struct record *list = NULL;
    size_t n = 0;

    assert_int_equal(
        store_records_pending(fx->store, fx->conn, now, 100, &list, &n), FS_OK);
    store_records_free(list, n);
    return n;
}

/* A rep edits the amount; the edit is pending until the CRM has it. */
static void edit_amount(struct store_fixture *fx, const char *amount,
                        int64_t now)
{
    struct record r = {0};

    load(fx, &r);
    assert_int_equal(merge_local_edit(&r.fields[DEAL_AMOUNT], amount, now, 0),
                     EDIT_APPLIED);
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    record_clear(&r);
}

/* Whether the org's audit log has an entry of that kind for the record
 * and field. */
static bool audited(struct store_fixture *fx, const char *kind,
                    const char *record_id, const char *field)
{
    struct audit_entry *audit = NULL;
    size_t n_audit = 0;
    bool found = false;

    assert_int_equal(
        store_audit_list(fx->store, fx->org, 0, 100, &audit, &n_audit), FS_OK);
    for (size_t i = 0; i < n_audit; i++)
        found |= strcmp(audit[i].kind, kind) == 0 &&
                 strcmp(audit[i].record_id, record_id) == 0 &&
                 strcmp(audit[i].field, field) == 0;
    store_audit_free(audit, n_audit);
    return found;
}

static void test_crm_delete_ends_pending_edits(void **state)
{
    struct store_fixture *fx = *state;
    struct crm_deal deal;
    struct record r = {0};

    crm_read(&deal, 1000, false);
    merge_read(fx, &deal);
    edit_amount(fx, "5000", 2000);
    assert_int_equal(pending_records(fx, 2001), 1);

    crm_read(&deal, 3000, true);
    merge_read(fx, &deal);

    load(fx, &r);
    assert_int_equal(r.deleted_at, 3000);
    assert_string_equal(r.deleted_reason, "crm_delete");
    assert_string_equal(r.fields[DEAL_AMOUNT].value, "1200");
    assert_false(merge_field_pending(&r.fields[DEAL_AMOUNT]));
    assert_int_equal(pending_records(fx, 3001), 0);

    /* The dropped edit is reported, not silently lost. */
    assert_true(audited(fx, "edit_dropped", r.id, "amount"));
    record_clear(&r);
}

/* The rep's edit came after the CRM's delete (fieldsync learned of the
 * delete late): it is held on the tombstone, reported, and once the CRM
 * restores the deal it is pending again, as the later write. It used to
 * be dropped, so the restored deal lost an edit the rep had been told was
 * saved. */
static void test_edit_after_crm_delete_is_held_for_a_restore(void **state)
{
    struct store_fixture *fx = *state;
    struct crm_deal deal;
    struct record r = {0};

    crm_read(&deal, 1000, false);
    merge_read(fx, &deal);
    edit_amount(fx, "5000", 4000);

    crm_read(&deal, 3000, true);
    merge_read(fx, &deal);
    load(fx, &r);
    assert_int_equal(r.deleted_at, 3000);
    assert_string_equal(r.fields[DEAL_AMOUNT].value, "5000");
    assert_int_equal(pending_records(fx, 4001), 0);
    assert_true(audited(fx, "edit_held", r.id, "amount"));

    /* The restore clears the tombstone (its event) and re-reads. */
    r.deleted_at = 0;
    free(r.deleted_reason);
    r.deleted_reason = NULL;
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    record_clear(&r);
    crm_read(&deal, 3000, false);
    deal.times[DEAL_AMOUNT] = 1000;
    merge_read(fx, &deal);
    load(fx, &r);
    assert_string_equal(r.fields[DEAL_AMOUNT].value, "5000");
    assert_true(merge_field_pending(&r.fields[DEAL_AMOUNT]));
    assert_int_equal(pending_records(fx, 4001), 1);
    record_clear(&r);
}

static void test_read_keeps_newer_local_edit_pending(void **state)
{
    struct store_fixture *fx = *state;
    struct crm_deal deal;
    struct record r = {0};

    crm_read(&deal, 1000, false);
    merge_read(fx, &deal);
    edit_amount(fx, "5000", 2000);

    /* A backstop read of the old CRM state does not undo the edit. */
    crm_read(&deal, 1500, false);
    merge_read(fx, &deal);
    load(fx, &r);
    assert_string_equal(r.fields[DEAL_AMOUNT].value, "5000");
    assert_string_equal(r.fields[DEAL_AMOUNT].crm_value, "1200");
    assert_int_equal(pending_records(fx, 2001), 1);
    record_clear(&r);

    /* A CRM change newer than the edit wins it. */
    crm_read(&deal, 2500, false);
    deal.values[DEAL_AMOUNT] = "7000";
    merge_read(fx, &deal);
    load(fx, &r);
    assert_string_equal(r.fields[DEAL_AMOUNT].value, "7000");
    assert_int_equal(r.fields[DEAL_AMOUNT].origin, ORIGIN_CRM);
    assert_int_equal(pending_records(fx, 2501), 0);
    record_clear(&r);
}

/* A read that finds an id gone, where a CRM merge made that id an alias
 * of another record, leaves the survivor alone. */
static void test_gone_alias_keeps_survivor(void **state)
{
    struct store_fixture *fx = *state;
    struct crm_deal deal;
    struct record r = {0};

    crm_read(&deal, 1000, false);
    merge_read(fx, &deal);
    assert_int_equal(store_begin(fx->store), FS_OK);
    load(fx, &r);
    free(r.crm_id);
    r.crm_id = xstrdup("20000000099");
    assert_int_equal(store_record_save(fx->store, &r), FS_OK);
    assert_int_equal(
        store_crm_alias_add(fx->store, fx->conn, "20000000001", "20000000099"),
        FS_OK);
    assert_int_equal(store_commit(fx->store), FS_OK);
    record_clear(&r);

    crm_read(&deal, 2000, true);
    merge_read(fx, &deal);
    load(fx, &r);
    assert_string_equal(r.crm_id, "20000000099");
    assert_int_equal(r.deleted_at, 0);
    record_clear(&r);
}

/* A read showing an emptied field without a time (Attio) clears it when
 * no local edit waits, and keeps a waiting edit pending. */
static void test_untimed_clear(void **state)
{
    struct store_fixture *fx = *state;
    struct crm_deal deal;
    struct record r = {0};

    crm_read(&deal, 1000, false);
    merge_read(fx, &deal);
    crm_read(&deal, 1000, false);
    deal.values[DEAL_CLOSE_DATE] = NULL;
    deal.times[DEAL_CLOSE_DATE] = CRM_TIME_UNKNOWN;
    merge_read(fx, &deal);
    load(fx, &r);
    assert_null(r.fields[DEAL_CLOSE_DATE].value);
    assert_int_equal(pending_records(fx, 2000), 0);
    record_clear(&r);

    edit_amount(fx, "5000", 2000);
    crm_read(&deal, 1000, false);
    deal.values[DEAL_AMOUNT] = NULL;
    deal.times[DEAL_AMOUNT] = CRM_TIME_UNKNOWN;
    merge_read(fx, &deal);
    load(fx, &r);
    assert_string_equal(r.fields[DEAL_AMOUNT].value, "5000");
    assert_null(r.fields[DEAL_AMOUNT].crm_value);
    assert_int_equal(pending_records(fx, 2001), 1);
    record_clear(&r);
}

/* Merges a read made at read_at that shows the close date emptied (no
 * time, as Attio shows it). */
static void merge_emptied_close_date(struct store_fixture *fx, int64_t read_at)
{
    struct crm_deal deal;

    crm_read(&deal, 1000, false);
    deal.values[DEAL_CLOSE_DATE] = NULL;
    deal.times[DEAL_CLOSE_DATE] = CRM_TIME_UNKNOWN;
    deal.read_at = read_at;
    merge_read(fx, &deal);
}

/* Two reads of one deal answered out of order: the webhook's read of a
 * CRM user's new close date is merged first, then a read made before
 * that edit, which shows the attribute empty (no time), is merged. The
 * date stays; the old read does not empty it. */
static void test_untimed_clear_from_older_read(void **state)
{
    struct store_fixture *fx = *state;
    struct crm_deal deal;
    struct record r = {0};

    merge_emptied_close_date(fx, 1500);

    crm_read(&deal, 1000, false);
    deal.values[DEAL_CLOSE_DATE] = "2027-12-25";
    deal.times[DEAL_CLOSE_DATE] = 3000;
    deal.actors[DEAL_CLOSE_DATE] = ACTOR_OTHER;
    deal.read_at = 3001;
    merge_read(fx, &deal);

    merge_emptied_close_date(fx, 2990);
    load(fx, &r);
    assert_string_equal(r.fields[DEAL_CLOSE_DATE].value, "2027-12-25");
    assert_string_equal(r.fields[DEAL_CLOSE_DATE].crm_value, "2027-12-25");
    assert_int_equal(r.fields[DEAL_CLOSE_DATE].time, 3000);
    assert_int_equal(pending_records(fx, 4000), 0);
    record_clear(&r);

    /* Emptied later: a read made after the date was written clears it. */
    merge_emptied_close_date(fx, 5000);
    load(fx, &r);
    assert_null(r.fields[DEAL_CLOSE_DATE].value);
    assert_null(r.fields[DEAL_CLOSE_DATE].crm_value);
    record_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_edit_after_crm_delete_is_held_for_a_restore,
            store_fixture_setup, store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crm_delete_ends_pending_edits,
                                        store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(
            test_read_keeps_newer_local_edit_pending, store_fixture_setup,
            store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_gone_alias_keeps_survivor,
                                        store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_untimed_clear_from_older_read,
                                        store_fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_untimed_clear, store_fixture_setup,
                                        store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

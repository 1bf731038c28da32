/* Unit tests of the merge rules, one test per rule of docs/DECISIONS.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model/merge.h"

#include <string.h>

static enum merge_outcome crm(struct field_state *f, const char *value,
                              int64_t time, enum change_actor actor)
{
    struct crm_change change = {.value = value, .time = time, .actor = actor};
    return merge_crm_change(f, &change);
}

static void assert_value(const char *expected, const char *actual)
{
    if (!expected)
        assert_null(actual);
    else
        assert_string_equal(expected, actual);
}

static bool states_equal(const struct field_state *a,
                         const struct field_state *b)
{
    return merge_value_equal(a->value, b->value) && a->time == b->time &&
           a->origin == b->origin &&
           merge_value_equal(a->crm_value, b->crm_value) &&
           a->crm_time == b->crm_time &&
           merge_value_equal(a->pushed_value, b->pushed_value) &&
           a->has_pushed == b->has_pushed;
}

static void test_stale_crm_change_dropped(void **state)
{
    struct field_state f = {0};

    assert_int_equal(crm(&f, "A", 100, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(crm(&f, "B", 50, ACTOR_OTHER), MERGE_STALE);
    assert_value("A", f.value);
    assert_value("A", f.crm_value);
    assert_int_equal(f.crm_time, 100);
    assert_int_equal(f.time, 100);
    field_state_clear(&f);
}

static void test_newer_crm_change_wins(void **state)
{
    struct field_state f = {0};

    assert_int_equal(merge_local_edit(&f, "X", 100, 0), EDIT_APPLIED);
    assert_true(merge_field_pending(&f));
    assert_int_equal(crm(&f, "B", 200, ACTOR_OTHER), MERGE_TAKEN);
    assert_value("B", f.value);
    assert_int_equal(f.origin, ORIGIN_CRM);
    assert_int_equal(f.time, 200);
    assert_false(merge_field_pending(&f));
    field_state_clear(&f);
}

static void test_newer_local_edit_survives(void **state)
{
    struct field_state f = {0};

    assert_int_equal(crm(&f, "A", 100, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(merge_local_edit(&f, "X", 200, 0), EDIT_APPLIED);
    assert_int_equal(crm(&f, "B", 150, ACTOR_OTHER), MERGE_LOCAL_KEPT);
    assert_value("X", f.value);
    assert_int_equal(f.origin, ORIGIN_LOCAL);
    assert_value("B", f.crm_value);
    assert_int_equal(f.crm_time, 150);
    assert_true(merge_field_pending(&f));
    field_state_clear(&f);
}

static void test_tie_crm_beats_local(void **state)
{
    struct field_state f = {0};

    assert_int_equal(merge_local_edit(&f, "X", 100, 0), EDIT_APPLIED);
    assert_int_equal(f.time, 100);
    assert_int_equal(crm(&f, "B", 100, ACTOR_OTHER), MERGE_TAKEN);
    assert_value("B", f.value);
    assert_int_equal(f.origin, ORIGIN_CRM);
    field_state_clear(&f);

    /* The other order: an offline edit at the CRM's time loses too. */
    assert_int_equal(crm(&f, "B", 100, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(merge_local_edit(&f, "X", 500, 100), EDIT_SUPERSEDED);
    assert_value("B", f.value);
    field_state_clear(&f);
}

static void test_tie_greater_crm_value_wins(void **state)
{
    struct field_state a = {0};
    struct field_state b = {0};

    assert_int_equal(crm(&a, "apple", 100, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(crm(&a, "banana", 100, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(crm(&b, "banana", 100, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(crm(&b, "apple", 100, ACTOR_OTHER), MERGE_STALE);
    assert_value("banana", a.value);
    assert_true(states_equal(&a, &b));

    /* NULL (cleared) sorts lowest. */
    assert_int_equal(crm(&b, NULL, 100, ACTOR_OTHER), MERGE_STALE);
    assert_value("banana", b.crm_value);
    field_state_clear(&a);
    field_state_clear(&b);
}

static void test_same_event_twice_changes_nothing(void **state)
{
    struct field_state f = {0};
    struct field_state before = {0};

    assert_int_equal(merge_local_edit(&f, "X", 300, 0), EDIT_APPLIED);
    assert_int_equal(crm(&f, "A", 100, ACTOR_OTHER), MERGE_LOCAL_KEPT);
    field_state_copy(&before, &f);
    assert_int_equal(crm(&f, "A", 100, ACTOR_OTHER), MERGE_SAME);
    assert_true(states_equal(&before, &f));
    field_state_clear(&f);
    field_state_clear(&before);

    assert_int_equal(crm(&f, "A", 100, ACTOR_OTHER), MERGE_TAKEN);
    field_state_copy(&before, &f);
    assert_int_equal(crm(&f, "A", 100, ACTOR_OTHER), MERGE_SAME);
    assert_true(states_equal(&before, &f));
    field_state_clear(&f);
    field_state_clear(&before);
}

/* One step of a permutation: a CRM change, or (time -1) the local edit. */
struct step {
    const char *value;
    int64_t time;
    int64_t client_time;
};

static void apply_step(struct field_state *f, const struct step *s)
{
    if (s->client_time > 0)
        merge_local_edit(f, s->value, 1000000, s->client_time);
    else
        crm(f, s->value, s->time, ACTOR_OTHER);
}

/* Applies steps in every order (Heap's algorithm) and checks each end state
 * against the first. */
static void check_all_orders(const struct step *steps, size_t n,
                             struct field_state *expected)
{
    size_t order[8];
    size_t c[8] = {0};
    size_t runs = 0;

    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 0; i < n; i++)
        apply_step(expected, &steps[order[i]]);
    runs++;

    size_t i = 0;
    while (i < n) {
        if (c[i] < i) {
            size_t j = i % 2 == 0 ? 0 : c[i];
            size_t tmp = order[j];
            order[j] = order[i];
            order[i] = tmp;

            struct field_state f = {0};
            for (size_t k = 0; k < n; k++)
                apply_step(&f, &steps[order[k]]);
            assert_true(states_equal(&f, expected));
            field_state_clear(&f);
            runs++;
            c[i]++;
            i = 0;
        } else {
            c[i] = 0;
            i++;
        }
    }
    assert_int_equal(runs, 720);
}

static void test_order_insensitive_local_wins(void **state)
{
    const struct step steps[] = {
        {"A", 100, 0}, {"B", 200, 0},  {"C", 200, 0},
        {"D", 150, 0}, {NULL, 180, 0}, {"L", 0, 250},
    };
    struct field_state f = {0};

    check_all_orders(steps, 6, &f);
    assert_value("L", f.value);
    assert_int_equal(f.time, 250);
    assert_value("C", f.crm_value);
    assert_int_equal(f.crm_time, 200);
    assert_true(merge_field_pending(&f));
    field_state_clear(&f);
}

static void test_order_insensitive_crm_wins(void **state)
{
    const struct step steps[] = {
        {"A", 100, 0}, {"B", 300, 0}, {"C", 300, 0},
        {"D", 150, 0}, {"E", 250, 0}, {"L", 0, 300},
    };
    struct field_state f = {0};

    check_all_orders(steps, 6, &f);
    assert_value("C", f.value);
    assert_int_equal(f.time, 300);
    assert_int_equal(f.origin, ORIGIN_CRM);
    assert_false(merge_field_pending(&f));
    field_state_clear(&f);
}

static void test_echo_does_not_undo_second_edit(void **state)
{
    struct field_state f = {0};

    /* Push 1 carries A; B is edited before its echo comes back, and the
     * CRM stamps the echo later than B. */
    assert_int_equal(merge_local_edit(&f, "A", 100, 0), EDIT_APPLIED);
    merge_mark_pushed(&f, "A");
    assert_int_equal(merge_local_edit(&f, "B", 110, 0), EDIT_APPLIED);
    assert_int_equal(crm(&f, "A", 120, ACTOR_US), MERGE_ECHO);
    assert_value("B", f.value);
    assert_int_equal(f.time, 110);
    assert_int_equal(f.origin, ORIGIN_LOCAL);
    assert_value("A", f.crm_value);
    assert_int_equal(f.crm_time, 120);
    assert_true(merge_field_pending(&f));

    /* Push 2 sent B; a late copy of echo 1, attributed to us, still only
     * moves nothing local. */
    merge_mark_pushed(&f, "B");
    assert_int_equal(crm(&f, "A", 125, ACTOR_US), MERGE_ECHO);
    assert_value("B", f.value);
    assert_true(merge_field_pending(&f));

    /* Echo 2 arrives: the CRM has B, nothing is pending any more. */
    assert_int_equal(crm(&f, "B", 130, ACTOR_US), MERGE_ECHO);
    assert_value("B", f.value);
    assert_false(merge_field_pending(&f));
    field_state_clear(&f);
}

static void test_echo_recognised_by_value(void **state)
{
    struct field_state f = {0};

    assert_int_equal(crm(&f, "old", 50, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(merge_local_edit(&f, "A", 100, 0), EDIT_APPLIED);
    merge_mark_pushed(&f, "A");
    assert_true(f.has_pushed);
    assert_value("A", f.pushed_value);
    /* A read that does not say who wrote it, carrying what we pushed. */
    assert_int_equal(crm(&f, "A", 150, ACTOR_UNKNOWN), MERGE_ECHO);
    assert_value("A", f.value);
    assert_int_equal(f.origin, ORIGIN_LOCAL);
    assert_int_equal(f.time, 100);
    assert_value("A", f.crm_value);
    assert_int_equal(f.crm_time, 150);
    assert_false(merge_field_pending(&f));

    /* A different value from someone else in the CRM is no echo. */
    assert_int_equal(crm(&f, "Z", 160, ACTOR_UNKNOWN), MERGE_TAKEN);
    assert_value("Z", f.value);
    field_state_clear(&f);
}

/* A value we pushed, set again by a CRM user who is named as such, is
 * their edit and not our echo, even though the values match. */
static void test_attributed_change_to_pushed_value_is_taken(void **state)
{
    struct field_state f = {0};

    assert_int_equal(merge_local_edit(&f, "A", 100, 0), EDIT_APPLIED);
    merge_mark_pushed(&f, "A");
    assert_int_equal(crm(&f, "A", 110, ACTOR_US), MERGE_ECHO);
    assert_int_equal(merge_local_edit(&f, "L", 120, 0), EDIT_APPLIED);
    assert_int_equal(crm(&f, "A", 130, ACTOR_OTHER), MERGE_TAKEN);
    assert_value("A", f.value);
    assert_int_equal(f.origin, ORIGIN_CRM);
    assert_false(merge_field_pending(&f));

    /* Once a CRM edit was taken, what we pushed is forgotten: an
     * unattributed change back to it is taken too. */
    assert_int_equal(crm(&f, "B", 140, ACTOR_OTHER), MERGE_TAKEN);
    assert_false(f.has_pushed);
    assert_int_equal(crm(&f, "A", 150, ACTOR_UNKNOWN), MERGE_TAKEN);
    assert_value("A", f.value);
    field_state_clear(&f);
}

/* Our push lands in the CRM after a newer CRM edit and overwrites it. The
 * newer edit wins by last-write-wins whichever arrives first, and stays
 * pending until it is written back. */
static void test_push_overwriting_newer_crm_edit(void **state)
{
    /* The push's answer (CRM time 900) is merged before the CRM edit made
     * at 823 arrives. */
    struct field_state f = {0};
    assert_int_equal(crm(&f, "old", 500, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(merge_local_edit(&f, "ours", 822, 0), EDIT_APPLIED);
    merge_mark_pushed(&f, "ours");
    assert_int_equal(crm(&f, "ours", 900, ACTOR_US), MERGE_ECHO);
    assert_int_equal(crm(&f, "theirs", 823, ACTOR_OTHER), MERGE_OVERWRITTEN);
    assert_value("theirs", f.value);
    assert_int_equal(f.time, 823);
    assert_value("ours", f.crm_value);
    assert_int_equal(f.crm_time, 900);
    assert_true(merge_field_pending(&f));

    /* Written back, its echo settles the field. */
    merge_mark_pushed(&f, "theirs");
    assert_int_equal(crm(&f, "theirs", 950, ACTOR_US), MERGE_ECHO);
    assert_value("theirs", f.value);
    assert_false(merge_field_pending(&f));
    field_state_clear(&f);

    /* The CRM edit arrives first, then the push's echo. */
    struct field_state g = {0};
    assert_int_equal(crm(&g, "old", 500, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(merge_local_edit(&g, "ours", 822, 0), EDIT_APPLIED);
    merge_mark_pushed(&g, "ours");
    assert_int_equal(crm(&g, "theirs", 823, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(crm(&g, "ours", 900, ACTOR_US), MERGE_ECHO);
    assert_value("theirs", g.value);
    assert_value("ours", g.crm_value);
    assert_true(merge_field_pending(&g));
    field_state_clear(&g);

    /* A CRM edit older than ours, arriving late, changes nothing. */
    struct field_state h = {0};
    assert_int_equal(crm(&h, "old", 500, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(merge_local_edit(&h, "ours", 822, 0), EDIT_APPLIED);
    merge_mark_pushed(&h, "ours");
    assert_int_equal(crm(&h, "ours", 900, ACTOR_US), MERGE_ECHO);
    assert_int_equal(crm(&h, "older", 700, ACTOR_OTHER), MERGE_STALE);
    assert_value("ours", h.value);
    assert_false(merge_field_pending(&h));
    field_state_clear(&h);
}

static void test_offline_edit_clamped_or_superseded(void **state)
{
    struct field_state f = {0};

    assert_int_equal(crm(&f, "A", 100, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(merge_local_edit(&f, "X", 200, 50), EDIT_SUPERSEDED);
    assert_int_equal(merge_local_edit(&f, "X", 200, 100), EDIT_SUPERSEDED);
    assert_value("A", f.value);

    /* A client clock ahead of ours is clamped to now. */
    assert_int_equal(merge_local_edit(&f, "X", 200, 900), EDIT_APPLIED);
    assert_int_equal(f.time, 200);
    assert_value("X", f.value);

    /* An edit within the field's time is ordered after it. */
    assert_int_equal(merge_local_edit(&f, "Y", 150, 0), EDIT_APPLIED);
    assert_int_equal(f.time, 201);

    /* The same value again changes nothing, not even the time. */
    assert_int_equal(merge_local_edit(&f, "Y", 300, 0), EDIT_UNCHANGED);
    assert_int_equal(f.time, 201);
    field_state_clear(&f);
}

static void test_pending_derivation(void **state)
{
    struct field_state f = {0};

    assert_false(merge_field_pending(&f));
    assert_int_equal(crm(&f, "A", 100, ACTOR_OTHER), MERGE_TAKEN);
    assert_false(merge_field_pending(&f));

    /* Clearing a field locally is pending: NULL differs from "A". */
    assert_int_equal(merge_local_edit(&f, NULL, 200, 0), EDIT_APPLIED);
    assert_null(f.value);
    assert_true(merge_field_pending(&f));

    /* The CRM cleared it too (older than our edit): nothing to push. */
    assert_int_equal(crm(&f, NULL, 150, ACTOR_OTHER), MERGE_LOCAL_KEPT);
    assert_false(merge_field_pending(&f));

    /* Local value equal to the CRM value is not pending. */
    assert_int_equal(merge_local_edit(&f, "B", 300, 0), EDIT_APPLIED);
    assert_true(merge_field_pending(&f));
    assert_int_equal(crm(&f, "B", 250, ACTOR_OTHER), MERGE_LOCAL_KEPT);
    assert_false(merge_field_pending(&f));
    field_state_clear(&f);
}

static void test_copy_is_deep(void **state)
{
    struct field_state a = {0};
    struct field_state b = {0};

    assert_int_equal(merge_local_edit(&a, "A", 100, 0), EDIT_APPLIED);
    merge_mark_pushed(&a, "A");
    crm(&a, "C", 50, ACTOR_OTHER);
    field_state_copy(&b, &a);
    assert_true(states_equal(&a, &b));
    assert_ptr_not_equal(a.value, b.value);
    field_state_clear(&a);
    assert_value("A", b.value);
    assert_value("C", b.crm_value);
    field_state_clear(&b);
}

/* An emptied Attio attribute shows no time: the clear is taken where no
 * local edit waits, and a waiting edit is pushed over it. */
static void test_untimed_value(void **state)
{
    struct field_state f = {0};

    assert_int_equal(crm(&f, "2026-12-31", 1000, ACTOR_OTHER), MERGE_TAKEN);
    /* What the CRM already holds: nothing changes. */
    assert_int_equal(merge_crm_untimed(&f, "2026-12-31", ACTOR_UNKNOWN, 0),
                     MERGE_SAME);
    assert_int_equal(f.crm_time, 1000);

    /* Cleared in the CRM: taken, after everything we knew. */
    assert_int_equal(merge_crm_untimed(&f, NULL, ACTOR_UNKNOWN, 0),
                     MERGE_TAKEN);
    assert_null(f.value);
    assert_null(f.crm_value);
    assert_int_equal(f.crm_time, 1001);
    assert_int_equal(f.time, 1001);
    assert_false(merge_field_pending(&f));

    /* A local edit waiting for its push stays, still pending. */
    assert_int_equal(merge_local_edit(&f, "2027-01-15", 5000, 0), EDIT_APPLIED);
    assert_int_equal(crm(&f, "2027-01-15", 6000, ACTOR_US), MERGE_ECHO);
    assert_int_equal(merge_local_edit(&f, "2027-02-01", 7000, 0), EDIT_APPLIED);
    assert_int_equal(merge_crm_untimed(&f, NULL, ACTOR_UNKNOWN, 0),
                     MERGE_LOCAL_KEPT);
    assert_value("2027-02-01", f.value);
    assert_null(f.crm_value);
    assert_int_equal(f.crm_time, 6001);
    assert_true(merge_field_pending(&f));
    /* A later timed CRM change still orders after it. */
    assert_int_equal(crm(&f, "2027-03-01", 8000, ACTOR_OTHER), MERGE_TAKEN);
    assert_value("2027-03-01", f.value);
    field_state_clear(&f);
}

/* A read sent before our push landed shows the value the push replaced;
 * it must not undo the push (an emptied Attio attribute, read just before
 * our write of it and merged just after, cleared a confirmed local edit
 * on both sides). A read sent after it is taken. */
static void test_untimed_value_read_before_our_push(void **state)
{
    struct field_state f = {0};

    assert_int_equal(merge_local_edit(&f, "Initech", 5000, 0), EDIT_APPLIED);
    merge_mark_pushed(&f, "Initech");
    assert_int_equal(crm(&f, "Initech", 6000, ACTOR_US), MERGE_ECHO);
    assert_false(merge_field_pending(&f));

    assert_int_equal(merge_crm_untimed(&f, NULL, ACTOR_UNKNOWN, 5900),
                     MERGE_STALE);
    assert_value("Initech", f.value);
    assert_value("Initech", f.crm_value);
    assert_int_equal(merge_crm_untimed(&f, NULL, ACTOR_UNKNOWN, 6000),
                     MERGE_STALE);

    assert_int_equal(merge_crm_untimed(&f, NULL, ACTOR_UNKNOWN, 6100),
                     MERGE_TAKEN);
    assert_null(f.value);
    field_state_clear(&f);
}

/* An emptied attribute in a read made before the CRM value we hold was
 * written is that read's past, not a clear: a webhook's read took the
 * CRM user's date first, and an older read answered later must not empty
 * the field a millisecond after it (nothing newer would ever heal it). */
static void test_untimed_value_older_than_read(void **state)
{
    struct field_state f = {0};

    (void)state;
    assert_int_equal(crm(&f, "2027-12-25", 5000, ACTOR_OTHER), MERGE_TAKEN);
    assert_int_equal(merge_crm_untimed(&f, NULL, ACTOR_UNKNOWN, 4990),
                     MERGE_STALE);
    assert_int_equal(merge_crm_untimed(&f, NULL, ACTOR_UNKNOWN, 5000),
                     MERGE_STALE);
    assert_value("2027-12-25", f.value);
    assert_value("2027-12-25", f.crm_value);
    assert_int_equal(f.crm_time, 5000);
    assert_int_equal(f.time, 5000);

    /* A read made after the value was written shows a real clear. */
    assert_int_equal(merge_crm_untimed(&f, NULL, ACTOR_UNKNOWN, 5001),
                     MERGE_TAKEN);
    assert_null(f.value);
    assert_null(f.crm_value);
    assert_int_equal(f.time, 5001);
    field_state_clear(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_crm_change_dropped),
        cmocka_unit_test(test_untimed_value_read_before_our_push),
        cmocka_unit_test(test_newer_crm_change_wins),
        cmocka_unit_test(test_newer_local_edit_survives),
        cmocka_unit_test(test_tie_crm_beats_local),
        cmocka_unit_test(test_tie_greater_crm_value_wins),
        cmocka_unit_test(test_same_event_twice_changes_nothing),
        cmocka_unit_test(test_order_insensitive_local_wins),
        cmocka_unit_test(test_order_insensitive_crm_wins),
        cmocka_unit_test(test_echo_does_not_undo_second_edit),
        cmocka_unit_test(test_echo_recognised_by_value),
        cmocka_unit_test(test_attributed_change_to_pushed_value_is_taken),
        cmocka_unit_test(test_push_overwriting_newer_crm_edit),
        cmocka_unit_test(test_offline_edit_clamped_or_superseded),
        cmocka_unit_test(test_pending_derivation),
        cmocka_unit_test(test_copy_is_deep),
        cmocka_unit_test(test_untimed_value),
        cmocka_unit_test(test_untimed_value_older_than_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The merge rules for one field: CRM changes, local edits, echoes and the
 * derived pending state. See docs/DECISIONS.md for the tie rules. */
#include "model/merge.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

bool merge_value_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Byte-wise order with NULL (empty) lowest: <0, 0 or >0. */
static int value_compare(const char *a, const char *b)
{
    if (!a)
        return b ? -1 : 0;
    if (!b)
        return 1;
    return strcmp(a, b);
}

static char *dup_value(const char *v)
{
    return v ? xstrdup(v) : NULL;
}

static void set_value(char **slot, const char *v)
{
    if (*slot == v)
        return;
    char *copy = dup_value(v);
    free(*slot);
    *slot = copy;
}

/* Orders a change against the CRM value we know by the CRM's clock: the
 * greatest (time, value) pair, NULL lowest, is what the CRM holds, so the
 * CRM side ends the same whatever order changes arrive in. */
static int crm_order(const struct field_state *field,
                     const struct crm_change *change)
{
    if (change->time != field->crm_time)
        return change->time < field->crm_time ? -1 : 1;
    return value_compare(change->value, field->crm_value);
}

/* Our own write coming back. A change the CRM attributes to our
 * credentials always is; one it does not attribute is when it carries the
 * value we last pushed. */
static bool is_echo(const struct field_state *field,
                    const struct crm_change *change)
{
    if (change->actor == ACTOR_US)
        return true;
    return change->actor == ACTOR_UNKNOWN && field->has_pushed &&
           merge_value_equal(change->value, field->pushed_value);
}

/* Last write wins, by the time each write was made. At the same
 * millisecond a CRM change beats a local edit, and between two CRM changes
 * the greater value wins. */
static bool wins_record(const struct field_state *field,
                        const struct crm_change *change)
{
    if (change->time != field->time)
        return change->time > field->time;
    if (field->origin != ORIGIN_CRM)
        return true;
    return value_compare(change->value, field->value) > 0;
}

enum merge_outcome merge_crm_change(struct field_state *field,
                                    const struct crm_change *change)
{
    int order = crm_order(field, change);
    if (order == 0)
        return MERGE_SAME;
    bool newer = order > 0;
    if (newer) {
        set_value(&field->crm_value, change->value);
        field->crm_time = change->time;
    }

    /* An echo was made at the time of the edit it carries, which is never
     * newer than the record's value: it only says what the CRM holds. */
    if (is_echo(field, change))
        return newer ? MERGE_ECHO : MERGE_STALE;
    if (!wins_record(field, change))
        return newer ? MERGE_LOCAL_KEPT : MERGE_STALE;

    bool same = merge_value_equal(change->value, field->value);
    set_value(&field->value, change->value);
    field->time = change->time;
    field->origin = ORIGIN_CRM;
    /* What we pushed is history once a newer CRM edit is taken: a later
     * change to that same value is somebody's edit, not our echo. */
    set_value(&field->pushed_value, NULL);
    field->has_pushed = false;
    if (!newer && merge_field_pending(field))
        return MERGE_OVERWRITTEN;
    return same ? MERGE_SAME : MERGE_TAKEN;
}

enum merge_outcome merge_crm_untimed(struct field_state *field,
                                     const char *value, enum change_actor actor,
                                     int64_t read_at)
{
    if (merge_value_equal(value, field->crm_value))
        return MERGE_SAME;
    if (read_at > 0 && field->crm_time >= read_at)
        return MERGE_STALE;
    if (field->origin == ORIGIN_LOCAL && merge_field_pending(field)) {
        set_value(&field->crm_value, value);
        field->crm_time++;
        return MERGE_LOCAL_KEPT;
    }
    int64_t latest =
        field->crm_time > field->time ? field->crm_time : field->time;
    struct crm_change change = {
        .value = value, .time = latest + 1, .actor = actor};
    return merge_crm_change(field, &change);
}

enum edit_outcome merge_local_edit(struct field_state *field, const char *value,
                                   int64_t now, int64_t client_time)
{
    int64_t t;

    if (client_time > 0) {
        t = client_time < now ? client_time : now;
        if (t <= field->time)
            return EDIT_SUPERSEDED;
    } else {
        t = now > field->time ? now : field->time + 1;
    }

    if (merge_value_equal(value, field->value))
        return EDIT_UNCHANGED;

    set_value(&field->value, value);
    field->time = t;
    field->origin = ORIGIN_LOCAL;
    return EDIT_APPLIED;
}

bool merge_field_pending(const struct field_state *field)
{
    return field->origin != ORIGIN_NONE &&
           !merge_value_equal(field->value, field->crm_value);
}

void merge_mark_pushed(struct field_state *field, const char *value)
{
    set_value(&field->pushed_value, value);
    field->has_pushed = true;
}

void field_state_clear(struct field_state *field)
{
    free(field->value);
    free(field->crm_value);
    free(field->pushed_value);
    memset(field, 0, sizeof(*field));
}

void field_state_copy(struct field_state *dst, const struct field_state *src)
{
    struct field_state copy = *src;

    copy.value = dup_value(src->value);
    copy.crm_value = dup_value(src->crm_value);
    copy.pushed_value = dup_value(src->pushed_value);
    field_state_clear(dst);
    *dst = copy;
}

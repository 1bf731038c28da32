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

/* The CRM value is the greatest (time, value) pair seen, NULL lowest, so
 * the CRM side ends the same whatever order changes arrive in. */
enum merge_outcome merge_crm_change(struct field_state *field,
                                    const struct crm_change *change)
{
    if (change->time < field->crm_time)
        return MERGE_STALE;
    if (change->time == field->crm_time) {
        if (merge_value_equal(change->value, field->crm_value))
            return MERGE_SAME;
        if (value_compare(change->value, field->crm_value) < 0)
            return MERGE_STALE;
    }
    set_value(&field->crm_value, change->value);
    field->crm_time = change->time;

    /* An echo only tells us what the CRM now holds: a local edit made
     * after the push must survive it, whatever the CRM's clock says. With
     * no local write to protect it is an ordinary change, so the record
     * never keeps a value the CRM no longer has. */
    bool echo = change->from_us ||
                (field->has_pushed &&
                 merge_value_equal(change->value, field->pushed_value));
    if (echo && field->origin == ORIGIN_LOCAL)
        return MERGE_ECHO;

    if (change->time < field->time)
        return MERGE_LOCAL_KEPT;

    bool same = change->time == field->time &&
                merge_value_equal(change->value, field->value);
    set_value(&field->value, change->value);
    field->time = change->time;
    field->origin = ORIGIN_CRM;
    /* What we pushed is history once the CRM's own value is taken: a later
     * change to that same value is somebody's edit, not our echo. */
    set_value(&field->pushed_value, NULL);
    field->has_pushed = false;
    return same ? MERGE_SAME : MERGE_TAKEN;
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
    return field->origin == ORIGIN_LOCAL &&
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

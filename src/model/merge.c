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

/* Updates crm_value/crm_time from the change. Returns false when the change
 * is stale or loses the tie to the CRM value already known; *same is set
 * when it repeats that CRM value exactly. */
static bool take_crm_value(struct field_state *field,
                           const struct crm_change *change, bool *same)
{
    *same = false;
    if (change->time < field->crm_time)
        return false;
    if (change->time == field->crm_time && field->crm_time != 0) {
        if (merge_value_equal(change->value, field->crm_value)) {
            *same = true;
            return true;
        }
        if (value_compare(change->value, field->crm_value) < 0)
            return false;
    }
    set_value(&field->crm_value, change->value);
    field->crm_time = change->time;
    return true;
}

enum merge_outcome merge_crm_change(struct field_state *field,
                                    const struct crm_change *change)
{
    bool same = false;

    if (!take_crm_value(field, change, &same))
        return MERGE_STALE;

    bool echo = change->from_us ||
                (field->has_pushed &&
                 merge_value_equal(change->value, field->pushed_value));
    if (echo)
        return MERGE_ECHO;

    if (change->time >= field->time) {
        if (field->time == change->time &&
            merge_value_equal(field->value, change->value) &&
            field->origin == ORIGIN_CRM)
            return MERGE_SAME;
        set_value(&field->value, change->value);
        field->time = change->time;
        field->origin = ORIGIN_CRM;
        return MERGE_TAKEN;
    }
    return same ? MERGE_SAME : MERGE_LOCAL_KEPT;
}

enum edit_outcome merge_local_edit(struct field_state *field,
                                   const char *value, int64_t now,
                                   int64_t client_time)
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

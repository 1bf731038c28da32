/* The merge rules: how a CRM change or a local edit updates one field of a
 * record. Pure logic, no I/O; the store persists field_state as it is. */
#ifndef FIELDSYNC_MODEL_MERGE_H
#define FIELDSYNC_MODEL_MERGE_H

#include <stdbool.h>
#include <stdint.h>

enum field_origin {
    ORIGIN_NONE = 0, /* never written */
    ORIGIN_CRM,
    ORIGIN_LOCAL,
};

/* Everything the store keeps about one field of one record. Strings are
 * owned by the state; NULL means empty. Times are epoch milliseconds,
 * 0 meaning never.
 *
 * Two clocks meet here. value/time is the winner of last-write-wins, each
 * write at the time it was made (a local edit at our commit, a CRM user's
 * change at the CRM's time). crm_value/crm_time is what the CRM holds now,
 * ordered by the CRM's clock. They differ after our push lands in the CRM
 * later than a newer CRM edit it overwrote: the CRM holds our older value
 * with a newer CRM time, the record keeps the newer edit, and the field is
 * pending until the CRM has it again. */
struct field_state {
    char *value;
    int64_t time;
    enum field_origin origin;
    char *crm_value;
    int64_t crm_time;
    char *pushed_value; /* last value sent to the CRM, for echo checks */
    bool has_pushed;
};

/* Who the CRM says made a change. */
enum change_actor {
    ACTOR_UNKNOWN = 0, /* the CRM did not say (a plain read) */
    ACTOR_US,          /* our own credentials: an echo of a push */
    ACTOR_OTHER,       /* a CRM user, workflow or other integration */
};

/* A change to one field reported by the CRM. */
struct crm_change {
    const char *value;
    int64_t time;
    enum change_actor actor;
};

enum merge_outcome {
    MERGE_STALE,       /* older than what we know: nothing changed */
    MERGE_SAME,        /* nothing changed (a repeat) */
    MERGE_TAKEN,       /* the record took the CRM value */
    MERGE_LOCAL_KEPT,  /* a newer local edit stays and remains pending */
    MERGE_ECHO,        /* our own write came back: CRM value updated only */
    MERGE_OVERWRITTEN, /* a CRM edit newer than the one we pushed, which
                        * our push overwrote: the record takes it and it
                        * is pending, to be written back */
};

enum merge_outcome merge_crm_change(struct field_state *field,
                                    const struct crm_change *change);

/* A CRM value known to be what the CRM held when a read made at read_at
 * (0: unknown) was answered, but not since when (an emptied Attio
 * attribute shows no time). Nothing when it is the CRM value we know, and
 * stale when the CRM value we know is timed at or after read_at: that
 * read may have been answered before the value was written (a later read
 * shows the clear again, if it was one). Else it becomes the CRM value, a
 * millisecond after the last CRM time we knew, and the record takes it (a
 * millisecond after its own time) unless a local edit waits to be pushed:
 * that edit may be the newer, and it is written over the CRM's value. */
enum merge_outcome merge_crm_untimed(struct field_state *field,
                                     const char *value, enum change_actor actor,
                                     int64_t read_at);

enum edit_outcome {
    EDIT_APPLIED,    /* the field took the value */
    EDIT_UNCHANGED,  /* the field already held that value */
    EDIT_SUPERSEDED, /* an offline edit older than the field's last write */
};

/* Applies a local edit at server time now. client_time (0 when absent) is
 * an offline edit's own time, clamped to now. */
enum edit_outcome merge_local_edit(struct field_state *field, const char *value,
                                   int64_t now, int64_t client_time);

/* True when the record's value still has to reach the CRM: it differs
 * from what the CRM holds, and was written locally or is a CRM edit our
 * push overwrote. */
bool merge_field_pending(const struct field_state *field);

/* Records that value was sent to the CRM for this field. */
void merge_mark_pushed(struct field_state *field, const char *value);

/* Null-safe string equality for field values. */
bool merge_value_equal(const char *a, const char *b);

void field_state_clear(struct field_state *field);
void field_state_copy(struct field_state *dst, const struct field_state *src);

#endif

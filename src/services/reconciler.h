/* The reconciler: turns inbox events and CRM reads into merged records.
 * Every path that learns a CRM value (webhook, import, backstop, push
 * answer) goes through reconcile_deal or the event application here, so
 * the merge rules hold the same everywhere. */
#ifndef FIELDSYNC_SERVICES_RECONCILER_H
#define FIELDSYNC_SERVICES_RECONCILER_H

#include "base/result.h"
#include "providers/provider.h"
#include "store/store.h"

#include <stdbool.h>

struct app;
struct live_stream;
struct metrics;
struct reconciler;

/* What one merge pass changed, for the live stream and counters. Records
 * changed inside a transaction are held and published by
 * reconcile_effects_flush once it commits, so subscribers never see a
 * change that is then rolled back. */
struct reconcile_effects {
    struct live_stream *live;   /* may be NULL */
    struct stage_cache *stages; /* may be NULL: stages shown raw */
    struct metrics *metrics;    /* may be NULL */
    int64_t applied;
    int64_t conflicts;
    int64_t echoes;
    int64_t repushes; /* fields that must be written back to the CRM */
    struct record *held;
    const char **held_types;
    size_t n_held;
    size_t cap_held;
};

/* Publishes the held records when committed, else drops them. */
void reconcile_effects_flush(struct reconcile_effects *fx, struct store *store,
                             bool committed);

/* Merges a deal read from the CRM into the store, inside the caller's
 * transaction. field_times says whether deal->times[] are per-field
 * times; when they are only the deal's modification time, fields whose
 * value matches the known CRM value are left alone, and *needs_read is set
 * when an existing record has a differing field, so the caller re-reads
 * the deal with per-field times. */
fs_result reconcile_deal(struct store *store, const struct connection *conn,
                         const struct crm_deal *deal, bool field_times,
                         bool *needs_read, struct reconcile_effects *fx);

/* Reads the given deals with per-field times and merges them, in
 * transactions of its own. */
fs_result reconcile_read(struct store *store, struct provider_session *session,
                         const char *const *crm_ids, size_t n,
                         struct reconcile_effects *fx);

struct reconciler *reconciler_new(struct app *app);
void reconciler_free(struct reconciler *r);
/* Asks for a pass over the inbox now. */
void reconciler_wake(struct reconciler *r);

#endif

/* What the integration stack needs to know of each CRM: the words that
 * start its simulator and connect an org to it, what to do once a
 * connection exists, and what the CRM can and cannot do. One entry per
 * CRM, each in a file of its own (stack_<crm>.c, defining stack_crm_<crm>);
 * CMake's FS_CRMS list names the entries the suite knows
 * (docs/TESTING.md). */
#ifndef FIELDSYNC_TESTS_STACK_CRM_H
#define FIELDSYNC_TESTS_STACK_CRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stack;

/* Most words one list holds. */
#define STACK_WORDS_MAX 48

/* A growing list of command-line words, NULL-terminated; words added
 * with stack_words_addf are owned by the list. */
struct stack_words {
    const char *w[STACK_WORDS_MAX + 1];
    char *owned[STACK_WORDS_MAX];
    size_t n;
    size_t n_owned;
};

/* Adds a word kept by the caller (a literal, or text outliving the
 * list). Aborts the test run when the list is full. */
void stack_words_add(struct stack_words *w, const char *word);
/* Adds a formatted word the list owns. */
void stack_words_addf(struct stack_words *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void stack_words_clear(struct stack_words *w);

struct stack_crm {
    /* The word for `crmsim NAME`, `fieldsync connect NAME` and
     * `/webhooks/NAME`, and the value of FS_CRM. */
    const char *name;
    /* The CRM's rolling burst window, which the budgets below count in
     * (HubSpot: 10 s). */
    int64_t rate_window_ms;
    /* A deleted deal can be brought back (HubSpot's recycle bin); false
     * where deletes are for good. */
    bool restores;
    /* Webhooks carry the changed values (HubSpot); false where they carry
     * ids only (Attio), so fieldsync learns a CRM change only by reading
     * the CRM: a scenario that blinds the API must open it again before
     * such a change can arrive. */
    bool webhook_values;
    /* A merge's webhooks say which deal was the primary (HubSpot); false
     * where each names one of the merged deals only (Attio: a merge mints
     * a new record and sends an event per original), so either local
     * record may be the one that lives on. */
    bool merge_names_primary;
    /* An emptied field carries its time (HubSpot's history); false where
     * it shows none (Attio), so a CRM clear cannot be ordered against a
     * local edit waiting to be pushed, which then wins (docs/ATTIO.md):
     * the convergence workload makes no CRM-side clears there. */
    bool clears_timed;
    /* The step, in ms, of the times the CRM's reads give a field: 1000
     * where they have whole seconds (Pipedrive's changelog), 0 where they
     * are as fine as a webhook's. A CRM write fieldsync learns by a read
     * then cannot be ordered against a local write within the same step
     * (docs/LIMITATIONS.md), and the oracle takes either outcome. */
    int64_t time_step_ms;

    /* The `crmsim NAME` options beyond the common ones (--listen, --data,
     * --webhook-url, --port-file), for a budget of rate calls per window
     * (reads and writes alike, where the CRM counts them apart). s has
     * api_base, fieldsync's URL, already. The simulated CRM's own account
     * is number s->account_base (0 unless the simulator runs beside
     * another, see stack_start_beside); accounts are numbers the entry
     * turns into its CRM's ids. */
    void (*sim_words)(const struct stack *s, struct stack_words *w, int rate);
    /* The `fieldsync connect NAME` options beyond --org and --base-url:
     * the credentials of account s->account_base + 0, the simulator's own
     * account, or of a further one (+1, +2, ...) on the same simulator
     * (another org's, that gets no webhooks); rate is the connection's
     * budget per window. s has both URLs (say, for a --public-url the
     * provider registers its webhook at). */
    void (*connect_words)(const struct stack *s, struct stack_words *w,
                          int account, int rate);
    /* Run once the connection exists, with the id `connect` printed: for a
     * CRM whose webhooks go to a URL per connection
     * (/webhooks/NAME/<connection id>), e.g. to tell the simulator where
     * to deliver, or to check the provider registered its webhook through
     * the CRM's own webhook API. False stops the stack. NULL: nothing to
     * do (HubSpot's webhooks go to /webhooks/hubspot, known before). */
    bool (*after_connect)(struct stack *s, int account, int64_t connection);
};

/* The entry named name, or NULL when the suite has none. */
const struct stack_crm *stack_crm_by_name(const char *name);

/* The CRM a stack runs against when its options name none: FS_CRM from
 * the environment, else "hubspot". */
const char *stack_crm_default(void);

#endif

/* Seeded random operations on both sides of a stack, each recorded in an
 * oracle (oracle.h) as it is answered: local edits and creates through the
 * field API, CRM users' edits, creates, deletes, merges and restores
 * through /_sim, the CRM's own 429 (limits/exhaust), and fault settings.
 * The convergence and crash tests drive it; the same seed gives the same
 * operations. */
#ifndef FIELDSYNC_TESTS_WORKLOAD_H
#define FIELDSYNC_TESTS_WORKLOAD_H

#include "oracle.h"
#include "stack.h"

#include <stdbool.h>
#include <stdint.h>

struct workload {
    struct stack *st;
    struct oracle oracle;
    uint64_t rng;
    int op;           /* operations made so far */
    bool faults;      /* faults may be switched on */
    bool no_restores; /* never restore (a crash test's kill may lose one) */
    char *faults_now; /* the faults set last (JSON text) */
    int last_exhaust; /* the operation of the last limits/exhaust */
    bool down;        /* fieldsync is down: only CRM-side operations */
    int64_t given_up_before; /* the CRM's webhooks given up before the run */
    /* fieldsync may die any moment: no deletes, merges or restores,
     * whose hand-over to it is waited for (a webhook that fails all the
     * CRM's retries meanwhile is given up for good). */
    bool killing;
    uint32_t tag; /* in created deals' names, unique to the run */
    /* Creates sent but never answered: their fields (JSON, canonical). */
    json_t *unanswered_creates;
    /* What happened, for the summary. */
    int64_t local_edits, crm_edits, local_creates, crm_creates, deletes, merges,
        restores, exhausts, skipped, refused, unanswered;
};

/* The seed: FS_SEED when set, else one from the clock; printed. */
uint64_t workload_seed(const char *test);

/* The number of operations: FS_OPS when set, else dflt. */
int workload_ops(int dflt);

void workload_init(struct workload *w, struct stack *st, uint64_t seed);
void workload_free(struct workload *w);

/* One random operation (or a new fault setting, with faults on). */
void workload_step(struct workload *w);

/* One operation of a kind, on a random deal. */
void workload_crm_edit_any(struct workload *w);
void workload_local_edit_any(struct workload *w);
void workload_local_create(struct workload *w);
void workload_crm_create(struct workload *w);
void workload_crm_merge(struct workload *w);

/* Takes into the oracle each deal whose create was sent but never
 * answered and which fieldsync holds (found by its unique name), with
 * the values sent: it must then be in the CRM once, like any other. */
void workload_adopt_unanswered(struct workload *w);

/* Random faults of every kind (webhooks dropped, duplicated, delayed,
 * reordered; API 5xx and timeouts), or none. */
bool workload_set_faults(struct workload *w, bool on);

/* A random number below n. */
uint32_t workload_rand(struct workload *w, uint32_t n);

/* Faults of every kind the simulator counted: webhook batches' events
 * dropped and duplicated, API 5xx, timeouts and 429s. */
int64_t workload_faulted(struct stack *st);

/* Prints the one summary line of a run. */
void workload_print(const struct workload *w, const char *test,
                    const struct oracle_result *r);

#endif

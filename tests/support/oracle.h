/* An independent model of the merge rules for the convergence and crash
 * tests: every write either side made, with the time it was made at, and
 * what the rules then predict both sides hold. It is written from
 * ARCHITECTURE.md section 2 and DECISIONS.md "Merge rules", not from
 * fieldsync's merge code:
 *
 * - per field, the write with the latest time wins (a local edit at the
 *   time the field API answered for it, a CRM change at the CRM's time);
 * - at the same millisecond a CRM write beats a local one, and of two CRM
 *   writes the value that sorts greater byte-wise (empty lowest) wins;
 * - a deleted or merged-away deal is a tombstone on both sides, whatever
 *   was written to it;
 * - a merge's survivor takes the values the CRM's merge gave it, as CRM
 *   writes at the merge's time;
 * - where the CRM's reads time a field coarsely (time_step_ms, Pipedrive's
 *   whole seconds), the latest write of the side that did not win (an
 *   unanswered edit too, if it was made), made in the same step as the
 *   winner, may win instead: fieldsync may learn the CRM write by a
 *   read, timed at its step's end or start (docs/PIPEDRIVE.md,
 *   docs/LIMITATIONS.md).
 *
 * Deals are numbered in the order the test adds them. */
#ifndef FIELDSYNC_TESTS_ORACLE_H
#define FIELDSYNC_TESTS_ORACLE_H

#include "stack.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The field API's deal fields, the ones compared. */
#define ORACLE_FIELDS 10
extern const char *const oracle_fields[ORACLE_FIELDS];

struct oracle_write {
    int64_t time;
    char *value; /* NULL: empty */
    bool crm;    /* a CRM write; else a local edit */
    int op;      /* the test's operation number (0: the seed) */
    /* A local edit sent but never answered (the service was killed):
     * made at some time from `time` to `until`, or not at all. */
    bool maybe;
    int64_t until;
};

struct oracle_deal {
    char *our_id; /* NULL until known */
    char *crm_id; /* NULL until known */
    bool deleted; /* deleted or merged away in the CRM */
    bool merged;  /* merged away */
    bool local;   /* created through the field API */
    bool frozen;  /* edited locally while deleted: never restored */
    struct oracle_write *writes[ORACLE_FIELDS];
    size_t n_writes[ORACLE_FIELDS];
};

struct oracle {
    struct oracle_deal *deals;
    size_t n;
};

struct oracle_result {
    size_t deals_checked;
    size_t fields_checked;
    size_t differences; /* fields that differ from the prediction */
    size_t lost;        /* deals or fields missing a predicted write */
    size_t doubled;     /* deals held twice (or more) on a side */
    /* Fields taken with the value of a write of the other side than the
     * prediction's within the same step of the CRM's read times (the
     * stack's time_step_ms): either may win there. */
    size_t coarse;
};

/* The field's index in oracle_fields, or -1. */
int oracle_field(const char *name);

/* Adds a deal and returns its number. */
size_t oracle_add(struct oracle *o, const char *our_id, const char *crm_id,
                  bool local);

/* Every live deal of the simulator as the seed: its values as CRM writes
 * at their times (op 0). */
void oracle_seed(struct oracle *o, struct stack *st);

void oracle_write(struct oracle *o, size_t deal, int field, const char *value,
                  int64_t time, bool crm, int op);

/* A local edit sent at time that was never answered: either outcome is
 * right. Its latest possible time is open until oracle_cap_maybes. */
void oracle_write_maybe(struct oracle *o, size_t deal, int field,
                        const char *value, int64_t time, int op);

/* Closes the open unanswered edits: none was made after t (the service
 * died then). */
void oracle_cap_maybes(struct oracle *o, int64_t t);

/* Records, as CRM writes at their times, every field of a simulator deal
 * (control view) written at or after since: what a CRM-side create, edit
 * or merge made. */
void oracle_crm_answer(struct oracle *o, size_t deal, const json_t *sim_deal,
                       int64_t since, int op);

/* The value the rules predict from the answered writes (NULL: empty). */
const char *oracle_predict(const struct oracle *o, size_t deal, int field);

/* The deal with that CRM id (not merged away), or -1. */
long oracle_by_crm_id(const struct oracle *o, const char *crm_id);

/* Compares both sides with the prediction, field by field, printing every
 * difference with the write log of that field. */
void oracle_check(struct oracle *o, struct stack *st, struct oracle_result *r);

void oracle_free(struct oracle *o);

#endif

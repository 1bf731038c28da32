/* The simulated CRM's data, whatever the CRM: owners, one pipeline of
 * stages, and deals holding fieldsync's deal fields in canonical text
 * (model/deal.h), each value with its time and who set it, behind one
 * mutex. Every change is reported to an event sink as a provider-neutral
 * event. The front-end decides how ids look and converts its wire formats
 * to and from the canonical values kept here. */
#ifndef FIELDSYNC_SIM_SIM_STORE_H
#define FIELDSYNC_SIM_SIM_STORE_H

#include "base/result.h"
#include "model/deal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Values kept per field, newest first. */
#define SIM_HISTORY_MAX 20

/* The fields a deal holds: fieldsync's deal fields (enum deal_field) and
 * two the CRM keeps for the sync, our record id and the pipeline id. */
enum {
    SIM_F_OUR_ID = DEAL_FIELD_COUNT,
    SIM_F_PIPELINE,
    SIM_FIELD_COUNT,
};

/* Who made a change. */
enum sim_actor_kind {
    SIM_ACTOR_IMPORT, /* the seed data */
    SIM_ACTOR_USER,   /* a CRM user in the CRM's own UI; id: the user id */
    SIM_ACTOR_TOKEN,  /* an integration's API token; id: the token's id */
};

struct sim_actor {
    enum sim_actor_kind kind;
    const char *id; /* NULL for the import */
};

/* One value a field held; value NULL means empty. */
struct sim_value {
    char *value;
    int64_t time_ms;
    enum sim_actor_kind actor;
    char *actor_id;
    struct sim_value *prev; /* the older history */
};

struct sim_deal {
    char *id;   /* the front-end's id */
    char *seed; /* the seed row's opportunity_id; NULL when created later */
    bool archived;
    struct sim_deal *merged_into; /* set: archived by a merge into it */
    int64_t created_ms;
    int64_t modified_ms;
    int64_t archived_ms;
    struct sim_value *fields[SIM_FIELD_COUNT];
};

struct sim_owner {
    char *id;
    char *user_id; /* the owner's login user, the actor of their edits */
    char *email;
    char *first_name;
    char *last_name;
};

struct sim_stage {
    const char *id;
    const char *label;
    const char *seed_name; /* deal_stage in the seed CSV */
    double probability;
    bool closed;
};

struct sim_pipeline {
    const char *id;
    const char *label;
    const struct sim_stage *stages;
    size_t stage_count;
};

/* How the front-end's CRM names things. Ids are the n-th (from 0) deal,
 * owner or user created; each callback returns a new string. */
struct sim_store_config {
    const struct sim_pipeline *pipeline;
    char *(*deal_id)(void *ctx, size_t n);
    char *(*owner_id)(void *ctx, size_t n);
    char *(*user_id)(void *ctx, size_t n);
    void *ctx;
    bool merge_mints_id; /* a merge's result gets a new id */
    /* Optional: a canonical value the CRM cannot tell from empty, kept as
     * empty on every path (Pipedrive: a deal value of 0). */
    bool (*same_as_empty)(void *ctx, int field, const char *value);
};

enum sim_event_kind {
    SIM_EV_CREATED,
    SIM_EV_CHANGED,
    SIM_EV_DELETED,
    SIM_EV_RESTORED,
    SIM_EV_MERGED,
};

/* A field's change; values NULL when empty. */
struct sim_change {
    int field;
    const char *old_value;
    const char *new_value;
};

/* A change, reported to the sink while the store is locked, in order. The
 * pointers are valid during the call only. */
struct sim_event {
    enum sim_event_kind kind;
    const struct sim_deal *deal; /* after the change; merges: the result */
    int64_t time_ms;
    struct sim_actor actor;
    /* created: every field set; changed: the fields that changed, in
     * field order; merged: the fields the result took from the others. */
    const struct sim_change *changes;
    size_t change_count;
    /* merged: the deal asked to survive, and the deals archived into the
     * result (with the primary first when the merge minted a new id). */
    const struct sim_deal *primary;
    const struct sim_deal *const *merged;
    size_t merged_count;
};

typedef void (*sim_on_event)(void *ctx, const struct sim_event *event);

/* Why a value was refused. */
enum sim_bad {
    SIM_BAD_VALUE,    /* not a value of the field's type */
    SIM_BAD_TOO_LONG, /* over the field's limit */
    SIM_BAD_STAGE,    /* not a stage of the pipeline */
    SIM_BAD_PIPELINE, /* not the pipeline */
    SIM_BAD_OWNER,    /* no such owner */
};

/* Field writes in canonical form: values owned, NULL = not written, ""
 * = clear. */
struct sim_write {
    char *values[SIM_FIELD_COUNT];
};

struct sim_store;

/* The config is copied; the pipeline it points to must outlive the
 * store. */
struct sim_store *sim_store_new(const struct sim_store_config *config);
void sim_store_free(struct sim_store *store);
void sim_store_set_sink(struct sim_store *store, sim_on_event on_event,
                        void *ctx);

/* Every function below needs the lock held. */
void sim_store_lock(struct sim_store *store);
void sim_store_unlock(struct sim_store *store);

/* The field's name: the field API's, "our_id" or "pipeline"; and back
 * (-1 when unknown). */
const char *sim_field_name(int field);
int sim_field_by_name(const char *name);

size_t sim_store_deal_count(const struct sim_store *store);
/* Deals in the order they were made. */
struct sim_deal *sim_store_deal_at(struct sim_store *store, size_t index);
/* The deal with exactly that id (merged-away ones too), or NULL. */
struct sim_deal *sim_store_find(struct sim_store *store, const char *id);
/* The deal that id stands for now: merges followed to the survivor. */
struct sim_deal *sim_store_resolve(struct sim_store *store, const char *id);
/* The deal holding our record id: a live one, else an archived one that
 * was not merged away; NULL when none. */
struct sim_deal *sim_store_find_our_id(struct sim_store *store,
                                       const char *our_id);

size_t sim_store_owner_count(const struct sim_store *store);
const struct sim_owner *sim_store_owner_at(const struct sim_store *store,
                                           size_t index);
const struct sim_owner *sim_store_owner_find(const struct sim_store *store,
                                             const char *id);
/* The owner with that "First Last" name, or NULL. */
const struct sim_owner *sim_store_owner_named(const struct sim_store *store,
                                              const char *full_name);
/* Adds an owner with the next owner and user ids; the email is
 * first.last@example.com. */
const struct sim_owner *sim_store_add_owner(struct sim_store *store,
                                            const char *full_name);

const struct sim_pipeline *sim_store_pipeline(const struct sim_store *store);
const struct sim_stage *sim_store_stage(const struct sim_store *store,
                                        const char *id);

/* The field's current value (NULL when empty) and its time (0 when never
 * written). */
const char *sim_deal_value(const struct sim_deal *deal, int field);
int64_t sim_deal_time(const struct sim_deal *deal, int field);

/* Checks a value for the field and puts its canonical form in w ("" or
 * NULL clears). FS_ERR_INVALID with *why on refusal; w is unchanged
 * then. */
fs_result sim_write_set(const struct sim_store *store, struct sim_write *w,
                        int field, const char *value, enum sim_bad *why);
void sim_write_clear(struct sim_write *w);

/* A seed deal: takes the writes as they are (checked by the caller; ""
 * is an empty value written), stamped now by the import, without an
 * event. */
struct sim_deal *sim_store_import(struct sim_store *store,
                                  const struct sim_write *w, const char *seed,
                                  int64_t created_ms);
/* Creates a deal (the pipeline defaults to the store's). FS_ERR_CONFLICT
 * with *clash when another live deal holds the our_id. */
fs_result sim_store_create(struct sim_store *store, const struct sim_write *w,
                           const struct sim_actor *actor, struct sim_deal **out,
                           struct sim_deal **clash);
/* Applies the writes that change a value, all at one time, as one
 * event. FS_ERR_CONFLICT with *clash as for create. */
fs_result sim_store_update(struct sim_store *store, struct sim_deal *deal,
                           const struct sim_write *w,
                           const struct sim_actor *actor,
                           struct sim_deal **clash);
/* Archives the deal; nothing happens when it already is. */
void sim_store_delete(struct sim_store *store, struct sim_deal *deal,
                      const struct sim_actor *actor);
/* FS_ERR_INVALID when the deal is live or merged away, FS_ERR_CONFLICT
 * with *clash when its our_id is taken by a live deal meanwhile. */
fs_result sim_store_restore(struct sim_store *store, struct sim_deal *deal,
                            const struct sim_actor *actor,
                            struct sim_deal **clash);
/* Merges the others into primary: the result keeps primary's values and
 * takes the others' where it has none; the others (and primary, when a
 * new id is minted) are archived as merged into it. FS_ERR_INVALID for
 * a deal given twice, FS_ERR_NOT_FOUND when one is archived. */
fs_result sim_store_merge(struct sim_store *store, struct sim_deal *primary,
                          struct sim_deal *const *others, size_t other_count,
                          const struct sim_actor *actor,
                          struct sim_deal **result);

#endif

/* The simulated CRM's data: owners, the deal pipeline and deals with
 * per-property values, times, sources and history, held in memory behind
 * one mutex. Every change is reported to an event sink (the webhooks). */
#ifndef FIELDSYNC_SIM_SIM_STORE_H
#define FIELDSYNC_SIM_SIM_STORE_H

#include "base/result.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_DEAL_ID_BASE 20000000001ULL
#define SIM_OWNER_ID_BASE 100001
#define SIM_USER_ID_BASE 5100001
/* Property history entries kept per property (newest first on the wire). */
#define SIM_HISTORY_MAX 20

/* The writable deal properties. createdate, hs_lastmodifieddate and
 * hs_object_id are derived and read-only. */
enum sim_prop {
    SIM_P_DEALNAME,
    SIM_P_DEALSTAGE,
    SIM_P_PIPELINE,
    SIM_P_AMOUNT,
    SIM_P_CLOSEDATE, /* stored as epoch-ms text */
    SIM_P_OWNER,
    SIM_P_ACCOUNT,
    SIM_P_PRODUCT,
    SIM_P_ENGAGE_DATE, /* stored as YYYY-MM-DD */
    SIM_P_POSTCODE,
    SIM_P_LOCATION, /* "lat,lng" text */
    SIM_P_FIELDSYNC_ID,
    SIM_PROP_COUNT,
};

enum sim_source {
    SIM_SRC_IMPORT,
    SIM_SRC_CRM_UI,
    SIM_SRC_INTEGRATION,
};

/* One value a property held; value NULL means unset. */
struct sim_value {
    char *value;
    int64_t ts;
    enum sim_source source;
    char *source_id;
    struct sim_value *prev; /* older history */
};

struct sim_deal {
    uint64_t id;
    bool archived;
    uint64_t merged_into; /* nonzero: archived by a merge, id is an alias */
    int64_t created_ms;
    int64_t updated_ms; /* hs_lastmodifieddate */
    int64_t archived_ms;
    struct sim_value *props[SIM_PROP_COUNT];
};

struct sim_owner {
    char id[16];
    int64_t user_id;
    char *email;
    char *first_name;
    char *last_name;
};

enum sim_event_kind {
    SIM_EV_CREATION,
    SIM_EV_PROPERTY_CHANGE,
    SIM_EV_DELETION,
    SIM_EV_RESTORE,
    SIM_EV_MERGE,
};

/* A change, reported to the sink while the store is locked, in order. */
struct sim_event {
    enum sim_event_kind kind;
    uint64_t object_id;
    int64_t occurred_at;
    const char *property_name;  /* property changes */
    const char *property_value; /* "" when cleared; closedate as epoch ms */
    enum sim_source source;
    const char *source_id;
    uint64_t merged_id; /* merges: the absorbed deal */
    int properties_moved;
};

typedef void (*sim_on_event)(void *ctx, const struct sim_event *event);

/* Who makes a change: the source type and its id ("userId:5100001" for a
 * CRM user, the app id for the integration). */
struct sim_actor {
    enum sim_source source;
    const char *source_id;
};

/* A validated set of property writes; values owned, NULL = not written,
 * "" = clear. */
struct sim_write {
    char *values[SIM_PROP_COUNT];
};

/* Why a write was refused, shaped like HubSpot's error body. */
struct sim_error {
    int status;           /* 400, 404, 409 */
    const char *category; /* VALIDATION_ERROR, OBJECT_NOT_FOUND, CONFLICT */
    char *message;
    json_t *errors; /* array of {message, code, context}, or NULL */
};

struct sim_store;

struct sim_store *sim_store_new(void);
void sim_store_free(struct sim_store *store);
/* Loads sales_teams.csv and sales_pipeline.csv from dir; on failure *err
 * names the file and line (caller frees). */
fs_result sim_store_load(struct sim_store *store, const char *dir, char **err);
void sim_store_set_sink(struct sim_store *store, sim_on_event on_event,
                        void *ctx);

/* All functions below need the lock held. */
void sim_store_lock(struct sim_store *store);
void sim_store_unlock(struct sim_store *store);

size_t sim_store_deal_count(const struct sim_store *store);
struct sim_deal *sim_store_deal_at(struct sim_store *store, size_t index);
/* Looks a deal up by id text, or by fieldsync_id when id_property is
 * "fieldsync_id". Follows merge aliases to the surviving deal. NULL when
 * unknown. Archived deals are returned; callers decide. */
struct sim_deal *sim_store_find(struct sim_store *store, const char *id,
                                const char *id_property);
size_t sim_store_owner_count(const struct sim_store *store);
const struct sim_owner *sim_store_owner_at(const struct sim_store *store,
                                           size_t index);
const struct sim_owner *sim_store_owner_find(const struct sim_store *store,
                                             const char *id);

/* Checks and normalises a JSON object of property values into w. Unknown
 * or read-only properties and bad values fail with a VALIDATION_ERROR. */
fs_result sim_store_parse_write(struct sim_store *store, json_t *props,
                                struct sim_write *w, struct sim_error *err);
void sim_write_clear(struct sim_write *w);
void sim_error_clear(struct sim_error *err);
/* Fills err with the given status/category and a formatted message. */
void sim_error_set(struct sim_error *err, int status, const char *category,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Creates a deal (pipeline defaults to "default"); fails with CONFLICT
 * when fieldsync_id is taken. */
fs_result sim_store_create(struct sim_store *store, const struct sim_write *w,
                           const struct sim_actor *actor, struct sim_deal **out,
                           struct sim_error *err);
/* Applies the writes that change a value, all with one timestamp. */
fs_result sim_store_update(struct sim_store *store, struct sim_deal *deal,
                           const struct sim_write *w,
                           const struct sim_actor *actor,
                           struct sim_error *err);
void sim_store_archive(struct sim_store *store, struct sim_deal *deal,
                       const struct sim_actor *actor);
fs_result sim_store_restore(struct sim_store *store, struct sim_deal *deal,
                            const struct sim_actor *actor,
                            struct sim_error *err);
/* Merges other into primary: empty properties of primary take other's
 * values, other is archived and its id becomes an alias of primary. */
fs_result sim_store_merge(struct sim_store *store, struct sim_deal *primary,
                          struct sim_deal *other, const struct sim_actor *actor,
                          struct sim_error *err);

/* Property names: the index of a writable one, or -1. */
int sim_prop_index(const char *name);
const char *sim_prop_name(int index);
/* True for any readable property, including the derived ones. */
bool sim_prop_known(const char *name);
/* The value as REST shows it (closedate ISO, times ISO), or NULL when
 * unset; buf is scratch space. */
const char *sim_deal_rest_value(const struct sim_deal *deal, const char *name,
                                char buf[64]);
/* The value as a sortable number (times and dates epoch ms, amounts,
 * ids); false when unset or not numeric. */
bool sim_deal_number(const struct sim_deal *deal, const char *name,
                     double *out);
const char *sim_source_name(enum sim_source source);
/* The stages of the one pipeline "default" ("Sales Pipeline"). */
struct sim_stage {
    const char *id;
    const char *label;
    const char *probability; /* "0.0".."1.0" */
    bool closed;
};

/* The stage at display position index, or NULL past the last. */
const struct sim_stage *sim_stage_at(size_t index);
bool sim_stage_valid(const char *stage);

#endif

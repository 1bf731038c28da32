/* The simulated Attio, a front-end over the neutral simulator core: the
 * REST v2 API for one deals object, its attributes and statuses,
 * workspace members and webhooks (attio_sim.c), and Attio's attributes,
 * value envelopes and webhook deliveries (attio_format.c), started by
 * `crmsim attio`. */
#ifndef FIELDSYNC_SIM_ATTIO_SIM_H
#define FIELDSYNC_SIM_ATTIO_SIM_H

#include "sim_store.h"
#include "webhook_sender.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Longest a REST call may hang under the api_timeout fault. */
#define ATTIO_SIM_HANG_MS 6000
/* Attributes the object may leave out with --omit-attribute. */
#define ATTIO_SIM_OMIT_MAX 16
/* The workspace, the deals object and our API token's actor. */
#define ATTIO_SIM_WORKSPACE "0e4c2a18-0000-4000-8000-000000000001"
#define ATTIO_SIM_OBJECT "0b1ec700-0000-4000-8000-0000000000de"
#define ATTIO_SIM_TOKEN_ID "70ce0000-0000-4000-8000-000000000001"

/* `crmsim attio ...`: argv[0] is "attio". Returns the exit code. */
int attio_sim_main(int argc, char **argv);

/* How an attribute's values look. */
enum attio_sim_type {
    ATTIO_SIM_TEXT,
    ATTIO_SIM_STATUS,
    ATTIO_SIM_ACTOR,
    ATTIO_SIM_CURRENCY,
    ATTIO_SIM_DATE,
    ATTIO_SIM_LOCATION, /* the store's postcode and location together */
};

struct attio_sim_attr {
    const char *slug;
    const char *title;
    const char *id; /* attribute_id */
    enum attio_sim_type type;
    int field; /* the store's field */
    bool required;
    bool unique;
    bool system;
};

/* The deals object's attributes, in the order Attio lists them. */
extern const struct attio_sim_attr attio_sim_attrs[];
extern const size_t attio_sim_attr_count;

/* The object as configured: the attributes it has (--omit-attribute
 * leaves some out), and the webhook the sender delivers to. */
struct attio_sim_object {
    bool omitted[ATTIO_SIM_OMIT_MAX * 2];
    const struct sim_store *store;

    pthread_mutex_t mu; /* guards the webhook below */
    char *webhook_id;
    char *secret;
    char *target_url;
    json_t *subscriptions; /* NULL: every record event */
    json_t *webhook_json;  /* as GET /v2/webhooks shows it, or NULL */
};

/* The attribute with that slug or id, if the object has it. */
const struct attio_sim_attr *
attio_sim_attr_named(const struct attio_sim_object *o, const char *name);
/* The attribute holding a store field, if the object has it. */
const struct attio_sim_attr *
attio_sim_attr_of_field(const struct attio_sim_object *o, int field);
bool attio_sim_has(const struct attio_sim_object *o,
                   const struct attio_sim_attr *a);

/* The attribute as GET .../attributes shows it. */
json_t *attio_sim_attr_json(const struct attio_sim_attr *a);
/* A status of the pipeline as GET .../statuses shows it. */
json_t *attio_sim_status_json(const struct sim_stage *s);

/* An epoch ms as Attio's nanosecond timestamp text; buf of 40. */
const char *attio_sim_time(int64_t ms, char buf[40]);

/* A deal as a record: {id, created_at, web_url, values}, each value
 * list with its current value only. Store locked. */
json_t *attio_sim_record_json(const struct attio_sim_object *o,
                              const struct sim_deal *deal);
/* The attribute's values, oldest first, each with active_from and
 * active_until; historic false: the current one only. Store locked. */
json_t *attio_sim_values_json(const struct attio_sim_object *o,
                              const struct sim_deal *deal,
                              const struct attio_sim_attr *a, bool historic);

/* Takes one attribute's written value (a single value or a list of at
 * most one) into w; NULL on success, else the error code
 * (validation_type, value_not_found, immutable_value) with *message
 * (caller frees). Store locked. */
const char *attio_sim_take(const struct attio_sim_object *o,
                           const struct sim_store *store,
                           const struct attio_sim_attr *a, const json_t *value,
                           struct sim_write *w, char **message);

/* The delivery format: one event a POST, {webhook_id, events:[...]},
 * signed Attio-Signature and X-Attio-Signature with the webhook's
 * secret, Idempotency-Key the delivery id. */
void attio_sim_webhook_format(struct attio_sim_object *o,
                              struct webhook_format *out);

#endif

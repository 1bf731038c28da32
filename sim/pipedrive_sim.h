/* The simulated Pipedrive, a front-end over the neutral simulator core:
 * the API v2 deals, stages, pipelines and deal fields with v1 users,
 * changelog and merge (pipedrive_sim.c), and Pipedrive's deal shapes,
 * custom fields and webhooks v2 (pipedrive_format.c), started by
 * `crmsim pipedrive`. */
#ifndef FIELDSYNC_SIM_PIPEDRIVE_SIM_H
#define FIELDSYNC_SIM_PIPEDRIVE_SIM_H

#include "sim_store.h"
#include "webhook_sender.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Longest a REST call may hang under the api_timeout fault. */
#define PIPEDRIVE_SIM_HANG_MS 12000
/* The one pipeline's id; won and lost deals are in its closed stages
 * "won-1" and "lost-1" (a status beside their last open stage). */
#define PIPEDRIVE_SIM_PIPELINE "1"
/* Webhooks: retries after 3 s, 30 s and 150 s, 10 s to answer, a ban of
 * 30 minutes after 10 failed first attempts. */
#define PIPEDRIVE_SIM_TIMEOUT_MS 10000
#define PIPEDRIVE_SIM_BAN_AFTER 10
#define PIPEDRIVE_SIM_BAN_MS (30 * 60 * 1000)
/* Lifetime of an OAuth access token, as Pipedrive's answers give it. */
#define PIPEDRIVE_SIM_TOKEN_TTL_S 3599

/* `crmsim pipedrive ...`: argv[0] is "pipedrive". Returns the exit
 * code. */
int pipedrive_sim_main(int argc, char **argv);

/* A custom deal field: its name in Pipedrive, 40-char key, type and the
 * store field it holds. */
struct pipedrive_custom {
    const char *name;
    const char *key;
    const char *type; /* varchar, date */
    int field;
};

extern const struct pipedrive_custom pipedrive_customs[];
extern const size_t pipedrive_custom_count;

const struct pipedrive_custom *pipedrive_custom_by_key(const char *key);

/* Who the simulated company is, and its webhook: the one registered
 * through POST /v1/webhooks (or given on the command line), with the
 * HTTP Basic credentials it sends. */
struct pipedrive_account {
    int64_t company_id;
    const char *company_domain;
    const char *api_user_id; /* the token's user: actor of API changes */
    int64_t ban_ms;          /* of the webhook format */
    pthread_mutex_t mu;      /* guards the webhook below */
    int64_t webhook_id;      /* 0: none registered through the API */
    char *subscription_url;
    char *event_action; /* create, change, delete or * */
    char *hook_name;
    char *hook_user; /* NULL for no Basic auth */
    char *hook_password;
    int64_t hook_added_ms;
};

/* The user id of a change's actor, and its change_source. */
const char *pipedrive_actor_user(const struct pipedrive_account *a,
                                 enum sim_actor_kind kind, const char *id);
const char *pipedrive_change_source(enum sim_actor_kind kind);

/* How a deal is shown. */
enum pipedrive_shape {
    PIPEDRIVE_REST,    /* API v2: custom fields as plain values */
    PIPEDRIVE_WEBHOOK, /* webhooks v2: custom fields as typed objects */
};

/* The deal as Pipedrive shows it. keys: the custom field keys to show
 * (a JSON array of strings), NULL for all. */
json_t *pipedrive_deal_json(const struct sim_deal *deal,
                            const struct pipedrive_account *a,
                            enum pipedrive_shape shape, const json_t *keys);

/* The stage_id of a stage value with its history: a won or lost deal
 * stays in the open stage it was closed from. */
const char *pipedrive_stage_of(const struct sim_value *v);

/* The stage a deal shows (its stage_id) and its status. */
const char *pipedrive_stage_id(const struct sim_deal *deal);
const char *pipedrive_status(const struct sim_deal *deal);

/* RFC 3339 in whole seconds ("2026-12-01T10:20:00Z"), and v1's
 * "2026-12-01 10:20:00". */
void pipedrive_time(int64_t ms, char out[32]);
void pipedrive_time_v1(int64_t ms, char out[32]);

/* The webhooks v2 delivery: one event a POST, Basic auth, Pipedrive's
 * retries and ban. a must outlive the sender. */
void pipedrive_webhook_format(struct pipedrive_account *a,
                              struct webhook_format *out);

#endif

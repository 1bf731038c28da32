/* The simulated HubSpot, a front-end over the neutral simulator core: the
 * CRM v3 REST API for deals, owners and pipelines (hubspot_sim.c), and
 * HubSpot's deal properties, value formats and webhooks (hubspot_format.c),
 * started by `crmsim hubspot`. */
#ifndef FIELDSYNC_SIM_HUBSPOT_SIM_H
#define FIELDSYNC_SIM_HUBSPOT_SIM_H

#include "sim_store.h"
#include "webhook_sender.h"

#include <stdbool.h>
#include <stdint.h>

/* Longest a REST call may hang under the api_timeout fault. */
#define HUBSPOT_SIM_HANG_MS 6000
/* Events in one webhook POST at most, and how long a batch gathers. */
#define HUBSPOT_SIM_BATCH_MAX 100
#define HUBSPOT_SIM_COLLECT_MS 5

/* `crmsim hubspot ...`: argv[0] is "hubspot". Returns the exit code. */
int hubspot_sim_main(int argc, char **argv);

/* How a HubSpot property is written and shown. */
enum hubspot_prop_kind {
    HUBSPOT_TEXT,     /* as the canonical value */
    HUBSPOT_DATETIME, /* epoch ms in webhooks, ISO in REST; kept per day */
    HUBSPOT_DATE,     /* YYYY-MM-DD; midnight UTC when written as a time */
    HUBSPOT_DERIVED,  /* createdate, hs_lastmodifieddate, hs_object_id */
};

struct hubspot_prop {
    const char *name;
    int field; /* the store's field, -1 when derived */
    enum hubspot_prop_kind kind;
};

/* The deal properties: the writable ones in the store's field order as
 * REST lists them, then the derived ones. */
extern const struct hubspot_prop hubspot_props[];
extern const size_t hubspot_prop_count;

const struct hubspot_prop *hubspot_prop_named(const char *name);
const struct hubspot_prop *hubspot_prop_of_field(int field);

/* A canonical value as HubSpot shows it (in a webhook, or in REST), or
 * NULL when empty; buf is scratch space. */
const char *hubspot_shown(const struct hubspot_prop *p, const char *value,
                          bool webhook, char buf[32]);
/* A written value in the store's canonical form (dates to their UTC day)
 * into w, or the HubSpot error code (INVALID_DATE, INVALID_OPTION, ...)
 * of the refusal. */
const char *hubspot_take(const struct sim_store *store,
                         const struct hubspot_prop *p, const char *text,
                         struct sim_write *w);

/* sourceType and sourceId of a change's actor, as property history and
 * webhooks show them; buf is scratch space. */
const char *hubspot_source_type(enum sim_actor_kind kind);
const char *hubspot_source_id(enum sim_actor_kind kind, const char *id,
                              char buf[80]);

/* The webhook settings of one app. */
struct hubspot_webhooks {
    const char *client_secret;
    int64_t app_id;
    int64_t portal_id;
    int64_t next_event_id; /* eventId of the next event */
};

/* The delivery format: up to 100 legacy deal.* events a POST, signed v1
 * and v3 with the client secret. hooks must outlive the sender. */
void hubspot_webhook_format(struct hubspot_webhooks *hooks,
                            struct webhook_format *out);

#endif

/* The simulated HubSpot: the CRM v3 REST API for deals, owners and
 * pipelines (with auth, rate limits and injected API faults) and the
 * /_sim control endpoint, answered from one HTTP request callback. */
#ifndef FIELDSYNC_SIM_HUBSPOT_SIM_H
#define FIELDSYNC_SIM_HUBSPOT_SIM_H

#include "sim_store.h"
#include "webhook_sender.h"

#include "net/http_server.h"

#include <stdint.h>

/* Longest a REST call may hang under the api_timeout fault. */
#define HUBSPOT_SIM_HANG_MS 6000

struct hubspot_sim_config {
    const char *token; /* expected bearer token */
    int64_t app_id;
    int64_t portal_id;
    int rate_10s;     /* calls per rolling 10 s */
    int rate_daily;   /* calls per UTC day */
    int search_per_s; /* search calls per rolling second */
    uint64_t seed;    /* for the API fault dice */
};

struct hubspot_sim;

/* The simulator answers from store and reports webhooks through sender;
 * it borrows both. */
struct hubspot_sim *hubspot_sim_new(const struct hubspot_sim_config *config,
                                    struct sim_store *store,
                                    struct webhook_sender *sender);
void hubspot_sim_free(struct hubspot_sim *sim);

/* The http_on_request callback; ctx is the hubspot_sim. */
void hubspot_sim_on_request(void *ctx, const struct http_request *req,
                            struct http_response *resp);

#endif

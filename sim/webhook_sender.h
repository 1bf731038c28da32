/* Delivers the simulated CRM's change events as signed HubSpot webhook
 * batches, with retries and injectable faults (drop, duplicate, reorder,
 * delay, pause). */
#ifndef FIELDSYNC_SIM_WEBHOOK_SENDER_H
#define FIELDSYNC_SIM_WEBHOOK_SENDER_H

#include "sim_store.h"

#include "base/result.h"

#include <stdbool.h>
#include <stdint.h>

/* Events per POST, collection window, concurrent deliveries, attempts. */
#define WEBHOOK_BATCH_MAX 100
#define WEBHOOK_COLLECT_MS 5
#define WEBHOOK_IN_FLIGHT 4
#define WEBHOOK_MAX_ATTEMPTS 10
#define WEBHOOK_TIMEOUT_MS 5000

struct webhook_sender_config {
    const char *url;
    const char *client_secret;
    int64_t app_id;
    int64_t portal_id;
    uint64_t seed;
};

struct webhook_faults {
    double drop;      /* probability a batch is never sent */
    double duplicate; /* probability a batch is sent twice */
    bool reorder;     /* shuffle events in a batch and batches in line */
    int64_t delay_ms; /* hold each batch this long before its first send */
    bool paused;      /* hold every delivery until unpaused */
};

struct webhook_stats {
    int64_t events_queued;
    int64_t events_sent; /* events in batches answered 2xx */
    int64_t events_dropped;
    int64_t events_duplicated;
    int64_t webhooks_sent;      /* POSTs answered 2xx */
    int64_t webhooks_failed;    /* POSTs answered non-2xx or not at all */
    int64_t webhooks_given_up;  /* batches dropped after the last attempt */
    int64_t pending_deliveries; /* batches waiting or in flight */
};

struct webhook_sender;

/* Copies the config; starts the batching thread and the delivery workers. */
fs_result webhook_sender_start(const struct webhook_sender_config *config,
                               struct webhook_sender **out);
/* Stops the threads; undelivered events are discarded. NULL is fine. */
void webhook_sender_stop(struct webhook_sender *ws);

/* Queues the HubSpot event for a store change (a sim_on_event sink). */
void webhook_sender_on_event(void *ctx, const struct sim_event *event);

void webhook_sender_get_faults(struct webhook_sender *ws,
                               struct webhook_faults *out);
void webhook_sender_set_faults(struct webhook_sender *ws,
                               const struct webhook_faults *faults);
void webhook_sender_get_stats(struct webhook_sender *ws,
                              struct webhook_stats *out);
void webhook_sender_reset_stats(struct webhook_sender *ws);
/* True when no event is queued and no delivery waits or is in flight. */
bool webhook_sender_idle(struct webhook_sender *ws);

/* The v3 signature: base64 HMAC-SHA256(secret, method+url+body+ts). The
 * caller frees. */
char *webhook_sign_v3(const char *secret, const char *method, const char *url,
                      const char *body, size_t body_len, const char *timestamp);

#endif

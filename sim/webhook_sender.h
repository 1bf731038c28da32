/* Webhook delivery for every simulated CRM: the front-end turns each store
 * change into its wire events, which are queued, gathered into batches by
 * the front-end's rule (HubSpot: up to 100 in a few ms; Pipedrive and
 * Attio: one a POST), formatted and signed by the front-end, and POSTed by
 * worker threads with retries and injectable faults (drop, duplicate,
 * reorder, delay, pause). */
#ifndef FIELDSYNC_SIM_WEBHOOK_SENDER_H
#define FIELDSYNC_SIM_WEBHOOK_SENDER_H

#include "sim_store.h"

#include "base/result.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Concurrent deliveries, and the defaults of struct webhook_format. */
#define WEBHOOK_IN_FLIGHT 4
#define WEBHOOK_MAX_ATTEMPTS 10
#define WEBHOOK_TIMEOUT_MS 5000
/* Most headers one POST carries. */
#define WEBHOOK_HEADERS_MAX 16

/* One POST as the front-end formats it: body and "Name: value" headers,
 * all owned by the post (the sender frees them). */
struct webhook_post {
    char *body;
    size_t body_len;
    char *headers[WEBHOOK_HEADERS_MAX + 1]; /* NULL-terminated */
    size_t header_count;
};

/* Adds a header (a printf format giving "Name: value"); past
 * WEBHOOK_HEADERS_MAX it is left out. */
void webhook_post_add_header(struct webhook_post *post, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* How one CRM delivers its webhooks. */
struct webhook_format {
    size_t batch_max;   /* events in one POST at most (1: one a POST) */
    int64_t collect_ms; /* after the first event of a batch, wait this long
                           for more unless the batch is full */
    int max_attempts;   /* 0: WEBHOOK_MAX_ATTEMPTS */
    int64_t timeout_ms; /* 0: WEBHOOK_TIMEOUT_MS */
    /* The wait before attempt n + 1 after failed attempt n (from 1); the
     * last entry repeats. NULL: 200, 500, 1000, 2000, 5000 ms. */
    const int64_t *retry_delays_ms;
    size_t retry_delay_count;
    /* The CRM's ban: after this many first attempts failed (0: never),
     * the webhook is banned for ban_ms and every delivery due meanwhile,
     * new or retried, is lost (Pipedrive: 10, 30 minutes). */
    int ban_after_failures;
    int64_t ban_ms;
    /* Appends the CRM's wire events for a store change to events (a JSON
     * array), one JSON value per event as the CRM counts them; nothing
     * for a change it does not report. Called from the store's sink with
     * the store locked, so calls come in the store's order, one at a
     * time; snapshot here whatever the event must show of the deal. */
    void (*on_event)(void *ctx, const struct sim_event *event, json_t *events);
    /* Fills one POST of a batch (events: a JSON array of what on_event
     * made, which it may change, e.g. an attempt counter). attempt is 0
     * on the first try; delivery_id (a UUID) is the same for every try
     * and every duplicate of the batch, for idempotency keys. Called from
     * a worker thread, without any lock held. */
    void (*on_format)(void *ctx, json_t *events, int attempt,
                      const char *delivery_id, const char *url,
                      struct webhook_post *out);
    void *ctx;
};

struct webhook_sender_config {
    const char *url;
    uint64_t seed;                       /* of the fault dice */
    const struct webhook_format *format; /* copied */
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
    int64_t bans;               /* times the webhook was banned */
    int64_t events_lost_banned; /* events due while banned, never sent */
    int64_t pending_deliveries; /* batches waiting or in flight */
};

struct webhook_sender;

/* Copies the config; starts the batching thread and the delivery workers. */
fs_result webhook_sender_start(const struct webhook_sender_config *config,
                               struct webhook_sender **out);
/* Stops the threads; undelivered events are discarded. NULL is fine. */
void webhook_sender_stop(struct webhook_sender *ws);

/* The store's sink (sim_on_event): queues the front-end's wire events for
 * the change. */
void webhook_sender_on_event(void *ctx, const struct sim_event *event);

/* Where deliveries go from now on, retries included (a CRM whose webhooks
 * are registered through its API); NULL: nowhere, due deliveries are
 * dropped. */
void webhook_sender_set_url(struct webhook_sender *ws, const char *url);

void webhook_sender_get_faults(struct webhook_sender *ws,
                               struct webhook_faults *out);
void webhook_sender_set_faults(struct webhook_sender *ws,
                               const struct webhook_faults *faults);
void webhook_sender_get_stats(struct webhook_sender *ws,
                              struct webhook_stats *out);
void webhook_sender_reset_stats(struct webhook_sender *ws);
/* True when no event is queued and no delivery waits or is in flight. */
bool webhook_sender_idle(struct webhook_sender *ws);

#endif

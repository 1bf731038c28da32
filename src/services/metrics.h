/* Counters for GET /metrics, in Prometheus text format. Counters are kept
 * per connection; gauges are read from the store when scraped. */
#ifndef FIELDSYNC_SERVICES_METRICS_H
#define FIELDSYNC_SERVICES_METRICS_H

#include "net/http_server.h"

#include <stdint.h>

enum metric {
    METRIC_EVENTS_RECEIVED = 0, /* webhook events durably accepted */
    METRIC_EVENTS_DUPLICATE,    /* webhook events already in the inbox */
    METRIC_EVENTS_APPLIED,      /* inbox events merged */
    METRIC_EVENTS_IGNORED,      /* events about nothing we sync */
    METRIC_WEBHOOKS_REJECTED,   /* deliveries refused (signature, ...) */
    METRIC_CONFLICTS,           /* CRM change met an unconfirmed local edit */
    METRIC_ECHOES,              /* our own writes coming back */
    METRIC_PUSH_CALLS,          /* CRM write calls made */
    METRIC_PUSH_RECORDS,        /* records written to the CRM */
    METRIC_PUSH_FAILURES,       /* records whose write failed */
    METRIC_READ_CALLS,          /* CRM read calls (import, backstop, ...) */
    METRIC_BACKSTOP_PASSES,     /* backstop passes completed */
    METRIC_COUNT
};

struct metrics;
struct app;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
void metrics_add(struct metrics *m, enum metric which, int64_t connection_id,
                 int64_t delta);
int64_t metrics_get(struct metrics *m, enum metric which,
                    int64_t connection_id);

/* Answers GET /metrics. */
void metrics_handle(struct app *app, const struct http_request *req,
                    struct http_response *resp);

#endif

/* Webhook ingest: verify a delivery on its raw bytes, write its events to
 * the inbox together with their dedup keys, and answer 2xx only once they
 * are durable. Deliveries arriving together share one commit. */
#ifndef FIELDSYNC_SERVICES_INGEST_H
#define FIELDSYNC_SERVICES_INGEST_H

#include "net/http_server.h"

struct app;
struct ingest;

/* Starts the committer thread. */
struct ingest *ingest_new(struct app *app);
/* Stops the committer after failing anything still queued; accepts NULL. */
void ingest_free(struct ingest *ingest);

/* Answers POST /webhooks/<route>, route being "<provider>" for CRMs
 * whose events name their account, or "<provider>/<connection id>". */
void ingest_handle_webhook(struct app *app, struct ingest *ingest,
                           const char *route, const struct http_request *req,
                           struct http_response *resp);

#endif

/* The live stream: every applied change is published here and fanned out
 * to server-sent event subscribers of the same org. A bounded ring keeps
 * the latest events so a slow reader skips ahead instead of growing
 * memory. */
#ifndef FIELDSYNC_SERVICES_LIVE_STREAM_H
#define FIELDSYNC_SERVICES_LIVE_STREAM_H

#include "net/http_server.h"

#include <stddef.h>
#include <stdint.h>

struct live_stream;

struct live_stream *live_stream_new(size_t capacity);
/* Wakes and ends every subscriber; then frees. Accepts NULL. */
void live_stream_free(struct live_stream *ls);
/* Ends every subscriber's stream (before the HTTP server stops). */
void live_stream_shutdown(struct live_stream *ls);

/* Publishes one event: type is e.g. "deal.updated", data a JSON object
 * text. Never blocks on subscribers. */
void live_stream_publish(struct live_stream *ls, int64_t org_id,
                         const char *type, const char *data);

/* Turns resp into an SSE stream of the org's events from now on. */
void live_stream_subscribe(struct live_stream *ls, int64_t org_id,
                           struct http_response *resp);

/* How long a read waits for an event before it sends a keep-alive
 * comment; 15000 unless set (tests shorten it). */
void live_stream_set_keepalive_ms(struct live_stream *ls, int64_t ms);
/* Subscribers currently blocked waiting for an event (for tests). */
size_t live_stream_waiters(struct live_stream *ls);

#endif

/* The pusher: writes pending local changes to each org's CRM in batches,
 * inside the connection's rate budget, with backoff on failure. */
#ifndef FIELDSYNC_SERVICES_PUSHER_H
#define FIELDSYNC_SERVICES_PUSHER_H

struct app;
struct pusher;

struct pusher *pusher_new(struct app *app);
void pusher_free(struct pusher *p);
/* Asks for a push pass soon (after an edit or a retry). */
void pusher_wake(struct pusher *p);

#endif

/* Making a CRM connection: the provider's check of the account (which
 * fills the connection's settings) and the registration of its webhook,
 * shared by `fieldsync connect`, the demo and the bench. */
#ifndef FIELDSYNC_SERVICES_CONNECT_H
#define FIELDSYNC_SERVICES_CONNECT_H

#include "base/result.h"
#include "model/connection.h"
#include "store/store.h"

/* Runs the provider's prepare on c (nothing for a provider without one)
 * and puts what it learnt in c->settings. FS_ERR_INVALID with *error
 * (caller frees) saying what does not fit. */
fs_result connect_prepare(struct connection *c, long timeout_ms, char **error);

/* Registers the webhook of the stored connection id with its CRM at
 * <public_url>/webhooks/<crm>/<id> and stores the secret the CRM
 * answers. *target (may be NULL; caller frees) gets the URL registered,
 * *error the CRM's reason on failure. FS_ERR_INVALID for a provider that
 * registers nothing. */
fs_result connect_register_webhook(struct store *s, struct connection *c,
                                   int64_t id, const char *public_url,
                                   long timeout_ms, char **target,
                                   char **error);

#endif

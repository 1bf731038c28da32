/* The HubSpot entry of the integration stack (stack_crm.h) and what only
 * HubSpot-only tests use: the simulated account's credentials and a
 * signed webhook posted by hand. */
#ifndef FIELDSYNC_TESTS_STACK_HUBSPOT_H
#define FIELDSYNC_TESTS_STACK_HUBSPOT_H

#include <stdint.h>

struct stack;

#define STACK_HUBSPOT_SECRET "stack-client-secret"
#define STACK_HUBSPOT_TOKEN "pat-stack-token"
#define STACK_HUBSPOT_APP_ID "424242"
/* Account 0's portal; account n is portal STACK_HUBSPOT_PORTAL + n. */
#define STACK_HUBSPOT_PORTAL 9001

/* POSTs a HubSpot webhook delivery to fieldsync, signed (v3) with secret
 * at the given request time; returns the HTTP status (0: no answer). */
long stack_hubspot_webhook(struct stack *s, const char *body,
                           const char *secret, int64_t timestamp_ms);

#endif

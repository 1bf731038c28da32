/* The HubSpot entry of the integration stack (stack_crm.h) and what only
 * HubSpot-only tests use: the simulated account's credentials and a
 * signed webhook posted by hand. */
#ifndef FIELDSYNC_TESTS_STACK_HUBSPOT_H
#define FIELDSYNC_TESTS_STACK_HUBSPOT_H

#include <stdbool.h>
#include <stdint.h>

struct stack;

#define STACK_HUBSPOT_SECRET "stack-client-secret"
#define STACK_HUBSPOT_TOKEN "pat-stack-token"
#define STACK_HUBSPOT_APP_ID "424242"
/* Account 0's portal; account n is portal STACK_HUBSPOT_PORTAL + n. */
#define STACK_HUBSPOT_PORTAL 9001

struct http_test_response;

/* POSTs a HubSpot webhook delivery to fieldsync, signed (v3) with secret
 * at the given request time; returns the HTTP status (0: no answer). */
long stack_hubspot_webhook(struct stack *s, const char *body,
                           const char *secret, int64_t timestamp_ms);

/* The same, keeping the whole answer in out (free it with
 * http_test_response_free); true when an answer arrived. */
bool stack_hubspot_webhook_response(struct stack *s, const char *body,
                                    const char *secret, int64_t timestamp_ms,
                                    struct http_test_response *out);

/* A delivery for the hostile cases: what is sent and what was signed
 * may differ. */
struct stack_hubspot_delivery {
    const char *body;        /* sent */
    const char *signed_body; /* signed; NULL: body */
    const char *query;       /* appended to /webhooks/hubspot, or NULL */
    const char *signed_url;  /* the URI signed; NULL: the URL sent */
    const char *secret;
    int64_t timestamp_ms;
};

/* POSTs the delivery with a v3 signature; as
 * stack_hubspot_webhook_response. */
bool stack_hubspot_webhook_send(struct stack *s,
                                const struct stack_hubspot_delivery *d,
                                struct http_test_response *out);

#endif

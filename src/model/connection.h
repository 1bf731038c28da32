/* A link between an org and its CRM account: where to call, with what
 * credentials, within which budgets. */
#ifndef FIELDSYNC_MODEL_CONNECTION_H
#define FIELDSYNC_MODEL_CONNECTION_H

#include <stdbool.h>
#include <stdint.h>

struct connection {
    int64_t id;
    int64_t org_id;
    char *provider;      /* "hubspot", "pipedrive", "attio" */
    char *base_url;      /* the CRM's API root, or a simulator's */
    char *account_id;    /* the CRM account: HubSpot portalId, Pipedrive
                          * company id, Attio workspace id */
    char *app_id;        /* who our writes are from, as the CRM names it:
                          * HubSpot app id, Pipedrive integration user id,
                          * Attio token actor id */
    char *settings;      /* the provider's own settings as JSON text (custom
                          * field keys, attribute map), or NULL */
    char *token;         /* secret: API token */
    char *client_secret; /* secret: verifies webhooks (HubSpot client
                          * secret, Attio webhook secret, Pipedrive Basic
                          * password) */
    char *webhook_user;  /* secret: Pipedrive's Basic user, or NULL */
    int64_t watermark;   /* backstop: CRM modification time read up to */
    int rate_window;     /* calls per the CRM's rate window; 0: default */
    int rate_daily;      /* daily budget (calls or tokens); 0: default */
    bool active;
};

void connection_clear(struct connection *c);

#endif

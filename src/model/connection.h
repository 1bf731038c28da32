/* A link between an org and its CRM account: where to call, with what
 * credentials, within which budgets. */
#ifndef FIELDSYNC_MODEL_CONNECTION_H
#define FIELDSYNC_MODEL_CONNECTION_H

#include <stdbool.h>
#include <stdint.h>

struct connection {
    int64_t id;
    int64_t org_id;
    char *provider;      /* "hubspot" */
    char *base_url;      /* "https://api.hubapi.com" or a simulator's */
    char *account_id;    /* HubSpot portalId */
    char *app_id;        /* HubSpot appId (echoes carry it as sourceId) */
    char *token;         /* secret: API bearer token */
    char *client_secret; /* secret: webhook signing secret */
    int64_t watermark;   /* backstop: CRM modification time read up to */
    int rate_per_10s;    /* calls allowed per rolling ten seconds */
    int rate_daily;      /* calls allowed per day */
    bool active;
};

void connection_clear(struct connection *c);

#endif

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
    char *token;         /* secret: API token, or the OAuth access token */
    char *client_secret; /* secret: verifies webhooks (HubSpot client
                          * secret, Attio webhook secret, Pipedrive Basic
                          * password) */
    char *webhook_user;  /* secret: Pipedrive's Basic user, or NULL */
    /* OAuth (NULL refresh_token: a static token that never expires). The
     * provider's oauth_token hook exchanges the refresh token for a new
     * access token (in token) before token_refresh_at. */
    char *refresh_token;       /* secret */
    char *oauth_client_id;     /* the OAuth app's client id */
    char *oauth_client_secret; /* secret: when the CRM's differs from
                                * client_secret (Pipedrive) */
    int64_t token_expires_at;  /* epoch ms the access token stops working */
    int64_t token_refresh_at;  /* epoch ms from which to refresh it */
    int64_t watermark;         /* backstop: CRM modification time read up to */
    int rate_window;           /* calls per the CRM's rate window; 0: default */
    int rate_daily;            /* daily budget (calls or tokens); 0: default */
    bool active;
};

void connection_clear(struct connection *c);

#endif

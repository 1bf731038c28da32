/* Connection helpers. */
#include "model/connection.h"

#include <stdlib.h>
#include <string.h>

void connection_clear(struct connection *c)
{
    free(c->provider);
    free(c->base_url);
    free(c->account_id);
    free(c->app_id);
    free(c->settings);
    free(c->token);
    free(c->client_secret);
    free(c->webhook_user);
    free(c->refresh_token);
    free(c->oauth_client_id);
    free(c->oauth_client_secret);
    memset(c, 0, sizeof(*c));
}

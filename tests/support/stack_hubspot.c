/* HubSpot in the integration stack: `crmsim hubspot` and `fieldsync
 * connect hubspot` with the simulated account's credentials. Webhooks go
 * to /webhooks/hubspot, routed by portal and app id, so nothing is left
 * to do once a connection exists. */
#include "stack_hubspot.h"

#include "http_test.h"
#include "stack.h"
#include "stack_crm.h"

#include "base/alloc.h"
#include "base/crypto.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void sim_words(const struct stack *s, struct stack_words *w, int rate)
{
    stack_words_add(w, "--client-secret");
    stack_words_add(w, STACK_HUBSPOT_SECRET);
    stack_words_add(w, "--app-id");
    stack_words_add(w, STACK_HUBSPOT_APP_ID);
    stack_words_add(w, "--portal-id");
    stack_words_addf(w, "%d", STACK_HUBSPOT_PORTAL + s->account_base);
    stack_words_add(w, "--token");
    stack_words_add(w, STACK_HUBSPOT_TOKEN);
    stack_words_add(w, "--rate-10s");
    stack_words_addf(w, "%d", rate);
    /* The backstop's searches are not what a scenario measures. */
    stack_words_add(w, "--search-per-s");
    stack_words_add(w, "1000");
}

static void connect_words(const struct stack *s, struct stack_words *w,
                          int account, int rate)
{
    stack_words_add(w, "--token");
    stack_words_add(w, STACK_HUBSPOT_TOKEN);
    stack_words_add(w, "--client-secret");
    stack_words_add(w, STACK_HUBSPOT_SECRET);
    stack_words_add(w, "--app-id");
    stack_words_add(w, STACK_HUBSPOT_APP_ID);
    stack_words_add(w, "--portal-id");
    stack_words_addf(w, "%d", STACK_HUBSPOT_PORTAL + s->account_base + account);
    stack_words_add(w, "--rate-10s");
    stack_words_addf(w, "%d", rate);
}

const struct stack_crm stack_crm_hubspot = {
    .name = "hubspot",
    .rate_window_ms = 10000,
    .webhook_values = true,
    .merge_names_primary = true,
    .restores = true,
    .clears_timed = true,
    .sim_words = sim_words,
    .connect_words = connect_words,
    .after_connect = NULL,
};

bool stack_hubspot_webhook_send(struct stack *s,
                                const struct stack_hubspot_delivery *d,
                                struct http_test_response *out)
{
    char *url = xasprintf("%s/webhooks/hubspot%s", s->api_base,
                          d->query ? d->query : "");
    const char *signed_body = d->signed_body ? d->signed_body : d->body;
    char *ts = xasprintf("%" PRId64, d->timestamp_ms);
    char *message = xasprintf("POST%s%s%s", d->signed_url ? d->signed_url : url,
                              signed_body, ts);
    uint8_t mac[CRYPTO_SHA256_LEN];

    crypto_hmac_sha256(d->secret, strlen(d->secret), message, strlen(message),
                       mac);
    char *sig = crypto_base64(mac, sizeof(mac));
    char *sig_header = xasprintf("X-HubSpot-Signature-v3: %s", sig);
    char *ts_header = xasprintf("X-HubSpot-Request-Timestamp: %s", ts);
    const char *headers[] = {"Content-Type: application/json", sig_header,
                             ts_header, NULL};
    bool answered = http_test_request("POST", url, headers, d->body, out);

    free(ts_header);
    free(sig_header);
    free(sig);
    free(message);
    free(ts);
    free(url);
    return answered;
}

bool stack_hubspot_webhook_response(struct stack *s, const char *body,
                                    const char *secret, int64_t timestamp_ms,
                                    struct http_test_response *out)
{
    struct stack_hubspot_delivery d = {
        .body = body, .secret = secret, .timestamp_ms = timestamp_ms};
    return stack_hubspot_webhook_send(s, &d, out);
}

long stack_hubspot_webhook(struct stack *s, const char *body,
                           const char *secret, int64_t timestamp_ms)
{
    struct http_test_response resp;

    stack_hubspot_webhook_response(s, body, secret, timestamp_ms, &resp);
    long status = resp.status;
    http_test_response_free(&resp);
    return status;
}

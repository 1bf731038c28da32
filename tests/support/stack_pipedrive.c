/* Pipedrive in the integration stack: `crmsim pipedrive` and `fieldsync
 * connect pipedrive` with the simulated company's credentials. Webhooks
 * go to /webhooks/pipedrive/<connection id>: connect registers the
 * webhook there itself (--public-url, through the CRM's POST
 * /v1/webhooks), and after_connect checks the simulator has it. */
#include "stack_pipedrive.h"

#include "http_test.h"
#include "stack.h"
#include "stack_crm.h"

#include "base/alloc.h"
#include "base/crypto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The words crmsim and connect share: the token, company and user of
 * the simulator's account, and the budget per 2 s. A Pipedrive token is
 * its company's, so every account of one simulator has the company id of
 * s->account_base. */
static void account_words(const struct stack *s, struct stack_words *w,
                          int rate)
{
    stack_words_add(w, "--token");
    stack_words_add(w, STACK_PIPEDRIVE_TOKEN);
    stack_words_add(w, "--company-id");
    stack_words_addf(w, "%d", STACK_PIPEDRIVE_COMPANY + s->account_base);
    stack_words_add(w, "--user-id");
    stack_words_add(w, STACK_PIPEDRIVE_USER);
    stack_words_add(w, "--rate-2s");
    stack_words_addf(w, "%d", rate);
}

/* The daily token budget is not what a scenario measures: the simulator
 * and the connection both get one no run spends (a long run's changelog
 * reads spent the connection's default 30,000 tokens, and it stopped
 * calling for the day). */
static void daily_words(struct stack_words *w)
{
    stack_words_add(w, "--rate-daily");
    stack_words_add(w, "2000000000");
}

static void sim_words(const struct stack *s, struct stack_words *w, int rate)
{
    account_words(s, w, rate);
    daily_words(w);
    if (s->options.ban_ms > 0) {
        stack_words_add(w, "--ban-ms");
        stack_words_addf(w, "%" PRId64, s->options.ban_ms);
    }
}

/* Account 1 is another org on the same company, without a webhook (the
 * simulator keeps one, which account 0 holds). */
static void connect_words(const struct stack *s, struct stack_words *w,
                          int account, int rate)
{
    account_words(s, w, rate);
    daily_words(w);
    stack_words_add(w, "--webhook-user");
    stack_words_add(w, STACK_PIPEDRIVE_HOOK_USER);
    if (account == 0) {
        /* fieldsync makes the password and registers it. */
        stack_words_add(w, "--public-url");
        stack_words_add(w, s->api_base);
    } else {
        stack_words_add(w, "--webhook-password");
        stack_words_add(w, STACK_PIPEDRIVE_HOOK_PASSWORD);
    }
}

static char *company_id(const struct stack *s)
{
    return xasprintf("%d", STACK_PIPEDRIVE_COMPANY + s->account_base);
}

/* The simulator's webhook is the one connect registered for this
 * connection, with its user and the password fieldsync made and kept. */
static bool after_connect(struct stack *s, int account, int64_t connection)
{
    if (account != 0)
        return true;
    char *url = xasprintf("%s/v1/webhooks", s->sim_base);
    char *want =
        xasprintf("%s/webhooks/pipedrive/%" PRId64, s->api_base, connection);
    char *company = company_id(s);
    char *kept = stack_connection_secret(s, company, "client_secret");
    const char *headers[] = {"x-api-token: " STACK_PIPEDRIVE_TOKEN, NULL};
    long status = 0;
    json_t *r = http_test_json("GET", url, headers, NULL, &status);
    json_t *hook = json_array_get(json_object_get(r, "data"), 0);
    const char *at =
        json_string_value(json_object_get(hook, "subscription_url"));
    const char *user =
        json_string_value(json_object_get(hook, "http_auth_user"));
    const char *password =
        json_string_value(json_object_get(hook, "http_auth_password"));
    bool ok = status == 200 && at && strcmp(at, want) == 0 && user &&
              strcmp(user, STACK_PIPEDRIVE_HOOK_USER) == 0 && password &&
              kept && strcmp(password, kept) == 0 && strlen(kept) >= 32;

    if (!ok)
        fprintf(stderr,
                "stack: the simulator's webhook is %s (user %s), not %s with "
                "the password fieldsync keeps\n",
                at ? at : "none", user ? user : "none", want);
    json_decref(r);
    free(kept);
    free(company);
    free(want);
    free(url);
    return ok;
}

const struct stack_crm stack_crm_pipedrive = {
    .name = "pipedrive",
    .rate_window_ms = 2000,
    /* Webhooks v2 carry the deal's values; a merge's delete names the
     * survivor (merged_to_id). */
    .webhook_values = true,
    .merge_names_primary = true,
    .restores = true,
    /* The changelog's times have whole seconds. */
    .time_step_ms = 1000,
    .sim_words = sim_words,
    .connect_words = connect_words,
    .after_connect = after_connect,
};

char *stack_pipedrive_basic(struct stack *s)
{
    char *company = company_id(s);
    char *user = stack_connection_secret(s, company, "webhook_user");
    char *password = stack_connection_secret(s, company, "client_secret");
    char *basic = NULL;

    if (user && password) {
        char *pair = xasprintf("%s:%s", user, password);
        char *b64 = crypto_base64((const uint8_t *)pair, strlen(pair));
        basic = xasprintf("Basic %s", b64);
        free(b64);
        free(pair);
    }
    free(password);
    free(user);
    free(company);
    return basic;
}

long stack_pipedrive_webhook(struct stack *s, const char *path,
                             const char *auth, const char *body)
{
    char *url = xasprintf("%s%s", s->api_base, path);
    char *header = auth ? xasprintf("Authorization: %s", auth) : NULL;
    const char *headers[] = {"Content-Type: application/json", header, NULL};
    struct http_test_response resp;

    http_test_request("POST", url, headers, body, &resp);
    long status = resp.status;
    http_test_response_free(&resp);
    free(header);
    free(url);
    return status;
}

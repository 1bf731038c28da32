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

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sim_words(const struct stack *s, struct stack_words *w, int rate)
{
    stack_words_add(w, "--token");
    stack_words_add(w, STACK_PIPEDRIVE_TOKEN);
    stack_words_add(w, "--company-id");
    stack_words_add(w, STACK_PIPEDRIVE_COMPANY);
    stack_words_add(w, "--user-id");
    stack_words_add(w, STACK_PIPEDRIVE_USER);
    stack_words_add(w, "--rate-2s");
    stack_words_addf(w, "%d", rate);
    /* The daily token budget is not what a scenario measures. */
    stack_words_add(w, "--rate-daily");
    stack_words_add(w, "2000000000");
}

/* Account 1 is another org on the same company, without a webhook (the
 * simulator keeps one, which account 0 holds). */
static void connect_words(const struct stack *s, struct stack_words *w,
                          int account, int rate)
{
    stack_words_add(w, "--token");
    stack_words_add(w, STACK_PIPEDRIVE_TOKEN);
    stack_words_add(w, "--company-id");
    stack_words_add(w, STACK_PIPEDRIVE_COMPANY);
    stack_words_add(w, "--user-id");
    stack_words_add(w, STACK_PIPEDRIVE_USER);
    stack_words_add(w, "--webhook-user");
    stack_words_add(w, STACK_PIPEDRIVE_HOOK_USER);
    stack_words_add(w, "--webhook-password");
    stack_words_add(w, STACK_PIPEDRIVE_HOOK_PASSWORD);
    stack_words_add(w, "--rate-2s");
    stack_words_addf(w, "%d", rate);
    if (account == 0) {
        stack_words_add(w, "--public-url");
        stack_words_add(w, s->api_base);
    }
}

/* The simulator's webhook is the one connect registered for this
 * connection, with its credentials. */
static bool after_connect(struct stack *s, int account, int64_t connection)
{
    char *url = xasprintf("%s/v1/webhooks", s->sim_base);
    char *want =
        xasprintf("%s/webhooks/pipedrive/%" PRId64, s->api_base, connection);
    const char *headers[] = {"x-api-token: " STACK_PIPEDRIVE_TOKEN, NULL};
    long status = 0;
    bool ok = account != 0;

    if (account == 0) {
        json_t *r = http_test_json("GET", url, headers, NULL, &status);
        json_t *hook = json_array_get(json_object_get(r, "data"), 0);
        const char *at =
            json_string_value(json_object_get(hook, "subscription_url"));
        const char *user =
            json_string_value(json_object_get(hook, "http_auth_user"));
        ok = status == 200 && at && strcmp(at, want) == 0 && user &&
             strcmp(user, STACK_PIPEDRIVE_HOOK_USER) == 0;
        if (!ok)
            fprintf(stderr, "stack: the simulator's webhook is %s, not %s\n",
                    at ? at : "none", want);
        json_decref(r);
    }
    free(want);
    free(url);
    return ok;
}

const struct stack_crm stack_crm_pipedrive = {
    .name = "pipedrive",
    .rate_window_ms = 2000,
    .restores = true,
    .sim_words = sim_words,
    .connect_words = connect_words,
    .after_connect = after_connect,
};

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

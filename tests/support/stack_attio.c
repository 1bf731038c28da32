/* Attio in the integration stack: `crmsim attio` and `fieldsync connect
 * attio`. The org's own account registers its webhook at connect
 * (--public-url), which points the simulator's deliveries at
 * /webhooks/attio/<connection id>; after_connect checks that the
 * simulator's webhook now goes there. Another org's account on the same
 * simulator is connected with a hand-made webhook secret and gets no
 * webhooks. */
#include "stack_attio.h"

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
    stack_words_add(w, "--webhook-secret");
    stack_words_add(w, STACK_ATTIO_SECRET);
    stack_words_add(w, "--token");
    stack_words_add(w, STACK_ATTIO_TOKEN);
    stack_words_add(w, "--reads-per-s");
    stack_words_addf(w, "%d", rate);
    stack_words_add(w, "--writes-per-s");
    stack_words_addf(w, "%d", rate);
}

static void connect_words(const struct stack *s, struct stack_words *w,
                          int account, int rate)
{
    stack_words_add(w, "--token");
    stack_words_add(w, STACK_ATTIO_TOKEN);
    if (account == 0) {
        stack_words_add(w, "--public-url");
        stack_words_add(w, s->api_base);
    } else {
        stack_words_add(w, "--webhook-secret");
        stack_words_add(w, STACK_ATTIO_SECRET);
    }
    stack_words_add(w, "--rate-reads");
    stack_words_addf(w, "%d", rate);
    stack_words_add(w, "--rate-writes");
    stack_words_addf(w, "%d", rate);
}

/* The simulator's webhook (GET /v2/webhooks) goes to this connection. */
static bool after_connect(struct stack *s, int account, int64_t connection)
{
    if (account != 0)
        return true;
    char *url = xasprintf("%s/v2/webhooks", s->sim_base);
    const char *headers[] = {"Authorization: Bearer " STACK_ATTIO_TOKEN, NULL};
    long status = 0;
    json_t *hooks = http_test_json("GET", url, headers, NULL, &status);
    const char *target = json_string_value(json_object_get(
        json_array_get(json_object_get(hooks, "data"), 0), "target_url"));
    char *want =
        xasprintf("%s/webhooks/attio/%" PRId64, s->api_base, connection);
    bool ok = status == 200 && target && strcmp(target, want) == 0;

    if (!ok)
        fprintf(stderr, "stack: attio webhook goes to %s, not %s\n",
                target ? target : "(none)", want);
    json_decref(hooks);
    free(want);
    free(url);
    return ok;
}

const struct stack_crm stack_crm_attio = {
    .name = "attio",
    .rate_window_ms = 1000,
    .webhook_values = false,
    .merge_names_primary = false,
    .restores = false,
    .clears_timed = false,
    .sim_words = sim_words,
    .connect_words = connect_words,
    .after_connect = after_connect,
};

/* Unit tests of the simulators' webhook delivery core in the mode of a CRM
 * that POSTs one event at a time with per-event headers (as Pipedrive and
 * Attio do): each change is its own POST, a retry or a duplicate carries
 * the same delivery id, the attempt counts up, and the stats add up. The
 * receiver is an in-process HTTP server on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http_test.h"
#include "sim_store.h"
#include "webhook_sender.h"

#include "base/alloc.h"
#include "net/http_server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 10000

/* One POST as received. */
struct hit {
    char *key;   /* Idempotency-Key */
    char *field; /* X-Test-Field */
    char *body;
    int status; /* what the receiver answered */
};

struct receiver {
    pthread_mutex_t mu;
    struct hit hits[64];
    size_t count;
    bool fail_first; /* answer 500 to the first POST of each key */
};

static struct receiver rx;

static bool seen_key(const char *key)
{
    for (size_t i = 0; i < rx.count; i++)
        if (strcmp(rx.hits[i].key, key) == 0)
            return true;
    return false;
}

static void on_post(void *ctx, const struct http_request *req,
                    struct http_response *resp)
{
    const char *key = http_request_header(req, "Idempotency-Key");
    const char *field = http_request_header(req, "X-Test-Field");

    pthread_mutex_lock(&rx.mu);
    int status = rx.fail_first && key && !seen_key(key) ? 500 : 200;
    if (rx.count < 64)
        rx.hits[rx.count++] =
            (struct hit){xstrdup(key ? key : ""), xstrdup(field ? field : ""),
                         xstrndup(req->body, req->body_len), status};
    pthread_mutex_unlock(&rx.mu);
    http_response_set_body(resp, status, xstrdup("{}"));
}

static void reset_receiver(bool fail_first)
{
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.count; i++) {
        free(rx.hits[i].key);
        free(rx.hits[i].field);
        free(rx.hits[i].body);
    }
    rx.count = 0;
    rx.fail_first = fail_first;
    pthread_mutex_unlock(&rx.mu);
}

/* The test CRM: one wire event per changed field, the body that event
 * with the attempt, the field in a header, the delivery id as the
 * idempotency key. */
static void on_event(void *ctx, const struct sim_event *ev, json_t *events)
{
    for (size_t i = 0; i < ev->change_count; i++)
        json_array_append_new(
            events, json_pack("{s:s, s:s, s:s?}", "deal", ev->deal->id, "field",
                              sim_field_name(ev->changes[i].field), "value",
                              ev->changes[i].new_value));
}

static void on_format(void *ctx, json_t *events, int attempt,
                      const char *delivery_id, const char *url,
                      struct webhook_post *out)
{
    json_t *ev = json_array_get(events, 0);

    assert_int_equal(json_array_size(events), 1);
    json_object_set_new(ev, "attempt", json_integer(attempt + 1));
    out->body = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
    out->body_len = strlen(out->body);
    webhook_post_add_header(out, "Content-Type: application/json");
    webhook_post_add_header(out, "Idempotency-Key: %s", delivery_id);
    webhook_post_add_header(out, "X-Test-Field: %s",
                            json_string_value(json_object_get(ev, "field")));
}

static const int64_t fast_retries[] = {20};

static const struct sim_stage stage = {"open", "Open", "Prospecting", 0.1,
                                       false};
static const struct sim_pipeline pipeline = {"p", "P", &stage, 1};

static char *numbered(void *ctx, size_t n)
{
    return xasprintf("%zu", n + 1);
}

struct fixture {
    struct http_server *server;
    struct webhook_sender *sender;
    struct sim_store *store;
};

static struct fixture fx;

static int setup(void **state)
{
    struct http_server_config scfg = {
        .listen = "127.0.0.1:0", .max_body = 1 << 20, .on_request = on_post};
    struct webhook_format format = {
        .batch_max = 1,
        .max_attempts = 3,
        .retry_delays_ms = fast_retries,
        .retry_delay_count = 1,
        .on_event = on_event,
        .on_format = on_format,
    };
    struct sim_store_config store = {.pipeline = &pipeline,
                                     .deal_id = numbered,
                                     .owner_id = numbered,
                                     .user_id = numbered};

    pthread_mutex_init(&rx.mu, NULL);
    if (http_server_start(&scfg, &fx.server) != FS_OK)
        return -1;
    char *url = xasprintf("http://127.0.0.1:%u/hook",
                          (unsigned)http_server_port(fx.server));
    struct webhook_sender_config wcfg = {url, 3, &format};
    fs_result r = webhook_sender_start(&wcfg, &fx.sender);
    free(url);
    fx.store = sim_store_new(&store);
    sim_store_set_sink(fx.store, webhook_sender_on_event, fx.sender);
    return r == FS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    sim_store_set_sink(fx.store, NULL, NULL);
    webhook_sender_stop(fx.sender);
    http_server_stop(fx.server);
    sim_store_free(fx.store);
    reset_receiver(false);
    return 0;
}

static bool idle(void *ctx)
{
    return webhook_sender_idle(fx.sender);
}

/* A deal created with three fields (name, amount, pipeline): three wire
 * events. */
static void create_deal(void)
{
    static const struct sim_actor user = {SIM_ACTOR_USER, "7"};
    struct sim_write w = {0};
    struct sim_deal *deal = NULL, *clash = NULL;
    enum sim_bad why;

    sim_store_lock(fx.store);
    assert_int_equal(sim_write_set(fx.store, &w, DEAL_NAME, "N", &why), FS_OK);
    assert_int_equal(sim_write_set(fx.store, &w, DEAL_AMOUNT, "5", &why),
                     FS_OK);
    assert_int_equal(sim_store_create(fx.store, &w, &user, &deal, &clash),
                     FS_OK);
    sim_store_unlock(fx.store);
    sim_write_clear(&w);
}

static void test_one_event_a_post_retried_under_one_key(void **state)
{
    struct webhook_stats stats;

    reset_receiver(true);
    webhook_sender_reset_stats(fx.sender);
    create_deal();
    assert_true(http_test_poll(idle, NULL, WAIT_MS));

    /* Each event failed once and then went through, under its own key,
     * with the attempt counted in its body. */
    pthread_mutex_lock(&rx.mu);
    assert_int_equal(rx.count, 6);
    size_t keys = 0;
    for (size_t i = 0; i < rx.count; i++) {
        json_t *body = json_loads(rx.hits[i].body, 0, NULL);
        assert_non_null(body);
        assert_string_equal(json_string_value(json_object_get(body, "field")),
                            rx.hits[i].field);
        int want_attempt = rx.hits[i].status == 500 ? 1 : 2;
        assert_int_equal(json_integer_value(json_object_get(body, "attempt")),
                         want_attempt);
        size_t same = 0;
        for (size_t j = 0; j < rx.count; j++)
            same += strcmp(rx.hits[j].key, rx.hits[i].key) == 0;
        assert_int_equal(same, 2);
        keys += rx.hits[i].status == 200;
        json_decref(body);
    }
    assert_int_equal(keys, 3);
    pthread_mutex_unlock(&rx.mu);

    webhook_sender_get_stats(fx.sender, &stats);
    assert_int_equal(stats.events_queued, 3);
    assert_int_equal(stats.events_sent, 3);
    assert_int_equal(stats.webhooks_sent, 3);
    assert_int_equal(stats.webhooks_failed, 3);
    assert_int_equal(stats.webhooks_given_up, 0);
}

static void test_duplicate_carries_the_same_key(void **state)
{
    struct webhook_faults faults = {.duplicate = 1.0};
    struct webhook_stats stats;

    reset_receiver(false);
    webhook_sender_reset_stats(fx.sender);
    webhook_sender_set_faults(fx.sender, &faults);
    create_deal();
    assert_true(http_test_poll(idle, NULL, WAIT_MS));
    faults.duplicate = 0;
    webhook_sender_set_faults(fx.sender, &faults);

    pthread_mutex_lock(&rx.mu);
    assert_int_equal(rx.count, 6);
    for (size_t i = 0; i < rx.count; i++) {
        size_t same = 0;
        for (size_t j = 0; j < rx.count; j++)
            same += strcmp(rx.hits[j].key, rx.hits[i].key) == 0 &&
                    strcmp(rx.hits[j].body, rx.hits[i].body) == 0;
        assert_int_equal(same, 2);
    }
    pthread_mutex_unlock(&rx.mu);
    webhook_sender_get_stats(fx.sender, &stats);
    assert_int_equal(stats.events_duplicated, 3);
    assert_int_equal(stats.webhooks_sent, 6);
}

/* The CRM's ban (Pipedrive's after 10 failed first attempts): once the
 * count is reached, every delivery due while banned is lost, retries
 * included, and counted. */
static void test_ban_after_failed_first_attempts(void **state)
{
    struct webhook_format format = {
        .batch_max = 1,
        .max_attempts = 3,
        .retry_delays_ms = fast_retries,
        .retry_delay_count = 1,
        .ban_after_failures = 3,
        .ban_ms = 60000,
        .on_event = on_event,
        .on_format = on_format,
    };
    char *url = xasprintf("http://127.0.0.1:%u/hook",
                          (unsigned)http_server_port(fx.server));
    struct webhook_sender_config wcfg = {url, 5, &format};
    struct webhook_sender *sender = NULL;
    struct webhook_stats stats;

    reset_receiver(true);
    assert_int_equal(webhook_sender_start(&wcfg, &sender), FS_OK);
    free(url);
    sim_store_set_sink(fx.store, webhook_sender_on_event, sender);
    create_deal();
    struct webhook_sender *saved = fx.sender;
    fx.sender = sender;
    assert_true(http_test_poll(idle, NULL, WAIT_MS));
    fx.sender = saved;
    sim_store_set_sink(fx.store, webhook_sender_on_event, fx.sender);

    webhook_sender_get_stats(sender, &stats);
    assert_int_equal(stats.bans, 1);
    assert_int_equal(stats.webhooks_failed, 3);
    assert_int_equal(stats.events_lost_banned, 3);
    assert_int_equal(stats.events_sent, 0);
    pthread_mutex_lock(&rx.mu);
    assert_int_equal(rx.count, 3);
    pthread_mutex_unlock(&rx.mu);
    webhook_sender_stop(sender);
    reset_receiver(false);
}

/* A webhook registered later takes the deliveries from then on; with
 * none registered they are dropped. */
static void test_url_set_later(void **state)
{
    struct webhook_stats stats;
    char *url = xasprintf("http://127.0.0.1:%u/hook",
                          (unsigned)http_server_port(fx.server));

    reset_receiver(false);
    webhook_sender_reset_stats(fx.sender);
    webhook_sender_set_url(fx.sender, NULL);
    create_deal();
    assert_true(http_test_poll(idle, NULL, WAIT_MS));
    webhook_sender_get_stats(fx.sender, &stats);
    assert_int_equal(stats.events_dropped, 3);
    assert_int_equal(stats.webhooks_sent, 0);

    webhook_sender_set_url(fx.sender, url);
    create_deal();
    assert_true(http_test_poll(idle, NULL, WAIT_MS));
    webhook_sender_get_stats(fx.sender, &stats);
    assert_int_equal(stats.webhooks_sent, 3);
    free(url);
}

static void test_gives_up_after_the_last_attempt(void **state)
{
    struct webhook_stats stats;

    /* The receiver is gone: each of the three attempts fails, then the
     * sender gives the batch up. */
    reset_receiver(false);
    webhook_sender_reset_stats(fx.sender);
    http_server_stop(fx.server);
    fx.server = NULL;
    create_deal();
    assert_true(http_test_poll(idle, NULL, WAIT_MS));
    webhook_sender_get_stats(fx.sender, &stats);
    assert_int_equal(stats.webhooks_failed, 9);
    assert_int_equal(stats.webhooks_given_up, 3);
    assert_int_equal(stats.events_sent, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_event_a_post_retried_under_one_key),
        cmocka_unit_test(test_duplicate_carries_the_same_key),
        cmocka_unit_test(test_ban_after_failed_first_attempts),
        cmocka_unit_test(test_url_set_later),
        cmocka_unit_test(test_gives_up_after_the_last_attempt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* The HTTP client against a real loopback server: several requests at
 * once each get their own answer, overlap when allowed and not when not,
 * and a failed one does not hold back the others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "net/http_client.h"
#include "net/http_server.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALLS 12
/* How long the server holds each answer, so calls sent together overlap. */
#define HOLD_MS 30

struct server_state {
    pthread_mutex_t lock;
    int in_flight;
    int most_in_flight;
};

static struct server_state server_state = {PTHREAD_MUTEX_INITIALIZER, 0, 0};

static void on_request(void *ctx, const struct http_request *req,
                       struct http_response *resp)
{
    struct server_state *st = ctx;

    pthread_mutex_lock(&st->lock);
    if (++st->in_flight > st->most_in_flight)
        st->most_in_flight = st->in_flight;
    pthread_mutex_unlock(&st->lock);
    clock_sleep_ms(HOLD_MS);
    pthread_mutex_lock(&st->lock);
    st->in_flight--;
    pthread_mutex_unlock(&st->lock);

    if (strcmp(req->path, "/fail") == 0) {
        http_response_error(resp, 503, "busy", NULL, "try later");
        return;
    }
    http_response_set_body(
        resp, 200,
        xasprintf("{\"path\":\"%s\",\"body\":\"%s\"}", req->path, req->body));
}

struct fixture {
    struct http_server *server;
    char *base;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    struct http_server_config config = {
        .listen = "127.0.0.1:0",
        .max_body = 4096,
        .max_connections = 64,
        .timeout_s = 10,
        .on_request = on_request,
        .ctx = &server_state,
    };

    if (http_server_start(&config, &fx->server) != FS_OK)
        return -1;
    fx->base = xasprintf("http://127.0.0.1:%u", http_server_port(fx->server));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    http_server_stop(fx->server);
    free(fx->base);
    free(fx);
    return 0;
}

static void run_calls(struct fixture *fx, size_t parallel, bool with_failure,
                      bool with_dead_port)
{
    struct http_client *client = http_client_new();
    struct http_client_call calls[CALLS];
    char *urls[CALLS];
    char bodies[CALLS][16];

    server_state.most_in_flight = 0;
    for (size_t i = 0; i < CALLS; i++) {
        if (with_failure && i == 3)
            urls[i] = xasprintf("%s/fail", fx->base);
        else if (with_dead_port && i == 5)
            urls[i] = xstrdup("http://127.0.0.1:1/nobody");
        else
            urls[i] = xasprintf("%s/deal/%zu", fx->base, i);
        snprintf(bodies[i], sizeof(bodies[i]), "b%zu", i);
        calls[i] = (struct http_client_call){
            .method = "PATCH",
            .url = urls[i],
            .body = bodies[i],
            .body_len = strlen(bodies[i]),
        };
    }

    http_client_request_many(client, calls, CALLS, parallel, 5000);

    for (size_t i = 0; i < CALLS; i++) {
        if (with_failure && i == 3) {
            assert_int_equal(calls[i].result, FS_OK);
            assert_int_equal(calls[i].resp.status, 503);
        } else if (with_dead_port && i == 5) {
            assert_int_equal(calls[i].result, FS_ERR_UNAVAILABLE);
            assert_int_equal(calls[i].resp.status, 0);
        } else {
            char want[64];
            snprintf(want, sizeof(want),
                     "{\"path\":\"/deal/%zu\",\"body\":\"b%zu\"}", i, i);
            assert_int_equal(calls[i].result, FS_OK);
            assert_int_equal(calls[i].resp.status, 200);
            assert_string_equal(calls[i].resp.body.data, want);
        }
        http_client_response_free(&calls[i].resp);
        free(urls[i]);
    }
    http_client_free(client);
}

static void test_each_call_gets_its_own_answer_in_parallel(void **state)
{
    run_calls(*state, 6, false, false);
    assert_true(server_state.most_in_flight > 1);
    assert_true(server_state.most_in_flight <= 6);
}

static void test_one_at_a_time_when_asked(void **state)
{
    run_calls(*state, 1, false, false);
    assert_int_equal(server_state.most_in_flight, 1);
}

static void test_failures_stay_with_their_call(void **state)
{
    run_calls(*state, 4, true, true);
}

static void test_single_requests_still_work_after_many(void **state)
{
    struct fixture *fx = *state;
    struct http_client *client = http_client_new();
    struct http_client_call call = {.method = "GET"};
    struct http_client_response resp;
    char *url = xasprintf("%s/deal/x", fx->base);

    call.url = url;
    http_client_request_many(client, &call, 1, 4, 5000);
    assert_int_equal(call.resp.status, 200);
    http_client_response_free(&call.resp);
    assert_int_equal(
        http_client_request(client, "GET", url, NULL, NULL, 0, 5000, &resp),
        FS_OK);
    assert_int_equal(resp.status, 200);
    http_client_response_free(&resp);
    free(url);
    http_client_free(client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_call_gets_its_own_answer_in_parallel),
        cmocka_unit_test(test_one_at_a_time_when_asked),
        cmocka_unit_test(test_failures_stay_with_their_call),
        cmocka_unit_test(test_single_requests_still_work_after_many),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

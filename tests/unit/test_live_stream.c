/* Unit tests for the live stream: per-org fan-out in order, keep-alives,
 * overflow of a slow reader, shutdown waking blocked readers, and the
 * stream outliving its owner. Reads go through the response's stream
 * callback, as the HTTP server would call it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/clock.h"
#include "services/live_stream.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEADLINE_MS 10000

static void response_release(struct http_response *resp)
{
    if (resp->stream_close)
        resp->stream_close(resp->stream_ctx);
    free(resp->body);
    for (size_t i = 0; i < 8; i++) {
        free(resp->headers[i][0]);
        free(resp->headers[i][1]);
    }
    memset(resp, 0, sizeof(*resp));
}

/* Reads until the text holds needle; fails the test past the deadline or
 * when the stream ends first. */
static void read_until(struct http_response *resp, struct buf *text,
                       const char *needle)
{
    int64_t deadline = clock_mono_ms() + DEADLINE_MS;
    char chunk[512];

    while (!text->data || !strstr(text->data, needle)) {
        assert_true(clock_mono_ms() < deadline);
        ssize_t n = resp->stream_read(resp->stream_ctx, chunk, sizeof(chunk));
        assert_true(n >= 0);
        buf_append(text, chunk, (size_t)n);
    }
}

static void subscribe(struct live_stream *ls, int64_t org,
                      struct http_response *resp)
{
    struct buf text = {0};

    memset(resp, 0, sizeof(*resp));
    live_stream_subscribe(ls, org, resp);
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->content_type, "text/event-stream");
    assert_non_null(resp->stream_read);
    read_until(resp, &text, ": connected\n\n");
    buf_free(&text);
}

struct publisher {
    struct live_stream *ls;
    int count;
};

/* Alternates events of org 1 and org 2. */
static void *publish_thread(void *arg)
{
    struct publisher *p = arg;
    char data[64];

    for (int i = 0; i < p->count; i++) {
        snprintf(data, sizeof(data), "{\"n\":%d}", i);
        live_stream_publish(p->ls, i % 2 ? 2 : 1, "deal.updated", data);
    }
    return NULL;
}

static void test_org_events_arrive_in_order(void **state)
{
    struct live_stream *ls = live_stream_new(1024);
    struct http_response resp;
    struct publisher p = {.ls = ls, .count = 200};
    struct buf text = {0};
    pthread_t thread;
    char expect[64];

    subscribe(ls, 1, &resp);
    pthread_create(&thread, NULL, publish_thread, &p);
    read_until(&resp, &text, "{\"n\":198}");
    pthread_join(thread, NULL);

    /* Every org-1 event, in publishing order; none of org 2. */
    const char *at = text.data;
    for (int i = 0; i < p.count; i += 2) {
        snprintf(expect, sizeof(expect),
                 "event: deal.updated\ndata: {\"n\":%d}\n\n", i);
        const char *found = strstr(at, expect);
        assert_non_null(found);
        at = found + strlen(expect);
    }
    assert_null(strstr(text.data, "{\"n\":1}"));
    assert_null(strstr(text.data, "{\"n\":199}"));
    assert_null(strstr(text.data, "overflow"));

    buf_free(&text);
    response_release(&resp);
    live_stream_free(ls);
}

static void test_keepalive_when_idle(void **state)
{
    struct live_stream *ls = live_stream_new(8);
    struct http_response resp;
    char chunk[64];

    live_stream_set_keepalive_ms(ls, 30);
    subscribe(ls, 1, &resp);
    ssize_t n = resp.stream_read(resp.stream_ctx, chunk, sizeof(chunk) - 1);
    assert_true(n > 0);
    chunk[n] = '\0';
    assert_string_equal(chunk, ": keepalive\n\n");

    /* Another org's event does not count as activity for this reader. */
    live_stream_publish(ls, 2, "deal.updated", "{}");
    n = resp.stream_read(resp.stream_ctx, chunk, sizeof(chunk) - 1);
    assert_true(n > 0);
    chunk[n] = '\0';
    assert_string_equal(chunk, ": keepalive\n\n");

    response_release(&resp);
    live_stream_free(ls);
}

static void test_slow_reader_skips_with_overflow(void **state)
{
    struct live_stream *ls = live_stream_new(4);
    struct http_response resp;
    struct buf text = {0};
    char data[32];

    subscribe(ls, 1, &resp);
    for (int i = 0; i < 10; i++) {
        snprintf(data, sizeof(data), "{\"n\":%d}", i);
        live_stream_publish(ls, 1, "deal.updated", data);
    }
    read_until(&resp, &text, "{\"n\":9}");

    /* The overflow notice comes first, then only the four kept events. */
    assert_true(strncmp(text.data, "event: overflow\ndata: {\"skipped\":6}\n\n",
                        strlen("event: overflow\ndata: {\"skipped\":6}\n\n")) ==
                0);
    assert_null(strstr(text.data, "{\"n\":5}"));
    for (int i = 6; i < 10; i++) {
        snprintf(data, sizeof(data), "{\"n\":%d}", i);
        assert_non_null(strstr(text.data, data));
    }

    buf_free(&text);
    response_release(&resp);
    live_stream_free(ls);
}

static void test_small_reads_and_multiline_data(void **state)
{
    struct live_stream *ls = live_stream_new(8);
    struct http_response resp;
    struct buf text = {0};
    char chunk[5];
    const char *want = "event: note\ndata: line one\ndata: line two\n\n";

    subscribe(ls, 7, &resp);
    live_stream_publish(ls, 7, "note\ndata: forged", "line one\nline two");
    int64_t deadline = clock_mono_ms() + DEADLINE_MS;
    while (text.len < strlen(want)) {
        assert_true(clock_mono_ms() < deadline);
        ssize_t n = resp.stream_read(resp.stream_ctx, chunk, sizeof(chunk));
        assert_true(n > 0 && n <= (ssize_t)sizeof(chunk));
        buf_append(&text, chunk, (size_t)n);
    }
    assert_string_equal(text.data, want);

    buf_free(&text);
    response_release(&resp);
    live_stream_free(ls);
}

struct reader {
    struct http_response *resp;
    ssize_t last;
};

static void *read_thread(void *arg)
{
    struct reader *r = arg;
    char chunk[256];

    do {
        r->last =
            r->resp->stream_read(r->resp->stream_ctx, chunk, sizeof(chunk));
    } while (r->last >= 0);
    return NULL;
}

static void test_shutdown_wakes_blocked_readers(void **state)
{
    struct live_stream *ls = live_stream_new(8);
    struct http_response resp[2];
    struct reader readers[2];
    pthread_t threads[2];

    live_stream_set_keepalive_ms(ls, 600000);
    for (int i = 0; i < 2; i++) {
        subscribe(ls, 1, &resp[i]);
        readers[i].resp = &resp[i];
        readers[i].last = 0;
        pthread_create(&threads[i], NULL, read_thread, &readers[i]);
    }

    int64_t deadline = clock_mono_ms() + DEADLINE_MS;
    while (live_stream_waiters(ls) < 2) {
        assert_true(clock_mono_ms() < deadline);
        sched_yield();
    }
    int64_t start = clock_mono_ms();
    live_stream_shutdown(ls);
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(readers[i].last, -1);
    }
    assert_true(clock_mono_ms() - start < DEADLINE_MS);

    /* A late subscriber is refused rather than left hanging. */
    struct http_response late = {0};
    live_stream_subscribe(ls, 1, &late);
    assert_int_equal(late.status, 503);
    assert_null(late.stream_read);
    response_release(&late);

    for (int i = 0; i < 2; i++)
        response_release(&resp[i]);
    live_stream_free(ls);
}

/* The HTTP server may close a stream after the owner freed the live
 * stream; the subscriber keeps it alive until then (ASan checks). */
static void test_subscriber_outlives_owner(void **state)
{
    struct live_stream *ls = live_stream_new(8);
    struct http_response resp;
    char chunk[64];

    subscribe(ls, 1, &resp);
    live_stream_free(ls);
    assert_int_equal(resp.stream_read(resp.stream_ctx, chunk, sizeof(chunk)),
                     -1);
    response_release(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_org_events_arrive_in_order),
        cmocka_unit_test(test_keepalive_when_idle),
        cmocka_unit_test(test_slow_reader_skips_with_overflow),
        cmocka_unit_test(test_small_reads_and_multiline_data),
        cmocka_unit_test(test_shutdown_wakes_blocked_readers),
        cmocka_unit_test(test_subscriber_outlives_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

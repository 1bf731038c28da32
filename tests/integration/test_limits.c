/* The limits of fieldsync serve, on the real program: oversized bodies and
 * headers, over-long batches, deep JSON, slow clients, too many
 * connections and a webhook flood past the ingest queue are each refused
 * with a clear JSON error the CRMs retry; a locked or full database makes
 * a webhook answer 503, never 2xx; memory stays bounded, the field API
 * keeps answering, and every event answered 2xx is in the inbox once. */
#include "http_test.h"
#include "stack.h"
#include "stack_hubspot.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define TEXT_OF_(x) #x
#define TEXT_OF(x) TEXT_OF_(x)

#define MAX_CONNECTIONS 24
#define REQUEST_TIMEOUT_MS 1500
#define INGEST_QUEUE 500
/* How long a raw-socket test waits for an answer at most. */
#define SOCKET_WAIT_MS 10000

/* The flood: senders, deliveries each, events a delivery, and the size of
 * each event's value, so far more bytes are offered than the bound. */
#define FLOOD_SENDERS 16
#define FLOOD_DELIVERIES 10
#define FLOOD_EVENTS 100
#define FLOOD_VALUE_BYTES 3000
#define FLOOD_MAX_ATTEMPTS 400
#define FLOOD_FIRST_EVENT 50000000
/* Growth of the resident set the flood may cause at most: the pool's
 * database connections (up to 32, each caching 2 MiB of pages), the
 * ingest queue and the bodies in flight, with room for ASan's shadow and
 * quarantine. */
#define FLOOD_RSS_BOUND_KB (192 * 1024)
/* Growth from the first half of the flood to the second at most: past
 * its caches filling, memory must not follow the load. */
#define FLOOD_RSS_PLATEAU_KB (32 * 1024)

static struct stack st;
static char *asan_env;
static int64_t next_event = 1;

static int setup(void **state)
{
    static const char *const args[] = {"--max-connections",
                                       TEXT_OF(MAX_CONNECTIONS),
                                       "--request-timeout-ms",
                                       TEXT_OF(REQUEST_TIMEOUT_MS),
                                       "--ingest-queue",
                                       TEXT_OF(INGEST_QUEUE),
                                       NULL};
    /* ASan keeps freed memory in quarantine (256 MB by default); a small
     * one keeps the resident set a measure of what fieldsync holds. */
    const char *asan = getenv("ASAN_OPTIONS");
    asan_env = xasprintf("ASAN_OPTIONS=%s%squarantine_size_mb=16",
                         asan ? asan : "", asan && *asan ? ":" : "");
    static const char *env_slot[2];
    env_slot[0] = asan_env;
    struct stack_options o = {
        .deals = 6, .serve_args = args, .serve_env = env_slot};

    /* The refusals are logged at info: the tests read those lines. */
    setenv("FS_TEST_LOG_LEVEL", "info", 1);

    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    bool ok = stack_stop(&st);
    free(asan_env);
    return ok ? 0 : -1;
}

/* ---- raw sockets, for what a well-behaved client never sends ---- */

static int api_port(void)
{
    const char *colon = strrchr(st.api_base, ':');
    return colon ? atoi(colon + 1) : 0;
}

static int connect_api(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    addr.sin_port = htons((uint16_t)api_port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may have closed: the answer says why */
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until the server closes or ms pass; the text read (caller frees)
 * and whether it closed. */
static char *read_until_closed(int fd, int64_t ms, bool *closed)
{
    char *text = xstrdup("");
    size_t len = 0;
    int64_t end = clock_mono_ms() + ms;

    *closed = false;
    while (clock_mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        char chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0) {
            *closed = true;
            break;
        }
        text = xrealloc(text, len + (size_t)n + 1);
        memcpy(text + len, chunk, (size_t)n);
        len += (size_t)n;
        text[len] = '\0';
    }
    return text;
}

/* The status of a raw answer, and its JSON body's "error". */
static void assert_raw_error(const char *answer, int status, const char *code)
{
    char line[32];
    snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    assert_non_null(strstr(answer, line));
    const char *body = strstr(answer, "\r\n\r\n");
    assert_non_null(body);
    json_t *json = json_loads(body + 4, 0, NULL);
    assert_non_null(json);
    assert_string_equal(stack_text(json, "error"), code);
    assert_non_null(stack_text(json, "message"));
    json_decref(json);
}

/* ---- webhook deliveries ---- */

/* A delivery of n dealname changes of deal 20000000001, from event id
 * first on, each value value_bytes long (caller frees). */
static char *delivery(int64_t first, int n, size_t value_bytes)
{
    char *value = xcalloc(value_bytes + 1, 1);
    json_t *events = json_array();

    memset(value, 'v', value_bytes);
    for (int i = 0; i < n; i++) {
        int64_t id = first + i;
        char *name = xasprintf("%" PRId64 "-%s", id, value);
        name[value_bytes > 0 ? value_bytes : strlen(name)] = '\0';
        json_array_append_new(
            events,
            json_pack("{s:I, s:i, s:I, s:I, s:I, s:s, s:i, s:I, s:s, s:s, "
                      "s:s, s:s}",
                      "eventId", (json_int_t)id, "subscriptionId", 1,
                      "portalId", (json_int_t)STACK_HUBSPOT_PORTAL, "appId",
                      (json_int_t)atoll(STACK_HUBSPOT_APP_ID), "occurredAt",
                      (json_int_t)(clock_now_ms() + i), "subscriptionType",
                      "deal.propertyChange", "attemptNumber", 0, "objectId",
                      (json_int_t)20000000001LL, "propertyName", "dealname",
                      "propertyValue", name, "changeSource", "CRM_UI",
                      "sourceId", "userId:5100001"));
        free(name);
    }
    char *text = json_dumps(events, JSON_COMPACT);
    json_decref(events);
    free(value);
    return text;
}

/* The event ids in the inbox, read straight from the database, counted
 * into seen[id - first] for ids in [first, first + n). */
static void inbox_counts(int64_t first, size_t n, int *seen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;

    memset(seen, 0, n * sizeof(*seen));
    /* Read-write though it only reads: see stack_connection_secret. */
    assert_int_equal(sqlite3_open_v2(st.db, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT body FROM inbox", -1, &q, NULL),
        SQLITE_OK);
    while (sqlite3_step(q) == SQLITE_ROW) {
        json_t *event =
            json_loads((const char *)sqlite3_column_text(q, 0), 0, NULL);
        json_int_t id = json_integer_value(json_object_get(event, "eventId"));
        if (id >= first && id < first + (int64_t)n)
            seen[id - first]++;
        json_decref(event);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static int64_t take_events(int n)
{
    int64_t first = next_event;
    next_event += n;
    return first;
}

/* Posts a signed delivery and checks it was refused with status and
 * code, storing none of its events. */
static void assert_delivery_refused(const char *body, int64_t first, int n,
                                    long status, const char *code)
{
    struct http_test_response resp;
    int *seen = xcalloc((size_t)n, sizeof(*seen));

    assert_true(stack_hubspot_webhook_response(&st, body, STACK_HUBSPOT_SECRET,
                                               clock_now_ms(), &resp));
    assert_int_equal(resp.status, status);
    assert_non_null(resp.json);
    assert_string_equal(stack_text(resp.json, "error"), code);
    http_test_response_free(&resp);
    inbox_counts(first, (size_t)n, seen);
    for (int i = 0; i < n; i++)
        assert_int_equal(seen[i], 0);
    free(seen);
}

/* ---- the tests ---- */

/* A Content-Length over 1 MiB is answered before the body is sent. */
static void test_announced_body_too_large(void **state)
{
    static const char *const paths[] = {"/webhooks/hubspot", "/api/v1/deals"};
    for (size_t i = 0; i < 2; i++) {
        int fd = connect_api();
        char *head = xasprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 5000000\r\n\r\n",
                               paths[i]);
        bool closed;
        send_all(fd, head, strlen(head));
        char *answer = read_until_closed(fd, SOCKET_WAIT_MS, &closed);
        assert_true(closed);
        assert_raw_error(answer, 413, "too_large");
        free(answer);
        free(head);
        close(fd);
    }
}

/* A body over the limit sent without a length is refused as well. */
static void test_sent_body_too_large(void **state)
{
    int64_t first = take_events(FLOOD_EVENTS);
    char *body = delivery(first, FLOOD_EVENTS, 11000); /* ~1.1 MB */
    assert_true(strlen(body) > (1u << 20));
    assert_delivery_refused(body, first, FLOOD_EVENTS, 413, "too_large");
    free(body);
}

/* The field API answers (after a refusal: the server serves on). */
static void assert_api_answers(void)
{
    long status;
    json_decref(stack_api(&st, st.admin, "GET", "/api/v1/me", NULL, &status));
    assert_int_equal(status, 200);
}

/* Sends a request with one header of filler_bytes and returns the raw
 * answer (caller frees); the server closes after it, and logs no error
 * and no HTML for it. */
static char *send_big_header(size_t filler_bytes)
{
    size_t errors = stack_log_count(&st, "serve", "level=error");
    int fd = connect_api();
    char *filler = xcalloc(filler_bytes + 1, 1);
    memset(filler, 'h', filler_bytes);
    char *request = xasprintf("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "X-Filler: %s\r\n\r\n",
                              filler);
    bool closed;

    send_all(fd, request, strlen(request));
    char *answer = read_until_closed(fd, SOCKET_WAIT_MS, &closed);
    assert_true(closed);
    assert_int_equal(stack_log_count(&st, "serve", "level=error"), errors);
    assert_int_equal(stack_log_count(&st, "serve", "<html"), 0);
    free(request);
    free(filler);
    close(fd);
    return answer;
}

/* Headers over the limit get our JSON 431, logged as one line at info,
 * also far past it (70 KB, past libmicrohttpd's former 64 KiB of memory
 * a connection); the server serves on. */
static void test_headers_too_large(void **state)
{
    static const size_t sizes[] = {20000, 70000};
    size_t refused = stack_log_count(&st, "serve", "reason=headers_too_large");

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *answer = send_big_header(sizes[i]);
        assert_raw_error(answer, 431, "headers_too_large");
        free(answer);
    }
    assert_int_equal(stack_log_count(&st, "serve",
                                     "level=info event=http_refused status=431 "
                                     "reason=headers_too_large"),
                     refused + 2);

    assert_api_answers();
}

/* Headers past even the connection's memory: libmicrohttpd answers 431
 * itself, with its own text (docs/LIMITATIONS.md); the log has one line
 * at info for it, with no HTML, and the server serves on. */
static void test_headers_past_connection_memory(void **state)
{
    size_t refused = stack_log_count(&st, "serve", "reason=headers_too_large");
    char *answer = send_big_header((size_t)2 << 20);

    assert_non_null(strstr(answer, "HTTP/1.1 431 "));
    free(answer);
    assert_int_equal(
        stack_log_count(&st, "serve",
                        "level=info event=http_refused status=431 "
                        "reason=headers_too_large by=libmicrohttpd"),
        1);
    assert_int_equal(stack_log_count(&st, "serve", "reason=headers_too_large"),
                     refused + 1);

    assert_api_answers();
}

/* HubSpot sends at most 100 events a delivery. */
static void test_batch_too_long(void **state)
{
    int64_t first = take_events(101);
    char *body = delivery(first, 101, 8);
    assert_delivery_refused(body, first, 101, 413, "too_large");
    free(body);
}

static void test_json_too_deep(void **state)
{
    int64_t first = take_events(1);
    char *one = delivery(first, 1, 8);
    /* The event, wrapped 40 arrays deep. */
    char *body =
        xasprintf("%.*s%s%.*s", 40, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                  one, 40, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    assert_delivery_refused(body, first, 1, 400, "too_deep");
    free(body);
    free(one);
}

/* A client sending its headers, or its body, a byte now and then is cut
 * off with 408 once its request is past the time limit, although it never
 * stays idle long enough for the idle timeout. */
static void test_slow_clients_cut_off(void **state)
{
    static const char *const starts[] = {
        "POST /webhooks/hubspot HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        "POST /webhooks/hubspot HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[",
    };

    for (size_t i = 0; i < 2; i++) {
        int fd = connect_api();
        int64_t begun = clock_mono_ms();
        bool closed = false;
        char *answer = xstrdup("");

        send_all(fd, starts[i], strlen(starts[i]));
        while (!closed && clock_mono_ms() - begun < SOCKET_WAIT_MS) {
            send_all(fd, "a", 1);
            free(answer);
            answer = read_until_closed(fd, 200, &closed);
        }
        assert_true(closed);
        assert_true(clock_mono_ms() - begun >= REQUEST_TIMEOUT_MS);
        assert_raw_error(answer, 408, "request_timeout");
        free(answer);
        close(fd);
    }

    /* Nothing of them was taken; the server serves on. */
    assert_api_answers();
}

struct busy_wait {
    struct http_test_response resp;
};

static bool answered_busy(void *ctx)
{
    struct busy_wait *w = ctx;
    char *url = xasprintf("%s/healthz", st.api_base);

    http_test_response_free(&w->resp);
    http_test_request("GET", url, NULL, NULL, &w->resp);
    free(url);
    return w->resp.status == 503;
}

static bool answered_ok(void *ctx)
{
    long status;
    json_decref(stack_api(&st, st.admin, "GET", "/api/v1/me", NULL, &status));
    return status == 200;
}

/* Past max-connections open at once, a request is answered 503 with
 * Retry-After (the client may come back), and served again once the
 * connections close. */
static void test_too_many_connections(void **state)
{
    int fds[MAX_CONNECTIONS];
    struct busy_wait w = {0};

    for (int i = 0; i < MAX_CONNECTIONS; i++)
        fds[i] = connect_api();
    assert_true(http_test_poll(answered_busy, &w, SOCKET_WAIT_MS));
    assert_string_equal(stack_text(w.resp.json, "error"), "busy");
    char *retry = http_test_header(&w.resp, "Retry-After");
    assert_non_null(retry);
    free(retry);
    http_test_response_free(&w.resp);

    for (int i = 0; i < MAX_CONNECTIONS; i++)
        close(fds[i]);
    assert_true(http_test_poll(answered_ok, NULL, SOCKET_WAIT_MS));
}

/* ---- the flood ---- */

struct flood {
    int64_t first;
    size_t n_events;
    int *acked; /* per event: 1 once its delivery was answered 2xx */
    pthread_mutex_t lock;
    int64_t deliveries_ok;
    int64_t shed;     /* 503 answers, each with Retry-After and JSON */
    int64_t bad_shed; /* 503 answers lacking either */
    int64_t other;    /* any other answer */
    int64_t offered;  /* bytes posted, retries included */
    bool done;
    int64_t api_ok;
    int64_t api_failed;
    int64_t rss_base_kb;
    int64_t rss_peak_kb;       /* over the whole flood */
    int64_t rss_first_half_kb; /* peak until half the deliveries were in */
};

struct sender {
    struct flood *f;
    int index;
};

static void *flood_sender(void *arg)
{
    struct sender *me = arg;
    struct flood *f = me->f;

    for (int d = 0; d < FLOOD_DELIVERIES; d++) {
        size_t offset =
            ((size_t)me->index * FLOOD_DELIVERIES + (size_t)d) * FLOOD_EVENTS;
        char *body = delivery(f->first + (int64_t)offset, FLOOD_EVENTS,
                              FLOOD_VALUE_BYTES);
        for (int attempt = 0; attempt < FLOOD_MAX_ATTEMPTS; attempt++) {
            struct http_test_response resp;
            stack_hubspot_webhook_response(&st, body, STACK_HUBSPOT_SECRET,
                                           clock_now_ms(), &resp);
            char *retry = http_test_header(&resp, "Retry-After");
            bool busy_json = resp.json && stack_text(resp.json, "error");
            pthread_mutex_lock(&f->lock);
            f->offered += (int64_t)strlen(body);
            if (resp.status == 200) {
                f->deliveries_ok++;
                for (size_t i = 0; i < FLOOD_EVENTS; i++)
                    f->acked[offset + i] = 1;
            } else if (resp.status == 503) {
                if (retry && busy_json)
                    f->shed++;
                else
                    f->bad_shed++;
            } else {
                f->other++;
            }
            pthread_mutex_unlock(&f->lock);
            long status = resp.status;
            free(retry);
            http_test_response_free(&resp);
            if (status == 200)
                break;
            /* A CRM waits Retry-After; the flood comes back sooner to
             * keep the pressure on. */
            clock_sleep_ms(20);
        }
        free(body);
    }
    return NULL;
}

static int64_t rss_kb(pid_t pid)
{
    char path[64];
    char line[256];
    int64_t kb = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtoll(line + 6, NULL, 10);
    }
    fclose(f);
    return kb;
}

/* Samples the resident set and calls the field API until the flood is
 * over. */
static void *flood_watcher(void *arg)
{
    struct flood *f = arg;

    for (;;) {
        pthread_mutex_lock(&f->lock);
        bool done = f->done;
        pthread_mutex_unlock(&f->lock);
        if (done)
            break;
        long status;
        json_decref(stack_api(&st, st.admin, "GET", "/api/v1/deals?limit=5",
                              NULL, &status));
        int64_t kb = rss_kb(st.serve);
        pthread_mutex_lock(&f->lock);
        if (status == 200)
            f->api_ok++;
        else
            f->api_failed++;
        if (kb > f->rss_peak_kb)
            f->rss_peak_kb = kb;
        if (f->deliveries_ok * 2 < FLOOD_SENDERS * FLOOD_DELIVERIES &&
            kb > f->rss_first_half_kb)
            f->rss_first_half_kb = kb;
        pthread_mutex_unlock(&f->lock);
        clock_sleep_ms(20);
    }
    return NULL;
}

static void test_webhook_flood_is_shed(void **state)
{
    struct flood f = {0};
    pthread_t senders[FLOOD_SENDERS];
    struct sender who[FLOOD_SENDERS];
    pthread_t watcher;

    f.n_events = (size_t)FLOOD_SENDERS * FLOOD_DELIVERIES * FLOOD_EVENTS;
    f.first = FLOOD_FIRST_EVENT;
    f.acked = xcalloc(f.n_events, sizeof(*f.acked));
    pthread_mutex_init(&f.lock, NULL);
    f.rss_base_kb = f.rss_peak_kb = rss_kb(st.serve);
    assert_true(f.rss_base_kb > 0);

    pthread_create(&watcher, NULL, flood_watcher, &f);
    for (int i = 0; i < FLOOD_SENDERS; i++) {
        who[i] = (struct sender){&f, i};
        pthread_create(&senders[i], NULL, flood_sender, &who[i]);
    }
    for (int i = 0; i < FLOOD_SENDERS; i++)
        pthread_join(senders[i], NULL);
    pthread_mutex_lock(&f.lock);
    f.done = true;
    pthread_mutex_unlock(&f.lock);
    pthread_join(watcher, NULL);

    printf("flood: %zu events in %" PRId64 " deliveries answered 200, %" PRId64
           " shed with 503, %" PRId64 " MB offered; resident set %" PRId64
           " MB, %" PRId64 " MB peak in the first half, %" PRId64
           " MB peak; field API answered %" PRId64 " calls during it\n",
           f.n_events, f.deliveries_ok, f.shed, f.offered >> 20,
           f.rss_base_kb >> 10, f.rss_first_half_kb >> 10, f.rss_peak_kb >> 10,
           f.api_ok);

    /* Past capacity: deliveries were shed, each retryable and explained. */
    assert_true(f.shed > 0);
    assert_int_equal(f.bad_shed, 0);
    assert_int_equal(f.other, 0);
    assert_int_equal(f.deliveries_ok, FLOOD_SENDERS * FLOOD_DELIVERIES);
    /* Memory stayed bounded and did not grow with the load once the
     * caches were full. */
    assert_true(f.rss_peak_kb - f.rss_base_kb < FLOOD_RSS_BOUND_KB);
    assert_true(f.rss_peak_kb - f.rss_first_half_kb < FLOOD_RSS_PLATEAU_KB);
    /* The field API kept answering. */
    assert_true(f.api_ok > 0);
    assert_int_equal(f.api_failed, 0);

    /* Every event answered 2xx is in the inbox, exactly once. */
    int *seen = xcalloc(f.n_events, sizeof(*seen));
    inbox_counts(f.first, f.n_events, seen);
    for (size_t i = 0; i < f.n_events; i++) {
        assert_int_equal(f.acked[i], 1);
        assert_int_equal(seen[i], 1);
    }
    free(seen);
    free(f.acked);
    pthread_mutex_destroy(&f.lock);
}

/* ---- a locked and a full database ---- */

struct locked_call {
    char *body;
    struct http_test_response resp;
    int64_t took_ms;
};

static void *post_while_locked(void *arg)
{
    struct locked_call *c = arg;
    int64_t start = clock_mono_ms();
    stack_hubspot_webhook_response(&st, c->body, STACK_HUBSPOT_SECRET,
                                   clock_now_ms(), &c->resp);
    c->took_ms = clock_mono_ms() - start;
    return NULL;
}

/* Another process holds SQLite's write lock (this test, with BEGIN
 * IMMEDIATE): the delivery cannot be made durable, so it is answered 503
 * with Retry-After, never 2xx, while the field API still reads. Sent
 * again once the lock is gone, it is stored once. */
static void test_locked_database_answers_503(void **state)
{
    int64_t first = take_events(3);
    struct locked_call call = {.body = delivery(first, 3, 8)};
    sqlite3 *db = NULL;
    pthread_t thread;
    int seen[3];

    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_int_equal(sqlite3_open(st.db, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    pthread_create(&thread, NULL, post_while_locked, &call);

    long status;
    json_decref(
        stack_api(&st, st.admin, "GET", "/api/v1/deals", NULL, &status));
    assert_int_equal(status, 200);
    pthread_join(thread, NULL);
    assert_int_equal(call.resp.status, 503);
    assert_string_equal(stack_text(call.resp.json, "error"), "busy");
    char *retry = http_test_header(&call.resp, "Retry-After");
    assert_non_null(retry);
    free(retry);
    http_test_response_free(&call.resp);
    /* Inside HubSpot's 5 s receiver deadline. */
    assert_true(call.took_ms < 5000);

    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(stack_hubspot_webhook(&st, call.body, STACK_HUBSPOT_SECRET,
                                           clock_now_ms()),
                     200);
    inbox_counts(first, 3, seen);
    for (int i = 0; i < 3; i++)
        assert_int_equal(seen[i], 1);
    free(call.body);
}

/* A full disk. This machine cannot mount a small file system without
 * root's tricks, so serve runs with --max-db-pages (SQLite's
 * max_page_count, set on every connection) at the database's current
 * size: a write that needs a new page fails with SQLITE_FULL, exactly as
 * on a full disk. The delivery is answered 503, never 2xx, and stores
 * nothing; an edit is answered 503 too. With room again it is taken. */
static void test_full_disk_answers_503(void **state)
{
    static char pages_text[32];
    int64_t first = take_events(FLOOD_EVENTS);
    char *body = delivery(first, FLOOD_EVENTS, 8000);
    struct http_test_response resp;
    int *seen = xcalloc(FLOOD_EVENTS, sizeof(*seen));

    assert_true(stack_settled(&st, STACK_WAIT_MS));
    int64_t pages = stack_db_pages(&st);
    assert_true(pages > 0);
    snprintf(pages_text, sizeof(pages_text), "%" PRId64, pages);
    const char *cap[] = {"--max-db-pages", pages_text, NULL};
    assert_true(stack_restart_serve(&st, cap));

    assert_true(stack_hubspot_webhook_response(&st, body, STACK_HUBSPOT_SECRET,
                                               clock_now_ms(), &resp));
    assert_int_equal(resp.status, 503);
    assert_string_equal(stack_text(resp.json, "error"), "busy");
    char *retry = http_test_header(&resp, "Retry-After");
    assert_non_null(retry);
    free(retry);
    http_test_response_free(&resp);
    inbox_counts(first, FLOOD_EVENTS, seen);
    for (int i = 0; i < FLOOD_EVENTS; i++)
        assert_int_equal(seen[i], 0);

    assert_true(stack_restart_serve(&st, NULL));
    assert_int_equal(
        stack_hubspot_webhook(&st, body, STACK_HUBSPOT_SECRET, clock_now_ms()),
        200);
    inbox_counts(first, FLOOD_EVENTS, seen);
    for (int i = 0; i < FLOOD_EVENTS; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_announced_body_too_large),
        cmocka_unit_test(test_sent_body_too_large),
        cmocka_unit_test(test_headers_too_large),
        cmocka_unit_test(test_headers_past_connection_memory),
        cmocka_unit_test(test_batch_too_long),
        cmocka_unit_test(test_json_too_deep),
        cmocka_unit_test(test_slow_clients_cut_off),
        cmocka_unit_test(test_too_many_connections),
        cmocka_unit_test(test_webhook_flood_is_shed),
        cmocka_unit_test(test_locked_database_answers_503),
        cmocka_unit_test(test_full_disk_answers_503),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

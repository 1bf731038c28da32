/* A background reader of a server-sent event stream over libcurl: one
 * thread receives the text, tests look through the events it holds. */
#include "sse_test.h"

#include "http_test.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct sse_test {
    CURL *curl;
    struct curl_slist *headers;
    pthread_t thread;
    pthread_mutex_t lock;
    struct buf text; /* everything received so far */
    atomic_bool stop;
};

static size_t on_data(char *data, size_t size, size_t n, void *ctx)
{
    struct sse_test *sse = ctx;

    pthread_mutex_lock(&sse->lock);
    buf_append(&sse->text, data, size * n);
    pthread_mutex_unlock(&sse->lock);
    return size * n;
}

/* Aborts the transfer once the test closes the reader. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    struct sse_test *sse = ctx;
    return atomic_load(&sse->stop) ? 1 : 0;
}

static void *reader_main(void *arg)
{
    struct sse_test *sse = arg;
    curl_easy_perform(sse->curl);
    return NULL;
}

static bool opened(void *ctx)
{
    struct sse_test *sse = ctx;

    pthread_mutex_lock(&sse->lock);
    bool ok = sse->text.data && strstr(sse->text.data, ": connected\n");
    pthread_mutex_unlock(&sse->lock);
    return ok;
}

struct sse_test *sse_test_open(const char *url, const char *token)
{
    struct sse_test *sse = xcalloc(1, sizeof(*sse));
    char *auth = xasprintf("Authorization: Bearer %s", token);

    pthread_mutex_init(&sse->lock, NULL);
    sse->curl = curl_easy_init();
    sse->headers = curl_slist_append(NULL, auth);
    free(auth);
    curl_easy_setopt(sse->curl, CURLOPT_URL, url);
    curl_easy_setopt(sse->curl, CURLOPT_HTTPHEADER, sse->headers);
    curl_easy_setopt(sse->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(sse->curl, CURLOPT_WRITEDATA, sse);
    curl_easy_setopt(sse->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(sse->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(sse->curl, CURLOPT_XFERINFODATA, sse);
    curl_easy_setopt(sse->curl, CURLOPT_NOSIGNAL, 1L);
    if (pthread_create(&sse->thread, NULL, reader_main, sse) != 0) {
        curl_easy_cleanup(sse->curl);
        curl_slist_free_all(sse->headers);
        pthread_mutex_destroy(&sse->lock);
        free(sse);
        return NULL;
    }
    if (!http_test_poll(opened, sse, HTTP_TEST_TIMEOUT_MS)) {
        sse_test_close(sse);
        return NULL;
    }
    return sse;
}

/* True when the event's data names the deal and holds the value. */
static bool data_matches(const char *data, const char *id, const char *field,
                         const char *value)
{
    json_t *obj = json_loads(data, 0, NULL);
    const char *got_id = json_string_value(json_object_get(obj, "id"));
    json_t *got = json_object_get(obj, field);
    bool match = got_id && strcmp(got_id, id) == 0 && got &&
                 (value ? json_is_string(got) &&
                              strcmp(json_string_value(got), value) == 0
                        : json_is_null(got));
    json_decref(obj);
    return match;
}

/* Looks through the complete events ("\n\n"-terminated blocks) of text. */
static bool text_has(const char *text, const char *type, const char *id,
                     const char *field, const char *value)
{
    const char *block = text;
    const char *end;
    bool found = false;

    while (!found && (end = strstr(block, "\n\n")) != NULL) {
        char *copy = xstrndup(block, (size_t)(end - block));
        const char *event = NULL;
        const char *data = NULL;
        for (char *line = copy; line && *line;) {
            char *next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            if (strncmp(line, "event: ", 7) == 0)
                event = line + 7;
            else if (strncmp(line, "data: ", 6) == 0)
                data = line + 6;
            line = next;
        }
        found = event && data && strcmp(event, type) == 0 &&
                data_matches(data, id, field, value);
        free(copy);
        block = end + 2;
    }
    return found;
}

bool sse_test_has(struct sse_test *sse, const char *type, const char *id,
                  const char *field, const char *value)
{
    pthread_mutex_lock(&sse->lock);
    char *text = xstrdup(sse->text.data ? sse->text.data : "");
    pthread_mutex_unlock(&sse->lock);
    bool found = text_has(text, type, id, field, value);
    free(text);
    return found;
}

void sse_test_close(struct sse_test *sse)
{
    if (!sse)
        return;
    atomic_store(&sse->stop, true);
    pthread_join(sse->thread, NULL);
    curl_easy_cleanup(sse->curl);
    curl_slist_free_all(sse->headers);
    buf_free(&sse->text);
    pthread_mutex_destroy(&sse->lock);
    free(sse);
}

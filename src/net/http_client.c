/* Blocking HTTP client over libcurl handles kept per client, so keep-alive
 * connections are reused between calls of one thread: an easy handle for
 * one request at a time, a multi handle for several at once. */
#include "net/http_client.h"

#include "base/alloc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

struct http_client {
    CURL *curl;   /* for one request at a time */
    CURLM *multi; /* for several at once, made on first use */
    CURL **slots;
    size_t n_slots;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static char *ca_file;

void http_client_set_ca_file(const char *path)
{
    free(ca_file);
    ca_file = path ? xstrdup(path) : NULL;
}

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_client *http_client_new(void)
{
    pthread_once(&global_once, global_init);
    struct http_client *client = xcalloc(1, sizeof(*client));
    client->curl = curl_easy_init();
    if (!client->curl)
        abort();
    return client;
}

void http_client_free(struct http_client *client)
{
    if (!client)
        return;
    curl_easy_cleanup(client->curl);
    for (size_t i = 0; i < client->n_slots; i++)
        curl_easy_cleanup(client->slots[i]);
    free(client->slots);
    if (client->multi)
        curl_multi_cleanup(client->multi);
    free(client);
}

static size_t on_body(char *data, size_t size, size_t count, void *ctx)
{
    buf_append(ctx, data, size * count);
    return size * count;
}

/* Keeps only the headers of the final answer (after any 100 Continue). */
static size_t on_header(char *data, size_t size, size_t count, void *ctx)
{
    struct buf *headers = ctx;
    size_t len = size * count;

    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
        buf_reset(headers);
    buf_append(headers, data, len);
    return len;
}

/* Sets an easy handle up for one request; *list (the header list) is the
 * caller's to free once the request is done. */
static void setup_easy(CURL *curl, const char *method, const char *url,
                       const char *const *headers, const char *body,
                       size_t body_len, long timeout_ms,
                       struct http_client_response *out,
                       struct curl_slist **list)
{
    memset(out, 0, sizeof(*out));
    curl_easy_reset(curl);
    *list = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        *list = curl_slist_append(*list, headers[i]);
    *list = curl_slist_append(*list, "Expect:");

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, *list);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out->headers);
    if (ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)body_len);
    }
}

/* The outcome of a finished transfer. */
static fs_result finish_easy(CURL *curl, CURLcode rc,
                             struct http_client_response *out)
{
    fs_result result = FS_OK;

    if (rc == CURLE_OPERATION_TIMEDOUT)
        result = FS_ERR_TIMEOUT;
    else if (rc != CURLE_OK)
        result = FS_ERR_UNAVAILABLE;
    else
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    if (!out->body.data)
        buf_append(&out->body, "", 0);
    return result;
}

fs_result http_client_request(struct http_client *client, const char *method,
                              const char *url, const char *const *headers,
                              const char *body, size_t body_len,
                              long timeout_ms, struct http_client_response *out)
{
    struct curl_slist *list = NULL;

    setup_easy(client->curl, method, url, headers, body, body_len, timeout_ms,
               out, &list);
    fs_result result =
        finish_easy(client->curl, curl_easy_perform(client->curl), out);
    curl_slist_free_all(list);
    return result;
}

/* The easy handle for the i-th parallel slot, made on first use; they
 * stay with the client so their connections are reused. */
static CURL *slot_handle(struct http_client *client, size_t i)
{
    if (i >= client->n_slots) {
        client->slots =
            xrealloc(client->slots, (i + 1) * sizeof(*client->slots));
        for (size_t j = client->n_slots; j <= i; j++) {
            client->slots[j] = curl_easy_init();
            if (!client->slots[j])
                abort();
        }
        client->n_slots = i + 1;
    }
    return client->slots[i];
}

void http_client_request_many(struct http_client *client,
                              struct http_client_call *calls, size_t n,
                              size_t max_parallel, long timeout_ms)
{
    size_t parallel = max_parallel < 1 ? 1 : max_parallel;
    struct curl_slist **lists = xcalloc(parallel, sizeof(*lists));
    ssize_t *call_of = xcalloc(parallel, sizeof(*call_of));
    size_t *slot_ids = xcalloc(parallel, sizeof(*slot_ids));
    size_t next = 0, running = 0;

    if (!client->multi) {
        client->multi = curl_multi_init();
        if (!client->multi)
            abort();
    }
    for (size_t i = 0; i < parallel; i++) {
        call_of[i] = -1;
        slot_ids[i] = i;
    }

    while (next < n || running > 0) {
        /* Fill free slots. */
        for (size_t i = 0; i < parallel && next < n; i++) {
            if (call_of[i] >= 0)
                continue;
            struct http_client_call *c = &calls[next];
            CURL *curl = slot_handle(client, i);
            setup_easy(curl, c->method, c->url, c->headers, c->body,
                       c->body_len, timeout_ms, &c->resp, &lists[i]);
            curl_easy_setopt(curl, CURLOPT_PRIVATE, &slot_ids[i]);
            curl_multi_add_handle(client->multi, curl);
            call_of[i] = (ssize_t)next++;
            running++;
        }

        int still = 0;
        curl_multi_perform(client->multi, &still);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(client->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            size_t *slot = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &slot);
            size_t i = *slot;
            struct http_client_call *c = &calls[call_of[i]];
            c->result =
                finish_easy(msg->easy_handle, msg->data.result, &c->resp);
            curl_multi_remove_handle(client->multi, msg->easy_handle);
            curl_slist_free_all(lists[i]);
            lists[i] = NULL;
            call_of[i] = -1;
            running--;
        }
        if (running > 0 && still > 0)
            curl_multi_poll(client->multi, NULL, 0, 100, NULL);
    }
    free(lists);
    free(call_of);
    free(slot_ids);
}

/* Lines end in CRLF, or in a bare LF from a lenient server (curl takes
 * both); the value is trimmed of blanks at both ends. */
char *http_client_response_header(const struct http_client_response *resp,
                                  const char *name)
{
    size_t name_len = strlen(name);
    const char *line = resp->headers.data;

    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > name_len && line[name_len] == ':' &&
            strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            const char *v_end = line + len;
            while (v < v_end && (*v == ' ' || *v == '\t'))
                v++;
            while (v_end > v &&
                   (v_end[-1] == '\r' || v_end[-1] == ' ' || v_end[-1] == '\t'))
                v_end--;
            return xstrndup(v, (size_t)(v_end - v));
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

void http_client_response_free(struct http_client_response *resp)
{
    buf_free(&resp->body);
    buf_free(&resp->headers);
}

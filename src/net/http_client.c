/* Blocking HTTP client over a libcurl easy handle kept per client, so
 * keep-alive connections are reused between calls of one thread. */
#include "net/http_client.h"

#include "base/alloc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_client {
    CURL *curl;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

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

fs_result http_client_request(struct http_client *client, const char *method,
                              const char *url, const char *const *headers,
                              const char *body, size_t body_len,
                              long timeout_ms, struct http_client_response *out)
{
    CURL *curl = client->curl;
    struct curl_slist *list = NULL;
    fs_result result = FS_OK;

    memset(out, 0, sizeof(*out));
    curl_easy_reset(curl);
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    list = curl_slist_append(list, "Expect:");

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out->headers);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)body_len);
    }

    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        result = FS_ERR_TIMEOUT;
    else if (rc != CURLE_OK)
        result = FS_ERR_UNAVAILABLE;
    else
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(list);
    if (!out->body.data)
        buf_append(&out->body, "", 0);
    return result;
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

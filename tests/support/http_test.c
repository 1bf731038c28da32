/* Blocking HTTP helpers and condition polling for integration tests,
 * over the project's own HTTP client. */
#include "http_test.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "net/http_client.h"

#include <stdlib.h>
#include <string.h>

bool http_test_request(const char *method, const char *url,
                       const char *const *headers, const char *body,
                       struct http_test_response *out)
{
    struct http_client *client = http_client_new();
    struct http_client_response resp;

    memset(out, 0, sizeof(*out));
    fs_result r = http_client_request(client, method, url, headers, body,
                                      body ? strlen(body) : 0,
                                      HTTP_TEST_TIMEOUT_MS, &resp);
    out->status = r == FS_OK ? resp.status : 0;
    out->body_len = resp.body.len;
    out->body = xstrndup(resp.body.data ? resp.body.data : "", resp.body.len);
    out->headers =
        xstrndup(resp.headers.data ? resp.headers.data : "", resp.headers.len);
    if (out->body_len > 0)
        out->json = json_loadb(out->body, out->body_len, 0, NULL);
    http_client_response_free(&resp);
    http_client_free(client);
    return r == FS_OK;
}

json_t *http_test_json(const char *method, const char *url,
                       const char *const *headers, const json_t *body,
                       long *status)
{
    const char *all[16];
    size_t n = 0;
    struct http_test_response resp;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    all[n++] = "Content-Type: application/json";
    for (size_t i = 0; headers && headers[i] && n < 15; i++)
        all[n++] = headers[i];
    all[n] = NULL;
    http_test_request(method, url, all, text, &resp);
    json_t *json = json_incref(resp.json);
    *status = resp.status;
    http_test_response_free(&resp);
    free(text);
    return json;
}

char *http_test_header(const struct http_test_response *resp, const char *name)
{
    struct http_client_response view = {0};
    view.headers.data = resp->headers;
    view.headers.len = resp->headers ? strlen(resp->headers) : 0;
    return http_client_response_header(&view, name);
}

void http_test_response_free(struct http_test_response *resp)
{
    free(resp->body);
    free(resp->headers);
    json_decref(resp->json);
    memset(resp, 0, sizeof(*resp));
}

bool http_test_poll(bool (*cond)(void *ctx), void *ctx, int64_t timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    for (;;) {
        if (cond(ctx))
            return true;
        if (clock_mono_ms() > deadline)
            return false;
        clock_sleep_ms(10);
    }
}

/* JSON over HTTP for the demo's clients: the field API as a rep or admin
 * would call it, and the simulator's control endpoint. */
#include "demo_internal.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

fs_result demo_http_json(struct http_client *http, const char *method,
                         const char *url, const char *token, json_t *body,
                         long *status_out, json_t **reply_out)
{
    struct http_client_response resp = {0};
    char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *headers[] = {"Content-Type: application/json",
                             "Accept: application/json", auth, NULL};

    if (reply_out)
        *reply_out = NULL;
    fs_result result = http_client_request(http, method, url, headers, text,
                                           text ? strlen(text) : 0,
                                           DEMO_HTTP_TIMEOUT_MS, &resp);
    if (result != FS_OK)
        goto out;
    *status_out = resp.status;
    if (reply_out && resp.body.len > 0)
        *reply_out = json_loadb(resp.body.data, resp.body.len, 0, NULL);

out:
    http_client_response_free(&resp);
    free(text);
    free(auth);
    return result;
}

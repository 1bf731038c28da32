/* HubSpot webhook signatures with every part attacker-controlled. The
 * input is lines: client secret, method, URL, X-HubSpot-Request-Timestamp,
 * X-HubSpot-Signature-v3, X-HubSpot-Signature, X-HubSpot-Signature-Version
 * (an empty line: the header is absent), then the body. Checks that the
 * URL form v3 hashes is stable, that a delivery signed with the right
 * secret verifies (v1 with any hex case, v2, v3 inside the allowed skew),
 * and that the given signatures never crash the check. */
#include "fuzz.h"

#include "base/alloc.h"
#include "providers/hubspot.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { H_TIMESTAMP, H_V3, H_SIG, H_VERSION, H_COUNT };

static const char *const header_names[H_COUNT] = {
    "X-HubSpot-Request-Timestamp",
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Signature",
    "X-HubSpot-Signature-Version",
};

struct headers {
    const char *values[H_COUNT];
};

static const char *on_header(const void *ctx, const char *name)
{
    const struct headers *h = ctx;

    return fuzz_header_value(header_names, h->values, H_COUNT, name);
}

/* What the check accepts as a timestamp: 1 to 18 digits. */
static bool plain_time(const char *s, int64_t *out)
{
    size_t n = s ? strspn(s, "0123456789") : 0;

    if (n == 0 || n > 18 || s[n] != '\0')
        return false;
    *out = strtoll(s, NULL, 10);
    return true;
}

static fs_result verify(const struct connection *conn,
                        const struct webhook_request *req,
                        const struct headers *h, int64_t now)
{
    struct webhook_request r = *req;

    r.header = on_header;
    r.header_ctx = h;
    return hubspot_provider.verify_webhook(conn, &r, now);
}

/* Signs the request each way with the right secret and checks each
 * verifies. */
static void check_signed(const struct connection *conn,
                         const struct webhook_request *req, const char *ts)
{
    int64_t now = 0;
    bool secret = conn->client_secret && *conn->client_secret;
    struct headers h = {{NULL}};
    char *uri = hubspot_uri_for_signature(req->url);
    char *v3 = hubspot_signature_v3(conn->client_secret, req->method, uri,
                                    req->body, req->body_len, ts ? ts : "");
    char *v1 =
        hubspot_signature_v1(conn->client_secret, req->body, req->body_len);
    char *v2 = hubspot_signature_v2(conn->client_secret, req->method, req->url,
                                    req->body, req->body_len);

    if (plain_time(ts, &now)) {
        h.values[H_TIMESTAMP] = ts;
        h.values[H_V3] = v3;
        FUZZ_CHECK(verify(conn, req, &h, now + HUBSPOT_MAX_SKEW_MS) ==
                       (secret ? FS_OK : FS_ERR_AUTH),
                   "a v3 signature made with the secret verifies");
        FUZZ_CHECK(verify(conn, req, &h, now + HUBSPOT_MAX_SKEW_MS + 1) ==
                       FS_ERR_AUTH,
                   "a v3 signature past the skew is refused");
    }

    memset(&h, 0, sizeof(h));
    for (char *p = v1; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    h.values[H_SIG] = v1;
    FUZZ_CHECK(verify(conn, req, &h, 0) == (secret ? FS_OK : FS_ERR_AUTH),
               "a v1 signature in upper case verifies");
    h.values[H_SIG] = v2;
    h.values[H_VERSION] = "v2";
    FUZZ_CHECK(verify(conn, req, &h, 0) == (secret ? FS_OK : FS_ERR_AUTH),
               "a v2 signature made with the secret verifies");
    h.values[H_VERSION] = "v1";
    FUZZ_CHECK(verify(conn, req, &h, 0) == FS_ERR_AUTH ||
                   (!*req->method && !*req->url),
               "a v2 signature does not pass as v1");
    free(v1);
    free(v2);
    free(v3);
    free(uri);
}

static void check_uri(const char *url)
{
    char *once = hubspot_uri_for_signature(url);
    char *twice = hubspot_uri_for_signature(once);

    FUZZ_CHECK(strlen(once) <= strlen(url), "decoding never lengthens a URL");
    FUZZ_CHECK(strcmp(once, twice) == 0, "the signed URL form is stable");
    free(once);
    free(twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    char *secret = fuzz_take(&in, "\n");
    char *method = fuzz_take(&in, "\n");
    char *url = fuzz_take(&in, "\n");
    char *given[H_COUNT];
    struct headers h;
    size_t body_len = 0;

    for (int i = 0; i < H_COUNT; i++) {
        given[i] = fuzz_take(&in, "\n");
        h.values[i] = given[i] && *given[i] ? given[i] : NULL;
    }
    char *body = fuzz_rest(&in, &body_len);
    struct connection conn = {
        .provider = "hubspot",
        .client_secret = secret ? secret : "",
    };
    struct webhook_request req = {
        .method = method ? method : "POST",
        .url = url ? url : "",
        .body = body,
        .body_len = body_len,
    };
    int64_t now = 0;

    check_uri(req.url);
    /* The signatures as given, at their own time and far from it. */
    plain_time(h.values[H_TIMESTAMP], &now);
    fs_result r = verify(&conn, &req, &h, now);
    FUZZ_CHECK(r == FS_OK || r == FS_ERR_AUTH, "a check passes or fails");
    verify(&conn, &req, &h, INT64_MAX / 2);
    check_signed(&conn, &req, h.values[H_TIMESTAMP]);

    for (int i = 0; i < H_COUNT; i++)
        free(given[i]);
    free(body);
    free(url);
    free(method);
    free(secret);
    return 0;
}

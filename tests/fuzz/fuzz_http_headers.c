/* The HTTP header handling of our own code that needs no socket: reading
 * a header out of an answer's raw header block (http_client_response_
 * header) and as a number (provider_header_int), as every provider does
 * with rate-limit and Retry-After headers, and each value read as Attio's
 * Retry-After (seconds or an HTTP-date, attio_retry_after). The input's first
 * line is the name looked up, the rest the raw block as the CRM (or a proxy)
 * sent it. Request headers are parsed by libmicrohttpd, not by us: our server
 * code only looks them up by name, which the signature target drives. */
#include "fuzz.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "net/http_client.h"
#include "providers/attio.h"
#include "providers/provider_call.h"

#include <stdlib.h>
#include <string.h>

/* Seconds up to a day give that long from now; any other value starting
 * with a digit gives 0 (not a wait); a date gives its time. */
static void check_retry_after(const char *value)
{
    const int64_t now = 1700000000000;
    int64_t until = attio_retry_after(value, now);
    size_t digits = strspn(value, "0123456789");

    if (digits == 0)
        return;
    long secs = strtol(value, NULL, 10);
    if (value[digits] == '\0' && secs <= 86400)
        FUZZ_CHECK(until == now + secs * 1000,
                   "a wait in seconds is that long from now");
    else
        FUZZ_CHECK(until == 0, "a number with a tail, or past a day, is no "
                               "wait");
}

static void look_up(const struct http_client_response *resp, const char *name)
{
    char *value = http_client_response_header(resp, name);

    if (value) {
        size_t n = strlen(value);
        FUZZ_CHECK(!strchr(value, '\n'), "a header value is one line");
        FUZZ_CHECK(value[0] != ' ' && value[0] != '\t',
                   "a header value starts after the blanks");
        FUZZ_CHECK(n == 0 || !strchr(" \t\r", value[n - 1]),
                   "a header value ends before the blanks and line end");
        FUZZ_CHECK(strlen(value) < resp->headers.len,
                   "a header value comes from the block");
        check_retry_after(value);
    }
    int number = provider_header_int(resp, name, -7);
    if (!value)
        FUZZ_CHECK(number == -7, "an absent header gives the fallback");
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {
        "Retry-After",
        "X-HubSpot-RateLimit-Remaining",
        "X-HubSpot-RateLimit-Daily-Remaining",
        "X-HubSpot-RateLimit-Interval-Milliseconds",
        "Content-Type",
    };
    struct fuzz_input in = {data, size};
    char *name = fuzz_take(&in, "\n");
    size_t len = 0;
    char *block = fuzz_rest(&in, &len);
    struct http_client_response resp = {0};

    buf_append(&resp.headers, block, len);
    if (name && *name)
        look_up(&resp, name);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        look_up(&resp, names[i]);
    http_client_response_free(&resp);
    free(block);
    free(name);
    return 0;
}

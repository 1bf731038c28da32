/* Unit tests of reading headers out of an answer's raw header block, as
 * the providers read rate-limit and Retry-After headers; no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/buf.h"
#include "net/http_client.h"
#include "providers/provider_call.h"

#include <stdlib.h>
#include <string.h>

static void with_headers(struct http_client_response *resp, const char *raw)
{
    memset(resp, 0, sizeof(*resp));
    buf_append_str(&resp->headers, raw);
}

static void assert_header(const struct http_client_response *resp,
                          const char *name, const char *want)
{
    char *got = http_client_response_header(resp, name);

    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_crlf_lines_any_case(void **state)
{
    struct http_client_response resp;

    with_headers(&resp, "HTTP/1.1 429 Too Many Requests\r\n"
                        "Content-Type: application/json\r\n"
                        "x-hubspot-ratelimit-remaining:\t0\r\n"
                        "Retry-After: 10\r\n\r\n");
    assert_header(&resp, "content-type", "application/json");
    assert_header(&resp, "X-HubSpot-RateLimit-Remaining", "0");
    assert_int_equal(provider_header_int(&resp, "Retry-After", -1), 10);
    assert_header(&resp, "Retry", NULL);
    assert_int_equal(provider_header_int(&resp, "Absent", -1), -1);
    http_client_response_free(&resp);
}

/* A lenient server ends lines with a bare LF, or pads a value: each header
 * is still found, and a padded number still reads as a number. */
static void test_bare_lf_and_padding(void **state)
{
    struct http_client_response resp;

    with_headers(&resp, "HTTP/1.0 200 OK\n"
                        "X-HubSpot-RateLimit-Remaining: 42 \n"
                        "Retry-After:  3\t\r\n"
                        "Empty:   \r\n\n");
    assert_header(&resp, "X-HubSpot-RateLimit-Remaining", "42");
    assert_int_equal(
        provider_header_int(&resp, "X-HubSpot-RateLimit-Remaining", -1), 42);
    assert_int_equal(provider_header_int(&resp, "Retry-After", -1), 3);
    assert_header(&resp, "Empty", "");
    http_client_response_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crlf_lines_any_case),
        cmocka_unit_test(test_bare_lf_and_padding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

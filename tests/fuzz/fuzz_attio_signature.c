/* Attio webhook signatures with every part attacker-controlled. The input
 * is lines: the webhook secret, Attio-Signature, X-Attio-Signature (an
 * empty line: the header is absent), then the body. Checks that the given
 * signatures never crash the check and pass only when they are the
 * body's HMAC under the secret, that a delivery signed with the secret
 * verifies (in either header, in either hex case), and that one signed
 * with another secret, or cut short, does not. */
#include "fuzz.h"

#include "base/alloc.h"
#include "providers/attio.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { H_SIG, H_X_SIG, H_COUNT };

static const char *const header_names[H_COUNT] = {
    "Attio-Signature",
    "X-Attio-Signature",
};

struct headers {
    const char *values[H_COUNT];
};

static const char *on_header(const void *ctx, const char *name)
{
    const struct headers *h = ctx;

    return fuzz_header_value(header_names, h->values, H_COUNT, name);
}

static fs_result verify(char *secret, const char *body, size_t len,
                        const char *sig, const char *x_sig)
{
    struct connection conn = {
        .provider = "attio",
        .client_secret = secret,
    };
    struct headers h = {{sig, x_sig}};
    struct webhook_request req = {
        .method = "POST",
        .url = "https://fieldsync.example/webhooks/attio/1",
        .body = body,
        .body_len = len,
        .header = on_header,
        .header_ctx = &h,
    };

    return attio_provider.verify_webhook(&conn, &req, 0);
}

static void check_signed(char *secret, const char *body, size_t len)
{
    bool keyed = *secret != '\0';
    fs_result want = keyed ? FS_OK : FS_ERR_AUTH;
    char *sig = attio_signature(secret, body, len);
    char *other_secret = xasprintf("%s!", secret);
    char *other = attio_signature(other_secret, body, len);

    FUZZ_CHECK(strlen(sig) == 64 && strspn(sig, "0123456789abcdef") == 64,
               "a signature is 64 lowercase hex digits");
    FUZZ_CHECK(verify(secret, body, len, sig, NULL) == want,
               "a delivery signed with the secret verifies");
    FUZZ_CHECK(verify(secret, body, len, NULL, sig) == want,
               "the signature verifies under X-Attio-Signature too");
    FUZZ_CHECK(verify(secret, body, len, other, NULL) == FS_ERR_AUTH,
               "a delivery signed with another secret is refused");
    for (char *p = sig; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    FUZZ_CHECK(verify(secret, body, len, sig, NULL) == want,
               "a signature in upper case verifies");
    sig[63] = '\0';
    FUZZ_CHECK(verify(secret, body, len, sig, NULL) == FS_ERR_AUTH,
               "a signature cut short is refused");
    FUZZ_CHECK(verify(secret, body, len, NULL, NULL) == FS_ERR_AUTH,
               "an unsigned delivery is refused");
    free(other);
    free(other_secret);
    free(sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    char *secret = fuzz_take(&in, "\n");
    char *given[H_COUNT];
    const char *values[H_COUNT];
    size_t len = 0;

    for (int i = 0; i < H_COUNT; i++) {
        given[i] = fuzz_take(&in, "\n");
        values[i] = given[i] && *given[i] ? given[i] : NULL;
    }
    char *body = fuzz_rest(&in, &len);
    char empty[] = "";
    char *key = secret ? secret : empty;

    /* The signatures as given pass only when they are the HMAC. */
    fs_result r = verify(key, body, len, values[H_SIG], values[H_X_SIG]);
    FUZZ_CHECK(r == FS_OK || r == FS_ERR_AUTH, "a check passes or fails");
    if (r == FS_OK) {
        const char *used = values[H_SIG] ? values[H_SIG] : values[H_X_SIG];
        char *sig = attio_signature(key, body, len);
        FUZZ_CHECK(*key && strcasecmp(used, sig) == 0,
                   "only the body's HMAC under the secret passes");
        free(sig);
    }
    check_signed(key, body, len);

    for (int i = 0; i < H_COUNT; i++)
        free(given[i]);
    free(body);
    free(secret);
    return 0;
}

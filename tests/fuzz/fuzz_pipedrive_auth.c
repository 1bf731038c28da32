/* The HTTP Basic credentials Pipedrive sends its webhooks with, every
 * part attacker-controlled. The input is lines: the webhook's user, its
 * password, then the Authorization header (an empty line: absent); the
 * rest is the body. Checks that a given header passes only when it is
 * "Basic " (any case, any spaces after it) and the credentials' base64,
 * that the header we register verifies in those forms, and that another
 * password, a header cut short, none, or missing credentials on our side
 * do not. */
#include "fuzz.h"

#include "base/alloc.h"
#include "providers/pipedrive.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *on_header(const void *ctx, const char *name)
{
    return strcasecmp(name, "Authorization") == 0 ? (const char *)ctx : NULL;
}

static fs_result verify(char *user, char *password, const char *given,
                        const char *body, size_t len)
{
    struct connection conn = {
        .provider = "pipedrive",
        .webhook_user = user,
        .client_secret = password,
    };
    struct webhook_request req = {
        .method = "POST",
        .url = "https://fieldsync.example/webhooks/pipedrive/1",
        .body = body,
        .body_len = len,
        .header = on_header,
        .header_ctx = given,
    };

    return pipedrive_provider.verify_webhook(&conn, &req, 0);
}

static void check_built(char *user, char *password, const char *body,
                        size_t len)
{
    bool set = *user && *password;
    fs_result want = set ? FS_OK : FS_ERR_AUTH;
    char *header = pipedrive_basic_auth(user, password);
    char *other_password = xasprintf("%s!", password);
    char *other = pipedrive_basic_auth(user, other_password);
    char *spaced = xasprintf("basic   %s", header + 6);

    FUZZ_CHECK(strncmp(header, "Basic ", 6) == 0 &&
                   strspn(header + 6,
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl"
                          "mnopqrstuvwxyz0123456789+/=") == strlen(header + 6),
               "the header is Basic and base64");
    FUZZ_CHECK(verify(user, password, header, body, len) == want,
               "the credentials we registered verify");
    FUZZ_CHECK(verify(user, password, spaced, body, len) == want,
               "the scheme in any case, with spaces after it, verifies");
    FUZZ_CHECK(verify(user, password, other, body, len) == FS_ERR_AUTH,
               "another password is refused");
    header[strlen(header) - 1] = '\0';
    FUZZ_CHECK(verify(user, password, header, body, len) == FS_ERR_AUTH,
               "a header cut short is refused");
    FUZZ_CHECK(verify(user, password, NULL, body, len) == FS_ERR_AUTH,
               "a delivery without credentials is refused");
    free(spaced);
    free(other);
    free(other_password);
    free(header);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    char *user = fuzz_take(&in, "\n");
    char *password = fuzz_take(&in, "\n");
    char *given = fuzz_take(&in, "\n");
    size_t len = 0;
    char *body = fuzz_rest(&in, &len);
    char empty_user[] = "", empty_password[] = "";
    char *u = user ? user : empty_user;
    char *p = password ? password : empty_password;
    const char *g = given && *given ? given : NULL;

    /* The header as given passes only when it is ours. */
    fs_result r = verify(u, p, g, body, len);
    FUZZ_CHECK(r == FS_OK || r == FS_ERR_AUTH, "a check passes or fails");
    if (r == FS_OK) {
        char *ours = pipedrive_basic_auth(u, p);
        const char *b64 = g + 6;
        while (*b64 == ' ')
            b64++;
        FUZZ_CHECK(*u && *p && strncasecmp(g, "Basic ", 6) == 0 &&
                       strcmp(b64, ours + 6) == 0,
                   "only our credentials pass");
        free(ours);
    }
    check_built(u, p, body, len);

    free(body);
    free(given);
    free(password);
    free(user);
    return 0;
}

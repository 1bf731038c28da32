/* GET /api/v1/deals query strings (field_api_parse_query), the raw URL as
 * a client sent it. Checks that a query is taken whole or refused with a
 * 400 naming the problem, and that what is taken keeps the limits. */
#include "fuzz.h"

#include "base/alloc.h"
#include "services/field_api.h"

#include <stdlib.h>
#include <string.h>

static void check_param(const char *value)
{
    FUZZ_CHECK(!value || strlen(value) <= FIELD_API_MAX_PARAM,
               "a parameter taken keeps the length limit");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    /* Clients send the path too; a bare query gets one. */
    char *url =
        strchr(text, '?') ? xstrdup(text) : xasprintf("/api/v1/deals?%s", text);
    struct field_api_query q;
    struct api_error err = {0};

    fs_result r = field_api_parse_query(url, &q, &err);
    if (r == FS_OK) {
        check_param(q.owner);
        check_param(q.stage);
        check_param(q.cursor);
        FUZZ_CHECK(q.limit >= 1 && q.limit <= FIELD_API_MAX_LIMIT,
                   "a limit taken is in range");
        FUZZ_CHECK(q.updated_since >= 0, "updated_since is never negative");
        FUZZ_CHECK(!q.cursor ||
                       (*q.cursor && strlen(q.cursor) <= API_ID_MAX_LEN),
                   "a cursor taken is one the API could return");
    } else {
        FUZZ_CHECK(err.status == 400 && err.code && err.message,
                   "a refused query is a 400 with a code and a message");
        FUZZ_CHECK(!q.owner && !q.stage && !q.cursor,
                   "a refused query keeps nothing");
    }
    field_api_query_clear(&q);
    api_error_clear(&err);
    free(url);
    free(text);
    return 0;
}

/* The field API's request bodies: the shared JSON gate every /api/v1
 * body passes (api_json_parse_object: depth, string lengths, one object)
 * and the deal edit read from it (field_api_parse_edit). Checks that a
 * body is taken whole or refused with an error, that what is taken keeps
 * the limits, and that every value taken is canonical. */
#include "fuzz.h"

#include "base/alloc.h"
#include "base/json_text.h"
#include "model/deal.h"
#include "services/api_call.h"
#include "services/field_api.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void check_error(const struct api_error *err)
{
    FUZZ_CHECK(err->status >= 400 && err->status < 500 && err->code &&
                   err->message,
               "a refusal is a client error with a code and a message");
}

static void check_object(const char *body, size_t len)
{
    struct api_error err = {0};
    json_t *root = NULL;

    fs_result r = api_json_parse_object(body, len, &root, &err);
    if (r == FS_OK) {
        FUZZ_CHECK(json_is_object(root), "the body taken is an object");
        FUZZ_CHECK(json_text_depth(body, len) <= API_MAX_DEPTH,
                   "the body taken is within the depth limit");
        FUZZ_CHECK(!err.code, "a body taken has no error");
    } else {
        FUZZ_CHECK(!root, "a body refused is not handed out");
        check_error(&err);
    }
    json_decref(root);
    api_error_clear(&err);
}

static void check_edit(const char *body, size_t len)
{
    struct api_error err = {0};
    struct field_api_edit edit;

    fs_result r = field_api_parse_edit(body, len, &edit, &err);
    if (r == FS_OK) {
        size_t set = 0;
        for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
            set += edit.set[f];
            FUZZ_CHECK(edit.set[f] || !edit.values[f],
                       "only fields set carry values");
            if (!edit.values[f])
                continue;
            FUZZ_CHECK(strlen(edit.values[f]) <= deal_fields[f].max_len,
                       "a value taken keeps its field's length limit");
            FUZZ_CHECK(fuzz_is_canonical(f, edit.values[f]),
                       "a value taken is canonical");
        }
        FUZZ_CHECK(set == edit.count, "count is the number of fields set");
        FUZZ_CHECK(edit.client_time >= 0, "a client time is never negative");
    } else {
        check_error(&err);
        for (int f = 0; f < DEAL_FIELD_COUNT; f++)
            FUZZ_CHECK(!edit.set[f] && !edit.values[f],
                       "a refused edit sets nothing");
    }
    field_api_edit_clear(&edit);
    api_error_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_text(data, size);

    check_object(body, size);
    check_edit(body, size);
    free(body);
    return 0;
}

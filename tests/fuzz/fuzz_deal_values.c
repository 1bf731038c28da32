/* Deal values as reps, CRMs and seed files write them: the input, as
 * text, is canonicalised for every field (deal_field_canonical), as a
 * postcode (postcode_normalize) and as a location (location_parse), and
 * carried to HubSpot's form and back. Checks that the canonical form is a
 * fixed point (canonical twice is canonical once), keeps the field's
 * limit, and survives the trip through HubSpot unchanged. */
#include "fuzz.h"

#include "base/alloc.h"
#include "model/deal.h"
#include "model/postcode.h"
#include "providers/hubspot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_field(enum deal_field f, const char *text)
{
    char *once = NULL;
    char *twice = NULL;
    char *out = NULL;
    char *back = NULL;

    fs_result r = deal_field_canonical(f, text, &once);
    if (r != FS_OK) {
        FUZZ_CHECK(!once, "a refused value yields nothing");
        return;
    }
    if (!once) {
        FUZZ_CHECK(!*text, "only an empty value clears");
        return;
    }
    FUZZ_CHECK(*once, "a canonical value is never empty");
    FUZZ_CHECK(strlen(once) <= deal_fields[f].max_len,
               "a canonical value keeps its field's limit");
    FUZZ_CHECK(deal_field_canonical(f, once, &twice) == FS_OK && twice &&
                   strcmp(once, twice) == 0,
               "canonical twice is canonical once");

    FUZZ_CHECK(hubspot_value_out((int)f, once, &out) == FS_OK && out,
               "a canonical value has a HubSpot form");
    FUZZ_CHECK(hubspot_value_in((int)f, out, &back) == FS_OK && back &&
                   strcmp(back, once) == 0,
               "a value comes back from HubSpot as it went");
    free(back);
    free(out);
    free(twice);
    free(once);
}

static void check_postcode(const char *text)
{
    char *once = NULL;
    char *twice = NULL;

    if (postcode_normalize(text, &once) != FS_OK) {
        FUZZ_CHECK(!once, "a refused postcode yields nothing");
        return;
    }
    FUZZ_CHECK(once && *once && strlen(once) <= POSTCODE_MAX_LEN,
               "a postcode is within its limit");
    FUZZ_CHECK(postcode_normalize(once, &twice) == FS_OK &&
                   strcmp(once, twice) == 0,
               "a normalised postcode is a fixed point");
    free(twice);
    free(once);
}

static void check_location(const char *text)
{
    double lat, lng, lat2, lng2;

    if (location_parse(text, &lat, &lng) != FS_OK)
        return;
    FUZZ_CHECK(isfinite(lat) && isfinite(lng) && fabs(lat) <= 90 &&
                   fabs(lng) <= 180,
               "a location is on the globe");
    char *once = location_format(lat, lng);
    FUZZ_CHECK(location_parse(once, &lat2, &lng2) == FS_OK,
               "a formatted location parses");
    char *twice = location_format(lat2, lng2);
    FUZZ_CHECK(strcmp(once, twice) == 0, "a formatted location is stable");
    free(twice);
    free(once);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);

    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        check_field((enum deal_field)f, text);
    check_postcode(text);
    check_location(text);
    free(text);
    return 0;
}

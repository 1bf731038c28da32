/* Postcode centroid files as an admin uploads them
 * (territory_parse_centroids): CSV text with a header naming a postcode,
 * sector, district or zip column and latitude and longitude columns. Checks
 * that a file is taken whole, every centroid canonical and on the globe,
 * or refused with a client error naming the line. */
#include "fuzz.h"

#include "base/alloc.h"
#include "model/postcode.h"
#include "services/territory.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    struct store_centroid *list = NULL;
    size_t n = 0;
    struct territory_error err = {0};

    fs_result r = territory_parse_centroids(text, size, &list, &n, &err);
    if (r == FS_OK) {
        for (size_t i = 0; i < n; i++) {
            char *again = NULL;
            FUZZ_CHECK(list[i].lat >= -90 && list[i].lat <= 90 &&
                           list[i].lng >= -180 && list[i].lng <= 180,
                       "a centroid is on the globe");
            FUZZ_CHECK(postcode_normalize(list[i].postcode, &again) == FS_OK &&
                           strcmp(again, list[i].postcode) == 0,
                       "a centroid's postcode is canonical");
            free(again);
        }
    } else {
        FUZZ_CHECK(err.status >= 400 && err.status < 500 && err.code &&
                       err.message,
                   "a refused file is a client error with a message");
        FUZZ_CHECK(!list && n == 0, "a refused file yields nothing");
    }
    territory_centroids_free(list, n);
    territory_error_clear(&err);
    free(text);
    return 0;
}

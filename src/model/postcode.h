/* Postcodes and coordinates in one canonical form, used on every path a
 * postcode or location takes (field edits, CRM values, territory rules,
 * centroid tables), so two spellings of one place compare equal. */
#ifndef FIELDSYNC_MODEL_POSTCODE_H
#define FIELDSYNC_MODEL_POSTCODE_H

#include "base/result.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest canonical postcode kept. */
#define POSTCODE_MAX_LEN 16

/* The canonical form of a postcode or postcode prefix: upper case, one
 * space between words; a full UK unit written without its space gets it
 * ("m11ae" -> "M1 1AE"); a US ZIP that lost its leading zeros gets them
 * back ("2134" -> "02134"), ZIP+4 as "NNNNN-NNNN". FS_ERR_INVALID for
 * characters a postcode never has, FS_ERR_TOO_LARGE past the limit. The
 * caller frees *out. */
fs_result postcode_normalize(const char *text, char **out);

/* The canonical form of a territory's postcode rule or a centroid
 * table's key: a postcode or a prefix of one that names a place. A UK
 * unit ("M1 1AE"), sector ("M1 1"), district ("M1", "EC1A") or area
 * ("M"), of a real UK postcode area; or a US ZIP ("02134", "2134") or
 * ZIP+4. FS_ERR_INVALID for anything else ("banana", "ZZ99 9ZZ",
 * "M1 1AE 1AE"), FS_ERR_TOO_LARGE past the limit. The caller frees
 * *out. */
fs_result postcode_rule_normalize(const char *text, char **out);
/* What postcode_rule_normalize takes, for messages. */
#define POSTCODE_PLACE "a UK postcode, sector, district or area, or a US ZIP"

/* The ISO 3166-1 country a canonical postcode's form belongs to: "GB"
 * for a full UK unit, "US" for a ZIP or ZIP+4; NULL when the form says
 * nothing (an outward code alone, another country's). */
const char *postcode_country(const char *canonical);
/* Most prefixes postcode_prefixes gives. */
#define POSTCODE_MAX_PREFIXES 4

/* The places a canonical postcode falls under, most specific first, each
 * itself a canonical postcode: a UK unit "M1 1AE" gives "M1 1AE", its
 * sector "M1 1", district "M1" and area "M"; a sector or a district
 * gives itself and what is above it; a ZIP+4 "02134-1234" gives itself and
 * "02134"; anything else only itself. Prefixes end at word boundaries, so
 * "M11 1AA" never falls under "M1". Returns the count written to out. */
size_t postcode_prefixes(const char *canonical,
                         char out[POSTCODE_MAX_PREFIXES][POSTCODE_MAX_LEN + 1]);

/* Parses "lat,lng" (decimal degrees, WGS84) and checks the ranges. */
fs_result location_parse(const char *text, double *lat, double *lng);

/* The canonical "lat,lng" text, six decimals each. The caller frees. */
char *location_format(double lat, double lng);

#endif

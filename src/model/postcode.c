/* Postcode and location canonical forms. */
#include "model/postcode.h"

#include "base/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US_ZIP_LEN 5
#define US_PLUS4_LEN 4
/* Input longer than this is refused before any work: nothing real is. */
#define POSTCODE_MAX_INPUT 64

static bool is_alpha(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
    }
    return n > 0;
}

/* A UK outward code: A9, A99, AA9, AA99, A9A or AA9A. */
static bool uk_outward(const char *s, size_t n)
{
    size_t letters = 0;

    while (letters < n && letters < 2 && is_alpha(s[letters]))
        letters++;
    if (letters == 0 || letters == n || !is_digit(s[letters]))
        return false;
    const char *rest = s + letters + 1;
    size_t left = n - letters - 1;
    if (left == 0)
        return true;
    return left == 1 && (is_digit(rest[0]) || is_alpha(rest[0]));
}

/* A full UK unit with its space left out: outward code + digit + two
 * letters. */
static bool uk_unit_unspaced(const char *s, size_t n)
{
    if (n < 5 || n > 7)
        return false;
    return is_digit(s[n - 3]) && is_alpha(s[n - 2]) && is_alpha(s[n - 1]) &&
           uk_outward(s, n - 3);
}

/* Upper case, runs of blanks made one space, ends trimmed. */
static fs_result tidy(const char *text, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    bool blank = false;

    for (const char *p = text; *p; p++) {
        char c = (char)toupper((unsigned char)*p);
        if (c == ' ' || c == '\t') {
            blank = n > 0;
            continue;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '-')
            return FS_ERR_INVALID;
        if (n + 2 >= cap)
            return FS_ERR_TOO_LARGE;
        if (blank)
            buf[n++] = ' ';
        blank = false;
        buf[n++] = c;
    }
    buf[n] = '\0';
    *len = n;
    return FS_OK;
}

/* The first ZIP digits, left-padded with zeros to five. */
static void zip5(char dst[US_ZIP_LEN + 1], const char *s, size_t n)
{
    size_t pad = US_ZIP_LEN - n;

    memset(dst, '0', pad);
    memcpy(dst + pad, s, n);
    dst[US_ZIP_LEN] = '\0';
}

/* US ZIPs written as numbers lose their leading zeros: "2134" is 02134,
 * "2134-1234" is 02134-1234, nine digits are ZIP+4. NULL when not a ZIP. */
static char *us_zip(const char *s, size_t n)
{
    const char *dash = memchr(s, '-', n);
    char head5[US_ZIP_LEN + 1];

    if (!dash) {
        if (n == US_ZIP_LEN + US_PLUS4_LEN && all_digits(s, n))
            return xasprintf("%.5s-%.4s", s, s + US_ZIP_LEN);
        if (n > US_ZIP_LEN || !all_digits(s, n))
            return NULL;
        zip5(head5, s, n);
        return xstrdup(head5);
    }
    size_t head = (size_t)(dash - s);
    size_t tail = n - head - 1;
    if (head == 0 || head > US_ZIP_LEN || tail != US_PLUS4_LEN ||
        !all_digits(s, head) || !all_digits(dash + 1, tail))
        return NULL;
    zip5(head5, s, head);
    return xasprintf("%s-%.4s", head5, dash + 1);
}

fs_result postcode_normalize(const char *text, char **out)
{
    char buf[POSTCODE_MAX_INPUT + 2];
    char compact[POSTCODE_MAX_INPUT + 2];
    size_t len = 0, clen = 0;

    *out = NULL;
    if (strlen(text) > POSTCODE_MAX_INPUT)
        return FS_ERR_TOO_LARGE;
    fs_result result = tidy(text, buf, sizeof(buf), &len);
    if (result != FS_OK)
        return result;
    if (len == 0)
        return FS_ERR_INVALID;

    for (size_t i = 0; i < len; i++) {
        if (buf[i] != ' ')
            compact[clen++] = buf[i];
    }
    compact[clen] = '\0';

    char *zip = us_zip(compact, clen);
    if (zip) {
        *out = zip;
        return FS_OK;
    }
    if (uk_unit_unspaced(compact, clen)) {
        *out =
            xasprintf("%.*s %s", (int)(clen - 3), compact, compact + clen - 3);
    } else {
        *out = xstrdup(buf);
    }
    if (strlen(*out) > POSTCODE_MAX_LEN) {
        free(*out);
        *out = NULL;
        return FS_ERR_TOO_LARGE;
    }
    return FS_OK;
}

/* The UK's postcode areas (with the Crown dependencies'), sorted. */
static const char *const uk_areas[] = {
    "AB", "AL", "B",  "BA", "BB", "BD", "BH", "BL", "BN", "BR", "BS", "BT",
    "CA", "CB", "CF", "CH", "CM", "CO", "CR", "CT", "CV", "CW", "DA", "DD",
    "DE", "DG", "DH", "DL", "DN", "DT", "DY", "E",  "EC", "EH", "EN", "EX",
    "FK", "FY", "G",  "GL", "GU", "GY", "HA", "HD", "HG", "HP", "HR", "HS",
    "HU", "HX", "IG", "IM", "IP", "IV", "JE", "KA", "KT", "KW", "KY", "L",
    "LA", "LD", "LE", "LL", "LN", "LS", "LU", "M",  "ME", "MK", "ML", "N",
    "NE", "NG", "NN", "NP", "NR", "NW", "OL", "OX", "PA", "PE", "PH", "PL",
    "PO", "PR", "RG", "RH", "RM", "S",  "SA", "SE", "SG", "SK", "SL", "SM",
    "SN", "SO", "SP", "SR", "SS", "ST", "SW", "SY", "TA", "TD", "TF", "TN",
    "TQ", "TR", "TS", "TW", "UB", "W",  "WA", "WC", "WD", "WF", "WN", "WR",
    "WS", "WV", "YO", "ZE",
};

static int compare_area(const void *key, const void *item)
{
    return strcmp(key, *(const char *const *)item);
}

static bool uk_area(const char *s, size_t n)
{
    char area[3];

    if (n == 0 || n > 2 || !is_alpha(s[0]) || (n == 2 && !is_alpha(s[1])))
        return false;
    memcpy(area, s, n);
    area[n] = '\0';
    return bsearch(area, uk_areas, sizeof(uk_areas) / sizeof(uk_areas[0]),
                   sizeof(uk_areas[0]), compare_area) != NULL;
}

/* An inward code or the start of one: a digit, then none or two letters
 * (never C, I, K, M, O or V). */
static bool uk_inward(const char *s, size_t n)
{
    if (n != 1 && n != 3)
        return false;
    if (!is_digit(s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_alpha(s[i]) || strchr("CIKMOV", s[i]))
            return false;
    }
    return true;
}

/* A canonical UK unit, sector, district or area. */
static bool uk_place(const char *s)
{
    const char *space = strchr(s, ' ');
    size_t outward = space ? (size_t)(space - s) : strlen(s);
    size_t letters = 0;

    while (letters < outward && is_alpha(s[letters]))
        letters++;
    if (!uk_area(s, letters))
        return false;
    if (letters == outward)
        return !space; /* an area alone */
    if (!uk_outward(s, outward))
        return false;
    return !space || uk_inward(space + 1, strlen(space + 1));
}

fs_result postcode_rule_normalize(const char *text, char **out)
{
    fs_result r = postcode_normalize(text, out);

    if (r != FS_OK)
        return r;
    const char *country = postcode_country(*out);
    if ((country && strcmp(country, "US") == 0) || uk_place(*out))
        return FS_OK;
    free(*out);
    *out = NULL;
    return FS_ERR_INVALID;
}

static void put_prefix(char out[][POSTCODE_MAX_LEN + 1], size_t *n,
                       const char *s, size_t len)
{
    if (len > POSTCODE_MAX_LEN || *n >= POSTCODE_MAX_PREFIXES)
        return;
    memcpy(out[*n], s, len);
    out[*n][len] = '\0';
    (*n)++;
}

size_t postcode_prefixes(const char *canonical,
                         char out[POSTCODE_MAX_PREFIXES][POSTCODE_MAX_LEN + 1])
{
    size_t len = strlen(canonical);
    const char *space = strchr(canonical, ' ');
    const char *dash = strchr(canonical, '-');
    size_t n = 0;

    put_prefix(out, &n, canonical, len);
    if (dash && all_digits(canonical, (size_t)(dash - canonical))) {
        put_prefix(out, &n, canonical, (size_t)(dash - canonical));
        return n;
    }
    size_t outward = space ? (size_t)(space - canonical) : len;
    if (!uk_outward(canonical, outward))
        return n;
    if (space) {
        const char *inward = space + 1;
        size_t in_len = len - outward - 1;
        if (in_len == 3 && is_digit(inward[0]) && is_alpha(inward[1]) &&
            is_alpha(inward[2]))
            put_prefix(out, &n, canonical, outward + 2);
        else if (in_len != 1 || !is_digit(inward[0]))
            return n; /* not a UK sector or unit: only itself */
        put_prefix(out, &n, canonical, outward);
    }
    size_t area = 0;
    while (area < outward && is_alpha(canonical[area]))
        area++;
    put_prefix(out, &n, canonical, area);
    return n;
}

static bool parse_degrees(const char *s, const char *end, double lo, double hi,
                          double *out)
{
    char *stop = NULL;

    while (s < end && *s == ' ')
        s++;
    if (s == end)
        return false;
    errno = 0;
    double v = strtod(s, &stop);
    while (stop < end && *stop == ' ')
        stop++;
    if (errno != 0 || stop != end || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

fs_result location_parse(const char *text, double *lat, double *lng)
{
    const char *comma = strchr(text, ',');

    if (!comma || strchr(comma + 1, ','))
        return FS_ERR_INVALID;
    if (!parse_degrees(text, comma, -90.0, 90.0, lat) ||
        !parse_degrees(comma + 1, comma + 1 + strlen(comma + 1), -180.0, 180.0,
                       lng))
        return FS_ERR_INVALID;
    return FS_OK;
}

char *location_format(double lat, double lng)
{
    /* -0.000000 and 0.000000 are one place. */
    double la = round(lat * 1e6) / 1e6;
    double lo = round(lng * 1e6) / 1e6;
    return xasprintf("%.6f,%.6f", la == 0 ? 0.0 : la, lo == 0 ? 0.0 : lo);
}

const char *postcode_country(const char *canonical)
{
    size_t n = canonical ? strlen(canonical) : 0;
    const char *space = canonical ? strchr(canonical, ' ') : NULL;

    if (n == 5 && all_digits(canonical, 5))
        return "US";
    if (n == 10 && all_digits(canonical, 5) && canonical[5] == '-' &&
        all_digits(canonical + 6, 4))
        return "US";
    /* A full UK unit: outward code, space, digit and two letters. */
    if (space && strlen(space + 1) == 3 &&
        uk_outward(canonical, (size_t)(space - canonical)) &&
        is_digit(space[1]) && is_alpha(space[2]) && is_alpha(space[3]))
        return "GB";
    return NULL;
}

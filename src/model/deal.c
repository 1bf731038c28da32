/* The deal's fields and the canonical text form of their values. */
#include "model/deal.h"

#include "base/alloc.h"
#include "model/postcode.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define AMOUNT_MAX_DECIMALS 4

const struct deal_field_def deal_fields[DEAL_FIELD_COUNT] = {
    [DEAL_NAME] = {"name", FIELD_TEXT, 255},
    [DEAL_STAGE] = {"stage", FIELD_ID, 64},
    [DEAL_AMOUNT] = {"amount", FIELD_AMOUNT, 32},
    [DEAL_CLOSE_DATE] = {"close_date", FIELD_DATE, 32},
    [DEAL_OWNER] = {"owner", FIELD_ID, 64},
    [DEAL_ACCOUNT] = {"account", FIELD_TEXT, 255},
    [DEAL_PRODUCT] = {"product", FIELD_TEXT, 255},
    [DEAL_ENGAGE_DATE] = {"engage_date", FIELD_DATE, 32},
    [DEAL_POSTCODE] = {"postcode", FIELD_POSTCODE, POSTCODE_MAX_LEN},
    [DEAL_LOCATION] = {"location", FIELD_LOCATION, 64},
};

int deal_field_by_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < DEAL_FIELD_COUNT; i++) {
        if (strcmp(deal_fields[i].name, name) == 0)
            return i;
    }
    return -1;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A plain decimal: optional '-', digits, optional '.' and up to four
 * decimals. Trailing zeros of the fraction and a bare '.' go; "-0" is 0. */
static fs_result canonical_amount(const char *v, size_t max_len, char **out)
{
    size_t len = strlen(v);
    const char *p = v;
    bool negative = false;

    if (len > max_len)
        return FS_ERR_TOO_LARGE;
    if (*p == '-') {
        negative = true;
        p++;
    }

    const char *int_start = p;
    while (is_digit(*p))
        p++;
    size_t int_len = (size_t)(p - int_start);
    if (int_len == 0)
        return FS_ERR_INVALID;

    const char *frac_start = p;
    size_t frac_len = 0;
    if (*p == '.') {
        frac_start = ++p;
        while (is_digit(*p))
            p++;
        frac_len = (size_t)(p - frac_start);
    }
    if (*p != '\0' || frac_len > AMOUNT_MAX_DECIMALS)
        return FS_ERR_INVALID;

    /* Leading zeros go too, so "007" and "7" are one value. */
    while (int_len > 1 && *int_start == '0') {
        int_start++;
        int_len--;
    }
    while (frac_len > 0 && frac_start[frac_len - 1] == '0')
        frac_len--;
    if (int_len == 1 && *int_start == '0' && frac_len == 0)
        negative = false;

    char *res = xmalloc(int_len + frac_len + 3);
    size_t n = 0;
    if (negative)
        res[n++] = '-';
    memcpy(res + n, int_start, int_len);
    n += int_len;
    if (frac_len > 0) {
        res[n++] = '.';
        memcpy(res + n, frac_start, frac_len);
        n += frac_len;
    }
    res[n] = '\0';
    *out = res;
    return FS_OK;
}

static int two_digits(const char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

static fs_result canonical_date(const char *v, char **out)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (strlen(v) != 10 || v[4] != '-' || v[7] != '-')
        return FS_ERR_INVALID;
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && !is_digit(v[i]))
            return FS_ERR_INVALID;
    }

    int year = two_digits(v) * 100 + two_digits(v + 2);
    int month = two_digits(v + 5);
    int day = two_digits(v + 8);
    if (year < 1 || month < 1 || month > 12 || day < 1)
        return FS_ERR_INVALID;

    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    int month_days = days[month - 1] + (month == 2 && leap ? 1 : 0);
    if (day > month_days)
        return FS_ERR_INVALID;

    *out = xstrdup(v);
    return FS_OK;
}

/* Length of the UTF-8 sequence starting at p, or 0 when it is not a
 * well-formed, shortest-form, non-surrogate code point. */
static size_t utf8_sequence(const unsigned char *p)
{
    uint32_t cp;
    size_t len;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = p[0] & 0x1F;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = p[0] & 0x0F;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }

    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Text and ids: valid UTF-8 without control characters, within max_len
 * bytes. Kept as given otherwise. */
static fs_result canonical_text(const char *v, size_t max_len, char **out)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t len = strlen(v);

    if (len > max_len)
        return FS_ERR_TOO_LARGE;
    while (*p) {
        if (*p < 0x20 || *p == 0x7F)
            return FS_ERR_INVALID;
        size_t n = utf8_sequence(p);
        if (n == 0)
            return FS_ERR_INVALID;
        p += n;
    }
    *out = xstrdup(v);
    return FS_OK;
}

fs_result deal_field_canonical(enum deal_field field, const char *value,
                               char **out)
{
    *out = NULL;
    if ((int)field < 0 || field >= DEAL_FIELD_COUNT)
        return FS_ERR_INVALID;
    if (!value || !*value)
        return FS_OK;

    const struct deal_field_def *def = &deal_fields[field];
    switch (def->type) {
    case FIELD_AMOUNT:
        return canonical_amount(value, def->max_len, out);
    case FIELD_DATE:
        return canonical_date(value, out);
    case FIELD_TEXT:
    case FIELD_ID:
        return canonical_text(value, def->max_len, out);
    case FIELD_POSTCODE: {
        /* A deal's postcode names a place: every form has a digit (a rule
         * may be a bare area, a deal's postcode may not). */
        fs_result result = postcode_normalize(value, out);
        if (result == FS_OK && !strpbrk(*out, "0123456789")) {
            free(*out);
            *out = NULL;
            result = FS_ERR_INVALID;
        }
        return result;
    }
    case FIELD_LOCATION: {
        double lat, lng;
        if (strlen(value) > def->max_len)
            return FS_ERR_TOO_LARGE;
        fs_result result = location_parse(value, &lat, &lng);
        if (result == FS_OK)
            *out = location_format(lat, lng);
        return result;
    }
    }
    return FS_ERR_INVALID;
}

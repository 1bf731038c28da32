/* The fields of a deal as fieldsync keeps them, whatever the CRM. Values are
 * canonical text: amounts as plain decimals ("1054", "1054.5"), dates as
 * "YYYY-MM-DD", owner and stage as the provider's ids, postcodes as
 * postcode_normalize gives them, locations as "lat,lng" with six decimals.
 * NULL means empty. */
#ifndef FIELDSYNC_MODEL_DEAL_H
#define FIELDSYNC_MODEL_DEAL_H

#include "base/result.h"

#include <stddef.h>

enum deal_field {
    DEAL_NAME = 0,
    DEAL_STAGE,
    DEAL_AMOUNT,
    DEAL_CLOSE_DATE,
    DEAL_OWNER,
    DEAL_ACCOUNT,
    DEAL_PRODUCT,
    DEAL_ENGAGE_DATE,
    DEAL_POSTCODE,
    DEAL_LOCATION,
    DEAL_FIELD_COUNT
};

enum deal_field_type {
    FIELD_TEXT,
    FIELD_AMOUNT,
    FIELD_DATE,
    FIELD_ID, /* owner or stage: an opaque provider id */
    FIELD_POSTCODE,
    FIELD_LOCATION, /* "lat,lng" */
};

struct deal_field_def {
    const char *name; /* as in the field API, e.g. "close_date" */
    enum deal_field_type type;
    size_t max_len;
};

extern const struct deal_field_def deal_fields[DEAL_FIELD_COUNT];

/* The field with that API name, or -1. */
int deal_field_by_name(const char *name);

/* Checks and canonicalises a value for the field (trims an amount's
 * trailing zeros, checks a date). On success *out is a new string, or NULL
 * when value is NULL or "" (the field is cleared). */
fs_result deal_field_canonical(enum deal_field field, const char *value,
                               char **out);

#endif

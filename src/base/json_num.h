/* Decimal numbers between JSON and text, for CRMs that send amounts as
 * numbers (or as numeric text) and take them back as numbers. */
#ifndef FIELDSYNC_BASE_JSON_NUM_H
#define FIELDSYNC_BASE_JSON_NUM_H

#include <jansson.h>

/* A JSON number as decimal text: an integer as it is, a real with four
 * decimals (the caller trims); numeric text as it is when text_ok. NULL
 * for anything else or a real that is not finite. The caller frees. */
char *json_num_text(const json_t *v, int text_ok);

/* Decimal text as a JSON number: an integer when it has no fraction, so
 * it goes out exactly, else a real. NULL when the text is not a
 * number. */
json_t *json_num_of(const char *text);

#endif

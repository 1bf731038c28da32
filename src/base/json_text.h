/* Limits checked on JSON text before it is parsed: a peer's nesting is
 * measured without recursion, so no parser is handed a pathological
 * document. */
#ifndef FIELDSYNC_BASE_JSON_TEXT_H
#define FIELDSYNC_BASE_JSON_TEXT_H

#include <stddef.h>

/* The deepest nesting of objects and arrays in JSON text (strings are
 * skipped), without parsing it. */
int json_text_depth(const char *text, size_t len);

#endif

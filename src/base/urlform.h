/* Percent-decoding of URL query and x-www-form-urlencoded text. */
#ifndef FIELDSYNC_BASE_URLFORM_H
#define FIELDSYNC_BASE_URLFORM_H

#include <stddef.h>

/* Decodes s[0..len) ('+' is a space); the caller frees. NULL when an
 * escape is malformed or decodes to NUL. */
char *urlform_decode(const char *s, size_t len);

#endif

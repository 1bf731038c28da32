/* A server-sent event stream read in the background for integration tests:
 * open it, then poll for an event that arrived. */
#ifndef FIELDSYNC_TESTS_SSE_TEST_H
#define FIELDSYNC_TESTS_SSE_TEST_H

#include <stdbool.h>

struct sse_test;

/* GETs url with the bearer token on a thread of its own. Returns once the
 * stream answered 200 and its opening comment arrived, or NULL when it did
 * not within the helpers' timeout. */
struct sse_test *sse_test_open(const char *url, const char *token);

/* True when an event of this type has arrived whose data is a JSON object
 * with "id" equal to id and the key field equal to value (NULL: JSON
 * null). */
bool sse_test_has(struct sse_test *sse, const char *type, const char *id,
                  const char *field, const char *value);

/* Ends the stream and frees; NULL is fine. */
void sse_test_close(struct sse_test *sse);

#endif

/* Small helpers the providers share: JSON members as text, strict
 * integers, a write's outcome, and the URL of a call (the list of deals a
 * read returns is provider.h's crm_deal_list). */
#ifndef FIELDSYNC_PROVIDERS_PROVIDER_UTIL_H
#define FIELDSYNC_PROVIDERS_PROVIDER_UTIL_H

#include "providers/provider.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* An integer or string member as text (the caller frees), or NULL. */
char *provider_json_text(const json_t *v);
/* A string member, or NULL. */
const char *provider_json_str(const json_t *obj, const char *key);
/* Strict decimal int64: optional '-', 1 to 18 digits, nothing else; 0 on
 * success, -1 otherwise. */
int provider_parse_int64(const char *s, int64_t *out);

/* A write's outcome: done, with the CRM's id and time, or failed with
 * code and the CRM's message (the code's name when it gave none). */
void provider_result_ok(struct crm_write_result *r, const char *crm_id,
                        int64_t time);
void provider_result_fail(struct crm_write_result *r, fs_result code,
                          const char *message);

/* The connection's API root (without trailing '/') followed by path. The
 * caller frees. */
char *provider_url(const struct connection *conn, const char *path);

#endif

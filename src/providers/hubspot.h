/* The HubSpot provider: webhook signatures (v1, v2, v3), event parsing, and
 * the CRM v3 REST calls for deals, owners and pipelines. */
#ifndef FIELDSYNC_PROVIDERS_HUBSPOT_H
#define FIELDSYNC_PROVIDERS_HUBSPOT_H

#include "providers/provider.h"

#include <stddef.h>

/* Most events HubSpot puts in one delivery. */
#define HUBSPOT_MAX_EVENTS 100
/* How far a v3 signature's timestamp may be from now, either way. */
#define HUBSPOT_MAX_SKEW_MS 300000
/* The OAuth token endpoint under the API root (the dated v3 form; the
 * v1 one, /oauth/v1/token, is deprecated from 2027-02-16). */
#define HUBSPOT_TOKEN_PATH "/oauth/v3/token"

extern const struct provider hubspot_provider;

/* The HubSpot deal property holding the field, or NULL. */
const char *hubspot_property(int field);

/* A property value as HubSpot shows it (webhook or REST) to the field's
 * canonical form; *out NULL when empty. The caller frees. */
fs_result hubspot_value_in(int field, const char *raw, char **out);

/* A canonical value to what HubSpot takes ("" clears; dates as the epoch
 * ms of midnight UTC). The caller frees. */
fs_result hubspot_value_out(int field, const char *value, char **out);

/* The URL as v3 signatures hash it: the fixed set of percent-escapes
 * HubSpot decodes (%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B, either
 * case) decoded, everything else as is. The caller frees. */
char *hubspot_uri_for_signature(const char *url);

/* Lowercase hex SHA-256 of secret + body. The caller frees. */
char *hubspot_signature_v1(const char *secret, const char *body, size_t len);

/* Lowercase hex SHA-256 of secret + method + uri + body. The caller
 * frees. */
char *hubspot_signature_v2(const char *secret, const char *method,
                           const char *uri, const char *body, size_t len);

/* Base64 HMAC-SHA256, keyed with secret, of method + uri + body +
 * timestamp (the X-HubSpot-Request-Timestamp text). uri is hashed as
 * given: pass it through hubspot_uri_for_signature first. The caller
 * frees. */
char *hubspot_signature_v3(const char *secret, const char *method,
                           const char *uri, const char *body, size_t len,
                           const char *timestamp);

/* What the REST calls read from one answer body: the deals of results[]
 * (list, search, batch read; with the ids errors[] reports as not found,
 * as archived deals), results[] read as owners, and as pipelines with
 * their stages, and the next page's token. The same parsing the calls do,
 * as a pure entry point, so tests and the fuzz target can feed answers
 * without a network. FS_ERR_REMOTE when body is not JSON. */
struct hubspot_answer {
    struct crm_deal *deals;
    size_t deal_count;
    struct crm_owner *owners;
    size_t owner_count;
    struct crm_stage *stages;
    size_t stage_count;
    char *next_after; /* NULL on the last page */
};

fs_result hubspot_read_answer(const struct connection *conn, const char *body,
                              size_t len, struct hubspot_answer *out);
void hubspot_answer_clear(struct hubspot_answer *a);

/* Reads a 200/207 answer to a batch update of writes[0..n) (each with a
 * crm_id) into results[], as write_deals does; a write the answer names
 * nowhere counts as written. FS_ERR_REMOTE when body is not JSON (results
 * are then all not done). Pure, like hubspot_read_answer. */
fs_result hubspot_read_update_answer(const char *body, size_t len,
                                     const struct crm_write *writes, size_t n,
                                     struct crm_write_result *results);

#endif

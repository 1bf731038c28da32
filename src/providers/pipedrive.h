/* The Pipedrive provider: webhooks v2 behind HTTP Basic credentials, deal
 * events with current data and changed-only previous values, and the API
 * v2 calls (v1 where v2 has none) for deals, users, stages and deal
 * fields, each governed by its token cost. */
#ifndef FIELDSYNC_PROVIDERS_PIPEDRIVE_H
#define FIELDSYNC_PROVIDERS_PIPEDRIVE_H

#include "providers/provider.h"

#include <stddef.h>

/* Largest webhook body taken: one event, a deal's core fields. */
#define PIPEDRIVE_MAX_EVENT_BYTES (256 * 1024)
/* Longest meta.id taken (a UUID is 36). */
#define PIPEDRIVE_MAX_EVENT_ID 128
/* Ids in one ids= read, and deals in one list page. */
#define PIPEDRIVE_IDS_MAX 100
#define PIPEDRIVE_PAGE_MAX 500
/* Longest stage id a changelog entry is followed by (digits). */
#define PIPEDRIVE_ID_MAX 32
/* The burst window every budget counts in. */
#define PIPEDRIVE_WINDOW_MS 2000
/* OAuth apps' token endpoint, on its own host. */
#define PIPEDRIVE_OAUTH_URL "https://oauth.pipedrive.com/oauth/token"

extern const struct provider pipedrive_provider;

/* The wire key of a deal field on this connection (title, stage_id, ...,
 * or the custom field's hash from the connection's settings), or NULL
 * when the connection does not sync it. The caller frees. */
char *pipedrive_field_key(const struct connection *conn, int field);

/* Settings for a connection from the answers of GET /api/v2/dealFields
 * (pages: the JSON texts of each page): each custom field found by its
 * name with its hash key, type and options. FS_ERR_INVALID with *error
 * saying what is missing or of the wrong type. The caller frees both. */
fs_result pipedrive_settings_from_fields(const char *const *pages, size_t n,
                                         char **settings, char **error);

/* A deal as the v2 API returns it (one element of data[], as JSON text)
 * to a crm_deal; times are the deal's update_time (whole seconds). */
fs_result pipedrive_parse_deal(const struct connection *conn, const char *json,
                               struct crm_deal *out);

/* What pages of a deal's changelog have told so far, per field: its
 * newest entry (the field's time and actor), and the newest entry by
 * someone other than us; and when the page was answered. */
struct pipedrive_changelog {
    bool timed[DEAL_FIELD_COUNT];
    bool othered[DEAL_FIELD_COUNT];
    /* Our clock when the page's answer came (0: not known). No entry was
     * made later, so none is timed later, whatever its second's end: a
     * change made in the same second after the read must win over it. */
    int64_t answered_at;
    /* The deal's pipeline (NULL: not known), whose won and lost stages a
     * status entry names. */
    const char *pipeline_id;
    /* Per field, the second of the oldest entry of ours seen so far (0:
     * none), the push that landed on an older value someone else wrote. */
    int64_t ours_second[DEAL_FIELD_COUNT];
    /* Per field, the second of the last entry seen (0: none yet), status
     * entries aside. */
    int64_t newer_second[DEAL_FIELD_COUNT];
    /* The deal's stage_id as read (NULL: not known), a won or lost deal's
     * too: its values show the pipeline's won or lost stage instead. */
    const char *stage_id;
    /* The deal's stage_id and status just after the entry being read:
     * the deal's as read, stepped back past each newer entry (its old
     * value), page after page; "" when not known. A status entry names no
     * stage and a stage_id entry no status: these tell the other half of
     * what the entry left the deal in (a reopening in the deal's stage is
     * a status entry only). Set by the first page; zero to start. */
    bool stepping;
    char stage_after[PIPEDRIVE_ID_MAX];
    char status_after[8];
};

/* Applies one page of GET /v1/deals/{id}/changelog (JSON text, newest
 * first) to a deal read with its current values: each field not yet
 * timed takes its newest entry's time and actor; the newest value someone
 * else wrote goes to others[] when it is not the current one (for the
 * stage, what their stage_id or status entry left the deal in). Returns
 * how many fields it timed. */
size_t pipedrive_apply_changelog(const struct connection *conn,
                                 const char *json, struct crm_deal *deal,
                                 struct pipedrive_changelog *log);

/* The JSON body of a PATCH (or, with create, a POST carrying our id) for
 * a write. FS_ERR_INVALID for a value Pipedrive cannot take (an option
 * that is not one of the field's). The caller frees. */
fs_result pipedrive_write_body(const struct connection *conn,
                               const struct crm_write *w, bool create,
                               char **json);

/* The API root an OAuth token answer's api_domain names: as it is
 * ("https://acme.pipedrive.com"), https:// before a bare host, without a
 * trailing '/' or API version path (/api/v2, /api/v1, /v1).
 * FS_ERR_INVALID for anything but an http(s) URL or a host. The caller
 * frees. */
fs_result pipedrive_api_root(const char *api_domain, char **root);

/* "Basic base64(user:password)", as Pipedrive sends its webhooks' HTTP
 * auth. The caller frees. */
char *pipedrive_basic_auth(const char *user, const char *password);

/* What the REST calls read from one answer body, the same parsing the
 * calls do as a pure entry point, so tests and the fuzz target can feed
 * answers without a network: data[] as a page of deals (list, ids=, the
 * backstop's reads) with the next page's cursor, as users, as stages
 * (each pipeline's won and lost stages added, as list_stages does), the
 * deal a search finds, and the error text a failed call gives.
 * FS_ERR_REMOTE when body is not JSON. */
struct pipedrive_answer {
    struct crm_deal *deals;
    size_t deal_count;
    char *next_cursor; /* NULL on the last page */
    struct crm_owner *owners;
    size_t owner_count;
    struct crm_stage *stages;
    size_t stage_count;
    char *found_id; /* NULL: the search found nothing */
    char *error;
};

fs_result pipedrive_read_answer(const struct connection *conn, const char *body,
                                size_t len, struct pipedrive_answer *out);
void pipedrive_answer_clear(struct pipedrive_answer *a);

/* Reads the answer (status and body) to the PATCH, or for a write
 * without crm_id the POST, of w into *out, as write_deals does: the
 * outcome, and a create's values Pipedrive filled in. Returns the
 * failure that stops the whole call (a refused token, the plan, the
 * rate limit), or FS_OK. Pure, like pipedrive_read_answer. */
fs_result pipedrive_read_write_answer(const struct connection *conn,
                                      const struct crm_write *w, long status,
                                      const char *body, size_t len,
                                      struct crm_write_result *out);

#endif

/* The interface every CRM provider implements. Nothing above the providers
 * knows which CRM an org has: services speak only these types. */
#ifndef FIELDSYNC_PROVIDERS_PROVIDER_H
#define FIELDSYNC_PROVIDERS_PROVIDER_H

#include "base/result.h"
#include "model/connection.h"
#include "model/deal.h"
#include "model/merge.h"
#include "net/http_client.h"
#include "net/rate_governor.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A webhook delivery as received, for signature checks. */
struct webhook_request {
    const char *method;
    const char *url; /* full URL as the CRM called it: scheme://host/path?q */
    const char *body;
    size_t body_len;
    const char *(*header)(const void *ctx, const char *name);
    const void *header_ctx;
};

/* One event cut out of a delivery, ready for the inbox. */
struct webhook_item {
    char *dedup_key;  /* unique per event per connection, stable on retry */
    char *account_id; /* routes the event to its connection (providers */
    char *app_id;     /* routed by body; "" for those routed by URL) */
    char *body;       /* the event alone, as JSON text */
};

void webhook_items_free(struct webhook_item *items, size_t n);

enum crm_event_kind {
    CRM_EVENT_CHANGE, /* fields changed, values given */
    CRM_EVENT_CREATE, /* a deal appeared: read it */
    CRM_EVENT_READ,   /* a deal changed, values not given: read it */
    CRM_EVENT_DELETE,
    CRM_EVENT_RESTORE, /* a deleted deal came back: read it */
    CRM_EVENT_MERGE,   /* merged_ids folded into new_id */
    CRM_EVENT_IGNORED, /* not about deals, or a property we do not sync */
};

struct crm_event {
    enum crm_event_kind kind;
    char *crm_id;
    int64_t time;
    enum change_actor actor;
    /* CHANGE: the fields it sets, each to a canonical value (NULL clears) */
    bool present[DEAL_FIELD_COUNT];
    char *values[DEAL_FIELD_COUNT];
    char **merged_ids;
    size_t merged_count;
    char *new_id;
    char *ignored_type; /* for IGNORED: the CRM's event type, to log */
};

void crm_event_clear(struct crm_event *event);

/* A field time meaning "the CRM holds this value now, since a time it
 * does not show" (Attio shows an emptied attribute without the time it
 * was emptied). The merge takes such a value only where no local edit
 * waits (model/merge.h, merge_crm_untimed). */
#define CRM_TIME_UNKNOWN (-1)

/* An earlier value of a field, from the CRM's history. */
struct crm_past_value {
    char *value; /* canonical, NULL: cleared */
    int64_t time;
    /* When the CRM times it coarsely: the latest it may have been made
     * (0: time is exact). */
    int64_t time_latest;
    bool present;
};

/* A deal as read from the CRM, values canonical. times[] holds each
 * field's CRM modification time when the read asked for it, else the
 * deal's own modification time, or CRM_TIME_UNKNOWN. */
struct crm_deal {
    char *crm_id;
    char *our_id; /* our record id stored in the CRM, or NULL */
    char *values[DEAL_FIELD_COUNT];
    int64_t times[DEAL_FIELD_COUNT];
    enum change_actor actors[DEAL_FIELD_COUNT]; /* who made each value */
    /* From a read with per-field times, where the CRM keeps history: the
     * newest value someone other than us wrote, when it is not the
     * current one (our push landed after it), so the merge can tell
     * whether the push overwrote a newer edit whose webhook never came. */
    struct crm_past_value others[DEAL_FIELD_COUNT];
    int64_t read_at; /* when the read was made (set by the reconciler) */
    int64_t modified;
    bool archived;
};

void crm_deal_clear(struct crm_deal *deal);
void crm_deals_free(struct crm_deal *deals, size_t n);

/* A growing list of deals a read builds; start it zeroed. */
struct crm_deal_list {
    struct crm_deal *items;
    size_t count;
    size_t cap;
};

/* A new zeroed deal at the end of the list. */
struct crm_deal *crm_deal_list_add(struct crm_deal_list *l);
/* Frees the last deal, one that turned out unreadable. */
void crm_deal_list_drop_last(struct crm_deal_list *l);
/* Hands the deals over (NULL when none) and empties the list. */
void crm_deal_list_give(struct crm_deal_list *l, struct crm_deal **out,
                        size_t *count);

/* One record to write. present[] marks the fields to send (every field
 * with a value for a create); values[] holds all the record's values, for
 * CRMs that write several fields as one (Attio's location). crm_id NULL
 * means create. */
struct crm_write {
    const char *our_id;
    const char *crm_id;
    const char *values[DEAL_FIELD_COUNT];
    bool present[DEAL_FIELD_COUNT];
    /* A create tried before without a known outcome: the CRM may have
     * made the deal, to be looked for by our id before creating again
     * (for CRMs that cannot refuse a second deal with our id). */
    bool may_exist;
};

struct crm_write_result {
    bool done;        /* the outcome is known, even if the call failed later */
    fs_result result; /* per record */
    char *crm_id;     /* set on success (the new id for creates) */
    char *error;      /* the CRM's message on failure */
    int64_t time;     /* CRM modification time of the write, if known */
    char *writer_id;  /* who the CRM says made the write, when it names
                       * our credentials only that way (Attio's token
                       * actor id), so the connection learns it */
    /* On a create: values the CRM gave fields the write left empty (an
     * Attio status attribute's default), taken as the CRM's change. */
    char *defaults[DEAL_FIELD_COUNT];
};

void crm_write_results_clear(struct crm_write_result *results, size_t n);

struct crm_owner {
    char *id;
    char *email;
    char *name;
};

struct crm_stage {
    char *pipeline_id;
    char *id;
    char *label;
};

void crm_owners_free(struct crm_owner *owners, size_t n);
void crm_stages_free(struct crm_stage *stages, size_t n);

/* Calls are governed by class: some CRMs budget reads and writes apart
 * (Attio: 100 reads and 25 writes a second), some searches apart
 * (HubSpot: 5 a second, outside its ten-second window). */
enum call_class {
    CALL_READ,
    CALL_WRITE,
    CALL_SEARCH,
};

struct oauth_keeper;
struct oauth_grant;
struct oauth_tokens;

/* What a provider call needs: the connection, a client for this thread,
 * the connection's rate governors and OAuth token keeper (both shared
 * between threads). */
/* The last answer of a session's calls that was not a 2xx: what a failed
 * pass logs. A caller that wants it points the session's failure at one
 * and frees it with provider_failure_clear (provider_call.h). */
struct provider_failure {
    long status;   /* the HTTP status; 0: none, or no answer arrived */
    char *message; /* the CRM's message, or the start of its body */
};

struct provider_session {
    const struct connection *conn;
    struct http_client *http;
    struct rate_governor *governor;        /* reads, and the rest unless: */
    struct rate_governor *write_governor;  /* NULL: writes use governor */
    struct rate_governor *search_governor; /* NULL: searches use governor */
    struct oauth_keeper *tokens; /* NULL: the connection's token as it is */
    long timeout_ms;
    struct provider_failure *failure; /* NULL: not kept */
};

/* A position in a paged read; opaque to callers, freed with _clear. */
struct crm_cursor {
    char *after;         /* provider's paging token */
    int64_t watermark;   /* for changed_since: modification time reached */
    char **seen_at_mark; /* ids already read at exactly watermark */
    size_t seen_count;
    bool done;
};

void crm_cursor_clear(struct crm_cursor *cursor);

struct provider {
    const char *name;
    size_t max_write_batch;
    /* Webhooks reach /webhooks/<name>/<connection id> and go to that
     * connection, rather than /webhooks/<name> routed by each event's
     * account and app ids. */
    bool webhooks_by_url;
    /* The CRM bans a webhook whose deliveries fail too often (Pipedrive:
     * 10 first-attempt failures): a delivery we cannot route or parse is
     * answered 2xx and logged, only wrong credentials get a 401 and only a
     * failed store a retryable status. */
    bool bans_failing_hooks;
    /* Writes, or searches, are budgeted apart from reads (see
     * rate_budget). */
    bool separate_write_budget;
    bool separate_search_budget;

    /* The connection's budget for a class of call, the connection's own
     * figures (rate_window, rate_daily) where set, else the CRM's
     * defaults. */
    void (*rate_budget)(const struct connection *conn, enum call_class cls,
                        struct rate_budget *out);
    /* The deal fields the connection syncs, a bit (1u << field) each. */
    unsigned (*synced_fields)(const struct connection *conn);
    /* Checks a new connection against the CRM (credentials, the custom
     * fields or attributes it maps) and returns what it learnt as the
     * connection's settings (JSON text, NULL when none). FS_ERR_INVALID
     * with *error saying what is missing. */
    fs_result (*prepare)(struct provider_session *s, char **settings,
                         char **error);

    /* Subscribes target_url to the connection's deal events and returns
     * the secret the CRM signs them with. NULL when the CRM's webhooks
     * are set up by hand. */
    fs_result (*register_webhook)(struct provider_session *s,
                                  const char *target_url, char **secret,
                                  char **error);

    /* Cuts a delivery into events. FS_ERR_INVALID when it is not one. */
    fs_result (*split_webhook)(const struct webhook_request *req,
                               struct webhook_item **items, size_t *count);
    /* Checks a delivery's authenticity against the connection's secret.
     * FS_ERR_AUTH on a wrong or stale signature. */
    fs_result (*verify_webhook)(const struct connection *conn,
                                const struct webhook_request *req,
                                int64_t now_ms);
    /* Turns one inbox event into a normalised event. */
    fs_result (*parse_event)(const struct connection *conn, const char *json,
                             struct crm_event *out);

    /* Pages through every deal (initial import). */
    fs_result (*list_deals)(struct provider_session *s,
                            struct crm_cursor *cursor, struct crm_deal **out,
                            size_t *count);
    /* Pages through deals modified at or after cursor->watermark, in
     * modification order, past any result cap (backstop). */
    fs_result (*changed_since)(struct provider_session *s,
                               struct crm_cursor *cursor, struct crm_deal **out,
                               size_t *count);
    /* Reads the given deals with per-field modification times. Deals the
     * CRM no longer has are returned with archived set. */
    fs_result (*read_deals)(struct provider_session *s,
                            const char *const *crm_ids, size_t n,
                            struct crm_deal **out, size_t *count);
    /* Writes up to max_write_batch records; results[i] is per write. A
     * whole-call failure (rate limit, 5xx, timeout) is the return value;
     * writes made before it (results[i].done) still count. */
    fs_result (*write_deals)(struct provider_session *s,
                             const struct crm_write *writes, size_t n,
                             struct crm_write_result *results);
    /* Finds a deal by our id (a retried create must not duplicate). */
    fs_result (*find_by_our_id)(struct provider_session *s, const char *our_id,
                                char **crm_id);
    fs_result (*list_owners)(struct provider_session *s, struct crm_owner **out,
                             size_t *count);
    fs_result (*list_stages)(struct provider_session *s, struct crm_stage **out,
                             size_t *count);
    /* OAuth connections: exchanges a grant at the CRM's token endpoint
     * (oauth_token_request with the CRM's URL and client authentication;
     * see providers/oauth.h). NULL when the CRM has no refresh flow. */
    fs_result (*oauth_token)(struct provider_session *s,
                             const struct oauth_grant *grant,
                             struct oauth_tokens *out, char **error);
};

/* The provider with that name ("hubspot"), or NULL. */
const struct provider *provider_by_name(const char *name);

/* The deal fields the connection syncs, a bit (1u << field) each. */
unsigned provider_synced_fields(const struct connection *conn);

/* The connection's budget for a class of call, from its provider. */
void provider_budget(const struct connection *conn, enum call_class cls,
                     struct rate_budget *out);

/* A session with governors of its own, for a one-off job outside the
 * service (an import); the caller closes it. */
void provider_session_open(const struct connection *conn, long timeout_ms,
                           struct provider_session *out);
void provider_session_close(struct provider_session *s);

/* The governor for a class of call in the session. */
struct rate_governor *provider_session_governor(struct provider_session *s,
                                                enum call_class cls);

#endif

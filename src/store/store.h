/* The durable store: orgs, users, connections, the webhook inbox, records
 * with their per-field merge state, sync state and audit, over SQLite. */
#ifndef FIELDSYNC_STORE_STORE_H
#define FIELDSYNC_STORE_STORE_H

#include "base/result.h"
#include "model/connection.h"
#include "model/deal.h"
#include "model/merge.h"
#include "model/stage_map.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One database connection. Not shared between threads: each thread opens
 * its own. Every function returns FS_ERR_BUSY when the database stayed
 * locked past the busy timeout, FS_ERR_DB on other SQLite failures. */
struct store;

/* Opens (creating if needed) the database at path, sets WAL mode and
 * applies pending migrations. */
fs_result store_open(const char *path, struct store **out);
/* A second, read-only connection to s's database file, for another
 * thread; FS_ERR_NOT_FOUND when s has no file (in memory). Its read
 * transaction (a WAL snapshot) begins with its first read, so a reader
 * first used while s holds a write transaction sees the database as it
 * was when that transaction began, none of s's uncommitted writes. */
fs_result store_open_reader(struct store *s, struct store **out);
/* Closes the connection; accepts NULL. */
void store_close(struct store *s);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Functions below run inside the
 * caller's transaction when one is open, else each statement commits on
 * its own (store_record_save and the *_replace functions open their own
 * transaction when none is open). */
fs_result store_begin(struct store *s);
fs_result store_commit(struct store *s);
fs_result store_rollback(struct store *s);

/* Lets this connection keep up to mib MiB of pages in memory (0: back to
 * SQLite's default), for a pass over every deal of a large org. */
fs_result store_set_cache_mib(struct store *s, int mib);

/* Whether this connection's commits wait for the disk (the default) or
 * only for the operating system. A commit that is not flushed can be lost
 * to a power cut, never to a crash of the process, and the log keeps
 * commits in order, so a later flushed commit of any connection makes it
 * durable too. For work that can be derived again from durable state
 * (merging inbox events that stay 'new' until the merge commits). */
/* Caps the database at pages pages for this connection (SQLite
 * max_page_count): writes past it fail as on a full disk (FS_ERR_IO). A
 * test hook. */
fs_result store_set_page_limit(struct store *s, int64_t pages);
fs_result store_set_flush(struct store *s, bool flush);

/* The schema version the database is at after store_open. */
int store_schema_version(struct store *s);
/* SQLite's message for the last failure on this connection, for logs. */
const char *store_last_error(struct store *s);

/* ---- orgs ---- */

/* FS_ERR_CONFLICT when an org of that name exists. */
fs_result store_org_add(struct store *s, const char *name, int64_t *id_out);
/* FS_ERR_NOT_FOUND when none. */
fs_result store_org_find(struct store *s, const char *name, int64_t *id_out);
/* The org's name; the caller frees. */
fs_result store_org_name(struct store *s, int64_t id, char **name_out);

/* ---- users ---- */

enum user_role {
    USER_ROLE_REP = 0,
    USER_ROLE_ADMIN,
};

/* "rep" or "admin". */
const char *store_role_name(enum user_role role);
/* Parses "rep" / "admin"; FS_ERR_INVALID otherwise. */
fs_result store_role_parse(const char *name, enum user_role *out);

struct user {
    int64_t id;
    int64_t org_id;
    char *name;
    char *email; /* may be NULL */
    enum user_role role;
    char *crm_owner_id; /* the user's owner id with the org's current CRM
                         * provider (see store_org_provider), may be NULL */
    bool revoked;
};

void user_clear(struct user *u);
void store_users_free(struct user *users, size_t n);

/* Adds a user with a fresh API token "fs_" + 64 hex chars, returned once
 * in *token_out (caller frees); only its SHA-256 is stored. id_out may be
 * NULL. FS_ERR_CONFLICT when the org already has a user with that email. */
fs_result store_user_add(struct store *s, int64_t org_id, const char *name,
                         const char *email, enum user_role role,
                         const char *crm_owner_id, int64_t *id_out,
                         char **token_out);
/* FS_ERR_AUTH when the token is unknown or revoked. */
fs_result store_user_by_token(struct store *s, const char *token,
                              struct user *out);
/* FS_ERR_NOT_FOUND when the user is not in that org. */
fs_result store_user_get(struct store *s, int64_t org_id, int64_t user_id,
                         struct user *out);
/* Revokes the user's token for good. FS_ERR_NOT_FOUND when the user is not
 * in that org. */
fs_result store_user_revoke(struct store *s, int64_t org_id, int64_t user_id);
/* Sets the user's owner id with the org's current CRM (NULL: none); see
 * store_user_set_owner_id. */
fs_result store_user_set_owner(struct store *s, int64_t org_id, int64_t user_id,
                               const char *owner_id);
/* All users of the org, revoked ones included, by id. */
fs_result store_users_list(struct store *s, int64_t org_id, struct user **out,
                           size_t *n_out);

/* The provider of the org's active connection (the newest when several),
 * or "hubspot" while it has none; the caller frees. Owner ids are kept
 * per provider, so an org that switches CRM keeps each user's id with
 * the old one and gives them one with the new one. */
fs_result store_org_provider(struct store *s, int64_t org_id, char **out);
/* Sets (owner_id NULL: removes) the user's owner id with provider (NULL:
 * the org's current one). FS_ERR_NOT_FOUND when the user is not in that
 * org. store_user_add's crm_owner_id goes in under the current one. */
fs_result store_user_set_owner_id(struct store *s, int64_t org_id,
                                  int64_t user_id, const char *provider,
                                  const char *owner_id);
/* The org's unrevoked user other than except_user linked to owner_id
 * with provider (NULL: the org's current one), in *user_out (0: none). */
fs_result store_user_with_owner_id(struct store *s, int64_t org_id,
                                   const char *provider, const char *owner_id,
                                   int64_t except_user, int64_t *user_out);
/* The user's owner id with provider (NULL: the org's current one); the
 * caller frees. FS_ERR_NOT_FOUND when there is none. */
fs_result store_user_owner_id(struct store *s, int64_t org_id, int64_t user_id,
                              const char *provider, char **out);

/* ---- connections ---- */

/* Adds the connection (c->id ignored); the secrets (token, client_secret,
 * webhook_user, the OAuth ones and the token's times) go to
 * connection_secrets, apart from the settings. */
fs_result store_connection_add(struct store *s, const struct connection *c,
                               int64_t *id_out);
/* Fills *out (secrets included); the caller calls connection_clear. */
fs_result store_connection_get(struct store *s, int64_t id,
                               struct connection *out);
/* The connection a webhook belongs to, an active one first (an org that
 * switched CRM may still receive its old CRM's webhooks). app_id NULL
 * matches any. */
fs_result store_connection_find_route(struct store *s, const char *provider,
                                      const char *account_id,
                                      const char *app_id,
                                      struct connection *out);
/* The org's active connection (the newest when several). */
fs_result store_connection_for_org(struct store *s, int64_t org_id,
                                   struct connection *out);
/* Every active connection, by id. */
fs_result store_connections_active(struct store *s, struct connection **out,
                                   size_t *n_out);
/* Every connection of the org, active or not, by id; without secrets. */
fs_result store_connections_of_org(struct store *s, int64_t org_id,
                                   struct connection **out, size_t *n_out);
void store_connections_free(struct connection *list, size_t n);
fs_result store_connection_set_watermark(struct store *s, int64_t id,
                                         int64_t watermark);
fs_result store_connection_set_active(struct store *s, int64_t id, bool active);
/* Replaces the provider's settings (JSON text, NULL clears). */
/* Keeps an OAuth connection's new tokens (and the API root the CRM named
 * with them, when base_url is not NULL) in one transaction. */
fs_result store_connection_set_tokens(struct store *s, int64_t id,
                                      const char *access, const char *refresh,
                                      int64_t expires_at, int64_t refresh_at,
                                      const char *base_url);
fs_result store_connection_set_settings(struct store *s, int64_t id,
                                        const char *settings);

/* Who our writes are from, as the CRM names it, once learnt (Attio's
 * token actor id shows only on values we wrote). */
fs_result store_connection_set_app_id(struct store *s, int64_t id,
                                      const char *app_id);
/* Replaces the secret that verifies webhooks (one the CRM gave when the
 * webhook was registered). */
fs_result store_connection_set_client_secret(struct store *s, int64_t id,
                                             const char *secret);

/* ---- inbox ---- */

enum inbox_state {
    INBOX_NEW = 0,
    INBOX_DONE,
    INBOX_FAILED,
};

struct inbox_event {
    int64_t id; /* assigned by the store */
    int64_t connection_id;
    char *dedup_key;     /* NULL: never deduplicated */
    char *body;          /* the event as JSON text */
    int64_t received_at; /* 0 on add: the store stamps now */
};

void inbox_event_clear(struct inbox_event *e);
void store_inbox_events_free(struct inbox_event *events, size_t n);

/* Inserts the events, ignoring any whose (connection, dedup_key) is already
 * there. Runs inside the caller's transaction, so many calls share one
 * commit. *inserted_out (may be NULL) counts new rows. */
fs_result store_inbox_add(struct store *s, const struct inbox_event *events,
                          size_t n, size_t *inserted_out);
/* Up to limit 'new' events, oldest first. */
fs_result store_inbox_next(struct store *s, size_t limit,
                           struct inbox_event **out, size_t *n_out);
/* Sets the event's state; error (may be NULL) is kept for failed ones. */
fs_result store_inbox_mark(struct store *s, int64_t id, enum inbox_state state,
                           const char *error);
/* Count of 'new' events. */
fs_result store_inbox_depth(struct store *s, int64_t *n_out);
/* Deletes 'done' events received before the time. */
fs_result store_inbox_purge(struct store *s, int64_t before,
                            int64_t *deleted_out);

/* ---- records ---- */

#define STORE_RECORD_ID_LEN 32 /* hex chars of our record ids */

struct record {
    int64_t rowid; /* 0: not yet saved */
    char *id;      /* our id; NULL on a new record: save makes one */
    int64_t org_id;
    int64_t connection_id; /* 0: none */
    char *crm_id;          /* NULL until the CRM has the record */
    int64_t deleted_at;    /* 0: live */
    char *deleted_reason;  /* "crm_delete", "merged", ... */
    char *merged_into;     /* our id of the survivor of a CRM merge */
    int64_t created_at;
    int64_t updated_at; /* max field time, set by save */
    /* When our last push landed, until a read of the CRM's history after
     * it has shown whether the push overwrote a newer CRM edit; 0: none
     * to check. */
    int64_t unverified_push_at;
    /* Where territories placed the deal when it was last evaluated: the
     * territory (0: none) and the point its location or postcode resolved
     * to (located false: none). Set by the territory service. */
    int64_t territory_id;
    bool located;
    double lat;
    double lng;
    struct field_state fields[DEAL_FIELD_COUNT];
};

void record_clear(struct record *r);
void store_records_free(struct record *records, size_t n);

/* FS_ERR_NOT_FOUND when no such record in that org (deleted ones are
 * found; check deleted_at). */
fs_result store_record_get(struct store *s, int64_t org_id, const char *id,
                           struct record *out);
fs_result store_record_by_rowid(struct store *s, int64_t rowid,
                                struct record *out);
/* Finds by CRM id, following crm_aliases left by CRM merges. */
fs_result store_record_by_crm_id(struct store *s, int64_t connection_id,
                                 const char *crm_id, struct record *out);
/* When a CRM merge folded away our deal that had this CRM id: the time of
 * its tombstone. FS_ERR_NOT_FOUND when no deal of ours with that id was
 * merged away. */
fs_result store_merged_at(struct store *s, int64_t connection_id,
                          const char *crm_id, int64_t *merged_at);
/* Inserts (rowid 0; makes r->id when NULL, sets r->rowid and created_at)
 * or updates the record with all its fields. Sets updated_at to the
 * greatest field time (or created_at) and maintains the pending flag:
 * live, and crm_id NULL or any field pending. FS_ERR_CONFLICT when the
 * id or (connection, crm_id) belongs to another record. */
fs_result store_record_save(struct store *s, struct record *r);
/* True when the record has something for the CRM: it is live and the CRM
 * has never seen it, or a field is pending. */
bool store_record_pending(const struct record *r);
/* From now on old_crm_id resolves to crm_id on that connection. */
fs_result store_crm_alias_add(struct store *s, int64_t connection_id,
                              const char *old_crm_id, const char *crm_id);

struct record_filter {
    int64_t org_id;
    const char *owner; /* NULL: any */
    /* With by_stage, only records whose stage is one of stages[] (or, with
     * stage_not_in, a stage that is none of them). */
    bool by_stage;
    bool stage_not_in;
    const char *const *stages;
    size_t n_stages;
    int64_t updated_since; /* 0: any; else updated_at >= this */
    bool include_deleted;
    const char *after_id; /* cursor: ids greater than this */
    int limit;            /* <= 0: 100; capped at 1000 */
    bool has_bbox;        /* only deals whose point is inside bbox: */
    double bbox[4];       /* min lng, min lat, max lng, max lat */
};

/* Records of the org matching the filter, ordered by id. */
fs_result store_records_list(struct store *s, const struct record_filter *f,
                             struct record **out, size_t *n_out);
/* How many records match the filter (its limit aside). */
fs_result store_records_count(struct store *s, const struct record_filter *f,
                              int64_t *n_out);

/* Records of the connection that need a push now: live, pending, and
 * without a sync_state row or with one not failed and due (next_try_at <=
 * now). Oldest update first. */
fs_result store_records_pending(struct store *s, int64_t connection_id,
                                int64_t now, size_t limit, struct record **out,
                                size_t *n_out);
/* CRM ids of live records of the connection whose push landed before
 * `before` and has not been checked against the CRM's history yet, the
 * oldest first. The caller frees each id and the array. */
fs_result store_records_unverified(struct store *s, int64_t connection_id,
                                   int64_t before, size_t limit, char ***out,
                                   size_t *n_out);
/* The earliest next_try_at among pending, unfailed records of the
 * connection that are waiting on backoff; 0 when none. */
fs_result store_pending_next_due(struct store *s, int64_t connection_id,
                                 int64_t *due_out);

/* ---- sync state (push retries) ---- */

struct sync_state {
    int attempts;
    int64_t next_try_at;
    int64_t first_failure_at;
    char *last_error;
    bool failed;
};

void sync_state_clear(struct sync_state *st);

/* FS_ERR_NOT_FOUND (and *out zeroed) when the record has none. */
fs_result store_sync_get(struct store *s, int64_t rowid,
                         struct sync_state *out);
/* Notes a failed push of a pending record; FS_ERR_NOT_FOUND (nothing
 * written) when the record is gone or no longer pending: a failure only
 * stands while there is something to retry. */
fs_result store_sync_put(struct store *s, int64_t rowid,
                         const struct sync_state *st);
/* Forgets the record's failures (after a successful push). */
fs_result store_sync_clear(struct store *s, int64_t rowid);
/* Puts every failed record of the org back in line (attempts, first
 * failure and next try reset; last error kept). */
fs_result store_sync_retry_failed(struct store *s, int64_t org_id,
                                  int64_t *count_out);

struct sync_status_entry {
    char *record_id;
    char *crm_id; /* may be NULL */
    bool failed;
    int attempts;
    char *last_error; /* may be NULL */
    int64_t first_failure_at;
    int64_t next_try_at;
    unsigned pending_mask; /* bit (1u << field) set per pending field */
};

void store_sync_status_free(struct sync_status_entry *entries, size_t n);
/* The org's live records that are pending or have a sync_state row, by
 * record id, at most limit (<= 0: 1000); only those whose owner is owner
 * when owner is not NULL. */
fs_result store_sync_status(struct store *s, int64_t org_id, const char *owner,
                            int limit, struct sync_status_entry **out,
                            size_t *n_out);
/* How many records store_sync_status would list without a limit: failed
 * ones, and the others (pending). */
fs_result store_sync_status_counts(struct store *s, int64_t org_id,
                                   const char *owner, int64_t *pending_out,
                                   int64_t *failed_out);
/* Pending live records and failed ones, for one connection. */
fs_result store_sync_counts(struct store *s, int64_t connection_id,
                            int64_t *pending_out, int64_t *failed_out);

/* ---- audit ---- */

/* record_id, field and detail may be NULL. */
fs_result store_audit_add(struct store *s, int64_t org_id, const char *kind,
                          const char *record_id, const char *field,
                          const char *detail);

struct audit_entry {
    int64_t id;
    int64_t at;
    char *kind;
    char *record_id;
    char *field;
    char *detail;
};

void store_audit_free(struct audit_entry *entries, size_t n);
/* The org's audit entries with id > after_id, oldest first. */
fs_result store_audit_list(struct store *s, int64_t org_id, int64_t after_id,
                           int limit, struct audit_entry **out, size_t *n_out);

/* ---- territories ---- */

/* A territory as stored: its definition is kept as given (postcode rules
 * canonical, geometry as GeoJSON text); model/territory.h builds the
 * lookup from it. */
struct territory {
    int64_t id; /* 0: not yet saved */
    int64_t org_id;
    char *name;
    int64_t owner_user_id; /* a user of the org */
    int priority;
    char **postcodes; /* canonical postcodes or prefixes */
    size_t n_postcodes;
    char *geometry; /* GeoJSON Polygon or MultiPolygon text, or NULL */
    int64_t created_at;
    int64_t updated_at;
};

void territory_clear(struct territory *t);
void territory_copy(struct territory *dst, const struct territory *src);
void store_territories_free(struct territory *list, size_t n);

/* The org's territories, by id. */
fs_result store_territories_list(struct store *s, int64_t org_id,
                                 struct territory **out, size_t *n_out);
/* Inserts the territory with t->id (0: a fresh one, set in t->id).
 * FS_ERR_CONFLICT when the org has another territory of that name or the
 * id is taken. */
fs_result store_territory_insert(struct store *s, struct territory *t);
/* Rewrites the territory t->id of t->org_id; FS_ERR_NOT_FOUND. */
fs_result store_territory_update(struct store *s, struct territory *t);
/* The id the next new territory gets: ids are never reused, so a deal
 * still marked with a deleted territory never lands in a new one. */
fs_result store_territory_next_id(struct store *s, int64_t *id_out);
/* FS_ERR_NOT_FOUND when the org has no such territory. */
fs_result store_territory_delete(struct store *s, int64_t org_id, int64_t id);
/* A number that changes whenever the org's territories or centroids
 * change, so a lookup built from them knows when it is stale. */
fs_result store_territory_revision(struct store *s, int64_t org_id,
                                   int64_t *revision_out);
fs_result store_territory_bump(struct store *s, int64_t org_id);
/* Live deals per territory (territory 0: in none), as parallel arrays. */
fs_result store_territory_deal_counts(struct store *s, int64_t org_id,
                                      int64_t **ids_out, int64_t **counts_out,
                                      size_t *n_out);

/* ---- postcode centroids ---- */

struct store_centroid {
    char *postcode; /* canonical */
    double lat;
    double lng;
};

/* Adds or replaces the org's centroids of these postcodes. */
fs_result store_centroids_put(struct store *s, int64_t org_id,
                              const struct store_centroid *list, size_t n);
/* Forgets every centroid of the org. */
fs_result store_centroids_clear(struct store *s, int64_t org_id);
typedef void (*store_on_centroid)(void *ctx, const char *postcode, double lat,
                                  double lng);
fs_result store_centroids_each(struct store *s, int64_t org_id,
                               store_on_centroid on_centroid, void *ctx);
/* The centroid of exactly this postcode; FS_ERR_NOT_FOUND. */
fs_result store_centroid_get(struct store *s, int64_t org_id,
                             const char *postcode, double *lat, double *lng);
fs_result store_centroids_count(struct store *s, int64_t org_id,
                                int64_t *n_out);

/* ---- placing deals (territory reassignment) ---- */

/* What a territory reassignment needs of one live deal, read in one pass
 * without loading whole records. */
struct deal_placement {
    int64_t rowid;
    char *id;
    bool has_crm_id;
    bool pending; /* the record's pending flag */
    int64_t updated_at;
    int64_t territory_id;
    bool located;
    double lat;
    double lng;
    struct field_state owner;
    char *postcode; /* values, may be NULL */
    char *location;
};

void deal_placement_clear(struct deal_placement *p);

/* The stored postcode and location values of a record (each may come back
 * NULL); the caller frees. */
fs_result store_record_place_values(struct store *s, int64_t rowid,
                                    char **postcode_out, char **location_out);

/* Calls on_deal for every live deal of the org, in storage order. on_deal
 * may take the strings it wants (setting them NULL); the rest is freed
 * after the call. It runs while the read is open: the only write it may
 * make is store_placement_save of the deal it was given (a row the scan
 * has passed, changed in place). */
typedef fs_result (*store_on_placement)(void *ctx, struct deal_placement *p);
fs_result store_placements_scan(struct store *s, int64_t org_id,
                                store_on_placement on_deal, void *ctx);
/* Writes a deal's new placement: p's territory and point, its owner field
 * when owner_changed, and the record's new pending flag and update time
 * (p->pending and p->updated_at are as read; each is written only when it
 * differs). Inside the caller's transaction. */
fs_result store_placement_save(struct store *s, const struct deal_placement *p,
                               bool pending, int64_t updated_at,
                               bool owner_changed);

/* ---- the org's stages and the map onto them ---- */

/* The org's stages and, for the connection (0: none), the CRM's stages,
 * the links and the defaults. The caller clears it. */
fs_result store_stage_map_load(struct store *s, int64_t org_id,
                               int64_t connection_id, struct stage_map *out);
/* Replaces the org's stages. FS_ERR_CONFLICT, with the key in *in_use
 * (the caller frees), when a connection of the org still maps onto a
 * stage left out. */
fs_result store_org_stages_replace(struct store *s, int64_t org_id,
                                   const struct stage_def *stages, size_t n,
                                   char **in_use);
/* Replaces the connection's links and defaults with those of m. */
fs_result store_stage_links_replace(struct store *s, int64_t connection_id,
                                    const struct stage_map *m);
/* A number that changes whenever anything the org's stage map is read
 * from changes (its stages, its connection's map, its CRM stages, which
 * connection is active), so every process can tell its copy is stale. */
fs_result store_stage_version(struct store *s, int64_t org_id,
                              int64_t *version);
fs_result store_stage_version_bump(struct store *s, int64_t org_id);

/* ---- CRM owners and stages ---- */

struct store_owner {
    char *id;
    char *email;
    char *name;
};

struct store_stage {
    char *pipeline_id;
    char *id;
    char *label;
};

void store_owners_free(struct store_owner *owners, size_t n);
void store_stages_free(struct store_stage *stages, size_t n);

/* Replaces the connection's owner list with these. */
fs_result store_crm_owners_replace(struct store *s, int64_t connection_id,
                                   const struct store_owner *owners, size_t n);
fs_result store_crm_owners_list(struct store *s, int64_t connection_id,
                                struct store_owner **out, size_t *n_out);
/* Whether id is one of the connection's owners (true as well while no
 * owner list has been read: nothing to check against). */
fs_result store_crm_owner_known(struct store *s, int64_t connection_id,
                                const char *id, bool *known);
/* The owner id with that email (case-insensitive); FS_ERR_NOT_FOUND. */
fs_result store_crm_owner_by_email(struct store *s, int64_t connection_id,
                                   const char *email, char **id_out);
fs_result store_crm_stages_replace(struct store *s, int64_t connection_id,
                                   const struct store_stage *stages, size_t n);
fs_result store_crm_stages_list(struct store *s, int64_t connection_id,
                                struct store_stage **out, size_t *n_out);

#endif

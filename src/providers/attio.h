/* The Attio provider (REST v2): any object whose attributes hold the core
 * deal fields is synced through a per-connection attribute map; webhooks
 * carry ids only and lead to a re-read, each value's active_from giving
 * its field's time. The map and the value codecs are pure and exposed
 * here for the tests. */
#ifndef FIELDSYNC_PROVIDERS_ATTIO_H
#define FIELDSYNC_PROVIDERS_ATTIO_H

#include "providers/provider.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Events one delivery may carry (Attio sends one today). */
#define ATTIO_MAX_EVENTS 100
/* Longest Idempotency-Key kept as a dedup key. */
#define ATTIO_MAX_KEY_LEN 200
/* Records one query page holds (Attio's default and our page size). */
#define ATTIO_PAGE_LIMIT 500
/* Attio's documented budgets: reads and writes a second. */
#define ATTIO_READS_PER_S 100
#define ATTIO_WRITES_PER_S 25

extern const struct provider attio_provider;

/* The Attio value types fieldsync can map a field onto. */
enum attio_kind {
    ATTIO_KIND_NONE = 0,
    ATTIO_KIND_TEXT,
    ATTIO_KIND_NUMBER,
    ATTIO_KIND_CURRENCY,
    ATTIO_KIND_DATE,
    ATTIO_KIND_TIMESTAMP,
    ATTIO_KIND_STATUS,
    ATTIO_KIND_ACTOR,    /* actor-reference to a workspace member */
    ATTIO_KIND_LOCATION, /* postcode, or latitude and longitude */
};

/* The Attio type name ("actor-reference") of a kind, and back
 * (ATTIO_KIND_NONE for a type we do not map). */
const char *attio_kind_name(enum attio_kind kind);
enum attio_kind attio_kind_by_name(const char *type);

struct attio_attr {
    char *slug; /* api_slug; NULL: the field is not synced */
    char *id;   /* attribute_id, to tell a record.updated event's field */
    enum attio_kind kind;
};

/* Where each deal field lives on the connection's Attio object. */
struct attio_map {
    char *object;    /* the object's api_slug, e.g. "deals" */
    char *object_id; /* its UUID, to tell its events from others' */
    char *workspace_id;
    struct attio_attr fields[DEAL_FIELD_COUNT];
    struct attio_attr our_id; /* unique text attribute holding our id */
    int writes_per_s;         /* 0: ATTIO_WRITES_PER_S */
};

void attio_map_clear(struct attio_map *m);

/* The attribute a field maps to when the connection does not say, on
 * Attio's standard deals object plus the custom attributes the README
 * asks for; -1 gives our id's ("fieldsync_id"). NULL for none. */
const char *attio_default_slug(int field);

/* The fields every map must sync: name, stage, owner and location. */
bool attio_field_is_core(int field);

/* Builds the map for an object from its attributes as
 * GET /v2/objects/{object}/attributes answers them (the "data" array).
 * overrides[f] (may be NULL) names the attribute for field f, "" leaving
 * the field unsynced; our_id_override the same for our id. A field with
 * no override takes its default attribute, and goes unsynced when the
 * object lacks it. FS_ERR_INVALID with *error (caller frees) saying what
 * is wrong: a core field or our id with no attribute, a named attribute
 * that does not exist, a type that does not fit the field, a multiselect
 * or read-only attribute, postcode and location on two different
 * location attributes. *notes (may be NULL; caller frees) lists the
 * fields left unsynced. */
fs_result attio_map_build(const char *object, const char *object_id,
                          const char *const overrides[DEAL_FIELD_COUNT],
                          const char *our_id_override, const json_t *attributes,
                          struct attio_map *out, char **notes, char **error);

/* The map as the connection's settings hold it (JSON), and back.
 * FS_ERR_INVALID for settings that are not a map. */
json_t *attio_map_to_json(const struct attio_map *m);
fs_result attio_map_from_settings(const char *settings, struct attio_map *out);

/* The field an attribute id stands for (-1 for none; the postcode and
 * location share one, reported as DEAL_LOCATION). */
int attio_map_field_of_attribute(const struct attio_map *m, const char *id);

/* The deal fields the map syncs, a bit (1u << field) each. */
unsigned attio_map_synced(const struct attio_map *m);

/* A field's canonical value from the Attio value object of its attribute
 * (the current one of the attribute's value list). *out NULL when the
 * value says nothing for the field (a location without coordinates).
 * FS_ERR_INVALID when the value is not of the kind or has no canonical
 * form. The caller frees. */
fs_result attio_value_in(enum attio_kind kind, int field, const json_t *value,
                         char **out);

/* The value list to write for the attribute of field, built from the
 * record's values (a location from postcode and location together,
 * when both map onto it); an empty list clears. FS_ERR_INVALID for a
 * value the attribute cannot take. */
fs_result attio_value_out(const struct attio_map *m, int field,
                          const char *const values[DEAL_FIELD_COUNT],
                          json_t **out);

/* A record of the map's object (the "data" of a read, or an item of a
 * query) as a deal: each field's value, its time (active_from of the
 * current value, CRM_TIME_UNKNOWN for an emptied attribute) and who made
 * it, our token being the connection's app_id. */
fs_result attio_deal_from_record(const struct connection *conn,
                                 const struct attio_map *m,
                                 const json_t *record, struct crm_deal *out);

/* Who an Attio actor ({"type", "id"}: an event's actor, a value's
 * created_by_actor) is: our token (its id is the connection's app_id),
 * someone else, or unknown (no type; or a token while our token's id is
 * not learnt yet, so it may be ours). */
enum change_actor attio_actor(const struct connection *conn,
                              const json_t *actor);

/* Lowercase hex HMAC-SHA256 of the body keyed with the webhook secret,
 * as Attio-Signature carries it. The caller frees. */
char *attio_signature(const char *secret, const char *body, size_t len);

/* A Retry-After value (an HTTP-date, or seconds) as the epoch ms to wait
 * until; 0 when it is neither. */
int64_t attio_retry_after(const char *value, int64_t now_ms);

#endif

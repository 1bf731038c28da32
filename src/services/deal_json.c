/* A record as JSON for the field API and the live stream: its fields as
 * text, its tombstone, and where each field stands with the CRM. */
#include "services/deal_json.h"

#include "base/json_num.h"
#include "services/live_stream.h"
#include "services/stage_cache.h"

#include <stdbool.h>
#include <stdlib.h>

static json_t *text_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static const char *origin_name(enum field_origin origin)
{
    switch (origin) {
    case ORIGIN_CRM:
        return "crm";
    case ORIGIN_LOCAL:
        return "local";
    case ORIGIN_NONE:
        break;
    }
    return NULL;
}

static json_t *field_sync_json(const struct field_state *f)
{
    const char *origin = origin_name(f->origin);

    return json_pack("{s:s, s:o, s:I}", "state",
                     merge_field_pending(f) ? "pending" : "synced", "origin",
                     origin ? json_string(origin) : json_null(), "time",
                     (json_int_t)f->time);
}

/* failed wins over pending; a record the CRM has never seen is pending
 * even when no field is, because the pusher still has to create it. */
static const char *record_sync_state(const struct record *r,
                                     const struct sync_state *sync)
{
    if (sync && sync->failed)
        return "failed";
    return store_record_pending(r) ? "pending" : "synced";
}

json_t *deal_json(const struct record *r, const struct sync_state *sync,
                  const struct stage_map *stages)
{
    json_t *obj = json_object();
    json_t *sync_obj = json_object();
    json_t *fields = json_object();
    const char *crm_stage = r->fields[DEAL_STAGE].value;
    const char *stage = stages ? stage_map_key_of(stages, crm_stage) : NULL;

    json_object_set_new(obj, "id", text_or_null(r->id));
    json_object_set_new(obj, "crm_id", text_or_null(r->crm_id));
    for (int i = 0; i < DEAL_FIELD_COUNT; i++) {
        const char *value = r->fields[i].value;
        json_object_set_new(obj, deal_fields[i].name,
                            text_or_null(i == DEAL_STAGE ? stage : value));
        json_object_set_new(fields, deal_fields[i].name,
                            field_sync_json(&r->fields[i]));
    }
    json_object_set_new(obj, "crm_stage", text_or_null(crm_stage));
    json_object_set_new(obj, "stage_unmapped",
                        json_boolean(crm_stage && !stage));
    json_object_set_new(obj, "deleted", json_boolean(r->deleted_at != 0));
    json_object_set_new(obj, "deleted_reason", text_or_null(r->deleted_reason));
    if (r->merged_into)
        json_object_set_new(obj, "merged_into", json_string(r->merged_into));
    json_object_set_new(obj, "territory_id",
                        r->territory_id ? json_integer(r->territory_id)
                                        : json_null());
    json_object_set_new(obj, "point",
                        r->located ? json_pack("[f, f]", r->lng, r->lat)
                                   : json_null());
    json_object_set_new(obj, "created_at", json_integer(r->created_at));
    json_object_set_new(obj, "updated_at", json_integer(r->updated_at));

    json_object_set_new(sync_obj, "state",
                        json_string(record_sync_state(r, sync)));
    if (sync && sync->last_error)
        json_object_set_new(sync_obj, "error", json_string(sync->last_error));
    json_object_set_new(sync_obj, "fields", fields);
    json_object_set_new(obj, "sync", sync_obj);
    return obj;
}

void deal_publish(struct live_stream *live, struct stage_cache *stages,
                  struct store *store, const struct record *r, const char *type)
{
    struct sync_state st = {0};

    if (!live)
        return;
    bool has_sync = store_record_pending(r) &&
                    store_sync_get(store, r->rowid, &st) == FS_OK;
    const struct stage_map *map =
        stages ? stage_cache_get(stages, store, r->org_id) : NULL;
    json_t *obj = deal_json(r, has_sync ? &st : NULL, map);
    if (map)
        stage_cache_release(stages, map);
    char *text = json_num_dumps(obj, JSON_COMPACT);
    live_stream_publish(live, r->org_id, type, text);
    free(text);
    json_decref(obj);
    sync_state_clear(&st);
}

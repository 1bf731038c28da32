/* A record as the field API and the live stream show it. */
#ifndef FIELDSYNC_SERVICES_DEAL_JSON_H
#define FIELDSYNC_SERVICES_DEAL_JSON_H

#include "model/stage_map.h"
#include "store/store.h"

#include <jansson.h>

/* {"id","crm_id","name",...,"deleted","updated_at","sync":{"state":
 * "synced"|"pending"|"failed","error"?,"fields":{"name":{"state","origin",
 * "time"}}}}. "stage" is the org's stage the CRM stage maps to, with the
 * CRM's own in "crm_stage" and "stage_unmapped" true when it maps to none.
 * sync may be NULL (no sync_state row). */
json_t *deal_json(const struct record *r, const struct sync_state *sync,
                  const struct stage_map *stages);

struct live_stream;
struct stage_cache;

/* Publishes the record as it is in memory on the live stream (live may be
 * NULL), with its sync state read from the store when it has something to
 * push (a record with nothing pending is synced). */
void deal_publish(struct live_stream *live, struct stage_cache *stages,
                  struct store *store, const struct record *r,
                  const char *type);

#endif

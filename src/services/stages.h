/* Managing the org's stages and its CRM's map onto them, the same for the
 * admin API and the command line: views and changes as JSON, each change
 * validated whole against the stages read from the CRM before anything is
 * stored. */
#ifndef FIELDSYNC_SERVICES_STAGES_H
#define FIELDSYNC_SERVICES_STAGES_H

#include "base/result.h"
#include "store/store.h"

#include <jansson.h>

/* {"stages":[{"key","label","kind"}], "crm":{"connection","provider",
 * "pipelines":[{"id","stages":[{"id","label","maps_to","default_for":[]}]}]}
 * (null without a connection), "problems":[text], "unmapped_deals":n}.
 * connection_id names one of the org's connections (a standby about to
 * become primary), 0 the active one; FS_ERR_NOT_FOUND when it is not the
 * org's. */
fs_result stages_view(struct store *store, int64_t org_id,
                      int64_t connection_id, json_t **out);

/* Replaces the org's stages with body's "stages" array of {"key","label",
 * "kind"?} ("open" unless said). FS_ERR_INVALID or FS_ERR_CONFLICT (a
 * removed stage still mapped) with *error saying why. */
fs_result stages_define(struct store *store, int64_t org_id, json_t *body,
                        char **error);

/* Replaces the map of one of the org's connections (0: the active one;
 * a standby's map is set before switching to it): body {"map":{crm stage:
 * org stage}, "defaults"?:{pipeline:{org stage: crm stage}}}. Defaults not
 * given are derived where one CRM stage of a pipeline maps to the stage.
 * FS_ERR_INVALID with *error when the result does not validate;
 * FS_ERR_NOT_FOUND when the org has no connection. */
fs_result stages_map(struct store *store, int64_t org_id, int64_t connection_id,
                     json_t *body, char **error);

/* The org's live deals whose CRM stage maps to none of its stages, ids
 * greater than after (NULL: from the start), at most limit. */
fs_result stages_unmapped_deals(struct store *store, int64_t org_id,
                                const char *after, int limit,
                                struct record **out, size_t *n);

#endif

/* The backstop: a periodic incremental read of what changed in each CRM
 * since a watermark, healing whatever webhooks missed. Also runs the
 * initial import of a connection that has never been read. */
#ifndef FIELDSYNC_SERVICES_BACKSTOP_H
#define FIELDSYNC_SERVICES_BACKSTOP_H

#include "base/result.h"
#include "providers/provider.h"
#include "store/store.h"

#include <stdint.h>

struct app;
struct reconcile_effects;
struct backstop;

struct backstop *backstop_new(struct app *app);
void backstop_free(struct backstop *b);

/* Progress of an import, called after each page. */
typedef void (*import_on_progress)(void *ctx, size_t deals_read);

/* Reads the connection's owners and pipeline stages into the store. */
fs_result import_crm_meta(struct store *store,
                          struct provider_session *session);

/* Reads every deal of the connection into the store (owners and stages
 * too) and sets the watermark to the newest modification seen. */
fs_result import_connection(struct store *store,
                            struct provider_session *session,
                            import_on_progress on_progress, void *ctx,
                            size_t *imported_out);

/* One incremental pass for the connection: reads deals changed since its
 * watermark and merges them. */
fs_result backstop_pass(struct store *store, struct provider_session *session,
                        struct reconcile_effects *fx, size_t *changed_out);

#endif

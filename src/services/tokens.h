/* OAuth tokens kept in the store: the persistence of the providers'
 * token keeper, for the service and for one-off command-line jobs. */
#ifndef FIELDSYNC_SERVICES_TOKENS_H
#define FIELDSYNC_SERVICES_TOKENS_H

#include "providers/oauth.h"
#include "providers/provider.h"

/* A keeper whose tokens are read from and written to the database at
 * db_path (each save committed to disk before the tokens are used).
 * db_path is borrowed: it must outlive the keeper. */
struct oauth_keeper *tokens_keeper_new(const char *db_path);

/* provider_session_open with a keeper of its own on db_path, so a job
 * outside the service refreshes and keeps tokens too. */
void tokens_session_open(const struct connection *conn, long timeout_ms,
                         const char *db_path, struct provider_session *out);
void tokens_session_close(struct provider_session *s);

#endif

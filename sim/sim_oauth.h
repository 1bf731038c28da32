/* OAuth for the simulators: the access tokens a CRM's token endpoint
 * issued, each with its lifetime, the one refresh token that works now
 * (a new one each refresh when the CRM rotates them, the old one then
 * dead), and the form bodies token requests carry. Each simulator checks
 * the client's credentials and words its answers itself. */
#ifndef FIELDSYNC_SIM_SIM_OAUTH_H
#define FIELDSYNC_SIM_SIM_OAUTH_H

#include "net/http_server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fields of a token request's form body taken at most. */
#define SIM_FORM_MAX 16

/* An application/x-www-form-urlencoded body, decoded. */
struct sim_form {
    size_t n;
    char *name[SIM_FORM_MAX];
    char *value[SIM_FORM_MAX];
};

void sim_form_parse(struct sim_form *f, const char *body, size_t len);
/* The first field of that name, or NULL. */
const char *sim_form_get(const struct sim_form *f, const char *name);
void sim_form_free(struct sim_form *f);

/* Constant-time equality of two secrets; false when either is NULL. */
bool sim_same_secret(const char *a, const char *b);

struct sim_oauth_config {
    const char *refresh_token; /* the install's first */
    int64_t ttl_s;             /* lifetime of an access token */
    bool rotate;               /* each refresh mints a new refresh token */
};

enum sim_oauth_check {
    SIM_OAUTH_OK,
    SIM_OAUTH_UNKNOWN, /* not issued here, or long forgotten */
    SIM_OAUTH_EXPIRED,
};

/* What one refresh issued (copies; clear with sim_oauth_issue_clear). */
struct sim_oauth_issue {
    char *access_token;
    char *refresh_token;
    int64_t ttl_s;
};

struct sim_oauth;

struct sim_oauth *sim_oauth_new(const struct sim_oauth_config *config);
void sim_oauth_free(struct sim_oauth *o);

/* Whether token is an access token issued here and still alive; for an
 * expired one *expired_ms says how long ago it died. */
enum sim_oauth_check sim_oauth_check(struct sim_oauth *o, const char *token,
                                     int64_t *expired_ms);

/* The token of "Authorization: Bearer <token>" (any case of the scheme),
 * or NULL. */
const char *sim_bearer_token(const struct http_request *req);

/* Exchanges the refresh token for a new access token: false when it is
 * not the one that works now (never issued, or rotated away). */
bool sim_oauth_refresh(struct sim_oauth *o, const char *refresh_token,
                       struct sim_oauth_issue *out);
void sim_oauth_issue_clear(struct sim_oauth_issue *issue);

#endif

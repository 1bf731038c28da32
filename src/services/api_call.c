/* The JSON API's shared machinery: errors, bodies within limits, bearer
 * authentication, and routing over every module's route table. */
#include "services/api_call.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/json_num.h"
#include "base/json_text.h"
#include "base/log.h"
#include "base/urlform.h"
#include "services/admin_api.h"
#include "services/app.h"
#include "services/field_api.h"
#include "services/stage_cache.h"
#include "services/territory_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_MAX_LEN 256

void api_error_clear(struct api_error *err)
{
    if (!err)
        return;
    free(err->field);
    free(err->message);
    memset(err, 0, sizeof(*err));
}

void api_error_set(struct api_error *err, int status, const char *code,
                   const char *field, const char *fmt, ...)
{
    va_list ap;
    char msg[512];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    api_error_clear(err);
    err->status = status;
    err->code = code;
    err->field = field ? xstrdup(field) : NULL;
    err->message = xstrdup(msg);
}

/* Whether a string (value or key) is over the limit; *where names the
 * key that holds it, when there is one. */
static bool has_long_string(json_t *v, const char *key, const char **where)
{
    const char *k;
    json_t *child;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_STRING:
        if (json_string_length(v) > API_MAX_STRING) {
            *where = key;
            return true;
        }
        return false;
    case JSON_OBJECT:
        json_object_foreach(v, k, child)
        {
            if (strlen(k) > API_MAX_STRING) {
                *where = NULL;
                return true;
            }
            if (has_long_string(child, k, where))
                return true;
        }
        return false;
    case JSON_ARRAY:
        json_array_foreach(v, i, child)
        {
            if (has_long_string(child, key, where))
                return true;
        }
        return false;
    default:
        return false;
    }
}

fs_result api_json_parse_object(const char *body, size_t len, json_t **out,
                                struct api_error *err)
{
    json_error_t jerr;
    const char *where = NULL;

    *out = NULL;
    if (!body || len == 0) {
        api_error_set(err, 400, "invalid_json", NULL,
                      "a JSON body is required");
        return FS_ERR_INVALID;
    }
    if (json_text_depth(body, len) > API_MAX_DEPTH) {
        api_error_set(err, 400, "too_deep", NULL,
                      "JSON nested deeper than %d levels", API_MAX_DEPTH);
        return FS_ERR_INVALID;
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /* jansson names its own flag for a \u0000; say it plainly. */
        const char *why = strstr(jerr.text, "JSON_ALLOW_NUL")
                              ? "a string holds a NUL character (\\u0000)"
                              : jerr.text;
        api_error_set(err, 400, "invalid_json", NULL, "%s (line %d, column %d)",
                      why, jerr.line, jerr.column);
        return FS_ERR_INVALID;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        api_error_set(err, 400, "invalid_json", NULL,
                      "the body must be a JSON object");
        return FS_ERR_INVALID;
    }
    if (has_long_string(root, NULL, &where)) {
        /* where points into root: name it before root goes. */
        api_error_set(err, 413, "too_large", where,
                      "a string is longer than %d bytes", API_MAX_STRING);
        json_decref(root);
        return FS_ERR_TOO_LARGE;
    }
    *out = root;
    return FS_OK;
}

/* The path with anything that could break a log line replaced. */
static void log_safe(const char *in, char *out, size_t size)
{
    size_t n = 0;

    for (; in && *in && n + 1 < size; in++) {
        unsigned char c = (unsigned char)*in;
        out[n++] = c > ' ' && c < 0x7f && c != '"' ? (char)c : '?';
    }
    out[n] = '\0';
}

void api_fail(struct api_call *c, int status, const char *code,
              const char *field, const char *message)
{
    char path[160];

    log_safe(c->req->path, path, sizeof(path));
    log_msg(status >= 500 ? LOG_ERROR : LOG_INFO,
            "api_error method=%s path=%s status=%d code=%s field=%s user=%lld",
            c->req->method, path, status, code, field ? field : "-",
            c->authed ? (long long)c->user.id : 0LL);
    if (status == 401)
        http_response_add_header(c->resp, "WWW-Authenticate", "Bearer");
    if (status == 503)
        http_response_add_header(c->resp, "Retry-After", "1");
    http_response_error(c->resp, status, code, field, message);
}

void api_fail_with(struct api_call *c, const struct api_error *err)
{
    api_fail(c, err->status, err->code, err->field, err->message);
}

bool api_txn_again(int attempt, int64_t started_ms)
{
    if (attempt == 0)
        return true;
    return attempt < API_TXN_ATTEMPTS &&
           clock_mono_ms() - started_ms < API_TXN_RETRY_MS;
}

void api_fail_store(struct api_call *c, fs_result r)
{
    if (r == FS_ERR_BUSY) {
        api_fail(c, 503, "busy", NULL, "the database is busy; try again");
        return;
    }
    if (r == FS_ERR_IO) {
        /* A full disk, most likely: nothing was written, try later. */
        log_error("api_store_failed result=%s detail=\"%s\"", fs_result_name(r),
                  store_last_error(c->store));
        api_fail(c, 503, "unavailable", NULL,
                 "the database cannot write now; try again");
        return;
    }
    log_error("api_store_failed result=%s detail=\"%s\"", fs_result_name(r),
              store_last_error(c->store));
    api_fail(c, 500, "internal", NULL, "the store failed");
}

void api_respond(struct api_call *c, int status, json_t *obj)
{
    http_response_set_body(c->resp, status, json_num_dumps(obj, JSON_COMPACT));
    json_decref(obj);
}

const struct stage_map *api_stages(struct api_call *c)
{
    if (!c->stages && c->store)
        c->stages =
            stage_cache_get(app_stage_cache(c->app), c->store, c->user.org_id);
    return c->stages;
}

bool api_is_admin(const struct api_call *c)
{
    return c->user.role == USER_ROLE_ADMIN;
}

bool api_require_admin(struct api_call *c)
{
    if (api_is_admin(c))
        return true;
    api_fail(c, 403, "forbidden", NULL, "only admins may do this");
    return false;
}

json_t *api_body_object(struct api_call *c)
{
    struct api_error err = {0};
    json_t *root = NULL;

    if (api_json_parse_object(c->req->body, c->req->body_len, &root, &err) !=
        FS_OK)
        api_fail_with(c, &err);
    api_error_clear(&err);
    return root;
}

static bool authenticate(struct api_call *c)
{
    const char *h = http_request_header(c->req, "Authorization");

    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        api_fail(c, 401, "unauthorized", NULL, "a bearer token is required");
        return false;
    }
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    if (*token == '\0' || strlen(token) > TOKEN_MAX_LEN) {
        api_fail(c, 401, "unauthorized", NULL, "unknown or revoked token");
        return false;
    }

    fs_result r = store_user_by_token(c->store, token, &c->user);
    if (r == FS_ERR_AUTH || r == FS_ERR_NOT_FOUND) {
        api_fail(c, 401, "unauthorized", NULL, "unknown or revoked token");
        return false;
    }
    if (r != FS_OK) {
        api_fail_store(c, r);
        return false;
    }
    c->authed = true;
    return true;
}

/* Whether path matches the route; an id segment is left in *id. */
static bool route_matches(const struct api_route *r, const char *path,
                          const char **id)
{
    size_t len = strlen(r->path);

    static const char id_part[] = "{id}";
    size_t id_len = sizeof(id_part) - 1;

    if (len > id_len && strcmp(r->path + len - id_len, id_part) == 0) {
        if (strncmp(path, r->path, len - id_len) != 0)
            return false;
        const char *rest = path + len - id_len;
        size_t rest_len = strlen(rest);
        if (rest_len == 0 || rest_len > API_ID_MAX_LEN || strchr(rest, '/'))
            return false;
        *id = rest;
        return true;
    }
    return strcmp(path, r->path) == 0;
}

static bool method_allowed(const struct api_route *r, const char *method)
{
    size_t len = strlen(method);
    const char *p = r->methods;

    while ((p = strstr(p, method)) != NULL) {
        bool starts = p == r->methods || p[-1] == ' ';
        bool ends = p[len] == '\0' || p[len] == ',';
        if (starts && ends)
            return true;
        p += len;
    }
    return false;
}

static const struct api_route *find_route(const char *path, const char **id)
{
    static const struct {
        const struct api_route *routes;
        const size_t *count;
    } tables[] = {
        {field_api_routes, &field_api_route_count},
        {admin_api_routes, &admin_api_route_count},
        {territory_api_routes, &territory_api_route_count},
    };

    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (size_t i = 0; i < *tables[t].count; i++) {
            if (route_matches(&tables[t].routes[i], path, id))
                return &tables[t].routes[i];
        }
    }
    return NULL;
}

void api_handle(struct app *app, const struct http_request *req,
                struct http_response *resp)
{
    struct api_call c = {.app = app, .req = req, .resp = resp};
    const char *id = NULL;
    const struct api_route *route = find_route(req->path, &id);

    if (!route) {
        api_fail(&c, 404, "not_found", NULL, "no such endpoint");
        return;
    }
    if (!method_allowed(route, req->method)) {
        http_response_add_header(resp, "Allow", route->methods);
        api_fail(&c, 405, "method_not_allowed", NULL,
                 "method not allowed on this endpoint");
        return;
    }

    c.store = app_store_acquire(app);
    if (!c.store) {
        api_fail(&c, 503, "unavailable", NULL, "the database is unavailable");
        return;
    }
    if (authenticate(&c))
        route->handle(&c, id);
    if (c.stages)
        stage_cache_release(app_stage_cache(app), c.stages);
    app_store_release(app, c.store);
    user_clear(&c.user);
}

fs_result api_query_each(const char *raw_url, const char *const *names,
                         size_t n, api_query_fn each, void *ctx,
                         struct api_error *err)
{
    const char *p = raw_url ? strchr(raw_url, '?') : NULL;
    bool *seen = xcalloc(n ? n : 1, sizeof(*seen));
    fs_result result = FS_OK;

    for (p = p ? p + 1 : ""; *p && result == FS_OK;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t key_len = eq ? (size_t)(eq - p) : len;
        char *key = urlform_decode(p, key_len);
        char *value =
            eq ? urlform_decode(eq + 1, len - key_len - 1) : xstrdup("");
        size_t which = n;

        for (size_t i = 0; key && i < n; i++) {
            if (strcmp(key, names[i]) == 0)
                which = i;
        }
        if (len == 0) {
            free(value);
        } else if (!key || !value) {
            api_error_set(err, 400, "invalid_param", key,
                          "malformed percent-encoding in the query");
            free(value);
            result = FS_ERR_INVALID;
        } else if (which == n) {
            api_error_set(err, 400, "unknown_param", key,
                          "unknown query parameter");
            free(value);
            result = FS_ERR_INVALID;
        } else if (seen[which]) {
            api_error_set(err, 400, "invalid_param", key,
                          "query parameter given twice");
            free(value);
            result = FS_ERR_INVALID;
        } else {
            seen[which] = true;
            if (each)
                result = each(which, value, ctx, err);
            else
                free(value);
        }
        free(key);
        p += len;
        if (*p == '&')
            p++;
    }
    free(seen);
    return result;
}

bool api_query_only(struct api_call *c, const char *const *names)
{
    struct api_error err = {0};
    size_t n = 0;

    while (names[n])
        n++;
    if (api_query_each(c->req->raw_url, names, n, NULL, NULL, &err) == FS_OK)
        return true;
    api_fail_with(c, &err);
    api_error_clear(&err);
    return false;
}

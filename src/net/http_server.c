/* HTTP server over libmicrohttpd. Each connection has its own thread, so a
 * handler may block (group commit, live streams). Bodies are collected up
 * to the configured limit; past it the request is answered 413 without
 * calling the handler. */
#include "net/http_server.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_server_config config;
    uint16_t port;
};

/* Per-request state, created when MHD first sees the request line. */
struct request_state {
    char *raw_url;
    struct buf body;
    bool started; /* MHD's first call carries headers only */
    bool too_large;
};

const char *http_request_header(const struct http_request *req,
                                const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_query(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void http_response_set_body(struct http_response *resp, int status, char *body)
{
    free(resp->body);
    resp->status = status;
    resp->body = body;
    resp->body_len = body ? strlen(body) : 0;
}

void http_response_error(struct http_response *resp, int status,
                         const char *code, const char *field,
                         const char *message)
{
    json_t *obj = json_pack("{s:s, s:s}", "error", code, "message", message);
    if (field)
        json_object_set_new(obj, "field", json_string(field));
    http_response_set_body(resp, status, json_dumps(obj, JSON_COMPACT));
    json_decref(obj);
}

void http_response_add_header(struct http_response *resp, const char *name,
                              const char *value)
{
    for (size_t i = 0; i < 7; i++) {
        if (!resp->headers[i][0]) {
            resp->headers[i][0] = xstrdup(name);
            resp->headers[i][1] = xstrdup(value);
            return;
        }
    }
}

static void response_release(struct http_response *resp)
{
    free(resp->body);
    for (size_t i = 0; i < 8; i++) {
        free(resp->headers[i][0]);
        free(resp->headers[i][1]);
    }
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct request_state *state = xcalloc(1, sizeof(*state));
    state->raw_url = xstrdup(uri);
    return state;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request_state *state = *con_cls;
    if (!state)
        return;
    free(state->raw_url);
    buf_free(&state->body);
    free(state);
    *con_cls = NULL;
}

static ssize_t on_stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct http_response *resp = cls;
    ssize_t n = resp->stream_read(resp->stream_ctx, out, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void on_stream_free(void *cls)
{
    struct http_response *resp = cls;
    if (resp->stream_close)
        resp->stream_close(resp->stream_ctx);
    response_release(resp);
    free(resp);
}

static enum MHD_Result send_response(struct MHD_Connection *conn,
                                     struct http_response *resp)
{
    struct MHD_Response *mhd;

    if (resp->stream_read) {
        struct http_response *held = xmalloc(sizeof(*held));
        *held = *resp;
        memset(resp, 0, sizeof(*resp));
        resp = held;
        mhd = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, 4096, on_stream_read, held, on_stream_free);
    } else {
        mhd = MHD_create_response_from_buffer(
            resp->body_len, resp->body ? resp->body : (char *)"",
            MHD_RESPMEM_MUST_COPY);
    }
    MHD_add_response_header(mhd, "Content-Type",
                            resp->content_type ? resp->content_type
                                               : "application/json");
    for (size_t i = 0; i < 8 && resp->headers[i][0]; i++)
        MHD_add_response_header(mhd, resp->headers[i][0], resp->headers[i][1]);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, mhd);
    MHD_destroy_response(mhd);
    if (!resp->stream_read)
        response_release(resp);
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct http_server *server = cls;
    struct request_state *state = *con_cls;
    struct http_response resp = {0};

    if (!state->started) {
        state->started = true;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t limit = server->config.max_body;
        const char *big = server->config.large_body_prefix;
        if (big && strncmp(url, big, strlen(big)) == 0)
            limit = server->config.large_max_body;
        if (state->body.len + *upload_data_size > limit)
            state->too_large = true;
        else
            buf_append(&state->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (state->too_large) {
        http_response_error(&resp, 413, "too_large", NULL,
                            "request body is over the size limit");
        return send_response(conn, &resp);
    }

    const char *host =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    struct http_request req = {
        .method = method,
        .path = url,
        .raw_url = state->raw_url,
        .host = host ? host : "",
        .body = state->body.data ? state->body.data : "",
        .body_len = state->body.len,
        .conn = conn,
    };
    server->config.on_request(server->config.ctx, &req, &resp);
    if (resp.status == 0)
        http_response_error(&resp, 500, "internal", NULL, "no response");
    return send_response(conn, &resp);
}

static fs_result parse_listen(const char *listen, struct sockaddr_in *addr)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return FS_ERR_INVALID;

    char *host = xstrndup(listen, (size_t)(colon - listen));
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    fs_result result = FS_OK;

    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (*end != '\0' || port < 0 || port > 65535)
        result = FS_ERR_INVALID;
    else if (strcmp(host, "localhost") == 0 || host[0] == '\0')
        addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &addr->sin_addr) != 1)
        result = FS_ERR_INVALID;
    free(host);
    return result;
}

fs_result http_server_start(const struct http_server_config *config,
                            struct http_server **out)
{
    struct sockaddr_in addr;
    fs_result result = parse_listen(config->listen, &addr);
    if (result != FS_OK)
        return result;

    struct http_server *server = xcalloc(1, sizeof(*server));
    server->config = *config;
    if (!server->config.max_body)
        server->config.max_body = 1 << 20;
    server->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_access, server, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_CONNECTION_LIMIT,
        config->max_connections ? config->max_connections : 256u,
        MHD_OPTION_CONNECTION_TIMEOUT,
        config->timeout_s ? config->timeout_s : 30u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, server,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, server, MHD_OPTION_END);
    if (!server->daemon) {
        free(server);
        return FS_ERR_IO;
    }

    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info ? info->port : ntohs(addr.sin_port);
    *out = server;
    return FS_OK;
}

uint16_t http_server_port(const struct http_server *server)
{
    return server->port;
}

void http_server_stop(struct http_server *server)
{
    if (!server)
        return;
    MHD_stop_daemon(server->daemon);
    free(server);
}

/* HTTP server over libmicrohttpd. Each connection has its own thread, so a
 * handler may block (group commit, live streams). Bodies are collected up
 * to the configured limit; past it the request is answered 413 without
 * calling the handler. A watchdog thread cuts connections whose request
 * has not arrived whole in time (slow clients), since libmicrohttpd only
 * knows an idle timeout, which a client sending a byte now and then never
 * reaches. */
#include "net/http_server.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Connections let in past max_connections only to be answered 503. */
#define HTTP_CONNECTION_HEADROOM 64u
/* How often the watchdog looks for requests past their time. */
#define WATCHDOG_STEP_MS 100
/* libmicrohttpd's memory per connection holds the headers and its
 * buffers. Headers past it get libmicrohttpd's own 431 (an HTML text no
 * option replaces), so it leaves room well past our own header limit for
 * the request callback to answer ours. Only what a request fills is
 * resident. */
#define MHD_POOL_MIN ((size_t)256 * 1024)

/* Where a connection is in its current request. */
enum track_phase {
    TRACK_IDLE,      /* between requests (or before the first) */
    TRACK_RECEIVING, /* request line seen, headers or body arriving */
    TRACK_HANDLING,  /* received whole: the handler or the answer runs */
};

/* One open connection, for the connection limit and the watchdog. Made
 * and freed by libmicrohttpd's connection notifications; the socket is
 * closed only after the "closed" one, so fd stays ours while listed. */
struct conn_track {
    int fd;
    enum track_phase phase;
    int64_t since; /* monotonic ms the phase began */
    bool cut;      /* the watchdog shut it */
    struct conn_track *prev;
    struct conn_track *next;
};

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_server_config config;
    uint16_t port;
    bool tls;

    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t wake;
    struct conn_track *tracks;
    unsigned open_connections;
    bool stopping;
    bool watchdog_started;
    pthread_t watchdog;
};

/* Per-request state, created when MHD first sees the request line. */
struct request_state {
    char *raw_url;
    struct buf body;
    struct conn_track *track;
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

static void track_phase_set(struct http_server *server, struct conn_track *t,
                            enum track_phase phase)
{
    if (!t)
        return;
    pthread_mutex_lock(&server->lock);
    t->phase = phase;
    t->since = clock_mono_ms();
    pthread_mutex_unlock(&server->lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *server = cls;
    struct conn_track *t = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        t = xcalloc(1, sizeof(*t));
        t->fd = info ? info->connect_fd : -1;
        t->phase = TRACK_IDLE;
        t->since = clock_mono_ms();
        pthread_mutex_lock(&server->lock);
        t->next = server->tracks;
        if (server->tracks)
            server->tracks->prev = t;
        server->tracks = t;
        server->open_connections++;
        pthread_mutex_unlock(&server->lock);
        *socket_context = t;
        return;
    }
    if (!t)
        return;
    pthread_mutex_lock(&server->lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        server->tracks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    server->open_connections--;
    pthread_mutex_unlock(&server->lock);
    free(t);
    *socket_context = NULL;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct http_server *server = cls;
    struct request_state *state = xcalloc(1, sizeof(*state));
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    state->raw_url = xstrdup(uri);
    state->track = info ? info->socket_context : NULL;
    track_phase_set(server, state->track, TRACK_RECEIVING);
    return state;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *server = cls;
    struct request_state *state = *con_cls;
    if (!state)
        return;
    track_phase_set(server, state->track, TRACK_IDLE);
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
                                     struct http_response *resp, bool close)
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
    if (close)
        MHD_add_response_header(mhd, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, mhd);
    MHD_destroy_response(mhd);
    if (!resp->stream_read)
        response_release(resp);
    return ret;
}

static enum MHD_Result on_header_size(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *value)
{
    size_t *total = cls;
    *total += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* Answers a request refused by a limit, closing the connection after. */
static enum MHD_Result refuse(struct MHD_Connection *conn, int status,
                              const char *code, const char *message)
{
    struct http_response resp = {0};

    log_info("event=http_refused status=%d reason=%s", status, code);
    http_response_error(&resp, status, code, NULL, message);
    if (status == 503)
        http_response_add_header(&resp, "Retry-After", "1");
    return send_response(conn, &resp, true);
}

/* The limits known once the headers are in: connections, header size,
 * the announced body size. Answers and returns false past one. */
/* The most body a request to url may carry. */
static size_t body_limit(const struct http_server *server, const char *url)
{
    const char *big = server->config.large_body_prefix;

    if (big && strncmp(url, big, strlen(big)) == 0)
        return server->config.large_max_body;
    return server->config.max_body;
}

static bool admit_request(struct http_server *server,
                          struct MHD_Connection *conn, const char *url,
                          const struct request_state *state,
                          enum MHD_Result *ret)
{
    size_t header_bytes = strlen(state->raw_url);
    const char *length =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    unsigned open;

    pthread_mutex_lock(&server->lock);
    open = server->open_connections;
    pthread_mutex_unlock(&server->lock);
    if (open > server->config.max_connections) {
        *ret = refuse(conn, 503, "busy", "too many connections; retry later");
        return false;
    }
    MHD_get_connection_values(conn, MHD_HEADER_KIND, on_header_size,
                              &header_bytes);
    if (header_bytes > server->config.max_header_bytes) {
        *ret = refuse(conn, 431, "headers_too_large",
                      "request headers are over the size limit");
        return false;
    }
    if (length) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(length, &end, 10);
        if (errno == 0 && end != length && *end == '\0' &&
            n > body_limit(server, url)) {
            *ret = refuse(conn, 413, "too_large",
                          "request body is over the size limit");
            return false;
        }
    }
    return true;
}

/* Marks the request as received whole, unless the watchdog cut it. */
static bool start_handling(struct http_server *server, struct conn_track *t)
{
    bool cut = false;

    if (!t)
        return true;
    pthread_mutex_lock(&server->lock);
    cut = t->cut;
    t->phase = TRACK_HANDLING;
    t->since = clock_mono_ms();
    pthread_mutex_unlock(&server->lock);
    return !cut;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct http_server *server = cls;
    struct request_state *state = *con_cls;
    struct http_response resp = {0};
    enum MHD_Result ret = MHD_YES;

    if (!state->started) {
        state->started = true;
        if (!admit_request(server, conn, url, state, &ret))
            return ret;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (state->body.len + *upload_data_size > body_limit(server, url))
            state->too_large = true;
        else
            buf_append(&state->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!start_handling(server, state->track))
        return MHD_NO;
    if (state->too_large)
        return refuse(conn, 413, "too_large",
                      "request body is over the size limit");

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
    return send_response(conn, &resp, false);
}

/* Shuts a connection whose request is late: a plain one first gets a 408
 * written straight to the socket (its thread is only reading then). */
static void cut_late(struct http_server *server, struct conn_track *t)
{
    static const char body[] = "{\"error\":\"request_timeout\",\"message\":"
                               "\"request not received in time\"}";
    char late[256];
    int len = snprintf(late, sizeof(late),
                       "HTTP/1.1 408 Request Timeout\r\n"
                       "Content-Type: application/json\r\n"
                       "Connection: close\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                       sizeof(body) - 1, body);

    if (t->fd >= 0 && !server->tls && len > 0) {
        ssize_t n = send(t->fd, late, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
    if (t->fd >= 0)
        shutdown(t->fd, SHUT_RDWR);
    t->cut = true;
    log_info("event=http_refused status=408 reason=request_timeout phase=%s",
             t->phase == TRACK_IDLE ? "idle" : "receiving");
}

static void *watchdog_main(void *arg)
{
    struct http_server *server = arg;
    int64_t limit = server->config.request_timeout_ms;

    pthread_mutex_lock(&server->lock);
    while (!server->stopping) {
        int64_t now = clock_mono_ms();
        for (struct conn_track *t = server->tracks; t; t = t->next) {
            if (!t->cut && t->phase != TRACK_HANDLING && now - t->since > limit)
                cut_late(server, t);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += WATCHDOG_STEP_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&server->wake, &server->lock, &until);
    }
    pthread_mutex_unlock(&server->lock);
    return NULL;
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

static void config_defaults(struct http_server_config *c)
{
    if (!c->max_body)
        c->max_body = HTTP_DEFAULT_MAX_BODY;
    if (!c->max_header_bytes)
        c->max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES;
    if (!c->max_connections)
        c->max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
    if (!c->timeout_s)
        c->timeout_s = HTTP_DEFAULT_IDLE_TIMEOUT_S;
    if (!c->request_timeout_ms)
        c->request_timeout_ms = HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
}

static void server_free(struct http_server *server)
{
    if (server->watchdog_started) {
        pthread_mutex_lock(&server->lock);
        server->stopping = true;
        pthread_cond_signal(&server->wake);
        pthread_mutex_unlock(&server->lock);
        pthread_join(server->watchdog, NULL);
    }
    pthread_cond_destroy(&server->wake);
    pthread_mutex_destroy(&server->lock);
    free(server);
}

static void init_wake_cond(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

/* What libmicrohttpd says of a peer that went away (a client closing the
 * live stream while an event is sent, a reset, a read cut short): part of
 * serving, logged at info. */
static const char *const peer_gone_words[] = {
    "Failed to send", "Failed to receive",     "disconnected", "closed by",
    "reset",          "Connection was closed", "timed out",    NULL};

/* What says the server itself cannot work: logged at error. */
static const char *const server_broken_words[] = {"Failed to bind",
                                                  "Failed to listen",
                                                  "Failed to create",
                                                  "thread",
                                                  "memory",
                                                  "Failed to start",
                                                  NULL};

/* What libmicrohttpd says just before answering a request too big for
 * a connection's memory itself (that answer is logged as a refusal):
 * logged at debug. */
static const char *const request_too_big_words[] = {"in pool", NULL};

static bool mentions_any(const char *text, const char *const *words)
{
    for (size_t i = 0; words[i]; i++) {
        if (strstr(text, words[i]))
            return true;
    }
    return false;
}

/* What libmicrohttpd starts a message with when it answers a request
 * itself, the status following. */
#define MHD_REFUSAL_TEXT "HTTP response code is "

/* The reason our own refusals log for a status libmicrohttpd answers. */
static const char *refusal_reason(unsigned long status)
{
    switch (status) {
    case 431:
        return "headers_too_large";
    case 414:
        return "uri_too_long";
    case 413:
        return "too_large";
    default:
        return "bad_request";
    }
}

/* A request libmicrohttpd answered itself (past its memory for headers,
 * a malformed request): logged like our own refusals, without the HTML
 * page it quotes. False when text is not one. */
static bool log_library_refusal(const char *text)
{
    const char *at = strstr(text, MHD_REFUSAL_TEXT);
    if (!at)
        return false;

    char *end = NULL;
    unsigned long status = strtoul(at + strlen(MHD_REFUSAL_TEXT), &end, 10);
    if (end == at + strlen(MHD_REFUSAL_TEXT) || status < 400 || status > 599)
        return false;
    if (status >= 500)
        log_error("event=http_library_error status=%lu by=libmicrohttpd",
                  status);
    else
        log_info("event=http_refused status=%lu reason=%s by=libmicrohttpd",
                 status, refusal_reason(status));
    return true;
}

/* MHD_OPTION_EXTERNAL_LOGGER: libmicrohttpd's own messages as one
 * key=value line each, at the level their meaning has (the rest at
 * warn), instead of raw text on stderr. */
static void on_mhd_log(void *ctx, const char *fmt, va_list ap)
{
    va_list copy;

    (void)ctx;
    va_copy(copy, ap);
    int len = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (len < 0)
        return;
    char *text = xmalloc((size_t)len + 1);
    vsnprintf(text, (size_t)len + 1, fmt, ap);
    if (log_library_refusal(text)) {
        free(text);
        return;
    }
    log_clean_value(text);
    enum log_level level = LOG_WARN;
    if (mentions_any(text, request_too_big_words))
        level = LOG_DEBUG;
    else if (mentions_any(text, peer_gone_words))
        level = LOG_INFO;
    else if (mentions_any(text, server_broken_words))
        level = LOG_ERROR;
    log_msg(level,
            "event=http_library_message library=libmicrohttpd "
            "message=\"%s\"",
            text);
    free(text);
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
    config_defaults(&server->config);
    pthread_mutex_init(&server->lock, NULL);
    init_wake_cond(&server->wake);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    size_t pool = server->config.max_header_bytes * 2 + 16 * 1024;
    struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
    server->tls = config->tls_cert && config->tls_key;
    if (server->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            server_free(server);
            return FS_ERR_INVALID;
        }
        flags |= MHD_USE_TLS;
        tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
                                         (void *)(uintptr_t)config->tls_key};
        tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
                                         (void *)(uintptr_t)config->tls_cert};
    }
    server->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, server,
        /* First: libmicrohttpd logs through it only from where it is. */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, server, MHD_OPTION_SOCK_ADDR,
        &addr, MHD_OPTION_CONNECTION_LIMIT,
        server->config.max_connections + HTTP_CONNECTION_HEADROOM,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, server->config.max_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, server->config.timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        pool > MHD_POOL_MIN ? pool : MHD_POOL_MIN, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, server, MHD_OPTION_URI_LOG_CALLBACK, on_uri, server,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, server, MHD_OPTION_ARRAY,
        tls, MHD_OPTION_END);
    if (!server->daemon) {
        result = server->tls ? FS_ERR_INVALID : FS_ERR_IO;
        server_free(server);
        return result;
    }
    if (pthread_create(&server->watchdog, NULL, watchdog_main, server) != 0)
        abort();
    server->watchdog_started = true;

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
    server_free(server);
}

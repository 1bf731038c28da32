/* An embedded HTTP server over libmicrohttpd: one callback per request,
 * bodies collected up to a limit, thread per connection, every peer-given
 * size and time limited, plain HTTP or HTTPS. */
#ifndef FIELDSYNC_NET_HTTP_SERVER_H
#define FIELDSYNC_NET_HTTP_SERVER_H

#include "base/result.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct http_server;

struct http_request {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* decoded path without the query */
    const char *raw_url; /* path and query exactly as sent */
    const char *host;    /* Host header, or "" */
    const char *body;    /* NUL-terminated, body_len bytes */
    size_t body_len;
    void *conn; /* opaque, for the lookups below */
};

/* A request header (case-insensitive name), or NULL. */
const char *http_request_header(const struct http_request *req,
                                const char *name);
/* A decoded query argument, or NULL. */
const char *http_request_query(const struct http_request *req,
                               const char *name);

/* Streams a body produced while the response is open (server-sent events).
 * on_read fills up to max bytes and returns the count; it may block, must
 * return 0 only after waiting a while (keep-alive), and -1 to end. */
typedef ssize_t (*http_on_stream_read)(void *ctx, char *out, size_t max);
typedef void (*http_on_stream_close)(void *ctx);

struct http_response {
    int status;
    char *body; /* owned by the response; freed by the server */
    size_t body_len;
    const char *content_type; /* default "application/json" */
    char *headers[8][2];      /* extra headers, owned, NULL-terminated */
    http_on_stream_read stream_read;
    http_on_stream_close stream_close;
    void *stream_ctx;
};

/* Sets a JSON body ("application/json") taking ownership of body. */
void http_response_set_body(struct http_response *resp, int status, char *body);
/* Sets {"error":code,"message":msg[,"field":field]} with the status. */
void http_response_error(struct http_response *resp, int status,
                         const char *code, const char *field,
                         const char *message);
/* Adds a header to the response (both strings copied). */
void http_response_add_header(struct http_response *resp, const char *name,
                              const char *value);

typedef void (*http_on_request)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

/* Defaults of the limits below (a 0 in the config takes them). */
#define HTTP_DEFAULT_MAX_BODY ((size_t)1 << 20)
#define HTTP_DEFAULT_MAX_HEADER_BYTES ((size_t)16 * 1024)
#define HTTP_DEFAULT_MAX_CONNECTIONS 256u
#define HTTP_DEFAULT_IDLE_TIMEOUT_S 15u
#define HTTP_DEFAULT_REQUEST_TIMEOUT_MS 30000u

/* Every limit answers with a JSON error ({"error":code,...}) and closes
 * the connection: 413 too_large (a Content-Length over max_body is
 * answered before the body is read), 431 headers_too_large, 503 busy with
 * Retry-After past max_connections, 408 request_timeout for a request not
 * received whole in time (slow clients; the socket is then shut). */
struct http_server_config {
    const char *listen; /* "127.0.0.1:8080"; port 0 picks a free one */
    size_t max_body;    /* bytes of a request body */
    const char *large_body_prefix; /* paths starting so (may be NULL) */
    size_t large_max_body;         /* ... take bodies up to this instead */
    size_t max_header_bytes;       /* request line and headers together */
    unsigned max_connections;      /* open at once; a few more are let in to be
                                    * answered 503, beyond that refused */
    unsigned max_per_ip;           /* open at once from one address; 0: none
                                    * (all clients behind a proxy share one) */
    unsigned timeout_s;            /* idle connections are closed after this */
    unsigned request_timeout_ms;   /* from the first byte of a request to its
                                    * last, or an idle connection's stay */
    const char *tls_cert; /* PEM text; with tls_key, serves HTTPS only */
    const char *tls_key;  /* PEM text of the certificate's private key */
    http_on_request on_request;
    void *ctx;
};

/* FS_ERR_INVALID for a bad listen address or TLS key pair (or TLS asked
 * of a libmicrohttpd built without it), FS_ERR_IO when it cannot bind. */
fs_result http_server_start(const struct http_server_config *config,
                            struct http_server **out);
/* The port actually bound (useful with port 0). */
uint16_t http_server_port(const struct http_server *server);
void http_server_stop(struct http_server *server);

#endif

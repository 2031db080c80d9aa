/*
 * http_client.h: the small HTTP/1.1 client `keel` uses to read from
 * keel-projector (docs/http-api.md). One GET per connection over a POSIX
 * socket (IPv4, IPv6 or a host name through getaddrinfo), sent with
 * "Connection: close" and an optional bearer token; the answer's status,
 * a few headers and its body (Content-Length, chunked or up to EOF, at
 * most a size cap) come back in a keel__http_reply_t. Every wait is bounded
 * by a deadline, so a projector that hangs cannot hang the command line.
 * Only plain http:// URLs: TLS is a reverse proxy's business.
 */
#ifndef KEEL_CLI_HTTP_CLIENT_H
#define KEEL_CLI_HTTP_CLIENT_H

#include <stddef.h>

/* Bodies above this are refused (KEEL_ERR_TOO_LARGE). */
#define KEEL_HTTP_MAX_BODY (64u * 1024 * 1024)

/* Where the server is, parsed from an http:// URL by keel__http_parse(). */
typedef struct keel__http_url_s {
        char url[512];  /* the URL as given, without a trailing '/', for
                         * messages */
        char host[256]; /* name or address, without IPv6 brackets */
        char port[8];   /* decimal; "80" when the URL names none */
        char base[256]; /* path prefix without a trailing '/' ("" for none) */
} keel__http_url_t;

/* A server's answer. Fill with keel__http_get(), free with
 * keel__http_reply_free(). */
typedef struct keel__http_reply_s {
        int status;             /* 200, 404, ... */
        int retry_after;        /* Retry-After in seconds, -1 when absent */
        char content_type[128]; /* "" when absent */
        char *body;             /* malloc'd, NUL-terminated (never NULL
                                 * after success) */
        size_t len;             /* body bytes, the NUL not counted */
} keel__http_reply_t;

/*
 * Parse url ("http://host[:port][/prefix]") into *out. KEEL_OK, or
 * KEEL_ERR_INVALID_ARG with a message naming the URL (https:// included:
 * it is not supported).
 */
int keel__http_parse(const char *url, keel__http_url_t *out, char *err,
                     size_t errsize);

/*
 * GET base's prefix + target (a path starting with '/', already
 * percent-encoded, with its query) and read the answer into *reply,
 * whatever its status. token: sent as "Authorization: Bearer <token>"
 * unless NULL or empty. timeout_ms bounds the whole exchange after name
 * resolution, up to the body's last byte (a long poll adds its wait). Returns
 * KEEL_OK; KEEL_ERR_TRANSPORT when no connection could be made or it broke
 * (the message names the URL and says whether keel-projector runs);
 * KEEL_ERR_TIMEOUT when the server did not answer in time;
 * KEEL_ERR_CORRUPT for an answer that is not HTTP; KEEL_ERR_INVALID_ARG for
 * a token with control characters; KEEL_ERR_TOO_LARGE above
 * KEEL_HTTP_MAX_BODY; KEEL_ERR_NOMEM. On failure *reply holds nothing to
 * free.
 */
int keel__http_get(const keel__http_url_t *base, const char *target,
                   const char *token, int timeout_ms, keel__http_reply_t *reply,
                   char *err, size_t errsize);

/* Free what reply holds; accepts a zeroed reply. */
void keel__http_reply_free(keel__http_reply_t *reply);

/*
 * Append s to *buf (a malloc'd string of *len bytes, or NULL and 0),
 * percent-encoding every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~)
 * when encode is set, so that s can be one path segment or one query value.
 * Returns KEEL_OK or KEEL_ERR_NOMEM (then *buf is freed and NULL).
 */
int keel__http_append(char **buf, size_t *len, const char *s, int encode);

#endif

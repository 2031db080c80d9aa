/*
 * http_client.c: a minimal HTTP/1.1 GET over POSIX sockets (http_client.h)
 * for `keel workflow list|describe|history|result`. Non-blocking connect
 * and poll() against one deadline; the request says "Connection: close",
 * so the answer ends at Content-Length, at the last chunk, or at EOF.
 * Errors are keel_err_t values with a message meant for the person at the
 * terminal.
 */
#include "http_client.h"

#include "keel/error.h"
#include "keel/version.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER_BYTES (64 * 1024)
#define HINT             "is keel-projector running? set projector.url"

static int fail(char *err, size_t errsize, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errsize, int rc, const char *fmt, ...)
{
        va_list ap;
        if (err && errsize) {
                va_start(ap, fmt);
                vsnprintf(err, errsize, fmt, ap);
                va_end(ap);
        }
        return rc;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- URLs -------------------------------------------------------------- */

int keel__http_parse(const char *url, keel__http_url_t *out, char *err,
                     size_t errsize)
{
        const char *auth, *end, *colon = NULL, *h, *hend;
        size_t ul;

        memset(out, 0, sizeof(*out));
        if (!url || strncasecmp(url, "http://", 7)) {
                return fail(err, errsize, KEEL_ERR_INVALID_ARG,
                            "projector URL '%s' must start with http:// "
                            "(https is not supported)",
                            url ? url : "");
        }
        ul = strlen(url);
        while (ul > 7 && url[ul - 1] == '/')
                ul--;
        if (ul >= sizeof(out->url))
                return fail(err, errsize, KEEL_ERR_INVALID_ARG,
                            "projector URL is too long");
        memcpy(out->url, url, ul);
        auth = out->url + 7;
        end = auth + strcspn(auth, "/?#");
        if (*end == '?' || *end == '#')
                return fail(err, errsize, KEEL_ERR_INVALID_ARG,
                            "projector URL '%s' may not have a query",
                            out->url);

        /* host, [v6 address] or host:port */
        h = auth;
        if (*auth == '[') {
                h = auth + 1;
                hend = memchr(h, ']', (size_t)(end - h));
                if (!hend || (hend + 1 < end && hend[1] != ':'))
                        goto bad;
                if (hend + 1 < end)
                        colon = hend + 1;
        } else {
                colon = memchr(auth, ':', (size_t)(end - auth));
                hend = colon ? colon : end;
        }
        if (hend == h || (size_t)(hend - h) >= sizeof(out->host) ||
            memchr(h, '@', (size_t)(hend - h)))
                goto bad;
        memcpy(out->host, h, (size_t)(hend - h));
        if (colon) {
                long port = 0;
                const char *c = colon + 1;
                if (c == end || end - c > 5)
                        goto bad;
                for (; c < end; c++) {
                        if (*c < '0' || *c > '9')
                                goto bad;
                        port = port * 10 + (*c - '0');
                }
                if (port < 1 || port > 65535)
                        goto bad;
                snprintf(out->port, sizeof(out->port), "%ld", port);
        } else {
                strcpy(out->port, "80");
        }
        if (strlen(end) >= sizeof(out->base))
                goto bad;
        strcpy(out->base, end);
        return KEEL_OK;
bad:
        return fail(err, errsize, KEEL_ERR_INVALID_ARG,
                    "projector URL '%s' is not http://HOST[:PORT][/PATH]",
                    out->url);
}

int keel__http_append(char **buf, size_t *len, const char *s, int encode)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(s), cap = *len + (encode ? 3 * n : n) + 1;
        char *b = realloc(*buf, cap), *o;

        if (!b) {
                free(*buf);
                *buf = NULL;
                *len = 0;
                return KEEL_ERR_NOMEM;
        }
        o = b + *len;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (!encode || (c >= 'A' && c <= 'Z') ||
                    (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~') {
                        *o++ = (char)c;
                } else {
                        *o++ = '%';
                        *o++ = hex[c >> 4];
                        *o++ = hex[c & 15];
                }
        }
        *o = '\0';
        *len = (size_t)(o - b);
        *buf = b;
        return KEEL_OK;
}

/* ---- the exchange ------------------------------------------------------ */

/* Wait until fd is ready for events or the deadline passes: 1 ready, 0
 * timed out, -1 poll failed (errno set). */
static int wait_fd(int fd, short events, int64_t deadline)
{
        struct pollfd pfd = {.fd = fd, .events = events};
        for (;;) {
                int64_t left = deadline - now_ms();
                int n;
                if (left <= 0)
                        return 0;
                n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
                if (n > 0)
                        return 1;
                if (n == 0)
                        return 0;
                if (errno != EINTR)
                        return -1;
        }
}

/* A connected socket to base, or -1 with the error in err. */
static int dial(const keel__http_url_t *base, int64_t deadline, int *rc,
                char *err, size_t errsize)
{
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM},
                        *res, *ai;
        int gai, fd = -1, last = ECONNREFUSED, timed_out = 0;

        gai = getaddrinfo(base->host, base->port, &hints, &res);
        if (gai) {
                *rc = fail(err, errsize, KEEL_ERR_TRANSPORT,
                           "cannot connect to the projector at %s: host "
                           "'%s': %s (" HINT ")",
                           base->url, base->host, gai_strerror(gai));
                return -1;
        }
        for (ai = res; ai; ai = ai->ai_next) {
                int soerr = 0, w;
                socklen_t sl = sizeof(soerr);

                fd = socket(ai->ai_family,
                            ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                            ai->ai_protocol);
                if (fd < 0) {
                        last = errno;
                        continue;
                }
                if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
                        break;
                if (errno == EINPROGRESS) {
                        w = wait_fd(fd, POLLOUT, deadline);
                        if (w > 0 &&
                            !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
                                        &sl) &&
                            !soerr)
                                break;
                        if (w == 0)
                                timed_out = 1;
                        last = w > 0 ? soerr : errno;
                } else {
                        last = errno;
                }
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
                *rc =
                    fail(err, errsize, KEEL_ERR_TRANSPORT,
                         "cannot connect to the projector at %s: %s (" HINT ")",
                         base->url, timed_out ? "timed out" : strerror(last));
        return fd;
}

/* Send all of buf. */
static int send_all(int fd, const char *buf, size_t len, int64_t deadline,
                    const keel__http_url_t *base, char *err, size_t errsize)
{
        while (len) {
                ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
                if (n > 0) {
                        buf += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        if (wait_fd(fd, POLLOUT, deadline) > 0)
                                continue;
                        return fail(err, errsize, KEEL_ERR_TIMEOUT,
                                    "the projector at %s did not take the "
                                    "request in time",
                                    base->url);
                }
                return fail(err, errsize, KEEL_ERR_TRANSPORT,
                            "sending to the projector at %s failed: %s",
                            base->url, strerror(errno));
        }
        return KEEL_OK;
}

/* A growing byte buffer. */
typedef struct bytes_s {
        char *p;
        size_t len, cap;
} bytes_t;

static int bytes_reserve(bytes_t *b, size_t more)
{
        size_t cap = b->cap ? b->cap : 16384;
        char *p;
        while (cap - b->len < more + 1)
                cap *= 2;
        if (cap == b->cap)
                return 0;
        p = realloc(b->p, cap);
        if (!p)
                return -1;
        b->p = p;
        b->cap = cap;
        return 0;
}

/* Where the headers end (just past the blank line), or NULL. */
static const char *headers_end(const bytes_t *b)
{
        for (size_t i = 3; i < b->len; i++)
                if (!memcmp(b->p + i - 3, "\r\n\r\n", 4))
                        return b->p + i + 1;
        return NULL;
}

/* The value of header `name` in the header block [h, end), copied to out;
 * 1 if present. */
static int header(const char *h, const char *end, const char *name, char *out,
                  size_t outsize)
{
        size_t nl = strlen(name);
        while (h < end) {
                const char *eol = memchr(h, '\n', (size_t)(end - h));
                const char *v;
                size_t vl;
                if (!eol)
                        eol = end;
                if ((size_t)(eol - h) > nl && h[nl] == ':' &&
                    !strncasecmp(h, name, nl)) {
                        for (v = h + nl + 1;
                             v < eol && (*v == ' ' || *v == '\t'); v++)
                                ;
                        vl = (size_t)(eol - v);
                        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                                vl--;
                        if (vl >= outsize)
                                vl = outsize - 1;
                        memcpy(out, v, vl);
                        out[vl] = '\0';
                        return 1;
                }
                h = eol + 1;
        }
        return 0;
}

/* Walk a chunked body: its decoded length, or -1 if it is malformed or
 * not complete yet. With apply, decode it in place as well. */
static long dechunk(char *p, size_t len, int apply)
{
        size_t in = 0, out = 0;
        for (;;) {
                char *end;
                unsigned long n;
                const char *eol = memchr(p + in, '\n', len - in);
                if (!eol)
                        return -1;
                errno = 0;
                n = strtoul(p + in, &end, 16);
                if (end == p + in || errno || n > len)
                        return -1;
                in = (size_t)(eol - p) + 1;
                if (n == 0) /* the last chunk; trailers are not kept */
                        return (long)out;
                if (len - in < n + 2)
                        return -1;
                if (apply)
                        memmove(p + out, p + in, n);
                out += n;
                in += n;
                if (p[in] == '\r')
                        in++;
                if (p[in] != '\n')
                        return -1;
                in++;
        }
}

/* 1 if the headers in [h, hend) announce a chunked body. */
static int is_chunked(const char *h, const char *hend)
{
        char v[64];
        size_t l;
        /* chunked, when used, is the last coding named */
        if (!header(h, hend, "Transfer-Encoding", v, sizeof(v)))
                return 0;
        l = strlen(v);
        return l >= 7 && !strcasecmp(v + l - 7, "chunked");
}

/* Parse the answer in raw into reply. */
static int parse_reply(bytes_t *raw, const char *hend,
                       const keel__http_url_t *base, keel__http_reply_t *reply,
                       char *err, size_t errsize)
{
        char v[64];
        const char *h = raw->p;
        size_t hl = (size_t)(hend - raw->p), blen = raw->len - hl;
        long n;

        if (raw->len < 12 || strncmp(h, "HTTP/1.", 7) || h[8] != ' ' ||
            h[9] < '1' || h[9] > '5' || h[10] < '0' || h[10] > '9' ||
            h[11] < '0' || h[11] > '9')
                return fail(err, errsize, KEEL_ERR_CORRUPT,
                            "%s did not answer in HTTP (is it "
                            "keel-projector?)",
                            base->url);
        reply->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + h[11] - '0';
        reply->retry_after = -1;
        if (header(h, hend, "Retry-After", v, sizeof(v)))
                reply->retry_after = atoi(v);
        header(h, hend, "Content-Type", reply->content_type,
               sizeof(reply->content_type));
        if (is_chunked(h, hend)) {
                n = dechunk(raw->p + hl, blen, 1);
                if (n < 0)
                        return fail(err, errsize, KEEL_ERR_CORRUPT,
                                    "the projector at %s sent a malformed "
                                    "chunked body",
                                    base->url);
                blen = (size_t)n;
        }
        reply->body = malloc(blen + 1);
        if (!reply->body)
                return fail(err, errsize, KEEL_ERR_NOMEM, "out of memory");
        memcpy(reply->body, raw->p + hl, blen);
        reply->body[blen] = '\0';
        reply->len = blen;
        return KEEL_OK;
}

/* Read the answer to EOF or its Content-Length into raw; *hend is set to
 * the end of its headers. */
static int read_reply(int fd, int64_t deadline, const keel__http_url_t *base,
                      bytes_t *raw, const char **hend, char *err,
                      size_t errsize)
{
        long long want = -1; /* total bytes, once Content-Length is known */
        int chunked = 0;

        *hend = NULL;
        for (;;) {
                ssize_t n;
                if (want >= 0 && (long long)raw->len >= want) {
                        raw->len = (size_t)want; /* ignore any excess */
                        return KEEL_OK;
                }
                if (bytes_reserve(raw, 16384))
                        return fail(err, errsize, KEEL_ERR_NOMEM,
                                    "out of memory");
                n = recv(fd, raw->p + raw->len, raw->cap - raw->len - 1, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        int w = wait_fd(fd, POLLIN, deadline);
                        if (w > 0)
                                continue;
                        return fail(err, errsize, KEEL_ERR_TIMEOUT,
                                    "the projector at %s did not answer in "
                                    "time",
                                    base->url);
                }
                if (n < 0)
                        return fail(err, errsize, KEEL_ERR_TRANSPORT,
                                    "reading from the projector at %s "
                                    "failed: %s",
                                    base->url, strerror(errno));
                if (n == 0) {
                        if (!*hend)
                                return fail(err, errsize, KEEL_ERR_TRANSPORT,
                                            "the projector at %s closed the "
                                            "connection without an answer",
                                            base->url);
                        if (want >= 0)
                                return fail(err, errsize, KEEL_ERR_TRANSPORT,
                                            "the projector at %s closed the "
                                            "connection mid-answer",
                                            base->url);
                        return KEEL_OK;
                }
                raw->len += (size_t)n;
                raw->p[raw->len] = '\0';
                if (!*hend) {
                        char v[32];
                        *hend = headers_end(raw);
                        if (!*hend && raw->len > MAX_HEADER_BYTES)
                                return fail(err, errsize, KEEL_ERR_CORRUPT,
                                            "%s sent over %d bytes of "
                                            "headers",
                                            base->url, MAX_HEADER_BYTES);
                        chunked = *hend && is_chunked(raw->p, *hend);
                        if (*hend && header(raw->p, *hend, "Content-Length", v,
                                            sizeof(v))) {
                                char *end;
                                long long cl = strtoll(v, &end, 10);
                                if (end == v || *end || cl < 0)
                                        return fail(err, errsize,
                                                    KEEL_ERR_CORRUPT,
                                                    "%s sent a bad "
                                                    "Content-Length",
                                                    base->url);
                                if (cl > KEEL_HTTP_MAX_BODY)
                                        break;
                                want = (long long)(*hend - raw->p) + cl;
                        }
                }
                if (*hend &&
                    raw->len - (size_t)(*hend - raw->p) > KEEL_HTTP_MAX_BODY)
                        break;
                /* A chunked body ends with an empty line after its last
                 * chunk: stop there rather than wait for the close. */
                if (chunked) {
                        size_t body = (size_t)(*hend - raw->p);
                        if (raw->len >= body + 4 &&
                            !memcmp(raw->p + raw->len - 4, "\r\n\r\n", 4) &&
                            dechunk(raw->p + body, raw->len - body, 0) >= 0)
                                return KEEL_OK;
                }
        }
        return fail(err, errsize, KEEL_ERR_TOO_LARGE,
                    "the projector at %s answered with more than %u MiB",
                    base->url, KEEL_HTTP_MAX_BODY >> 20);
}

int keel__http_get(const keel__http_url_t *base, const char *target,
                   const char *token, int timeout_ms, keel__http_reply_t *reply,
                   char *err, size_t errsize)
{
        int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
        bytes_t raw = {0};
        const char *hend;
        char *req = NULL;
        size_t rl = 0;
        int fd, rc;

        memset(reply, 0, sizeof(*reply));
        for (const char *t = token ? token : ""; *t; t++)
                if ((unsigned char)*t < 0x20 || *t == 0x7f)
                        return fail(err, errsize, KEEL_ERR_INVALID_ARG,
                                    "http.token may not contain control "
                                    "characters");
        /* Host carries brackets back around an IPv6 address. */
        if (keel__http_append(&req, &rl, "GET ", 0) ||
            keel__http_append(&req, &rl, base->base, 0) ||
            keel__http_append(&req, &rl, target, 0) ||
            keel__http_append(&req, &rl, " HTTP/1.1\r\nHost: ", 0) ||
            keel__http_append(&req, &rl, strchr(base->host, ':') ? "[" : "",
                              0) ||
            keel__http_append(&req, &rl, base->host, 0) ||
            keel__http_append(&req, &rl, strchr(base->host, ':') ? "]:" : ":",
                              0) ||
            keel__http_append(&req, &rl, base->port, 0) ||
            keel__http_append(&req, &rl, "\r\nUser-Agent: keel/", 0) ||
            keel__http_append(&req, &rl, keel_version(), 0) ||
            keel__http_append(&req, &rl,
                              "\r\nAccept: application/json\r\n"
                              "Connection: close\r\n",
                              0) ||
            (token && *token &&
             (keel__http_append(&req, &rl, "Authorization: Bearer ", 0) ||
              keel__http_append(&req, &rl, token, 0) ||
              keel__http_append(&req, &rl, "\r\n", 0))) ||
            keel__http_append(&req, &rl, "\r\n", 0))
                return fail(err, errsize, KEEL_ERR_NOMEM, "out of memory");

        fd = dial(base, deadline, &rc, err, errsize);
        if (fd < 0) {
                free(req);
                return rc;
        }
        rc = send_all(fd, req, rl, deadline, base, err, errsize);
        free(req);
        if (!rc)
                rc = read_reply(fd, deadline, base, &raw, &hend, err, errsize);
        close(fd);
        if (!rc)
                rc = parse_reply(&raw, hend, base, reply, err, errsize);
        free(raw.p);
        if (rc)
                keel__http_reply_free(reply);
        return rc;
}

void keel__http_reply_free(keel__http_reply_t *reply)
{
        if (!reply)
                return;
        free(reply->body);
        reply->body = NULL;
        reply->len = 0;
}

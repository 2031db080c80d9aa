/*
 * keel_http.c: a plain-socket HTTP client for tests (keel_http.h).
 */
#include "keel_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

void http_res_free(http_res_t *r)
{
        free(r->head);
        free(r->body);
        json_decref(r->json);
        memset(r, 0, sizeof(*r));
}

/* The value of header `name` in r (into buf), or NULL. */
const char *http_header(const http_res_t *r, const char *name, char *buf,
                        size_t size)
{
        const char *h = r->head;
        size_t nl = strlen(name);
        while (h && (h = strchr(h, '\n'))) {
                h++;
                if (!strncasecmp(h, name, nl) && h[nl] == ':') {
                        const char *v = h + nl + 1;
                        size_t len;
                        while (*v == ' ')
                                v++;
                        len = strcspn(v, "\r\n");
                        snprintf(buf, size, "%.*s", (int)len, v);
                        return buf;
                }
        }
        return NULL;
}

/* `method` `path` (with extra header lines `hdrs`, each ending in \r\n,
 * and an optional body) to 127.0.0.1:port; the answer read until the
 * server closes. */
http_res_t http_req_h(int port, const char *method, const char *path,
                      const char *hdrs, const char *body)
{
        http_res_t r = {.status = -1};
        struct sockaddr_in sa;
        struct timeval tv = {10, 0};
        char *buf = NULL, *sep;
        size_t len = 0, cap = 0;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char *req;
        size_t reqlen;

        if (fd < 0)
                return r;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (!hdrs)
                hdrs = "";
        reqlen = strlen(path) + strlen(hdrs) + (body ? strlen(body) : 0) + 256;
        req = malloc(reqlen);
        if (!req || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                free(req);
                close(fd);
                return r;
        }
        snprintf(req, reqlen,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                 "close\r\n%sContent-Length: %zu\r\n\r\n%s",
                 method, path, hdrs, body ? strlen(body) : 0, body ? body : "");
        /* A server that refuses the body (413) may close before all of it
         * is written: its answer is read all the same. */
        {
                size_t off = 0, total = strlen(req);
                while (off < total) {
                        ssize_t w = write(fd, req + off, total - off);
                        if (w <= 0)
                                break;
                        off += (size_t)w;
                }
        }
        free(req);
        for (;;) {
                ssize_t n;
                if (cap - len < 4096) {
                        char *b = realloc(buf, cap + 65536);
                        if (!b)
                                break;
                        buf = b;
                        cap += 65536;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        if (!buf)
                return r;
        buf[len] = '\0';
        sep = strstr(buf, "\r\n\r\n");
        if (!sep || sscanf(buf, "HTTP/1.%*d %d", &r.status) != 1) {
                free(buf);
                r.status = -1;
                return r;
        }
        *sep = '\0';
        r.head = buf;
        r.body = strdup(sep + 4);
        r.json = r.body ? json_loads(r.body, JSON_DECODE_ANY, NULL) : NULL;
        return r;
}

http_res_t http_req(int port, const char *method, const char *path,
                    const char *body)
{
        return http_req_h(port, method, path, NULL, body);
}

int http_status(int port, const char *method, const char *path)
{
        http_res_t r = http_req(port, method, path, NULL);
        int status = r.status;
        http_res_free(&r);
        return status;
}

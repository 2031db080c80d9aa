/*
 * keel_http.h: a plain-socket HTTP/1.1 client for tests of keel's HTTP
 * servers: one request per connection, the answer read until the server
 * closes (10 s at most).
 */
#ifndef KEEL_HTTP_TEST_H
#define KEEL_HTTP_TEST_H

#include <jansson.h>
#include <stddef.h>

typedef struct http_res_s {
        int status;   /* -1: no answer */
        char *head;   /* the status line and headers */
        char *body;   /* NUL-terminated */
        json_t *json; /* body parsed, or NULL */
} http_res_t;

void http_res_free(http_res_t *r);

/* The value of header `name` in r (into buf), or NULL. */
const char *http_header(const http_res_t *r, const char *name, char *buf,
                        size_t size);

/* `method` `path` to 127.0.0.1:port with extra header lines `hdrs` (each
 * ending in \r\n; may be NULL) and an optional body. */
http_res_t http_req_h(int port, const char *method, const char *path,
                      const char *hdrs, const char *body);
http_res_t http_req(int port, const char *method, const char *path,
                    const char *body);

/* Just the status of a body-less request (-1: no answer). */
int http_status(int port, const char *method, const char *path);

#endif

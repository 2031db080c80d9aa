/*
 * metrics.c: /metrics (Prometheus text) and /healthz for keel's daemons,
 * served by libmicrohttpd on its own thread. What /metrics says comes from
 * the program's render callback, which may only read atomic counters.
 */
#include "app.h"

#include "keel/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct server_s {
        struct MHD_Daemon *d;
        keel_app_metrics_fn render;
        void *opaque;
} server_t;

#define BODY_MAX 16384

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
        server_t *s = cls;
        struct MHD_Response *resp;
        char body[BODY_MAX];
        size_t len = 0;
        int status = MHD_HTTP_OK;
        enum MHD_Result ret;

        (void)version;
        (void)upload;
        (void)upload_size;
        (void)con_cls;
        if (strcmp(method, "GET")) {
                len = (size_t)snprintf(body, sizeof(body),
                                       "method not allowed\n");
                status = MHD_HTTP_METHOD_NOT_ALLOWED;
        } else if (!strcmp(url, "/healthz")) {
                len = (size_t)snprintf(body, sizeof(body), "ok\n");
        } else if (!strcmp(url, "/metrics")) {
                body[0] = '\0';
                s->render(s->opaque, body, sizeof(body), &len);
        } else {
                len = (size_t)snprintf(body, sizeof(body), "not found\n");
                status = MHD_HTTP_NOT_FOUND;
        }
        resp =
            MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Content-Type",
                                "text/plain; version=0.0.4");
        ret = MHD_queue_response(conn, (unsigned)status, resp);
        MHD_destroy_response(resp);
        return ret;
}

void *keel__app_metrics_start(const char *addr, const char *component,
                              keel_app_metrics_fn render, void *opaque,
                              int *port)
{
        server_t *s = calloc(1, sizeof(*s));
        struct sockaddr_in sa;
        char host[256];
        const char *colon = strrchr(addr, ':');
        const union MHD_DaemonInfo *info;

        *port = 0;
        if (!s)
                return NULL;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        snprintf(host, sizeof(host), "%.*s",
                 colon ? (int)(colon - addr) : (int)strlen(addr), addr);
        if (!colon || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
                keel_log(KEEL_LOG_ERROR, component,
                         "msg=\"metrics.listen must be IPv4:port\" value=%s",
                         addr);
                free(s);
                return NULL;
        }
        sa.sin_port = htons((uint16_t)atoi(colon + 1));
        s->render = render;
        s->opaque = opaque;
        s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                                    MHD_USE_ERROR_LOG,
                                0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&sa, MHD_OPTION_END);
        if (!s->d) {
                keel_log(KEEL_LOG_ERROR, component,
                         "msg=\"cannot serve metrics\" listen=%s", addr);
                free(s);
                return NULL;
        }
        info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
        *port = info ? info->port : 0;
        return s;
}

void keel__app_metrics_stop(void *handle)
{
        server_t *s = handle;
        if (!s)
                return;
        MHD_stop_daemon(s->d);
        free(s);
}

int keel__app_write_port(const char *path, int port)
{
        FILE *f;
        if (!path)
                return 0;
        if (!(f = fopen(path, "w")))
                return -1;
        fprintf(f, "%d\n", port);
        return fclose(f) ? -1 : 0;
}

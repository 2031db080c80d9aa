/*
 * metrics.c: the orchestrator's counters in Prometheus text format at
 * /metrics (and /healthz), served by libmicrohttpd on its own thread. The
 * handler only reads atomic counters.
 */
#include "orch.h"

#include "keel/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct server_s {
        struct MHD_Daemon *d;
        orch_t *o;
} server_t;

#define LD(x) ((unsigned long long)atomic_load(&(x)))

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
        server_t *s = cls;
        orch_metrics_t *m = &s->o->metrics;
        struct MHD_Response *resp;
        char body[4096];
        int len, status = MHD_HTTP_OK;
        enum MHD_Result ret;

        (void)version;
        (void)upload;
        (void)upload_size;
        (void)con_cls;
        if (strcmp(method, "GET")) {
                len = snprintf(body, sizeof(body), "method not allowed\n");
                status = MHD_HTTP_METHOD_NOT_ALLOWED;
        } else if (!strcmp(url, "/healthz")) {
                len = snprintf(body, sizeof(body), "ok\n");
        } else if (!strcmp(url, "/metrics")) {
                len = snprintf(
                    body, sizeof(body),
                    "# HELP keel_orchestrator_commands_total Inbox commands "
                    "applied.\n"
                    "# TYPE keel_orchestrator_commands_total counter\n"
                    "keel_orchestrator_commands_total %llu\n"
                    "# TYPE keel_orchestrator_events_total counter\n"
                    "keel_orchestrator_events_total %llu\n"
                    "# TYPE keel_orchestrator_tasks_total counter\n"
                    "keel_orchestrator_tasks_total %llu\n"
                    "# TYPE keel_orchestrator_transactions_total counter\n"
                    "keel_orchestrator_transactions_total %llu\n"
                    "# TYPE keel_orchestrator_transaction_failures_total "
                    "counter\n"
                    "keel_orchestrator_transaction_failures_total %llu\n"
                    "# HELP keel_orchestrator_dead_letters_total Records "
                    "sent to keel.dlq.\n"
                    "# TYPE keel_orchestrator_dead_letters_total counter\n"
                    "keel_orchestrator_dead_letters_total %llu\n"
                    "# TYPE keel_orchestrator_rejected_total counter\n"
                    "keel_orchestrator_rejected_total %llu\n"
                    "# HELP keel_orchestrator_stale_results_total Results "
                    "for attempts no longer current, dropped.\n"
                    "# TYPE keel_orchestrator_stale_results_total counter\n"
                    "keel_orchestrator_stale_results_total %llu\n"
                    "# TYPE keel_orchestrator_restores_total counter\n"
                    "keel_orchestrator_restores_total %llu\n"
                    "# TYPE keel_orchestrator_restore_records_total counter\n"
                    "keel_orchestrator_restore_records_total %llu\n"
                    "# TYPE keel_orchestrator_restore_seconds_total counter\n"
                    "keel_orchestrator_restore_seconds_total %.3f\n"
                    "# HELP keel_orchestrator_fenced_records_total History "
                    "records of fenced owners, ignored.\n"
                    "# TYPE keel_orchestrator_fenced_records_total counter\n"
                    "keel_orchestrator_fenced_records_total %llu\n"
                    "# TYPE keel_orchestrator_open_workflows gauge\n"
                    "keel_orchestrator_open_workflows %lld\n"
                    "# TYPE keel_orchestrator_partitions gauge\n"
                    "keel_orchestrator_partitions %lld\n",
                    LD(m->commands), LD(m->events), LD(m->tasks),
                    LD(m->transactions), LD(m->txn_failures), LD(m->dlq),
                    LD(m->rejected), LD(m->stale), LD(m->restores),
                    LD(m->restore_events),
                    (double)atomic_load(&m->restore_ms) / 1000.0, LD(m->fenced),
                    (long long)atomic_load(&m->open_workflows),
                    (long long)atomic_load(&m->partitions));
        } else {
                len = snprintf(body, sizeof(body), "not found\n");
                status = MHD_HTTP_NOT_FOUND;
        }
        resp = MHD_create_response_from_buffer((size_t)len, body,
                                               MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Content-Type",
                                "text/plain; version=0.0.4");
        ret = MHD_queue_response(conn, (unsigned)status, resp);
        MHD_destroy_response(resp);
        return ret;
}

void *orch_metrics_start(orch_t *o, const char *addr, int *port)
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
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "msg=\"metrics.listen must be IPv4:port\" value=%s",
                         addr);
                free(s);
                return NULL;
        }
        sa.sin_port = htons((uint16_t)atoi(colon + 1));
        s->o = o;
        s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                                    MHD_USE_ERROR_LOG,
                                0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&sa, MHD_OPTION_END);
        if (!s->d) {
                keel_log(KEEL_LOG_ERROR, "orchestrator",
                         "msg=\"cannot serve metrics\" listen=%s", addr);
                free(s);
                return NULL;
        }
        info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
        *port = info ? info->port : 0;
        return s;
}

void orch_metrics_stop(void *handle)
{
        server_t *s = handle;
        if (!s)
                return;
        MHD_stop_daemon(s->d);
        free(s);
}

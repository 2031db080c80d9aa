/*
 * http.c: the projector's HTTP API (docs/http-api.md), served by
 * libmicrohttpd from its single internal thread: /healthz, /readyz,
 * /metrics (Prometheus text), GET /api/v1/workflows/{id} and
 * GET /api/v1/workflows (filtered, paginated by workflow ID). A handler
 * holds proj_t.lock while it reads the fold and builds its body, never
 * while the response is sent. Every response carries X-Keel-Read-Position
 * so that a caller can tell how far the answer has read keel.history. Bad
 * requests get a JSON error, never a crash.
 */
#include "history_int.h"
#include "proj.h"

#include "keel/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_WORKFLOWS   "/api/v1/workflows"
#define MAX_ID_BYTES    1000
#define DEFAULT_LIMIT   50
#define MAX_LIMIT       1000
#define POSITION_BYTES  1024
#define CONTENT_JSON    "application/json"
#define CONTENT_METRICS "text/plain; version=0.0.4"

typedef struct server_s {
        struct MHD_Daemon *d;
        proj_t *p;
} server_t;

static const unsigned http_codes[] = {200, 400, 404, 405, 503};
static const char *const code_labels[] = {"200", "400", "404",
                                          "405", "503", "other"};

int proj_http_code_index(unsigned code)
{
        for (int i = 0; i < 5; i++)
                if (http_codes[i] == code)
                        return i;
        return 5;
}

/* What a handler answers: status, a malloc'd body and its type. */
typedef struct reply_s {
        unsigned status;
        char *body;
        const char *type;
        int allow; /* add "Allow: GET, HEAD" (405) */
        char position[POSITION_BYTES];
} reply_t;

/* Reply with JSON v (stolen). */
static void reply_json(reply_t *rp, unsigned status, json_t *v)
{
        rp->status = status;
        rp->type = CONTENT_JSON;
        rp->body = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        if (!rp->body) {
                rp->status = 500;
                rp->body = strdup("{\"error\":\"out of memory\"}");
        }
}

static void reply_error(reply_t *rp, unsigned status, const char *msg)
{
        reply_json(rp, status,
                   json_pack("{ss si}", "error", msg, "status", (int)status));
}

/* ---- /metrics ---------------------------------------------------------- */

/* Lock held. */
static void metrics(proj_t *p, reply_t *rp)
{
        keel__history_reader_t *r = p->readers;
        unsigned long long fenced = 0, torn = 0;
        size_t cap = 8192, len = 0;
        char *b = malloc(cap);
        int n;

        if (!b) {
                reply_error(rp, 500, "out of memory");
                return;
        }
        for (int32_t i = 0; i < p->partitions; i++) {
                fenced += r[i].fenced;
                torn += r[i].torn;
        }
#define OUT(...)                                                               \
        do {                                                                   \
                n = snprintf(b + len, cap - len, __VA_ARGS__);                 \
                if (n > 0)                                                     \
                        len +=                                                 \
                            (size_t)n < cap - len ? (size_t)n : cap - len - 1; \
        } while (0)
        OUT("# HELP keel_projector_records_total keel.history records "
            "read.\n"
            "# TYPE keel_projector_records_total counter\n"
            "keel_projector_records_total %llu\n"
            "# HELP keel_projector_events_total Workflow events applied to "
            "the fold.\n"
            "# TYPE keel_projector_events_total counter\n"
            "keel_projector_events_total %llu\n"
            "# HELP keel_projector_undecodable_records_total Records that "
            "did not decode, skipped.\n"
            "# TYPE keel_projector_undecodable_records_total counter\n"
            "keel_projector_undecodable_records_total %llu\n"
            "# HELP keel_projector_fenced_records_total Records of fenced "
            "owners, ignored.\n"
            "# TYPE keel_projector_fenced_records_total counter\n"
            "keel_projector_fenced_records_total %llu\n"
            "# HELP keel_projector_torn_events_total Events of unfinished "
            "batches, discarded.\n"
            "# TYPE keel_projector_torn_events_total counter\n"
            "keel_projector_torn_events_total %llu\n"
            "# HELP keel_projector_ready 1 once caught up to the end "
            "offsets read at start.\n"
            "# TYPE keel_projector_ready gauge\n"
            "keel_projector_ready %d\n"
            "# HELP keel_projector_workflows Workflows by the status of "
            "their latest run.\n"
            "# TYPE keel_projector_workflows gauge\n",
            (unsigned long long)atomic_load(&p->m.records),
            (unsigned long long)p->fold.events,
            (unsigned long long)atomic_load(&p->m.undecodable), fenced, torn,
            atomic_load(&p->ready));
        for (int i = 0; i < PROJ_NSTATUS; i++)
                OUT("keel_projector_workflows{status=\"%s\"} %llu\n",
                    proj_status_name((proj_status_t)i),
                    (unsigned long long)p->fold.by_status[i]);
        OUT("# HELP keel_projector_http_requests_total HTTP requests "
            "answered, by status code.\n"
            "# TYPE keel_projector_http_requests_total counter\n");
        for (int i = 0; i < 6; i++)
                OUT("keel_projector_http_requests_total{code=\"%s\"} %llu\n",
                    code_labels[i],
                    (unsigned long long)atomic_load(&p->m.http[i]));
#undef OUT
        rp->status = 200;
        rp->type = CONTENT_METRICS;
        rp->body = b;
}

/* ---- GET /api/v1/workflows/{id} ---------------------------------------- */

static int id_valid(const char *id, const char **why)
{
        if (!*id)
                *why = "a workflow ID is required";
        else if (strlen(id) > MAX_ID_BYTES)
                *why = "a workflow ID has at most 1000 bytes";
        else if (id[0] == '!')
                *why = "a workflow ID may not start with '!'";
        else
                return 1;
        return 0;
}

/* Lock held. */
static void get_workflow(proj_t *p, const char *id, reply_t *rp)
{
        const char *why;
        proj_wf_t *wf;

        if (!id_valid(id, &why)) {
                reply_error(rp, 400, why);
                return;
        }
        wf = proj_fold_get(&p->fold, id);
        if (!wf) {
                reply_error(rp, 404, "no such workflow");
                return;
        }
        reply_json(rp, 200, proj_wf_json(wf));
}

/* ---- GET /api/v1/workflows --------------------------------------------- */

typedef struct query_s {
        const char *status, *type, *limit, *cursor, *prefix;
        const char *bad; /* the first unknown parameter */
} query_t;

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind,
                                 const char *key, const char *value)
{
        query_t *q = cls;
        const char **slot = NULL;

        (void)kind;
        if (!strcmp(key, "status"))
                slot = &q->status;
        else if (!strcmp(key, "type"))
                slot = &q->type;
        else if (!strcmp(key, "limit"))
                slot = &q->limit;
        else if (!strcmp(key, "cursor"))
                slot = &q->cursor;
        else if (!strcmp(key, "prefix"))
                slot = &q->prefix;
        if (!slot) {
                if (!q->bad)
                        q->bad = key;
                return MHD_YES;
        }
        *slot = value ? value : "";
        return MHD_YES;
}

/* The first index in wfs[0..n) whose ID is > key (strict) or >= key. */
static size_t lower(proj_wf_t **wfs, size_t n, const char *key, int strict)
{
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(wfs[mid]->id, key);
                if (c < 0 || (strict && c == 0))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static int has_prefix(const char *id, const char *prefix, size_t pl)
{
        return !pl || !strncmp(id, prefix, pl);
}

/* Lock held. */
static void list_workflows(proj_t *p, struct MHD_Connection *conn, reply_t *rp)
{
        query_t q = {0};
        proj_status_t st = PROJ_RUNNING;
        proj_wf_t **wfs;
        size_t n, i, pl, found = 0, last = 0;
        uint64_t counts[PROJ_NSTATUS] = {0};
        long limit = DEFAULT_LIMIT;
        json_t *items, *cnt, *next = NULL;
        char msg[160];

        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_arg, &q);
        if (q.bad) {
                snprintf(msg, sizeof(msg), "unknown parameter '%.64s'", q.bad);
                reply_error(rp, 400, msg);
                return;
        }
        if (q.status && proj_status_parse(q.status, &st)) {
                reply_error(rp, 400,
                            "status must be running, blocked, completed, "
                            "failed, cancelled, terminated or continued");
                return;
        }
        if (q.limit) {
                char *end;
                errno = 0;
                limit = strtol(q.limit, &end, 10);
                if (!*q.limit || *end || errno || limit < 1 ||
                    limit > MAX_LIMIT) {
                        reply_error(rp, 400,
                                    "limit must be an integer from 1 to "
                                    "1000");
                        return;
                }
        }
        if (q.cursor && (!*q.cursor || strlen(q.cursor) > MAX_ID_BYTES)) {
                reply_error(rp, 400, "cursor must be a workflow ID");
                return;
        }
        if (q.type && !*q.type) {
                reply_error(rp, 400, "type must not be empty");
                return;
        }
        if (proj_fold_ordered(&p->fold, &wfs, &n)) {
                reply_error(rp, 500, "out of memory");
                return;
        }
        pl = q.prefix ? strlen(q.prefix) : 0;
        items = json_array();
        cnt = json_object();
        if (!items || !cnt) {
                json_decref(items);
                json_decref(cnt);
                reply_error(rp, 500, "out of memory");
                return;
        }

        /* The page: workflows after the cursor, in ID order. */
        i = q.cursor ? lower(wfs, n, q.cursor, 1) : 0;
        if (pl) {
                size_t k = lower(wfs, n, q.prefix, 0);
                if (k > i)
                        i = k;
        }
        for (; i < n && has_prefix(wfs[i]->id, q.prefix, pl); i++) {
                proj_wf_t *wf = wfs[i];
                if ((q.status && wf->status != st) ||
                    (q.type && (!wf->type || strcmp(wf->type, q.type))))
                        continue;
                if (found == (size_t)limit) {
                        /* One more matches, so another page follows; its
                         * cursor is this page's last ID. */
                        next = json_string(wfs[last]->id);
                        break;
                }
                json_array_append_new(items, proj_wf_summary_json(wf));
                last = i;
                found++;
        }

        /* Counts by status, over the type and prefix filters. */
        if (!q.type && !pl) {
                memcpy(counts, p->fold.by_status, sizeof(counts));
        } else {
                for (i = pl ? lower(wfs, n, q.prefix, 0) : 0;
                     i < n && has_prefix(wfs[i]->id, q.prefix, pl); i++)
                        if (!q.type ||
                            (wfs[i]->type && !strcmp(wfs[i]->type, q.type)))
                                counts[wfs[i]->status]++;
        }
        for (int s = 0; s < PROJ_NSTATUS; s++)
                json_object_set_new(cnt, proj_status_name((proj_status_t)s),
                                    json_integer((json_int_t)counts[s]));
        reply_json(rp, 200,
                   json_pack("{so so so}", "workflows", items, "next_cursor",
                             next ? next : json_null(), "counts", cnt));
}

/* ---- routing ----------------------------------------------------------- */

/* Which resource url names: 0 none, 1 a fixed path, 2 a workflow. */
static int route_known(const char *url)
{
        return !strcmp(url, "/healthz") || !strcmp(url, "/readyz") ||
               !strcmp(url, "/metrics") || !strcmp(url, API_WORKFLOWS) ||
               !strncmp(url, API_WORKFLOWS "/", strlen(API_WORKFLOWS "/"));
}

/* HTTP thread; takes the fold's lock for the whole answer. */
static void answer(proj_t *p, struct MHD_Connection *conn, const char *url,
                   const char *method, reply_t *rp)
{
        int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");

        pthread_mutex_lock(&p->lock);
        proj_read_position(p, rp->position, sizeof(rp->position));
        if (!route_known(url)) {
                reply_error(rp, 404, "no such resource");
        } else if (!get) {
                reply_error(rp, 405, "method not allowed");
                rp->allow = 1;
        } else if (!strcmp(url, "/healthz")) {
                reply_json(rp, 200, json_pack("{ss}", "status", "ok"));
        } else if (!strcmp(url, "/readyz")) {
                int ready = atomic_load(&p->ready);
                reply_json(rp, ready ? 200 : 503,
                           json_pack("{sb}", "ready", ready));
        } else if (!strcmp(url, "/metrics")) {
                metrics(p, rp);
        } else if (!strcmp(url, API_WORKFLOWS)) {
                list_workflows(p, conn, rp);
        } else {
                get_workflow(p, url + strlen(API_WORKFLOWS "/"), rp);
        }
        pthread_mutex_unlock(&p->lock);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
        server_t *s = cls;
        struct MHD_Response *resp;
        enum MHD_Result ret;
        reply_t *rp;

        (void)version;
        (void)upload;
        if (*con_cls) {
                /* A request body arrives: nothing here takes one, and the
                 * answer is already queued. */
                *upload_size = 0;
                return MHD_YES;
        }
        *con_cls = s;
        rp = calloc(1, sizeof(*rp));
        if (!rp)
                return MHD_NO;
        answer(s->p, conn, url ? url : "", method ? method : "", rp);
        resp = MHD_create_response_from_buffer(rp->body ? strlen(rp->body) : 0,
                                               rp->body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(rp->body);
                free(rp);
                return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type",
                                rp->type ? rp->type : CONTENT_JSON);
        MHD_add_response_header(resp, "X-Keel-Read-Position", rp->position);
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        if (rp->allow)
                MHD_add_response_header(resp, "Allow", "GET, HEAD");
        atomic_fetch_add(&s->p->m.http[proj_http_code_index(rp->status)], 1);
        ret = MHD_queue_response(conn, rp->status, resp);
        MHD_destroy_response(resp);
        free(rp);
        return ret;
}

void *proj_http_start(proj_t *p, const char *listen, int *port)
{
        server_t *s = calloc(1, sizeof(*s));
        struct sockaddr_in sa;
        char host[256];
        const char *colon = listen ? strrchr(listen, ':') : NULL;
        const union MHD_DaemonInfo *info;
        char *end;
        long pn;

        *port = 0;
        if (!s)
                return NULL;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - listen) : 0,
                 colon ? listen : "");
        pn = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
            !colon[1] || *end || pn < 0 || pn > 65535) {
                keel_log(KEEL_LOG_ERROR, "projector",
                         "msg=\"http.listen must be IPv4:port\" value=%s",
                         listen ? listen : "");
                free(s);
                return NULL;
        }
        sa.sin_port = htons((uint16_t)pn);
        s->p = p;
        s->d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
            handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
        if (!s->d) {
                keel_log(KEEL_LOG_ERROR, "projector",
                         "msg=\"cannot serve HTTP\" listen=%s", listen);
                free(s);
                return NULL;
        }
        info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
        *port = info ? info->port : 0;
        return s;
}

void proj_http_stop(void *server)
{
        server_t *s = server;
        if (!s)
                return;
        MHD_stop_daemon(s->d);
        free(s);
}

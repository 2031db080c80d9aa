/*
 * http.c: the projector's HTTP API (docs/http-api.md), served by
 * libmicrohttpd from a pool of http.threads threads (default one a CPU),
 * each polling its share of at most http.max.connections HTTP/1.1
 * kept-alive connections:
 *
 *   GET  /healthz, /readyz, /metrics
 *   GET  /api/v1/workflows                       list, filters, counts
 *   POST /api/v1/workflows                       start
 *   GET  /api/v1/workflows/{id}                  current state
 *   GET  /api/v1/workflows/{id}/history          events, paginated
 *   GET  /api/v1/workflows/{id}/result?wait=30s  long poll
 *   POST /api/v1/workflows/{id}/signals/{name}, .../cancel, .../terminate
 *   GET  /, /ui/<file>                           the dashboard (web.c)
 *
 * Reads hold proj_t.lock while they read the fold, never while a response
 * is sent or keel.history is read back. Writes go to keel.inbox through a
 * keel_client and answer with the command's inbox position, which a later
 * read passes as `after` to wait until its outcome is visible. Paths are
 * taken raw and percent-decoded segment by segment, so a workflow ID may
 * hold any character. Whatever arrives, the answer is a status code and a
 * JSON error, never a crash.
 *
 * A pool thread serves many connections, so it must never wait: a request
 * that may (a write, which waits for Kafka; a history read; a read with
 * `wait` or `after`) is a job. Its connection is suspended, the job runs on
 * a thread of its own, leaves its reply in the request and resumes the
 * connection, whose pool thread then sends it. Everything else (a state
 * read, a listing, the dashboard, /metrics) is answered on the pool thread.
 */
#define _DEFAULT_SOURCE /* timegm */
#include "client_int.h"
#include "clock_int.h"
#include "history_int.h"
#include "proj.h"
#include "search_attrs_int.h"
#include "web.h"

#include "keel/client.h"
#include "keel/log.h"
#include "keel/partition.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define API_WORKFLOWS     "/api/v1/workflows"
#define MAX_ID_BYTES      KEEL_WORKFLOW_ID_MAX
#define DEFAULT_LIMIT     50
#define DEFAULT_HISTORY   100
#define MAX_LIMIT         1000
#define MAX_PARAMS        16
#define MAX_WAIT_MS       120000
#define DEFAULT_AFTER_MS  10000
#define POSITION_BYTES    1024
#define CONTENT_JSON      "application/json"
#define CONTENT_METRICS   "text/plain; version=0.0.4"
#define CONNECTION_IDLE_S 30

typedef struct server_s {
        struct MHD_Daemon *d;
        proj_t *p;
        keel_client_t *client;
        char *token; /* NULL: no auth */
        int auth_reads;
        size_t max_body;
        /* Jobs (requests that may wait) running on threads of their own;
         * proj_http_stop() waits for them before stopping the daemon,
         * which must have no suspended connection then. */
        pthread_mutex_t jobs_lock;
        pthread_cond_t jobs_done;
        int jobs;
        int stopping; /* no new job */
} server_t;

static const unsigned http_codes[] = {200, 202, 400, 401, 404,
                                      405, 413, 500, 503};
#define NCODES (sizeof(http_codes) / sizeof(http_codes[0]))
static const char *const code_labels[] = {"200", "202", "400", "401", "404",
                                          "405", "413", "500", "503", "other"};

int proj_http_code_index(unsigned code)
{
        for (size_t i = 0; i < NCODES; i++)
                if (http_codes[i] == code)
                        return (int)i;
        return (int)NCODES;
}

/* ---- replies ------------------------------------------------------------ */

/* What a handler answers: status, a body and its type, extra headers. */
typedef struct reply_s {
        unsigned status;
        char *body;                 /* malloc'd, or static when `fixed` */
        const unsigned char *fixed; /* an embedded file */
        size_t fixed_len;
        const char *type;
        const char *allow;     /* "Allow" (405) */
        int retry_after;       /* "Retry-After: 1" (503) */
        int www_auth;          /* "WWW-Authenticate: Bearer" (401) */
        const char *caught_up; /* "X-Keel-Caught-Up" when `after` given */
        char inbox[64];        /* "X-Keel-Inbox-Position" of a write */
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
                rp->body =
                    strdup("{\"error\":\"out of memory\",\"status\":500}");
        }
}

/* Replace in s what is not UTF-8 (a message may quote a client's bytes,
 * or cut a character in half) with '?'. */
static int utf8_ok(const char *s)
{
        json_t *j = json_string(s); /* jansson's own test of UTF-8 */
        json_decref(j);
        return j != NULL;
}

static void utf8_clean(char *s)
{
        unsigned char *u = (unsigned char *)s;
        if (utf8_ok(s))
                return;
        /* Bytes that do not form a sequence (a cut character, say). */
        while (*u) {
                int n = *u < 0x80             ? 0
                        : (*u & 0xe0) == 0xc0 ? 1
                        : (*u & 0xf0) == 0xe0 ? 2
                        : (*u & 0xf8) == 0xf0 ? 3
                                              : -1;
                int ok = n >= 0;
                for (int i = 1; ok && i <= n; i++)
                        ok = (u[i] & 0xc0) == 0x80;
                if (!ok) {
                        *u++ = '?';
                        continue;
                }
                u += n + 1;
        }
        /* Sequences that still are not UTF-8 (overlong, surrogates). */
        if (!utf8_ok(s))
                for (u = (unsigned char *)s; *u; u++)
                        if (*u >= 0x80)
                                *u = '?';
}

static void reply_error(reply_t *rp, unsigned status, const char *msg)
{
        char clean[600];
        snprintf(clean, sizeof(clean), "%s", msg);
        utf8_clean(clean);
        reply_json(rp, status,
                   json_pack("{ss si}", "error", clean, "status", (int)status));
}

static void reply_errorf(reply_t *rp, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_errorf(reply_t *rp, unsigned status, const char *fmt, ...)
{
        char msg[600];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        reply_error(rp, status, msg);
}

/* ---- parsing ------------------------------------------------------------ */

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decode s[0..n) into a new string ('+' is a space when plus);
 * NULL for a bad escape or a NUL byte (or out of memory). */
static char *pct_decode(const char *s, size_t n, int plus)
{
        char *out = malloc(n + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%') {
                        int a = i + 2 < n ? hexval(s[i + 1]) : -1;
                        int b = i + 2 < n ? hexval(s[i + 2]) : -1;
                        if (a < 0 || b < 0 || (a == 0 && b == 0)) {
                                free(out);
                                return NULL;
                        }
                        *o++ = (char)(a * 16 + b);
                        i += 2;
                } else if (plus && s[i] == '+') {
                        *o++ = ' ';
                } else {
                        *o++ = s[i];
                }
        }
        *o = '\0';
        return out;
}

/* A duration: "500ms", "30s", "2m", or a bare number of seconds; 0 with
 * *ms, or -1. */
static int parse_wait(const char *s, int64_t *ms)
{
        char *end;
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (end == s || errno || v < 0 || *s == '-' || *s == '+' || *s == ' ')
                return -1;
        if (!*end || !strcmp(end, "s"))
                v *= 1000;
        else if (!strcmp(end, "m"))
                v *= 60000;
        else if (strcmp(end, "ms"))
                return -1;
        if (v > MAX_WAIT_MS)
                return -1;
        *ms = v;
        return 0;
}

/* A time: ms since the epoch, or RFC 3339 ("2026-11-25T10:00:00Z",
 * fractions and offsets allowed). 0 with *ms, or -1. */
static int parse_time(const char *s, int64_t *ms)
{
        struct tm tm;
        int y, mo, d, h, mi, sec, n = 0, frac = 0, digits = 0;
        const char *c;
        char *end;
        time_t t;

        if (*s >= '0' && *s <= '9' && !strchr(s, '-')) {
                long long v;
                errno = 0;
                v = strtoll(s, &end, 10);
                if (*end || errno || v < 0)
                        return -1;
                *ms = v;
                return 0;
        }
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
                   &n) != 6 ||
            n != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
            mi > 59 || sec > 60 || y < 1970)
                return -1;
        c = s + n;
        if (*c == '.') {
                for (c++; *c >= '0' && *c <= '9'; c++, digits++)
                        if (digits < 3)
                                frac = frac * 10 + (*c - '0');
                if (!digits)
                        return -1;
                for (; digits < 3; digits++)
                        frac *= 10;
        }
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        t = timegm(&tm);
        if (t == (time_t)-1)
                return -1;
        if (*c == 'Z' || *c == 'z') {
                c++;
        } else if (*c == '+' || *c == '-') {
                int oh, om, k = 0;
                if (sscanf(c + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 ||
                    oh > 23 || om > 59)
                        return -1;
                t -= (*c == '+' ? 1 : -1) * (time_t)(oh * 3600 + om * 60);
                c += 6;
        } else {
                return -1;
        }
        if (*c)
                return -1;
        *ms = (int64_t)t * 1000 + frac;
        return 0;
}

/* ---- query parameters --------------------------------------------------- */

typedef struct params_s {
        const char *key[MAX_PARAMS];
        char *val[MAX_PARAMS]; /* decoded */
        size_t n;
        const char *bad; /* why the query is unusable */
} params_t;

static enum MHD_Result param_cb(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value)
{
        params_t *q = cls;
        (void)kind;
        if (q->bad)
                return MHD_YES;
        if (q->n == MAX_PARAMS) {
                q->bad = "too many query parameters";
                return MHD_YES;
        }
        for (size_t i = 0; i < q->n && strcmp(key, "search"); i++) {
                if (!strcmp(q->key[i], key)) {
                        q->bad = "a query parameter is repeated";
                        return MHD_YES;
                }
        }
        q->val[q->n] =
            pct_decode(value ? value : "", value ? strlen(value) : 0, 1);
        if (!q->val[q->n]) {
                q->bad = "bad percent-encoding in the query";
                return MHD_YES;
        }
        q->key[q->n++] = key;
        return MHD_YES;
}

static void params_free(params_t *q)
{
        for (size_t i = 0; i < q->n; i++)
                free(q->val[i]);
}

static const char *param(const params_t *q, const char *key)
{
        for (size_t i = 0; i < q->n; i++)
                if (!strcmp(q->key[i], key))
                        return q->val[i];
        return NULL;
}

/* 0 if every parameter is among `allowed` (NULL-terminated); otherwise
 * a 400 is in rp. */
static int params_check(const params_t *q, const char *const *allowed,
                        reply_t *rp)
{
        if (q->bad) {
                reply_error(rp, 400, q->bad);
                return -1;
        }
        for (size_t i = 0; i < q->n; i++) {
                const char *const *a = allowed;
                while (*a && strcmp(*a, q->key[i]))
                        a++;
                if (!*a) {
                        reply_errorf(rp, 400, "unknown parameter '%.64s'",
                                     q->key[i]);
                        return -1;
                }
        }
        return 0;
}

/* ---- routes ------------------------------------------------------------- */

typedef enum {
        R_NONE,
        R_BAD, /* a malformed path: 400 with route.why */
        R_WEB,
        R_HEALTH,
        R_READY,
        R_METRICS,
        R_LIST, /* GET list, POST start */
        R_WF,
        R_HISTORY,
        R_RESULT,
        R_SIGNAL,
        R_CANCEL,
        R_TERMINATE,
} route_kind_t;

typedef struct route_s {
        route_kind_t kind;
        char *id, *name; /* decoded workflow ID and signal name */
        const char *why;
        const proj_asset_t *asset;
} route_t;

static const char *route_allow(route_kind_t k)
{
        switch (k) {
        case R_LIST:
                return "GET, HEAD, POST";
        case R_SIGNAL:
        case R_CANCEL:
        case R_TERMINATE:
                return "POST";
        default:
                return "GET, HEAD";
        }
}

static int route_is_write(route_kind_t k)
{
        return k == R_SIGNAL || k == R_CANCEL || k == R_TERMINATE;
}

static const char *id_problem(const char *id)
{
        if (!*id)
                return "a workflow ID is required";
        if (strlen(id) > MAX_ID_BYTES)
                return "a workflow ID has at most 1000 bytes";
        if (id[0] == '!')
                return "a workflow ID may not start with '!'";
        {
                char copy[MAX_ID_BYTES + 1];
                snprintf(copy, sizeof(copy), "%s", id);
                utf8_clean(copy);
                if (strcmp(copy, id))
                        return "a workflow ID must be UTF-8";
        }
        for (const unsigned char *u = (const unsigned char *)id; *u; u++)
                if (*u < 0x20 || *u == 0x7f)
                        return "a workflow ID may not hold control characters";
        return NULL;
}

/* The next path segment of *s (after a '/'), decoded; NULL at the end or
 * for a bad one (then *bad is set). */
static char *segment(const char **s, int *bad)
{
        const char *start = *s, *end;
        char *seg;
        if (!*start)
                return NULL;
        end = strchr(start, '/');
        if (!end)
                end = start + strlen(start);
        seg = pct_decode(start, (size_t)(end - start), 0);
        if (!seg)
                *bad = 1;
        *s = *end ? end + 1 : end;
        return seg;
}

static void route_parse(const char *url, route_t *r)
{
        const char *rest;
        char *seg;
        int bad = 0;

        memset(r, 0, sizeof(*r));
        if (!strcmp(url, "/healthz"))
                r->kind = R_HEALTH;
        else if (!strcmp(url, "/readyz"))
                r->kind = R_READY;
        else if (!strcmp(url, "/metrics"))
                r->kind = R_METRICS;
        else if (!strcmp(url, API_WORKFLOWS))
                r->kind = R_LIST;
        else if ((r->asset = proj_web_asset(url)))
                r->kind = R_WEB;
        if (r->kind ||
            strncmp(url, API_WORKFLOWS "/", strlen(API_WORKFLOWS "/")))
                return;

        rest = url + strlen(API_WORKFLOWS "/");
        r->id = pct_decode(rest, strcspn(rest, "/"), 0);
        rest += strcspn(rest, "/");
        if (*rest)
                rest++;
        if (!r->id || (r->why = id_problem(r->id))) {
                r->kind = R_BAD;
                if (!r->why)
                        r->why = "bad percent-encoding in the workflow ID";
                return;
        }
        if (!*rest && rest[-1] != '/') {
                r->kind = R_WF;
                return;
        }
        seg = segment(&rest, &bad);
        if (bad) {
                r->kind = R_BAD;
                r->why = "bad percent-encoding in the path";
        } else if (!seg) {
                r->kind = R_NONE; /* ".../{id}/" */
        } else if (!strcmp(seg, "history") && !*rest) {
                r->kind = R_HISTORY;
        } else if (!strcmp(seg, "result") && !*rest) {
                r->kind = R_RESULT;
        } else if (!strcmp(seg, "cancel") && !*rest) {
                r->kind = R_CANCEL;
        } else if (!strcmp(seg, "terminate") && !*rest) {
                r->kind = R_TERMINATE;
        } else if (!strcmp(seg, "signals") && *rest && !strchr(rest, '/')) {
                r->name = segment(&rest, &bad);
                if (bad || !r->name || !*r->name) {
                        r->kind = R_BAD;
                        r->why = bad ? "bad percent-encoding in the signal "
                                       "name"
                                     : "a signal name is required";
                } else {
                        r->kind = R_SIGNAL;
                }
        }
        free(seg);
}

static void route_free(route_t *r)
{
        free(r->id);
        free(r->name);
}

/* ---- /metrics ----------------------------------------------------------- */

/* Lock held. */
static void metrics(proj_t *p, reply_t *rp)
{
        keel__history_reader_t *r = p->readers;
        unsigned long long fenced = 0, torn = 0, tombstones = 0;
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
                tombstones += r[i].tombstones;
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
            "# HELP keel_projector_commands_total Commands written to "
            "keel.inbox for HTTP clients.\n"
            "# TYPE keel_projector_commands_total counter\n"
            "keel_projector_commands_total %llu\n"
            "# HELP keel_projector_workflows Workflows by the status of "
            "their latest run.\n"
            "# TYPE keel_projector_workflows gauge\n",
            (unsigned long long)atomic_load(&p->m.records),
            (unsigned long long)p->fold.events,
            (unsigned long long)atomic_load(&p->m.undecodable), fenced, torn,
            atomic_load(&p->ready),
            (unsigned long long)atomic_load(&p->m.commands));
        for (int i = 0; i < PROJ_NSTATUS; i++)
                OUT("keel_projector_workflows{status=\"%s\"} %llu\n",
                    proj_status_name((proj_status_t)i),
                    (unsigned long long)p->fold.by_status[i]);
        OUT("# HELP keel_projector_tombstones_total keel.history records "
            "with a null value (deleted runs), skipped.\n"
            "# TYPE keel_projector_tombstones_total counter\n"
            "keel_projector_tombstones_total %llu\n"
            "# HELP keel_projector_runs_deleted_total Workflows forgotten "
            "when their latest run's history was deleted.\n"
            "# TYPE keel_projector_runs_deleted_total counter\n"
            "keel_projector_runs_deleted_total %llu\n",
            tombstones, (unsigned long long)p->fold.deleted);
        OUT("# HELP keel_projector_http_requests_total HTTP requests "
            "answered, by status code.\n"
            "# TYPE keel_projector_http_requests_total counter\n");
        for (size_t i = 0; i <= NCODES; i++)
                OUT("keel_projector_http_requests_total{code=\"%s\"} %llu\n",
                    code_labels[i],
                    (unsigned long long)atomic_load(&p->m.http[i]));
#undef OUT
        rp->status = 200;
        rp->type = CONTENT_METRICS;
        rp->body = b;
}

/* ---- waiting ------------------------------------------------------------ */

/* Wait on p->changed until deadline (CLOCK_MONOTONIC ms); lock held. */
static void wait_change(proj_t *p, int64_t deadline)
{
        int64_t now = keel__clock_ms(CLOCK_MONOTONIC), until;
        struct timespec ts;
        if (deadline <= now)
                return;
        /* re-check stop and readiness now and then */
        until = deadline - now > 500 ? now + 500 : deadline;
        ts.tv_sec = (time_t)(until / 1000);
        ts.tv_nsec = (long)(until % 1000) * 1000000;
        /* p->changed waits on CLOCK_MONOTONIC (proj_init). */
        pthread_cond_timedwait(&p->changed, &p->lock, &ts);
}

/* `after`: inbox positions "<p>:<offset>,..." whose commands the answer
 * must reflect. */
typedef struct after_s {
        int32_t part[64];
        int64_t off[64];
        size_t n;
} after_t;

static int parse_after(proj_t *p, const char *s, after_t *a)
{
        a->n = 0;
        while (*s) {
                char *end;
                long part;
                long long off;
                errno = 0;
                part = strtol(s, &end, 10);
                if (end == s || *end != ':' || errno || part < 0 ||
                    part >= p->partitions || a->n == 64)
                        return -1;
                s = end + 1;
                off = strtoll(s, &end, 10);
                if (end == s || errno || off < 0 || (*end && *end != ','))
                        return -1;
                a->part[a->n] = (int32_t)part;
                a->off[a->n++] = off;
                s = *end ? end + 1 : end;
                if (end[0] == ',' && !*s)
                        return -1;
        }
        return a->n ? 0 : -1;
}

/* Lock held: have the commands at `a` been processed, as far as p has
 * read? */
static int after_seen(proj_t *p, const after_t *a)
{
        for (size_t i = 0; i < a->n; i++)
                if (proj_inbox_done(p, a->part[i]) < a->off[i])
                        return 0;
        return 1;
}

/*
 * What every /api/v1 read does first, lock held: check `wait` and `after`,
 * wait for `after` until *deadline, and answer 503 before ready. 0 to go
 * on (with *deadline the end of the wait), -1 with rp filled.
 */
static int read_prelude(proj_t *p, const params_t *q, int64_t dflt_wait,
                        int64_t *deadline, reply_t *rp)
{
        const char *w = param(q, "wait"), *af = param(q, "after");
        int64_t wait_ms = dflt_wait;
        after_t a;

        if (w && parse_wait(w, &wait_ms)) {
                reply_error(rp, 400,
                            "wait must be a duration up to 120s: 500ms, 30s, "
                            "2m, or a number of seconds");
                return -1;
        }
        if (af && parse_after(p, af, &a)) {
                reply_error(rp, 400,
                            "after must be inbox positions <partition>:"
                            "<offset>, comma-separated, as a write "
                            "returned them");
                return -1;
        }
        *deadline = keel__clock_ms(CLOCK_MONOTONIC) +
                    (af && !w ? DEFAULT_AFTER_MS : wait_ms);
        if (af) {
                while (!after_seen(p, &a) && !atomic_load(&p->stop) &&
                       keel__clock_ms(CLOCK_MONOTONIC) < *deadline)
                        wait_change(p, *deadline);
                rp->caught_up = after_seen(p, &a) ? "true" : "false";
        }
        if (!atomic_load(&p->ready)) {
                rp->retry_after = 1;
                reply_error(rp, 503,
                            "catching up with keel.history; see /readyz");
                return -1;
        }
        return 0;
}

/* ---- GET /api/v1/workflows ---------------------------------------------- */

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

/* A search term, "search=<name>=<value>": the attribute `name` has a
 * value whose text is `value`. */
typedef struct term_s {
        char name[KEEL_SEARCH_ATTR_NAME_MAX + 1];
        const char *value;
} term_t;

typedef struct filter_s {
        int by_status;
        proj_status_t st;
        const char *type, *prefix;
        size_t pl;
        int64_t started_after, started_before, closed_after, closed_before;
        term_t terms[MAX_PARAMS];
        size_t nterms;
} filter_t;

/* Is text the value v? A string by its characters; an integer or a
 * boolean by its JSON text ("42", "true"); a real by the number text
 * reads as ("1.5" and "1.50" alike). */
static int value_is(const json_t *v, const char *text)
{
        char buf[32], *end;
        double d;

        if (!v)
                return 0;
        switch (json_typeof(v)) {
        case JSON_STRING:
                return !strcmp(json_string_value(v), text);
        case JSON_INTEGER:
                snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
                return !strcmp(buf, text);
        case JSON_REAL:
                if (!(*text == '-' || (*text >= '0' && *text <= '9')))
                        return 0;
                d = strtod(text, &end);
                return !*end && d == json_real_value(v);
        case JSON_TRUE:
                return !strcmp(text, "true");
        case JSON_FALSE:
                return !strcmp(text, "false");
        default:
                return 0;
        }
}

/* Does wf match f, status aside? */
static int matches(const filter_t *f, const proj_wf_t *wf)
{
        for (size_t i = 0; i < f->nterms; i++)
                if (!value_is(
                        json_object_get(wf->search_attrs, f->terms[i].name),
                        f->terms[i].value))
                        return 0;
        if (f->type && (!wf->type || strcmp(wf->type, f->type)))
                return 0;
        if (wf->start_ts < f->started_after || wf->start_ts > f->started_before)
                return 0;
        if (f->closed_after > 0 || f->closed_before < INT64_MAX) {
                if (!wf->closed || wf->close_ts < f->closed_after ||
                    wf->close_ts > f->closed_before)
                        return 0;
        }
        return 1;
}

static int parse_filter(const params_t *q, filter_t *f, reply_t *rp)
{
        static const char *const times[] = {"started_after", "started_before",
                                            "closed_after", "closed_before"};
        int64_t *slots[] = {&f->started_after, &f->started_before,
                            &f->closed_after, &f->closed_before};
        const char *s;

        memset(f, 0, sizeof(*f));
        f->started_before = f->closed_before = INT64_MAX;
        if ((s = param(q, "status"))) {
                if (proj_status_parse(s, &f->st)) {
                        reply_error(rp, 400,
                                    "status must be running, blocked, "
                                    "completed, failed, cancelled, "
                                    "terminated or continued");
                        return -1;
                }
                f->by_status = 1;
        }
        if ((f->type = param(q, "type")) && !*f->type) {
                reply_error(rp, 400, "type must not be empty");
                return -1;
        }
        f->prefix = param(q, "prefix");
        f->pl = f->prefix ? strlen(f->prefix) : 0;
        for (size_t i = 0; i < q->n; i++) {
                const char *eq;
                size_t nl;
                term_t *t = &f->terms[f->nterms];
                if (strcmp(q->key[i], "search"))
                        continue;
                eq = strchr(q->val[i], '=');
                nl = eq ? (size_t)(eq - q->val[i]) : 0;
                if (nl && nl < sizeof(t->name))
                        snprintf(t->name, sizeof(t->name), "%.*s", (int)nl,
                                 q->val[i]);
                if (!nl || nl >= sizeof(t->name) ||
                    !keel__sa_name_ok(t->name)) {
                        reply_errorf(rp, 400,
                                     "search must be <name>=<value>, the name "
                                     "1 to %d of A-Z, a-z, 0-9 and _, not "
                                     "starting with a digit: '%.80s'",
                                     KEEL_SEARCH_ATTR_NAME_MAX, q->val[i]);
                        return -1;
                }
                t->value = eq + 1;
                f->nterms++;
        }
        for (int i = 0; i < 4; i++) {
                if ((s = param(q, times[i])) && parse_time(s, slots[i])) {
                        reply_errorf(rp, 400,
                                     "%s must be an RFC 3339 time "
                                     "(2026-11-25T10:00:00Z) or "
                                     "milliseconds since the epoch",
                                     times[i]);
                        return -1;
                }
        }
        return 0;
}

static int parse_limit(const params_t *q, long dflt, long *limit, reply_t *rp)
{
        const char *s = param(q, "limit");
        char *end;
        *limit = dflt;
        if (!s)
                return 0;
        errno = 0;
        *limit = strtol(s, &end, 10);
        if (!*s || *end || errno || *limit < 1 || *limit > MAX_LIMIT) {
                reply_error(rp, 400, "limit must be an integer from 1 to 1000");
                return -1;
        }
        return 0;
}

/* Lock held. */
static void list_workflows(proj_t *p, const params_t *q, reply_t *rp)
{
        static const char *const allowed[] = {"status",
                                              "type",
                                              "limit",
                                              "cursor",
                                              "prefix",
                                              "started_after",
                                              "started_before",
                                              "closed_after",
                                              "closed_before",
                                              "search",
                                              "after",
                                              "wait",
                                              NULL};
        const char *cursor = param(q, "cursor");
        filter_t f;
        proj_wf_t **wfs;
        size_t n, i, found = 0, last = 0;
        uint64_t counts[PROJ_NSTATUS] = {0};
        long limit;
        int64_t deadline;
        json_t *items, *cnt, *next = NULL;

        if (params_check(q, allowed, rp) || parse_filter(q, &f, rp) ||
            parse_limit(q, DEFAULT_LIMIT, &limit, rp))
                return;
        if (cursor && (!*cursor || strlen(cursor) > MAX_ID_BYTES)) {
                reply_error(rp, 400, "cursor must be a workflow ID");
                return;
        }
        if (read_prelude(p, q, 0, &deadline, rp))
                return;
        if (proj_fold_ordered(&p->fold, &wfs, &n)) {
                reply_error(rp, 500, "out of memory");
                return;
        }
        items = json_array();
        cnt = json_object();
        if (!items || !cnt) {
                json_decref(items);
                json_decref(cnt);
                reply_error(rp, 500, "out of memory");
                return;
        }

        /* The page: workflows after the cursor, in ID order. */
        i = cursor ? lower(wfs, n, cursor, 1) : 0;
        if (f.pl) {
                size_t k = lower(wfs, n, f.prefix, 0);
                if (k > i)
                        i = k;
        }
        for (; i < n && has_prefix(wfs[i]->id, f.prefix, f.pl); i++) {
                proj_wf_t *wf = wfs[i];
                if ((f.by_status && wf->status != f.st) || !matches(&f, wf))
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

        /* Counts by status, over every filter but status. */
        if (!f.type && !f.pl && !f.nterms && !param(q, "started_after") &&
            !param(q, "started_before") && !param(q, "closed_after") &&
            !param(q, "closed_before")) {
                memcpy(counts, p->fold.by_status, sizeof(counts));
        } else {
                for (i = f.pl ? lower(wfs, n, f.prefix, 0) : 0;
                     i < n && has_prefix(wfs[i]->id, f.prefix, f.pl); i++)
                        if (matches(&f, wfs[i]))
                                counts[wfs[i]->status]++;
        }
        for (int s = 0; s < PROJ_NSTATUS; s++)
                json_object_set_new(cnt, proj_status_name((proj_status_t)s),
                                    json_integer((json_int_t)counts[s]));
        reply_json(rp, 200,
                   json_pack("{so so so}", "workflows", items, "next_cursor",
                             next ? next : json_null(), "counts", cnt));
}

/* ---- GET /api/v1/workflows/{id} ----------------------------------------- */

static const char *const wf_params[] = {"after", "wait", NULL};

/* Lock held. */
static void get_workflow(proj_t *p, const char *id, const params_t *q,
                         reply_t *rp)
{
        int64_t deadline;
        proj_wf_t *wf;

        if (params_check(q, wf_params, rp) ||
            read_prelude(p, q, 0, &deadline, rp))
                return;
        wf = proj_fold_get(&p->fold, id);
        if (!wf) {
                reply_errorf(rp, 404, "no workflow '%.200s'", id);
                return;
        }
        /* The hot path: text written directly, no jansson tree. */
        if (!(rp->body = proj_wf_text(wf))) {
                reply_json(rp, 200, NULL); /* 500 */
                return;
        }
        rp->status = 200;
        rp->type = CONTENT_JSON;
}

/* ---- GET /api/v1/workflows/{id}/result ---------------------------------- */

/* Lock held; waits (releasing it) until the run closes or `wait` ends. */
static void get_result(proj_t *p, const char *id, const params_t *q,
                       reply_t *rp)
{
        int64_t deadline;
        proj_wf_t *wf;
        json_t *full, *o;

        if (params_check(q, wf_params, rp) ||
            read_prelude(p, q, 0, &deadline, rp))
                return;
        for (;;) {
                wf = proj_fold_get(&p->fold, id);
                if ((wf && wf->closed) || atomic_load(&p->stop) ||
                    keel__clock_ms(CLOCK_MONOTONIC) >= deadline)
                        break;
                wait_change(p, deadline);
        }
        if (!wf) {
                reply_errorf(rp, 404, "no workflow '%.200s'", id);
                return;
        }
        full = proj_wf_json(wf);
        o = json_pack("{ss ss* ss sb sO* sO* sI}", "workflow_id", wf->id,
                      "run_id", wf->run_id, "status",
                      proj_status_name(wf->status), "closed", wf->closed,
                      "result", json_object_get(full, "result"), "failure",
                      json_object_get(full, "failure"), "history_length",
                      (json_int_t)wf->history_length);
        json_decref(full);
        reply_json(rp, 200, o);
}

/* ---- GET /api/v1/workflows/{id}/history --------------------------------- */

/* Lock held on entry and on return; released while keel.history is read
 * back. */
static void get_history(proj_t *p, const char *id, const params_t *q,
                        reply_t *rp)
{
        static const char *const allowed[] = {"cursor", "limit", "after",
                                              "wait", NULL};
        const char *cursor = param(q, "cursor");
        int64_t deadline, from = 1, *offs = NULL;
        size_t n = 0;
        long limit;
        proj_wf_t *wf;
        int32_t part;
        char *run = NULL, err[512];
        json_t *events;
        int rc, more;

        if (params_check(q, allowed, rp) ||
            parse_limit(q, DEFAULT_HISTORY, &limit, rp))
                return;
        if (cursor) {
                char *end;
                errno = 0;
                from = strtoll(cursor, &end, 10);
                if (!*cursor || *end || errno || from < 1) {
                        reply_error(rp, 400,
                                    "cursor must be an event seq (1 or "
                                    "more), as next_cursor gave it");
                        return;
                }
        }
        if (read_prelude(p, q, 0, &deadline, rp))
                return;
        wf = proj_fold_get(&p->fold, id);
        if (!wf) {
                reply_errorf(rp, 404, "no workflow '%.200s'", id);
                return;
        }
        if (wf->noffsets < (size_t)wf->history_length) {
                reply_error(rp, 500,
                            "the projector lost track of this workflow's "
                            "events (out of memory)");
                return;
        }
        if (from <= (int64_t)wf->noffsets) {
                n = wf->noffsets - (size_t)(from - 1);
                if (n > (size_t)limit)
                        n = (size_t)limit;
                offs = malloc(n * sizeof(*offs));
                if (offs)
                        memcpy(offs, wf->offsets + from - 1, n * sizeof(*offs));
        }
        more = from - 1 + (int64_t)n < (int64_t)wf->noffsets;
        run = wf->run_id ? strdup(wf->run_id) : NULL;
        part = keel_partition_of(id, strlen(id), p->partitions);
        if ((n && !offs) || (wf->run_id && !run) || !(events = json_array())) {
                free(offs);
                free(run);
                reply_error(rp, 500, "out of memory");
                return;
        }

        pthread_mutex_unlock(&p->lock);
        rc = proj_fetch_events(p, part, offs, n, events, err, sizeof(err));
        pthread_mutex_lock(&p->lock);
        free(offs);
        if (rc) {
                keel_log(KEEL_LOG_WARN, "projector",
                         "msg=\"cannot read history back\" workflow_id=%s "
                         "error=\"%s\"",
                         id, err);
                reply_errorf(rp, 503, "cannot read keel.history: %s", err);
                rp->retry_after = 1;
        } else {
                char next[24];
                snprintf(next, sizeof(next), "%lld",
                         (long long)(from + (int64_t)n));
                reply_json(rp, 200,
                           json_pack("{ss ss* sO so}", "workflow_id", id,
                                     "run_id", run, "events", events,
                                     "next_cursor",
                                     more ? json_string(next) : json_null()));
        }
        json_decref(events);
        free(run);
}

/* ---- writes ------------------------------------------------------------- */

/* The body as JSON: any value, or `dflt` (stolen) when empty; NULL with a
 * 400 in rp. */
static json_t *body_json(const char *body, size_t len, json_t *dflt,
                         reply_t *rp)
{
        json_error_t e;
        json_t *v;
        if (!len)
                return dflt;
        json_decref(dflt);
        v = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
        if (!v)
                reply_errorf(rp, 400, "the body is not JSON: %s (line %d)",
                             e.text, e.line);
        return v;
}

/* An object body whose keys are all among `allowed`; NULL with a 400. */
static json_t *body_object(const char *body, size_t len, int required,
                           const char *const *allowed, reply_t *rp)
{
        json_t *v = body_json(body, len, required ? NULL : json_object(), rp);
        const char *k;
        json_t *x;

        if (!v) {
                if (!len)
                        reply_error(rp, 400, "a JSON object is required");
                return NULL;
        }
        if (!json_is_object(v)) {
                json_decref(v);
                reply_error(rp, 400, "the body must be a JSON object");
                return NULL;
        }
        json_object_foreach(v, k, x)
        {
                const char *const *a = allowed;
                while (*a && strcmp(*a, k))
                        a++;
                if (!*a) {
                        reply_errorf(rp, 400, "unknown field '%.64s'", k);
                        json_decref(v);
                        return NULL;
                }
        }
        return v;
}

/* A string field (NULL if absent); -1 with a 400 if present but not a
 * non-empty string. */
static int str_field(const json_t *o, const char *k, const char **out,
                     reply_t *rp)
{
        const json_t *v = json_object_get(o, k);
        *out = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v) || !json_string_length(v) ||
            strlen(json_string_value(v)) != json_string_length(v)) {
                reply_errorf(rp, 400, "%s must be a non-empty string", k);
                return -1;
        }
        *out = json_string_value(v);
        return 0;
}

static int ms_field(const json_t *o, const char *k, int64_t *out, reply_t *rp)
{
        const json_t *v = json_object_get(o, k);
        *out = 0;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
                reply_errorf(rp, 400, "%s must be a whole number of ms >= 0",
                             k);
                return -1;
        }
        *out = json_integer_value(v);
        return 0;
}

/* Answer a write: 202 with the command's inbox position, or the error. */
static void write_done(proj_t *p, const char *id, int rc, const char *err,
                       reply_t *rp)
{
        keel__receipt_t rcpt;
        unsigned status;

        if (rc == KEEL_OK) {
                atomic_fetch_add(&p->m.commands, 1);
                keel__client_last_receipt(&rcpt);
                snprintf(rp->inbox, sizeof(rp->inbox), "%d:%lld",
                         (int)rcpt.partition, (long long)rcpt.offset);
                reply_json(rp, 202,
                           json_pack("{ss ss ss}", "workflow_id", id,
                                     "command_id", rcpt.command_id, "position",
                                     rp->inbox));
                return;
        }
        switch (rc) {
        case KEEL_ERR_INVALID_ARG:
                status = 400;
                break;
        case KEEL_ERR_TOO_LARGE:
                status = 413;
                break;
        case KEEL_ERR_NOMEM:
                status = 500;
                break;
        default: /* the broker or keel's topics: try again later */
                status = 503;
                rp->retry_after = 1;
                keel_log(KEEL_LOG_WARN, "projector",
                         "msg=\"command not written\" workflow_id=%s "
                         "error=\"%s\"",
                         id, err);
                break;
        }
        reply_error(rp, status, err);
}

static void post_start(server_t *s, const char *body, size_t len, reply_t *rp)
{
        static const char *const allowed[] = {"workflow_id",
                                              "type",
                                              "input",
                                              "id_reuse_policy",
                                              "id_conflict_policy",
                                              "signal",
                                              "execution_timeout_ms",
                                              "run_timeout_ms",
                                              "command_id",
                                              "search_attributes",
                                              NULL};
        static const char *const sig_allowed[] = {"name", "payload", NULL};
        keel_start_options_t o = {0};
        const char *id, *type;
        char gen[KEEL_UUID_SIZE], err[512] = "";
        json_t *v = body_object(body, len, 1, allowed, rp), *sig;
        int rc;

        if (!v)
                return;
        sig = json_object_get(v, "signal");
        if (str_field(v, "workflow_id", &id, rp) ||
            str_field(v, "type", &type, rp) ||
            str_field(v, "id_reuse_policy", &o.id_reuse_policy, rp) ||
            str_field(v, "id_conflict_policy", &o.id_conflict_policy, rp) ||
            str_field(v, "command_id", &o.command_id, rp) ||
            ms_field(v, "execution_timeout_ms", &o.execution_timeout_ms, rp) ||
            ms_field(v, "run_timeout_ms", &o.run_timeout_ms, rp))
                goto out;
        if (!type) {
                reply_error(rp, 400, "type (the workflow type) is required");
                goto out;
        }
        if (sig && !json_is_null(sig)) {
                const char *k;
                json_t *x;
                if (!json_is_object(sig) ||
                    str_field(sig, "name", &o.signal_name, rp) ||
                    !o.signal_name) {
                        if (!rp->body)
                                reply_error(rp, 400,
                                            "signal must be {\"name\": ..., "
                                            "\"payload\": ...}");
                        goto out;
                }
                json_object_foreach(sig, k, x)
                {
                        const char *const *a = sig_allowed;
                        while (*a && strcmp(*a, k))
                                a++;
                        if (!*a) {
                                reply_errorf(rp, 400,
                                             "unknown field 'signal.%.64s'", k);
                                goto out;
                        }
                }
                o.signal_payload = json_object_get(sig, "payload");
        }
        o.search_attributes = json_object_get(v, "search_attributes");
        if (json_is_null(o.search_attributes))
                o.search_attributes = NULL;
        if (!id) {
                if (keel_client_command_id(gen)) {
                        reply_error(rp, 500, "no randomness for an ID");
                        goto out;
                }
                id = gen;
        }
        rc = keel_client_start(s->client, id, type, json_object_get(v, "input"),
                               &o, NULL, err, sizeof(err));
        write_done(s->p, id, rc, err, rp);
out:
        json_decref(v);
}

static void post_signal(server_t *s, const route_t *r, const params_t *q,
                        const char *body, size_t len, reply_t *rp)
{
        static const char *const allowed[] = {"run_id", NULL};
        char err[512] = "";
        json_t *payload;
        int rc;

        if (params_check(q, allowed, rp))
                return;
        payload = body_json(body, len, json_null(), rp);
        if (!payload)
                return;
        rc = keel_client_signal(s->client, r->id, param(q, "run_id"), r->name,
                                payload, 0, err, sizeof(err));
        json_decref(payload);
        write_done(s->p, r->id, rc, err, rp);
}

static void post_cancel_terminate(server_t *s, const route_t *r,
                                  const char *body, size_t len, reply_t *rp)
{
        static const char *const cancel_allowed[] = {"reason", "run_id", NULL};
        static const char *const term_allowed[] = {"reason", "details",
                                                   "run_id", NULL};
        int term = r->kind == R_TERMINATE;
        const char *reason, *run;
        char err[512] = "";
        json_t *v =
            body_object(body, len, 0, term ? term_allowed : cancel_allowed, rp);
        const json_t *rs;
        int rc;

        if (!v)
                return;
        rs = json_object_get(v, "reason");
        if (rs && !json_is_string(rs) && !json_is_null(rs)) {
                reply_error(rp, 400, "reason must be a string");
                json_decref(v);
                return;
        }
        reason = json_string_value(rs);
        if (str_field(v, "run_id", &run, rp)) {
                json_decref(v);
                return;
        }
        if (term)
                rc = keel_client_terminate(s->client, r->id, run, reason,
                                           json_object_get(v, "details"), 0,
                                           err, sizeof(err));
        else
                rc = keel_client_cancel(s->client, r->id, run, reason, 0, err,
                                        sizeof(err));
        json_decref(v);
        write_done(s->p, r->id, rc, err, rp);
}

/* ---- the request -------------------------------------------------------- */

/* One request's state across libmicrohttpd's calls. */
typedef struct req_s {
        char *body;
        size_t len, cap;
        int answered; /* a response is queued */
        /* A job: what it answers, and its reply once done. */
        server_t *s;
        struct MHD_Connection *conn;
        route_t route;
        params_t q;
        int write;
        reply_t *rp; /* set: the job is done, send it */
} req_t;

/* Is the request's bearer token the configured one? Compared in constant
 * time. */
static int authorized(const server_t *s, struct MHD_Connection *conn)
{
        const char *h =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        size_t n = strlen(s->token), m;
        unsigned char diff = 0;

        if (!h || strncmp(h, "Bearer ", 7))
                return 0;
        h += 7;
        m = strlen(h);
        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char)(s->token[i] ^ (i < m ? h[i] : 0));
        return !diff && m == n;
}

/* Which requests need the token. */
static int needs_token(const server_t *s, const route_t *r, int write)
{
        if (!s->token)
                return 0;
        if (write)
                return 1;
        return s->auth_reads && (r->kind == R_METRICS ||
                                 (r->kind >= R_LIST && r->kind <= R_RESULT));
}

/* Answer a complete request with query q; method already checked
 * against the route. A pool thread, or a job's (may wait). */
static void answer(server_t *s, const route_t *r, int write, const req_t *rq,
                   const params_t *q, reply_t *rp)
{
        proj_t *p = s->p;

        if (write) {
                static const char *const none[] = {NULL};
                if (r->kind == R_SIGNAL)
                        post_signal(s, r, q, rq->body, rq->len, rp);
                else if (!params_check(q, none, rp)) {
                        if (r->kind == R_LIST)
                                post_start(s, rq->body, rq->len, rp);
                        else
                                post_cancel_terminate(s, r, rq->body, rq->len,
                                                      rp);
                }
                pthread_mutex_lock(&p->lock);
                proj_read_position(p, rp->position, sizeof(rp->position));
                pthread_mutex_unlock(&p->lock);
                return;
        }
        if (r->kind == R_WEB) {
                rp->status = 200;
                rp->type = r->asset->type;
                rp->fixed = r->asset->data;
                rp->fixed_len = r->asset->len;
        }
        pthread_mutex_lock(&p->lock);
        switch (r->kind) {
        case R_WEB:
                break;
        case R_HEALTH:
                reply_json(rp, 200, json_pack("{ss}", "status", "ok"));
                break;
        case R_READY: {
                int ready = atomic_load(&p->ready);
                reply_json(rp, ready ? 200 : 503,
                           json_pack("{sb}", "ready", ready));
                rp->retry_after = !ready;
                break;
        }
        case R_METRICS:
                metrics(p, rp);
                break;
        case R_LIST:
                list_workflows(p, q, rp);
                break;
        case R_WF:
                get_workflow(p, r->id, q, rp);
                break;
        case R_RESULT:
                get_result(p, r->id, q, rp);
                break;
        case R_HISTORY:
                get_history(p, r->id, q, rp);
                break;
        default:
                reply_error(rp, 404, "no such resource");
                break;
        }
        proj_read_position(p, rp->position, sizeof(rp->position));
        pthread_mutex_unlock(&p->lock);
}

static enum MHD_Result send_reply(server_t *s, struct MHD_Connection *conn,
                                  req_t *rq, reply_t *rp)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;

        if (rp->fixed)
                resp = MHD_create_response_from_buffer(
                    rp->fixed_len, (void *)rp->fixed, MHD_RESPMEM_PERSISTENT);
        else
                resp = MHD_create_response_from_buffer(
                    rp->body ? strlen(rp->body) : 0, rp->body,
                    MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(rp->body);
                return MHD_NO;
        }
        rp->body = NULL;
        MHD_add_response_header(resp, "Content-Type",
                                rp->type ? rp->type : CONTENT_JSON);
        if (rp->position[0])
                MHD_add_response_header(resp, "X-Keel-Read-Position",
                                        rp->position);
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        if (rp->allow)
                MHD_add_response_header(resp, "Allow", rp->allow);
        if (rp->retry_after)
                MHD_add_response_header(resp, "Retry-After", "1");
        if (rp->www_auth)
                MHD_add_response_header(resp, "WWW-Authenticate",
                                        "Bearer realm=\"keel\"");
        if (rp->caught_up)
                MHD_add_response_header(resp, "X-Keel-Caught-Up",
                                        rp->caught_up);
        if (rp->inbox[0])
                MHD_add_response_header(resp, "X-Keel-Inbox-Position",
                                        rp->inbox);
        atomic_fetch_add(&s->p->m.http[proj_http_code_index(rp->status)], 1);
        ret = MHD_queue_response(conn, rp->status, resp);
        MHD_destroy_response(resp);
        rq->answered = 1;
        return ret;
}

/* A reply with only an error. */
static enum MHD_Result send_error(server_t *s, struct MHD_Connection *conn,
                                  req_t *rq, unsigned status, const char *msg,
                                  const char *allow)
{
        reply_t rp;
        memset(&rp, 0, sizeof(rp));
        reply_error(&rp, status, msg);
        pthread_mutex_lock(&s->p->lock);
        proj_read_position(s->p, rp.position, sizeof(rp.position));
        pthread_mutex_unlock(&s->p->lock);
        rp.allow = allow;
        rp.www_auth = status == 401;
        return send_reply(s, conn, rq, &rp);
}

/* Does the request carry a body (a length over 0, or chunks)? */
static int has_body(struct MHD_Connection *conn)
{
        const char *cl = MHD_lookup_connection_value(
            conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        return MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
               (cl && strtoull(cl, NULL, 10) > 0);
}

/* The status refusing the request (its headers known) with *why and
 * *allow, or 0 to answer it. */
static unsigned refusal(const server_t *s, struct MHD_Connection *conn,
                        const route_t *r, int get, int write, const char **why,
                        const char **allow)
{
        const char *cl = MHD_lookup_connection_value(
            conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        *allow = NULL;
        if (r->kind == R_NONE) {
                *why = "no such resource";
                return 404;
        }
        if (r->kind == R_BAD) {
                *why = r->why;
                return 400;
        }
        if (!(get && !route_is_write(r->kind)) && !write) {
                *why = "method not allowed";
                *allow = route_allow(r->kind);
                return 405;
        }
        if (needs_token(s, r, write) && !authorized(s, conn)) {
                *why = "a valid bearer token is required "
                       "(Authorization: Bearer <http.token>)";
                return 401;
        }
        if (write && cl &&
            strtoull(cl, NULL, 10) > (unsigned long long)s->max_body) {
                *why = "the body is over http.max.body.bytes";
                return 413;
        }
        return 0;
}

/* ---- jobs: requests that may wait --------------------------------------- */

/* May the request wait (for Kafka, or for the fold to change)? Raw keys,
 * as params_check() sees them. */
static int may_wait(struct MHD_Connection *conn, const route_t *r, int write)
{
        if (write || r->kind == R_HISTORY)
                return 1;
        if (r->kind < R_LIST || r->kind > R_RESULT)
                return 0;
        return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                           "wait") ||
               MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                           "after");
}

/* One job fewer. */
static void job_finish_count(server_t *s)
{
        pthread_mutex_lock(&s->jobs_lock);
        if (--s->jobs == 0)
                pthread_cond_broadcast(&s->jobs_done);
        pthread_mutex_unlock(&s->jobs_lock);
}

/* The job's reply is in rq: let the connection's pool thread send it. The
 * job's thread, or a pool thread when no job thread started. rq may be
 * freed as soon as the connection is resumed. */
static void job_finish(req_t *rq)
{
        server_t *s = rq->s;
        MHD_resume_connection(rq->conn);
        job_finish_count(s);
}

/* A job's own thread. */
static void *job_main(void *arg)
{
        req_t *rq = arg;
        answer(rq->s, &rq->route, rq->write, rq, &rq->q, rq->rp);
        job_finish(rq);
        return NULL;
}

/* Make the request in rq (route r, stolen) a job: suspend its connection
 * and answer it on a thread of its own. A pool thread. */
static enum MHD_Result job_start(server_t *s, struct MHD_Connection *conn,
                                 req_t *rq, route_t *r, int write)
{
        pthread_attr_t attr;
        pthread_t th;
        int rc, stopping;

        pthread_mutex_lock(&s->jobs_lock);
        stopping = s->stopping;
        s->jobs += !stopping;
        pthread_mutex_unlock(&s->jobs_lock);
        if (stopping || !(rq->rp = calloc(1, sizeof(*rq->rp)))) {
                route_free(r);
                if (!stopping)
                        job_finish_count(s);
                return stopping ? send_error(s, conn, rq, 503,
                                             "the projector is stopping", NULL)
                                : MHD_NO;
        }
        rq->s = s;
        rq->conn = conn;
        rq->route = *r;
        rq->write = write;
        memset(r, 0, sizeof(*r));
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, param_cb,
                                  &rq->q);
        /* Suspended before the job can resume it. */
        MHD_suspend_connection(conn);
        rc = pthread_attr_init(&attr);
        if (!rc) {
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                rc = pthread_create(&th, &attr, job_main, rq);
                pthread_attr_destroy(&attr);
        }
        if (rc) {
                keel_log(KEEL_LOG_WARN, "projector",
                         "msg=\"cannot start a thread for a request\" "
                         "error=\"%s\"",
                         strerror(rc));
                reply_error(rq->rp, 503,
                            "the projector cannot take this request now");
                rq->rp->retry_after = 1;
                job_finish(rq); /* answered when resumed */
        }
        return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
        server_t *s = cls;
        req_t *rq = *con_cls;
        route_t r;
        reply_t *rp;
        enum MHD_Result ret;
        const char *why, *allow;
        unsigned status;
        int get, post, write;

        (void)version;
        method = method ? method : "";
        get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        post = !strcmp(method, "POST");

        if (rq && rq->rp && !rq->answered) {
                /* A job is done (or refused): send its reply. */
                pthread_mutex_lock(&s->p->lock);
                if (!rq->rp->position[0])
                        proj_read_position(s->p, rq->rp->position,
                                           sizeof(rq->rp->position));
                pthread_mutex_unlock(&s->p->lock);
                return send_reply(s, conn, rq, rq->rp);
        }
        if (rq && rq->answered) {
                *upload_size = 0; /* a body nobody reads */
                return MHD_YES;
        }
        if (rq && *upload_size) {
                /* More of the body. */
                if (*upload_size > s->max_body - rq->len) {
                        keel_log(KEEL_LOG_WARN, "projector",
                                 "msg=\"request body over the limit, "
                                 "connection closed\" limit=%zu",
                                 s->max_body);
                        atomic_fetch_add(
                            &s->p->m.http[proj_http_code_index(413)], 1);
                        return MHD_NO;
                }
                if (rq->len + *upload_size > rq->cap) {
                        size_t cap = rq->cap ? rq->cap : 4096;
                        char *b;
                        while (cap < rq->len + *upload_size)
                                cap *= 2;
                        b = realloc(rq->body, cap);
                        if (!b)
                                return MHD_NO;
                        rq->body = b;
                        rq->cap = cap;
                }
                memcpy(rq->body + rq->len, upload, *upload_size);
                rq->len += *upload_size;
                *upload_size = 0;
                return MHD_YES;
        }

        route_parse(url ? url : "", &r);
        write = post && (r.kind == R_LIST || route_is_write(r.kind));
        status = refusal(s, conn, &r, get, write, &why, &allow);
        if (!rq) {
                /* The headers are in. An answer queued now, before the
                 * request is complete, makes libmicrohttpd close the
                 * connection after it: only a refusal of a body is sent
                 * now (the body is not read). Anything else waits for the
                 * next call, and the connection stays open for the next
                 * request. */
                rq = calloc(1, sizeof(*rq));
                if (!rq) {
                        route_free(&r);
                        return MHD_NO;
                }
                *con_cls = rq;
                ret = status && has_body(conn)
                          ? send_error(s, conn, rq, status, why, allow)
                          : MHD_YES;
                route_free(&r);
                return ret;
        }
        /* The request is complete, its body (if any) read. */
        if (status) {
                ret = send_error(s, conn, rq, status, why, allow);
                route_free(&r);
                return ret;
        }
        if (may_wait(conn, &r, write))
                return job_start(s, conn, rq, &r, write);
        rp = calloc(1, sizeof(*rp));
        if (!rp) {
                route_free(&r);
                return MHD_NO;
        }
        {
                params_t q = {0};
                MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, param_cb,
                                          &q);
                answer(s, &r, write, rq, &q, rp);
                params_free(&q);
        }
        ret = send_reply(s, conn, rq, rp);
        free(rp);
        route_free(&r);
        return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
        req_t *rq = *con_cls;
        (void)cls;
        (void)conn;
        (void)toe;
        if (rq) {
                free(rq->body);
                if (rq->rp)
                        free(rq->rp->body);
                free(rq->rp);
                route_free(&rq->route);
                params_free(&rq->q);
                free(rq);
                *con_cls = NULL;
        }
}

/* Paths stay raw: route_parse() decodes them segment by segment, and
 * param_cb() each query value. */
static size_t no_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
        (void)cls;
        (void)conn;
        return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        (void)cls;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        keel_log(KEEL_LOG_DEBUG, "projector", "msg=\"http: %s\"", msg);
}

static int64_t cfg_int(const keel_config_t *cfg, const char *key)
{
        int64_t v = 0;
        keel_config_get_int(cfg, key, &v); /* checked when loaded */
        return v;
}

void *proj_http_start(proj_t *p, const char *listen, int *port)
{
        server_t *s = calloc(1, sizeof(*s));
        struct sockaddr_in sa;
        char host[256], err[512];
        const char *colon = listen ? strrchr(listen, ':') : NULL;
        const char *token = keel_config_get(p->cfg, "http.token");
        const union MHD_DaemonInfo *info;
        unsigned threads = (unsigned)cfg_int(p->cfg, "http.threads");
        unsigned conns = (unsigned)cfg_int(p->cfg, "http.max.connections");
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
        s->max_body = (size_t)cfg_int(p->cfg, "http.max.body.bytes");
        s->auth_reads =
            !strcmp(keel_config_get(p->cfg, "http.auth.reads"), "true");
        if (token && *token && !(s->token = strdup(token))) {
                free(s);
                return NULL;
        }
        s->client = keel_client_new(p->cfg, err, sizeof(err));
        if (!s->client) {
                keel_log(KEEL_LOG_ERROR, "projector",
                         "msg=\"cannot make a Kafka producer\" error=\"%s\"",
                         err);
                free(s->token);
                free(s);
                return NULL;
        }
        pthread_mutex_init(&s->jobs_lock, NULL);
        pthread_cond_init(&s->jobs_done, NULL);
        if (!threads) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                threads = cpus > 0 ? (unsigned)cpus : 1;
        }
        /* libmicrohttpd splits the connection limit among the threads. */
        if (threads > conns)
                threads = conns;
        /* poll(), not epoll: libmicrohttpd 0.9.75's edge-triggered epoll
         * misses a client's FIN that comes with or just after a request
         * on a kept-alive connection, which then waits in CLOSE-WAIT for
         * the idle timeout (found by fuzz_http; half the connections of a
         * client that half-closes). poll() sees it, and with a share of
         * http.max.connections per thread costs no more. */
        s->d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
            0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, threads,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_IDLE_S,
            MHD_OPTION_CONNECTION_LIMIT, conns, MHD_OPTION_NOTIFY_COMPLETED,
            completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
        if (!s->d) {
                keel_log(KEEL_LOG_ERROR, "projector",
                         "msg=\"cannot serve HTTP\" listen=%s error=\"%s\"",
                         listen, strerror(errno));
                pthread_cond_destroy(&s->jobs_done);
                pthread_mutex_destroy(&s->jobs_lock);
                keel_client_destroy(s->client);
                free(s->token);
                free(s);
                return NULL;
        }
        info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
        *port = info ? info->port : 0;
        keel_log(KEEL_LOG_DEBUG, "projector",
                 "msg=\"serving HTTP\" port=%d threads=%u max_connections=%u",
                 *port, threads, conns);
        if (s->token)
                keel_log(KEEL_LOG_INFO, "projector",
                         "msg=\"bearer token required\" for=%s",
                         s->auth_reads ? "reads,writes" : "writes");
        return s;
}

void proj_http_stop(void *server)
{
        server_t *s = server;
        if (!s)
                return;
        /* Long polls see this within half a second and answer. */
        pthread_mutex_lock(&s->p->lock);
        atomic_store(&s->p->stop, 1);
        pthread_cond_broadcast(&s->p->changed);
        pthread_mutex_unlock(&s->p->lock);
        /* No connection may be suspended when the daemon stops: let the
         * jobs under way finish (a write within timeout.ms) and start no
         * more. */
        pthread_mutex_lock(&s->jobs_lock);
        s->stopping = 1;
        while (s->jobs)
                pthread_cond_wait(&s->jobs_done, &s->jobs_lock);
        pthread_mutex_unlock(&s->jobs_lock);
        MHD_stop_daemon(s->d);
        pthread_cond_destroy(&s->jobs_done);
        pthread_mutex_destroy(&s->jobs_lock);
        keel_client_destroy(s->client);
        free(s->token);
        free(s);
}

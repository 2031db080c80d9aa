/*
 * workflow_read.c: `keel workflow list|describe|history|result` through
 * keel-projector's HTTP API (workflow_read.h). Each verb is one or more
 * GETs (http_client.h): list and history follow the API's cursors, result
 * long-polls in slices the projector accepts. While the projector is still
 * catching up it answers 503; these verbs retry until timeout.ms, so a
 * script may run them right after starting it. Text output is for people;
 * --json prints the API's own objects (history and list --all merged into
 * one) for scripts and the replayer.
 */
#include "workflow_read.h"

#include "app.h"
#include "http_client.h"
#include "keel/error.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API             "/api/v1/workflows"
#define HISTORY_PAGE    "1000" /* events per history page (the API's most) */
#define MAX_POLL_MS     120000 /* the longest wait the projector accepts */
#define MAX_RUN_RESTART 3      /* history: times to start over on a new run */
#define DETAILS_CHARS   120    /* history: width of the details column */
#define TABLE_COLS      8      /* the most columns a table has */

/* One conversation with the projector. */
typedef struct reader_s {
        keel__http_url_t url;
        const char *token;
        int timeout_ms;
        const char *verb;
        const char *id;
        const char *prog; /* names errors; NULL: "keel workflow <verb>" */
} reader_t;

static const char *const statuses[] = {"running",   "blocked",   "completed",
                                       "failed",    "cancelled", "terminated",
                                       "continued", NULL};

static void errorf(const reader_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void errorf(const reader_t *r, const char *fmt, ...)
{
        va_list ap;
        if (r->prog)
                fprintf(stderr, "%s: ", r->prog);
        else
                fprintf(stderr, "keel workflow %s: ", r->verb);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
        struct timespec ts = {(time_t)(ms / 1000),
                              (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts))
                ;
}

/* The request target API[/id[/sub]][?k=v&...]: path segment and query
 * values percent-encoded; pairs with a NULL value are left out. kv holds
 * nkv keys and values in turn. A malloc'd string, or NULL (out of
 * memory). */
static char *target(const char *id, const char *sub, const char *const *kv,
                    size_t nkv)
{
        char *t = NULL;
        size_t len = 0;
        int first = 1;

        if (keel__http_append(&t, &len, API, 0))
                return NULL;
        if (id && (keel__http_append(&t, &len, "/", 0) ||
                   keel__http_append(&t, &len, id, 1)))
                return NULL;
        if (sub && (keel__http_append(&t, &len, "/", 0) ||
                    keel__http_append(&t, &len, sub, 0)))
                return NULL;
        for (size_t i = 0; i + 1 < nkv; i += 2) {
                if (!kv[i + 1])
                        continue;
                if (keel__http_append(&t, &len, first ? "?" : "&", 0) ||
                    keel__http_append(&t, &len, kv[i], 0) ||
                    keel__http_append(&t, &len, "=", 0) ||
                    keel__http_append(&t, &len, kv[i + 1], 1))
                        return NULL;
                first = 0;
        }
        return t;
}

/* The "error" of an error answer's body, or the body itself. */
static const char *api_error(const json_t *body, const keel__http_reply_t *rp)
{
        const char *e = json_string_value(json_object_get(body, "error"));
        return e ? e : rp->len ? rp->body : "(no message)";
}

static int exit_of(int rc)
{
        switch (rc) {
        case KEEL_ERR_TRANSPORT:
        case KEEL_ERR_TIMEOUT:
        case KEEL_ERR_CORRUPT:
                return KEEL_EXIT_UNAVAILABLE;
        case KEEL_ERR_INVALID_ARG:
                return KEEL_EXIT_USAGE;
        default:
                return KEEL_EXIT_FAILURE;
        }
}

/*
 * GET path (a target(), freed here) and parse its JSON into *out. wait_ms: how
 * long the projector may hold the answer (a long poll). Retries 503 (not ready
 * yet) until timeout.ms. Returns an exit code; *out is set only with
 * KEEL_EXIT_OK.
 */
static int fetch(reader_t *r, char *path, int64_t wait_ms, json_t **out)
{
        int64_t give_up = mono_ms() + r->timeout_ms;
        keel__http_reply_t rp;
        json_t *body;
        char err[1024];
        int rc, code;

        *out = NULL;
        if (!path) {
                errorf(r, "out of memory");
                return KEEL_EXIT_FAILURE;
        }
        for (;;) {
                rc = keel__http_get(&r->url, path, r->token,
                                    (int)(r->timeout_ms + wait_ms), &rp, err,
                                    sizeof(err));
                if (rc) {
                        free(path);
                        errorf(r, "%s", err);
                        return exit_of(rc);
                }
                if (rp.status != 503 || mono_ms() >= give_up)
                        break;
                /* Still reading keel.history: come back as it asks. */
                {
                        int64_t pause =
                            rp.retry_after > 0 ? rp.retry_after * 1000LL : 1000;
                        int64_t left = give_up - mono_ms();
                        keel__http_reply_free(&rp);
                        sleep_ms(pause < left ? pause : left > 0 ? left : 0);
                }
        }
        free(path);
        body = json_loadb(rp.body, rp.len, JSON_DECODE_ANY, NULL);
        code = KEEL_EXIT_FAILURE;
        if (rp.status == 200 && json_is_object(body)) {
                *out = body;
                body = NULL;
                code = KEEL_EXIT_OK;
        } else if (rp.status == 200) {
                errorf(r,
                       "the projector at %s answered with something other "
                       "than a JSON object",
                       r->url.url);
        } else if (rp.status == 404 && r->id) {
                errorf(r, "no workflow '%s'", r->id);
        } else if (rp.status == 400) {
                errorf(r, "%s", api_error(body, &rp));
                code = KEEL_EXIT_USAGE;
        } else if (rp.status == 401) {
                errorf(r,
                       "the projector at %s refused the request: %s (set "
                       "http.token)",
                       r->url.url, api_error(body, &rp));
                code = KEEL_EXIT_USAGE;
        } else if (rp.status == 503) {
                errorf(r,
                       "the projector at %s is unavailable (503) after "
                       "%d ms of retries: %s",
                       r->url.url, r->timeout_ms, api_error(body, &rp));
                code = KEEL_EXIT_UNAVAILABLE;
        } else {
                errorf(r, "the projector at %s answered %d: %s", r->url.url,
                       rp.status, api_error(body, &rp));
        }
        json_decref(body);
        keel__http_reply_free(&rp);
        return code;
}

/* ---- output helpers ---------------------------------------------------- */

/* v as text: a string as is, null as "-", anything else as compact JSON.
 * A malloc'd string (NULL: out of memory). */
char *keel_cli_text_of(const json_t *v)
{
        if (!v || json_is_null(v))
                return strdup("-");
        if (json_is_string(v))
                return strdup(json_string_value(v));
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The string obj[key], or "?" when it is missing or not a string. */
const char *keel_cli_str_of(const json_t *obj, const char *key)
{
        const char *v = json_string_value(json_object_get(obj, key));
        return v ? v : "?";
}

/* Print v compactly on one line. */
static int print_json(const json_t *v)
{
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) {
                fputs("keel workflow: out of memory\n", stderr);
                return KEEL_EXIT_FAILURE;
        }
        puts(s);
        free(s);
        return KEEL_EXIT_OK;
}

/* Print "label  value" (value as keel_cli_text_of()). */
void keel_cli_field(const char *label, const json_t *v)
{
        char *s = keel_cli_text_of(v);
        printf("%-19s %s\n", label, s ? s : "?");
        free(s);
}

/* Print one table line: cells padded to their column's width, the last
 * one not. */
static void print_line(const char *const *cells, const size_t *w, size_t ncols)
{
        for (size_t c = 0; c + 1 < ncols; c++)
                printf("%-*s  ", (int)w[c], cells[c] ? cells[c] : "");
        printf("%s\n", cells[ncols - 1] ? cells[ncols - 1] : "");
}

/* Print rows (an array of arrays of strings) under headers as a table
 * with ncols (at most TABLE_COLS) columns. */
void keel_cli_print_table(const char *const *headers, size_t ncols,
                          const json_t *rows)
{
        size_t w[TABLE_COLS] = {0}, i;
        const char *cells[TABLE_COLS];
        const json_t *row;

        for (size_t c = 0; c < ncols; c++)
                w[c] = strlen(headers[c]);
        json_array_foreach(rows, i, row)
        {
                for (size_t c = 0; c < ncols; c++) {
                        size_t l = json_string_length(json_array_get(row, c));
                        if (l > w[c])
                                w[c] = l;
                }
        }
        print_line(headers, w, ncols);
        json_array_foreach(rows, i, row)
        {
                for (size_t c = 0; c < ncols; c++)
                        cells[c] = json_string_value(json_array_get(row, c));
                print_line(cells, w, ncols);
        }
}

/* A row cell: v as keel_cli_text_of(), stolen into a JSON string. */
static json_t *cell(const json_t *v)
{
        char *s = keel_cli_text_of(v);
        json_t *j = s ? json_string(s) : NULL;
        free(s);
        return j ? j : json_string("?");
}

/* ---- pages ------------------------------------------------------------- */

/* Append page's array `key` to acc and move *cursor (malloc'd, NULL for
 * none) to the page's next_cursor: NULL after the last page. Returns an
 * exit code. */
static int next_page(reader_t *r, const json_t *page, const char *key,
                     json_t *acc, char **cursor)
{
        const char *next =
            json_string_value(json_object_get(page, "next_cursor"));

        if (json_array_extend(acc, json_object_get(page, key))) {
                errorf(r, "the projector's page has no '%s' array", key);
                return KEEL_EXIT_FAILURE;
        }
        if (next && *cursor && !strcmp(next, *cursor)) {
                errorf(r,
                       "the projector returned the same page twice "
                       "(cursor '%s')",
                       next);
                return KEEL_EXIT_FAILURE;
        }
        free(*cursor);
        *cursor = next ? strdup(next) : NULL;
        if (next && !*cursor) {
                errorf(r, "out of memory");
                return KEEL_EXIT_FAILURE;
        }
        return KEEL_EXIT_OK;
}

/* ---- list -------------------------------------------------------------- */

static int list(reader_t *r, const keel_cli_read_t *q)
{
        static const char *const headers[] = {
            "WORKFLOW ID", "TYPE", "STATUS", "STARTED", "CLOSED", "EVENTS"};
        static const char *const cols[] = {"workflow_id", "type",
                                           "status",      "start_time",
                                           "close_time",  "history_length"};
        json_t *all = json_array(), *counts = NULL, *page = NULL, *rows, *wf;
        char limit[16], *cursor = q->cursor ? strdup(q->cursor) : NULL;
        size_t i;
        int code = KEEL_EXIT_OK;

        snprintf(limit, sizeof(limit), "%d", q->limit);
        do {
                const char *kv[10 + 2 * KEEL_CLI_MAX_SEARCH] = {
                    "status", q->status, "type",  q->type,
                    "prefix", q->prefix, "limit", q->limit ? limit : NULL,
                    "cursor", cursor};
                for (size_t k = 0; k < q->nsearch; k++) {
                        kv[10 + 2 * k] = "search";
                        kv[11 + 2 * k] = q->search[k];
                }
                json_decref(page);
                code = fetch(r, target(NULL, NULL, kv, 10 + 2 * q->nsearch), 0,
                             &page);
                if (code)
                        break;
                if (!counts)
                        counts = json_incref(json_object_get(page, "counts"));
                code = next_page(r, page, "workflows", all, &cursor);
        } while (!code && q->all && cursor);

        if (code) {
                /* nothing to print */
        } else if (q->json && !q->all) {
                code = print_json(page);
        } else if (q->json) {
                json_t *merged =
                    json_pack("{sO sn sO}", "workflows", all, "next_cursor",
                              "counts", counts ? counts : json_null());
                code = merged ? print_json(merged) : KEEL_EXIT_FAILURE;
                json_decref(merged);
        } else {
                rows = json_array();
                json_array_foreach(all, i, wf)
                {
                        json_t *row = json_array();
                        for (size_t c = 0; c < 6; c++)
                                json_array_append_new(
                                    row, cell(json_object_get(wf, cols[c])));
                        json_array_append_new(rows, row);
                }
                keel_cli_print_table(headers, 6, rows);
                json_decref(rows);
                if (cursor)
                        printf("(more: --cursor '%s' for the next page, or "
                               "--all)\n",
                               cursor);
                printf("counts:");
                for (int s = 0; statuses[s]; s++)
                        printf("%s %s %lld", s ? "," : "", statuses[s],
                               (long long)json_integer_value(
                                   json_object_get(counts, statuses[s])));
                printf("\n");
        }
        free(cursor);
        json_decref(page);
        json_decref(counts);
        json_decref(all);
        return code;
}

/* ---- describe ---------------------------------------------------------- */

/* The summary fields every verb's text shows first. */
static void print_summary(const json_t *wf)
{
        keel_cli_field("Workflow", json_object_get(wf, "workflow_id"));
        keel_cli_field("Run", json_object_get(wf, "run_id"));
        if (json_object_get(wf, "type"))
                keel_cli_field("Type", json_object_get(wf, "type"));
        keel_cli_field("Status", json_object_get(wf, "status"));
        if (json_object_get(wf, "start_time")) {
                keel_cli_field("Started", json_object_get(wf, "start_time"));
                keel_cli_field("Closed", json_object_get(wf, "close_time"));
        }
        keel_cli_field("History length", json_object_get(wf, "history_length"));
}

/* Result or failure, whichever the run has. */
static void print_outcome(const json_t *wf)
{
        const json_t *f = json_object_get(wf, "failure");
        char *d;

        if (!f || json_is_null(f)) {
                keel_cli_field("Result", json_object_get(wf, "result"));
                return;
        }
        printf("%-19s %s: %s%s\n", "Failure", keel_cli_str_of(f, "type"),
               keel_cli_str_of(f, "message"),
               json_is_true(json_object_get(f, "non_retryable"))
                   ? " (non-retryable)"
                   : "");
        d = keel_cli_text_of(json_object_get(f, "details"));
        if (d && strcmp(d, "-") && strcmp(d, "null"))
                printf("%-19s %s\n", "Failure details", d);
        free(d);
}

static int describe(reader_t *r, const keel_cli_read_t *q)
{
        json_t *wf, *v;
        size_t i;
        int code = fetch(r, target(q->id, NULL, NULL, 0), 0, &wf);

        if (code)
                return code;
        if (q->json) {
                code = print_json(wf);
                json_decref(wf);
                return code;
        }
        print_summary(wf);
        keel_cli_field("Input", json_object_get(wf, "input"));
        print_outcome(wf);
        v = json_object_get(wf, "state");
        if (v && !json_is_null(v))
                keel_cli_field("State", v);
        v = json_object_get(wf, "search_attributes");
        if (json_object_size(v))
                keel_cli_field("Search attributes", v);

        v = json_object_get(wf, "pending_activities");
        printf("%-19s %zu\n", "Pending activities", json_array_size(v));
        for (i = 0; i < json_array_size(v); i++) {
                const json_t *a = json_array_get(v, i);
                char *lf = keel_cli_text_of(json_object_get(a, "last_failure"));
                char *hb =
                    keel_cli_text_of(json_object_get(a, "heartbeat_details"));
                printf("  %s %s attempt %lld",
                       keel_cli_str_of(a, "activity_id"),
                       keel_cli_str_of(a, "activity_type"),
                       (long long)json_integer_value(
                           json_object_get(a, "attempt")));
                if (lf && strcmp(lf, "-"))
                        printf(", last failure %s", lf);
                if (hb && strcmp(hb, "-"))
                        printf(", heartbeat %s", hb);
                printf("\n");
                free(lf);
                free(hb);
        }
        v = json_object_get(wf, "pending_timers");
        printf("%-19s %zu\n", "Pending timers", json_array_size(v));
        for (i = 0; i < json_array_size(v); i++) {
                const json_t *t = json_array_get(v, i);
                char *at = keel_cli_text_of(json_object_get(t, "fire_at"));
                printf("  %s fires at %s\n", keel_cli_str_of(t, "timer_id"),
                       at);
                free(at);
        }
        v = json_object_get(wf, "signals");
        printf("%-19s %lld", "Signals",
               (long long)json_integer_value(json_object_get(v, "count")));
        if (json_array_size(json_object_get(v, "last"))) {
                const json_t *n;
                printf(", last:");
                json_array_foreach(json_object_get(v, "last"), i, n) printf(
                    " %s", json_string_value(n) ? json_string_value(n) : "?");
        }
        printf("\n");
        json_decref(wf);
        return KEEL_EXIT_OK;
}

/* ---- history ----------------------------------------------------------- */

/* Milliseconds since the epoch as RFC 3339 UTC with milliseconds. */
static void format_ms(int64_t ms, char *buf, size_t size)
{
        time_t s = (time_t)(ms / 1000);
        struct tm tm;
        if (ms < 0 || !gmtime_r(&s, &tm)) {
                snprintf(buf, size, "-");
                return;
        }
        strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + strlen(buf), size - strlen(buf), ".%03dZ",
                 (int)(ms % 1000));
}

/* An event's own fields as "key=value ..." (the fields every event
 * carries left out), cut to DETAILS_CHARS. */
static json_t *details(const json_t *rec)
{
        static const char *const common[] = {"workflow_id", "run_id", "seq",
                                             "epoch",       "ts",     NULL};
        const char *key;
        const json_t *v;
        char *s = NULL;
        size_t len = 0;
        json_t *out;

        json_object_foreach((json_t *)rec, key, v)
        {
                int skip = json_is_null(v);
                char *t;
                for (int k = 0; common[k] && !skip; k++)
                        skip = !strcmp(key, common[k]);
                if (skip)
                        continue;
                t = keel_cli_text_of(v);
                if (!t || (len && keel__http_append(&s, &len, " ", 0)) ||
                    keel__http_append(&s, &len, key, 0) ||
                    keel__http_append(&s, &len, "=", 0) ||
                    keel__http_append(&s, &len, t, 0)) {
                        free(t);
                        free(s);
                        return json_string("?");
                }
                free(t);
        }
        if (len > DETAILS_CHARS) {
                size_t cut = DETAILS_CHARS - 3;
                while (cut && ((unsigned char)s[cut] & 0xC0) == 0x80)
                        cut--; /* not inside a UTF-8 sequence */
                strcpy(s + cut, "...");
        }
        out = json_string(s ? s : "");
        if (!out)
                out = json_string("?");
        free(s);
        return out;
}

/* Every page of the latest run's history, merged into
 * {"workflow_id","run_id","events"} in *out. */
static int history_all(reader_t *r, const keel_cli_read_t *q, json_t **out)
{
        json_t *events = json_array(), *page = NULL;
        char *run = NULL, *cursor = NULL;
        int code = KEEL_EXIT_OK, restarts = 0;

        *out = NULL;
        for (;;) {
                const char *kv[] = {"limit", HISTORY_PAGE, "cursor", cursor};
                const char *page_run;

                json_decref(page);
                code = fetch(r, target(q->id, "history", kv, 4), 0, &page);
                if (code)
                        break;
                page_run = json_string_value(json_object_get(page, "run_id"));
                if (run && page_run && strcmp(run, page_run)) {
                        /* A new run started while paging: read it from its
                         * beginning. */
                        if (++restarts > MAX_RUN_RESTART) {
                                errorf(r,
                                       "runs of '%s' keep changing; try "
                                       "again",
                                       q->id);
                                code = KEEL_EXIT_FAILURE;
                                break;
                        }
                        json_array_clear(events);
                        free(cursor);
                        cursor = NULL;
                        free(run);
                        run = NULL;
                        continue;
                }
                if (!run)
                        run = strdup(page_run ? page_run : "");
                code = next_page(r, page, "events", events, &cursor);
                if (code || !cursor)
                        break;
        }
        if (!code) {
                *out = json_pack("{sO sO sO}", "workflow_id",
                                 json_object_get(page, "workflow_id"), "run_id",
                                 json_object_get(page, "run_id"), "events",
                                 events);
                if (!*out) {
                        errorf(r, "the projector's answer lacks "
                                  "workflow_id or run_id");
                        code = KEEL_EXIT_FAILURE;
                }
        }
        free(run);
        free(cursor);
        json_decref(page);
        json_decref(events);
        return code;
}

static int history(reader_t *r, const keel_cli_read_t *q)
{
        static const char *const headers[] = {"SEQ", "TIME", "TYPE", "DETAILS"};
        json_t *h, *rows, *ev;
        size_t i;
        int code = history_all(r, q, &h);

        if (code)
                return code;
        if (q->json) {
                code = print_json(h);
                json_decref(h);
                return code;
        }
        printf("Workflow %s run %s\n", keel_cli_str_of(h, "workflow_id"),
               keel_cli_str_of(h, "run_id"));
        rows = json_array();
        json_array_foreach(json_object_get(h, "events"), i, ev)
        {
                const json_t *rec = json_object_get(ev, "record");
                const json_t *ts = json_object_get(rec, "ts");
                const char *type =
                    json_string_value(json_object_get(ev, "type"));
                char when[40];
                if (json_is_integer(ts))
                        format_ms(json_integer_value(ts), when, sizeof(when));
                else
                        snprintf(when, sizeof(when), "%s",
                                 json_string_value(ts) ? json_string_value(ts)
                                                       : "-");
                if (type && !strncmp(type, "keel.history.", 13))
                        type += 13;
                json_array_append_new(
                    rows,
                    json_pack("[o s s o]", cell(json_object_get(ev, "seq")),
                              when, type ? type : "?", details(rec)));
        }
        keel_cli_print_table(headers, 4, rows);
        json_decref(rows);
        json_decref(h);
        return KEEL_EXIT_OK;
}

/* ---- result ------------------------------------------------------------ */

static int result(reader_t *r, const keel_cli_read_t *q)
{
        int64_t deadline = mono_ms() + q->wait_ms;
        json_t *res = NULL;
        int closed = 0, code;

        for (;;) {
                int64_t left = deadline - mono_ms(), slice;
                char wait[32];
                const char *kv[] = {"wait", wait};
                if (left < 0)
                        left = 0;
                slice = left < MAX_POLL_MS ? left : MAX_POLL_MS;
                snprintf(wait, sizeof(wait), "%lldms", (long long)slice);
                json_decref(res);
                code = fetch(r, target(q->id, "result", kv, slice ? 2 : 0),
                             slice, &res);
                if (code)
                        return code;
                closed = json_is_true(json_object_get(res, "closed"));
                if (closed || left <= slice)
                        break;
        }
        if (q->json) {
                code = print_json(res);
        } else {
                print_summary(res);
                print_outcome(res);
                code = KEEL_EXIT_OK;
        }
        if (!code && !closed) {
                errorf(r,
                       "workflow '%s' is still %s after --wait %lld.%03lld "
                       "s",
                       q->id, keel_cli_str_of(res, "status"),
                       (long long)(q->wait_ms / 1000),
                       (long long)(q->wait_ms % 1000));
                code = KEEL_EXIT_FAILURE;
        }
        json_decref(res);
        return code;
}

/* The projector cfg names (projector.url, http.token, timeout.ms) into
 * r. Returns an exit code. */
static int reader_init(reader_t *r, const keel_config_t *cfg)
{
        const char *token = keel_config_get(cfg, "http.token");
        int64_t timeout_ms = 30000;
        char err[1024];

        if (keel__http_parse(keel_config_get(cfg, "projector.url"), &r->url,
                             err, sizeof(err))) {
                errorf(r, "%s (the projector.url setting)", err);
                return KEEL_EXIT_USAGE;
        }
        keel_config_get_int(cfg, "timeout.ms", &timeout_ms);
        r->timeout_ms = (int)timeout_ms;
        r->token = token && *token ? token : NULL;
        return KEEL_EXIT_OK;
}

int keel_cli_projector_get(const keel_config_t *cfg, const char *prog,
                           const char *id, const char *const *kv, size_t nkv,
                           json_t **out)
{
        reader_t r = {.verb = "", .id = id, .prog = prog};
        int code = reader_init(&r, cfg);
        *out = NULL;
        return code ? code : fetch(&r, target(id, NULL, kv, nkv), 0, out);
}

int keel_cli_workflow_read(const keel_config_t *cfg, const keel_cli_read_t *q)
{
        reader_t r = {.verb = q->verb, .id = q->id};
        int rc = reader_init(&r, cfg);

        if (rc)
                return rc;
        if (q->status) {
                int ok = 0;
                for (int i = 0; statuses[i]; i++)
                        ok |= !strcmp(q->status, statuses[i]);
                if (!ok) {
                        errorf(&r,
                               "--status must be running, blocked, "
                               "completed, failed, cancelled, terminated "
                               "or continued, not '%s'",
                               q->status);
                        return KEEL_EXIT_USAGE;
                }
        }
        if (!strcmp(q->verb, "list"))
                return list(&r, q);
        if (!strcmp(q->verb, "describe"))
                return describe(&r, q);
        if (!strcmp(q->verb, "history"))
                return history(&r, q);
        return result(&r, q);
}

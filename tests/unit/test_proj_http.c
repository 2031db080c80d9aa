/*
 * test_proj_http.c: the projector's HTTP layer (projector/src/http.c) on a
 * fold fed by hand, with no Kafka: 503 until ready, percent-decoded IDs,
 * time-range filters, the result long poll woken by a new event, `after`
 * waiting for the orchestrator's checkpoint, writes answering 503 when
 * no broker is there, kept-alive connections (plain reads and requests
 * that wait alike) and the connection limit. The server listens on
 * 127.0.0.1, port chosen at run time.
 */
#define _GNU_SOURCE /* strcasestr */
#include "keel/keel.h"
#include "keel_http.h"
#include "keel_test.h"
#include "proj.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static keel_config_t *cfg;
static proj_t p;
static void *server;
static int port;

static int setup(void)
{
        cfg = keel_config_new();
        /* Nothing listens there: writes cannot be delivered. */
        if (!cfg ||
            keel_config_set(cfg, "bootstrap", "127.0.0.1:1", NULL, NULL, 0) ||
            keel_config_set(cfg, "timeout.ms", "1500", NULL, NULL, 0) ||
            proj_init(&p, cfg, 4))
                return 1;
        signal(SIGPIPE, SIG_IGN);
        server = proj_http_start(&p, "127.0.0.1:0", &port);
        return server && port > 0 ? 0 : 1;
}

static int teardown(void)
{
        proj_http_stop(server);
        proj_destroy(&p);
        keel_config_destroy(cfg);
        return 0;
}

/* Apply an event of `type` for workflow id's run "r1" under the lock. */
static void feed(const char *type, const char *id, int seq, json_t *fields)
{
        char full[128];
        json_t *rec = json_pack("{ss ss si si sI}", "workflow_id", id, "run_id",
                                "r1", "seq", seq, "epoch", 1, "ts",
                                (json_int_t)1795000000000LL + seq * 1000);
        json_t *ev;
        json_object_update(rec, fields);
        json_decref(fields);
        snprintf(full, sizeof(full), "keel.history.%s", type);
        ev = json_pack("{ss so}", "type", full, "record", rec);
        pthread_mutex_lock(&p.lock);
        proj_fold_apply(&p.fold, ev);
        pthread_cond_broadcast(&p.changed);
        pthread_mutex_unlock(&p.lock);
        json_decref(ev);
}

static void start(const char *id)
{
        feed("WorkflowStarted", id, 1,
             json_pack("{ss ss}", "workflow_type", "payment", "input",
                       "{\"amount\":5}"));
}

static void test_not_ready_answers_503(void)
{
        char hv[64];
        http_res_t r = http_req(port, "GET", "/api/v1/workflows", NULL);
        CU_ASSERT_EQUAL(r.status, 503);
        CU_ASSERT_PTR_NOT_NULL(http_header(&r, "Retry-After", hv, sizeof(hv)));
        CU_ASSERT_PTR_NOT_NULL(
            json_string_value(json_object_get(r.json, "error")));
        http_res_free(&r);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows/x"), 503);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/readyz"), 503);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/healthz"), 200);
        /* A bad request is still a bad request. */
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows?limit=0"),
                        400);
        atomic_store(&p.ready, 1);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows"), 200);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/readyz"), 200);
}

static void test_ids_are_percent_decoded(void)
{
        http_res_t r;
        start("orders/42 €");
        r = http_req(port, "GET", "/api/v1/workflows/orders%2F42%20%E2%82%AC",
                     NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(r.json, "workflow_id")),
            "orders/42 €");
        http_res_free(&r);
        /* Unescaped, the '/' is a path separator: no such resource. */
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows/orders/42"),
                        404);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows/a%2"), 400);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows/%21x"),
                        400);
        r = http_req(port, "GET", "/api/v1/workflows?prefix=orders%2F4", NULL);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "workflows")),
                        1);
        http_res_free(&r);
}

static void test_time_ranges(void)
{
        http_res_t r;
        start("t-open");
        start("t-closed");
        feed("WorkflowCompleted", "t-closed", 2,
             json_pack("{ss}", "result", "1"));
        /* Started at 1795000001000 ms (2026-11-18T...); closed 1 s later. */
        r = http_req(port, "GET",
                     "/api/v1/workflows?prefix=t-&started_after=1795000000000"
                     "&started_before=2026-11-18T11:06:41.000Z",
                     NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "workflows")),
                        2);
        http_res_free(&r);
        r = http_req(port, "GET",
                     "/api/v1/workflows?prefix=t-&closed_after="
                     "2026-11-18T12:06:40%2B01:00",
                     NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "workflows")),
                        1);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(r.json, "counts"), "completed")),
                        1);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(r.json, "counts"), "running")),
                        0);
        http_res_free(&r);
        r = http_req(port, "GET",
                     "/api/v1/workflows?prefix=t-&closed_before=1795000000000",
                     NULL);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "workflows")),
                        0);
        http_res_free(&r);
        CU_ASSERT_EQUAL(
            http_status(port, "GET",
                        "/api/v1/workflows?started_after=2026-11-18T25:00:00Z"),
            400);
        CU_ASSERT_EQUAL(
            http_status(port, "GET",
                        "/api/v1/workflows?started_after=2026-11-18 10:00:00"),
            400);
}

static void *complete_later(void *arg)
{
        (void)arg;
        nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
        feed("WorkflowCompleted", "lp", 2,
             json_pack("{ss}", "result", "{\"ok\":true}"));
        return NULL;
}

static void test_result_long_poll_wakes_on_close(void)
{
        pthread_t th;
        http_res_t r;

        start("lp");
        r = http_req(port, "GET", "/api/v1/workflows/lp/result?wait=100ms",
                     NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(json_is_false(json_object_get(r.json, "closed")));
        http_res_free(&r);
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, complete_later, NULL),
                              0);
        r = http_req(port, "GET", "/api/v1/workflows/lp/result?wait=8s", NULL);
        pthread_join(th, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(json_is_true(json_object_get(r.json, "closed")));
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(r.json, "status")), "completed");
        CU_ASSERT(json_is_true(
            json_object_get(json_object_get(r.json, "result"), "ok")));
        http_res_free(&r);
}

static void test_after_waits_for_the_checkpoint(void)
{
        keel__history_reader_t *rd = p.readers;
        char hv[16];
        http_res_t r;

        pthread_mutex_lock(&p.lock);
        rd[2].checkpoint = 10;
        pthread_mutex_unlock(&p.lock);
        r = http_req(port, "GET", "/api/v1/workflows/lp?after=2:10", NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(
            http_header(&r, "X-Keel-Caught-Up", hv, sizeof(hv)));
        CU_ASSERT_STRING_EQUAL(hv, "true");
        http_res_free(&r);
        r = http_req(port, "GET", "/api/v1/workflows/lp?after=2:11&wait=200ms",
                     NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(
            http_header(&r, "X-Keel-Caught-Up", hv, sizeof(hv)));
        CU_ASSERT_STRING_EQUAL(hv, "false");
        http_res_free(&r);
        CU_ASSERT_EQUAL(
            http_status(port, "GET", "/api/v1/workflows/lp?after=4:1"), 400);
}

static void test_write_without_broker_is_503(void)
{
        char hv[16];
        http_res_t r = http_req(port, "POST", "/api/v1/workflows/lp/cancel",
                                "{\"reason\":\"x\"}");
        CU_ASSERT_EQUAL(r.status, 503);
        CU_ASSERT_PTR_NOT_NULL(http_header(&r, "Retry-After", hv, sizeof(hv)));
        CU_ASSERT_PTR_NOT_NULL(
            json_string_value(json_object_get(r.json, "error")));
        http_res_free(&r);
}

/* The IDs a listing at path answers with, space-separated (after one
 * space), or the status when it is not 200. */
static void listed(const char *path, char *out, size_t size)
{
        http_res_t r = http_req(port, "GET", path, NULL);
        const json_t *it;
        size_t i, n = 0;

        out[0] = '\0';
        if (r.status != 200)
                snprintf(out, size, "status %d", r.status);
        json_array_foreach(json_object_get(r.json, "workflows"), i, it) n +=
            (size_t)snprintf(
                out + n, size - n, " %s",
                json_string_value(json_object_get(it, "workflow_id")));
        http_res_free(&r);
}

static void upsert(const char *id, int seq, const char *details)
{
        feed("MarkerRecorded", id, seq,
             json_pack("{ss ss ss}", "marker_name", "search_attributes",
                       "marker_id", "1", "details", details));
}

static void test_search_filters_by_attributes(void)
{
        char ids[512];
        http_res_t r;

        feed("WorkflowStarted", "sa-1", 1,
             json_pack("{ss ss ss}", "workflow_type", "payment", "input", "{}",
                       "search_attributes",
                       "{\"CustomerId\":\"c-42\",\"Region\":\"eu west\"}"));
        upsert("sa-1", 2,
               "{\"Stage\":\"refunded\",\"Amount\":42,"
               "\"Vip\":true,\"Score\":1.5}");
        feed("WorkflowStarted", "sa-2", 1,
             json_pack("{ss ss ss}", "workflow_type", "payment", "input", "{}",
                       "search_attributes", "{\"CustomerId\":\"c-42\"}"));
        upsert("sa-2", 2,
               "{\"Stage\":\"charging\",\"Amount\":\"42\","
               "\"Note\":\"a=b&c\"}");
        feed("WorkflowCompleted", "sa-2", 3, json_pack("{ss}", "result", "1"));
        start("sa-3");
        upsert("sa-3", 2, "{\"CustomerId\":\"c-7\",\"Stage\":\"refunded\"}");

        listed("/api/v1/workflows?prefix=sa-&search=CustomerId=c-42", ids,
               sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, " sa-1 sa-2");
        /* Repeated: all must match. */
        listed("/api/v1/workflows?prefix=sa-&search=CustomerId=c-42"
               "&search=Stage=refunded",
               ids, sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, " sa-1");
        listed("/api/v1/workflows?search=Stage=refunded", ids, sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, " sa-1 sa-3");
        /* A value matches by its text: the number 42 and the string "42"
         * alike; booleans as true/false, reals by the number. */
        listed("/api/v1/workflows?search=Amount=42", ids, sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, " sa-1 sa-2");
        listed("/api/v1/workflows?search=Vip=true&search=Score=1.50", ids,
               sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, " sa-1");
        listed("/api/v1/workflows?search=Vip=1", ids, sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, "");
        /* Percent-decoded ('+' is a space); the first '=' ends the name. */
        listed("/api/v1/workflows?search=Region%3Deu+west", ids, sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, " sa-1");
        listed("/api/v1/workflows?search=Note=a%3Db%26c", ids, sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, " sa-2");
        /* No such attribute, or an empty value that is not there. */
        listed("/api/v1/workflows?search=Missing=x", ids, sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, "");
        listed("/api/v1/workflows?search=Stage=", ids, sizeof(ids));
        CU_ASSERT_STRING_EQUAL(ids, "");
        /* Counts go over the search filter too. */
        r = http_req(port, "GET", "/api/v1/workflows?search=CustomerId=c-42",
                     NULL);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(r.json, "counts"), "completed")),
                        1);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(r.json, "counts"), "running")),
                        1);
        /* Items show their attributes. */
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(
                json_object_get(
                    json_array_get(json_object_get(r.json, "workflows"), 0),
                    "search_attributes"),
                "Region")),
            "eu west");
        http_res_free(&r);
        r = http_req(port, "GET", "/api/v1/workflows/sa-2", NULL);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(
                json_object_get(r.json, "search_attributes"), "Amount")),
            "42");
        http_res_free(&r);
}

static void test_search_malformed_is_400(void)
{
        static const char *const bad[] = {
            "/api/v1/workflows?search=Stage",      /* no '=' */
            "/api/v1/workflows?search==refunded",  /* no name */
            "/api/v1/workflows?search=",           /* nothing */
            "/api/v1/workflows?search=1st=x",      /* digit first */
            "/api/v1/workflows?search=a-b=x",      /* a '-' */
            "/api/v1/workflows?search=Stage%3",    /* bad escape */
            "/api/v1/workflows?search=St%00age=x", /* a NUL */
            "/api/v1/"
            "workflows?search=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaa=x",             /* 65 bytes */
            "/api/v1/workflows/sa-1?search=Stage=x", /* not on a workflow */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                http_res_t r = http_req(port, "GET", bad[i], NULL);
                if (r.status != 400)
                        fprintf(stderr, "%s: %d\n", bad[i], r.status);
                CU_ASSERT_EQUAL(r.status, 400);
                CU_ASSERT_EQUAL(
                    json_integer_value(json_object_get(r.json, "status")), 400);
                CU_ASSERT_PTR_NOT_NULL(
                    json_string_value(json_object_get(r.json, "error")));
                http_res_free(&r);
        }
        /* Only search repeats. */
        CU_ASSERT_EQUAL(
            http_status(port, "GET", "/api/v1/workflows?type=a&type=b"), 400);
}

/* A start's search attributes are checked before anything is sent: 400
 * for bad ones; good ones go on to the (missing) broker. */
static void test_start_search_attributes_checked(void)
{
        static const char *const bad[] = {
            "{\"type\":\"payment\",\"search_attributes\":[1]}",
            "{\"type\":\"payment\",\"search_attributes\":{\"A\":{\"b\":1}}}",
            "{\"type\":\"payment\",\"search_attributes\":{\"A\":null}}",
            "{\"type\":\"payment\",\"search_attributes\":{\"no-dash\":1}}",
        };
        http_res_t r;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                r = http_req(port, "POST", "/api/v1/workflows", bad[i]);
                CU_ASSERT_EQUAL(r.status, 400);
                CU_ASSERT_PTR_NOT_NULL(
                    strstr(json_string_value(json_object_get(r.json, "error")),
                           "search attribute"));
                http_res_free(&r);
        }
        r = http_req(port, "POST", "/api/v1/workflows",
                     "{\"type\":\"payment\",\"search_attributes\":"
                     "{\"CustomerId\":\"c-42\"}}");
        CU_ASSERT_EQUAL(r.status, 503);
        http_res_free(&r);
}

/* ---- kept-alive connections -------------------------------------------- */

/* A connection to 127.0.0.1:port_, or -1. */
static int dial(int port_)
{
        struct sockaddr_in sa;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
                return -1;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port_);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Send all of req on fd; 0 or -1. */
static int send_all(int fd, const char *req)
{
        size_t off = 0, n = strlen(req);
        while (off < n) {
                ssize_t w = write(fd, req + off, n - off);
                if (w <= 0)
                        return -1;
                off += (size_t)w;
        }
        return 0;
}

/* A connection's bytes read but not yet taken as an answer. */
typedef struct conn_buf_s {
        char b[16384];
        size_t len;
} conn_buf_t;

/*
 * Read one answer from fd (its head and Content-Length bytes of body,
 * waiting at most ms for each read): its status; -1 if the server
 * closed first (or sent what is not HTTP), -2 if it said nothing more in
 * time. *close_hdr: it said Connection: close.
 * Bytes past the answer stay in cb for the next one.
 */
static int read_answer(int fd, conn_buf_t *cb, int ms, int *close_hdr)
{
        char *end, *cl;
        size_t head, want;
        int status;

        *close_hdr = 0;
        for (;;) {
                struct pollfd pf = {.fd = fd, .events = POLLIN};
                ssize_t n;
                cb->b[cb->len] = '\0';
                if ((end = strstr(cb->b, "\r\n\r\n"))) {
                        head = (size_t)(end - cb->b) + 4;
                        cl = strcasestr(cb->b, "\r\nContent-Length:");
                        want =
                            head +
                            (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
                        if (cb->len >= want)
                                break;
                }
                if (cb->len == sizeof(cb->b) - 1)
                        return -1;
                if (poll(&pf, 1, ms) != 1)
                        return -2;
                n = read(fd, cb->b + cb->len, sizeof(cb->b) - 1 - cb->len);
                if (n <= 0)
                        return -1;
                cb->len += (size_t)n;
        }
        if (sscanf(cb->b, "HTTP/1.1 %d", &status) != 1)
                return -1;
        *end = '\0';
        *close_hdr = strcasestr(cb->b, "\r\nConnection: close") != NULL;
        memmove(cb->b, cb->b + want, cb->len - want);
        cb->len -= want;
        return status;
}

#define GET_KEEP(path) "GET " path " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

/* Requests one after another, and two sent at once, on one connection: a
 * state read, one that waits (a job on a thread of its own while the
 * connection is suspended), then more plain reads. */
static void test_keepalive_serves_requests_on_one_connection(void)
{
        static const char *const reqs[] = {
            GET_KEEP("/healthz"),
            GET_KEEP("/api/v1/workflows/lp"),
            GET_KEEP("/api/v1/workflows/lp/result?wait=50ms"),
            GET_KEEP("/api/v1/workflows/no-such"),
            GET_KEEP("/api/v1/workflows?limit=1"),
        };
        static const int want[] = {200, 200, 200, 404, 200};
        conn_buf_t cb = {.len = 0};
        int fd = dial(port), closed;

        CU_ASSERT_FATAL(fd >= 0);
        for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
                CU_ASSERT_EQUAL_FATAL(send_all(fd, reqs[i]), 0);
                CU_ASSERT_EQUAL(read_answer(fd, &cb, 5000, &closed), want[i]);
                CU_ASSERT_FALSE(closed);
        }
        /* Pipelined: both answered, in order. */
        CU_ASSERT_EQUAL_FATAL(
            send_all(fd, GET_KEEP("/api/v1/workflows/no-such")
                             GET_KEEP("/api/v1/workflows/lp/result")),
            0);
        CU_ASSERT_EQUAL(read_answer(fd, &cb, 5000, &closed), 404);
        CU_ASSERT_EQUAL(read_answer(fd, &cb, 5000, &closed), 200);
        /* A client that asks for it still gets the connection closed. */
        CU_ASSERT_EQUAL_FATAL(
            send_all(fd, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Connection: close\r\n\r\n"),
            0);
        CU_ASSERT_EQUAL(read_answer(fd, &cb, 5000, &closed), 200);
        CU_ASSERT_TRUE(closed);
        CU_ASSERT_EQUAL(read_answer(fd, &cb, 5000, &closed), -1); /* EOF */
        close(fd);
}

/* A client that half-closes after its request (HTTP/1.0 style, no
 * Connection: close) gets its answer and then the server's close, not a
 * connection left open until the idle timeout. */
static void test_keepalive_half_close_is_closed(void)
{
        for (int i = 0; i < 20; i++) {
                conn_buf_t cb = {.len = 0};
                int fd = dial(port), closed;
                CU_ASSERT_FATAL(fd >= 0);
                CU_ASSERT_EQUAL_FATAL(send_all(fd, GET_KEEP("/healthz")), 0);
                shutdown(fd, SHUT_WR);
                CU_ASSERT_EQUAL(read_answer(fd, &cb, 5000, &closed), 200);
                /* The close: EOF well before the 30 s idle timeout. */
                CU_ASSERT_EQUAL(read_answer(fd, &cb, 2000, &closed), -1);
                CU_ASSERT_EQUAL(cb.len, 0);
                close(fd);
        }
}

/* http.max.connections holds with kept-alive connections: while 4 are
 * open a 5th is not served; once they close, a new one is. */
static void test_connection_limit_holds(void)
{
        keel_config_t *c2 = keel_config_new();
        proj_t p2;
        void *s2;
        int port2 = 0, fds[5], closed;
        conn_buf_t cb[5];

        CU_ASSERT_FATAL(c2 != NULL);
        CU_ASSERT_FATAL(
            !keel_config_set(c2, "bootstrap", "127.0.0.1:1", NULL, NULL, 0) &&
            !keel_config_set(c2, "http.max.connections", "4", NULL, NULL, 0) &&
            !keel_config_set(c2, "http.threads", "2", NULL, NULL, 0) &&
            !proj_init(&p2, c2, 1));
        atomic_store(&p2.ready, 1);
        s2 = proj_http_start(&p2, "127.0.0.1:0", &port2);
        CU_ASSERT_FATAL(s2 != NULL && port2 > 0);
        for (int i = 0; i < 4; i++) {
                cb[i].len = 0;
                fds[i] = dial(port2);
                CU_ASSERT_FATAL(fds[i] >= 0);
                CU_ASSERT_EQUAL_FATAL(send_all(fds[i], GET_KEEP("/healthz")),
                                      0);
                CU_ASSERT_EQUAL(read_answer(fds[i], &cb[i], 5000, &closed),
                                200);
        }
        /* The 5th: refused (closed) or left waiting, never answered. */
        cb[4].len = 0;
        fds[4] = dial(port2);
        if (fds[4] >= 0 && !send_all(fds[4], GET_KEEP("/healthz")))
                CU_ASSERT(read_answer(fds[4], &cb[4], 500, &closed) < 0);
        /* The first 4 are still served. */
        for (int i = 0; i < 4; i++) {
                CU_ASSERT_EQUAL_FATAL(
                    send_all(fds[i], GET_KEEP("/api/v1/workflows/x")), 0);
                CU_ASSERT_EQUAL(read_answer(fds[i], &cb[i], 5000, &closed),
                                404);
        }
        for (int i = 0; i < 5; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        CU_ASSERT_EQUAL(http_status(port2, "GET", "/healthz"), 200);
        proj_http_stop(s2);
        proj_destroy(&p2);
        keel_config_destroy(c2);
}

static CU_TestInfo tests[] = {
    {"test_not_ready_answers_503", test_not_ready_answers_503},
    {"test_ids_are_percent_decoded", test_ids_are_percent_decoded},
    {"test_time_ranges", test_time_ranges},
    {"test_result_long_poll_wakes_on_close",
     test_result_long_poll_wakes_on_close},
    {"test_after_waits_for_the_checkpoint",
     test_after_waits_for_the_checkpoint},
    {"test_write_without_broker_is_503", test_write_without_broker_is_503},
    {"test_search_filters_by_attributes", test_search_filters_by_attributes},
    {"test_search_malformed_is_400", test_search_malformed_is_400},
    {"test_start_search_attributes_checked",
     test_start_search_attributes_checked},
    {"test_keepalive_serves_requests_on_one_connection",
     test_keepalive_serves_requests_on_one_connection},
    {"test_keepalive_half_close_is_closed",
     test_keepalive_half_close_is_closed},
    {"test_connection_limit_holds", test_connection_limit_holds},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN_WITH("proj_http", tests, setup, teardown)

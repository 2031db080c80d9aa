/*
 * test_projector.c: keel-projector end to end on the real Kafka test
 * broker. keel-orchestrator (payment module), keel-payment-worker and
 * keel-projector run as real processes; the test starts payment workflows
 * (some signalled refundApproved, all with a short refund window) and
 * checks what an HTTP client of the projector sees: /readyz turning 200,
 * each workflow's state and result, listing by status in pages that cover
 * every workflow once, the 400/404/405 answers, the read position header
 * and the metrics. The HTTP client is a plain socket.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"
#include "payment.h"

#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_WORKFLOWS 20

/* ---- a tiny HTTP client ------------------------------------------------ */

typedef struct http_res_s {
        int status;   /* -1: no answer */
        char *head;   /* the status line and headers */
        char *body;   /* NUL-terminated */
        json_t *json; /* body parsed, or NULL */
} http_res_t;

static void http_res_free(http_res_t *r)
{
        free(r->head);
        free(r->body);
        json_decref(r->json);
        memset(r, 0, sizeof(*r));
}

/* The value of header `name` in r (into buf), or NULL. */
static const char *http_header(const http_res_t *r, const char *name, char *buf,
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

/* `method` `path` (with an optional body) to 127.0.0.1:port; the answer
 * read until the server closes. */
static http_res_t http_req(int port, const char *method, const char *path,
                           const char *body)
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
        reqlen = strlen(path) + (body ? strlen(body) : 0) + 256;
        req = malloc(reqlen);
        if (!req || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                free(req);
                close(fd);
                return r;
        }
        snprintf(req, reqlen,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                 "close\r\nContent-Length: %zu\r\n\r\n%s",
                 method, path, body ? strlen(body) : 0, body ? body : "");
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
                free(req);
                close(fd);
                return r;
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

static int http_status(int port, const char *method, const char *path)
{
        http_res_t r = http_req(port, method, path, NULL);
        int status = r.status;
        http_res_free(&r);
        return status;
}

/* ---- helpers ----------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static int read_port(const char *path, int64_t deadline)
{
        while (e2e_now_ms() < deadline) {
                FILE *f = fopen(path, "r");
                int port = 0;
                if (f) {
                        if (fscanf(f, "%d", &port) != 1)
                                port = 0;
                        fclose(f);
                }
                if (port > 0)
                        return port;
                e2e_sleep_ms(100);
        }
        return -1;
}

/* The end offset of every partition of keel.history; 0 or -1. */
static int end_offsets(const char *bootstrap, int64_t *ends)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[512];
        rd_kafka_t *rk;
        int rc = 0;

        if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
                              sizeof(err)) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        for (int i = 0; i < E2E_PARTITIONS && !rc; i++) {
                int64_t lo;
                if (rd_kafka_query_watermark_offsets(rk, KEEL_TOPIC_HISTORY, i,
                                                     &lo, &ends[i], 10000))
                        rc = -1;
        }
        rd_kafka_destroy(rk);
        return rc;
}

/* Partition p's offset in an X-Keel-Read-Position value, or -1. */
static int64_t position_of(const char *hv, int p)
{
        const char *s = hv;
        while (s && *s) {
                int part;
                long long off;
                if (sscanf(s, "%d:%lld", &part, &off) == 2 && part == p)
                        return off;
                s = strchr(s, ',');
                if (s)
                        s++;
        }
        return -1;
}

static json_t *input_of(int i)
{
        return json_pack("{ss si si}", "order", "proj", "amount", 100 + i,
                         "refund_window_ms", 1500);
}

/* ---- the test ---------------------------------------------------------- */

static void test_projector_serves_folded_state(void)
{
        e2e_env_t env;
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        char prefix[64], port_file[600], bin[600], err[1024], path[2048];
        char hv[1024];
        const char *argv[12];
        pid_t orch, worker, proj;
        int port, n_closed = 0, wrong = 0, seen[N_WORKFLOWS] = {0};
        int64_t deadline;
        http_res_t r;

        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&env, "projector"), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&env), KEEL_OK);
        snprintf(prefix, sizeof(prefix), "proj-%d-", (int)getpid());
        snprintf(port_file, sizeof(port_file), "%s/projector.port",
                 env.workdir);
        snprintf(bin, sizeof(bin), "%s/keel-projector",
                 keel_test_env("KEEL_TEST_BIN_DIR"));
        keel_config_set(cfg, "bootstrap", env.bootstrap, NULL, NULL, 0);

        orch = e2e_start_orchestrator(&env, "orchestrator.log", NULL, NULL);
        {
                char effects[600];
                snprintf(effects, sizeof(effects), "%s/effects.log",
                         env.workdir);
                worker = e2e_start_worker(&env, "worker.log", effects, NULL);
        }
        argv[0] = bin;
        argv[1] = "--bootstrap";
        argv[2] = env.bootstrap;
        argv[3] = "-X";
        argv[4] = "http.listen=127.0.0.1:0";
        argv[5] = "--port-file";
        argv[6] = port_file;
        argv[7] = "--log-level";
        argv[8] = "info";
        argv[9] = NULL;
        proj = e2e_spawn(&env, "projector.log", (char *const *)argv);
        CU_ASSERT_FATAL(orch > 0 && worker > 0 && proj > 0);

        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        for (int i = 0; i < N_WORKFLOWS; i++) {
                char id[128];
                json_t *in = input_of(i);
                int rc;
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                rc = e2e_start_payment(client, id, in, i % 4 == 0, err,
                                       sizeof(err));
                json_decref(in);
                if (rc)
                        fprintf(stderr, "%s: %s\n", id, err);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        }

        /* Ready once caught up with what was there at start. */
        port = read_port(port_file, e2e_now_ms() + 30000);
        CU_ASSERT_FATAL(port > 0);
        deadline = e2e_now_ms() + 60000;
        while (http_status(port, "GET", "/readyz") != 200 &&
               e2e_now_ms() < deadline)
                e2e_sleep_ms(100);
        CU_ASSERT_EQUAL_FATAL(http_status(port, "GET", "/readyz"), 200);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/healthz"), 200);

        /* Every workflow closes; its state is the payment's outcome. */
        deadline = e2e_now_ms() + 120000;
        while (n_closed < N_WORKFLOWS && e2e_now_ms() < deadline) {
                n_closed = 0;
                for (int i = 0; i < N_WORKFLOWS; i++) {
                        snprintf(path, sizeof(path), "/api/v1/workflows/%s%d",
                                 prefix, i);
                        r = http_req(port, "GET", path, NULL);
                        if (r.status == 200 && r.json &&
                            jstr(r.json, "close_time"))
                                n_closed++;
                        http_res_free(&r);
                }
                if (n_closed < N_WORKFLOWS)
                        e2e_sleep_ms(500);
        }
        fprintf(stderr, "%d/%d closed\n", n_closed, N_WORKFLOWS);
        CU_ASSERT_EQUAL_FATAL(n_closed, N_WORKFLOWS);
        for (int i = 0; i < N_WORKFLOWS; i++) {
                const char *want = i % 4 == 0 ? "refunded" : "completed";
                const json_t *res, *sig, *in;
                char id[128];
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                snprintf(path, sizeof(path), "/api/v1/workflows/%s", id);
                r = http_req(port, "GET", path, NULL);
                CU_ASSERT_EQUAL(r.status, 200);
                CU_ASSERT_PTR_NOT_NULL_FATAL(r.json);
                res = json_object_get(r.json, "result");
                sig = json_object_get(r.json, "signals");
                in = json_object_get(r.json, "input");
                if (!jstr(r.json, "status") ||
                    strcmp(jstr(r.json, "status"), "completed") ||
                    !jstr(res, "status") || strcmp(jstr(res, "status"), want) ||
                    !jstr(r.json, "workflow_id") ||
                    strcmp(jstr(r.json, "workflow_id"), id) ||
                    !jstr(r.json, "type") ||
                    strcmp(jstr(r.json, "type"), PAYMENT_WORKFLOW) ||
                    !jstr(r.json, "run_id") || !jstr(r.json, "start_time") ||
                    json_integer_value(
                        json_object_get(r.json, "history_length")) < 5 ||
                    json_integer_value(json_object_get(in, "amount")) !=
                        100 + i ||
                    json_array_size(
                        json_object_get(r.json, "pending_activities")) ||
                    json_array_size(
                        json_object_get(r.json, "pending_timers")) ||
                    !json_is_null(json_object_get(r.json, "failure")) ||
                    json_integer_value(json_object_get(sig, "count")) !=
                        (i % 4 == 0)) {
                        if (wrong++ < 5)
                                fprintf(stderr, "%s: %s\n", id, r.body);
                }
                if (i % 4 == 0)
                        CU_ASSERT_STRING_EQUAL(
                            json_string_value(json_array_get(
                                json_object_get(sig, "last"), 0)),
                            "refundApproved");
                CU_ASSERT_PTR_NOT_NULL(
                    http_header(&r, "X-Keel-Read-Position", hv, sizeof(hv)));
                http_res_free(&r);
        }
        CU_ASSERT_EQUAL(wrong, 0);

        /* Listing completed workflows in pages of 5 covers each once, in
         * ID order. */
        {
                char cursor[1100] = "", last[1100] = "";
                int pages = 0, repeats = 0, unordered = 0;
                for (;;) {
                        const json_t *items, *next, *item;
                        size_t k;
                        snprintf(
                            path, sizeof(path),
                            "/api/v1/workflows?status=completed&limit=5%s%s",
                            *cursor ? "&cursor=" : "", cursor);
                        r = http_req(port, "GET", path, NULL);
                        CU_ASSERT_EQUAL_FATAL(r.status, 200);
                        CU_ASSERT_PTR_NOT_NULL_FATAL(r.json);
                        items = json_object_get(r.json, "workflows");
                        next = json_object_get(r.json, "next_cursor");
                        CU_ASSERT(json_array_size(items) <= 5);
                        CU_ASSERT(json_integer_value(json_object_get(
                                      json_object_get(r.json, "counts"),
                                      "completed")) >= N_WORKFLOWS);
                        json_array_foreach(items, k, item)
                        {
                                const char *id = jstr(item, "workflow_id");
                                size_t pl = strlen(prefix);
                                CU_ASSERT_STRING_EQUAL(jstr(item, "status"),
                                                       "completed");
                                if (!id)
                                        continue;
                                if (*last && strcmp(last, id) >= 0)
                                        unordered++;
                                snprintf(last, sizeof(last), "%s", id);
                                if (!strncmp(id, prefix, pl)) {
                                        int i = atoi(id + pl);
                                        if (i >= 0 && i < N_WORKFLOWS &&
                                            seen[i]++)
                                                repeats++;
                                }
                        }
                        pages++;
                        if (!json_is_string(next)) {
                                http_res_free(&r);
                                break;
                        }
                        CU_ASSERT_EQUAL(json_array_size(items), 5);
                        snprintf(cursor, sizeof(cursor), "%s",
                                 json_string_value(next));
                        http_res_free(&r);
                        if (pages > 100000)
                                break;
                }
                fprintf(stderr, "listed in %d pages\n", pages);
                CU_ASSERT_EQUAL(repeats, 0);
                CU_ASSERT_EQUAL(unordered, 0);
                for (int i = 0; i < N_WORKFLOWS; i++)
                        CU_ASSERT_EQUAL(seen[i], 1);
        }
        /* The same with the prefix filter: exactly this test's workflows. */
        snprintf(path, sizeof(path), "/api/v1/workflows?prefix=%s&limit=1000",
                 prefix);
        r = http_req(port, "GET", path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "workflows")),
                        N_WORKFLOWS);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(r.json, "counts"), "completed")),
                        N_WORKFLOWS);
        CU_ASSERT(json_is_null(json_object_get(r.json, "next_cursor")));
        http_res_free(&r);

        /* Errors: JSON bodies with the status, and the header on each. */
        snprintf(path, sizeof(path), "/api/v1/workflows/%snope", prefix);
        r = http_req(port, "GET", path, NULL);
        CU_ASSERT_EQUAL(r.status, 404);
        CU_ASSERT_PTR_NOT_NULL(jstr(r.json, "error"));
        CU_ASSERT_PTR_NOT_NULL(
            http_header(&r, "X-Keel-Read-Position", hv, sizeof(hv)));
        http_res_free(&r);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows/"), 400);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows/!claim"),
                        400);
        {
                char *longp = malloc(1200);
                CU_ASSERT_PTR_NOT_NULL_FATAL(longp);
                strcpy(longp, "/api/v1/workflows/");
                memset(longp + strlen(longp), 'x', 1001);
                longp[strlen("/api/v1/workflows/") + 1001] = '\0';
                CU_ASSERT_EQUAL(http_status(port, "GET", longp), 400);
                free(longp);
        }
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows?limit=0"),
                        400);
        CU_ASSERT_EQUAL(
            http_status(port, "GET", "/api/v1/workflows?limit=1001"), 400);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows?limit=5x"),
                        400);
        CU_ASSERT_EQUAL(
            http_status(port, "GET", "/api/v1/workflows?status=sleepy"), 400);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/api/v1/workflows?sort=id"),
                        400);
        r = http_req(port, "POST", "/api/v1/workflows", "{\"id\":\"x\"}");
        CU_ASSERT_EQUAL(r.status, 405);
        CU_ASSERT_PTR_NOT_NULL(jstr(r.json, "error"));
        http_res_free(&r);
        snprintf(path, sizeof(path), "/api/v1/workflows/%s0", prefix);
        CU_ASSERT_EQUAL(http_status(port, "DELETE", path), 405);
        CU_ASSERT_EQUAL(http_status(port, "PUT", "/metrics"), 405);
        r = http_req(port, "GET", "/no/such/thing", NULL);
        CU_ASSERT_EQUAL(r.status, 404);
        CU_ASSERT_PTR_NOT_NULL(jstr(r.json, "error"));
        http_res_free(&r);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/"), 404);

        /* Metrics count what was read and answered. */
        r = http_req(port, "GET", "/metrics", NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r.body);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "keel_projector_records_total "));
        CU_ASSERT_PTR_NULL(strstr(r.body, "keel_projector_records_total 0\n"));
        CU_ASSERT_PTR_NULL(strstr(r.body, "keel_projector_events_total 0\n"));
        CU_ASSERT_PTR_NOT_NULL(
            strstr(r.body, "keel_projector_undecodable_records_total "));
        CU_ASSERT_PTR_NOT_NULL(
            strstr(r.body, "keel_projector_workflows{status=\"completed\"} "));
        CU_ASSERT_PTR_NULL(strstr(
            r.body, "keel_projector_http_requests_total{code=\"400\"} 0\n"));
        CU_ASSERT_PTR_NULL(strstr(
            r.body, "keel_projector_http_requests_total{code=\"405\"} 0\n"));
        CU_ASSERT_PTR_NULL(strstr(
            r.body, "keel_projector_http_requests_total{code=\"404\"} 0\n"));
        http_res_free(&r);

        /* A projector started now is ready only once it has read all of
         * that: its first 200 from /readyz comes with a read position at
         * the end offsets of before it started, every workflow is there,
         * closed, and it says so in its log. */
        {
                char pf2[700], log2[700];
                int64_t ends[E2E_PARTITIONS];
                pid_t proj2;
                int port2, behind = 0, ready_wfs = -1;
                CU_ASSERT_EQUAL_FATAL(end_offsets(env.bootstrap, ends), 0);
                snprintf(pf2, sizeof(pf2), "%s/projector2.port", env.workdir);
                snprintf(log2, sizeof(log2), "%s/projector2.log", env.workdir);
                argv[6] = pf2;
                proj2 = e2e_spawn(&env, "projector2.log", (char *const *)argv);
                CU_ASSERT_FATAL(proj2 > 0);
                port2 = read_port(pf2, e2e_now_ms() + 30000);
                CU_ASSERT_FATAL(port2 > 0);
                deadline = e2e_now_ms() + 60000;
                for (;;) {
                        r = http_req(port2, "GET", "/readyz", NULL);
                        if (r.status == 200 || e2e_now_ms() >= deadline)
                                break;
                        http_res_free(&r);
                        e2e_sleep_ms(20);
                }
                CU_ASSERT_EQUAL(r.status, 200);
                CU_ASSERT_PTR_NOT_NULL_FATAL(
                    http_header(&r, "X-Keel-Read-Position", hv, sizeof(hv)));
                for (int i = 0; i < E2E_PARTITIONS; i++)
                        if (ends[i] > 0 && position_of(hv, i) < ends[i])
                                behind++;
                CU_ASSERT_EQUAL(behind, 0);
                http_res_free(&r);
                snprintf(path, sizeof(path),
                         "/api/v1/workflows?prefix=%s&status=completed",
                         prefix);
                r = http_req(port2, "GET", path, NULL);
                CU_ASSERT_EQUAL(r.status, 200);
                CU_ASSERT_EQUAL(
                    json_array_size(json_object_get(r.json, "workflows")),
                    N_WORKFLOWS);
                http_res_free(&r);
                CU_ASSERT_EQUAL(e2e_stop(proj2, SIGTERM), 0);
                {
                        FILE *f = fopen(log2, "r");
                        char line[2048];
                        while (f && fgets(line, sizeof(line), f)) {
                                const char *m =
                                    strstr(line, "msg=ready workflows=");
                                if (m)
                                        ready_wfs = atoi(
                                            m + strlen("msg=ready workflows="));
                        }
                        if (f)
                                fclose(f);
                }
                CU_ASSERT(ready_wfs >= N_WORKFLOWS);
        }

        /* A clean stop. */
        {
                int st = e2e_stop(proj, SIGTERM);
                CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        e2e_stop(orch, SIGTERM);
        e2e_stop(worker, SIGTERM);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {
    {"test_projector_serves_folded_state", test_projector_serves_folded_state},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("projector", tests)

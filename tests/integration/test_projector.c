/*
 * test_projector.c: keel-projector end to end on the real Kafka test
 * broker. keel-orchestrator (payment module), keel-payment-worker and
 * keel-projector run as real processes; the test starts payment workflows
 * (some signalled refundApproved, all with a short refund window) and
 * checks what an HTTP client of the projector sees: /readyz turning 200,
 * each workflow's state and result, listing by status in pages that cover
 * every workflow once, listing by search attributes, the 400/404/405
 * answers, the read position header and the metrics. The HTTP client is a
 * plain socket.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_http.h"
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
#include <time.h>
#include <unistd.h>

#define N_WORKFLOWS 20

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

/* Payment i's input; its customer (c-0, c-1, c-2 in turn) indexes it. */
static json_t *input_of(int i)
{
        char customer[16];
        snprintf(customer, sizeof(customer), "c-%d", i % 3);
        return json_pack("{ss si si ss}", "order", "proj", "amount", 100 + i,
                         "refund_window_ms", 1500, "customer", customer);
}

/* ---- the test ---------------------------------------------------------- */

/* What the tests share, in order: the processes and the first
 * projector's port; the second replica, started by the first test. */
static e2e_env_t env;
static keel_config_t *cfg;
static keel_client_t *client;
static char prefix[64], port_file[600], bin[600];
static const char *argv[16];
static pid_t orch, worker, proj, proj2;
static int port, port2;

static void test_projector_serves_folded_state(void)
{
        char err[1024], path[2048], hv[1024];
        int n_closed = 0, wrong = 0, seen[N_WORKFLOWS] = {0};
        int64_t deadline;
        http_res_t r;

        cfg = keel_config_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
        signal(SIGPIPE, SIG_IGN); /* a server may close before a body is sent */

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
        r = http_req(port, "DELETE", "/api/v1/workflows", NULL);
        CU_ASSERT_EQUAL(r.status, 405);
        CU_ASSERT_PTR_NOT_NULL(jstr(r.json, "error"));
        CU_ASSERT_PTR_NOT_NULL(http_header(&r, "Allow", hv, sizeof(hv)));
        CU_ASSERT_STRING_EQUAL(hv, "GET, HEAD, POST");
        http_res_free(&r);
        snprintf(path, sizeof(path), "/api/v1/workflows/%s0", prefix);
        CU_ASSERT_EQUAL(http_status(port, "DELETE", path), 405);
        CU_ASSERT_EQUAL(http_status(port, "PUT", "/metrics"), 405);
        r = http_req(port, "GET", "/no/such/thing", NULL);
        CU_ASSERT_EQUAL(r.status, 404);
        CU_ASSERT_PTR_NOT_NULL(jstr(r.json, "error"));
        http_res_free(&r);
        /* The dashboard: a page and its script, from the binary. */
        r = http_req(port, "GET", "/", NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(http_header(&r, "Content-Type", hv, sizeof(hv)));
        CU_ASSERT_PTR_NOT_NULL(strstr(hv, "text/html"));
        CU_ASSERT_PTR_NOT_NULL(r.body && strstr(r.body, "<html"));
        http_res_free(&r);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/ui/app.js"), 200);
        CU_ASSERT_EQUAL(http_status(port, "GET", "/ui/nope.js"), 404);

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
                int behind = 0, ready_wfs = -1;
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
}

/* ---- writes, long polls, history --------------------------------------- */

/* Start a projector with the extra arguments (NULL-terminated) writing
 * its port to <workdir>/<name>.port and logging to <name>.log; its port,
 * or -1. */
static int projector_start(const char *name, const char *const *extra,
                           pid_t *pid)
{
        static char pf[8][700];
        static int n_pf;
        const char *av[32];
        char logname[128];
        int i = 0, k = n_pf++ % 8;

        snprintf(pf[k], sizeof(pf[k]), "%s/%s.port", env.workdir, name);
        snprintf(logname, sizeof(logname), "%s.log", name);
        unlink(pf[k]);
        av[i++] = bin;
        av[i++] = "--bootstrap";
        av[i++] = env.bootstrap;
        av[i++] = "-X";
        av[i++] = "http.listen=127.0.0.1:0";
        av[i++] = "--port-file";
        av[i++] = pf[k];
        while (extra && *extra && i < 30)
                av[i++] = *extra++;
        av[i] = NULL;
        *pid = e2e_spawn(&env, logname, (char *const *)av);
        if (*pid <= 0)
                return -1;
        return read_port(pf[k], e2e_now_ms() + 30000);
}

/* Poll /readyz on port until 200 (or 60 s). */
static int wait_ready(int p)
{
        int64_t deadline = e2e_now_ms() + 60000;
        while (http_status(p, "GET", "/readyz") != 200 &&
               e2e_now_ms() < deadline)
                e2e_sleep_ms(50);
        return http_status(p, "GET", "/readyz") == 200 ? 0 : -1;
}

/* POST body to path; asserts 202 with a position, which goes to pos. */
static void post_ok(const char *path, const char *body, char *pos, size_t size)
{
        char hv[256];
        http_res_t r = http_req(port, "POST", path, body);
        CU_ASSERT_EQUAL(r.status, 202);
        if (r.status != 202)
                fprintf(stderr, "POST %s: %d %s\n", path, r.status,
                        r.body ? r.body : "");
        CU_ASSERT_PTR_NOT_NULL(jstr(r.json, "command_id"));
        CU_ASSERT_PTR_NOT_NULL(
            http_header(&r, "X-Keel-Inbox-Position", hv, sizeof(hv)));
        snprintf(pos, size, "%s",
                 jstr(r.json, "position") ? jstr(r.json, "position") : "");
        CU_ASSERT_STRING_EQUAL(pos, hv);
        http_res_free(&r);
}

static void test_projector_writes_and_long_polls(void)
{
        char id[128], path[2048], body[1024], pos[64], hv[256];
        const json_t *ev;
        json_t *all;
        http_res_t r;
        int64_t next = 1, t0;
        size_t k;

        CU_ASSERT_FATAL(port > 0);
        /* Start over HTTP; with `after`, the read that follows sees it. */
        snprintf(id, sizeof(id), "%shttp/1", prefix);
        snprintf(body, sizeof(body),
                 "{\"workflow_id\":\"%s\",\"type\":\"payment\",\"input\":"
                 "{\"order\":\"h1\",\"amount\":4200,\"refund_window_ms\":"
                 "600000}}",
                 id);
        post_ok("/api/v1/workflows", body, pos, sizeof(pos));
        snprintf(path, sizeof(path), "/api/v1/workflows/%shttp%%2F1?after=%s",
                 prefix, pos);
        r = http_req(port, "GET", path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NOT_NULL(
            http_header(&r, "X-Keel-Caught-Up", hv, sizeof(hv)));
        CU_ASSERT_STRING_EQUAL(hv, "true");
        CU_ASSERT_STRING_EQUAL(jstr(r.json, "workflow_id"), id);
        CU_ASSERT_STRING_EQUAL(jstr(r.json, "status"), "running");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(r.json, "input"), "amount")),
                        4200);
        http_res_free(&r);

        /* It publishes its stage; wait until it waits for the refund. */
        t0 = e2e_now_ms();
        for (;;) {
                const char *stage;
                snprintf(path, sizeof(path), "/api/v1/workflows/%shttp%%2F1",
                         prefix);
                r = http_req(port, "GET", path, NULL);
                stage = jstr(json_object_get(r.json, "state"), "stage");
                if ((stage && !strcmp(stage, "refund_window")) ||
                    e2e_now_ms() - t0 > 60000)
                        break;
                http_res_free(&r);
                e2e_sleep_ms(100);
        }
        CU_ASSERT_STRING_EQUAL(jstr(json_object_get(r.json, "state"), "stage"),
                               "refund_window");
        CU_ASSERT(
            json_integer_value(json_object_get(json_object_get(r.json, "state"),
                                               "refund_window_ends_ms")) > 0);
        http_res_free(&r);

        /* A long poll that ends before the run closes says so. */
        snprintf(path, sizeof(path),
                 "/api/v1/workflows/%shttp%%2F1/result?wait=300ms", prefix);
        r = http_req(port, "GET", path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(json_is_false(json_object_get(r.json, "closed")));
        CU_ASSERT_STRING_EQUAL(jstr(r.json, "status"), "running");
        http_res_free(&r);

        /* A signal over HTTP closes it; the long poll sees the result. */
        snprintf(path, sizeof(path),
                 "/api/v1/workflows/%shttp%%2F1/signals/refundApproved",
                 prefix);
        post_ok(path, "{\"by\":\"http\"}", pos, sizeof(pos));
        snprintf(path, sizeof(path),
                 "/api/v1/workflows/%shttp%%2F1/result?wait=60s&after=%s",
                 prefix, pos);
        r = http_req(port, "GET", path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(json_is_true(json_object_get(r.json, "closed")));
        CU_ASSERT_STRING_EQUAL(jstr(r.json, "status"), "completed");
        CU_ASSERT_STRING_EQUAL(
            jstr(json_object_get(r.json, "result"), "status"), "refunded");
        http_res_free(&r);

        /* Its history, in pages of 4: seq 1..n without gaps, from
         * WorkflowStarted to WorkflowCompleted, with the signal and the
         * published state on the way. */
        all = json_array();
        for (int pages = 0; next > 0 && pages < 100; pages++) {
                const json_t *nc;
                int n = snprintf(path, sizeof(path),
                                 "/api/v1/workflows/%shttp%%2F1/history?"
                                 "limit=4",
                                 prefix);
                if (next > 1)
                        snprintf(path + n, sizeof(path) - (size_t)n,
                                 "&cursor=%lld", (long long)next);
                r = http_req(port, "GET", path, NULL);
                CU_ASSERT_EQUAL_FATAL(r.status, 200);
                CU_ASSERT(json_array_size(json_object_get(r.json, "events")) <=
                          4);
                json_array_extend(all, json_object_get(r.json, "events"));
                nc = json_object_get(r.json, "next_cursor");
                next = json_is_string(nc) ? atoll(json_string_value(nc)) : 0;
                http_res_free(&r);
        }
        CU_ASSERT(json_array_size(all) >= 10);
        {
                int gaps = 0, signal = 0, state = 0;
                json_array_foreach(all, k, ev)
                {
                        const char *t = jstr(ev, "type");
                        if (json_integer_value(json_object_get(ev, "seq")) !=
                            (json_int_t)k + 1)
                                gaps++;
                        if (!strcmp(t, "keel.history.SignalReceived"))
                                signal++;
                        if (!strcmp(t, "keel.history.MarkerRecorded"))
                                state++;
                        CU_ASSERT_STRING_EQUAL(
                            jstr(json_object_get(ev, "record"), "workflow_id"),
                            id);
                }
                CU_ASSERT_EQUAL(gaps, 0);
                CU_ASSERT_EQUAL(signal, 1);
                CU_ASSERT(state >= 3);
                CU_ASSERT_STRING_EQUAL(jstr(json_array_get(all, 0), "type"),
                                       "keel.history.WorkflowStarted");
                CU_ASSERT_STRING_EQUAL(
                    jstr(json_array_get(all, json_array_size(all) - 1), "type"),
                    "keel.history.WorkflowCompleted");
        }
        json_decref(all);

        /* Cancel and terminate over HTTP. */
        for (int i = 0; i < 2; i++) {
                const char *verb = i ? "terminate" : "cancel";
                snprintf(id, sizeof(id), "%shttp-%s", prefix, verb);
                snprintf(body, sizeof(body),
                         "{\"workflow_id\":\"%s\",\"type\":\"payment\","
                         "\"input\":{\"order\":\"c\",\"amount\":1,"
                         "\"refund_window_ms\":600000}}",
                         id);
                post_ok("/api/v1/workflows", body, pos, sizeof(pos));
                snprintf(path, sizeof(path), "/api/v1/workflows/%s?after=%s",
                         id, pos);
                CU_ASSERT_EQUAL(http_status(port, "GET", path), 200);
                snprintf(path, sizeof(path), "/api/v1/workflows/%s/%s", id,
                         verb);
                post_ok(path, "{\"reason\":\"test\"}", pos, sizeof(pos));
                snprintf(path, sizeof(path),
                         "/api/v1/workflows/%s/result?wait=60s", id);
                r = http_req(port, "GET", path, NULL);
                CU_ASSERT_EQUAL(r.status, 200);
                CU_ASSERT_STRING_EQUAL(jstr(r.json, "status"),
                                       i ? "terminated" : "cancelled");
                http_res_free(&r);
        }

        /* Starting without an ID makes one. */
        r = http_req(port, "POST", "/api/v1/workflows",
                     "{\"type\":\"payment\",\"input\":{\"order\":\"n\","
                     "\"amount\":1,\"refund_window_ms\":100}}");
        CU_ASSERT_EQUAL(r.status, 202);
        CU_ASSERT_EQUAL(strlen(jstr(r.json, "workflow_id")
                                   ? jstr(r.json, "workflow_id")
                                   : ""),
                        36);
        http_res_free(&r);

        /* Time ranges: nothing started in the future; everything of this
         * test started before it. */
        snprintf(path, sizeof(path),
                 "/api/v1/workflows?prefix=%s&started_after=2100-01-01T00:00:"
                 "00Z",
                 prefix);
        r = http_req(port, "GET", path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "workflows")),
                        0);
        http_res_free(&r);
        snprintf(path, sizeof(path),
                 "/api/v1/workflows?prefix=%s&started_before=%lld&closed_"
                 "after=2000-01-01T00:00:00.000%%2B01:00&limit=1000",
                 prefix, (long long)time(NULL) * 1000 + 1000);
        r = http_req(port, "GET", path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        /* Closed ones only: the first test's and the three above. */
        CU_ASSERT(json_array_size(json_object_get(r.json, "workflows")) >=
                  N_WORKFLOWS + 3);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(r.json, "counts"), "running")),
                        0);
        http_res_free(&r);
}

/* Every error a client can get, as JSON with its status. */
static void test_projector_errors(void)
{
        static const struct {
                const char *method, *path, *body;
                int status;
        } cases[] = {
            {"POST", "/api/v1/workflows", "{\"type\":", 400},
            {"POST", "/api/v1/workflows", "[1,2]", 400},
            {"POST", "/api/v1/workflows", "", 400},
            {"POST", "/api/v1/workflows", "{\"input\":{}}", 400},
            {"POST", "/api/v1/workflows", "{\"type\":\"payment\",\"typo\":1}",
             400},
            {"POST", "/api/v1/workflows", "{\"type\":7}", 400},
            {"POST", "/api/v1/workflows",
             "{\"type\":\"payment\",\"workflow_id\":\"!x\"}", 400},
            {"POST", "/api/v1/workflows",
             "{\"type\":\"payment\",\"id_reuse_policy\":\"SOMETIMES\"}", 400},
            {"POST", "/api/v1/workflows",
             "{\"type\":\"payment\",\"run_timeout_ms\":-1}", 400},
            {"POST", "/api/v1/workflows", "{\"type\":\"payment\",\"signal\":1}",
             400},
            {"POST", "/api/v1/workflows/x/signals/s", "{bad", 400},
            {"POST", "/api/v1/workflows/x/signals/", "{}", 404},
            {"POST", "/api/v1/workflows/x/cancel", "{\"reason\":5}", 400},
            {"POST", "/api/v1/workflows/x/cancel?force=1", "{}", 400},
            {"POST", "/api/v1/workflows/x/terminate", "{\"why\":\"\"}", 400},
            {"POST", "/api/v1/workflows/%zz/cancel", "{}", 400},
            {"POST", "/api/v1/workflows/x%00y/cancel", "{}", 400},
            {"POST", "/api/v1/workflows/x%0Ay/cancel", "{}", 400},
            {"GET", "/api/v1/workflows/a%09b", NULL, 400},
            {"POST", "/api/v1/workflows",
             "{\"type\":\"payment\",\"workflow_id\":\"a\\u0007b\"}", 400},
            {"GET", "/api/v1/workflows/x/cancel", NULL, 405},
            {"POST", "/api/v1/workflows/x/history", "{}", 405},
            {"POST", "/api/v1/workflows/x", "{}", 405},
            {"PUT", "/api/v1/workflows/x/signals/s", "{}", 405},
            {"GET", "/api/v1/workflows/nope-nope/history", NULL, 404},
            {"GET", "/api/v1/workflows/nope-nope/result", NULL, 404},
            {"GET", "/api/v1/workflows/x/nothing", NULL, 404},
            {"GET", "/api/v1/workflows/x/history?cursor=0", NULL, 400},
            {"GET", "/api/v1/workflows/x/history?limit=5000", NULL, 400},
            {"GET", "/api/v1/workflows/x/result?wait=forever", NULL, 400},
            {"GET", "/api/v1/workflows/x/result?wait=10m", NULL, 400},
            {"GET", "/api/v1/workflows/x?after=99:1", NULL, 400},
            {"GET", "/api/v1/workflows/x?after=1:", NULL, 400},
            {"GET", "/api/v1/workflows?started_after=yesterday", NULL, 400},
            {"GET", "/api/v1/workflows?closed_before=2026-13-01T00:00:00Z",
             NULL, 400},
            {"GET", "/api/v1/workflows?limit=1&limit=2", NULL, 400},
            {"GET", "/api/v1/workflows?search=Stage", NULL, 400},
        };
        char hv[256];
        http_res_t r;

        CU_ASSERT_FATAL(port > 0);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                r = http_req(port, cases[i].method, cases[i].path,
                             cases[i].body);
                if (r.status != cases[i].status)
                        fprintf(stderr, "%s %s %s: %d %s\n", cases[i].method,
                                cases[i].path,
                                cases[i].body ? cases[i].body : "", r.status,
                                r.body ? r.body : "");
                CU_ASSERT_EQUAL(r.status, cases[i].status);
                CU_ASSERT_EQUAL(
                    json_integer_value(json_object_get(r.json, "status")),
                    cases[i].status);
                CU_ASSERT_PTR_NOT_NULL(jstr(r.json, "error"));
                if (cases[i].status == 405)
                        CU_ASSERT_PTR_NOT_NULL(
                            http_header(&r, "Allow", hv, sizeof(hv)));
                http_res_free(&r);
        }

        /* A body over the limit (1 MiB by default): 413, unread. */
        {
                size_t n = 1100 * 1024;
                char *big = malloc(n + 1);
                CU_ASSERT_PTR_NOT_NULL_FATAL(big);
                memset(big, ' ', n);
                big[0] = '"';
                big[n - 1] = '"';
                big[n] = '\0';
                r = http_req(port, "POST", "/api/v1/workflows/x/signals/s",
                             big);
                CU_ASSERT_EQUAL(r.status, 413);
                CU_ASSERT_PTR_NOT_NULL(jstr(r.json, "error"));
                http_res_free(&r);
                free(big);
        }
        /* Still serving. */
        CU_ASSERT_EQUAL(http_status(port, "GET", "/healthz"), 200);
        r = http_req(port, "GET", "/metrics", NULL);
        CU_ASSERT_PTR_NOT_NULL(r.body);
        CU_ASSERT_PTR_NULL(strstr(
            r.body, "keel_projector_http_requests_total{code=\"413\"} 0\n"));
        CU_ASSERT_PTR_NULL(strstr(
            r.body, "keel_projector_http_requests_total{code=\"202\"} 0\n"));
        CU_ASSERT_PTR_NULL(strstr(r.body, "keel_projector_commands_total 0\n"));
        http_res_free(&r);
}

/* A bearer token guards writes, and reads when asked to. */
static void test_projector_bearer_token(void)
{
        static const char *const extra[] = {"-X", "http.token=s3cret-token",
                                            "-X", "http.auth.reads=true", NULL};
        const char *good = "Authorization: Bearer s3cret-token\r\n";
        const char *bad = "Authorization: Bearer s3cret-tokem\r\n";
        char hv[256], body[512];
        pid_t pid;
        http_res_t r;
        int p = projector_start("projector-token", extra, &pid);

        CU_ASSERT_FATAL(p > 0);
        CU_ASSERT_EQUAL_FATAL(wait_ready(p), 0);
        CU_ASSERT_EQUAL(http_status(p, "GET", "/healthz"), 200);
        CU_ASSERT_EQUAL(http_status(p, "GET", "/"), 200);
        snprintf(body, sizeof(body),
                 "{\"workflow_id\":\"%stoken\",\"type\":\"payment\","
                 "\"input\":{\"order\":\"t\",\"amount\":1,"
                 "\"refund_window_ms\":100}}",
                 prefix);
        r = http_req(p, "POST", "/api/v1/workflows", body);
        CU_ASSERT_EQUAL(r.status, 401);
        CU_ASSERT_PTR_NOT_NULL(
            http_header(&r, "WWW-Authenticate", hv, sizeof(hv)));
        http_res_free(&r);
        r = http_req_h(p, "POST", "/api/v1/workflows", bad, body);
        CU_ASSERT_EQUAL(r.status, 401);
        http_res_free(&r);
        r = http_req_h(p, "POST", "/api/v1/workflows", good, body);
        CU_ASSERT_EQUAL(r.status, 202);
        http_res_free(&r);
        CU_ASSERT_EQUAL(http_status(p, "GET", "/api/v1/workflows"), 401);
        CU_ASSERT_EQUAL(http_status(p, "GET", "/metrics"), 401);
        r = http_req_h(p, "GET", "/api/v1/workflows?limit=1", good, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        http_res_free(&r);
        /* Without the token setting, nothing needs one (the first
         * projector answered every write above). */
        CU_ASSERT_EQUAL(e2e_stop(pid, SIGTERM), 0);
}

/* ---- replicas ------------------------------------------------------------ */

/* The list of this test's workflows and each one's state and history,
 * as one JSON text, from the projector on port p; NULL if unavailable. */
static char *snapshot(int p)
{
        char path[2048];
        json_t *out = json_object(), *items;
        http_res_t r;
        const json_t *it;
        size_t k;
        char *text;

        snprintf(path, sizeof(path), "/api/v1/workflows?prefix=%s&limit=1000",
                 prefix);
        r = http_req(p, "GET", path, NULL);
        if (r.status != 200) {
                http_res_free(&r);
                json_decref(out);
                return NULL;
        }
        items = json_incref(json_object_get(r.json, "workflows"));
        json_object_set(out, "list", r.json);
        http_res_free(&r);
        json_array_foreach(items, k, it)
        {
                const char *id = jstr(it, "workflow_id");
                char *enc = malloc(strlen(id) * 3 + 1), *e = enc;
                for (const char *c = id; *c; c++)
                        e += sprintf(e, *c == '/' ? "%%2F" : "%c", *c);
                snprintf(path, sizeof(path), "/api/v1/workflows/%s", enc);
                r = http_req(p, "GET", path, NULL);
                json_object_set(out, id, r.json);
                http_res_free(&r);
                snprintf(path, sizeof(path),
                         "/api/v1/workflows/%s/history?limit=1000", enc);
                r = http_req(p, "GET", path, NULL);
                json_object_set(json_object_get(out, id), "history", r.json);
                http_res_free(&r);
                free(enc);
        }
        json_decref(items);
        text = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
        json_decref(out);
        return text;
}

/* Every open workflow of this test closed, on the projector at port p. */
static int all_closed(int p)
{
        char path[2048];
        http_res_t r;
        int open;
        snprintf(path, sizeof(path), "/api/v1/workflows?prefix=%s&limit=1",
                 prefix);
        r = http_req(p, "GET", path, NULL);
        open = r.status != 200 ||
               json_integer_value(json_object_get(
                   json_object_get(r.json, "counts"), "running")) > 0;
        http_res_free(&r);
        return !open;
}

static void test_projector_restart_and_replicas_agree(void)
{
        char err[1024], *a = NULL, *b = NULL;
        int64_t deadline;
        int same = 0;

        CU_ASSERT_FATAL(port > 0 && port2 > 0);
        /* Workflows under way while the first projector is killed. */
        for (int i = 0; i < 10; i++) {
                char id[128];
                json_t *in = json_pack("{ss si si}", "order", "r", "amount", i,
                                       "refund_window_ms", 2000);
                snprintf(id, sizeof(id), "%srestart-%d", prefix, i);
                CU_ASSERT_EQUAL(e2e_start_payment(client, id, in, i % 3 == 0,
                                                  err, sizeof(err)),
                                KEEL_OK);
                json_decref(in);
        }
        e2e_sleep_ms(300);
        CU_ASSERT(e2e_stop(proj, SIGKILL) != -1);
        port = projector_start("projector-restarted", NULL, &proj);
        CU_ASSERT_FATAL(port > 0);
        CU_ASSERT_EQUAL_FATAL(wait_ready(port), 0);

        /* Once everything closed and both have read as far, the restarted
         * projector and the replica that ran throughout answer alike. */
        deadline = e2e_now_ms() + 120000;
        while (e2e_now_ms() < deadline && !same) {
                if (all_closed(port) && all_closed(port2)) {
                        free(a);
                        free(b);
                        a = snapshot(port);
                        b = snapshot(port2);
                        same = a && b && !strcmp(a, b);
                }
                if (!same)
                        e2e_sleep_ms(500);
        }
        if (!same)
                fprintf(stderr, "restarted: %.2000s\nreplica:   %.2000s\n",
                        a ? a : "(none)", b ? b : "(none)");
        CU_ASSERT(same);
        CU_ASSERT(a && strlen(a) > 10000);
        free(a);
        free(b);
}

/* ---- readiness ------------------------------------------------------------
 */

/* A transaction left open on keel.history (a producer that hangs) must
 * not keep projectors from becoming ready: a read_committed reader is
 * caught up at the last stable offset, and sees nothing of the
 * transaction once it is aborted. */
static void test_projector_ready_despite_open_transaction(void)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_error_t *e;
        rd_kafka_t *rk;
        char err[512], path[2048];
        pid_t pid;
        http_res_t r;
        int p, ok = 1;

        if (rd_kafka_conf_set(conf, "bootstrap.servers", env.bootstrap, err,
                              sizeof(err)) ||
            rd_kafka_conf_set(conf, "transactional.id", "test-projector-hold",
                              err, sizeof(err)))
                ok = 0;
        CU_ASSERT_FATAL(ok);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(rk);
        e = rd_kafka_init_transactions(rk, 30000);
        CU_ASSERT_PTR_NULL_FATAL(e);
        e = rd_kafka_begin_transaction(rk);
        CU_ASSERT_PTR_NULL_FATAL(e);
        CU_ASSERT_EQUAL(rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC(KEEL_TOPIC_HISTORY),
                            RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY("!hold", 5),
                            RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_END),
                        RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_flush(rk, 10000);

        p = projector_start("projector-held", NULL, &pid);
        CU_ASSERT_FATAL(p > 0);
        CU_ASSERT_EQUAL(wait_ready(p), 0);
        snprintf(path, sizeof(path), "/api/v1/workflows?prefix=%s&limit=1000",
                 prefix);
        r = http_req(p, "GET", path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(json_array_size(json_object_get(r.json, "workflows")) >=
                  N_WORKFLOWS);
        http_res_free(&r);

        e = rd_kafka_abort_transaction(rk, 30000);
        CU_ASSERT_PTR_NULL(e);
        e2e_sleep_ms(500);
        /* The aborted record was never read. */
        r = http_req(p, "GET", "/metrics", NULL);
        CU_ASSERT_PTR_NOT_NULL(r.body);
        CU_ASSERT_PTR_NOT_NULL(
            r.body &&
            strstr(r.body, "keel_projector_undecodable_records_total 0\n"));
        http_res_free(&r);
        CU_ASSERT_EQUAL(e2e_stop(pid, SIGTERM), 0);
        rd_kafka_destroy(rk);
}

/* A projector that cannot read keel.history (its consumer points at no
 * broker) is never ready: reads answer 503 with Retry-After, /readyz 503,
 * /healthz 200; writes still go to keel.inbox, and the projector that
 * reads sees them. */
static void test_projector_unready_answers_503(void)
{
        static const char *const extra[] = {
            "-X", "kafka.consumer.bootstrap.servers=127.0.0.1:1", NULL};
        char hv[64], body[512], path[1024];
        pid_t pid;
        http_res_t r;
        int p = projector_start("projector-unready", extra, &pid);

        CU_ASSERT_FATAL(p > 0);
        e2e_sleep_ms(1000);
        r = http_req(p, "GET", "/api/v1/workflows", NULL);
        CU_ASSERT_EQUAL(r.status, 503);
        CU_ASSERT_PTR_NOT_NULL(http_header(&r, "Retry-After", hv, sizeof(hv)));
        CU_ASSERT_PTR_NOT_NULL(jstr(r.json, "error"));
        http_res_free(&r);
        snprintf(path, sizeof(path), "/api/v1/workflows/%s0/history", prefix);
        CU_ASSERT_EQUAL(http_status(p, "GET", path), 503);
        CU_ASSERT_EQUAL(http_status(p, "GET", "/readyz"), 503);
        CU_ASSERT_EQUAL(http_status(p, "GET", "/healthz"), 200);
        CU_ASSERT_EQUAL(http_status(p, "GET", "/"), 200);

        snprintf(body, sizeof(body),
                 "{\"workflow_id\":\"%sunready\",\"type\":\"payment\","
                 "\"input\":{\"order\":\"u\",\"amount\":1,"
                 "\"refund_window_ms\":100}}",
                 prefix);
        r = http_req(p, "POST", "/api/v1/workflows", body);
        CU_ASSERT_EQUAL(r.status, 202);
        snprintf(path, sizeof(path),
                 "/api/v1/workflows/%sunready/result?wait=60s&after=%s", prefix,
                 jstr(r.json, "position") ? jstr(r.json, "position") : "0:0");
        http_res_free(&r);
        r = http_req(port, "GET", path, NULL);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_STRING_EQUAL(jstr(r.json, "status"), "completed");
        http_res_free(&r);
        CU_ASSERT_EQUAL(e2e_stop(pid, SIGTERM), 0);
}

/* A clean stop of everything. */
static void test_projector_stops_cleanly(void)
{
        int st = e2e_stop(proj, SIGTERM);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        st = e2e_stop(proj2, SIGTERM);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        e2e_stop(orch, SIGTERM);
        e2e_stop(worker, SIGTERM);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

/* ---- search attributes ------------------------------------------------- */

/* Which of this test's workflows a listing with `query` returns: bit i for
 * payment i, bit N_WORKFLOWS for the one started below ("indexed"), bit
 * 30 for any other; -1 for an answer other than 200. */
static long listed_mask(const char *query)
{
        char path[2048];
        size_t k, pl = strlen(prefix);
        const json_t *it;
        long mask = 0;
        http_res_t r;

        snprintf(path, sizeof(path),
                 "/api/v1/workflows?prefix=%s&limit=1000&%s", prefix, query);
        r = http_req(port, "GET", path, NULL);
        if (r.status != 200) {
                http_res_free(&r);
                return -1;
        }
        json_array_foreach(json_object_get(r.json, "workflows"), k, it)
        {
                const char *id = jstr(it, "workflow_id") + pl;
                char *end;
                long i = strtol(id, &end, 10);
                if (!strcmp(id, "indexed"))
                        mask |= 1L << N_WORKFLOWS;
                else if (end != id && !*end && i >= 0 && i < N_WORKFLOWS)
                        mask |= 1L << i;
                else
                        mask |= 1L << 30;
        }
        http_res_free(&r);
        return mask;
}

/* The payments index themselves by customer and outcome (the payment
 * example's upserts); a start over HTTP gives initial attributes, merged
 * with the upserts. Listings filter on them through the real broker. */
static void test_projector_search_attributes(void)
{
        char path[2048], body[1024], pos[64], want[256];
        long customer1 = 0, refunded = 0;
        http_res_t r;
        char *got;

        CU_ASSERT_FATAL(port > 0);
        for (int i = 0; i < N_WORKFLOWS; i++) {
                customer1 |= (i % 3 == 1 ? 1L : 0L) << i;
                refunded |= (i % 4 == 0 ? 1L : 0L) << i;
        }
        CU_ASSERT_EQUAL(listed_mask("search=CustomerId=c-1"), customer1);
        CU_ASSERT_EQUAL(listed_mask("search=Stage=refunded"), refunded);
        CU_ASSERT_EQUAL(
            listed_mask("search=CustomerId=c-1&search=Stage=refunded"),
            customer1 & refunded);
        CU_ASSERT_EQUAL(listed_mask("search=Stage=completed"),
                        ((1L << N_WORKFLOWS) - 1) & ~refunded);
        CU_ASSERT_EQUAL(listed_mask("search=Stage"), -1);

        snprintf(body, sizeof(body),
                 "{\"workflow_id\":\"%sindexed\",\"type\":\"payment\","
                 "\"input\":{\"order\":\"i\",\"amount\":1,"
                 "\"refund_window_ms\":100,\"customer\":\"c-9\"},"
                 "\"search_attributes\":{\"Region\":\"eu\",\"Tier\":2}}",
                 prefix);
        post_ok("/api/v1/workflows", body, pos, sizeof(pos));
        snprintf(path, sizeof(path),
                 "/api/v1/workflows/%sindexed/result?wait=60s&after=%s", prefix,
                 pos);
        r = http_req(port, "GET", path, NULL);
        CU_ASSERT_STRING_EQUAL(jstr(r.json, "status"), "completed");
        http_res_free(&r);
        snprintf(path, sizeof(path), "/api/v1/workflows/%sindexed", prefix);
        r = http_req(port, "GET", path, NULL);
        got = json_dumps(json_object_get(r.json, "search_attributes"),
                         JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(want, sizeof(want),
                 "{\"CustomerId\":\"c-9\",\"Region\":\"eu\","
                 "\"Stage\":\"completed\",\"Tier\":2}");
        CU_ASSERT_STRING_EQUAL(got ? got : "", want);
        free(got);
        http_res_free(&r);
        CU_ASSERT_EQUAL(listed_mask("search=Region=eu&search=Tier=2"),
                        1L << N_WORKFLOWS);
        CU_ASSERT_EQUAL(listed_mask("search=Region=eu&search=Tier=3"), 0);
}

static CU_TestInfo tests[] = {
    {"test_projector_serves_folded_state", test_projector_serves_folded_state},
    {"test_projector_writes_and_long_polls",
     test_projector_writes_and_long_polls},
    {"test_projector_search_attributes", test_projector_search_attributes},
    {"test_projector_errors", test_projector_errors},
    {"test_projector_bearer_token", test_projector_bearer_token},
    {"test_projector_restart_and_replicas_agree",
     test_projector_restart_and_replicas_agree},
    {"test_projector_ready_despite_open_transaction",
     test_projector_ready_despite_open_transaction},
    {"test_projector_unready_answers_503", test_projector_unready_answers_503},
    {"test_projector_stops_cleanly", test_projector_stops_cleanly},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("projector", tests)

/*
 * test_proj_http.c: the projector's HTTP layer (projector/src/http.c) on a
 * fold fed by hand, with no Kafka: 503 until ready, percent-decoded IDs,
 * time-range filters, the result long poll woken by a new event, `after`
 * waiting for the orchestrator's checkpoint, and writes answering 503 when
 * no broker is there. The server listens on 127.0.0.1, port chosen at run
 * time.
 */
#include "keel/keel.h"
#include "keel_http.h"
#include "keel_test.h"
#include "proj.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

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

static CU_TestInfo tests[] = {
    {"test_not_ready_answers_503", test_not_ready_answers_503},
    {"test_ids_are_percent_decoded", test_ids_are_percent_decoded},
    {"test_time_ranges", test_time_ranges},
    {"test_result_long_poll_wakes_on_close",
     test_result_long_poll_wakes_on_close},
    {"test_after_waits_for_the_checkpoint",
     test_after_waits_for_the_checkpoint},
    {"test_write_without_broker_is_503", test_write_without_broker_is_503},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN_WITH("proj_http", tests, setup, teardown)

/*
 * test_workflow.c: workflows through the replay engine and the partition
 * state machine, in the test environment: the payment example's paths,
 * retries and timeouts, buffered signals, cancellation, determinism, and
 * non-determinism detection across a code change.
 */
#include "keel/testing.h"
#include "keel_test.h"
#include "machine_int.h"
#include "payment.h"

#include <string.h>

#define HOUR (3600LL * 1000)

static keel_registry_t *reg;

static keel_testenv_t *env_new(void)
{
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        for (size_t i = 0; i < payment_activities_cnt; i++)
                keel_testenv_register_activity(env, payment_activities[i].name,
                                               payment_activities[i].fn, NULL);
        return env;
}

static const char *result_status(keel_testenv_t *env, const char *id)
{
        static char buf[64];
        json_t *r = keel_testenv_result(env, id);
        snprintf(buf, sizeof(buf), "%s",
                 r ? json_string_value(json_object_get(r, "status")) : "-");
        json_decref(r);
        return buf;
}

/* How many events of short type t the history of id has. */
static int count(keel_testenv_t *env, const char *id, const char *t)
{
        const json_t *h = keel_testenv_history(env, id);
        char full[128];
        size_t i;
        const json_t *ev;
        int n = 0;
        snprintf(full, sizeof(full), "keel.history.%s", t);
        json_array_foreach(h, i, ev)
        {
                if (!strcmp(json_string_value(json_object_get(ev, "type")),
                            full))
                        n++;
        }
        return n;
}

/* Every history's seqs run 1..n without gaps. */
static void assert_seqs(keel_testenv_t *env, const char *id)
{
        const json_t *h = keel_testenv_history(env, id);
        size_t i;
        const json_t *ev;
        json_array_foreach(h, i, ev)
        {
                CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                                    json_object_get(ev, "record"), "seq")),
                                (json_int_t)i + 1);
        }
}

static void test_workflow_payment_completes_after_refund_window(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        CU_ASSERT_EQUAL(keel_testenv_start(env, "order-1", "payment",
                                           json_pack("{ss si}", "card", "4242",
                                                     "amount", 4200)),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "order-1"),
                               "completed");
        CU_ASSERT_STRING_EQUAL(result_status(env, "order-1"), "completed");
        /* 72 hours of virtual time went by */
        CU_ASSERT(keel_testenv_now(env) - t0 >= 72 * HOUR);
        CU_ASSERT(keel_testenv_now(env) - t0 < 73 * HOUR);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "chargeCard"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "markFulfilled"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "refundCard"), 0);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(
                keel_testenv_call_input(env, "chargeCard", 0), "card")),
            "4242");
        assert_seqs(env, "order-1");
        keel_testenv_destroy(env);
}

static void test_workflow_payment_refunded_on_signal(void)
{
        keel_testenv_t *env = env_new();
        keel_testenv_start(env, "order-2", "payment", json_object());
        CU_ASSERT_EQUAL(
            keel_testenv_run_until(env, keel_testenv_now(env) + 10 * HOUR),
            KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "order-2"), "running");
        CU_ASSERT_EQUAL(keel_testenv_signal(env, "order-2", "refundApproved",
                                            json_pack("{ss}", "by", "alice")),
                        KEEL_OK);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(result_status(env, "order-2"), "refunded");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "refundCard"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "releaseInventory"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "markFulfilled"), 0);
        /* the refund-window timer was cancelled */
        CU_ASSERT_EQUAL(count(env, "order-2", "TimerCancelled"), 1);
        assert_seqs(env, "order-2");
        keel_testenv_destroy(env);
}

/* When the refund window's timer fires. */
static int64_t refund_deadline(keel_testenv_t *env, const char *id)
{
        const json_t *h = keel_testenv_history(env, id), *ev;
        size_t i;
        json_array_foreach(h, i, ev)
        {
                if (!strcmp(json_string_value(json_object_get(ev, "type")),
                            "keel.history.TimerStarted"))
                        return json_integer_value(json_object_get(
                            json_object_get(ev, "record"), "fire_at"));
        }
        return -1;
}

/* refundApproved at the very millisecond the 72-hour window ends: the
 * order of the two in history decides, as the orchestrator orders a
 * signal it reads in the batch in which the timer falls due before the
 * timer. Recorded first, the refund wins; after the timer fired, the
 * payment is fulfilled and the signal finds no open workflow. */
static void test_workflow_signal_at_the_instant_the_window_ends(void)
{
        keel_testenv_t *env = env_new();
        int64_t at;

        keel_testenv_start(env, "order-a", "payment", json_object());
        keel_testenv_start(env, "order-b", "payment", json_object());
        keel_testenv_run_until(env, keel_testenv_now(env) + HOUR);
        at = refund_deadline(env, "order-a");
        CU_ASSERT_FATAL(at > 0);
        CU_ASSERT_EQUAL(refund_deadline(env, "order-b"), at);

        /* The clock at `at`, the timers due then not yet fired. */
        CU_ASSERT_EQUAL(keel_testenv_run_before(env, at), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_now(env), at);
        CU_ASSERT_EQUAL(keel_testenv_signal(env, "order-a", "refundApproved",
                                            json_pack("{ss}", "by", "bob")),
                        KEEL_OK);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(result_status(env, "order-a"), "refunded");
        CU_ASSERT_STRING_EQUAL(result_status(env, "order-b"), "completed");
        /* order-b's window has closed: too late for it. */
        CU_ASSERT_EQUAL(keel_testenv_signal(env, "order-b", "refundApproved",
                                            json_pack("{ss}", "by", "bob")),
                        KEEL_ERR_NOT_FOUND);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "refundCard"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "markFulfilled"), 1);
        CU_ASSERT_EQUAL(count(env, "order-a", "TimerFired"), 0);
        CU_ASSERT_EQUAL(count(env, "order-b", "TimerFired"), 1);
        keel_testenv_destroy(env);
}

static void test_workflow_signal_before_wait_is_buffered(void)
{
        keel_testenv_t *env = env_new();
        keel_testenv_start(env, "order-3", "payment", json_object());
        /* the signal arrives before the workflow has run any activity */
        keel_testenv_signal(env, "order-3", "refundApproved", NULL);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(result_status(env, "order-3"), "refunded");
        keel_testenv_destroy(env);
}

static void test_workflow_compensates_when_reserving_fails(void)
{
        keel_testenv_t *env = env_new();
        keel_testenv_start(env, "order-4", "payment",
                           json_pack("{sb}", "out_of_stock", 1));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "order-4"), "failed");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "chargeCard"), 1);
        /* non-retryable: one attempt */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "reserveInventory"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "refundCard"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "sendReceipt"), 0);
        {
                const json_t *h = keel_testenv_history(env, "order-4");
                const json_t *last = json_object_get(
                    json_array_get(h, json_array_size(h) - 1), "record");
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(
                        json_object_get(last, "failure"), "type")),
                    "InventoryUnavailable");
        }
        keel_testenv_destroy(env);
}

static void test_workflow_retries_transient_failures(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        keel_testenv_start(
            env, "order-5", "payment",
            json_pack("{si si}", "flaky", 2, "refund_window_ms", 1000));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(result_status(env, "order-5"), "completed");
        /* each of the 4 activities: 2 failures then success */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "chargeCard"), 3);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "markFulfilled"), 3);
        CU_ASSERT_EQUAL(count(env, "order-5", "ActivityFailed"), 8);
        CU_ASSERT_EQUAL(count(env, "order-5", "ActivityRetried"), 8);
        /* backoff 1 s then 2 s per activity, 4 activities + 1 s window */
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, 4 * 3000 + 1000);
        keel_testenv_destroy(env);
}

static int never_answers_first(keel_activity_ctx_t *ctx, const json_t *input,
                               json_t **result)
{
        (void)input;
        if (keel_activity_attempt(ctx) == 1)
                return KEEL_ERR_TIMEOUT; /* a lost worker */
        *result = json_string("ok");
        return KEEL_OK;
}

static void test_workflow_start_to_close_timeout_retries(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        keel_testenv_register_activity(env, "chargeCard", never_answers_first,
                                       NULL);
        keel_testenv_start(env, "order-6", "payment",
                           json_pack("{si}", "refund_window_ms", 1000));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(result_status(env, "order-6"), "completed");
        CU_ASSERT_EQUAL(count(env, "order-6", "ActivityTimedOut"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "chargeCard"), 2);
        /* 10 s start-to-close + 1 s backoff + 1 s window */
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, 12000);
        keel_testenv_destroy(env);
}

static void test_workflow_cancel_runs_compensation(void)
{
        keel_testenv_t *env = env_new();
        keel_testenv_start(env, "order-7", "payment", json_object());
        keel_testenv_run_until(env, keel_testenv_now(env) + HOUR);
        CU_ASSERT_EQUAL(keel_testenv_cancel(env, "order-7", "customer left"),
                        KEEL_OK);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "order-7"),
                               "cancelled");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "refundCard"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "releaseInventory"), 1);
        /* signalling a closed workflow is refused */
        CU_ASSERT_EQUAL(
            keel_testenv_signal(env, "order-7", "refundApproved", NULL),
            KEEL_ERR_NOT_FOUND);
        keel_testenv_destroy(env);
}

static void test_workflow_duplicate_start_rejected(void)
{
        keel_testenv_t *env = env_new();
        CU_ASSERT_EQUAL(keel_testenv_start(env, "order-8", "payment", NULL),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_start(env, "order-8", "payment", NULL),
                        KEEL_ERR_ALREADY_STARTED);
        keel_testenv_terminate(env, "order-8", "test");
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "order-8"),
                               "terminated");
        /* closed: a new run may reuse the ID (ALLOW_DUPLICATE) */
        CU_ASSERT_EQUAL(keel_testenv_start(env, "order-8", "payment", NULL),
                        KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "order-8"), "running");
        keel_testenv_destroy(env);
}

/* ---- determinism ---------------------------------------------------- */

static int side_calls;

static json_t *roll(void *opaque)
{
        (void)opaque;
        side_calls++;
        return json_integer(42);
}

static keel_err_t det_wf(keel_wf_t *wf, const json_t *input, json_t **result)
{
        int64_t t1 = keel_now(wf);
        uint64_t r1 = keel_random(wf);
        char u[37];
        json_t *se;
        (void)input;
        keel_uuid(wf, u);
        keel_side_effect(wf, roll, NULL, &se);
        keel_sleep(wf, 5000);
        *result = json_pack("{sI sI sI ss sO}", "t1", (json_int_t)t1, "t2",
                            (json_int_t)keel_now(wf), "r1",
                            (json_int_t)(r1 >> 1), "uuid", u, "se", se);
        return KEEL_OK;
}

static void test_workflow_helpers_are_deterministic(void)
{
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        json_t *r;
        int64_t t0 = keel_testenv_now(env);
        side_calls = 0;
        keel_testenv_start(env, "det", "det", NULL);
        keel_testenv_run(env);
        r = keel_testenv_result(env, "det");
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        /* now: start time before the sleep, +5 s after, although the code
         * ran twice (before and after the timer) */
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "t1")), t0);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "t2")),
                        t0 + 5000);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "se")), 42);
        CU_ASSERT_EQUAL(side_calls, 1); /* not again on replay */
        CU_ASSERT_EQUAL(strlen(json_string_value(json_object_get(r, "uuid"))),
                        36);
        json_decref(r);
        keel_testenv_destroy(env);
}

/* v1 charges then reserves; v2 swapped the order: a code change that
 * breaks running workflows. */
static keel_err_t order_v1(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        (void)result;
        keel_activity(wf, "chargeCard", NULL, NULL, NULL);
        keel_wait_signal(wf, "go", -1, NULL);
        keel_activity(wf, "reserveInventory", NULL, NULL, NULL);
        return KEEL_OK;
}

static keel_err_t order_v2(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        (void)result;
        keel_activity(wf, "reserveInventory", NULL, NULL, NULL);
        keel_wait_signal(wf, "go", -1, NULL);
        keel_activity(wf, "chargeCard", NULL, NULL, NULL);
        return KEEL_OK;
}

/* A machine for reg_x restored from `events`, resumed. */
static keel__machine_t *restored(const keel_registry_t *r, const json_t *events,
                                 keel__out_t *out)
{
        keel__machine_t *m = keel__machine_new(r);
        size_t i;
        const json_t *ev;
        char err[256];
        json_array_foreach(events, i, ev)
        {
                CU_ASSERT_EQUAL(keel__machine_restore(m, ev, err, sizeof(err)),
                                KEEL_OK);
        }
        CU_ASSERT_EQUAL(keel__machine_resume(m, 1767225600000LL + 99, out),
                        KEEL_OK);
        return m;
}

/* Send signal `name` with command ID cid to workflow "o" on m. */
static int signal_o(keel__machine_t *m, const char *cid, const char *name,
                    int64_t now, keel__out_t *out)
{
        json_t *rec = json_pack("{ss ss sI ss ss}", "workflow_id", "o",
                                "command_id", cid, "ts", (json_int_t)0,
                                "signal_name", name, "payload", "null");
        int rc = keel__machine_command(m, "keel.inbox.SignalWorkflow", rec, now,
                                       out);
        json_decref(rec);
        return rc;
}

static void test_workflow_nondeterminism_blocks_then_resumes(void)
{
        keel_registry_t *r1 = keel_registry_new(), *r2 = keel_registry_new();
        keel_testenv_t *env;
        keel__machine_t *m2, *m3;
        keel__out_t out;
        keel__run_info_t info;
        json_t *events;
        const json_t *nd;

        keel_workflow_register(r1, "order", order_v1);
        keel_workflow_register(r2, "order", order_v2);
        env = keel_testenv_new(r1, 0);
        keel_testenv_register_activity(env, "chargeCard", payment_charge_card,
                                       NULL);
        keel_testenv_start(env, "o", "order", NULL);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "o"), "running");
        events = json_deep_copy(keel_testenv_history(env, "o"));

        /* Deploy v2. Like Temporal, keel finds out when the workflow next
         * runs: here, when signal "go" arrives. The run is blocked, not
         * failed, with a message that names the event, what history has
         * and what the code did. */
        keel__out_init(&out);
        m2 = restored(r2, events, &out);
        CU_ASSERT_EQUAL(json_array_size(out.history), 0);
        CU_ASSERT_EQUAL(signal_o(m2, "s1", "go", 1767225600000LL + 100, &out),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel__machine_run(m2, "o", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "blocked");
        /* the signal, then the report */
        CU_ASSERT_EQUAL_FATAL(json_array_size(out.history), 2);
        nd = json_object_get(json_array_get(out.history, 1), "record");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_array_get(out.history, 1), "type")),
                               "keel.history.NonDeterminismDetected");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(nd, "event_seq")),
                        2);
        CU_ASSERT_PTR_NOT_NULL(strstr(
            json_string_value(json_object_get(nd, "expected")), "chargeCard"));
        CU_ASSERT_PTR_NOT_NULL(
            strstr(json_string_value(json_object_get(nd, "actual")),
                   "reserveInventory"));
        json_array_extend(events, out.history);
        /* More input while blocked: still blocked, no second report. */
        keel__out_reset(&out);
        CU_ASSERT_EQUAL(
            signal_o(m2, "s2", "other", 1767225600000LL + 200, &out), KEEL_OK);
        keel__machine_run(m2, "o", &info);
        CU_ASSERT_STRING_EQUAL(info.status, "blocked");
        CU_ASSERT_EQUAL(json_array_size(out.history), 1); /* the signal */
        json_array_extend(events, out.history);

        /* Fixed code (v1 again): the run resumes where it was. */
        keel__out_reset(&out);
        m3 = restored(r1, events, &out);
        keel__machine_run(m3, "o", &info);
        CU_ASSERT_STRING_EQUAL(info.status, "running");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(
                json_array_get(out.history, json_array_size(out.history) - 1),
                "type")),
            "keel.history.ActivityScheduled");
        CU_ASSERT_EQUAL(json_array_size(out.tasks), 1);

        keel__machine_destroy(m2);
        keel__machine_destroy(m3);
        keel__out_destroy(&out);
        json_decref(events);
        keel_testenv_destroy(env);
        keel_registry_destroy(r1);
        keel_registry_destroy(r2);
}

static void test_workflow_restore_rebuilds_pending_state(void)
{
        keel_testenv_t *env = env_new();
        keel__machine_t *m;
        keel__out_t out;
        keel__run_info_t info;
        json_t *events;

        keel_testenv_start(env, "order-9", "payment", json_object());
        keel_testenv_run_until(env, keel_testenv_now(env) + HOUR);
        events = json_deep_copy(keel_testenv_history(env, "order-9"));
        keel__out_init(&out);
        m = restored(reg, events, &out);
        /* nothing to redo, one timer pending, at the same time */
        CU_ASSERT_EQUAL(json_array_size(out.history), 0);
        CU_ASSERT_EQUAL(keel__machine_run(m, "order-9", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "running");
        CU_ASSERT_EQUAL(info.pending_timers, 1);
        CU_ASSERT_EQUAL(keel__machine_next_due(m),
                        1767225600000LL + PAYMENT_REFUND_WINDOW_MS);
        /* restoring the same events again changes nothing */
        {
                size_t i;
                const json_t *ev;
                char err[128];
                json_array_foreach(events, i, ev)
                {
                        CU_ASSERT_EQUAL(
                            keel__machine_restore(m, ev, err, sizeof(err)),
                            KEEL_OK);
                }
                keel__machine_run(m, "order-9", &info);
                CU_ASSERT_EQUAL(json_array_size(info.events),
                                json_array_size(events));
        }
        /* the timer fires on the restored machine */
        CU_ASSERT_EQUAL(keel__machine_tick(
                            m, 1767225600000LL + PAYMENT_REFUND_WINDOW_MS,
                            1767225600000LL + PAYMENT_REFUND_WINDOW_MS, &out),
                        KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(out.tasks), 1); /* markFulfilled */
        keel__machine_destroy(m);
        keel__out_destroy(&out);
        json_decref(events);
        keel_testenv_destroy(env);
}

static void test_workflow_stale_results_dropped(void)
{
        keel_testenv_t *env = env_new();
        keel__machine_t *m;
        keel__out_t out;
        keel__machine_stats_t st;
        json_t *events, *res;

        keel_testenv_start(env, "order-10", "payment", json_object());
        keel_testenv_run_until(env, keel_testenv_now(env) + HOUR);
        events = json_deep_copy(keel_testenv_history(env, "order-10"));
        keel__out_init(&out);
        m = restored(reg, events, &out);
        /* a second result for chargeCard (activity 1), attempt 1 */
        res =
            json_pack("{ss ss sI ss ss si ss}", "workflow_id", "order-10",
                      "command_id", "dup", "ts", (json_int_t)0, "run_id",
                      json_string_value(json_object_get(
                          json_object_get(json_array_get(events, 0), "record"),
                          "run_id")),
                      "activity_id", "1", "attempt", 1, "result", "{}");
        CU_ASSERT_EQUAL(keel__machine_command(m, "keel.inbox.ActivityCompleted",
                                              res, 1767225600000LL + 5, &out),
                        KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(out.history), 0);
        keel__machine_stats(m, &st);
        CU_ASSERT_EQUAL(st.stale, 1);
        json_decref(res);
        keel__machine_destroy(m);
        keel__out_destroy(&out);
        json_decref(events);
        keel_testenv_destroy(env);
}

static CU_TestInfo tests[] = {
    {"test_workflow_payment_completes_after_refund_window",
     test_workflow_payment_completes_after_refund_window},
    {"test_workflow_payment_refunded_on_signal",
     test_workflow_payment_refunded_on_signal},
    {"test_workflow_signal_at_the_instant_the_window_ends",
     test_workflow_signal_at_the_instant_the_window_ends},
    {"test_workflow_signal_before_wait_is_buffered",
     test_workflow_signal_before_wait_is_buffered},
    {"test_workflow_compensates_when_reserving_fails",
     test_workflow_compensates_when_reserving_fails},
    {"test_workflow_retries_transient_failures",
     test_workflow_retries_transient_failures},
    {"test_workflow_start_to_close_timeout_retries",
     test_workflow_start_to_close_timeout_retries},
    {"test_workflow_cancel_runs_compensation",
     test_workflow_cancel_runs_compensation},
    {"test_workflow_duplicate_start_rejected",
     test_workflow_duplicate_start_rejected},
    {"test_workflow_helpers_are_deterministic",
     test_workflow_helpers_are_deterministic},
    {"test_workflow_nondeterminism_blocks_then_resumes",
     test_workflow_nondeterminism_blocks_then_resumes},
    {"test_workflow_restore_rebuilds_pending_state",
     test_workflow_restore_rebuilds_pending_state},
    {"test_workflow_stale_results_dropped",
     test_workflow_stale_results_dropped},
    CU_TEST_INFO_NULL};

static int setup(void)
{
        reg = keel_registry_new();
        payment_register_workflow(reg);
        keel_workflow_register(reg, "det", det_wf);
        return 0;
}

int main(void)
{
        CU_SuiteInfo suites[] = {{"workflow", NULL, NULL, NULL, NULL, tests},
                                 CU_SUITE_INFO_NULL};
        unsigned failed;
        setup();
        if (CU_initialize_registry() != CUE_SUCCESS ||
            CU_register_suites(suites) != CUE_SUCCESS)
                return 2;
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
        if (!CU_get_number_of_tests_run())
                failed = 1;
        CU_cleanup_registry();
        keel_registry_destroy(reg);
        return failed ? 1 : 0;
}

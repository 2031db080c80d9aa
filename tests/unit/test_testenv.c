/*
 * test_testenv.c: the test environment's own features (keel/testing.h)
 * beyond what test_workflow.c covers with the payment example: activities
 * played from canned outcomes per attempt, and the order of an input and
 * a timer due at the same virtual instant (keel_testenv_run_before()).
 */
#include "keel/testing.h"
#include "keel_test.h"

#include <string.h>

static keel_registry_t *reg;

/* Runs activity "x" once (its retry policy: 1 s, x2, 4 attempts; 5 s
 * start-to-close) with the workflow's input, and completes with what
 * came of it: {"ok": result} or the failure. */
static keel_err_t call_x(keel_wf_t *wf, const json_t *input, json_t **result)
{
        static const keel_activity_options_t opts = {
            .start_to_close_ms = 5000,
            .retry = {.initial_interval_ms = 1000, .maximum_attempts = 4}};
        const keel_failure_t *f;
        json_t *r;

        if (keel_activity(wf, "x", json_deep_copy(input), &opts, &r) ==
            KEEL_OK) {
                *result = json_pack("{sO}", "ok", r ? r : json_null());
                return KEEL_OK;
        }
        f = keel_wf_failure(wf);
        *result = json_pack("{ss ss sO sb}", "type", f->type, "message",
                            f->message, "details", (json_t *)f->details,
                            "non_retryable", f->non_retryable);
        return KEEL_OK;
}

/* Waits up to 10 s for signal "go": {"got": "signal"|"timeout"}. */
static keel_err_t wait_go(keel_wf_t *wf, const json_t *input, json_t **result)
{
        int rc = keel_wait_signal(wf, "go", 10000, NULL);
        (void)input;
        *result =
            json_pack("{ss}", "got", rc == KEEL_OK ? "signal" : "timeout");
        return KEEL_OK;
}

/* A handler, to see that a registration replaces a canned one. */
static int answer_42(keel_activity_ctx_t *ctx, const json_t *input,
                     json_t **result)
{
        (void)ctx;
        (void)input;
        *result = json_integer(42);
        return KEEL_OK;
}

/* Start "call_x" as `id` with input, having registered x from the JSON
 * text `outcomes`; run to the end. */
static keel_testenv_t *run_canned(const char *outcomes, json_t *input)
{
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        json_t *o = json_loads(outcomes, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_EQUAL(keel_testenv_register_canned(env, "x", o), KEEL_OK);
        json_decref(o);
        CU_ASSERT_EQUAL(keel_testenv_start(env, "w", "call_x", input), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "w"), "completed");
        return env;
}

/* The position in w's history of the nth (from 0) event of type
 * keel.history.<t>, or -1. */
static int position(keel_testenv_t *env, const char *t, int nth)
{
        const json_t *h = keel_testenv_history(env, "w");
        size_t i;
        const json_t *ev;
        json_array_foreach(h, i, ev)
        {
                const char *type =
                    json_string_value(json_object_get(ev, "type"));
                if (!strncmp(type, "keel.history.", 13) &&
                    !strcmp(type + 13, t) && nth-- == 0)
                        return (int)i;
        }
        return -1;
}

/* That event's record, or NULL. */
static const json_t *event(keel_testenv_t *env, const char *t, int nth)
{
        int i = position(env, t, nth);
        return i < 0 ? NULL
                     : json_object_get(
                           json_array_get(keel_testenv_history(env, "w"),
                                          (size_t)i),
                           "record");
}

static void test_testenv_canned_fails_twice_then_succeeds(void)
{
        keel_testenv_t *env;
        json_t *r;
        int64_t t0;

        env = run_canned("[{\"failure\": {\"type\": \"Busy\", \"message\": "
                         "\"try later\"}},"
                         " {\"failure\": {\"type\": \"Busy\"}},"
                         " {\"result\": {\"n\": 7}}]",
                         json_pack("{ss}", "to", "ada"));
        t0 = json_integer_value(
            json_object_get(event(env, "WorkflowStarted", 0), "ts"));
        r = keel_testenv_result(env, "w");
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(json_object_get(r, "ok"), "n")),
            7);
        json_decref(r);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "x"), 3);
        /* each attempt got the workflow's input */
        for (size_t i = 0; i < 3; i++)
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(
                        keel_testenv_call_input(env, "x", i), "to")),
                    "ada");
        CU_ASSERT_PTR_NULL(keel_testenv_call_input(env, "x", 3));
        /* the failures as a worker would have reported them */
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(
                json_object_get(event(env, "ActivityFailed", 0), "failure"),
                "type")),
            "Busy");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(
                json_object_get(event(env, "ActivityFailed", 0), "failure"),
                "message")),
            "try later");
        CU_ASSERT_PTR_NOT_NULL(event(env, "ActivityFailed", 1));
        CU_ASSERT_PTR_NULL(event(env, "ActivityFailed", 2));
        /* retried after 1 s, then 2 s */
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, 3000);
        keel_testenv_destroy(env);
}

static void test_testenv_canned_last_outcome_repeats(void)
{
        keel_testenv_t *env =
            run_canned("[{\"result\": 1}, {\"failure\": {\"type\": \"Down\", "
                       "\"message\": \"no\"}}]",
                       NULL);
        json_t *r = keel_testenv_result(env, "w");
        /* attempt 1 completes: the later entries never play */
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "ok")), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "x"), 1);
        json_decref(r);
        keel_testenv_destroy(env);

        env = run_canned("[{\"failure\": {\"type\": \"Down\", \"message\": "
                         "\"the service is down\"}}]",
                         NULL);
        r = keel_testenv_result(env, "w");
        /* the one failure repeats until the policy's 4 attempts are spent */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "x"), 4);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "type")),
                               "Down");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "message")),
                               "the service is down");
        CU_ASSERT(json_is_false(json_object_get(r, "non_retryable")));
        json_decref(r);
        keel_testenv_destroy(env);
}

static void test_testenv_canned_non_retryable_with_details(void)
{
        keel_testenv_t *env = run_canned(
            "[{\"failure\": {\"type\": \"Invalid\", \"non_retryable\": true, "
            "\"details\": {\"field\": \"email\"}}}, {\"result\": 1}]",
            NULL);
        json_t *r = keel_testenv_result(env, "w");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "x"), 1);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "type")),
                               "Invalid");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "message")),
                               "");
        CU_ASSERT(json_is_true(json_object_get(r, "non_retryable")));
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_object_get(r, "details"), "field")),
                               "email");
        json_decref(r);
        keel_testenv_destroy(env);
}

static void test_testenv_canned_timeout_lets_timeouts_apply(void)
{
        keel_testenv_t *env =
            run_canned("[{\"timeout\": true}, {\"result\": null}]", NULL);
        json_t *r = keel_testenv_result(env, "w");
        int64_t t0 = json_integer_value(
            json_object_get(event(env, "WorkflowStarted", 0), "ts"));
        CU_ASSERT(json_is_null(json_object_get(r, "ok")));
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "x"), 2);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(event(env, "ActivityTimedOut", 0),
                                              "timeout_type")),
            "START_TO_CLOSE");
        CU_ASSERT_PTR_NULL(event(env, "ActivityFailed", 0));
        /* 5 s start-to-close, 1 s backoff */
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, 6000);
        json_decref(r);
        keel_testenv_destroy(env);
}

static void test_testenv_canned_rejects_bad_outcomes(void)
{
        static const char *const bad[] = {
            "{\"result\": 1}",
            "[]",
            "[1]",
            "[{}]",
            "[{\"result\": 1, \"timeout\": true}]",
            "[{\"timeout\": false}]",
            "[{\"failure\": \"Busy\"}]",
            "[{\"failure\": {\"message\": \"no type\"}}]",
            "[{\"failure\": {\"type\": \"\"}}]",
            "[{\"failure\": {\"type\": \"T\", \"non_retryable\": 1}}]",
            "[{\"failure\": {\"type\": \"T\", \"retryable\": true}}]",
            "[{\"result\": 1}, {\"outcome\": 2}]",
        };
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        json_t *r;
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        keel_testenv_register_activity(env, "x", answer_42, NULL);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                json_t *o = json_loads(bad[i], JSON_DECODE_ANY, NULL);
                CU_ASSERT_PTR_NOT_NULL_FATAL(o);
                if (keel_testenv_register_canned(env, "x", o) !=
                    KEEL_ERR_INVALID_ARG)
                        CU_FAIL(bad[i]);
                json_decref(o);
        }
        r = json_pack("[{si}]", "result", 1);
        CU_ASSERT_EQUAL(keel_testenv_register_canned(env, "", r),
                        KEEL_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(keel_testenv_register_canned(env, "x", NULL),
                        KEEL_ERR_INVALID_ARG);
        json_decref(r);
        /* the handler registered before is still the one that runs */
        keel_testenv_start(env, "w", "call_x", NULL);
        keel_testenv_run(env);
        r = keel_testenv_result(env, "w");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "ok")), 42);
        json_decref(r);
        keel_testenv_destroy(env);
}

static void test_testenv_canned_and_handlers_replace_each_other(void)
{
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        json_t *o = json_pack("[{s{ss}}]", "result", "from", "canned");
        json_t *r;
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);

        CU_ASSERT_EQUAL(
            keel_testenv_register_activity(env, "x", answer_42, NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_register_canned(env, "x", o), KEEL_OK);
        /* the outcomes were copied: changing o changes nothing */
        json_object_set_new(json_array_get(o, 0), "result", json_integer(0));
        json_decref(o);
        keel_testenv_start(env, "w", "call_x", NULL);
        keel_testenv_run(env);
        r = keel_testenv_result(env, "w");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_object_get(r, "ok"), "from")),
                               "canned");
        json_decref(r);

        /* a handler again replaces the canned outcomes */
        CU_ASSERT_EQUAL(
            keel_testenv_register_activity(env, "x", answer_42, NULL), KEEL_OK);
        keel_testenv_start(env, "w", "call_x", NULL);
        keel_testenv_run(env);
        r = keel_testenv_result(env, "w");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "ok")), 42);
        json_decref(r);
        /* both runs' calls are counted */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "x"), 2);
        keel_testenv_destroy(env);
}

static const char *got(keel_testenv_t *env)
{
        static char buf[32];
        json_t *r = keel_testenv_result(env, "w");
        snprintf(buf, sizeof(buf), "%s",
                 r ? json_string_value(json_object_get(r, "got")) : "-");
        json_decref(r);
        return buf;
}

static void test_testenv_input_and_timer_at_one_instant(void)
{
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        int64_t due = keel_testenv_now(env) + 10000;
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);

        /* The signal is sent when the clock reads the timer's due time,
         * before the timer fires: it is recorded first and wins. */
        keel_testenv_start(env, "w", "wait_go", NULL);
        CU_ASSERT_EQUAL(keel_testenv_run_before(env, due), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_now(env), due);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "w"), "running");
        CU_ASSERT_EQUAL(keel_testenv_signal(env, "w", "go", NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(got(env), "signal");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            event(env, "SignalReceived", 0), "ts")),
                        due);
        CU_ASSERT_PTR_NOT_NULL(event(env, "TimerCancelled", 0));
        CU_ASSERT_PTR_NULL(event(env, "TimerFired", 0));
        CU_ASSERT_EQUAL(keel_testenv_now(env), due);

        /* run_until() fires what is due at that instant first: the signal
         * comes after the timer, to a closed run. */
        keel_testenv_start(env, "w", "wait_go", NULL);
        due = keel_testenv_now(env) + 10000;
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, due), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_now(env), due);
        CU_ASSERT_STRING_EQUAL(got(env), "timeout");
        CU_ASSERT_EQUAL(keel_testenv_signal(env, "w", "go", NULL),
                        KEEL_ERR_NOT_FOUND);
        CU_ASSERT(position(env, "TimerFired", 0) > 0);
        CU_ASSERT_EQUAL(position(env, "SignalReceived", 0), -1);
        keel_testenv_destroy(env);
}

static int setup(void)
{
        reg = keel_registry_new();
        return !reg || keel_workflow_register(reg, "call_x", call_x) ||
               keel_workflow_register(reg, "wait_go", wait_go);
}

static int teardown(void)
{
        keel_registry_destroy(reg);
        return 0;
}

static CU_TestInfo tests[] = {
    {"test_testenv_canned_fails_twice_then_succeeds",
     test_testenv_canned_fails_twice_then_succeeds},
    {"test_testenv_canned_last_outcome_repeats",
     test_testenv_canned_last_outcome_repeats},
    {"test_testenv_canned_non_retryable_with_details",
     test_testenv_canned_non_retryable_with_details},
    {"test_testenv_canned_timeout_lets_timeouts_apply",
     test_testenv_canned_timeout_lets_timeouts_apply},
    {"test_testenv_canned_rejects_bad_outcomes",
     test_testenv_canned_rejects_bad_outcomes},
    {"test_testenv_canned_and_handlers_replace_each_other",
     test_testenv_canned_and_handlers_replace_each_other},
    {"test_testenv_input_and_timer_at_one_instant",
     test_testenv_input_and_timer_at_one_instant},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN_WITH("testenv", tests, setup, teardown)

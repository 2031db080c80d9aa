/*
 * test_saga.c: the saga helper (keel/workflow.h) in the test environment:
 * compensations run in reverse order of registration, one by one or all
 * at once, after a failure or a cancellation; a cancellation arriving
 * while compensating does not stop them; a failed compensation is
 * reported while the others still run.
 */
#include "keel/testing.h"
#include "keel_test.h"

#include <string.h>

#define HOUR (3600LL * 1000)

static int ok(keel_activity_ctx_t *ctx, const json_t *input, json_t **result)
{
        (void)ctx;
        (void)input;
        *result = json_pack("{sb}", "ok", 1);
        return KEEL_OK;
}

static int fails(keel_activity_ctx_t *ctx, const json_t *input, json_t **result)
{
        (void)input;
        (void)result;
        return keel_activity_fail(ctx, "Broken", "step failed", NULL, 1);
}

/* The first attempt never answers (its start-to-close timeout applies);
 * the second completes. */
static int slow_then_ok(keel_activity_ctx_t *ctx, const json_t *input,
                        json_t **result)
{
        if (keel_activity_attempt(ctx) == 1)
                return KEEL_ERR_TIMEOUT;
        return ok(ctx, input, result);
}

static const keel_activity_options_t opts = {
    .start_to_close_ms = 60000,
    .retry = {.initial_interval_ms = 1000, .maximum_attempts = 3},
};

/*
 * Steps "a", "b", "c" with compensations "undo" {"step": x}; then, by the
 * input: {"fail": true} a failing step "d"; {"wait": true} a wait for a
 * signal that never comes (so the run can be cancelled); "parallel"
 * compensates all at once.
 */
static keel_err_t saga_wf(keel_wf_t *wf, const json_t *input, json_t **result)
{
        keel_saga_t *saga = keel_saga_new(wf);
        int parallel = json_is_true(json_object_get(input, "parallel"));
        const char *steps[] = {"a", "b", "c"};
        int rc;

        for (int i = 0; i < 3; i++) {
                if (keel_activity(wf, steps[i], NULL, &opts, NULL))
                        return keel_fail(wf, "StepFailed", steps[i], NULL);
                keel_saga_add(saga, "undo", json_pack("{ss}", "step", steps[i]),
                              &opts);
        }
        if (json_is_true(json_object_get(input, "fail")))
                rc = keel_activity(wf, "d", NULL, &opts, NULL);
        else
                rc = keel_wait_signal(wf, "never", -1, NULL);
        if (keel_saga_size(saga) != 3)
                return keel_fail(wf, "Size", "three compensations", NULL);
        rc = rc == KEEL_ERR_CANCELLED ? rc : KEEL_ERR_ACTIVITY_FAILED;
        {
                int crc = keel_saga_compensate(saga, parallel);
                *result = json_pack("{si}", "compensate", crc);
                if (keel_saga_size(saga) != 0 ||
                    keel_saga_compensate(saga, parallel) != KEEL_OK)
                        return keel_fail(wf, "Twice", "compensated twice",
                                         NULL);
                if (crc)
                        return keel_fail(wf, "CompensationFailed",
                                         keel_wf_failure(wf)->message, NULL);
        }
        if (rc == KEEL_ERR_CANCELLED)
                return rc;
        return keel_fail(wf, "Compensated", "step d failed", NULL);
}

static keel_testenv_t *env_new(keel_registry_t **reg, keel_activity_fn_t undo)
{
        keel_testenv_t *env;
        *reg = keel_registry_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(*reg);
        keel_workflow_register(*reg, "saga", saga_wf);
        env = keel_testenv_new(*reg, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        keel_testenv_register_activity(env, "a", ok, NULL);
        keel_testenv_register_activity(env, "b", ok, NULL);
        keel_testenv_register_activity(env, "c", ok, NULL);
        keel_testenv_register_activity(env, "d", fails, NULL);
        keel_testenv_register_activity(env, "undo", undo, NULL);
        return env;
}

/* The steps "undo" ran for, in call order, as "cba". */
static void undone(keel_testenv_t *env, char *out)
{
        size_t n = keel_testenv_calls(env, "undo");
        for (size_t i = 0; i < n && i < 7; i++) {
                const char *s = json_string_value(json_object_get(
                    keel_testenv_call_input(env, "undo", i), "step"));
                out[i] = s ? s[0] : '?';
                out[i + 1] = '\0';
        }
}

/* Positions in the history of the ActivityScheduled events for "undo"
 * and of the first ActivityCompleted after the first of them. */
static void schedule_order(keel_testenv_t *env, const char *id,
                           size_t *last_sched, size_t *first_done)
{
        const json_t *h = keel_testenv_history(env, id), *ev;
        size_t i;
        int seen = 0;
        *last_sched = *first_done = 0;
        json_array_foreach(h, i, ev)
        {
                const char *t = json_string_value(json_object_get(ev, "type"));
                const char *at = json_string_value(json_object_get(
                    json_object_get(ev, "record"), "activity_type"));
                if (!strcmp(t, "keel.history.ActivityScheduled") && at &&
                    !strcmp(at, "undo")) {
                        *last_sched = i;
                        seen = 1;
                } else if (seen && !*first_done &&
                           !strcmp(t, "keel.history.ActivityCompleted")) {
                        *first_done = i;
                }
        }
}

static void test_failure_compensates_in_reverse(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg, ok);
        char order[8] = "";
        size_t last_sched, first_done;

        keel_testenv_start(env, "s1", "saga", json_pack("{sb}", "fail", 1));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "s1"), "failed");
        undone(env, order);
        CU_ASSERT_STRING_EQUAL(order, "cba");
        /* One by one: each completes before the next is scheduled. */
        schedule_order(env, "s1", &last_sched, &first_done);
        CU_ASSERT(first_done < last_sched);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_parallel_compensation(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg, ok);
        char order[8] = "";
        size_t last_sched, first_done;

        keel_testenv_start(env, "s2", "saga",
                           json_pack("{sb sb}", "fail", 1, "parallel", 1));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "s2"), "failed");
        undone(env, order);
        CU_ASSERT_STRING_EQUAL(order, "cba");
        /* All scheduled before any completes. */
        schedule_order(env, "s2", &last_sched, &first_done);
        CU_ASSERT(last_sched < first_done);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_cancellation_compensates(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg, ok);
        char order[8] = "";

        keel_testenv_start(env, "s3", "saga", NULL);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "s3"), "running");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undo"), 0);
        keel_testenv_cancel(env, "s3", "customer left");
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "s3"), "cancelled");
        undone(env, order);
        CU_ASSERT_STRING_EQUAL(order, "cba");
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

/* A cancellation that arrives while a compensation is under way (its
 * first attempt timed out, the retry is pending) does not stop it: the
 * retry runs and every compensation completes. */
static void test_cancel_during_compensation(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg, slow_then_ok);
        json_t *r;

        keel_testenv_start(env, "s4", "saga", json_pack("{sb}", "fail", 1));
        /* Into the first compensation's start-to-close window. */
        keel_testenv_run_until(env, keel_testenv_now(env) + 30000);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "s4"), "running");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undo"), 1);
        keel_testenv_cancel(env, "s4", "impatient");
        keel_testenv_run(env);
        /* c: attempt 1 timed out, 2 completed; then b and a (each timing
         * out once as well). */
        if (keel_testenv_calls(env, "undo") != 6) {
                size_t i;
                const json_t *ev;
                json_array_foreach(keel_testenv_history(env, "s4"), i, ev)
                    fprintf(stderr, "  %s\n",
                            json_string_value(json_object_get(ev, "type")));
        }
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undo"), 6);
        CU_ASSERT(keel_testenv_now(env) >= 3 * 60000);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "s4"), "failed");
        r = keel_testenv_result(env, "s4");
        CU_ASSERT_PTR_NULL(r); /* failed: "Compensated" */
        json_decref(r);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_failed_compensation_is_reported(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg, fails);
        const json_t *h;
        const json_t *last;

        keel_testenv_start(env, "s5", "saga", json_pack("{sb}", "fail", 1));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "s5"), "failed");
        /* All three ran although the first failed. */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undo"), 3);
        h = keel_testenv_history(env, "s5");
        last = json_array_get(h, json_array_size(h) - 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(
            json_string_value(json_object_get(
                json_object_get(json_object_get(last, "record"), "failure"),
                "type"))
                ?: "",
            "CompensationFailed"));
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static CU_TestInfo tests[] = {
    {"test_failure_compensates_in_reverse",
     test_failure_compensates_in_reverse},
    {"test_parallel_compensation", test_parallel_compensation},
    {"test_cancellation_compensates", test_cancellation_compensates},
    {"test_cancel_during_compensation", test_cancel_during_compensation},
    {"test_failed_compensation_is_reported",
     test_failed_compensation_is_reported},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("saga", tests)

/*
 * test_continue.c: continue-as-new and the workflow execution and run
 * timeouts, in the test environment (the orchestrator's state machine on
 * a virtual clock).
 *
 * The workflows are those of tests/integration/continue_module.c: "counter"
 * adds the signals "add" it takes, `batch` at a time, sleeps, then
 * continues as new with the running total: each run's history stays
 * short, the total is right, and signals that came in while a run was
 * ending are taken by the next run, none lost, none twice. "sleeper"
 * sleeps for its input's ms; "looper" continues as new 50 times.
 */
#include "keel/keel.h"
#include "keel/testing.h"
#include "keel_test.h"
#include "machine_int.h"

#include <string.h>

#define T0 1767225600000LL

/* The workflows of tests/integration/continue_module.c, built in. */
int keel_module_init(keel_registry_t *reg);

static keel_testenv_t *env_new(keel_registry_t **reg)
{
        keel_testenv_t *env;
        *reg = keel_registry_new();
        CU_ASSERT_EQUAL_FATAL(keel_module_init(*reg), KEEL_OK);
        env = keel_testenv_new(*reg, T0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        return env;
}

static const json_t *first_event(keel_testenv_t *env, const char *id)
{
        return json_object_get(json_array_get(keel_testenv_history(env, id), 0),
                               "record");
}

static void test_continue_as_new_carries_the_total_and_every_signal(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        json_t *res;
        char first_run[40];
        int n = 0;

        CU_ASSERT_EQUAL(
            keel_testenv_start(env, "c", "counter",
                               json_pack("{si si si si si}", "total", 0,
                                         "batch", 3, "runs", 0, "until", 55,
                                         "sleep_ms", 1000)),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        snprintf(first_run, sizeof(first_run), "%s",
                 json_string_value(
                     json_object_get(first_event(env, "c"), "run_id")));
        /* 1..10, sent in bursts: some land while a run sleeps before it
         * continues, and belong to no wait of that run. */
        for (int i = 1; i <= 10; i++) {
                CU_ASSERT_EQUAL(keel_testenv_signal(env, "c", "add",
                                                    json_pack("{si}", "n", i)),
                                KEEL_OK);
                if (i % 4 == 0)
                        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        }
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "c"), "completed");
        res = keel_testenv_result(env, "c");
        CU_ASSERT_PTR_NOT_NULL_FATAL(res);
        /* 1 + ... + 10 = 55: every signal counted once */
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(res, "total")), 55);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(res, "runs")), 4);
        json_decref(res);
        /* the last run is another run of the same workflow ID, continued
         * from the one before, with a short history of its own */
        CU_ASSERT_STRING_NOT_EQUAL(
            json_string_value(json_object_get(first_event(env, "c"), "run_id")),
            first_run);
        CU_ASSERT_PTR_NOT_NULL(json_string_value(
            json_object_get(first_event(env, "c"), "continued_from_run_id")));
        CU_ASSERT(json_array_size(keel_testenv_history(env, "c")) < 20);
        {
                size_t i;
                const json_t *ev;
                json_array_foreach(keel_testenv_history(env, "c"), i, ev)
                {
                        n += !strcmp(
                            json_string_value(json_object_get(ev, "type")),
                            "keel.history.SignalReceived");
                }
        }
        CU_ASSERT(n >= 1);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

/* The orchestrator's machine: a restore of the first run's and the new
 * run's events, as written, gives the same state, and a signal sent
 * again (same command ID) after the carry-over is not taken twice. */
static void test_continue_as_new_restores_and_drops_repeats(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        keel__machine_t *m = NULL;
        keel__out_t out;
        keel__run_info_t info;
        json_t *all = json_array(), *rec;
        const json_t *h;
        char err[256];
        size_t i;
        const json_t *ev;

        (void)env;
        m = keel__machine_new(reg);
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&out), KEEL_OK);
        rec = json_pack("{ss ss sI ss ss ss ss}", "workflow_id", "c",
                        "command_id", "start-1", "ts", (json_int_t)T0,
                        "workflow_type", "counter", "input",
                        "{\"total\":0,\"batch\":1,\"runs\":0,\"until\":100,"
                        "\"sleep_ms\":1000}",
                        "id_reuse_policy", "ALLOW_DUPLICATE",
                        "id_conflict_policy", "FAIL");
        CU_ASSERT_EQUAL(
            keel__machine_command(m, "keel.inbox.StartWorkflow", rec, T0, &out),
            KEEL_OK);
        json_decref(rec);
        /* two signals: the first is taken, the second arrives during the
         * sleep and is carried over */
        for (int k = 1; k <= 2; k++) {
                char cid[16];
                snprintf(cid, sizeof(cid), "sig-%d", k);
                rec = json_pack("{ss ss sI sn ss ss}", "workflow_id", "c",
                                "command_id", cid, "ts", (json_int_t)T0,
                                "run_id", "signal_name", "add", "payload",
                                k == 1 ? "{\"n\":10}" : "{\"n\":20}");
                CU_ASSERT_EQUAL(
                    keel__machine_command(m, "keel.inbox.SignalWorkflow", rec,
                                          T0 + k, &out),
                    KEEL_OK);
                json_decref(rec);
        }
        CU_ASSERT_EQUAL(keel__machine_tick(m, T0 + 5000, T0 + 5000, &out),
                        KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(keel__machine_run(m, "c", &info), KEEL_OK);
        CU_ASSERT_PTR_NOT_NULL(json_string_value(json_object_get(
            json_object_get(json_array_get(info.events, 0), "record"),
            "continued_from_run_id")));
        /* the new run has taken the carried signal: total 30 in its
         * state, waiting for the next */
        CU_ASSERT_STRING_EQUAL(info.status, "running");
        h = out.history;
        json_array_foreach(h, i, ev) json_array_append(all, (json_t *)ev);
        {
                int carried = 0;
                json_array_foreach(info.events, i, ev)
                {
                        carried += !strcmp(
                            json_string_value(json_object_get(ev, "type")),
                            "keel.history.SignalReceived");
                }
                CU_ASSERT_EQUAL(carried, 1);
        }
        /* the carried signal delivered again (same command ID): dropped */
        rec = json_pack("{ss ss sI sn ss ss}", "workflow_id", "c", "command_id",
                        "sig-2", "ts", (json_int_t)T0, "run_id", "signal_name",
                        "add", "payload", "{\"n\":20}");
        keel__out_reset(&out);
        CU_ASSERT_EQUAL(keel__machine_command(m, "keel.inbox.SignalWorkflow",
                                              rec, T0 + 6000, &out),
                        KEEL_OK);
        json_decref(rec);
        CU_ASSERT_EQUAL(json_array_size(out.history), 0);
        keel__machine_destroy(m);

        /* a machine restored from every event written ends in the same
         * state: the new run, open, with the same history */
        m = keel__machine_new(reg);
        json_array_foreach(all, i, ev)
        {
                CU_ASSERT_EQUAL(keel__machine_restore(m, ev, err, sizeof(err)),
                                KEEL_OK);
        }
        keel__out_reset(&out);
        CU_ASSERT_EQUAL(keel__machine_resume(m, T0 + 7000, &out), KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(out.history), 0);
        CU_ASSERT_EQUAL_FATAL(keel__machine_run(m, "c", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "running");
        CU_ASSERT_PTR_NOT_NULL(json_string_value(json_object_get(
            json_object_get(json_array_get(info.events, 0), "record"),
            "continued_from_run_id")));
        keel__machine_destroy(m);
        keel__out_destroy(&out);
        json_decref(all);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_continue_as_new_in_a_tight_loop(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        json_t *res;
        CU_ASSERT_EQUAL(keel_testenv_start(env, "l", "looper", json_integer(0)),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "l"), "completed");
        res = keel_testenv_result(env, "l");
        CU_ASSERT_EQUAL(json_integer_value(res), 50);
        json_decref(res);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_run_timeout_terminates_the_run(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        keel_start_options_t o = {0};
        const json_t *h, *last;

        o.run_timeout_ms = 5000;
        CU_ASSERT_EQUAL(
            keel_testenv_start_ex(env, "s", "sleeper", json_integer(60000), &o),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 4999), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "s"), "running");
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "s"), "terminated");
        h = keel_testenv_history(env, "s");
        last = json_object_get(json_array_get(h, json_array_size(h) - 1),
                               "record");
        CU_ASSERT_PTR_NOT_NULL(
            strstr(json_string_value(json_object_get(last, "reason")),
                   "WorkflowRunTimedOut"));
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(last, "ts")),
                        T0 + 5000);
        /* a run that ends in time is not touched */
        CU_ASSERT_EQUAL(
            keel_testenv_start_ex(env, "t", "sleeper", json_integer(100), &o),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "t"), "completed");
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

/* The execution timeout spans continue-as-new; the run timeout is each
 * run's own. */
static void test_execution_timeout_spans_continue_as_new(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        keel_start_options_t o = {0};
        const json_t *h, *last;
        int64_t t_end;

        o.execution_timeout_ms = 2500;
        o.run_timeout_ms = 1500;
        /* each run sleeps 1 s after its one signal, then continues */
        CU_ASSERT_EQUAL(
            keel_testenv_start_ex(env, "e", "counter",
                                  json_pack("{si si si si si}", "total", 0,
                                            "batch", 1, "runs", 0, "until",
                                            1000, "sleep_ms", 1000),
                                  &o),
            KEEL_OK);
        /* signals at 0, 1.1 and 2.2 s; runs continue at 1 s and 2.1 s */
        for (int k = 0; k < 3; k++) {
                CU_ASSERT_EQUAL(keel_testenv_signal(env, "e", "add",
                                                    json_pack("{si}", "n", 1)),
                                KEEL_OK);
                CU_ASSERT_EQUAL(
                    keel_testenv_run_until(env, keel_testenv_now(env) + 1100),
                    KEEL_OK);
        }
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "e"), "terminated");
        h = keel_testenv_history(env, "e");
        last = json_object_get(json_array_get(h, json_array_size(h) - 1),
                               "record");
        CU_ASSERT_PTR_NOT_NULL(
            strstr(json_string_value(json_object_get(last, "reason")),
                   "WorkflowExecutionTimedOut"));
        t_end = json_integer_value(json_object_get(last, "ts"));
        CU_ASSERT_EQUAL(t_end, T0 + 2500);
        /* it was a later run, continued from the first */
        CU_ASSERT_PTR_NOT_NULL(json_string_value(
            json_object_get(first_event(env, "e"), "continued_from_run_id")));
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static CU_TestInfo tests[] = {
    {"test_continue_as_new_carries_the_total_and_every_signal",
     test_continue_as_new_carries_the_total_and_every_signal},
    {"test_continue_as_new_restores_and_drops_repeats",
     test_continue_as_new_restores_and_drops_repeats},
    {"test_continue_as_new_in_a_tight_loop",
     test_continue_as_new_in_a_tight_loop},
    {"test_run_timeout_terminates_the_run",
     test_run_timeout_terminates_the_run},
    {"test_execution_timeout_spans_continue_as_new",
     test_execution_timeout_spans_continue_as_new},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("continue", tests)

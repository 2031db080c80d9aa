/*
 * bench_workflows.c: the workflow module the benchmarks load into
 * keel-orchestrator (--workflows build-bench/lib/libkeel_bench_workflows.so).
 *
 *  - "bench3": the payment example's shape without its refund window:
 *    three activities in a row (a1, a2, a3 on the "bench" queue, run by
 *    keel-bench-worker, which does no work in them), then completes.
 *  - "benchsleep": sleeps input.sleep_ms (default one day) on a durable
 *    timer, then completes: an open workflow waiting on a timer, for the
 *    memory benchmark.
 */
#include <keel/keel.h>

#define BENCH_QUEUE "bench"

int keel_module_init(keel_registry_t *reg);

static const keel_activity_options_t opts = {
    .task_queue = BENCH_QUEUE,
    .start_to_close_ms = 60000,
    .retry = {.initial_interval_ms = 1000, .maximum_attempts = 5},
};

static keel_err_t bench3(keel_wf_t *wf, const json_t *input, json_t **result)
{
        static const char *const steps[] = {"a1", "a2", "a3"};
        json_t *in = (json_t *)input;

        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                int rc =
                    keel_activity(wf, steps[i], json_incref(in), &opts, NULL);
                if (rc == KEEL_ERR_CANCELLED)
                        return rc;
                if (rc)
                        return keel_fail(wf, "StepFailed",
                                         keel_wf_failure(wf)->message, NULL);
        }
        *result = json_pack("{ss}", "status", "completed");
        return KEEL_OK;
}

static keel_err_t benchsleep(keel_wf_t *wf, const json_t *input,
                             json_t **result)
{
        json_int_t ms = json_integer_value(json_object_get(input, "sleep_ms"));
        int rc = keel_sleep(wf, ms > 0 ? ms : 24LL * 3600 * 1000);
        if (rc)
                return rc;
        *result = json_pack("{ss}", "status", "woke");
        return KEEL_OK;
}

int keel_module_init(keel_registry_t *reg)
{
        int rc = keel_workflow_register(reg, "bench3", bench3);
        return rc ? rc : keel_workflow_register(reg, "benchsleep", benchsleep);
}

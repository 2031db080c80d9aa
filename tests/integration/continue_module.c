/*
 * continue_module.c: the workflow module of test_continue_e2e, loaded by
 * keel-orchestrator (--workflows build/lib/libkeel_test_continue_workflows.so).
 * "counter" adds the "add" signals it takes, input "batch" per run, and
 * after each batch sleeps input "sleep_ms" (signals arriving meanwhile are
 * the run's, untaken) and continues as new with the running total; it
 * completes once the total reaches input "until", with the total and the
 * number of runs. "sleeper" sleeps for its input's milliseconds. "looper"
 * continues as new at once with its input plus one, until 50. test_continue
 * (a unit test) registers the same types.
 */
#include "keel/keel.h"

int keel_module_init(keel_registry_t *reg);

static keel_err_t counter(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_int_t total = json_integer_value(json_object_get(input, "total"));
        json_int_t batch = json_integer_value(json_object_get(input, "batch"));
        json_int_t runs = json_integer_value(json_object_get(input, "runs"));
        json_int_t until = json_integer_value(json_object_get(input, "until"));
        json_int_t sleep_ms =
            json_integer_value(json_object_get(input, "sleep_ms"));

        for (json_int_t i = 0; i < batch; i++) {
                json_t *p = NULL;
                if (keel_wait_signal(wf, "add", -1, &p))
                        return KEEL_ERR_CANCELLED;
                total += json_integer_value(json_object_get(p, "n"));
                if (total >= until) {
                        *result = json_pack("{sI sI}", "total", total, "runs",
                                            runs + 1);
                        return KEEL_OK;
                }
        }
        if (keel_sleep(wf, sleep_ms) == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        return keel_continue_as_new(wf, json_pack("{sI sI sI sI sI}", "total",
                                                  total, "batch", batch, "runs",
                                                  runs + 1, "until", until,
                                                  "sleep_ms", sleep_ms));
}

static keel_err_t sleeper(keel_wf_t *wf, const json_t *input, json_t **result)
{
        if (keel_sleep(wf, json_integer_value(input)) == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        *result = json_pack("{ss}", "status", "woke");
        return KEEL_OK;
}

static keel_err_t looper(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_int_t n = json_integer_value(input);
        if (n >= 50) {
                *result = json_integer(n);
                return KEEL_OK;
        }
        return keel_continue_as_new(wf, json_integer(n + 1));
}

int keel_module_init(keel_registry_t *reg)
{
        int rc = keel_workflow_register(reg, "counter", counter);
        if (!rc)
                rc = keel_workflow_register(reg, "sleeper", sleeper);
        return rc ? rc : keel_workflow_register(reg, "looper", looper);
}

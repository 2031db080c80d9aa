/*
 * child_module.c: the workflow module of test_child_e2e, loaded by
 * keel-orchestrator (--workflows build/lib/libkeel_test_child_workflows.so).
 * "fanout" starts one "square" child per entry of its input "children"
 * ({"id", "n"}), each with the workflow ID given (so that it lands on a
 * partition of its own), waits for all of them and completes with the sum
 * of their results. "square" sleeps input "sleep_ms", then completes with
 * n * n. "keeper" starts a "waiter" child per entry of input "children"
 * ({"id", "policy": "terminate" | "cancel" | "abandon"}) and waits for the
 * signal "finish" (or its cancellation); a "waiter" waits for "go".
 */
#include "keel/keel.h"

#include <string.h>

int keel_module_init(keel_registry_t *reg);

static keel_err_t fanout(keel_wf_t *wf, const json_t *input, json_t **result)
{
        const json_t *kids = json_object_get(input, "children");
        keel_future_t *fs[32];
        json_int_t sum = 0;
        size_t i, n = json_array_size(kids);
        const json_t *k;

        if (n > 32)
                return keel_fail(wf, "TooManyChildren", "at most 32", NULL);
        json_array_foreach(kids, i, k)
        {
                keel_child_options_t o = {
                    .workflow_id = json_string_value(json_object_get(k, "id"))};
                fs[i] = keel_start_child(
                    wf, "square",
                    json_pack("{sO sO}", "n", json_object_get(k, "n"),
                              "sleep_ms", json_object_get(input, "sleep_ms")),
                    &o);
        }
        for (i = 0; i < n; i++) {
                json_t *r = NULL;
                int rc = keel_await(wf, fs[i], &r);
                if (rc == KEEL_ERR_CANCELLED)
                        return KEEL_ERR_CANCELLED;
                if (rc)
                        return keel_fail(wf, "ChildFailed",
                                         keel_wf_failure(wf)->message, NULL);
                sum += json_integer_value(json_object_get(r, "n"));
        }
        *result = json_pack("{ss sI}", "status", "summed", "sum", sum);
        return KEEL_OK;
}

static keel_err_t square(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_int_t n = json_integer_value(json_object_get(input, "n"));
        if (keel_sleep(wf, json_integer_value(json_object_get(
                               input, "sleep_ms"))) == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        *result = json_pack("{ss sI}", "status", "squared", "n", n * n);
        return KEEL_OK;
}

static keel_err_t waiter(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        if (keel_wait_signal(wf, "go", -1, NULL) == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        *result = json_pack("{ss}", "status", "went");
        return KEEL_OK;
}

static keel_err_t keeper(keel_wf_t *wf, const json_t *input, json_t **result)
{
        size_t i;
        const json_t *k;
        json_array_foreach(json_object_get(input, "children"), i, k)
        {
                const char *pol =
                    json_string_value(json_object_get(k, "policy"));
                keel_child_options_t o = {
                    .workflow_id = json_string_value(json_object_get(k, "id")),
                    .parent_close_policy =
                        !pol || !strcmp(pol, "terminate")
                            ? KEEL_PARENT_CLOSE_TERMINATE
                        : !strcmp(pol, "cancel")
                            ? KEEL_PARENT_CLOSE_REQUEST_CANCEL
                            : KEEL_PARENT_CLOSE_ABANDON};
                keel_start_child(wf, "waiter", NULL, &o);
        }
        if (keel_wait_signal(wf, "finish", -1, NULL) == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        *result = json_pack("{ss}", "status", "finished");
        return KEEL_OK;
}

int keel_module_init(keel_registry_t *reg)
{
        int rc = keel_workflow_register(reg, "fanout", fanout);
        if (!rc)
                rc = keel_workflow_register(reg, "square", square);
        if (!rc)
                rc = keel_workflow_register(reg, "waiter", waiter);
        return rc ? rc : keel_workflow_register(reg, "keeper", keeper);
}

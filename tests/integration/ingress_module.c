/*
 * ingress_module.c: the workflow module of test_ingress_e2e, loaded by
 * keel-orchestrator (--workflows build/lib/libkeel_test_ingress_workflows.so).
 * Workflow type "order" is what an ingress starts from a record of the
 * test's orders topic: its input is the record's value. An order with
 * "hold": true waits up to two minutes for the signal "paid" (which an
 * ingress sends from a record of the payments topic) and completes with
 * status "paid" and the signal's amount; any other completes at once with
 * status "accepted", echoing the order's ID and amount, so the test can
 * check that each workflow got its own record's value.
 */
#include "keel/keel.h"

int keel_module_init(keel_registry_t *reg);

static keel_err_t order(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_t *paid = NULL;
        int rc;

        if (!json_is_true(json_object_get(input, "hold"))) {
                *result = json_pack("{ss sO* sO*}", "status", "accepted",
                                    "order", json_object_get(input, "order_id"),
                                    "amount", json_object_get(input, "amount"));
                return KEEL_OK;
        }
        rc = keel_wait_signal(wf, "paid", 120000, &paid);
        if (rc == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        if (rc) {
                *result = json_pack("{ss}", "status", "unpaid");
                return KEEL_OK;
        }
        *result = json_pack("{ss sO* sO*}", "status", "paid", "order",
                            json_object_get(input, "order_id"), "paid",
                            json_object_get(paid, "amount"));
        return KEEL_OK;
}

int keel_module_init(keel_registry_t *reg)
{
        return keel_workflow_register(reg, "order", order);
}

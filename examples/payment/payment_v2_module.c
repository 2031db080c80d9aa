/*
 * payment_v2_module.c: a broken deployment of the payment workflow, as a
 * keel-orchestrator module (libkeel_payment_workflows_v2.so) for the
 * non-determinism test. It registers the same type, "payment", but
 * reserves stock before charging the card: a code change that runs
 * differently from the histories of payments already under way, so their
 * replay must stop with a non-determinism error (the run is blocked, not
 * failed) until the original code is deployed again. New payments would
 * run with it; it is never meant for the demo.
 */
#include "payment.h"

int keel_module_init(keel_registry_t *reg);

static const keel_activity_options_t opts = {
    .task_queue = PAYMENT_QUEUE,
    .start_to_close_ms = 10000,
    .retry = {.initial_interval_ms = 1000, .maximum_attempts = 5},
};

static keel_err_t payment_v2(keel_wf_t *wf, const json_t *input,
                             json_t **result)
{
        json_t *in = (json_t *)input;
        int rc;

        /* The change: stock first, then the card. */
        rc =
            keel_activity(wf, "reserveInventory", json_incref(in), &opts, NULL);
        if (rc == KEEL_OK)
                rc = keel_activity(wf, "chargeCard", json_incref(in), &opts,
                                   NULL);
        if (rc == KEEL_OK)
                rc = keel_activity(wf, "sendReceipt", json_incref(in), &opts,
                                   NULL);
        if (rc)
                return rc;
        *result = json_pack("{ss}", "status", "completed");
        return KEEL_OK;
}

int keel_module_init(keel_registry_t *reg)
{
        return keel_workflow_register(reg, PAYMENT_WORKFLOW, payment_v2);
}

/*
 * orders_module.c: the orders example, a workflow module for
 * keel-orchestrator (--workflows lib/libkeel_orders_workflows.so) that
 * an ingress starts from the records of an `orders` topic
 * (examples/orders/routes.json; docs/streams.md). Workflow type
 * "order-payment" charges the order's card with the payment example's
 * chargeCard activity (queue "payments", run by keel-payment-worker),
 * then tells the rest of the company on `payments.completed`, keyed by
 * the order, in the same transaction as the step: status "charged" with
 * the charge, or "declined" with the reason.
 */
#include <keel/keel.h>

int keel_module_init(keel_registry_t *reg);

static const keel_activity_options_t charge_opts = {
    .task_queue = "payments",
    .start_to_close_ms = 10000,
    .retry = {.initial_interval_ms = 1000, .maximum_attempts = 5}};

static keel_err_t order_payment(keel_wf_t *wf, const json_t *input,
                                json_t **result)
{
        json_t *in = (json_t *)input, *charge = NULL;
        const json_t *amount = json_object_get(input, "amount");
        const char *status = "charged";
        int rc;

        rc = keel_activity(wf, "chargeCard", json_incref(in), &charge_opts,
                           &charge);
        if (rc == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        if (rc)
                status = "declined";
        rc = keel_emit(wf, "payments.completed", keel_wf_id(wf),
                       json_pack("{ss sO* ss sO* ss*}", "order", keel_wf_id(wf),
                                 "amount", (json_t *)amount, "status", status,
                                 "charge", charge, "reason",
                                 charge ? NULL : keel_wf_failure(wf)->message));
        if (rc)
                return keel_fail(wf, "EmitRefused", keel_err_name(rc), NULL);
        if (!charge)
                return keel_fail(wf, "ChargeFailed",
                                 keel_wf_failure(wf)->message, NULL);
        *result = json_pack("{ss sO}", "status", status, "charge", charge);
        return KEEL_OK;
}

int keel_module_init(keel_registry_t *reg)
{
        return keel_workflow_register(reg, "order-payment", order_payment);
}

/*
 * payment_workflow.c: the payment workflow (payment.h), plain C on keel's
 * workflow API. Input: {"order": "...", "card": "...", "amount": 4200,
 * "sku": "...", "refund_window_ms": optional, default 72 hours,
 * "start_to_close_ms": optional, every activity's start-to-close timeout,
 * default 10 s (tests shorten it to see a timeout and a retry soon),
 * "customer": optional, indexes the payment for listings (search
 * attributes CustomerId and Stage)}.
 */
#include "payment.h"

static const keel_activity_options_t default_opts = {
    .task_queue = PAYMENT_QUEUE,
    .start_to_close_ms = 10000,
    .retry = {.initial_interval_ms = 1000, .maximum_attempts = 5},
};

static json_t *done(const char *status)
{
        return json_pack("{ss}", "status", status);
}

/* Publish where the payment stands, for the projector and dashboard. */
static void stage(keel_wf_t *wf, const char *name, int64_t until)
{
        json_t *st = json_pack("{ss}", "stage", name);
        if (st && until)
                json_object_set_new(st, "refund_window_ends_ms",
                                    json_integer(until));
        keel_set_state(wf, st);
}

static keel_err_t pay(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_t *in = (json_t *)input;
        int64_t window = PAYMENT_REFUND_WINDOW_MS;
        keel_activity_options_t opts = default_opts;
        json_t *payload;
        int rc;

        if (json_is_integer(json_object_get(input, "refund_window_ms")))
                window = json_integer_value(
                    json_object_get(input, "refund_window_ms"));
        if (json_integer_value(json_object_get(input, "start_to_close_ms")) > 0)
                opts.start_to_close_ms = json_integer_value(
                    json_object_get(input, "start_to_close_ms"));

        stage(wf, "charging", 0);
        rc = keel_activity(wf, "chargeCard", json_incref(in), &opts, NULL);
        if (rc == KEEL_ERR_CANCELLED)
                return rc;
        if (rc)
                return keel_fail(wf, "ChargeFailed",
                                 keel_wf_failure(wf)->message, NULL);

        stage(wf, "reserving", 0);
        rc =
            keel_activity(wf, "reserveInventory", json_incref(in), &opts, NULL);
        if (rc) {
                /* Compensate: the card was charged. */
                keel_wf_log(wf, KEEL_LOG_WARN,
                            "msg=\"reserving failed, refunding\"");
                keel_activity(wf, "refundCard", json_incref(in), &opts, NULL);
                if (rc == KEEL_ERR_CANCELLED)
                        return rc;
                return keel_fail(wf, "InventoryUnavailable",
                                 keel_wf_failure(wf)->message, NULL);
        }

        rc = keel_activity(wf, "sendReceipt", json_incref(in), &opts, NULL);
        if (rc == KEEL_OK) {
                stage(wf, "refund_window", keel_now(wf) + window);
                rc = keel_wait_signal(wf, "refundApproved", window, &payload);
        }
        if (rc == KEEL_OK) {
                stage(wf, "refunding", 0);
                keel_activity(wf, "refundCard", json_incref(in), &opts, NULL);
                keel_activity(wf, "releaseInventory", json_incref(in), &opts,
                              NULL);
                *result = done("refunded");
                return KEEL_OK;
        }
        if (rc == KEEL_ERR_TIMEOUT) {
                keel_activity(wf, "markFulfilled", json_incref(in), &opts,
                              NULL);
                *result = done("completed");
                return KEEL_OK;
        }
        if (rc == KEEL_ERR_CANCELLED) {
                keel_activity(wf, "refundCard", json_incref(in), &opts, NULL);
                keel_activity(wf, "releaseInventory", json_incref(in), &opts,
                              NULL);
        }
        return rc;
}

/* Search attributes: the customer, and the stage the payment is at
 * ("charging" until it ends, then its outcome), so that
 * GET /api/v1/workflows?search=CustomerId=c-42&search=Stage=refunded
 * finds a customer's refunds. Only payments whose input names a customer
 * are indexed: no payment recorded before this code had one, so theirs
 * replay with the same commands as before. (Adding commands to runs
 * already under way needs keel_patched().) */
static void index_payment(keel_wf_t *wf, const json_t *input, const char *stage)
{
        const json_t *customer = json_object_get(input, "customer");
        if (json_is_string(customer))
                keel_upsert_search_attributes(
                    wf, json_pack("{sO ss}", "CustomerId", customer, "Stage",
                                  stage));
}

static keel_err_t payment(keel_wf_t *wf, const json_t *input, json_t **result)
{
        keel_err_t rc;
        index_payment(wf, input, "charging");
        rc = pay(wf, input, result);
        index_payment(wf, input,
                      rc == KEEL_OK ? json_string_value(
                                          json_object_get(*result, "status"))
                      : rc == KEEL_ERR_CANCELLED ? "cancelled"
                                                 : "failed");
        return rc;
}

int payment_register_workflow(keel_registry_t *reg)
{
        return keel_workflow_register(reg, PAYMENT_WORKFLOW, payment);
}

/* ---- the next release (payment_v3_module.c) ---------------------------- */

/* "payment" with a fraud check before the charge, behind a patch: runs
 * already past that point (every recorded payment) keep the old path; new
 * runs wait for the (simulated) check, a short durable timer, first. */
static keel_err_t payment_fraud_checked(keel_wf_t *wf, const json_t *input,
                                        json_t **result)
{
        if (keel_patched(wf, "fraud-check")) {
                int rc = keel_sleep(wf, 50);
                if (rc)
                        return rc;
        }
        return payment(wf, input, result);
}

/* "payment-saga": the payment's steps with their compensations in a saga,
 * then a wait for "shipped". A failure or a cancellation undoes what was
 * done, the last step first. */
static keel_err_t payment_saga(keel_wf_t *wf, const json_t *input,
                               json_t **result)
{
        json_t *in = (json_t *)input;
        keel_saga_t *saga = keel_saga_new(wf);
        keel_activity_options_t opts = default_opts;
        int rc;

        rc = keel_activity(wf, "chargeCard", json_incref(in), &opts, NULL);
        if (rc)
                return rc == KEEL_ERR_CANCELLED
                           ? rc
                           : keel_fail(wf, "ChargeFailed",
                                       keel_wf_failure(wf)->message, NULL);
        keel_saga_add(saga, "refundCard", json_incref(in), &opts);
        rc =
            keel_activity(wf, "reserveInventory", json_incref(in), &opts, NULL);
        if (rc == KEEL_OK) {
                keel_saga_add(saga, "releaseInventory", json_incref(in), &opts);
                stage(wf, "awaiting_shipment", 0);
                rc = keel_wait_signal(wf, "shipped", -1, NULL);
        }
        if (rc == KEEL_OK) {
                *result = done("shipped");
                return KEEL_OK;
        }
        stage(wf, "compensating", 0);
        keel_saga_compensate(saga, 0);
        if (rc == KEEL_ERR_CANCELLED)
                return rc;
        return keel_fail(wf, "InventoryUnavailable",
                         keel_wf_failure(wf)->message, NULL);
}

int payment_register_v3(keel_registry_t *reg)
{
        int rc = keel_workflow_register(reg, PAYMENT_WORKFLOW,
                                        payment_fraud_checked);
        return rc ? rc
                  : keel_workflow_register(reg, "payment-saga", payment_saga);
}

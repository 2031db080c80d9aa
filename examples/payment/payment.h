/*
 * payment.h: the payment example. A workflow charges a card, reserves
 * stock and sends a receipt, then waits up to 72 hours for a
 * refundApproved signal: with it, refund and release the stock
 * ("refunded"); without it, mark the order fulfilled ("completed"). If
 * reserving stock fails after the charge, the charge is refunded and the
 * workflow fails. Its activities record every side effect, keyed by the
 * activity's idempotency key, in an effect log, so tests can count them.
 */
#ifndef KEEL_EXAMPLE_PAYMENT_H
#define KEEL_EXAMPLE_PAYMENT_H

#include "worker_main.h"

#include <keel/keel.h>

#define PAYMENT_WORKFLOW         "payment"
#define PAYMENT_QUEUE            "payments"
#define PAYMENT_REFUND_WINDOW_MS (72LL * 3600 * 1000)

/* Register the "payment" workflow type. */
int payment_register_workflow(keel_registry_t *reg);

/* The next release, for tests of deploying it: "payment" with a patched
 * fraud check (keel_patched) and "payment-saga" (compensations through
 * keel_saga_*). */
int payment_register_v3(keel_registry_t *reg);

/* The activities, for workers and tests. opaque is the effect log
 * (effects.h) they record their side effects in, or NULL. */
int payment_charge_card(keel_activity_ctx_t *ctx, const json_t *input,
                        json_t **result);
int payment_reserve_inventory(keel_activity_ctx_t *ctx, const json_t *input,
                              json_t **result);
int payment_send_receipt(keel_activity_ctx_t *ctx, const json_t *input,
                         json_t **result);
int payment_refund_card(keel_activity_ctx_t *ctx, const json_t *input,
                        json_t **result);
int payment_release_inventory(keel_activity_ctx_t *ctx, const json_t *input,
                              json_t **result);
int payment_mark_fulfilled(keel_activity_ctx_t *ctx, const json_t *input,
                           json_t **result);

/* The activities by name, to register with a worker or test environment. */
typedef example_activity_t payment_activity_t;
extern const payment_activity_t payment_activities[];
extern const size_t payment_activities_cnt;

#endif

/*
 * payment_activities.c: the payment example's activities. The "side
 * effects" are lines in an effect log (effects.h), keyed by the activity's
 * idempotency key: an effect already in the log is not made twice, which
 * is how a real activity uses the key with its payment provider.
 * Input fields that make them fail, for tests and the demo:
 * "decline": true (chargeCard fails, non-retryable), "out_of_stock": true
 * (reserveInventory fails, non-retryable), "flaky": N (every activity
 * fails its first N attempts with a retryable error). "slow_ms": N (every
 * activity, on every attempt, sleeps N ms before its effect, like a slow
 * provider: time for a test to kill the worker mid-activity; a declined
 * card or a missing item still fails at once).
 */
#include "payment.h"

#include "effects.h"

#include <errno.h>
#include <time.h>

static int flaky(keel_activity_ctx_t *ctx, const json_t *input)
{
        json_int_t n = json_integer_value(json_object_get(input, "flaky"));
        if (keel_activity_attempt(ctx) <= n)
                return keel_activity_fail(ctx, "TransientError",
                                          "the service is busy", NULL, 0);
        return KEEL_OK;
}

/* "slow_ms": a provider that takes its time (on this handler thread). */
static void slow(const json_t *input)
{
        json_int_t ms = json_integer_value(json_object_get(input, "slow_ms"));
        struct timespec ts;
        if (ms <= 0)
                return;
        ts.tv_sec = (time_t)(ms / 1000);
        ts.tv_nsec = (long)(ms % 1000) * 1000000L;
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ; /* interrupted: sleep the rest */
}

static int simple(keel_activity_ctx_t *ctx, const json_t *input,
                  json_t **result, const char *what)
{
        int rc;
        slow(input);
        rc = flaky(ctx, input);
        if (rc)
                return rc;
        if ((rc = example_effect(ctx)))
                return rc;
        *result = json_pack("{ss ss}", "done", what, "key",
                            keel_activity_idempotency_key(ctx));
        return KEEL_OK;
}

int payment_charge_card(keel_activity_ctx_t *ctx, const json_t *input,
                        json_t **result)
{
        if (json_is_true(json_object_get(input, "decline")))
                return keel_activity_fail(ctx, "CardDeclined",
                                          "the card was declined", NULL, 1);
        return simple(ctx, input, result, "charged");
}

int payment_reserve_inventory(keel_activity_ctx_t *ctx, const json_t *input,
                              json_t **result)
{
        if (json_is_true(json_object_get(input, "out_of_stock")))
                return keel_activity_fail(ctx, "OutOfStock",
                                          "the item is out of stock", NULL, 1);
        return simple(ctx, input, result, "reserved");
}

int payment_send_receipt(keel_activity_ctx_t *ctx, const json_t *input,
                         json_t **result)
{
        return simple(ctx, input, result, "sent");
}

int payment_refund_card(keel_activity_ctx_t *ctx, const json_t *input,
                        json_t **result)
{
        return simple(ctx, input, result, "refunded");
}

int payment_release_inventory(keel_activity_ctx_t *ctx, const json_t *input,
                              json_t **result)
{
        return simple(ctx, input, result, "released");
}

int payment_mark_fulfilled(keel_activity_ctx_t *ctx, const json_t *input,
                           json_t **result)
{
        return simple(ctx, input, result, "fulfilled");
}

const payment_activity_t payment_activities[] = {
    {"chargeCard", payment_charge_card},
    {"reserveInventory", payment_reserve_inventory},
    {"sendReceipt", payment_send_receipt},
    {"refundCard", payment_refund_card},
    {"releaseInventory", payment_release_inventory},
    {"markFulfilled", payment_mark_fulfilled},
};
const size_t payment_activities_cnt =
    sizeof(payment_activities) / sizeof(payment_activities[0]);

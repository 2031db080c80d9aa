/*
 * payment_activities.c: the payment example's activities. The "side
 * effects" are lines in an effect log, keyed by the activity's
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

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct payment_effects_s {
        FILE *f;
        pthread_mutex_t lock;
        char **keys; /* effects made: "<activity>\t<key>" */
        size_t n, cap;
};

payment_effects_t *payment_effects_open(const char *path)
{
        payment_effects_t *fx = calloc(1, sizeof(*fx));
        char line[1024];
        if (!fx)
                return NULL;
        pthread_mutex_init(&fx->lock, NULL);
        if (!path)
                return fx;
        fx->f = fopen(path, "a+");
        if (!fx->f) {
                payment_effects_close(fx);
                return NULL;
        }
        rewind(fx->f);
        while (fgets(line, sizeof(line), fx->f)) {
                line[strcspn(line, "\n")] = '\0';
                if (fx->n == fx->cap) {
                        size_t cap = fx->cap ? fx->cap * 2 : 64;
                        char **k = realloc(fx->keys, cap * sizeof(*k));
                        if (!k)
                                break;
                        fx->keys = k;
                        fx->cap = cap;
                }
                fx->keys[fx->n++] = strdup(line);
        }
        return fx;
}

void payment_effects_close(payment_effects_t *fx)
{
        if (!fx)
                return;
        if (fx->f)
                fclose(fx->f);
        for (size_t i = 0; i < fx->n; i++)
                free(fx->keys[i]);
        free(fx->keys);
        pthread_mutex_destroy(&fx->lock);
        free(fx);
}

/* Make the effect once per idempotency key. */
static int effect(keel_activity_ctx_t *ctx)
{
        payment_effects_t *fx = keel_activity_opaque(ctx);
        char entry[700];
        int rc = KEEL_OK;

        if (!fx)
                return KEEL_OK;
        snprintf(entry, sizeof(entry), "%s\t%s", keel_activity_type(ctx),
                 keel_activity_idempotency_key(ctx));
        pthread_mutex_lock(&fx->lock);
        for (size_t i = 0; i < fx->n; i++)
                if (!strcmp(fx->keys[i], entry))
                        goto out; /* made already: idempotent */
        if (fx->n == fx->cap) {
                size_t cap = fx->cap ? fx->cap * 2 : 64;
                char **k = realloc(fx->keys, cap * sizeof(*k));
                if (!k) {
                        rc = KEEL_ERR_NOMEM;
                        goto out;
                }
                fx->keys = k;
                fx->cap = cap;
        }
        fx->keys[fx->n++] = strdup(entry);
        if (fx->f) {
                fprintf(fx->f, "%s\n", entry);
                fflush(fx->f);
        }
out:
        pthread_mutex_unlock(&fx->lock);
        return rc;
}

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
        if ((rc = effect(ctx)))
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

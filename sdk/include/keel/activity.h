/*
 * keel/activity.h: activity handlers, the code that does the side effects
 * (charge a card, send an email) a workflow asks for.
 *
 * A handler is `int fn(keel_activity_ctx_t *ctx, const json_t *input,
 * json_t **result)`. Return KEEL_OK with *result (a new reference, or NULL
 * for null) to complete; `return keel_activity_fail(ctx, ...)` to fail.
 * Activities are delivered at least once: a retry, or a worker that died
 * after the side effect but before its result was recorded, runs the same
 * activity again, so side effects should be made idempotent with
 * keel_activity_idempotency_key(), which is the same on every attempt:
 * "<workflow ID>/<run ID>/<activity ID>" (a later run of the same workflow
 * ID has keys of its own).
 * The same handlers run in workers (keel/worker.h) and in the test
 * environment (keel/testing.h).
 */
#ifndef KEEL_ACTIVITY_H
#define KEEL_ACTIVITY_H

#include "keel/error.h"

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct keel_activity_ctx_s keel_activity_ctx_t;

typedef int (*keel_activity_fn_t)(keel_activity_ctx_t *ctx, const json_t *input,
                                  json_t **result);

/* The task being run (strings owned by ctx, valid during the call). */
const char *keel_activity_workflow_id(const keel_activity_ctx_t *ctx);
const char *keel_activity_run_id(const keel_activity_ctx_t *ctx);
const char *keel_activity_id(const keel_activity_ctx_t *ctx);
const char *keel_activity_type(const keel_activity_ctx_t *ctx);

/* "<workflow ID>/<activity ID>": the same on every attempt. */
const char *keel_activity_idempotency_key(const keel_activity_ctx_t *ctx);

/* 1 for the first attempt, 2 for the first retry, ... */
int keel_activity_attempt(const keel_activity_ctx_t *ctx);

/* The opaque pointer given when the handler was registered. */
void *keel_activity_opaque(const keel_activity_ctx_t *ctx);

/* Details of the last heartbeat of an earlier attempt, to resume from
 * (owned by ctx; JSON null when none). */
const json_t *keel_activity_heartbeat_details(const keel_activity_ctx_t *ctx);

/* Report progress (details stolen; may be NULL). Resets the heartbeat
 * timeout; the details reach the next attempt. Returns KEEL_OK, or
 * KEEL_ERR_CANCELLED when the activity should stop: its workflow was asked
 * to cancel or has closed (or, in a worker, the task is no longer its).
 * Cancellation reaches a handler only this way, so a long activity should
 * heartbeat; on KEEL_ERR_CANCELLED it cleans up and returns, with
 * keel_activity_fail() or with KEEL_ERR_CANCELLED itself, which fails it
 * with the non-retryable type "Cancelled". */
int keel_activity_heartbeat(keel_activity_ctx_t *ctx, json_t *details);

/* Record a failure (details stolen; may be NULL) and return
 * KEEL_ERR_ACTIVITY_FAILED: `return keel_activity_fail(...)`. A
 * non-retryable failure, or one whose type the retry policy lists, is
 * final; others are retried per the policy. */
int keel_activity_fail(keel_activity_ctx_t *ctx, const char *type,
                       const char *message, json_t *details, int non_retryable);

#ifdef __cplusplus
}
#endif
#endif

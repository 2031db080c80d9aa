/*
 * keel/workflow.h: workflows as plain C functions.
 *
 * A workflow is `keel_err_t fn(keel_wf_t *wf, const json_t *input,
 * json_t **result)`. Calls such as keel_activity(), keel_sleep() and
 * keel_wait_signal() look blocking. keel runs the function again from the
 * start every time something it waits for happens: on this replay each call
 * returns the result recorded in the workflow's history, and at the first
 * call whose result is not there yet the function is suspended (it does not
 * return; keel unwinds it) and the commands it issued are recorded.
 *
 * So workflow code must be deterministic: the same input and the same
 * recorded results must issue the same commands in the same order. Take
 * time, randomness and IDs from keel_now(), keel_random(), keel_uuid() and
 * keel_side_effect(), never from the system. A replay that issues a command
 * other than the recorded one is a non-determinism error: the workflow is
 * blocked (not failed) with a message naming the event, and resumes when
 * fixed code is deployed.
 *
 * Memory: since a suspended function never returns, anything it allocated
 * itself would leak. Take memory from the run's arena (keel_alloc(),
 * keel_strdup()) and hand JSON values to keel_own(); every keel call that
 * takes a json_t * input steals the reference. The arena is freed in one go
 * when the run stops. JSON results keel hands back are owned by the arena.
 *
 * Everything here is called from workflow code, on the thread that runs
 * it. The results of failed calls are described in each declaration.
 */
#ifndef KEEL_WORKFLOW_H
#define KEEL_WORKFLOW_H

#include "keel/error.h"
#include "keel/log.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct keel_wf_s keel_wf_t;
typedef struct keel_future_s keel_future_t;
typedef struct keel_registry_s keel_registry_t;

/* A workflow function. Return KEEL_OK with *result set (a new reference,
 * or NULL for a JSON null) to complete; `return keel_fail(...)` to fail;
 * return KEEL_ERR_CANCELLED (after cleaning up) to end as cancelled. */
typedef keel_err_t (*keel_workflow_fn_t)(keel_wf_t *wf, const json_t *input,
                                         json_t **result);

/* ---- registry ---------------------------------------------------------- */

/* A new registry of workflow types; NULL if out of memory. Besides the
 * types registered in it, every registry knows the built-in type
 * "keel.schedule" (schedules, docs/concepts.md). */
keel_registry_t *keel_registry_new(void);

/* Frees reg; accepts NULL. */
void keel_registry_destroy(keel_registry_t *reg);

/* Register workflow type `type` (copied). KEEL_ERR_INVALID_ARG for an
 * empty name, one already registered or a built-in one. */
int keel_workflow_register(keel_registry_t *reg, const char *type,
                           keel_workflow_fn_t fn);

/* ---- activities -------------------------------------------------------- */

/* Temporal's retry policy. Zero fields take the defaults: 1 s initial
 * interval, backoff x2, maximum interval 100x the initial one, unlimited
 * attempts. */
typedef struct keel_retry_policy_s {
        int64_t initial_interval_ms;
        double backoff_coefficient;
        int64_t maximum_interval_ms;
        int32_t maximum_attempts; /* 0: unlimited; 1: no retries */
        const char *const *non_retryable_error_types; /* never retried */
        size_t non_retryable_error_types_cnt;
} keel_retry_policy_t;

/* How an activity runs. Zero fields take defaults: task queue "default";
 * start-to-close 60 s unless schedule-to-close is set; no other timeouts. */
typedef struct keel_activity_options_s {
        const char *task_queue;
        int64_t schedule_to_start_ms;
        int64_t start_to_close_ms;
        int64_t schedule_to_close_ms;
        int64_t heartbeat_ms;
        keel_retry_policy_t retry;
        /* 1: the workflow's cancellation does not stop it (no
         * ActivityCancel, retries go on); for compensations, which the
         * saga helper schedules so. It still ends when the run closes. */
        int non_cancellable;
} keel_activity_options_t;

/* Why an activity (or the workflow) failed. */
typedef struct keel_failure_s {
        const char *type; /* "CardDeclined", "StartToCloseTimeout", ... */
        const char *message;
        const json_t *details; /* JSON, never NULL (null when none) */
        int non_retryable;
} keel_failure_t;

/*
 * Run activity `name` with `input` (stolen; NULL for null) and wait for it.
 * KEEL_OK: *result is its result (owned by the run's arena).
 * KEEL_ERR_ACTIVITY_FAILED: it failed for good (retries exhausted, a
 * non-retryable error, a timeout); keel_wf_failure() says why, and the
 * workflow may compensate. KEEL_ERR_CANCELLED: the workflow was asked to
 * cancel while waiting. opts may be NULL.
 */
int keel_activity(keel_wf_t *wf, const char *name, json_t *input,
                  const keel_activity_options_t *opts, json_t **result);

/* The same, without waiting: returns a future to keel_await() or
 * keel_select() (owned by the run). */
keel_future_t *keel_activity_async(keel_wf_t *wf, const char *name,
                                   json_t *input,
                                   const keel_activity_options_t *opts);

/* The failure behind the last KEEL_ERR_ACTIVITY_FAILED (owned by the run;
 * NULL before any). */
const keel_failure_t *keel_wf_failure(keel_wf_t *wf);

/* ---- saga: compensations ------------------------------------------------ */

/*
 * A saga undoes completed steps when a later one fails or the workflow is
 * cancelled:
 *
 *   keel_saga_t *saga = keel_saga_new(wf);
 *   if (keel_activity(wf, "chargeCard", in, &o, NULL)) return ...;
 *   keel_saga_add(saga, "refundCard", in2, &o);
 *   if (keel_activity(wf, "reserveInventory", in3, &o, NULL)) {
 *           keel_saga_compensate(saga, 0);   // refundCard
 *           return keel_fail(wf, ...);
 *   }
 *
 * Each compensation is an activity, durable like any other: it runs once
 * the workflow gets there, retried by its options, through crashes.
 */
typedef struct keel_saga_s keel_saga_t;

/* A new, empty saga (owned by the run). */
keel_saga_t *keel_saga_new(keel_wf_t *wf);

/* Register the compensation of the step that just completed: activity
 * `name` with `input` (stolen; NULL for null) and opts (copied, with its
 * task queue; NULL: defaults), scheduled as not cancellable. */
void keel_saga_add(keel_saga_t *s, const char *name, json_t *input,
                   const keel_activity_options_t *opts);

/* How many compensations are registered and not yet run. */
size_t keel_saga_size(const keel_saga_t *s);

/*
 * Run the registered compensations, the last registered first: one after
 * the other, or with `parallel` all at once (scheduled in that order).
 * A cancellation request that arrives meanwhile does not stop them. Then
 * the saga is empty. KEEL_OK when every compensation completed, else
 * KEEL_ERR_ACTIVITY_FAILED for the first that failed for good
 * (keel_wf_failure() says why; the others still ran).
 */
int keel_saga_compensate(keel_saga_t *s, int parallel);

/* ---- timers, signals, futures ----------------------------------------- */

/* A durable timer firing after ms milliseconds (ms <= 0: at once). */
keel_future_t *keel_timer(keel_wf_t *wf, int64_t ms);

/* Sleep for ms milliseconds of durable time. KEEL_OK, or
 * KEEL_ERR_CANCELLED if the workflow was asked to cancel meanwhile. */
int keel_sleep(keel_wf_t *wf, int64_t ms);

/* A future for the next signal `name`. Signals that arrive before anyone
 * waits are buffered, in order; each is received once. */
keel_future_t *keel_signal(keel_wf_t *wf, const char *name);

/*
 * Wait for the next signal `name` for up to timeout_ms (< 0: forever).
 * KEEL_OK with *payload (owned by the run; may be NULL if not wanted),
 * KEEL_ERR_TIMEOUT, or KEEL_ERR_CANCELLED.
 */
int keel_wait_signal(keel_wf_t *wf, const char *name, int64_t timeout_ms,
                     json_t **payload);

/*
 * Wait for f. KEEL_OK with *result (owned by the run; result may be NULL
 * if not wanted); for an activity future, KEEL_ERR_ACTIVITY_FAILED as for
 * keel_activity(); KEEL_ERR_CANCELLED if the workflow was asked to cancel
 * before f resolved. Awaiting a resolved future again gives the same.
 */
int keel_await(keel_wf_t *wf, keel_future_t *f, json_t **result);

/*
 * Wait until the first of n futures resolves; *ready is its index (the one
 * whose result was recorded first). Then keel_await(fs[*ready]) returns at
 * once. KEEL_OK or KEEL_ERR_CANCELLED.
 */
int keel_select(keel_wf_t *wf, keel_future_t *const *fs, size_t n,
                size_t *ready);

/* Ask a pending timer not to fire (no-op when fired or cancelled). */
void keel_timer_cancel(keel_wf_t *wf, keel_future_t *timer);

/* ---- determinism ------------------------------------------------------- */

/* The workflow's current time, in ms since the epoch: when the event that
 * woke it was recorded. The same on every replay. */
int64_t keel_now(keel_wf_t *wf);

/* A deterministic random number (seeded by the run ID). */
uint64_t keel_random(keel_wf_t *wf);

/* A deterministic random UUID, written to out as 36 chars + NUL. */
void keel_uuid(keel_wf_t *wf, char out[37]);

/*
 * Run fn once and record its result; replays return the recorded result
 * without calling fn. fn returns a new reference (NULL for null). *result
 * is owned by the run.
 */
int keel_side_effect(keel_wf_t *wf, json_t *(*fn)(void *opaque), void *opaque,
                     json_t **result);

/*
 * Versioning: change running code without breaking running workflows.
 *
 *   if (keel_patched(wf, "fraud-check"))
 *           keel_activity(wf, "checkFraud", ...);   // the new code
 *   keel_activity(wf, "chargeCard", ...);
 *
 * keel_patched() returns 1 for runs that reach this point under the new
 * code (it records a MarkerRecorded "patch" with the change ID, once per
 * run), and 0 for runs whose history got past this point under the old
 * code (no marker there), which must keep the old path. Every call with
 * the same ID in a run gives the same answer.
 *
 * Once no run that took the old path is left, replace the call with
 * keel_deprecate_patch(wf, "fraud-check") and keep only the new path: it
 * accepts the recorded marker on replay and records nothing new. Once no
 * run with the marker is left, remove it. `keel replay` over recorded
 * histories tells whether a step is safe.
 */
int keel_patched(keel_wf_t *wf, const char *change_id);
void keel_deprecate_patch(keel_wf_t *wf, const char *change_id);

/*
 * Publish `state` (stolen; NULL: JSON null) as the workflow's current
 * state: what the projector serves as "state" and the dashboard shows,
 * without running workflow code (the query of other systems). It is
 * recorded in history (a MarkerRecorded "state"), so each call is one
 * event: publish when the state changes, not in a loop. Replays record
 * nothing new. Returns KEEL_OK.
 */
int keel_set_state(keel_wf_t *wf, json_t *state);

/* ---- search attributes ------------------------------------------------- */

/* Limits of a run's search attributes (Temporal's defaults). A name is 1
 * to KEEL_SEARCH_ATTR_NAME_MAX bytes of A-Z, a-z, 0-9 and _, not starting
 * with a digit. A value is a string (without NUL bytes), a number or a
 * boolean of at most KEEL_SEARCH_ATTR_VALUE_MAX bytes: a string's bytes, a
 * number's or boolean's JSON text. A set holds at most
 * KEEL_SEARCH_ATTRS_MAX_KEYS names, and at most KEEL_SEARCH_ATTRS_MAX_BYTES
 * bytes of names and values together. */
#define KEEL_SEARCH_ATTR_NAME_MAX   64
#define KEEL_SEARCH_ATTR_VALUE_MAX  2048
#define KEEL_SEARCH_ATTRS_MAX_KEYS  100
#define KEEL_SEARCH_ATTRS_MAX_BYTES 40960

/*
 * Search attributes are indexed key-values of a run, which the projector
 * lists workflows by (GET /api/v1/workflows?search=CustomerId=c-42) and
 * shows with each workflow, without running workflow code. A run starts
 * with those its start gave (keel_start_options_t.search_attributes, the
 * HTTP start's "search_attributes") and changes them with
 * keel_upsert_search_attributes(), Temporal's UpsertSearchAttributes:
 *
 *   keel_upsert_search_attributes(wf, json_pack("{ss sn}",
 *                                 "Stage", "shipped", "Carrier", ...));
 *
 * merges `attrs` (stolen), a JSON object, into the run's set: each name is
 * set to its value, a name whose value is null is removed, names not given
 * stay. It is recorded in history (a MarkerRecorded "search_attributes"
 * holding attrs), so each call is one event and, like keel_set_state(), a
 * command matched on replay: adding or moving a call is a code change
 * that needs keel_patched(). Replays record nothing new.
 *
 * KEEL_OK; KEEL_ERR_INVALID_ARG (nothing recorded, the set unchanged, the
 * reason logged) when attrs is not a non-empty object, a name or a value
 * breaks the rules above (an object or array as a value, say), or the set
 * after the merge would be over the limits. The answer depends only on
 * attrs and the run's set, so every replay gets the same one.
 */
int keel_upsert_search_attributes(keel_wf_t *wf, json_t *attrs);

/* The run's search attributes now: its start's, with the upserts so far
 * merged in. An object (empty if none), owned by the run, changed by the
 * next upsert. */
const json_t *keel_wf_search_attributes(keel_wf_t *wf);

/* ---- records to other topics ------------------------------------------- */

/*
 * Emit a record to the Kafka topic `topic`, e.g. an event other services
 * consume:
 *
 *   keel_emit(wf, "payments.completed", keel_wf_id(wf),
 *             json_pack("{ss si}", "order", id, "amount", amount));
 *
 * The record is a command recorded in history (a RecordEmitted event)
 * and produced in the same Kafka transaction as that event: a
 * read_committed consumer sees it once the step commits, exactly once,
 * and never if the step does not commit. Replays emit nothing again.
 *
 * key: UTF-8, copied; NULL for a record without a key. value (stolen;
 * NULL for null): the record's value is its JSON text as UTF-8 bytes (not
 * Avro: the topic is the user's, in the user's format). The partition is
 * murmur2 of the key, as Kafka's Java client and librdkafka's
 * murmur2_random partitioner choose it (of the keel-id for a record
 * without a key). The record carries the header
 * `keel-id: <workflow ID>/<run ID>/<seq>` (seq of the RecordEmitted
 * event), the same on every attempt to produce it: a consumer of a broker
 * that shows records of aborted transactions (the dev broker)
 * de-duplicates by it.
 *
 * The topic and key are the command's identity on replay: emitting to
 * another topic or with another key than the recorded one is a
 * non-determinism error; the value may change between versions. A topic
 * that does not exist when the record is produced does not stop the
 * workflow: the record goes to keel.dlq instead (docs/streams.md).
 *
 * KEEL_OK; KEEL_ERR_INVALID_ARG (nothing recorded) for a topic name Kafka
 * would reject or one of keel's own (keel.*, __*), a header named keel-id
 * or a partition < 0; KEEL_ERR_TOO_LARGE for a record over
 * KEEL_EMIT_MAX_BYTES.
 */
int keel_emit(keel_wf_t *wf, const char *topic, const char *key, json_t *value);

/* Key, value and headers of an emitted record together may take up to
 * this many bytes (Kafka's default record size limit is 1 MB). */
#define KEEL_EMIT_MAX_BYTES 900000

/* A header of an emitted record (both copied). */
typedef struct keel_emit_header_s {
        const char *name;
        const char *value;
} keel_emit_header_t;

/* keel_emit_ex() options; zero fields take keel_emit()'s behaviour. */
typedef struct keel_emit_options_s {
        int explicit_partition; /* 1: produce to `partition` */
        int32_t partition;
        const keel_emit_header_t *headers; /* added after keel-id */
        size_t headers_cnt;
} keel_emit_options_t;

/* keel_emit() with a partition of the caller's choice and headers of its
 * own (opts may be NULL). A partition the topic does not have sends the
 * record to keel.dlq, as a missing topic does. */
int keel_emit_ex(keel_wf_t *wf, const char *topic, const char *key,
                 json_t *value, const keel_emit_options_t *opts);

/* ---- the run ----------------------------------------------------------- */

const char *keel_wf_id(const keel_wf_t *wf);
const char *keel_wf_run_id(const keel_wf_t *wf);
const char *keel_wf_type(const keel_wf_t *wf);

/* 1 while the code is replaying recorded history, 0 once it runs new. */
int keel_wf_replaying(const keel_wf_t *wf);

/* n bytes from the run's arena (zeroed), freed when the run stops. Never
 * NULL: running out of memory stops the run, to be retried. */
void *keel_alloc(keel_wf_t *wf, size_t n);
char *keel_strdup(keel_wf_t *wf, const char *s);

/* Hand a JSON value to the run: released when the run stops. Returns j. */
json_t *keel_own(keel_wf_t *wf, json_t *j);

/* Log from workflow code: silent while replaying, so each line appears
 * once. */
void keel_wf_log(keel_wf_t *wf, keel_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- child workflows ------------------------------------------------ */

/* What happens to a child still open when its parent closes. */
typedef enum keel_parent_close_policy_e {
        KEEL_PARENT_CLOSE_TERMINATE = 0,  /* default: terminate the child */
        KEEL_PARENT_CLOSE_REQUEST_CANCEL, /* ask the child to cancel */
        KEEL_PARENT_CLOSE_ABANDON,        /* leave it running */
} keel_parent_close_policy_t;

typedef struct keel_child_options_s {
        /* The child's workflow ID; NULL: "<parent ID>/child-<n>-<run>",
         * the same on every replay. */
        const char *workflow_id;
        keel_parent_close_policy_t parent_close_policy;
} keel_child_options_t;

/*
 * Start child workflow `type` with `input` (stolen; NULL for null) and
 * return a future for its result (owned by the run) to keel_await() or
 * keel_select(). The child runs on its own workflow ID's partition, under
 * any orchestrator; its start is written in the same transaction as this
 * step. keel_await() gives KEEL_OK with the child's result, or
 * KEEL_ERR_WORKFLOW_FAILED when it failed, was cancelled, terminated, timed
 * out or could not start (its ID is in use): keel_wf_failure() says which
 * (type "ChildWorkflowFailed", "ChildWorkflowCancelled",
 * "ChildWorkflowTerminated", "ChildWorkflowTimedOut",
 * "ChildWorkflowStartFailed"; for a failure, the child's own type and
 * message). A cancel request to the parent is passed on to its open
 * children (except those it abandons). opts may be NULL.
 */
keel_future_t *keel_start_child(keel_wf_t *wf, const char *type, json_t *input,
                                const keel_child_options_t *opts);

/* keel_start_child() and keel_await() in one. */
int keel_child_workflow(keel_wf_t *wf, const char *type, json_t *input,
                        const keel_child_options_t *opts, json_t **result);

/*
 * Continue as new: close this run and start a fresh one of the same
 * workflow ID and type, with a new run ID, an empty history and `input`
 * (stolen; NULL: JSON null), as Temporal's continue-as-new does for
 * workflows that would otherwise grow their history without bound (a
 * loop of timers, a long stream of signals). Signals this run received
 * but its code did not take are delivered to the new run, in order, never
 * lost; its search attributes, timeouts and parent go along (the workflow
 * execution timeout counts from the first run's start). Returns
 * KEEL_ERR_CONTINUED_AS_NEW: `return keel_continue_as_new(wf, input);`.
 */
keel_err_t keel_continue_as_new(keel_wf_t *wf, json_t *input);

/* Record that the workflow fails with this error (details stolen; may be
 * NULL). Returns KEEL_ERR_WORKFLOW_FAILED: `return keel_fail(wf, ...)`. */
keel_err_t keel_fail(keel_wf_t *wf, const char *type, const char *message,
                     json_t *details);

#ifdef __cplusplus
}
#endif
#endif

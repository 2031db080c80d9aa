/*
 * keel/worker.h: the activity worker, the process side of keel/activity.h.
 *
 * A worker joins the consumer group `keel-worker-<queue>` on the topic
 * `keel.tasks.<queue>`, runs each ActivityTask with the handler registered
 * for its activity type on a pool of worker.concurrency threads (a slow
 * activity never holds up the others, even those of the same partition),
 * and sends the outcome to keel.inbox on the workflow's partition through
 * an idempotent producer. A task counts as finished once its result is
 * acknowledged by the broker; consumed offsets are committed only below
 * the lowest unfinished task of each partition, so a worker that dies
 * loses no task: it is run again by the next owner of the partition
 * (activities are at least once; see keel_activity_idempotency_key()).
 * The same topic carries ActivityCancel records, which the orchestrator
 * sends when a workflow is asked to cancel or closes while its activities
 * run: a task still queued here is not started (it fails with the
 * non-retryable type "Cancelled"), a running one learns of it from its
 * next heartbeat. A record that is neither goes to keel.dlq with the
 * reason.
 * Settings: worker.concurrency, worker.grace.ms, worker.id and every
 * kafka.* property (keel/config.h).
 */
#ifndef KEEL_WORKER_H
#define KEEL_WORKER_H

#include "keel/activity.h"
#include "keel/config.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct keel_worker_s keel_worker_t;

/*
 * A new worker for task queue `task_queue` ("payments" reads
 * keel.tasks.payments), configured from cfg, which is only read during
 * the call. Creates the Kafka clients but connects to nothing yet. NULL
 * with a message in errstr on error: an invalid queue name, a bad setting
 * or a kafka.* property librdkafka rejects. Free with
 * keel_worker_destroy().
 */
keel_worker_t *keel_worker_new(const keel_config_t *cfg, const char *task_queue,
                               char *errstr, size_t errstr_size);

/*
 * Frees w; accepts NULL. If keel_worker_run() left handlers running past
 * worker.grace.ms, this waits for them to return. Must not be called
 * while keel_worker_run() is running.
 */
void keel_worker_destroy(keel_worker_t *w);

/*
 * Run fn for tasks of activity type `activity_type` (copied); opaque is
 * what keel_activity_opaque() returns inside fn. Call before
 * keel_worker_run(). A task whose type has no handler fails for good
 * ("ActivityNotRegistered"). KEEL_ERR_INVALID_ARG for an empty type, a
 * type already registered, a NULL fn or a worker already running;
 * KEEL_ERR_NOMEM.
 */
int keel_worker_register(keel_worker_t *w, const char *activity_type,
                         keel_activity_fn_t fn, void *opaque);

/*
 * Run tasks until keel_worker_stop(), on the calling thread (plus the
 * worker's own threads). On stop: take no new task, give running ones
 * worker.grace.ms to finish, commit, leave the group, flush. Handlers
 * still running after the grace period are left to finish: their
 * results are dropped (the tasks were not committed and run again
 * elsewhere) and their heartbeats return KEEL_ERR_CANCELLED.
 *
 * Heartbeats (keel_activity_heartbeat()) go to keel.inbox as
 * keel.inbox.ActivityHeartbeat records and return KEEL_OK; they return
 * KEEL_ERR_CANCELLED, sending nothing, once an ActivityCancel came for the
 * task (its workflow was asked to cancel or has closed) or once the task
 * is no longer this worker's (after the grace period of a stop or a
 * rebalance). A cancel waits behind the tasks fetched before it: while
 * twice worker.concurrency tasks are queued or running, the topic is not
 * read, so a cancel is seen once a slot frees up.
 *
 * Returns KEEL_OK after a stop; KEEL_ERR_NOT_FOUND if keel.inbox or the
 * queue's topic does not exist ('keel topics create'); KEEL_ERR_TRANSPORT
 * if no broker answered within timeout.ms; KEEL_ERR_KAFKA on a fatal
 * Kafka client error (after the same orderly stop);
 * KEEL_ERR_INVALID_ARG if called twice. Each error is also logged.
 */
int keel_worker_run(keel_worker_t *w);

/*
 * Ask keel_worker_run() to stop and return. Only sets a flag, so it may
 * be called from any thread and from a signal handler; it does not wait.
 * Calling it before keel_worker_run() makes run return at once.
 */
void keel_worker_stop(keel_worker_t *w);

/* What a worker has done so far. */
typedef struct keel_worker_stats_s {
        uint64_t tasks_started;     /* handlers called */
        uint64_t tasks_completed;   /* ActivityCompleted delivered */
        uint64_t tasks_failed;      /* ActivityFailed delivered */
        uint64_t tasks_undecodable; /* records sent to keel.dlq */
        uint64_t heartbeats;        /* ActivityHeartbeat records sent */
        uint64_t cancels;           /* ActivityCancel records that stopped a
                                       queued or running task */
        uint64_t cancels_unmatched; /* ActivityCancel records for no such
                                       task (finished, or never here) */
} keel_worker_stats_t;

/* Fill *st with w's counters. Thread-safe. */
void keel_worker_stats(const keel_worker_t *w, keel_worker_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif

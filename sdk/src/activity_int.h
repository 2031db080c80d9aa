/*
 * activity_int.h: running an activity handler on a task, shared by the
 * Kafka worker and the test environment.
 */
#ifndef KEEL_ACTIVITY_INT_H
#define KEEL_ACTIVITY_INT_H

#include "keel/activity.h"

#include <stdint.h>

/* What keel__activity_run hands a heartbeat to. Returns KEEL_OK or
 * KEEL_ERR_CANCELLED. details is borrowed. */
typedef int (*keel__heartbeat_fn_t)(void *opaque, const json_t *task,
                                    const json_t *details);

/*
 * Run fn on task (an ActivityTask record). On return *type is the inbox
 * command to send ("keel.inbox.ActivityCompleted" or
 * "keel.inbox.ActivityFailed") and *rec its record (new reference), with
 * command_id "<idempotency key>/<attempt>", ts now_ms and worker_id.
 * A handler that returns KEEL_ERR_TIMEOUT without failing sends nothing
 * (*rec NULL): the test environment's way to play a lost worker.
 */
int keel__activity_run(keel_activity_fn_t fn, void *opaque, const json_t *task,
                       const char *worker_id, int64_t now_ms,
                       keel__heartbeat_fn_t hb, void *hb_opaque,
                       const char **type, json_t **rec);

#endif

/*
 * keel/testing.h: run workflows in-process, with no Kafka, on a virtual
 * clock.
 *
 * The test environment runs the same workflow code through the same
 * replay engine and state machine as the orchestrator. Activities are
 * plain handlers (keel/activity.h), the real ones or fakes, or canned
 * outcomes per attempt written as JSON (keel_testenv_register_canned()).
 * Activities take no virtual time; when every workflow is waiting, the
 * clock jumps to the next timer, so a 72-hour wait takes microseconds. Not
 * thread-safe: one thread per environment. docs/testing.md shows how to
 * use it.
 */
#ifndef KEEL_TESTING_H
#define KEEL_TESTING_H

#include "keel/activity.h"
#include "keel/client.h"
#include "keel/config.h"
#include "keel/workflow.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct keel_testenv_s keel_testenv_t;

/* A test environment running reg's workflow types (borrowed; must outlive
 * it). Its clock starts at start_ms (0: 2026-01-01T00:00:00Z). */
keel_testenv_t *keel_testenv_new(const keel_registry_t *reg, int64_t start_ms);

/* Frees env; accepts NULL. */
void keel_testenv_destroy(keel_testenv_t *env);

/*
 * Enforce the orchestrator's settings for runs from cfg (borrowed; read
 * now): retention.closed.ms and retention.closed.ms.<type> (how long a
 * closed run's history is kept), history.max.events, history.max.bytes
 * and history.warn.percent (docs/operating.md, Retention and history
 * limits). Without it an environment keeps closed runs forever and
 * enforces the default limits. Once a closed run's retention has passed
 * on the virtual clock (keel_testenv_run() goes that far), its history is
 * deleted and the run forgotten: keel_testenv_status() returns NULL, and
 * the ID may be started again whatever the reuse policy. Runs closed
 * before the call keep the retention they had. KEEL_OK or KEEL_ERR_NOMEM.
 */
int keel_testenv_set_config(keel_testenv_t *env, const keel_config_t *cfg);

/* Run fn (with opaque) for activity type `name`. An activity nobody
 * registered fails with the non-retryable type ActivityNotRegistered. A
 * handler returning KEEL_ERR_TIMEOUT without failing plays a worker that
 * never answers: the activity's timeouts then apply. Registering a name
 * again replaces its handler. */
int keel_testenv_register_activity(keel_testenv_t *env, const char *name,
                                   keel_activity_fn_t fn, void *opaque);

/*
 * Play activity `name` from canned outcomes instead of a handler.
 * outcomes (borrowed; copied) is a JSON array with one outcome per
 * attempt, the last one repeating for later attempts:
 *   {"result": <JSON>}  completes with that result;
 *   {"failure": {"type": "...", "message": "...", "non_retryable": false,
 *                "details": <JSON>}}  fails; only "type" is required;
 *                whether it is retried is up to the activity's retry
 *                policy, as for a handler's keel_activity_fail();
 *   {"timeout": true}   a worker that never answers: the activity's
 *                       timeouts apply (it needs a start-to-close or
 *                       schedule-to-close timeout to end).
 * E.g. [{"failure": {"type": "Unavailable"}}, {"result": {"id": 7}}]
 * fails the first attempt and completes every later one. Each attempt is
 * recorded for keel_testenv_calls() like a handler's. Registering the
 * name again, either way, replaces it. KEEL_ERR_INVALID_ARG (nothing
 * registered) for an empty name, an empty array or an entry that is not
 * one of the above; KEEL_ERR_NOMEM.
 */
int keel_testenv_register_canned(keel_testenv_t *env, const char *name,
                                 const json_t *outcomes);

/* Start workflow `id` of `type` with input (stolen; NULL for null).
 * KEEL_ERR_ALREADY_STARTED if a run with that ID is open. */
int keel_testenv_start(keel_testenv_t *env, const char *id, const char *type,
                       json_t *input);

/* keel_testenv_start() with a start's options (borrowed; NULL for the
 * defaults): ID reuse and conflict policies, signal-with-start, timeouts
 * and initial search attributes, as keel_client_start() sends them;
 * command_id and wait_ms are not used. KEEL_ERR_INVALID_ARG when the
 * orchestrator would refuse the start (search attributes that break the
 * rules, say), KEEL_ERR_ALREADY_STARTED as keel_client_start(). */
int keel_testenv_start_ex(keel_testenv_t *env, const char *id, const char *type,
                          json_t *input, const keel_start_options_t *opts);

/* Signal, cancel or terminate workflow id (payload stolen). Activities
 * are run inline, so none runs at that moment; an attempt that was sent
 * before the cancel request (or before the run closed) and runs later
 * sees KEEL_ERR_CANCELLED from keel_activity_heartbeat(), as it would in a
 * worker. */
int keel_testenv_signal(keel_testenv_t *env, const char *id, const char *name,
                        json_t *payload);
int keel_testenv_cancel(keel_testenv_t *env, const char *id,
                        const char *reason);
int keel_testenv_terminate(keel_testenv_t *env, const char *id,
                           const char *reason);

/* Run activities and fire timers until nothing more can happen without
 * input from outside (every workflow closed, or waiting for a signal with
 * no timer pending). */
int keel_testenv_run(keel_testenv_t *env);

/* The same, but stop the clock at until_ms (virtual) even if timers are
 * pending: to send a signal "after 10 hours". */
int keel_testenv_run_until(keel_testenv_t *env, int64_t until_ms);

/*
 * Run as keel_testenv_run_until(env, at_ms - 1), then set the clock to
 * at_ms without firing what falls due at at_ms: a signal, cancel or start
 * sent next is recorded before those timers. The orchestrator does the
 * same with a command it reads in the batch in which a timer falls due (it
 * applies a batch's commands, then fires the timers due by then), whereas
 * after keel_testenv_run_until(env, at_ms) the timers due at at_ms have
 * fired first. Which one a workflow sees first is the order of the events
 * in its history, whatever their timestamps.
 */
int keel_testenv_run_before(keel_testenv_t *env, int64_t at_ms);

/* The virtual clock, ms since the epoch. */
int64_t keel_testenv_now(const keel_testenv_t *env);

/* The latest run's status: "running", "blocked", "completed", "failed",
 * "cancelled", "terminated"; NULL for an unknown ID, or one whose
 * history was deleted (keel_testenv_set_config()). */
const char *keel_testenv_status(keel_testenv_t *env, const char *id);

/* The completed run's result (new reference), or NULL. */
json_t *keel_testenv_result(keel_testenv_t *env, const char *id);

/* The latest run's history, as {"type","record"} events (borrowed, valid
 * until the environment runs again). */
const json_t *keel_testenv_history(keel_testenv_t *env, const char *id);

/* The state the latest run of `id` last published with keel_set_state()
 * (a new reference), or NULL if it published none. */
json_t *keel_testenv_state(keel_testenv_t *env, const char *id);

/* The latest run of id's search attributes as the projector shows them:
 * its start's, with every recorded upsert merged in (a new reference to an
 * object, empty if none), or NULL for an unknown ID. */
json_t *keel_testenv_search_attributes(keel_testenv_t *env, const char *id);

/*
 * Every record the workflows emitted (keel_emit()), in the order the
 * orchestrator would produce them, across all workflows: a JSON array
 * (borrowed; it grows as the environment runs) of
 *   {"topic": "...", "key": "..." or null, "value": <JSON>,
 *    "partition": <int> or null (null: by key), "headers": [{"name",
 *    "value"}], "keel_id": "<workflow ID>/<run ID>/<seq>",
 *    "workflow_id": "...", "run_id": "...", "seq": <int>}
 * Replays never add to it, so each keel_emit() a workflow makes appears
 * once, as a read_committed consumer of the topic would see it.
 */
const json_t *keel_testenv_emitted(const keel_testenv_t *env);

/* How often activity `name` ran (every attempt), and the input of run i
 * (borrowed). Across all workflows, in order. */
size_t keel_testenv_calls(const keel_testenv_t *env, const char *name);
const json_t *keel_testenv_call_input(const keel_testenv_t *env,
                                      const char *name, size_t i);

#ifdef __cplusplus
}
#endif
#endif

/*
 * workflow_int.h: the replay engine behind keel/workflow.h, shared by the
 * orchestrator, the test environment and the replayer.
 *
 * An activation runs a workflow function from the start against its
 * recorded history (events in seq order, each {"type": schema name,
 * "record": {...}} as keel_codec_decode gives them) and returns the new
 * history events its code issued: ActivityScheduled, TimerStarted,
 * TimerCancelled, MarkerRecorded, RecordEmitted and the closing event. Recorded
 * results are returned to the code; the first wait with no result suspends it.
 */
#ifndef KEEL_WORKFLOW_INT_H
#define KEEL_WORKFLOW_INT_H

#include "keel/workflow.h"

typedef struct keel__history_s {
        const char *workflow_id;
        const char *run_id;
        const json_t *events; /* array; events[i] has seq i + 1 */
        /* Seq of the first event added since the last activation, so logs
         * are printed once; 0: everything is old (a pure replay). */
        int64_t first_new_seq;
} keel__history_t;

typedef enum keel__wf_status_e {
        KEEL__WF_SUSPENDED, /* waiting for something */
        KEEL__WF_COMPLETED,
        KEEL__WF_FAILED,
        KEEL__WF_CANCELLED,
        KEEL__WF_BLOCKED,   /* non-determinism: not failed, waits for a fix */
        KEEL__WF_ERROR,     /* could not run: unknown type, bad history */
        KEEL__WF_CONTINUED, /* closed by WorkflowContinuedAsNew */
} keel__wf_status_t;

typedef struct keel__activation_s {
        keel__wf_status_t status;
        /* New events, same shape as history, with workflow_id, run_id, seq
         * and ts set; epoch 0 (the writer sets it). Caller decrefs. */
        json_t *new_events;
        char message[1024]; /* why, for BLOCKED and ERROR */
        /* CONTINUED: the seqs of the SignalReceived events the code did
         * not take, in order, for the new run; else NULL. Caller decrefs. */
        json_t *carried_signals;
} keel__activation_t;

/*
 * Run one activation of the workflow whose history is h. now_ms stamps the
 * new events. Returns KEEL_OK with *out filled (out->new_events set, maybe
 * empty), or KEEL_ERR_NOMEM. A replay mismatch is KEEL_OK with status
 * KEEL__WF_BLOCKED and a NonDeterminismDetected event (unless the same one
 * is already the last of its kind in h).
 */
int keel__wf_activate(const keel_registry_t *reg, const keel__history_t *h,
                      int64_t now_ms, keel__activation_t *out);

/* A run ID (UUID form) derived from the workflow ID and the command that
 * makes the run, so that a command applied again makes the same run. */
void keel__run_id_make(const char *workflow_id, const char *command_id,
                       char out[37]);

/* The command ID of the run that continues run_id as new; its run ID is
 * keel__run_id_make(workflow_id, that). */
void keel__continued_command_id(const char *run_id, char *out, size_t size);

/* The registered function of a type, or NULL. */
keel_workflow_fn_t keel__registry_find(const keel_registry_t *reg,
                                       const char *type);

/* Shorthands over {"type":..,"record":..} event objects. */
const char *keel__ev_type(const json_t *ev);
const json_t *keel__ev_rec(const json_t *ev);
const char *keel__ev_str(const json_t *ev, const char *field);
int64_t keel__ev_int(const json_t *ev, const char *field);

/* A new {"type": type, "record": rec} (rec stolen). */
json_t *keel__ev_new(const char *type, json_t *rec);

#endif

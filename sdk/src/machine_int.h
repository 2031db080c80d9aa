/*
 * machine_int.h: the workflows of one partition as a state machine, with
 * no Kafka in it. Inbox commands and the passing of time go in; history
 * events to append, records for task topics (activity tasks and their
 * cancellations), records workflows emit to other topics and refused
 * commands come out.
 * The orchestrator wraps it in Kafka transactions; the test environment
 * drives it with fake activities and a virtual clock; restore feeds it the
 * recorded history back.
 *
 * Everything it derives (pending activities, deadlines, timers) comes from
 * the history events and their timestamps, so a machine restored from
 * history is in the same state as the one that wrote it.
 */
#ifndef KEEL_MACHINE_INT_H
#define KEEL_MACHINE_INT_H

#include "history_int.h"
#include "keel/config.h"
#include "workflow_int.h"

#include <stdint.h>

typedef struct keel__out_s {
        json_t *history;  /* events {"type","record"}, in the order to write */
        json_t *tasks;    /* records for keel.tasks.<task_queue>: ActivityTask,
                             or ActivityCancel when "record_type" says so;
                             "keel_id" is the record's unique ID */
        json_t *rejects;  /* {"workflow_id","command_id","command","error",
                             "reason"}: commands refused */
        json_t *emits;    /* records workflows emitted (keel_emit()), one per
                             new RecordEmitted event: {"workflow_id","run_id",
                             "seq","topic","key" (string or null),"value"
                             (JSON text),"partition" (int or null),"headers"
                             ([{"name","value"}]),"keel_id"} */
        json_t *statuses; /* runs that started or closed, one per new
                             WorkflowStarted or closing event:
                             {"workflow_type","status" (RUNNING, COMPLETED,
                             FAILED, CANCELLED, TERMINATED,
                             CONTINUED_AS_NEW),"event" (that event)} */
        json_t *inbox;    /* commands for other workflows (child starts,
                             cancels and terminations, a child's close for
                             its parent): {"type","record"}, the record's
                             workflow_id its key and partition */
        json_t *tombstones; /* keys of keel.history to delete, in the order
                               to write, after the batch's history events:
                               {"workflow_id","run_id","seq"}, a null value
                               each (RunDeleted, retention) */
} keel__out_t;

/* Empty arrays; KEEL_ERR_NOMEM. */
int keel__out_init(keel__out_t *out);
/* Empty the arrays again. */
void keel__out_reset(keel__out_t *out);
void keel__out_destroy(keel__out_t *out);

typedef struct keel__machine_s keel__machine_t;

/* A machine running the workflow types of reg (borrowed). */
keel__machine_t *keel__machine_new(const keel_registry_t *reg);
void keel__machine_destroy(keel__machine_t *m);

/*
 * Apply one inbox command: its schema name (keel.inbox.*) and decoded
 * record, at time now (ms). What it causes is appended to out.
 * KEEL_ERR_INVALID_ARG for a record that is not an inbox command (the
 * caller dead-letters it); KEEL_ERR_NOMEM.
 */
int keel__machine_command(keel__machine_t *m, const char *type,
                          const json_t *rec, int64_t now, keel__out_t *out);

/* Fire every timer, timeout and retry due at or before due_until, with
 * events stamped now (due_until <= now: an orchestrator catching up on a
 * backlog fires only what was due by the commands it has read so far). */
int keel__machine_tick(keel__machine_t *m, int64_t due_until, int64_t now,
                       keel__out_t *out);

/* When the next timer, timeout or retry is due (INT64_MAX: none). */
int64_t keel__machine_next_due(keel__machine_t *m);

/*
 * Restore: apply a history event recorded earlier, without running any
 * workflow code. Events already applied (by seq) are skipped. Returns
 * KEEL_OK, or KEEL_ERR_CORRUPT for an event that does not fit (a gap in
 * seq, an unknown run) with the reason in errstr; the event is skipped.
 */
int keel__machine_restore(keel__machine_t *m, const json_t *ev, char *errstr,
                          size_t errstr_size);

/*
 * Restore, fast: the same for an event the history reader hands over raw
 * (keel__history_reader_init_raw()). The record is kept encoded; state
 * other than the run's status is derived once something asks for it, for
 * the runs open then. Same results and errors as keel__machine_restore().
 */
int keel__machine_restore_raw(keel__machine_t *m, const keel__history_raw_t *ev,
                              char *errstr, size_t errstr_size);

/* After restore: run again the workflows that were blocked by
 * non-determinism (the code may have been fixed) or never ran. */
int keel__machine_resume(keel__machine_t *m, int64_t now, keel__out_t *out);

/* What the machine knows of a workflow's latest run. */
typedef struct keel__run_info_s {
        const char *workflow_id;
        const char *run_id;
        const char *type;
        const char *status; /* running, blocked, completed, failed,
                               cancelled, terminated */
        /* Its history, or NULL for a closed run where the machine keeps
         * none (keel__machine_keep_history()). */
        const json_t *events;
        size_t n_events; /* how many events it has */
        size_t pending_activities;
        size_t pending_timers;
} keel__run_info_t;

/* KEEL_OK with *info (borrowed; valid until the machine changes), or
 * KEEL_ERR_NOT_FOUND. */
int keel__machine_run(keel__machine_t *m, const char *workflow_id,
                      keel__run_info_t *info);

/*
 * Should attempt `attempt` of activity activity_id of run run_id stop? 1
 * once the run's cancel request reached that attempt (it was sent and not
 * finished then) or the run has closed; 0 otherwise, and for an unknown
 * workflow. What a worker learns from ActivityCancel records, for the test
 * environment, which runs activities inline.
 */
int keel__machine_activity_cancelled(keel__machine_t *m,
                                     const char *workflow_id,
                                     const char *run_id,
                                     const char *activity_id, int attempt);

/* Call fn for every workflow's latest run. */
void keel__machine_foreach(keel__machine_t *m,
                           void (*fn)(const keel__run_info_t *info,
                                      void *opaque),
                           void *opaque);

/* Counters since the machine was made. */
typedef struct keel__machine_stats_s {
        uint64_t commands;    /* inbox commands applied */
        uint64_t events;      /* history events produced */
        uint64_t tasks;       /* activity tasks produced */
        uint64_t cancels;     /* ActivityCancel records produced */
        uint64_t emitted;     /* records emitted to other topics */
        uint64_t stale;       /* results for attempts no longer current */
        uint64_t rejected;    /* commands refused */
        uint64_t activations; /* workflow code runs */
        uint64_t timed_out; /* runs terminated by a run or execution timeout */
        uint64_t continued; /* runs continued as new */
        size_t open;        /* open runs */
        /* retention and history limits */
        uint64_t deleted;          /* closed runs whose history was deleted */
        uint64_t tombstones;       /* tombstones produced */
        uint64_t history_warnings; /* runs past the warning share of a limit */
        uint64_t history_limited;  /* runs terminated at a history limit */
} keel__machine_stats_t;

void keel__machine_stats(const keel__machine_t *m, keel__machine_stats_t *st);

/* ---- retention and history limits --------------------------------------- */

/*
 * What the machine enforces on runs. Retention: a closed run's history is
 * deleted (a RunDeleted event, then tombstones for its keys in
 * out->tombstones, and the run is forgotten) once retention has passed
 * since its closing event; the deadline derives from that event's ts, so a
 * restored machine deletes at the same time. Limits: a run that reaches
 * max_events events or max_bytes bytes of encoded history is terminated
 * (WorkflowTerminated, reason "history size exceeds limit: ..."); past
 * warn_percent of either it is logged and counted once.
 */
typedef struct keel__machine_limits_s {
        int64_t retention_ms; /* after closing; -1: kept forever */
        /* Per workflow type {"<type>": ms (integer, -1: forever)}, or NULL;
         * borrowed: keel__machine_set_limits() copies it. */
        const json_t *retention_by_type;
        int64_t max_events; /* per run */
        int64_t max_bytes;  /* per run, single-object encoded */
        int warn_percent;   /* 1..100 */
} keel__machine_limits_t;

/* What a new machine enforces: closed runs kept forever, Temporal's
 * limits (50,000 events, 50 MiB), a warning at 80%. */
void keel__machine_limits_init(keel__machine_limits_t *l);

/*
 * The limits the settings give (retention.closed.ms,
 * retention.closed.ms.<type>, history.max.events, history.max.bytes,
 * history.warn.percent); *by_type (new reference, NULL if none) is what
 * l->retention_by_type points to: the caller frees it. KEEL_OK or
 * KEEL_ERR_NOMEM.
 */
int keel__machine_limits_from_config(const keel_config_t *cfg,
                                     keel__machine_limits_t *l,
                                     json_t **by_type);

/*
 * With keep nonzero, closed runs keep their history events, for the test
 * environment, which shows them (keel_testenv_history()). By default a
 * closed run keeps only what is still asked of it (its IDs, type, status,
 * event count and retention deadline): an orchestrator holds many of them.
 */
void keel__machine_keep_history(keel__machine_t *m, int keep);

/* Enforce l (copied) from now on; runs closed before keep the deadlines
 * they have. KEEL_OK or KEEL_ERR_NOMEM. */
int keel__machine_set_limits(keel__machine_t *m,
                             const keel__machine_limits_t *l);

#endif

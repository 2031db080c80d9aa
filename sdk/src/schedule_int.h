/*
 * schedule_int.h: schedules, recurring workflow starts. A schedule is a
 * workflow of the built-in type `keel.schedule` (as Temporal builds its
 * schedules on workflows) whose ID is `schedule/<name>`: every registry
 * knows the type (workflow.c finds it), so the orchestrator, the test
 * environment and `keel replay` run it like any workflow, and it survives
 * restarts because its timers and counters are its history. Its input
 * (docs/concepts.md, Schedules):
 *
 *   {"spec": {"cron": "0 3 * * *"} | {"interval_ms": N, "offset_ms": O},
 *    "action": {"workflow_type": "...", "input": <JSON>},
 *    "overlap": "SKIP" | "BUFFER_ONE" | "ALLOW_ALL",   (default SKIP)
 *    "paused": false, "note": "...", "actions_per_run": 50,
 *    "carry": {...}}   (what a run hands the next when it continues as new)
 *
 * At each fire time it starts the action as a child workflow (parent close
 * policy ABANDON) with the ID `<name>-<fire time as YYYYMMDDTHHMMSSZ>`, so
 * each occurrence has one ID and one start, replayed or not. It takes the
 * signals pause, resume, trigger, update and delete, and publishes its
 * state with keel_set_state() for the projector and `keel schedule list`.
 * schedule.c holds the input's rules, shared with `keel schedule create`
 * so that the command line refuses what the workflow would fail on.
 */
#ifndef KEEL_SCHEDULE_INT_H
#define KEEL_SCHEDULE_INT_H

#include "cron_int.h"
#include "keel/workflow.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define KEEL__SCHEDULE_TYPE      "keel.schedule"
#define KEEL__SCHEDULE_ID_PREFIX "schedule/"
/* Longest schedule name, in bytes; action IDs add at most 40 to it. */
#define KEEL__SCHEDULE_NAME_MAX 200
/* Shortest interval: occurrences are named by the second. */
#define KEEL__SCHEDULE_MIN_INTERVAL_MS 1000
/* Actions a run starts before it continues as new (the default), and
 * the wake-ups (timers, signals, closed actions) after which it does so
 * whatever it started. */
#define KEEL__SCHEDULE_ACTIONS_PER_RUN 50
#define KEEL__SCHEDULE_WAKES_PER_RUN   200

/* When occurrences fall: a cron expression, or every interval_ms from
 * the epoch shifted by offset_ms. */
typedef struct keel__sched_spec_s {
        int is_cron;
        keel__cron_t cron;
        int64_t interval_ms, offset_ms;
} keel__sched_spec_t;

typedef enum keel__overlap_e {
        KEEL__OVERLAP_SKIP = 0,
        KEEL__OVERLAP_BUFFER_ONE,
        KEEL__OVERLAP_ALLOW_ALL,
} keel__overlap_t;

/* A schedule's input, read. JSON pointers borrow from the input. */
typedef struct keel__schedule_s {
        keel__sched_spec_t spec;
        const json_t *spec_json;
        const json_t *action;       /* {"workflow_type", "input"?} */
        const char *workflow_type;  /* action's */
        const json_t *action_input; /* action's; JSON null when absent */
        keel__overlap_t overlap;
        int paused;
        const char *note; /* NULL when none */
        int64_t actions_per_run;
        const json_t *carry; /* NULL when none */
} keel__schedule_t;

/* The policy's name ("SKIP", ...), and the policy of a name (upper or
 * lower case); -1 for an unknown one. */
const char *keel__overlap_name(keel__overlap_t o);
int keel__overlap_parse(const char *name);

/*
 * Read a spec ({"cron": EXPR} or {"interval_ms": N, "offset_ms": O}) into
 * *out. KEEL_OK; KEEL_ERR_INVALID_ARG with a message in err starting with
 * "spec" (a bad cron expression says which field and why).
 */
int keel__sched_spec_parse(const json_t *spec, keel__sched_spec_t *out,
                           char *err, size_t errsize);

/* The first occurrence of s strictly after after_ms, or -1 if none. */
int64_t keel__sched_spec_next(const keel__sched_spec_t *s, int64_t after_ms);

/*
 * Occurrences of s in (after_ms, upto_ms]: how many (counting at most the
 * last 400 days), with the last one in *last (untouched when none).
 */
int64_t keel__sched_spec_between(const keel__sched_spec_t *s, int64_t after_ms,
                                 int64_t upto_ms, int64_t *last);

/* Read a whole schedule input into *out. KEEL_OK, or KEEL_ERR_INVALID_ARG
 * with a message in err naming the field. */
int keel__schedule_parse(const json_t *input, keel__schedule_t *out, char *err,
                         size_t errsize);

/* A schedule name: 1 to KEEL__SCHEDULE_NAME_MAX bytes of A-Z a-z 0-9 . _
 * -. KEEL_OK or KEEL_ERR_INVALID_ARG with a message. */
int keel__schedule_check_name(const char *name, char *err, size_t errsize);

/*
 * A duration: one or more of a number and a unit (ms, s, m, h, d), as
 * "90s", "5m", "1h30m", "2d", or a bare number of seconds. KEEL_OK with
 * *ms, or KEEL_ERR_INVALID_ARG.
 */
int keel__duration_parse(const char *s, int64_t *ms);

/* ms since the epoch as "YYYYMMDDTHHMMSSZ" (17 bytes with the NUL) and
 * as RFC 3339 "YYYY-MM-DDTHH:MM:SS.mmmZ" (25 bytes). */
void keel__time_compact(int64_t ms, char out[32]);
void keel__time_rfc3339(int64_t ms, char out[32]);

/* The schedule workflow itself (registered as KEEL__SCHEDULE_TYPE). */
keel_err_t keel__schedule_workflow(keel_wf_t *wf, const json_t *input,
                                   json_t **result);

#endif

/*
 * workflow.c: the replay engine (workflow_int.h) and the workflow API of
 * keel/workflow.h.
 *
 * An activation calls the workflow function under setjmp. Each command the
 * code issues (schedule an activity, start or cancel a timer, record a
 * marker, emit a record to a topic, close the run) is matched in order against
 * the command events of the history: a different command is a non-determinism
 * error, a command beyond the recorded ones is new and becomes a new event. A
 * wait looks for the event that resolves it anywhere in the history; when there
 * is none the code is suspended by longjmp, which is why everything it holds
 * lives in the run's arena. Among several ready futures the one resolved
 * first in log order wins, so every replay takes the same path.
 */
#include "workflow_int.h"

#include "keel/partition.h"
#include "schedule_int.h"
#include "search_attrs_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_PREFIX "keel.history."

/* ---- registry ---------------------------------------------------------- */

typedef struct wf_type_s {
        char *type;
        keel_workflow_fn_t fn;
} wf_type_t;

struct keel_registry_s {
        wf_type_t *types;
        size_t n, cap;
};

keel_registry_t *keel_registry_new(void)
{
        return calloc(1, sizeof(keel_registry_t));
}

void keel_registry_destroy(keel_registry_t *reg)
{
        if (!reg)
                return;
        for (size_t i = 0; i < reg->n; i++)
                free(reg->types[i].type);
        free(reg->types);
        free(reg);
}

keel_workflow_fn_t keel__registry_find(const keel_registry_t *reg,
                                       const char *type)
{
        for (size_t i = 0; reg && type && i < reg->n; i++)
                if (!strcmp(reg->types[i].type, type))
                        return reg->types[i].fn;
        /* Built in, in every registry: schedules (schedule_int.h). */
        if (reg && type && !strcmp(type, KEEL__SCHEDULE_TYPE))
                return keel__schedule_workflow;
        return NULL;
}

int keel_workflow_register(keel_registry_t *reg, const char *type,
                           keel_workflow_fn_t fn)
{
        if (!reg || !type || !*type || !fn || keel__registry_find(reg, type))
                return KEEL_ERR_INVALID_ARG;
        if (reg->n == reg->cap) {
                size_t cap = reg->cap ? reg->cap * 2 : 8;
                wf_type_t *t = realloc(reg->types, cap * sizeof(*t));
                if (!t)
                        return KEEL_ERR_NOMEM;
                reg->types = t;
                reg->cap = cap;
        }
        reg->types[reg->n].type = strdup(type);
        if (!reg->types[reg->n].type)
                return KEEL_ERR_NOMEM;
        reg->types[reg->n++].fn = fn;
        return KEEL_OK;
}

/* ---- event helpers ----------------------------------------------------- */

const char *keel__ev_type(const json_t *ev)
{
        const char *t = json_string_value(json_object_get(ev, "type"));
        return t ? t : "";
}

const json_t *keel__ev_rec(const json_t *ev)
{
        return json_object_get(ev, "record");
}

const char *keel__ev_str(const json_t *ev, const char *field)
{
        const char *s =
            json_string_value(json_object_get(keel__ev_rec(ev), field));
        return s ? s : "";
}

int64_t keel__ev_int(const json_t *ev, const char *field)
{
        return (int64_t)json_integer_value(
            json_object_get(keel__ev_rec(ev), field));
}

json_t *keel__ev_new(const char *type, json_t *rec)
{
        json_t *ev = json_object();
        if (!ev || !rec) {
                json_decref(ev);
                json_decref(rec);
                return NULL;
        }
        json_object_set_new(ev, "type", json_string(type));
        json_object_set_new(ev, "record", rec);
        return ev;
}

/* Short event name: "ActivityScheduled" for keel.history.ActivityScheduled */
static const char *short_type(const json_t *ev)
{
        const char *t = keel__ev_type(ev);
        return strncmp(t, EV_PREFIX, strlen(EV_PREFIX)) ? t
                                                        : t + strlen(EV_PREFIX);
}

static int is_type(const json_t *ev, const char *short_name)
{
        return !strcmp(short_type(ev), short_name);
}

/* Events the workflow code itself issues, matched in order on replay. */
static int is_command_event(const json_t *ev)
{
        static const char *const cmds[] = {"ActivityScheduled",
                                           "TimerStarted",
                                           "TimerCancelled",
                                           "MarkerRecorded",
                                           "ActivityCancelRequested",
                                           "ChildWorkflowInitiated",
                                           "WorkflowCompleted",
                                           "WorkflowFailed",
                                           "WorkflowCancelled",
                                           "WorkflowContinuedAsNew",
                                           "RecordEmitted"};
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                if (is_type(ev, cmds[i]))
                        return 1;
        return 0;
}

/* ---- the run ----------------------------------------------------------- */

enum { F_ACTIVITY, F_TIMER, F_SIGNAL, F_CHILD };

struct keel_future_s {
        int kind;
        char id[24];      /* activity or timer ID */
        const char *name; /* signal name, child workflow ID (arena) */
        int bound;        /* resolution found and taken */
        int64_t seq;      /* seq of the resolving event */
        int failed;       /* activity failed for good */
        json_t *result;   /* arena-owned */
        keel_failure_t failure;
        int cancelled; /* timer cancelled by the code */
        /* Events up to this seq cannot resolve it: none before its
         * command's, nor any looked at already. */
        int64_t scanned;
};

typedef struct arena_block_s {
        struct arena_block_s *next;
        size_t used, size;
        max_align_t data[];
} arena_block_t;

typedef enum { SUSPEND = 1, BLOCK, OOM } jump_t;

struct keel_wf_s {
        const keel__history_t *h;
        const keel_registry_t *reg;
        const char *type;
        size_t n;          /* events in history */
        int64_t *cmd_seqs; /* seqs of recorded command events */
        size_t n_cmds, cmd_next;
        char *consumed;     /* per event: a signal taken by the code */
        int64_t horizon;    /* last event the code has seen */
        int64_t cancel_seq; /* first WorkflowCancelRequested, or 0 */
        int cancel_delivered;
        unsigned id_counter;
        int64_t now_ms; /* activation time, for new events */
        uint64_t rng;
        json_t *new_events;
        keel_failure_t last_failure;
        keel_failure_t fail; /* set by keel_fail */
        int failed;
        json_t *can_input; /* set by keel_continue_as_new (owned) */
        int continued;
        arena_block_t *arena;
        json_t **owned;
        size_t n_owned, cap_owned;
        jmp_buf jb;
        char message[1024];
        struct patch_s *patches; /* keel_patched() answers, this run */
        json_t *search_attrs;    /* the run's set so far (arena), or NULL
                                    until first asked for */
};

/* A change ID and the path this run takes for it. */
struct patch_s {
        struct patch_s *next;
        const char *id;
        int patched;
};

static _Noreturn void jump(keel_wf_t *wf, jump_t why)
{
        longjmp(wf->jb, (int)why);
}

void *keel_alloc(keel_wf_t *wf, size_t n)
{
        arena_block_t *b = wf->arena;
        size_t need =
            (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
        void *p;

        if (!need)
                need = sizeof(max_align_t);
        if (!b || b->size - b->used < need) {
                size_t size = need > 16384 ? need : 16384;
                b = malloc(sizeof(*b) + size);
                if (!b)
                        jump(wf, OOM);
                b->size = size;
                b->used = 0;
                b->next = wf->arena;
                wf->arena = b;
        }
        p = (char *)b->data + b->used;
        b->used += need;
        memset(p, 0, n);
        return p;
}

char *keel_strdup(keel_wf_t *wf, const char *s)
{
        size_t n = strlen(s ? s : "");
        char *d = keel_alloc(wf, n + 1);
        memcpy(d, s ? s : "", n);
        return d;
}

json_t *keel_own(keel_wf_t *wf, json_t *j)
{
        if (!j)
                return NULL;
        if (wf->n_owned == wf->cap_owned) {
                size_t cap = wf->cap_owned ? wf->cap_owned * 2 : 32;
                json_t **o = realloc(wf->owned, cap * sizeof(*o));
                if (!o) {
                        json_decref(j);
                        jump(wf, OOM);
                }
                wf->owned = o;
                wf->cap_owned = cap;
        }
        wf->owned[wf->n_owned++] = j;
        return j;
}

static void run_free(keel_wf_t *wf)
{
        while (wf->arena) {
                arena_block_t *next = wf->arena->next;
                free(wf->arena);
                wf->arena = next;
        }
        for (size_t i = 0; i < wf->n_owned; i++)
                json_decref(wf->owned[i]);
        free(wf->owned);
        free(wf->cmd_seqs);
        free(wf->consumed);
}

static const json_t *event(const keel_wf_t *wf, int64_t seq)
{
        return json_array_get(wf->h->events, (size_t)(seq - 1));
}

/* JSON text from a record field, parsed into an arena-owned value. */
static json_t *json_field(keel_wf_t *wf, const json_t *ev, const char *field)
{
        const char *text = keel__ev_str(ev, field);
        json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
        return keel_own(wf, j ? j : json_null());
}

static char *dumps(const json_t *j)
{
        return json_dumps(j ? j : json_null(),
                          JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
}

static void see(keel_wf_t *wf, int64_t seq)
{
        if (seq > wf->horizon)
                wf->horizon = seq;
}

int64_t keel_now(keel_wf_t *wf)
{
        if (wf->horizon > (int64_t)wf->n)
                return wf->now_ms;
        return keel__ev_int(event(wf, wf->horizon), "ts");
}

int keel_wf_replaying(const keel_wf_t *wf)
{
        return !wf->h->first_new_seq || wf->horizon < wf->h->first_new_seq;
}

const char *keel_wf_id(const keel_wf_t *wf)
{
        return wf->h->workflow_id;
}

const char *keel_wf_run_id(const keel_wf_t *wf)
{
        return wf->h->run_id;
}

const char *keel_wf_type(const keel_wf_t *wf)
{
        return wf->type;
}

void keel_wf_log(keel_wf_t *wf, keel_log_level_t level, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        if (keel_wf_replaying(wf))
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        keel_log(level, "workflow", "workflow_id=%s run_id=%s %s",
                 wf->h->workflow_id, wf->h->run_id, msg);
}

/* ---- commands ---------------------------------------------------------- */

/* A human description of a command event, for non-determinism messages. */
static void describe(const json_t *ev, char *buf, size_t size)
{
        const char *t = short_type(ev);
        if (is_type(ev, "ActivityScheduled"))
                snprintf(buf, size, "%s(%s, activity %s)", t,
                         keel__ev_str(ev, "activity_type"),
                         keel__ev_str(ev, "activity_id"));
        else if (is_type(ev, "TimerStarted") || is_type(ev, "TimerCancelled"))
                snprintf(buf, size, "%s(timer %s)", t,
                         keel__ev_str(ev, "timer_id"));
        else if (is_type(ev, "MarkerRecorded"))
                snprintf(buf, size, "%s(%s %s)", t,
                         keel__ev_str(ev, "marker_name"),
                         keel__ev_str(ev, "marker_id"));
        else if (is_type(ev, "RecordEmitted"))
                snprintf(
                    buf, size, "%s(topic %s, key %s)", t,
                    keel__ev_str(ev, "topic"),
                    json_is_string(json_object_get(keel__ev_rec(ev), "key"))
                        ? keel__ev_str(ev, "key")
                        : "null");
        else
                snprintf(buf, size, "%s", t);
}

/* Same command? Type and identity; inputs, durations and emitted values
 * may change. */
static int same_command(const json_t *a, const json_t *b)
{
        static const char *const keys[] = {
            "activity_type", "activity_id", "timer_id", "marker_name",
            "marker_id",     "topic",       "key",      "child_workflow_id"};
        if (strcmp(keel__ev_type(a), keel__ev_type(b)))
                return 0;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const json_t *x = json_object_get(keel__ev_rec(a), keys[i]);
                const json_t *y = json_object_get(keel__ev_rec(b), keys[i]);
                if ((x || y) && !json_equal(x, y))
                        return 0;
        }
        return 1;
}

static _Noreturn void nondeterminism(keel_wf_t *wf, int64_t seq,
                                     const char *expected, const char *actual)
{
        snprintf(wf->message, sizeof(wf->message),
                 "non-determinism at event %lld: history has %s, the code "
                 "issued %s",
                 (long long)seq, expected, actual);
        {
                json_t *rec = json_pack(
                    "{sI ss ss ss}", "event_seq", (json_int_t)seq, "expected",
                    expected, "actual", actual, "message", wf->message);
                json_t *ev =
                    rec ? keel__ev_new(EV_PREFIX "NonDeterminismDetected", rec)
                        : NULL;
                if (!ev)
                        jump(wf, OOM);
                /* Replace whatever new commands came before: a blocked run
                 * writes only this. */
                json_array_clear(wf->new_events);
                json_array_append_new(wf->new_events, ev);
        }
        jump(wf, BLOCK);
}

/*
 * Issue a command: `rec` (stolen) of event type `type`. On replay it must
 * match the next recorded command; otherwise it becomes a new event.
 * Returns the command's seq.
 */
static int64_t command(keel_wf_t *wf, const char *type, json_t *rec)
{
        json_t *ev = keel__ev_new(type, rec);
        int64_t seq;

        if (!ev)
                jump(wf, OOM);
        if (wf->cmd_next < wf->n_cmds) {
                const json_t *old;
                seq = wf->cmd_seqs[wf->cmd_next++];
                old = event(wf, seq);
                if (!same_command(old, ev)) {
                        char expected[256], actual[256];
                        describe(old, expected, sizeof(expected));
                        describe(ev, actual, sizeof(actual));
                        json_decref(ev);
                        nondeterminism(wf, seq, expected, actual);
                }
                json_decref(ev);
                see(wf, seq);
                return seq;
        }
        seq = (int64_t)(wf->n + json_array_size(wf->new_events) + 1);
        json_object_set_new((json_t *)keel__ev_rec(ev), "seq",
                            json_integer(seq));
        json_array_append_new(wf->new_events, ev);
        see(wf, seq);
        return seq;
}

/* At suspension or completion every recorded command must have been
 * issued again. */
static void check_all_matched(keel_wf_t *wf, const char *doing)
{
        if (wf->cmd_next < wf->n_cmds) {
                int64_t seq = wf->cmd_seqs[wf->cmd_next];
                char expected[256];
                describe(event(wf, seq), expected, sizeof(expected));
                nondeterminism(wf, seq, expected, doing);
        }
}

static _Noreturn void suspend(keel_wf_t *wf)
{
        check_all_matched(wf, "nothing more (it waits)");
        jump(wf, SUSPEND);
}

static const char *next_id(keel_wf_t *wf, char buf[24])
{
        snprintf(buf, 24, "%u", ++wf->id_counter);
        return buf;
}

/* ---- resolution -------------------------------------------------------- */

/* Fill failure from a Failure record (or a timeout). */
static void set_failure(keel_wf_t *wf, keel_failure_t *f, const json_t *ev)
{
        const json_t *fr = json_object_get(keel__ev_rec(ev), "failure");
        if (is_type(ev, "ActivityTimedOut")) {
                const char *tt = keel__ev_str(ev, "timeout_type");
                char type[64];
                /* START_TO_CLOSE -> StartToCloseTimeout */
                size_t k = 0;
                int up = 1;
                for (const char *c = tt; *c && k < sizeof(type) - 9; c++) {
                        if (*c == '_') {
                                up = 1;
                                continue;
                        }
                        type[k++] = up ? *c : (char)(*c - 'A' + 'a');
                        up = 0;
                }
                snprintf(type + k, sizeof(type) - k, "Timeout");
                f->type = keel_strdup(wf, type);
                f->message = keel_strdup(wf, "activity timed out");
                f->details = keel_own(wf, json_null());
                f->non_retryable = 1;
                return;
        }
        f->type =
            keel_strdup(wf, json_string_value(json_object_get(fr, "type")));
        f->message =
            keel_strdup(wf, json_string_value(json_object_get(fr, "message")));
        {
                const char *d =
                    json_string_value(json_object_get(fr, "details"));
                json_t *j = d ? json_loads(d, JSON_DECODE_ANY, NULL) : NULL;
                f->details = keel_own(wf, j ? j : json_null());
        }
        f->non_retryable = json_is_true(json_object_get(fr, "non_retryable"));
}

/* A child's ChildWorkflowClosed event, into its future. */
static void child_outcome(keel_wf_t *wf, keel_future_t *f, const json_t *ev)
{
        static const char *const types[][2] = {
            {"CANCELLED", "ChildWorkflowCancelled"},
            {"TERMINATED", "ChildWorkflowTerminated"},
            {"TIMED_OUT", "ChildWorkflowTimedOut"},
        };
        const char *status = keel__ev_str(ev, "status");
        const json_t *fj = json_object_get(keel__ev_rec(ev), "failure");
        if (!strcmp(status, "COMPLETED")) {
                f->result = json_field(wf, ev, "result");
                return;
        }
        f->failed = 1;
        f->failure.type = "ChildWorkflowFailed";
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                if (!strcmp(status, types[i][0]))
                        f->failure.type = types[i][1];
        f->failure.message = keel_strdup(
            wf, json_string_value(json_object_get(fj, "message"))
                    ? json_string_value(json_object_get(fj, "message"))
                    : status);
        f->failure.details = keel_own(wf, json_null());
        f->failure.non_retryable = 1;
        if (json_is_object(fj)) {
                const char *t = json_string_value(json_object_get(fj, "type"));
                const char *d =
                    json_string_value(json_object_get(fj, "details"));
                json_t *dj = d ? json_loads(d, JSON_DECODE_ANY, NULL) : NULL;
                /* a failed child's own type; the others' say what ended
                 * it */
                if (!strcmp(status, "FAILED") && t && *t)
                        f->failure.type = keel_strdup(wf, t);
                if (dj)
                        f->failure.details = keel_own(wf, dj);
        }
}

/* The seq of the event that resolves f, or 0. Binds signals only when
 * `take` is set. */
static int64_t resolution(keel_wf_t *wf, keel_future_t *f, int take)
{
        if (f->bound)
                return f->seq;
        /* Events never start to match, nor do taken signals come back:
         * a loop that selects on the same futures scans each event once. */
        for (int64_t s = f->scanned + 1; s <= (int64_t)wf->n; s++) {
                const json_t *ev = event(wf, s);
                if (f->kind == F_ACTIVITY) {
                        if (strcmp(keel__ev_str(ev, "activity_id"), f->id))
                                continue;
                        if (is_type(ev, "ActivityCompleted")) {
                                if (take) {
                                        f->result =
                                            json_field(wf, ev, "result");
                                }
                        } else if ((is_type(ev, "ActivityFailed") ||
                                    is_type(ev, "ActivityTimedOut")) &&
                                   json_is_null(json_object_get(
                                       keel__ev_rec(ev), "next_attempt_at"))) {
                                if (take) {
                                        f->failed = 1;
                                        set_failure(wf, &f->failure, ev);
                                }
                        } else {
                                continue;
                        }
                } else if (f->kind == F_CHILD) {
                        if (!is_type(ev, "ChildWorkflowClosed") ||
                            strcmp(keel__ev_str(ev, "child_workflow_id"),
                                   f->name))
                                continue;
                        if (take)
                                child_outcome(wf, f, ev);
                } else if (f->kind == F_TIMER) {
                        if (!is_type(ev, "TimerFired") ||
                            strcmp(keel__ev_str(ev, "timer_id"), f->id))
                                continue;
                        if (take)
                                f->result = keel_own(wf, json_null());
                } else {
                        if (wf->consumed[s - 1] ||
                            !is_type(ev, "SignalReceived") ||
                            strcmp(keel__ev_str(ev, "signal_name"), f->name))
                                continue;
                        if (take) {
                                wf->consumed[s - 1] = 1;
                                f->result = json_field(wf, ev, "payload");
                        }
                }
                if (take) {
                        f->bound = 1;
                        f->seq = s;
                }
                f->scanned = s - 1;
                return s;
        }
        f->scanned = (int64_t)wf->n;
        return 0;
}

/* Deliver a cancellation request to a wait that nothing resolves before
 * it. Returns 1 if delivered now. */

static int deliver_cancel(keel_wf_t *wf, int64_t first_ready)
{
        if (!wf->cancel_seq || wf->cancel_delivered ||
            (first_ready && first_ready < wf->cancel_seq))
                return 0;
        wf->cancel_delivered = 1;
        see(wf, wf->cancel_seq);
        return 1;
}

int keel_select(keel_wf_t *wf, keel_future_t *const *fs, size_t n,
                size_t *ready)
{
        int64_t best = 0;
        size_t bi = 0;

        for (size_t i = 0; i < n; i++) {
                int64_t s;
                if (!fs[i] || fs[i]->cancelled)
                        continue;
                s = resolution(wf, fs[i], 0);
                if (s && (!best || s < best)) {
                        best = s;
                        bi = i;
                }
        }
        if (deliver_cancel(wf, best))
                return KEEL_ERR_CANCELLED;
        if (!best)
                suspend(wf);
        resolution(wf, fs[bi], 1);
        see(wf, best);
        if (ready)
                *ready = bi;
        return KEEL_OK;
}

int keel_await(keel_wf_t *wf, keel_future_t *f, json_t **result)
{
        int rc;
        if (result)
                *result = NULL;
        if (!f)
                return KEEL_ERR_INVALID_ARG;
        if (!f->bound && (rc = keel_select(wf, &f, 1, NULL)))
                return rc;
        if (f->failed) {
                wf->last_failure = f->failure;
                return f->kind == F_CHILD ? KEEL_ERR_WORKFLOW_FAILED
                                          : KEEL_ERR_ACTIVITY_FAILED;
        }
        if (result)
                *result = f->result;
        return KEEL_OK;
}

const keel_failure_t *keel_wf_failure(keel_wf_t *wf)
{
        return wf->last_failure.type ? &wf->last_failure : NULL;
}

/* ---- activities, timers, signals --------------------------------------- */

static json_t *retry_json(const keel_retry_policy_t *rp)
{
        json_t *types = json_array();
        for (size_t i = 0; rp && i < rp->non_retryable_error_types_cnt; i++)
                json_array_append_new(
                    types, json_string(rp->non_retryable_error_types[i]));
        return json_pack("{so so so so so}", "initial_interval_ms",
                         rp && rp->initial_interval_ms > 0
                             ? json_integer(rp->initial_interval_ms)
                             : json_null(),
                         "backoff_coefficient",
                         rp && rp->backoff_coefficient > 0
                             ? json_real(rp->backoff_coefficient)
                             : json_null(),
                         "maximum_interval_ms",
                         rp && rp->maximum_interval_ms > 0
                             ? json_integer(rp->maximum_interval_ms)
                             : json_null(),
                         "maximum_attempts",
                         rp && rp->maximum_attempts > 0
                             ? json_integer(rp->maximum_attempts)
                             : json_null(),
                         "non_retryable_error_types", types);
}

static json_t *opt_ms(int64_t v)
{
        return v > 0 ? json_integer(v) : json_null();
}

keel_future_t *keel_activity_async(keel_wf_t *wf, const char *name,
                                   json_t *input,
                                   const keel_activity_options_t *opts)
{
        static const keel_activity_options_t none;
        keel_future_t *f;
        char *in;
        json_t *rec;
        int64_t stc;

        keel_own(wf, input);
        if (!opts)
                opts = &none;
        f = keel_alloc(wf, sizeof(*f));
        f->kind = F_ACTIVITY;
        next_id(wf, f->id);
        in = dumps(input);
        stc = opts->start_to_close_ms;
        if (stc <= 0 && opts->schedule_to_close_ms <= 0)
                stc = 60000;
        rec = json_pack("{ss ss ss ss so so so so so}", "activity_id", f->id,
                        "activity_type", name ? name : "", "task_queue",
                        opts->task_queue && *opts->task_queue ? opts->task_queue
                                                              : "default",
                        "input", in ? in : "null", "schedule_to_start_ms",
                        opt_ms(opts->schedule_to_start_ms), "start_to_close_ms",
                        opt_ms(stc), "schedule_to_close_ms",
                        opt_ms(opts->schedule_to_close_ms), "heartbeat_ms",
                        opt_ms(opts->heartbeat_ms), "retry_policy",
                        retry_json(&opts->retry));
        if (rec)
                json_object_set_new(rec, "cancellable",
                                    json_boolean(!opts->non_cancellable));
        free(in);
        if (!rec)
                jump(wf, OOM);
        f->scanned = command(wf, EV_PREFIX "ActivityScheduled", rec);
        return f;
}

int keel_activity(keel_wf_t *wf, const char *name, json_t *input,
                  const keel_activity_options_t *opts, json_t **result)
{
        return keel_await(wf, keel_activity_async(wf, name, input, opts),
                          result);
}

keel_future_t *keel_start_child(keel_wf_t *wf, const char *type, json_t *input,
                                const keel_child_options_t *opts)
{
        static const char *const policies[] = {"TERMINATE", "REQUEST_CANCEL",
                                               "ABANDON"};
        keel_future_t *f = keel_alloc(wf, sizeof(*f));
        unsigned pol = opts ? (unsigned)opts->parent_close_policy : 0;
        char id[1100], *in;
        json_t *rec;

        keel_own(wf, input);
        f->kind = F_CHILD;
        next_id(wf, f->id);
        if (opts && opts->workflow_id && *opts->workflow_id)
                snprintf(id, sizeof(id), "%s", opts->workflow_id);
        else
                snprintf(id, sizeof(id), "%.900s/child-%s-%.8s",
                         wf->h->workflow_id, f->id, wf->h->run_id);
        f->name = keel_strdup(wf, id);
        in = dumps(input);
        rec =
            json_pack("{ss ss ss ss}", "child_workflow_id", id, "workflow_type",
                      type ? type : "", "input", in ? in : "null",
                      "parent_close_policy", policies[pol < 3 ? pol : 0]);
        free(in);
        if (!rec)
                jump(wf, OOM);
        f->scanned = command(wf, EV_PREFIX "ChildWorkflowInitiated", rec);
        return f;
}

int keel_child_workflow(keel_wf_t *wf, const char *type, json_t *input,
                        const keel_child_options_t *opts, json_t **result)
{
        return keel_await(wf, keel_start_child(wf, type, input, opts), result);
}

keel_future_t *keel_timer(keel_wf_t *wf, int64_t ms)
{
        keel_future_t *f = keel_alloc(wf, sizeof(*f));
        json_t *rec;
        if (ms < 0)
                ms = 0;
        f->kind = F_TIMER;
        next_id(wf, f->id);
        rec = json_pack("{ss sI sI}", "timer_id", f->id, "duration_ms",
                        (json_int_t)ms, "fire_at",
                        (json_int_t)(keel_now(wf) + ms));
        if (!rec)
                jump(wf, OOM);
        f->scanned = command(wf, EV_PREFIX "TimerStarted", rec);
        return f;
}

void keel_timer_cancel(keel_wf_t *wf, keel_future_t *timer)
{
        json_t *rec;
        if (!timer || timer->kind != F_TIMER || timer->cancelled ||
            resolution(wf, timer, 0))
                return;
        timer->cancelled = 1;
        rec = json_pack("{ss}", "timer_id", timer->id);
        if (!rec)
                jump(wf, OOM);
        command(wf, EV_PREFIX "TimerCancelled", rec);
}

int keel_sleep(keel_wf_t *wf, int64_t ms)
{
        return keel_await(wf, keel_timer(wf, ms), NULL);
}

keel_future_t *keel_signal(keel_wf_t *wf, const char *name)
{
        keel_future_t *f = keel_alloc(wf, sizeof(*f));
        f->kind = F_SIGNAL;
        f->name = keel_strdup(wf, name);
        return f;
}

int keel_wait_signal(keel_wf_t *wf, const char *name, int64_t timeout_ms,
                     json_t **payload)
{
        keel_future_t *fs[2];
        size_t ready;
        int rc;

        if (payload)
                *payload = NULL;
        fs[0] = keel_signal(wf, name);
        if (timeout_ms < 0)
                return keel_await(wf, fs[0], payload);
        /* The timer is started even when a signal is already buffered:
         * whether it is would depend on when the code ran, which replay
         * cannot know; log order decides instead. */
        fs[1] = keel_timer(wf, timeout_ms);
        rc = keel_select(wf, fs, 2, &ready);
        if (rc == KEEL_OK && ready == 1)
                return KEEL_ERR_TIMEOUT;
        keel_timer_cancel(wf, fs[1]);
        if (rc)
                return rc;
        return keel_await(wf, fs[0], payload);
}

/* ---- determinism helpers ----------------------------------------------- */

uint64_t keel_random(keel_wf_t *wf)
{
        /* splitmix64 */
        uint64_t z = (wf->rng += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

void keel_uuid(keel_wf_t *wf, char out[37])
{
        uint64_t a = keel_random(wf), b = keel_random(wf);
        /* version 4, variant 10 */
        a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
        b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
        snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
                 (unsigned)((a >> 16) & 0xffff), (unsigned)(a & 0xffff),
                 (unsigned)(b >> 48),
                 (unsigned long long)(b & 0xffffffffffffULL));
}

int keel_side_effect(keel_wf_t *wf, json_t *(*fn)(void *opaque), void *opaque,
                     json_t **result)
{
        char id[24];
        int64_t seq;
        json_t *rec;

        next_id(wf, id);
        if (wf->cmd_next < wf->n_cmds) {
                /* Replaying: the recorded value, if this is the marker. */
                seq = wf->cmd_seqs[wf->cmd_next];
                rec = json_pack("{ss ss ss}", "marker_name", "side_effect",
                                "marker_id", id, "details", "null");
                if (!rec)
                        jump(wf, OOM);
                command(wf, EV_PREFIX "MarkerRecorded", rec);
                *result = json_field(wf, event(wf, seq), "details");
                return KEEL_OK;
        }
        {
                json_t *v = keel_own(wf, fn(opaque));
                char *text = dumps(v);
                rec =
                    json_pack("{ss ss ss}", "marker_name", "side_effect",
                              "marker_id", id, "details", text ? text : "null");
                free(text);
                if (!rec)
                        jump(wf, OOM);
                command(wf, EV_PREFIX "MarkerRecorded", rec);
                *result = v ? v : keel_own(wf, json_null());
        }
        return KEEL_OK;
}

/* Is the next recorded command the patch marker of change_id? */
static int next_is_patch(keel_wf_t *wf, const char *change_id)
{
        const json_t *ev;
        const char *name, *id;
        if (wf->cmd_next >= wf->n_cmds)
                return 0;
        ev = event(wf, wf->cmd_seqs[wf->cmd_next]);
        name = keel__ev_str(ev, "marker_name");
        id = keel__ev_str(ev, "marker_id");
        return is_type(ev, "MarkerRecorded") && name && id &&
               !strcmp(name, "patch") && !strcmp(id, change_id);
}

/* Issue (or, replaying, match) the patch marker of change_id. */
static void patch_marker(keel_wf_t *wf, const char *change_id)
{
        json_t *rec = json_pack("{ss ss ss}", "marker_name", "patch",
                                "marker_id", change_id, "details", "null");
        if (!rec)
                jump(wf, OOM);
        command(wf, EV_PREFIX "MarkerRecorded", rec);
}

int keel_patched(keel_wf_t *wf, const char *change_id)
{
        struct patch_s *p;

        for (p = wf->patches; p; p = p->next)
                if (!strcmp(p->id, change_id))
                        return p->patched;
        p = keel_alloc(wf, sizeof(*p));
        p->id = keel_strdup(wf, change_id);
        p->next = wf->patches;
        wf->patches = p;
        /* Recorded commands still ahead were written by the code of
         * their time: the new path only if it recorded the marker. With
         * none ahead, the run is past its history: the new path. */
        p->patched = wf->cmd_next >= wf->n_cmds || next_is_patch(wf, change_id);
        if (p->patched)
                patch_marker(wf, change_id);
        return p->patched;
}

void keel_deprecate_patch(keel_wf_t *wf, const char *change_id)
{
        if (next_is_patch(wf, change_id))
                patch_marker(wf, change_id);
}

/* Issue (or, replaying, match) a MarkerRecorded `name` with the next ID
 * and details (borrowed) as JSON text. Replaying, the command is only
 * matched: its details may differ from the recorded ones, as they are not
 * read back. */
static void record_marker(keel_wf_t *wf, const char *name,
                          const json_t *details)
{
        char id[24];
        char *text;
        json_t *rec;

        next_id(wf, id);
        text = dumps(details);
        rec = text ? json_pack("{ss ss ss}", "marker_name", name, "marker_id",
                               id, "details", text)
                   : NULL;
        free(text);
        if (!rec)
                jump(wf, OOM);
        command(wf, EV_PREFIX "MarkerRecorded", rec);
}

int keel_set_state(keel_wf_t *wf, json_t *state)
{
        keel_own(wf, state);
        record_marker(wf, "state", state);
        return KEEL_OK;
}

const json_t *keel_wf_search_attributes(keel_wf_t *wf)
{
        json_t *set = NULL;
        if (wf->search_attrs)
                return wf->search_attrs;
        /* The start's, the first time: the upserts since are merged into
         * it as the code makes them. */
        if (keel__sa_apply(&set, event(wf, 1)) ||
            (!set && !(set = json_object()))) {
                json_decref(set);
                jump(wf, OOM);
        }
        wf->search_attrs = keel_own(wf, set);
        return set;
}

int keel_upsert_search_attributes(keel_wf_t *wf, json_t *attrs)
{
        char why[256];
        json_t *set;

        keel_own(wf, attrs);
        /* Refused arguments record nothing and leave the set as it was, on
         * every replay alike: the answer depends on attrs and the set. */
        if (!keel__sa_check(attrs, 1, why, sizeof(why))) {
                set = keel_own(
                    wf, json_copy((json_t *)keel_wf_search_attributes(wf)));
                if (!set || keel__sa_merge(set, attrs))
                        jump(wf, OOM);
                if (!keel__sa_check(set, 0, why, sizeof(why))) {
                        wf->search_attrs = set;
                        record_marker(wf, KEEL__SA_MARKER, attrs);
                        return KEEL_OK;
                }
        }
        keel_wf_log(wf, KEEL_LOG_WARN,
                    "msg=\"search attributes refused\" error=\"%s\"", why);
        return KEEL_ERR_INVALID_ARG;
}

/* A topic a workflow may emit to: a name Kafka accepts ([a-zA-Z0-9._-],
 * 1 to 249 chars, not "." or ".."), not one of keel's (keel.*) nor one of
 * Kafka's internal ones (__*). */
static int emit_topic_ok(const char *topic)
{
        size_t n = topic ? strlen(topic) : 0;
        if (!n || n > 249 || !strcmp(topic, ".") || !strcmp(topic, "..") ||
            !strncmp(topic, "keel.", 5) || !strncmp(topic, "__", 2))
                return 0;
        return strspn(topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                             "VWXYZ0123456789._-") == n;
}

int keel_emit_ex(keel_wf_t *wf, const char *topic, const char *key,
                 json_t *value, const keel_emit_options_t *opts)
{
        static const keel_emit_options_t none;
        json_t *headers, *rec, *jkey;
        size_t bytes;
        char *text;

        keel_own(wf, value);
        if (!opts)
                opts = &none;
        /* Refused arguments record nothing, on every replay alike: the
         * answer depends on the arguments only. */
        if (!emit_topic_ok(topic) ||
            (opts->explicit_partition && opts->partition < 0) ||
            (opts->headers_cnt && !opts->headers))
                return KEEL_ERR_INVALID_ARG;
        /* Keys and headers are UTF-8: json_string() refuses anything
         * else, as it refuses NULL. */
        if (!(headers = keel_own(wf, json_array())))
                jump(wf, OOM);
        if (!(jkey = keel_own(wf, key ? json_string(key) : json_null())))
                return KEEL_ERR_INVALID_ARG;
        bytes = key ? strlen(key) : 0;
        for (size_t i = 0; i < opts->headers_cnt; i++) {
                const keel_emit_header_t *h = &opts->headers[i];
                const char *hv = h->value ? h->value : "";
                json_t *name = h->name ? json_string(h->name) : NULL;
                json_t *val = json_string(hv);
                if (!name || !val || !*h->name || !strcmp(h->name, "keel-id")) {
                        json_decref(name);
                        json_decref(val);
                        return KEEL_ERR_INVALID_ARG;
                }
                bytes += strlen(h->name) + strlen(hv);
                if (json_array_append_new(
                        headers,
                        json_pack("{so so}", "name", name, "value", val)))
                        jump(wf, OOM);
        }
        text = dumps(value);
        if (!text)
                jump(wf, OOM);
        if (bytes + strlen(text) > KEEL_EMIT_MAX_BYTES) {
                free(text);
                return KEEL_ERR_TOO_LARGE;
        }
        rec = json_pack("{ss sO ss so sO}", "topic", topic, "key", jkey,
                        "value", text, "partition",
                        opts->explicit_partition ? json_integer(opts->partition)
                                                 : json_null(),
                        "headers", headers);
        free(text);
        if (!rec)
                jump(wf, OOM);
        command(wf, EV_PREFIX "RecordEmitted", rec);
        return KEEL_OK;
}

int keel_emit(keel_wf_t *wf, const char *topic, const char *key, json_t *value)
{
        return keel_emit_ex(wf, topic, key, value, NULL);
}

keel_err_t keel_continue_as_new(keel_wf_t *wf, json_t *input)
{
        wf->can_input = keel_own(wf, input ? input : json_null());
        wf->continued = 1;
        return KEEL_ERR_CONTINUED_AS_NEW;
}

void keel__run_id_make(const char *workflow_id, const char *command_id,
                       char out[37])
{
        char buf[1200];
        uint32_t h[4];
        for (int i = 0; i < 4; i++) {
                snprintf(buf, sizeof(buf), "%d|%s|%s", i, workflow_id,
                         command_id);
                h[i] = (uint32_t)keel_murmur2(buf, strlen(buf));
        }
        snprintf(out, 37, "%08x-%04x-4%03x-%04x-%04x%08x", h[0], h[1] >> 16,
                 h[1] & 0xfff, (h[2] >> 16 & 0x3fff) | 0x8000, h[2] & 0xffff,
                 h[3]);
}

void keel__continued_command_id(const char *run_id, char *out, size_t size)
{
        snprintf(out, size, "continued/%s", run_id);
}

keel_err_t keel_fail(keel_wf_t *wf, const char *type, const char *message,
                     json_t *details)
{
        keel_own(wf, details);
        wf->failed = 1;
        wf->fail.type = keel_strdup(wf, type ? type : "WorkflowFailed");
        wf->fail.message = keel_strdup(wf, message ? message : "");
        wf->fail.details = details ? details : keel_own(wf, json_null());
        return KEEL_ERR_WORKFLOW_FAILED;
}

/* ---- activation -------------------------------------------------------- */

static json_t *failure_json(const keel_failure_t *f)
{
        char *d = dumps(f->details);
        json_t *j =
            json_pack("{ss ss ss sb}", "type", f->type ? f->type : "",
                      "message", f->message ? f->message : "", "details",
                      d ? d : "null", "non_retryable", f->non_retryable);
        free(d);
        return j;
}

/* Issue the closing command for the function's return value. */
static keel__wf_status_t close_run(keel_wf_t *wf, int rc, json_t *result)
{
        json_t *rec;
        const char *type;
        keel__wf_status_t st;

        keel_own(wf, result);
        if (rc == KEEL_OK) {
                char *text = dumps(result);
                rec = json_pack("{ss}", "result", text ? text : "null");
                free(text);
                type = EV_PREFIX "WorkflowCompleted";
                st = KEEL__WF_COMPLETED;
        } else if (rc == KEEL_ERR_CANCELLED) {
                rec = json_pack("{ss}", "details", "null");
                type = EV_PREFIX "WorkflowCancelled";
                st = KEEL__WF_CANCELLED;
        } else if (rc == KEEL_ERR_CONTINUED_AS_NEW && wf->continued) {
                char *text = dumps(wf->can_input);
                char cid[80], run_id[37];
                keel__continued_command_id(wf->h->run_id, cid, sizeof(cid));
                keel__run_id_make(wf->h->workflow_id, cid, run_id);
                rec = json_pack("{ss ss ss}", "new_run_id", run_id,
                                "workflow_type", wf->type, "input",
                                text ? text : "null");
                free(text);
                type = EV_PREFIX "WorkflowContinuedAsNew";
                st = KEEL__WF_CONTINUED;
        } else {
                keel_failure_t f = {0};
                if (wf->failed)
                        f = wf->fail;
                else if (rc == KEEL_ERR_ACTIVITY_FAILED &&
                         wf->last_failure.type)
                        f = wf->last_failure;
                else {
                        f.type = keel_err_name(rc);
                        f.message = keel_err_str(rc);
                }
                rec = json_pack("{so}", "failure", failure_json(&f));
                type = EV_PREFIX "WorkflowFailed";
                st = KEEL__WF_FAILED;
        }
        if (!rec)
                jump(wf, OOM);
        command(wf, type, rec);
        check_all_matched(wf, "nothing more (it returned)");
        return st;
}

/* Index the history: command events, the first cancel request. */
static int index_history(keel_wf_t *wf, char *err, size_t errsize)
{
        wf->cmd_seqs = calloc(wf->n + 1, sizeof(int64_t));
        wf->consumed = calloc(wf->n + 1, 1);
        if (!wf->cmd_seqs || !wf->consumed)
                return KEEL_ERR_NOMEM;
        for (size_t i = 0; i < wf->n; i++) {
                const json_t *ev = json_array_get(wf->h->events, i);
                if (keel__ev_int(ev, "seq") != (int64_t)i + 1) {
                        snprintf(err, errsize, "history event %zu has seq %lld",
                                 i + 1, (long long)keel__ev_int(ev, "seq"));
                        return KEEL_ERR_CORRUPT;
                }
                if (is_command_event(ev))
                        wf->cmd_seqs[wf->n_cmds++] = (int64_t)i + 1;
                else if (is_type(ev, "WorkflowCancelRequested") &&
                         !wf->cancel_seq)
                        wf->cancel_seq = (int64_t)i + 1;
        }
        return KEEL_OK;
}

/* The seqs of the SignalReceived events no wait of the code took, in
 * order (NULL when out of memory). */
static json_t *untaken_signals(keel_wf_t *wf)
{
        json_t *seqs = json_array();
        for (size_t s = 1; seqs && s <= wf->n; s++)
                if (!wf->consumed[s - 1] &&
                    is_type(event(wf, (int64_t)s), "SignalReceived") &&
                    json_array_append_new(seqs, json_integer((json_int_t)s))) {
                        json_decref(seqs);
                        seqs = NULL;
                }
        return seqs;
}

int keel__wf_activate(const keel_registry_t *reg, const keel__history_t *h,
                      int64_t now_ms, keel__activation_t *out)
{
        keel_wf_t *wf;
        const json_t *started;
        keel_workflow_fn_t fn;
        volatile keel__wf_status_t st = KEEL__WF_ERROR;
        json_t *input;
        int rc, jr;

        memset(out, 0, sizeof(*out));
        out->new_events = json_array();
        wf = calloc(1, sizeof(*wf));
        if (!wf || !out->new_events) {
                free(wf);
                json_decref(out->new_events);
                out->new_events = NULL;
                return KEEL_ERR_NOMEM;
        }
        wf->h = h;
        wf->reg = reg;
        wf->n = json_array_size(h->events);
        wf->now_ms = now_ms;
        wf->new_events = out->new_events;
        wf->rng =
            (uint64_t)(uint32_t)keel_murmur2(h->run_id, strlen(h->run_id)) *
            0x9e3779b97f4a7c15ULL;

        started = json_array_get(h->events, 0);
        if (!started || !is_type(started, "WorkflowStarted")) {
                snprintf(out->message, sizeof(out->message),
                         "history of %s does not begin with WorkflowStarted",
                         h->workflow_id);
                goto done;
        }
        wf->type = keel__ev_str(started, "workflow_type");
        fn = keel__registry_find(reg, wf->type);
        if (!fn) {
                snprintf(out->message, sizeof(out->message),
                         "no workflow type '%s' is registered", wf->type);
                goto done;
        }
        rc = index_history(wf, out->message, sizeof(out->message));
        if (rc == KEEL_ERR_NOMEM) {
                run_free(wf);
                free(wf);
                json_decref(out->new_events);
                out->new_events = NULL;
                return rc;
        }
        if (rc)
                goto done;
        wf->horizon = 1;

        jr = setjmp(wf->jb);
        if (jr == 0) {
                json_t *result = NULL;
                input = json_field(wf, started, "input");
                rc = fn(wf, input, &result);
                st = close_run(wf, rc, result);
                if (st == KEEL__WF_CONTINUED)
                        out->carried_signals = untaken_signals(wf);
        } else if (jr == SUSPEND) {
                st = KEEL__WF_SUSPENDED;
        } else if (jr == BLOCK) {
                st = KEEL__WF_BLOCKED;
                snprintf(out->message, sizeof(out->message), "%s", wf->message);
                /* Say it once: not again if the last such event says the
                 * same. */
                for (size_t i = wf->n; i > 0; i--) {
                        const json_t *ev = json_array_get(h->events, i - 1);
                        if (!is_type(ev, "NonDeterminismDetected"))
                                continue;
                        if (!strcmp(keel__ev_str(ev, "message"), wf->message))
                                json_array_clear(out->new_events);
                        break;
                }
        } else {
                run_free(wf);
                free(wf);
                json_decref(out->new_events);
                out->new_events = NULL;
                return KEEL_ERR_NOMEM;
        }

done:
        /* Stamp the new events. */
        {
                size_t i;
                json_t *ev;
                int64_t seq = (int64_t)wf->n;
                json_array_foreach(out->new_events, i, ev)
                {
                        json_t *rec = (json_t *)keel__ev_rec(ev);
                        json_object_set_new(rec, "workflow_id",
                                            json_string(h->workflow_id));
                        json_object_set_new(rec, "run_id",
                                            json_string(h->run_id));
                        json_object_set_new(rec, "seq", json_integer(++seq));
                        json_object_set_new(rec, "epoch", json_integer(0));
                        json_object_set_new(rec, "ts", json_integer(now_ms));
                }
        }
        out->status = st;
        run_free(wf);
        free(wf);
        return KEEL_OK;
}

/*
 * test_fold.c: the projector's fold (projector/src/fold.c). Hand-built
 * keel.history event sequences go through proj_fold_apply() and the tests
 * check what the HTTP API would show from them: a workflow's status, its
 * pending activities and timers, its signals, its result or failure, the
 * counts by status, the listing order, and that the latest run replaces
 * an older one. Events with missing or wrong-typed fields are ignored. A
 * RunDeleted forgets the workflow, and readers that start after
 * compaction removed a deleted run, or part of it, end in the same state.
 */
#include "history_int.h"
#include "keel/codec.h"
#include "keel/error.h"
#include "keel_test.h"
#include "proj.h"

#include <stdlib.h>
#include <string.h>

#define T0     1767225600000LL /* 2026-01-01T00:00:00Z */
#define SECOND 1000LL

/* ---- building events --------------------------------------------------- */

/*
 * Apply one event of schema keel.history.<type> for run `run` of workflow
 * `id` with sequence number seq (ts = T0 + seq seconds), read at
 * keel.history offset `offset` (-1: not known). The record is the common
 * fields plus those of `fields` (stolen; NULL for none).
 */
static void apply_at(proj_fold_t *f, const char *type, const char *id,
                     const char *run, int64_t seq, int64_t offset,
                     json_t *fields)
{
        char name[128];
        json_t *rec =
            json_pack("{ss ss sI sI sI}", "workflow_id", id, "run_id", run,
                      "seq", (json_int_t)seq, "epoch", (json_int_t)1, "ts",
                      (json_int_t)(T0 + seq * SECOND));
        json_t *ev;

        CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
        if (fields) {
                json_object_update(rec, fields);
                json_decref(fields);
        }
        snprintf(name, sizeof(name), "keel.history.%s", type);
        ev = json_pack("{ss so}", "type", name, "record", rec);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        if (offset >= 0)
                json_object_set_new(ev, "offset", json_integer(offset));
        proj_fold_apply(f, ev);
        json_decref(ev);
}

/* The same without the record's keel.history offset. */
static void apply(proj_fold_t *f, const char *type, const char *id,
                  const char *run, int64_t seq, json_t *fields)
{
        apply_at(f, type, id, run, seq, -1, fields);
}

static void start(proj_fold_t *f, const char *id, const char *run, int64_t seq,
                  const char *wf_type, const char *input)
{
        apply(f, "WorkflowStarted", id, run, seq,
              json_pack("{ss ss ss}", "workflow_type", wf_type, "input", input,
                        "command_id", "cmd-1"));
}

static void schedule(proj_fold_t *f, const char *id, const char *run,
                     int64_t seq, const char *act_id, const char *act_type)
{
        apply(f, "ActivityScheduled", id, run, seq,
              json_pack("{ss ss ss ss}", "activity_id", act_id, "activity_type",
                        act_type, "task_queue", "payments", "input", "{}"));
}

static void signal_wf(proj_fold_t *f, const char *id, const char *run,
                      int64_t seq, const char *name)
{
        apply(f, "SignalReceived", id, run, seq,
              json_pack("{ss ss ss}", "signal_name", name, "payload", "null",
                        "command_id", "cmd-s"));
}

/* A failure record as the codec decodes it. */
static json_t *failure(const char *type, const char *message)
{
        return json_pack("{ss ss ss sb}", "type", type, "message", message,
                         "details", "null", "non_retryable", 0);
}

/* proj_wf_text(wf) is byte for byte jansson's dump of proj_wf_json(wf). */
static void text_is_dump(const proj_wf_t *wf)
{
        json_t *o = proj_wf_json(wf);
        char *want = o ? json_dumps(o, JSON_COMPACT) : NULL;
        char *got = proj_wf_text(wf);

        if (!want || !got || strcmp(want, got))
                fprintf(stderr, "\n  jansson: %s\n  direct:  %s\n",
                        want ? want : "(null)", got ? got : "(null)");
        CU_ASSERT_PTR_NOT_NULL(got);
        CU_ASSERT_TRUE(want && got && !strcmp(want, got));
        free(want);
        free(got);
        json_decref(o);
}

/* The full JSON state of workflow id (new reference; the test fails if
 * the fold has no such workflow). Its text written directly must be the
 * same. */
static json_t *state_of(proj_fold_t *f, const char *id)
{
        proj_wf_t *wf = proj_fold_get(f, id);
        json_t *o;

        CU_ASSERT_PTR_NOT_NULL_FATAL(wf);
        o = proj_wf_json(wf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        text_is_dump(wf);
        return o;
}

static const char *jstr(const json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "<not a string>";
}

static json_int_t jint(const json_t *o, const char *k)
{
        const json_t *v = json_object_get(o, k);
        CU_ASSERT_TRUE(json_is_integer(v));
        return json_integer_value(v);
}

/* The pending activity act_id in state o, or NULL. */
static json_t *pending(const json_t *o, const char *act_id)
{
        json_t *acts = json_object_get(o, "pending_activities"), *a;
        size_t i;

        CU_ASSERT_TRUE(json_is_array(acts));
        json_array_foreach(acts, i, a)
        {
                if (!strcmp(jstr(a, "activity_id"), act_id))
                        return a;
        }
        return NULL;
}

/* The counts by status add up to the number of workflows. */
static void counts_add_up(const proj_fold_t *f)
{
        uint64_t sum = 0;
        for (int i = 0; i < PROJ_NSTATUS; i++)
                sum += f->by_status[i];
        CU_ASSERT_EQUAL(sum, f->count);
}

/* Every status count is as given, and they add up to the fold's size. */
static void check_counts(const proj_fold_t *f, uint64_t running,
                         uint64_t blocked, uint64_t completed, uint64_t failed,
                         uint64_t cancelled, uint64_t terminated)
{
        CU_ASSERT_EQUAL(f->by_status[KEEL__RUN_RUNNING], running);
        CU_ASSERT_EQUAL(f->by_status[KEEL__RUN_BLOCKED], blocked);
        CU_ASSERT_EQUAL(f->by_status[KEEL__RUN_COMPLETED], completed);
        CU_ASSERT_EQUAL(f->by_status[KEEL__RUN_FAILED], failed);
        CU_ASSERT_EQUAL(f->by_status[KEEL__RUN_CANCELLED], cancelled);
        CU_ASSERT_EQUAL(f->by_status[KEEL__RUN_TERMINATED], terminated);
        counts_add_up(f);
}

/* ---- tests ------------------------------------------------------------- */

static void test_fold_start_is_running_with_input(void)
{
        proj_fold_t f;
        proj_wf_t *wf;
        json_t *o, *sum;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        CU_ASSERT_PTR_NULL(proj_fold_get(&f, "order-42"));
        start(&f, "order-42", "run-1", 1, "payment", "{\"amount\":4200}");

        wf = proj_fold_get(&f, "order-42");
        CU_ASSERT_PTR_NOT_NULL_FATAL(wf);
        CU_ASSERT_EQUAL(wf->status, PROJ_RUNNING);
        CU_ASSERT_FALSE(wf->closed);
        CU_ASSERT_STRING_EQUAL(wf->run_id, "run-1");
        CU_ASSERT_STRING_EQUAL(wf->type, "payment");
        CU_ASSERT_EQUAL(wf->start_ts, T0 + SECOND);
        CU_ASSERT_EQUAL(wf->history_length, 1);
        CU_ASSERT_EQUAL(f.count, 1);
        CU_ASSERT_EQUAL(f.events, 1);
        check_counts(&f, 1, 0, 0, 0, 0, 0);
        CU_ASSERT_PTR_NULL(proj_fold_get(&f, "order-4"));
        CU_ASSERT_PTR_NULL(proj_fold_get(&f, "order-420"));

        o = state_of(&f, "order-42");
        CU_ASSERT_STRING_EQUAL(jstr(o, "workflow_id"), "order-42");
        CU_ASSERT_STRING_EQUAL(jstr(o, "run_id"), "run-1");
        CU_ASSERT_STRING_EQUAL(jstr(o, "type"), "payment");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        CU_ASSERT_STRING_EQUAL(jstr(o, "start_time"),
                               "2026-01-01T00:00:01.000Z");
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "close_time")));
        CU_ASSERT_EQUAL(jint(o, "history_length"), 1);
        /* The input is shown as JSON, not as the text the history holds. */
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(o, "input"), "amount")),
                        4200);
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "result")));
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "failure")));
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "pending_timers")),
                        0);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(o, "signals"), "count")),
                        0);
        json_decref(o);

        /* The summary has the listing's fields and nothing of the state. */
        sum = proj_wf_summary_json(proj_fold_get(&f, "order-42"));
        CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
        CU_ASSERT_EQUAL(json_object_size(sum), 8);
        CU_ASSERT_EQUAL(
            json_object_size(json_object_get(sum, "search_attributes")), 0);
        CU_ASSERT_STRING_EQUAL(jstr(sum, "workflow_id"), "order-42");
        CU_ASSERT_STRING_EQUAL(jstr(sum, "status"), "running");
        CU_ASSERT_STRING_EQUAL(jstr(sum, "start_time"),
                               "2026-01-01T00:00:01.000Z");
        CU_ASSERT_TRUE(json_is_null(json_object_get(sum, "close_time")));
        CU_ASSERT_EQUAL(jint(sum, "history_length"), 1);
        CU_ASSERT_PTR_NULL(json_object_get(sum, "input"));
        json_decref(sum);
        proj_fold_destroy(&f);
}

static void test_fold_activity_scheduled_is_pending(void)
{
        proj_fold_t f;
        json_t *o, *a;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        schedule(&f, "wf", "r1", 2, "1", "chargeCard");
        schedule(&f, "wf", "r1", 3, "2", "reserveInventory");
        /* The same activity scheduled twice is still one. */
        schedule(&f, "wf", "r1", 4, "2", "reserveInventory");

        o = state_of(&f, "wf");
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 2);
        a = pending(o, "1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_STRING_EQUAL(jstr(a, "activity_type"), "chargeCard");
        CU_ASSERT_EQUAL(jint(a, "attempt"), 1);
        CU_ASSERT_TRUE(json_is_null(json_object_get(a, "last_failure")));
        a = pending(o, "2");
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_STRING_EQUAL(jstr(a, "activity_type"), "reserveInventory");
        CU_ASSERT_EQUAL(jint(o, "history_length"), 4);
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        json_decref(o);
        check_counts(&f, 1, 0, 0, 0, 0, 0);
        proj_fold_destroy(&f);
}

static void test_fold_activity_retry_shows_attempt_and_failure(void)
{
        proj_fold_t f;
        json_t *o, *a, *lf;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        schedule(&f, "wf", "r1", 2, "1", "chargeCard");
        /* Attempt 1 fails; another follows. */
        apply(&f, "ActivityFailed", "wf", "r1", 3,
              json_pack("{ss si so sI}", "activity_id", "1", "attempt", 1,
                        "failure",
                        failure("CardDeclined", "insufficient funds"),
                        "next_attempt_at", (json_int_t)(T0 + 10 * SECOND)));
        o = state_of(&f, "wf");
        a = pending(o, "1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(jint(a, "attempt"), 1);
        lf = json_object_get(a, "last_failure");
        CU_ASSERT_TRUE(json_is_object(lf));
        CU_ASSERT_STRING_EQUAL(jstr(lf, "type"), "CardDeclined");
        CU_ASSERT_STRING_EQUAL(jstr(lf, "message"), "insufficient funds");
        json_decref(o);

        /* Attempt 2 starts: the last failure stays visible. */
        apply(&f, "ActivityRetried", "wf", "r1", 4,
              json_pack("{ss si}", "activity_id", "1", "attempt", 2));
        o = state_of(&f, "wf");
        a = pending(o, "1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(jint(a, "attempt"), 2);
        CU_ASSERT_STRING_EQUAL(jstr(json_object_get(a, "last_failure"), "type"),
                               "CardDeclined");
        json_decref(o);

        /* Attempt 2 times out and a third follows. */
        apply(&f, "ActivityTimedOut", "wf", "r1", 5,
              json_pack("{ss si ss sI}", "activity_id", "1", "attempt", 2,
                        "timeout_type", "START_TO_CLOSE", "next_attempt_at",
                        (json_int_t)(T0 + 30 * SECOND)));
        apply(&f, "ActivityRetried", "wf", "r1", 6,
              json_pack("{ss si}", "activity_id", "1", "attempt", 3));
        o = state_of(&f, "wf");
        a = pending(o, "1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(jint(a, "attempt"), 3);
        lf = json_object_get(a, "last_failure");
        CU_ASSERT_STRING_EQUAL(jstr(lf, "type"), "Timeout");
        CU_ASSERT_STRING_EQUAL(jstr(lf, "timeout_type"), "START_TO_CLOSE");
        json_decref(o);

        /* Attempt 3 fails for good (no next attempt): no longer pending. */
        apply(&f, "ActivityFailed", "wf", "r1", 7,
              json_pack("{ss si so so}", "activity_id", "1", "attempt", 3,
                        "failure", failure("CardDeclined", "still no funds"),
                        "next_attempt_at", json_null()));
        o = state_of(&f, "wf");
        CU_ASSERT_PTR_NULL(pending(o, "1"));
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        CU_ASSERT_EQUAL(jint(o, "history_length"), 7);
        json_decref(o);
        proj_fold_destroy(&f);
}

static void test_fold_activity_completed_is_removed(void)
{
        proj_fold_t f;
        json_t *o;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        schedule(&f, "wf", "r1", 2, "1", "chargeCard");
        schedule(&f, "wf", "r1", 3, "2", "reserveInventory");
        schedule(&f, "wf", "r1", 4, "3", "sendReceipt");
        apply(&f, "ActivityCompleted", "wf", "r1", 5,
              json_pack("{ss si ss}", "activity_id", "2", "attempt", 1,
                        "result", "{\"ok\":true}"));
        /* A result for an activity that is not pending changes nothing. */
        apply(&f, "ActivityCompleted", "wf", "r1", 6,
              json_pack("{ss si ss}", "activity_id", "99", "attempt", 1,
                        "result", "null"));
        o = state_of(&f, "wf");
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 2);
        CU_ASSERT_PTR_NOT_NULL(pending(o, "1"));
        CU_ASSERT_PTR_NULL(pending(o, "2"));
        CU_ASSERT_PTR_NOT_NULL(pending(o, "3"));
        json_decref(o);

        apply(&f, "ActivityCompleted", "wf", "r1", 7,
              json_pack("{ss si ss}", "activity_id", "1", "attempt", 1,
                        "result", "1"));
        apply(&f, "ActivityCompleted", "wf", "r1", 8,
              json_pack("{ss si ss}", "activity_id", "3", "attempt", 1,
                        "result", "1"));
        o = state_of(&f, "wf");
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        json_decref(o);
        proj_fold_destroy(&f);
}

static void test_fold_timer_started_and_fired(void)
{
        proj_fold_t f;
        json_t *o, *timers, *t;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        apply(&f, "TimerStarted", "wf", "r1", 2,
              json_pack("{ss sI sI}", "timer_id", "t1", "duration_ms",
                        (json_int_t)(72 * 3600 * SECOND), "fire_at",
                        (json_int_t)(T0 + 72 * 3600 * SECOND + 250)));
        apply(&f, "TimerStarted", "wf", "r1", 3,
              json_pack("{ss sI sI}", "timer_id", "t2", "duration_ms",
                        (json_int_t)SECOND, "fire_at",
                        (json_int_t)(T0 + 4 * SECOND)));
        o = state_of(&f, "wf");
        timers = json_object_get(o, "pending_timers");
        CU_ASSERT_EQUAL_FATAL(json_array_size(timers), 2);
        t = json_array_get(timers, 0);
        if (strcmp(jstr(t, "timer_id"), "t1"))
                t = json_array_get(timers, 1);
        CU_ASSERT_STRING_EQUAL(jstr(t, "timer_id"), "t1");
        CU_ASSERT_STRING_EQUAL(jstr(t, "fire_at"), "2026-01-04T00:00:00.250Z");
        json_decref(o);

        apply(&f, "TimerFired", "wf", "r1", 4,
              json_pack("{ss}", "timer_id", "t2"));
        o = state_of(&f, "wf");
        timers = json_object_get(o, "pending_timers");
        CU_ASSERT_EQUAL_FATAL(json_array_size(timers), 1);
        CU_ASSERT_STRING_EQUAL(jstr(json_array_get(timers, 0), "timer_id"),
                               "t1");
        json_decref(o);

        apply(&f, "TimerCancelled", "wf", "r1", 5,
              json_pack("{ss}", "timer_id", "t1"));
        o = state_of(&f, "wf");
        CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "pending_timers")),
                        0);
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        json_decref(o);
        proj_fold_destroy(&f);
}

/* The signal names state o shows, joined with ','. */
static void signal_names(const json_t *o, char *buf, size_t size)
{
        json_t *last = json_object_get(json_object_get(o, "signals"), "last");
        json_t *n;
        size_t i, len = 0;

        buf[0] = '\0';
        CU_ASSERT_TRUE(json_is_array(last));
        json_array_foreach(last, i, n)
        {
                int w =
                    snprintf(buf + len, size - len, "%s%s", i ? "," : "",
                             json_is_string(n) ? json_string_value(n) : "?");
                if (w > 0 && (size_t)w < size - len)
                        len += (size_t)w;
        }
}

static void test_fold_signals_count_and_last_names(void)
{
        proj_fold_t f;
        json_t *o;
        char names[256];
        char name[16];

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        signal_wf(&f, "wf", "r1", 2, "s1");
        signal_wf(&f, "wf", "r1", 3, "s2");
        o = state_of(&f, "wf");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(o, "signals"), "count")),
                        2);
        signal_names(o, names, sizeof(names));
        CU_ASSERT_STRING_EQUAL(names, "s1,s2");
        json_decref(o);

        /* Five are remembered, oldest first; older ones are dropped. */
        for (int i = 3; i <= 5; i++) {
                snprintf(name, sizeof(name), "s%d", i);
                signal_wf(&f, "wf", "r1", i + 1, name);
        }
        o = state_of(&f, "wf");
        signal_names(o, names, sizeof(names));
        CU_ASSERT_STRING_EQUAL(names, "s1,s2,s3,s4,s5");
        json_decref(o);
        for (int i = 6; i <= 12; i++) {
                snprintf(name, sizeof(name), "s%d", i);
                signal_wf(&f, "wf", "r1", i + 1, name);
        }
        o = state_of(&f, "wf");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(o, "signals"), "count")),
                        12);
        signal_names(o, names, sizeof(names));
        CU_ASSERT_STRING_EQUAL(names, "s8,s9,s10,s11,s12");
        CU_ASSERT_EQUAL(jint(o, "history_length"), 13);
        json_decref(o);
        proj_fold_destroy(&f);
}

static void test_fold_completion_with_result(void)
{
        proj_fold_t f;
        proj_wf_t *wf;
        json_t *o;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        start(&f, "other", "r9", 1, "payment", "{}");
        schedule(&f, "wf", "r1", 2, "1", "chargeCard");
        apply(&f, "TimerStarted", "wf", "r1", 3,
              json_pack("{ss sI sI}", "timer_id", "t1", "duration_ms",
                        (json_int_t)SECOND, "fire_at",
                        (json_int_t)(T0 + 9 * SECOND)));
        check_counts(&f, 2, 0, 0, 0, 0, 0);
        apply(&f, "WorkflowCompleted", "wf", "r1", 4,
              json_pack("{ss}", "result", "{\"status\":\"refunded\"}"));

        wf = proj_fold_get(&f, "wf");
        CU_ASSERT_PTR_NOT_NULL_FATAL(wf);
        CU_ASSERT_EQUAL(wf->status, KEEL__RUN_COMPLETED);
        CU_ASSERT_TRUE(wf->closed);
        CU_ASSERT_EQUAL(wf->close_ts, T0 + 4 * SECOND);
        check_counts(&f, 1, 0, 1, 0, 0, 0);
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "completed");
        CU_ASSERT_STRING_EQUAL(jstr(o, "close_time"),
                               "2026-01-01T00:00:04.000Z");
        CU_ASSERT_STRING_EQUAL(jstr(json_object_get(o, "result"), "status"),
                               "refunded");
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "failure")));
        /* Nothing is pending once the run is closed. */
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "pending_timers")),
                        0);
        json_decref(o);

        /* A closed run stays closed. */
        apply(&f, "NonDeterminismDetected", "wf", "r1", 5,
              json_pack("{sI ss ss ss}", "event_seq", (json_int_t)2, "expected",
                        "a", "actual", "b", "message", "m"));
        apply(&f, "WorkflowFailed", "wf", "r1", 6,
              json_pack("{so}", "failure", failure("Late", "too late")));
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "completed");
        CU_ASSERT_STRING_EQUAL(jstr(o, "close_time"),
                               "2026-01-01T00:00:04.000Z");
        json_decref(o);
        check_counts(&f, 1, 0, 1, 0, 0, 0);
        proj_fold_destroy(&f);
}

static void test_fold_failure(void)
{
        proj_fold_t f;
        json_t *o, *fail;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        schedule(&f, "wf", "r1", 2, "1", "chargeCard");
        apply(&f, "WorkflowFailed", "wf", "r1", 3,
              json_pack("{so}", "failure",
                        failure("ChargeFailed", "card declined")));
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "failed");
        fail = json_object_get(o, "failure");
        CU_ASSERT_TRUE(json_is_object(fail));
        CU_ASSERT_STRING_EQUAL(jstr(fail, "type"), "ChargeFailed");
        CU_ASSERT_STRING_EQUAL(jstr(fail, "message"), "card declined");
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "result")));
        CU_ASSERT_TRUE(json_is_string(json_object_get(o, "close_time")));
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        json_decref(o);
        check_counts(&f, 0, 0, 0, 1, 0, 0);
        proj_fold_destroy(&f);
}

static void test_fold_cancel_and_terminate(void)
{
        proj_fold_t f;
        json_t *o;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "c", "r1", 1, "payment", "{}");
        start(&f, "t", "r1", 1, "payment", "{}");
        schedule(&f, "c", "r1", 2, "1", "chargeCard");
        apply(&f, "WorkflowCancelRequested", "c", "r1", 3,
              json_pack("{ss ss}", "reason", "customer left", "command_id",
                        "cmd-c"));
        /* Asked to cancel is still running (compensation may run). */
        o = state_of(&f, "c");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        json_decref(o);
        check_counts(&f, 2, 0, 0, 0, 0, 0);
        apply(&f, "WorkflowCancelled", "c", "r1", 4,
              json_pack("{ss}", "details", "null"));
        o = state_of(&f, "c");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "cancelled");
        CU_ASSERT_TRUE(json_is_string(json_object_get(o, "close_time")));
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "result")));
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        json_decref(o);
        check_counts(&f, 1, 0, 0, 0, 1, 0);

        apply(&f, "WorkflowTerminated", "t", "r1", 2,
              json_pack("{ss ss}", "reason", "operator", "details", "null"));
        o = state_of(&f, "t");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "terminated");
        CU_ASSERT_STRING_EQUAL(jstr(o, "close_time"),
                               "2026-01-01T00:00:02.000Z");
        json_decref(o);
        check_counts(&f, 0, 0, 0, 0, 1, 1);
        proj_fold_destroy(&f);
}

static void test_fold_nondeterminism_blocks_until_commands(void)
{
        proj_fold_t f;
        json_t *o;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        schedule(&f, "wf", "r1", 2, "1", "chargeCard");
        apply(&f, "NonDeterminismDetected", "wf", "r1", 3,
              json_pack("{sI ss ss ss}", "event_seq", (json_int_t)2, "expected",
                        "ActivityScheduled chargeCard", "actual",
                        "ActivityScheduled refundCard", "message",
                        "the code changed"));
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "blocked");
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "close_time")));
        json_decref(o);
        check_counts(&f, 0, 1, 0, 0, 0, 0);

        /* Signals arrive while blocked: still blocked. */
        signal_wf(&f, "wf", "r1", 4, "poke");
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "blocked");
        json_decref(o);

        /* Fixed code issues commands again. */
        apply(&f, "ActivityCompleted", "wf", "r1", 5,
              json_pack("{ss si ss}", "activity_id", "1", "attempt", 1,
                        "result", "1"));
        schedule(&f, "wf", "r1", 6, "2", "reserveInventory");
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        CU_ASSERT_PTR_NOT_NULL(pending(o, "2"));
        json_decref(o);
        check_counts(&f, 1, 0, 0, 0, 0, 0);
        proj_fold_destroy(&f);
}

static void test_fold_new_run_replaces_previous(void)
{
        proj_fold_t f;
        proj_wf_t *wf;
        json_t *o;
        char names[64];

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{\"n\":1}");
        schedule(&f, "wf", "r1", 2, "1", "chargeCard");
        signal_wf(&f, "wf", "r1", 3, "old");
        apply(&f, "WorkflowCompleted", "wf", "r1", 4,
              json_pack("{ss}", "result", "\"first\""));
        check_counts(&f, 0, 0, 1, 0, 0, 0);

        start(&f, "wf", "r2", 1, "payment-v2", "{\"n\":2}");
        CU_ASSERT_EQUAL(f.count, 1);
        check_counts(&f, 1, 0, 0, 0, 0, 0);
        wf = proj_fold_get(&f, "wf");
        CU_ASSERT_PTR_NOT_NULL_FATAL(wf);
        CU_ASSERT_STRING_EQUAL(wf->run_id, "r2");
        CU_ASSERT_FALSE(wf->closed);
        CU_ASSERT_EQUAL(wf->close_ts, 0);
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "run_id"), "r2");
        CU_ASSERT_STRING_EQUAL(jstr(o, "type"), "payment-v2");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "result")));
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "close_time")));
        CU_ASSERT_EQUAL(json_integer_value(
                            json_object_get(json_object_get(o, "input"), "n")),
                        2);
        CU_ASSERT_EQUAL(jint(o, "history_length"), 1);
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(o, "signals"), "count")),
                        0);
        json_decref(o);

        /* A run replaced while still open: its pending work goes too, and
         * the counts move from its status. */
        schedule(&f, "wf", "r2", 2, "1", "chargeCard");
        apply(&f, "NonDeterminismDetected", "wf", "r2", 3,
              json_pack("{sI ss ss ss}", "event_seq", (json_int_t)2, "expected",
                        "a", "actual", "b", "message", "m"));
        check_counts(&f, 0, 1, 0, 0, 0, 0);
        start(&f, "wf", "r3", 1, "payment", "{}");
        check_counts(&f, 1, 0, 0, 0, 0, 0);
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "run_id"), "r3");
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        signal_names(o, names, sizeof(names));
        CU_ASSERT_STRING_EQUAL(names, "");
        json_decref(o);
        proj_fold_destroy(&f);
}

static void test_fold_older_run_events_ignored(void)
{
        proj_fold_t f;
        json_t *o;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        start(&f, "wf", "r2", 1, "payment", "{}");
        schedule(&f, "wf", "r2", 2, "1", "chargeCard");

        /* Late events of r1 change nothing of r2. */
        schedule(&f, "wf", "r1", 7, "9", "refundCard");
        signal_wf(&f, "wf", "r1", 8, "stale");
        apply(&f, "TimerStarted", "wf", "r1", 9,
              json_pack("{ss sI sI}", "timer_id", "t1", "duration_ms",
                        (json_int_t)SECOND, "fire_at",
                        (json_int_t)(T0 + 9 * SECOND)));
        apply(&f, "ActivityCompleted", "wf", "r1", 10,
              json_pack("{ss si ss}", "activity_id", "1", "attempt", 1,
                        "result", "1"));
        apply(&f, "WorkflowFailed", "wf", "r1", 11,
              json_pack("{so}", "failure", failure("Old", "old run")));
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "run_id"), "r2");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        CU_ASSERT_EQUAL(jint(o, "history_length"), 2);
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 1);
        CU_ASSERT_PTR_NOT_NULL(pending(o, "1"));
        CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "pending_timers")),
                        0);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(o, "signals"), "count")),
                        0);
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "failure")));
        json_decref(o);
        check_counts(&f, 1, 0, 0, 0, 0, 0);

        /* An event for a workflow never started is ignored too. */
        schedule(&f, "ghost", "r1", 2, "1", "chargeCard");
        CU_ASSERT_PTR_NULL(proj_fold_get(&f, "ghost"));
        CU_ASSERT_EQUAL(f.count, 1);
        proj_fold_destroy(&f);
}

static void test_fold_repeated_events_ignored(void)
{
        proj_fold_t f;
        proj_wf_t *wf;
        json_t *o;
        uint64_t events;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "payment", "{}");
        signal_wf(&f, "wf", "r1", 2, "a");
        schedule(&f, "wf", "r1", 3, "1", "chargeCard");
        apply(&f, "ActivityCompleted", "wf", "r1", 4,
              json_pack("{ss si ss}", "activity_id", "1", "attempt", 1,
                        "result", "1"));
        events = f.events;

        /* A broker that shows records again (aborted transactions on the
         * dev broker, a re-read) delivers events whose seq is applied. */
        signal_wf(&f, "wf", "r1", 2, "a");
        schedule(&f, "wf", "r1", 3, "1", "chargeCard");
        start(&f, "wf", "r1", 1, "payment", "{\"again\":true}");
        CU_ASSERT_EQUAL(f.events, events);
        o = state_of(&f, "wf");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(o, "signals"), "count")),
                        1);
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        CU_ASSERT_PTR_NULL(
            json_object_get(json_object_get(o, "input"), "again"));
        CU_ASSERT_EQUAL(jint(o, "history_length"), 4);
        json_decref(o);
        check_counts(&f, 1, 0, 0, 0, 0, 0);

        /* Where each event of the run lies in keel.history, by seq. */
        start(&f, "h", "r1", 1, "payment", "{}");
        wf = proj_fold_get(&f, "h");
        CU_ASSERT_PTR_NOT_NULL_FATAL(wf);
        CU_ASSERT_EQUAL(wf->noffsets, 0);
        apply_at(
            &f, "WorkflowStarted", "h", "r2", 1, 100,
            json_pack("{ss ss}", "workflow_type", "payment", "input", "{}"));
        for (int64_t seq = 2; seq <= 20; seq++)
                apply_at(&f, "SignalReceived", "h", "r2", seq, 100 + seq * 3,
                         json_pack("{ss ss}", "signal_name", "s", "payload",
                                   "null"));
        /* Repeated: its first offset stays. */
        apply_at(&f, "SignalReceived", "h", "r2", 20, 999,
                 json_pack("{ss ss}", "signal_name", "s", "payload", "null"));
        wf = proj_fold_get(&f, "h");
        CU_ASSERT_EQUAL_FATAL(wf->noffsets, 20);
        CU_ASSERT_EQUAL(wf->offsets[0], 100);
        for (size_t i = 1; i < 20; i++)
                CU_ASSERT_EQUAL(wf->offsets[i], 100 + (int64_t)(i + 1) * 3);
        CU_ASSERT_EQUAL(wf->history_length, 20);

        /* A new run has only its own events. */
        apply_at(
            &f, "WorkflowStarted", "h", "r3", 1, 5000,
            json_pack("{ss ss}", "workflow_type", "payment", "input", "{}"));
        wf = proj_fold_get(&f, "h");
        CU_ASSERT_EQUAL_FATAL(wf->noffsets, 1);
        CU_ASSERT_EQUAL(wf->offsets[0], 5000);
        proj_fold_destroy(&f);
}

/* ---- ordering ---------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void)
{
        /* xorshift64*: a fixed sequence, so a failure repeats. */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

#define NIDS 700

static void test_fold_ordered_ids_after_many_inserts(void)
{
        static const char alphabet[] = "abcXYZ019-_/.~:";
        char *ids[NIDS], *want[NIDS];
        size_t nwant = 0, n;
        proj_fold_t f;
        proj_wf_t **wfs;
        int ok = 1;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        for (size_t i = 0; i < NIDS; i++) {
                size_t len = 1 + rng() % 12;
                /* Some IDs repeat earlier ones (a new run of the same
                 * workflow) and some extend them (a shared prefix). */
                if (i > 10 && rng() % 10 == 0) {
                        ids[i] = strdup(ids[rng() % i]);
                } else if (i > 10 && rng() % 10 == 0) {
                        const char *base = ids[rng() % i];
                        ids[i] = malloc(strlen(base) + 3);
                        CU_ASSERT_PTR_NOT_NULL_FATAL(ids[i]);
                        sprintf(ids[i], "%s%c", base,
                                alphabet[rng() % (sizeof(alphabet) - 1)]);
                } else {
                        ids[i] = malloc(len + 1);
                        CU_ASSERT_PTR_NOT_NULL_FATAL(ids[i]);
                        for (size_t k = 0; k < len; k++)
                                ids[i][k] =
                                    alphabet[rng() % (sizeof(alphabet) - 1)];
                        ids[i][len] = '\0';
                }
                CU_ASSERT_PTR_NOT_NULL_FATAL(ids[i]);
                start(&f, ids[i], i % 2 ? "run-a" : "run-b", 1, "t", "{}");
                /* Listings in between: the sorted list is merged with
                 * the fresh IDs many times, in batches of every size. */
                if (rng() % 37 == 0) {
                        CU_ASSERT_EQUAL(proj_fold_ordered(&f, &wfs, &n),
                                        KEEL_OK);
                        CU_ASSERT_EQUAL(n, f.count);
                        for (size_t k = 1; k < n; k++)
                                if (strcmp(wfs[k - 1]->id, wfs[k]->id) >= 0)
                                        ok = 0;
                }
        }
        CU_ASSERT_TRUE(ok);

        /* The expected list: the distinct IDs, sorted. */
        memcpy(want, ids, sizeof(ids));
        qsort(want, NIDS, sizeof(*want), cmp_str);
        for (size_t i = 0; i < NIDS; i++)
                if (!nwant || strcmp(want[nwant - 1], want[i]))
                        want[nwant++] = want[i];
        CU_ASSERT_TRUE(nwant > NIDS / 2);
        CU_ASSERT_TRUE(nwant < NIDS); /* some repeated */

        CU_ASSERT_EQUAL_FATAL(proj_fold_ordered(&f, &wfs, &n), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(n, nwant);
        CU_ASSERT_EQUAL(f.count, nwant);
        for (size_t i = 0; i < n; i++) {
                if (strcmp(wfs[i]->id, want[i])) {
                        ok = 0;
                        break;
                }
        }
        CU_ASSERT_TRUE(ok);
        check_counts(&f, nwant, 0, 0, 0, 0, 0);
        /* Each is found by its ID and is itself. */
        for (size_t i = 0; i < nwant; i++) {
                proj_wf_t *wf = proj_fold_get(&f, want[i]);
                if (!wf || strcmp(wf->id, want[i]))
                        ok = 0;
        }
        CU_ASSERT_TRUE(ok);

        /* A listing with nothing new is the same list. */
        CU_ASSERT_EQUAL(proj_fold_ordered(&f, &wfs, &n), KEEL_OK);
        CU_ASSERT_EQUAL(n, nwant);
        /* A new run of a listed workflow does not list it twice. */
        start(&f, want[0], "run-c", 1, "t", "{}");
        CU_ASSERT_EQUAL(proj_fold_ordered(&f, &wfs, &n), KEEL_OK);
        CU_ASSERT_EQUAL(n, nwant);
        /* One new ID lands in its place. */
        start(&f, " ", "run-z", 1, "t", "{}");
        start(&f, "\x7f", "run-z", 1, "t", "{}");
        CU_ASSERT_EQUAL(proj_fold_ordered(&f, &wfs, &n), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(n, nwant + 2);
        CU_ASSERT_STRING_EQUAL(wfs[0]->id, " ");
        CU_ASSERT_STRING_EQUAL(wfs[n - 1]->id, "\x7f");
        CU_ASSERT_STRING_EQUAL(wfs[1]->id, want[0]);

        for (size_t i = 0; i < NIDS; i++)
                free(ids[i]);
        proj_fold_destroy(&f);
}

/* ---- bad events -------------------------------------------------------- */

static void apply_raw(proj_fold_t *f, const char *text)
{
        json_error_t err;
        json_t *ev = json_loads(text, JSON_DECODE_ANY, &err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        proj_fold_apply(f, ev);
        json_decref(ev);
}

static void test_fold_events_missing_fields_ignored(void)
{
        static const char *const bad[] = {
            "null",
            "[]",
            "\"keel.history.WorkflowStarted\"",
            "{}",
            "{\"type\":\"keel.history.WorkflowStarted\"}",
            "{\"type\":\"keel.history.WorkflowStarted\",\"record\":null}",
            "{\"type\":\"keel.history.WorkflowStarted\",\"record\":[1,2]}",
            "{\"type\":\"keel.history.WorkflowStarted\",\"record\":"
            "{\"run_id\":\"r1\",\"seq\":1}}",
            "{\"type\":\"keel.history.WorkflowStarted\",\"record\":"
            "{\"workflow_id\":\"bad\",\"seq\":1}}",
            "{\"type\":\"keel.history.WorkflowStarted\",\"record\":"
            "{\"workflow_id\":7,\"run_id\":\"r1\"}}",
            "{\"type\":\"keel.history.WorkflowStarted\",\"record\":"
            "{\"workflow_id\":\"bad\",\"run_id\":{}}}",
            "{\"type\":42,\"record\":"
            "{\"workflow_id\":\"bad\",\"run_id\":\"r1\"}}",
            "{\"record\":{\"workflow_id\":\"bad\",\"run_id\":\"r1\"}}",
        };
        proj_fold_t f;
        json_t *o;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                apply_raw(&f, bad[i]);
        CU_ASSERT_EQUAL(f.count, 0);
        CU_ASSERT_PTR_NULL(proj_fold_get(&f, "bad"));
        check_counts(&f, 0, 0, 0, 0, 0, 0);

        /* A start without type, input, ts or seq: whatever the fold makes
         * of it, the counts still add up. */
        apply_raw(&f, "{\"type\":\"keel.history.WorkflowStarted\",\"record\":"
                      "{\"workflow_id\":\"partial\",\"run_id\":\"r1\"}}");
        counts_add_up(&f);
        if (proj_fold_get(&f, "partial")) {
                o = proj_wf_json(proj_fold_get(&f, "partial"));
                CU_ASSERT_PTR_NOT_NULL(o);
                json_decref(o);
        }

        start(&f, "wf", "r1", 1, "payment", "{}");
        /* Events of a known run that lack their own fields, or have them
         * with the wrong types, leave the run as it was. */
        apply(&f, "ActivityScheduled", "wf", "r1", 2,
              json_pack("{ss}", "task_queue", "q"));
        apply(&f, "ActivityScheduled", "wf", "r1", 3,
              json_pack("{si si}", "activity_id", 5, "activity_type", 6));
        apply(&f, "ActivityCompleted", "wf", "r1", 4, NULL);
        apply(&f, "ActivityFailed", "wf", "r1", 5,
              json_pack("{ss}", "failure", "not an object"));
        apply(&f, "ActivityRetried", "wf", "r1", 6, NULL);
        apply(&f, "ActivityTimedOut", "wf", "r1", 7, NULL);
        apply(&f, "ActivityHeartbeatRecorded", "wf", "r1", 8, NULL);
        apply(&f, "TimerStarted", "wf", "r1", 9,
              json_pack("{ss}", "fire_at", "soon"));
        apply(&f, "TimerFired", "wf", "r1", 10, NULL);
        apply(&f, "TimerCancelled", "wf", "r1", 11,
              json_pack("{si}", "timer_id", 1));
        apply(&f, "MarkerRecorded", "wf", "r1", 12, NULL);
        apply(&f, "MarkerRecorded", "wf", "r1", 13,
              json_pack("{ss}", "marker_name", "state"));
        apply(&f, "NoSuchEvent", "wf", "r1", 14, NULL);
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "running");
        CU_ASSERT_EQUAL(
            json_array_size(json_object_get(o, "pending_activities")), 0);
        CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "pending_timers")),
                        0);
        json_decref(o);

        /* A pending activity stays pending through bad events about it. */
        schedule(&f, "wf", "r1", 15, "1", "chargeCard");
        apply(&f, "ActivityFailed", "wf", "r1", 16,
              json_pack("{ss}", "activity_id", "2"));
        apply(&f, "ActivityRetried", "wf", "r1", 17,
              json_pack("{ss}", "activity_id", "2"));
        apply(&f, "ActivityHeartbeatRecorded", "wf", "r1", 18,
              json_pack("{ss si}", "activity_id", "1", "details", 3));
        o = state_of(&f, "wf");
        CU_ASSERT_PTR_NOT_NULL(pending(o, "1"));
        json_decref(o);

        /* Closing events without their fields still close the run. */
        apply(&f, "WorkflowCompleted", "wf", "r1", 19, NULL);
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "completed");
        json_decref(o);
        start(&f, "wf2", "r1", 1, "t", "{}");
        apply(&f, "WorkflowFailed", "wf2", "r1", 2, NULL);
        o = state_of(&f, "wf2");
        CU_ASSERT_STRING_EQUAL(jstr(o, "status"), "failed");
        json_decref(o);
        CU_ASSERT_EQUAL(f.by_status[KEEL__RUN_COMPLETED], 1);
        CU_ASSERT_EQUAL(f.by_status[KEEL__RUN_FAILED], 1);
        counts_add_up(&f);

        /* Input and result that are not JSON are shown as text. */
        start(&f, "wf3", "r1", 1, "t", "not json {");
        o = state_of(&f, "wf3");
        CU_ASSERT_STRING_EQUAL(jstr(o, "input"), "not json {");
        json_decref(o);
        proj_fold_destroy(&f);
}

/* ---- published state and heartbeats ------------------------------------ */

static void marker(proj_fold_t *f, const char *id, const char *run, int64_t seq,
                   const char *name, const char *details)
{
        apply(f, "MarkerRecorded", id, run, seq,
              json_pack("{ss ss ss}", "marker_name", name, "marker_id", "m",
                        "details", details));
}

static void test_fold_state_marker_sets_state(void)
{
        proj_fold_t f;
        json_t *o, *st;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "agent", "{}");
        o = state_of(&f, "wf");
        st = json_object_get(o, "state");
        CU_ASSERT_PTR_NOT_NULL(st);
        CU_ASSERT_TRUE(json_is_null(st));
        json_decref(o);

        marker(&f, "wf", "r1", 2, "state", "{\"step\":\"charging\",\"n\":1}");
        o = state_of(&f, "wf");
        st = json_object_get(o, "state");
        CU_ASSERT_TRUE(json_is_object(st));
        CU_ASSERT_STRING_EQUAL(jstr(st, "step"), "charging");
        json_decref(o);

        /* Other markers (side effects, ...) are not the state. */
        marker(&f, "wf", "r1", 3, "side_effect", "{\"step\":\"nope\"}");
        o = state_of(&f, "wf");
        CU_ASSERT_STRING_EQUAL(jstr(json_object_get(o, "state"), "step"),
                               "charging");
        json_decref(o);
        /* The latest published state wins. */
        marker(&f, "wf", "r1", 4, "state", "{\"step\":\"shipping\",\"n\":2}");
        o = state_of(&f, "wf");
        st = json_object_get(o, "state");
        CU_ASSERT_STRING_EQUAL(jstr(st, "step"), "shipping");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "n")), 2);
        json_decref(o);
        marker(&f, "wf", "r1", 5, "state", "[1,2,3]");
        o = state_of(&f, "wf");
        CU_ASSERT_EQUAL(json_array_size(json_object_get(o, "state")), 3);
        json_decref(o);

        /* A state marker of an older run changes nothing; a new run starts
         * without state. */
        start(&f, "wf", "r2", 1, "agent", "{}");
        marker(&f, "wf", "r1", 6, "state", "{\"step\":\"stale\"}");
        o = state_of(&f, "wf");
        CU_ASSERT_TRUE(json_is_null(json_object_get(o, "state")));
        json_decref(o);
        proj_fold_destroy(&f);
}

static void test_fold_heartbeat_sets_details(void)
{
        proj_fold_t f;
        json_t *o, *a, *hb;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "wf", "r1", 1, "agent", "{}");
        schedule(&f, "wf", "r1", 2, "1", "longJob");
        schedule(&f, "wf", "r1", 3, "2", "otherJob");
        o = state_of(&f, "wf");
        a = pending(o, "1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        hb = json_object_get(a, "heartbeat_details");
        CU_ASSERT_PTR_NOT_NULL(hb);
        CU_ASSERT_TRUE(json_is_null(hb));
        json_decref(o);

        apply(&f, "ActivityHeartbeatRecorded", "wf", "r1", 4,
              json_pack("{ss si ss}", "activity_id", "1", "attempt", 1,
                        "details", "{\"progress\":40}"));
        apply(&f, "ActivityHeartbeatRecorded", "wf", "r1", 5,
              json_pack("{ss si ss}", "activity_id", "1", "attempt", 1,
                        "details", "{\"progress\":80}"));
        /* A heartbeat of an activity that is not pending is dropped. */
        apply(&f, "ActivityHeartbeatRecorded", "wf", "r1", 6,
              json_pack("{ss si ss}", "activity_id", "7", "attempt", 1,
                        "details", "{\"progress\":1}"));
        o = state_of(&f, "wf");
        a = pending(o, "1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        hb = json_object_get(a, "heartbeat_details");
        CU_ASSERT_TRUE(json_is_object(hb));
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(hb, "progress")),
                        80);
        a = pending(o, "2");
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_TRUE(json_is_null(json_object_get(a, "heartbeat_details")));
        CU_ASSERT_PTR_NULL(pending(o, "7"));
        json_decref(o);
        proj_fold_destroy(&f);
}

/* ---- search attributes --------------------------------------------------- */

/* The search attributes workflow id shows, as compact sorted JSON text
 * (malloc'd), in its state and in its listing summary alike. */
static char *attrs_of(proj_fold_t *f, const char *id)
{
        json_t *o = state_of(f, id);
        json_t *sum = proj_wf_summary_json(proj_fold_get(f, id));
        const json_t *sa = json_object_get(o, "search_attributes");
        char *text;

        CU_ASSERT_TRUE(json_is_object(sa));
        CU_ASSERT_TRUE(
            json_equal(sa, json_object_get(sum, "search_attributes")));
        text = json_dumps(sa, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        json_decref(sum);
        return text;
}

static void check_attrs(proj_fold_t *f, const char *id, const char *want)
{
        char *got = attrs_of(f, id);
        CU_ASSERT_PTR_NOT_NULL_FATAL(got);
        if (strcmp(got, want))
                fprintf(stderr, "%s: got %s, want %s\n", id, got, want);
        CU_ASSERT_STRING_EQUAL(got, want);
        free(got);
}

static void test_fold_search_attributes_merge(void)
{
        proj_fold_t f;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        /* None given: an empty object. */
        start(&f, "plain", "r1", 1, "payment", "{}");
        check_attrs(&f, "plain", "{}");

        /* The start's, then each upsert merged in; null removes. */
        apply(&f, "WorkflowStarted", "wf", "r1", 1,
              json_pack("{ss ss ss ss}", "workflow_type", "payment", "input",
                        "{}", "command_id", "c1", "search_attributes",
                        "{\"Region\":\"eu\",\"Tier\":1}"));
        check_attrs(&f, "wf", "{\"Region\":\"eu\",\"Tier\":1}");
        marker(&f, "wf", "r1", 2, "search_attributes",
               "{\"CustomerId\":\"c-42\",\"Tier\":2}");
        check_attrs(&f, "wf",
                    "{\"CustomerId\":\"c-42\",\"Region\":\"eu\",\"Tier\":2}");
        marker(&f, "wf", "r1", 3, "search_attributes",
               "{\"Tier\":null,\"Vip\":true,\"Score\":0.5}");
        check_attrs(&f, "wf",
                    "{\"CustomerId\":\"c-42\",\"Region\":\"eu\","
                    "\"Score\":0.5,\"Vip\":true}");
        /* Other markers are not upserts; the state is not one either. */
        marker(&f, "wf", "r1", 4, "state", "{\"Region\":\"us\"}");
        marker(&f, "wf", "r1", 5, "side_effect", "{\"Region\":\"us\"}");
        /* What no writer would record is skipped: details that are not an
         * object, nested values, bad names. */
        marker(&f, "wf", "r1", 6, "search_attributes", "[1,2]");
        marker(&f, "wf", "r1", 7, "search_attributes", "not json");
        marker(&f, "wf", "r1", 8, "search_attributes",
               "{\"Deep\":{\"a\":1},\"List\":[1],\"bad-name\":1,"
               "\"Ok\":\"yes\"}");
        check_attrs(&f, "wf",
                    "{\"CustomerId\":\"c-42\",\"Ok\":\"yes\","
                    "\"Region\":\"eu\",\"Score\":0.5,\"Vip\":true}");
        /* An event seen again changes nothing. */
        marker(&f, "wf", "r1", 3, "search_attributes", "{\"Vip\":null}");
        check_attrs(&f, "wf",
                    "{\"CustomerId\":\"c-42\",\"Ok\":\"yes\","
                    "\"Region\":\"eu\",\"Score\":0.5,\"Vip\":true}");

        /* A new run starts from its own start's attributes. */
        apply(&f, "WorkflowCompleted", "wf", "r1", 9,
              json_pack("{ss}", "result", "null"));
        apply(&f, "WorkflowStarted", "wf", "r2", 1,
              json_pack("{ss ss ss ss}", "workflow_type", "payment", "input",
                        "{}", "command_id", "c2", "search_attributes",
                        "{\"Region\":\"us\"}"));
        check_attrs(&f, "wf", "{\"Region\":\"us\"}");
        apply(&f, "WorkflowStarted", "wf", "r3", 1,
              json_pack("{ss ss ss}", "workflow_type", "payment", "input", "{}",
                        "command_id", "c3"));
        check_attrs(&f, "wf", "{}");
        /* An older run's upsert does not touch the latest run. */
        marker(&f, "wf", "r2", 2, "search_attributes", "{\"Late\":1}");
        check_attrs(&f, "wf", "{}");
        proj_fold_destroy(&f);
}

/* ---- deleted runs (retention) ------------------------------------------ */

static void check_listing(proj_fold_t *f, const char *const *want, size_t n)
{
        proj_wf_t **wfs;
        size_t got;
        CU_ASSERT_EQUAL_FATAL(proj_fold_ordered(f, &wfs, &got), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(got, n);
        for (size_t i = 0; i < n; i++)
                CU_ASSERT_STRING_EQUAL(wfs[i]->id, want[i]);
}

static void deleted(proj_fold_t *f, const char *id, const char *run,
                    int64_t seq)
{
        apply(f, "RunDeleted", id, run, seq,
              json_pack("{ss sI}", "reason", "retention", "retention_ms",
                        (json_int_t)1000));
}

static void test_fold_run_deleted_forgets_the_workflow(void)
{
        static const char *const abc[] = {"a", "b", "c"};
        static const char *const bc[] = {"b", "c"};
        proj_fold_t f;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "a", "r1", 1, "payment", "{}");
        apply(&f, "WorkflowCompleted", "a", "r1", 2,
              json_pack("{ss}", "result", "1"));
        start(&f, "b", "r1", 1, "payment", "{}");
        check_listing(&f, abc, 2); /* a, b: listed, so sorted */
        start(&f, "c", "r1", 1, "payment", "{}");
        check_counts(&f, 2, 0, 1, 0, 0, 0);

        /* The latest run's history is deleted: the workflow is unknown. */
        deleted(&f, "a", "r1", 3);
        CU_ASSERT_PTR_NULL(proj_fold_get(&f, "a"));
        CU_ASSERT_EQUAL(f.deleted, 1);
        check_counts(&f, 2, 0, 0, 0, 0, 0);
        check_listing(&f, bc, 2);
        /* Again, or of a run never seen, or of a workflow never seen:
         * nothing happens. */
        deleted(&f, "a", "r1", 3);
        deleted(&f, "c", "r0", 7);
        deleted(&f, "zz", "r1", 2);
        CU_ASSERT_EQUAL(f.deleted, 1);
        check_listing(&f, bc, 2);

        /* An older run's deletion leaves the newer run alone. */
        apply(&f, "WorkflowTerminated", "b", "r1", 2,
              json_pack("{ss}", "reason", "x"));
        start(&f, "b", "r2", 1, "payment", "{}");
        deleted(&f, "b", "r1", 3);
        CU_ASSERT_PTR_NOT_NULL_FATAL(proj_fold_get(&f, "b"));
        CU_ASSERT_STRING_EQUAL(proj_fold_get(&f, "b")->run_id, "r2");
        check_counts(&f, 2, 0, 0, 0, 0, 0);

        /* A new start of the ID is a workflow like any other. */
        start(&f, "a", "r3", 1, "payment", "{\"again\":1}");
        CU_ASSERT_PTR_NOT_NULL_FATAL(proj_fold_get(&f, "a"));
        CU_ASSERT_EQUAL(proj_fold_get(&f, "a")->history_length, 1);
        check_counts(&f, 3, 0, 0, 0, 0, 0);
        check_listing(&f, abc, 3);
        proj_fold_destroy(&f);
}

/* Many deletions between listings: the listing arrays are swept as the
 * fold goes, and a listing shows exactly the workflows left. */
static void test_fold_many_deleted(void)
{
        proj_fold_t f;
        proj_wf_t **wfs;
        size_t n;
        char id[32];
        int ok = 1;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        for (int i = 0; i < 6000; i++) {
                snprintf(id, sizeof(id), "w%05d", i);
                start(&f, id, "r", 1, "t", "{}");
                if (i == 3000)
                        CU_ASSERT_EQUAL(proj_fold_ordered(&f, &wfs, &n),
                                        KEEL_OK);
        }
        for (int i = 0; i < 6000; i += 3) { /* listed and fresh ones */
                snprintf(id, sizeof(id), "w%05d", i);
                deleted(&f, id, "r", 2);
                snprintf(id, sizeof(id), "w%05d", i + 1);
                deleted(&f, id, "r", 2);
        }
        CU_ASSERT_TRUE(f.ngone < 4000); /* swept on the way */
        CU_ASSERT_EQUAL(f.count, 2000);
        CU_ASSERT_EQUAL(f.deleted, 4000);
        CU_ASSERT_EQUAL_FATAL(proj_fold_ordered(&f, &wfs, &n), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(n, 2000);
        for (size_t i = 0; i < n; i++) {
                snprintf(id, sizeof(id), "w%05d", (int)(3 * i + 2));
                if (strcmp(wfs[i]->id, id))
                        ok = 0;
        }
        CU_ASSERT_TRUE(ok);
        check_counts(&f, 2000, 0, 0, 0, 0, 0);
        /* Some deleted with no listing after: freed with the fold. */
        deleted(&f, "w00002", "r", 2);
        proj_fold_destroy(&f);
}

/* ---- readers that start after compaction --------------------------------- */

typedef struct hist_s {
        json_t *records; /* [{"type","rec"} or null (a tombstone)] */
} hist_t;

static void rec_add(json_t *records, const char *type, json_t *rec)
{
        CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
        json_array_append_new(records,
                              json_pack("{ss so}", "type", type, "rec", rec));
}

static void ev_add(json_t *records, const char *type, const char *id,
                   int64_t seq, json_t *fields)
{
        char name[128];
        json_t *rec =
            json_pack("{ss ss sI sI sI}", "workflow_id", id, "run_id", "run-1",
                      "seq", (json_int_t)seq, "epoch", (json_int_t)1, "ts",
                      (json_int_t)(T0 + seq * SECOND));
        if (fields) {
                json_object_update(rec, fields);
                json_decref(fields);
        }
        snprintf(name, sizeof(name), "keel.history.%s", type);
        rec_add(records, name, rec);
}

static void checkpoint_add(json_t *records, int64_t offset)
{
        rec_add(records, "keel.history.Checkpoint",
                json_pack("{si sI sI si sI}", "partition", 0, "epoch",
                          (json_int_t)1, "inbox_offset", (json_int_t)offset,
                          "batch_events", 0, "ts", (json_int_t)T0));
}

/* Fold records (keel_codec_encode()d; null: a tombstone) through a
 * history reader into f. */
static void read_into(proj_fold_t *f, const json_t *records,
                      keel__history_reader_t *r)
{
        size_t i;
        const json_t *x;
        CU_ASSERT_EQUAL_FATAL(proj_fold_init(f), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(keel__history_reader_init(r, proj_fold_apply, f),
                              KEEL_OK);
        json_array_foreach(records, i, x)
        {
                unsigned char *buf = NULL;
                size_t len = 0;
                char err[256];
                if (json_is_object(x))
                        CU_ASSERT_EQUAL_FATAL(
                            keel_codec_encode(
                                json_string_value(json_object_get(x, "type")),
                                json_object_get(x, "rec"), &buf, &len, err,
                                sizeof(err)),
                            KEEL_OK);
                CU_ASSERT_EQUAL(
                    keel__history_reader_feed(r, buf, len, err, sizeof(err)),
                    KEEL_OK);
                free(buf);
        }
}

static void test_fold_readers_after_compaction_end_alike(void)
{
        /* The log as written: "gone" runs, closes and is deleted
         * (RunDeleted, then tombstones for seq 4, 3, 2, 1 and 5); "kept"
         * runs on. */
        json_t *full = json_array(), *compacted = json_array(),
               *partial = json_array();
        proj_fold_t f[3];
        keel__history_reader_t r[3];
        json_t *claim =
            json_pack("{si sI ss sI}", "partition", 0, "epoch", (json_int_t)1,
                      "owner", "o", "ts", (json_int_t)T0);

        rec_add(full, "keel.history.PartitionClaim", json_incref(claim));
        ev_add(full, "WorkflowStarted", "gone", 1,
               json_pack("{ss}", "workflow_type", "t"));
        ev_add(full, "WorkflowStarted", "kept", 1,
               json_pack("{ss}", "workflow_type", "t"));
        checkpoint_add(full, 0);
        ev_add(full, "SignalReceived", "gone", 2,
               json_pack("{ss ss}", "signal_name", "s", "payload", "1"));
        ev_add(full, "SignalReceived", "gone", 3,
               json_pack("{ss ss}", "signal_name", "s", "payload", "2"));
        ev_add(full, "WorkflowCompleted", "gone", 4,
               json_pack("{ss}", "result", "7"));
        checkpoint_add(full, 1);
        ev_add(full, "RunDeleted", "gone", 5,
               json_pack("{ss sI}", "reason", "retention", "retention_ms",
                         (json_int_t)1000));
        for (int i = 0; i < 5; i++)
                json_array_append_new(full, json_null());
        checkpoint_add(full, 2);

        /* Compacted whole: the claim, "kept", the tombstones (kept for
         * delete.retention.ms) and the epoch's last checkpoint. */
        rec_add(compacted, "keel.history.PartitionClaim", json_incref(claim));
        json_array_append(compacted, json_array_get(full, 2));
        for (int i = 0; i < 5; i++)
                json_array_append_new(compacted, json_null());
        json_array_append(compacted, json_array_get(full, 14));

        /* Compacted up to the tombstones of seq 4 and 3 only: events 1 and
         * 2 are left, then the RunDeleted. */
        for (size_t i = 0; i < json_array_size(full); i++)
                if (i != 5 && i != 6)
                        json_array_append(partial, json_array_get(full, i));
        CU_ASSERT_EQUAL_FATAL(json_array_size(full), 15);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_array_get(full, 14), "type")),
                               "keel.history.Checkpoint");

        read_into(&f[0], full, &r[0]);
        read_into(&f[1], compacted, &r[1]);
        read_into(&f[2], partial, &r[2]);
        for (int k = 0; k < 3; k++) {
                CU_ASSERT_PTR_NULL(proj_fold_get(&f[k], "gone"));
                CU_ASSERT_PTR_NOT_NULL(proj_fold_get(&f[k], "kept"));
                CU_ASSERT_EQUAL(f[k].count, 1);
                check_counts(&f[k], 1, 0, 0, 0, 0, 0);
                CU_ASSERT_EQUAL(r[k].tombstones, 5);
                CU_ASSERT_EQUAL(r[k].undecodable, 0);
                CU_ASSERT_EQUAL(r[k].checkpoint, 2);
                keel__history_reader_destroy(&r[k]);
                proj_fold_destroy(&f[k]);
        }
        json_decref(claim);
        json_decref(full);
        json_decref(compacted);
        json_decref(partial);
}

/* A child's parent, a parent's children and how they ended, a continued
 * run's predecessor, a terminated run's reason. */
static void test_fold_children_parent_and_continued(void)
{
        proj_fold_t f;
        json_t *p, *c, *kids;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        start(&f, "p", "pr", 1, "parent", "{}");
        apply(&f, "ChildWorkflowInitiated", "p", "pr", 2,
              json_pack("{ss ss ss ss}", "child_workflow_id", "k1",
                        "workflow_type", "square", "input", "{}",
                        "parent_close_policy", "TERMINATE"));
        apply(&f, "ChildWorkflowInitiated", "p", "pr", 3,
              json_pack("{ss ss ss ss}", "child_workflow_id", "k2",
                        "workflow_type", "square", "input", "{}",
                        "parent_close_policy", "ABANDON"));
        apply(&f, "WorkflowStarted", "k1", "kr", 1,
              json_pack("{ss ss ss ss ss}", "workflow_type", "square", "input",
                        "{}", "command_id", "child/p/pr/2",
                        "parent_workflow_id", "p", "parent_run_id", "pr"));
        apply(&f, "ChildWorkflowClosed", "p", "pr", 4,
              json_pack("{ss ss ss ss}", "child_workflow_id", "k1",
                        "child_run_id", "kr", "status", "COMPLETED", "result",
                        "4"));
        p = state_of(&f, "p");
        kids = json_object_get(p, "children");
        CU_ASSERT_EQUAL(json_array_size(kids), 2);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_array_get(kids, 0), "status")),
                               "completed");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_array_get(kids, 0), "run_id")),
                               "kr");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_array_get(kids, 1), "status")),
                               "running");
        CU_ASSERT(json_is_null(json_object_get(p, "parent")));
        c = state_of(&f, "k1");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(
                json_object_get(json_object_get(c, "parent"), "workflow_id")),
            "p");
        json_decref(p);
        json_decref(c);
        /* continued as new, then terminated by its run timeout */
        apply(&f, "WorkflowContinuedAsNew", "k1", "kr", 2,
              json_pack("{ss ss ss}", "new_run_id", "kr2", "workflow_type",
                        "square", "input", "{}"));
        apply(&f, "WorkflowStarted", "k1", "kr2", 1,
              json_pack("{ss ss ss ss ss ss}", "workflow_type", "square",
                        "input", "{}", "command_id", "continued/kr",
                        "parent_workflow_id", "p", "parent_run_id", "pr",
                        "continued_from_run_id", "kr"));
        apply(&f, "WorkflowTerminated", "k1", "kr2", 2,
              json_pack("{ss ss}", "reason",
                        "WorkflowRunTimedOut: the run did not close within "
                        "its timeout of 5 ms",
                        "details", "{\"timeout\":\"RUN\"}"));
        c = state_of(&f, "k1");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(c, "continued_from_run_id")),
            "kr");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(c, "status")),
                               "terminated");
        CU_ASSERT_PTR_NOT_NULL(
            strstr(json_string_value(json_object_get(c, "close_reason")),
                   "WorkflowRunTimedOut"));
        json_decref(c);
        proj_fold_destroy(&f);
}

/* Recorded texts of every kind (compact or not, reals, escapes jansson
 * rewrites, repeated keys, deep nesting, not JSON at all) in the input,
 * the result and the state: the text written directly is still jansson's
 * dump, byte for byte (state_of() checks). */
static void test_fold_text_is_jansson_dump_for_any_text(void)
{
        static const char *const texts[] = {
            "{\"a\":1}",
            "{\"a\": 1}",
            " 1",
            "1 ",
            "-0",
            "0",
            "-12",
            "007",
            "1.5",
            "1e3",
            "-1.0E+2",
            "12345678901234567890",
            "123456789012345678",
            "-123456789012345678",
            "9223372036854775808",
            "\"\"",
            "\"a\\u00e9\"",
            "\"\\u0041\"",
            "\"\\/\"",
            "\"a\\nb\\t\\\"q\\\\\"",
            "\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
            "\"\\u001f\"",
            "\"\\u0000\"",
            "\"\\ud83d\\ude00\"",
            "\"\x7f\"",
            "{\"a\":1,\"a\":2}",
            "{\"a\":{\"a\":1},\"b\":[{\"a\":1}]}",
            "[1,[2,[3,{}]]]",
            "[]",
            "{}",
            "[1,]",
            "{\"a\"}",
            "{\"a\":}",
            "true",
            "false",
            "null",
            "tru",
            "nul",
            "[true,false,null]",
            "not json",
            "",
            "\"unterminated",
            "[1,2",
            "{\"k\":\"v\"}x",
            "\"tab\there\"",
            "{\"k\":\"v\",}",
            "[-]",
            "[01]",
            "-",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]"
            "]]]]]]]]]]]]]]]",
            "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,"
            "\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":0,\"k11\":1,\"k12\":2,"
            "\"k13\":3,\"k14\":4,\"k15\":5,\"k16\":6,\"k17\":7,\"k18\":8,"
            "\"k19\":9,\"k20\":0,\"k21\":1,\"k22\":2,\"k23\":3,\"k24\":4,"
            "\"k25\":5,\"k26\":6,\"k27\":7,\"k28\":8,\"k29\":9,\"k30\":0,"
            "\"k31\":1,\"k32\":2}",
        };
        proj_fold_t f;

        CU_ASSERT_EQUAL_FATAL(proj_fold_init(&f), KEEL_OK);
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                char id[32];
                json_t *o;
                snprintf(id, sizeof(id), "odd-%zu", i);
                start(&f, id, "r1", 1, "payment", texts[i]);
                marker(&f, id, "r1", 2, "state", texts[i]);
                o = state_of(&f, id);
                json_decref(o);
                apply(&f, "WorkflowCompleted", id, "r1", 3,
                      json_pack("{ss}", "result", texts[i]));
                o = state_of(&f, id);
                json_decref(o);
        }
        /* Names and IDs with characters jansson escapes. */
        start(&f, "quote\"back\\slash\ttab\x01ctl \xc3\xa9", "r\n1", 1,
              "type/with\"quote", "{}");
        signal_wf(&f, "quote\"back\\slash\ttab\x01ctl \xc3\xa9", "r\n1", 2,
                  "sig\x1fnal\b\f\r");
        json_decref(state_of(&f, "quote\"back\\slash\ttab\x01ctl \xc3\xa9"));
        proj_fold_destroy(&f);
}

static CU_TestInfo tests[] = {
    {"test_fold_run_deleted_forgets_the_workflow",
     test_fold_run_deleted_forgets_the_workflow},
    {"test_fold_many_deleted", test_fold_many_deleted},
    {"test_fold_readers_after_compaction_end_alike",
     test_fold_readers_after_compaction_end_alike},
    {"test_fold_start_is_running_with_input",
     test_fold_start_is_running_with_input},
    {"test_fold_activity_scheduled_is_pending",
     test_fold_activity_scheduled_is_pending},
    {"test_fold_activity_retry_shows_attempt_and_failure",
     test_fold_activity_retry_shows_attempt_and_failure},
    {"test_fold_activity_completed_is_removed",
     test_fold_activity_completed_is_removed},
    {"test_fold_timer_started_and_fired", test_fold_timer_started_and_fired},
    {"test_fold_signals_count_and_last_names",
     test_fold_signals_count_and_last_names},
    {"test_fold_completion_with_result", test_fold_completion_with_result},
    {"test_fold_failure", test_fold_failure},
    {"test_fold_cancel_and_terminate", test_fold_cancel_and_terminate},
    {"test_fold_nondeterminism_blocks_until_commands",
     test_fold_nondeterminism_blocks_until_commands},
    {"test_fold_new_run_replaces_previous",
     test_fold_new_run_replaces_previous},
    {"test_fold_older_run_events_ignored", test_fold_older_run_events_ignored},
    {"test_fold_repeated_events_ignored", test_fold_repeated_events_ignored},
    {"test_fold_ordered_ids_after_many_inserts",
     test_fold_ordered_ids_after_many_inserts},
    {"test_fold_events_missing_fields_ignored",
     test_fold_events_missing_fields_ignored},
    {"test_fold_state_marker_sets_state", test_fold_state_marker_sets_state},
    {"test_fold_heartbeat_sets_details", test_fold_heartbeat_sets_details},
    {"test_fold_search_attributes_merge", test_fold_search_attributes_merge},
    {"test_fold_children_parent_and_continued",
     test_fold_children_parent_and_continued},
    {"test_fold_text_is_jansson_dump_for_any_text",
     test_fold_text_is_jansson_dump_for_any_text},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("fold", tests)

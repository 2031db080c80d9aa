/*
 * test_cancel.c: how a workflow's cancellation reaches its activities.
 * Through the partition state machine directly: ActivityCancel records for
 * the attempts still running when the workflow is asked to cancel or
 * closes, no retry for those activities, compensations that still run and
 * retry, the same state after a restore. Through the test environment: a
 * handler's heartbeat returns KEEL_ERR_CANCELLED.
 */
#include "keel/codec.h"
#include "keel/testing.h"
#include "keel_test.h"
#include "machine_int.h"

#include <string.h>

#define T0     1767225600000LL /* 2026-01-01T00:00:00Z */
#define MINUTE (60LL * 1000)
#define HOUR   (60 * MINUTE)

/* ---- workflows ------------------------------------------------------------
 */

static const keel_activity_options_t job_opts = {
    .task_queue = "jobs",
    .start_to_close_ms = HOUR,
    .heartbeat_ms = 10 * MINUTE,
    .retry = {.initial_interval_ms = 1000, .maximum_attempts = 5},
};

static const keel_activity_options_t undo_opts = {
    .task_queue = "undo",
    .start_to_close_ms = HOUR,
    .retry = {.initial_interval_ms = 1000, .maximum_attempts = 5},
};

/* A long job; when cancelled, wait for the job to stop, then undo it. */
static keel_err_t job_wf(keel_wf_t *wf, const json_t *input, json_t **result)
{
        keel_future_t *job = keel_activity_async(
            wf, "longJob", json_incref((json_t *)input), &job_opts);
        json_t *res;
        int rc = keel_await(wf, job, &res);

        if (rc == KEEL_OK) {
                *result = json_incref(res);
                return KEEL_OK;
        }
        if (rc != KEEL_ERR_CANCELLED)
                return keel_fail(wf, "JobFailed", "the job failed", NULL);
        keel_await(wf, job, NULL);
        keel_activity(wf, "undoJob", NULL, &undo_opts, NULL);
        return KEEL_ERR_CANCELLED;
}

/* Two activities on two queues, left running until signal "stop". */
static keel_err_t fanout_wf(keel_wf_t *wf, const json_t *input, json_t **result)
{
        keel_activity_options_t mail = job_opts;
        int rc;
        (void)input;
        mail.task_queue = "mail";
        keel_activity_async(wf, "longJob", NULL, &job_opts);
        keel_activity_async(wf, "sendDigest", NULL, &mail);
        rc = keel_wait_signal(wf, "stop", -1, NULL);
        if (rc)
                return rc;
        *result = json_string("stopped");
        return KEEL_OK;
}

static keel_registry_t *registry(void)
{
        keel_registry_t *reg = keel_registry_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
        keel_workflow_register(reg, "job", job_wf);
        keel_workflow_register(reg, "fanout", fanout_wf);
        return reg;
}

/* ---- driving the machine --------------------------------------------------
 */

static int cmd_n;

/* Apply inbox command `type` (short name) with rec (stolen) at now. */
static int command(keel__machine_t *m, const char *type, json_t *rec,
                   int64_t now, keel__out_t *out)
{
        char full[128], cid[32];
        int rc;
        CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
        snprintf(full, sizeof(full), "keel.inbox.%s", type);
        snprintf(cid, sizeof(cid), "cmd-%d", ++cmd_n);
        json_object_set_new(rec, "command_id", json_string(cid));
        json_object_set_new(rec, "ts", json_integer(now));
        rc = keel__machine_command(m, full, rec, now, out);
        json_decref(rec);
        return rc;
}

static void start(keel__machine_t *m, const char *id, const char *type,
                  int64_t now, keel__out_t *out)
{
        CU_ASSERT_EQUAL(command(m, "StartWorkflow",
                                json_pack("{ss ss ss}", "workflow_id", id,
                                          "workflow_type", type, "input", "{}"),
                                now, out),
                        KEEL_OK);
}

static void cancel(keel__machine_t *m, const char *id, const char *reason,
                   int64_t now, keel__out_t *out)
{
        CU_ASSERT_EQUAL(
            command(m, "CancelWorkflow",
                    json_pack("{ss ss}", "workflow_id", id, "reason", reason),
                    now, out),
            KEEL_OK);
}

/* A worker's failure of attempt `attempt` of activity act. */
static void fail(keel__machine_t *m, const char *id, const char *act,
                 int attempt, int non_retryable, int64_t now, keel__out_t *out)
{
        keel__run_info_t info;
        CU_ASSERT_EQUAL_FATAL(keel__machine_run(m, id, &info), KEEL_OK);
        CU_ASSERT_EQUAL(
            command(m, "ActivityFailed",
                    json_pack("{ss ss ss si ss s{ss ss ss sb}}", "workflow_id",
                              id, "run_id", info.run_id, "activity_id", act,
                              "attempt", attempt, "worker_id", "w", "failure",
                              "type", "Interrupted", "message", "stopped",
                              "details", "null", "non_retryable",
                              non_retryable),
                    now, out),
            KEEL_OK);
}

static void complete(keel__machine_t *m, const char *id, const char *act,
                     int attempt, int64_t now, keel__out_t *out)
{
        keel__run_info_t info;
        CU_ASSERT_EQUAL_FATAL(keel__machine_run(m, id, &info), KEEL_OK);
        CU_ASSERT_EQUAL(
            command(m, "ActivityCompleted",
                    json_pack("{ss ss ss si ss ss}", "workflow_id", id,
                              "run_id", info.run_id, "activity_id", act,
                              "attempt", attempt, "worker_id", "w", "result",
                              "\"ok\""),
                    now, out),
            KEEL_OK);
}

static const char *status(keel__machine_t *m, const char *id)
{
        keel__run_info_t info;
        return keel__machine_run(m, id, &info) ? "-" : info.status;
}

static const char *run_id(keel__machine_t *m, const char *id)
{
        keel__run_info_t info;
        return keel__machine_run(m, id, &info) ? "-" : info.run_id;
}

static const char *sget(const json_t *j, const char *k)
{
        const char *s = json_string_value(json_object_get(j, k));
        return s ? s : "(none)";
}

static json_int_t iget(const json_t *j, const char *k)
{
        return json_integer_value(json_object_get(j, k));
}

/* The i-th event of short type t in out's history (its record), or NULL. */
static const json_t *event(const keel__out_t *out, const char *t, int i)
{
        char full[128];
        size_t k;
        const json_t *ev;
        snprintf(full, sizeof(full), "keel.history.%s", t);
        json_array_foreach(out->history, k, ev)
        {
                if (!strcmp(sget(ev, "type"), full) && i-- == 0)
                        return json_object_get(ev, "record");
        }
        return NULL;
}

static int is_cancel(const json_t *t)
{
        return !strcmp(sget(t, "record_type"), "keel.tasks.ActivityCancel");
}

/* The cancel for activity act among out's task records, or NULL. */
static const json_t *cancel_for(const keel__out_t *out, const char *act)
{
        size_t k;
        const json_t *t;
        json_array_foreach(out->tasks, k, t)
        {
                if (is_cancel(t) && !strcmp(sget(t, "activity_id"), act))
                        return t;
        }
        return NULL;
}

static size_t cancels(const keel__out_t *out)
{
        size_t k, n = 0;
        const json_t *t;
        json_array_foreach(out->tasks, k, t) n += is_cancel(t);
        return n;
}

/* The history of id so far, for a restore. */
static json_t *history_of(keel__machine_t *m, const char *id)
{
        keel__run_info_t info;
        CU_ASSERT_EQUAL_FATAL(keel__machine_run(m, id, &info), KEEL_OK);
        return json_deep_copy(info.events);
}

/* A machine restored from events. */
static keel__machine_t *restored(const keel_registry_t *reg,
                                 const json_t *events, keel__out_t *out)
{
        keel__machine_t *m = keel__machine_new(reg);
        size_t i;
        const json_t *ev;
        char err[256];
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        json_array_foreach(events, i, ev)
        {
                CU_ASSERT_EQUAL(keel__machine_restore(m, ev, err, sizeof(err)),
                                KEEL_OK);
        }
        CU_ASSERT_EQUAL(keel__machine_resume(m, T0 + 1, out), KEEL_OK);
        return m;
}

/* ---- tests ----------------------------------------------------------------
 */

static void test_cancel_reaches_running_activity(void)
{
        keel_registry_t *reg = registry();
        keel__machine_t *m = keel__machine_new(reg), *m2;
        keel__machine_stats_t st;
        keel__out_t out, out2;
        const json_t *c, *t, *ev;
        const char *type;
        json_t *events, *back;
        unsigned char *buf;
        size_t len;
        char rid[64];

        keel__out_init(&out);
        keel__out_init(&out2);
        start(m, "c1", "job", T0, &out);
        CU_ASSERT_EQUAL_FATAL(json_array_size(out.tasks), 1);
        t = json_array_get(out.tasks, 0);
        CU_ASSERT_PTR_NULL(json_object_get(t, "record_type"));
        CU_ASSERT_STRING_EQUAL(sget(t, "activity_type"), "longJob");
        snprintf(rid, sizeof(rid), "%s", run_id(m, "c1"));

        /* Asked to cancel while the job runs: the job's worker is told. */
        keel__out_reset(&out);
        cancel(m, "c1", "customer left", T0 + 5000, &out);
        CU_ASSERT_EQUAL(json_array_size(out.history), 1);
        CU_ASSERT_PTR_NOT_NULL(event(&out, "WorkflowCancelRequested", 0));
        CU_ASSERT_EQUAL_FATAL(json_array_size(out.tasks), 1);
        c = cancel_for(&out, "1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_STRING_EQUAL(sget(c, "workflow_id"), "c1");
        CU_ASSERT_STRING_EQUAL(sget(c, "run_id"), rid);
        CU_ASSERT_EQUAL(iget(c, "attempt"), 1);
        CU_ASSERT_STRING_EQUAL(sget(c, "reason"), "customer left");
        CU_ASSERT_STRING_EQUAL(sget(c, "task_queue"), "jobs");
        CU_ASSERT_EQUAL(iget(c, "ts"), T0 + 5000);
        /* caused by event 3 (started, scheduled, cancel requested) */
        {
                char kid[128];
                snprintf(kid, sizeof(kid), "c1/%s/3/1", rid);
                CU_ASSERT_STRING_EQUAL(sget(c, "keel_id"), kid);
        }
        /* It is a keel.tasks.ActivityCancel on the wire. */
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.tasks.ActivityCancel", c,
                                                &buf, &len, NULL, 0),
                              KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(
            keel_codec_decode(buf, len, &type, &back, NULL, 0), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(type, "keel.tasks.ActivityCancel");
        CU_ASSERT_STRING_EQUAL(sget(back, "reason"), "customer left");
        CU_ASSERT_EQUAL(iget(back, "attempt"), 1);
        CU_ASSERT_PTR_NULL(json_object_get(back, "record_type"));
        json_decref(back);
        free(buf);
        keel__machine_stats(m, &st);
        CU_ASSERT_EQUAL(st.cancels, 1);
        CU_ASSERT_EQUAL(keel__machine_activity_cancelled(m, "c1", rid, "1", 1),
                        1);
        CU_ASSERT_EQUAL(keel__machine_activity_cancelled(m, "c1", rid, "1", 2),
                        0);
        CU_ASSERT_EQUAL(
            keel__machine_activity_cancelled(m, "nope", rid, "1", 1), 0);
        events = history_of(m, "c1");

        /* The job stops with a failure that would be retried: final now. */
        keel__out_reset(&out);
        fail(m, "c1", "1", 1, 0, T0 + 6000, &out);
        ev = event(&out, "ActivityFailed", 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        CU_ASSERT(json_is_null(json_object_get(ev, "next_attempt_at")));
        /* ... and the workflow undoes it. */
        CU_ASSERT_PTR_NOT_NULL(event(&out, "ActivityScheduled", 0));
        CU_ASSERT_EQUAL_FATAL(json_array_size(out.tasks), 1);
        t = json_array_get(out.tasks, 0);
        CU_ASSERT_FALSE(is_cancel(t));
        CU_ASSERT_STRING_EQUAL(sget(t, "activity_type"), "undoJob");
        CU_ASSERT_STRING_EQUAL(sget(t, "task_queue"), "undo");

        /* A machine restored from the history agrees. */
        m2 = restored(reg, events, &out2);
        CU_ASSERT_EQUAL(json_array_size(out2.history), 0);
        CU_ASSERT_EQUAL(keel__machine_activity_cancelled(m2, "c1", rid, "1", 1),
                        1);
        fail(m2, "c1", "1", 1, 0, T0 + 6000, &out2);
        ev = event(&out2, "ActivityFailed", 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        CU_ASSERT(json_is_null(json_object_get(ev, "next_attempt_at")));
        keel__machine_destroy(m2);

        /* No retry of the job ever comes. */
        keel__out_reset(&out);
        CU_ASSERT_EQUAL(
            keel__machine_tick(m, T0 + 30 * MINUTE, T0 + 30 * MINUTE, &out),
            KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(out.history), 0);
        CU_ASSERT_EQUAL(json_array_size(out.tasks), 0);

        /* The compensation, scheduled after the request, is not cancelled
         * and retries as usual. */
        CU_ASSERT_EQUAL(keel__machine_activity_cancelled(m, "c1", rid, "2", 1),
                        0);
        fail(m, "c1", "2", 1, 0, T0 + 31 * MINUTE, &out);
        ev = event(&out, "ActivityFailed", 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        CU_ASSERT_EQUAL(iget(ev, "next_attempt_at"), T0 + 31 * MINUTE + 1000);
        keel__out_reset(&out);
        CU_ASSERT_EQUAL(
            keel__machine_tick(m, T0 + 32 * MINUTE, T0 + 32 * MINUTE, &out),
            KEEL_OK);
        CU_ASSERT_PTR_NOT_NULL(event(&out, "ActivityRetried", 0));
        CU_ASSERT_EQUAL_FATAL(json_array_size(out.tasks), 1);
        CU_ASSERT_EQUAL(iget(json_array_get(out.tasks, 0), "attempt"), 2);
        keel__out_reset(&out);
        complete(m, "c1", "2", 2, T0 + 33 * MINUTE, &out);
        CU_ASSERT_PTR_NOT_NULL(event(&out, "WorkflowCancelled", 0));
        CU_ASSERT_STRING_EQUAL(status(m, "c1"), "cancelled");
        CU_ASSERT_EQUAL(json_array_size(out.tasks), 0); /* nothing ran */

        json_decref(events);
        keel__out_destroy(&out);
        keel__out_destroy(&out2);
        keel__machine_destroy(m);
        keel_registry_destroy(reg);
}

static void test_cancel_sent_when_run_closes(void)
{
        keel_registry_t *reg = registry();
        keel__machine_t *m = keel__machine_new(reg);
        keel__out_t out;
        const json_t *c, *done;
        char rid[64], kid[128];

        keel__out_init(&out);

        /* Completed with two activities still running, on two queues. */
        start(m, "c2", "fanout", T0, &out);
        CU_ASSERT_EQUAL(json_array_size(out.tasks), 2);
        snprintf(rid, sizeof(rid), "%s", run_id(m, "c2"));
        keel__out_reset(&out);
        CU_ASSERT_EQUAL(
            command(m, "SignalWorkflow",
                    json_pack("{ss ss ss}", "workflow_id", "c2", "signal_name",
                              "stop", "payload", "null"),
                    T0 + 1000, &out),
            KEEL_OK);
        done = event(&out, "WorkflowCompleted", 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(done);
        CU_ASSERT_EQUAL(json_array_size(out.tasks), 2);
        CU_ASSERT_EQUAL(cancels(&out), 2);
        c = cancel_for(&out, "1");
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_STRING_EQUAL(sget(c, "task_queue"), "jobs");
        CU_ASSERT_STRING_EQUAL(sget(c, "reason"), "the workflow completed");
        snprintf(kid, sizeof(kid), "c2/%s/%lld/1", rid,
                 (long long)iget(done, "seq"));
        CU_ASSERT_STRING_EQUAL(sget(c, "keel_id"), kid);
        c = cancel_for(&out, "2");
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_STRING_EQUAL(sget(c, "task_queue"), "mail");
        snprintf(kid, sizeof(kid), "c2/%s/%lld/2", rid,
                 (long long)iget(done, "seq"));
        CU_ASSERT_STRING_EQUAL(sget(c, "keel_id"), kid);
        /* A closed run's attempts should all stop. */
        CU_ASSERT_EQUAL(keel__machine_activity_cancelled(m, "c2", rid, "1", 1),
                        1);

        /* Cancelled: told once, at the request, not again at the close. */
        keel__out_reset(&out);
        start(m, "c3", "fanout", T0, &out);
        keel__out_reset(&out);
        cancel(m, "c3", "", T0 + 1000, &out);
        CU_ASSERT_STRING_EQUAL(status(m, "c3"), "cancelled");
        CU_ASSERT_EQUAL(json_array_size(out.tasks), 2);
        CU_ASSERT_EQUAL(cancels(&out), 2);

        /* Terminated. */
        keel__out_reset(&out);
        start(m, "c4", "fanout", T0, &out);
        keel__out_reset(&out);
        CU_ASSERT_EQUAL(
            command(m, "TerminateWorkflow",
                    json_pack("{ss ss}", "workflow_id", "c4", "reason", "ops"),
                    T0 + 1000, &out),
            KEEL_OK);
        CU_ASSERT_STRING_EQUAL(status(m, "c4"), "terminated");
        CU_ASSERT_EQUAL(cancels(&out), 2);
        c = cancel_for(&out, "2");
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_STRING_EQUAL(sget(c, "reason"),
                               "the workflow was terminated");

        keel__out_destroy(&out);
        keel__machine_destroy(m);
        keel_registry_destroy(reg);
}

static void test_cancel_ends_activity_waiting_for_retry(void)
{
        keel_registry_t *reg = registry();
        keel__machine_t *m = keel__machine_new(reg);
        keel__out_t out;
        const json_t *ev;

        keel__out_init(&out);
        start(m, "c5", "job", T0, &out);
        keel__out_reset(&out);
        fail(m, "c5", "1", 1, 0, T0 + 1000, &out);
        ev = event(&out, "ActivityFailed", 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        CU_ASSERT_EQUAL(iget(ev, "next_attempt_at"), T0 + 2000);

        /* Cancelled in the backoff: no attempt runs, none is told; the
         * retry will not come, and the workflow learns that at once. */
        keel__out_reset(&out);
        cancel(m, "c5", "stop", T0 + 1500, &out);
        CU_ASSERT_EQUAL(cancels(&out), 0);
        ev = event(&out, "ActivityFailed", 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        CU_ASSERT_STRING_EQUAL(sget(ev, "activity_id"), "1");
        CU_ASSERT(json_is_null(json_object_get(ev, "next_attempt_at")));
        CU_ASSERT_STRING_EQUAL(sget(json_object_get(ev, "failure"), "type"),
                               "Cancelled");
        CU_ASSERT(json_is_true(
            json_object_get(json_object_get(ev, "failure"), "non_retryable")));
        CU_ASSERT_PTR_NOT_NULL(event(&out, "ActivityScheduled", 0)); /* undo */
        keel__out_reset(&out);
        CU_ASSERT_EQUAL(keel__machine_tick(m, T0 + 5000, T0 + 5000, &out),
                        KEEL_OK);
        CU_ASSERT_PTR_NULL(event(&out, "ActivityRetried", 0));

        keel__out_destroy(&out);
        keel__machine_destroy(m);
        keel_registry_destroy(reg);
}

/* ---- the test environment -------------------------------------------------
 */

static int long_hb = -1000, undo_hb = -1000;

/* Heartbeats; stops when told to, as a long job should. */
static int h_long(keel_activity_ctx_t *ctx, const json_t *input,
                  json_t **result)
{
        (void)input;
        long_hb = keel_activity_heartbeat(ctx, json_pack("{si}", "step", 1));
        if (long_hb == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        *result = json_string("done");
        return KEEL_OK;
}

static int h_undo(keel_activity_ctx_t *ctx, const json_t *input,
                  json_t **result)
{
        (void)input;
        (void)result;
        undo_hb = keel_activity_heartbeat(ctx, NULL);
        return KEEL_OK;
}

static keel_testenv_t *env_new(const keel_registry_t *reg)
{
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        keel_testenv_register_activity(env, "longJob", h_long, NULL);
        keel_testenv_register_activity(env, "undoJob", h_undo, NULL);
        return env;
}

static void test_cancel_testenv_heartbeat_returns_cancelled(void)
{
        keel_registry_t *reg = registry();
        keel_testenv_t *env = env_new(reg);
        const json_t *h, *ev;
        size_t i;
        int found = 0;

        /* The job's task is out when the cancel comes. */
        keel_testenv_start(env, "c6", "job", json_object());
        CU_ASSERT_EQUAL(keel_testenv_cancel(env, "c6", "customer left"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_EQUAL(long_hb, KEEL_ERR_CANCELLED);
        CU_ASSERT_EQUAL(undo_hb, KEEL_OK); /* the compensation runs on */
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "c6"), "cancelled");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "longJob"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undoJob"), 1);
        /* Returning KEEL_ERR_CANCELLED fails it as "Cancelled", for good. */
        h = keel_testenv_history(env, "c6");
        json_array_foreach(h, i, ev)
        {
                const json_t *f =
                    json_object_get(json_object_get(ev, "record"), "failure");
                if (strcmp(sget(ev, "type"), "keel.history.ActivityFailed"))
                        continue;
                found++;
                CU_ASSERT_STRING_EQUAL(sget(f, "type"), "Cancelled");
                CU_ASSERT(json_is_true(json_object_get(f, "non_retryable")));
        }
        CU_ASSERT_EQUAL(found, 1);

        /* Not cancelled: the heartbeat says go on. */
        long_hb = -1000;
        keel_testenv_start(env, "c7", "job", json_object());
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_EQUAL(long_hb, KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "c7"), "completed");
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static CU_TestInfo tests[] = {
    {"test_cancel_reaches_running_activity",
     test_cancel_reaches_running_activity},
    {"test_cancel_sent_when_run_closes", test_cancel_sent_when_run_closes},
    {"test_cancel_ends_activity_waiting_for_retry",
     test_cancel_ends_activity_waiting_for_retry},
    {"test_cancel_testenv_heartbeat_returns_cancelled",
     test_cancel_testenv_heartbeat_returns_cancelled},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("cancel", tests)

/*
 * test_retention.c: retention of closed runs and history limits, in the
 * partition state machine (machine_int.h) and the test environment.
 *
 * Retention: once a closed run's retention (retention.closed.ms, or
 * retention.closed.ms.<type>) has passed since its closing event, the
 * machine writes a RunDeleted event and a tombstone for the key of every
 * event of the run, the last first and the RunDeleted's own key last, and
 * forgets the run; the deadline derives from the history, so a machine
 * restored from it deletes at the same time, and one restored from a
 * history that holds the RunDeleted (or only the start of the run before
 * it, as compaction may leave it) does not know the run. A later start of
 * the ID runs normally; an older run of a reused ID is deleted on its own
 * deadline, leaving the newer one alone.
 *
 * Limits: past history.warn.percent of history.max.events or
 * history.max.bytes a run is logged and counted once; at the limit it is
 * terminated with "history size exceeds limit", even in the middle of one
 * activation's commands.
 */
#include "keel/keel.h"
#include "keel/testing.h"
#include "keel_test.h"
#include "machine_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0   1767225600000LL /* 2026-01-01T00:00:00Z */
#define HOUR 3600000LL
#define DAY  (24 * HOUR)

/* ---- workflows ---------------------------------------------------------- */

static keel_err_t quick(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)wf;
        *result = json_deep_copy(input);
        return KEEL_OK;
}

/* An activity, a signal, a timer: a history of a few kinds of events. */
static keel_err_t steps(keel_wf_t *wf, const json_t *input, json_t **result)
{
        static const keel_activity_options_t opts = {.task_queue = "q",
                                                     .start_to_close_ms = 1000};
        json_t *sig = NULL;
        (void)input;
        if (keel_activity(wf, "work", json_null(), &opts, NULL))
                return keel_fail(wf, "WorkFailed", "", NULL);
        if (keel_wait_signal(wf, "go", -1, &sig))
                return KEEL_ERR_CANCELLED;
        keel_sleep(wf, 1000);
        *result = json_pack("{sO}", "got", sig);
        return KEEL_OK;
}

/* Sleeps forever: two events per second. */
static keel_err_t sleeper(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        (void)result;
        while (!keel_sleep(wf, 1000))
                ;
        return KEEL_ERR_CANCELLED;
}

/* Takes signals forever: one event each. */
static keel_err_t listener(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        (void)result;
        for (;;) {
                json_t *p = NULL;
                if (keel_wait_signal(wf, "s", -1, &p))
                        return KEEL_ERR_CANCELLED;
        }
}

/* 100 activities in one activation. */
static keel_err_t fanout(keel_wf_t *wf, const json_t *input, json_t **result)
{
        static const keel_activity_options_t opts = {.task_queue = "q",
                                                     .start_to_close_ms = 1000};
        keel_future_t *fs[100];
        (void)input;
        for (int i = 0; i < 100; i++)
                fs[i] = keel_activity_async(wf, "work", json_integer(i), &opts);
        for (int i = 0; i < 100; i++)
                keel_await(wf, fs[i], NULL);
        *result = json_null();
        return KEEL_OK;
}

static keel_registry_t *registry(void)
{
        keel_registry_t *reg = keel_registry_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
        CU_ASSERT_EQUAL(keel_workflow_register(reg, "quick", quick), KEEL_OK);
        CU_ASSERT_EQUAL(keel_workflow_register(reg, "short", quick), KEEL_OK);
        CU_ASSERT_EQUAL(keel_workflow_register(reg, "steps", steps), KEEL_OK);
        CU_ASSERT_EQUAL(keel_workflow_register(reg, "sleeper", sleeper),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_workflow_register(reg, "listener", listener),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_workflow_register(reg, "fanout", fanout), KEEL_OK);
        return reg;
}

/* ---- a machine driven by hand ------------------------------------------- */

typedef struct fx_s {
        keel_registry_t *reg;
        keel__machine_t *m;
        keel__out_t out;
        json_t *log;        /* every history event written, in order */
        json_t *tombstones; /* every tombstone, in order */
        int64_t now;
        int n_cmd;
        int rejected; /* commands refused so far */
} fx_t;

/* A machine with the settings "k=v" (NULL-terminated; NULL: none). */
static keel__machine_t *machine(const keel_registry_t *reg,
                                const char *const *settings)
{
        keel_config_t *cfg = keel_config_new();
        keel__machine_limits_t lim;
        keel__machine_t *m = keel__machine_new(reg);
        json_t *by_type;
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        for (; settings && *settings; settings++) {
                char k[128];
                const char *eq = strchr(*settings, '=');
                snprintf(k, sizeof(k), "%.*s", (int)(eq - *settings),
                         *settings);
                CU_ASSERT_EQUAL_FATAL(
                    keel_config_set(cfg, k, eq + 1, "test", NULL, 0), KEEL_OK);
        }
        CU_ASSERT_EQUAL_FATAL(
            keel__machine_limits_from_config(cfg, &lim, &by_type), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(keel__machine_set_limits(m, &lim), KEEL_OK);
        json_decref(by_type);
        keel_config_destroy(cfg);
        return m;
}

static void fx_init(fx_t *fx, const char *const *settings)
{
        memset(fx, 0, sizeof(*fx));
        fx->reg = registry();
        fx->m = machine(fx->reg, settings);
        fx->log = json_array();
        fx->tombstones = json_array();
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&fx->out), KEEL_OK);
        fx->now = T0;
}

static void fx_destroy(fx_t *fx)
{
        keel__out_destroy(&fx->out);
        keel__machine_destroy(fx->m);
        keel_registry_destroy(fx->reg);
        json_decref(fx->log);
        json_decref(fx->tombstones);
}

/* Keep what the machine wrote, as the orchestrator would write it. */
static void fx_collect(fx_t *fx)
{
        json_array_extend(fx->log, fx->out.history);
        json_array_extend(fx->tombstones, fx->out.tombstones);
        fx->rejected += (int)json_array_size(fx->out.rejects);
        keel__out_reset(&fx->out);
}

/* Apply command keel.inbox.<type> (rec stolen) at fx->now. */
static int cmd(fx_t *fx, const char *type, json_t *rec)
{
        char full[64], cid[32];
        int rc;
        snprintf(full, sizeof(full), "keel.inbox.%s", type);
        snprintf(cid, sizeof(cid), "c-%d", ++fx->n_cmd);
        json_object_set_new(rec, "command_id", json_string(cid));
        json_object_set_new(rec, "ts", json_integer(fx->now));
        rc = keel__machine_command(fx->m, full, rec, fx->now, &fx->out);
        json_decref(rec);
        fx_collect(fx);
        return rc;
}

static int start(fx_t *fx, const char *id, const char *type, const char *reuse)
{
        return cmd(fx, "StartWorkflow",
                   json_pack("{ss ss ss ss ss}", "workflow_id", id,
                             "workflow_type", type, "input", "{\"x\":1}",
                             "id_reuse_policy", reuse, "id_conflict_policy",
                             "FAIL"));
}

static int signal_(fx_t *fx, const char *id, const char *name,
                   const char *payload)
{
        return cmd(fx, "SignalWorkflow",
                   json_pack("{ss sn ss ss}", "workflow_id", id, "run_id",
                             "signal_name", name, "payload", payload));
}

/* Complete the current attempt of every task written so far that is
 * still pending: the worker's answer. */
static void complete(fx_t *fx, const char *id, const char *activity_id)
{
        keel__run_info_t info;
        CU_ASSERT_EQUAL_FATAL(keel__machine_run(fx->m, id, &info), KEEL_OK);
        CU_ASSERT_EQUAL(
            cmd(fx, "ActivityCompleted",
                json_pack("{ss ss ss si ss}", "workflow_id", id, "run_id",
                          info.run_id, "activity_id", activity_id, "attempt", 1,
                          "result", "{}")),
            KEEL_OK);
}

/* Fire what is due up to `until`, one deadline at a time. */
static void run_until(fx_t *fx, int64_t until)
{
        int64_t due;
        while ((due = keel__machine_next_due(fx->m)) <= until) {
                if (due > fx->now)
                        fx->now = due;
                CU_ASSERT_EQUAL_FATAL(
                    keel__machine_tick(fx->m, fx->now, fx->now, &fx->out),
                    KEEL_OK);
                fx_collect(fx);
        }
        if (until > fx->now)
                fx->now = until;
}

static const char *ev_type(const json_t *ev)
{
        return json_string_value(json_object_get(ev, "type"));
}

static int64_t ev_int(const json_t *ev, const char *k)
{
        return json_integer_value(
            json_object_get(json_object_get(ev, "record"), k));
}

static const char *ev_str(const json_t *ev, const char *k)
{
        return json_string_value(
            json_object_get(json_object_get(ev, "record"), k));
}

/* The events of run_id in fx->log, in order (new reference). */
static json_t *events_of(const fx_t *fx, const char *run_id)
{
        json_t *a = json_array();
        size_t i;
        const json_t *ev;
        json_array_foreach(fx->log, i, ev)
        {
                if (!strcmp(ev_str(ev, "run_id"), run_id))
                        json_array_append(a, (json_t *)ev);
        }
        return a;
}

/* Run "steps" to its end: its run ID into run_id, its events count. */
static size_t steps_to_end(fx_t *fx, const char *id, char run_id[64])
{
        keel__run_info_t info;
        CU_ASSERT_EQUAL_FATAL(start(fx, id, "steps", "ALLOW_DUPLICATE"),
                              KEEL_OK);
        complete(fx, id, "1");
        CU_ASSERT_EQUAL(signal_(fx, id, "go", "{\"ok\":true}"), KEEL_OK);
        run_until(fx, fx->now + 1000);
        CU_ASSERT_EQUAL_FATAL(keel__machine_run(fx->m, id, &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "completed");
        snprintf(run_id, 64, "%s", info.run_id);
        CU_ASSERT_PTR_NULL(info.events); /* closed: no events kept */
        return info.n_events;
}

/* ---- retention ---------------------------------------------------------- */

static const char *const one_day[] = {"retention.closed.ms=86400000", NULL};

static void test_retention_deletes_at_the_deadline_with_tombstones(void)
{
        fx_t fx;
        char run_id[64];
        keel__run_info_t info;
        keel__machine_stats_t st;
        json_t *evs;
        const json_t *del, *closing;
        size_t n, i;
        int64_t closed_at;
        int seen[64] = {0};

        fx_init(&fx, one_day);
        n = steps_to_end(&fx, "wf-1", run_id);
        /* started, activity scheduled and completed, signal, timer started
         * and fired, completed */
        CU_ASSERT_EQUAL(n, 7);
        evs = events_of(&fx, run_id);
        closing = json_array_get(evs, n - 1);
        CU_ASSERT_STRING_EQUAL(ev_type(closing),
                               "keel.history.WorkflowCompleted");
        closed_at = ev_int(closing, "ts");

        /* The deadline is the closing event's time plus the retention. */
        CU_ASSERT_EQUAL(keel__machine_next_due(fx.m), closed_at + DAY);
        run_until(&fx, closed_at + DAY - 1);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "wf-1", &info), KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(fx.tombstones), 0);

        run_until(&fx, closed_at + DAY);
        json_decref(evs);
        evs = events_of(&fx, run_id);
        /* A RunDeleted with the next seq... */
        CU_ASSERT_EQUAL_FATAL(json_array_size(evs), n + 1);
        del = json_array_get(evs, n);
        CU_ASSERT_STRING_EQUAL(ev_type(del), "keel.history.RunDeleted");
        CU_ASSERT_EQUAL(ev_int(del, "seq"), (int64_t)n + 1);
        CU_ASSERT_EQUAL(ev_int(del, "ts"), closed_at + DAY);
        CU_ASSERT_EQUAL(ev_int(del, "retention_ms"), DAY);
        CU_ASSERT_STRING_EQUAL(ev_str(del, "reason"), "retention");
        CU_ASSERT_STRING_EQUAL(ev_str(del, "workflow_id"), "wf-1");
        /* ...then one tombstone per key: the last event first, the
         * RunDeleted's own key last. */
        CU_ASSERT_EQUAL_FATAL(json_array_size(fx.tombstones), n + 1);
        for (i = 0; i <= n; i++) {
                const json_t *t = json_array_get(fx.tombstones, i);
                int64_t seq = json_integer_value(json_object_get(t, "seq"));
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(t, "workflow_id")),
                    "wf-1");
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(t, "run_id")), run_id);
                CU_ASSERT_EQUAL(seq, i < n ? (int64_t)(n - i) : (int64_t)n + 1);
                CU_ASSERT_FATAL(seq >= 1 && seq < 64);
                seen[seq]++;
        }
        for (i = 1; i <= n + 1; i++)
                CU_ASSERT_EQUAL(seen[i], 1); /* every key once */

        /* The run is forgotten; nothing more is due. */
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "wf-1", &info),
                        KEEL_ERR_NOT_FOUND);
        CU_ASSERT_EQUAL(keel__machine_next_due(fx.m), INT64_MAX);
        keel__machine_stats(fx.m, &st);
        CU_ASSERT_EQUAL(st.deleted, 1);
        CU_ASSERT_EQUAL(st.tombstones, n + 1);
        CU_ASSERT_EQUAL(st.open, 0);
        /* A signal to it is refused as for an ID never used. */
        CU_ASSERT_EQUAL(signal_(&fx, "wf-1", "go", "1"), KEEL_OK);
        CU_ASSERT_EQUAL(fx.rejected, 1);
        CU_ASSERT_EQUAL(json_array_size(fx.log), n + 1);
        json_decref(evs);
        fx_destroy(&fx);
}

static void test_retention_by_type_and_forever(void)
{
        static const char *const settings[] = {
            "retention.closed.ms=86400000", "retention.closed.ms.short=1000",
            "retention.closed.ms.quick=-1", NULL};
        fx_t fx;
        keel__run_info_t info;

        fx_init(&fx, settings);
        CU_ASSERT_EQUAL(start(&fx, "s", "short", "ALLOW_DUPLICATE"), KEEL_OK);
        CU_ASSERT_EQUAL(start(&fx, "q", "quick", "ALLOW_DUPLICATE"), KEEL_OK);
        CU_ASSERT_EQUAL(start(&fx, "t", "listener", "ALLOW_DUPLICATE"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "s", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "completed");
        run_until(&fx, T0 + 1000);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "s", &info),
                        KEEL_ERR_NOT_FOUND);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "q", &info), KEEL_OK);
        /* An open run is never deleted, however long it runs. */
        run_until(&fx, T0 + 30 * DAY);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "t", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "running");
        /* -1: kept forever. */
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "q", &info), KEEL_OK);
        fx_destroy(&fx);
}

static void raw_apply(void *opaque, const keel__history_raw_t *ev)
{
        char err[256];
        int rc = keel__machine_restore_raw(opaque, ev, err, sizeof(err));
        if (rc)
                fprintf(stderr, "restore: %s\n", err);
        CU_ASSERT_EQUAL(rc, KEEL_OK);
}

/* Encode rec (stolen) as a `type` record and feed it to hr. */
static void feed(keel__history_reader_t *hr, const char *type, json_t *rec)
{
        unsigned char *buf = NULL;
        size_t len = 0;
        char err[256];
        CU_ASSERT_EQUAL_FATAL(
            keel_codec_encode(type, rec, &buf, &len, err, sizeof(err)),
            KEEL_OK);
        CU_ASSERT_EQUAL(
            keel__history_reader_feed(hr, buf, len, err, sizeof(err)), KEEL_OK);
        free(buf);
        json_decref(rec);
}

/* The same as an orchestrator restores it: each event encoded, read by a
 * raw history reader, in batches of three closed by a checkpoint. */
static keel__machine_t *restored_raw(fx_t *fx, const char *const *settings,
                                     size_t upto)
{
        keel__machine_t *m = machine(fx->reg, settings);
        keel__history_reader_t hr;
        size_t i;

        CU_ASSERT_EQUAL_FATAL(keel__history_reader_init_raw(&hr, raw_apply, m),
                              KEEL_OK);
        for (i = 0; i < upto && i < json_array_size(fx->log); i++) {
                const json_t *ev = json_array_get(fx->log, i);
                feed(&hr, ev_type(ev),
                     json_deep_copy(json_object_get(ev, "record")));
                if (i % 3 == 2 || i + 1 == upto ||
                    i + 1 == json_array_size(fx->log))
                        feed(&hr, "keel.history.Checkpoint",
                             json_pack("{si sI sI si sI}", "partition", 0,
                                       "epoch", (json_int_t)0, "inbox_offset",
                                       (json_int_t)i, "batch_events", 3, "ts",
                                       (json_int_t)0));
        }
        CU_ASSERT_EQUAL(hr.applied, i);
        keel__history_reader_destroy(&hr);
        return m;
}

/* a and b, restored from the same events, tell the same of every
 * workflow in fx's log. */
static void same_state(fx_t *fx, keel__machine_t *a, keel__machine_t *b)
{
        keel__machine_stats_t sa, sb;
        size_t i;
        const json_t *ev;

        keel__machine_stats(a, &sa);
        keel__machine_stats(b, &sb);
        CU_ASSERT_EQUAL(sa.open, sb.open);
        json_array_foreach(fx->log, i, ev)
        {
                keel__run_info_t ia, ib;
                const char *id = ev_str(ev, "workflow_id");
                int ra = keel__machine_run(a, id, &ia);
                CU_ASSERT_EQUAL_FATAL(ra, keel__machine_run(b, id, &ib));
                if (ra)
                        continue;
                CU_ASSERT_STRING_EQUAL(ia.run_id, ib.run_id);
                CU_ASSERT_STRING_EQUAL(ia.type, ib.type);
                CU_ASSERT_STRING_EQUAL(ia.status, ib.status);
                CU_ASSERT_EQUAL(ia.n_events, ib.n_events);
                CU_ASSERT_EQUAL(ia.pending_activities, ib.pending_activities);
                CU_ASSERT_EQUAL(ia.pending_timers, ib.pending_timers);
        }
        CU_ASSERT_EQUAL(keel__machine_next_due(a), keel__machine_next_due(b));
}

/*
 * Restore from what fx wrote (events only, as readers apply them), both
 * ways: decoded (keel__machine_restore()) and raw, as the orchestrator
 * does (keel__machine_restore_raw()). The two must agree; the raw one is
 * returned, for the test to go on with.
 */
static keel__machine_t *restored(fx_t *fx, const char *const *settings,
                                 size_t upto)
{
        keel__machine_t *m = machine(fx->reg, settings), *raw;
        char err[256];
        for (size_t i = 0; i < upto && i < json_array_size(fx->log); i++) {
                int rc = keel__machine_restore(m, json_array_get(fx->log, i),
                                               err, sizeof(err));
                if (rc)
                        fprintf(stderr, "restore: %s\n", err);
                CU_ASSERT_EQUAL(rc, KEEL_OK);
        }
        raw = restored_raw(fx, settings, upto);
        same_state(fx, m, raw);
        keel__machine_destroy(m);
        return raw;
}

static void test_retention_restore_rebuilds_the_deadline(void)
{
        fx_t fx;
        char run_id[64];
        keel__machine_t *m;
        keel__out_t out;
        keel__run_info_t info;
        keel__machine_stats_t st;
        size_t n = 0, logged;
        int64_t closed_at;

        fx_init(&fx, one_day);
        n = steps_to_end(&fx, "wf-r", run_id);
        logged = json_array_size(fx.log);
        closed_at = ev_int(json_array_get(fx.log, logged - 1), "ts");

        /* A new owner restores the closed run and deletes it on time. */
        m = restored(&fx, one_day, logged);
        CU_ASSERT_EQUAL(keel__machine_run(m, "wf-r", &info), KEEL_OK);
        CU_ASSERT_EQUAL(keel__machine_next_due(m), closed_at + DAY);
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&out), KEEL_OK);
        CU_ASSERT_EQUAL(keel__machine_tick(m, closed_at + DAY - 1,
                                           closed_at + DAY - 1, &out),
                        KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(out.tombstones), 0);
        CU_ASSERT_EQUAL(
            keel__machine_tick(m, closed_at + DAY, closed_at + DAY, &out),
            KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(out.tombstones), n + 1);
        CU_ASSERT_EQUAL_FATAL(json_array_size(out.history), 1);
        CU_ASSERT_EQUAL(ev_int(json_array_get(out.history, 0), "seq"),
                        (int64_t)n + 1);
        CU_ASSERT_EQUAL(keel__machine_run(m, "wf-r", &info),
                        KEEL_ERR_NOT_FOUND);
        keel__out_destroy(&out);
        keel__machine_destroy(m);

        /* The original deletes it; an owner restoring that history after
         * the RunDeleted knows nothing of the run, and neither does one
         * that finds only the run's first events before it (compaction
         * removed the last ones first). */
        run_until(&fx, closed_at + DAY);
        CU_ASSERT_EQUAL_FATAL(json_array_size(fx.log), logged + 1);
        m = restored(&fx, one_day, logged + 1);
        CU_ASSERT_EQUAL(keel__machine_run(m, "wf-r", &info),
                        KEEL_ERR_NOT_FOUND);
        CU_ASSERT_EQUAL(keel__machine_next_due(m), INT64_MAX);
        keel__machine_destroy(m);
        {
                char err[256];
                m = restored(&fx, one_day, 3); /* an open run's start */
                keel__machine_stats(m, &st);
                CU_ASSERT_EQUAL(st.open, 1);
                CU_ASSERT_EQUAL(
                    keel__machine_restore(m, json_array_get(fx.log, logged),
                                          err, sizeof(err)),
                    KEEL_OK);
                keel__machine_stats(m, &st);
                CU_ASSERT_EQUAL(st.open, 0);
                CU_ASSERT_EQUAL(keel__machine_run(m, "wf-r", &info),
                                KEEL_ERR_NOT_FOUND);
                CU_ASSERT_EQUAL(keel__machine_next_due(m), INT64_MAX);
                keel__machine_destroy(m);
        }
        fx_destroy(&fx);
}

/* The items of arr (events or tasks) of workflow id (new reference). */
static json_t *of_workflow(const json_t *arr, const char *id)
{
        json_t *out = json_array();
        size_t i;
        const json_t *x;
        json_array_foreach(arr, i, x)
        {
                const json_t *rec = json_object_get(x, "record");
                const char *w = json_string_value(
                    json_object_get(rec ? rec : x, "workflow_id"));
                if (w && !strcmp(w, id))
                        json_array_append(out, (json_t *)x);
        }
        return out;
}

/* Apply the same command (tick with type NULL) to a and b; what comes out
 * for each workflow of ids must be the same. */
static void both(keel__machine_t *a, keel__machine_t *b, const char *type,
                 json_t *rec, int64_t now, const char *const *ids)
{
        keel__out_t oa, ob;
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&oa), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&ob), KEEL_OK);
        if (type) {
                CU_ASSERT_EQUAL(keel__machine_command(a, type, rec, now, &oa),
                                KEEL_OK);
                CU_ASSERT_EQUAL(keel__machine_command(b, type, rec, now, &ob),
                                KEEL_OK);
        } else {
                CU_ASSERT_EQUAL(keel__machine_tick(a, now, now, &oa), KEEL_OK);
                CU_ASSERT_EQUAL(keel__machine_tick(b, now, now, &ob), KEEL_OK);
        }
        /* Per run: deadlines due at the same time come out in heap order,
         * which depends on when each was pushed, not on the run. */
        for (const char *const *id = ids; *id; id++) {
                json_t *ha = of_workflow(oa.history, *id),
                       *hb = of_workflow(ob.history, *id),
                       *ta = of_workflow(oa.tasks, *id),
                       *tb = of_workflow(ob.tasks, *id);
                CU_ASSERT(json_equal(ha, hb));
                CU_ASSERT(json_equal(ta, tb));
                json_decref(ha);
                json_decref(hb);
                json_decref(ta);
                json_decref(tb);
        }
        CU_ASSERT_EQUAL(json_array_size(oa.history),
                        json_array_size(ob.history));
        CU_ASSERT_EQUAL(json_array_size(oa.tombstones),
                        json_array_size(ob.tombstones));
        CU_ASSERT(json_equal(oa.rejects, ob.rejects));
        json_decref(rec);
        keel__out_destroy(&oa);
        keel__out_destroy(&ob);
}

/* Runs restored raw (kept encoded, state derived later) go on exactly as
 * runs restored decoded: sleeping, taking signals, waiting for
 * activities, closed and retained. */
static void test_restore_raw_goes_on_alike(void)
{
        static const char *const ids[] = {"t", "s", "l", "t2", "q", NULL};
        fx_t fx;
        char run_id[64];
        keel__machine_t *a, *b;
        char err[256];

        fx_init(&fx, one_day);
        steps_to_end(&fx, "t", run_id);
        CU_ASSERT_EQUAL(start(&fx, "s", "sleeper", "ALLOW_DUPLICATE"), KEEL_OK);
        CU_ASSERT_EQUAL(start(&fx, "l", "listener", "ALLOW_DUPLICATE"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(start(&fx, "f", "fanout", "ALLOW_DUPLICATE"), KEEL_OK);
        CU_ASSERT_EQUAL(start(&fx, "q", "quick", "ALLOW_DUPLICATE"), KEEL_OK);
        CU_ASSERT_EQUAL(signal_(&fx, "l", "s", "{\"n\":1}"), KEEL_OK);
        run_until(&fx, fx.now + 3500);

        a = machine(fx.reg, one_day);
        for (size_t i = 0; i < json_array_size(fx.log); i++)
                CU_ASSERT_EQUAL(keel__machine_restore(a,
                                                      json_array_get(fx.log, i),
                                                      err, sizeof(err)),
                                KEEL_OK);
        b = restored_raw(&fx, one_day, json_array_size(fx.log));
        same_state(&fx, a, b);
        both(a, b, NULL, NULL, fx.now + 10000, ids); /* timers and timeouts */
        both(a, b, "keel.inbox.SignalWorkflow",
             json_pack("{ss ss ss ss sI}", "workflow_id", "l", "signal_name",
                       "s", "payload", "{}", "command_id", "x-1", "ts",
                       (json_int_t)0),
             fx.now + 10001, ids);
        both(a, b, "keel.inbox.SignalWorkflow",
             json_pack("{ss ss ss ss sI}", "workflow_id", "l", "signal_name",
                       "s", "payload", "{}", "command_id", "c-6", "ts",
                       (json_int_t)0),
             fx.now + 10002, ids); /* delivered again: nothing */
        both(a, b, "keel.inbox.CancelWorkflow",
             json_pack("{ss ss ss sI}", "workflow_id", "s", "reason", "r",
                       "command_id", "x-2", "ts", (json_int_t)0),
             fx.now + 10003, ids);
        both(a, b, "keel.inbox.StartWorkflow",
             json_pack("{ss ss ss ss ss ss sI}", "workflow_id", "q",
                       "workflow_type", "quick", "input", "{}", "command_id",
                       "x-3", "id_reuse_policy", "REJECT_DUPLICATE",
                       "id_conflict_policy", "FAIL", "ts", (json_int_t)0),
             fx.now + 10004, ids);
        both(a, b, NULL, NULL, fx.now + 2 * DAY, ids); /* retention */
        same_state(&fx, a, b);
        keel__machine_destroy(a);
        keel__machine_destroy(b);
        fx_destroy(&fx);
}

static void test_retention_id_reused_before_and_after(void)
{
        fx_t fx;
        char run1[64];
        keel__run_info_t info;
        int64_t closed1;
        size_t n1;

        fx_init(&fx, one_day);
        n1 = steps_to_end(&fx, "wf-u", run1);
        closed1 =
            ev_int(json_array_get(fx.log, json_array_size(fx.log) - 1), "ts");
        /* A second run of the ID while the first is kept. */
        fx.now = closed1 + HOUR;
        CU_ASSERT_EQUAL(start(&fx, "wf-u", "listener", "ALLOW_DUPLICATE"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "wf-u", &info), KEEL_OK);
        CU_ASSERT_STRING_NOT_EQUAL(info.run_id, run1);
        /* The first run's history goes on its own deadline, by its own
         * keys; the running one stays. */
        run_until(&fx, closed1 + DAY);
        CU_ASSERT_EQUAL(json_array_size(fx.tombstones), n1 + 1);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                   json_array_get(fx.tombstones, 0), "run_id")),
                               run1);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "wf-u", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "running");
        CU_ASSERT_EQUAL(signal_(&fx, "wf-u", "s", "1"), KEEL_OK);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "wf-u", &info), KEEL_OK);
        CU_ASSERT_EQUAL(info.n_events, 2);

        /* Once the second is deleted too, a start refused for a closed run
         * by the reuse policy is a new start like any other. */
        CU_ASSERT_EQUAL(cmd(&fx, "TerminateWorkflow",
                            json_pack("{ss sn ss}", "workflow_id", "wf-u",
                                      "run_id", "reason", "done")),
                        KEEL_OK);
        CU_ASSERT_EQUAL(start(&fx, "wf-u", "quick", "REJECT_DUPLICATE"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(fx.rejected, 1); /* it already ran */
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "wf-u", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "terminated");
        run_until(&fx, fx.now + DAY);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "wf-u", &info),
                        KEEL_ERR_NOT_FOUND);
        {
                size_t before = json_array_size(fx.log);
                CU_ASSERT_EQUAL(start(&fx, "wf-u", "quick", "REJECT_DUPLICATE"),
                                KEEL_OK);
                CU_ASSERT_EQUAL(fx.rejected, 1); /* not refused again */
                CU_ASSERT_EQUAL(keel__machine_run(fx.m, "wf-u", &info),
                                KEEL_OK);
                CU_ASSERT_STRING_EQUAL(info.status, "completed");
                CU_ASSERT_EQUAL(ev_int(json_array_get(fx.log, before), "seq"),
                                1);
        }
        fx_destroy(&fx);
}

/* Many runs due for deletion at once (orchestrators away for a while):
 * they go in batches of about 10,000 tombstones, the open ones stay. */
static void test_retention_many_runs(void)
{
        static const char *const hour[] = {"retention.closed.ms=3600000", NULL};
        fx_t fx;
        keel__machine_stats_t st;
        keel__run_info_t info;
        char id[32];
        size_t batch;

        fx_init(&fx, hour);
        for (int i = 0; i < 8000; i++) {
                snprintf(id, sizeof(id), "m-%d", i);
                fx.now = T0 + i;
                CU_ASSERT_EQUAL(start(&fx, id, i % 4 ? "quick" : "listener",
                                      "ALLOW_DUPLICATE"),
                                KEEL_OK);
        }
        /* 6,000 closed runs of 2 events: 18,000 tombstones in all. */
        fx.now = T0 + HOUR + 8000;
        CU_ASSERT_EQUAL(keel__machine_tick(fx.m, fx.now, fx.now, &fx.out),
                        KEEL_OK);
        batch = json_array_size(fx.out.tombstones);
        CU_ASSERT(batch >= 10000 && batch < 10003);
        CU_ASSERT_EQUAL(json_array_size(fx.out.history), batch / 3);
        fx_collect(&fx);
        CU_ASSERT(keel__machine_next_due(fx.m) <= fx.now); /* more to do */
        CU_ASSERT_EQUAL(keel__machine_tick(fx.m, fx.now, fx.now, &fx.out),
                        KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(fx.out.tombstones), 18000 - batch);
        fx_collect(&fx);
        keel__machine_stats(fx.m, &st);
        CU_ASSERT_EQUAL(st.deleted, 6000);
        CU_ASSERT_EQUAL(st.tombstones, 18000);
        CU_ASSERT_EQUAL(st.open, 2000);
        CU_ASSERT_EQUAL(keel__machine_next_due(fx.m), INT64_MAX);
        for (int i = 0; i < 8000; i++) {
                snprintf(id, sizeof(id), "m-%d", i);
                CU_ASSERT_EQUAL(keel__machine_run(fx.m, id, &info),
                                i % 4 ? KEEL_ERR_NOT_FOUND : KEEL_OK);
        }
        /* The open ones still take signals. */
        CU_ASSERT_EQUAL(signal_(&fx, "m-4000", "s", "1"), KEEL_OK);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "m-4000", &info), KEEL_OK);
        CU_ASSERT_EQUAL(info.n_events, 2);
        fx_destroy(&fx);
}

/* The test environment: its virtual clock runs to the deletion. */
static void test_retention_testenv(void)
{
        keel_registry_t *reg = registry();
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        keel_config_t *cfg = keel_config_new();
        int64_t t0;

        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        /* Without settings: kept forever. */
        CU_ASSERT_EQUAL(keel_testenv_start(env, "a", "quick", NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "a"), "completed");

        CU_ASSERT_EQUAL(keel_config_set(cfg, "retention.closed.ms.quick",
                                        "7200000", "test", NULL, 0),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_set_config(env, cfg), KEEL_OK);
        t0 = keel_testenv_now(env);
        CU_ASSERT_EQUAL(keel_testenv_start(env, "b", "quick", NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, t0 + 2 * HOUR - 1),
                        KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "b"), "completed");
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_now(env), t0 + 2 * HOUR);
        CU_ASSERT_PTR_NULL(keel_testenv_status(env, "b"));
        CU_ASSERT_PTR_NULL(keel_testenv_history(env, "b"));
        /* Closed before the setting: kept as it was. */
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "a"), "completed");
        keel_config_destroy(cfg);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

/* ---- history limits ----------------------------------------------------- */

static const json_t *last_event(const json_t *events)
{
        return json_array_get(events, json_array_size(events) - 1);
}

static void test_limits_warn_once_then_terminate_at_n_events(void)
{
        static const char *const settings[] = {"history.max.events=20",
                                               "history.warn.percent=50", NULL};
        fx_t fx;
        keel__run_info_t info;
        keel__machine_stats_t st;
        const json_t *last;
        json_t *details;

        fx_init(&fx, settings);
        CU_ASSERT_EQUAL(start(&fx, "loop", "sleeper", "ALLOW_DUPLICATE"),
                        KEEL_OK);
        run_until(&fx, T0 + 4000); /* 1 + 2 x 4 + 1 = 10 events */
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "loop", &info), KEEL_OK);
        CU_ASSERT_EQUAL(info.n_events, 10);
        keel__machine_stats(fx.m, &st);
        CU_ASSERT_EQUAL(st.history_warnings, 1);
        CU_ASSERT_EQUAL(st.history_limited, 0);

        run_until(&fx, T0 + 60000);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "loop", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "terminated");
        /* At 20 events, terminated: the 21st is the termination. */
        CU_ASSERT_EQUAL(info.n_events, 21);
        last = last_event(fx.log);
        CU_ASSERT_STRING_EQUAL(ev_type(last),
                               "keel.history.WorkflowTerminated");
        CU_ASSERT_EQUAL(strncmp(ev_str(last, "reason"),
                                "history size exceeds limit: 20 events", 37),
                        0);
        details = json_loads(ev_str(last, "details"), 0, NULL);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(details, "events")),
                        20);
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(details, "max_events")), 20);
        json_decref(details);
        CU_ASSERT_EQUAL(info.pending_timers, 0);
        keel__machine_stats(fx.m, &st);
        CU_ASSERT_EQUAL(st.history_warnings, 1);
        CU_ASSERT_EQUAL(st.history_limited, 1);
        CU_ASSERT_EQUAL(st.open, 0);
        /* Only its retention (the default, 7 days) is left. */
        CU_ASSERT_EQUAL(keel__machine_next_due(fx.m),
                        ev_int(last, "ts") + 7 * DAY);
        fx_destroy(&fx);
}

static void test_limits_bytes(void)
{
        static const char *const settings[] = {"history.max.bytes=8192", NULL};
        fx_t fx;
        keel__run_info_t info;
        keel__machine_stats_t st;
        char payload[1100];
        int sent = 0;

        memset(payload, 'a', sizeof(payload) - 3);
        payload[0] = '"';
        payload[sizeof(payload) - 3] = '"';
        payload[sizeof(payload) - 2] = '\0';
        fx_init(&fx, settings);
        CU_ASSERT_EQUAL(start(&fx, "big", "listener", "ALLOW_DUPLICATE"),
                        KEEL_OK);
        while (sent < 20 && keel__machine_run(fx.m, "big", &info) == KEEL_OK &&
               !strcmp(info.status, "running")) {
                CU_ASSERT_EQUAL(signal_(&fx, "big", "s", payload), KEEL_OK);
                sent++;
        }
        /* About 1.2 KB per signal: the seventh passes 8 KiB. */
        CU_ASSERT_EQUAL(sent, 7);
        CU_ASSERT_STRING_EQUAL(info.status, "terminated");
        CU_ASSERT_PTR_NOT_NULL(
            strstr(ev_str(last_event(fx.log), "reason"), "bytes"));
        keel__machine_stats(fx.m, &st);
        CU_ASSERT_EQUAL(st.history_warnings, 1);
        CU_ASSERT_EQUAL(st.history_limited, 1);
        /* A signal to it now is refused: it is closed. */
        CU_ASSERT_EQUAL(signal_(&fx, "big", "s", payload), KEEL_OK);
        fx_destroy(&fx);
}

/* The limit holds in the middle of one activation's 100 commands: what
 * the code issued beyond it is not recorded, and the tasks sent for the
 * rest are cancelled with the run. */
static void test_limits_within_one_activation(void)
{
        static const char *const settings[] = {"history.max.events=20", NULL};
        fx_t fx;
        keel__run_info_t info;
        size_t tasks = 0, cancels = 0, i;
        const json_t *t;
        json_t *rec = json_pack("{ss ss ss ss sI}", "workflow_id", "fan",
                                "workflow_type", "fanout", "input", "null",
                                "command_id", "c", "ts", (json_int_t)T0);

        fx_init(&fx, settings);
        CU_ASSERT_EQUAL(keel__machine_command(fx.m, "keel.inbox.StartWorkflow",
                                              rec, T0, &fx.out),
                        KEEL_OK);
        json_decref(rec);
        json_array_foreach(fx.out.tasks, i, t)
        {
                if (json_object_get(t, "record_type"))
                        cancels++;
                else
                        tasks++;
        }
        CU_ASSERT_EQUAL(json_array_size(fx.out.history), 21);
        CU_ASSERT_EQUAL(tasks, 19);
        CU_ASSERT_EQUAL(cancels, 19);
        CU_ASSERT_EQUAL(json_array_size(fx.out.statuses), 2);
        fx_collect(&fx);
        CU_ASSERT_EQUAL(keel__machine_run(fx.m, "fan", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "terminated");
        CU_ASSERT_EQUAL(info.n_events, 21);
        CU_ASSERT_EQUAL(info.pending_activities, 0);
        /* A result for one of them now is stale. */
        complete(&fx, "fan", "3");
        CU_ASSERT_EQUAL(json_array_size(fx.log), 21);
        fx_destroy(&fx);
}

/* A restored run past the warning share was warned about: not again. */
static void test_limits_restored_run_is_not_warned_again(void)
{
        static const char *const settings[] = {"history.max.events=20",
                                               "history.warn.percent=50", NULL};
        fx_t fx;
        keel__machine_t *m;
        keel__machine_stats_t st;
        keel__out_t out;
        keel__run_info_t info;

        fx_init(&fx, settings);
        CU_ASSERT_EQUAL(start(&fx, "loop", "sleeper", "ALLOW_DUPLICATE"),
                        KEEL_OK);
        run_until(&fx, T0 + 6000);
        m = restored(&fx, settings, json_array_size(fx.log));
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&out), KEEL_OK);
        for (int64_t t = T0 + 7000; t <= T0 + 60000; t += 1000)
                CU_ASSERT_EQUAL(keel__machine_tick(m, t, t, &out), KEEL_OK);
        keel__machine_stats(m, &st);
        CU_ASSERT_EQUAL(st.history_warnings, 0);
        CU_ASSERT_EQUAL(st.history_limited, 1);
        CU_ASSERT_EQUAL(keel__machine_run(m, "loop", &info), KEEL_OK);
        CU_ASSERT_EQUAL(info.n_events, 21);
        keel__out_destroy(&out);
        keel__machine_destroy(m);
        fx_destroy(&fx);
}

/* The settings: a per-type key takes the default's values. */
static void test_limits_settings(void)
{
        keel_config_t *cfg = keel_config_new();
        char err[256];
        CU_ASSERT_EQUAL(keel_config_set(cfg, "retention.closed.ms.payment",
                                        "1000", "test", err, sizeof(err)),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_config_set(cfg, "retention.closed.ms.payment",
                                        "soon", "test", err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "retention.closed.ms.payment"));
        CU_ASSERT_EQUAL(keel_config_set(cfg, "retention.closed.ms.", "1000",
                                        "test", err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_EQUAL(keel_config_set(cfg, "history.max.events", "5", "test",
                                        err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_EQUAL(keel_config_set(cfg, "history.warn.percent", "101",
                                        "test", err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "retention.closed.ms"),
                               "604800000");
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "history.max.events"),
                               "50000");
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "history.max.bytes"),
                               "52428800");
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {
    {"test_retention_deletes_at_the_deadline_with_tombstones",
     test_retention_deletes_at_the_deadline_with_tombstones},
    {"test_retention_by_type_and_forever", test_retention_by_type_and_forever},
    {"test_retention_restore_rebuilds_the_deadline",
     test_retention_restore_rebuilds_the_deadline},
    {"test_retention_id_reused_before_and_after",
     test_retention_id_reused_before_and_after},
    {"test_retention_many_runs", test_retention_many_runs},
    {"test_restore_raw_goes_on_alike", test_restore_raw_goes_on_alike},
    {"test_retention_testenv", test_retention_testenv},
    {"test_limits_warn_once_then_terminate_at_n_events",
     test_limits_warn_once_then_terminate_at_n_events},
    {"test_limits_bytes", test_limits_bytes},
    {"test_limits_within_one_activation", test_limits_within_one_activation},
    {"test_limits_restored_run_is_not_warned_again",
     test_limits_restored_run_is_not_warned_again},
    {"test_limits_settings", test_limits_settings},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("retention", tests)

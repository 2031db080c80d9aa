/*
 * test_emit.c: keel_emit() in the test environment, the state machine and
 * the replayer: each call is one RecordEmitted event and one record out,
 * with the keel-id of that event; replays, restores and a resumed
 * orchestrator emit nothing again; the topic and key are the command's
 * identity (changing them is non-determinism, changing the value is not);
 * arguments keel refuses record nothing. Also the machine's status
 * changes behind the lifecycle stream.
 */
#include "keel/codec.h"
#include "keel/replay.h"
#include "keel/testing.h"
#include "keel_test.h"
#include "machine_int.h"

#include <stdlib.h>
#include <string.h>

#define T0 1767225600000LL

static int work(keel_activity_ctx_t *ctx, const json_t *input, json_t **result)
{
        (void)ctx;
        *result = json_pack("{sO}", "echo", (json_t *)input);
        return KEEL_OK;
}

/* Emit "started", charge, wait for "go", emit "completed" with the
 * charge's result. */
static keel_err_t order(keel_wf_t *wf, const json_t *input, json_t **result)
{
        const char *key = keel_wf_id(wf);
        json_t *charge;
        int rc;

        (void)input;
        rc = keel_emit(wf, "orders.events", key,
                       json_pack("{ss}", "event", "started"));
        if (rc)
                return keel_fail(wf, "EmitRefused", keel_err_name(rc), NULL);
        keel_activity(wf, "chargeCard", json_pack("{si}", "amount", 42), NULL,
                      &charge);
        keel_wait_signal(wf, "go", -1, NULL);
        rc = keel_emit(
            wf, "payments.completed", key,
            json_pack("{ss sO}", "event", "completed", "charge", charge));
        if (rc)
                return keel_fail(wf, "EmitRefused", keel_err_name(rc), NULL);
        *result = json_string("done");
        return KEEL_OK;
}

/* The same code, with a value that differs from order's. */
static keel_err_t order_new_value(keel_wf_t *wf, const json_t *input,
                                  json_t **result)
{
        (void)input;
        keel_emit(wf, "orders.events", keel_wf_id(wf),
                  json_pack("{ss si}", "event", "started", "version", 2));
        keel_activity(wf, "chargeCard", json_pack("{si}", "amount", 42), NULL,
                      NULL);
        keel_wait_signal(wf, "go", -1, NULL);
        keel_emit(wf, "payments.completed", keel_wf_id(wf),
                  json_pack("{ss si}", "event", "completed", "version", 2));
        *result = json_string("done");
        return KEEL_OK;
}

/* The same code emitting its last record to another topic. */
static keel_err_t order_new_topic(keel_wf_t *wf, const json_t *input,
                                  json_t **result)
{
        (void)input;
        keel_emit(wf, "orders.events", keel_wf_id(wf),
                  json_pack("{ss}", "event", "started"));
        keel_activity(wf, "chargeCard", json_pack("{si}", "amount", 42), NULL,
                      NULL);
        keel_wait_signal(wf, "go", -1, NULL);
        keel_emit(wf, "payments.settled", keel_wf_id(wf), NULL);
        *result = json_string("done");
        return KEEL_OK;
}

static keel_registry_t *reg_of(keel_workflow_fn_t fn)
{
        keel_registry_t *r = keel_registry_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL_FATAL(keel_workflow_register(r, "order", fn), KEEL_OK);
        return r;
}

static keel_testenv_t *env_of(keel_registry_t *r)
{
        keel_testenv_t *env = keel_testenv_new(r, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        keel_testenv_register_activity(env, "chargeCard", work, NULL);
        return env;
}

static const char *sget(const json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "";
}

/* The seqs of h's RecordEmitted events, in order; returns how many. */
static size_t emitted_seqs(const json_t *h, int64_t *seqs, size_t max)
{
        size_t i, n = 0;
        const json_t *ev;
        json_array_foreach(h, i, ev)
        {
                if (strcmp(sget(ev, "type"), "keel.history.RecordEmitted"))
                        continue;
                if (n < max)
                        seqs[n] = json_integer_value(json_object_get(
                            json_object_get(ev, "record"), "seq"));
                n++;
        }
        return n;
}

static void test_emit_records_one_event_and_one_record_each(void)
{
        keel_registry_t *r = reg_of(order);
        keel_testenv_t *env = env_of(r);
        const json_t *em, *h, *first, *last;
        json_t *want;
        int64_t seqs[4];
        char id[128];

        CU_ASSERT_EQUAL(keel_testenv_start(env, "o1", "order", NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        em = keel_testenv_emitted(env);
        CU_ASSERT_EQUAL_FATAL(json_array_size(em), 1);
        CU_ASSERT_EQUAL(keel_testenv_signal(env, "o1", "go", NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "o1"), "completed");
        CU_ASSERT_EQUAL_FATAL(json_array_size(em), 2);

        h = keel_testenv_history(env, "o1");
        CU_ASSERT_EQUAL_FATAL(emitted_seqs(h, seqs, 4), 2);
        first = json_array_get(em, 0);
        last = json_array_get(em, 1);
        CU_ASSERT_STRING_EQUAL(sget(first, "topic"), "orders.events");
        CU_ASSERT_STRING_EQUAL(sget(first, "key"), "o1");
        want = json_pack("{ss}", "event", "started");
        CU_ASSERT(json_equal(json_object_get(first, "value"), want));
        json_decref(want);
        CU_ASSERT_STRING_EQUAL(sget(last, "topic"), "payments.completed");
        want = json_pack("{ss s{s{si}}}", "event", "completed", "charge",
                         "echo", "amount", 42);
        CU_ASSERT(json_equal(json_object_get(last, "value"), want));
        json_decref(want);
        /* keel-id: the run and the seq of the RecordEmitted event. */
        snprintf(id, sizeof(id), "o1/%s/%lld", sget(first, "run_id"),
                 (long long)seqs[0]);
        CU_ASSERT_STRING_EQUAL(sget(first, "keel_id"), id);
        snprintf(id, sizeof(id), "o1/%s/%lld", sget(last, "run_id"),
                 (long long)seqs[1]);
        CU_ASSERT_STRING_EQUAL(sget(last, "keel_id"), id);
        CU_ASSERT(json_is_null(json_object_get(last, "partition")));
        CU_ASSERT_EQUAL(json_array_size(json_object_get(last, "headers")), 0);
        /* The recorded value is the JSON text the record carries. */
        CU_ASSERT_STRING_EQUAL(
            sget(json_object_get(json_array_get(h, (size_t)seqs[0] - 1),
                                 "record"),
                 "value"),
            "{\"event\":\"started\"}");
        keel_testenv_destroy(env);
        keel_registry_destroy(r);
}

/* Every activation replays the code from the start: the first emit runs
 * again at the charge's result, at the signal and at the close, and is
 * matched each time, not emitted. */
static void test_emit_replays_emit_nothing_twice(void)
{
        keel_registry_t *r = reg_of(order);
        keel_testenv_t *env = env_of(r);
        const json_t *em;
        size_t i;
        const json_t *e;

        for (int k = 0; k < 3; k++) {
                char id[16];
                snprintf(id, sizeof(id), "r%d", k);
                CU_ASSERT_EQUAL(keel_testenv_start(env, id, "order", NULL),
                                KEEL_OK);
        }
        keel_testenv_run(env);
        for (int k = 0; k < 3; k++) {
                char id[16];
                snprintf(id, sizeof(id), "r%d", k);
                keel_testenv_signal(env, id, "go", NULL);
                /* A signal nobody waits for activates the run again. */
                keel_testenv_signal(env, id, "other", NULL);
        }
        keel_testenv_run(env);
        em = keel_testenv_emitted(env);
        CU_ASSERT_EQUAL(json_array_size(em), 6);
        /* No two records share a keel-id. */
        json_array_foreach(em, i, e)
        {
                for (size_t k = i + 1; k < json_array_size(em); k++)
                        CU_ASSERT_STRING_NOT_EQUAL(
                            sget(e, "keel_id"),
                            sget(json_array_get(em, k), "keel_id"));
        }
        keel_testenv_destroy(env);
        keel_registry_destroy(r);
}

/* Run workflow `id` under registry run_reg until it waits for "go"
 * (having emitted one record), then restore its history into a new
 * machine running new_reg's code (an orchestrator taking the partition
 * over, maybe with new code). out is made ready. */
static keel__machine_t *taken_over(keel_registry_t *run_reg,
                                   keel_registry_t *new_reg, const char *id,
                                   keel__out_t *out)
{
        keel_testenv_t *env = env_of(run_reg);
        keel__machine_t *m;
        const json_t *ev;
        char err[256];
        size_t i;

        keel_testenv_start(env, id, "order", NULL);
        keel_testenv_run(env);
        CU_ASSERT_EQUAL(json_array_size(keel_testenv_emitted(env)), 1);
        m = keel__machine_new(new_reg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT_EQUAL_FATAL(keel__out_init(out), KEEL_OK);
        json_array_foreach(keel_testenv_history(env, id), i, ev)
        {
                CU_ASSERT_EQUAL(keel__machine_restore(m, ev, err, sizeof(err)),
                                KEEL_OK);
        }
        keel_testenv_destroy(env);
        return m;
}

/* Send workflow id the signal "go" at now. */
static void signal_go(keel__machine_t *m, const char *id, int64_t now,
                      keel__out_t *out)
{
        json_t *sig = json_pack("{ss ss sI ss ss}", "workflow_id", id,
                                "command_id", "s1", "ts", (json_int_t)0,
                                "signal_name", "go", "payload", "null");
        CU_ASSERT_EQUAL(keel__machine_command(m, "keel.inbox.SignalWorkflow",
                                              sig, now, out),
                        KEEL_OK);
        json_decref(sig);
}

/* A history recorded, then restored into a new machine (an orchestrator
 * taking the partition over) and resumed: nothing is emitted again; the
 * next step emits only its own record. */
static void test_emit_restore_does_not_emit_again(void)
{
        keel_registry_t *r = reg_of(order);
        keel__out_t out;
        keel__machine_t *m = taken_over(r, r, "o2", &out);
        const json_t *em;

        CU_ASSERT_EQUAL(keel__machine_resume(m, T0 + 1000, &out), KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(out.emits), 0);
        CU_ASSERT_EQUAL(json_array_size(out.history), 0);
        signal_go(m, "o2", T0 + 2000, &out);
        CU_ASSERT_EQUAL_FATAL(json_array_size(out.emits), 1);
        em = json_array_get(out.emits, 0);
        CU_ASSERT_STRING_EQUAL(sget(em, "topic"), "payments.completed");
        /* The machine's output carries the value as JSON text, for the
         * orchestrator to produce as is. */
        CU_ASSERT_PTR_NOT_NULL(strstr(sget(em, "value"), "\"completed\""));
        keel__out_destroy(&out);
        keel__machine_destroy(m);
        keel_registry_destroy(r);
}

/* Run "order" under registry r to its end; its history. */
static json_t *recorded(keel_registry_t *r)
{
        keel_testenv_t *env = env_of(r);
        json_t *h;
        keel_testenv_start(env, "o3", "order", NULL);
        keel_testenv_run(env);
        keel_testenv_signal(env, "o3", "go", NULL);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "o3"), "completed");
        h = json_deep_copy(keel_testenv_history(env, "o3"));
        keel_testenv_destroy(env);
        return h;
}

static void test_emit_topic_change_is_nondeterminism(void)
{
        keel_registry_t *r1 = reg_of(order), *r2 = reg_of(order_new_topic);
        keel_replay_report_t rep;
        json_t *h = recorded(r1);

        CU_ASSERT_EQUAL(keel_replay(r1, h, &rep), KEEL_OK);
        CU_ASSERT_EQUAL(keel_replay(r2, h, &rep), KEEL_ERR_NONDETERMINISM);
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.expected, "RecordEmitted"));
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.expected, "payments.completed"));
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.actual, "payments.settled"));
        json_decref(h);
        keel_registry_destroy(r1);
        keel_registry_destroy(r2);
}

static void test_emit_key_change_is_nondeterminism(void)
{
        keel_registry_t *r = reg_of(order);
        keel_replay_report_t rep;
        json_t *h = recorded(r);
        json_t *ev, *rec;
        size_t i;

        /* The same code, run with a history whose last emit had another
         * key: as if the code had changed the key. */
        json_array_foreach(h, i, ev)
        {
                rec = json_object_get(ev, "record");
                if (!strcmp(sget(rec, "topic"), "payments.completed"))
                        json_object_set_new(rec, "key", json_string("other"));
        }
        CU_ASSERT_EQUAL(keel_replay(r, h, &rep), KEEL_ERR_NONDETERMINISM);
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.expected, "key other"));
        CU_ASSERT_PTR_NOT_NULL(strstr(rep.actual, "key o3"));
        json_decref(h);
        keel_registry_destroy(r);
}

/* A new version that changes only the emitted values replays the old
 * runs: the value is not the command's identity. */
static void test_emit_value_change_replays(void)
{
        keel_registry_t *r1 = reg_of(order), *r2 = reg_of(order_new_value);
        keel_replay_report_t rep;
        json_t *h = recorded(r1);

        CU_ASSERT_EQUAL(keel_replay(r2, h, &rep), KEEL_OK);
        json_decref(h);
        keel_registry_destroy(r1);
        keel_registry_destroy(r2);
}

/* Emit to notices.v1, then wait for "go"; v2 emits to notices.v2. */
static keel_err_t notify(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        keel_emit(wf, "notices.v1", "n", json_string("hello"));
        keel_wait_signal(wf, "go", -1, NULL);
        *result = NULL;
        return KEEL_OK;
}

static keel_err_t notify_v2(keel_wf_t *wf, const json_t *input, json_t **result)
{
        (void)input;
        keel_emit(wf, "notices.v2", "n", json_string("hello"));
        keel_wait_signal(wf, "go", -1, NULL);
        *result = NULL;
        return KEEL_OK;
}

/* A running workflow whose code now emits its recorded record to another
 * topic is blocked at that step when it next runs, and emits nothing. */
static void test_emit_topic_change_blocks_the_run(void)
{
        keel_registry_t *r1 = reg_of(notify), *r2 = reg_of(notify_v2);
        keel__out_t out;
        keel__machine_t *m = taken_over(r1, r2, "o4", &out);
        const json_t *ev;
        keel__run_info_t info;
        size_t i;
        int nd = 0;

        signal_go(m, "o4", T0 + 5000, &out);
        CU_ASSERT_EQUAL(keel__machine_run(m, "o4", &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "blocked");
        CU_ASSERT_EQUAL(json_array_size(out.emits), 0);
        json_array_foreach(out.history, i, ev)
        {
                const json_t *rec = json_object_get(ev, "record");
                if (strcmp(sget(ev, "type"),
                           "keel.history.NonDeterminismDetected"))
                        continue;
                nd++;
                CU_ASSERT_PTR_NOT_NULL(
                    strstr(sget(rec, "expected"), "topic notices.v1"));
                CU_ASSERT_PTR_NOT_NULL(
                    strstr(sget(rec, "actual"), "topic notices.v2"));
        }
        CU_ASSERT_EQUAL(nd, 1);
        keel__out_destroy(&out);
        keel__machine_destroy(m);
        keel_registry_destroy(r1);
        keel_registry_destroy(r2);
}

/* ---- arguments --------------------------------------------------------- */

static int probe_rc[16];
static size_t probe_n;

/* Tries refused arguments, then emits once with options. */
static keel_err_t prober(keel_wf_t *wf, const json_t *input, json_t **result)
{
        static const keel_emit_header_t keel_id[] = {{"keel-id", "x"}};
        static const keel_emit_header_t good[] = {{"trace", "t-1"},
                                                  {"source", "keel"}};
        keel_emit_options_t bad_part = {.explicit_partition = 1,
                                        .partition = -1};
        keel_emit_options_t hdr = {.headers = keel_id, .headers_cnt = 1};
        keel_emit_options_t ok = {.explicit_partition = 1,
                                  .partition = 3,
                                  .headers = good,
                                  .headers_cnt = 2};
        char *big = keel_alloc(wf, KEEL_EMIT_MAX_BYTES + 2);
        size_t n = 0;

        (void)input;
        memset(big, 'x', KEEL_EMIT_MAX_BYTES + 1);
        probe_rc[n++] = keel_emit(wf, "", "k", NULL);
        probe_rc[n++] = keel_emit(wf, NULL, "k", NULL);
        probe_rc[n++] = keel_emit(wf, "keel.inbox", "k", NULL);
        probe_rc[n++] = keel_emit(wf, "__consumer_offsets", "k", NULL);
        probe_rc[n++] = keel_emit(wf, "bad topic", "k", NULL);
        probe_rc[n++] = keel_emit(wf, "..", "k", NULL);
        probe_rc[n++] = keel_emit(wf, "t", "\xff\xfe", NULL);
        probe_rc[n++] = keel_emit_ex(wf, "t", "k", NULL, &bad_part);
        probe_rc[n++] = keel_emit_ex(wf, "t", "k", NULL, &hdr);
        probe_rc[n++] = keel_emit(wf, "t", "k", json_string(big));
        probe_rc[n++] =
            keel_emit_ex(wf, "audit.log", NULL, json_pack("[i i]", 1, 2), &ok);
        probe_n = n;
        *result = NULL;
        return KEEL_OK;
}

static void test_emit_refused_arguments_record_nothing(void)
{
        keel_registry_t *r = reg_of(prober);
        keel_testenv_t *env = env_of(r);
        const json_t *em, *h, *hdrs;
        int64_t seqs[4];
        json_t *want;

        CU_ASSERT_EQUAL(keel_testenv_start(env, "p1", "order", NULL), KEEL_OK);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "p1"), "completed");
        CU_ASSERT_EQUAL_FATAL(probe_n, 11);
        for (size_t i = 0; i < 9; i++) {
                if (probe_rc[i] != KEEL_ERR_INVALID_ARG)
                        fprintf(stderr, "probe %zu: %d\n", i, probe_rc[i]);
                CU_ASSERT_EQUAL(probe_rc[i], KEEL_ERR_INVALID_ARG);
        }
        CU_ASSERT_EQUAL(probe_rc[9], KEEL_ERR_TOO_LARGE);
        CU_ASSERT_EQUAL(probe_rc[10], KEEL_OK);
        h = keel_testenv_history(env, "p1");
        CU_ASSERT_EQUAL(emitted_seqs(h, seqs, 4), 1);
        em = keel_testenv_emitted(env);
        CU_ASSERT_EQUAL_FATAL(json_array_size(em), 1);
        em = json_array_get(em, 0);
        CU_ASSERT_STRING_EQUAL(sget(em, "topic"), "audit.log");
        CU_ASSERT(json_is_null(json_object_get(em, "key")));
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(em, "partition")),
                        3);
        want = json_pack("[i i]", 1, 2);
        CU_ASSERT(json_equal(json_object_get(em, "value"), want));
        json_decref(want);
        hdrs = json_object_get(em, "headers");
        CU_ASSERT_EQUAL_FATAL(json_array_size(hdrs), 2);
        CU_ASSERT_STRING_EQUAL(sget(json_array_get(hdrs, 0), "name"), "trace");
        CU_ASSERT_STRING_EQUAL(sget(json_array_get(hdrs, 0), "value"), "t-1");
        CU_ASSERT_STRING_EQUAL(sget(json_array_get(hdrs, 1), "name"), "source");
        keel_testenv_destroy(env);
        keel_registry_destroy(r);
}

/* The event goes through the Avro codec (what the orchestrator writes and
 * restore reads) unchanged, headers and all. */
static void test_emit_event_round_trips_through_avro(void)
{
        keel_registry_t *r = reg_of(prober);
        keel_testenv_t *env = env_of(r);
        const json_t *h, *ev;
        size_t i;
        int found = 0;

        keel_testenv_start(env, "p2", "order", NULL);
        keel_testenv_run(env);
        h = keel_testenv_history(env, "p2");
        json_array_foreach(h, i, ev)
        {
                const char *type = sget(ev, "type");
                const char *back_type;
                json_t *back = NULL;
                unsigned char *buf;
                size_t len;
                char err[256];
                if (strcmp(type, "keel.history.RecordEmitted"))
                        continue;
                found++;
                CU_ASSERT_EQUAL_FATAL(
                    keel_codec_encode(type, json_object_get(ev, "record"), &buf,
                                      &len, err, sizeof(err)),
                    KEEL_OK);
                CU_ASSERT_EQUAL_FATAL(keel_codec_decode(buf, len, &back_type,
                                                        &back, err,
                                                        sizeof(err)),
                                      KEEL_OK);
                CU_ASSERT_STRING_EQUAL(back_type, type);
                CU_ASSERT(json_equal(back, json_object_get(ev, "record")));
                json_decref(back);
                free(buf);
        }
        CU_ASSERT_EQUAL(found, 1);
        keel_testenv_destroy(env);
        keel_registry_destroy(r);
}

/* ---- the lifecycle stream's source ----------------------------------------
 */

/* Statuses of out, as "STATUS:type:seq" joined by spaces. */
static void statuses(const keel__out_t *out, char *buf, size_t size)
{
        size_t i, k = 0;
        const json_t *st;
        buf[0] = '\0';
        json_array_foreach(out->statuses, i, st)
        {
                const json_t *rec =
                    json_object_get(json_object_get(st, "event"), "record");
                k += (size_t)snprintf(
                    buf + k, size - k, "%s%s:%s:%lld", k ? " " : "",
                    sget(st, "status"), sget(st, "workflow_type"),
                    (long long)json_integer_value(json_object_get(rec, "seq")));
                if (k >= size)
                        break;
        }
}

/* A start and a close each add one status change, with the run's type;
 * restoring and resuming add none. */
static void test_lifecycle_statuses_once(void)
{
        keel_registry_t *r = reg_of(order);
        keel__out_t out, out2;
        keel__machine_t *m = keel__machine_new(r), *m2;
        json_t *start;
        keel__run_info_t info;
        const json_t *ev;
        char buf[256], err[256];
        size_t i;

        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        keel__machine_keep_history(m, 1); /* restored into m2 below */
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&out), KEEL_OK);
        start = json_pack("{ss ss ss sI ss}", "workflow_id", "o6", "command_id",
                          "c1", "workflow_type", "order", "ts", (json_int_t)0,
                          "input", "null");
        CU_ASSERT_EQUAL(keel__machine_command(m, "keel.inbox.StartWorkflow",
                                              start, T0, &out),
                        KEEL_OK);
        json_decref(start);
        statuses(&out, buf, sizeof(buf));
        CU_ASSERT_STRING_EQUAL(buf, "RUNNING:order:1");
        keel__out_reset(&out);
        /* Terminate: the run closes without running code. */
        start = json_pack("{ss ss sI ss}", "workflow_id", "o6", "command_id",
                          "c2", "ts", (json_int_t)0, "reason", "test");
        CU_ASSERT_EQUAL(keel__machine_command(m, "keel.inbox.TerminateWorkflow",
                                              start, T0 + 10, &out),
                        KEEL_OK);
        json_decref(start);
        CU_ASSERT_EQUAL(keel__machine_run(m, "o6", &info), KEEL_OK);
        statuses(&out, buf, sizeof(buf));
        snprintf(err, sizeof(err), "TERMINATED:order:%zu",
                 json_array_size(info.events));
        CU_ASSERT_STRING_EQUAL(buf, err);

        m2 = keel__machine_new(r);
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&out2), KEEL_OK);
        json_array_foreach(info.events, i, ev)
        {
                CU_ASSERT_EQUAL(keel__machine_restore(m2, ev, err, sizeof(err)),
                                KEEL_OK);
        }
        CU_ASSERT_EQUAL(keel__machine_resume(m2, T0 + 20, &out2), KEEL_OK);
        CU_ASSERT_EQUAL(json_array_size(out2.statuses), 0);
        keel__out_destroy(&out2);
        keel__machine_destroy(m2);
        keel__out_destroy(&out);
        keel__machine_destroy(m);
        keel_registry_destroy(r);
}

static CU_TestInfo tests[] = {
    {"test_emit_records_one_event_and_one_record_each",
     test_emit_records_one_event_and_one_record_each},
    {"test_emit_replays_emit_nothing_twice",
     test_emit_replays_emit_nothing_twice},
    {"test_emit_restore_does_not_emit_again",
     test_emit_restore_does_not_emit_again},
    {"test_emit_topic_change_is_nondeterminism",
     test_emit_topic_change_is_nondeterminism},
    {"test_emit_key_change_is_nondeterminism",
     test_emit_key_change_is_nondeterminism},
    {"test_emit_value_change_replays", test_emit_value_change_replays},
    {"test_emit_topic_change_blocks_the_run",
     test_emit_topic_change_blocks_the_run},
    {"test_emit_refused_arguments_record_nothing",
     test_emit_refused_arguments_record_nothing},
    {"test_emit_event_round_trips_through_avro",
     test_emit_event_round_trips_through_avro},
    {"test_lifecycle_statuses_once", test_lifecycle_statuses_once},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("emit", tests)

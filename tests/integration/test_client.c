/*
 * test_client.c: the workflow client (keel/client.h) against the dev
 * broker. Commands must land in keel.inbox on the workflow's partition,
 * keyed by its ID, and decode with the fields given. For the calls that
 * wait, a thread plays the orchestrator: it reads the command from the
 * inbox and answers in keel.history (events closed by a Checkpoint) or
 * keel.dlq (a DeadLetter naming the command's offset), including torn and
 * fenced batches that a client must not take for an answer. The broker is
 * shared with other tests, so every workflow ID carries the process ID.
 */
#include "keel/client.h"
#include "keel/codec.h"
#include "keel/config.h"
#include "keel/error.h"
#include "keel/partition.h"
#include "keel/topics.h"
#include "keel_test.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PARTITIONS 12
#define EPOCH      1000 /* epochs the fake orchestrator writes under */

static char bootstrap[256];

static const char *broker(void)
{
        if (!bootstrap[0]) {
                FILE *f = fopen(keel_test_env("KEEL_TEST_DEVBROKER_FILE"), "r");
                CU_ASSERT_PTR_NOT_NULL_FATAL(f);
                CU_ASSERT_PTR_NOT_NULL_FATAL(
                    fgets(bootstrap, sizeof(bootstrap), f));
                fclose(f);
                bootstrap[strcspn(bootstrap, "\r\n")] = '\0';
        }
        return bootstrap;
}

static keel_client_t *client_for(const char *bs, const char *timeout_ms)
{
        keel_config_t *cfg = keel_config_new();
        keel_client_t *c;
        char err[512] = "";

        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
        CU_ASSERT_EQUAL_FATAL(
            keel_config_set(cfg, "bootstrap", bs, NULL, err, sizeof(err)),
            KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(keel_config_set(cfg, "timeout.ms", timeout_ms,
                                              NULL, err, sizeof(err)),
                              KEEL_OK);
        c = keel_client_new(cfg, err, sizeof(err));
        if (!c)
                fprintf(stderr, "keel_client_new: %s\n", err);
        keel_config_destroy(cfg); /* the client keeps no reference */
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        return c;
}

static keel_client_t *client(void)
{
        return client_for(broker(), "10000");
}

/* A workflow ID unique to this process and call. */
static void wf_id(char *out, size_t size, const char *what)
{
        static int n;
        snprintf(out, size, "test-client-%s-%d-%d", what, (int)getpid(), ++n);
}

static int32_t part(const char *id)
{
        return keel_partition_of(id, strlen(id), PARTITIONS);
}

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Kafka, as the orchestrator sees it ------------------------------- */

/* These helpers also run on the orchestrator's threads, where CUnit's
 * asserts must not be used: they report failure by their return value. */

static rd_kafka_t *kafka_new(rd_kafka_type_t type)
{
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        if (type == RD_KAFKA_CONSUMER) {
                rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                                  sizeof(err));
                rd_kafka_conf_set(conf, "fetch.wait.max.ms", "50", err,
                                  sizeof(err));
        } else {
                rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof(err));
        }
        rk = rd_kafka_new(type, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "rd_kafka_new: %s\n", err);
                rd_kafka_conf_destroy(conf);
        }
        return rk;
}

/* The end offset of topic[p]; -1 on error. */
static int64_t end_offset(const char *topic, int32_t p)
{
        rd_kafka_t *rk = kafka_new(RD_KAFKA_CONSUMER);
        int64_t lo = -1, hi = -1;

        if (!rk)
                return -1;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000))
                hi = -1;
        rd_kafka_destroy(rk);
        return hi;
}

/* Records of topic[p] from offset `from` whose key is `key`, read until
 * `want` are found or timeout_ms passes; returns how many (-1 on error),
 * the first decoded, with its offset, in *rec / *type / *offset when not
 * NULL (*rec stays NULL if it does not decode). */
static int find_records(const char *topic, int32_t p, int64_t from,
                        const char *key, int want, int timeout_ms, json_t **rec,
                        const char **type, int64_t *offset)
{
        rd_kafka_t *rk = kafka_new(RD_KAFKA_CONSUMER);
        rd_kafka_topic_t *t;
        int64_t deadline = mono_ms() + timeout_ms;
        int found = 0;

        if (rec)
                *rec = NULL;
        if (!rk)
                return -1;
        t = rd_kafka_topic_new(rk, topic, NULL);
        if (from < 0 || rd_kafka_consume_start(t, p, from)) {
                rd_kafka_topic_destroy(t);
                rd_kafka_destroy(rk);
                return -1;
        }
        while (found < want && mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consume(t, p, 100);
                if (!m)
                        continue;
                if (!m->err && m->key_len == strlen(key) &&
                    !memcmp(m->key, key, m->key_len)) {
                        if (!found++ && rec) {
                                const char *ty = NULL;
                                if (keel_codec_decode(m->payload, m->len, &ty,
                                                      rec, NULL, 0))
                                        *rec = NULL;
                                if (type)
                                        *type = ty;
                                if (offset)
                                        *offset = m->offset;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consume_stop(t, p);
        rd_kafka_topic_destroy(t);
        rd_kafka_destroy(rk);
        return found;
}

/* Write rec (stolen) as `type` to topic[p] with key; -1 on error. */
static int put(rd_kafka_t *rk, const char *topic, int32_t p, const char *key,
               const char *type, json_t *rec)
{
        unsigned char *buf = NULL;
        size_t len = 0;
        char err[256] = "";
        int rc = keel_codec_encode(type, rec, &buf, &len, err, sizeof(err));

        json_decref(rec);
        if (rc) {
                fprintf(stderr, "encode %s: %s\n", type, err);
                return -1;
        }
        if (rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END)) {
                free(buf);
                return -1;
        }
        return rd_kafka_flush(rk, 10000) ? -1 : 0;
}

/* ---- the orchestrator's part ------------------------------------------ */

typedef enum answer_e {
        ANSWER_STARTED,      /* WorkflowStarted + Checkpoint */
        ANSWER_DEAD_LETTER,  /* DeadLetter naming the command's offset */
        ANSWER_TORN,         /* torn and fenced batches, then the real one */
        ANSWER_SIGNALLED,    /* SignalReceived + Checkpoint */
        ANSWER_CANCEL_ASKED, /* WorkflowCancelRequested + Checkpoint */
        ANSWER_TERMINATED,   /* WorkflowTerminated + Checkpoint */
        ANSWER_UNCLOSED,     /* WorkflowStarted with no Checkpoint */
} answer_t;

typedef struct orch_s {
        pthread_t th;
        char workflow_id[128];
        int32_t p;
        int64_t inbox_from;
        answer_t answer;
        const char *error, *reason; /* ANSWER_DEAD_LETTER */
        /* Set by the thread. */
        int answered; /* it read the command and wrote every answer */
        int failed;   /* a write failed */
        char command_type[64];
        char command_id[64];
        char run_id[KEEL_UUID_SIZE]; /* the run it reports */
} orch_t;

static json_t *event(const orch_t *o, const char *run_id, int64_t seq,
                     int64_t epoch)
{
        return json_pack("{s:s, s:s, s:I, s:I, s:I}", "workflow_id",
                         o->workflow_id, "run_id", run_id, "seq",
                         (json_int_t)seq, "epoch", (json_int_t)epoch, "ts",
                         (json_int_t)1764032400000);
}

static json_t *started(const orch_t *o, const char *run_id,
                       const char *command_id, int64_t epoch)
{
        json_t *ev = event(o, run_id, 1, epoch);
        json_object_set_new(ev, "workflow_type", json_string("test"));
        json_object_set_new(ev, "command_id", json_string(command_id));
        return ev;
}

static void history(rd_kafka_t *rk, orch_t *o, int64_t seq, const char *type,
                    json_t *ev)
{
        char key[200];
        snprintf(key, sizeof(key), "%s/%lld", o->workflow_id, (long long)seq);
        o->failed |= put(rk, KEEL_TOPIC_HISTORY, o->p, key, type, ev);
}

static void checkpoint(rd_kafka_t *rk, orch_t *o, int64_t epoch,
                       int64_t inbox_offset)
{
        char key[64];
        snprintf(key, sizeof(key), "!checkpoint/%d", (int)o->p);
        o->failed |=
            put(rk, KEEL_TOPIC_HISTORY, o->p, key, "keel.history.Checkpoint",
                json_pack("{s:i, s:I, s:I, s:i, s:I}", "partition", (int)o->p,
                          "epoch", (json_int_t)epoch, "inbox_offset",
                          (json_int_t)inbox_offset, "batch_events", 1, "ts",
                          (json_int_t)1764032400000));
}

static void claim(rd_kafka_t *rk, orch_t *o, int64_t epoch)
{
        char key[64];
        snprintf(key, sizeof(key), "!claim/%d/%lld", (int)o->p,
                 (long long)epoch);
        o->failed |= put(
            rk, KEEL_TOPIC_HISTORY, o->p, key, "keel.history.PartitionClaim",
            json_pack("{s:i, s:I, s:s, s:I}", "partition", (int)o->p, "epoch",
                      (json_int_t)epoch, "owner", "test_client", "ts",
                      (json_int_t)1764032400000));
}

static void *orchestrate(void *arg)
{
        orch_t *o = arg;
        json_t *cmd = NULL;
        const char *type = NULL;
        int64_t off = -1;
        rd_kafka_t *rk;
        char run_a[KEEL_UUID_SIZE], run_c[KEEL_UUID_SIZE];

        if (find_records(KEEL_TOPIC_INBOX, o->p, o->inbox_from, o->workflow_id,
                         1, 10000, &cmd, &type, &off) != 1 ||
            !cmd)
                return NULL;
        snprintf(o->command_type, sizeof(o->command_type), "%s", type);
        snprintf(o->command_id, sizeof(o->command_id), "%s",
                 json_string_value(json_object_get(cmd, "command_id")));
        json_decref(cmd);
        keel_client_command_id(o->run_id);
        rk = kafka_new(RD_KAFKA_PRODUCER);
        if (!rk)
                return NULL;
        switch (o->answer) {
        case ANSWER_STARTED:
                /* Another command's run first: not the answer. */
                history(rk, o, 1, "keel.history.WorkflowStarted",
                        started(o, "not-this-run", "another-command", EPOCH));
                checkpoint(rk, o, EPOCH, off - 1);
                history(rk, o, 1, "keel.history.WorkflowStarted",
                        started(o, o->run_id, o->command_id, EPOCH));
                checkpoint(rk, o, EPOCH, off);
                break;
        case ANSWER_UNCLOSED:
                history(rk, o, 1, "keel.history.WorkflowStarted",
                        started(o, o->run_id, o->command_id, EPOCH));
                break;
        case ANSWER_TORN:
                keel_client_command_id(run_a);
                keel_client_command_id(run_c);
                /* A batch cut off by a new owner's claim... */
                history(rk, o, 1, "keel.history.WorkflowStarted",
                        started(o, run_a, o->command_id, EPOCH));
                claim(rk, o, EPOCH + 1);
                /* ...a fenced writer's whole batch after that claim... */
                history(rk, o, 1, "keel.history.WorkflowStarted",
                        started(o, run_c, o->command_id, EPOCH));
                checkpoint(rk, o, EPOCH, off);
                /* ...and the new owner's batch, the only one that counts. */
                history(rk, o, 1, "keel.history.WorkflowStarted",
                        started(o, o->run_id, o->command_id, EPOCH + 1));
                checkpoint(rk, o, EPOCH + 1, off);
                break;
        case ANSWER_DEAD_LETTER:
                o->failed |= put(
                    rk, KEEL_TOPIC_DLQ, o->p, o->workflow_id,
                    "keel.dlq.DeadLetter",
                    json_pack("{s:s, s:i, s:I, s:s, s:s, s:s, s:s, s:I}",
                              "source_topic", KEEL_TOPIC_INBOX,
                              "source_partition", (int)o->p, "source_offset",
                              (json_int_t)off, "key", o->workflow_id, "error",
                              o->error, "reason", o->reason, "component",
                              "orchestrator", "ts", (json_int_t)1764032400000));
                break;
        case ANSWER_SIGNALLED: {
                json_t *ev = event(o, o->run_id, 2, EPOCH);
                json_object_set_new(ev, "signal_name", json_string("approve"));
                json_object_set_new(ev, "command_id",
                                    json_string(o->command_id));
                history(rk, o, 2, "keel.history.SignalReceived", ev);
                checkpoint(rk, o, EPOCH, off);
                break;
        }
        case ANSWER_CANCEL_ASKED: {
                json_t *ev = event(o, o->run_id, 2, EPOCH);
                json_object_set_new(ev, "command_id",
                                    json_string(o->command_id));
                history(rk, o, 2, "keel.history.WorkflowCancelRequested", ev);
                checkpoint(rk, o, EPOCH, off);
                break;
        }
        case ANSWER_TERMINATED:
                history(rk, o, 2, "keel.history.WorkflowTerminated",
                        event(o, o->run_id, 2, EPOCH));
                checkpoint(rk, o, EPOCH, off);
                break;
        }
        rd_kafka_destroy(rk);
        o->answered = !o->failed;
        return NULL;
}

/* Start the orchestrator's part for workflow id, before the call it
 * answers (error, reason: of ANSWER_DEAD_LETTER). -1 on error. */
static int orch_start(orch_t *o, const char *id, answer_t answer,
                      const char *error, const char *reason)
{
        memset(o, 0, sizeof(*o));
        snprintf(o->workflow_id, sizeof(o->workflow_id), "%s", id);
        o->p = part(id);
        o->answer = answer;
        o->error = error;
        o->reason = reason;
        o->inbox_from = end_offset(KEEL_TOPIC_INBOX, o->p);
        if (o->inbox_from < 0 || pthread_create(&o->th, NULL, orchestrate, o))
                return -1;
        return 0;
}

/* Wait for the thread; 1 if it answered as told. */
static int orch_join(orch_t *o)
{
        pthread_join(o->th, NULL);
        return o->answered;
}

/* ---- tests ------------------------------------------------------------ */

static void test_client_command_id_is_uuid_v4(void)
{
        char a[KEEL_UUID_SIZE], b[KEEL_UUID_SIZE];

        CU_ASSERT_EQUAL_FATAL(keel_client_command_id(a), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(keel_client_command_id(b), KEEL_OK);
        CU_ASSERT_EQUAL(strlen(a), 36);
        CU_ASSERT_STRING_NOT_EQUAL(a, b);
        CU_ASSERT(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
        CU_ASSERT_EQUAL(a[14], '4');
        CU_ASSERT_PTR_NOT_NULL(strchr("89ab", a[19]));
        CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef-"), 36);
}

static void test_client_start_writes_command(void)
{
        keel_client_t *c = client();
        char id[128], run_id[KEEL_UUID_SIZE] = "x", err[512] = "";
        json_t *input = json_pack("{s:i, s:s}", "amount", 12, "cur", "EUR");
        json_t *sig = json_pack("[i]", 1);
        keel_start_options_t o = {0};
        const char *type = NULL;
        json_t *rec = NULL;
        int64_t from;
        int rc;

        wf_id(id, sizeof(id), "start");
        from = end_offset(KEEL_TOPIC_INBOX, part(id));
        o.command_id = "cmd-start-1";
        o.id_reuse_policy = "REJECT_DUPLICATE";
        o.id_conflict_policy = "USE_EXISTING";
        o.signal_name = "approve";
        o.signal_payload = sig;
        o.execution_timeout_ms = 86400000;
        o.run_timeout_ms = 3600000;
        rc = keel_client_start(c, id, "test-client-type", input, &o, run_id,
                               err, sizeof(err));
        if (rc)
                fprintf(stderr, "start: %s\n", err);
        CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        CU_ASSERT_STRING_EQUAL(run_id, ""); /* not waited for */

        CU_ASSERT_EQUAL_FATAL(find_records(KEEL_TOPIC_INBOX, part(id), from, id,
                                           1, 10000, &rec, &type, NULL),
                              1);
        CU_ASSERT_STRING_EQUAL(type, "keel.inbox.StartWorkflow");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec, "workflow_id")), id);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec, "command_id")),
            "cmd-start-1");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec, "workflow_type")),
            "test-client-type");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(rec, "input")),
                               "{\"amount\":12,\"cur\":\"EUR\"}");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec, "id_reuse_policy")),
            "REJECT_DUPLICATE");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec, "id_conflict_policy")),
            "USE_EXISTING");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec, "signal_name")), "approve");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec, "signal_payload")), "[1]");
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(rec, "execution_timeout_ms")),
            86400000);
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(rec, "run_timeout_ms")),
            3600000);
        {
                /* ts is the sender's clock, in milliseconds. */
                json_int_t ts = json_integer_value(json_object_get(rec, "ts"));
                CU_ASSERT(ts > (json_int_t)time(NULL) * 1000 - 60000);
                CU_ASSERT(ts < (json_int_t)time(NULL) * 1000 + 60000);
        }
        json_decref(rec);
        json_decref(input);
        json_decref(sig);
        keel_client_destroy(c);
}

static void test_client_start_defaults(void)
{
        keel_client_t *c = client();
        char id[KEEL_WORKFLOW_ID_MAX + 1], err[512] = "";
        const char *type = NULL;
        json_t *rec = NULL;
        const char *cmd_id;
        int64_t from;

        /* The longest ID there may be, no options, no input. */
        wf_id(id, sizeof(id), "defaults");
        memset(id + strlen(id), 'x', KEEL_WORKFLOW_ID_MAX - strlen(id));
        id[KEEL_WORKFLOW_ID_MAX] = '\0';
        from = end_offset(KEEL_TOPIC_INBOX, part(id));
        CU_ASSERT_EQUAL_FATAL(keel_client_start(c, id, "test-client-type", NULL,
                                                NULL, NULL, err, sizeof(err)),
                              KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(find_records(KEEL_TOPIC_INBOX, part(id), from, id,
                                           1, 10000, &rec, &type, NULL),
                              1);
        CU_ASSERT_STRING_EQUAL(type, "keel.inbox.StartWorkflow");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(rec, "input")),
                               "null");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec, "id_reuse_policy")),
            "ALLOW_DUPLICATE");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec, "id_conflict_policy")),
            "FAIL");
        CU_ASSERT(json_is_null(json_object_get(rec, "signal_name")));
        CU_ASSERT(json_is_null(json_object_get(rec, "execution_timeout_ms")));
        CU_ASSERT(json_is_null(json_object_get(rec, "run_timeout_ms")));
        cmd_id = json_string_value(json_object_get(rec, "command_id"));
        CU_ASSERT_PTR_NOT_NULL_FATAL(cmd_id);
        CU_ASSERT_EQUAL(strlen(cmd_id), 36); /* a fresh UUID */
        json_decref(rec);
        keel_client_destroy(c);
}

static void test_client_start_waits_for_run(void)
{
        keel_client_t *c = client();
        keel_start_options_t o = {.wait_ms = 10000};
        char id[128], run_id[KEEL_UUID_SIZE] = "", err[512] = "";
        orch_t orch;
        int rc;

        wf_id(id, sizeof(id), "started");
        CU_ASSERT_EQUAL_FATAL(orch_start(&orch, id, ANSWER_STARTED, NULL, NULL),
                              0);
        rc = keel_client_start(c, id, "test-client-type", NULL, &o, run_id, err,
                               sizeof(err));
        CU_ASSERT_TRUE(orch_join(&orch));
        if (rc)
                fprintf(stderr, "start: %s\n", err);
        CU_ASSERT_EQUAL(rc, KEEL_OK);
        CU_ASSERT_STRING_EQUAL(orch.command_type, "keel.inbox.StartWorkflow");
        CU_ASSERT_STRING_EQUAL(run_id, orch.run_id);
        keel_client_destroy(c);
}

static void test_client_start_refused(void)
{
        keel_client_t *c = client();
        keel_start_options_t o = {.wait_ms = 10000};
        char id[128], run_id[KEEL_UUID_SIZE] = "x", err[512] = "";
        orch_t orch;
        int rc;

        wf_id(id, sizeof(id), "refused");
        CU_ASSERT_EQUAL_FATAL(
            orch_start(&orch, id, ANSWER_DEAD_LETTER,
                       "KEEL_ERR_ALREADY_STARTED",
                       "a run of this workflow is open (run r-1)"),
            0);
        rc = keel_client_start(c, id, "test-client-type", NULL, &o, run_id, err,
                               sizeof(err));
        CU_ASSERT_TRUE(orch_join(&orch));
        CU_ASSERT_EQUAL(rc, KEEL_ERR_ALREADY_STARTED);
        CU_ASSERT_STRING_EQUAL(err, "a run of this workflow is open (run r-1)");
        CU_ASSERT_STRING_EQUAL(run_id, "");
        keel_client_destroy(c);
}

static void test_client_start_times_out(void)
{
        keel_client_t *c = client();
        keel_start_options_t o = {.wait_ms = 1500};
        char id[128], err[512] = "";
        int64_t t0, took;
        int rc;

        wf_id(id, sizeof(id), "timeout");
        t0 = mono_ms();
        rc = keel_client_start(c, id, "test-client-type", NULL, &o, NULL, err,
                               sizeof(err));
        took = mono_ms() - t0;
        CU_ASSERT_EQUAL(rc, KEEL_ERR_TIMEOUT);
        CU_ASSERT(took >= 1500);
        CU_ASSERT(took < 1500 + 2000);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "was sent"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "no outcome"));
        /* And it was indeed sent. */
        CU_ASSERT_EQUAL(find_records(KEEL_TOPIC_INBOX, part(id), 0, id, 1,
                                     10000, NULL, NULL, NULL),
                        1);
        keel_client_destroy(c);
}

static void test_client_start_needs_a_closed_batch(void)
{
        keel_client_t *c = client();
        keel_start_options_t o = {.wait_ms = 1500};
        char id[128], run_id[KEEL_UUID_SIZE] = "x", err[512] = "";
        orch_t orch;
        int rc;

        /* An event whose Checkpoint never comes is no answer. */
        wf_id(id, sizeof(id), "unclosed");
        CU_ASSERT_EQUAL_FATAL(
            orch_start(&orch, id, ANSWER_UNCLOSED, NULL, NULL), 0);
        rc = keel_client_start(c, id, "test-client-type", NULL, &o, run_id, err,
                               sizeof(err));
        CU_ASSERT_TRUE(orch_join(&orch));
        CU_ASSERT_EQUAL(rc, KEEL_ERR_TIMEOUT);
        CU_ASSERT_STRING_EQUAL(run_id, "");
        keel_client_destroy(c);
}

static void test_client_start_skips_torn_and_fenced_batches(void)
{
        keel_client_t *c = client();
        keel_start_options_t o = {.wait_ms = 10000};
        char id[128], run_id[KEEL_UUID_SIZE] = "", err[512] = "";
        orch_t orch;
        int rc;

        wf_id(id, sizeof(id), "torn");
        CU_ASSERT_EQUAL_FATAL(orch_start(&orch, id, ANSWER_TORN, NULL, NULL),
                              0);
        rc = keel_client_start(c, id, "test-client-type", NULL, &o, run_id, err,
                               sizeof(err));
        CU_ASSERT_TRUE(orch_join(&orch));
        if (rc)
                fprintf(stderr, "start: %s\n", err);
        CU_ASSERT_EQUAL(rc, KEEL_OK);
        CU_ASSERT_STRING_EQUAL(run_id, orch.run_id);
        keel_client_destroy(c);
}

static void test_client_signal_cancel_terminate_commands(void)
{
        keel_client_t *c = client();
        json_t *payload = json_pack("{s:b}", "ok", 1);
        json_t *details = json_pack("{s:s}", "by", "ops");
        char id[128], err[512] = "";
        json_t *rec[3] = {NULL, NULL, NULL};
        const char *type[3] = {NULL, NULL, NULL};
        int64_t from;

        wf_id(id, sizeof(id), "commands");
        from = end_offset(KEEL_TOPIC_INBOX, part(id));
        CU_ASSERT_EQUAL(keel_client_signal(c, id, NULL, "approve", payload, 0,
                                           err, sizeof(err)),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_client_cancel(c, id, "run-7", "customer asked", 0,
                                           err, sizeof(err)),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_client_terminate(c, id, NULL, "stuck", details, 0,
                                              err, sizeof(err)),
                        KEEL_OK);
        /* In order, one after the other, on the workflow's partition. */
        for (int i = 0; i < 3; i++) {
                int64_t off = -1;
                CU_ASSERT_EQUAL_FATAL(find_records(KEEL_TOPIC_INBOX, part(id),
                                                   from, id, 1, 10000, &rec[i],
                                                   &type[i], &off),
                                      1);
                from = off + 1;
        }
        CU_ASSERT_STRING_EQUAL(type[0], "keel.inbox.SignalWorkflow");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec[0], "signal_name")),
            "approve");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec[0], "payload")),
            "{\"ok\":true}");
        CU_ASSERT(json_is_null(json_object_get(rec[0], "run_id")));
        CU_ASSERT_STRING_EQUAL(type[1], "keel.inbox.CancelWorkflow");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec[1], "run_id")), "run-7");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec[1], "reason")),
            "customer asked");
        CU_ASSERT_STRING_EQUAL(type[2], "keel.inbox.TerminateWorkflow");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec[2], "reason")), "stuck");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(rec[2], "details")),
            "{\"by\":\"ops\"}");
        for (int i = 0; i < 3; i++) {
                const char *cid =
                    json_string_value(json_object_get(rec[i], "command_id"));
                CU_ASSERT(cid && strlen(cid) == 36);
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(rec[i], "workflow_id")),
                    id);
                json_decref(rec[i]);
        }
        json_decref(payload);
        json_decref(details);
        keel_client_destroy(c);
}

static void test_client_signal_cancel_terminate_wait(void)
{
        keel_client_t *c = client();
        char id[128], err[512] = "";
        orch_t orch;
        int rc;

        wf_id(id, sizeof(id), "waits");
        CU_ASSERT_EQUAL_FATAL(
            orch_start(&orch, id, ANSWER_SIGNALLED, NULL, NULL), 0);
        rc = keel_client_signal(c, id, NULL, "approve", NULL, 10000, err,
                                sizeof(err));
        CU_ASSERT_TRUE(orch_join(&orch));
        if (rc)
                fprintf(stderr, "signal: %s\n", err);
        CU_ASSERT_EQUAL(rc, KEEL_OK);
        CU_ASSERT_STRING_EQUAL(orch.command_type, "keel.inbox.SignalWorkflow");

        CU_ASSERT_EQUAL_FATAL(
            orch_start(&orch, id, ANSWER_CANCEL_ASKED, NULL, NULL), 0);
        rc = keel_client_cancel(c, id, NULL, "done", 10000, err, sizeof(err));
        CU_ASSERT_TRUE(orch_join(&orch));
        CU_ASSERT_EQUAL(rc, KEEL_OK);
        CU_ASSERT_STRING_EQUAL(orch.command_type, "keel.inbox.CancelWorkflow");

        CU_ASSERT_EQUAL_FATAL(
            orch_start(&orch, id, ANSWER_TERMINATED, NULL, NULL), 0);
        rc = keel_client_terminate(c, id, NULL, "stuck", NULL, 10000, err,
                                   sizeof(err));
        CU_ASSERT_TRUE(orch_join(&orch));
        CU_ASSERT_EQUAL(rc, KEEL_OK);
        CU_ASSERT_STRING_EQUAL(orch.command_type,
                               "keel.inbox.TerminateWorkflow");

        /* A signal to a workflow the orchestrator does not know. */
        CU_ASSERT_EQUAL_FATAL(orch_start(&orch, id, ANSWER_DEAD_LETTER,
                                         "KEEL_ERR_NOT_FOUND",
                                         "no open workflow with this ID"),
                              0);
        rc = keel_client_signal(c, id, NULL, "approve", NULL, 10000, err,
                                sizeof(err));
        CU_ASSERT_TRUE(orch_join(&orch));
        CU_ASSERT_EQUAL(rc, KEEL_ERR_NOT_FOUND);
        CU_ASSERT_STRING_EQUAL(err, "no open workflow with this ID");

        /* Answers to other commands are not this one's. */
        CU_ASSERT_EQUAL_FATAL(
            orch_start(&orch, id, ANSWER_SIGNALLED, NULL, NULL), 0);
        rc = keel_client_cancel(c, id, NULL, "x", 1000, err, sizeof(err));
        CU_ASSERT_TRUE(orch_join(&orch));
        CU_ASSERT_EQUAL(rc, KEEL_ERR_TIMEOUT);
        keel_client_destroy(c);
}

static void test_client_invalid_args_send_nothing(void)
{
        keel_client_t *c = client();
        char id[128], long_id[KEEL_WORKFLOW_ID_MAX + 2], err[512];
        keel_start_options_t o;
        json_t *a = json_object(), *b = json_object();
        int64_t from, from_long;

        wf_id(id, sizeof(id), "invalid");
        memset(long_id, 'y', KEEL_WORKFLOW_ID_MAX + 1);
        long_id[KEEL_WORKFLOW_ID_MAX + 1] = '\0';
        from = end_offset(KEEL_TOPIC_INBOX, part(id));
        from_long = end_offset(KEEL_TOPIC_INBOX, part(long_id));

#define INVALID(call)                                                          \
        do {                                                                   \
                err[0] = '\0';                                                 \
                CU_ASSERT_EQUAL(call, KEEL_ERR_INVALID_ARG);                   \
                CU_ASSERT(err[0] != '\0');                                     \
        } while (0)

        /* Workflow IDs. */
        INVALID(
            keel_client_start(c, "", "t", NULL, NULL, NULL, err, sizeof(err)));
        INVALID(keel_client_start(c, NULL, "t", NULL, NULL, NULL, err,
                                  sizeof(err)));
        INVALID(keel_client_start(c, long_id, "t", NULL, NULL, NULL, err,
                                  sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "1001 bytes"));
        INVALID(keel_client_start(c, "!checkpoint", "t", NULL, NULL, NULL, err,
                                  sizeof(err)));
        INVALID(keel_client_start(c, "bad\xff", "t", NULL, NULL, NULL, err,
                                  sizeof(err)));
        /* Control characters would break log lines and tables. */
        INVALID(keel_client_start(c, "line\nbreak", "t", NULL, NULL, NULL, err,
                                  sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "control character"));
        INVALID(keel_client_start(c, "tab\there", "t", NULL, NULL, NULL, err,
                                  sizeof(err)));
        INVALID(keel_client_start(c, id, "ty\x7fpe", NULL, NULL, NULL, err,
                                  sizeof(err)));
        INVALID(keel_client_signal(c, id, NULL, "sig\r", NULL, 0, err,
                                   sizeof(err)));
        INVALID(
            keel_client_signal(c, "", NULL, "s", NULL, 0, err, sizeof(err)));

        /* Everything else, with a good ID. */
        INVALID(
            keel_client_start(c, id, "", NULL, NULL, NULL, err, sizeof(err)));
        INVALID(
            keel_client_start(c, id, NULL, NULL, NULL, NULL, err, sizeof(err)));
        memset(&o, 0, sizeof(o));
        o.id_reuse_policy = "SOMETIMES";
        INVALID(
            keel_client_start(c, id, "t", NULL, &o, NULL, err, sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "SOMETIMES"));
        memset(&o, 0, sizeof(o));
        o.id_conflict_policy = "fail";
        INVALID(
            keel_client_start(c, id, "t", NULL, &o, NULL, err, sizeof(err)));
        memset(&o, 0, sizeof(o));
        o.signal_payload = a;
        INVALID(
            keel_client_start(c, id, "t", NULL, &o, NULL, err, sizeof(err)));
        memset(&o, 0, sizeof(o));
        o.run_timeout_ms = -1;
        INVALID(
            keel_client_start(c, id, "t", NULL, &o, NULL, err, sizeof(err)));
        memset(&o, 0, sizeof(o));
        o.wait_ms = -5;
        INVALID(
            keel_client_start(c, id, "t", NULL, &o, NULL, err, sizeof(err)));
        memset(&o, 0, sizeof(o));
        o.command_id = "";
        INVALID(
            keel_client_start(c, id, "t", NULL, &o, NULL, err, sizeof(err)));
        /* JSON that cannot be written: a value that contains itself. */
        json_object_set(a, "b", b);
        json_object_set(b, "a", a);
        INVALID(keel_client_start(c, id, "t", a, NULL, NULL, err, sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "input"));
        INVALID(keel_client_signal(c, id, NULL, "s", a, 0, err, sizeof(err)));
        INVALID(
            keel_client_terminate(c, id, NULL, NULL, a, 0, err, sizeof(err)));
        json_object_del(b, "a"); /* break the cycle to free them */
        INVALID(keel_client_signal(c, id, NULL, "", NULL, 0, err, sizeof(err)));
        INVALID(
            keel_client_signal(c, id, NULL, NULL, NULL, 0, err, sizeof(err)));
        INVALID(keel_client_signal(c, id, "", "s", NULL, 0, err, sizeof(err)));
        INVALID(
            keel_client_cancel(c, id, NULL, "bad\xc3", 0, err, sizeof(err)));
        INVALID(keel_client_start(NULL, id, "t", NULL, NULL, NULL, err,
                                  sizeof(err)));
#undef INVALID

        /* Nothing reached the inbox: a good command afterwards is the
         * first record with these keys. */
        CU_ASSERT_EQUAL(
            keel_client_cancel(c, id, NULL, "good", 0, err, sizeof(err)),
            KEEL_OK);
        {
                json_t *rec = NULL;
                const char *type = NULL;
                CU_ASSERT_EQUAL_FATAL(find_records(KEEL_TOPIC_INBOX, part(id),
                                                   from, id, 1, 10000, &rec,
                                                   &type, NULL),
                                      1);
                CU_ASSERT_STRING_EQUAL(type, "keel.inbox.CancelWorkflow");
                json_decref(rec);
        }
        CU_ASSERT_EQUAL(find_records(KEEL_TOPIC_INBOX, part(long_id), from_long,
                                     long_id, 1, 1000, NULL, NULL, NULL),
                        0);
        json_decref(a);
        json_decref(b);
        keel_client_destroy(c);
}

static void test_client_no_broker_is_a_transport_error(void)
{
        keel_client_t *c = client_for("127.0.0.1:1", "1500");
        char err[512] = "";
        keel_start_options_t o = {.wait_ms = 5000};
        int64_t t0 = mono_ms(), took;
        int rc = keel_client_start(c, "test-client-nobroker", "t", NULL, &o,
                                   NULL, err, sizeof(err));

        took = mono_ms() - t0;
        CU_ASSERT_EQUAL(rc, KEEL_ERR_TRANSPORT);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "127.0.0.1:1"));
        CU_ASSERT(took < 5000);
        keel_client_destroy(c);
}

/* Several threads share one client. */
typedef struct sharer_s {
        keel_client_t *c;
        int n, ok;
        int waits; /* also make one waiting start */
        char id[128];
} sharer_t;

static void *share(void *arg)
{
        sharer_t *s = arg;
        char err[512];

        for (int i = 0; i < s->n; i++) {
                char id[160];
                snprintf(id, sizeof(id), "%s-%d", s->id, i);
                if (!keel_client_start(s->c, id, "t", NULL, NULL, NULL, err,
                                       sizeof(err)))
                        s->ok++;
        }
        if (s->waits) {
                keel_start_options_t o = {.wait_ms = 10000};
                char run_id[KEEL_UUID_SIZE];
                orch_t orch;
                if (orch_start(&orch, s->id, ANSWER_STARTED, NULL, NULL))
                        return NULL;
                int rc = keel_client_start(s->c, s->id, "t", NULL, &o, run_id,
                                           err, sizeof(err));
                if (orch_join(&orch) && !rc && !strcmp(run_id, orch.run_id))
                        s->ok++;
        }
        return NULL;
}

static void test_client_is_thread_safe(void)
{
        keel_client_t *c = client();
        sharer_t s[4];
        pthread_t th[4];

        for (int i = 0; i < 4; i++) {
                memset(&s[i], 0, sizeof(s[i]));
                s[i].c = c;
                s[i].n = 25;
                s[i].waits = i < 2;
                wf_id(s[i].id, sizeof(s[i].id), "threads");
                CU_ASSERT_EQUAL_FATAL(
                    pthread_create(&th[i], NULL, share, &s[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                CU_ASSERT_EQUAL(s[i].ok, s[i].n + s[i].waits);
        }
        keel_client_destroy(c);
}

static CU_TestInfo tests[] = {
    {"command_id_is_uuid_v4", test_client_command_id_is_uuid_v4},
    {"start_writes_command", test_client_start_writes_command},
    {"start_defaults", test_client_start_defaults},
    {"start_waits_for_run", test_client_start_waits_for_run},
    {"start_refused", test_client_start_refused},
    {"start_times_out", test_client_start_times_out},
    {"start_needs_a_closed_batch", test_client_start_needs_a_closed_batch},
    {"start_skips_torn_and_fenced_batches",
     test_client_start_skips_torn_and_fenced_batches},
    {"signal_cancel_terminate_commands",
     test_client_signal_cancel_terminate_commands},
    {"signal_cancel_terminate_wait", test_client_signal_cancel_terminate_wait},
    {"invalid_args_send_nothing", test_client_invalid_args_send_nothing},
    {"no_broker_is_a_transport_error",
     test_client_no_broker_is_a_transport_error},
    {"is_thread_safe", test_client_is_thread_safe},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("client", tests)

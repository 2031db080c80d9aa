/*
 * test_worker.c: the activity worker (keel/worker.h) against the dev
 * broker (the devbroker fixture). Each test puts ActivityTask (and
 * ActivityCancel) records on keel.tasks.default, runs a worker in a thread
 * and reads what a user
 * would see: results and heartbeats in keel.inbox on the workflow's
 * partition, dead letters in keel.dlq, the group's committed offsets.
 * The broker is shared by every test of the run, so workflow IDs carry
 * the process ID and a counter, and readers start at the end offsets
 * read before each test.
 */
#include "keel/codec.h"
#include "keel/config.h"
#include "keel/error.h"
#include "keel/log.h"
#include "keel/partition.h"
#include "keel/topics.h"
#include "keel/worker.h"
#include "keel_test.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUEUE      KEEL_TASK_QUEUE_DEFAULT
#define TASK_TOPIC KEEL_TOPIC_TASKS_PREFIX KEEL_TASK_QUEUE_DEFAULT
#define WAIT_MS    20000 /* first results: includes joining the group */

static char bootstrap[256];
static int counter;

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static const char *broker(void)
{
        FILE *f;
        if (bootstrap[0])
                return bootstrap;
        f = fopen(keel_test_env("KEEL_TEST_DEVBROKER_FILE"), "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(bootstrap, sizeof(bootstrap), f));
        fclose(f);
        bootstrap[strcspn(bootstrap, "\r\n")] = '\0';
        return bootstrap;
}

/* A unique workflow ID prefix for one test. */
static void new_prefix(char *buf, size_t size)
{
        snprintf(buf, size, "wt-%ld-%d-", (long)getpid(), ++counter);
}

static void set(keel_config_t *cfg, const char *k, const char *v)
{
        char err[512] = "";
        int rc = keel_config_set(cfg, k, v, "test", err, sizeof(err));
        if (rc)
                fprintf(stderr, "config %s: %s\n", k, err);
        CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
}

/* Worker settings. A short session timeout lets the dev broker's group
 * move on sooner when the previous test's worker has left (it waits the
 * session timeout less a second); below about 4 s its first join (3 s)
 * never completes. KEEL_* variables override these (KEEL_LOG_LEVEL=debug,
 * KEEL_KAFKA_DEBUG=cgrp to look into a failure); the broker is always the
 * fixture's. */
static keel_config_t *worker_config(int concurrency, int grace_ms)
{
        keel_config_t *cfg = keel_config_new();
        char v[32];
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
        snprintf(v, sizeof(v), "%d", concurrency);
        set(cfg, "worker.concurrency", v);
        snprintf(v, sizeof(v), "%d", grace_ms);
        set(cfg, "worker.grace.ms", v);
        set(cfg, "worker.id", "test-worker");
        set(cfg, "timeout.ms", "10000");
        set(cfg, "kafka.session.timeout.ms", "4500");
        set(cfg, "kafka.heartbeat.interval.ms", "500");
        set(cfg, "kafka.fetch.wait.max.ms", "20");
        CU_ASSERT_EQUAL_FATAL(keel_config_load_env(cfg, NULL, 0), KEEL_OK);
        set(cfg, "bootstrap", broker());
        keel_log_set_level(
            keel_log_level_parse(keel_config_get(cfg, "log.level")));
        return cfg;
}

/* ---- Kafka helpers ------------------------------------------------------ */

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        if (m->_private)
                *(int64_t *)m->_private = m->err ? -2 : m->offset;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *group)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[512];
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", broker(), err,
                          sizeof(err));
        if (type == RD_KAFKA_PRODUCER) {
                rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof(err));
                rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
        } else {
                rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
                rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                                  sizeof(err));
                rd_kafka_conf_set(conf, "fetch.wait.max.ms", "20", err,
                                  sizeof(err));
        }
        rk = rd_kafka_new(type, conf, err, sizeof(err));
        if (!rk)
                fprintf(stderr, "rd_kafka_new: %s\n", err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rk);
        if (type == RD_KAFKA_CONSUMER)
                rd_kafka_poll_set_consumer(rk);
        return rk;
}

static int32_t partition_count(rd_kafka_t *rk, const char *topic)
{
        const struct rd_kafka_metadata *md = NULL;
        int32_t n = -1;
        CU_ASSERT_EQUAL_FATAL(rd_kafka_metadata(rk, 1, NULL, &md, 10000),
                              RD_KAFKA_RESP_ERR_NO_ERROR);
        for (int i = 0; i < md->topic_cnt; i++)
                if (!strcmp(md->topics[i].topic, topic))
                        n = md->topics[i].partition_cnt;
        rd_kafka_metadata_destroy(md);
        CU_ASSERT_FATAL(n > 0);
        return n;
}

/* A consumer of every partition of topic, from its end offsets now. */
static rd_kafka_t *reader_new(const char *topic)
{
        char group[64];
        rd_kafka_t *rk;
        rd_kafka_topic_partition_list_t *list;
        int32_t n;

        snprintf(group, sizeof(group), "keel-test-reader-%ld", (long)getpid());
        rk = client(RD_KAFKA_CONSUMER, group);
        n = partition_count(rk, topic);
        list = rd_kafka_topic_partition_list_new(n);
        for (int32_t p = 0; p < n; p++) {
                int64_t lo, hi, end = mono_ms() + 10000;
                rd_kafka_resp_err_t err;
                /* A new topic's leaders may take a moment to be known. */
                while ((err = rd_kafka_query_watermark_offsets(
                            rk, topic, p, &lo, &hi, 5000)) &&
                       mono_ms() < end)
                        sleep_ms(100);
                if (err)
                        fprintf(stderr, "%s [%d]: %s\n", topic, (int)p,
                                rd_kafka_err2str(err));
                CU_ASSERT_EQUAL_FATAL(err, RD_KAFKA_RESP_ERR_NO_ERROR);
                rd_kafka_topic_partition_list_add(list, topic, p)->offset = hi;
        }
        CU_ASSERT_EQUAL_FATAL(rd_kafka_assign(rk, list),
                              RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_topic_partition_list_destroy(list);
        return rk;
}

static void reader_destroy(rd_kafka_t *rk)
{
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

/* A record read back. */
typedef struct got_s {
        const char *type;
        json_t *rec;
        int32_t partition;
        char key[512];
} got_t;

typedef int (*match_fn)(const char *type, const json_t *rec, void *arg);

/* Records of workflows whose ID starts with arg. */
static int match_prefix(const char *type, const json_t *rec, void *arg)
{
        const char *wf = json_string_value(json_object_get(rec, "workflow_id"));
        (void)type;
        return wf && !strncmp(wf, arg, strlen(arg));
}

/* Read until `want` matching records arrived or timeout_ms passed;
 * returns how many (at most max) were stored in out. */
static int collect(rd_kafka_t *rk, match_fn match, void *arg, got_t *out,
                   int max, int want, int timeout_ms)
{
        int64_t end = mono_ms() + timeout_ms;
        int n = 0;

        while (n < want && mono_ms() < end) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
                const char *type;
                json_t *rec;
                if (!m)
                        continue;
                if (!m->err && m->payload &&
                    !keel_codec_decode(m->payload, m->len, &type, &rec, NULL,
                                       0)) {
                        if (match(type, rec, arg) && n < max) {
                                out[n].type = type;
                                out[n].rec = rec;
                                out[n].partition = m->partition;
                                snprintf(out[n].key, sizeof(out[n].key), "%.*s",
                                         (int)m->key_len,
                                         m->key ? (const char *)m->key : "");
                                n++;
                        } else {
                                json_decref(rec);
                        }
                }
                rd_kafka_message_destroy(m);
        }
        return n;
}

static void got_free(got_t *g, int n)
{
        for (int i = 0; i < n; i++)
                json_decref(g[i].rec);
}

static const got_t *find_got(const got_t *g, int n, const char *type,
                             const char *wf, const char *activity_id)
{
        for (int i = 0; i < n; i++) {
                const json_t *r = g[i].rec;
                if (!strcmp(g[i].type, type) &&
                    !strcmp(
                        json_string_value(json_object_get(r, "workflow_id")),
                        wf) &&
                    (!activity_id || !strcmp(json_string_value(json_object_get(
                                                 r, "activity_id")),
                                             activity_id)))
                        return &g[i];
        }
        return NULL;
}

/* Put an ActivityTask on keel.tasks.default where the orchestrator would
 * (the workflow's partition); returns its offset. */
static int64_t put_task(rd_kafka_t *prod, const char *wf, const char *act,
                        const char *type, const char *input,
                        const char *hb_details)
{
        int32_t parts = partition_count(prod, TASK_TOPIC);
        char key[512], idem[512];
        json_t *rec;
        unsigned char *buf;
        size_t len;
        int64_t offset = -1;
        int64_t now = (int64_t)time(NULL) * 1000;

        snprintf(key, sizeof(key), "%s/%s", wf, act);
        snprintf(idem, sizeof(idem), "%s/%s", wf, act);
        rec = json_pack("{ss ss ss ss ss ss si ss sI so sI sI}", "workflow_id",
                        wf, "run_id", "run-1", "activity_id", act,
                        "activity_type", type, "task_queue", QUEUE, "input",
                        input, "attempt", 1, "idempotency_key", idem,
                        "scheduled_at", (json_int_t)now, "heartbeat_details",
                        hb_details ? json_string(hb_details) : json_null(),
                        "epoch", (json_int_t)1, "ts", (json_int_t)now);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.tasks.ActivityTask", rec,
                                                &buf, &len, NULL, 0),
                              KEEL_OK);
        json_decref(rec);
        CU_ASSERT_EQUAL_FATAL(
            rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(TASK_TOPIC),
                RD_KAFKA_V_PARTITION(keel_partition_of(wf, strlen(wf), parts)),
                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                RD_KAFKA_V_OPAQUE(&offset), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_flush(prod, 10000);
        CU_ASSERT_FATAL(offset >= 0);
        return offset;
}

/* Put an ActivityCancel for attempt 1 of task act of wf (run "run-1")
 * where the orchestrator would: keyed and placed like the task. */
static void put_cancel(rd_kafka_t *prod, const char *wf, const char *act,
                       const char *reason)
{
        int32_t parts = partition_count(prod, TASK_TOPIC);
        char key[512];
        json_t *rec;
        unsigned char *buf;
        size_t len;
        int64_t offset = -1;
        int64_t now = (int64_t)time(NULL) * 1000;

        snprintf(key, sizeof(key), "%s/%s", wf, act);
        rec = json_pack("{ss ss ss si ss sI sI}", "workflow_id", wf, "run_id",
                        "run-1", "activity_id", act, "attempt", 1, "reason",
                        reason, "epoch", (json_int_t)1, "ts", (json_int_t)now);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.tasks.ActivityCancel",
                                                rec, &buf, &len, NULL, 0),
                              KEEL_OK);
        json_decref(rec);
        CU_ASSERT_EQUAL_FATAL(
            rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(TASK_TOPIC),
                RD_KAFKA_V_PARTITION(keel_partition_of(wf, strlen(wf), parts)),
                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                RD_KAFKA_V_OPAQUE(&offset), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_flush(prod, 10000);
        CU_ASSERT_FATAL(offset >= 0);
}

/* Put raw bytes on keel.tasks.default; returns the offset. */
static int64_t put_raw(rd_kafka_t *prod, int32_t partition, const void *key,
                       size_t key_len, const void *value, size_t len)
{
        int64_t offset = -1;
        CU_ASSERT_EQUAL_FATAL(
            rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(TASK_TOPIC),
                              RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_KEY(key, key_len),
                              RD_KAFKA_V_VALUE((void *)value, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_OPAQUE(&offset), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_flush(prod, 10000);
        CU_ASSERT_FATAL(offset >= 0);
        return offset;
}

/* ---- a worker in a thread ----------------------------------------------- */

typedef struct running_s {
        keel_worker_t *w;
        pthread_t th;
        int rc;
} running_t;

static void *run_main(void *arg)
{
        running_t *r = arg;
        r->rc = keel_worker_run(r->w);
        return NULL;
}

static void start(running_t *r, keel_worker_t *w)
{
        r->w = w;
        r->rc = -1000;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&r->th, NULL, run_main, r), 0);
}

/* Stop and wait for run to return; its return value. */
static int stop(running_t *r)
{
        keel_worker_stop(r->w);
        pthread_join(r->th, NULL);
        return r->rc;
}

static keel_worker_t *worker(keel_config_t *cfg)
{
        char err[512] = "";
        keel_worker_t *w = keel_worker_new(cfg, QUEUE, err, sizeof(err));
        if (!w)
                fprintf(stderr, "keel_worker_new: %s\n", err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        return w;
}

/* ---- handlers ----------------------------------------------------------- */

static int h_echo(keel_activity_ctx_t *ctx, const json_t *input,
                  json_t **result)
{
        *result = json_pack("{sO ss}", "echo", (json_t *)input, "key",
                            keel_activity_idempotency_key(ctx));
        return KEEL_OK;
}

static int h_decline(keel_activity_ctx_t *ctx, const json_t *input,
                     json_t **result)
{
        (void)input;
        (void)result;
        return keel_activity_fail(ctx, "CardDeclined", "the card was declined",
                                  json_pack("{si}", "code", 51), 1);
}

static int h_busy(keel_activity_ctx_t *ctx, const json_t *input,
                  json_t **result)
{
        (void)input;
        (void)result;
        return keel_activity_fail(ctx, "Busy", "try later", NULL, 0);
}

static int h_sleep(keel_activity_ctx_t *ctx, const json_t *input,
                   json_t **result)
{
        (void)ctx;
        sleep_ms((int)json_integer_value(json_object_get(input, "ms")));
        *result = json_string("slept");
        return KEEL_OK;
}

/* How many "meet" tasks run at this moment, and the most at once. */
static atomic_int meet_now, meet_max;

/* Joins the other meet tasks: waits (up to 5 s) until `want` of them run
 * at the same time. Run one after another, each sees only itself. */
static int h_meet(keel_activity_ctx_t *ctx, const json_t *input,
                  json_t **result)
{
        int want = (int)json_integer_value(json_object_get(input, "want"));
        int n = atomic_fetch_add(&meet_now, 1) + 1;
        int m = atomic_load(&meet_max);
        (void)ctx;
        while (n > m && !atomic_compare_exchange_weak(&meet_max, &m, n))
                ;
        for (int i = 0; i < 500 && atomic_load(&meet_max) < want; i++)
                sleep_ms(10);
        atomic_fetch_sub(&meet_now, 1);
        *result = json_integer(atomic_load(&meet_max));
        return KEEL_OK;
}

static int h_progress(keel_activity_ctx_t *ctx, const json_t *input,
                      json_t **result)
{
        const json_t *prev = keel_activity_heartbeat_details(ctx);
        int step = (int)json_integer_value(json_object_get(prev, "step"));
        (void)input;
        for (int i = 1; i <= 2; i++)
                CU_ASSERT_EQUAL(keel_activity_heartbeat(
                                    ctx, json_pack("{si}", "step", step + i)),
                                KEEL_OK);
        *result = json_pack("{si}", "resumed_from", step);
        return KEEL_OK;
}

/* Heartbeats every 50 ms until cancelled, as a long activity should; gives
 * up waiting after 10 s and completes. */
static int h_until_cancelled(keel_activity_ctx_t *ctx, const json_t *input,
                             json_t **result)
{
        int64_t end = mono_ms() + 10000;
        int beats = 0;
        (void)input;
        while (mono_ms() < end) {
                int rc = keel_activity_heartbeat(
                    ctx, json_pack("{si}", "beats", ++beats));
                if (rc == KEEL_ERR_CANCELLED)
                        return keel_activity_fail(
                            ctx, "Cancelled", "stopped at a heartbeat",
                            json_pack("{si}", "beats", beats), 1);
                sleep_ms(50);
        }
        *result = json_string("never cancelled");
        return KEEL_OK;
}

/* The JSON text in field `field` of rec, parsed. */
static json_t *field_json(const json_t *rec, const char *field)
{
        return json_loads(json_string_value(json_object_get(rec, field)),
                          JSON_DECODE_ANY, NULL);
}

/* ---- tests -------------------------------------------------------------- */

/* A check that, when it fails, skips to the test's clean-up (label out),
 * which stops the worker: never leave one running into the next test. */
#define REQUIRE(cond)                                                          \
        do {                                                                   \
                int ok_ = (cond);                                              \
                CU_assertImplementation(ok_, __LINE__, #cond, __FILE__, "",    \
                                        CU_FALSE);                             \
                if (!ok_)                                                      \
                        goto out;                                              \
        } while (0)

static void test_worker_runs_tasks_and_sends_results(void)
{
        keel_config_t *cfg = worker_config(2, 5000);
        keel_worker_t *w = worker(cfg);
        rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_t *inbox = reader_new(KEEL_TOPIC_INBOX);
        int32_t parts = partition_count(prod, KEEL_TOPIC_INBOX);
        char prefix[64], wf[8][96], input[64];
        got_t got[16];
        keel_worker_stats_t st;
        running_t r;
        int n;

        new_prefix(prefix, sizeof(prefix));
        CU_ASSERT_EQUAL(keel_worker_register(w, "echo", h_echo, NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_worker_register(w, "echo", h_echo, NULL),
                        KEEL_ERR_INVALID_ARG);
        /* More tasks than threads: fetching pauses and resumes. */
        for (int i = 0; i < 8; i++) {
                snprintf(wf[i], sizeof(wf[i]), "%swf%d", prefix, i);
                snprintf(input, sizeof(input), "{\"n\": %d}", i);
                put_task(prod, wf[i], "a1", "echo", input, NULL);
        }
        start(&r, w);
        n = collect(inbox, match_prefix, prefix, got, 16, 8, WAIT_MS);
        CU_ASSERT_EQUAL(n, 8);
        for (int i = 0; i < 8; i++) {
                const got_t *g = find_got(
                    got, n, "keel.inbox.ActivityCompleted", wf[i], "a1");
                json_t *res, *want;
                char cid[128], idem[128];
                if (!g) {
                        CU_FAIL("a task has no ActivityCompleted");
                        continue;
                }
                CU_ASSERT_EQUAL(g->partition,
                                keel_partition_of(wf[i], strlen(wf[i]), parts));
                CU_ASSERT_STRING_EQUAL(g->key, wf[i]);
                snprintf(cid, sizeof(cid), "%s/a1/1", wf[i]);
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(g->rec, "command_id")),
                    cid);
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(g->rec, "worker_id")),
                    "test-worker");
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(g->rec, "run_id")),
                    "run-1");
                CU_ASSERT_EQUAL(
                    json_integer_value(json_object_get(g->rec, "attempt")), 1);
                res = field_json(g->rec, "result");
                snprintf(idem, sizeof(idem), "%s/a1", wf[i]);
                want = json_pack("{s{si} ss}", "echo", "n", i, "key", idem);
                CU_ASSERT(json_equal(res, want));
                json_decref(res);
                json_decref(want);
        }
        /* Exactly one result per task. */
        CU_ASSERT_EQUAL(
            collect(inbox, match_prefix, prefix, got + n, 16 - n, 1, 700), 0);
        CU_ASSERT_EQUAL(stop(&r), KEEL_OK);
        keel_worker_stats(w, &st);
        CU_ASSERT(st.tasks_started >= 8);
        CU_ASSERT(st.tasks_completed >= 8);
        got_free(got, n);
        keel_worker_destroy(w);
        keel_config_destroy(cfg);
        reader_destroy(inbox);
        rd_kafka_destroy(prod);
}

static void test_worker_reports_failures(void)
{
        keel_config_t *cfg = worker_config(4, 5000);
        keel_worker_t *w = worker(cfg);
        rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_t *inbox = reader_new(KEEL_TOPIC_INBOX);
        char prefix[64], wf[96];
        got_t got[8];
        const got_t *g;
        json_t *f, *details;
        running_t r;
        int n;

        new_prefix(prefix, sizeof(prefix));
        snprintf(wf, sizeof(wf), "%sorder", prefix);
        CU_ASSERT_EQUAL(keel_worker_register(w, "chargeCard", h_decline, NULL),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_worker_register(w, "reserve", h_busy, NULL),
                        KEEL_OK);
        put_task(prod, wf, "charge", "chargeCard", "{}", NULL);
        put_task(prod, wf, "reserve", "reserve", "{}", NULL);
        put_task(prod, wf, "ship", "shipParcel", "{}", NULL); /* no handler */
        start(&r, w);
        n = collect(inbox, match_prefix, prefix, got, 8, 3, WAIT_MS);
        REQUIRE(n == 3);

        g = find_got(got, n, "keel.inbox.ActivityFailed", wf, "charge");
        REQUIRE(g != NULL);
        f = json_object_get(g->rec, "failure");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "type")),
                               "CardDeclined");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "message")),
                               "the card was declined");
        CU_ASSERT(json_is_true(json_object_get(f, "non_retryable")));
        details = field_json(f, "details");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(details, "code")),
                        51);
        json_decref(details);

        g = find_got(got, n, "keel.inbox.ActivityFailed", wf, "reserve");
        REQUIRE(g != NULL);
        f = json_object_get(g->rec, "failure");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "type")),
                               "Busy");
        CU_ASSERT(json_is_false(json_object_get(f, "non_retryable")));

        g = find_got(got, n, "keel.inbox.ActivityFailed", wf, "ship");
        REQUIRE(g != NULL);
        f = json_object_get(g->rec, "failure");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "type")),
                               "ActivityNotRegistered");
        CU_ASSERT(json_is_true(json_object_get(f, "non_retryable")));
out:
        CU_ASSERT_EQUAL(stop(&r), KEEL_OK);
        got_free(got, n);
        keel_worker_destroy(w);
        keel_config_destroy(cfg);
        reader_destroy(inbox);
        rd_kafka_destroy(prod);
}

static void test_worker_runs_tasks_concurrently(void)
{
        keel_config_t *cfg = worker_config(4, 5000);
        keel_worker_t *w = worker(cfg);
        rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_t *inbox = reader_new(KEEL_TOPIC_INBOX);
        char prefix[64], wf[96], warm[96];
        got_t got[8];
        running_t r;
        int n;

        new_prefix(prefix, sizeof(prefix));
        snprintf(wf, sizeof(wf), "%sslow", prefix);
        snprintf(warm, sizeof(warm), "%swarmup", prefix);
        CU_ASSERT_EQUAL(keel_worker_register(w, "echo", h_echo, NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_worker_register(w, "meet", h_meet, NULL), KEEL_OK);
        /* Once this comes back the worker owns its partitions. */
        put_task(prod, warm, "w", "echo", "{}", NULL);
        start(&r, w);
        n = collect(inbox, match_prefix, prefix, got, 8, 1, WAIT_MS);
        got_free(got, n);
        REQUIRE(n == 1);

        /* Four tasks of one workflow (one partition) that each wait for
         * the others: with 4 handlers all four run at once. */
        atomic_store(&meet_now, 0);
        atomic_store(&meet_max, 0);
        for (int i = 0; i < 4; i++) {
                char act[16];
                snprintf(act, sizeof(act), "s%d", i);
                put_task(prod, wf, act, "meet", "{\"want\": 4}", NULL);
        }
        n = collect(inbox, match_prefix, prefix, got, 8, 4, 30000);
        CU_ASSERT_EQUAL(n, 4);
        for (int i = 0; i < n; i++)
                CU_ASSERT_STRING_EQUAL(got[i].type,
                                       "keel.inbox.ActivityCompleted");
        fprintf(stderr, "at most %d tasks ran at once\n",
                atomic_load(&meet_max));
        CU_ASSERT_EQUAL(atomic_load(&meet_max), 4);
        got_free(got, n);
out:
        CU_ASSERT_EQUAL(stop(&r), KEEL_OK);
        keel_worker_destroy(w);
        keel_config_destroy(cfg);
        reader_destroy(inbox);
        rd_kafka_destroy(prod);
}

static void test_worker_sends_heartbeats(void)
{
        keel_config_t *cfg = worker_config(2, 5000);
        keel_worker_t *w = worker(cfg);
        rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_t *inbox = reader_new(KEEL_TOPIC_INBOX);
        int32_t parts = partition_count(prod, KEEL_TOPIC_INBOX);
        char prefix[64], wf[96], cid[160];
        got_t got[8];
        json_t *d, *res;
        keel_worker_stats_t st;
        running_t r;
        int n;

        new_prefix(prefix, sizeof(prefix));
        snprintf(wf, sizeof(wf), "%supload", prefix);
        CU_ASSERT_EQUAL(keel_worker_register(w, "upload", h_progress, NULL),
                        KEEL_OK);
        /* An earlier attempt got to step 2. */
        put_task(prod, wf, "up", "upload", "{}", "{\"step\": 2}");
        start(&r, w);
        n = collect(inbox, match_prefix, prefix, got, 8, 3, WAIT_MS);
        REQUIRE(n == 3);
        /* In order, on the workflow's partition. */
        for (int i = 0; i < 2; i++) {
                CU_ASSERT_STRING_EQUAL(got[i].type,
                                       "keel.inbox.ActivityHeartbeat");
                CU_ASSERT_EQUAL(got[i].partition,
                                keel_partition_of(wf, strlen(wf), parts));
                CU_ASSERT_STRING_EQUAL(got[i].key, wf);
                snprintf(cid, sizeof(cid), "%s/up/1/hb/%d", wf, i + 1);
                CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                           got[i].rec, "command_id")),
                                       cid);
                CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                                           got[i].rec, "activity_id")),
                                       "up");
                d = field_json(got[i].rec, "details");
                CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, "step")),
                                3 + i);
                json_decref(d);
        }
        CU_ASSERT_STRING_EQUAL(got[2].type, "keel.inbox.ActivityCompleted");
        res = field_json(got[2].rec, "result");
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(res, "resumed_from")), 2);
        json_decref(res);
        keel_worker_stats(w, &st);
        CU_ASSERT_EQUAL(st.heartbeats, 2);
out:
        CU_ASSERT_EQUAL(stop(&r), KEEL_OK);
        got_free(got, n);
        keel_worker_destroy(w);
        keel_config_destroy(cfg);
        reader_destroy(inbox);
        rd_kafka_destroy(prod);
}

typedef struct dlq_match_s {
        int32_t partition;
        int64_t offsets[2];
} dlq_match_t;

static int match_dead_letter(const char *type, const json_t *rec, void *arg)
{
        const dlq_match_t *dm = arg;
        int64_t off = json_integer_value(json_object_get(rec, "source_offset"));
        return !strcmp(type, "keel.dlq.DeadLetter") &&
               !strcmp(json_string_value(json_object_get(rec, "source_topic")),
                       TASK_TOPIC) &&
               json_integer_value(json_object_get(rec, "source_partition")) ==
                   dm->partition &&
               (off == dm->offsets[0] || off == dm->offsets[1]);
}

/* Avro's JSON mapping of bytes back to bytes (code points 0-255). */
static size_t latin1(const json_t *str, unsigned char *out, size_t max)
{
        const unsigned char *p = (const unsigned char *)json_string_value(str);
        size_t len = json_string_length(str), n = 0;
        for (size_t i = 0; p && i < len && n < max; i++) {
                if (p[i] < 0x80) {
                        out[n++] = p[i];
                } else if (i + 1 < len) {
                        out[n++] = (unsigned char)(((p[i] & 0x03) << 6) |
                                                   (p[i + 1] & 0x3f));
                        i++;
                }
        }
        return n;
}

static void test_worker_sends_bad_records_to_dlq(void)
{
        keel_config_t *cfg = worker_config(2, 5000);
        keel_worker_t *w = worker(cfg);
        rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_t *inbox = reader_new(KEEL_TOPIC_INBOX);
        rd_kafka_t *dlq = reader_new(KEEL_TOPIC_DLQ);
        int32_t parts = partition_count(prod, TASK_TOPIC);
        static const unsigned char junk[] = {'n', 'o', 't',  ' ',  'a', 'v',
                                             'r', 'o', 0x00, 0xff, 0xc3};
        static const char junk_key[] = "junk-key";
        char prefix[64], wf[96], reason[256];
        unsigned char back[64];
        unsigned char *hb;
        size_t hb_len;
        json_t *hbrec;
        got_t got[8], dead[4];
        const got_t *g;
        dlq_match_t dm;
        keel_worker_stats_t st;
        running_t r;
        int n, nd;

        new_prefix(prefix, sizeof(prefix));
        snprintf(wf, sizeof(wf), "%safter-junk", prefix);
        CU_ASSERT_EQUAL(keel_worker_register(w, "echo", h_echo, NULL), KEEL_OK);
        dm.partition = keel_partition_of(wf, strlen(wf), parts);
        /* Garbage, then a valid record of the wrong type, then a task. */
        dm.offsets[0] = put_raw(prod, dm.partition, junk_key, strlen(junk_key),
                                junk, sizeof(junk));
        hbrec = json_pack("{ss ss sI ss ss si}", "workflow_id", wf,
                          "command_id", "x", "ts", (json_int_t)1, "run_id", "r",
                          "activity_id", "a", "attempt", 1);
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.inbox.ActivityHeartbeat",
                                                hbrec, &hb, &hb_len, NULL, 0),
                              KEEL_OK);
        json_decref(hbrec);
        dm.offsets[1] = put_raw(prod, dm.partition, NULL, 0, hb, hb_len);
        free(hb);
        put_task(prod, wf, "e", "echo", "{}", NULL);

        start(&r, w);
        nd = collect(dlq, match_dead_letter, &dm, dead, 4, 2, WAIT_MS);
        REQUIRE(nd == 2);
        for (int i = 0; i < nd; i++) {
                const json_t *d = dead[i].rec;
                int64_t off =
                    json_integer_value(json_object_get(d, "source_offset"));
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(d, "component")),
                    "worker");
                snprintf(reason, sizeof(reason), "%s",
                         json_string_value(json_object_get(d, "reason")));
                CU_ASSERT(strlen(reason) > 0);
                if (off == dm.offsets[0]) {
                        CU_ASSERT_STRING_EQUAL(
                            json_string_value(json_object_get(d, "error")),
                            "KEEL_ERR_CORRUPT");
                        /* The original record, byte for byte. */
                        CU_ASSERT_EQUAL(latin1(json_object_get(d, "value"),
                                               back, sizeof(back)),
                                        sizeof(junk));
                        CU_ASSERT_EQUAL(memcmp(back, junk, sizeof(junk)), 0);
                        CU_ASSERT_STRING_EQUAL(
                            json_string_value(json_object_get(d, "key")),
                            junk_key);
                        CU_ASSERT_STRING_EQUAL(dead[i].key, junk_key);
                } else {
                        CU_ASSERT_STRING_EQUAL(
                            json_string_value(json_object_get(d, "error")),
                            "KEEL_ERR_SCHEMA");
                        CU_ASSERT_PTR_NOT_NULL(
                            strstr(reason, "keel.inbox.ActivityHeartbeat"));
                        CU_ASSERT(json_is_null(json_object_get(d, "key")));
                }
        }
        /* The worker went on with the next task. */
        n = collect(inbox, match_prefix, prefix, got, 8, 1, WAIT_MS);
        CU_ASSERT_EQUAL(n, 1);
        g = find_got(got, n, "keel.inbox.ActivityCompleted", wf, "e");
        CU_ASSERT_PTR_NOT_NULL(g);
        got_free(got, n);
        keel_worker_stats(w, &st);
        CU_ASSERT(st.tasks_undecodable >= 2);
out:
        CU_ASSERT_EQUAL(stop(&r), KEEL_OK);
        got_free(dead, nd);
        keel_worker_destroy(w);
        keel_config_destroy(cfg);
        reader_destroy(inbox);
        reader_destroy(dlq);
        rd_kafka_destroy(prod);
}

/* Last: it leaves a task uncommitted in the group, as a crash would. */
static void test_worker_commits_below_unfinished_task(void)
{
        keel_config_t *cfg = worker_config(2, 100);
        keel_worker_t *w = worker(cfg);
        rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_t *inbox = reader_new(KEEL_TOPIC_INBOX);
        rd_kafka_t *group;
        int32_t parts = partition_count(prod, TASK_TOPIC);
        rd_kafka_topic_partition_list_t *list;
        char prefix[64], wf[96];
        int64_t off_a, off_b, off_c, t0, stop_ms;
        int32_t p;
        got_t got[8];
        running_t r;
        int n;

        new_prefix(prefix, sizeof(prefix));
        snprintf(wf, sizeof(wf), "%scommit", prefix);
        p = keel_partition_of(wf, strlen(wf), parts);
        CU_ASSERT_EQUAL(keel_worker_register(w, "echo", h_echo, NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_worker_register(w, "sleep", h_sleep, NULL),
                        KEEL_OK);
        off_a = put_task(prod, wf, "a", "echo", "{}", NULL);
        off_b = put_task(prod, wf, "b", "sleep", "{\"ms\": 2000}", NULL);
        off_c = put_task(prod, wf, "c", "echo", "{}", NULL);
        CU_ASSERT(off_a < off_b && off_b < off_c);
        start(&r, w);
        /* a and c finish while b still sleeps. */
        n = collect(inbox, match_prefix, prefix, got, 8, 2, WAIT_MS);
        CU_ASSERT_EQUAL(n, 2);
        CU_ASSERT_PTR_NOT_NULL(
            find_got(got, n, "keel.inbox.ActivityCompleted", wf, "a"));
        CU_ASSERT_PTR_NOT_NULL(
            find_got(got, n, "keel.inbox.ActivityCompleted", wf, "c"));
        got_free(got, n);

        /* Stop whatever happened above, then check what it left. */
        t0 = mono_ms();
        CU_ASSERT_EQUAL(stop(&r), KEEL_OK);
        stop_ms = mono_ms() - t0;
        fprintf(stderr, "stop with a task past the grace period: %lld ms\n",
                (long long)stop_ms);
        CU_ASSERT(stop_ms < 1500); /* grace 100 ms, not the 2 s task */

        /* The group resumes at b: a is committed, b and c run again. */
        group = client(RD_KAFKA_CONSUMER, "keel-worker-" QUEUE);
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, TASK_TOPIC, p);
        CU_ASSERT_EQUAL(rd_kafka_committed(group, list, 10000),
                        RD_KAFKA_RESP_ERR_NO_ERROR);
        fprintf(stderr, "committed %lld; a=%lld b=%lld c=%lld\n",
                (long long)list->elems[0].offset, (long long)off_a,
                (long long)off_b, (long long)off_c);
        CU_ASSERT_EQUAL(list->elems[0].offset, off_b);
        rd_kafka_topic_partition_list_destroy(list);
        rd_kafka_destroy(group);

        /* b's handler ends during destroy; its late result is dropped. */
        keel_worker_destroy(w);
        n = collect(inbox, match_prefix, prefix, got, 8, 1, 500);
        CU_ASSERT_EQUAL(n, 0);
        got_free(got, n);
        keel_config_destroy(cfg);
        reader_destroy(inbox);
        rd_kafka_destroy(prod);
}

/* Results (not heartbeats) of workflows whose ID starts with arg. */
static int match_result(const char *type, const json_t *rec, void *arg)
{
        return match_prefix(type, rec, arg) &&
               (!strcmp(type, "keel.inbox.ActivityCompleted") ||
                !strcmp(type, "keel.inbox.ActivityFailed"));
}

/* Heartbeats of workflows whose ID starts with arg. */
static int match_heartbeat(const char *type, const json_t *rec, void *arg)
{
        return match_prefix(type, rec, arg) &&
               !strcmp(type, "keel.inbox.ActivityHeartbeat");
}

/* Wait until every activity in acts (NULL-terminated) of wf has sent a
 * heartbeat: its handler runs. */
static int wait_running(rd_kafka_t *inbox, const char *wf,
                        const char *const *acts)
{
        got_t got[64];
        int n = 0, missing = 1;
        int64_t end = mono_ms() + WAIT_MS;

        while (missing && mono_ms() < end && n < 64) {
                n += collect(inbox, match_heartbeat, (void *)wf, got + n,
                             64 - n, 1, 200);
                missing = 0;
                for (const char *const *a = acts; *a; a++)
                        if (!find_got(got, n, "keel.inbox.ActivityHeartbeat",
                                      wf, *a))
                                missing = 1;
        }
        got_free(got, n);
        return !missing;
}

static void test_worker_cancel_stops_running_task(void)
{
        keel_config_t *cfg = worker_config(2, 5000);
        keel_worker_t *w = worker(cfg);
        rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_t *inbox = reader_new(KEEL_TOPIC_INBOX);
        static const char *const acts[] = {"long", NULL};
        char prefix[64], wf[96];
        got_t got[8];
        const got_t *g;
        const json_t *f;
        json_t *details;
        keel_worker_stats_t st;
        int64_t t0;
        running_t r;
        int n = 0;

        new_prefix(prefix, sizeof(prefix));
        snprintf(wf, sizeof(wf), "%sjob", prefix);
        CU_ASSERT_EQUAL(
            keel_worker_register(w, "watch", h_until_cancelled, NULL), KEEL_OK);
        put_task(prod, wf, "long", "watch", "{}", NULL);
        start(&r, w);
        REQUIRE(wait_running(inbox, wf, acts));

        /* A cancel for a task the worker never had changes nothing. */
        put_cancel(prod, wf, "ghost", "nobody runs this");
        t0 = mono_ms();
        put_cancel(prod, wf, "long", "customer left");
        n = collect(inbox, match_result, prefix, got, 8, 1, 5000);
        fprintf(stderr, "cancel to result: %lld ms\n",
                (long long)(mono_ms() - t0));
        REQUIRE(n == 1);
        g = find_got(got, n, "keel.inbox.ActivityFailed", wf, "long");
        REQUIRE(g != NULL);
        f = json_object_get(g->rec, "failure");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "type")),
                               "Cancelled");
        CU_ASSERT(json_is_true(json_object_get(f, "non_retryable")));
        details = field_json(f, "details");
        CU_ASSERT(json_integer_value(json_object_get(details, "beats")) >= 2);
        json_decref(details);
        /* Exactly one result. */
        CU_ASSERT_EQUAL(
            collect(inbox, match_result, prefix, got + n, 8 - n, 1, 500), 0);
        keel_worker_stats(w, &st);
        CU_ASSERT_EQUAL(st.cancels, 1);
        CU_ASSERT_EQUAL(st.cancels_unmatched, 1);
        CU_ASSERT_EQUAL(st.tasks_started, 1);
        CU_ASSERT_EQUAL(st.tasks_failed, 1);
        CU_ASSERT_EQUAL(st.tasks_completed, 0);
        CU_ASSERT_EQUAL(st.tasks_undecodable, 0);
out:
        CU_ASSERT_EQUAL(stop(&r), KEEL_OK);
        got_free(got, n);
        keel_worker_destroy(w);
        keel_config_destroy(cfg);
        reader_destroy(inbox);
        rd_kafka_destroy(prod);
}

static void test_worker_cancel_skips_queued_task(void)
{
        keel_config_t *cfg = worker_config(2, 5000);
        keel_worker_t *w = worker(cfg);
        rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, NULL);
        rd_kafka_t *inbox = reader_new(KEEL_TOPIC_INBOX);
        static const char *const acts[] = {"long1", "long2", NULL};
        char prefix[64], wf[96];
        got_t got[8];
        const got_t *g;
        const json_t *f;
        keel_worker_stats_t st;
        running_t r;
        int n = 0;

        new_prefix(prefix, sizeof(prefix));
        snprintf(wf, sizeof(wf), "%sjob", prefix);
        CU_ASSERT_EQUAL(
            keel_worker_register(w, "watch", h_until_cancelled, NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_worker_register(w, "echo", h_echo, NULL), KEEL_OK);
        /* Two handler threads, both busy: the third task waits. */
        put_task(prod, wf, "long1", "watch", "{}", NULL);
        put_task(prod, wf, "long2", "watch", "{}", NULL);
        put_task(prod, wf, "queued", "echo", "{}", NULL);
        start(&r, w);
        REQUIRE(wait_running(inbox, wf, acts));

        put_cancel(prod, wf, "queued", "customer left");
        n = collect(inbox, match_result, prefix, got, 8, 1, 5000);
        REQUIRE(n == 1);
        g = find_got(got, n, "keel.inbox.ActivityFailed", wf, "queued");
        REQUIRE(g != NULL);
        f = json_object_get(g->rec, "failure");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "type")),
                               "Cancelled");
        CU_ASSERT(json_is_true(json_object_get(f, "non_retryable")));
        CU_ASSERT_PTR_NOT_NULL(strstr(
            json_string_value(json_object_get(f, "message")), "customer left"));
        keel_worker_stats(w, &st);
        CU_ASSERT_EQUAL(st.tasks_started, 2); /* never ran */
        CU_ASSERT_EQUAL(st.cancels, 1);

        /* Then the running ones. */
        put_cancel(prod, wf, "long1", "customer left");
        put_cancel(prod, wf, "long2", "customer left");
        n += collect(inbox, match_result, prefix, got + n, 8 - n, 2, 5000);
        REQUIRE(n == 3);
        CU_ASSERT_PTR_NOT_NULL(
            find_got(got, n, "keel.inbox.ActivityFailed", wf, "long1"));
        CU_ASSERT_PTR_NOT_NULL(
            find_got(got, n, "keel.inbox.ActivityFailed", wf, "long2"));
        CU_ASSERT_PTR_NULL(
            find_got(got, n, "keel.inbox.ActivityCompleted", wf, NULL));
        keel_worker_stats(w, &st);
        CU_ASSERT_EQUAL(st.cancels, 3);
        CU_ASSERT_EQUAL(st.cancels_unmatched, 0);
        CU_ASSERT_EQUAL(st.tasks_started, 2);
out:
        CU_ASSERT_EQUAL(stop(&r), KEEL_OK);
        got_free(got, n);
        keel_worker_destroy(w);
        keel_config_destroy(cfg);
        reader_destroy(inbox);
        rd_kafka_destroy(prod);
}

static void test_worker_rejects_bad_arguments(void)
{
        keel_config_t *cfg = worker_config(1, 100);
        char err[512] = "";
        CU_ASSERT_PTR_NULL(keel_worker_new(cfg, "no spaces", err, sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "no spaces"));
        CU_ASSERT_PTR_NULL(keel_worker_new(cfg, "", err, sizeof(err)));
        keel_worker_destroy(NULL);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {
    {"rejects bad arguments", test_worker_rejects_bad_arguments},
    {"runs tasks and sends results", test_worker_runs_tasks_and_sends_results},
    {"reports failures", test_worker_reports_failures},
    {"runs tasks concurrently", test_worker_runs_tasks_concurrently},
    {"sends heartbeats", test_worker_sends_heartbeats},
    {"sends bad records to the DLQ", test_worker_sends_bad_records_to_dlq},
    {"cancel stops a running task", test_worker_cancel_stops_running_task},
    {"cancel skips a queued task", test_worker_cancel_skips_queued_task},
    {"commits below an unfinished task",
     test_worker_commits_below_unfinished_task},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("worker", tests)

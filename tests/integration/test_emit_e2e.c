/*
 * test_emit_e2e.c: records workflows emit (keel_emit()) reach their topic
 * exactly once, through orchestrator crashes.
 *
 * keel-orchestrator runs the "emitter" workflow module (emit_module.c):
 * two records per run to payments.completed, a durable timer apart. The
 * test starts KEEL_E2E_EMIT_WORKFLOWS workflows (default 500) while a
 * thread kill -9s and restarts the orchestrator KEEL_E2E_EMIT_KILLS times
 * (default 5). An independent reader follows keel.history by the reader
 * rules and collects every committed RecordEmitted event; a read_committed
 * consumer reads payments.completed. Then, on the real Kafka test broker:
 * every event's record is there exactly once (by its keel-id header), with
 * the recorded key and value, on the partition Kafka's Java client would
 * choose, and there is no other record. A workflow that emits to a topic
 * that does not exist completes, and its record is in keel.dlq, once.
 *
 * The same run on keel's dev broker, which shows the records of aborted
 * and unfinished transactions: after de-duplication by keel-id, every
 * committed event's record is there once, every copy of it is the same
 * record, and no record belongs to an event that was never committed.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_http.h"
#include "keel_test.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EMIT_TOPIC      "payments.completed"
#define EMIT_PARTITIONS 6

static e2e_env_t procs; /* broker, programs, work directory */
static const char *module;
static char instance[64];
static const char *extra_args[5];

/* ---- processes ------------------------------------------------------- */

static pid_t start_orchestrator(void)
{
        /* Static membership: a restarted orchestrator takes its partitions
         * back at once. extra_args may add a shorter session for brokers
         * without it. */
        const char *extra[8] = {"-X", instance, NULL};
        for (int i = 0; extra_args[i] && i < 4; i++)
                extra[2 + i] = extra_args[i];
        return e2e_start_orchestrator(&procs, "orchestrator.log", module,
                                      extra);
}

static volatile pid_t orch_pid;
static volatile int kills_done, all_done;

/* Kill the orchestrator with SIGKILL `kills` times, each time at a random
 * moment once it is at work (has taken its partitions), and start it
 * again. */
static void *killer(void *arg)
{
        int kills = *(int *)arg;
        unsigned seed = (unsigned)getpid();
        int before = 0;
        for (int k = 0; k < kills && !all_done; k++) {
                int64_t until = e2e_now_ms() + 60000;
                while (!all_done &&
                       e2e_log_count(&procs, "orchestrator.log",
                                     "msg=assigned") <= before &&
                       e2e_now_ms() < until)
                        e2e_sleep_ms(50);
                /* a random moment: 0.2 to 1 s into its work */
                e2e_sleep_ms(200 + rand_r(&seed) % 800);
                if (all_done)
                        break;
                before =
                    e2e_log_count(&procs, "orchestrator.log", "msg=assigned");
                e2e_stop(orch_pid, SIGKILL);
                orch_pid = start_orchestrator();
                kills_done++;
        }
        return NULL;
}

/* ---- reading a topic ----------------------------------------------------- */

/* One record read: what the checks compare. */
typedef struct seen_s {
        char keel_id[256];
        char key[128];
        char *value; /* len bytes, NUL-terminated */
        size_t len;
        int32_t partition;
        struct seen_s *next;
} seen_t;

static void seen_free(seen_t *s)
{
        while (s) {
                seen_t *next = s->next;
                free(s->value);
                free(s);
                s = next;
        }
}

/* What read_topic() keeps: records whose key or keel-id starts with
 * prefix, newest first. */
typedef struct keep_s {
        const char *prefix;
        seen_t *all;
} keep_t;

static void keep(void *opaque, const rd_kafka_message_t *m)
{
        keep_t *k = opaque;
        rd_kafka_headers_t *hdrs = NULL;
        const void *hv = NULL;
        size_t hl = 0;
        seen_t *s = calloc(1, sizeof(*s));

        if (!s)
                return;
        if (!rd_kafka_message_headers(m, &hdrs))
                rd_kafka_header_get_last(hdrs, "keel-id", &hv, &hl);
        snprintf(s->keel_id, sizeof(s->keel_id), "%.*s", (int)hl,
                 hv ? (const char *)hv : "");
        snprintf(s->key, sizeof(s->key), "%.*s", (int)m->key_len,
                 m->key ? (const char *)m->key : "");
        s->value = calloc(1, m->len + 1);
        if (s->value && m->len)
                memcpy(s->value, m->payload, m->len);
        s->len = m->len;
        s->partition = m->partition;
        if (!strncmp(s->key, k->prefix, strlen(k->prefix)) ||
            !strncmp(s->keel_id, k->prefix, strlen(k->prefix))) {
                s->next = k->all;
                k->all = s;
        } else {
                seen_free(s);
        }
}

/*
 * Read every partition of topic from the beginning to its end with
 * isolation.level `isolation`, keeping the records whose key or keel-id
 * starts with prefix. Returns them (newest first), with *ok 0 if the end
 * was not reached within timeout_ms.
 */
static seen_t *read_topic(const char *bootstrap, const char *topic,
                          const char *prefix, const char *isolation,
                          int timeout_ms, int *ok)
{
        keep_t k = {.prefix = prefix, .all = NULL};
        *ok = e2e_read_topic(bootstrap, topic, isolation, timeout_ms, keep, &k);
        return k.all;
}

/* ---- the checks --------------------------------------------------------- */

/* What every committed RecordEmitted event of the watched workflows
 * says a record should be, in expected[] (keel-id, key, value). */
typedef struct expected_s {
        char keel_id[256];
        char key[128];
        char *value;
        int copies; /* records read with this keel-id */
} expected_t;

static expected_t *expected_of(e2e_watch_t *w, size_t *n)
{
        size_t cap = (size_t)w->n * 2 + 2, k = 0;
        expected_t *ex = calloc(cap, sizeof(*ex));
        for (int i = 0; ex && i < w->n; i++) {
                const e2e_wf_t *wf = &w->wfs[i];
                const json_t *rec;
                for (int nth = 0;
                     (rec = e2e_wf_event(wf, "RecordEmitted", NULL, nth));
                     nth++) {
                        if (k == cap) {
                                expected_t *more =
                                    realloc(ex, 2 * cap * sizeof(*ex));
                                if (!more)
                                        break;
                                memset(more + cap, 0, cap * sizeof(*ex));
                                ex = more;
                                cap *= 2;
                        }
                        snprintf(
                            ex[k].keel_id, sizeof(ex[k].keel_id), "%s/%s/%lld",
                            json_string_value(
                                json_object_get(rec, "workflow_id")),
                            json_string_value(json_object_get(rec, "run_id")),
                            (long long)json_integer_value(
                                json_object_get(rec, "seq")));
                        snprintf(
                            ex[k].key, sizeof(ex[k].key), "%s",
                            json_string_value(json_object_get(rec, "key"))
                                ? json_string_value(json_object_get(rec, "key"))
                                : "");
                        ex[k].value = strdup(
                            json_string_value(json_object_get(rec, "value")));
                        k++;
                }
        }
        *n = k;
        return ex;
}

static void expected_free(expected_t *ex, size_t n)
{
        for (size_t i = 0; ex && i < n; i++)
                free(ex[i].value);
        free(ex);
}

static expected_t *find_expected(expected_t *ex, size_t n, const char *id)
{
        for (size_t i = 0; i < n; i++)
                if (!strcmp(ex[i].keel_id, id))
                        return &ex[i];
        return NULL;
}

/* Compare the records read with the events. Returns how many records
 * are wrong (another key, value or partition than their event's, or an
 * event never committed); counts duplicates and missing events. */
static int check_records(seen_t *seen, expected_t *ex, size_t n, int partitions,
                         int *dups, int *missing)
{
        int wrong = 0;
        *dups = *missing = 0;
        for (seen_t *s = seen; s; s = s->next) {
                expected_t *e = find_expected(ex, n, s->keel_id);
                int32_t want_part;
                if (!e) {
                        if (wrong++ < 10)
                                fprintf(stderr,
                                        "record %s (key %s) has no committed "
                                        "event\n",
                                        s->keel_id, s->key);
                        continue;
                }
                if (e->copies++)
                        (*dups)++;
                want_part =
                    keel_partition_of(e->key, strlen(e->key), partitions);
                if (strcmp(s->key, e->key) || strcmp(s->value, e->value) ||
                    s->partition != want_part) {
                        if (wrong++ < 10)
                                fprintf(stderr,
                                        "record %s: key %s value %s "
                                        "partition %d; event: key %s value "
                                        "%s partition %d\n",
                                        s->keel_id, s->key, s->value,
                                        (int)s->partition, e->key, e->value,
                                        (int)want_part);
                }
        }
        for (size_t i = 0; i < n; i++)
                if (!ex[i].copies && (*missing)++ < 10)
                        fprintf(stderr, "no record for %s\n", ex[i].keel_id);
        return wrong;
}

/* ---- one run ------------------------------------------------------------ */

typedef struct run_s {
        int n, kills, closed, kills_done, seq_violations;
        size_t want;   /* records the workflows emit */
        size_t events; /* committed RecordEmitted events */
        int records, wrong, dups, missing, read_ok;
} run_t;

/*
 * Start emitters "<prefix><i>" (rate a second; every burst_every-th
 * emitting 100 records in its second step; with mixed, some failing,
 * cancelled and terminated) on the broker procs names while the
 * orchestrator is killed `kills` times: n of them, and more
 * until the last kill, so that every kill lands while workflows run. Wait
 * until all closed, stop the orchestrator, read EMIT_TOPIC (partitions
 * partitions) and compare. out->n says how many were started.
 */
static void run_emitters(keel_client_t *client, const char *prefix, int n,
                         int rate, int burst_every, int mixed, int kills,
                         int partitions, run_t *out)
{
        e2e_watch_t *w;
        pthread_t kt;
        expected_t *ex;
        seen_t *seen;
        char err[1024];
        int64_t t0 = e2e_now_ms();

        memset(out, 0, sizeof(*out));
        out->kills = kills;
        kills_done = 0;
        all_done = 0;
        orch_pid = start_orchestrator();
        pthread_create(&kt, NULL, killer, &kills);
        /* Starts paced over about as long as the kills take, so that
         * they land while workflows are at every step. */
        for (int i = 0; i < n || (kills_done < kills && i < 20 * n); i++) {
                char id[128];
                int parts = burst_every && i % burst_every == 0 ? 100 : 1;
                /* mixed: of every 8 runs one fails, one is cancelled and
                 * one terminated, each after its first record */
                int kind = mixed ? i % 8 : 0;
                json_t *in =
                    json_pack("{si si si ss}", "amount", 100 + i, "sleep_ms",
                              200 + i % 7 * 100, "parts", parts, "outcome",
                              kind == 1                ? "fail"
                              : kind == 2 || kind == 3 ? "wait"
                                                       : "complete");
                int64_t due = t0 + (int64_t)i * 1000 / rate;
                int rc;
                if (e2e_now_ms() < due)
                        e2e_sleep_ms(due - e2e_now_ms());
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                rc = keel_client_start(client, id, "emitter", in, NULL, NULL,
                                       err, sizeof(err));
                json_decref(in);
                if (rc)
                        fprintf(stderr, "%s: %s\n", id, err);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
                if (kind == 2)
                        rc = keel_client_cancel(client, id, NULL, "test", 0,
                                                err, sizeof(err));
                else if (kind == 3)
                        rc = keel_client_terminate(client, id, NULL, "test",
                                                   NULL, 0, err, sizeof(err));
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
                out->want += 1 + (kind >= 1 && kind <= 3 ? 0 : parts);
                out->n = i + 1;
        }
        n = out->n;
        w = e2e_watch_new(procs.bootstrap, prefix, n, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        e2e_watch_until(w, t0 + 240000, e2e_watch_all_closed, NULL);
        all_done = 1;
        pthread_join(kt, NULL);
        /* Stopped, the orchestrator leaves no transaction open: the
         * reader reaches the end of every partition. */
        e2e_stop(orch_pid, SIGTERM);
        out->closed = w->closed;
        out->kills_done = kills_done;
        out->seq_violations = w->seq_violations;
        fprintf(stderr,
                "%d/%d closed in %lld ms, %d orchestrator kills, torn "
                "batches %llu, fenced records %llu\n",
                w->closed, n, (long long)(e2e_now_ms() - t0), kills_done,
                (unsigned long long)w->torn, (unsigned long long)w->fenced);

        ex = expected_of(w, &out->events);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
        seen = read_topic(procs.bootstrap, EMIT_TOPIC, prefix, "read_committed",
                          60000, &out->read_ok);
        for (seen_t *s = seen; s; s = s->next)
                out->records++;
        out->wrong = check_records(seen, ex, out->events, partitions,
                                   &out->dups, &out->missing);
        seen_free(seen);
        /* What read_uncommitted shows besides: the records of aborted
         * transactions, which read_committed hid. */
        {
                int ok, all = 0;
                seen = read_topic(procs.bootstrap, EMIT_TOPIC, prefix,
                                  "read_uncommitted", 60000, &ok);
                for (seen_t *s = seen; s; s = s->next)
                        all++;
                seen_free(seen);
                fprintf(stderr,
                        "%zu records emitted (committed events), %d read "
                        "(read_uncommitted: %d), %d duplicates, %d missing, "
                        "%d wrong\n",
                        out->events, out->records, all, out->dups, out->missing,
                        out->wrong);
        }
        expected_free(ex, out->events);
        e2e_watch_destroy(w);
}

/* ---- a test's start ---------------------------------------------------- */

/* The environment (work directory <name>-<pid>), the workflow module,
 * the orchestrators' static member name `member` (one per broker: a
 * restarted member of that name takes the partitions back at once), no
 * extra orchestrator arguments, and the prefix "<name>-<pid>-" of the
 * test's workflow IDs. */
static void begin(const char *name, const char *member, char *prefix,
                  size_t size)
{
        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&procs, name), KEEL_OK);
        module = keel_test_env("KEEL_TEST_EMIT_MODULE");
        snprintf(instance, sizeof(instance), "kafka.group.instance.id=%s",
                 member);
        snprintf(prefix, size, "%s-%d-", name, (int)getpid());
        extra_args[0] = NULL;
}

/* A client of the broker procs names, configured in cfg (the caller's). */
static keel_client_t *client_of(keel_config_t *cfg)
{
        char err[1024];
        keel_client_t *c;
        keel_config_set(cfg, "bootstrap", procs.bootstrap, NULL, NULL, 0);
        if (!(c = keel_client_new(cfg, err, sizeof(err))))
                fprintf(stderr, "client: %s\n", err);
        return c;
}

/* ---- on the real Kafka test broker ------------------------------------ */

static void test_emit_exactly_once_through_orchestrator_crashes(void)
{
        int n = e2e_env_int("KEEL_E2E_EMIT_WORKFLOWS", 500);
        int kills = e2e_env_int("KEEL_E2E_EMIT_KILLS", 5);
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        char prefix[64];
        run_t r;

        begin("emit", "emit-orchestrator", prefix, sizeof(prefix));
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(
            e2e_create_topic(procs.bootstrap, EMIT_TOPIC, EMIT_PARTITIONS), 0);
        client = client_of(cfg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        /* Every 25th workflow emits 100 records in one step. */
        run_emitters(client, prefix, n, e2e_env_int("KEEL_E2E_EMIT_RATE", 50),
                     25, 0, kills, EMIT_PARTITIONS, &r);
        CU_ASSERT(r.n >= n);
        CU_ASSERT_EQUAL(r.closed, r.n);
        CU_ASSERT_EQUAL(r.kills_done, kills);
        CU_ASSERT_EQUAL(r.seq_violations, 0);
        CU_ASSERT_EQUAL(r.events, r.want);
        CU_ASSERT(r.read_ok);
        /* read_committed: each record once, none missing, none other */
        CU_ASSERT_EQUAL((size_t)r.records, r.want);
        CU_ASSERT_EQUAL(r.dups, 0);
        CU_ASSERT_EQUAL(r.missing, 0);
        CU_ASSERT_EQUAL(r.wrong, 0);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

/* A record for a topic that does not exist goes to keel.dlq, once, with
 * its keel-id, key and value; the workflow completes. */
static void test_emit_to_a_missing_topic_goes_to_the_dlq(void)
{
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        e2e_watch_t *w;
        expected_t *ex;
        seen_t *seen;
        size_t n_ex = 0;
        char err[1024], prefix[64], topic[96];
        int ok, found = 0;

        begin("emit-dlq", "emit-orchestrator", prefix, sizeof(prefix));
        snprintf(topic, sizeof(topic), "payments.nowhere-%d", (int)getpid());
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        client = client_of(cfg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        orch_pid = start_orchestrator();
        {
                char id[128];
                json_t *in = json_pack("{ss si si}", "topic", topic, "amount",
                                       7, "sleep_ms", 10);
                snprintf(id, sizeof(id), "%s0", prefix);
                CU_ASSERT_EQUAL_FATAL(keel_client_start(client, id, "emitter",
                                                        in, NULL, NULL, err,
                                                        sizeof(err)),
                                      KEEL_OK);
                json_decref(in);
        }
        w = e2e_watch_new(procs.bootstrap, prefix, 1, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 60000, e2e_watch_all_closed,
                                  NULL));
        e2e_stop(orch_pid, SIGTERM);
        CU_ASSERT_STRING_EQUAL(w->wfs[0].status, "completed");
        ex = expected_of(w, &n_ex);
        CU_ASSERT_EQUAL_FATAL(n_ex, 2);

        /* keel.dlq: a DeadLetter per record, keyed by the record's key,
         * carrying its keel-id, naming the topic. */
        seen = read_topic(procs.bootstrap, KEEL_TOPIC_DLQ, prefix,
                          "read_committed", 60000, &ok);
        CU_ASSERT(ok);
        for (seen_t *s = seen; s; s = s->next) {
                expected_t *e = find_expected(ex, n_ex, s->keel_id);
                const char *type;
                json_t *rec = NULL;
                char derr[256];
                if (!e)
                        continue;
                found++;
                e->copies++;
                CU_ASSERT_STRING_EQUAL(s->key, e->key);
                CU_ASSERT_EQUAL_FATAL(keel_codec_decode(s->value, s->len, &type,
                                                        &rec, derr,
                                                        sizeof(derr)),
                                      KEEL_OK);
                CU_ASSERT_STRING_EQUAL(type, "keel.dlq.DeadLetter");
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(rec, "source_topic")),
                    topic);
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(rec, "error")),
                    "KEEL_ERR_NOT_FOUND");
                /* The value as it would have been produced (bytes in
                 * Avro's JSON mapping: ASCII here, so the same text). */
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(rec, "value")), e->value);
                json_decref(rec);
        }
        CU_ASSERT_EQUAL(found, 2);
        for (size_t i = 0; i < n_ex; i++)
                CU_ASSERT_EQUAL(ex[i].copies, 1);
        seen_free(seen);
        expected_free(ex, n_ex);
        e2e_watch_destroy(w);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

/* ---- on the dev broker -------------------------------------------------- */

static void test_emit_once_per_keel_id_on_the_dev_broker(void)
{
        int n = e2e_env_int("KEEL_E2E_EMIT_DEV_WORKFLOWS", 200);
        int kills = e2e_env_int("KEEL_E2E_EMIT_DEV_KILLS", 3);
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        char prefix[64];
        pid_t broker;
        run_t r;

        begin("emit-dev", "emit-dev-orchestrator", prefix, sizeof(prefix));
        /* A dev broker of its own, which stops by itself after 5 minutes
         * whatever happens to this test. */
        broker = e2e_start_dev_broker(&procs, 12, 300);
        CU_ASSERT_FATAL(broker > 0);
        client = client_of(cfg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);

        /* The dev broker makes a topic on first use, with 4 partitions. */
        /* The dev broker lacks static membership: a restarted
         * orchestrator gets its partitions once the killed one's session
         * has expired, so make that short. */
        extra_args[0] = "-X";
        extra_args[1] = "kafka.session.timeout.ms=3000";
        extra_args[2] = "-X";
        extra_args[3] = "kafka.heartbeat.interval.ms=500";
        extra_args[4] = NULL;
        /* Every 10th workflow emits 100 records in one step: batches that
         * take a while to write, which a kill may tear. */
        run_emitters(client, prefix, n, 20, 10, 0, kills, 4, &r);
        CU_ASSERT(r.n >= n);
        CU_ASSERT_EQUAL(r.closed, r.n);
        CU_ASSERT_EQUAL(r.kills_done, kills);
        CU_ASSERT_EQUAL(r.seq_violations, 0);
        CU_ASSERT_EQUAL(r.events, r.want);
        CU_ASSERT(r.read_ok);
        /* Copies of records from torn batches may show (r.dups), but
         * after de-duplication by keel-id each committed record is there
         * once, every copy the same record, and nothing else. */
        CU_ASSERT_EQUAL((size_t)(r.records - r.dups), r.want);
        CU_ASSERT_EQUAL(r.missing, 0);
        CU_ASSERT_EQUAL(r.wrong, 0);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
        e2e_stop(broker, SIGTERM);
}

/* ---- the lifecycle stream ------------------------------------------------ */

#define LIFECYCLE_TOPIC "workflows.lifecycle"

/* keel-projector on a port chosen at run time; its port, or -1. */
static int start_projector(pid_t *pid)
{
        char bin[600], pf[700];
        char *av[10];
        int64_t deadline = e2e_now_ms() + 30000;
        int port = -1;

        snprintf(bin, sizeof(bin), "%s/keel-projector",
                 keel_test_env("KEEL_TEST_BIN_DIR"));
        snprintf(pf, sizeof(pf), "%s/projector.port", procs.workdir);
        av[0] = bin;
        av[1] = "--bootstrap";
        av[2] = procs.bootstrap;
        av[3] = "-X";
        av[4] = "http.listen=127.0.0.1:0";
        av[5] = "--port-file";
        av[6] = pf;
        av[7] = NULL;
        if ((*pid = e2e_spawn(&procs, "projector.log", av)) <= 0)
                return -1;
        while (port <= 0 && e2e_now_ms() < deadline) {
                FILE *f = fopen(pf, "r");
                if (f) {
                        if (fscanf(f, "%d", &port) != 1)
                                port = -1;
                        fclose(f);
                }
                if (port <= 0)
                        e2e_sleep_ms(100);
        }
        return port;
}

/* The projector's view of every workflow "<prefix>...": {id: state},
 * once none of them is running (or after 60 s). */
static json_t *projector_view(int port, const char *prefix)
{
        int64_t deadline = e2e_now_ms() + 60000;
        char path[512];
        json_t *view = json_object();
        http_res_t r;

        for (;;) {
                json_int_t running;
                snprintf(path, sizeof(path),
                         "/api/v1/workflows?prefix=%s&limit=1", prefix);
                int status;
                r = http_req(port, "GET", path, NULL);
                status = r.status;
                running = json_integer_value(json_object_get(
                    json_object_get(r.json, "counts"), "running"));
                http_res_free(&r);
                if ((status == 200 && !running) || e2e_now_ms() > deadline)
                        break;
                e2e_sleep_ms(200);
        }
        for (char cursor[256] = "";;) {
                const json_t *it;
                const char *next;
                size_t k;
                snprintf(path, sizeof(path),
                         "/api/v1/workflows?prefix=%s&limit=1000%s%s", prefix,
                         *cursor ? "&cursor=" : "", cursor);
                r = http_req(port, "GET", path, NULL);
                json_array_foreach(json_object_get(r.json, "workflows"), k, it)
                {
                        const char *id = json_string_value(
                            json_object_get(it, "workflow_id"));
                        http_res_t one;
                        snprintf(path, sizeof(path), "/api/v1/workflows/%s",
                                 id);
                        one = http_req(port, "GET", path, NULL);
                        if (one.json)
                                json_object_set(view, id, one.json);
                        http_res_free(&one);
                }
                next =
                    json_string_value(json_object_get(r.json, "next_cursor"));
                snprintf(cursor, sizeof(cursor), "%s", next ? next : "");
                http_res_free(&r);
                if (!*cursor)
                        break;
        }
        return view;
}

/* Do JSON text a and JSON value b say the same? */
static int same_json(const char *a, const json_t *b)
{
        json_t *j = a ? json_loads(a, JSON_DECODE_ANY, NULL) : NULL;
        int same = j && b && json_equal(j, b);
        json_decref(j);
        return same;
}

/* Check one workflow's lifecycle records (decoded, in log order) against
 * the projector's state of it. Returns 0 if they agree. */
static int lifecycle_agrees(const char *id, const json_t *recs,
                            const json_t *proj)
{
        const json_t *start = json_array_get(recs, 0);
        const json_t *end = json_array_get(recs, 1);
        const char *status = json_string_value(json_object_get(end, "status"));
        const char *pstatus =
            json_string_value(json_object_get(proj, "status"));
        char lower[32] = "";
        int bad = 0;

        for (size_t k = 0; status && status[k] && k < sizeof(lower) - 1; k++)
                lower[k] = (char)tolower((unsigned char)status[k]);
        if (json_array_size(recs) != 2 || !proj || !pstatus)
                bad = 1;
        else if (strcmp(json_string_value(json_object_get(start, "status")),
                        "RUNNING") ||
                 strcmp(lower, pstatus) ||
                 !json_equal(json_object_get(start, "run_id"),
                             json_object_get(proj, "run_id")) ||
                 !json_equal(json_object_get(end, "run_id"),
                             json_object_get(proj, "run_id")) ||
                 !json_equal(json_object_get(start, "workflow_type"),
                             json_object_get(proj, "type")) ||
                 json_integer_value(json_object_get(end, "seq")) !=
                     json_integer_value(
                         json_object_get(proj, "history_length")) ||
                 !same_json(json_string_value(json_object_get(start, "input")),
                            json_object_get(proj, "input")))
                bad = 1;
        else if (!strcmp(pstatus, "completed"))
                bad = !same_json(
                    json_string_value(json_object_get(end, "result")),
                    json_object_get(proj, "result"));
        else if (!strcmp(pstatus, "failed"))
                bad = !json_equal(
                    json_object_get(json_object_get(end, "failure"), "type"),
                    json_object_get(json_object_get(proj, "failure"), "type"));
        else if (!strcmp(pstatus, "terminated"))
                bad = !json_string_value(json_object_get(end, "reason")) ||
                      strcmp(json_string_value(json_object_get(end, "reason")),
                             "test");
        if (bad) {
                char *a = json_dumps(recs, JSON_COMPACT);
                fprintf(stderr, "%s: lifecycle %s, projector status %s\n", id,
                        a ? a : "?", pstatus ? pstatus : "none");
                free(a);
        }
        return bad;
}

/* With lifecycle.topic set, every run's start and close is published
 * once, through orchestrator crashes, and agrees with what the projector
 * folded from keel.history: status, run, type, input, result or
 * failure, and the seq of the closing event. */
static void test_lifecycle_stream_matches_the_projector(void)
{
        int n = e2e_env_int("KEEL_E2E_LIFECYCLE_WORKFLOWS", 160);
        int kills = e2e_env_int("KEEL_E2E_LIFECYCLE_KILLS", 2);
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        json_t *by_wf, *view;
        seen_t *seen;
        pid_t proj;
        char prefix[64];
        int port, ok, records = 0, dups = 0, wrong = 0, disagree = 0;
        int counts[8] = {0};
        run_t r;

        begin("lifecycle", "emit-orchestrator", prefix, sizeof(prefix));
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(
            e2e_create_topic(procs.bootstrap, EMIT_TOPIC, EMIT_PARTITIONS), 0);
        CU_ASSERT_EQUAL_FATAL(
            e2e_create_topic(procs.bootstrap, LIFECYCLE_TOPIC, E2E_PARTITIONS),
            0);
        client = client_of(cfg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        port = start_projector(&proj);
        CU_ASSERT_FATAL(port > 0);

        extra_args[0] = "-X";
        extra_args[1] = "lifecycle.topic=" LIFECYCLE_TOPIC;
        extra_args[2] = NULL;
        run_emitters(client, prefix, n, 40, 0, 1, kills, EMIT_PARTITIONS, &r);
        CU_ASSERT_EQUAL(r.closed, r.n);
        CU_ASSERT_EQUAL(r.kills_done, kills);
        CU_ASSERT_EQUAL(r.events, r.want);
        CU_ASSERT_EQUAL((size_t)r.records, r.want);
        CU_ASSERT_EQUAL(r.missing + r.dups + r.wrong, 0);

        /* The lifecycle records, by workflow, in log order (one key, one
         * partition: the order they were written in). */
        seen = read_topic(procs.bootstrap, LIFECYCLE_TOPIC, prefix,
                          "read_committed", 60000, &ok);
        CU_ASSERT(ok);
        by_wf = json_object();
        for (seen_t *s = seen; s; s = s->next) {
                const char *type;
                json_t *rec = NULL, *list;
                char want_id[256], derr[256];
                records++;
                if (keel_codec_decode(s->value, s->len, &type, &rec, derr,
                                      sizeof(derr)) ||
                    strcmp(type, "keel.lifecycle.WorkflowStatusChanged")) {
                        if (wrong++ < 5)
                                fprintf(stderr, "%s: %s\n", s->keel_id, derr);
                        json_decref(rec);
                        continue;
                }
                snprintf(
                    want_id, sizeof(want_id), "%s/%s/%lld", s->key,
                    json_string_value(json_object_get(rec, "run_id")),
                    (long long)json_integer_value(json_object_get(rec, "seq")));
                if (strcmp(s->keel_id, want_id) ||
                    s->partition != keel_partition_of(s->key, strlen(s->key),
                                                      E2E_PARTITIONS))
                        wrong++;
                if (!(list = json_object_get(by_wf, s->key)))
                        json_object_set_new(by_wf, s->key, list = json_array());
                /* seen is newest first */
                json_array_insert_new(list, 0, rec);
        }
        seen_free(seen);
        view = projector_view(port, prefix);
        CU_ASSERT_EQUAL(json_object_size(view), (size_t)r.n);
        for (int i = 0; i < r.n; i++) {
                char id[128];
                const json_t *recs, *proj_wf;
                const char *st;
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                recs = json_object_get(by_wf, id);
                proj_wf = json_object_get(view, id);
                if (json_array_size(recs) > 2)
                        dups += (int)json_array_size(recs) - 2;
                disagree += lifecycle_agrees(id, recs, proj_wf);
                st = json_string_value(json_object_get(proj_wf, "status"));
                counts[!st                         ? 0
                       : !strcmp(st, "completed")  ? 1
                       : !strcmp(st, "failed")     ? 2
                       : !strcmp(st, "cancelled")  ? 3
                       : !strcmp(st, "terminated") ? 4
                                                   : 5]++;
        }
        fprintf(stderr,
                "lifecycle: %d records for %d workflows (%d completed, %d "
                "failed, %d cancelled, %d terminated), %d duplicates, %d "
                "wrong, %d disagreeing with the projector\n",
                records, r.n, counts[1], counts[2], counts[3], counts[4], dups,
                wrong, disagree);
        CU_ASSERT_EQUAL(records, 2 * r.n);
        CU_ASSERT_EQUAL(dups, 0);
        CU_ASSERT_EQUAL(wrong, 0);
        CU_ASSERT_EQUAL(disagree, 0);
        /* each outcome was there to compare */
        CU_ASSERT(counts[1] > 0 && counts[2] > 0 && counts[3] > 0 &&
                  counts[4] > 0);
        CU_ASSERT_EQUAL(counts[0] + counts[5], 0);
        json_decref(by_wf);
        json_decref(view);
        e2e_stop(proj, SIGTERM);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {
    {"test_emit_exactly_once_through_orchestrator_crashes",
     test_emit_exactly_once_through_orchestrator_crashes},
    {"test_emit_to_a_missing_topic_goes_to_the_dlq",
     test_emit_to_a_missing_topic_goes_to_the_dlq},
    {"test_lifecycle_stream_matches_the_projector",
     test_lifecycle_stream_matches_the_projector},
    {"test_emit_once_per_keel_id_on_the_dev_broker",
     test_emit_once_per_keel_id_on_the_dev_broker},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("emit_e2e", tests)

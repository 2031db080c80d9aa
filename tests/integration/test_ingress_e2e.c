/*
 * test_ingress_e2e.c: records of a user's topics start and signal
 * workflows exactly once (keel ingress), through crashes.
 *
 * A routes file maps the test's orders topic (records whose value has
 * "kind": "order") to starts of workflow "order" (ingress_module.c), the
 * workflow ID taken from the value's order_id, and its payments topic to
 * the signal "paid", the workflow ID taken from the record's key. Two
 * ingresses share the work in one group: one inside keel-orchestrator
 * (--ingress) and one `keel ingress` process. While a producer writes
 * KEEL_E2E_INGRESS_ORDERS orders (default 10,000), with records no route
 * wants and records no route can map among them, a thread kill -9s the
 * orchestrator KEEL_E2E_INGRESS_KILLS times (default 5) and the `keel
 * ingress` process every other time, restarting each. Once the held
 * orders have started, the producer writes their payments.
 *
 * Then, as a reader of keel.history sees it: every order started exactly
 * one workflow, which closed once with its own record's order ID and
 * amount (a held one with its payment's amount), with no seq gap or
 * duplicate. keel.inbox (read_committed) holds exactly one command per
 * mapped source record, none for the others; keel.dlq holds exactly one
 * dead letter per record that could not be mapped, naming the reason.
 *
 * The same on keel's dev broker, which shows the records of aborted
 * transactions: the inbox may then hold a command twice, but the same
 * command (same ID), and every order still starts one workflow, once.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ORDERS   "orders"
#define PAYMENTS "payments"

static e2e_env_t procs; /* broker, programs, work directory */
static const char *module;
static char routes_path[700];
static char name[64];   /* the routes' name: group keel-ingress-<name> */
static char prefix[64]; /* of the workflow IDs */
static const char *orch_extra[8];

/* ---- processes ------------------------------------------------------- */

static pid_t start_orchestrator(void)
{
        return e2e_start_orchestrator(&procs, "orchestrator.log", module,
                                      orch_extra);
}

static pid_t start_ingress(void)
{
        char keel[600];
        char *argv[16];
        int n = 0;
        snprintf(keel, sizeof(keel), "%s/keel",
                 keel_test_env("KEEL_TEST_BIN_DIR"));
        argv[n++] = keel;
        argv[n++] = "ingress";
        argv[n++] = "--bootstrap";
        argv[n++] = procs.bootstrap;
        argv[n++] = "--routes";
        argv[n++] = routes_path;
        argv[n++] = "--log-level";
        argv[n++] = "info";
        /* orch_extra[2..]: the session settings both share */
        for (int i = 2; orch_extra[i] && n < 15; i++)
                argv[n++] = (char *)orch_extra[i];
        argv[n] = NULL;
        return e2e_spawn(&procs, "ingress.log", argv);
}

static volatile pid_t orch_pid, ingress_pid;
static volatile int kills_wanted, kills_done, ingress_kills, stop_killing;

/* Kill the orchestrator (and its ingress) with SIGKILL kills_wanted
 * times, each at a random moment once it has taken its partitions, and
 * start it again; every other time, the `keel ingress` process too. */
static void *killer(void *arg)
{
        unsigned seed = (unsigned)getpid();
        int before = 0;
        (void)arg;
        for (int k = 0; k < kills_wanted && !stop_killing; k++) {
                int64_t until = e2e_now_ms() + 60000;
                while (!stop_killing &&
                       e2e_log_count(&procs, "orchestrator.log",
                                     "msg=assigned") <= before &&
                       e2e_now_ms() < until)
                        e2e_sleep_ms(50);
                e2e_sleep_ms(300 + rand_r(&seed) % 1200);
                if (stop_killing)
                        break;
                before =
                    e2e_log_count(&procs, "orchestrator.log", "msg=assigned");
                e2e_stop(orch_pid, SIGKILL);
                if (k % 2 == 0) {
                        e2e_stop(ingress_pid, SIGKILL);
                        ingress_pid = start_ingress();
                        ingress_kills++;
                }
                orch_pid = start_orchestrator();
                kills_done++;
        }
        return NULL;
}

/* ---- the source topics ------------------------------------------------- */

static int write_routes(void)
{
        FILE *f;
        snprintf(routes_path, sizeof(routes_path), "%s/routes.json",
                 procs.workdir);
        if (!(f = fopen(routes_path, "w")))
                return -1;
        fprintf(
            f,
            "{\"name\": \"%s\", \"routes\": [\n"
            "  {\"topic\": \"%s\", \"when\": {\"value.kind\": \"order\"},\n"
            "   \"start\": \"order\", \"workflow_id\": \"value.order_id\",\n"
            "   \"id_prefix\": \"%s\"},\n"
            "  {\"topic\": \"%s\", \"signal\": \"paid\",\n"
            "   \"workflow_id\": \"key\", \"id_prefix\": \"%s\"}\n"
            "]}\n",
            name, ORDERS, prefix, PAYMENTS, prefix);
        return fclose(f);
}

static rd_kafka_t *producer_new(void)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[512];
        rd_kafka_t *rk;
        if (rd_kafka_conf_set(conf, "bootstrap.servers", procs.bootstrap, err,
                              sizeof(err)) ||
            rd_kafka_conf_set(conf, "enable.idempotence", "true", err,
                              sizeof(err)) ||
            rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err,
                              sizeof(err)) ||
            rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err))) {
                fprintf(stderr, "producer: %s\n", err);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)))) {
                fprintf(stderr, "producer: %s\n", err);
                rd_kafka_conf_destroy(conf);
        }
        return rk;
}

static int produce(rd_kafka_t *rk, const char *topic, const char *key,
                   const char *value)
{
        rd_kafka_resp_err_t e;
        for (int tries = 0; tries < 200; tries++) {
                e = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                    RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(rk, 50);
        }
        if (e)
                fprintf(stderr, "produce to %s: %s\n", topic,
                        rd_kafka_err2str(e));
        return e ? -1 : 0;
}

/* What the orders topic gets: order i, and beside some of them records
 * that no route wants (skip) or no route can map (dead). */
typedef struct plan_s {
        int n;    /* orders */
        int dead; /* records for keel.dlq */
        int skip; /* records no route wants */
} plan_t;

static int held(int i)
{
        return i % 20 == 0;
}

/* Produce the orders (and the others) at about rate a second. */
static int produce_orders(rd_kafka_t *rk, int n, int rate, plan_t *plan)
{
        char key[64], value[256];
        memset(plan, 0, sizeof(*plan));
        for (int i = 0; i < n; i++) {
                snprintf(key, sizeof(key), "order-%d", i);
                snprintf(value, sizeof(value),
                         "{\"kind\":\"order\",\"order_id\":%d,\"amount\":%d,"
                         "\"hold\":%s}",
                         i, 100 + i, held(i) ? "true" : "false");
                if (produce(rk, ORDERS, key, value))
                        return -1;
                plan->n++;
                if (i % 100 == 50) { /* another kind: skipped */
                        snprintf(value, sizeof(value),
                                 "{\"kind\":\"note\",\"order_id\":%d}", i);
                        if (produce(rk, ORDERS, key, value))
                                return -1;
                        plan->skip++;
                }
                if (i % 500 == 250) { /* no order ID: dead */
                        if (produce(rk, ORDERS, key,
                                    "{\"kind\":\"order\",\"amount\":1}"))
                                return -1;
                        plan->dead++;
                }
                if (i % 1000 == 750) { /* not JSON: dead */
                        if (produce(rk, ORDERS, key, "order 750, not JSON"))
                                return -1;
                        plan->dead++;
                }
                if (i % 1000 == 999) { /* a control character: dead */
                        if (produce(rk, ORDERS, key,
                                    "{\"kind\":\"order\",\"order_id\":"
                                    "\"x\\u0007y\"}"))
                                return -1;
                        plan->dead++;
                }
                if (rate > 0 && i % 50 == 49) {
                        rd_kafka_poll(rk, 0);
                        e2e_sleep_ms(50000 / rate);
                }
        }
        return rd_kafka_flush(rk, 60000) ? -1 : 0;
}

static int produce_payments(rd_kafka_t *rk, int n)
{
        char key[64], value[64];
        for (int i = 0; i < n; i++) {
                if (!held(i))
                        continue;
                snprintf(key, sizeof(key), "%d", i);
                snprintf(value, sizeof(value), "{\"amount\":%d}", 100 + i);
                if (produce(rk, PAYMENTS, key, value))
                        return -1;
        }
        return rd_kafka_flush(rk, 60000) ? -1 : 0;
}

/* ---- what the readers see ------------------------------------------------ */

/* Every order not held closed; every held one started. */
static int held_started(e2e_watch_t *w, void *opaque)
{
        (void)opaque;
        for (int i = 0; i < w->n; i++)
                if (held(i) ? !w->wfs[i].run[0] : !w->wfs[i].closes)
                        return 0;
        return 1;
}

typedef struct outcome_s {
        int closed, closed_twice, seq_violations, wrong;
} outcome_t;

/* Check each workflow's result against its order. */
static void check_results(e2e_watch_t *w, outcome_t *o)
{
        memset(o, 0, sizeof(*o));
        o->closed = w->closed;
        o->seq_violations = w->seq_violations;
        for (int i = 0; i < w->n; i++) {
                const e2e_wf_t *wf = &w->wfs[i];
                const json_t *done =
                    e2e_wf_event(wf, "WorkflowCompleted", NULL, 0);
                json_t *res =
                    done ? json_loads(json_string_value(
                                          json_object_get(done, "result")),
                                      0, NULL)
                         : NULL;
                json_int_t order =
                    json_integer_value(json_object_get(res, "order"));
                json_int_t amount = json_integer_value(
                    json_object_get(res, held(i) ? "paid" : "amount"));
                const char *st =
                    json_string_value(json_object_get(res, "status"));
                if (wf->closes > 1)
                        o->closed_twice++;
                if (!st || strcmp(st, held(i) ? "paid" : "accepted") ||
                    order != i || amount != 100 + i) {
                        if (o->wrong++ < 10)
                                fprintf(stderr, "%s: result %s\n", wf->id,
                                        done
                                            ? json_string_value(json_object_get(
                                                  done, "result"))
                                            : "(none)");
                }
                json_decref(res);
        }
}

/* The ingress's commands in keel.inbox, by command ID. */
typedef struct cmds_s {
        char cid_prefix[128];
        char **ids;
        size_t n, cap;
} cmds_t;

static void collect_command(void *opaque, const rd_kafka_message_t *m)
{
        cmds_t *c = opaque;
        const char *type, *cid;
        json_t *rec;
        char err[256];
        if (keel_codec_decode(m->payload, m->len, &type, &rec, err,
                              sizeof(err)))
                return;
        cid = json_string_value(json_object_get(rec, "command_id"));
        if (cid && !strncmp(cid, c->cid_prefix, strlen(c->cid_prefix))) {
                if (c->n == c->cap) {
                        size_t cap = c->cap ? c->cap * 2 : 1024;
                        char **ids = realloc(c->ids, cap * sizeof(*ids));
                        if (ids) {
                                c->ids = ids;
                                c->cap = cap;
                        }
                }
                if (c->n < c->cap)
                        c->ids[c->n++] = strdup(cid);
        }
        json_decref(rec);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Distinct command IDs from `topic` of the source, and repeats. */
static void count_commands(cmds_t *c, const char *topic, size_t *distinct,
                           size_t *repeats)
{
        char want[256];
        const char *last = NULL;
        snprintf(want, sizeof(want), "%s%s/", c->cid_prefix, topic);
        *distinct = *repeats = 0;
        qsort(c->ids, c->n, sizeof(*c->ids), cmp_str);
        for (size_t i = 0; i < c->n; i++) {
                if (strncmp(c->ids[i], want, strlen(want)))
                        continue;
                if (last && !strcmp(last, c->ids[i]))
                        (*repeats)++;
                else
                        (*distinct)++;
                last = c->ids[i];
        }
}

static void cmds_free(cmds_t *c)
{
        for (size_t i = 0; i < c->n; i++)
                free(c->ids[i]);
        free(c->ids);
}

/* The ingress's dead letters for the orders topic in keel.dlq. */
typedef struct dead_s {
        int64_t offsets[256];
        int n, no_reason;
} dead_t;

static void collect_dead(void *opaque, const rd_kafka_message_t *m)
{
        dead_t *d = opaque;
        const char *type, *reason;
        json_t *rec;
        char err[256];
        if (keel_codec_decode(m->payload, m->len, &type, &rec, err,
                              sizeof(err)))
                return;
        if (!strcmp(json_string_value(json_object_get(rec, "component")),
                    "ingress") &&
            !strcmp(json_string_value(json_object_get(rec, "source_topic")),
                    ORDERS) &&
            d->n < 256) {
                d->offsets[d->n++] =
                    json_integer_value(json_object_get(rec, "source_offset"));
                reason = json_string_value(json_object_get(rec, "reason"));
                if (!reason || (!strstr(reason, "not JSON") &&
                                !strstr(reason, "no workflow ID") &&
                                !strstr(reason, "control character")))
                        if (d->no_reason++ < 5)
                                fprintf(stderr, "dead letter reason: %s\n",
                                        reason ? reason : "(none)");
        }
        json_decref(rec);
}

/* ---- one run ------------------------------------------------------------ */

typedef struct run_s {
        plan_t plan;
        outcome_t out;
        int kills_done, ingress_kills, started, read_inbox, read_dlq;
        size_t starts, start_repeats, signals, signal_repeats;
        int dead_letters, dead_distinct, dead_no_reason;
} run_t;

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

static void run_ingress(int n, int rate, int kills, run_t *r)
{
        rd_kafka_t *rk;
        e2e_watch_t *w;
        pthread_t kt;
        cmds_t cmds = {0};
        dead_t dead = {0};
        int holds = 0;

        memset(r, 0, sizeof(*r));
        for (int i = 0; i < n; i++)
                holds += held(i);
        CU_ASSERT_EQUAL_FATAL(write_routes(), 0);
        rk = producer_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(rk);
        /* The source topics exist before anyone subscribes to them. */
        CU_ASSERT_EQUAL_FATAL(produce(rk, ORDERS, "hello", "{\"kind\":\"x\"}"),
                              0);
        CU_ASSERT_EQUAL_FATAL(produce(rk, PAYMENTS, NULL, "{}"), 0);
        CU_ASSERT_EQUAL_FATAL(rd_kafka_flush(rk, 30000), 0);

        orch_pid = start_orchestrator();
        ingress_pid = start_ingress();
        CU_ASSERT_FATAL(orch_pid > 0 && ingress_pid > 0);
        kills_wanted = kills;
        kills_done = ingress_kills = stop_killing = 0;
        pthread_create(&kt, NULL, killer, NULL);
        CU_ASSERT_EQUAL(produce_orders(rk, n, rate, &r->plan), 0);
        r->plan.skip++; /* "hello" */

        w = e2e_watch_new(procs.bootstrap, prefix, n, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        r->started =
            e2e_watch_until(w, e2e_now_ms() + 240000, held_started, NULL);
        CU_ASSERT_EQUAL(produce_payments(rk, n), 0);
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 180000,
                                  e2e_watch_all_closed, NULL));
        stop_killing = 1;
        pthread_join(kt, NULL);
        r->kills_done = kills_done;
        r->ingress_kills = ingress_kills;
        /* Anything written twice would show by now: read a while longer. */
        e2e_watch_until(w, e2e_now_ms() + 3000, NULL, NULL);
        check_results(w, &r->out);
        printf("\n  %d orders (%d held), %d skipped, %d dead; %d/%d closed, "
               "%d closed twice, %d wrong results; %d orchestrator and %d "
               "ingress kills\n",
               r->plan.n, holds, r->plan.skip, r->plan.dead, r->out.closed, n,
               r->out.closed_twice, r->out.wrong, r->kills_done,
               r->ingress_kills);
        e2e_stop(orch_pid, SIGTERM);
        e2e_stop(ingress_pid, SIGTERM);
        e2e_watch_destroy(w);
        rd_kafka_destroy(rk);

        snprintf(cmds.cid_prefix, sizeof(cmds.cid_prefix), "ingress/%s/", name);
        r->read_inbox =
            e2e_read_topic(procs.bootstrap, KEEL_TOPIC_INBOX, "read_committed",
                           60000, collect_command, &cmds);
        count_commands(&cmds, ORDERS, &r->starts, &r->start_repeats);
        count_commands(&cmds, PAYMENTS, &r->signals, &r->signal_repeats);
        cmds_free(&cmds);
        r->read_dlq =
            e2e_read_topic(procs.bootstrap, KEEL_TOPIC_DLQ, "read_committed",
                           60000, collect_dead, &dead);
        r->dead_letters = dead.n;
        r->dead_no_reason = dead.no_reason;
        qsort(dead.offsets, (size_t)dead.n, sizeof(int64_t), cmp_i64);
        for (int i = 0; i < dead.n; i++)
                r->dead_distinct +=
                    !i || dead.offsets[i] != dead.offsets[i - 1];
        printf("  keel.inbox: %zu starts (%zu repeated), %zu signals (%zu "
               "repeated); keel.dlq: %d dead letters (%d distinct)\n",
               r->starts, r->start_repeats, r->signals, r->signal_repeats,
               r->dead_letters, r->dead_distinct);
}

/* The environment, the module, the routes' name and the workflow IDs'
 * prefix, unique to this run. */
static void begin(const char *test)
{
        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&procs, test), KEEL_OK);
        module = keel_test_env("KEEL_TEST_INGRESS_MODULE");
        snprintf(name, sizeof(name), "%s-%d", test, (int)getpid());
        snprintf(prefix, sizeof(prefix), "%s-%d-", test, (int)getpid());
}

/* ---- on the real Kafka test broker ------------------------------------ */

static void test_ingress_exactly_once_through_crashes(void)
{
        int n = e2e_env_int("KEEL_E2E_INGRESS_ORDERS", 10000);
        int kills = e2e_env_int("KEEL_E2E_INGRESS_KILLS", 5);
        static char instance[96];
        run_t r;

        begin("ingress");
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(e2e_create_topic(procs.bootstrap, ORDERS, 6), 0);
        CU_ASSERT_EQUAL_FATAL(e2e_create_topic(procs.bootstrap, PAYMENTS, 3),
                              0);
        /* Static membership: a restarted orchestrator takes its partitions
         * back at once, in both groups. */
        snprintf(instance, sizeof(instance), "kafka.group.instance.id=%s",
                 name);
        orch_extra[0] = "--ingress";
        orch_extra[1] = routes_path;
        orch_extra[2] = "-X";
        orch_extra[3] = instance;
        orch_extra[4] = NULL;
        run_ingress(n, 1000, kills, &r);
        CU_ASSERT(r.started);
        CU_ASSERT_EQUAL(r.kills_done, kills);
        CU_ASSERT_EQUAL(r.out.closed, n);
        CU_ASSERT_EQUAL(r.out.closed_twice, 0);
        CU_ASSERT_EQUAL(r.out.seq_violations, 0);
        CU_ASSERT_EQUAL(r.out.wrong, 0);
        /* read_committed on real Kafka: each command exactly once. */
        CU_ASSERT(r.read_inbox);
        CU_ASSERT_EQUAL(r.starts, (size_t)n);
        CU_ASSERT_EQUAL(r.start_repeats, 0);
        CU_ASSERT_EQUAL(r.signals, (size_t)((n + 19) / 20));
        CU_ASSERT_EQUAL(r.signal_repeats, 0);
        CU_ASSERT(r.read_dlq);
        CU_ASSERT_EQUAL(r.dead_letters, r.plan.dead);
        CU_ASSERT_EQUAL(r.dead_distinct, r.plan.dead);
        CU_ASSERT_EQUAL(r.dead_no_reason, 0);
}

/* A routes file naming a topic that does not exist: `keel ingress` and
 * keel-orchestrator --ingress refuse to start (exit 2) and name it, rather
 * than wait minutes for a metadata refresh. */
static void test_ingress_missing_source_topic_is_an_error(void)
{
        char keel[600], log[800], line[2048], bad_routes[720];
        char *argv[10];
        const char *extra[] = {"--ingress", bad_routes, NULL};
        int st, named = 0;
        pid_t pid;
        FILE *f;

        begin("ingress-missing");
        snprintf(bad_routes, sizeof(bad_routes), "%s/missing.json",
                 procs.workdir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(bad_routes, "w"));
        fprintf(f,
                "{\"routes\": [{\"topic\": \"no-such-topic-%d\", "
                "\"start\": \"order\", \"workflow_id\": \"key\"}]}\n",
                (int)getpid());
        fclose(f);
        snprintf(keel, sizeof(keel), "%s/keel",
                 keel_test_env("KEEL_TEST_BIN_DIR"));
        argv[0] = keel;
        argv[1] = "ingress";
        argv[2] = "--bootstrap";
        argv[3] = procs.bootstrap;
        argv[4] = "--routes";
        argv[5] = bad_routes;
        argv[6] = NULL;
        pid = e2e_spawn(&procs, "missing.log", argv);
        st = e2e_stop(pid, 0); /* signal 0: just wait for it */
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        pid = e2e_start_orchestrator(&procs, "missing.log", module, extra);
        st = e2e_stop(pid, 0);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 2);
        snprintf(log, sizeof(log), "%s/missing.log", procs.workdir);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(log, "r"));
        while (fgets(line, sizeof(line), f))
                named += strstr(line, "source topic no-such-topic-") &&
                         strstr(line, "is not there") &&
                         strstr(line, "create it first");
        fclose(f);
        CU_ASSERT_EQUAL(named, 2);
}

/* ---- on the dev broker -------------------------------------------------- */

static void test_ingress_once_per_record_on_the_dev_broker(void)
{
        int n = e2e_env_int("KEEL_E2E_INGRESS_DEV_ORDERS", 1000);
        int kills = e2e_env_int("KEEL_E2E_INGRESS_DEV_KILLS", 3);
        pid_t broker;
        run_t r;

        begin("ingress-dev");
        broker = e2e_start_dev_broker(&procs, 12, 400);
        CU_ASSERT_FATAL(broker > 0);
        /* No static membership there: short sessions instead, so that a
         * restarted member gets partitions soon. */
        orch_extra[0] = "--ingress";
        orch_extra[1] = routes_path;
        orch_extra[2] = "-X";
        orch_extra[3] = "kafka.session.timeout.ms=3000";
        orch_extra[4] = "-X";
        orch_extra[5] = "kafka.heartbeat.interval.ms=500";
        orch_extra[6] = NULL;
        run_ingress(n, 200, kills, &r);
        CU_ASSERT(r.started);
        CU_ASSERT_EQUAL(r.kills_done, kills);
        CU_ASSERT_EQUAL(r.out.closed, n);
        CU_ASSERT_EQUAL(r.out.closed_twice, 0);
        CU_ASSERT_EQUAL(r.out.seq_violations, 0);
        CU_ASSERT_EQUAL(r.out.wrong, 0);
        /* Aborted batches show here: repeats are allowed, but every
         * mapped record has its command and no other record has one. */
        CU_ASSERT(r.read_inbox);
        CU_ASSERT_EQUAL(r.starts, (size_t)n);
        CU_ASSERT_EQUAL(r.signals, (size_t)((n + 19) / 20));
        CU_ASSERT(r.read_dlq);
        CU_ASSERT_EQUAL(r.dead_distinct, r.plan.dead);
        CU_ASSERT_EQUAL(r.dead_no_reason, 0);
        e2e_stop(broker, SIGTERM);
}

static CU_TestInfo tests[] = {
    {"test_ingress_exactly_once_through_crashes",
     test_ingress_exactly_once_through_crashes},
    {"test_ingress_missing_source_topic_is_an_error",
     test_ingress_missing_source_topic_is_an_error},
    {"test_ingress_once_per_record_on_the_dev_broker",
     test_ingress_once_per_record_on_the_dev_broker},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("ingress_e2e", tests)

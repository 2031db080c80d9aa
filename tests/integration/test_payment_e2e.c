/*
 * test_payment_e2e.c: the payment example end to end on the real Kafka
 * test broker, through crashes. keel-orchestrator (with the payment
 * workflow module) and keel-payment-worker run as real processes; the
 * test starts KEEL_E2E_WORKFLOWS payment workflows (default 1000), half of
 * them with a refundApproved signal, while a thread kill -9s and restarts
 * the orchestrator KEEL_E2E_KILLS times (default 10) at random moments.
 *
 * An independent reader (e2e_support.h) follows keel.history by the reader
 * rules (claims, epochs, checkpoints) and checks what every reader would see:
 * each workflow closed exactly once, with the result the in-process test
 * environment (no Kafka, no crash) gives for the same input; every run's
 * seqs 1..n with no gap or duplicate; and the worker's effect log holds
 * exactly one charge per idempotency key. Last, the group
 * keel-orchestrator's committed offsets (for tools that show lag; the
 * orchestrator commits them outside its transactions) reach the end of
 * every keel.inbox partition while it runs, and stay there once it stops.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"
#include "payment.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static e2e_env_t procs; /* broker, programs, work directory */
static char prefix[64], effects[600];

/* ---- processes ------------------------------------------------------- */

static pid_t start_orchestrator(void)
{
        /* Static membership: a restarted orchestrator takes its partitions
         * back at once. */
        const char *extra[] = {"-X", "kafka.group.instance.id=e2e-orchestrator",
                               NULL};
        return e2e_start_orchestrator(&procs, "orchestrator.log", NULL, extra);
}

static pid_t start_worker(void)
{
        return e2e_start_worker(&procs, "worker.log", effects, NULL);
}

/* ---- the group's committed offsets ------------------------------------ */

/* How many keel.inbox partitions have the group keel-orchestrator's
 * committed offset at their end (the high watermark); -1 on an error. */
static int inbox_partitions_committed_to_end(void)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *l;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        char err[512];
        rd_kafka_t *c;
        int at_end = 0, parts;

        if (rd_kafka_conf_set(conf, "bootstrap.servers", procs.bootstrap, err,
                              sizeof(err)) ||
            rd_kafka_conf_set(conf, "group.id", "keel-orchestrator", err,
                              sizeof(err)) ||
            !(c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)))) {
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        rkt = rd_kafka_topic_new(c, KEEL_TOPIC_INBOX, NULL);
        if (rd_kafka_metadata(c, 0, rkt, &md, 10000) || md->topic_cnt != 1) {
                if (md)
                        rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
                rd_kafka_destroy(c);
                return -1;
        }
        parts = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        l = rd_kafka_topic_partition_list_new(parts);
        for (int p = 0; p < parts; p++)
                rd_kafka_topic_partition_list_add(l, KEEL_TOPIC_INBOX, p);
        if (rd_kafka_committed(c, l, 10000)) {
                at_end = -1;
        } else {
                for (int p = 0; p < parts; p++) {
                        int64_t lo, hi;
                        if (!rd_kafka_query_watermark_offsets(
                                c, KEEL_TOPIC_INBOX, p, &lo, &hi, 10000) &&
                            (l->elems[p].offset == hi || hi == 0))
                                at_end++;
                }
        }
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(c);
        return at_end;
}

/* ---- the crash driver ------------------------------------------------ */

static volatile pid_t orch_pid;
static volatile int kills_done, all_done;

static void *killer(void *arg)
{
        int kills = *(int *)arg;
        unsigned seed = (unsigned)getpid();
        for (int k = 0; k < kills && !all_done; k++) {
                /* a random moment: 0.3 to 1.2 s after the last start */
                e2e_sleep_ms(300 + rand_r(&seed) % 900);
                if (all_done)
                        break;
                e2e_stop(orch_pid, SIGKILL);
                orch_pid = start_orchestrator();
                kills_done++;
        }
        return NULL;
}

/* ---- the crash-free reference ---------------------------------------- */

static json_t *input_of(int i)
{
        return json_pack("{ss si si}", "order", "e2e", "amount", 100 + i,
                         "refund_window_ms", 20000);
}

/* What the test environment (no Kafka, no crash) gives for workflow i. */
static const char *reference_status(keel_registry_t *reg, int i)
{
        static char status[32];
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        json_t *r;
        for (size_t k = 0; k < payment_activities_cnt; k++)
                keel_testenv_register_activity(env, payment_activities[k].name,
                                               payment_activities[k].fn, NULL);
        keel_testenv_start(env, "ref", PAYMENT_WORKFLOW, input_of(i));
        if (i % 2 == 0)
                keel_testenv_signal(env, "ref", "refundApproved", NULL);
        keel_testenv_run(env);
        r = keel_testenv_result(env, "ref");
        snprintf(status, sizeof(status), "%s",
                 r && json_string_value(json_object_get(r, "status"))
                     ? json_string_value(json_object_get(r, "status"))
                     : "?");
        json_decref(r);
        keel_testenv_destroy(env);
        return status;
}

/* ---- the test --------------------------------------------------------- */

static void test_payment_e2e_through_orchestrator_crashes(void)
{
        int n = e2e_env_int("KEEL_E2E_WORKFLOWS", 1000);
        int kills = e2e_env_int("KEEL_E2E_KILLS", 10);
        int timeout_s = e2e_env_int("KEEL_E2E_TIMEOUT_S", 400);
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        keel_registry_t *reg = keel_registry_new();
        e2e_watch_t *w;
        pthread_t kt;
        pid_t worker;
        char err[1024];
        int64_t t0;
        int charges, wrong = 0, refunded = 0;

        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&procs, "e2e"), KEEL_OK);
        snprintf(effects, sizeof(effects), "%s/effects.log", procs.workdir);
        snprintf(prefix, sizeof(prefix), "e2e-%d-", (int)getpid());
        keel_config_set(cfg, "bootstrap", procs.bootstrap, NULL, NULL, 0);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        payment_register_workflow(reg);

        orch_pid = start_orchestrator();
        worker = start_worker();
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        t0 = e2e_now_ms();
        pthread_create(&kt, NULL, killer, &kills);
        for (int i = 0; i < n; i++) {
                char id[128];
                json_t *in = input_of(i);
                int rc;
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                rc = e2e_start_payment(client, id, in, i % 2 == 0, err,
                                       sizeof(err));
                json_decref(in);
                if (rc)
                        fprintf(stderr, "%s: %s\n", id, err);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        }
        fprintf(stderr, "started %d workflows in %lld ms\n", n,
                (long long)(e2e_now_ms() - t0));

        w = e2e_watch_new(procs.bootstrap, prefix, n, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        e2e_watch_until(w, t0 + (int64_t)timeout_s * 1000, e2e_watch_all_closed,
                        NULL);
        all_done = 1;
        pthread_join(kt, NULL);
        fprintf(stderr,
                "%d/%d closed in %lld ms, %d orchestrator kills, %d seq "
                "violations\n",
                w->closed, n, (long long)(e2e_now_ms() - t0), kills_done,
                w->seq_violations);
        /* The worker first: no result comes after the last one read. Then
         * the orchestrator reads the inbox to its end and commits every
         * 200 ms. */
        e2e_stop(worker, SIGTERM);
        {
                int64_t until = e2e_now_ms() + 15000;
                int at_end;
                while ((at_end = inbox_partitions_committed_to_end()) !=
                           E2E_PARTITIONS &&
                       e2e_now_ms() < until)
                        e2e_sleep_ms(200);
                fprintf(stderr,
                        "inbox partitions with the group's offset at their "
                        "end while the orchestrator runs: %d\n",
                        at_end);
                CU_ASSERT_EQUAL(at_end, E2E_PARTITIONS);
        }
        e2e_stop(orch_pid, SIGTERM);
        CU_ASSERT_EQUAL(inbox_partitions_committed_to_end(), E2E_PARTITIONS);

        CU_ASSERT_EQUAL(w->closed, n);
        CU_ASSERT_EQUAL(kills_done, kills);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        {
                /* The reference for even and odd inputs (the result does not
                 * depend on the amount). */
                char ref_even[32], ref_odd[32];
                snprintf(ref_even, sizeof(ref_even), "%s",
                         reference_status(reg, 0));
                snprintf(ref_odd, sizeof(ref_odd), "%s",
                         reference_status(reg, 1));
                CU_ASSERT_STRING_EQUAL(ref_even, "refunded");
                CU_ASSERT_STRING_EQUAL(ref_odd, "completed");
                for (int i = 0; i < n; i++) {
                        e2e_wf_t *wf = &w->wfs[i];
                        if (wf->closes != 1 ||
                            strcmp(wf->status,
                                   i % 2 == 0 ? ref_even : ref_odd)) {
                                if (wrong++ < 10)
                                        fprintf(stderr,
                                                "%s: closed %d times, %s\n",
                                                wf->id, wf->closes, wf->status);
                        }
                        if (!strcmp(wf->status, "refunded"))
                                refunded++;
                }
                CU_ASSERT_EQUAL(wrong, 0);
                CU_ASSERT_EQUAL(refunded, (n + 1) / 2);
        }
        /* exactly one charge per idempotency key, for every workflow */
        {
                int *per_wf = calloc((size_t)n, sizeof(*per_wf));
                int dup = 0;
                CU_ASSERT_PTR_NOT_NULL_FATAL(per_wf);
                charges = e2e_effects_count(effects, "chargeCard", w, per_wf);
                CU_ASSERT_NOT_EQUAL_FATAL(charges, -1);
                for (int i = 0; i < n; i++)
                        if (per_wf[i] > 1)
                                dup += per_wf[i] - 1;
                CU_ASSERT_EQUAL(dup, 0);
                CU_ASSERT_EQUAL(charges, n);
                free(per_wf);
        }
        e2e_watch_destroy(w);
        keel_client_destroy(client);
        keel_registry_destroy(reg);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {{"test_payment_e2e_through_orchestrator_crashes",
                               test_payment_e2e_through_orchestrator_crashes},
                              CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("payment_e2e", tests)

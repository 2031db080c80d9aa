/*
 * test_payment_e2e.c: the payment example end to end on the real Kafka
 * test broker, through crashes. keel-orchestrator (with the payment
 * workflow module) and keel-payment-worker run as real processes; the
 * test starts KEEL_E2E_WORKFLOWS payment workflows (default 1000), half of
 * them with a refundApproved signal, while a thread kill -9s and restarts
 * the orchestrator KEEL_E2E_KILLS times (default 10) at random moments.
 *
 * An independent reader follows keel.history by the reader rules (claims,
 * epochs, checkpoints) and checks what every reader would see: each
 * workflow closed exactly once, with the result the in-process test
 * environment (no Kafka, no crash) gives for the same input; every run's
 * seqs 1..n with no gap or duplicate; and the worker's effect log holds
 * exactly one charge per idempotency key.
 */
#include "history_int.h"
#include "keel/keel.h"
#include "keel_test.h"
#include "payment.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char bootstrap[256], workdir[512], prefix[64];
static const char *bindir, *module;

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static int env_int(const char *name, int dflt)
{
        const char *v = getenv(name);
        return v && *v ? atoi(v) : dflt;
}

/* ---- processes ------------------------------------------------------- */

static pid_t spawn(const char *logname, char *const argv[])
{
        char path[700];
        pid_t pid;
        snprintf(path, sizeof(path), "%s/%s", workdir, logname);
        pid = fork();
        if (pid == 0) {
                int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static void stop(pid_t pid, int sig)
{
        int st;
        if (pid <= 0)
                return;
        kill(pid, sig);
        for (int i = 0; i < 300; i++) {
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return;
                sleep_ms(100);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
}

static char orch_bin[512], worker_bin[512], effects[600];

static pid_t start_orchestrator(void)
{
        char *argv[] = {orch_bin, "--bootstrap", bootstrap, "--workflows",
                        (char *)module,
                        /* Static membership: a restarted orchestrator
                         * takes its partitions back at once. */
                        "-X", "kafka.group.instance.id=e2e-orchestrator",
                        "--log-level", "info", NULL};
        return spawn("orchestrator.log", argv);
}

static pid_t start_worker(void)
{
        char *argv[] = {worker_bin, "--bootstrap",   bootstrap, "--effects",
                        effects,    "--concurrency", "16",      NULL};
        return spawn("worker.log", argv);
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
                sleep_ms(300 + rand_r(&seed) % 900);
                if (all_done)
                        break;
                stop(orch_pid, SIGKILL);
                orch_pid = start_orchestrator();
                kills_done++;
        }
        return NULL;
}

/* ---- the independent reader ------------------------------------------ */

typedef struct wf_s {
        char id[128];
        char run[40];
        int64_t last_seq;
        int closes;
        char status[32]; /* the result's status, or the close type */
} wf_t;

static wf_t *wfs;
static int n_wfs, closed, seq_violations;

static wf_t *find_wf(const char *id)
{
        /* ids are "<prefix><i>" */
        size_t pl = strlen(prefix);
        int i;
        if (strncmp(id, prefix, pl))
                return NULL;
        i = atoi(id + pl);
        return i >= 0 && i < n_wfs ? &wfs[i] : NULL;
}

static void apply_event(void *opaque, const json_t *ev)
{
        const json_t *rec = json_object_get(ev, "record");
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *id = json_string_value(json_object_get(rec, "workflow_id"));
        const char *run = json_string_value(json_object_get(rec, "run_id"));
        int64_t seq = json_integer_value(json_object_get(rec, "seq"));
        wf_t *w = id ? find_wf(id) : NULL;
        (void)opaque;
        if (!w)
                return;
        if (strcmp(w->run, run)) {
                if (seq != 1)
                        seq_violations++;
                snprintf(w->run, sizeof(w->run), "%s", run);
                w->last_seq = 0;
        }
        if (seq != w->last_seq + 1) {
                seq_violations++;
                if (seq_violations < 10)
                        fprintf(stderr, "%s: seq %lld after %lld (%s)\n", id,
                                (long long)seq, (long long)w->last_seq, type);
        }
        if (seq > w->last_seq)
                w->last_seq = seq;
        if (!strcmp(type, "keel.history.WorkflowCompleted")) {
                json_t *r = json_loads(
                    json_string_value(json_object_get(rec, "result")), 0, NULL);
                snprintf(w->status, sizeof(w->status), "%s",
                         json_string_value(json_object_get(r, "status"))
                             ? json_string_value(json_object_get(r, "status"))
                             : "?");
                json_decref(r);
        } else if (!strcmp(type, "keel.history.WorkflowFailed") ||
                   !strcmp(type, "keel.history.WorkflowCancelled") ||
                   !strcmp(type, "keel.history.WorkflowTerminated")) {
                snprintf(w->status, sizeof(w->status), "%s", type + 13);
        } else {
                return;
        }
        if (w->closes++ == 0)
                closed++;
}

/* Follow keel.history until every workflow closed or the deadline. */
static void watch(int64_t deadline)
{
        keel_config_t *cfg = keel_config_new();
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *tl;
        keel__history_reader_t readers[64];
        char err[512];
        rd_kafka_t *c;

        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "group.id", prefix, err, sizeof(err));
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                          sizeof(err));
        c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        tl = rd_kafka_topic_partition_list_new(12);
        for (int p = 0; p < 12; p++) {
                keel__history_reader_init(&readers[p], apply_event, NULL);
                rd_kafka_topic_partition_list_add(tl, KEEL_TOPIC_HISTORY, p)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_assign(c, tl);
        rd_kafka_topic_partition_list_destroy(tl);
        while (closed < n_wfs && now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
                if (!m)
                        continue;
                if (!m->err && m->partition >= 0 && m->partition < 12)
                        keel__history_reader_feed(&readers[m->partition],
                                                  m->payload, m->len, err,
                                                  sizeof(err));
                rd_kafka_message_destroy(m);
        }
        for (int p = 0; p < 12; p++)
                keel__history_reader_destroy(&readers[p]);
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        keel_config_destroy(cfg);
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
        int n = env_int("KEEL_E2E_WORKFLOWS", 1000);
        int kills = env_int("KEEL_E2E_KILLS", 10);
        int timeout_s = env_int("KEEL_E2E_TIMEOUT_S", 400);
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        keel_registry_t *reg = keel_registry_new();
        pthread_t kt;
        pid_t worker;
        char err[1024];
        int64_t t0;
        int charges = 0, wrong = 0, refunded = 0;
        FILE *f;

        {
                FILE *bf = fopen(keel_test_env("KEEL_TEST_KAFKA_FILE"), "r");
                CU_ASSERT_PTR_NOT_NULL_FATAL(bf);
                CU_ASSERT_PTR_NOT_NULL_FATAL(
                    fgets(bootstrap, sizeof(bootstrap), bf));
                fclose(bf);
                bootstrap[strcspn(bootstrap, "\r\n")] = '\0';
        }
        bindir = keel_test_env("KEEL_TEST_BIN_DIR");
        module = keel_test_env("KEEL_TEST_PAYMENT_MODULE");
        snprintf(orch_bin, sizeof(orch_bin), "%s/keel-orchestrator", bindir);
        snprintf(worker_bin, sizeof(worker_bin), "%s/keel-payment-worker",
                 bindir);
        snprintf(workdir, sizeof(workdir), "%s/e2e-%d",
                 keel_test_env("KEEL_TEST_WORK_DIR"), (int)getpid());
        mkdir(workdir, 0755);
        snprintf(effects, sizeof(effects), "%s/effects.log", workdir);
        snprintf(prefix, sizeof(prefix), "e2e-%d-", (int)getpid());
        keel_config_set(cfg, "bootstrap", bootstrap, NULL, NULL, 0);
        {
                const char *queues[] = {PAYMENT_QUEUE};
                int rc = keel_topics_create(cfg, 12, 1, queues, 1, NULL, NULL,
                                            err, sizeof(err));
                if (rc)
                        fprintf(stderr, "topics: %s\n", err);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        }
        n_wfs = n;
        wfs = calloc((size_t)n, sizeof(*wfs));
        payment_register_workflow(reg);

        orch_pid = start_orchestrator();
        worker = start_worker();
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        t0 = now_ms();
        pthread_create(&kt, NULL, killer, &kills);
        for (int i = 0; i < n; i++) {
                char id[128];
                json_t *in = input_of(i);
                int rc;
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                snprintf(wfs[i].id, sizeof(wfs[i].id), "%s", id);
                rc = keel_client_start(client, id, PAYMENT_WORKFLOW, in, NULL,
                                       NULL, err, sizeof(err));
                if (!rc && i % 2 == 0)
                        rc = keel_client_signal(client, id, NULL,
                                                "refundApproved", NULL, 0, err,
                                                sizeof(err));
                json_decref(in);
                if (rc)
                        fprintf(stderr, "%s: %s\n", id, err);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        }
        fprintf(stderr, "started %d workflows in %lld ms\n", n,
                (long long)(now_ms() - t0));

        watch(t0 + (int64_t)timeout_s * 1000);
        all_done = 1;
        pthread_join(kt, NULL);
        fprintf(stderr,
                "%d/%d closed in %lld ms, %d orchestrator kills, %d seq "
                "violations\n",
                closed, n, (long long)(now_ms() - t0), kills_done,
                seq_violations);
        stop(orch_pid, SIGTERM);
        stop(worker, SIGTERM);

        CU_ASSERT_EQUAL(closed, n);
        CU_ASSERT_EQUAL(kills_done, kills);
        CU_ASSERT_EQUAL(seq_violations, 0);
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
                        if (wfs[i].closes != 1 ||
                            strcmp(wfs[i].status,
                                   i % 2 == 0 ? ref_even : ref_odd)) {
                                if (wrong++ < 10)
                                        fprintf(stderr,
                                                "%s: closed %d times, %s\n",
                                                wfs[i].id, wfs[i].closes,
                                                wfs[i].status);
                        }
                        if (!strcmp(wfs[i].status, "refunded"))
                                refunded++;
                }
                CU_ASSERT_EQUAL(wrong, 0);
                CU_ASSERT_EQUAL(refunded, (n + 1) / 2);
        }
        /* exactly one charge per idempotency key, for every workflow */
        f = fopen(effects, "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        {
                char line[512];
                char *seen = calloc((size_t)n, 1);
                int dup = 0;
                while (fgets(line, sizeof(line), f)) {
                        char *key = strchr(line, '\t');
                        wf_t *w;
                        if (strncmp(line, "chargeCard\t", 11) || !key)
                                continue;
                        key++;
                        key[strcspn(key, "/")] = '\0';
                        if (!(w = find_wf(key)))
                                continue;
                        if (seen[w - wfs]++)
                                dup++;
                        charges++;
                }
                CU_ASSERT_EQUAL(dup, 0);
                CU_ASSERT_EQUAL(charges, n);
                free(seen);
        }
        fclose(f);
        keel_client_destroy(client);
        keel_registry_destroy(reg);
        keel_config_destroy(cfg);
        free(wfs);
}

static CU_TestInfo tests[] = {{"test_payment_e2e_through_orchestrator_crashes",
                               test_payment_e2e_through_orchestrator_crashes},
                              CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("payment_e2e", tests)

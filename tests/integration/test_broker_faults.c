/*
 * test_broker_faults.c: payment workflows exactly once through broker
 * faults injected with the dev broker's fault API (its control port,
 * docs/cli.md).
 *
 * A dev broker of the test's own (`keel dev-broker --brokers 3
 * --control-file F`: librdkafka's mock cluster), keel-orchestrator with
 * the payment module and keel-payment-worker run as real processes. The
 * test starts KEEL_FAULT_WORKFLOWS payment workflows (default 500; the
 * even ones get the refundApproved signal), a few a second, while a
 * driver thread injects faults through the control port in rounds, in
 * turn: request errors on Produce, Fetch, AddPartitionsToTxn, EndTxn,
 * JoinGroup (with Heartbeat errors that make the groups rejoin),
 * FindCoordinator (then the kill), InitProducerId, AddOffsetsToTxn,
 * TxnOffsetCommit and OffsetCommit; errors librdkafka does not retry (an
 * abortable AddPartitionsToTxn, a fenced EndTxn); Metadata errors for a
 * topic; a broker down then up; partition leaders moved; 50-500 ms of
 * round-trip delay; and one kill -9 of the orchestrator.
 *
 * Then what a user would see: every workflow closed exactly once with its
 * result (refunded with the signal, completed without), every history's
 * seqs 1..n with no gap or duplicate (the keel.history watcher, which
 * applies the reader rules), and exactly one chargeCard effect per
 * workflow in the worker's effect log. Request errors go onto every
 * broker's own error stack, so the test also counts how many of them the
 * brokers returned to a client, and asserts the six named first were hit.
 *
 * Three shorter tests pin what these faults found: a task queue's topic
 * unavailable for a moment, a partition whose reopening fails for a
 * while, results that reached the inbox while no orchestrator was there.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"
#include "payment.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BROKERS 3

static e2e_env_t procs; /* broker, programs, work directory */
static char prefix[64], effects[600];
static int ctl_port;
static volatile pid_t orch_pid;

/* ---- processes ------------------------------------------------------- */

/* Short sessions for both groups. The dev broker lacks static
 * membership: a killed orchestrator's partitions move once its session
 * expires. And its group coordinator waits session.timeout.ms - 1 s for
 * members to rejoin whenever a member rejoins on its own (after a
 * Heartbeat error, say), even the only one: with librdkafka's default of
 * 45 s a worker would take no task for that long. */
static const char *const short_session[] = {
    "-X", "kafka.session.timeout.ms=6000", "-X",
    "kafka.heartbeat.interval.ms=500", NULL};

static pid_t start_orchestrator(void)
{
        return e2e_start_orchestrator(&procs, "orchestrator.log", NULL,
                                      short_session);
}

/* The worker; KEEL_FAULT_WORKER_DEBUG=1 logs every task it starts and
 * every result it delivers (worker.log), to follow an activity. */
static pid_t start_worker(void)
{
        const char *extra[8];
        int n = 0;
        for (; short_session[n]; n++)
                extra[n] = short_session[n];
        if (e2e_env_int("KEEL_FAULT_WORKER_DEBUG", 0)) {
                extra[n++] = "--log-level";
                extra[n++] = "debug";
        }
        extra[n] = NULL;
        return e2e_start_worker(&procs, "worker.log", effects, extra);
}

/*
 * What each test runs: a dev broker of its own (`keel dev-broker --brokers
 * B` with the payments queue and the control port; it stops by itself
 * after lifetime_s whatever happens to the test), keel-orchestrator once
 * it has its partitions, keel-payment-worker and a client. Work directory
 * and workflow IDs are named after `name`.
 */
typedef struct faultrun_s {
        keel_config_t *cfg;
        keel_client_t *client;
        pid_t broker, worker;
} faultrun_t;

static void run_start(faultrun_t *fr, const char *name, const char *brokers,
                      int lifetime_s)
{
        char ctlfile[700], err[1024];
        const char *args[] = {"--brokers",   brokers,          "--task-queue",
                              PAYMENT_QUEUE, "--control-file", ctlfile,
                              NULL};

        memset(fr, 0, sizeof(*fr));
        e2e_env_init_local(&procs, name);
        snprintf(effects, sizeof(effects), "%s/effects.log", procs.workdir);
        snprintf(ctlfile, sizeof(ctlfile), "%s/dev-broker.control",
                 procs.workdir);
        snprintf(prefix, sizeof(prefix), "%s-%d-", name, (int)getpid());
        fr->broker =
            e2e_start_dev_broker_args(&procs, E2E_PARTITIONS, lifetime_s, args);
        CU_ASSERT_FATAL(fr->broker > 0);
        ctl_port = e2e_read_port(ctlfile, e2e_now_ms() + 10000);
        CU_ASSERT_FATAL(ctl_port > 0);
        fr->cfg = keel_config_new();
        keel_config_set(fr->cfg, "bootstrap", procs.bootstrap, NULL, NULL, 0);
        fr->client = keel_client_new(fr->cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(fr->client);
        orch_pid = start_orchestrator();
        fr->worker = start_worker();
        for (int i = 0; i < 300 && !e2e_log_count(&procs, "orchestrator.log",
                                                  "msg=assigned");
             i++)
                e2e_sleep_ms(100);
        CU_ASSERT_FATAL(
            e2e_log_count(&procs, "orchestrator.log", "msg=assigned") > 0);
}

static void run_stop(faultrun_t *fr)
{
        e2e_stop(orch_pid, SIGTERM);
        e2e_stop(fr->worker, SIGTERM);
        keel_client_destroy(fr->client);
        keel_config_destroy(fr->cfg);
        e2e_stop(fr->broker, SIGTERM);
}

/* ---- the faults ------------------------------------------------------ */

typedef enum {
        F_ERRORS, /* request errors pushed for one API on every broker */
        F_DOWN,   /* a broker down, then up */
        F_RTT,    /* round-trip delay on every broker */
        F_LEADER, /* partition leaders moved */
        F_TOPIC,  /* a topic's Metadata answered with an error */
        F_KILL,   /* kill -9 of the orchestrator (first cycle only) */
} fault_type_t;

typedef struct fault_s {
        const char *name;
        fault_type_t type;
        const char *api;  /* F_ERRORS: the request */
        const char *errs; /* F_ERRORS: errors, in turn */
        int count;        /* F_ERRORS: errors per broker per round */
        int must_hit;     /* assert that brokers returned some */
        /* the tally */
        int rounds;
        long pushed;
} fault_t;

/* Request errors for api, count per broker a round; hit: the brokers
 * must have returned some by the end. */
#define ERRORS(nm, a, e, n, hit)                                               \
        {                                                                      \
                .name = nm, .type = F_ERRORS, .api = a, .errs = e, .count = n, \
                .must_hit = hit                                                \
        }
#define OTHER(nm, t)                                                           \
        {                                                                      \
                .name = nm, .type = t                                          \
        }

static fault_t faults[] = {
    ERRORS("Produce errors", "Produce",
           "NOT_LEADER_FOR_PARTITION,REQUEST_TIMED_OUT,NOT_ENOUGH_REPLICAS,"
           "_TRANSPORT",
           4, 1),
    ERRORS("Fetch errors", "Fetch",
           "NOT_LEADER_FOR_PARTITION,REQUEST_TIMED_OUT,_TRANSPORT", 4, 1),
    ERRORS("AddPartitionsToTxn errors", "AddPartitionsToTxn",
           "CONCURRENT_TRANSACTIONS,COORDINATOR_LOAD_IN_PROGRESS,"
           "NOT_COORDINATOR,COORDINATOR_NOT_AVAILABLE",
           4, 1),
    OTHER("broker down", F_DOWN),
    ERRORS("EndTxn errors", "EndTxn",
           "NOT_COORDINATOR,COORDINATOR_NOT_AVAILABLE,CONCURRENT_TRANSACTIONS,"
           "COORDINATOR_LOAD_IN_PROGRESS",
           4, 1),
    /* JoinGroup errors, then Heartbeat errors that make the groups
     * rejoin. */
    ERRORS("JoinGroup errors", "JoinGroup",
           "COORDINATOR_LOAD_IN_PROGRESS,NOT_COORDINATOR,"
           "COORDINATOR_NOT_AVAILABLE",
           3, 1),
    ERRORS("Heartbeat errors", "Heartbeat", "REBALANCE_IN_PROGRESS", 1, 0),
    OTHER("round-trip delay", F_RTT),
    /* FindCoordinator errors, then a kill: the new orchestrator looks its
     * coordinators up, and makes new producers (InitProducerId). */
    ERRORS("FindCoordinator errors", "FindCoordinator",
           "COORDINATOR_NOT_AVAILABLE,_TRANSPORT", 3, 1),
    OTHER("kill -9 orchestrator", F_KILL),
    ERRORS("InitProducerId errors", "InitProducerId",
           "COORDINATOR_LOAD_IN_PROGRESS,CONCURRENT_TRANSACTIONS,"
           "NOT_COORDINATOR",
           3, 0),
    OTHER("leader moves", F_LEADER),
    ERRORS("AddOffsetsToTxn errors", "AddOffsetsToTxn",
           "CONCURRENT_TRANSACTIONS,NOT_COORDINATOR,COORDINATOR_NOT_AVAILABLE",
           3, 0),
    ERRORS("TxnOffsetCommit errors", "TxnOffsetCommit",
           "COORDINATOR_LOAD_IN_PROGRESS,NOT_COORDINATOR,"
           "COORDINATOR_NOT_AVAILABLE",
           3, 0),
    ERRORS("OffsetCommit errors", "OffsetCommit",
           "COORDINATOR_LOAD_IN_PROGRESS,NOT_COORDINATOR,REQUEST_TIMED_OUT", 3,
           0),
    /* The mock answers Metadata (and AddPartitionsToTxn) for a topic
     * with the topic's error: it takes no request errors for Metadata. */
    OTHER("topic errors", F_TOPIC),
    /* Errors librdkafka does not retry: the transaction must be aborted,
     * or the producer is fenced. */
    ERRORS("abortable AddPartitionsToTxn", "AddPartitionsToTxn",
           "TOPIC_AUTHORIZATION_FAILED", 1, 0),
    ERRORS("fenced EndTxn", "EndTxn", "PRODUCER_FENCED", 1, 0),
};
#define NFAULTS (sizeof(faults) / sizeof(faults[0]))

static volatile int all_done, kills_done, control_errors;
static int cycles_done;
static int leader_moves, downs, rtts, topic_errors;

/* A control command; a refused one is counted (and fails the test). */
static int control(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int control(const char *fmt, ...)
{
        char cmd[512], reply[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        if (e2e_dev_broker_control(ctl_port, cmd, reply, sizeof(reply))) {
                fprintf(stderr, "control '%s': %s\n", cmd, reply);
                control_errors++;
                return -1;
        }
        return 0;
}

/* How many request errors pushed for api are still on the brokers'
 * stacks (-1 if the broker cannot say). */
static long pending_of(const char *api)
{
        char cmd[128], reply[256];
        snprintf(cmd, sizeof(cmd), "pending all %s", api);
        if (e2e_dev_broker_control(ctl_port, cmd, reply, sizeof(reply)))
                return -1;
        return atol(reply + 3);
}

static void sleep_random(unsigned *seed, int lo, int hi)
{
        e2e_sleep_ms(lo + (int)(rand_r(seed) % (unsigned)(hi - lo)));
}

/* One round of fault f: inject, hold 1-3 s, undo. */
static void round_of(fault_t *f, unsigned *seed)
{
        static const char *const topics[] = {
            KEEL_TOPIC_INBOX, KEEL_TOPIC_HISTORY, "keel.tasks." PAYMENT_QUEUE};
        int b = 1 + (int)(rand_r(seed) % BROKERS);

        switch (f->type) {
        case F_ERRORS:
                if (!control("broker-error all %s %d %s", f->api, f->count,
                             f->errs))
                        f->pushed += (long)f->count * BROKERS;
                sleep_random(seed, 1000, 3000);
                break;
        case F_DOWN:
                control("down %d", b);
                downs++;
                sleep_random(seed, 1000, 4000);
                control("up %d", b);
                break;
        case F_RTT: {
                int ms = 50 + (int)(rand_r(seed) % 451);
                control("rtt all %d", ms);
                rtts++;
                sleep_random(seed, 2000, 4000);
                control("rtt all 0");
                break;
        }
        case F_LEADER:
                for (int k = 0; k < 6; k++) {
                        control("leader %s %d %d", topics[k % 3],
                                (int)(rand_r(seed) % E2E_PARTITIONS),
                                1 + (int)(rand_r(seed) % BROKERS));
                        leader_moves++;
                }
                sleep_random(seed, 1000, 3000);
                break;
        case F_TOPIC: {
                const char *t = topics[rand_r(seed) % 3];
                control("topic-error %s LEADER_NOT_AVAILABLE", t);
                topic_errors++;
                sleep_random(seed, 1000, 3000);
                control("topic-error %s NO_ERROR", t);
                break;
        }
        case F_KILL:
                if (cycles_done > 0)
                        return;
                e2e_stop(orch_pid, SIGKILL);
                orch_pid = start_orchestrator();
                kills_done++;
                sleep_random(seed, 1000, 3000);
                break;
        }
        f->rounds++;
}

/* Rounds of every fault in turn, a pause of 0.3-1 s between them, until
 * the workflows are done and at least one full cycle ran. */
static void *driver(void *arg)
{
        unsigned seed = (unsigned)getpid();
        (void)arg;
        while (!all_done || cycles_done < 1) {
                for (size_t i = 0; i < NFAULTS && (!all_done || !cycles_done);
                     i++) {
                        round_of(&faults[i], &seed);
                        sleep_random(&seed, 300, 1000);
                }
                cycles_done++;
        }
        control("clear");
        return NULL;
}

/* Print the rounds of every fault, then per API the request errors
 * pushed and how many the brokers returned to a client; assert that
 * every fault ran and the brokers returned errors of every must_hit
 * API. */
static void print_tally(void)
{
        fprintf(stderr, "%-30s %7s %8s\n", "fault", "rounds", "pushed");
        for (size_t i = 0; i < NFAULTS; i++) {
                char pushed[32] = "-";
                if (faults[i].type == F_ERRORS)
                        snprintf(pushed, sizeof(pushed), "%ld",
                                 faults[i].pushed);
                fprintf(stderr, "%-30s %7d %8s\n", faults[i].name,
                        faults[i].rounds, pushed);
                CU_ASSERT(faults[i].rounds > 0);
        }
        fprintf(stderr, "\n%-30s %8s %9s\n", "request errors of", "pushed",
                "returned");
        for (size_t i = 0; i < NFAULTS; i++) {
                const char *api = faults[i].api;
                long pushed = 0, pending;
                int hit = 0, first = 1;
                for (size_t k = 0; api && k < NFAULTS; k++)
                        if (faults[k].api && !strcmp(faults[k].api, api)) {
                                first &= k >= i;
                                pushed += faults[k].pushed;
                                hit |= faults[k].must_hit;
                        }
                if (!api || !first)
                        continue;
                pending = pending_of(api);
                CU_ASSERT(pending >= 0);
                fprintf(stderr, "%-30s %8ld %9ld\n", api, pushed,
                        pushed - pending);
                if (hit)
                        CU_ASSERT(pushed - pending > 0);
        }
        fprintf(stderr,
                "%d brokers down and up, %d leader moves, %d delays, %d topic "
                "errors, %d orchestrator kills, %d driver cycles\n",
                downs, leader_moves, rtts, topic_errors, kills_done,
                cycles_done);
}

/* What keel did about the faults, from the orchestrators' log and the
 * workflows' histories. Figures, not assertions: how often a fault makes
 * a transaction fail or an activity time out is up to timing. */
static void print_recovery(e2e_watch_t *w)
{
        int timeouts = 0, retries = 0;
        char path[700];
        FILE *f;

        /* Every timeout, to set beside the broker's log of faults. */
        snprintf(path, sizeof(path), "%s/activity-timeouts.log", procs.workdir);
        f = fopen(path, "w");
        for (int i = 0; i < w->n; i++) {
                const json_t *ev;
                for (int k = 0; (ev = e2e_wf_event(
                                     &w->wfs[i], "ActivityTimedOut", NULL, k));
                     k++) {
                        timeouts++;
                        if (f)
                                fprintf(f, "%lld %s %s attempt=%lld %s\n",
                                        (long long)json_integer_value(
                                            json_object_get(ev, "ts")),
                                        w->wfs[i].id,
                                        json_string_value(
                                            json_object_get(ev, "activity_id")),
                                        (long long)json_integer_value(
                                            json_object_get(ev, "attempt")),
                                        json_string_value(json_object_get(
                                            ev, "timeout_type")));
                }
                for (int k = 0;
                     e2e_wf_event(&w->wfs[i], "ActivityRetried", NULL, k); k++)
                        retries++;
        }
        if (f)
                fclose(f);
        fprintf(
            stderr,
            "orchestrator: %d assignments, %d partitions taken, %d failed "
            "transactions, %d failed claims, %d given up as fenced, %d "
            "takes tried again; workflows: %d activity timeouts, %d "
            "activity retries\n",
            e2e_log_count(&procs, "orchestrator.log", "msg=assigned"),
            e2e_log_count(&procs, "orchestrator.log", "msg=claimed"),
            e2e_log_count(&procs, "orchestrator.log", "transaction failed\""),
            e2e_log_count(&procs, "orchestrator.log",
                          "committing the claim failed"),
            e2e_log_count(&procs, "orchestrator.log", "msg=\"fenced:"),
            e2e_log_count(&procs, "orchestrator.log", "trying again\" in_ms"),
            timeouts, retries);
}

/* ---- the test --------------------------------------------------------- */

static json_t *input_of(int i)
{
        return json_pack("{ss si si}", "order", "fault", "amount", 100 + i,
                         "refund_window_ms", 20000);
}

/* Bad commands get an error line, and the broker goes on. */
static void check_bad_commands(void)
{
        static const char *const bad[] = {
            "bogus",
            "error Nope 5 NOT_LEADER_FOR_PARTITION",
            "error Produce 0 NOT_LEADER_FOR_PARTITION",
            "error Produce 5 NOT_AN_ERROR",
            "down 4",
            "rtt all -1",
            "leader keel.inbox x 1",
            "broker-error 1 Fetch",
        };
        char reply[1024];
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char cmd[128];
                snprintf(cmd, sizeof(cmd), "%s", bad[i]);
                CU_ASSERT_EQUAL(
                    e2e_dev_broker_control(ctl_port, cmd, reply, sizeof(reply)),
                    -1);
                CU_ASSERT_EQUAL(strncmp(reply, "error ", 6), 0);
        }
        CU_ASSERT_EQUAL(
            e2e_dev_broker_control(ctl_port, "help", reply, sizeof(reply)), 0);
}

static void test_faults_payments_exactly_once(void)
{
        int n = e2e_env_int("KEEL_FAULT_WORKFLOWS", 500);
        int rate = e2e_env_int("KEEL_FAULT_RATE", 10); /* starts a second */
        int timeout_s = e2e_env_int("KEEL_FAULT_TIMEOUT_S", 600);
        faultrun_t fr;
        e2e_watch_t *w;
        pthread_t dt;
        char err[1024];
        int64_t t0;
        int wrong = 0, refunded = 0, retries = 0, charges, dup = 0, none = 0;
        int *per_wf;

        run_start(&fr, "faults", "3", timeout_s + 300);
        check_bad_commands();
        t0 = e2e_now_ms();
        pthread_create(&dt, NULL, driver, NULL);
        for (int i = 0; i < n; i++) {
                char id[128];
                json_t *in = input_of(i);
                int rc;
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                /* A start can time out while a broker is away; a user
                 * tries again (the workflow ID makes that safe). */
                for (int t = 0; t < 5; t++) {
                        rc = e2e_start_payment(fr.client, id, in, i % 2 == 0,
                                               err, sizeof(err));
                        if (!rc)
                                break;
                        fprintf(stderr, "%s: %s (trying again)\n", id, err);
                        retries++;
                        e2e_sleep_ms(1000);
                }
                json_decref(in);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
                if (rate > 0)
                        e2e_sleep_ms(1000 / rate);
        }
        fprintf(stderr, "started %d workflows in %lld ms (%d retried)\n", n,
                (long long)(e2e_now_ms() - t0), retries);

        w = e2e_watch_new(procs.bootstrap, prefix, n, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        e2e_watch_until(w, t0 + (int64_t)timeout_s * 1000, e2e_watch_all_closed,
                        NULL);
        all_done = 1;
        pthread_join(dt, NULL);
        fprintf(stderr,
                "%d/%d closed in %lld ms, %d seq violations, %llu fenced and "
                "%llu torn records skipped by the watcher\n",
                w->closed, n, (long long)(e2e_now_ms() - t0), w->seq_violations,
                (unsigned long long)w->fenced, (unsigned long long)w->torn);

        print_tally();
        print_recovery(w);
        CU_ASSERT_EQUAL(control_errors, 0);
        CU_ASSERT_EQUAL(kills_done, 1);
        /* The dev broker survived it all. */
        CU_ASSERT_EQUAL(kill(fr.broker, 0), 0);
        e2e_stop(orch_pid, SIGTERM);
        e2e_stop(fr.worker, SIGTERM);
        orch_pid = fr.worker = 0;

        /* Every workflow closed once, with its result. */
        CU_ASSERT_EQUAL(w->closed, n);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        for (int i = 0; i < n; i++) {
                e2e_wf_t *wf = &w->wfs[i];
                if (wf->closes != 1 ||
                    strcmp(wf->status, i % 2 == 0 ? "refunded" : "completed")) {
                        if (wrong++ < 10)
                                fprintf(stderr, "%s: closed %d times, '%s'\n",
                                        wf->id, wf->closes, wf->status);
                }
                if (!strcmp(wf->status, "refunded"))
                        refunded++;
        }
        CU_ASSERT_EQUAL(wrong, 0);
        CU_ASSERT_EQUAL(refunded, (n + 1) / 2);

        /* Exactly one charge per workflow. */
        per_wf = calloc((size_t)n, sizeof(*per_wf));
        CU_ASSERT_PTR_NOT_NULL_FATAL(per_wf);
        charges = e2e_effects_count(effects, "chargeCard", w, per_wf);
        CU_ASSERT_NOT_EQUAL_FATAL(charges, -1);
        for (int i = 0; i < n; i++) {
                if (per_wf[i] > 1)
                        dup += per_wf[i] - 1;
                if (per_wf[i] == 0)
                        none++;
        }
        fprintf(stderr, "%d charges, %d doubled, %d missing\n", charges, dup,
                none);
        CU_ASSERT_EQUAL(dup, 0);
        CU_ASSERT_EQUAL(none, 0);
        free(per_wf);

        e2e_watch_destroy(w);
        run_stop(&fr);
}

/* ---- a task queue's topic unavailable for a moment ------------------- */

/*
 * While the cluster cannot give the payments queue's topic (its Metadata
 * answers LEADER_NOT_AVAILABLE, as during a leader election), a workflow
 * starts: its chargeCard task must go out once the topic is back, not be
 * dropped to wait for its 60 s start-to-close timeout and a retry.
 */
static void test_faults_task_topic_unavailable_costs_no_attempt(void)
{
        faultrun_t fr;
        e2e_watch_t *w;
        char err[1024], id[128];
        json_t *in;
        int64_t t0;

        run_start(&fr, "faults-topic", "1", 300);
        CU_ASSERT_EQUAL(control("topic-error keel.tasks." PAYMENT_QUEUE
                                " LEADER_NOT_AVAILABLE"),
                        0);
        snprintf(id, sizeof(id), "%s0", prefix);
        in = json_pack("{ss si si si}", "order", "fault", "amount", 100,
                       "refund_window_ms", 20000, "start_to_close_ms", 60000);
        t0 = e2e_now_ms();
        CU_ASSERT_EQUAL_FATAL(
            e2e_start_payment(fr.client, id, in, 1, err, sizeof(err)), KEEL_OK);
        json_decref(in);
        e2e_sleep_ms(3000);
        CU_ASSERT_EQUAL(
            control("topic-error keel.tasks." PAYMENT_QUEUE " NO_ERROR"), 0);

        /* Well within the 60 s a dropped task would wait. */
        w = e2e_watch_new(procs.bootstrap, prefix, 1, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT(e2e_watch_until(w, t0 + 40000, e2e_watch_all_closed, NULL));
        fprintf(stderr, "closed in %lld ms\n", (long long)(e2e_now_ms() - t0));
        CU_ASSERT_STRING_EQUAL(w->wfs[0].status, "refunded");
        CU_ASSERT_PTR_NULL(
            e2e_wf_event(&w->wfs[0], "ActivityTimedOut", NULL, 0));
        CU_ASSERT_PTR_NULL(
            e2e_wf_event(&w->wfs[0], "ActivityRetried", NULL, 0));
        CU_ASSERT_EQUAL(e2e_log_count(&procs, "orchestrator.log",
                                      "no topic for task queue"),
                        0);

        e2e_watch_destroy(w);
        run_stop(&fr);
}

/*
 * A processor whose transactions fail, and whose reopening fails as often
 * as the orchestrator tries at once (AddPartitionsToTxn refused 40 times:
 * a broker that rejects for a while), takes its partition again once the
 * broker is back: every workflow completes, none waits for a rebalance
 * that a single orchestrator never gets.
 */
static void test_faults_partition_taken_again_after_failed_reopens(void)
{
        const int n = 24;
        faultrun_t fr;
        e2e_watch_t *w;
        char err[1024];
        long left = -1;
        int64_t t0;

        run_start(&fr, "faults-reopen", "1", 300);
        CU_ASSERT_EQUAL(control("broker-error 1 AddPartitionsToTxn 40 "
                                "TOPIC_AUTHORIZATION_FAILED"),
                        0);
        t0 = e2e_now_ms();
        for (int i = 0; i < n; i++) {
                char id[128];
                json_t *in = json_pack("{ss si si}", "order", "fault", "amount",
                                       100 + i, "refund_window_ms", 20000);
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                CU_ASSERT_EQUAL_FATAL(
                    e2e_start_payment(fr.client, id, in, 1, err, sizeof(err)),
                    KEEL_OK);
                json_decref(in);
        }
        /* The broker is back once its errors are spent. */
        for (int i = 0; i < 300 && left != 0; i++) {
                e2e_sleep_ms(100);
                left = pending_of("AddPartitionsToTxn");
        }
        CU_ASSERT_EQUAL(left, 0);
        fprintf(stderr, "errors spent after %lld ms, %d reopens failed\n",
                (long long)(e2e_now_ms() - t0),
                e2e_log_count(&procs, "orchestrator.log",
                              "could not take partitions"));

        w = e2e_watch_new(procs.bootstrap, prefix, n, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 60000, e2e_watch_all_closed,
                                  NULL));
        fprintf(stderr, "%d/%d closed in %lld ms\n", w->closed, n,
                (long long)(e2e_now_ms() - t0));
        CU_ASSERT_EQUAL(w->closed, n);
        CU_ASSERT_EQUAL(w->seq_violations, 0);

        e2e_watch_destroy(w);
        run_stop(&fr);
}

/* A done() for e2e_watch_until(): every workflow scheduled an activity. */
static int all_scheduled(e2e_watch_t *w, void *opaque)
{
        (void)opaque;
        for (int i = 0; i < w->n; i++)
                if (!e2e_wf_event(&w->wfs[i], "ActivityScheduled", NULL, 0))
                        return 0;
        return 1;
}

/*
 * Results that reached the inbox before their activities' deadlines, while
 * no orchestrator was there to read them, are not late: an orchestrator
 * that comes back after the deadlines applies them, and no activity times
 * out. (The worker is away while the tasks are scheduled, comes back once
 * the orchestrator was killed, and completes them within about 5 s of
 * their 15 s start-to-close timeout.)
 */
static void test_faults_results_read_before_timeouts_fire(void)
{
        const int n = 24;
        faultrun_t fr;
        e2e_watch_t *w;
        char err[1024];
        int timeouts = 0;

        run_start(&fr, "faults-late", "1", 300);
        e2e_stop(fr.worker, SIGTERM);
        w = e2e_watch_new(procs.bootstrap, prefix, n, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        for (int i = 0; i < n; i++) {
                char id[128];
                json_t *in = json_pack("{ss si si si}", "order", "fault",
                                       "amount", 100 + i, "refund_window_ms",
                                       1000, "start_to_close_ms", 15000);
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                CU_ASSERT_EQUAL_FATAL(
                    e2e_start_payment(fr.client, id, in, 0, err, sizeof(err)),
                    KEEL_OK);
                json_decref(in);
        }
        CU_ASSERT_FATAL(
            e2e_watch_until(w, e2e_now_ms() + 30000, all_scheduled, NULL));
        e2e_stop(orch_pid, SIGKILL);
        fr.worker = start_worker();
        /* past every deadline, then the orchestrator again */
        e2e_sleep_ms(17000);
        orch_pid = start_orchestrator();
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 60000, e2e_watch_all_closed,
                                  NULL));
        for (int i = 0; i < n; i++)
                timeouts += e2e_wf_event(&w->wfs[i], "ActivityTimedOut", NULL,
                                         0) != NULL;
        fprintf(stderr, "%d/%d closed, %d with an activity timed out\n",
                w->closed, n, timeouts);
        CU_ASSERT_EQUAL(w->closed, n);
        CU_ASSERT_EQUAL(timeouts, 0);
        e2e_watch_destroy(w);
        run_stop(&fr);
}

static CU_TestInfo tests[] = {
    {"test_faults_task_topic_unavailable_costs_no_attempt",
     test_faults_task_topic_unavailable_costs_no_attempt},
    {"test_faults_partition_taken_again_after_failed_reopens",
     test_faults_partition_taken_again_after_failed_reopens},
    {"test_faults_results_read_before_timeouts_fire",
     test_faults_results_read_before_timeouts_fire},
    {"test_faults_payments_exactly_once", test_faults_payments_exactly_once},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("broker_faults", tests)

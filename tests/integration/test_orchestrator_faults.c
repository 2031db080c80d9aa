/*
 * test_orchestrator_faults.c: keel-orchestrator through the faults a
 * deployment meets, on the real Kafka test broker, with the payment
 * example's orchestrator and worker as real processes (e2e_support.h): an
 * activity worker killed in the middle of an activity (start-to-close
 * timeout, retry, one effect); one of two orchestrators stopping (the
 * other takes its partitions over); an orchestrator frozen until the
 * group gives its partitions away and then woken (a zombie, which
 * transactional.id and claim epochs must fence); records on keel.inbox
 * that are no commands (dead letters, processing goes on); and a code
 * change that breaks running workflows (blocked by non-determinism, not
 * failed, and resumed by the fixed code). Every test judges the outcome
 * the way any reader does: the watcher reads keel.history by the reader
 * rules and checks that each workflow closed exactly once, with the right
 * result and seqs 1..n without gap or duplicate.
 */
#include "e2e_support.h"
#include "history_int.h"
#include "keel/keel.h"
#include "keel_test.h"
#include "payment.h"

#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The orchestrators' group session: a frozen one loses its partitions
 * after this long. */
#define SESSION_MS "6000"

static e2e_env_t procs;
static keel_config_t *cfg;
static keel_client_t *client;
static char effects[600], worker_instance[64];
static int ready;

/* Once per binary: broker, topics, client. Before every test: no process
 * of an earlier (failed) test is left. */
static void setup(void)
{
        char err[1024];
        e2e_stop_all();
        if (ready)
                return;
        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&procs, "faults"), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        snprintf(effects, sizeof(effects), "%s/effects.log", procs.workdir);
        snprintf(worker_instance, sizeof(worker_instance),
                 "kafka.group.instance.id=faults-worker-%d", (int)getpid());
        cfg = keel_config_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
        keel_config_set(cfg, "bootstrap", procs.bootstrap, NULL, NULL, 0);
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        ready = 1;
}

static int64_t wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_path(const char *logname, char *path, size_t size)
{
        snprintf(path, size, "%s/%s", procs.workdir, logname);
}

/* ---- logs ------------------------------------------------------------- */

static long log_size(const char *logname)
{
        char path[700];
        struct stat st;
        log_path(logname, path, sizeof(path));
        return stat(path, &st) ? 0 : (long)st.st_size;
}

/*
 * Lines of a log from byte `from` on that contain every one of the
 * needles (NULL-terminated): how many, and with echo, printed (at most
 * echo of them) for the test's report.
 */
static int log_grep(const char *logname, long from, const char *const needles[],
                    int echo)
{
        char path[700], line[4096];
        int n = 0;
        FILE *f;
        log_path(logname, path, sizeof(path));
        if (!(f = fopen(path, "r")))
                return 0;
        fseek(f, from, SEEK_SET);
        while (fgets(line, sizeof(line), f)) {
                int all = 1;
                for (int i = 0; needles[i] && all; i++)
                        all = strstr(line, needles[i]) != NULL;
                if (!all)
                        continue;
                if (n++ < echo)
                        fprintf(stderr, "    | %s", line);
        }
        fclose(f);
        return n;
}

/* Wait until a log has a line with all the needles after byte from. */
static int wait_log(const char *logname, long from, const char *const needles[],
                    int64_t deadline)
{
        while (e2e_now_ms() < deadline) {
                if (log_grep(logname, from, needles, 0) > 0)
                        return 1;
                e2e_sleep_ms(100);
        }
        return 0;
}

/* The partitions an orchestrator's log says it claimed after byte from;
 * with since_revoke, only those claimed since its last revocation (what
 * it owns now). */
static unsigned claimed_mask(const char *logname, long from, int since_revoke)
{
        char path[700], line[4096];
        unsigned mask = 0;
        FILE *f;
        log_path(logname, path, sizeof(path));
        if (!(f = fopen(path, "r")))
                return 0;
        fseek(f, from, SEEK_SET);
        while (fgets(line, sizeof(line), f)) {
                const char *p = strstr(line, " partition=");
                if (since_revoke && strstr(line, "msg=revoked"))
                        mask = 0;
                if (p && strstr(line, "msg=claimed"))
                        mask |= 1u << (atoi(p + 11) & 31);
        }
        fclose(f);
        return mask;
}

/* How many partitions an orchestrator's log says it claimed after byte
 * from and before its next revocation. */
static int claims_before_revoke(const char *logname, long from)
{
        char path[700], line[4096];
        int n = 0;
        FILE *f;
        log_path(logname, path, sizeof(path));
        if (!(f = fopen(path, "r")))
                return 0;
        fseek(f, from, SEEK_SET);
        while (fgets(line, sizeof(line), f) && !strstr(line, "msg=revoked"))
                if (strstr(line, "msg=claimed"))
                        n++;
        fclose(f);
        return n;
}

/* ---- processes -------------------------------------------------------- */

typedef struct orch_s {
        pid_t pid;
        char log[64];
        char port_file[700];
        int port;
} orch_t;

/* An orchestrator named `name` (its log is <name>.log), with module
 * (NULL: the payment workflow), a short group session and its metrics
 * port written to a file. */
static void orch_start(orch_t *o, const char *name, const char *module)
{
        const char *extra[] = {"--metrics-port-file", o->port_file, "-X",
                               "kafka.session.timeout.ms=" SESSION_MS, NULL};
        memset(o, 0, sizeof(*o));
        snprintf(o->log, sizeof(o->log), "%s.log", name);
        snprintf(o->port_file, sizeof(o->port_file), "%s/%s.port",
                 procs.workdir, name);
        unlink(o->port_file);
        o->pid = e2e_start_orchestrator(&procs, o->log, module, extra);
}

static void orch_stop(orch_t *o, int sig)
{
        e2e_stop(o->pid, sig);
        o->pid = 0;
}

/* The value of metric `name` on o's /metrics, or -1. */
static double orch_metric(orch_t *o, const char *name)
{
        struct sockaddr_in sa;
        struct timeval tv = {2, 0};
        char buf[8192], req[] = "GET /metrics HTTP/1.0\r\n\r\n";
        size_t len = 0, nl = strlen(name);
        double v = -1;
        const char *p;
        ssize_t k;
        int fd;

        if (!o->port) {
                FILE *f = fopen(o->port_file, "r");
                if (!f)
                        return -1;
                if (fscanf(f, "%d", &o->port) != 1)
                        o->port = 0;
                fclose(f);
                if (!o->port)
                        return -1;
        }
        if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
                return -1;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)o->port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
            write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
                close(fd);
                return -1;
        }
        while (len < sizeof(buf) - 1 &&
               (k = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)k;
        close(fd);
        buf[len] = '\0';
        for (p = strstr(buf, name); p; p = strstr(p + 1, name))
                if ((p == buf || p[-1] == '\n') && p[nl] == ' ') {
                        v = atof(p + nl + 1);
                        break;
                }
        return v;
}

static int owned(orch_t *o)
{
        return (int)orch_metric(o, "keel_orchestrator_partitions");
}

/* Wait until o owns `want` partitions. */
static int wait_owned(orch_t *o, int want, int64_t deadline)
{
        while (e2e_now_ms() < deadline) {
                if (owned(o) == want)
                        return 1;
                e2e_sleep_ms(200);
        }
        return 0;
}

/* Wait until a and b share every partition, each owning some. */
static int wait_shared(orch_t *a, orch_t *b, int64_t deadline)
{
        while (e2e_now_ms() < deadline) {
                int pa = owned(a), pb = owned(b);
                if (pa > 0 && pb > 0 && pa + pb == E2E_PARTITIONS)
                        return 1;
                e2e_sleep_ms(200);
        }
        return 0;
}

/* The payment worker, a static group member with a short session, so that
 * a new one takes a killed one's partitions over at once. */
static pid_t worker_start(const char *logname, const char *level)
{
        const char *extra[] = {"-X",          worker_instance,
                               "-X",          "kafka.session.timeout.ms=6000",
                               "--log-level", level,
                               NULL};
        return e2e_start_worker(&procs, logname, effects, extra);
}

/* Start a worker and wait until the group gave it the task partitions. */
static pid_t worker_ready(const char *logname, const char *level)
{
        const char *assigned[] = {"msg=\"partitions assigned\"", NULL};
        long from = log_size(logname);
        pid_t pid = worker_start(logname, level);
        CU_ASSERT_FATAL(
            wait_log(logname, from, assigned, e2e_now_ms() + 60000));
        return pid;
}

/* ---- workflows ---------------------------------------------------------- */

/* Start n payments "<prefix><i>" with refund window `window_ms`; the even
 * ones get the refundApproved signal. */
static void start_payments(const char *prefix, int from, int n, int window_ms)
{
        char err[1024];
        for (int i = from; i < from + n; i++) {
                char id[128];
                json_t *in =
                    json_pack("{ss si si}", "order", "faults", "amount",
                              100 + i, "refund_window_ms", window_ms);
                int rc;
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                rc = e2e_start_payment(client, id, in, i % 2 == 0, err,
                                       sizeof(err));
                json_decref(in);
                if (rc)
                        fprintf(stderr, "%s: %s\n", id, err);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        }
}

/* Every workflow of w closed exactly once with the status the payment
 * workflow gives (even: refunded, odd: completed); the wrong ones are
 * printed. Returns how many are wrong. */
static int wrong_results(e2e_watch_t *w)
{
        int wrong = 0;
        for (int i = 0; i < w->n; i++) {
                const char *want = i % 2 == 0 ? "refunded" : "completed";
                if (w->wfs[i].closes == 1 && !strcmp(w->wfs[i].status, want))
                        continue;
                if (wrong++ < 10)
                        fprintf(stderr, "%s: closed %d times, '%s'\n",
                                w->wfs[i].id, w->wfs[i].closes,
                                w->wfs[i].status);
        }
        return wrong;
}

/* Exactly one charge per workflow of w in the effect log. */
static void check_one_charge_each(e2e_watch_t *w)
{
        int *per_wf = calloc((size_t)w->n, sizeof(*per_wf));
        int bad = 0;
        CU_ASSERT_PTR_NOT_NULL_FATAL(per_wf);
        CU_ASSERT_EQUAL(e2e_effects_count(effects, "chargeCard", w, per_wf),
                        w->n);
        for (int i = 0; i < w->n; i++)
                if (per_wf[i] != 1 && bad++ < 10)
                        fprintf(stderr, "%s: %d charges\n", w->wfs[i].id,
                                per_wf[i]);
        CU_ASSERT_EQUAL(bad, 0);
        free(per_wf);
}

static int has_event(e2e_watch_t *w, void *opaque)
{
        const char *const *what = opaque; /* {type, activity_id or NULL} */
        return e2e_wf_event(&w->wfs[0], what[0], what[1], 0) != NULL;
}

/* Records test_orchestrator_malformed_inbox_to_dlq writes to keel.inbox
 * that no command may come of; the workflow after them is wfs[NBAD]. */
#define NBAD 5

static int good_closed(e2e_watch_t *w, void *opaque)
{
        (void)opaque;
        return w->wfs[NBAD].closes > 0;
}

static int has_scheduled(e2e_watch_t *w, void *opaque)
{
        return e2e_wf_activity_id(&w->wfs[0], opaque, 0) != NULL;
}

/* ---- 1. a worker killed in the middle of an activity -------------------- */

static void test_orchestrator_worker_killed_mid_activity(void)
{
        const char *wlog = "kill-worker.log";
        char prefix[64], err[1024], aid[32], started[256];
        orch_t o;
        pid_t w1, w2;
        e2e_watch_t *w;
        e2e_wf_t *wf;
        const json_t *ev;
        json_t *in;
        int64_t t0;
        long from;
        int charges[1] = {0};
        double stale;

        setup();
        snprintf(prefix, sizeof(prefix), "faults-%d-kill-", (int)getpid());
        orch_start(&o, "kill-orch", NULL);
        w1 = worker_ready(wlog, "debug");
        CU_ASSERT_FATAL(wait_owned(&o, E2E_PARTITIONS, e2e_now_ms() + 60000));
        w = e2e_watch_new(procs.bootstrap, prefix, 1, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        wf = &w->wfs[0];

        /* Every activity takes 3 s of its 4 s start-to-close timeout. */
        in = json_pack("{ss si si si si}", "order", "kill", "amount", 4200,
                       "refund_window_ms", 300, "slow_ms", 3000,
                       "start_to_close_ms", 4000);
        t0 = e2e_now_ms();
        CU_ASSERT_EQUAL_FATAL(
            e2e_start_payment(client, wf->id, in, 0, err, sizeof(err)),
            KEEL_OK);
        json_decref(in);
        CU_ASSERT_FATAL(
            e2e_watch_until(w, t0 + 30000, has_scheduled, "chargeCard"));
        snprintf(aid, sizeof(aid), "%s",
                 e2e_wf_activity_id(wf, "chargeCard", 0));

        /* The worker runs the charge: kill it a second into it, before its
         * effect. */
        snprintf(started, sizeof(started), "workflow_id=%s activity_id=%s ",
                 wf->id, aid);
        {
                const char *run1[] = {"msg=\"task started\"", started,
                                      "attempt=1 ", NULL};
                CU_ASSERT_FATAL(wait_log(wlog, 0, run1, e2e_now_ms() + 30000));
        }
        e2e_sleep_ms(1000);
        e2e_effects_count(effects, "chargeCard", w, charges);
        CU_ASSERT_EQUAL(charges[0], 0);
        e2e_stop(w1, SIGKILL);
        fprintf(stderr, "  worker killed %lld ms after the start\n",
                (long long)(e2e_now_ms() - t0));

        /* A new worker, once the first attempt's 4 s are over for sure
         * (the redelivered attempt 1 then finishes too late to count). */
        e2e_sleep_ms(1500);
        from = log_size(wlog);
        w2 = worker_start(wlog, "debug");
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 90000, e2e_watch_all_closed,
                                  NULL));
        fprintf(stderr, "  closed '%s' %lld ms after the start\n", wf->status,
                (long long)(e2e_now_ms() - t0));

        CU_ASSERT_EQUAL(wf->closes, 1);
        CU_ASSERT_STRING_EQUAL(wf->status, "completed");
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        ev = e2e_wf_event(wf, "ActivityTimedOut", aid, 0);
        CU_ASSERT_PTR_NOT_NULL(ev);
        if (ev) {
                CU_ASSERT_EQUAL(
                    json_integer_value(json_object_get(ev, "attempt")), 1);
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(ev, "timeout_type")),
                    "START_TO_CLOSE");
                CU_ASSERT(
                    json_is_integer(json_object_get(ev, "next_attempt_at")));
        }
        CU_ASSERT_PTR_NULL(e2e_wf_event(wf, "ActivityTimedOut", aid, 1));
        ev = e2e_wf_event(wf, "ActivityRetried", aid, 0);
        CU_ASSERT_PTR_NOT_NULL(ev);
        if (ev)
                CU_ASSERT_EQUAL(
                    json_integer_value(json_object_get(ev, "attempt")), 2);
        /* The result that counts is the new worker's second attempt. */
        ev = e2e_wf_event(wf, "ActivityCompleted", aid, 0);
        CU_ASSERT_PTR_NOT_NULL(ev);
        if (ev)
                CU_ASSERT_EQUAL(
                    json_integer_value(json_object_get(ev, "attempt")), 2);
        CU_ASSERT_PTR_NULL(e2e_wf_event(wf, "ActivityCompleted", aid, 1));
        /* The new worker got attempt 1 again (its offset was never
         * committed) and attempt 2; attempt 1's late result was dropped. */
        {
                const char *run1[] = {"msg=\"task started\"", started,
                                      "attempt=1 ", NULL};
                const char *run2[] = {"msg=\"task started\"", started,
                                      "attempt=2 ", NULL};
                CU_ASSERT_EQUAL(log_grep(wlog, from, run1, 0), 1);
                CU_ASSERT_EQUAL(log_grep(wlog, from, run2, 0), 1);
        }
        stale = orch_metric(&o, "keel_orchestrator_stale_results_total");
        CU_ASSERT(stale >= 1);
        /* One charge, though three runs of it started. */
        charges[0] = 0;
        CU_ASSERT_EQUAL(e2e_effects_count(effects, "chargeCard", w, charges),
                        1);
        fprintf(stderr,
                "  ActivityTimedOut(START_TO_CLOSE, attempt 1), "
                "ActivityRetried(attempt 2), %.0f stale result dropped, %d "
                "charge\n",
                stale, charges[0]);
        orch_stop(&o, SIGTERM);
        e2e_stop(w2, SIGTERM);
        e2e_watch_destroy(w);
}

/* ---- 2. one of two orchestrators stops ----------------------------------- */

static void test_orchestrator_takeover_when_one_stops(void)
{
        const int n = 100;
        char prefix[64];
        orch_t a, b;
        pid_t worker;
        e2e_watch_t *w;
        unsigned mask_a, mask_b;
        int64_t t0, t_stop;
        long b_from;
        double open_a;

        setup();
        snprintf(prefix, sizeof(prefix), "faults-%d-takeover-", (int)getpid());
        orch_start(&a, "takeover-a", NULL);
        orch_start(&b, "takeover-b", NULL);
        worker = worker_ready("takeover-worker.log", "info");
        CU_ASSERT_FATAL(wait_shared(&a, &b, e2e_now_ms() + 60000));
        fprintf(stderr, "  partitions: a %d, b %d\n", owned(&a), owned(&b));

        t0 = e2e_now_ms();
        start_payments(prefix, 0, n, 4000);
        /* Mid-run: the signals are in, the refund windows still open. */
        e2e_sleep_ms(1500);
        open_a = orch_metric(&a, "keel_orchestrator_open_workflows");
        CU_ASSERT(open_a > 0);
        mask_a = claimed_mask(a.log, 0, 1);
        b_from = log_size(b.log);
        t_stop = e2e_now_ms();
        orch_stop(&a, SIGTERM);
        CU_ASSERT(wait_owned(&b, E2E_PARTITIONS, e2e_now_ms() + 30000));
        fprintf(stderr,
                "  a stopped with %.0f workflows open; b owns all %d "
                "partitions %lld ms later\n",
                open_a, E2E_PARTITIONS, (long long)(e2e_now_ms() - t_stop));

        w = e2e_watch_new(procs.bootstrap, prefix, n, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT(e2e_watch_until(w, t0 + 120000, e2e_watch_all_closed, NULL));
        fprintf(stderr,
                "  %d/%d closed in %lld ms, %d seq violations, fenced %llu "
                "torn %llu\n",
                w->closed, n, (long long)(e2e_now_ms() - t0), w->seq_violations,
                (unsigned long long)w->fenced, (unsigned long long)w->torn);
        /* b claimed every partition a had. */
        mask_b = claimed_mask(b.log, b_from, 0);
        fprintf(stderr, "  a owned partitions 0x%03x; b claimed 0x%03x after\n",
                mask_a, mask_b);
        CU_ASSERT_NOT_EQUAL(mask_a, 0);
        CU_ASSERT_EQUAL(mask_a & ~mask_b, 0);
        CU_ASSERT_EQUAL(w->closed, n);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        CU_ASSERT_EQUAL(wrong_results(w), 0);
        check_one_charge_each(w);
        orch_stop(&b, SIGTERM);
        e2e_stop(worker, SIGTERM);
        e2e_watch_destroy(w);
}

/* ---- 3. a frozen orchestrator wakes up as a zombie ------------------------
 */

/* What a scan of keel.history says about the zombie's writes. */
typedef struct scan_s {
        pid_t zombie;
        int64_t t_stop, t_cont; /* wall ms */
        /* per partition: epoch -> claim owner's pid and claim time */
        struct {
                int64_t epoch;
                pid_t pid;
                int64_t ts;
        } claims[E2E_PARTITIONS][256];
        int nclaims[E2E_PARTITIONS];
        int32_t partition;
        int64_t msg_ts; /* the record being read */
        keel__history_reader_t readers[E2E_PARTITIONS];
        /* counts */
        long records, zombie_claims_after, zombie_old_after,
            zombie_old_after_applied, zombie_new_after_applied;
} scan_t;

static pid_t owner_pid(const char *owner)
{
        /* "<transactional.id>@<host>:<pid>:<ms>" */
        const char *last = strrchr(owner, ':'), *p;
        if (!last)
                return 0;
        for (p = last - 1; p > owner && *p != ':'; p--)
                ;
        return *p == ':' ? (pid_t)atoi(p + 1) : 0;
}

/* The claim of epoch in partition p: 1 if the zombie claimed it before
 * it was frozen (an old epoch), 2 if after it woke, 0 otherwise. */
static int zombie_epoch(const scan_t *s, int32_t p, int64_t epoch)
{
        for (int i = 0; i < s->nclaims[p]; i++)
                if (s->claims[p][i].epoch == epoch) {
                        if (s->claims[p][i].pid != s->zombie)
                                return 0;
                        return s->claims[p][i].ts < s->t_stop ? 1 : 2;
                }
        return 0;
}

static void scan_apply(void *opaque, const json_t *ev)
{
        scan_t *s = opaque;
        const json_t *rec = json_object_get(ev, "record");
        int z = zombie_epoch(s, s->partition,
                             json_integer_value(json_object_get(rec, "epoch")));
        /* Applied now, at the batch's checkpoint: its time is the batch's. */
        if (s->msg_ts >= s->t_cont && z == 1)
                s->zombie_old_after_applied++;
        if (s->msg_ts >= s->t_cont && z == 2)
                s->zombie_new_after_applied++;
}

/* Read keel.history from the beginning to its end with isolation level
 * `isolation`, by the reader rules, counting the zombie's writes. */
static void scan_history(scan_t *s, const char *isolation)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *tl;
        char err[512], group[64];
        int eof = 0, at_end[E2E_PARTITIONS] = {0};
        int64_t deadline = e2e_now_ms() + 60000;
        rd_kafka_t *c;

        snprintf(group, sizeof(group), "faults-%d-scan", (int)getpid());
        rd_kafka_conf_set(conf, "bootstrap.servers", procs.bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
        rd_kafka_conf_set(conf, "isolation.level", isolation, err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err,
                          sizeof(err));
        c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        tl = rd_kafka_topic_partition_list_new(E2E_PARTITIONS);
        for (int p = 0; p < E2E_PARTITIONS; p++) {
                keel__history_reader_init(&s->readers[p], scan_apply, s);
                rd_kafka_topic_partition_list_add(tl, KEEL_TOPIC_HISTORY, p)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        rd_kafka_assign(c, tl);
        rd_kafka_topic_partition_list_destroy(tl);
        while (eof < E2E_PARTITIONS && e2e_now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
                const char *type;
                json_t *rec;
                int32_t p;
                if (!m)
                        continue;
                p = m->partition;
                if (p < 0 || p >= E2E_PARTITIONS) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (!at_end[p]++)
                                eof++;
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (m->err) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                s->records++;
                s->partition = p;
                s->msg_ts = rd_kafka_message_timestamp(m, NULL);
                if (!keel_codec_decode(m->payload, m->len, &type, &rec, NULL,
                                       0)) {
                        int64_t epoch =
                            json_integer_value(json_object_get(rec, "epoch"));
                        if (!strcmp(type, "keel.history.PartitionClaim") &&
                            s->nclaims[p] < 256) {
                                int i = s->nclaims[p]++;
                                s->claims[p][i].epoch = epoch;
                                s->claims[p][i].pid = owner_pid(
                                    json_string_value(
                                        json_object_get(rec, "owner"))
                                        ? json_string_value(
                                              json_object_get(rec, "owner"))
                                        : "");
                                s->claims[p][i].ts = json_integer_value(
                                    json_object_get(rec, "ts"));
                                if (s->claims[p][i].pid == s->zombie &&
                                    s->claims[p][i].ts >= s->t_cont)
                                        s->zombie_claims_after++;
                        } else if (s->msg_ts >= s->t_cont &&
                                   zombie_epoch(s, p, epoch) == 1) {
                                s->zombie_old_after++;
                        }
                        json_decref(rec);
                }
                keel__history_reader_feed(&s->readers[p], m->payload, m->len,
                                          err, sizeof(err));
                rd_kafka_message_destroy(m);
        }
        CU_ASSERT_EQUAL(eof, E2E_PARTITIONS);
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
}

static void scan_report(scan_t *s, const char *isolation)
{
        uint64_t fenced = 0, torn = 0;
        for (int p = 0; p < E2E_PARTITIONS; p++) {
                fenced += s->readers[p].fenced;
                torn += s->readers[p].torn;
                keel__history_reader_destroy(&s->readers[p]);
        }
        fprintf(stderr,
                "  %s scan: %ld records, reader fenced %llu torn %llu; "
                "zombie after SIGCONT: %ld records under its old epoch "
                "(%ld applied), %ld new claims (%ld events applied)\n",
                isolation, s->records, (unsigned long long)fenced,
                (unsigned long long)torn, s->zombie_old_after,
                s->zombie_old_after_applied, s->zombie_claims_after,
                s->zombie_new_after_applied);
}

static void test_orchestrator_zombie_is_fenced(void)
{
        const int n1 = 30, n2 = 30;
        const char *fenced[] = {"component=orchestrator",
                                "partition=", "fenced by a newer instance",
                                NULL};
        const char *revoked[] = {"msg=revoked", NULL};
        char prefix[64];
        orch_t a, b;
        pid_t worker, zombie;
        e2e_watch_t *w;
        scan_t *s;
        int64_t t0, t_frozen;
        long a_from, b_from;
        int st, b_fenced, b_revoked, a_fenced;

        setup();
        snprintf(prefix, sizeof(prefix), "faults-%d-zombie-", (int)getpid());
        orch_start(&a, "zombie-a", NULL);
        orch_start(&b, "zombie-b", NULL);
        worker = worker_ready("zombie-worker.log", "info");
        CU_ASSERT_FATAL(wait_shared(&a, &b, e2e_now_ms() + 60000));
        fprintf(stderr, "  partitions: a %d, b %d (b pid %d)\n", owned(&a),
                owned(&b), (int)b.pid);
        zombie = b.pid;
        s = calloc(1, sizeof(*s));
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        s->zombie = zombie;

        /* Workflows whose refund windows end while b is frozen: b wakes
         * up with timers due in partitions it no longer owns. */
        t0 = e2e_now_ms();
        start_payments(prefix, 0, n1, 3000);
        e2e_sleep_ms(1000);
        s->t_stop = wall_ms();
        kill(zombie, SIGSTOP);
        t_frozen = e2e_now_ms();
        start_payments(prefix, n1, n2, 3000);
        CU_ASSERT(wait_owned(&a, E2E_PARTITIONS, e2e_now_ms() + 40000));
        fprintf(stderr, "  b frozen; a owns all partitions %lld ms later\n",
                (long long)(e2e_now_ms() - t_frozen));
        e2e_sleep_ms(1000);

        a_from = log_size(a.log);
        b_from = log_size(b.log);
        s->t_cont = wall_ms();
        kill(zombie, SIGCONT);
        e2e_sleep_ms(5000);

        w = e2e_watch_new(procs.bootstrap, prefix, n1 + n2, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT(e2e_watch_until(w, t0 + 120000, e2e_watch_all_closed, NULL));
        fprintf(stderr,
                "  %d/%d closed in %lld ms, %d seq violations; watcher "
                "fenced %llu torn %llu\n",
                w->closed, n1 + n2, (long long)(e2e_now_ms() - t0),
                w->seq_violations, (unsigned long long)w->fenced,
                (unsigned long long)w->torn);
        /* What the zombie did when it woke: its transactions failed,
         * fenced by transactional.id, and the group took its partitions. */
        CU_ASSERT_EQUAL(waitpid(zombie, &st, WNOHANG), 0);
        b_fenced = log_grep(b.log, b_from, fenced, 0);
        b_revoked = log_grep(b.log, b_from, revoked, 0);
        a_fenced = log_grep(a.log, a_from, fenced, 0);
        fprintf(stderr,
                "  b woke: %d transactions fenced, %d partitions claimed "
                "again before its first revocation (%d revocations); a: %d "
                "transactions fenced since; partitions now a %d, b %d\n",
                b_fenced, claims_before_revoke(b.log, b_from), b_revoked,
                a_fenced, owned(&a), owned(&b));
        log_grep(b.log, b_from, fenced, 2);
        CU_ASSERT(b_fenced > 0 || b_revoked > 0);
        CU_ASSERT_EQUAL(w->closed, n1 + n2);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        CU_ASSERT_EQUAL(wrong_results(w), 0);
        check_one_charge_each(w);

        orch_stop(&a, SIGTERM);
        orch_stop(&b, SIGTERM);
        e2e_stop(worker, SIGTERM);

        /* What the zombie wrote after it woke, under the epoch it had before
         * it froze: in the raw log (read_uncommitted, aborted transactions
         * too) and what read_committed readers apply by the reader rules.
         * Only the latter decides correctness; it must be nothing. */
        scan_history(s, "read_uncommitted");
        scan_report(s, "read_uncommitted");
        {
                scan_t *c = calloc(1, sizeof(*c));
                CU_ASSERT_PTR_NOT_NULL_FATAL(c);
                c->zombie = s->zombie;
                c->t_stop = s->t_stop;
                c->t_cont = s->t_cont;
                scan_history(c, "read_committed");
                scan_report(c, "read_committed");
                CU_ASSERT_EQUAL(c->zombie_old_after_applied, 0);
                CU_ASSERT_EQUAL(s->zombie_old_after_applied, 0);
                free(c);
        }
        free(s);
        e2e_watch_destroy(w);
}

/* ---- 4. records that are no commands go to keel.dlq -------------------- */

static void dr_offset(rd_kafka_t *rk, const rd_kafka_message_t *m, void *op)
{
        (void)rk;
        (void)op;
        *(int64_t *)m->_private = m->err ? -1 : m->offset;
}

/* A bytes field (Avro's JSON mapping: code points 0-255 in UTF-8, NULs
 * included) equal to the n bytes b? */
static int bytes_equal(const json_t *field, const void *b, size_t n)
{
        const unsigned char *s =
            (const unsigned char *)json_string_value(field);
        const unsigned char *end = s + json_string_length(field);
        const unsigned char *want = b;
        size_t k = 0;
        if (!s)
                return 0;
        while (s < end && k < n) {
                unsigned c = *s++;
                if ((c & 0xE0) == 0xC0 && s < end)
                        c = ((c & 0x1F) << 6) | (*s++ & 0x3F);
                if (c != want[k++])
                        return 0;
        }
        return s == end && k == n;
}

static void test_orchestrator_malformed_inbox_to_dlq(void)
{
        static const unsigned char garbage[] =
            "\x00\x13garbage, not an Avro record \xff\xfe\x80";
        char prefix[64], ids[NBAD + 1][128], err[1024];
        unsigned char *bufs[NBAD];
        size_t lens[NBAD];
        int32_t parts[NBAD];
        int64_t offs[NBAD] = {-2, -2, -2, -2, -2}, lows[E2E_PARTITIONS];
        json_t *dls[NBAD] = {NULL};
        orch_t o;
        pid_t worker;
        e2e_watch_t *w;
        rd_kafka_t *prod, *c;
        rd_kafka_conf_t *conf;
        rd_kafka_topic_partition_list_t *tl;
        json_t *rec, *in;
        int64_t deadline;
        int found = 0;
        double dead;

        setup();
        snprintf(prefix, sizeof(prefix), "faults-%d-dlq-", (int)getpid());
        for (int i = 0; i <= NBAD; i++)
                snprintf(ids[i], sizeof(ids[i]), "%s%d", prefix, i);
        /* another producer's start for an ID with a control character */
        snprintf(ids[4], sizeof(ids[4]),
                 "%s4\x01"
                 "bad",
                 prefix);
        orch_start(&o, "dlq-orch", NULL);
        worker = worker_ready("dlq-worker.log", "info");
        CU_ASSERT_FATAL(wait_owned(&o, E2E_PARTITIONS, e2e_now_ms() + 60000));

        /* garbage; a history event; a start whose input is not JSON; a
         * record of a schema nobody knows; a start whose workflow ID
         * holds a control character */
        bufs[0] = malloc(sizeof(garbage) - 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(bufs[0]);
        memcpy(bufs[0], garbage, sizeof(garbage) - 1);
        lens[0] = sizeof(garbage) - 1;
        rec = json_pack("{ss ss si si sI ss}", "workflow_id", ids[1], "run_id",
                        "r1", "seq", 2, "epoch", 1, "ts", (json_int_t)wall_ms(),
                        "timer_id", "t1");
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.history.TimerFired", rec,
                                                &bufs[1], &lens[1], err,
                                                sizeof(err)),
                              KEEL_OK);
        json_decref(rec);
        rec = json_pack("{ss ss sI ss ss sn sn sn ss sn sn sn}", "workflow_id",
                        ids[2], "command_id", "faults-bad-input", "ts",
                        (json_int_t)wall_ms(), "workflow_type",
                        PAYMENT_WORKFLOW, "input", "{\"order\": not json",
                        "execution_timeout_ms", "run_timeout_ms", "signal_name",
                        "signal_payload", "null", "parent_workflow_id",
                        "parent_run_id", "search_attributes");
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.inbox.StartWorkflow", rec,
                                                &bufs[2], &lens[2], err,
                                                sizeof(err)),
                              KEEL_OK);
        json_decref(rec);
        /* keel's header, then a fingerprint no schema has */
        bufs[3] = malloc(16);
        CU_ASSERT_PTR_NOT_NULL_FATAL(bufs[3]);
        memcpy(bufs[3],
               "\xc3\x01\x11\x22\x33\x44\x55\x66\x77\x88"
               "body",
               14);
        lens[3] = 14;
        rec = json_pack("{ss ss sI ss ss ss ss}", "workflow_id", ids[4],
                        "command_id", "faults-bad-id", "ts",
                        (json_int_t)wall_ms(), "workflow_type",
                        PAYMENT_WORKFLOW, "input", "{}", "id_reuse_policy",
                        "ALLOW_DUPLICATE", "id_conflict_policy", "FAIL");
        CU_ASSERT_EQUAL_FATAL(keel_codec_encode("keel.inbox.StartWorkflow", rec,
                                                &bufs[4], &lens[4], err,
                                                sizeof(err)),
                              KEEL_OK);
        json_decref(rec);

        /* Where keel.dlq ends now: the dead letters come after. */
        conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", procs.bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set_dr_msg_cb(conf, dr_offset);
        prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(prod);
        for (int p = 0; p < E2E_PARTITIONS; p++) {
                int64_t lo, hi;
                CU_ASSERT_EQUAL_FATAL(
                    rd_kafka_query_watermark_offsets(prod, KEEL_TOPIC_DLQ, p,
                                                     &lo, &hi, 10000),
                    RD_KAFKA_RESP_ERR_NO_ERROR);
                lows[p] = hi;
        }
        for (int i = 0; i < NBAD; i++) {
                parts[i] =
                    keel_partition_of(ids[i], strlen(ids[i]), E2E_PARTITIONS);
                CU_ASSERT_EQUAL_FATAL(
                    rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(KEEL_TOPIC_INBOX),
                                      RD_KAFKA_V_PARTITION(parts[i]),
                                      RD_KAFKA_V_KEY(ids[i], strlen(ids[i])),
                                      RD_KAFKA_V_VALUE(bufs[i], lens[i]),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_OPAQUE(&offs[i]),
                                      RD_KAFKA_V_END),
                    RD_KAFKA_RESP_ERR_NO_ERROR);
        }
        rd_kafka_flush(prod, 10000);
        for (int i = 0; i < NBAD; i++)
                CU_ASSERT_FATAL(offs[i] >= 0);

        /* A normal workflow right after them. */
        w = e2e_watch_new(procs.bootstrap, prefix, NBAD + 1, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        in = json_pack("{ss si si}", "order", "dlq", "amount", 7,
                       "refund_window_ms", 300);
        CU_ASSERT_EQUAL_FATAL(
            e2e_start_payment(client, ids[NBAD], in, 0, err, sizeof(err)),
            KEEL_OK);
        json_decref(in);

        /* The dead letters. */
        conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", procs.bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "group.id", prefix, err, sizeof(err));
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                          sizeof(err));
        c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        tl = rd_kafka_topic_partition_list_new(E2E_PARTITIONS);
        for (int p = 0; p < E2E_PARTITIONS; p++)
                rd_kafka_topic_partition_list_add(tl, KEEL_TOPIC_DLQ, p)
                    ->offset = lows[p];
        rd_kafka_assign(c, tl);
        rd_kafka_topic_partition_list_destroy(tl);
        deadline = e2e_now_ms() + 30000;
        while (found < NBAD && e2e_now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
                const char *type;
                json_t *dl;
                if (!m)
                        continue;
                if (!m->err && !keel_codec_decode(m->payload, m->len, &type,
                                                  &dl, NULL, 0)) {
                        int match = -1;
                        for (int i = 0; i < NBAD; i++)
                                if (!strcmp(json_string_value(json_object_get(
                                                dl, "source_topic")),
                                            KEEL_TOPIC_INBOX) &&
                                    json_integer_value(json_object_get(
                                        dl, "source_partition")) == parts[i] &&
                                    json_integer_value(json_object_get(
                                        dl, "source_offset")) == offs[i])
                                        match = i;
                        CU_ASSERT_STRING_EQUAL(type, "keel.dlq.DeadLetter");
                        if (match >= 0 && !dls[match]) {
                                dls[match] = dl;
                                found++;
                        } else {
                                json_decref(dl);
                        }
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        CU_ASSERT_EQUAL(found, NBAD);
        for (int i = 0; i < NBAD; i++) {
                const char *e, *reason;
                if (!dls[i])
                        continue;
                e = json_string_value(json_object_get(dls[i], "error"));
                reason = json_string_value(json_object_get(dls[i], "reason"));
                fprintf(stderr, "  dead letter %d: %s (%s)\n", i, e, reason);
                if (i == 0) {
                        CU_ASSERT(!strcmp(e, "KEEL_ERR_CORRUPT") ||
                                  !strcmp(e, "KEEL_ERR_UNKNOWN_SCHEMA"));
                } else if (i == 3) {
                        CU_ASSERT_STRING_EQUAL(e, "KEEL_ERR_UNKNOWN_SCHEMA");
                } else if (i == 4) {
                        CU_ASSERT_STRING_EQUAL(e, "KEEL_ERR_INVALID_ARG");
                        CU_ASSERT_PTR_NOT_NULL(
                            strstr(reason, "holds a control character"));
                } else {
                        CU_ASSERT_STRING_EQUAL(e, "KEEL_ERR_INVALID_ARG");
                }
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(dls[i], "component")),
                    "orchestrator");
                CU_ASSERT(bytes_equal(json_object_get(dls[i], "key"), ids[i],
                                      strlen(ids[i])));
                CU_ASSERT(bytes_equal(json_object_get(dls[i], "value"), bufs[i],
                                      lens[i]));
                json_decref(dls[i]);
        }

        /* The workflow right behind them completes; they started none. */
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 60000, good_closed, NULL));
        CU_ASSERT_EQUAL(w->wfs[NBAD].closes, 1);
        CU_ASSERT_STRING_EQUAL(w->wfs[NBAD].status, "completed");
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        for (int i = 0; i < NBAD; i++)
                CU_ASSERT_EQUAL(w->wfs[i].last_seq, 0);
        dead = orch_metric(&o, "keel_orchestrator_dead_letters_total");
        fprintf(stderr, "  keel_orchestrator_dead_letters_total %.0f\n", dead);
        CU_ASSERT(dead >= NBAD);
        CU_ASSERT(orch_metric(&o, "keel_orchestrator_rejected_total") >= 2);

        for (int i = 0; i < NBAD; i++)
                free(bufs[i]);
        rd_kafka_destroy(prod);
        orch_stop(&o, SIGTERM);
        e2e_stop(worker, SIGTERM);
        e2e_watch_destroy(w);
}

/* ---- 5. a code change that breaks running workflows ---------------------- */

static void test_orchestrator_nondeterminism_blocks_then_resumes(void)
{
        const char *v2 = keel_test_env("KEEL_TEST_PAYMENT_MODULE_V2");
        const char *blocked[] = {"blocked: non-determinism at event 2", NULL};
        char prefix[64], err[1024], receipt[32];
        orch_t o;
        pid_t worker;
        e2e_watch_t *w;
        e2e_wf_t *wf;
        const json_t *ev;
        json_t *in;
        int64_t t0;
        int reserves = 0;

        setup();
        snprintf(prefix, sizeof(prefix), "faults-%d-nd-", (int)getpid());
        orch_start(&o, "nd-v1", NULL);
        worker = worker_ready("nd-worker.log", "info");
        CU_ASSERT_FATAL(wait_owned(&o, E2E_PARTITIONS, e2e_now_ms() + 60000));
        w = e2e_watch_new(procs.bootstrap, prefix, 1, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        wf = &w->wfs[0];

        /* v1 runs it up to the wait for the signal. */
        in = json_pack("{ss si si}", "order", "nd", "amount", 990,
                       "refund_window_ms", 120000);
        t0 = e2e_now_ms();
        CU_ASSERT_EQUAL_FATAL(
            e2e_start_payment(client, wf->id, in, 0, err, sizeof(err)),
            KEEL_OK);
        json_decref(in);
        CU_ASSERT_FATAL(
            e2e_watch_until(w, t0 + 60000, has_scheduled, "sendReceipt"));
        snprintf(receipt, sizeof(receipt), "%s",
                 e2e_wf_activity_id(wf, "sendReceipt", 0));
        {
                const char *what[] = {"ActivityCompleted", receipt};
                CU_ASSERT_FATAL(
                    e2e_watch_until(w, t0 + 60000, has_event, (void *)what));
        }
        orch_stop(&o, SIGTERM);

        /* v2 gets the signal: the replay issues reserveInventory where the
         * history has the payment's first published state (before
         * chargeCard). */
        orch_start(&o, "nd-v2", v2);
        CU_ASSERT_FATAL(wait_owned(&o, E2E_PARTITIONS, e2e_now_ms() + 60000));
        CU_ASSERT_EQUAL_FATAL(keel_client_signal(client, wf->id, NULL,
                                                 "refundApproved", NULL, 0, err,
                                                 sizeof(err)),
                              KEEL_OK);
        {
                const char *what[] = {"NonDeterminismDetected", NULL};
                CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 30000, has_event,
                                          (void *)what));
        }
        ev = e2e_wf_event(wf, "NonDeterminismDetected", NULL, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        fprintf(stderr, "  NonDeterminismDetected: event_seq %lld, %s\n",
                (long long)json_integer_value(json_object_get(ev, "event_seq")),
                json_string_value(json_object_get(ev, "message")));
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(ev, "event_seq")),
                        2);
        CU_ASSERT_PTR_NOT_NULL(
            strstr(json_string_value(json_object_get(ev, "expected")),
                   "MarkerRecorded(state"));
        CU_ASSERT_PTR_NOT_NULL(
            strstr(json_string_value(json_object_get(ev, "actual")),
                   "reserveInventory"));
        CU_ASSERT_PTR_NOT_NULL(e2e_wf_event(wf, "SignalReceived", NULL, 0));
        /* Blocked, not failed: nothing more happens to it under v2. */
        e2e_watch_until(w, e2e_now_ms() + 2000, NULL, NULL);
        CU_ASSERT_EQUAL(wf->closes, 0);
        CU_ASSERT_PTR_NULL(e2e_wf_event(wf, "WorkflowFailed", NULL, 0));
        CU_ASSERT_PTR_NULL(e2e_wf_event(wf, "NonDeterminismDetected", NULL, 1));
        CU_ASSERT_EQUAL(log_grep(o.log, 0, blocked, 1), 1);
        orch_stop(&o, SIGTERM);

        /* v1 again: the run resumes and finishes. */
        orch_start(&o, "nd-v1-again", NULL);
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 60000, e2e_watch_all_closed,
                                  NULL));
        fprintf(stderr, "  closed '%s' %lld ms after the start\n", wf->status,
                (long long)(e2e_now_ms() - t0));
        CU_ASSERT_EQUAL(wf->closes, 1);
        CU_ASSERT_STRING_EQUAL(wf->status, "refunded");
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        /* v2's reserveInventory never went out. */
        while (e2e_wf_activity_id(wf, "reserveInventory", reserves))
                reserves++;
        CU_ASSERT_EQUAL(reserves, 1);
        orch_stop(&o, SIGTERM);
        e2e_stop(worker, SIGTERM);
        e2e_watch_destroy(w);
}

static CU_TestInfo tests[] = {
    {"test_orchestrator_worker_killed_mid_activity",
     test_orchestrator_worker_killed_mid_activity},
    {"test_orchestrator_takeover_when_one_stops",
     test_orchestrator_takeover_when_one_stops},
    {"test_orchestrator_zombie_is_fenced", test_orchestrator_zombie_is_fenced},
    {"test_orchestrator_malformed_inbox_to_dlq",
     test_orchestrator_malformed_inbox_to_dlq},
    {"test_orchestrator_nondeterminism_blocks_then_resumes",
     test_orchestrator_nondeterminism_blocks_then_resumes},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("orchestrator_faults", tests)

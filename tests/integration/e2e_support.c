/*
 * e2e_support.c: processes, the keel.history watcher and small helpers
 * for the end-to-end tests on the real Kafka test broker (e2e_support.h).
 * The watcher feeds each partition's records to its own reader
 * (history_int.h), so it applies exactly what the orchestrator's restore
 * and the projector apply: batches once their checkpoint is read, never
 * the records of a fenced owner or of a batch a newer claim cut off.
 */
#include "e2e_support.h"

#include "history_int.h"
#include "keel_test.h"
#include "payment.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t e2e_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void e2e_sleep_ms(int64_t ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

int e2e_env_int(const char *name, int dflt)
{
        const char *v = getenv(name);
        return v && *v ? atoi(v) : dflt;
}

int e2e_env_init(e2e_env_t *env, const char *name)
{
        FILE *bf;

        e2e_env_init_local(env, name);
        bf = fopen(keel_test_env("KEEL_TEST_KAFKA_FILE"), "r");
        if (!bf)
                return KEEL_ERR_IO;
        if (!fgets(env->bootstrap, sizeof(env->bootstrap), bf)) {
                fclose(bf);
                return KEEL_ERR_IO;
        }
        fclose(bf);
        env->bootstrap[strcspn(env->bootstrap, "\r\n")] = '\0';
        return KEEL_OK;
}

void e2e_env_init_local(e2e_env_t *env, const char *name)
{
        const char *bindir;

        memset(env, 0, sizeof(*env));
        bindir = keel_test_env("KEEL_TEST_BIN_DIR");
        env->module = keel_test_env("KEEL_TEST_PAYMENT_MODULE");
        snprintf(env->orch_bin, sizeof(env->orch_bin), "%s/keel-orchestrator",
                 bindir);
        snprintf(env->worker_bin, sizeof(env->worker_bin),
                 "%s/keel-payment-worker", bindir);
        snprintf(env->workdir, sizeof(env->workdir), "%s/%s-%d",
                 keel_test_env("KEEL_TEST_WORK_DIR"), name, (int)getpid());
        mkdir(env->workdir, 0755);
}

int e2e_topics_create(const e2e_env_t *env)
{
        return e2e_topics_create_queue(env, PAYMENT_QUEUE);
}

int e2e_topics_create_queue(const e2e_env_t *env, const char *queue)
{
        keel_config_t *cfg = keel_config_new();
        const char *queues[] = {queue};
        char err[1024];
        int rc;

        if (!cfg)
                return KEEL_ERR_NOMEM;
        keel_config_set(cfg, "bootstrap", env->bootstrap, NULL, NULL, 0);
        rc = keel_topics_create(cfg, E2E_PARTITIONS, 1, queues, 1, NULL, NULL,
                                err, sizeof(err));
        if (rc)
                fprintf(stderr, "topics: %s\n", err);
        keel_config_destroy(cfg);
        return rc;
}

int e2e_create_topic(const char *bootstrap, const char *topic, int partitions)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_NewTopic_t *nt;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        rd_kafka_t *rk;
        char err[512];
        int rc = -1;

        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "admin: %s\n", err);
                rd_kafka_conf_destroy(conf);
                return -1;
        }
        nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
        q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        ev = rd_kafka_queue_poll(q, 30000);
        if (ev) {
                const rd_kafka_CreateTopics_result_t *res =
                    rd_kafka_event_CreateTopics_result(ev);
                size_t n;
                const rd_kafka_topic_result_t **tr =
                    res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
                rd_kafka_resp_err_t e = tr && n == 1
                                            ? rd_kafka_topic_result_error(tr[0])
                                            : rd_kafka_event_error(ev);
                if (!e || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                        rc = 0;
                else
                        fprintf(stderr, "creating %s: %s\n", topic,
                                rd_kafka_err2str(e));
                rd_kafka_event_destroy(ev);
        }
        rd_kafka_NewTopic_destroy(nt);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy(rk);
        return rc;
}

int e2e_read_topic(const char *bootstrap, const char *topic,
                   const char *isolation, int timeout_ms,
                   void (*each)(void *opaque, const rd_kafka_message_t *m),
                   void *opaque)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_partition_list_t *tl;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t;
        rd_kafka_t *c;
        char err[512], group[64];
        int partitions = 0, ends = 0, *at_end = NULL;
        int64_t deadline = e2e_now_ms() + timeout_ms;

        /* A group only for the API's sake: offsets are never committed. */
        snprintf(group, sizeof(group), "e2e-reader-%d", (int)getpid());
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
        rd_kafka_conf_set(conf, "isolation.level", isolation, err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                          sizeof(err));
        if (!(c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)))) {
                fprintf(stderr, "reader: %s\n", err);
                rd_kafka_conf_destroy(conf);
                return 0;
        }
        t = rd_kafka_topic_new(c, topic, NULL);
        if (t && !rd_kafka_metadata(c, 0, t, &md, 10000) &&
            md->topic_cnt == 1 && !md->topics[0].err)
                partitions = md->topics[0].partition_cnt;
        if (md)
                rd_kafka_metadata_destroy(md);
        if (t)
                rd_kafka_topic_destroy(t);
        if (partitions <= 0 ||
            !(at_end = calloc((size_t)partitions, sizeof(int)))) {
                fprintf(stderr, "reader: no topic %s\n", topic);
                rd_kafka_destroy(c);
                return 0;
        }
        tl = rd_kafka_topic_partition_list_new(partitions);
        for (int p = 0; p < partitions; p++)
                rd_kafka_topic_partition_list_add(tl, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(c, tl);
        rd_kafka_topic_partition_list_destroy(tl);
        while (ends < partitions && e2e_now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (m->partition >= 0 && m->partition < partitions &&
                            !at_end[m->partition]) {
                                at_end[m->partition] = 1;
                                ends++;
                        }
                } else if (m->err) {
                        fprintf(stderr, "reader: %s\n",
                                rd_kafka_message_errstr(m));
                } else {
                        each(opaque, m);
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        free(at_end);
        return ends == partitions;
}

/* ---- processes ------------------------------------------------------- */

#define MAX_CHILDREN 64

static pid_t children[MAX_CHILDREN];
static int atexit_set;

static void forget(pid_t pid)
{
        for (int i = 0; i < MAX_CHILDREN; i++)
                if (children[i] == pid)
                        children[i] = 0;
}

void e2e_stop_all(void)
{
        /* SIGTERM first, for up to 2 s: a dev broker runs under
         * timeout(1), which passes SIGTERM on to it but, killed itself,
         * would leave it running with no time limit. */
        for (int i = 0; i < MAX_CHILDREN; i++)
                if (children[i] > 0)
                        kill(children[i], SIGTERM);
        for (int t = 0; t < 20; t++) {
                int left = 0;
                for (int i = 0; i < MAX_CHILDREN; i++) {
                        int st;
                        if (children[i] <= 0)
                                continue;
                        if (waitpid(children[i], &st, WNOHANG) == children[i])
                                children[i] = 0;
                        else
                                left++;
                }
                if (!left)
                        return;
                e2e_sleep_ms(100);
        }
        for (int i = 0; i < MAX_CHILDREN; i++) {
                int st;
                if (children[i] <= 0)
                        continue;
                kill(children[i], SIGKILL);
                waitpid(children[i], &st, 0);
                children[i] = 0;
        }
}

pid_t e2e_spawn(const e2e_env_t *env, const char *logname, char *const argv[])
{
        char path[700];
        pid_t pid;

        if (!atexit_set) {
                atexit(e2e_stop_all);
                atexit_set = 1;
        }
        snprintf(path, sizeof(path), "%s/%s", env->workdir, logname);
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
        for (int i = 0; pid > 0 && i < MAX_CHILDREN; i++)
                if (children[i] <= 0) {
                        children[i] = pid;
                        break;
                }
        return pid;
}

int e2e_stop(pid_t pid, int sig)
{
        int st = -1;
        if (pid <= 0)
                return -1;
        kill(pid, sig);
        kill(pid, SIGCONT);
        for (int i = 0; i < 300; i++) {
                if (waitpid(pid, &st, WNOHANG) == pid) {
                        forget(pid);
                        return st;
                }
                e2e_sleep_ms(100);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        forget(pid);
        return st;
}

/* argv = fixed (NULL-terminated) then extra (NULL-terminated, or NULL). */
static pid_t spawn_with(const e2e_env_t *env, const char *logname,
                        const char *const fixed[], const char *const extra[])
{
        char *argv[64];
        int n = 0;
        for (int i = 0; fixed[i] && n < 63; i++)
                argv[n++] = (char *)fixed[i];
        for (int i = 0; extra && extra[i] && n < 63; i++)
                argv[n++] = (char *)extra[i];
        argv[n] = NULL;
        return e2e_spawn(env, logname, argv);
}

pid_t e2e_start_dev_broker(e2e_env_t *env, int partitions, int lifetime_s)
{
        return e2e_start_dev_broker_args(env, partitions, lifetime_s, NULL);
}

pid_t e2e_start_dev_broker_args(e2e_env_t *env, int partitions, int lifetime_s,
                                const char *const extra[])
{
        char keel[600], portfile[700], parts[16], life[16];
        char *argv[40];
        pid_t broker;
        int n;
        FILE *f;

        snprintf(keel, sizeof(keel), "%s/keel",
                 keel_test_env("KEEL_TEST_BIN_DIR"));
        snprintf(portfile, sizeof(portfile), "%s/dev-broker.bootstrap",
                 env->workdir);
        snprintf(parts, sizeof(parts), "%d", partitions);
        snprintf(life, sizeof(life), "%d", lifetime_s);
        unlink(portfile);
        argv[0] = "/usr/bin/timeout";
        argv[1] = life;
        argv[2] = keel;
        argv[3] = "dev-broker";
        argv[4] = "--partitions";
        argv[5] = parts;
        argv[6] = "--port-file";
        argv[7] = portfile;
        for (n = 8; extra && *extra && n < 39; extra++)
                argv[n++] = (char *)*extra;
        argv[n] = NULL;
        if ((broker = e2e_spawn(env, "dev-broker.log", argv)) <= 0)
                return -1;
        env->bootstrap[0] = '\0';
        for (int i = 0; i < 100 && !env->bootstrap[0]; i++) {
                e2e_sleep_ms(100);
                if ((f = fopen(portfile, "r"))) {
                        if (!fgets(env->bootstrap, sizeof(env->bootstrap), f))
                                env->bootstrap[0] = '\0';
                        fclose(f);
                }
        }
        env->bootstrap[strcspn(env->bootstrap, "\r\n")] = '\0';
        if (!env->bootstrap[0]) {
                fprintf(stderr, "the dev broker did not start (see %s)\n",
                        env->workdir);
                e2e_stop(broker, SIGKILL);
                return -1;
        }
        return broker;
}

pid_t e2e_start_orchestrator(const e2e_env_t *env, const char *logname,
                             const char *module, const char *const extra[])
{
        const char *fixed[] = {env->orch_bin,
                               "--bootstrap",
                               env->bootstrap,
                               "--workflows",
                               module ? module : env->module,
                               "--log-level",
                               "info",
                               NULL};
        return spawn_with(env, logname, fixed, extra);
}

pid_t e2e_start_worker(const e2e_env_t *env, const char *logname,
                       const char *effects, const char *const extra[])
{
        const char *fixed[] = {
            env->worker_bin, "--bootstrap",   env->bootstrap, "--effects",
            effects,         "--concurrency", "16",           NULL};
        return spawn_with(env, logname, fixed, extra);
}

int e2e_example_start(e2e_example_t *ex, const char *name,
                      const char *module_var, const char *worker,
                      const char *queue)
{
        char modules[1100], err[1024];
        int rc;

        memset(ex, 0, sizeof(*ex));
        if ((rc = e2e_env_init(&ex->env, name)))
                return rc;
        snprintf(ex->env.worker_bin, sizeof(ex->env.worker_bin), "%s/%s",
                 keel_test_env("KEEL_TEST_BIN_DIR"), worker);
        snprintf(modules, sizeof(modules), "%s,%s", ex->env.module,
                 keel_test_env(module_var));
        snprintf(ex->effects, sizeof(ex->effects), "%s/effects.log",
                 ex->env.workdir);
        if ((rc = e2e_topics_create_queue(&ex->env, queue)))
                return rc;
        if (!(ex->cfg = keel_config_new()))
                return KEEL_ERR_NOMEM;
        keel_config_set(ex->cfg, "bootstrap", ex->env.bootstrap, NULL, NULL, 0);
        ex->client = keel_client_new(ex->cfg, err, sizeof(err));
        if (!ex->client) {
                fprintf(stderr, "client: %s\n", err);
                e2e_example_stop(ex);
                return KEEL_ERR_CONFIG;
        }
        ex->orch =
            e2e_start_orchestrator(&ex->env, "orchestrator.log", modules, NULL);
        ex->worker =
            e2e_start_worker(&ex->env, "worker.log", ex->effects, NULL);
        if (ex->orch <= 0 || ex->worker <= 0) {
                fprintf(stderr, "cannot start %s or %s\n", ex->env.orch_bin,
                        ex->env.worker_bin);
                e2e_example_stop(ex);
                return KEEL_ERR_IO;
        }
        return KEEL_OK;
}

void e2e_example_stop(e2e_example_t *ex)
{
        e2e_stop(ex->orch, SIGTERM);
        e2e_stop(ex->worker, SIGTERM);
        ex->orch = ex->worker = 0;
        keel_client_destroy(ex->client);
        ex->client = NULL;
        keel_config_destroy(ex->cfg);
        ex->cfg = NULL;
}

int e2e_start_payment(keel_client_t *client, const char *id,
                      const json_t *input, int signal, char *err,
                      size_t errsize)
{
        int rc = keel_client_start(client, id, PAYMENT_WORKFLOW, input, NULL,
                                   NULL, err, errsize);
        if (!rc && signal)
                rc = keel_client_signal(client, id, NULL, "refundApproved",
                                        NULL, 0, err, errsize);
        return rc;
}

/* ---- the history watcher ---------------------------------------------- */

typedef struct watch_priv_s {
        rd_kafka_t *c;
        keel__history_reader_t readers[E2E_PARTITIONS];
        int keep_events;
} watch_priv_t;

e2e_wf_t *e2e_watch_wf(e2e_watch_t *w, const char *id)
{
        /* ids are "<prefix><i>" */
        size_t pl = strlen(w->prefix);
        char *end;
        long i;
        if (strncmp(id, w->prefix, pl) || !id[pl])
                return NULL;
        i = strtol(id + pl, &end, 10);
        return !*end && i >= 0 && i < w->n ? &w->wfs[i] : NULL;
}

static void apply_event(void *opaque, const json_t *ev)
{
        e2e_watch_t *w = opaque;
        watch_priv_t *pv = w->priv;
        const json_t *rec = json_object_get(ev, "record");
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *id = json_string_value(json_object_get(rec, "workflow_id"));
        const char *run = json_string_value(json_object_get(rec, "run_id"));
        int64_t seq = json_integer_value(json_object_get(rec, "seq"));
        e2e_wf_t *wf = id ? e2e_watch_wf(w, id) : NULL;

        if (!wf || !type || !run)
                return;
        if (pv->keep_events && wf->events)
                json_array_append(wf->events, (json_t *)ev);
        if (strcmp(wf->run, run)) {
                if (seq != 1)
                        w->seq_violations++;
                snprintf(wf->run, sizeof(wf->run), "%s", run);
                wf->last_seq = 0;
        }
        if (seq != wf->last_seq + 1) {
                w->seq_violations++;
                if (w->seq_violations < 10)
                        fprintf(stderr, "%s: seq %lld after %lld (%s)\n", id,
                                (long long)seq, (long long)wf->last_seq, type);
        }
        if (seq > wf->last_seq)
                wf->last_seq = seq;
        if (!strcmp(type, "keel.history.WorkflowCompleted")) {
                json_t *r = json_loads(
                    json_string_value(json_object_get(rec, "result")), 0, NULL);
                const char *st =
                    json_string_value(json_object_get(r, "status"));
                snprintf(wf->status, sizeof(wf->status), "%s", st ? st : "?");
                json_decref(r);
        } else if (!strcmp(type, "keel.history.WorkflowFailed") ||
                   !strcmp(type, "keel.history.WorkflowCancelled") ||
                   !strcmp(type, "keel.history.WorkflowTerminated")) {
                snprintf(wf->status, sizeof(wf->status), "%s", type + 13);
        } else {
                return;
        }
        if (wf->closes++ == 0)
                w->closed++;
}

e2e_watch_t *e2e_watch_new(const char *bootstrap, const char *prefix, int n,
                           int flags)
{
        e2e_watch_t *w = calloc(1, sizeof(*w));
        watch_priv_t *pv = calloc(1, sizeof(*pv));
        rd_kafka_conf_t *conf;
        rd_kafka_topic_partition_list_t *tl;
        char err[512];

        if (!w || !pv || n < 0 ||
            !(w->wfs = calloc((size_t)n + 1, sizeof(*w->wfs)))) {
                free(pv);
                if (w)
                        free(w->wfs);
                free(w);
                return NULL;
        }
        w->priv = pv;
        w->n = n;
        snprintf(w->prefix, sizeof(w->prefix), "%s", prefix);
        pv->keep_events = flags & E2E_WATCH_EVENTS;
        for (int i = 0; i < n; i++) {
                snprintf(w->wfs[i].id, sizeof(w->wfs[i].id), "%s%d", prefix, i);
                if (pv->keep_events)
                        w->wfs[i].events = json_array();
        }
        for (int p = 0; p < E2E_PARTITIONS; p++)
                keel__history_reader_init(&pv->readers[p], apply_event, w);

        conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "group.id", prefix, err, sizeof(err));
        rd_kafka_conf_set(conf, "isolation.level", "read_committed", err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                          sizeof(err));
        pv->c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        if (!pv->c) {
                fprintf(stderr, "watcher: %s\n", err);
                rd_kafka_conf_destroy(conf);
                e2e_watch_destroy(w);
                return NULL;
        }
        tl = rd_kafka_topic_partition_list_new(E2E_PARTITIONS);
        for (int p = 0; p < E2E_PARTITIONS; p++)
                rd_kafka_topic_partition_list_add(tl, KEEL_TOPIC_HISTORY, p)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(pv->c, tl);
        rd_kafka_topic_partition_list_destroy(tl);
        return w;
}

void e2e_watch_destroy(e2e_watch_t *w)
{
        watch_priv_t *pv;
        if (!w)
                return;
        pv = w->priv;
        if (pv) {
                for (int p = 0; p < E2E_PARTITIONS; p++)
                        keel__history_reader_destroy(&pv->readers[p]);
                if (pv->c) {
                        rd_kafka_consumer_close(pv->c);
                        rd_kafka_destroy(pv->c);
                }
                free(pv);
        }
        for (int i = 0; i < w->n; i++)
                json_decref(w->wfs[i].events);
        free(w->wfs);
        free(w);
}

static void sum_counters(e2e_watch_t *w)
{
        watch_priv_t *pv = w->priv;
        w->applied = w->fenced = w->torn = w->undecodable = 0;
        for (int p = 0; p < E2E_PARTITIONS; p++) {
                w->applied += pv->readers[p].applied;
                w->fenced += pv->readers[p].fenced;
                w->torn += pv->readers[p].torn;
                w->undecodable += pv->readers[p].undecodable;
        }
}

int e2e_watch_until(e2e_watch_t *w, int64_t deadline,
                    int (*done)(e2e_watch_t *w, void *opaque), void *opaque)
{
        watch_priv_t *pv = w->priv;
        char err[512];
        int ok = 0;

        while (!(ok = done && done(w, opaque)) && e2e_now_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(pv->c, 200);
                if (!m)
                        continue;
                if (!m->err && m->partition >= 0 &&
                    m->partition < E2E_PARTITIONS)
                        keel__history_reader_feed(&pv->readers[m->partition],
                                                  m->payload, m->len, err,
                                                  sizeof(err));
                rd_kafka_message_destroy(m);
                sum_counters(w);
        }
        sum_counters(w);
        return ok;
}

int e2e_watch_all_closed(e2e_watch_t *w, void *opaque)
{
        (void)opaque;
        return w->closed >= w->n;
}

const json_t *e2e_wf_event(const e2e_wf_t *wf, const char *type,
                           const char *activity_id, int nth)
{
        size_t i;
        const json_t *ev;
        json_array_foreach(wf->events, i, ev)
        {
                const char *t = json_string_value(json_object_get(ev, "type"));
                const json_t *rec = json_object_get(ev, "record");
                const char *aid =
                    json_string_value(json_object_get(rec, "activity_id"));
                if (!t || strncmp(t, "keel.history.", 13) ||
                    strcmp(t + 13, type))
                        continue;
                if (activity_id && (!aid || strcmp(aid, activity_id)))
                        continue;
                if (nth-- == 0)
                        return rec;
        }
        return NULL;
}

const char *e2e_wf_activity_id(const e2e_wf_t *wf, const char *activity_type,
                               int nth)
{
        size_t i;
        const json_t *ev;
        json_array_foreach(wf->events, i, ev)
        {
                const json_t *rec = json_object_get(ev, "record");
                const char *t = json_string_value(json_object_get(ev, "type"));
                const char *at =
                    json_string_value(json_object_get(rec, "activity_type"));
                if (!t || strcmp(t, "keel.history.ActivityScheduled") || !at ||
                    strcmp(at, activity_type))
                        continue;
                if (nth-- == 0)
                        return json_string_value(
                            json_object_get(rec, "activity_id"));
        }
        return NULL;
}

int e2e_wf_published(const e2e_wf_t *wf, const char *key, const char *value)
{
        const json_t *rec;
        int yes = 0;
        for (int i = 0;
             !yes && (rec = e2e_wf_event(wf, "MarkerRecorded", NULL, i)); i++) {
                const char *name =
                    json_string_value(json_object_get(rec, "marker_name"));
                json_t *st;
                const char *v;
                if (!name || strcmp(name, "state"))
                        continue;
                st = json_loads(
                    json_string_value(json_object_get(rec, "details")), 0,
                    NULL);
                v = json_string_value(json_object_get(st, key));
                yes = v && !strcmp(v, value);
                json_decref(st);
        }
        return yes;
}

int e2e_effects_count(const char *path, const char *activity, e2e_watch_t *w,
                      int *counts)
{
        size_t al = strlen(activity);
        char line[512];
        int total = 0;
        FILE *f = fopen(path, "r");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f)) {
                char *key = line + al + 1;
                e2e_wf_t *wf;
                if (strncmp(line, activity, al) || line[al] != '\t')
                        continue;
                key[strcspn(key, "/\n")] = '\0';
                if (!(wf = e2e_watch_wf(w, key)))
                        continue;
                counts[wf - w->wfs]++;
                total++;
        }
        fclose(f);
        return total;
}

/* ---- the dev broker's control port ------------------------------------ */

int e2e_dev_broker_control(int port, const char *cmd, char *reply, size_t size)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        size_t len = 0, cl = strlen(cmd);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char c;

        reply[0] = '\0';
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
            send(fd, cmd, cl, MSG_NOSIGNAL) != (ssize_t)cl ||
            send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
                snprintf(reply, size, "error control port %d: %s", port,
                         strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        while (recv(fd, &c, 1, 0) == 1 && c != '\n')
                if (len + 1 < size)
                        reply[len++] = c;
        reply[len] = '\0';
        close(fd);
        return strncmp(reply, "ok", 2) ? -1 : 0;
}

/* ---- programs run to their end, children that ended --------------------- */

int e2e_run(const e2e_env_t *env, const char *logname, char *const argv[],
            int timeout_ms)
{
        int64_t deadline = e2e_now_ms() + timeout_ms;
        pid_t pid = e2e_spawn(env, logname, argv);
        int st;

        if (pid <= 0)
                return -1;
        while (e2e_now_ms() < deadline) {
                if (e2e_reap(pid, &st))
                        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
                e2e_sleep_ms(50);
        }
        fprintf(stderr, "%s: still running after %d ms, killed\n", argv[0],
                timeout_ms);
        e2e_stop(pid, SIGKILL);
        return -1;
}

int e2e_reap(pid_t pid, int *status)
{
        int st = 0;
        if (pid <= 0 || waitpid(pid, &st, WNOHANG) != pid)
                return 0;
        forget(pid);
        if (status)
                *status = st;
        return 1;
}

/* ---- keel-projector ----------------------------------------------------- */

pid_t e2e_start_projector(const e2e_env_t *env, const char *logname,
                          const char *port_file, const char *const extra[])
{
        char bin[600];
        const char *fixed[] = {bin,
                               "--bootstrap",
                               env->bootstrap,
                               "-X",
                               "http.listen=127.0.0.1:0",
                               "--port-file",
                               port_file,
                               NULL};
        snprintf(bin, sizeof(bin), "%s/keel-projector",
                 keel_test_env("KEEL_TEST_BIN_DIR"));
        unlink(port_file);
        return spawn_with(env, logname, fixed, extra);
}

int e2e_read_port(const char *path, int64_t deadline)
{
        do {
                FILE *f = fopen(path, "r");
                int port = 0;
                if (f) {
                        if (fscanf(f, "%d", &port) != 1)
                                port = 0;
                        fclose(f);
                }
                if (port > 0)
                        return port;
                e2e_sleep_ms(100);
        } while (e2e_now_ms() < deadline);
        return -1;
}

/* ---- killing a process again and again --------------------------------- */

static void *killer_main(void *arg)
{
        e2e_killer_t *k = arg;
        unsigned seed = (unsigned)getpid();
        int span = k->max_ms > k->min_ms ? k->max_ms - k->min_ms : 1;
        for (int i = 0; i < k->kills && !k->stop; i++) {
                e2e_sleep_ms(k->min_ms + rand_r(&seed) % span);
                if (k->stop)
                        break;
                e2e_stop(k->pid, SIGKILL);
                k->pid = k->restart();
                k->done++;
        }
        return NULL;
}

int e2e_killer_start(e2e_killer_t *k)
{
        k->done = k->stop = 0;
        return pthread_create(&k->thread, NULL, killer_main, k) ? -1 : 0;
}

void e2e_killer_stop(e2e_killer_t *k)
{
        k->stop = 1;
        pthread_join(k->thread, NULL);
}

int e2e_log_count(const e2e_env_t *env, const char *logname, const char *needle)
{
        char path[700], line[4096];
        int n = 0;
        FILE *f;
        snprintf(path, sizeof(path), "%s/%s", env->workdir, logname);
        if (!(f = fopen(path, "r")))
                return 0;
        while (fgets(line, sizeof(line), f))
                n += strstr(line, needle) != NULL;
        fclose(f);
        return n;
}

/*
 * bench_restore.c: keel-bench-restore, the restore and failover
 * benchmarks (issue 7, "Restore" and the restored half of "Memory").
 *
 *   fill      append synthetic workflows to keel.history[--partition]
 *             until it holds --events more events: copies, under new IDs
 *             on that partition, of a real run the orchestrator wrote
 *             (bench_template_load()), behind a PartitionClaim of a new
 *             epoch and closed in batches by Checkpoints that keep the
 *             partition's inbox position, as a partition processor writes
 *             them. No orchestrator may run meanwhile.
 *   takeover  start keel-orchestrator and time its restore of
 *             --partition: from its own "claimed" log line (records,
 *             restore_ms) and from the outside (start to claimed); then
 *             its resident memory once every partition is claimed; then
 *             stop it.
 *   failover  run orchestrators with a light load of bench3 workflows,
 *             kill -9 one and measure, for each partition it owned, the
 *             time until a workflow event of a newer epoch is committed
 *             in keel.history: the moment those workflows make progress
 *             again. --restart starts it again at once (a supervisor's
 *             restart); --standby runs a second orchestrator from the
 *             start, which takes the partitions over. --static gives each
 *             orchestrator a kafka.group.instance.id.
 */
#include "bench_common.h"

#include "history_int.h"
#include "keel/codec.h"
#include "keel/partition.h"
#include "keel/topics.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct opts_s {
        const char *cmd, *bootstrap, *json_path, *orch_bin, *module, *workdir;
        const char *label, *session_ms, *timeout_ms;
        int partition, is_static, restart, standby, seconds;
        long events;
        double rate;
} opts_t;

/* ---- fill -------------------------------------------------------------------
 */

/* The newest claim epoch of history[p] and its last checkpoint's inbox
 * offset (-1: none), reading only those two kinds of record. */
static void partition_state(const char *bootstrap, int32_t p, int64_t *epoch,
                            int64_t *inbox)
{
        rd_kafka_conf_t *conf = bench_kconf(bootstrap);
        rd_kafka_topic_partition_list_t *tl;
        char err[512];
        rd_kafka_t *rk;
        int64_t lo, hi, next = 0;

        *epoch = 0;
        *inbox = -1;
        bench_kset(conf, "group.id", "keel-bench-fill");
        bench_kset(conf, "enable.auto.commit", "false");
        bench_kset(conf, "isolation.level", "read_committed");
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))))
                bench_die("consumer: %s", err);
        rd_kafka_poll_set_consumer(rk);
        if (rd_kafka_query_watermark_offsets(rk, KEEL_TOPIC_HISTORY, p, &lo,
                                             &hi, 10000))
                bench_die("no offsets for %s[%d]", KEEL_TOPIC_HISTORY, p);
        tl = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tl, KEEL_TOPIC_HISTORY, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, tl);
        rd_kafka_topic_partition_list_destroy(tl);
        /* Transaction markers take offsets too: stop at the last record
         * before hi, or when the log is quiet at its end. */
        for (int idle = 0; next < hi - 1 && idle < 20;) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                const char *type;
                json_t *rec;
                if (!m) {
                        idle++;
                        continue;
                }
                idle = 0;
                if (!m->err)
                        next = m->offset + 1;
                if (!m->err &&
                    !keel_codec_peek_type(m->payload, m->len, &type) &&
                    (!strcmp(type, "keel.history.PartitionClaim") ||
                     !strcmp(type, "keel.history.Checkpoint")) &&
                    !keel_codec_decode(m->payload, m->len, &type, &rec, NULL,
                                       0)) {
                        int64_t e =
                            json_integer_value(json_object_get(rec, "epoch"));
                        if (!strcmp(type, "keel.history.PartitionClaim")) {
                                if (e > *epoch)
                                        *epoch = e;
                        } else if (e == *epoch) {
                                *inbox = json_integer_value(
                                    json_object_get(rec, "inbox_offset"));
                        }
                        json_decref(rec);
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

static void produce_rec(rd_kafka_t *rk, int32_t p, const char *key,
                        const char *type, const json_t *rec, long long *bytes)
{
        unsigned char *buf;
        size_t len;
        char err[256];
        rd_kafka_resp_err_t e;

        if (keel_codec_encode(type, rec, &buf, &len, err, sizeof(err)))
                bench_die("encoding %s: %s", type, err);
        *bytes += (long long)len;
        while ((e = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(KEEL_TOPIC_HISTORY),
                    RD_KAFKA_V_PARTITION(p), RD_KAFKA_V_KEY(key, strlen(key)),
                    RD_KAFKA_V_VALUE(buf, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                    RD_KAFKA_V_HEADER("keel-id", key, -1), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 10);
        if (e)
                bench_die("produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 0);
}

static int cmd_fill(const opts_t *o, const char *wf_type, const char *until)
{
        rd_kafka_conf_t *conf = bench_kconf(o->bootstrap);
        json_t *tmpl, *rec;
        char err[512], key[1200], id[128], run[64];
        rd_kafka_t *rk;
        int64_t epoch, inbox, t0;
        long long events = 0, bytes = 0, wfs = 0, batch = 0;
        long k = 0;
        size_t per_batch;
        double secs;

        if (!(tmpl = bench_template_load(o->bootstrap, wf_type, until, 60000)))
                bench_die("no %s workflow reaching %s in keel.history to copy",
                          wf_type, until);
        partition_state(o->bootstrap, o->partition, &epoch, &inbox);
        epoch++;
        /* A partition processor's batch at full load: ~500 events. */
        per_batch = 500 / json_array_size(tmpl) + 1;
        bench_kset(conf, "enable.idempotence", "true");
        bench_kset(conf, "linger.ms", "20");
        bench_kset(conf, "queue.buffering.max.messages", "1000000");
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))))
                bench_die("producer: %s", err);
        t0 = bench_us();
        snprintf(key, sizeof(key), "%s%d/%lld", KEEL__KEY_CLAIM, o->partition,
                 (long long)epoch);
        rec = json_pack("{si sI ss sI}", "partition", o->partition, "epoch",
                        (json_int_t)epoch, "owner", "keel-bench-restore fill",
                        "ts", (json_int_t)bench_wall_ms());
        produce_rec(rk, o->partition, key, "keel.history.PartitionClaim", rec,
                    &bytes);
        json_decref(rec);
        while (events < o->events) {
                json_t *copy, *ev;
                size_t i;
                int idl;
                do {
                        idl = snprintf(id, sizeof(id), "%s%ld", o->label, k++);
                } while (keel_partition_of(id, (size_t)idl, BENCH_PARTITIONS) !=
                         o->partition);
                snprintf(run, sizeof(run), "%08lx-0000-4000-8000-%012lx",
                         (unsigned long)getpid(), (unsigned long)k);
                copy = bench_template_copy(tmpl, id, run, epoch);
                json_array_foreach(copy, i, ev)
                {
                        const json_t *r = json_object_get(ev, "record");
                        snprintf(key, sizeof(key), "%s/%lld", id,
                                 (long long)json_integer_value(
                                     json_object_get(r, "seq")));
                        produce_rec(
                            rk, o->partition, key,
                            json_string_value(json_object_get(ev, "type")), r,
                            &bytes);
                        events++;
                        batch++;
                }
                json_decref(copy);
                if (++wfs % (long long)per_batch == 0 || events >= o->events) {
                        snprintf(key, sizeof(key), "%s%d/%lld",
                                 KEEL__KEY_CHECKPOINT, o->partition,
                                 (long long)epoch);
                        rec =
                            json_pack("{si sI sI sI sI}", "partition",
                                      o->partition, "epoch", (json_int_t)epoch,
                                      "inbox_offset", (json_int_t)inbox,
                                      "batch_events", (json_int_t)batch, "ts",
                                      (json_int_t)bench_wall_ms());
                        produce_rec(rk, o->partition, key,
                                    "keel.history.Checkpoint", rec, &bytes);
                        json_decref(rec);
                        batch = 0;
                }
        }
        if (rd_kafka_flush(rk, 120000))
                bench_die("flush timed out");
        secs = (double)(bench_us() - t0) / 1e6;
        rd_kafka_destroy(rk);
        printf("filled keel.history[%d]: %lld workflows (%s, %zu events each), "
               "%lld events, %.0f MB, epoch %lld, in %.1f s\n",
               o->partition, wfs, wf_type, json_array_size(tmpl), events,
               (double)bytes / 1e6, (long long)epoch, secs);
        json_decref(tmpl);
        if (o->json_path)
                bench_json_write(
                    o->json_path,
                    json_pack("{ss ss si sI sI sI sf}", "bench", "fill",
                              "workflow_type", wf_type, "partition",
                              o->partition, "workflows", (json_int_t)wfs,
                              "events", (json_int_t)events, "bytes",
                              (json_int_t)bytes, "seconds", secs));
        return 0;
}

/* ---- orchestrator processes -------------------------------------------------
 */

static pid_t start_orch(const opts_t *o, const char *log, const char *mport,
                        const char *instance)
{
        char inst[128], sess[64], hbeat[64], tmo[64];
        const char *argv[24];
        int n = 0;
        argv[n++] = o->orch_bin;
        argv[n++] = "--bootstrap";
        argv[n++] = o->bootstrap;
        argv[n++] = "--workflows";
        argv[n++] = o->module;
        argv[n++] = "--log-level";
        argv[n++] = "info";
        if (mport) {
                argv[n++] = "--metrics-port-file";
                argv[n++] = mport;
        }
        if (instance) {
                snprintf(inst, sizeof(inst), "kafka.group.instance.id=%s",
                         instance);
                argv[n++] = "-X";
                argv[n++] = inst;
        }
        if (o->timeout_ms) {
                /* Restore gives up after timeout.ms (30 s by default). */
                snprintf(tmo, sizeof(tmo), "timeout.ms=%s", o->timeout_ms);
                argv[n++] = "-X";
                argv[n++] = tmo;
        }
        if (o->session_ms) {
                /* Heartbeats a quarter of the session apart (keel's
                 * default, 1 s, suits its default 10 s session). */
                long hb = atol(o->session_ms) / 4;
                snprintf(sess, sizeof(sess), "kafka.session.timeout.ms=%s",
                         o->session_ms);
                snprintf(hbeat, sizeof(hbeat),
                         "kafka.heartbeat.interval.ms=%ld",
                         hb < 100 ? 100 : hb);
                argv[n++] = "-X";
                argv[n++] = sess;
                argv[n++] = "-X";
                argv[n++] = hbeat;
        }
        argv[n] = NULL;
        return bench_spawn((char *const *)argv, log);
}

/* Wait until log (from byte `from`) has a line holding every needle;
 * copy it to line. 0, or -1 at the deadline. */
static int wait_line(const char *log, long from, const char *n1, const char *n2,
                     char *line, size_t size, int timeout_ms)
{
        int64_t deadline = bench_us() + (int64_t)timeout_ms * 1000;
        while (bench_us() < deadline) {
                FILE *f = fopen(log, "r");
                if (f) {
                        fseek(f, from, SEEK_SET);
                        while (fgets(line, (int)size, f))
                                if (strstr(line, n1) &&
                                    (!n2 || strstr(line, n2))) {
                                        fclose(f);
                                        return 0;
                                }
                        fclose(f);
                }
                bench_sleep_us(5000);
        }
        return -1;
}

static long long field(const char *line, const char *key)
{
        const char *p = strstr(line, key);
        return p ? atoll(p + strlen(key)) : -1;
}

/* Over every partition's "msg=claimed" line in log: the records read in
 * all (*records) and the longest restore (*ms). The partitions assigned
 * together are restored together, by one consumer and one thread. */
static void claimed_totals(const char *log, long long *records, long long *ms)
{
        char line[2048];
        FILE *f = fopen(log, "r");
        *records = *ms = 0;
        while (f && fgets(line, sizeof(line), f)) {
                long long r, t;
                if (!strstr(line, "msg=claimed"))
                        continue;
                r = field(line, " records=");
                t = field(line, " restore_ms=");
                *records += r > 0 ? r : 0;
                if (t > *ms)
                        *ms = t;
        }
        if (f)
                fclose(f);
}

static int cmd_takeover(const opts_t *o)
{
        char log[600], line[2048], needle[64];
        int64_t t0, t1;
        long long records, restore_ms, open, all_records, all_ms;
        long rss;
        pid_t pid;

        snprintf(log, sizeof(log), "%s/takeover-%s.log", o->workdir, o->label);
        snprintf(needle, sizeof(needle), "partition=%d msg=claimed",
                 o->partition);
        t0 = bench_us();
        if ((pid = start_orch(o, log, NULL, NULL)) <= 0)
                bench_die("cannot start %s", o->orch_bin);
        if (wait_line(log, 0, needle, NULL, line, sizeof(line), 600000))
                bench_die("partition %d not claimed within 600 s (see %s)",
                          o->partition, log);
        t1 = bench_us();
        records = field(line, " records=");
        restore_ms = field(line, " restore_ms=");
        open = field(line, " open=");
        if (wait_line(log, 0, "msg=assigned", NULL, line, sizeof(line), 600000))
                bench_die("partitions not assigned within 600 s (see %s)", log);
        bench_sleep_us(2000000);
        claimed_totals(log, &all_records, &all_ms);
        rss = bench_rss_kb(pid);
        bench_stop(pid, SIGTERM, 30000);
        printf("\n== Restore (%s): keel-orchestrator takes over "
               "keel.history[%d]\n",
               o->label, o->partition);
        printf("%-44s %12lld\n", "history records read", records);
        printf("%-44s %12lld\n", "restore_ms (orchestrator's log)", restore_ms);
        printf("%-44s %12.0f\n", "records per second",
               restore_ms > 0 ? (double)records * 1000 / (double)restore_ms
                              : 0);
        printf("%-44s %12lld\n", "records read, all partitions", all_records);
        printf("%-44s %12.0f\n", "records per second, all partitions",
               all_ms > 0 ? (double)all_records * 1000 / (double)all_ms : 0);
        printf("%-44s %12.0f\n", "process start to claimed, ms",
               (double)(t1 - t0) / 1000);
        printf("%-44s %12lld\n", "open workflows in the partition", open);
        printf("%-44s %12ld\n", "orchestrator VmRSS after restore, KiB", rss);
        if (o->json_path) {
                json_t *doc = json_pack(
                    "{ss ss si sI sI sf sf sI sI sI sf}", "bench", "takeover",
                    "label", o->label, "partition", o->partition, "records",
                    (json_int_t)records, "restore_ms", (json_int_t)restore_ms,
                    "records_per_s",
                    restore_ms > 0 ? (double)records * 1000 / (double)restore_ms
                                   : 0,
                    "start_to_claimed_ms", (double)(t1 - t0) / 1000,
                    "open_workflows", (json_int_t)open, "rss_kb",
                    (json_int_t)rss, "all_partitions_records",
                    (json_int_t)all_records, "all_partitions_records_per_s",
                    all_ms > 0 ? (double)all_records * 1000 / (double)all_ms
                               : 0);
                bench_json_write(o->json_path, doc);
        }
        return 0;
}

/* ---- failover
 * ----------------------------------------------------------------- */

typedef struct fo_s {
        const opts_t *o;
        rd_kafka_t *producer, *consumer;
        pthread_mutex_t lock;
        int64_t epoch[BENCH_PARTITIONS]; /* newest claim epoch */
        long owner_pid[BENCH_PARTITIONS];
        int64_t cut_epoch[BENCH_PARTITIONS]; /* newest before the kill */
        int victim[BENCH_PARTITIONS];        /* owned by the killed one */
        int64_t progress_us[BENCH_PARTITIONS];
        int64_t claim_us[BENCH_PARTITIONS];
        int64_t completed; /* WorkflowCompleted seen */
        int armed;
        atomic_int stop;
} fo_t;

static void *fo_watch(void *arg)
{
        fo_t *f = arg;
        while (!atomic_load(&f->stop)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(f->consumer, 50);
                const char *type;
                json_t *rec;
                int32_t p;
                if (!m)
                        continue;
                p = m->partition;
                if (m->err || p < 0 || p >= BENCH_PARTITIONS ||
                    keel_codec_decode(m->payload, m->len, &type, &rec, NULL,
                                      0)) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                pthread_mutex_lock(&f->lock);
                {
                        int64_t e =
                            json_integer_value(json_object_get(rec, "epoch"));
                        if (!strcmp(type, "keel.history.PartitionClaim")) {
                                const char *owner = json_string_value(
                                    json_object_get(rec, "owner"));
                                /* "<txn id>@<host>:<pid>:<ms>" */
                                const char *c = owner ? strchr(owner, '@') : 0;
                                c = c ? strchr(c, ':') : NULL;
                                if (e > f->epoch[p]) {
                                        f->epoch[p] = e;
                                        f->owner_pid[p] = c ? atol(c + 1) : 0;
                                }
                                if (f->armed && e > f->cut_epoch[p] &&
                                    !f->claim_us[p])
                                        f->claim_us[p] = bench_us();
                        } else if (strcmp(type, "keel.history.Checkpoint")) {
                                if (!strcmp(type,
                                            "keel.history.WorkflowCompleted"))
                                        f->completed++;
                                if (f->armed && e > f->cut_epoch[p] &&
                                    !f->progress_us[p])
                                        f->progress_us[p] = bench_us();
                        }
                }
                pthread_mutex_unlock(&f->lock);
                json_decref(rec);
                rd_kafka_message_destroy(m);
        }
        return NULL;
}

static void fo_clients(fo_t *f)
{
        rd_kafka_conf_t *pc = bench_kconf(f->o->bootstrap);
        rd_kafka_conf_t *cc = bench_kconf(f->o->bootstrap);
        char err[512];

        bench_kset(pc, "enable.idempotence", "true");
        bench_kset(pc, "linger.ms", "0");
        if (!(f->producer =
                  rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err))))
                bench_die("producer: %s", err);
        bench_kset(cc, "group.id", "keel-bench-failover");
        bench_kset(cc, "enable.auto.commit", "false");
        bench_kset(cc, "isolation.level", "read_committed");
        bench_kset(cc, "fetch.wait.max.ms", "10");
        if (!(f->consumer =
                  rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err))))
                bench_die("consumer: %s", err);
        rd_kafka_poll_set_consumer(f->consumer);
        /* From the beginning: the claims tell who owns what. */
        bench_assign(f->consumer, KEEL_TOPIC_HISTORY, BENCH_PARTITIONS,
                     RD_KAFKA_OFFSET_BEGINNING);
}

/* Start workflows at o->rate until `until` (monotonic us). */
static void fo_load(fo_t *f, int64_t until, long *seq)
{
        int64_t t0 = bench_us();
        long i0 = *seq;
        while (bench_us() < until) {
                int64_t at =
                    t0 + (int64_t)((double)(*seq - i0) * 1e6 / f->o->rate);
                char id[96];
                unsigned char *val;
                size_t len;
                int idl;
                if (bench_us() < at) {
                        rd_kafka_poll(f->producer, 1);
                        continue;
                }
                idl = snprintf(id, sizeof(id), "fo-%d-%ld", (int)getpid(),
                               (*seq)++);
                if (bench_start_record(id, "bench3", "{\"amount\":1}", &val,
                                       &len))
                        bench_die("cannot encode a start");
                if (rd_kafka_producev(f->producer,
                                      RD_KAFKA_V_TOPIC(KEEL_TOPIC_INBOX),
                                      RD_KAFKA_V_PARTITION(keel_partition_of(
                                          id, (size_t)idl, BENCH_PARTITIONS)),
                                      RD_KAFKA_V_KEY(id, (size_t)idl),
                                      RD_KAFKA_V_VALUE(val, len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                      RD_KAFKA_V_END))
                        free(val);
        }
}

static int cmd_failover(const opts_t *o)
{
        fo_t f = {.o = o};
        char log1[600], log2[600], inst1[64], inst2[64];
        pthread_t th;
        pid_t o1, o2 = 0;
        long seq = 0;
        int64_t t_kill, deadline;
        int affected = 0, recovered = 0;
        bench_samples_t prog = {0}, claim = {0};
        json_t *parts = json_array(), *out;

        pthread_mutex_init(&f.lock, NULL);
        snprintf(log1, sizeof(log1), "%s/failover-%s-1.log", o->workdir,
                 o->label);
        snprintf(log2, sizeof(log2), "%s/failover-%s-2.log", o->workdir,
                 o->label);
        snprintf(inst1, sizeof(inst1), "bench-orch-1-%d", (int)getpid());
        snprintf(inst2, sizeof(inst2), "bench-orch-2-%d", (int)getpid());
        fo_clients(&f);
        if (pthread_create(&th, NULL, fo_watch, &f))
                bench_die("thread");
        o1 = start_orch(o, log1, NULL, o->is_static ? inst1 : NULL);
        if (o->standby)
                o2 = start_orch(o, log2, NULL, o->is_static ? inst2 : NULL);
        if (o1 <= 0 || (o->standby && o2 <= 0))
                bench_die("cannot start %s", o->orch_bin);
        /* Both settled: every partition claimed by one of them, and a
         * steady light load going through. */
        deadline = bench_us() + 120 * 1000000LL;
        for (;;) {
                int mine = 0, all = 1;
                fo_load(&f, bench_us() + 500000, &seq);
                pthread_mutex_lock(&f.lock);
                for (int p = 0; p < BENCH_PARTITIONS; p++) {
                        if (f.owner_pid[p] == o1)
                                mine++;
                        else if (!o->standby || f.owner_pid[p] != o2)
                                all = 0;
                }
                pthread_mutex_unlock(&f.lock);
                if (all && mine)
                        break;
                if (bench_us() > deadline)
                        bench_die("orchestrators did not claim every "
                                  "partition within 120 s (see %s)",
                                  log1);
        }
        fo_load(&f, bench_us() + 3000000, &seq);

        pthread_mutex_lock(&f.lock);
        for (int p = 0; p < BENCH_PARTITIONS; p++) {
                f.cut_epoch[p] = f.epoch[p];
                f.victim[p] = f.owner_pid[p] == o1;
        }
        f.armed = 1;
        pthread_mutex_unlock(&f.lock);
        t_kill = bench_us();
        kill(o1, SIGKILL);
        bench_stop(o1, SIGKILL, 1000);
        if (o->restart)
                o1 = start_orch(o, log1, NULL, o->is_static ? inst1 : NULL);
        deadline = t_kill + (int64_t)o->seconds * 1000000;
        while (bench_us() < deadline) {
                int done = 1;
                fo_load(&f, bench_us() + 100000, &seq);
                pthread_mutex_lock(&f.lock);
                for (int p = 0; p < BENCH_PARTITIONS; p++)
                        if (f.victim[p] && !f.progress_us[p])
                                done = 0;
                pthread_mutex_unlock(&f.lock);
                if (done)
                        break;
        }
        atomic_store(&f.stop, 1);
        pthread_join(th, NULL);
        for (int p = 0; p < BENCH_PARTITIONS; p++) {
                if (!f.victim[p])
                        continue;
                affected++;
                if (f.progress_us[p]) {
                        recovered++;
                        bench_samples_add(&prog,
                                          (double)(f.progress_us[p] - t_kill) /
                                              1000.0);
                }
                if (f.claim_us[p])
                        bench_samples_add(
                            &claim, (double)(f.claim_us[p] - t_kill) / 1000.0);
                json_array_append_new(
                    parts,
                    json_pack("{si sf sf}", "partition", p, "claimed_ms",
                              f.claim_us[p]
                                  ? (double)(f.claim_us[p] - t_kill) / 1000.0
                                  : -1.0,
                              "progress_ms",
                              f.progress_us[p]
                                  ? (double)(f.progress_us[p] - t_kill) / 1000.0
                                  : -1.0));
        }
        bench_stop(o1, SIGTERM, 20000);
        bench_stop(o2, SIGTERM, 20000);
        printf("\n== Failover (%s): kill -9 of an orchestrator, %s, %s "
               "membership%s%s\n",
               o->label,
               o->restart ? "restarted at once" : "a second one takes over",
               o->is_static ? "static" : "dynamic",
               o->session_ms ? ", session.timeout.ms=" : "",
               o->session_ms ? o->session_ms : "");
        printf("%-44s %6d of %d\n", "partitions recovered", recovered,
               affected);
        printf("%-44s %8.0f ms (first %0.f ms)\n",
               "kill -9 -> new claim, last partition",
               bench_samples_max(&claim), bench_samples_pct(&claim, 0));
        printf("%-44s %8.0f ms (first %.0f ms)\n",
               "kill -9 -> workflows progress, last partition",
               bench_samples_max(&prog), bench_samples_pct(&prog, 0));
        out = json_pack("{ss ss sb sb ss si si sf sf sf so}", "bench",
                        "failover", "label", o->label, "static", o->is_static,
                        "restart", o->restart, "session_timeout_ms",
                        o->session_ms ? o->session_ms : "10000 (keel default)",
                        "partitions_affected", affected, "partitions_recovered",
                        recovered, "claim_ms_max", bench_samples_max(&claim),
                        "progress_ms_max", bench_samples_max(&prog),
                        "progress_ms_first", bench_samples_pct(&prog, 0),
                        "partitions", parts);
        if (o->json_path)
                bench_json_write(o->json_path, out);
        else
                json_decref(out);
        rd_kafka_flush(f.producer, 5000);
        rd_kafka_destroy(f.producer);
        rd_kafka_consumer_close(f.consumer);
        rd_kafka_destroy(f.consumer);
        bench_samples_free(&prog);
        bench_samples_free(&claim);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option lopts[] = {
            {"bootstrap", required_argument, NULL, 'b'},
            {"partition", required_argument, NULL, 'p'},
            {"events", required_argument, NULL, 'e'},
            {"orchestrator", required_argument, NULL, 'o'},
            {"workflows", required_argument, NULL, 'w'},
            {"workdir", required_argument, NULL, 'd'},
            {"label", required_argument, NULL, 'l'},
            {"type", required_argument, NULL, 't'},
            {"until", required_argument, NULL, 'u'},
            {"static", no_argument, NULL, 'S'},
            {"restart", no_argument, NULL, 'r'},
            {"standby", no_argument, NULL, 's'},
            {"session-ms", required_argument, NULL, 'T'},
            {"timeout-ms", required_argument, NULL, 'O'},
            {"rate", required_argument, NULL, 'R'},
            {"seconds", required_argument, NULL, 'x'},
            {"json", required_argument, NULL, 'j'},
            {NULL, 0, NULL, 0}};
        opts_t o = {.partition = 0,
                    .events = 100000,
                    .workdir = ".",
                    .label = "bench",
                    .rate = 20,
                    .seconds = 60};
        const char *type = "bench3", *until = "WorkflowCompleted";
        int opt;

        if (argc < 2) {
                fprintf(stderr, "usage: keel-bench-restore fill|takeover|"
                                "failover --bootstrap B [options]\n");
                return 2;
        }
        o.cmd = argv[1];
        optind = 2;
        while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
                switch (opt) {
                case 'b':
                        o.bootstrap = optarg;
                        break;
                case 'p':
                        o.partition = atoi(optarg);
                        break;
                case 'e':
                        o.events = atol(optarg);
                        break;
                case 'o':
                        o.orch_bin = optarg;
                        break;
                case 'w':
                        o.module = optarg;
                        break;
                case 'd':
                        o.workdir = optarg;
                        break;
                case 'l':
                        o.label = optarg;
                        break;
                case 't':
                        type = optarg;
                        break;
                case 'u':
                        until = optarg;
                        break;
                case 'S':
                        o.is_static = 1;
                        break;
                case 'r':
                        o.restart = 1;
                        break;
                case 's':
                        o.standby = 1;
                        break;
                case 'T':
                        o.session_ms = optarg;
                        break;
                case 'O':
                        o.timeout_ms = optarg;
                        break;
                case 'R':
                        o.rate = atof(optarg);
                        break;
                case 'x':
                        o.seconds = atoi(optarg);
                        break;
                case 'j':
                        o.json_path = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (!o.bootstrap || o.partition < 0 || o.partition >= BENCH_PARTITIONS)
                bench_die("--bootstrap and a --partition below %d are needed",
                          BENCH_PARTITIONS);
        bench_watchdog(1500);
        if (!strcmp(o.cmd, "fill"))
                return cmd_fill(&o, type, until);
        if (!o.orch_bin || !o.module)
                bench_die("--orchestrator and --workflows are needed");
        if (!strcmp(o.cmd, "takeover"))
                return cmd_takeover(&o);
        if (!strcmp(o.cmd, "failover")) {
                if (o.restart == o.standby)
                        bench_die("failover takes --restart or --standby");
                return cmd_failover(&o);
        }
        bench_die("unknown command %s", o.cmd);
        return 2;
}

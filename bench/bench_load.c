/*
 * bench_load.c: keel-bench-load, the load generator and stopwatch of the
 * workflow benchmarks. It writes keel.inbox.StartWorkflow commands itself
 * (the record keel_client_start() writes, on an idempotent producer, to
 * the workflow's partition) and watches keel.history with a read_committed
 * consumer: a workflow counts as done when its WorkflowCompleted record is
 * committed there (or, with --done-on TimerStarted, its first timer), which
 * is when any reader of the log (the projector, keel_client_result()) can
 * see it. Records are told apart by their schema fingerprint alone
 * (keel_codec_peek_type()), so watching costs little next to keel.
 *
 *   --mode closed    keep --window workflows in flight for --warmup then
 *                    --seconds; completions per second over the measured
 *                    part, and keel's Kafka records per second from the
 *                    orchestrator's metrics and keel.inbox's offsets
 *   --mode rate      start --rate workflows per second for --seconds
 *                    (open loop); start-to-completed latency of each
 *   --mode sleepers  start --count workflows (type benchsleep) and wait
 *                    until each has started its timer; resident memory of
 *                    --rss-pid before and after
 *
 * Every mode is bounded: the load stops after its time or count, then
 * in-flight workflows get --drain seconds, and a watchdog ends the program
 * in any case.
 */
#include "bench_common.h"

#include "keel/codec.h"
#include "keel/partition.h"
#include "keel/topics.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PIDS 8

typedef struct load_s {
        const char *bootstrap, *mode, *type, *done_on, *json_path, *label;
        const char *metrics_file;
        char prefix[64];
        int seconds, warmup, window, drain;
        double rate;
        long count, max;
        pid_t rss_pid;
        int npids;
        char pid_names[MAX_PIDS][32];
        pid_t pids[MAX_PIDS];

        _Atomic int64_t *start_us, *done_us;
        atomic_long started, done, failed;
        atomic_llong hist_records, hist_bytes;
        atomic_int stop;
        rd_kafka_t *producer, *consumer;
} load_t;

/* ---- the watcher -----------------------------------------------------------
 */

static void *watch(void *arg)
{
        load_t *l = arg;
        size_t pl = strlen(l->prefix);
        char want[128];

        snprintf(want, sizeof(want), "keel.history.%s", l->done_on);
        while (!atomic_load(&l->stop)) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(l->consumer, 50);
                const char *type;
                size_t idl;
                if (!m)
                        continue;
                if (m->err) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                atomic_fetch_add(&l->hist_records, 1);
                atomic_fetch_add(&l->hist_bytes, (long long)m->len);
                idl = bench_key_id_len(m->key, m->key_len);
                if (idl > pl && !memcmp(m->key, l->prefix, pl) &&
                    !keel_codec_peek_type(m->payload, m->len, &type)) {
                        int fail = !strcmp(type, "keel.history.WorkflowFailed");
                        if (fail || !strcmp(type, want)) {
                                char num[32];
                                long i;
                                size_t nl = idl - pl < 31 ? idl - pl : 31;
                                memcpy(num, (const char *)m->key + pl, nl);
                                num[nl] = '\0';
                                i = atol(num);
                                if (i >= 0 && i < l->max &&
                                    !atomic_load(&l->done_us[i])) {
                                        atomic_store(&l->done_us[i],
                                                     bench_us());
                                        atomic_fetch_add(&l->done, 1);
                                        if (fail)
                                                atomic_fetch_add(&l->failed, 1);
                                }
                        }
                }
                rd_kafka_message_destroy(m);
        }
        return NULL;
}

static void open_clients(load_t *l, int linger_ms)
{
        rd_kafka_conf_t *pc = bench_kconf(l->bootstrap);
        rd_kafka_conf_t *cc = bench_kconf(l->bootstrap);
        rd_kafka_topic_partition_list_t *tl;
        char err[512], linger[16];

        snprintf(linger, sizeof(linger), "%d", linger_ms);
        bench_kset(pc, "enable.idempotence", "true");
        bench_kset(pc, "linger.ms", linger);
        bench_kset(pc, "queue.buffering.max.messages", "1000000");
        if (!(l->producer =
                  rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err))))
                bench_die("producer: %s", err);
        bench_kset(cc, "group.id", "keel-bench-load");
        bench_kset(cc, "enable.auto.commit", "false");
        bench_kset(cc, "isolation.level", "read_committed");
        bench_kset(cc, "fetch.wait.max.ms", "10");
        if (!(l->consumer =
                  rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err))))
                bench_die("consumer: %s", err);
        rd_kafka_poll_set_consumer(l->consumer);
        /* From the current ends, read now: nothing written after this
         * point can be missed. */
        tl = rd_kafka_topic_partition_list_new(BENCH_PARTITIONS);
        for (int p = 0; p < BENCH_PARTITIONS; p++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(
                        l->consumer, KEEL_TOPIC_HISTORY, p, &lo, &hi, 10000))
                        bench_die("no end offset for %s[%d]",
                                  KEEL_TOPIC_HISTORY, p);
                rd_kafka_topic_partition_list_add(tl, KEEL_TOPIC_HISTORY, p)
                    ->offset = hi;
        }
        rd_kafka_assign(l->consumer, tl);
        rd_kafka_topic_partition_list_destroy(tl);
}

/* Write the start of workflow <prefix><i>. */
static void start_one(load_t *l, long i)
{
        char id[96], input[160];
        unsigned char *val;
        size_t len;
        rd_kafka_resp_err_t e;
        int idl = snprintf(id, sizeof(id), "%s%ld", l->prefix, i);

        if (!strcmp(l->type, "benchsleep"))
                snprintf(input, sizeof(input), "{\"sleep_ms\":86400000}");
        else
                snprintf(input, sizeof(input),
                         "{\"order\":\"o-%ld\",\"card\":\"4242424242424242\","
                         "\"amount\":4200,\"sku\":\"sku-%ld\"}",
                         i, i % 100);
        if (bench_start_record(id, l->type, input, &val, &len))
                bench_die("cannot encode a start");
        atomic_store(&l->start_us[i], bench_us());
        while ((e = rd_kafka_producev(
                    l->producer, RD_KAFKA_V_TOPIC(KEEL_TOPIC_INBOX),
                    RD_KAFKA_V_PARTITION(
                        keel_partition_of(id, (size_t)idl, BENCH_PARTITIONS)),
                    RD_KAFKA_V_KEY(id, (size_t)idl), RD_KAFKA_V_VALUE(val, len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(l->producer, 1);
        if (e)
                bench_die("produce: %s", rd_kafka_err2str(e));
        atomic_fetch_add(&l->started, 1);
}

/* ---- snapshots for records/s and CPU --------------------------------------
 */

typedef struct snap_s {
        int64_t us;
        double commands, events, tasks, txns;
        int64_t inbox;
        double cpu[MAX_PIDS + 1];
} snap_t;

static void snapshot(load_t *l, snap_t *s)
{
        s->us = bench_us();
        if (l->metrics_file) {
                long port = bench_file_long(l->metrics_file);
                char *body = NULL;
                if (port > 0 &&
                    bench_http_get((int)port, "/metrics", &body) == 200) {
                        s->commands = bench_prom(
                            body, "keel_orchestrator_commands_total");
                        s->events =
                            bench_prom(body, "keel_orchestrator_events_total");
                        s->tasks =
                            bench_prom(body, "keel_orchestrator_tasks_total");
                        s->txns = bench_prom(
                            body, "keel_orchestrator_transactions_total");
                }
                free(body);
        }
        s->inbox =
            bench_end_offsets(l->producer, KEEL_TOPIC_INBOX, BENCH_PARTITIONS);
        for (int i = 0; i < l->npids; i++)
                s->cpu[i] = bench_cpu_s(l->pids[i]);
        s->cpu[l->npids] = bench_cpu_s(getpid());
}

/* ---- modes ------------------------------------------------------------------
 */

static void drain(load_t *l)
{
        int64_t until = bench_us() + (int64_t)l->drain * 1000000;
        while (atomic_load(&l->done) < atomic_load(&l->started) &&
               bench_us() < until) {
                rd_kafka_poll(l->producer, 10);
        }
}

static json_t *cpu_json(load_t *l, const snap_t *a, const snap_t *b,
                        double *total)
{
        json_t *cpu = json_object();
        double secs = (double)(b->us - a->us) / 1e6;
        *total = 0;
        for (int i = 0; i <= l->npids; i++) {
                double pct = (b->cpu[i] - a->cpu[i]) / secs * 100;
                *total += pct;
                json_object_set_new(cpu,
                                    i < l->npids ? l->pid_names[i] : "load",
                                    json_real(pct));
        }
        return cpu;
}

static json_t *run_closed(load_t *l)
{
        int64_t t0 = bench_us(), m0 = t0 + (int64_t)l->warmup * 1000000,
                m1 = m0 + (int64_t)l->seconds * 1000000;
        snap_t a = {0}, b = {0};
        int have_a = 0;
        long in_window = 0, per_s_min = -1, per_s_max = 0;
        long *per_s = calloc((size_t)l->seconds + 1, sizeof(*per_s));
        bench_samples_t lat = {0};
        double keel_rps, cpu_total;
        json_t *cpu, *out;

        if (!per_s)
                bench_die("out of memory");
        for (;;) {
                int64_t now = bench_us();
                long inflight =
                    atomic_load(&l->started) - atomic_load(&l->done);
                if (!have_a && now >= m0) {
                        snapshot(l, &a);
                        have_a = 1;
                }
                if (now >= m1)
                        break;
                if (inflight < l->window && atomic_load(&l->started) < l->max) {
                        for (long k = inflight;
                             k < l->window && atomic_load(&l->started) < l->max;
                             k++)
                                start_one(l, atomic_load(&l->started));
                        rd_kafka_poll(l->producer, 0);
                } else {
                        rd_kafka_poll(l->producer, 1);
                }
        }
        snapshot(l, &b);
        drain(l);
        for (long i = 0; i < atomic_load(&l->started); i++) {
                int64_t d = atomic_load(&l->done_us[i]);
                if (d >= a.us && d < b.us) {
                        long s = (long)((d - a.us) / 1000000);
                        in_window++;
                        if (s < l->seconds)
                                per_s[s]++;
                        bench_samples_add(
                            &lat, (double)(d - atomic_load(&l->start_us[i])) /
                                      1000.0);
                }
        }
        for (int s = 0; s < l->seconds; s++) {
                if (per_s_min < 0 || per_s[s] < per_s_min)
                        per_s_min = per_s[s];
                if (per_s[s] > per_s_max)
                        per_s_max = per_s[s];
        }
        {
                double secs = (double)(b.us - a.us) / 1e6;
                double inbox = (double)(b.inbox - a.inbox);
                double hist = (b.events - a.events) + (b.txns - a.txns);
                double tasks = b.tasks - a.tasks;
                keel_rps = (inbox + hist + tasks) / secs;
                cpu = cpu_json(l, &a, &b, &cpu_total);
                out = json_pack(
                    "{ss ss ss si si si sf sI sI sI sf sf s{sf sf sf sf sf} "
                    "sf so so sf sI sI}",
                    "bench", "throughput", "label", l->label, "type", l->type,
                    "window", l->window, "warmup_s", l->warmup, "seconds",
                    l->seconds, "measured_s", secs, "completed",
                    (json_int_t)in_window, "per_second_min",
                    (json_int_t)per_s_min, "per_second_max",
                    (json_int_t)per_s_max, "workflows_per_s",
                    (double)in_window / secs, "keel_records_per_s", keel_rps,
                    "records_per_s", "inbox", inbox / secs, "history_events",
                    (b.events - a.events) / secs, "checkpoints",
                    (b.txns - a.txns) / secs, "tasks", tasks / secs, "commands",
                    (b.commands - a.commands) / secs, "transactions_per_s",
                    (b.txns - a.txns) / secs, "latency_ms",
                    bench_samples_json(&lat), "cpu_percent", cpu,
                    "cpu_percent_total", cpu_total, "failed",
                    (json_int_t)atomic_load(&l->failed), "unfinished",
                    (json_int_t)(atomic_load(&l->started) -
                                 atomic_load(&l->done)));
        }
        json_object_set_new(
            out, "mean_history_record_bytes",
            json_real(atomic_load(&l->hist_records)
                          ? (double)atomic_load(&l->hist_bytes) /
                                (double)atomic_load(&l->hist_records)
                          : 0));
        free(per_s);
        bench_samples_free(&lat);
        return out;
}

static json_t *run_rate(load_t *l)
{
        int64_t t0 = bench_us(), m0 = t0 + (int64_t)l->warmup * 1000000;
        long total = (long)(l->rate * (l->warmup + l->seconds));
        long first = (long)(l->rate * l->warmup), measured = 0, missing = 0;
        bench_samples_t lat = {0};
        snap_t a = {0}, b = {0};
        double cpu_total, achieved;
        json_t *out, *cpu;
        int have_a = 0;

        if (total > l->max)
                total = l->max;
        for (long i = 0; i < total; i++) {
                int64_t at = t0 + (int64_t)((double)i * 1e6 / l->rate);
                int64_t now;
                while ((now = bench_us()) < at) {
                        int64_t left = at - now;
                        rd_kafka_poll(l->producer,
                                      left > 2000 ? (int)(left / 2000) : 0);
                        if (left <= 2000)
                                bench_sleep_us(left > 100 ? left - 50 : 0);
                }
                if (!have_a && now >= m0) {
                        snapshot(l, &a);
                        have_a = 1;
                }
                start_one(l, i);
                rd_kafka_poll(l->producer, 0);
        }
        if (!have_a)
                snapshot(l, &a);
        snapshot(l, &b);
        achieved = (double)(total - first) / ((double)(b.us - a.us) / 1e6);
        drain(l);
        for (long i = first; i < total; i++) {
                int64_t d = atomic_load(&l->done_us[i]);
                if (!d) {
                        missing++;
                        continue;
                }
                measured++;
                bench_samples_add(
                    &lat, (double)(d - atomic_load(&l->start_us[i])) / 1000.0);
        }
        cpu = cpu_json(l, &a, &b, &cpu_total);
        out = json_pack("{ss ss ss sf sf si sI sI so so sf sI}", "bench",
                        "latency", "label", l->label, "type", l->type, "rate",
                        l->rate, "achieved_rate", achieved, "seconds",
                        l->seconds, "measured", (json_int_t)measured,
                        "unfinished", (json_int_t)missing, "latency_ms",
                        bench_samples_json(&lat), "cpu_percent", cpu,
                        "cpu_percent_total", cpu_total, "failed",
                        (json_int_t)atomic_load(&l->failed));
        bench_samples_free(&lat);
        return out;
}

static json_t *run_sleepers(load_t *l)
{
        long before = l->rss_pid > 0 ? bench_rss_kb(l->rss_pid) : -1, after;
        double open0 =
                   l->metrics_file
                       ? bench_orch_metric(l->metrics_file,
                                           "keel_orchestrator_open_workflows")
                       : -1,
               open1;
        int64_t t0 = bench_us(), t1;
        long total = l->count < l->max ? l->count : l->max;

        while (atomic_load(&l->started) < total) {
                long inflight =
                    atomic_load(&l->started) - atomic_load(&l->done);
                if (inflight < l->window) {
                        for (long k = inflight;
                             k < l->window && atomic_load(&l->started) < total;
                             k++)
                                start_one(l, atomic_load(&l->started));
                        rd_kafka_poll(l->producer, 0);
                } else {
                        rd_kafka_poll(l->producer, 1);
                }
        }
        drain(l);
        t1 = bench_us();
        /* Let the orchestrator finish what it does after the last commit
         * (freeing a batch's buffers) before reading its memory. */
        bench_sleep_us(2000000);
        after = l->rss_pid > 0 ? bench_rss_kb(l->rss_pid) : -1;
        open1 = l->metrics_file
                    ? bench_orch_metric(l->metrics_file,
                                        "keel_orchestrator_open_workflows")
                    : -1;
        return json_pack(
            "{ss ss sI sI sf sI sI sf sf sf sI}", "bench", "memory", "label",
            l->label, "count", (json_int_t)total, "timers_started",
            (json_int_t)atomic_load(&l->done), "start_rate_per_s",
            (double)atomic_load(&l->done) / ((double)(t1 - t0) / 1e6),
            "rss_before_kb", (json_int_t)before, "rss_after_kb",
            (json_int_t)after, "bytes_per_workflow",
            total && before > 0
                ? (double)(after - before) * 1024 / (double)total
                : -1,
            "open_before", open0, "open_after", open1, "unfinished",
            (json_int_t)(atomic_load(&l->started) - atomic_load(&l->done)));
}

/* ---- output
 * ------------------------------------------------------------------ */

static double jnum(const json_t *o, const char *path1, const char *path2)
{
        const json_t *v = json_object_get(o, path1);
        if (path2)
                v = json_object_get(v, path2);
        return json_number_value(v);
}

static void print_table(const load_t *l, const json_t *r, char **argv, int argc)
{
        printf("\n");
        if (!strcmp(l->mode, "closed")) {
                printf("== Throughput (%s): %s workflows, %d in flight, %d s "
                       "measured after %d s warm-up\n",
                       l->label, l->type, l->window, l->seconds, l->warmup);
                printf("%-40s %12.0f  (per second: min %.0f, max %.0f)\n",
                       "workflows completed per second",
                       jnum(r, "workflows_per_s", NULL),
                       jnum(r, "per_second_min", NULL),
                       jnum(r, "per_second_max", NULL));
                printf("%-40s %12.0f  (inbox %.0f, history %.0f + "
                       "checkpoints %.0f, tasks %.0f)\n",
                       "keel's Kafka records per second",
                       jnum(r, "keel_records_per_s", NULL),
                       jnum(r, "records_per_s", "inbox"),
                       jnum(r, "records_per_s", "history_events"),
                       jnum(r, "records_per_s", "checkpoints"),
                       jnum(r, "records_per_s", "tasks"));
                printf("%-40s %12.0f\n", "transactions per second",
                       jnum(r, "transactions_per_s", NULL));
                printf("%-40s %12.1f  (p99 %.1f, Little's law at this "
                       "window)\n",
                       "latency p50 under this load, ms",
                       jnum(r, "latency_ms", "p50"),
                       jnum(r, "latency_ms", "p99"));
        } else if (!strcmp(l->mode, "rate")) {
                printf("== Latency (%s): %s, start -> WorkflowCompleted "
                       "committed in keel.history, %.0f/s for %d s\n",
                       l->label, l->type, l->rate, l->seconds);
                printf("%-10s %10s %10s %10s %10s %10s\n", "workflows",
                       "p50 ms", "p90 ms", "p99 ms", "max ms", "achieved/s");
                printf("%-10.0f %10.1f %10.1f %10.1f %10.1f %10.0f\n",
                       jnum(r, "measured", NULL), jnum(r, "latency_ms", "p50"),
                       jnum(r, "latency_ms", "p90"),
                       jnum(r, "latency_ms", "p99"),
                       jnum(r, "latency_ms", "max"),
                       jnum(r, "achieved_rate", NULL));
                if (jnum(r, "unfinished", NULL) > 0)
                        printf("unfinished after the drain: %.0f\n",
                               jnum(r, "unfinished", NULL));
        } else {
                printf("== Memory (%s): %ld benchsleep workflows waiting on a "
                       "timer\n",
                       l->label, l->count);
                printf("%-40s %12.0f -> %.0f KiB\n", "orchestrator VmRSS",
                       jnum(r, "rss_before_kb", NULL),
                       jnum(r, "rss_after_kb", NULL));
                printf("%-40s %12.0f\n", "bytes per sleeping workflow",
                       jnum(r, "bytes_per_workflow", NULL));
                printf("%-40s %12.0f\n", "started per second",
                       jnum(r, "start_rate_per_s", NULL));
        }
        if (json_object_get(r, "cpu_percent")) {
                const char *k;
                json_t *v;
                printf("CPU %% of one core while measured:");
                json_object_foreach(json_object_get(r, "cpu_percent"), k, v)
                    printf(" %s %.0f", k, json_number_value(v));
                printf(" (total %.0f of 200)\n",
                       jnum(r, "cpu_percent_total", NULL));
        }
        printf("reproduce:");
        for (int i = 0; i < argc; i++)
                printf(" %s", argv[i]);
        printf("\n");
}

int main(int argc, char **argv)
{
        static const struct option lopts[] = {
            {"bootstrap", required_argument, NULL, 'b'},
            {"mode", required_argument, NULL, 'm'},
            {"type", required_argument, NULL, 't'},
            {"done-on", required_argument, NULL, 'd'},
            {"seconds", required_argument, NULL, 's'},
            {"warmup", required_argument, NULL, 'w'},
            {"window", required_argument, NULL, 'W'},
            {"rate", required_argument, NULL, 'r'},
            {"count", required_argument, NULL, 'c'},
            {"drain", required_argument, NULL, 'D'},
            {"metrics-port-file", required_argument, NULL, 'M'},
            {"pid", required_argument, NULL, 'p'},
            {"rss-pid", required_argument, NULL, 'R'},
            {"label", required_argument, NULL, 'l'},
            {"json", required_argument, NULL, 'j'},
            {NULL, 0, NULL, 0}};
        load_t l = {.mode = "closed",
                    .type = "bench3",
                    .done_on = NULL,
                    .label = "",
                    .seconds = 10,
                    .warmup = 2,
                    .window = 2000,
                    .drain = 30,
                    .rate = 10,
                    .count = 1000};
        pthread_t th;
        json_t *r;
        int opt;

        while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
                switch (opt) {
                case 'b':
                        l.bootstrap = optarg;
                        break;
                case 'm':
                        l.mode = optarg;
                        break;
                case 't':
                        l.type = optarg;
                        break;
                case 'd':
                        l.done_on = optarg;
                        break;
                case 's':
                        l.seconds = atoi(optarg);
                        break;
                case 'w':
                        l.warmup = atoi(optarg);
                        break;
                case 'W':
                        l.window = atoi(optarg);
                        break;
                case 'r':
                        l.rate = atof(optarg);
                        break;
                case 'c':
                        l.count = atol(optarg);
                        break;
                case 'D':
                        l.drain = atoi(optarg);
                        break;
                case 'M':
                        l.metrics_file = optarg;
                        break;
                case 'R':
                        l.rss_pid = (pid_t)atol(optarg);
                        break;
                case 'l':
                        l.label = optarg;
                        break;
                case 'j':
                        l.json_path = optarg;
                        break;
                case 'p': {
                        char *eq = strchr(optarg, '=');
                        if (!eq || l.npids == MAX_PIDS)
                                return 2;
                        snprintf(l.pid_names[l.npids], sizeof(l.pid_names[0]),
                                 "%.*s", (int)(eq - optarg), optarg);
                        l.pids[l.npids++] = (pid_t)atol(eq + 1);
                        break;
                }
                default:
                        return 2;
                }
        }
        if (!l.bootstrap || l.seconds <= 0 || l.window <= 0 || l.rate <= 0 ||
            (strcmp(l.mode, "closed") && strcmp(l.mode, "rate") &&
             strcmp(l.mode, "sleepers"))) {
                fprintf(stderr,
                        "usage: keel-bench-load --bootstrap B --mode "
                        "closed|rate|sleepers [--seconds S] [--warmup S]\n"
                        "  [--window N] [--rate R] [--count N] [--type T] "
                        "[--drain S]\n  [--metrics-port-file F] [--pid "
                        "name=PID]... [--rss-pid PID] [--label L] [--json "
                        "F]\n");
                return 2;
        }
        if (!strcmp(l.mode, "sleepers")) {
                l.type = "benchsleep";
                l.max = l.count;
        } else if (!strcmp(l.mode, "rate")) {
                l.max = (long)(l.rate * (l.warmup + l.seconds)) + 1;
        } else {
                l.max = 4000000;
        }
        if (!l.done_on)
                l.done_on = strcmp(l.type, "benchsleep") ? "WorkflowCompleted"
                                                         : "TimerStarted";
        snprintf(l.prefix, sizeof(l.prefix), "%s-%d-%lld-",
                 strcmp(l.mode, "closed") ? l.mode : "tp", (int)getpid(),
                 (long long)(bench_wall_ms() % 100000));
        l.start_us = calloc((size_t)l.max, sizeof(*l.start_us));
        l.done_us = calloc((size_t)l.max, sizeof(*l.done_us));
        if (!l.start_us || !l.done_us)
                bench_die("out of memory");
        bench_watchdog(l.warmup + l.seconds + l.drain + 600);
        open_clients(&l, !strcmp(l.mode, "rate") ? 0 : 2);
        if (pthread_create(&th, NULL, watch, &l))
                bench_die("cannot start the watcher");
        if (!strcmp(l.mode, "closed"))
                r = run_closed(&l);
        else if (!strcmp(l.mode, "rate"))
                r = run_rate(&l);
        else
                r = run_sleepers(&l);
        atomic_store(&l.stop, 1);
        pthread_join(th, NULL);
        rd_kafka_flush(l.producer, 10000);
        if (!r)
                bench_die("out of memory");
        print_table(&l, r, argv, argc);
        if (l.json_path && bench_json_write(l.json_path, r))
                bench_die("cannot write %s", l.json_path);
        else if (!l.json_path)
                json_decref(r);
        rd_kafka_consumer_close(l.consumer);
        rd_kafka_destroy(l.consumer);
        rd_kafka_destroy(l.producer);
        return 0;
}

/*
 * bench_ceiling.c: keel-bench-ceiling, what the broker under test does
 * with plain librdkafka on this machine, as the ceiling keel's own rates
 * are compared with (issue 7, "Ceiling"). On a topic of its own with
 * BENCH_PARTITIONS partitions it
 *
 *  1. produces records of keel's sizes (values of 200 to 600 bytes, keys
 *     of about 20) from one producer as fast as it can for --seconds,
 *     acks=all, then waits for every delivery report;
 *  2. consumes them all back with one consumer (read_committed, as keel's
 *     readers do);
 *  3. commits transactions of 1 and of --txn-records records in a row on
 *     one transactional producer and one partition: the cost of a commit,
 *     which bounds a partition processor's batches per second, and the
 *     CPU time librdkafka's own main thread spends per transaction (in
 *     librdkafka 2.0.2 it busy-waits on a timer under a millisecond away,
 *     about a millisecond per transaction, per producer).
 *
 * Usage: keel-bench-ceiling --bootstrap B [--seconds S] [--json FILE]
 */
#include "bench_common.h"

#include <dirent.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_llong delivered, failed;

/* -X key=value: extra librdkafka properties for every client. */
static const char *extra[16];
static int nextra;

static rd_kafka_conf_t *kconf(const char *bootstrap)
{
        rd_kafka_conf_t *conf = bench_kconf(bootstrap);
        for (int i = 0; i < nextra; i++) {
                char k[256];
                const char *eq = strchr(extra[i], '=');
                if (!eq)
                        bench_die("-X %s: no '='", extra[i]);
                snprintf(k, sizeof(k), "%.*s", (int)(eq - extra[i]), extra[i]);
                bench_kset(conf, k, eq + 1);
        }
        return conf;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        (void)opaque;
        if (m->err)
                atomic_fetch_add(&failed, 1);
        else
                atomic_fetch_add(&delivered, 1);
}

static void create_topic(const char *bootstrap, const char *topic)
{
        rd_kafka_conf_t *conf = bench_kconf(bootstrap);
        char err[512];
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        rd_kafka_NewTopic_t *nt;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;

        if (!rk)
                bench_die("producer: %s", err);
        nt =
            rd_kafka_NewTopic_new(topic, BENCH_PARTITIONS, 1, err, sizeof(err));
        q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        ev = rd_kafka_queue_poll(q, 30000);
        if (!ev)
                bench_die("CreateTopics %s: no answer", topic);
        {
                const rd_kafka_CreateTopics_result_t *res =
                    rd_kafka_event_CreateTopics_result(ev);
                size_t n;
                const rd_kafka_topic_result_t **tr =
                    rd_kafka_CreateTopics_result_topics(res, &n);
                if (n == 1 && rd_kafka_topic_result_error(tr[0]) &&
                    rd_kafka_topic_result_error(tr[0]) !=
                        RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                        bench_die("CreateTopics %s: %s", topic,
                                  rd_kafka_topic_result_error_string(tr[0]));
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(nt);
        rd_kafka_destroy(rk);
}

/* Phase 1: produce for `seconds`; returns records, *bytes, *secs. */
static long long produce(const char *bootstrap, const char *topic, int seconds,
                         long long *bytes, double *secs)
{
        rd_kafka_conf_t *conf = kconf(bootstrap);
        char err[512], key[32];
        static char value[600];
        rd_kafka_t *rk;
        long long sent = 0;
        int64_t t0, until;

        memset(value, 'v', sizeof(value));
        bench_kset(conf, "acks", "all");
        bench_kset(conf, "linger.ms", "5");
        bench_kset(conf, "queue.buffering.max.messages", "500000");
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))))
                bench_die("producer: %s", err);
        *bytes = 0;
        t0 = bench_us();
        until = t0 + (int64_t)seconds * 1000000;
        while (bench_us() < until) {
                for (int i = 0; i < 1000; i++, sent++) {
                        size_t vlen = 200 + (size_t)(sent % 5) * 100;
                        int klen = snprintf(key, sizeof(key), "wf-%08lld/%d",
                                            sent / 13, (int)(sent % 13) + 1);
                        rd_kafka_resp_err_t e;
                        while (
                            (e = rd_kafka_producev(
                                 rk, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_PARTITION(
                                     (int32_t)((sent / 13) % BENCH_PARTITIONS)),
                                 RD_KAFKA_V_KEY(key, (size_t)klen),
                                 RD_KAFKA_V_VALUE(value, vlen),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END)) ==
                            RD_KAFKA_RESP_ERR__QUEUE_FULL)
                                rd_kafka_poll(rk, 1);
                        if (e)
                                bench_die("produce: %s", rd_kafka_err2str(e));
                        *bytes += (long long)vlen + klen;
                }
                rd_kafka_poll(rk, 0);
        }
        rd_kafka_flush(rk, 60000);
        *secs = (double)(bench_us() - t0) / 1e6;
        rd_kafka_destroy(rk);
        if (atomic_load(&failed))
                bench_die("%lld deliveries failed", atomic_load(&failed));
        return atomic_load(&delivered);
}

/* Phase 2: consume `expect` records from the beginning. */
static long long consume(const char *bootstrap, const char *topic,
                         long long expect, double *secs)
{
        rd_kafka_conf_t *conf = kconf(bootstrap);
        char err[512];
        rd_kafka_t *rk;
        long long got = 0;
        int64_t t0, deadline;

        bench_kset(conf, "group.id", "keel-bench-ceiling");
        bench_kset(conf, "enable.auto.commit", "false");
        bench_kset(conf, "isolation.level", "read_committed");
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))))
                bench_die("consumer: %s", err);
        rd_kafka_poll_set_consumer(rk);
        bench_assign(rk, topic, BENCH_PARTITIONS, RD_KAFKA_OFFSET_BEGINNING);
        t0 = bench_us();
        deadline = t0 + 300 * 1000000LL;
        while (got < expect && bench_us() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m)
                        continue;
                if (!m->err)
                        got++;
                rd_kafka_message_destroy(m);
        }
        *secs = (double)(bench_us() - t0) / 1e6;
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return got;
}

/* One transaction of per_txn records to partition 0 of topic. */
static void one_txn(rd_kafka_t *rk, const char *topic, int per_txn)
{
        static char value[400];
        rd_kafka_error_t *e;
        if ((e = rd_kafka_begin_transaction(rk)))
                bench_die("begin: %s", rd_kafka_error_string(e));
        for (int i = 0; i < per_txn; i++)
                if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_PARTITION(0),
                                      RD_KAFKA_V_VALUE(value, sizeof(value)),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_END))
                        bench_die("produce in a transaction");
        if ((e = rd_kafka_commit_transaction(rk, 30000)))
                bench_die("commit: %s", rd_kafka_error_string(e));
}

/* CPU seconds used so far by this process's threads named `comm`. */
static double threads_cpu_s(const char *comm)
{
        DIR *d = opendir("/proc/self/task");
        struct dirent *de;
        double s = 0;
        long tick = sysconf(_SC_CLK_TCK);

        while (d && (de = readdir(d))) {
                char path[300], name[64] = "", buf[1024];
                unsigned long ut, st;
                FILE *f;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
                         de->d_name);
                if ((f = fopen(path, "r"))) {
                        if (!fgets(name, sizeof(name), f))
                                name[0] = '\0';
                        fclose(f);
                }
                name[strcspn(name, "\n")] = '\0';
                if (strcmp(name, comm))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/stat",
                         de->d_name);
                if (!(f = fopen(path, "r")))
                        continue;
                /* Fields 14 and 15, after the ")" that ends the name. */
                if (fgets(buf, sizeof(buf), f) && strrchr(buf, ')') &&
                    sscanf(strrchr(buf, ')') + 2,
                           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu "
                           "%lu",
                           &ut, &st) == 2)
                        s += (double)(ut + st) / (double)tick;
                fclose(f);
        }
        if (d)
                closedir(d);
        return s;
}

/* Phase 3: transactions of `per_txn` records each, in a row, for
 * `seconds`; *done of them. Returns the seconds taken. *main_ms gets the
 * CPU time librdkafka's own main thread spent per transaction. */
static double txns(const char *bootstrap, const char *topic, int per_txn,
                   int seconds, long long *done, bench_samples_t *ms,
                   double *main_ms)
{
        rd_kafka_conf_t *conf = kconf(bootstrap);
        char err[512], id[64];
        rd_kafka_t *rk;
        rd_kafka_error_t *e;
        int64_t t0, until;
        double cpu0;

        snprintf(id, sizeof(id), "keel-bench-ceiling-txn-%d", per_txn);
        bench_kset(conf, "transactional.id", id);
        bench_kset(conf, "linger.ms", "1");
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))))
                bench_die("producer: %s", err);
        if ((e = rd_kafka_init_transactions(rk, 30000)))
                bench_die("init_transactions: %s", rd_kafka_error_string(e));
        /* The first transaction waits for the topic's metadata: untimed. */
        one_txn(rk, topic, per_txn);
        *done = 0;
        cpu0 = threads_cpu_s("rdk:main");
        t0 = bench_us();
        until = t0 + (int64_t)seconds * 1000000;
        while (bench_us() < until) {
                int64_t t = bench_us();
                one_txn(rk, topic, per_txn);
                bench_samples_add(ms, (double)(bench_us() - t) / 1000.0);
                (*done)++;
        }
        *main_ms =
            *done ? (threads_cpu_s("rdk:main") - cpu0) * 1000 / (double)*done
                  : 0;
        rd_kafka_destroy(rk);
        return (double)(bench_us() - t0) / 1e6;
}

int main(int argc, char **argv)
{
        static const struct option lopts[] = {
            {"bootstrap", required_argument, NULL, 'b'},
            {"seconds", required_argument, NULL, 's'},
            {"txn-records", required_argument, NULL, 'k'},
            {"json", required_argument, NULL, 'j'},
            {"skip-plain", no_argument, NULL, 'P'},
            {NULL, 0, NULL, 0}};
        const char *bootstrap = NULL, *json_path = NULL;
        const char *topic = "keel-bench.ceiling";
        int seconds = 10, per_txn = 50, opt, skip_plain = 0;
        long long n, got, bytes, t1, tk;
        double psecs, csecs, t1secs, tksecs, main1, maink;
        bench_samples_t ms1 = {0}, msk = {0};
        json_t *out;

        while ((opt = getopt_long(argc, argv, "X:", lopts, NULL)) != -1) {
                if (opt == 'X' && nextra < 16)
                        extra[nextra++] = optarg;
                else if (opt == 'P')
                        skip_plain = 1;
                else if (opt == 'b')
                        bootstrap = optarg;
                else if (opt == 's')
                        seconds = atoi(optarg);
                else if (opt == 'k')
                        per_txn = atoi(optarg);
                else if (opt == 'j')
                        json_path = optarg;
                else
                        return 2;
        }
        if (!bootstrap || seconds <= 0 || per_txn <= 0) {
                fprintf(stderr, "usage: keel-bench-ceiling --bootstrap B "
                                "[--seconds S] [--txn-records K] [--json F]\n");
                return 2;
        }
        bench_watchdog(seconds * 4 + 300);
        create_topic(bootstrap, topic);
        n = got = bytes = 0;
        psecs = csecs = 1;
        if (!skip_plain) {
                n = produce(bootstrap, topic, seconds, &bytes, &psecs);
                got = consume(bootstrap, topic, n, &csecs);
        }
        t1secs = txns(bootstrap, topic, 1, seconds / 2 ? seconds / 2 : 1, &t1,
                      &ms1, &main1);
        tksecs = txns(bootstrap, topic, per_txn, seconds / 2 ? seconds / 2 : 1,
                      &tk, &msk, &maink);

        printf("\n== Ceiling: the broker with plain librdkafka (%d "
               "partitions, values 200-600 B, mean %.0f B/record with key)\n",
               BENCH_PARTITIONS, n ? (double)bytes / (double)n : 0);
        printf("%-44s %14s %10s\n", "what", "records/s", "MB/s");
        printf("%-44s %14.0f %10.1f\n", "produce (1 producer, acks=all)",
               (double)n / psecs, (double)bytes / psecs / 1e6);
        printf("%-44s %14.0f %10.1f\n", "consume (1 consumer, read_committed)",
               (double)got / csecs,
               (double)bytes * ((double)got / (double)(n ? n : 1)) / csecs /
                   1e6);
        printf("%-44s %14.0f %10s  (commit ms: p50 %.2f p99 %.2f max "
               "%.1f)\n",
               "transactions of 1 record, in a row", (double)t1 / t1secs, "",
               bench_samples_pct(&ms1, 50), bench_samples_pct(&ms1, 99),
               bench_samples_max(&ms1));
        printf("%-44s %14.0f %10s  (commit ms: p50 %.2f p99 %.2f max %.1f; "
               "%d records each)\n",
               "transactions of K records, in a row",
               (double)tk * per_txn / tksecs, "", bench_samples_pct(&msk, 50),
               bench_samples_pct(&msk, 99), bench_samples_max(&msk), per_txn);
        printf("%-44s %14.2f ms  (1 record) %.2f ms (K records)\n",
               "librdkafka main thread CPU per transaction", main1, maink);

        out = json_pack(
            "{ss si sf s{sI sf sf sf} s{sI sf sf} s{sf sf} s{si sf sf sf}}",
            "bench", "ceiling", "partitions", BENCH_PARTITIONS,
            "mean_record_bytes", n ? (double)bytes / (double)n : 0, "produce",
            "records", (json_int_t)n, "seconds", psecs, "records_per_s",
            (double)n / psecs, "mb_per_s", (double)bytes / psecs / 1e6,
            "consume", "records", (json_int_t)got, "seconds", csecs,
            "records_per_s", (double)got / csecs, "txn_1", "commits_per_s",
            (double)t1 / t1secs, "ms_per_commit",
            t1 ? t1secs * 1000 / (double)t1 : 0, "txn_k", "records_per_txn",
            per_txn, "commits_per_s", (double)tk / tksecs, "records_per_s",
            (double)tk * per_txn / tksecs, "ms_per_commit",
            tk ? tksecs * 1000 / (double)tk : 0);
        json_object_set_new(json_object_get(out, "txn_1"), "commit_ms",
                            bench_samples_json(&ms1));
        json_object_set_new(json_object_get(out, "txn_1"), "main_thread_cpu_ms",
                            json_real(main1));
        json_object_set_new(json_object_get(out, "txn_k"), "main_thread_cpu_ms",
                            json_real(maink));
        json_object_set_new(json_object_get(out, "txn_k"), "commit_ms",
                            bench_samples_json(&msk));
        if (json_path && bench_json_write(json_path, out))
                bench_die("cannot write %s", json_path);
        else if (!json_path)
                json_decref(out);
        return 0;
}

/*
 * bench_projector.c: keel-bench-projector, a projector (the keel_proj
 * library: fold, reader rules, HTTP server) over --workflows synthetic
 * workflows, for the projector benchmark (issue 7, "Projector"). The
 * workflows are copies, under new IDs, of a real bench3 run read from
 * keel.history (bench_template_load()): nine in ten completed, one in ten
 * still running (cut after its second activity was scheduled); half of
 * them typed "bench3", half "payment", running or not. Their records are
 * encoded and fed through the same history reader the projector's Kafka thread
 * feeds (claims, checkpoints, epochs), so the fold rate printed is the
 * projector's catch-up rate without the broker. Then it serves HTTP on
 * 127.0.0.1 (port to --port-file) for --serve-seconds, or until SIGTERM,
 * and exits.
 */
#include "bench_common.h"

#include "keel/codec.h"
#include "proj.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
        (void)sig;
        stop = 1;
}

/* Encode and feed one record to reader r; *fed_us grows by the time the
 * reader (decode and fold) takes, not the encoding. */
static void feed(keel__history_reader_t *r, const char *type, const json_t *rec,
                 int64_t *fed_us, long long *n)
{
        unsigned char *buf;
        size_t len;
        char err[256];
        int64_t t;
        if (keel_codec_encode(type, rec, &buf, &len, err, sizeof(err)))
                bench_die("encoding %s: %s", type, err);
        t = bench_us();
        keel__history_reader_feed(r, buf, len, err, sizeof(err));
        *fed_us += bench_us() - t;
        (*n)++;
        free(buf);
}

int main(int argc, char **argv)
{
        static const struct option lopts[] = {
            {"bootstrap", required_argument, NULL, 'b'},
            {"workflows", required_argument, NULL, 'n'},
            {"port-file", required_argument, NULL, 'p'},
            {"serve-seconds", required_argument, NULL, 's'},
            {"json", required_argument, NULL, 'j'},
            {NULL, 0, NULL, 0}};
        const char *bootstrap = NULL, *port_file = NULL, *json_path = NULL;
        long n = 100000, running = 0;
        int serve = 120, opt, port;
        keel_config_t *cfg;
        json_t *tmpl, *claim;
        proj_t p;
        keel__history_reader_t *rd;
        int64_t fed_us = 0, t0;
        long long records = 0;
        long rss0, rss1;
        void *http;
        size_t cut = 0;

        while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
                if (opt == 'b')
                        bootstrap = optarg;
                else if (opt == 'n')
                        n = atol(optarg);
                else if (opt == 'p')
                        port_file = optarg;
                else if (opt == 's')
                        serve = atoi(optarg);
                else if (opt == 'j')
                        json_path = optarg;
                else
                        return 2;
        }
        if (!bootstrap || n <= 0 || serve <= 0) {
                fprintf(stderr,
                        "usage: keel-bench-projector --bootstrap B "
                        "[--workflows N] [--port-file F] [--serve-seconds S] "
                        "[--json F]\n");
                return 2;
        }
        bench_watchdog(serve + 900);
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        if (!(tmpl = bench_template_load(bootstrap, "bench3",
                                         "WorkflowCompleted", 60000)))
                bench_die("no bench3 workflow in keel.history to copy");
        /* A running copy stops after its second ActivityScheduled. */
        for (size_t i = 0, sched = 0; i < json_array_size(tmpl); i++)
                if (!strcmp(json_string_value(json_object_get(
                                json_array_get(tmpl, i), "type")),
                            "keel.history.ActivityScheduled") &&
                    ++sched == 2)
                        cut = i + 1;
        cfg = keel_config_new();
        if (!cfg ||
            keel_config_set(cfg, "bootstrap", bootstrap, NULL, NULL, 0) ||
            proj_init(&p, cfg, 1))
                bench_die("out of memory");
        rd = p.readers;
        rss0 = bench_rss_kb(getpid());
        claim = json_pack("{si sI ss sI}", "partition", 0, "epoch",
                          (json_int_t)1, "owner", "keel-bench-projector", "ts",
                          (json_int_t)bench_wall_ms());
        feed(rd, "keel.history.PartitionClaim", claim, &fed_us, &records);
        json_decref(claim);
        t0 = bench_us();
        for (long i = 0; i < n; i++) {
                char id[64], run[64];
                json_t *copy, *ev;
                size_t k;
                int is_running = i % 20 >= 18;
                snprintf(id, sizeof(id), "wf-%07ld", i);
                snprintf(run, sizeof(run), "00000000-0000-4000-8000-%012lx",
                         (unsigned long)i);
                copy = bench_template_copy(tmpl, id, run, 1);
                json_array_foreach(copy, k, ev)
                {
                        json_t *rec = json_object_get(ev, "record");
                        if (is_running && k >= cut)
                                break;
                        if (i % 2 && json_object_get(rec, "workflow_type"))
                                json_object_set_new(rec, "workflow_type",
                                                    json_string("payment"));
                        feed(rd, json_string_value(json_object_get(ev, "type")),
                             rec, &fed_us, &records);
                }
                running += is_running;
                json_decref(copy);
                if (i % 100 == 99 || i == n - 1) {
                        json_t *cp = json_pack(
                            "{si sI sI sI sI}", "partition", 0, "epoch",
                            (json_int_t)1, "inbox_offset", (json_int_t)i,
                            "batch_events", (json_int_t)0, "ts",
                            (json_int_t)bench_wall_ms());
                        feed(rd, "keel.history.Checkpoint", cp, &fed_us,
                             &records);
                        json_decref(cp);
                }
        }
        rss1 = bench_rss_kb(getpid());
        printf("\n== Projector fold: %ld workflows (%ld running), %lld "
               "records fed through the history reader\n",
               n, running, records);
        printf("%-44s %12.0f  (%.1f s in all, encoding included)\n",
               "records folded per second (decode + fold)",
               (double)records / ((double)fed_us / 1e6),
               (double)(bench_us() - t0) / 1e6);
        printf("%-44s %12.0f\n", "projector memory per workflow, bytes",
               (double)(rss1 - rss0) * 1024 / (double)n);
        if (json_path)
                bench_json_write(
                    json_path,
                    json_pack("{ss sI sI sI sf sf sI}", "bench",
                              "projector_fold", "workflows", (json_int_t)n,
                              "running", (json_int_t)running, "records",
                              (json_int_t)records, "records_per_s",
                              (double)records / ((double)fed_us / 1e6),
                              "bytes_per_workflow",
                              (double)(rss1 - rss0) * 1024 / (double)n,
                              "rss_kb", (json_int_t)rss1));
        json_decref(tmpl);

        atomic_store(&p.ready, 1);
        if (!(http = proj_http_start(&p, "127.0.0.1:0", &port)))
                bench_die("cannot serve HTTP");
        if (port_file) {
                char tmp[600];
                FILE *f;
                snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
                if (!(f = fopen(tmp, "w")))
                        bench_die("cannot write %s", tmp);
                fprintf(f, "%d\n", port);
                fclose(f);
                rename(tmp, port_file);
        }
        printf("serving http://127.0.0.1:%d for up to %d s\n", port, serve);
        fflush(stdout);
        for (int i = 0; i < serve * 10 && !stop; i++)
                bench_sleep_us(100000);
        proj_http_stop(http);
        proj_destroy(&p);
        keel_config_destroy(cfg);
        return 0;
}

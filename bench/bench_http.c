/*
 * bench_http.c: keel-bench-http, a small HTTP load generator for the
 * projector benchmark. --threads threads each send GET requests in a loop,
 * one request per connection (keel-projector answers with Connection:
 * close), for --seconds or until --requests in all, and time each from
 * connect to the end of the answer. The path is --path, where "{n}" (if
 * present) becomes a random number below --ids, zero-padded to --pad
 * digits, so requests spread over many workflows. Prints requests per second
 * and latency percentiles, and writes them as JSON.
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct cfg_s {
        int port, threads, seconds, pad;
        long requests, ids;
        const char *path, *label;
        atomic_long issued;
        int64_t until;
} cfg_t;

typedef struct worker_s {
        cfg_t *c;
        pthread_t th;
        bench_samples_t lat;
        long ok, non200, errors;
        long long bytes;
        unsigned seed;
} worker_t;

/* One request; returns the status (-1 on a socket error), *got bytes. */
static int request(const cfg_t *c, const char *path, long long *got)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)c->port)};
        char buf[65536];
        int fd, status = -1, one = 1;
        size_t have = 0;
        int len;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
                return -1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                close(fd);
                return -1;
        }
        len = snprintf(buf, sizeof(buf),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                       "close\r\n\r\n",
                       path);
        if (write(fd, buf, (size_t)len) != len) {
                close(fd);
                return -1;
        }
        for (;;) {
                ssize_t r =
                    read(fd, buf + (have < 64 ? have : 64), sizeof(buf) - 65);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                if (have < 64) {
                        buf[have + (size_t)r < 64 ? have + (size_t)r : 64] =
                            '\0';
                        if (sscanf(buf, "HTTP/%*s %d", &status) != 1)
                                status = -1;
                }
                have += (size_t)r;
        }
        close(fd);
        *got = (long long)have;
        return have ? status : -1;
}

static void *run(void *arg)
{
        worker_t *w = arg;
        cfg_t *c = w->c;
        char path[1024];
        const char *ph;
        while (bench_us() < c->until) {
                long long got = 0;
                int64_t t;
                int st;
                if (c->requests &&
                    atomic_fetch_add(&c->issued, 1) >= c->requests)
                        break;
                if ((ph = strstr(c->path, "{n}")))
                        snprintf(path, sizeof(path), "%.*s%0*ld%s",
                                 (int)(ph - c->path), c->path, c->pad,
                                 (long)(rand_r(&w->seed) % c->ids), ph + 3);
                else
                        snprintf(path, sizeof(path), "%s", c->path);
                t = bench_us();
                st = request(c, path, &got);
                bench_samples_add(&w->lat, (double)(bench_us() - t) / 1000.0);
                w->bytes += got;
                if (st == 200)
                        w->ok++;
                else if (st < 0)
                        w->errors++;
                else
                        w->non200++;
        }
        return NULL;
}

int main(int argc, char **argv)
{
        static const struct option lopts[] = {
            {"port", required_argument, NULL, 'p'},
            {"port-file", required_argument, NULL, 'P'},
            {"threads", required_argument, NULL, 't'},
            {"seconds", required_argument, NULL, 's'},
            {"requests", required_argument, NULL, 'n'},
            {"path", required_argument, NULL, 'u'},
            {"ids", required_argument, NULL, 'i'},
            {"pad", required_argument, NULL, 'z'},
            {"label", required_argument, NULL, 'l'},
            {"json", required_argument, NULL, 'j'},
            {NULL, 0, NULL, 0}};
        cfg_t c = {.threads = 4,
                   .seconds = 10,
                   .ids = 1,
                   .path = "/healthz",
                   .label = "http"};
        const char *json_path = NULL;
        worker_t *ws;
        bench_samples_t all = {0};
        long ok = 0, non200 = 0, errors = 0;
        long long bytes = 0;
        int64_t t0;
        double secs;
        int opt;

        while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
                switch (opt) {
                case 'p':
                        c.port = atoi(optarg);
                        break;
                case 'P':
                        c.port = (int)bench_file_long(optarg);
                        break;
                case 't':
                        c.threads = atoi(optarg);
                        break;
                case 's':
                        c.seconds = atoi(optarg);
                        break;
                case 'n':
                        c.requests = atol(optarg);
                        break;
                case 'u':
                        c.path = optarg;
                        break;
                case 'i':
                        c.ids = atol(optarg);
                        break;
                case 'z':
                        c.pad = atoi(optarg);
                        break;
                case 'l':
                        c.label = optarg;
                        break;
                case 'j':
                        json_path = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (c.port <= 0 || c.threads <= 0 || c.seconds <= 0 || c.ids <= 0) {
                fprintf(stderr, "usage: keel-bench-http --port P|--port-file "
                                "F [--threads N] [--seconds S] [--requests N]\n"
                                "  [--path P (with {n})] [--ids N] [--pad D] "
                                "[--label L] [--json F]\n");
                return 2;
        }
        bench_watchdog(c.seconds + 120);
        ws = calloc((size_t)c.threads, sizeof(*ws));
        if (!ws)
                bench_die("out of memory");
        t0 = bench_us();
        c.until = t0 + (int64_t)c.seconds * 1000000;
        for (int i = 0; i < c.threads; i++) {
                ws[i].c = &c;
                ws[i].seed = (unsigned)(i * 7919 + 17);
                if (pthread_create(&ws[i].th, NULL, run, &ws[i]))
                        bench_die("cannot start a thread");
        }
        for (int i = 0; i < c.threads; i++) {
                pthread_join(ws[i].th, NULL);
                for (size_t k = 0; k < ws[i].lat.n; k++)
                        bench_samples_add(&all, ws[i].lat.v[k]);
                ok += ws[i].ok;
                non200 += ws[i].non200;
                errors += ws[i].errors;
                bytes += ws[i].bytes;
                bench_samples_free(&ws[i].lat);
        }
        secs = (double)(bench_us() - t0) / 1e6;
        printf("\n== HTTP (%s): GET %s, %d threads, one request per "
               "connection\n",
               c.label, c.path, c.threads);
        printf("%-10s %10s %9s %9s %9s %9s %8s %8s\n", "requests", "req/s",
               "p50 ms", "p90 ms", "p99 ms", "max ms", "non-200", "errors");
        printf("%-10zu %10.0f %9.2f %9.2f %9.2f %9.1f %8ld %8ld\n", all.n,
               (double)all.n / secs, bench_samples_pct(&all, 50),
               bench_samples_pct(&all, 90), bench_samples_pct(&all, 99),
               bench_samples_max(&all), non200, errors);
        printf("mean answer %.0f bytes\n",
               all.n ? (double)bytes / (double)all.n : 0);
        printf("reproduce:");
        for (int i = 0; i < argc; i++)
                printf(" %s", argv[i]);
        printf("\n");
        if (json_path)
                bench_json_write(
                    json_path,
                    json_pack("{ss ss si sI sf so sI sI sf}", "bench", "http",
                              "label", c.label, "threads", c.threads,
                              "requests", (json_int_t)all.n, "requests_per_s",
                              (double)all.n / secs, "latency_ms",
                              bench_samples_json(&all), "non_200",
                              (json_int_t)non200, "errors", (json_int_t)errors,
                              "mean_answer_bytes",
                              all.n ? (double)bytes / (double)all.n : 0));
        bench_samples_free(&all);
        free(ws);
        return 0;
}

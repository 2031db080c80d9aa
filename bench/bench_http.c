/*
 * bench_http.c: keel-bench-http, a small HTTP load generator for the
 * projector benchmark. --threads threads each send GET requests in a loop
 * for --seconds or until --requests in all: one request per connection
 * (timed from connect to the end of the answer), or with --keepalive many
 * on one HTTP/1.1 connection per thread (timed from the request's first
 * byte to the end of the answer, which its Content-Length marks). The path
 * is --path, where "{n}" (if present) becomes a random number below --ids,
 * zero-padded to --pad digits, so requests spread over many workflows.
 * Prints requests per second and latency percentiles, and writes them as
 * JSON. bench/run.sh also loads the projector with wrk (bench/wrk-ids.lua).
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct cfg_s {
        int port, threads, seconds, pad, keepalive;
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
        int fd; /* --keepalive: the open connection, or -1 */
} worker_t;

static int dial(int port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        int fd, one = 1;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
                return -1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Where the head in buf[0..have) ends (just past its blank line), or 0. */
static size_t head_end(const char *buf, size_t have)
{
        for (size_t i = 3; i < have; i++)
                if (buf[i - 3] == '\r' && buf[i - 2] == '\n' &&
                    buf[i - 1] == '\r' && buf[i] == '\n')
                        return i + 1;
        return 0;
}

/* Does the head hold header `name` (lower case, with ':') with a value
 * starting with `value` (lower case; NULL: any)? Its value into *v. */
static int header(const char *head, size_t n, const char *name, const char **v)
{
        size_t nl = strlen(name);
        for (size_t i = 0; i + nl < n; i++) {
                if ((i == 0 || head[i - 1] != '\n') ||
                    strncasecmp(head + i, name, nl))
                        continue;
                *v = head + i + nl;
                while (**v == ' ')
                        (*v)++;
                return 1;
        }
        return 0;
}

/*
 * One request on w's connection (a new one unless --keepalive kept one
 * open); returns the status (-1 on a socket error or a short answer), *got
 * bytes. The answer ends after its Content-Length, or when the server
 * closes. Without --keepalive it asks for Connection: close.
 */
static int request(const cfg_t *c, worker_t *w, const char *path,
                   long long *got)
{
        char buf[65536];
        size_t have = 0, head = 0, want = SIZE_MAX;
        int status = -1, len, close_after = !c->keepalive;

        if (w->fd < 0 && (w->fd = dial(c->port)) < 0)
                return -1;
        len = snprintf(buf, sizeof(buf),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path,
                       c->keepalive ? "" : "Connection: close\r\n");
        if (write(w->fd, buf, (size_t)len) != len) {
                close_after = 1;
                goto out;
        }
        while (have < want) {
                const char *v;
                /* Past the head only the count matters: overwrite. */
                ssize_t r = read(w->fd, buf + (head ? 0 : have),
                                 head ? sizeof(buf) : sizeof(buf) - 1 - have);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                have += (size_t)r;
                if (head)
                        continue;
                buf[have] = '\0';
                if (!(head = head_end(buf, have))) {
                        if (have == sizeof(buf) - 1)
                                break; /* a head too long */
                        continue;
                }
                if (sscanf(buf, "HTTP/%*s %d", &status) != 1)
                        status = -1;
                if (header(buf, head, "content-length:", &v))
                        want = head + (size_t)strtoull(v, NULL, 10);
                else
                        close_after = 1; /* the answer ends at the close */
                if (header(buf, head, "connection:", &v) &&
                    !strncasecmp(v, "close", 5))
                        close_after = 1;
        }
        *got = (long long)have;
        if (!head || (want != SIZE_MAX && have < want)) {
                status = -1;
                close_after = 1;
        }
out:
        if (close_after) {
                close(w->fd);
                w->fd = -1;
        }
        return status;
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
                st = request(c, w, path, &got);
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
            {"keepalive", no_argument, NULL, 'k'},
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
                case 'k':
                        c.keepalive = 1;
                        break;
                default:
                        return 2;
                }
        }
        if (c.port <= 0 || c.threads <= 0 || c.seconds <= 0 || c.ids <= 0) {
                fprintf(stderr, "usage: keel-bench-http --port P|--port-file "
                                "F [--threads N] [--seconds S] [--requests N]\n"
                                "  [--path P (with {n})] [--ids N] [--pad D] "
                                "[--label L] [--json F] [--keepalive]\n");
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
                ws[i].fd = -1;
                if (pthread_create(&ws[i].th, NULL, run, &ws[i]))
                        bench_die("cannot start a thread");
        }
        for (int i = 0; i < c.threads; i++) {
                pthread_join(ws[i].th, NULL);
                if (ws[i].fd >= 0)
                        close(ws[i].fd);
                for (size_t k = 0; k < ws[i].lat.n; k++)
                        bench_samples_add(&all, ws[i].lat.v[k]);
                ok += ws[i].ok;
                non200 += ws[i].non200;
                errors += ws[i].errors;
                bytes += ws[i].bytes;
                bench_samples_free(&ws[i].lat);
        }
        secs = (double)(bench_us() - t0) / 1e6;
        printf("\n== HTTP (%s): GET %s, %d threads, %s\n", c.label, c.path,
               c.threads,
               c.keepalive ? "one kept-alive connection each"
                           : "one request per connection");
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
                    json_pack(
                        "{ss ss si sb sI sf so sI sI sf}", "bench", "http",
                        "label", c.label, "threads", c.threads, "keepalive",
                        c.keepalive, "requests", (json_int_t)all.n,
                        "requests_per_s", (double)all.n / secs, "latency_ms",
                        bench_samples_json(&all), "non_200", (json_int_t)non200,
                        "errors", (json_int_t)errors, "mean_answer_bytes",
                        all.n ? (double)bytes / (double)all.n : 0));
        bench_samples_free(&all);
        free(ws);
        return 0;
}

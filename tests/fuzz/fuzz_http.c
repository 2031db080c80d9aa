/*
 * fuzz_http.c: a libFuzzer target for the projector's HTTP request
 * handling (projector/src/http.c): path, query and body. The real server
 * runs in-process, started once on 127.0.0.1 (port chosen at run time),
 * ready, over a small fold fed by hand, with a Kafka client that cannot
 * reach a broker (writes answer 503 within a millisecond) and a history
 * read-back that cannot be made (503 at once). Each input is sent as raw
 * bytes on a new connection, half-closed, and the answer read to the end.
 *
 * A POST body's length is awkward for a mutator to keep right, so the
 * literal header "Content-Length: *" is replaced by the length of what
 * follows the first blank line; any other Content-Length goes as written.
 *
 * Promises checked after every input (a broken one aborts, which libFuzzer
 * reports as a crash): keel's handler never answered 500 nor a status
 * outside its table (the projector's own per-code counters), the first
 * answer on the wire is no 5xx other than 503 (or 505, libmicrohttpd's
 * answer to an HTTP version it does not speak, before keel sees the
 * request), and the server still answers GET /healthz with 200.
 *
 * Long polls end at once: proj_t.stop is set, which every wait checks, so
 * `wait` and `after` are parsed and validated but never block. Built only
 * with KEEL_FUZZ=ON under clang (tests/fuzz/CMakeLists.txt); run it with
 * tests/fuzz/run-fuzz.sh.
 */
#include "fold_text.h"
#include "keel/keel.h"
#include "proj.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOKEN       "fuzz-token"
#define ANSWER_MS   5000
#define PLACEHOLDER "Content-Length: *"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static keel_config_t *cfg, *no_fetch;
static proj_t p;
static void *server;
static int port;

static void broken(const char *what, const char *detail)
{
        fprintf(stderr, "fuzz_http: %s: %s\n", what, detail);
        abort();
}

/* Workflows in every state the API shows differently (fold_text.h), with
 * an offset for every event, so that the history endpoint tries to read
 * them back. */
static const char events[] =
    "WorkflowStarted\tpay-done\tr1\t1\tpayment\t{\"amount\":5}\n"
    "WorkflowCompleted\tpay-done\tr1\t2\t{\"status\":\"completed\"}\n"
    "WorkflowStarted\tpay-failed\tr1\t1\tpayment\t[1,2,3]\n"
    "WorkflowFailed\tpay-failed\tr1\t2\t{\"type\":\"ChargeFailed\","
    "\"message\":\"card declined\",\"details\":\"{\\\"code\\\":51}\","
    "\"non_retryable\":false}\n"
    "WorkflowStarted\tpay-running\tr1\t1\tpayment\tnot JSON at all\n"
    "ActivityScheduled\tpay-running\tr1\t2\t1\tchargeCard\n"
    "ActivityFailed\tpay-running\tr1\t3\t1\t{\"type\":\"Timeout\","
    "\"message\":\"slow\",\"details\":\"null\"}\t1795000009000\t1\n"
    "ActivityHeartbeatRecorded\tpay-running\tr1\t4\t1\t{\"p\":1}\n"
    "TimerStarted\tpay-running\tr1\t5\tt1\t1795000600000\n"
    "SignalReceived\tpay-running\tr1\t6\trefundApproved\ttrue\n"
    "MarkerRecorded\tpay-running\tr1\t7\tstate\t{\"step\":\"charged\"}\n"
    "WorkflowStarted\tpay-blocked\tr1\t1\tpayment\tnull\n"
    "NonDeterminismDetected\tpay-blocked\tr1\t2\n"
    "WorkflowStarted\tpay-cancelled\tr1\t1\tpayment\t{}\n"
    "WorkflowCancelled\tpay-cancelled\tr1\t2\n"
    "WorkflowStarted\torders/42 \xe2\x82\xac\tr1\t1\tpayment\t\"x\"";

static void fill_fold(void)
{
        char *text = strdup(events), line[64];

        if (!text)
                broken("out of memory", "events");
        fuzz_fold_text(&p.fold, text);
        free(text);
        /* Enough of them for a few pages of listing. */
        for (int i = 0; i < 40; i++) {
                snprintf(line, sizeof(line),
                         "WorkflowStarted\tw-%03d\tr1\t1\tpayment\t{}", i);
                fuzz_fold_line(&p.fold, line);
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        signal(SIGPIPE, SIG_IGN);
        keel_log_set_level(KEEL_LOG_ERROR);
        cfg = keel_config_new();
        no_fetch = keel_config_new();
        /* Nothing listens on port 1: a write's metadata request fails
         * after timeout.ms. */
        if (!cfg || !no_fetch ||
            keel_config_set(cfg, "bootstrap", "127.0.0.1:1", NULL, NULL, 0) ||
            keel_config_set(cfg, "timeout.ms", "1", NULL, NULL, 0) ||
            keel_config_set(cfg, "kafka.log_level", "0", NULL, NULL, 0) ||
            keel_config_set(cfg, "http.token", TOKEN, NULL, NULL, 0) ||
            keel_config_set(cfg, "http.max.body.bytes", "1024", NULL, NULL,
                            0) ||
            keel_config_set(no_fetch, "kafka.consumer.fuzz.no.such.property",
                            "1", NULL, NULL, 0) ||
            proj_init(&p, cfg, 4))
                broken("set-up", "configuration or projector");
        fill_fold();
        atomic_store(&p.ready, 1);
        server = proj_http_start(&p, "127.0.0.1:0", &port);
        if (!server || port <= 0)
                broken("set-up", "cannot serve HTTP on 127.0.0.1");
        /* The server has read its settings and made its client. From now
         * on the projector's configuration is one librdkafka refuses for
         * a consumer, so reading history back fails at once (503) instead
         * of waiting 10 s for a broker that is not there; and every wait
         * (`wait`, `after`, the result's long poll) ends at once. */
        p.cfg = no_fetch;
        atomic_store(&p.stop, 1);
        return 0;
}

/* Send req[0..n) on a new connection, half-close, read the answer until
 * the server closes it (ANSWER_MS at most) into buf; its length. */
static size_t exchange(const char *req, size_t n, char *buf, size_t size)
{
        struct sockaddr_in sa;
        size_t len = 0, off = 0;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        if (fd < 0)
                broken("socket", strerror(errno));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                /* Interrupted (libFuzzer's alarms), the connection goes on
                 * being made: wait for it. */
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int err = errno;
                socklen_t el = sizeof(err);
                if (err == EINTR) {
                        while (poll(&pfd, 1, ANSWER_MS) < 0 && errno == EINTR)
                                ;
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el))
                                err = errno;
                }
                if (err)
                        broken("connect", strerror(err));
        }
        while (off < n) {
                ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        break; /* the server closed early: that is allowed */
                off += (size_t)w;
        }
        shutdown(fd, SHUT_WR);
        for (int waited = 0;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                char scratch[4096];
                ssize_t r;
                int ready = poll(&pfd, 1, 100);
                if (ready < 0 && errno != EINTR) /* libFuzzer's alarms */
                        broken("poll", strerror(errno));
                if (ready <= 0) {
                        waited += 100;
                        if (waited >= ANSWER_MS)
                                broken("hang", "no end of answer within 5 s");
                        continue;
                }
                r = recv(fd, len < size - 1 ? buf + len : scratch,
                         len < size - 1 ? size - 1 - len : sizeof(scratch), 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break; /* closed (or reset: a refused request) */
                if (len < size - 1)
                        len += (size_t)r;
        }
        close(fd);
        buf[len] = '\0';
        return len;
}

/* The status of the first answer in buf, or 0 if there is none. */
static int first_status(const char *buf)
{
        int status = 0;
        if (strncmp(buf, "HTTP/1.", 7) ||
            sscanf(buf + 7, "%*1[01] %3d", &status) != 1)
                return 0;
        return status;
}

/* The first n-byte needle in hay[0..size), or NULL. */
static const char *find(const char *hay, size_t size, const char *needle,
                        size_t n)
{
        for (size_t i = 0; i + n <= size; i++)
                if (!memcmp(hay + i, needle, n))
                        return hay + i;
        return NULL;
}

/* The request to send: data with a "Content-Length: *" placeholder filled
 * in. malloc'd; *n its length. */
static char *prepare(const uint8_t *data, size_t size, size_t *n)
{
        const char *d = (const char *)data;
        const char *ph = find(d, size, PLACEHOLDER, strlen(PLACEHOLDER));
        const char *blank = find(d, size, "\r\n\r\n", 4);
        char *out, num[24];
        size_t pre, body, k;

        if (!ph || !blank || ph > blank) {
                out = malloc(size ? size : 1);
                if (!out)
                        broken("out of memory", "request");
                memcpy(out, d, size);
                *n = size;
                return out;
        }
        body = size - (size_t)(blank + 4 - d);
        k = (size_t)snprintf(num, sizeof(num), "%zu", body);
        pre = (size_t)(ph - d) + strlen(PLACEHOLDER) - 1; /* up to the '*' */
        out = malloc(size + k);
        if (!out)
                broken("out of memory", "request");
        memcpy(out, d, pre);
        memcpy(out + pre, num, k);
        memcpy(out + pre + k, ph + strlen(PLACEHOLDER),
               size - (pre + 1)); /* after the '*' */
        *n = size - 1 + k;
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char answer[1 << 16];
        static const char health[] =
            "GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
        size_t n;
        char *req = prepare(data, size, &n);
        int status;

        exchange(req, n, answer, sizeof(answer));
        free(req);
        status = first_status(answer);
        if (status >= 500 && status != 503 && status != 505)
                broken("answered a 5xx", answer);
        if (atomic_load(&p.m.http[proj_http_code_index(500)]))
                broken("keel's handler answered 500", answer);
        if (atomic_load(&p.m.http[proj_http_code_index(599)]))
                broken("keel's handler answered a status outside its table",
                       answer);
        exchange(health, sizeof(health) - 1, answer, sizeof(answer));
        if (first_status(answer) != 200)
                broken("GET /healthz after the input", answer);
        return 0;
}

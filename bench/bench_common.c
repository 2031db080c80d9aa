/*
 * bench_common.c: the helpers every benchmark program uses
 * (bench_common.h). Children a benchmark starts are remembered here so
 * that an exit, a fatal error or the watchdog takes them along.
 */
#include "bench_common.h"

#include "keel/client.h"
#include "keel/codec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t bench_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t bench_wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bench_sleep_us(int64_t us)
{
        struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000L};
        if (us <= 0)
                return;
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

/* ---- samples ------------------------------------------------------------ */

void bench_samples_add(bench_samples_t *s, double x)
{
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 1024;
                double *v = realloc(s->v, cap * sizeof(*v));
                if (!v)
                        bench_die("out of memory");
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = x;
        s->sorted = 0;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

double bench_samples_pct(bench_samples_t *s, double p)
{
        size_t rank;
        if (!s->n)
                return 0;
        if (!s->sorted) {
                qsort(s->v, s->n, sizeof(*s->v), cmp_double);
                s->sorted = 1;
        }
        /* Nearest rank: the smallest value with at least p% at or below. */
        rank = (size_t)((p / 100.0) * (double)s->n + 0.999999);
        if (rank < 1)
                rank = 1;
        if (rank > s->n)
                rank = s->n;
        return s->v[rank - 1];
}

double bench_samples_max(bench_samples_t *s)
{
        return bench_samples_pct(s, 100);
}

double bench_samples_mean(const bench_samples_t *s)
{
        double sum = 0;
        for (size_t i = 0; i < s->n; i++)
                sum += s->v[i];
        return s->n ? sum / (double)s->n : 0;
}

void bench_samples_free(bench_samples_t *s)
{
        free(s->v);
        memset(s, 0, sizeof(*s));
}

json_t *bench_samples_json(bench_samples_t *s)
{
        return json_pack("{sI sf sf sf sf sf}", "n", (json_int_t)s->n, "p50",
                         bench_samples_pct(s, 50), "p90",
                         bench_samples_pct(s, 90), "p99",
                         bench_samples_pct(s, 99), "max", bench_samples_max(s),
                         "mean", bench_samples_mean(s));
}

/* ---- librdkafka ---------------------------------------------------------- */

void bench_kset(rd_kafka_conf_t *conf, const char *key, const char *value)
{
        char err[512];
        if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK)
                bench_die("librdkafka property %s=%s: %s", key, value, err);
}

rd_kafka_conf_t *bench_kconf(const char *bootstrap)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        bench_kset(conf, "bootstrap.servers", bootstrap);
        bench_kset(conf, "log_level", "3");
        return conf;
}

void bench_assign(rd_kafka_t *rk, const char *topic, int32_t parts,
                  int64_t offset)
{
        rd_kafka_topic_partition_list_t *tl =
            rd_kafka_topic_partition_list_new(parts);
        for (int32_t p = 0; p < parts; p++)
                rd_kafka_topic_partition_list_add(tl, topic, p)->offset =
                    offset;
        rd_kafka_assign(rk, tl);
        rd_kafka_topic_partition_list_destroy(tl);
}

int64_t bench_end_offsets(rd_kafka_t *rk, const char *topic, int32_t parts)
{
        int64_t sum = 0;
        for (int32_t p = 0; p < parts; p++) {
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi,
                                                     10000))
                        return -1;
                sum += hi;
        }
        return sum;
}

/* ---- /proc --------------------------------------------------------------- */

long bench_rss_kb(pid_t pid)
{
        char path[64], line[256];
        long kb = -1;
        FILE *f;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (!(f = fopen(path, "r")))
                return -1;
        while (fgets(line, sizeof(line), f))
                if (!strncmp(line, "VmRSS:", 6))
                        kb = strtol(line + 6, NULL, 10);
        fclose(f);
        return kb;
}

double bench_cpu_s(pid_t pid)
{
        char path[64], buf[2048], *p;
        unsigned long ut = 0, st = 0;
        size_t n;
        FILE *f;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (!(f = fopen(path, "r")))
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the command name (which may hold spaces): state is
         * field 3, utime 14, stime 15. */
        if (!(p = strrchr(buf, ')')))
                return -1;
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) != 2)
                return -1;
        return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double bench_loadavg(void)
{
        double l = -1;
        FILE *f = fopen("/proc/loadavg", "r");
        if (f) {
                if (fscanf(f, "%lf", &l) != 1)
                        l = -1;
                fclose(f);
        }
        return l;
}

/* ---- HTTP ------------------------------------------------------------------
 */

int bench_http_get(int port, const char *path, char **body)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        char req[1024];
        char *buf = NULL;
        size_t len = 0, cap = 0;
        int fd, status = -1;

        *body = NULL;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
                return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                close(fd);
                return -1;
        }
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
                 path);
        if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
                close(fd);
                return -1;
        }
        for (;;) {
                ssize_t r;
                if (cap - len < 4096) {
                        char *nb = realloc(buf, cap + 65536);
                        if (!nb)
                                break;
                        buf = nb;
                        cap += 65536;
                }
                r = read(fd, buf + len, cap - len - 1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                len += (size_t)r;
        }
        close(fd);
        if (!buf)
                return -1;
        buf[len] = '\0';
        if (sscanf(buf, "HTTP/%*s %d", &status) == 1) {
                char *b = strstr(buf, "\r\n\r\n");
                *body = strdup(b ? b + 4 : "");
        }
        free(buf);
        return status;
}

double bench_prom(const char *text, const char *name)
{
        size_t nl = strlen(name);
        for (const char *p = text; p && *p; p = strchr(p, '\n')) {
                if (*p == '\n')
                        p++;
                if (!strncmp(p, name, nl) && p[nl] == ' ')
                        return strtod(p + nl + 1, NULL);
        }
        return -1;
}

double bench_orch_metric(const char *port_file, const char *name)
{
        long port = bench_file_long(port_file);
        char *body = NULL;
        double v = -1;
        if (port > 0 && bench_http_get((int)port, "/metrics", &body) == 200)
                v = bench_prom(body, name);
        free(body);
        return v;
}

long bench_file_long(const char *path)
{
        long v = -1;
        FILE *f = fopen(path, "r");
        if (f) {
                if (fscanf(f, "%ld", &v) != 1)
                        v = -1;
                fclose(f);
        }
        return v;
}

/* ---- children ------------------------------------------------------------ */

#define MAX_CHILDREN 32

static pid_t children[MAX_CHILDREN];
static int exit_hooked;

void bench_kill_children(void)
{
        for (int i = 0; i < MAX_CHILDREN; i++) {
                int st;
                if (children[i] <= 0)
                        continue;
                kill(children[i], SIGKILL);
                waitpid(children[i], &st, 0);
                children[i] = 0;
        }
}

pid_t bench_spawn(char *const argv[], const char *logpath)
{
        pid_t pid;
        if (!exit_hooked) {
                atexit(bench_kill_children);
                exit_hooked = 1;
        }
        pid = fork();
        if (pid == 0) {
                int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                        close(fd);
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

void bench_stop(pid_t pid, int sig, int wait_ms)
{
        int st;
        if (pid <= 0)
                return;
        kill(pid, sig);
        for (int i = 0; i < wait_ms / 10; i++) {
                if (waitpid(pid, &st, WNOHANG) == pid)
                        goto reaped;
                bench_sleep_us(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
reaped:
        for (int i = 0; i < MAX_CHILDREN; i++)
                if (children[i] == pid)
                        children[i] = 0;
}

static void on_alarm(int sig)
{
        (void)sig;
        /* Async-signal-safe: kill and _exit only. */
        for (int i = 0; i < MAX_CHILDREN; i++)
                if (children[i] > 0)
                        kill(children[i], SIGKILL);
        (void)!write(2, "bench: watchdog fired, giving up\n", 33);
        _exit(3);
}

static void on_term(int sig)
{
        for (int i = 0; i < MAX_CHILDREN; i++)
                if (children[i] > 0)
                        kill(children[i], SIGKILL);
        signal(sig, SIG_DFL);
        raise(sig);
}

void bench_watchdog(int seconds)
{
        signal(SIGALRM, on_alarm);
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        signal(SIGHUP, on_term);
        alarm((unsigned)seconds);
}

/* ---- output -------------------------------------------------------------- */

int bench_json_write(const char *path, json_t *obj)
{
        int rc;
        if (!obj)
                return -1;
        if (!strcmp(path, "-")) {
                rc = json_dumpf(obj, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
        } else {
                rc = json_dump_file(obj, path, JSON_INDENT(2));
        }
        json_decref(obj);
        return rc ? -1 : 0;
}

void bench_die(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("bench: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        bench_kill_children();
        exit(1);
}

/* ---- keel records ---------------------------------------------------------
 */

int bench_start_record(const char *id, const char *type, const char *input,
                       unsigned char **out, size_t *len)
{
        char cid[KEEL_UUID_SIZE], err[256];
        json_t *rec;
        int rc;

        if (keel_client_command_id(cid))
                return -1;
        rec = json_pack("{ss ss sI ss ss}", "workflow_id", id, "command_id",
                        cid, "ts", (json_int_t)bench_wall_ms(), "workflow_type",
                        type, "input", input);
        if (!rec)
                return -1;
        rc = keel_codec_encode("keel.inbox.StartWorkflow", rec, out, len, err,
                               sizeof(err));
        json_decref(rec);
        if (rc)
                fprintf(stderr, "bench: encoding a start: %s\n", err);
        return rc ? -1 : 0;
}

size_t bench_key_id_len(const void *key, size_t len)
{
        const char *k = key;
        if (!k || !len || k[0] == '!')
                return 0;
        for (size_t i = len; i-- > 0;)
                if (k[i] == '/')
                        return i;
        return 0;
}

/* ---- template histories ------------------------------------------------- */

json_t *bench_template_load(const char *bootstrap, const char *wf_type,
                            const char *until, int timeout_ms)
{
        rd_kafka_conf_t *conf = bench_kconf(bootstrap);
        char err[512], want[128], id[1100] = "";
        json_t *events = json_array(), *found = NULL;
        int64_t deadline = bench_us() + (int64_t)timeout_ms * 1000;
        rd_kafka_t *rk;

        snprintf(want, sizeof(want), "keel.history.%s", until);
        bench_kset(conf, "group.id", "keel-bench-template");
        bench_kset(conf, "enable.auto.commit", "false");
        bench_kset(conf, "isolation.level", "read_committed");
        if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))))
                bench_die("consumer: %s", err);
        rd_kafka_poll_set_consumer(rk);
        bench_assign(rk, "keel.history", BENCH_PARTITIONS,
                     RD_KAFKA_OFFSET_BEGINNING);
        while (!found && bench_us() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                size_t idl;
                const char *type;
                json_t *rec;
                if (!m)
                        continue;
                idl = bench_key_id_len(m->key, m->key_len);
                if (m->err || !idl ||
                    (*id && (strlen(id) != idl || memcmp(id, m->key, idl))) ||
                    keel_codec_decode(m->payload, m->len, &type, &rec, NULL,
                                      0)) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (!*id && !strcmp(type, "keel.history.WorkflowStarted") &&
                    !strcmp(
                        json_string_value(json_object_get(rec, "workflow_type"))
                            ? json_string_value(
                                  json_object_get(rec, "workflow_type"))
                            : "",
                        wf_type) &&
                    idl < sizeof(id))
                        snprintf(id, sizeof(id), "%.*s", (int)idl,
                                 (const char *)m->key);
                if (*id) {
                        json_array_append_new(
                            events,
                            json_pack("{ss so}", "type", type, "record", rec));
                        if (!strcmp(type, want))
                                found = events;
                } else {
                        json_decref(rec);
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        if (!found)
                json_decref(events);
        return found;
}

/* Rewrite v (a record's field value) in place where it names the
 * template's workflow or run. */
static void rewrite_fields(json_t *rec, const char *old_id, const char *id,
                           const char *old_run, const char *run)
{
        const char *k;
        json_t *v;
        size_t ol = strlen(old_id);
        void *tmp;
        json_object_foreach_safe(rec, tmp, k, v)
        {
                const char *s = json_string_value(v);
                if (json_is_object(v)) {
                        rewrite_fields(v, old_id, id, old_run, run);
                        continue;
                }
                if (!s)
                        continue;
                if (!strcmp(s, old_id)) {
                        json_object_set_new(rec, k, json_string(id));
                } else if (!strcmp(s, old_run)) {
                        json_object_set_new(rec, k, json_string(run));
                } else if (!strncmp(s, old_id, ol) && s[ol] == '/') {
                        char buf[2048];
                        snprintf(buf, sizeof(buf), "%s%s", id, s + ol);
                        json_object_set_new(rec, k, json_string(buf));
                }
        }
}

json_t *bench_template_copy(const json_t *tmpl, const char *id,
                            const char *run_id, int64_t epoch)
{
        const json_t *first =
            json_object_get(json_array_get(tmpl, 0), "record");
        const char *old_id =
            json_string_value(json_object_get(first, "workflow_id"));
        const char *old_run =
            json_string_value(json_object_get(first, "run_id"));
        json_t *out = json_deep_copy(tmpl), *ev;
        size_t i;

        if (!out || !old_id || !old_run)
                bench_die("bad template");
        json_array_foreach(out, i, ev)
        {
                json_t *rec = json_object_get(ev, "record");
                rewrite_fields(rec, old_id, id, old_run, run_id);
                json_object_set_new(rec, "epoch", json_integer(epoch));
        }
        return out;
}

/*
 * dev_broker_control.c: the dev broker's fault-injection control port
 * (dev_broker_control.h). A poll() loop on the dev broker's main thread
 * accepts connections on 127.0.0.1, splits what they send into lines and
 * runs each line as a command on the mock cluster through librdkafka's
 * mock API (rdkafka_mock.h, 2.0.2), answering one line per command.
 */
#include "dev_broker_control.h"

#include "keel/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEVCTL_CLIENTS 16
#define DEVCTL_LINE    1024
#define DEVCTL_ERRS    64     /* errors in one command's list */
#define DEVCTL_COUNT   100000 /* errors one command may push */

/* The Kafka protocol requests librdkafka 2.0.2's mock cluster serves, by
 * their protocol names and API keys. */
static const struct {
        const char *name;
        int16_t key;
} apis[] = {
    {"Produce", 0},
    {"Fetch", 1},
    {"ListOffsets", 2},
    {"Metadata", 3},
    {"OffsetCommit", 8},
    {"OffsetFetch", 9},
    {"FindCoordinator", 10},
    {"JoinGroup", 11},
    {"Heartbeat", 12},
    {"LeaveGroup", 13},
    {"SyncGroup", 14},
    {"ApiVersions", 18},
    {"InitProducerId", 22},
    {"OffsetForLeaderEpoch", 23},
    {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25},
    {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};
#define NAPIS (sizeof(apis) / sizeof(apis[0]))

static const char help[] =
    "ok commands: error API COUNT ERR[,ERR...] | broker-error BROKER API "
    "COUNT ERR[,ERR...] [RTT_MS] | pending BROKER API | clear [API] | "
    "down BROKER | up BROKER | rtt BROKER MS | leader TOPIC PARTITION BROKER "
    "| coordinator group|transaction KEY BROKER | topic-error TOPIC ERR | "
    "help (BROKER: 1..N or all)";

typedef struct client_s {
        int fd; /* -1: free */
        size_t len;
        int overflow; /* dropping the rest of a line that was too long */
        char buf[DEVCTL_LINE];
} client_t;

struct keel__devctl_s {
        rd_kafka_mock_cluster_t *mc;
        int brokers;
        int lfd;
        client_t c[DEVCTL_CLIENTS];
};

/* ---- parsing ------------------------------------------------------------ */

static int parse_long(const char *s, long min, long max, long *out)
{
        char *end;
        long v;
        if (!s || !*s)
                return -1;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

static int parse_api(const char *s, int16_t *key, const char **name)
{
        for (size_t i = 0; s && i < NAPIS; i++) {
                char num[8];
                snprintf(num, sizeof(num), "%d", apis[i].key);
                if (!strcasecmp(s, apis[i].name) || !strcmp(s, num)) {
                        *key = apis[i].key;
                        *name = apis[i].name;
                        return 0;
                }
        }
        return -1;
}

/* An error code by its name as rd_kafka_err2name() gives it
 * (NOT_LEADER_FOR_PARTITION, _TRANSPORT; with or without the
 * RD_KAFKA_RESP_ERR_ prefix; any case) or its number. */
static int parse_err(const char *s, rd_kafka_resp_err_t *out)
{
        const struct rd_kafka_err_desc *descs;
        size_t n;
        long v;

        if (!strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18))
                s += 18;
        rd_kafka_get_err_descs(&descs, &n);
        for (size_t i = 0; i < n; i++)
                if (descs[i].name && !strcasecmp(s, descs[i].name)) {
                        *out = descs[i].code;
                        return 0;
                }
        if (!parse_long(s, -200, 1000, &v)) {
                *out = (rd_kafka_resp_err_t)v;
                return 0;
        }
        return -1;
}

/* A comma-separated error list; the count, or -1 with reply set. */
static int parse_errs(char *s, rd_kafka_resp_err_t *errs, char *reply,
                      size_t size)
{
        int n = 0;
        char *save = NULL;
        for (char *t = strtok_r(s, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
                if (n == DEVCTL_ERRS) {
                        snprintf(reply, size,
                                 "error at most %d errors in a list",
                                 DEVCTL_ERRS);
                        return -1;
                }
                if (parse_err(t, &errs[n++])) {
                        snprintf(reply, size,
                                 "error unknown error '%.64s' (a name such "
                                 "as NOT_LEADER_FOR_PARTITION or "
                                 "_TRANSPORT, or a number)",
                                 t);
                        return -1;
                }
        }
        if (!n)
                snprintf(reply, size, "error no error named");
        return n ? n : -1;
}

/* A broker ID (1..brokers), or "all" (-1). */
static int parse_broker(const char *s, int brokers, int32_t *id, char *reply,
                        size_t size)
{
        long v;
        if (s && !strcasecmp(s, "all")) {
                *id = -1;
                return 0;
        }
        if (parse_long(s, 1, brokers, &v)) {
                snprintf(reply, size,
                         "error broker must be 1..%d or all, got '%.32s'",
                         brokers, s ? s : "");
                return -1;
        }
        *id = (int32_t)v;
        return 0;
}

/* ---- commands ----------------------------------------------------------- */

typedef struct cmd_s {
        rd_kafka_mock_cluster_t *mc;
        int brokers;
        int argc;
        char *argv[8];
        char *reply;
        size_t size;
} cmd_t;

typedef int (*cmd_fn)(cmd_t *c);

static int usage(cmd_t *c, const char *syntax)
{
        snprintf(c->reply, c->size, "error usage: %s", syntax);
        return -1;
}

/* The result of a mock call: ok with what, or the mock's error. */
static int mock_result(cmd_t *c, rd_kafka_resp_err_t e, const char *what)
{
        if (e) {
                snprintf(c->reply, c->size, "error %s: %s", what,
                         rd_kafka_err2name(e));
                return -1;
        }
        snprintf(c->reply, c->size, "ok %s", what);
        return 0;
}

static int api_arg(cmd_t *c, const char *s, int16_t *key, const char **name)
{
        if (!parse_api(s, key, name)) {
                return 0;
        }
        snprintf(c->reply, c->size,
                 "error unknown API '%.40s' (Produce, Fetch, Metadata, "
                 "FindCoordinator, JoinGroup, Heartbeat, SyncGroup, "
                 "OffsetCommit, InitProducerId, AddPartitionsToTxn, "
                 "AddOffsetsToTxn, TxnOffsetCommit, EndTxn, ... or a key)",
                 s);
        return -1;
}

/* error API COUNT ERR[,ERR...]: the next COUNT requests of API, to any
 * broker, fail with the errors in turn (the list repeats). */
static int cmd_error(cmd_t *c)
{
        rd_kafka_resp_err_t errs[DEVCTL_ERRS], *all;
        const char *name;
        int16_t key;
        long count;
        int n;

        if (c->argc != 4)
                return usage(c, "error API COUNT ERR[,ERR...]");
        if (api_arg(c, c->argv[1], &key, &name))
                return -1;
        if (parse_long(c->argv[2], 1, DEVCTL_COUNT, &count)) {
                snprintf(c->reply, c->size, "error COUNT must be 1..%d",
                         DEVCTL_COUNT);
                return -1;
        }
        if ((n = parse_errs(c->argv[3], errs, c->reply, c->size)) < 0)
                return -1;
        if (!(all = calloc((size_t)count, sizeof(*all)))) {
                snprintf(c->reply, c->size, "error out of memory");
                return -1;
        }
        for (long i = 0; i < count; i++)
                all[i] = errs[i % n];
        rd_kafka_mock_push_request_errors_array(c->mc, key, (size_t)count, all);
        free(all);
        snprintf(c->reply, c->size, "ok %ld errors pushed for %s", count, name);
        return 0;
}

/* broker-error BROKER API COUNT ERR[,ERR...] [RTT_MS]: the same on one
 * broker's (every broker's) own error stack, each reply delayed RTT_MS.
 * NO_ERROR with an RTT delays requests without failing them. */
static int cmd_broker_error(cmd_t *c)
{
        rd_kafka_resp_err_t errs[DEVCTL_ERRS];
        const char *name;
        int16_t key;
        int32_t id;
        long count, rtt = 0;
        int n;

        if (c->argc != 5 && c->argc != 6)
                return usage(c, "broker-error BROKER API COUNT ERR[,ERR...] "
                                "[RTT_MS]");
        if (parse_broker(c->argv[1], c->brokers, &id, c->reply, c->size) ||
            api_arg(c, c->argv[2], &key, &name))
                return -1;
        if (parse_long(c->argv[3], 1, DEVCTL_COUNT, &count)) {
                snprintf(c->reply, c->size, "error COUNT must be 1..%d",
                         DEVCTL_COUNT);
                return -1;
        }
        if ((n = parse_errs(c->argv[4], errs, c->reply, c->size)) < 0)
                return -1;
        if (c->argc == 6 && parse_long(c->argv[5], 0, 600000, &rtt)) {
                snprintf(c->reply, c->size, "error RTT_MS must be 0..600000");
                return -1;
        }
        for (int32_t b = id < 0 ? 1 : id; b <= (id < 0 ? c->brokers : id); b++)
                for (long i = 0; i < count; i++) {
                        rd_kafka_resp_err_t e =
                            rd_kafka_mock_broker_push_request_error_rtts(
                                c->mc, b, key, 1, errs[i % n], (int)rtt);
                        if (e)
                                return mock_result(c, e, "broker-error");
                }
        snprintf(c->reply, c->size, "ok %ld errors pushed for %s on broker %s",
                 count, name, c->argv[1]);
        return 0;
}

/* pending BROKER API: errors still on the broker's (brokers') own stack
 * for API, that is pushed with broker-error and not yet returned. */
static int cmd_pending(cmd_t *c)
{
        const char *name;
        int16_t key;
        int32_t id;
        size_t total = 0;

        if (c->argc != 3)
                return usage(c, "pending BROKER API");
        if (parse_broker(c->argv[1], c->brokers, &id, c->reply, c->size) ||
            api_arg(c, c->argv[2], &key, &name))
                return -1;
        for (int32_t b = id < 0 ? 1 : id; b <= (id < 0 ? c->brokers : id);
             b++) {
                size_t cnt = 0;
                rd_kafka_resp_err_t e =
                    rd_kafka_mock_broker_error_stack_cnt(c->mc, b, key, &cnt);
                if (e)
                        return mock_result(c, e, "pending");
                total += cnt;
        }
        snprintf(c->reply, c->size, "ok %zu", total);
        return 0;
}

/* clear [API]: forget the cluster-wide errors pushed for API; without
 * one, for every API, and every broker up with no added delay. */
static int cmd_clear(cmd_t *c)
{
        const char *name;
        int16_t key;
        rd_kafka_resp_err_t e;

        if (c->argc > 2)
                return usage(c, "clear [API]");
        if (c->argc == 2) {
                if (api_arg(c, c->argv[1], &key, &name))
                        return -1;
                rd_kafka_mock_clear_request_errors(c->mc, key);
                snprintf(c->reply, c->size, "ok errors for %s cleared", name);
                return 0;
        }
        for (size_t i = 0; i < NAPIS; i++)
                rd_kafka_mock_clear_request_errors(c->mc, apis[i].key);
        if ((e = rd_kafka_mock_broker_set_up(c->mc, -1)) ||
            (e = rd_kafka_mock_broker_set_rtt(c->mc, -1, 0)))
                return mock_result(c, e, "clear");
        return mock_result(c, 0,
                           "errors cleared, every broker up, no added rtt");
}

static int cmd_updown(cmd_t *c)
{
        int down = !strcasecmp(c->argv[0], "down");
        int32_t id;
        char what[64];

        if (c->argc != 2)
                return usage(c, down ? "down BROKER" : "up BROKER");
        if (parse_broker(c->argv[1], c->brokers, &id, c->reply, c->size))
                return -1;
        snprintf(what, sizeof(what), "broker %s %s", c->argv[1],
                 down ? "down" : "up");
        return mock_result(c,
                           down ? rd_kafka_mock_broker_set_down(c->mc, id)
                                : rd_kafka_mock_broker_set_up(c->mc, id),
                           what);
}

static int cmd_rtt(cmd_t *c)
{
        int32_t id;
        long ms;
        char what[64];

        if (c->argc != 3)
                return usage(c, "rtt BROKER MS");
        if (parse_broker(c->argv[1], c->brokers, &id, c->reply, c->size))
                return -1;
        if (parse_long(c->argv[2], 0, 600000, &ms)) {
                snprintf(c->reply, c->size, "error MS must be 0..600000");
                return -1;
        }
        snprintf(what, sizeof(what), "broker %s rtt %ld ms", c->argv[1], ms);
        return mock_result(c, rd_kafka_mock_broker_set_rtt(c->mc, id, (int)ms),
                           what);
}

static int cmd_leader(cmd_t *c)
{
        int32_t id;
        long part;
        char what[300];

        if (c->argc != 4)
                return usage(c, "leader TOPIC PARTITION BROKER");
        if (parse_long(c->argv[2], 0, 1000000, &part)) {
                snprintf(c->reply, c->size, "error bad PARTITION '%.32s'",
                         c->argv[2]);
                return -1;
        }
        if (parse_broker(c->argv[3], c->brokers, &id, c->reply, c->size))
                return -1;
        if (id < 0)
                return usage(c, "leader TOPIC PARTITION BROKER (one broker)");
        snprintf(what, sizeof(what), "%.200s [%ld] led by broker %d",
                 c->argv[1], part, (int)id);
        return mock_result(c,
                           rd_kafka_mock_partition_set_leader(
                               c->mc, c->argv[1], (int32_t)part, id),
                           what);
}

static int cmd_coordinator(cmd_t *c)
{
        int32_t id;
        char what[300];

        if (c->argc != 4 ||
            (strcmp(c->argv[1], "group") && strcmp(c->argv[1], "transaction")))
                return usage(c, "coordinator group|transaction KEY BROKER");
        if (parse_broker(c->argv[3], c->brokers, &id, c->reply, c->size))
                return -1;
        if (id < 0)
                return usage(c, "coordinator group|transaction KEY BROKER "
                                "(one broker)");
        snprintf(what, sizeof(what), "%s %.200s coordinated by broker %d",
                 c->argv[1], c->argv[2], (int)id);
        return mock_result(
            c, rd_kafka_mock_coordinator_set(c->mc, c->argv[1], c->argv[2], id),
            what);
}

/* topic-error TOPIC ERR: Metadata and AddPartitionsToTxn requests for
 * TOPIC fail with ERR until set back with NO_ERROR. */
static int cmd_topic_error(cmd_t *c)
{
        rd_kafka_resp_err_t e;

        if (c->argc != 3)
                return usage(c, "topic-error TOPIC ERR");
        if (parse_err(c->argv[2], &e)) {
                snprintf(c->reply, c->size, "error unknown error '%.64s'",
                         c->argv[2]);
                return -1;
        }
        rd_kafka_mock_topic_set_error(c->mc, c->argv[1], e);
        snprintf(c->reply, c->size, "ok topic %.200s error %s", c->argv[1],
                 rd_kafka_err2name(e));
        return 0;
}

static int cmd_help(cmd_t *c)
{
        snprintf(c->reply, c->size, "%s", help);
        return 0;
}

int keel__devctl_exec(rd_kafka_mock_cluster_t *mc, int brokers, char *line,
                      char *reply, size_t size)
{
        static const struct {
                const char *name;
                cmd_fn fn;
        } cmds[] = {
            {"error", cmd_error},
            {"broker-error", cmd_broker_error},
            {"pending", cmd_pending},
            {"clear", cmd_clear},
            {"down", cmd_updown},
            {"up", cmd_updown},
            {"rtt", cmd_rtt},
            {"leader", cmd_leader},
            {"coordinator", cmd_coordinator},
            {"topic-error", cmd_topic_error},
            {"help", cmd_help},
        };
        cmd_t c = {.mc = mc, .brokers = brokers, .reply = reply, .size = size};
        char *save = NULL;

        for (char *t = strtok_r(line, " \t\r\n", &save); t;
             t = strtok_r(NULL, " \t\r\n", &save)) {
                if (c.argc == 8) {
                        snprintf(reply, size, "error too many words");
                        return -1;
                }
                c.argv[c.argc++] = t;
        }
        if (!c.argc || c.argv[0][0] == '#') {
                snprintf(reply, size, "ok");
                return 0;
        }
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                if (!strcasecmp(c.argv[0], cmds[i].name))
                        return cmds[i].fn(&c);
        snprintf(reply, size, "error unknown command '%.40s' (try help)",
                 c.argv[0]);
        return -1;
}

/* ---- the port ----------------------------------------------------------- */

/* Non-blocking, closed on exec. 0 or -1. */
static int set_flags(int fd)
{
        int fl = fcntl(fd, F_GETFL);
        return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ||
                       fcntl(fd, F_SETFD, FD_CLOEXEC)
                   ? -1
                   : 0;
}

keel__devctl_t *keel__devctl_new(rd_kafka_mock_cluster_t *mc, int brokers,
                                 int port, int *bound, char *err,
                                 size_t errsize)
{
        keel__devctl_t *ctl = calloc(1, sizeof(*ctl));
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int one = 1;

        if (!ctl) {
                snprintf(err, errsize, "out of memory");
                return NULL;
        }
        ctl->mc = mc;
        ctl->brokers = brokers;
        for (int i = 0; i < DEVCTL_CLIENTS; i++)
                ctl->c[i].fd = -1;
        ctl->lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (ctl->lfd < 0 || set_flags(ctl->lfd) ||
            setsockopt(ctl->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            bind(ctl->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
            listen(ctl->lfd, 8) ||
            getsockname(ctl->lfd, (struct sockaddr *)&sa, &len)) {
                snprintf(err, errsize, "control port 127.0.0.1:%d: %s", port,
                         strerror(errno));
                if (ctl->lfd >= 0)
                        close(ctl->lfd);
                free(ctl);
                return NULL;
        }
        *bound = ntohs(sa.sin_port);
        return ctl;
}

static void client_close(client_t *cl)
{
        if (cl->fd >= 0)
                close(cl->fd);
        cl->fd = -1;
        cl->len = 0;
        cl->overflow = 0;
}

/* Send a reply line; a client that does not take it is dropped. */
static void client_reply(client_t *cl, const char *reply)
{
        char out[DEVCTL_LINE + 2];
        int n = snprintf(out, sizeof(out), "%s\n", reply);
        if (n < 0 || (size_t)n >= sizeof(out)) {
                n = (int)sizeof(out) - 1;
                out[n - 1] = '\n';
        }
        if (send(cl->fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
                client_close(cl);
}

/* A command line for the log: printable, bounded. */
static void printable(const char *s, char *out, size_t size)
{
        size_t i = 0;
        for (; s[i] && i + 1 < size; i++)
                out[i] =
                    isprint((unsigned char)s[i]) && s[i] != '"' ? s[i] : '?';
        out[i] = '\0';
}

static void run_line(keel__devctl_t *ctl, client_t *cl, char *line)
{
        char reply[DEVCTL_LINE], shown[200];
        size_t len = strlen(line);
        int rc;

        if (len && line[len - 1] == '\r') /* telnet, nc -C */
                line[len - 1] = '\0';
        printable(line, shown, sizeof(shown));
        rc = keel__devctl_exec(ctl->mc, ctl->brokers, line, reply,
                               sizeof(reply));
        if (shown[0] && shown[0] != '#')
                keel_log(rc ? KEEL_LOG_WARN : KEEL_LOG_INFO, "dev-broker",
                         "msg=control command=\"%s\" reply=\"%s\"", shown,
                         reply);
        client_reply(cl, reply);
}

/* Read what cl sent and answer its complete lines. */
static void client_read(keel__devctl_t *ctl, client_t *cl)
{
        ssize_t n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len,
                         MSG_DONTWAIT);
        char *nl;

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                client_close(cl);
                return;
        }
        if (n < 0)
                return;
        cl->len += (size_t)n;
        while (cl->fd >= 0 && (nl = memchr(cl->buf, '\n', cl->len))) {
                size_t used = (size_t)(nl - cl->buf) + 1;
                *nl = '\0';
                if (cl->overflow)
                        cl->overflow = 0; /* the end of the long line */
                else
                        run_line(ctl, cl, cl->buf);
                memmove(cl->buf, cl->buf + used, cl->len - used);
                cl->len -= used;
        }
        if (cl->fd >= 0 && cl->len == sizeof(cl->buf)) {
                /* A line longer than the buffer: refused, and the rest of
                 * it is skipped. */
                if (!cl->overflow)
                        client_reply(cl, "error line too long");
                cl->overflow = 1;
                cl->len = 0;
        }
}

static void accept_one(keel__devctl_t *ctl)
{
        int fd = accept(ctl->lfd, NULL, NULL);
        if (fd < 0)
                return;
        if (set_flags(fd)) {
                close(fd);
                return;
        }
        for (int i = 0; i < DEVCTL_CLIENTS; i++)
                if (ctl->c[i].fd < 0) {
                        ctl->c[i].fd = fd;
                        return;
                }
        {
                static const char full[] = "error too many connections\n";
                ssize_t ignored = send(fd, full, sizeof(full) - 1,
                                       MSG_NOSIGNAL | MSG_DONTWAIT);
                (void)ignored;
                close(fd);
        }
}

void keel__devctl_poll(keel__devctl_t *ctl, int timeout_ms)
{
        struct pollfd pfd[DEVCTL_CLIENTS + 1];
        int idx[DEVCTL_CLIENTS + 1];
        nfds_t n = 1;

        pfd[0].fd = ctl->lfd;
        pfd[0].events = POLLIN;
        for (int i = 0; i < DEVCTL_CLIENTS; i++)
                if (ctl->c[i].fd >= 0) {
                        pfd[n].fd = ctl->c[i].fd;
                        pfd[n].events = POLLIN;
                        idx[n++] = i;
                }
        if (poll(pfd, n, timeout_ms) <= 0)
                return;
        for (nfds_t k = 1; k < n; k++)
                if (pfd[k].revents)
                        client_read(ctl, &ctl->c[idx[k]]);
        if (pfd[0].revents & POLLIN)
                accept_one(ctl);
}

void keel__devctl_destroy(keel__devctl_t *ctl)
{
        if (!ctl)
                return;
        for (int i = 0; i < DEVCTL_CLIENTS; i++)
                client_close(&ctl->c[i]);
        close(ctl->lfd);
        free(ctl);
}

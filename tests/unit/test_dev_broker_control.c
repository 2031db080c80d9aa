/*
 * test_dev_broker_control.c: the dev broker's control port
 * (sdk/cli/dev_broker_control.h) on a mock cluster of 3 brokers in this
 * process: commands do what they say (errors pushed on a broker's stack
 * are counted there), bad commands are error lines and change nothing,
 * and the port answers each line of a connection, a line split across
 * writes or too long included.
 */
#include "dev_broker_control.h"
#include "keel_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static rd_kafka_t *rk;
static rd_kafka_mock_cluster_t *mc;

static int setup(void)
{
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))))
                return 1;
        return (mc = rd_kafka_mock_cluster_new(rk, 3)) ? 0 : 1;
}

static int teardown(void)
{
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 0;
}

/* Run cmd; its reply in reply. */
static char reply[1024];
static int run(const char *cmd)
{
        char line[2048];
        snprintf(line, sizeof(line), "%s", cmd);
        return keel__devctl_exec(mc, 3, line, reply, sizeof(reply));
}

/* The count `pending BROKER API` gives. */
static long pending(const char *broker, const char *api)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "pending %s %s", broker, api);
        if (run(cmd))
                return -1;
        return atol(reply + 3);
}

static void test_dev_broker_control_commands_do_what_they_say(void)
{
        CU_ASSERT_EQUAL(pending("all", "Produce"), 0);
        CU_ASSERT_EQUAL(
            run("broker-error 2 Produce 3 NOT_LEADER_FOR_PARTITION,_TRANSPORT"),
            0);
        CU_ASSERT_STRING_EQUAL(reply,
                               "ok 3 errors pushed for Produce on broker 2");
        CU_ASSERT_EQUAL(pending("2", "Produce"), 3);
        CU_ASSERT_EQUAL(pending("1", "Produce"), 0);
        /* names in any case, API keys as numbers, delays without errors */
        CU_ASSERT_EQUAL(run("broker-error all 1 2 not_leader_for_partition"),
                        0);
        CU_ASSERT_EQUAL(pending("all", "fetch"), 6);
        CU_ASSERT_EQUAL(run("broker-error 3 EndTxn 1 NO_ERROR 250"), 0);
        CU_ASSERT_EQUAL(pending("3", "EndTxn"), 1);

        CU_ASSERT_EQUAL(run("error AddPartitionsToTxn 5 "
                            "CONCURRENT_TRANSACTIONS,RD_KAFKA_RESP_ERR_NOT_"
                            "COORDINATOR,51"),
                        0);
        CU_ASSERT_STRING_EQUAL(reply,
                               "ok 5 errors pushed for AddPartitionsToTxn");
        CU_ASSERT_EQUAL(run("clear AddPartitionsToTxn"), 0);
        CU_ASSERT_EQUAL(run("down 2"), 0);
        CU_ASSERT_STRING_EQUAL(reply, "ok broker 2 down");
        CU_ASSERT_EQUAL(run("up all"), 0);
        CU_ASSERT_EQUAL(run("rtt all 50"), 0);
        CU_ASSERT_EQUAL(run("leader keel.inbox 0 3"), 0);
        CU_ASSERT_EQUAL(run("coordinator group keel-orchestrator 2"), 0);
        CU_ASSERT_EQUAL(run("topic-error keel.inbox LEADER_NOT_AVAILABLE"), 0);
        CU_ASSERT_EQUAL(run("topic-error keel.inbox NO_ERROR"), 0);
        CU_ASSERT_EQUAL(run("clear"), 0);
        CU_ASSERT_EQUAL(run("help"), 0);
        CU_ASSERT_EQUAL(strncmp(reply, "ok commands:", 12), 0);
        CU_ASSERT_EQUAL(run(""), 0);
        CU_ASSERT_EQUAL(run("   # a comment"), 0);
}

static void test_dev_broker_control_bad_commands_are_errors(void)
{
        static const char *const bad[] = {
            "bogus",
            "error",
            "error Produce 5",
            "error Nope 5 _TRANSPORT",
            "error 4 5 _TRANSPORT", /* LeaderAndIsr: not served */
            "error Produce 0 _TRANSPORT",
            "error Produce -1 _TRANSPORT",
            "error Produce 100001 _TRANSPORT",
            "error Produce 99999999999999999999999 _TRANSPORT",
            "error Produce 5x _TRANSPORT",
            "error Produce 5 NOT_AN_ERROR",
            "error Produce 5 ,,,",
            "error Produce 5 _TRANSPORT extra",
            "broker-error 0 Produce 1 _TRANSPORT",
            "broker-error 4 Produce 1 _TRANSPORT",
            "broker-error 1 Produce 1 _TRANSPORT -5",
            "broker-error 1 Produce 1 _TRANSPORT 5 6",
            "pending 1",
            "pending 9 Produce",
            "clear Nope",
            "clear Produce Fetch",
            "down",
            "down 2 3",
            "up x",
            "rtt 1",
            "rtt 1 -1",
            "rtt 1 600001",
            "leader keel.inbox 0 all",
            "leader keel.inbox -1 1",
            "leader keel.inbox 99 1", /* no such partition */
            "coordinator cluster x 1",
            "coordinator group g all",
            "topic-error keel.inbox",
            "topic-error keel.inbox WHAT",
            "a b c d e f g h i",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int rc = run(bad[i]);
                if (rc != -1 || strncmp(reply, "error ", 6))
                        fprintf(stderr, "'%s' -> %d '%s'\n", bad[i], rc, reply);
                CU_ASSERT_EQUAL(rc, -1);
                CU_ASSERT_EQUAL(strncmp(reply, "error ", 6), 0);
        }
        /* A list of 65 errors is refused, and nothing was pushed. */
        {
                char cmd[2048] = "broker-error 1 Heartbeat 1 _TRANSPORT";
                for (int i = 0; i < 64; i++)
                        strcat(cmd, ",_TRANSPORT");
                CU_ASSERT_EQUAL(run(cmd), -1);
        }
        CU_ASSERT_EQUAL(pending("all", "Heartbeat"), 0);
        /* A reply never overflows a small buffer. */
        {
                char line[] = "help", small[16];
                CU_ASSERT_EQUAL(
                    keel__devctl_exec(mc, 3, line, small, sizeof(small)), 0);
                CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
        }
}

/* Serve ctl until fd has n reply lines, into buf. */
static int read_lines(keel__devctl_t *ctl, int fd, int n, char *buf,
                      size_t size)
{
        size_t len = 0;
        int lines = 0;
        for (int i = 0; i < 200 && lines < n; i++) {
                ssize_t got;
                keel__devctl_poll(ctl, 10);
                got = recv(fd, buf + len, size - len - 1, MSG_DONTWAIT);
                if (got > 0) {
                        for (ssize_t k = 0; k < got; k++)
                                lines += buf[len + (size_t)k] == '\n';
                        len += (size_t)got;
                }
        }
        buf[len] = '\0';
        return lines;
}

static void test_dev_broker_control_port_answers_each_line(void)
{
        char err[256], buf[4096], big[3000];
        int port = 0, fd;
        keel__devctl_t *ctl =
            keel__devctl_new(mc, 3, 0, &port, err, sizeof(err));
        struct sockaddr_in sa = {.sin_family = AF_INET};

        CU_ASSERT_PTR_NOT_NULL_FATAL(ctl);
        CU_ASSERT(port > 0);
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)),
                              0);
        /* two lines in one write, then one in two writes */
        CU_ASSERT(send(fd, "down 1\r\nbogus\nup", 16, 0) == 16);
        keel__devctl_poll(ctl, 50);
        keel__devctl_poll(ctl, 50);
        CU_ASSERT(send(fd, " 1\n", 3, 0) == 3);
        CU_ASSERT_EQUAL(read_lines(ctl, fd, 3, buf, sizeof(buf)), 3);
        CU_ASSERT_STRING_EQUAL(buf, "ok broker 1 down\n"
                                    "error unknown command 'bogus' (try "
                                    "help)\n"
                                    "ok broker 1 up\n");
        /* a line longer than 1,023 bytes: one error, the next line is
         * read */
        memset(big, 'x', sizeof(big));
        CU_ASSERT(send(fd, big, sizeof(big), 0) == (ssize_t)sizeof(big));
        CU_ASSERT(send(fd, "\nrtt 2 10\n", 10, 0) == 10);
        CU_ASSERT_EQUAL(read_lines(ctl, fd, 2, buf, sizeof(buf)), 2);
        CU_ASSERT_STRING_EQUAL(buf, "error line too long\n"
                                    "ok broker 2 rtt 10 ms\n");
        close(fd);
        keel__devctl_poll(ctl, 10);
        /* the port still serves */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)),
                              0);
        CU_ASSERT(send(fd, "clear\n", 6, 0) == 6);
        CU_ASSERT_EQUAL(read_lines(ctl, fd, 1, buf, sizeof(buf)), 1);
        CU_ASSERT_EQUAL(strncmp(buf, "ok ", 3), 0);
        close(fd);
        keel__devctl_destroy(ctl);
        keel__devctl_destroy(NULL);
}

static CU_TestInfo tests[] = {
    {"test_dev_broker_control_commands_do_what_they_say",
     test_dev_broker_control_commands_do_what_they_say},
    {"test_dev_broker_control_bad_commands_are_errors",
     test_dev_broker_control_bad_commands_are_errors},
    {"test_dev_broker_control_port_answers_each_line",
     test_dev_broker_control_port_answers_each_line},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN_WITH("dev_broker_control", tests, setup, teardown)

/*
 * dev_broker.c: `keel dev-broker`, librdkafka's mock cluster in its own
 * process with every keel topic created: the zero-dependency broker for
 * the demo and for trying keel. In memory only; see DESIGN.md for what it
 * lacks next to real Kafka. With --control-port or --control-file it also
 * serves the fault-injection control port (dev_broker_control.h), from
 * the main thread while it waits for SIGINT or SIGTERM.
 */
#include "cli.h"

#include "app.h"
#include "dev_broker_control.h"
#include "keel/log.h"
#include "keel/topics.h"

#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: keel dev-broker [OPTIONS]\n"
    "Run an in-memory Kafka-compatible broker (librdkafka's mock cluster)\n"
    "with every keel topic created, until SIGINT or SIGTERM.\n\n"
    "  --brokers N         number of brokers (default 1)\n"
    "  --partitions P      partitions of every keel topic (default 12)\n"
    "  --task-queue Q      also create keel.tasks.Q (repeatable; default:\n"
    "                      the 'default' queue)\n"
    "  --port-file F       write the bootstrap address to F once ready\n"
    "  --control-port N    serve fault-injection commands on 127.0.0.1:N\n"
    "                      (0: a port chosen at start)\n"
    "  --control-file F    write the control port to F once ready (implies\n"
    "                      --control-port 0 unless given)\n"
    "  -h, --help          this help\n"
    "\n"
    "Control commands, one a line, each answered 'ok ...' or 'error ...'\n"
    "(BROKER is 1..N or all; ERR a name such as NOT_LEADER_FOR_PARTITION,\n"
    "REQUEST_TIMED_OUT, _TRANSPORT, or a number; API a request name such\n"
    "as Produce, Fetch, JoinGroup, FindCoordinator, AddPartitionsToTxn,\n"
    "EndTxn, or its key):\n"
    "  error API COUNT ERR[,ERR...]      the next COUNT API requests fail,\n"
    "                                    with the errors in turn\n"
    "  broker-error BROKER API COUNT ERR[,ERR...] [RTT_MS]\n"
    "                                    the same on a broker, each reply\n"
    "                                    delayed RTT_MS (NO_ERROR: delay "
    "only)\n"
    "  pending BROKER API                broker-errors not yet returned\n"
    "  clear [API]                       forget the errors pushed with\n"
    "                                    'error' (for API); without API also\n"
    "                                    every broker up and no added rtt\n"
    "  down BROKER | up BROKER           refuse / accept connections\n"
    "  rtt BROKER MS                     delay every reply by MS\n"
    "  leader TOPIC PARTITION BROKER     move a partition's leader\n"
    "  coordinator group|transaction KEY BROKER\n"
    "                                    move a group's or transactional\n"
    "                                    id's coordinator\n"
    "  topic-error TOPIC ERR             Metadata and AddPartitionsToTxn\n"
    "                                    for TOPIC fail (NO_ERROR: stop)\n"
    "  help\n"
    "For example, from bash (or type them into nc 127.0.0.1 PORT):\n"
    "  exec 3<>/dev/tcp/127.0.0.1/$(cat F)\n"
    "  echo 'error Produce 5 NOT_LEADER_FOR_PARTITION' >&3; read -r r <&3\n";

/* Write s to path atomically, so a reader never sees half of it. */
static int write_file_atomic(const char *path, const char *s)
{
        char tmp[4096];
        FILE *f;
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        f = fopen(tmp, "w");
        if (!f)
                return -1;
        fprintf(f, "%s\n", s);
        if (fclose(f) || rename(tmp, path))
                return -1;
        return 0;
}

static int parse_count(const char *s, int min, int max, const char *what)
{
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || *end || v < min || v > max) {
                fprintf(stderr,
                        "keel dev-broker: %s must be %d..%d, got '%s'\n", what,
                        min, max, s);
                exit(KEEL_EXIT_USAGE);
        }
        return (int)v;
}

int keel_cli_dev_broker(int argc, char **argv)
{
        static const struct option opts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"partitions", required_argument, NULL, 'p'},
            {"task-queue", required_argument, NULL, 'q'},
            {"port-file", required_argument, NULL, 'f'},
            {"control-port", required_argument, NULL, 'c'},
            {"control-file", required_argument, NULL, 'C'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        int brokers = 1, partitions = 12, opt, control_port = -1, bound = 0;
        const char *port_file = NULL, *control_file = NULL;
        keel__devctl_t *ctl = NULL;
        const char *queues[32];
        size_t nq = 0, nspecs;
        keel_topic_spec_t specs[40];
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mc;
        char err[512];
        const char *bootstraps;
        int sig;

        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (opt) {
                case 'b':
                        brokers = parse_count(optarg, 1, 16, "--brokers");
                        break;
                case 'p':
                        partitions =
                            parse_count(optarg, 1, 10000, "--partitions");
                        break;
                case 'q':
                        if (nq == sizeof(queues) / sizeof(queues[0])) {
                                fprintf(stderr, "keel dev-broker: too many "
                                                "--task-queue\n");
                                return KEEL_EXIT_USAGE;
                        }
                        queues[nq++] = optarg;
                        break;
                case 'f':
                        port_file = optarg;
                        break;
                case 'c':
                        control_port =
                            parse_count(optarg, 0, 65535, "--control-port");
                        break;
                case 'C':
                        control_file = optarg;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return KEEL_EXIT_OK;
                default:
                        fputs(usage, stderr);
                        return KEEL_EXIT_USAGE;
                }
        }
        if (keel_topics_specs(queues, nq, specs, 40, &nspecs)) {
                fprintf(stderr, "keel dev-broker: invalid --task-queue name\n");
                return KEEL_EXIT_USAGE;
        }

        keel__app_block_signals();
        conf = rd_kafka_conf_new();
        /* The mock cluster needs a client instance to live in; this one
         * never connects anywhere, so silence its notice about that. */
        rd_kafka_conf_set(conf, "log_level", "4", err, sizeof(err));
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "keel dev-broker: %s\n", err);
                rd_kafka_conf_destroy(conf);
                return KEEL_EXIT_FAILURE;
        }
        mc = rd_kafka_mock_cluster_new(rk, brokers);
        if (!mc) {
                fprintf(stderr, "keel dev-broker: could not start the mock "
                                "cluster\n");
                rd_kafka_destroy(rk);
                return KEEL_EXIT_FAILURE;
        }
        for (size_t i = 0; i < nspecs; i++) {
                rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(
                    mc, specs[i].name, partitions, brokers < 3 ? brokers : 3);
                if (e) {
                        fprintf(stderr, "keel dev-broker: creating %s: %s\n",
                                specs[i].name, rd_kafka_err2str(e));
                        rd_kafka_mock_cluster_destroy(mc);
                        rd_kafka_destroy(rk);
                        return KEEL_EXIT_FAILURE;
                }
        }
        if (control_file && control_port < 0)
                control_port = 0;
        if (control_port >= 0) {
                char port[16];
                int failed;
                ctl = keel__devctl_new(mc, brokers, control_port, &bound, err,
                                       sizeof(err));
                failed = !ctl;
                snprintf(port, sizeof(port), "%d", bound);
                if (ctl && control_file &&
                    write_file_atomic(control_file, port)) {
                        snprintf(err, sizeof(err), "writing %s: %s",
                                 control_file, strerror(errno));
                        failed = 1;
                }
                if (failed) {
                        fprintf(stderr, "keel dev-broker: %s\n", err);
                        keel__devctl_destroy(ctl);
                        rd_kafka_mock_cluster_destroy(mc);
                        rd_kafka_destroy(rk);
                        return KEEL_EXIT_FAILURE;
                }
        }
        bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
        if (port_file && write_file_atomic(port_file, bootstraps)) {
                fprintf(stderr, "keel dev-broker: writing %s: %s\n", port_file,
                        strerror(errno));
                keel__devctl_destroy(ctl);
                rd_kafka_mock_cluster_destroy(mc);
                rd_kafka_destroy(rk);
                return KEEL_EXIT_FAILURE;
        }
        printf("%s\n", bootstraps);
        fflush(stdout);
        keel_log(KEEL_LOG_INFO, "dev-broker",
                 "msg=ready bootstrap=%s brokers=%d partitions=%d topics=%zu "
                 "control_port=%d",
                 bootstraps, brokers, partitions, nspecs, ctl ? bound : -1);

        if (!ctl)
                sig = keel__app_wait_signal(-1);
        else
                while (!(sig = keel__app_wait_signal(0)))
                        keel__devctl_poll(ctl, 100);
        keel_log(KEEL_LOG_INFO, "dev-broker", "msg=stopping signal=%s",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
        keel__devctl_destroy(ctl);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        if (port_file)
                unlink(port_file);
        if (control_file)
                unlink(control_file);
        return KEEL_EXIT_OK;
}

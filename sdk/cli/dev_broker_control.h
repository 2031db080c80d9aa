/*
 * dev_broker_control.h: the dev broker's fault-injection control port.
 * `keel dev-broker --control-port/--control-file` serves a line protocol
 * on 127.0.0.1 through which tests (and anyone trying keel) inject faults
 * into the running mock cluster: request errors per API key, brokers down
 * and up, round-trip delay, partition leaders and coordinators moved.
 * Every command line gets one reply line, "ok ..." or "error ..."; a bad
 * command is an error line and a log line, never a crash. The commands
 * are in docs/cli.md and `keel__devctl_exec()`; all of it runs on the
 * dev broker's main thread, and the mock cluster functions it calls are
 * the thread-safe ones librdkafka offers to any thread.
 */
#ifndef KEEL_DEV_BROKER_CONTROL_H
#define KEEL_DEV_BROKER_CONTROL_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stddef.h>

typedef struct keel__devctl_s keel__devctl_t;

/*
 * Listen on 127.0.0.1:port (0: a port chosen now) for control
 * connections to the mock cluster mc (borrowed; it must outlive the
 * result), which has brokers 1..brokers. The bound port goes to *bound.
 * NULL with err filled when the port cannot be bound. Free with
 * keel__devctl_destroy().
 */
keel__devctl_t *keel__devctl_new(rd_kafka_mock_cluster_t *mc, int brokers,
                                 int port, int *bound, char *err,
                                 size_t errsize);

/* Serve connections: accept, read command lines and answer each, for up
 * to timeout_ms (returns at once when something was handled). */
void keel__devctl_poll(keel__devctl_t *ctl, int timeout_ms);

/* Close the port and every connection. Accepts NULL. */
void keel__devctl_destroy(keel__devctl_t *ctl);

/*
 * Run one command line (NUL-terminated, modified in place) against mc,
 * which has brokers 1..brokers, writing the reply line (without newline)
 * to reply: "ok" and what was done, or "error" and why. 0 if the command
 * was carried out, -1 if not. Blank lines and '#' comments reply "ok".
 */
int keel__devctl_exec(rd_kafka_mock_cluster_t *mc, int brokers, char *line,
                      char *reply, size_t size);

#endif

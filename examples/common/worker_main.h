/*
 * worker_main.h: the main() of the examples' activity workers
 * (keel-payment-worker, keel-onboarding-worker): options, an effect log
 * (effects.h) handed to every activity as its opaque, a keel worker
 * (keel/worker.h) on the example's task queue, and the stop a deploy
 * makes: SIGINT or SIGTERM, then no new task, running ones get
 * worker.grace.ms, offsets are committed, exit 0.
 */
#ifndef KEEL_EXAMPLE_WORKER_MAIN_H
#define KEEL_EXAMPLE_WORKER_MAIN_H

#include <keel/keel.h>

#include <stddef.h>

/* An activity by name, to register with a worker or test environment. */
typedef struct example_activity_s {
        const char *name;
        keel_activity_fn_t fn;
} example_activity_t;

/* What one example's worker is. Everything is borrowed. */
typedef struct example_worker_s {
        const char *prog;       /* "keel-payment-worker" */
        const char *task_queue; /* "payments" */
        const char *about; /* what it runs, for --help: lines ending in \n */
        const example_activity_t *activities;
        size_t activities_cnt;
} example_worker_t;

/* Run the worker ex describes with argv's options (--effects FILE,
 * --concurrency N and keel's common ones) until SIGINT or SIGTERM.
 * Returns the exit code: 0 stopped by a signal, 1 failed, 2 usage or
 * configuration, 3 no broker reachable. */
int example_worker_main(const example_worker_t *ex, int argc, char **argv);

#endif

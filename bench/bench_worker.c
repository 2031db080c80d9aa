/*
 * bench_worker.c: keel-bench-worker, the activity worker of the
 * benchmarks. It runs a1, a2 and a3 of the "bench3" workflow
 * (bench_workflows.c) for tasks on keel.tasks.bench; each returns at once
 * with a small result, so what is measured is keel and Kafka, not work.
 * Options and the stop on SIGTERM are the examples' (worker_main.h).
 */
#include "worker_main.h"

static int noop(keel_activity_ctx_t *ctx, const json_t *input, json_t **result)
{
        (void)ctx;
        (void)input;
        *result = json_pack("{sb}", "ok", 1);
        return KEEL_OK;
}

static const example_activity_t activities[] = {
    {"a1", noop},
    {"a2", noop},
    {"a3", noop},
};

int main(int argc, char **argv)
{
        const example_worker_t ex = {
            .prog = "keel-bench-worker",
            .task_queue = "bench",
            .about = "Run the benchmark's no-op activities (a1, a2, a3) for "
                     "tasks on\nkeel.tasks.bench ",
            .activities = activities,
            .activities_cnt = sizeof(activities) / sizeof(activities[0])};
        return example_worker_main(&ex, argc, argv);
}

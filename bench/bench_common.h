/*
 * bench_common.h: what keel's benchmark programs share: clocks, samples
 * and their percentiles, librdkafka set-up, /proc readings (resident
 * memory, CPU time), a minimal HTTP GET for /metrics, child processes
 * that die with the benchmark, a watchdog, and JSON output. The
 * benchmarks measure; they never assert (DESIGN.md, "bench/").
 */
#ifndef KEEL_BENCH_COMMON_H
#define KEEL_BENCH_COMMON_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Partitions of keel's topics in every benchmark (the P). */
#define BENCH_PARTITIONS 12

/* Monotonic microseconds; wall-clock milliseconds since the epoch. */
int64_t bench_us(void);
int64_t bench_wall_ms(void);
void bench_sleep_us(int64_t us);

/* A growing set of samples (latencies in ms, say). */
typedef struct bench_samples_s {
        double *v;
        size_t n, cap;
        int sorted;
} bench_samples_t;

void bench_samples_add(bench_samples_t *s, double x);
/* The p-th percentile (0..100, nearest rank); 0 when empty. */
double bench_samples_pct(bench_samples_t *s, double p);
double bench_samples_max(bench_samples_t *s);
double bench_samples_mean(const bench_samples_t *s);
void bench_samples_free(bench_samples_t *s);
/* {"n", "p50", "p90", "p99", "max", "mean"} in ms (new reference). */
json_t *bench_samples_json(bench_samples_t *s);

/* A librdkafka configuration with bootstrap servers and quiet logs; the
 * program dies on a bad property. */
rd_kafka_conf_t *bench_kconf(const char *bootstrap);
void bench_kset(rd_kafka_conf_t *conf, const char *key, const char *value);

/* Assign every partition 0..parts-1 of topic to consumer rk at offset. */
void bench_assign(rd_kafka_t *rk, const char *topic, int32_t parts,
                  int64_t offset);

/* Sum of the high watermarks of every partition of topic (-1 on error). */
int64_t bench_end_offsets(rd_kafka_t *rk, const char *topic, int32_t parts);

/* VmRSS of pid in KiB (-1 if unknown); user+system CPU seconds of pid. */
long bench_rss_kb(pid_t pid);
double bench_cpu_s(pid_t pid);
/* The machine's 1-minute load average. */
double bench_loadavg(void);

/* GET http://127.0.0.1:port/path (HTTP/1.0). The body (malloc'd, NUL
 * terminated) goes to *body; returns the status, or -1. */
int bench_http_get(int port, const char *path, char **body);
/* The value of Prometheus metric `name` (no labels) in text; -1 if absent. */
double bench_prom(const char *text, const char *name);
/* The orchestrator's metric `name` from the port in port_file; -1. */
double bench_orch_metric(const char *port_file, const char *name);

/* The first integer in file path, or -1. */
long bench_file_long(const char *path);

/* Fork and exec argv with stdout and stderr appended to logpath; the
 * child is killed (SIGKILL) when the benchmark exits or its watchdog
 * fires. Returns its pid, or -1. */
pid_t bench_spawn(char *const argv[], const char *logpath);
/* SIGTERM (or sig), wait up to wait_ms, then SIGKILL; reaps. */
void bench_stop(pid_t pid, int sig, int wait_ms);
/* Kill every child now (SIGKILL) and reap them. */
void bench_kill_children(void);
/* After `seconds`, kill every child and exit 3: no benchmark runs away. */
void bench_watchdog(int seconds);

/* Write obj (stolen) as JSON to path ("-": stdout). 0 or -1. */
int bench_json_write(const char *path, json_t *obj);

/* Print a die message and exit 1 (after killing children). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Encode a keel.inbox.StartWorkflow for workflow id of type `type` with
 * input text `input`; *out malloc'd. 0 or -1. */
int bench_start_record(const char *id, const char *type, const char *input,
                       unsigned char **out, size_t *len);

/* The workflow ID in a keel.history key "<workflow ID>/<seq>": its length
 * (keys of keel's own records, starting with '!', give 0). */
size_t bench_key_id_len(const void *key, size_t len);

#endif

/* ---- template histories ------------------------------------------------- */

/*
 * Read keel.history from the beginning until one workflow of type
 * `wf_type` shows, from its WorkflowStarted up to and including its first
 * event of type `until` ("WorkflowCompleted", "TimerStarted"), and return
 * those events as a JSON array of {"type", "record"} (new reference), or
 * NULL after `timeout_ms`. This is what the orchestrator wrote for a real
 * run: synthetic histories are copies of it under other IDs.
 */
json_t *bench_template_load(const char *bootstrap, const char *wf_type,
                            const char *until, int timeout_ms);

/*
 * A copy of template's events for workflow `id`, run `run_id`, written
 * under `epoch`: every string field equal to the template's workflow or
 * run ID, or starting with "<ID>/", is rewritten. New reference.
 */
json_t *bench_template_copy(const json_t *tmpl, const char *id,
                            const char *run_id, int64_t epoch);

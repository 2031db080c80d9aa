/*
 * e2e_support.h: what the end-to-end tests on the real Kafka test broker
 * share (test_payment_e2e, test_orchestrator_faults, the examples'
 * test_*_e2e). They run keel-orchestrator and an example's worker
 * (keel-payment-worker, ...) as real processes, logging
 * into a work directory of their own, and check the outcome the way any
 * reader of keel.history would: a watcher follows every partition of
 * keel.history by the reader rules (claims, epochs, checkpoints;
 * history_int.h) and keeps, for the workflows "<prefix><i>" of one test,
 * how often each closed, its result and whether its seqs run 1..n without
 * gap or duplicate. Nothing here asserts: the tests do.
 */
#ifndef KEEL_E2E_SUPPORT_H
#define KEEL_E2E_SUPPORT_H

#include "keel/keel.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

/* Partitions of keel's topics on the test broker. */
#define E2E_PARTITIONS 12

/* Where a test finds the broker and the programs, from ctest's
 * environment. */
typedef struct e2e_env_s {
        char bootstrap[256];
        char workdir[512]; /* <KEEL_TEST_WORK_DIR>/<name>-<pid>, created */
        char orch_bin[512];
        char worker_bin[512];
        const char *module; /* KEEL_TEST_PAYMENT_MODULE (environment) */
} e2e_env_t;

/*
 * Fill env: the bootstrap address from the file KEEL_TEST_KAFKA_FILE
 * names, the programs in KEEL_TEST_BIN_DIR, the payment workflow module,
 * a fresh work directory named after `name` and this process. Exits the
 * test binary when a variable is unset (keel_test_env()). KEEL_OK, or
 * KEEL_ERR_IO when the bootstrap file cannot be read.
 */
int e2e_env_init(e2e_env_t *env, const char *name);

/* The same without a broker (env->bootstrap empty, KEEL_TEST_KAFKA_FILE
 * not needed), for a test that starts a dev broker of its own. */
void e2e_env_init_local(e2e_env_t *env, const char *name);

/* Create keel's topics (E2E_PARTITIONS, with the "payments" queue) unless
 * they exist; KEEL_OK or the error, printed. */
int e2e_topics_create(const e2e_env_t *env);

/* The same with the task queue `queue` (keel.tasks.<queue>). */
int e2e_topics_create_queue(const e2e_env_t *env, const char *queue);

/* Create a topic of the users' own (not keel's) on the broker env names,
 * with `partitions` partitions; an existing one is fine. 0, or -1
 * (printed). */
int e2e_create_topic(const char *bootstrap, const char *topic, int partitions);

/*
 * A dev broker (`keel dev-broker --partitions P`) of the test's own, which
 * stops by itself after `lifetime_s` whatever happens to the test: its
 * bootstrap address replaces env->bootstrap. Its pid, or -1 (printed).
 */
pid_t e2e_start_dev_broker(e2e_env_t *env, int partitions, int lifetime_s);

/* The same with more `keel dev-broker` arguments (NULL-terminated; may be
 * NULL), such as --brokers 3 or --control-file <workdir>/F. */
pid_t e2e_start_dev_broker_args(e2e_env_t *env, int partitions, int lifetime_s,
                                const char *const extra[]);

/*
 * Read every partition of topic from the beginning to its end (the
 * first end-of-partition seen), with the given isolation.level, calling
 * each(opaque, message) for every record (not for errors or ends). 1 if
 * every partition's end was reached within timeout_ms, else 0.
 */
struct rd_kafka_message_s;
int e2e_read_topic(const char *bootstrap, const char *topic,
                   const char *isolation, int timeout_ms,
                   void (*each)(void *opaque,
                                const struct rd_kafka_message_s *m),
                   void *opaque);

/* An example's processes on the test broker, for its end-to-end test. */
typedef struct e2e_example_s {
        e2e_env_t env;
        char effects[600];  /* <workdir>/effects.log: the worker's effects */
        keel_config_t *cfg; /* with the test broker's bootstrap */
        keel_client_t *client;
        pid_t orch, worker;
} e2e_example_t;

/*
 * Start an example's stack: e2e_env_init(ex->env, name), keel's topics
 * with the example's task queue, keel-orchestrator with the payment
 * module and the module the environment variable module_var names (as a
 * deployment running both would), the example's worker program `worker`
 * (in KEEL_TEST_BIN_DIR; it takes the payment worker's options) recording
 * its effects in ex->effects, and a client. KEEL_OK, or the error
 * (printed) with whatever started stopped again.
 */
int e2e_example_start(e2e_example_t *ex, const char *name,
                      const char *module_var, const char *worker,
                      const char *queue);

/* Stop the orchestrator and the worker (SIGTERM) and free the client and
 * configuration; the effect log stays. */
void e2e_example_stop(e2e_example_t *ex);

/* A monotonic clock in ms; sleeping; an integer from the environment. */
int64_t e2e_now_ms(void);
void e2e_sleep_ms(int64_t ms);
int e2e_env_int(const char *name, int dflt);

/*
 * Run argv (argv[0] is the program's path) as a child whose stdout and
 * stderr are appended to <workdir>/<logname>, with no signal blocked.
 * Returns its pid (remembered until e2e_stop()), or -1.
 */
pid_t e2e_spawn(const e2e_env_t *env, const char *logname, char *const argv[]);

/* Send sig to pid (then SIGCONT, so that a stopped child acts on it),
 * wait up to 30 s for it to exit, then SIGKILL it. Accepts pid <= 0.
 * Returns the exit status from waitpid(), or -1. */
int e2e_stop(pid_t pid, int sig);

/* Stop every child e2e_spawn() started and nobody stopped yet (SIGTERM,
 * then SIGKILL after 2 s); also run at exit, so a failed test leaves no
 * process behind. */
void e2e_stop_all(void);

/*
 * keel-orchestrator with the given workflow module (NULL: env->module),
 * at log level info, logging to logname, with the extra arguments extra
 * (NULL-terminated; may be NULL).
 */
pid_t e2e_start_orchestrator(const e2e_env_t *env, const char *logname,
                             const char *module, const char *const extra[]);

/* keel-payment-worker recording its effects in `effects`, with
 * --concurrency 16 and the extra arguments (NULL-terminated; may be
 * NULL). */
pid_t e2e_start_worker(const e2e_env_t *env, const char *logname,
                       const char *effects, const char *const extra[]);

/* Start payment workflow `id` with input (borrowed) and, if `signal`, then
 * send it refundApproved. KEEL_OK or the client's error (in err). */
int e2e_start_payment(keel_client_t *client, const char *id,
                      const json_t *input, int signal, char *err,
                      size_t errsize);

/* ---- the history watcher ---------------------------------------------- */

/* What the watcher saw of one workflow. */
typedef struct e2e_wf_s {
        char id[128];
        char run[40];
        int64_t last_seq;
        int closes;
        char status[32]; /* the result's status, or the close type */
        json_t *events;  /* with E2E_WATCH_EVENTS: {"type","record"} in
                            order, across runs; else NULL */
} e2e_wf_t;

/* Flags of e2e_watch_new(). */
#define E2E_WATCH_EVENTS 1 /* keep every applied event of the workflows */

typedef struct e2e_watch_s {
        char prefix[64];
        int n;
        e2e_wf_t *wfs;      /* wfs[i] is "<prefix><i>" */
        int closed;         /* workflows that closed at least once */
        int seq_violations; /* seq gaps, duplicates, runs not from 1 */
        /* the readers' counters, summed over partitions */
        uint64_t applied, fenced, torn, undecodable;
        void *priv;
} e2e_watch_t;

/*
 * A watcher of workflows "<prefix>0" .. "<prefix><n-1>", reading every
 * partition of keel.history from the beginning with read_committed and
 * the reader rules. Nothing is read until e2e_watch_until(). NULL if the
 * consumer cannot be made. Free with e2e_watch_destroy().
 */
e2e_watch_t *e2e_watch_new(const char *bootstrap, const char *prefix, int n,
                           int flags);
void e2e_watch_destroy(e2e_watch_t *w);

/* The workflow `id`, or NULL if it is not one of w's. */
e2e_wf_t *e2e_watch_wf(e2e_watch_t *w, const char *id);

/*
 * Read keel.history until done(w, opaque) holds (checked after every
 * record and every idle poll) or the monotonic clock passes deadline
 * (e2e_now_ms()). done NULL: read until the deadline. Returns 1 if done
 * held, 0 at the deadline.
 */
int e2e_watch_until(e2e_watch_t *w, int64_t deadline,
                    int (*done)(e2e_watch_t *w, void *opaque), void *opaque);

/* A done() for e2e_watch_until(): every workflow closed. */
int e2e_watch_all_closed(e2e_watch_t *w, void *opaque);

/* The nth (from 0) kept event of wf whose type is "keel.history.<type>"
 * and, if activity_id is not NULL, whose activity_id is that; its record
 * (borrowed), or NULL. */
const json_t *e2e_wf_event(const e2e_wf_t *wf, const char *type,
                           const char *activity_id, int nth);

/* The activity ID of the nth (from 0) ActivityScheduled of activity type
 * `activity_type` in wf's kept events, or NULL. */
const char *e2e_wf_activity_id(const e2e_wf_t *wf, const char *activity_type,
                               int nth);

/* Whether wf published (keel_set_state(), a MarkerRecorded "state") a
 * state whose field `key` is the string `value`, in its kept events. */
int e2e_wf_published(const e2e_wf_t *wf, const char *key, const char *value);

/*
 * Count the effects of `activity` in a payment worker's effect log per
 * workflow of w: counts[i] (calloc'd by the caller, w->n entries) for
 * "<prefix><i>". Returns the effects counted, or -1 if the file cannot
 * be read.
 */
int e2e_effects_count(const char *path, const char *activity, e2e_watch_t *w,
                      int *counts);

/* ---- the dev broker's control port ------------------------------------ */

/*
 * Send one command line to the dev broker's control port on 127.0.0.1
 * (the port its --control-file holds: e2e_read_port()) and
 * read its one-line reply into reply (without the newline). 0 if the
 * reply is "ok ...", -1 otherwise (reply says why).
 */
int e2e_dev_broker_control(int port, const char *cmd, char *reply, size_t size);

/* ---- programs run to their end, children that ended --------------------- */

/*
 * Run argv as e2e_spawn() does and wait up to timeout_ms for it to end
 * (then SIGKILL it). Its exit code, or -1 (killed, by a signal or the
 * timeout, or not started).
 */
int e2e_run(const e2e_env_t *env, const char *logname, char *const argv[],
            int timeout_ms);

/* Whether child pid (of e2e_spawn()) has ended: if so 1, with its
 * waitpid() status in *status (may be NULL), and it is forgotten; 0 while
 * it runs. */
int e2e_reap(pid_t pid, int *status);

/* ---- keel-projector ----------------------------------------------------- */

/*
 * keel-projector on 127.0.0.1 at a port chosen at run time, which it
 * writes to port_file (removed first), logging to logname, with the extra
 * arguments (NULL-terminated; may be NULL). Its pid, or -1.
 */
pid_t e2e_start_projector(const e2e_env_t *env, const char *logname,
                          const char *port_file, const char *const extra[]);

/* The port a daemon wrote to path (its --port-file), looking until the
 * monotonic clock passes deadline (e2e_now_ms()); -1 if none by then. */
int e2e_read_port(const char *path, int64_t deadline);

/* How many lines of the file logname in env's work directory hold needle
 * (0 if it cannot be read): how often a daemon logged something. */
int e2e_log_count(const e2e_env_t *env, const char *logname,
                  const char *needle);

/* ---- killing a process again and again --------------------------------- */

/*
 * A thread that kills pid with SIGKILL `kills` times, a random min_ms to
 * max_ms apart, starting it again each time with restart() (which returns
 * the new pid). Set pid, restart, kills, min_ms and max_ms, then
 * e2e_killer_start(); e2e_killer_stop() ends it early if need be and
 * waits for it. done says how many kills it made; pid is the live one.
 */
typedef struct e2e_killer_s {
        pid_t (*restart)(void);
        volatile pid_t pid;
        int kills, min_ms, max_ms;
        volatile int done, stop;
        pthread_t thread;
} e2e_killer_t;

int e2e_killer_start(e2e_killer_t *k);
void e2e_killer_stop(e2e_killer_t *k);

#endif

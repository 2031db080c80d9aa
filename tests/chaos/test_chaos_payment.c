/*
 * test_chaos_payment.c: the payment example through chaos, on an Apache
 * Kafka broker of its own (tests/kafka/kafka-broker.sh, in the build
 * tree: the test kills it). Two keel-orchestrators, two payment workers
 * and a keel-projector run as real processes (e2e_support.h) while four
 * threads start KEEL_CHAOS_WORKFLOWS payment workflows of ten kinds
 * (refunds by signal-with-start or a later signal, completions after
 * refund windows of 0.2 to 10 s, declined cards, missing stock with its
 * refund, flaky activities retried, and a second start of some IDs that
 * must be refused). Meanwhile the driver, at random moments of a
 * KEEL_CHAOS_SECONDS window, kill -9s and restarts orchestrators, workers
 * and the projector, freezes an orchestrator until the group gives its
 * partitions away (a zombie when it wakes), and kill -9s the broker and
 * starts it again on the same data. Processes that die by themselves are
 * restarted and counted. Once every workflow closed, keel-check reads
 * every topic back and must find no violation: each workflow once, closed
 * once, with the crash-free reference's result; no seq gap or duplicate;
 * one effect per idempotency key; no fenced write applied; every command
 * answered; and the projector agreeing over HTTP. A watchdog process stops
 * everything if the test hangs. docs/reliability.md, "Chaos", has the
 * knobs and the figures.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"
#include "payment.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The group session of orchestrators and workers: a member gone this long
 * loses its partitions. */
#define SESSION_MS 6000
#define SESSION_X  "kafka.session.timeout.ms=6000"

static e2e_env_t env;
static char kafka_dir[600], kafka_script[600], prefix[64], effects[700];
static char kafka_max[64]; /* KEEL_KAFKA_MAX_SECONDS=N, for the script only */
static char port_file[700];
static unsigned seed;
static int64_t t0;

/* ---- the broker ---------------------------------------------------------- */

static int kafka(const char *cmd)
{
        /* Only for the script: keel's programs would take a KEEL_KAFKA_*
         * variable for a setting of theirs. */
        const char *argv[] = {"/usr/bin/env", kafka_max, kafka_script, cmd,
                              kafka_dir,      NULL};
        int64_t t = e2e_now_ms();
        int rc = e2e_run(&env, "kafka.log", (char *const *)argv, 180000);
        fprintf(stderr, "  [%6.1f s] kafka-broker.sh %s: exit %d, %lld ms\n",
                (double)(e2e_now_ms() - t0) / 1000, cmd, rc,
                (long long)(e2e_now_ms() - t));
        return rc;
}

/* ---- the watchdog -------------------------------------------------------- */

/*
 * A process of its own that outlives a hung or killed test: when the test
 * process is gone, or after `seconds`, it SIGKILLs the test and every
 * child the test had (it looks them up in /proc every 300 ms) and stops
 * the broker. The test SIGKILLs it when it ends normally.
 */
static pid_t watchdog(int seconds)
{
        pid_t test = getpid(), pid = fork();
        if (pid != 0)
                return pid;
        {
                pid_t kids[256];
                int nkids = 0;
                int64_t deadline = e2e_now_ms() + (int64_t)seconds * 1000;
                char cmd[1400];

                while (getppid() == test && e2e_now_ms() < deadline) {
                        DIR *d = opendir("/proc");
                        struct dirent *de;
                        nkids = 0; /* the test's children now */
                        while (d && (de = readdir(d))) {
                                char path[300], buf[512];
                                FILE *f;
                                const char *rp;
                                int pp = 0;
                                pid_t p = (pid_t)atoi(de->d_name);
                                if (p <= 0 || p == getpid())
                                        continue;
                                snprintf(path, sizeof(path), "/proc/%d/stat",
                                         (int)p);
                                if (!(f = fopen(path, "r")))
                                        continue;
                                if (fgets(buf, sizeof(buf), f) &&
                                    (rp = strrchr(buf, ')')))
                                        sscanf(rp + 2, "%*c %d", &pp);
                                fclose(f);
                                if (pp == test && nkids < 256)
                                        kids[nkids++] = p;
                        }
                        if (d)
                                closedir(d);
                        e2e_sleep_ms(300);
                }
                fprintf(stderr, "chaos watchdog: %s, stopping everything\n",
                        getppid() == test ? "time is up" : "the test is gone");
                kill(test, SIGKILL);
                for (int i = 0; i < nkids; i++)
                        kill(kids[i], SIGKILL);
                snprintf(cmd, sizeof(cmd), "'%s' stop '%s' >/dev/null 2>&1",
                         kafka_script, kafka_dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "chaos watchdog: %s failed\n", cmd);
                _exit(0);
        }
}

/* ---- the processes ------------------------------------------------ */

enum { K_ORCH, K_WORKER, K_PROJECTOR, K_N };
static const char *const knames[K_N] = {"orchestrator ended by itself",
                                        "worker ended by itself",
                                        "projector ended by itself"};

typedef struct proc_s {
        int kind;
        char name[32];
        pid_t pid;
        int frozen;
        int64_t restart_at; /* > 0: down, to be started then */
        int exits;          /* ended without being killed */
} proc_t;

#define MAX_PROCS 8
static proc_t procs[MAX_PROCS];
static int nprocs;

static void proc_start(proc_t *p)
{
        char inst[128], log[64];
        snprintf(inst, sizeof(inst), "kafka.group.instance.id=chaos-%d-%s",
                 (int)getpid(), p->name);
        snprintf(log, sizeof(log), "%s.log", p->name);
        if (p->kind == K_ORCH) {
                const char *extra[] = {"-X", inst, "-X", SESSION_X, NULL};
                p->pid = e2e_start_orchestrator(&env, log, NULL, extra);
        } else if (p->kind == K_WORKER) {
                const char *extra[] = {"-X",          inst,   "-X", SESSION_X,
                                       "--log-level", "warn", NULL};
                p->pid = e2e_start_worker(&env, log, effects, extra);
        } else {
                const char *extra[] = {"--log-level", "warn", NULL};
                p->pid = e2e_start_projector(&env, log, port_file, extra);
        }
        p->frozen = 0;
        p->restart_at = 0;
}

static proc_t *proc_add(int kind, const char *name)
{
        proc_t *p = &procs[nprocs++];
        memset(p, 0, sizeof(*p));
        p->kind = kind;
        snprintf(p->name, sizeof(p->name), "%s", name);
        proc_start(p);
        return p;
}

/* A random process of kind that runs (not frozen), or NULL. */
static proc_t *proc_pick(int kind)
{
        proc_t *up[MAX_PROCS];
        int n = 0;
        for (int i = 0; i < nprocs; i++)
                if (procs[i].kind == kind && procs[i].pid > 0 &&
                    !procs[i].frozen)
                        up[n++] = &procs[i];
        return n ? up[rand_r(&seed) % (unsigned)n] : NULL;
}

/* Restart the processes whose time came; restart (after a second) those
 * that ended by themselves, and count them. */
static void supervise(void)
{
        int64_t now = e2e_now_ms();
        for (int i = 0; i < nprocs; i++) {
                proc_t *p = &procs[i];
                int st;
                if (p->pid > 0 && e2e_reap(p->pid, &st)) {
                        fprintf(stderr,
                                "  [%6.1f s] %s (pid %d) ended by itself: "
                                "%s %d; restarting\n",
                                (double)(now - t0) / 1000, p->name, (int)p->pid,
                                WIFSIGNALED(st) ? "signal" : "exit",
                                WIFSIGNALED(st) ? WTERMSIG(st)
                                                : WEXITSTATUS(st));
                        p->exits++;
                        p->pid = 0;
                        p->restart_at = now + 1000;
                }
                if (p->pid <= 0 && p->restart_at > 0 && now >= p->restart_at)
                        proc_start(p);
        }
}

/* ---- the faults --------------------------------------------------- */

enum {
        F_KILL_ORCH,
        F_KILL_WORKER,
        F_KILL_PROJECTOR,
        F_KILL_BROKER,
        F_FREEZE,
        F_N
};
static const char *const fnames[F_N] = {
    "kill -9 orchestrator", "kill -9 worker", "kill -9 projector",
    "kill -9 broker", "freeze orchestrator (zombie)"};
static const char *const fvars[F_N] = {
    "KEEL_CHAOS_ORCH_KILLS", "KEEL_CHAOS_WORKER_KILLS",
    "KEEL_CHAOS_PROJECTOR_KILLS", "KEEL_CHAOS_BROKER_KILLS",
    "KEEL_CHAOS_FREEZES"};
static const int fdefaults[F_N] = {8, 6, 3, 1, 1};

typedef struct fault_s {
        int64_t at; /* ms after the first start */
        int kind;
} fault_t;

static int planned[F_N], injected[F_N];

static int by_time(const void *a, const void *b)
{
        const fault_t *x = a, *y = b;
        return x->at < y->at ? -1 : x->at > y->at;
}

/* The faults of a window of window_ms, at random moments in its 5-90 %;
 * the broker's spread over its middle half. */
static fault_t *plan(int64_t window_ms, int *n)
{
        fault_t *f;
        int total = 0, k = 0;
        for (int i = 0; i < F_N; i++)
                total += planned[i] = e2e_env_int(fvars[i], fdefaults[i]);
        f = calloc((size_t)total + 1, sizeof(*f));
        for (int i = 0; f && i < F_N; i++)
                for (int j = 0; j < planned[i]; j++, k++) {
                        f[k].kind = i;
                        if (i == F_KILL_BROKER)
                                f[k].at = window_ms / 4 +
                                          (window_ms / 2) * j / planned[i] +
                                          rand_r(&seed) % (window_ms / 8 + 1);
                        else
                                f[k].at =
                                    window_ms / 20 +
                                    rand_r(&seed) % (window_ms * 85 / 100 + 1);
                }
        if (f)
                qsort(f, (size_t)total, sizeof(*f), by_time);
        *n = total;
        return f;
}

static void down(proc_t *p, int64_t max_delay_ms)
{
        e2e_stop(p->pid, SIGKILL);
        p->pid = 0;
        p->restart_at = e2e_now_ms() + rand_r(&seed) % (max_delay_ms + 1);
}

/* The broker: down (killed) until broker_start_at, then being started by
 * the script (broker_starter) until it answers. */
static int64_t broker_start_at;
static pid_t broker_starter;
static int broker_down;

/* Start the broker again once its time came, without waiting for it:
 * the other faults go on meanwhile. */
static void broker_tend(void)
{
        int st;
        if (broker_starter > 0 && e2e_reap(broker_starter, &st)) {
                int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
                fprintf(stderr, "  [%6.1f s] kafka-broker.sh start: %s\n",
                        (double)(e2e_now_ms() - t0) / 1000,
                        ok ? "up again" : "failed, once more");
                broker_starter = 0;
                broker_down = !ok;
                broker_start_at = ok ? 0 : e2e_now_ms();
        }
        if (broker_down && !broker_starter && broker_start_at &&
            e2e_now_ms() >= broker_start_at) {
                const char *argv[] = {"/usr/bin/env", kafka_max, kafka_script,
                                      "start",        kafka_dir, NULL};
                broker_starter =
                    e2e_spawn(&env, "kafka.log", (char *const *)argv);
        }
}

/* Inject fault f; 0 if done, -1 if it has no target now (all of its kind
 * are down or frozen, or the broker is down already). */
static int inject(const fault_t *f)
{
        proc_t *p = NULL;
        switch (f->kind) {
        case F_KILL_ORCH:
        case F_FREEZE:
                p = proc_pick(K_ORCH);
                break;
        case F_KILL_WORKER:
                p = proc_pick(K_WORKER);
                break;
        case F_KILL_PROJECTOR:
                p = proc_pick(K_PROJECTOR);
                break;
        default:
                break;
        }
        if (f->kind == F_KILL_BROKER ? broker_down : !p)
                return -1;
        fprintf(stderr, "  [%6.1f s] %s", (double)(e2e_now_ms() - t0) / 1000,
                fnames[f->kind]);
        if (p)
                fprintf(stderr, " %s (pid %d)\n", p->name, (int)p->pid);
        else
                fprintf(stderr, "\n");
        injected[f->kind]++;
        switch (f->kind) {
        case F_KILL_ORCH:
        case F_KILL_WORKER:
                /* Back at once, or after its session ran out (its
                 * partitions went to the other one meanwhile). */
                down(p, SESSION_MS + 3000);
                break;
        case F_KILL_PROJECTOR:
                down(p, 2000);
                break;
        case F_FREEZE:
                /* Frozen past its session: the group gives its partitions
                 * to the other orchestrator, which claims them and fences
                 * it; then it wakes up as a zombie. */
                kill(p->pid, SIGSTOP);
                p->frozen = 1;
                p->restart_at = e2e_now_ms() + SESSION_MS + 4000;
                break;
        case F_KILL_BROKER:
                /* Its data on disk must survive: started again on it. */
                kafka("kill9");
                broker_down = 1;
                broker_start_at = e2e_now_ms() + rand_r(&seed) % 3000;
                break;
        }
        return 0;
}

/* Wake frozen processes whose time came (restart_at doubles as the wake
 * time while frozen). */
static void thaw(void)
{
        int64_t now = e2e_now_ms();
        for (int i = 0; i < nprocs; i++)
                if (procs[i].frozen && now >= procs[i].restart_at) {
                        fprintf(stderr, "  [%6.1f s] %s wakes up\n",
                                (double)(now - t0) / 1000, procs[i].name);
                        kill(procs[i].pid, SIGCONT);
                        procs[i].frozen = 0;
                        procs[i].restart_at = 0;
                }
}

/* ---- the load ---------------------------------------------------------------
 */

typedef struct load_s {
        keel_client_t *client;
        int n;
        int64_t window_ms; /* spread the starts over this long */
        atomic_int started, refused_starts, signals, retries, failed;
        int threads;            /* starting in parallel, sharing client */
        atomic_int next_thread; /* the next thread's number */
        atomic_int running;     /* threads not finished yet */
} load_t;

/* A task may wait this long for a worker before its attempt times out:
 * the backlog a fault leaves (a worker down past its session, a broker
 * restarting) must not exhaust an activity's attempts, which would change
 * the outcome the reference gives. */
#define START_TO_CLOSE_MS 60000

/* Kind i % 10 of workflow i: its input and whether it starts with the
 * signal (1), gets it later (2) or never (0). */
static json_t *input_of(int i, int *signal)
{
        unsigned r = (unsigned)i * 2654435761u;
        json_t *in = json_pack("{ss si si}", "order", "chaos", "amount",
                               100 + i, "start_to_close_ms", START_TO_CLOSE_MS);
        int64_t window = 200 + (int)(r % 1500);
        *signal = 0;
        switch (i % 10) {
        case 0:
        case 1:
        case 2:
        case 3:
                /* refunded */
                *signal = i % 10 == 3 ? 2 : 1;
                window = 3600000;
                break;
        case 6:
                json_object_set_new(in, "decline", json_true());
                break;
        case 7:
                json_object_set_new(in, "out_of_stock", json_true());
                break;
        case 8:
                json_object_set_new(in, "flaky", json_integer(1));
                break;
        case 9:
                window = 2000 + (int)(r % 8000);
                break;
        default: /* completed */
                break;
        }
        json_object_set_new(in, "refund_window_ms", json_integer(window));
        return in;
}

/* Tries of a command while the broker is away, each with the same
 * command ID: bounded. */
#define TRIES 60

static int start_once(load_t *ld, const char *id, const json_t *in,
                      const keel_start_options_t *o)
{
        char err[1024];
        for (int t = 0; t < TRIES; t++) {
                if (!keel_client_start(ld->client, id, PAYMENT_WORKFLOW, in, o,
                                       NULL, err, sizeof(err)))
                        return 0;
                atomic_fetch_add(&ld->retries, 1);
                if (t < 3)
                        fprintf(stderr, "  start %s: %s (try %d)\n", id, err,
                                t + 1);
                e2e_sleep_ms(500);
        }
        return -1;
}

static int signal_once(load_t *ld, const char *id)
{
        char err[1024];
        for (int t = 0; t < TRIES; t++) {
                /* A retry may deliver it twice: the second is another
                 * refundApproved, which changes nothing. */
                if (!keel_client_signal(ld->client, id, NULL, "refundApproved",
                                        NULL, 0, err, sizeof(err)))
                        return 0;
                atomic_fetch_add(&ld->retries, 1);
                e2e_sleep_ms(500);
        }
        return -1;
}

static void *load(void *arg)
{
        load_t *ld = arg;
        int64_t start = e2e_now_ms();
        /* Thread k starts workflows k, k + threads, ... */
        for (int i = atomic_fetch_add(&ld->next_thread, 1); i < ld->n;
             i += ld->threads) {
                keel_start_options_t o = {0};
                char id[128], cid[KEEL_UUID_SIZE];
                int signal, rc;
                json_t *in = input_of(i, &signal);
                int64_t due = start + ld->window_ms * i / ld->n;

                while (e2e_now_ms() < due)
                        e2e_sleep_ms(5);
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                keel_client_command_id(cid);
                o.command_id = cid;
                o.signal_name = signal == 1 ? "refundApproved" : NULL;
                rc = start_once(ld, id, in, &o);
                if (!rc && signal == 2)
                        rc = signal_once(ld, id);
                if (!rc && i % 50 == 25) {
                        /* The same ID again, a new command: refused while
                         * it runs and after (a dead letter either way). */
                        keel_start_options_t again = {0};
                        char cid2[KEEL_UUID_SIZE];
                        keel_client_command_id(cid2);
                        again.command_id = cid2;
                        again.id_reuse_policy = "REJECT_DUPLICATE";
                        rc = start_once(ld, id, in, &again);
                        if (!rc)
                                atomic_fetch_add(&ld->refused_starts, 1);
                }
                json_decref(in);
                if (rc)
                        atomic_fetch_add(&ld->failed, 1);
                else
                        atomic_fetch_add(&ld->started, 1);
                if (signal == 2 && !rc)
                        atomic_fetch_add(&ld->signals, 1);
        }
        atomic_fetch_sub(&ld->running, 1);
        return NULL;
}

/* ---- the test
 * ------------------------------------------------------------------ */

static int64_t last_supervised;

static int all_closed_supervised(e2e_watch_t *w, void *opaque)
{
        (void)opaque;
        if (e2e_now_ms() - last_supervised > 500) {
                thaw();
                supervise();
                last_supervised = e2e_now_ms();
        }
        return w->closed >= w->n;
}

/* Sanitizer reports in the processes' logs: how many (the first printed). */
static int sanitizer_reports(void)
{
        DIR *d = opendir(env.workdir);
        struct dirent *de;
        int n = 0;
        while (d && (de = readdir(d))) {
                char path[1200], line[2048];
                FILE *f;
                if (!strstr(de->d_name, ".log"))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", env.workdir, de->d_name);
                if (!(f = fopen(path, "r")))
                        continue;
                while (fgets(line, sizeof(line), f))
                        if (strstr(line, "ERROR: AddressSanitizer") ||
                            strstr(line, "ERROR: LeakSanitizer") ||
                            strstr(line, "runtime error:")) {
                                if (n++ < 5)
                                        fprintf(stderr, "  %s: %s", de->d_name,
                                                line);
                        }
                fclose(f);
        }
        if (d)
                closedir(d);
        return n;
}

/* The projector's port, once it wrote it (it may be starting again). */
static int read_port(int64_t deadline)
{
        int port = -1;
        while (port <= 0 && e2e_now_ms() < deadline) {
                supervise();
                port = e2e_read_port(port_file, e2e_now_ms() + 500);
        }
        return port;
}

static void test_chaos_payment(void)
{
        int n = e2e_env_int("KEEL_CHAOS_WORKFLOWS", 10000);
        /* Starts per second: what this 2-core machine carries under ASan
         * with the faults, activity attempts waiting up to ~25 s for a
         * worker (docs/reliability.md); much more piles tasks up until
         * attempts time out. The faults come over the time the starts
         * take, unless KEEL_CHAOS_SECONDS says. */
        int rate = e2e_env_int("KEEL_CHAOS_RATE", 80);
        int seconds =
            e2e_env_int("KEEL_CHAOS_SECONDS", n / (rate > 0 ? rate : 80) + 1);
        int drain_s = e2e_env_int("KEEL_CHAOS_DRAIN_SECONDS", 300);
        int norch = e2e_env_int("KEEL_CHAOS_ORCHESTRATORS", 2);
        int nwork = e2e_env_int("KEEL_CHAOS_WORKERS", 2);
        char bootstrap_file[700], err[1024];
        char n_text[16], port_text[16], json_path[800];
        const char *check_argv[20];
        keel_config_t *cfg;
        load_t ld;
        pthread_t lt[16];
        e2e_watch_t *w;
        fault_t *faults;
        pid_t dog;
        int nfaults, next = 0, port, rc, stops_bad = 0;
        int64_t window_ms = (int64_t)seconds * 1000, t_load, t_closed;
        FILE *bf;

        t0 = e2e_now_ms();
        seed = (unsigned)e2e_env_int("KEEL_CHAOS_SEED", (int)getpid());
        e2e_env_init_local(&env, "chaos");
        snprintf(kafka_dir, sizeof(kafka_dir), "%s",
                 keel_test_env("KEEL_CHAOS_KAFKA_DIR"));
        snprintf(kafka_script, sizeof(kafka_script), "%s",
                 keel_test_env("KEEL_CHAOS_KAFKA_SCRIPT"));
        snprintf(prefix, sizeof(prefix), "chaos-%d-", (int)getpid());
        snprintf(effects, sizeof(effects), "%s/effects.log", env.workdir);
        snprintf(port_file, sizeof(port_file), "%s/projector.port",
                 env.workdir);
        fprintf(stderr,
                "chaos: %d workflows at %d/s, %d s of faults, seed %u, work "
                "dir %s\n",
                n, rate, seconds, seed, env.workdir);

        /* A broker of our own, fresh, which its own watchdog stops at the
         * latest when ours would. */
        {
                int dog_s = e2e_env_int("KEEL_CHAOS_WATCHDOG_S",
                                        seconds + drain_s + 300);
                snprintf(kafka_max, sizeof(kafka_max),
                         "KEEL_KAFKA_MAX_SECONDS=%d", dog_s + 60);
                kafka("stop");
                {
                        char cmd[800];
                        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", kafka_dir);
                        CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
                }
                dog = watchdog(dog_s);
        }
        CU_ASSERT_EQUAL_FATAL(kafka("start"), 0);
        snprintf(bootstrap_file, sizeof(bootstrap_file), "%s/bootstrap",
                 kafka_dir);
        bf = fopen(bootstrap_file, "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(bf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(
            fgets(env.bootstrap, sizeof(env.bootstrap), bf));
        fclose(bf);
        env.bootstrap[strcspn(env.bootstrap, "\r\n")] = '\0';

        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&env), KEEL_OK);

        for (int i = 0; i < norch && i < 3; i++) {
                char name[16];
                snprintf(name, sizeof(name), "orch-%d", i);
                proc_add(K_ORCH, name);
        }
        for (int i = 0; i < nwork && i < 3; i++) {
                char name[16];
                snprintf(name, sizeof(name), "worker-%d", i);
                proc_add(K_WORKER, name);
        }
        proc_add(K_PROJECTOR, "projector");

        memset(&ld, 0, sizeof(ld));
        cfg = keel_config_new();
        keel_config_set(cfg, "bootstrap", env.bootstrap, NULL, NULL, 0);
        ld.client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(ld.client);
        ld.n = n;
        ld.window_ms = (int64_t)n * 1000 / (rate > 0 ? rate : 80);
        ld.threads = e2e_env_int("KEEL_CHAOS_LOAD_THREADS", 4);
        if (ld.threads < 1 || ld.threads > 16)
                ld.threads = 4;
        atomic_store(&ld.running, ld.threads);

        /* Chaos: the load runs in its thread, faults come here. */
        faults = plan(window_ms, &nfaults);
        CU_ASSERT_PTR_NOT_NULL_FATAL(faults);
        t_load = e2e_now_ms();
        fprintf(stderr, "  [%6.1f s] load and faults begin\n",
                (double)(t_load - t0) / 1000);
        for (int i = 0; i < ld.threads; i++)
                CU_ASSERT_EQUAL_FATAL(pthread_create(&lt[i], NULL, load, &ld),
                                      0);
        while (e2e_now_ms() - t_load < window_ms || atomic_load(&ld.running) ||
               broker_down) {
                if (next < nfaults &&
                    e2e_now_ms() - t_load >= faults[next].at) {
                        /* No target now: a little later, or never. */
                        if (!inject(&faults[next]) ||
                            faults[next].at > window_ms + 30000)
                                next++;
                        else
                                faults[next].at += 1000;
                }
                broker_tend();
                thaw();
                supervise();
                e2e_sleep_ms(100);
        }
        for (int i = 0; i < ld.threads; i++)
                pthread_join(lt[i], NULL);
        free(faults);
        fprintf(stderr,
                "  [%6.1f s] load done: %d started, %d refused second "
                "starts, %d later signals, %d client retries, %d failed\n",
                (double)(e2e_now_ms() - t0) / 1000, atomic_load(&ld.started),
                atomic_load(&ld.refused_starts), atomic_load(&ld.signals),
                atomic_load(&ld.retries), atomic_load(&ld.failed));

        /* Everything up again; every workflow closes. */
        for (int i = 0; i < nprocs; i++)
                if (procs[i].pid <= 0)
                        procs[i].restart_at = 1;
                else if (procs[i].frozen)
                        procs[i].restart_at = 1; /* thaw() wakes it */
        thaw();
        supervise();
        w = e2e_watch_new(env.bootstrap, prefix, n, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        e2e_watch_until(w, e2e_now_ms() + (int64_t)drain_s * 1000,
                        all_closed_supervised, NULL);
        t_closed = e2e_now_ms();
        fprintf(stderr,
                "  [%6.1f s] %d/%d closed (watcher: %d seq violations, "
                "%llu fenced, %llu torn)\n",
                (double)(t_closed - t0) / 1000, w->closed, n, w->seq_violations,
                (unsigned long long)w->fenced, (unsigned long long)w->torn);
        CU_ASSERT_EQUAL(w->closed, n);
        e2e_watch_destroy(w);

        /* Orchestrators and workers stop as a deploy stops them, all at
         * once. */
        for (int i = 0; i < nprocs; i++)
                if (procs[i].kind != K_PROJECTOR && procs[i].pid > 0)
                        kill(procs[i].pid, SIGTERM);
        for (int i = 0; i < nprocs; i++) {
                proc_t *p = &procs[i];
                int st;
                if (p->kind == K_PROJECTOR)
                        continue;
                st = e2e_stop(p->pid, SIGTERM);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                        stops_bad++;
                        fprintf(stderr, "  %s stopped with status %d\n",
                                p->name, st);
                }
                p->pid = 0;
        }

        /* The independent check, with the projector's view. */
        port = read_port(e2e_now_ms() + 60000);
        CU_ASSERT(port > 0);
        snprintf(n_text, sizeof(n_text), "%d", n);
        snprintf(port_text, sizeof(port_text), "%d", port);
        snprintf(json_path, sizeof(json_path), "%s/check.json", env.workdir);
        check_argv[0] = keel_test_env("KEEL_TEST_CHECK");
        check_argv[1] = "--bootstrap";
        check_argv[2] = env.bootstrap;
        check_argv[3] = "--prefix";
        check_argv[4] = prefix;
        check_argv[5] = "--expect";
        check_argv[6] = n_text;
        check_argv[7] = "--effects";
        check_argv[8] = effects;
        check_argv[9] = "--projector";
        check_argv[10] = port_text;
        check_argv[11] = "--json";
        check_argv[12] = json_path;
        check_argv[13] = NULL;
        rc = e2e_run(&env, "check.log", (char *const *)check_argv, 600000);
        {
                char path[800], line[2048];
                FILE *f;
                snprintf(path, sizeof(path), "%s/check.log", env.workdir);
                if ((f = fopen(path, "r"))) {
                        while (fgets(line, sizeof(line), f))
                                fprintf(stderr, "  %s", line);
                        fclose(f);
                }
        }
        CU_ASSERT_EQUAL(rc, 0);

        e2e_stop(procs[nprocs - 1].pid, SIGTERM);
        procs[nprocs - 1].pid = 0;
        kafka("stop");
        kill(dog, SIGKILL);
        waitpid(dog, NULL, 0);

        /* The figures, here and in <workdir>/figures.txt. */
        {
                char path[800];
                FILE *out[2] = {stderr, NULL};
                snprintf(path, sizeof(path), "%s/figures.txt", env.workdir);
                out[1] = fopen(path, "w");
                for (int o = 0; o < 2 && out[o]; o++) {
                        fprintf(out[o],
                                "chaos figures: %d workflows at %d/s, seed "
                                "%u\n",
                                n, rate, seed);
                        for (int i = 0; i < F_N; i++)
                                fprintf(out[o], "  %-30s %d of %d planned\n",
                                        fnames[i], injected[i], planned[i]);
                        for (int k = 0; k < K_N; k++) {
                                int ex = 0;
                                for (int i = 0; i < nprocs; i++)
                                        if (procs[i].kind == k)
                                                ex += procs[i].exits;
                                fprintf(out[o], "  %-30s %d\n", knames[k], ex);
                        }
                        fprintf(out[o],
                                "  all closed %.1f s after the first start "
                                "(%.1f s of starts and faults); keel-check "
                                "exit %d; wall time %.1f s\n",
                                (double)(t_closed - t_load) / 1000,
                                (double)window_ms / 1000, rc,
                                (double)(e2e_now_ms() - t0) / 1000);
                }
                if (out[1])
                        fclose(out[1]);
        }
        CU_ASSERT_EQUAL(atomic_load(&ld.failed), 0);
        CU_ASSERT_EQUAL(atomic_load(&ld.started), n);
        CU_ASSERT(injected[F_KILL_BROKER] >= 1);
        CU_ASSERT_EQUAL(stops_bad, 0);
        CU_ASSERT_EQUAL(sanitizer_reports(), 0);
        keel_client_destroy(ld.client);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {{"test_chaos_payment", test_chaos_payment},
                              CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("chaos_payment", tests)

/*
 * worker_main.c: the examples' worker program (worker_main.h). A thread of
 * its own takes SIGINT and SIGTERM and stops the worker; the main thread
 * runs it.
 */
#include "worker_main.h"

#include "app.h"
#include "effects.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the signal thread watches. */
typedef struct watch_s {
        const char *component; /* for log lines: "payment-worker" */
        keel_worker_t *w;
        atomic_int done; /* keel_worker_run() returned */
} watch_t;

/* The signal thread: SIGINT/SIGTERM are blocked everywhere and taken here,
 * where calling keel_worker_stop() needs no care. */
static void *watch_signals(void *arg)
{
        watch_t *wt = arg;
        while (!atomic_load(&wt->done)) {
                int sig = keel__app_wait_signal(200);
                if (!sig)
                        continue;
                keel_log(KEEL_LOG_INFO, wt->component,
                         "msg=\"stopping\" signal=%s",
                         sig == SIGINT ? "SIGINT" : "SIGTERM");
                keel_worker_stop(wt->w);
                break;
        }
        return NULL;
}

static int exit_code(int rc)
{
        switch (rc) {
        case KEEL_OK:
                return KEEL_EXIT_OK;
        case KEEL_ERR_TRANSPORT:
        case KEEL_ERR_TIMEOUT:
                return KEEL_EXIT_UNAVAILABLE;
        default:
                return KEEL_EXIT_FAILURE;
        }
}

/* Make the worker and register ex's activities on it; NULL (said on
 * stderr) with *code the exit code. */
static keel_worker_t *make_worker(const example_worker_t *ex,
                                  const keel_app_t *app, example_effects_t *fx,
                                  int *code)
{
        char err[1024];
        keel_worker_t *w =
            keel_worker_new(app->cfg, ex->task_queue, err, sizeof(err));
        if (!w) {
                fprintf(stderr, "%s: %s\n", ex->prog, err);
                *code = KEEL_EXIT_USAGE;
                return NULL;
        }
        for (size_t i = 0; i < ex->activities_cnt; i++) {
                int rc = keel_worker_register(w, ex->activities[i].name,
                                              ex->activities[i].fn, fx);
                if (rc) {
                        fprintf(stderr, "%s: registering %s: %s\n", ex->prog,
                                ex->activities[i].name, keel_err_str(rc));
                        keel_worker_destroy(w);
                        *code = KEEL_EXIT_FAILURE;
                        return NULL;
                }
        }
        return w;
}

int example_worker_main(const example_worker_t *ex, int argc, char **argv)
{
        static const struct option opts[] = {
            {"effects", required_argument, NULL, 'e'},
            {"concurrency", required_argument, NULL, 'c'},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        char usage[4096];
        keel_app_t app;
        const char *effects_path = NULL;
        example_effects_t *fx;
        keel_worker_t *w;
        watch_t wt;
        pthread_t th;
        int opt, rc, code = KEEL_EXIT_FAILURE;

        snprintf(usage, sizeof(usage),
                 "Usage: %s [OPTIONS]\n%s"
                 "until SIGINT or SIGTERM.\n\n"
                 "  --effects FILE      append each side effect to FILE (one "
                 "line\n"
                 "                      \"<activity>\\t<idempotency key>\"), "
                 "once per key\n"
                 "  --concurrency N     activities run at once (the "
                 "'worker.concurrency'\n"
                 "                      setting, default 8)\n%s"
                 "\nExit codes: 0 stopped by a signal, 1 failed, 2 usage or "
                 "config,\n3 no broker reachable.\n",
                 ex->prog, ex->about, KEEL_APP_COMMON_HELP);
        keel__app_init(&app, ex->prog);
        while ((opt = getopt_long(argc, argv, KEEL_APP_COMMON_SHORT, opts,
                                  NULL)) != -1) {
                if (keel__app_option(&app, opt, optarg, usage))
                        continue;
                if (opt == 'e') {
                        effects_path = optarg;
                } else if (opt == 'c') {
                        keel__app_flag(&app, "worker.concurrency", optarg);
                } else {
                        fputs(usage, stderr);
                        keel__app_destroy(&app);
                        return KEEL_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fputs(usage, stderr);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        keel__app_configure(&app);

        if (!(fx = example_effects_open(effects_path))) {
                fprintf(stderr, "%s: cannot open effect log '%s'\n", ex->prog,
                        effects_path ? effects_path : "");
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        /* Before any thread exists, so that every thread inherits it. */
        keel__app_block_signals();
        if (!(w = make_worker(ex, &app, fx, &code)))
                goto out;
        /* "keel-payment-worker" logs as "payment-worker" */
        wt.component = strncmp(ex->prog, "keel-", 5) ? ex->prog : ex->prog + 5;
        wt.w = w;
        atomic_init(&wt.done, 0);
        if (pthread_create(&th, NULL, watch_signals, &wt)) {
                fprintf(stderr, "%s: cannot start a thread\n", ex->prog);
                keel_worker_destroy(w);
                goto out;
        }
        rc = keel_worker_run(w);
        atomic_store(&wt.done, 1);
        pthread_join(th, NULL);
        if (rc)
                keel_log(KEEL_LOG_ERROR, wt.component,
                         "msg=\"worker failed\" error=%s", keel_err_name(rc));
        /* Waits for activities still running past the grace period; the
         * effect log outlives them. */
        keel_worker_destroy(w);
        code = exit_code(rc);
out:
        example_effects_close(fx);
        keel__app_destroy(&app);
        return code;
}

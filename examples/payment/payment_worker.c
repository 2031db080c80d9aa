/*
 * payment_worker.c: keel-payment-worker, the activity worker of the payment
 * example. It runs the payment activities (payment.h) for tasks on the
 * "payments" queue (keel.tasks.payments) through keel's worker
 * (keel/worker.h), recording their side effects in an effect log when
 * --effects is given. SIGINT or SIGTERM stops it the way a deploy would:
 * no new task, running ones get worker.grace.ms, offsets are committed,
 * then it exits 0.
 */
#include "app.h"
#include "keel/log.h"
#include "keel/worker.h"
#include "payment.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "Usage: keel-payment-worker [OPTIONS]\n"
    "Run the payment example's activities (chargeCard, reserveInventory,\n"
    "sendReceipt, refundCard, releaseInventory, markFulfilled) for tasks on\n"
    "keel.tasks." PAYMENT_QUEUE " until SIGINT or SIGTERM.\n\n"
    "  --effects FILE      append each side effect to FILE (one line\n"
    "                      \"<activity>\\t<idempotency key>\"), once per key\n"
    "  --concurrency N     activities run at once (the 'worker.concurrency'\n"
    "                      setting, default 8)\n" KEEL_APP_COMMON_HELP
    "\nExit codes: 0 stopped by a signal, 1 failed, 2 usage or config,\n"
    "3 no broker reachable.\n";

/* What the signal thread watches. */
typedef struct watch_s {
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
                keel_log(KEEL_LOG_INFO, "payment-worker",
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

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"effects", required_argument, NULL, 'e'},
            {"concurrency", required_argument, NULL, 'c'},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        keel_app_t app;
        const char *effects_path = NULL;
        payment_effects_t *fx;
        keel_worker_t *w;
        watch_t wt;
        pthread_t th;
        char err[1024];
        int opt, rc;

        keel__app_init(&app, "keel-payment-worker");
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

        fx = payment_effects_open(effects_path);
        if (!fx) {
                fprintf(stderr,
                        "keel-payment-worker: cannot open effect log "
                        "'%s'\n",
                        effects_path ? effects_path : "");
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        /* Before any thread exists, so that every thread inherits it. */
        keel__app_block_signals();
        w = keel_worker_new(app.cfg, PAYMENT_QUEUE, err, sizeof(err));
        if (!w) {
                fprintf(stderr, "keel-payment-worker: %s\n", err);
                payment_effects_close(fx);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        for (size_t i = 0; i < payment_activities_cnt; i++) {
                rc = keel_worker_register(w, payment_activities[i].name,
                                          payment_activities[i].fn, fx);
                if (rc) {
                        fprintf(stderr,
                                "keel-payment-worker: registering %s: %s\n",
                                payment_activities[i].name, keel_err_str(rc));
                        keel_worker_destroy(w);
                        payment_effects_close(fx);
                        keel__app_destroy(&app);
                        return KEEL_EXIT_FAILURE;
                }
        }

        wt.w = w;
        atomic_init(&wt.done, 0);
        if (pthread_create(&th, NULL, watch_signals, &wt)) {
                fprintf(stderr, "keel-payment-worker: cannot start a thread\n");
                keel_worker_destroy(w);
                payment_effects_close(fx);
                keel__app_destroy(&app);
                return KEEL_EXIT_FAILURE;
        }
        rc = keel_worker_run(w);
        atomic_store(&wt.done, 1);
        pthread_join(th, NULL);
        if (rc)
                keel_log(KEEL_LOG_ERROR, "payment-worker",
                         "msg=\"worker failed\" error=%s", keel_err_name(rc));
        /* Waits for activities still running past the grace period; the
         * effect log outlives them. */
        keel_worker_destroy(w);
        payment_effects_close(fx);
        keel__app_destroy(&app);
        return exit_code(rc);
}

/*
 * main.c: keel-projector, the daemon that folds keel.history into every
 * workflow's current state and serves it over HTTP (DESIGN.md,
 * "Projector").
 *
 * For now it parses its options, connects, checks keel's topics and runs
 * until SIGINT/SIGTERM; the HTTP API comes next.
 */
#include "app.h"
#include "keel/log.h"

#include <stdio.h>

static const char usage[] =
    "Usage: keel-projector [OPTIONS]\n"
    "Run keel's projector: fold keel.history into the current state of every\n"
    "workflow and serve it over HTTP, until SIGINT or "
    "SIGTERM.\n\n" KEEL_APP_COMMON_HELP;

int main(int argc, char **argv)
{
        keel_app_t app;
        int32_t partitions;
        int rc, sig;

        keel__app_init(&app, "keel-projector");
        keel__app_parse(&app, argc, argv, usage);
        keel__app_block_signals();
        rc = keel__app_check_cluster(&app, "projector", &partitions);
        if (rc) {
                keel__app_destroy(&app);
                return rc;
        }
        keel_log(KEEL_LOG_INFO, "projector",
                 "msg=started bootstrap=%s partitions=%d",
                 keel_config_get(app.cfg, "bootstrap"), partitions);
        sig = keel__app_wait_signal(-1);
        keel_log(KEEL_LOG_INFO, "projector", "msg=stopped signal=%d", sig);
        keel__app_destroy(&app);
        return KEEL_EXIT_OK;
}

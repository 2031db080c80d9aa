/*
 * main.c: keel-orchestrator, the daemon that owns keel.inbox/keel.history
 * partitions, replays workflows and emits their commands in Kafka
 * transactions (DESIGN.md, "Orchestrator: exactly once").
 *
 * For now it parses its options, connects, checks keel's topics and runs
 * until SIGINT/SIGTERM; the partition processors come next.
 */
#include "app.h"
#include "keel/log.h"

#include <stdio.h>

static const char usage[] =
    "Usage: keel-orchestrator [OPTIONS]\n"
    "Run keel's orchestrator: replay workflows from keel.history and process\n"
    "commands from keel.inbox, exactly once, until SIGINT or "
    "SIGTERM.\n\n" KEEL_APP_COMMON_HELP;

int main(int argc, char **argv)
{
        keel_app_t app;
        int32_t partitions;
        int rc, sig;

        keel__app_init(&app, "keel-orchestrator");
        keel__app_parse(&app, argc, argv, usage);
        keel__app_block_signals();
        rc = keel__app_check_cluster(&app, "orchestrator", &partitions);
        if (rc) {
                keel__app_destroy(&app);
                return rc;
        }
        keel_log(KEEL_LOG_INFO, "orchestrator",
                 "msg=started bootstrap=%s partitions=%d",
                 keel_config_get(app.cfg, "bootstrap"), partitions);
        sig = keel__app_wait_signal(-1);
        keel_log(KEEL_LOG_INFO, "orchestrator", "msg=stopped signal=%d", sig);
        keel__app_destroy(&app);
        return KEEL_EXIT_OK;
}

/*
 * main.c: keel-orchestrator, the daemon that owns keel.inbox/keel.history
 * partitions, replays workflows and emits their commands in Kafka
 * transactions (DESIGN.md, "Orchestrator: exactly once"). Workflow code
 * comes from modules (--workflows lib.so).
 */
#include "app.h"
#include "keel/log.h"
#include "orch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: keel-orchestrator [OPTIONS]\n"
    "Run keel's orchestrator: replay workflows from keel.history and process\n"
    "commands from keel.inbox, exactly once, until SIGINT or SIGTERM.\n\n"
    "  --workflows LIB.so  load workflow code (repeatable; also the\n"
    "                      'workflows' setting, comma-separated)\n"
    "  --ingress ROUTES.json  also run an ingress: start and signal\n"
    "                      workflows from records of your topics (also the\n"
    "                      'ingress.routes' setting; docs/streams.md)\n"
    "  --metrics-port-file F  write the metrics port to F once "
    "serving\n" KEEL_APP_COMMON_HELP;

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"workflows", required_argument, NULL, 'w'},
            {"metrics-port-file", required_argument, NULL, 'm'},
            {"ingress", required_argument, NULL, 'i'},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        keel_app_t app;
        keel_registry_t *reg;
        orch_t o;
        char err[1024], mods[4096] = "";
        const char *port_file = NULL;
        int64_t v;
        int32_t partitions;
        void *metrics;
        keel_app_ingress_t *ingress = NULL;
        const char *routes;
        int opt, rc, irc, port;

        keel__app_init(&app, "keel-orchestrator");
        while ((opt = getopt_long(argc, argv, KEEL_APP_COMMON_SHORT, opts,
                                  NULL)) != -1) {
                if (keel__app_option(&app, opt, optarg, usage))
                        continue;
                if (opt == 'w') {
                        size_t l = strlen(mods);
                        snprintf(mods + l, sizeof(mods) - l, "%s%s",
                                 l ? "," : "", optarg);
                } else if (opt == 'i') {
                        keel__app_flag(&app, "ingress.routes", optarg);
                } else if (opt == 'm') {
                        port_file = optarg;
                } else {
                        fputs(usage, stderr);
                        keel__app_destroy(&app);
                        return KEEL_EXIT_USAGE;
                }
        }
        keel__app_configure(&app);
        keel__app_block_signals();

        reg = keel_registry_new();
        if (!reg)
                return KEEL_EXIT_FAILURE;
        {
                const char *cfg_mods = keel_config_get(app.cfg, "workflows");
                size_t l = strlen(mods);
                if (cfg_mods && *cfg_mods)
                        snprintf(mods + l, sizeof(mods) - l, "%s%s",
                                 l ? "," : "", cfg_mods);
        }
        if (keel__app_load_modules(reg, mods, "orchestrator", err,
                                   sizeof(err))) {
                fprintf(stderr, "keel-orchestrator: %s\n", err);
                keel_registry_destroy(reg);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        rc = keel__app_check_cluster(&app, "orchestrator", &partitions);
        if (rc) {
                keel_registry_destroy(reg);
                keel__app_destroy(&app);
                return rc;
        }

        memset(&o, 0, sizeof(o));
        o.cfg = app.cfg;
        o.reg = reg;
        o.partitions = partitions;
        keel_config_get_int(app.cfg, "batch.max.commands", &v);
        o.batch_max = (int)v;
        keel_config_get_int(app.cfg, "batch.max.ms", &v);
        o.batch_ms = (int)v;
        keel_config_get_int(app.cfg, "commit.threads", &v);
        o.commit_threads = (int)v;
        routes = keel_config_get(app.cfg, "ingress.routes");
        if (routes && *routes &&
            !(ingress = keel__app_ingress_start(app.cfg, routes, "orchestrator",
                                                err, sizeof(err)))) {
                fprintf(stderr, "keel-orchestrator: %s\n", err);
                keel_registry_destroy(reg);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        o.ingress = keel__app_ingress_get(ingress);
        metrics = orch_metrics_start(
            &o, keel_config_get(app.cfg, "metrics.listen"), &port);
        if (metrics && keel__app_write_port(port_file, port))
                keel_log(KEEL_LOG_WARN, "orchestrator",
                         "msg=\"cannot write port file\" path=%s", port_file);
        keel_log(KEEL_LOG_INFO, "orchestrator",
                 "msg=started bootstrap=%s partitions=%d metrics_port=%d",
                 keel_config_get(app.cfg, "bootstrap"), partitions, port);
        rc = orch_run(&o);
        orch_metrics_stop(metrics);
        irc = keel__app_ingress_stop(ingress);
        if (!rc)
                rc = irc;
        keel_log(KEEL_LOG_INFO, "orchestrator", "msg=stopped");
        keel_registry_destroy(reg);
        keel__app_destroy(&app);
        return rc ? KEEL_EXIT_FAILURE : KEEL_EXIT_OK;
}

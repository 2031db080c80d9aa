/*
 * ingress_cmd.c: `keel ingress`, an ingress as a process of its own:
 * records of your topics start and signal workflows, exactly once
 * (docs/streams.md). keel-orchestrator --ingress runs the same inside the
 * orchestrator.
 */
#include "cli.h"

#include "app.h"
#include "ingress_int.h"
#include "keel/log.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: keel ingress --routes ROUTES.json [OPTIONS]\n"
    "Start and signal workflows from the records of your own topics, as\n"
    "the routes file says, exactly once, until SIGINT or SIGTERM. Records\n"
    "that cannot be mapped go to keel.dlq with the reason.\n\n"
    "  --routes FILE       the routes (also the 'ingress.routes' setting)\n"
    "  --metrics-port-file F  write the metrics port to F once serving\n"
    "                      (metrics.listen; /metrics, "
    "/healthz)\n" KEEL_APP_COMMON_HELP;

static void render(void *opaque, char *buf, size_t size, size_t *len)
{
        keel__ingress_metrics(keel__app_ingress_get(opaque), buf, size, len);
}

int keel_cli_ingress(int argc, char **argv)
{
        static const struct option opts[] = {
            {"routes", required_argument, NULL, 'r'},
            {"metrics-port-file", required_argument, NULL, 'm'},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        keel_app_t app;
        keel_app_ingress_t *h;
        const char *routes, *port_file = NULL;
        char err[1024];
        void *metrics;
        int opt, port, rc, sig;

        keel__app_init(&app, "keel ingress");
        while ((opt = getopt_long(argc, argv, KEEL_APP_COMMON_SHORT, opts,
                                  NULL)) != -1) {
                if (keel__app_option(&app, opt, optarg, usage))
                        continue;
                if (opt == 'r') {
                        keel__app_flag(&app, "ingress.routes", optarg);
                } else if (opt == 'm') {
                        port_file = optarg;
                } else {
                        fputs(usage, stderr);
                        keel__app_destroy(&app);
                        return KEEL_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "keel ingress: unexpected argument '%s'\n\n%s",
                        argv[optind], usage);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        keel__app_configure(&app);
        routes = keel_config_get(app.cfg, "ingress.routes");
        if (!routes || !*routes) {
                fprintf(stderr,
                        "keel ingress: no routes: give --routes "
                        "FILE\n\n%s",
                        usage);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        keel__app_block_signals();
        if (!(h = keel__app_ingress_start(app.cfg, routes, "ingress", err,
                                          sizeof(err)))) {
                fprintf(stderr, "keel ingress: %s\n", err);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        metrics =
            keel__app_metrics_start(keel_config_get(app.cfg, "metrics.listen"),
                                    "ingress", render, h, &port);
        if (metrics && keel__app_write_port(port_file, port))
                keel_log(KEEL_LOG_WARN, "ingress",
                         "msg=\"cannot write port file\" path=%s", port_file);
        keel_log(KEEL_LOG_INFO, "ingress",
                 "msg=started bootstrap=%s routes=%s metrics_port=%d",
                 keel_config_get(app.cfg, "bootstrap"), routes, port);
        sig = keel__app_wait_signal(-1);
        keel__app_metrics_stop(metrics);
        rc = keel__app_ingress_stop(h);
        keel_log(KEEL_LOG_INFO, "ingress", "msg=stopped signal=%d", sig);
        keel__app_destroy(&app);
        return rc ? KEEL_EXIT_FAILURE : KEEL_EXIT_OK;
}

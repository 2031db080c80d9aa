/*
 * main.c: keel-projector, the daemon that folds keel.history into every
 * workflow's current state and serves it over HTTP (DESIGN.md,
 * "Projector"; docs/http-api.md). It parses its options, checks keel's
 * topics, starts the reader thread (reader.c) and the HTTP server
 * (http.c), and runs until SIGINT or SIGTERM.
 */
#include "app.h"
#include "keel/log.h"
#include "proj.h"

#include <stdio.h>

static const char usage[] =
    "Usage: keel-projector [OPTIONS]\n"
    "Run keel's projector: fold keel.history into the current state of every\n"
    "workflow and serve it over HTTP (the 'http.listen' setting), until\n"
    "SIGINT or SIGTERM.\n\n"
    "  --port-file F       write the HTTP port to F once "
    "serving\n" KEEL_APP_COMMON_HELP;

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"port-file", required_argument, NULL, 'p'},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        const char *port_file = NULL;
        keel_app_t app;
        proj_t p;
        void *http;
        char err[512];
        int32_t partitions;
        int opt, rc, sig, port;

        keel__app_init(&app, "keel-projector");
        while ((opt = getopt_long(argc, argv, KEEL_APP_COMMON_SHORT, opts,
                                  NULL)) != -1) {
                if (keel__app_option(&app, opt, optarg, usage))
                        continue;
                if (opt == 'p') {
                        port_file = optarg;
                } else {
                        fputs(usage, stderr);
                        keel__app_destroy(&app);
                        return KEEL_EXIT_USAGE;
                }
        }
        keel__app_configure(&app);
        keel__app_block_signals();
        rc = keel__app_check_cluster(&app, "projector", &partitions);
        if (rc) {
                keel__app_destroy(&app);
                return rc;
        }
        if (proj_init(&p, app.cfg, partitions)) {
                keel_log(KEEL_LOG_ERROR, "projector", "msg=\"out of memory\"");
                keel__app_destroy(&app);
                return KEEL_EXIT_FAILURE;
        }
        http =
            proj_http_start(&p, keel_config_get(app.cfg, "http.listen"), &port);
        if (!http || proj_reader_start(&p, err, sizeof(err))) {
                proj_http_stop(http);
                proj_destroy(&p);
                keel__app_destroy(&app);
                return KEEL_EXIT_FAILURE;
        }
        if (keel__app_write_port(port_file, port))
                keel_log(KEEL_LOG_WARN, "projector",
                         "msg=\"cannot write port file\" path=%s", port_file);
        keel_log(KEEL_LOG_INFO, "projector",
                 "msg=started bootstrap=%s partitions=%d http_port=%d",
                 keel_config_get(app.cfg, "bootstrap"), partitions, port);
        sig = keel__app_wait_signal(-1);
        proj_http_stop(http);
        proj_reader_stop(&p);
        keel_log(KEEL_LOG_INFO, "projector", "msg=stopped signal=%d", sig);
        proj_destroy(&p);
        keel__app_destroy(&app);
        return KEEL_EXIT_OK;
}

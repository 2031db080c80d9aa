/*
 * app.h: command-line plumbing shared by keel's programs (keel,
 * keel-orchestrator, keel-projector): the common options, configuration
 * from file, environment and flags, logging set-up and shutdown signals.
 */
#ifndef KEEL_APP_H
#define KEEL_APP_H

#include "keel/config.h"
#include "keel/workflow.h"

#include <getopt.h>
#include <signal.h>

/* Exit codes of every keel program (docs/cli.md). */
enum {
        KEEL_EXIT_OK = 0,
        KEEL_EXIT_FAILURE = 1,     /* the operation failed */
        KEEL_EXIT_USAGE = 2,       /* bad flags or configuration */
        KEEL_EXIT_UNAVAILABLE = 3, /* no broker reachable / unsupported */
};

/* The common options, for getopt_long tables: --config, --bootstrap,
 * -X key=value, --log-level, --help, --version. */
#define KEEL_APP_COMMON_SHORT  "X:hV"
#define KEEL_APP_OPT_CONFIG    1000
#define KEEL_APP_OPT_BOOTSTRAP 1001
#define KEEL_APP_OPT_LOG_LEVEL 1002
#define KEEL_APP_COMMON_LONG                                                   \
        {"config", required_argument, NULL, KEEL_APP_OPT_CONFIG},              \
            {"bootstrap", required_argument, NULL, KEEL_APP_OPT_BOOTSTRAP},    \
            {"log-level", required_argument, NULL, KEEL_APP_OPT_LOG_LEVEL},    \
            {"help", no_argument, NULL, 'h'},                                  \
        {                                                                      \
                "version", no_argument, NULL, 'V'                              \
        }

#define KEEL_APP_COMMON_HELP                                                   \
        "  --config FILE       read settings from FILE (also KEEL_CONFIG)\n"   \
        "  --bootstrap HOSTS   Kafka bootstrap servers (also "                 \
        "KEEL_BOOTSTRAP)\n"                                                    \
        "  -X KEY=VALUE        any setting; kafka.* goes to librdkafka\n"      \
        "  --log-level LEVEL   debug, info, warn or error\n"                   \
        "  -h, --help          this help\n"                                    \
        "  -V, --version       print the version\n"

typedef struct keel_app_s {
        const char *prog;
        keel_config_t *cfg;
        /* Flags, kept in order and applied after file and environment. */
        char *flag_keys[64];
        char *flag_values[64];
        int nflags;
        const char *config_file;
} keel_app_t;

/* Initialise app for program `prog`. Returns 0 or exits on out of memory. */
void keel__app_init(keel_app_t *app, const char *prog);

/* Handle one common option from getopt_long. Returns 1 if it was one, 0 if
 * not; exits for --help (printing usage), --version and bad values. */
int keel__app_option(keel_app_t *app, int opt, const char *arg,
                     const char *usage);

/* Add a setting as if given with -X key=value. */
void keel__app_flag(keel_app_t *app, const char *key, const char *value);

/* Load file, environment and flags into app->cfg, validate, set up
 * logging. On error prints it and exits with KEEL_EXIT_USAGE. */
void keel__app_configure(keel_app_t *app);

/* For programs with only the common options: parse argv, then configure.
 * Returns optind (the first operand). Exits on bad usage. */
int keel__app_parse(keel_app_t *app, int argc, char **argv, const char *usage);

/* Check that keel's topics exist on the configured cluster, logging as
 * `component`. Returns KEEL_EXIT_OK with *partitions set, or the exit code
 * to return after logging why. */
int keel__app_check_cluster(keel_app_t *app, const char *component,
                            int32_t *partitions);

/* Free what app holds. */
void keel__app_destroy(keel_app_t *app);

/* Block SIGINT and SIGTERM in the calling thread (call before creating
 * threads so every thread inherits it). */
void keel__app_block_signals(void);

/* Wait up to timeout_ms (-1: forever) for SIGINT or SIGTERM. Returns the
 * signal number, or 0 on timeout. Signals must be blocked. */
int keel__app_wait_signal(int timeout_ms);

/*
 * Load the workflow modules of `list` (comma-separated paths of shared
 * libraries exporting int keel_module_init(keel_registry_t *)) into reg,
 * logging each as `component`. KEEL_OK, or KEEL_ERR_CONFIG with errstr
 * (KEEL_ERR_NOMEM). The program must export libkeel's symbols
 * (ENABLE_EXPORTS) for the modules to find them.
 */
int keel__app_load_modules(keel_registry_t *reg, const char *list,
                           const char *component, char *errstr,
                           size_t errstr_size);

/* Append Prometheus text to buf (size bytes, *len used so far). */
typedef void (*keel_app_metrics_fn)(void *opaque, char *buf, size_t size,
                                    size_t *len);

/* Serve /metrics (render's text) and /healthz on addr ("IPv4:port", port
 * 0: any), logging as `component`; the bound port goes to *port. A handle
 * for keel__app_metrics_stop(), or NULL (logged). */
void *keel__app_metrics_start(const char *addr, const char *component,
                              keel_app_metrics_fn render, void *opaque,
                              int *port);
void keel__app_metrics_stop(void *handle);

/* An ingress (ingress_int.h) for the routes file routes_path, running on
 * its own thread; NULL with errstr if the routes are wrong or the cluster
 * lacks keel's topics. Logs as `component`. */
typedef struct keel_app_ingress_s keel_app_ingress_t;
keel_app_ingress_t *keel__app_ingress_start(const keel_config_t *cfg,
                                            const char *routes_path,
                                            const char *component, char *errstr,
                                            size_t errsize);
/* The ingress, for its metrics; NULL for a NULL handle. */
struct keel__ingress_s *keel__app_ingress_get(keel_app_ingress_t *h);
/* Stop it (its last transaction ends first) and free it; KEEL_OK, or the
 * error that ended it. Accepts NULL. */
int keel__app_ingress_stop(keel_app_ingress_t *h);

/* Write port to the file path (for tests and scripts that start keel on
 * port 0); nothing if path is NULL. 0, or -1 if it cannot be written. */
int keel__app_write_port(const char *path, int port);

#endif

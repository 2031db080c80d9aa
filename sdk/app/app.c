/*
 * app.c: command-line plumbing shared by keel's programs (app.h).
 */
#include "app.h"

#include "keel/error.h"
#include "keel/log.h"
#include "keel/topics.h"
#include "keel/version.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void keel__app_init(keel_app_t *app, const char *prog)
{
        memset(app, 0, sizeof(*app));
        app->prog = prog;
        app->cfg = keel_config_new();
        if (!app->cfg) {
                fprintf(stderr, "%s: out of memory\n", prog);
                exit(KEEL_EXIT_FAILURE);
        }
}

void keel__app_flag(keel_app_t *app, const char *key, const char *value)
{
        if (app->nflags ==
            (int)(sizeof(app->flag_keys) / sizeof(app->flag_keys[0]))) {
                fprintf(stderr, "%s: too many settings on the command line\n",
                        app->prog);
                exit(KEEL_EXIT_USAGE);
        }
        app->flag_keys[app->nflags] = strdup(key);
        app->flag_values[app->nflags] = strdup(value);
        app->nflags++;
}

int keel__app_option(keel_app_t *app, int opt, const char *arg,
                     const char *usage)
{
        switch (opt) {
        case KEEL_APP_OPT_CONFIG:
                app->config_file = arg;
                return 1;
        case KEEL_APP_OPT_BOOTSTRAP:
                keel__app_flag(app, "bootstrap", arg);
                return 1;
        case KEEL_APP_OPT_LOG_LEVEL:
                keel__app_flag(app, "log.level", arg);
                return 1;
        case 'X': {
                const char *eq = strchr(arg, '=');
                char key[256];
                if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(key)) {
                        fprintf(stderr, "%s: -X takes KEY=VALUE, got '%s'\n",
                                app->prog, arg);
                        exit(KEEL_EXIT_USAGE);
                }
                memcpy(key, arg, (size_t)(eq - arg));
                key[eq - arg] = '\0';
                keel__app_flag(app, key, eq + 1);
                return 1;
        }
        case 'h':
                fputs(usage, stdout);
                keel__app_destroy(app);
                exit(KEEL_EXIT_OK);
        case 'V':
                printf("%s %s\n", app->prog, keel_version());
                keel__app_destroy(app);
                exit(KEEL_EXIT_OK);
        default:
                return 0;
        }
}

void keel__app_configure(keel_app_t *app)
{
        char err[1024];
        int rc = KEEL_OK;

        if (app->config_file)
                rc = keel_config_load_file(app->cfg, app->config_file, err,
                                           sizeof(err));
        if (!rc)
                rc = keel_config_load_env(app->cfg, err, sizeof(err));
        for (int i = 0; !rc && i < app->nflags; i++) {
                char origin[300];
                snprintf(origin, sizeof(origin), "flag %s", app->flag_keys[i]);
                rc = keel_config_set(app->cfg, app->flag_keys[i],
                                     app->flag_values[i], origin, err,
                                     sizeof(err));
        }
        if (!rc)
                rc = keel_config_validate(app->cfg, err, sizeof(err));
        if (rc) {
                fprintf(stderr, "%s: %s\n", app->prog, err);
                keel__app_destroy(app);
                exit(KEEL_EXIT_USAGE);
        }
        keel_log_set_level(
            keel_log_level_parse(keel_config_get(app->cfg, "log.level")));
        keel_log_set_json(
            !strcmp(keel_config_get(app->cfg, "log.format"), "json"));
}

void keel__app_destroy(keel_app_t *app)
{
        for (int i = 0; i < app->nflags; i++) {
                free(app->flag_keys[i]);
                free(app->flag_values[i]);
        }
        app->nflags = 0;
        keel_config_destroy(app->cfg);
        app->cfg = NULL;
}

void keel__app_block_signals(void)
{
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int keel__app_wait_signal(int timeout_ms)
{
        sigset_t set;
        int sig;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        if (timeout_ms < 0) {
                while (sigwait(&set, &sig))
                        ;
                return sig;
        }
        struct timespec ts = {timeout_ms / 1000,
                              (long)(timeout_ms % 1000) * 1000000L};
        sig = sigtimedwait(&set, NULL, &ts);
        return sig < 0 ? 0 : sig;
}

int keel__app_parse(keel_app_t *app, int argc, char **argv, const char *usage)
{
        static const struct option opts[] = {KEEL_APP_COMMON_LONG,
                                             {NULL, 0, NULL, 0}};
        int opt;

        while ((opt = getopt_long(argc, argv, KEEL_APP_COMMON_SHORT, opts,
                                  NULL)) != -1) {
                if (!keel__app_option(app, opt, optarg, usage)) {
                        fputs(usage, stderr);
                        keel__app_destroy(app);
                        exit(KEEL_EXIT_USAGE);
                }
        }
        keel__app_configure(app);
        return optind;
}

int keel__app_check_cluster(keel_app_t *app, const char *component,
                            int32_t *partitions)
{
        char err[1024];
        int rc = keel_topics_check(app->cfg, partitions, err, sizeof(err));
        if (!rc)
                return KEEL_EXIT_OK;
        keel_log(KEEL_LOG_ERROR, component,
                 "msg=\"cannot start\" error=%s detail=\"%s\"",
                 keel_err_name(rc), err);
        return rc == KEEL_ERR_TRANSPORT || rc == KEEL_ERR_TIMEOUT
                   ? KEEL_EXIT_UNAVAILABLE
                   : KEEL_EXIT_FAILURE;
}

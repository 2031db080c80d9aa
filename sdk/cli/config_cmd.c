/*
 * config_cmd.c: `keel config show|check`: the effective configuration and
 * where each value came from.
 */
#include "cli.h"

#include "app.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: keel config show [OPTIONS]   print every setting and its origin\n"
    "       keel config check [OPTIONS]  validate, print nothing on "
    "success\n" KEEL_APP_COMMON_HELP;

/* Keys whose values are secrets: shown as set, never printed. */
static int secret(const char *key)
{
        static const char *const words[] = {
            "password",           "secret", "token", "key.pem",
            "oauthbearer.config", "jaas"};
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                if (strstr(key, words[i]))
                        return 1;
        return 0;
}

static void show(const char *key, const char *value, const char *origin,
                 void *opaque)
{
        (void)opaque;
        if (secret(key) && *value)
                printf("%s = ********    # %s (secret, not shown)\n", key,
                       origin);
        else
                printf("%s = %s    # %s\n", key, value, origin);
}

int keel_cli_config(int argc, char **argv)
{
        keel_app_t app;
        int first;

        keel__app_init(&app, "keel config");
        first = keel__app_parse(&app, argc, argv, usage);
        if (first >= argc ||
            (strcmp(argv[first], "show") && strcmp(argv[first], "check"))) {
                fputs(usage, stderr);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        if (!strcmp(argv[first], "show"))
                keel_config_foreach(app.cfg, show, NULL);
        keel__app_destroy(&app);
        return KEEL_EXIT_OK;
}

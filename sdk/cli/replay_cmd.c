/*
 * replay_cmd.c: `keel replay`: replay recorded workflow histories against
 * the workflow code of modules (keel/replay.h), and say where the code no
 * longer reproduces them. Exit 0 when every history replays, 1 when one
 * does not (or cannot be read), 2 for usage.
 */
#include "cli.h"

#include "app.h"
#include "keel/error.h"
#include "keel/replay.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "Usage: keel replay --workflows MODULE[,MODULE] [--json] HISTORY...\n"
    "Replay recorded workflow histories (files written by 'keel workflow\n"
    "history --json' or the projector's /api/v1/workflows/{id}/history;\n"
    "'-' reads standard input) against the workflow code of the modules,\n"
    "as the orchestrator would after a deploy. Reports the first event a\n"
    "history has that the code no longer issues.\n\n"
    "  --workflows LIST    workflow modules (.so), comma-separated; also\n"
    "                      the 'workflows' setting\n"
    "  --json              one JSON object per history instead of "
    "text\n" KEEL_APP_COMMON_HELP
    "\nExit codes: 0 every history replays, 1 one does not or cannot be\n"
    "read, 2 usage.\n";

static void report(const char *path, int rc, const keel_replay_report_t *r,
                   int as_json)
{
        if (as_json) {
                json_t *o = json_pack(
                    "{ss ss ss ss sI ss sI ss ss ss}", "file", path, "result",
                    rc == KEEL_OK                   ? "ok"
                    : rc == KEEL_ERR_NONDETERMINISM ? "nondeterministic"
                                                    : "error",
                    "workflow_id", r->workflow_id, "type", r->type, "events",
                    (json_int_t)r->events, "run_id", r->run_id, "event_seq",
                    (json_int_t)r->event_seq, "expected", r->expected, "actual",
                    r->actual, "message", r->message);
                char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
                if (s)
                        puts(s);
                free(s);
                json_decref(o);
                return;
        }
        if (rc == KEEL_OK)
                printf("ok       %s: %s (%s), %zu events\n", path,
                       r->workflow_id, r->type, r->events);
        else if (rc == KEEL_ERR_NONDETERMINISM)
                printf("MISMATCH %s: %s (%s): event %lld: history has %s, "
                       "the code issued %s\n",
                       path, r->workflow_id, r->type, (long long)r->event_seq,
                       r->expected, r->actual);
        else
                printf("ERROR    %s: %s\n", path, r->message);
}

int keel_cli_replay(int argc, char **argv)
{
        static const struct option opts[] = {
            {"workflows", required_argument, NULL, 'w'},
            {"json", no_argument, NULL, 'j'},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        keel_app_t app;
        keel_registry_t *reg;
        char err[1024], mods[4096] = "";
        const char *cfg_mods;
        int opt, as_json = 0, bad = 0, ok = 0;

        keel__app_init(&app, "keel replay");
        while ((opt = getopt_long(argc, argv, KEEL_APP_COMMON_SHORT, opts,
                                  NULL)) != -1) {
                if (keel__app_option(&app, opt, optarg, usage))
                        continue;
                if (opt == 'w') {
                        size_t l = strlen(mods);
                        snprintf(mods + l, sizeof(mods) - l, "%s%s",
                                 l ? "," : "", optarg);
                } else if (opt == 'j') {
                        as_json = 1;
                } else {
                        fputs(usage, stderr);
                        keel__app_destroy(&app);
                        return KEEL_EXIT_USAGE;
                }
        }
        keel__app_configure(&app);
        cfg_mods = keel_config_get(app.cfg, "workflows");
        if (cfg_mods && *cfg_mods) {
                size_t l = strlen(mods);
                snprintf(mods + l, sizeof(mods) - l, "%s%s", l ? "," : "",
                         cfg_mods);
        }
        if (!*mods || optind >= argc) {
                fprintf(stderr, "keel replay: %s\n\n%s",
                        !*mods ? "no workflow module (--workflows)"
                               : "no history file",
                        usage);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        reg = keel_registry_new();
        if (!reg ||
            keel__app_load_modules(reg, mods, "replay", err, sizeof(err))) {
                fprintf(stderr, "keel replay: %s\n",
                        reg ? err : "out of memory");
                keel_registry_destroy(reg);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        for (int i = optind; i < argc; i++) {
                keel_replay_report_t r;
                int rc = keel_replay_file(reg, argv[i], &r);
                report(argv[i], rc, &r, as_json);
                if (rc)
                        bad++;
                else
                        ok++;
        }
        if (!as_json)
                printf("%d replayed, %d did not\n", ok, bad);
        keel_registry_destroy(reg);
        keel__app_destroy(&app);
        return bad ? KEEL_EXIT_FAILURE : KEEL_EXIT_OK;
}

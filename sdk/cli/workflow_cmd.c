/*
 * workflow_cmd.c: `keel workflow start|signal|cancel|terminate`, the
 * workflow client (keel/client.h) from the shell. Each verb writes one
 * command to keel.inbox and, unless --wait 0, waits for the orchestrator's
 * answer, so a script learns whether the run started (and its run ID) or
 * why the command was refused, with keel's exit codes.
 */
#include "cli.h"

#include "app.h"
#include "keel/client.h"
#include "keel/error.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_CODES_HELP                                                        \
        "\nExit codes: 0 done; 1 refused by the orchestrator, or sent but "    \
        "no\n"                                                                 \
        "outcome seen within --wait (is an orchestrator running?), or "        \
        "failed;\n"                                                            \
        "2 bad usage: a missing option, JSON that does not parse, an "         \
        "invalid\n"                                                            \
        "ID or policy (also when the orchestrator refuses the command as\n"    \
        "invalid); 3 no broker reachable.\n"

#define WAIT_HELP                                                              \
        "  --wait SECONDS      wait this long for the orchestrator's answer\n" \
        "                      (default 10; 0: return once the command is\n"   \
        "                      written)\n"

static const char usage_all[] =
    "Usage: keel workflow start --id ID --type TYPE [OPTIONS]\n"
    "       keel workflow signal --id ID --name NAME [OPTIONS]\n"
    "       keel workflow cancel --id ID [OPTIONS]\n"
    "       keel workflow terminate --id ID [OPTIONS]\n"
    "       keel workflow result --id ID [--wait SECONDS]\n"
    "Send a command to a workflow through keel.inbox and wait for the\n"
    "orchestrator's answer. Run 'keel workflow VERB --help' for a verb's\n"
    "options.\n" EXIT_CODES_HELP;

static const char usage_start[] =
    "Usage: keel workflow start --id ID --type TYPE [OPTIONS]\n"
    "Start a run of workflow ID. Prints 'started ID run RUN' once the\n"
    "orchestrator started it, or 'sent start ID command CMD' with --wait 0.\n\n"
    "  --id ID             workflow ID (1-1000 bytes, not starting with '!')\n"
    "  --type TYPE         registered workflow type\n"
    "  --input JSON        input, as JSON text: '{\"amount\":12}', "
    "'\"text\"',\n"
    "                      '42' (default: null); JSON that does not parse is\n"
    "                      a usage error (exit 2)\n"
    "  --reuse-policy P    ALLOW_DUPLICATE (default),\n"
    "                      ALLOW_DUPLICATE_FAILED_ONLY or REJECT_DUPLICATE:\n"
    "                      may the ID of a closed workflow be reused\n"
    "  --conflict-policy P FAIL (default) or USE_EXISTING: what to do while\n"
    "                      a run with the ID is open\n"
    "  --signal NAME       signal-with-start: deliver signal NAME with it\n"
    "  --signal-input JSON that signal's payload (JSON text)\n"
    "  --execution-timeout SECONDS   timeout over all runs (default: none)\n"
    "  --run-timeout SECONDS         timeout of one run (default: none)\n"
    "  --command-id ID     the command's ID (default: a new UUID); give the\n"
    "                      same one to retry without starting twice\n" WAIT_HELP
        KEEL_APP_COMMON_HELP EXIT_CODES_HELP;

static const char usage_signal[] =
    "Usage: keel workflow signal --id ID --name NAME [OPTIONS]\n"
    "Send signal NAME to the current run of workflow ID (or --run RUN).\n\n"
    "  --id ID             workflow ID\n"
    "  --name NAME         signal name\n"
    "  --input JSON        payload, as JSON text (default: null); JSON that\n"
    "                      does not parse is a usage error (exit 2)\n"
    "  --run RUN           target run (default: the current one)\n" WAIT_HELP
        KEEL_APP_COMMON_HELP EXIT_CODES_HELP;

static const char usage_cancel[] =
    "Usage: keel workflow cancel --id ID [OPTIONS]\n"
    "Ask the current run of workflow ID (or --run RUN) to cancel; its code\n"
    "sees the request and may clean up first.\n\n"
    "  --id ID             workflow ID\n"
    "  --reason TEXT       why (recorded in its history)\n"
    "  --run RUN           target run (default: the current one)\n" WAIT_HELP
        KEEL_APP_COMMON_HELP EXIT_CODES_HELP;

static const char usage_terminate[] =
    "Usage: keel workflow terminate --id ID [OPTIONS]\n"
    "End the current run of workflow ID (or --run RUN) at once, without\n"
    "running its code.\n\n"
    "  --id ID             workflow ID\n"
    "  --reason TEXT       why (recorded in its history)\n"
    "  --details JSON      details, as JSON text (default: null)\n"
    "  --run RUN           target run (default: the current one)\n" WAIT_HELP
        KEEL_APP_COMMON_HELP EXIT_CODES_HELP;

static const char usage_result[] =
    "Usage: keel workflow result --id ID [OPTIONS]\n"
    "Print the latest run of workflow ID as one JSON line: workflow_id,\n"
    "run_id, status (running, blocked, completed, failed, cancelled,\n"
    "terminated, continued), result (or failure) and events. Reads the\n"
    "workflow's partition of keel.history.\n\n"
    "  --id ID             workflow ID\n"
    "  --wait SECONDS      wait this long for the run to close (default "
    "0)\n" KEEL_APP_COMMON_HELP
    "\nExit codes: 0 closed; 1 still open after --wait, or no such\n"
    "workflow; 2 bad usage; 3 no broker reachable.\n";

enum {
        OPT_ID = 2000,
        OPT_TYPE,
        OPT_INPUT,
        OPT_REUSE,
        OPT_CONFLICT,
        OPT_SIGNAL,
        OPT_SIGNAL_INPUT,
        OPT_EXEC_TIMEOUT,
        OPT_RUN_TIMEOUT,
        OPT_COMMAND_ID,
        OPT_WAIT,
        OPT_NAME,
        OPT_RUN,
        OPT_REASON,
        OPT_DETAILS,
};

/* What the flags said. */
typedef struct args_s {
        const char *id, *type, *input, *reuse, *conflict, *signal;
        const char *signal_input, *command_id, *name, *run, *reason;
        const char *details;
        int64_t exec_timeout_ms, run_timeout_ms;
        int wait_ms;
} args_t;

typedef struct verb_s {
        const char *name;
        const char *usage;
        const int *opts; /* the verb's own options, 0-terminated */
} verb_t;

static const int start_opts[] = {
    OPT_ID,          OPT_TYPE,       OPT_INPUT,        OPT_REUSE,
    OPT_CONFLICT,    OPT_SIGNAL,     OPT_SIGNAL_INPUT, OPT_EXEC_TIMEOUT,
    OPT_RUN_TIMEOUT, OPT_COMMAND_ID, OPT_WAIT,         0};
static const int signal_opts[] = {OPT_ID,  OPT_NAME, OPT_INPUT,
                                  OPT_RUN, OPT_WAIT, 0};
static const int cancel_opts[] = {OPT_ID, OPT_REASON, OPT_RUN, OPT_WAIT, 0};
static const int terminate_opts[] = {OPT_ID,  OPT_REASON, OPT_DETAILS,
                                     OPT_RUN, OPT_WAIT,   0};

static const int result_opts[] = {OPT_ID, OPT_WAIT, 0};

static const verb_t verbs[] = {
    {"result", usage_result, result_opts},
    {"start", usage_start, start_opts},
    {"signal", usage_signal, signal_opts},
    {"cancel", usage_cancel, cancel_opts},
    {"terminate", usage_terminate, terminate_opts},
};

static int usage_error(keel_app_t *app, const verb_t *v, const char *msg,
                       const char *arg)
{
        if (msg)
                fprintf(stderr, "keel workflow %s: %s%s\n\n", v->name, msg,
                        arg ? arg : "");
        fputs(v->usage, stderr);
        keel__app_destroy(app);
        return KEEL_EXIT_USAGE;
}

/* Seconds (a decimal number, 0 to a day) as milliseconds; -1 if bad. */
static int64_t seconds_ms(const char *s)
{
        char *end;
        double v = strtod(s, &end);

        if (end == s || *end || !isfinite(v) || v < 0 || v > 86400)
                return -1;
        return (int64_t)llround(v * 1000);
}

/* Parse flag `name`'s JSON text into *out (a new reference). */
static int parse_json(const verb_t *v, const char *name, const char *text,
                      json_t **out)
{
        json_error_t jerr;

        *out = NULL;
        if (!text)
                return 0;
        *out = json_loads(text, JSON_DECODE_ANY, &jerr);
        if (!*out) {
                fprintf(stderr,
                        "keel workflow %s: %s is not valid JSON: %s (at "
                        "character %d); quote strings: %s '\"text\"'\n",
                        v->name, name, jerr.text, jerr.position, name);
                return -1;
        }
        return 0;
}

static int exit_code(int rc)
{
        switch (rc) {
        case KEEL_OK:
                return KEEL_EXIT_OK;
        case KEEL_ERR_INVALID_ARG:
        case KEEL_ERR_CONFIG:
                return KEEL_EXIT_USAGE;
        case KEEL_ERR_TRANSPORT:
        case KEEL_ERR_UNSUPPORTED:
                return KEEL_EXIT_UNAVAILABLE;
        default:
                return KEEL_EXIT_FAILURE;
        }
}

/* Send the command; payload: --input, signal_payload: --signal-input,
 * details: --details (all borrowed, NULL when not given). */
static int run(keel_client_t *c, const verb_t *v, const args_t *a,
               const json_t *payload, const json_t *signal_payload,
               const json_t *details, char *err, size_t errsize)
{
        char run_id[KEEL_UUID_SIZE] = "", command_id[KEEL_UUID_SIZE];
        int rc;

        if (!strcmp(v->name, "result")) {
                keel_client_run_t r;
                json_t *j;
                char *line;
                rc = keel_client_result(c, a->id, a->wait_ms, &r, err, errsize);
                if (rc && rc != KEEL_ERR_TIMEOUT)
                        return rc;
                j = json_pack("{ss ss ss sO sI}", "workflow_id", a->id,
                              "run_id", r.run_id, "status", r.status, "result",
                              r.result ? r.result : json_null(), "events",
                              (json_int_t)r.events);
                line = j ? json_dumps(j, JSON_COMPACT) : NULL;
                if (line)
                        printf("%s\n", line);
                free(line);
                json_decref(j);
                json_decref(r.result);
                return rc;
        }
        if (!strcmp(v->name, "start")) {
                keel_start_options_t o = {0};
                if (!a->command_id) {
                        rc = keel_client_command_id(command_id);
                        if (rc) {
                                snprintf(err, errsize,
                                         "no randomness for a command ID");
                                return rc;
                        }
                }
                o.command_id = a->command_id ? a->command_id : command_id;
                o.id_reuse_policy = a->reuse;
                o.id_conflict_policy = a->conflict;
                o.signal_name = a->signal;
                o.signal_payload = signal_payload;
                o.execution_timeout_ms = a->exec_timeout_ms;
                o.run_timeout_ms = a->run_timeout_ms;
                o.wait_ms = a->wait_ms;
                rc = keel_client_start(c, a->id, a->type, payload, &o, run_id,
                                       err, errsize);
                if (!rc && a->wait_ms)
                        printf("started %s run %s\n", a->id, run_id);
                else if (!rc)
                        printf("sent start %s command %s\n", a->id,
                               o.command_id);
        } else if (!strcmp(v->name, "signal")) {
                rc = keel_client_signal(c, a->id, a->run, a->name, payload,
                                        a->wait_ms, err, errsize);
                if (!rc)
                        printf("%s signal %s to %s\n",
                               a->wait_ms ? "delivered" : "sent", a->name,
                               a->id);
        } else if (!strcmp(v->name, "cancel")) {
                rc = keel_client_cancel(c, a->id, a->run, a->reason, a->wait_ms,
                                        err, errsize);
                if (!rc)
                        printf("%s %s\n",
                               a->wait_ms ? "cancel requested for"
                                          : "sent cancel to",
                               a->id);
        } else {
                rc = keel_client_terminate(c, a->id, a->run, a->reason, details,
                                           a->wait_ms, err, errsize);
                if (!rc)
                        printf("%s %s\n",
                               a->wait_ms ? "terminated" : "sent terminate to",
                               a->id);
        }
        return rc;
}

int keel_cli_workflow(int argc, char **argv)
{
        static const struct option opts[] = {
            {"id", required_argument, NULL, OPT_ID},
            {"type", required_argument, NULL, OPT_TYPE},
            {"input", required_argument, NULL, OPT_INPUT},
            {"reuse-policy", required_argument, NULL, OPT_REUSE},
            {"conflict-policy", required_argument, NULL, OPT_CONFLICT},
            {"signal", required_argument, NULL, OPT_SIGNAL},
            {"signal-input", required_argument, NULL, OPT_SIGNAL_INPUT},
            {"execution-timeout", required_argument, NULL, OPT_EXEC_TIMEOUT},
            {"run-timeout", required_argument, NULL, OPT_RUN_TIMEOUT},
            {"command-id", required_argument, NULL, OPT_COMMAND_ID},
            {"wait", required_argument, NULL, OPT_WAIT},
            {"name", required_argument, NULL, OPT_NAME},
            {"run", required_argument, NULL, OPT_RUN},
            {"reason", required_argument, NULL, OPT_REASON},
            {"details", required_argument, NULL, OPT_DETAILS},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        const verb_t *v = NULL;
        args_t a = {.wait_ms = 10000};
        keel_app_t app;
        keel_client_t *c;
        json_t *payload = NULL, *signal_payload = NULL, *details = NULL;
        char err[2048] = "";
        int opt, rc;

        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                fputs(usage_all, argc < 2 ? stderr : stdout);
                return argc < 2 ? KEEL_EXIT_USAGE : KEEL_EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                if (!strcmp(argv[1], verbs[i].name))
                        v = &verbs[i];
        if (!v) {
                fprintf(stderr, "keel workflow: unknown verb '%s'\n\n%s",
                        argv[1], usage_all);
                return KEEL_EXIT_USAGE;
        }
        if (!strcmp(v->name, "result"))
                a.wait_ms = 0; /* result answers at once by default */

        keel__app_init(&app, "keel workflow");
        argc--;
        argv++;
        while ((opt = getopt_long(argc, argv, KEEL_APP_COMMON_SHORT, opts,
                                  NULL)) != -1) {
                int own = 0;
                if (keel__app_option(&app, opt, optarg, v->usage))
                        continue;
                for (const int *o = v->opts; *o; o++)
                        own |= *o == opt;
                if (!own) {
                        const char *name = NULL;
                        for (const struct option *o = opts; o->name; o++)
                                if (o->val == opt)
                                        name = o->name;
                        return usage_error(
                            &app, v, name ? "option not valid here: --" : NULL,
                            name);
                }
                switch (opt) {
                case OPT_ID:
                        a.id = optarg;
                        break;
                case OPT_TYPE:
                        a.type = optarg;
                        break;
                case OPT_INPUT:
                        a.input = optarg;
                        break;
                case OPT_REUSE:
                        a.reuse = optarg;
                        break;
                case OPT_CONFLICT:
                        a.conflict = optarg;
                        break;
                case OPT_SIGNAL:
                        a.signal = optarg;
                        break;
                case OPT_SIGNAL_INPUT:
                        a.signal_input = optarg;
                        break;
                case OPT_COMMAND_ID:
                        a.command_id = optarg;
                        break;
                case OPT_NAME:
                        a.name = optarg;
                        break;
                case OPT_RUN:
                        a.run = optarg;
                        break;
                case OPT_REASON:
                        a.reason = optarg;
                        break;
                case OPT_DETAILS:
                        a.details = optarg;
                        break;
                case OPT_EXEC_TIMEOUT:
                case OPT_RUN_TIMEOUT:
                case OPT_WAIT: {
                        int64_t ms = seconds_ms(optarg);
                        if (ms < 0 || (opt != OPT_WAIT && ms == 0))
                                return usage_error(&app, v,
                                                   "not a number of seconds "
                                                   "(0 to 86400): ",
                                                   optarg);
                        if (opt == OPT_WAIT)
                                a.wait_ms = (int)ms;
                        else if (opt == OPT_EXEC_TIMEOUT)
                                a.exec_timeout_ms = ms;
                        else
                                a.run_timeout_ms = ms;
                        break;
                }
                }
        }
        if (optind < argc)
                return usage_error(&app, v,
                                   "unexpected argument: ", argv[optind]);
        if (!a.id)
                return usage_error(&app, v, "--id is required", NULL);
        if (v->opts == start_opts && !a.type)
                return usage_error(&app, v, "--type is required", NULL);
        if (v->opts == signal_opts && !a.name)
                return usage_error(&app, v, "--name is required", NULL);
        if (a.signal_input && !a.signal)
                return usage_error(&app, v, "--signal-input needs --signal",
                                   NULL);
        if (parse_json(v, "--input", a.input, &payload) ||
            parse_json(v, "--signal-input", a.signal_input, &signal_payload) ||
            parse_json(v, "--details", a.details, &details)) {
                json_decref(payload);
                json_decref(signal_payload);
                json_decref(details);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        keel__app_configure(&app);

        c = keel_client_new(app.cfg, err, sizeof(err));
        if (!c) {
                fprintf(stderr, "keel workflow %s: %s\n", v->name, err);
                rc = KEEL_ERR_CONFIG;
        } else {
                rc = run(c, v, &a, payload, signal_payload, details, err,
                         sizeof(err));
                if (rc)
                        fprintf(stderr, "keel workflow %s: %s: %s\n", v->name,
                                keel_err_name(rc), err);
                keel_client_destroy(c);
        }
        json_decref(payload);
        json_decref(signal_payload);
        json_decref(details);
        keel__app_destroy(&app);
        return exit_code(rc);
}

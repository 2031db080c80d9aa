/*
 * workflow_cmd.c: `keel workflow`, workflows from the shell. The writing
 * verbs (start, signal, cancel, terminate) are the workflow client
 * (keel/client.h): each writes one command to keel.inbox and, unless
 * --wait 0, waits for the orchestrator's answer, so a script learns whether
 * the run started (and its run ID) or why the command was refused, with
 * keel's exit codes. The reading verbs (list, describe, history, result)
 * ask keel-projector over HTTP (workflow_read.c); `result --direct` reads
 * keel.history itself, for when no projector runs.
 */
#include "cli.h"

#include "app.h"
#include "keel/client.h"
#include "keel/error.h"
#include "workflow_read.h"

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

#define PROJECTOR_HELP                                                         \
        "  --projector URL     keel-projector's address (the projector.url\n"  \
        "                      setting, also KEEL_PROJECTOR_URL; default\n"    \
        "                      http://127.0.0.1:8080); the http.token\n"       \
        "                      setting, when set, goes as a bearer token\n"

#define READ_EXIT_HELP                                                         \
        "\nExit codes: 0 done; 1 no such workflow, or the projector "          \
        "answered\n"                                                           \
        "with an error; 2 bad usage, or the projector refused the request "    \
        "as\n"                                                                 \
        "invalid (400) or unauthorised (401: set http.token); 3 the "          \
        "projector\n"                                                          \
        "cannot be reached, or is not ready within timeout.ms.\n"

static const char usage_all[] =
    "Usage: keel workflow start --id ID --type TYPE [OPTIONS]\n"
    "       keel workflow signal --id ID --name NAME [OPTIONS]\n"
    "       keel workflow cancel --id ID [OPTIONS]\n"
    "       keel workflow terminate --id ID [OPTIONS]\n"
    "       keel workflow list [--status S] [--type T] [--prefix P]\n"
    "                          [--search NAME=VALUE]... [--all]\n"
    "       keel workflow describe --id ID [--json]\n"
    "       keel workflow history --id ID [--json]\n"
    "       keel workflow result --id ID [--wait SECONDS] [--direct]\n"
    "start, signal, cancel and terminate send a command to a workflow\n"
    "through keel.inbox and wait for the orchestrator's answer; list,\n"
    "describe, history and result read keel-projector's HTTP API (the\n"
    "projector.url setting). Run 'keel workflow VERB --help' for a verb's\n"
    "options and exit codes.\n\n"
    "Exit codes: 0 done; 1 failed or refused; 2 bad usage; 3 no broker (or\n"
    "no projector) reachable.\n";

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
    "  --search-attributes JSON  initial search attributes, a JSON object:\n"
    "                      '{\"CustomerId\":\"c-42\",\"Priority\":2}'\n"
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

static const char usage_list[] =
    "Usage: keel workflow list [OPTIONS]\n"
    "List workflows (their latest runs) in workflow ID order, as\n"
    "keel-projector knows them: a table (WORKFLOW ID, TYPE, STATUS, "
    "STARTED,\n"
    "CLOSED, EVENTS), then how many workflows are in each status (over\n"
    "every filter but --status).\n\n"
    "  --status S          only workflows in status S: running, blocked,\n"
    "                      completed, failed, cancelled, terminated or\n"
    "                      continued\n"
    "  --type T            only workflows of type T\n"
    "  --prefix P          only workflow IDs starting with P\n"
    "  --search NAME=VALUE only workflows whose search attribute NAME has\n"
    "                      VALUE (a string's text, a number's or boolean's\n"
    "                      JSON text); repeat it and all must match\n"
    "  --limit N           workflows per page, 1 to 1000 (default 50)\n"
    "  --cursor ID         start after workflow ID (a page's next_cursor)\n"
    "  --all               follow the pages to the last one\n"
    "  --json              print the API's JSON: {\"workflows\",\n"
    "                      \"next_cursor\", \"counts\"}; with --all one "
    "object\n"
    "                      holding every page\n" PROJECTOR_HELP
        KEEL_APP_COMMON_HELP READ_EXIT_HELP;

static const char usage_describe[] =
    "Usage: keel workflow describe --id ID [OPTIONS]\n"
    "Show the latest run of workflow ID as keel-projector knows it: status,\n"
    "type, run, times, input, result or failure, the state it published,\n"
    "its search attributes, pending activities and timers, and the signals\n"
    "it received.\n\n"
    "  --id ID             workflow ID\n"
    "  --json              print the API's JSON\n" PROJECTOR_HELP
        KEEL_APP_COMMON_HELP READ_EXIT_HELP;

static const char usage_history[] =
    "Usage: keel workflow history --id ID [OPTIONS]\n"
    "Print the events of workflow ID's latest run in order, from\n"
    "keel-projector: a table (SEQ, TIME, TYPE, DETAILS), or with --json\n"
    "one object {\"workflow_id\", \"run_id\", \"events\": [{\"seq\", "
    "\"type\",\n"
    "\"record\"}, ...]} holding every page (what a replay reads).\n\n"
    "  --id ID             workflow ID\n"
    "  --json              print the events as JSON\n" PROJECTOR_HELP
        KEEL_APP_COMMON_HELP READ_EXIT_HELP;

static const char usage_result[] =
    "Usage: keel workflow result --id ID [OPTIONS]\n"
    "Show how workflow ID's latest run ended (or that it is still open),\n"
    "waiting up to --wait for it to close. Asks keel-projector, which\n"
    "holds the answer until the run closes; --direct reads the workflow's\n"
    "partition of keel.history instead, with no projector.\n\n"
    "  --id ID             workflow ID\n"
    "  --wait SECONDS      wait this long for the run to close (default 0)\n"
    "  --json              print the projector's JSON: {\"workflow_id\",\n"
    "                      \"run_id\", \"status\", \"closed\", \"result\",\n"
    "                      \"failure\", \"history_length\"}\n"
    "  --direct            read keel.history through the broker, and print\n"
    "                      one JSON line: workflow_id, run_id, status\n"
    "                      (running, blocked, completed, failed, cancelled,\n"
    "                      terminated, continued), result (or failure) and\n"
    "                      events\n" PROJECTOR_HELP KEEL_APP_COMMON_HELP
    "\nExit codes: 0 the run is closed (see its status: completed, failed,\n"
    "cancelled, terminated or continued); 1 still open after --wait, no "
    "such\n"
    "workflow, or the projector answered with an error; 2 bad usage, or "
    "the\n"
    "projector refused the request as invalid (400) or unauthorised (401:\n"
    "set http.token); 3 the projector cannot be reached or is not ready\n"
    "within timeout.ms (with --direct: no broker reachable).\n";

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
        OPT_STATUS,
        OPT_PREFIX,
        OPT_LIMIT,
        OPT_CURSOR,
        OPT_ALL,
        OPT_JSON,
        OPT_PROJECTOR,
        OPT_DIRECT,
        OPT_SEARCH,
        OPT_SEARCH_ATTRS,
};

/* What the flags said. */
typedef struct args_s {
        const char *id, *type, *input, *reuse, *conflict, *signal;
        const char *signal_input, *command_id, *name, *run, *reason;
        const char *details, *search_attrs;
        int64_t exec_timeout_ms, run_timeout_ms;
        int wait_ms;
        int direct;         /* result: read keel.history, not the projector */
        keel_cli_read_t rq; /* what the reading verbs read */
} args_t;

typedef struct verb_s {
        const char *name;
        const char *usage;
        const int *opts; /* the verb's own options, 0-terminated */
} verb_t;

static const int start_opts[] = {OPT_ID,
                                 OPT_TYPE,
                                 OPT_INPUT,
                                 OPT_SEARCH_ATTRS,
                                 OPT_REUSE,
                                 OPT_CONFLICT,
                                 OPT_SIGNAL,
                                 OPT_SIGNAL_INPUT,
                                 OPT_EXEC_TIMEOUT,
                                 OPT_RUN_TIMEOUT,
                                 OPT_COMMAND_ID,
                                 OPT_WAIT,
                                 0};
static const int signal_opts[] = {OPT_ID,  OPT_NAME, OPT_INPUT,
                                  OPT_RUN, OPT_WAIT, 0};
static const int cancel_opts[] = {OPT_ID, OPT_REASON, OPT_RUN, OPT_WAIT, 0};
static const int terminate_opts[] = {OPT_ID,  OPT_REASON, OPT_DETAILS,
                                     OPT_RUN, OPT_WAIT,   0};

static const int list_opts[] = {
    OPT_STATUS, OPT_TYPE, OPT_PREFIX, OPT_SEARCH,    OPT_LIMIT,
    OPT_CURSOR, OPT_ALL,  OPT_JSON,   OPT_PROJECTOR, 0};
static const int describe_opts[] = {OPT_ID, OPT_JSON, OPT_PROJECTOR, 0};
static const int history_opts[] = {OPT_ID, OPT_JSON, OPT_PROJECTOR, 0};
static const int result_opts[] = {OPT_ID,     OPT_WAIT,      OPT_JSON,
                                  OPT_DIRECT, OPT_PROJECTOR, 0};

static const verb_t verbs[] = {
    {"list", usage_list, list_opts},
    {"describe", usage_describe, describe_opts},
    {"history", usage_history, history_opts},
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

int64_t keel_cli_seconds_ms(const char *s)
{
        char *end;
        double v = strtod(s, &end);

        if (end == s || *end || !isfinite(v) || v < 0 || v > 86400)
                return -1;
        return (int64_t)llround(v * 1000);
}

int keel_cli_parse_json(const char *prog, const char *name, const char *text,
                        json_t **out)
{
        json_error_t jerr;

        *out = NULL;
        if (!text)
                return 0;
        *out = json_loads(text, JSON_DECODE_ANY, &jerr);
        if (!*out) {
                fprintf(stderr,
                        "%s: %s is not valid JSON: %s (at character %d); "
                        "quote strings: %s '\"text\"'\n",
                        prog, name, jerr.text, jerr.position, name);
                return -1;
        }
        return 0;
}

static int parse_json(const verb_t *v, const char *name, const char *text,
                      json_t **out)
{
        char prog[64];
        snprintf(prog, sizeof(prog), "keel workflow %s", v->name);
        return keel_cli_parse_json(prog, name, text, out);
}

int keel_cli_verb_option(const int *own, const struct option *opts, int opt,
                         const char **name)
{
        *name = NULL;
        for (const int *o = own; *o; o++)
                if (*o == opt)
                        return 1;
        for (const struct option *o = opts; o->name; o++)
                if (o->val == opt)
                        *name = o->name;
        return 0;
}

int keel_cli_exit_code(int rc)
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
 * details: --details, search_attrs: --search-attributes (all borrowed,
 * NULL when not given). */
static int run(keel_client_t *c, const verb_t *v, const args_t *a,
               const json_t *payload, const json_t *signal_payload,
               const json_t *details, const json_t *search_attrs, char *err,
               size_t errsize)
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
                o.search_attributes = search_attrs;
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
            {"status", required_argument, NULL, OPT_STATUS},
            {"prefix", required_argument, NULL, OPT_PREFIX},
            {"limit", required_argument, NULL, OPT_LIMIT},
            {"cursor", required_argument, NULL, OPT_CURSOR},
            {"all", no_argument, NULL, OPT_ALL},
            {"json", no_argument, NULL, OPT_JSON},
            {"projector", required_argument, NULL, OPT_PROJECTOR},
            {"direct", no_argument, NULL, OPT_DIRECT},
            {"search", required_argument, NULL, OPT_SEARCH},
            {"search-attributes", required_argument, NULL, OPT_SEARCH_ATTRS},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        const verb_t *v = NULL;
        args_t a = {.wait_ms = 10000};
        keel_app_t app;
        keel_client_t *c;
        json_t *payload = NULL, *signal_payload = NULL, *details = NULL;
        json_t *search_attrs = NULL;
        char err[2048] = "";
        int opt, rc, has_projector = 0;

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
                const char *name;
                if (keel__app_option(&app, opt, optarg, v->usage))
                        continue;
                if (!keel_cli_verb_option(v->opts, opts, opt, &name))
                        return usage_error(
                            &app, v, name ? "option not valid here: --" : NULL,
                            name);
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
                case OPT_SEARCH_ATTRS:
                        a.search_attrs = optarg;
                        break;
                case OPT_SEARCH:
                        if (a.rq.nsearch == KEEL_CLI_MAX_SEARCH)
                                return usage_error(
                                    &app, v, "too many --search options", NULL);
                        a.rq.search[a.rq.nsearch++] = optarg;
                        break;
                case OPT_STATUS:
                        a.rq.status = optarg;
                        break;
                case OPT_PREFIX:
                        a.rq.prefix = optarg;
                        break;
                case OPT_CURSOR:
                        a.rq.cursor = optarg;
                        break;
                case OPT_LIMIT: {
                        char *end;
                        long n = strtol(optarg, &end, 10);
                        if (end == optarg || *end || n < 1 || n > 1000)
                                return usage_error(&app, v,
                                                   "--limit takes 1 to 1000, "
                                                   "not ",
                                                   optarg);
                        a.rq.limit = (int)n;
                        break;
                }
                case OPT_ALL:
                        a.rq.all = 1;
                        break;
                case OPT_JSON:
                        a.rq.json = 1;
                        break;
                case OPT_DIRECT:
                        a.direct = 1;
                        break;
                case OPT_PROJECTOR:
                        keel__app_flag(&app, "projector.url", optarg);
                        has_projector = 1;
                        break;
                case OPT_EXEC_TIMEOUT:
                case OPT_RUN_TIMEOUT:
                case OPT_WAIT: {
                        int64_t ms = keel_cli_seconds_ms(optarg);
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
        if (!a.id && v->opts != list_opts)
                return usage_error(&app, v, "--id is required", NULL);
        if (a.direct && has_projector)
                return usage_error(&app, v,
                                   "--projector and --direct exclude each "
                                   "other",
                                   NULL);
        if (v->opts == list_opts || v->opts == describe_opts ||
            v->opts == history_opts || (v->opts == result_opts && !a.direct)) {
                a.rq.verb = v->name;
                a.rq.id = a.id;
                a.rq.type = a.type;
                a.rq.wait_ms = a.wait_ms;
                keel__app_configure(&app);
                rc = keel_cli_workflow_read(app.cfg, &a.rq);
                keel__app_destroy(&app);
                return rc;
        }
        if (v->opts == start_opts && !a.type)
                return usage_error(&app, v, "--type is required", NULL);
        if (v->opts == signal_opts && !a.name)
                return usage_error(&app, v, "--name is required", NULL);
        if (a.signal_input && !a.signal)
                return usage_error(&app, v, "--signal-input needs --signal",
                                   NULL);
        if (parse_json(v, "--input", a.input, &payload) ||
            parse_json(v, "--signal-input", a.signal_input, &signal_payload) ||
            parse_json(v, "--details", a.details, &details) ||
            parse_json(v, "--search-attributes", a.search_attrs,
                       &search_attrs)) {
                json_decref(payload);
                json_decref(signal_payload);
                json_decref(details);
                json_decref(search_attrs);
                keel__app_destroy(&app);
                return KEEL_EXIT_USAGE;
        }
        keel__app_configure(&app);

        c = keel_client_new(app.cfg, err, sizeof(err));
        if (!c) {
                fprintf(stderr, "keel workflow %s: %s\n", v->name, err);
                rc = KEEL_ERR_CONFIG;
        } else {
                rc = run(c, v, &a, payload, signal_payload, details,
                         search_attrs, err, sizeof(err));
                if (rc)
                        fprintf(stderr, "keel workflow %s: %s: %s\n", v->name,
                                keel_err_name(rc), err);
                keel_client_destroy(c);
        }
        json_decref(payload);
        json_decref(signal_payload);
        json_decref(details);
        json_decref(search_attrs);
        keel__app_destroy(&app);
        return keel_cli_exit_code(rc);
}

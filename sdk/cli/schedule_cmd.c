/*
 * schedule_cmd.c: `keel schedule`, recurring workflow starts from the
 * shell. A schedule is a workflow of the built-in type keel.schedule with
 * the ID schedule/<name> (schedule_int.h), so the writing verbs are the
 * workflow client's: create starts it (its input checked here by the rules
 * the workflow applies, so a bad cron expression is a usage error, not a
 * failed schedule), and pause, resume, trigger, update and delete are
 * signals to it. The reading verbs, list and describe, ask keel-projector
 * for the state the schedule publishes (workflow_read.h): nothing runs
 * workflow code to answer them.
 */
#include "cli.h"

#include "app.h"
#include "keel/client.h"
#include "keel/error.h"
#include "schedule_int.h"
#include "workflow_read.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_HELP                                                              \
        "  --wait SECONDS      wait this long for the orchestrator to "        \
        "record\n"                                                             \
        "                      it (default 10; 0: return once written)\n"

#define WRITE_EXIT_HELP                                                        \
        "\nExit codes: 0 done; 1 refused (create: the schedule exists; the\n"  \
        "others: no such schedule), or sent but no outcome seen within\n"      \
        "--wait (is an orchestrator running?); 2 bad usage: a missing "        \
        "option,\n"                                                            \
        "a bad name, cron expression, duration or JSON; 3 no broker\n"         \
        "reachable.\n"

#define READ_EXIT_HELP                                                         \
        "  --projector URL     keel-projector's address (the projector.url\n"  \
        "                      setting, also KEEL_PROJECTOR_URL)\n"            \
        "\nExit codes: 0 done; 1 no such schedule, or the projector "          \
        "answered\n"                                                           \
        "with an error; 2 bad usage; 3 the projector cannot be reached, or "   \
        "is\n"                                                                 \
        "not ready within timeout.ms.\n"

#define SPEC_HELP                                                              \
        "  --cron EXPR         when, as 5 cron fields in UTC: minute hour\n"   \
        "                      day-of-month month day-of-week ('*/5 * * * "    \
        "*',\n"                                                                \
        "                      '0 3 * * MON-FRI'), or @hourly, @daily,\n"      \
        "                      @weekly, @monthly, @yearly\n"                   \
        "  --every DURATION    or every DURATION from the epoch: 30s, 5m, "    \
        "1h,\n"                                                                \
        "                      1d, 1h30m (at least 1s)\n"                      \
        "  --offset DURATION   with --every: shifted by DURATION (--every "    \
        "1h\n"                                                                 \
        "                      --offset 15m: at a quarter past each hour)\n"

static const char usage_all[] =
    "Usage: keel schedule create --name NAME (--cron EXPR | --every "
    "DURATION)\n"
    "                            --type TYPE [OPTIONS]\n"
    "       keel schedule update --name NAME [--cron EXPR | --every "
    "DURATION]\n"
    "                            [--type TYPE] [--input JSON] [--overlap P]\n"
    "       keel schedule pause|resume --name NAME [--note TEXT]\n"
    "       keel schedule trigger|delete --name NAME\n"
    "       keel schedule list [--all] [--json]\n"
    "       keel schedule describe --name NAME [--json]\n"
    "A schedule starts a workflow at times given by a cron expression or an\n"
    "interval. It is the workflow schedule/NAME of the built-in type\n"
    "keel.schedule: create, update, pause, resume, trigger and delete write\n"
    "to keel.inbox; list and describe read keel-projector (projector.url).\n"
    "Run 'keel schedule VERB --help' for a verb's options and exit codes.\n\n"
    "Exit codes: 0 done; 1 failed or refused; 2 bad usage; 3 no broker (or\n"
    "no projector) reachable.\n";

static const char usage_create[] =
    "Usage: keel schedule create --name NAME (--cron EXPR | --every "
    "DURATION)\n"
    "                            --type TYPE [OPTIONS]\n"
    "Create schedule NAME: the workflow schedule/NAME, which starts workflow\n"
    "TYPE at every occurrence, with the ID NAME-<time as YYYYMMDDTHHMMSSZ>.\n"
    "Prints 'created schedule NAME run RUN'.\n\n"
    "  --name NAME         1-200 of A-Z a-z 0-9 . _ -\n" SPEC_HELP
    "  --type TYPE         the workflow type to start\n"
    "  --input JSON        its input, as JSON text (default: null)\n"
    "  --overlap P         when an occurrence comes while the last action\n"
    "                      runs: skip (default), buffer_one (start it once\n"
    "                      the running one closes, keeping one at most) or\n"
    "                      allow_all\n"
    "  --paused            create it paused\n"
    "  --note TEXT         a note shown with it\n" WAIT_HELP
        KEEL_APP_COMMON_HELP WRITE_EXIT_HELP;

static const char usage_update[] =
    "Usage: keel schedule update --name NAME [OPTIONS]\n"
    "Change schedule NAME: its times (counted from now), its action's type\n"
    "or input, its overlap policy or note; what is not given stays. The\n"
    "schedule checks the result and, if it refuses it, keeps what it had\n"
    "and shows why as last_error in 'keel schedule describe'.\n\n"
    "  --name NAME         the schedule\n" SPEC_HELP
    "  --type TYPE         the workflow type to start\n"
    "  --input JSON        its input, as JSON text\n"
    "  --overlap P         skip, buffer_one or allow_all\n"
    "  --note TEXT         a note shown with it\n" WAIT_HELP
        KEEL_APP_COMMON_HELP WRITE_EXIT_HELP;

static const char usage_pause[] =
    "Usage: keel schedule pause --name NAME [--note TEXT] [OPTIONS]\n"
    "Pause schedule NAME: no occurrence starts anything until it is\n"
    "resumed (a trigger still does).\n\n"
    "  --name NAME         the schedule\n"
    "  --note TEXT         why, shown with it\n" WAIT_HELP KEEL_APP_COMMON_HELP
        WRITE_EXIT_HELP;

static const char usage_resume[] =
    "Usage: keel schedule resume --name NAME [--note TEXT] [OPTIONS]\n"
    "Resume schedule NAME: its next occurrence after now starts its action;\n"
    "those that fell while it was paused do not.\n\n"
    "  --name NAME         the schedule\n"
    "  --note TEXT         a note shown with it\n" WAIT_HELP
        KEEL_APP_COMMON_HELP WRITE_EXIT_HELP;

static const char usage_trigger[] =
    "Usage: keel schedule trigger --name NAME [OPTIONS]\n"
    "Start schedule NAME's action now, as an occurrence (the overlap policy\n"
    "applies), with the ID NAME-<now>-trigger-<n>; paused or not.\n\n"
    "  --name NAME         the schedule\n" WAIT_HELP KEEL_APP_COMMON_HELP
        WRITE_EXIT_HELP;

static const char usage_delete[] =
    "Usage: keel schedule delete --name NAME [OPTIONS]\n"
    "Delete schedule NAME: its workflow completes; actions still running\n"
    "run on. The name may be created again.\n\n"
    "  --name NAME         the schedule\n" WAIT_HELP KEEL_APP_COMMON_HELP
        WRITE_EXIT_HELP;

static const char usage_list[] =
    "Usage: keel schedule list [OPTIONS]\n"
    "List schedules as keel-projector knows them: NAME, SPEC, OVERLAP,\n"
    "PAUSED, NEXT FIRE, FIRED, SKIPPED, STATUS.\n\n"
    "  --all               deleted and failed ones too (default: open ones)\n"
    "  --json              print {\"schedules\": [{\"name\", "
    "\"workflow_id\",\n"
    "                      \"status\", \"state\"}]}\n" READ_EXIT_HELP
        KEEL_APP_COMMON_HELP;

static const char usage_describe[] =
    "Usage: keel schedule describe --name NAME [OPTIONS]\n"
    "Show schedule NAME: its spec, action, policy, whether it is paused,\n"
    "its next and last occurrence, how many actions it started, skipped\n"
    "and missed, and those running.\n\n"
    "  --name NAME         the schedule\n"
    "  --json              print the projector's JSON of its "
    "workflow\n" READ_EXIT_HELP KEEL_APP_COMMON_HELP;

enum {
        OPT_NAME = 2000,
        OPT_CRON,
        OPT_EVERY,
        OPT_OFFSET,
        OPT_TYPE,
        OPT_INPUT,
        OPT_OVERLAP,
        OPT_PAUSED,
        OPT_NOTE,
        OPT_WAIT,
        OPT_ALL,
        OPT_JSON,
        OPT_PROJECTOR,
};

typedef struct verb_s {
        const char *name;
        const char *usage;
        const int *opts;    /* the verb's own options, 0-terminated */
        const char *signal; /* the signal it sends, or NULL */
        const char *done;   /* what it prints once done */
} verb_t;

static const int create_opts[] = {
    OPT_NAME,    OPT_CRON,   OPT_EVERY, OPT_OFFSET, OPT_TYPE, OPT_INPUT,
    OPT_OVERLAP, OPT_PAUSED, OPT_NOTE,  OPT_WAIT,   0};
static const int update_opts[] = {OPT_NAME, OPT_CRON,  OPT_EVERY,   OPT_OFFSET,
                                  OPT_TYPE, OPT_INPUT, OPT_OVERLAP, OPT_NOTE,
                                  OPT_WAIT, 0};
static const int note_opts[] = {OPT_NAME, OPT_NOTE, OPT_WAIT, 0};
static const int name_opts[] = {OPT_NAME, OPT_WAIT, 0};
static const int list_opts[] = {OPT_ALL, OPT_JSON, OPT_PROJECTOR, 0};
static const int describe_opts[] = {OPT_NAME, OPT_JSON, OPT_PROJECTOR, 0};

static const verb_t verbs[] = {
    {"create", usage_create, create_opts, NULL, "created"},
    {"update", usage_update, update_opts, "update", "updated"},
    {"pause", usage_pause, note_opts, "pause", "paused"},
    {"resume", usage_resume, note_opts, "resume", "resumed"},
    {"trigger", usage_trigger, name_opts, "trigger", "triggered"},
    {"delete", usage_delete, name_opts, "delete", "deleted"},
    {"list", usage_list, list_opts, NULL, NULL},
    {"describe", usage_describe, describe_opts, NULL, NULL},
};

/* What the flags said. */
typedef struct args_s {
        const char *name, *cron, *every, *offset, *type, *input, *overlap;
        const char *note;
        int paused, all, json;
        int wait_ms;
} args_t;

static char prog[64];

static int usage_error(keel_app_t *app, const verb_t *v, const char *msg,
                       const char *arg)
{
        if (msg)
                fprintf(stderr, "%s: %s%s\n\n", prog, msg, arg ? arg : "");
        fputs(v->usage, stderr);
        keel__app_destroy(app);
        return KEEL_EXIT_USAGE;
}

/* ---- writing: the input, the signals ----------------------------------- */

static int bad_duration(const char *flag, const char *value)
{
        fprintf(stderr,
                "%s: %s takes a duration such as 30s, 5m, 1h, 1d or 1h30m, "
                "not '%s'\n",
                prog, flag, value);
        return -1;
}

/* The spec of --cron / --every / --offset into *spec (NULL when none was
 * given). 0, or -1 after printing why. */
static int spec_of(const args_t *a, json_t **spec)
{
        int64_t every, offset = 0;
        *spec = NULL;
        if (a->cron && a->every) {
                fprintf(stderr, "%s: --cron and --every exclude each other\n",
                        prog);
                return -1;
        }
        if (a->offset && !a->every) {
                fprintf(stderr, "%s: --offset goes with --every\n", prog);
                return -1;
        }
        if (a->cron) {
                *spec = json_pack("{ss}", "cron", a->cron);
                return 0;
        }
        if (!a->every)
                return 0;
        if (keel__duration_parse(a->every, &every))
                return bad_duration("--every", a->every);
        if (a->offset && keel__duration_parse(a->offset, &offset))
                return bad_duration("--offset", a->offset);
        *spec = json_pack("{sI}", "interval_ms", (json_int_t)every);
        if (a->offset)
                json_object_set_new(*spec, "offset_ms", json_integer(offset));
        return 0;
}

/* The create input or the update payload the flags describe, checked as
 * far as it can be here: *out, or -1 after printing why. */
static int build(const verb_t *v, const args_t *a, json_t **out)
{
        json_t *spec, *input = NULL, *j = json_object(), *act = json_object();
        char err[600];
        int o = a->overlap ? keel__overlap_parse(a->overlap) : 0;

        *out = NULL;
        if (o < 0) {
                fprintf(stderr,
                        "%s: --overlap is skip, buffer_one or allow_all, not "
                        "'%s'\n",
                        prog, a->overlap);
                goto bad;
        }
        if (spec_of(a, &spec))
                goto bad;
        if (spec)
                json_object_set_new(j, "spec", spec);
        if (keel_cli_parse_json(prog, "--input", a->input, &input))
                goto bad;
        if (a->type)
                json_object_set_new(act, "workflow_type", json_string(a->type));
        if (input)
                json_object_set_new(act, "input", input);
        if (json_object_size(act))
                json_object_set(j, "action", act);
        if (a->overlap)
                json_object_set_new(
                    j, "overlap",
                    json_string(keel__overlap_name((keel__overlap_t)o)));
        if (a->note)
                json_object_set_new(j, "note", json_string(a->note));
        if (a->paused)
                json_object_set_new(j, "paused", json_true());
        if (!strcmp(v->name, "create")) {
                keel__schedule_t s;
                if (!spec) {
                        fprintf(stderr, "%s: --cron or --every is required\n",
                                prog);
                        goto bad;
                }
                if (!a->type) {
                        fprintf(stderr, "%s: --type is required\n", prog);
                        goto bad;
                }
                if (keel__schedule_parse(j, &s, err, sizeof(err))) {
                        fprintf(stderr, "%s: %s\n", prog, err);
                        goto bad;
                }
        } else {
                keel__sched_spec_t s;
                if (!json_object_size(j)) {
                        fprintf(stderr,
                                "%s: nothing to update: give --cron, "
                                "--every, --type, --input, --overlap or "
                                "--note\n",
                                prog);
                        goto bad;
                }
                if (spec &&
                    keel__sched_spec_parse(spec, &s, err, sizeof(err))) {
                        fprintf(stderr, "%s: %s\n", prog, err);
                        goto bad;
                }
        }
        json_decref(act);
        *out = j;
        return 0;
bad:
        json_decref(act);
        json_decref(j);
        return -1;
}

/* Send the verb's command to schedule a->name (workflow id). */
static int send_command(keel_client_t *c, const verb_t *v, const args_t *a,
                        const char *id, const json_t *payload, char *err,
                        size_t errsize)
{
        char run[KEEL_UUID_SIZE] = "", cmd[KEEL_UUID_SIZE];
        int rc;

        if (!v->signal) {
                keel_start_options_t o = {.command_id = cmd,
                                          .wait_ms = a->wait_ms};
                if (keel_client_command_id(cmd)) {
                        snprintf(err, errsize,
                                 "no randomness for a command "
                                 "ID");
                        return KEEL_ERR_IO;
                }
                rc = keel_client_start(c, id, KEEL__SCHEDULE_TYPE, payload, &o,
                                       run, err, errsize);
                if (!rc && a->wait_ms)
                        printf("created schedule %s run %s\n", a->name, run);
                else if (!rc)
                        printf("sent create of schedule %s command %s\n",
                               a->name, cmd);
                return rc;
        }
        rc = keel_client_signal(c, id, NULL, v->signal, payload, a->wait_ms,
                                err, errsize);
        if (!rc && a->wait_ms)
                printf("%s schedule %s\n", v->done, a->name);
        else if (!rc)
                printf("sent %s to schedule %s\n", v->signal, a->name);
        return rc;
}

/* ---- reading: the published state ------------------------------------- */

/* ms as a duration: "1h30m", "5s", "1500ms". */
static void duration_text(int64_t ms, char *buf, size_t size)
{
        static const struct {
                int64_t ms;
                const char *unit;
        } units[] = {{86400000, "d"},
                     {3600000, "h"},
                     {60000, "m"},
                     {1000, "s"},
                     {1, "ms"}};
        size_t len = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && ms > 0; i++)
                if (ms >= units[i].ms && len < size) {
                        len += (size_t)snprintf(buf + len, size - len, "%lld%s",
                                                (long long)(ms / units[i].ms),
                                                units[i].unit);
                        ms %= units[i].ms;
                }
        if (!len)
                snprintf(buf, size, "0s");
}

/* A spec as people read it: "cron 0 3 * * *", "every 1h offset 15m". */
static void spec_text(const json_t *spec, char *buf, size_t size)
{
        const char *cron = json_string_value(json_object_get(spec, "cron"));
        char every[64], off[64];
        if (cron) {
                snprintf(buf, size, "cron %s", cron);
                return;
        }
        if (!json_is_integer(json_object_get(spec, "interval_ms"))) {
                snprintf(buf, size, "-");
                return;
        }
        duration_text(json_integer_value(json_object_get(spec, "interval_ms")),
                      every, sizeof(every));
        duration_text(json_integer_value(json_object_get(spec, "offset_ms")),
                      off, sizeof(off));
        snprintf(
            buf, size, "every %s%s%s", every,
            json_integer_value(json_object_get(spec, "offset_ms")) ? " offset "
                                                                   : "",
            json_integer_value(json_object_get(spec, "offset_ms")) ? off : "");
}

static const char *name_of(const char *id)
{
        size_t n = strlen(KEEL__SCHEDULE_ID_PREFIX);
        return strncmp(id, KEEL__SCHEDULE_ID_PREFIX, n) ? id : id + n;
}

static int list(const keel_config_t *cfg, const args_t *a)
{
        static const char *const headers[] = {"NAME",    "SPEC",      "OVERLAP",
                                              "PAUSED",  "NEXT FIRE", "FIRED",
                                              "SKIPPED", "STATUS"};
        json_t *rows = json_array(), *out = json_array(), *page = NULL;
        char *cursor = NULL;
        int code;

        do {
                const char *kv[] = {"type",   KEEL__SCHEDULE_TYPE,
                                    "prefix", KEEL__SCHEDULE_ID_PREFIX,
                                    "limit",  "1000",
                                    "cursor", cursor};
                const json_t *wf;
                const char *next;
                size_t i;

                json_decref(page);
                code = keel_cli_projector_get(cfg, prog, NULL, kv, 8, &page);
                if (code)
                        break;
                json_array_foreach(json_object_get(page, "workflows"), i, wf)
                {
                        const char *id = json_string_value(
                            json_object_get(wf, "workflow_id"));
                        const char *st =
                            json_string_value(json_object_get(wf, "status"));
                        json_t *full = NULL, *state;
                        char spec[300], fired[32], skipped[32];
                        if (!id || !st ||
                            (!a->all && strcmp(st, "running") &&
                             strcmp(st, "blocked")))
                                continue;
                        code = keel_cli_projector_get(cfg, prog, id, NULL, 0,
                                                      &full);
                        if (code == KEEL_EXIT_FAILURE) {
                                code = KEEL_EXIT_OK; /* gone meanwhile */
                                continue;
                        }
                        if (code)
                                break;
                        state = json_object_get(full, "state");
                        spec_text(json_object_get(state, "spec"), spec,
                                  sizeof(spec));
                        snprintf(fired, sizeof(fired), "%lld",
                                 (long long)json_integer_value(
                                     json_object_get(state, "fired")));
                        snprintf(skipped, sizeof(skipped), "%lld",
                                 (long long)json_integer_value(
                                     json_object_get(state, "skipped")));
                        json_array_append_new(
                            out,
                            json_pack("{ss ss ss sO}", "name", name_of(id),
                                      "workflow_id", id, "status", st, "state",
                                      state ? state : json_null()));
                        {
                                char *nf = keel_cli_text_of(
                                    json_object_get(state, "next_fire_at"));
                                char *ov = keel_cli_text_of(
                                    json_object_get(state, "overlap"));
                                json_array_append_new(
                                    rows,
                                    json_pack("[ss ss ss ss]", name_of(id),
                                              spec, ov ? ov : "?",
                                              json_is_true(json_object_get(
                                                  state, "paused"))
                                                  ? "yes"
                                                  : "no",
                                              nf ? nf : "?", fired, skipped,
                                              st));
                                free(nf);
                                free(ov);
                        }
                        json_decref(full);
                }
                next = json_string_value(json_object_get(page, "next_cursor"));
                free(cursor);
                cursor = next ? strdup(next) : NULL;
        } while (!code && cursor);

        if (!code && a->json) {
                json_t *j = json_pack("{sO}", "schedules", out);
                char *s = json_dumps(j, JSON_COMPACT);
                puts(s ? s : "{}");
                free(s);
                json_decref(j);
        } else if (!code) {
                keel_cli_print_table(headers, 8, rows);
        }
        free(cursor);
        json_decref(page);
        json_decref(rows);
        json_decref(out);
        return code;
}

static int describe(const keel_config_t *cfg, const args_t *a, const char *id)
{
        json_t *wf;
        const json_t *st, *f, *r;
        const char *type;
        char spec[300];
        int code = keel_cli_projector_get(cfg, prog, id, NULL, 0, &wf);

        if (code)
                return code;
        type = json_string_value(json_object_get(wf, "type"));
        if (!type || strcmp(type, KEEL__SCHEDULE_TYPE)) {
                fprintf(stderr,
                        "%s: %s is a workflow of type %s, not a "
                        "schedule\n",
                        prog, id, type ? type : "?");
                json_decref(wf);
                return KEEL_EXIT_FAILURE;
        }
        if (a->json) {
                char *s = json_dumps(wf, JSON_COMPACT);
                puts(s ? s : "{}");
                free(s);
                json_decref(wf);
                return KEEL_EXIT_OK;
        }
        st = json_object_get(wf, "state");
        printf("%-19s %s\n", "Schedule", a->name);
        keel_cli_field("Workflow", json_object_get(wf, "workflow_id"));
        keel_cli_field("Run", json_object_get(wf, "run_id"));
        keel_cli_field("Status", json_object_get(wf, "status"));
        f = json_object_get(wf, "failure");
        if (json_is_object(f))
                printf("%-19s %s: %s\n", "Failure", keel_cli_str_of(f, "type"),
                       keel_cli_str_of(f, "message"));
        r = json_object_get(wf, "result");
        if (r && !json_is_null(r))
                keel_cli_field("Result", r);
        if (!json_is_object(st)) {
                json_decref(wf);
                return KEEL_EXIT_OK;
        }
        spec_text(json_object_get(st, "spec"), spec, sizeof(spec));
        printf("%-19s %s\n", "Spec", spec);
        {
                const json_t *act = json_object_get(st, "action");
                char *in = keel_cli_text_of(json_object_get(act, "input"));
                printf("%-19s %s %s\n", "Action",
                       keel_cli_str_of(act, "workflow_type"), in ? in : "?");
                free(in);
        }
        keel_cli_field("Overlap", json_object_get(st, "overlap"));
        printf("%-19s %s\n", "Paused",
               json_is_true(json_object_get(st, "paused")) ? "yes" : "no");
        keel_cli_field("Note", json_object_get(st, "note"));
        keel_cli_field("Next fire", json_object_get(st, "next_fire_at"));
        keel_cli_field("Last fired", json_object_get(st, "last_fired_at"));
        keel_cli_field("Last action", json_object_get(st, "last_action_id"));
        keel_cli_field("Last action status",
                       json_object_get(st, "last_action_status"));
        keel_cli_field("Fired", json_object_get(st, "fired"));
        keel_cli_field("Skipped", json_object_get(st, "skipped"));
        keel_cli_field("Missed", json_object_get(st, "missed"));
        keel_cli_field("Triggered", json_object_get(st, "triggered"));
        keel_cli_field("Running",
                       json_array_size(json_object_get(st, "running"))
                           ? json_object_get(st, "running")
                           : NULL);
        keel_cli_field("Buffered", json_object_get(st, "buffered"));
        if (json_object_get(st, "last_error"))
                keel_cli_field("Last error", json_object_get(st, "last_error"));
        json_decref(wf);
        return KEEL_EXIT_OK;
}

int keel_cli_schedule(int argc, char **argv)
{
        static const struct option opts[] = {
            {"name", required_argument, NULL, OPT_NAME},
            {"cron", required_argument, NULL, OPT_CRON},
            {"every", required_argument, NULL, OPT_EVERY},
            {"offset", required_argument, NULL, OPT_OFFSET},
            {"type", required_argument, NULL, OPT_TYPE},
            {"input", required_argument, NULL, OPT_INPUT},
            {"overlap", required_argument, NULL, OPT_OVERLAP},
            {"paused", no_argument, NULL, OPT_PAUSED},
            {"note", required_argument, NULL, OPT_NOTE},
            {"wait", required_argument, NULL, OPT_WAIT},
            {"all", no_argument, NULL, OPT_ALL},
            {"json", no_argument, NULL, OPT_JSON},
            {"projector", required_argument, NULL, OPT_PROJECTOR},
            KEEL_APP_COMMON_LONG,
            {NULL, 0, NULL, 0}};
        const verb_t *v = NULL;
        args_t a = {.wait_ms = 10000};
        keel_app_t app;
        keel_client_t *c;
        json_t *payload = NULL;
        char err[2048] = "", id[KEEL_WORKFLOW_ID_MAX + 1];
        int opt, rc;

        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                fputs(usage_all, argc < 2 ? stderr : stdout);
                return argc < 2 ? KEEL_EXIT_USAGE : KEEL_EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                if (!strcmp(argv[1], verbs[i].name))
                        v = &verbs[i];
        if (!v) {
                fprintf(stderr, "keel schedule: unknown verb '%s'\n\n%s",
                        argv[1], usage_all);
                return KEEL_EXIT_USAGE;
        }
        snprintf(prog, sizeof(prog), "keel schedule %s", v->name);
        keel__app_init(&app, prog);
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
                case OPT_NAME:
                        a.name = optarg;
                        break;
                case OPT_CRON:
                        a.cron = optarg;
                        break;
                case OPT_EVERY:
                        a.every = optarg;
                        break;
                case OPT_OFFSET:
                        a.offset = optarg;
                        break;
                case OPT_TYPE:
                        a.type = optarg;
                        break;
                case OPT_INPUT:
                        a.input = optarg;
                        break;
                case OPT_OVERLAP:
                        a.overlap = optarg;
                        break;
                case OPT_PAUSED:
                        a.paused = 1;
                        break;
                case OPT_NOTE:
                        a.note = optarg;
                        break;
                case OPT_ALL:
                        a.all = 1;
                        break;
                case OPT_JSON:
                        a.json = 1;
                        break;
                case OPT_PROJECTOR:
                        keel__app_flag(&app, "projector.url", optarg);
                        break;
                case OPT_WAIT: {
                        int64_t ms = keel_cli_seconds_ms(optarg);
                        if (ms < 0)
                                return usage_error(&app, v,
                                                   "not a number of seconds "
                                                   "(0 to 86400): ",
                                                   optarg);
                        a.wait_ms = (int)ms;
                        break;
                }
                }
        }
        if (optind < argc)
                return usage_error(&app, v,
                                   "unexpected argument: ", argv[optind]);
        if (v->opts != list_opts) {
                if (!a.name)
                        return usage_error(&app, v, "--name is required", NULL);
                if (keel__schedule_check_name(a.name, err, sizeof(err)))
                        return usage_error(&app, v, err, NULL);
                snprintf(id, sizeof(id), "%s%s", KEEL__SCHEDULE_ID_PREFIX,
                         a.name);
        }
        if (v->opts == list_opts || v->opts == describe_opts) {
                keel__app_configure(&app);
                rc = v->opts == list_opts ? list(app.cfg, &a)
                                          : describe(app.cfg, &a, id);
                keel__app_destroy(&app);
                return rc;
        }
        if (v->opts == create_opts || v->opts == update_opts) {
                if (build(v, &a, &payload)) {
                        keel__app_destroy(&app);
                        return KEEL_EXIT_USAGE;
                }
        } else if (a.note) {
                payload = json_pack("{ss}", "note", a.note);
        }
        keel__app_configure(&app);
        c = keel_client_new(app.cfg, err, sizeof(err));
        if (!c) {
                fprintf(stderr, "%s: %s\n", prog, err);
                rc = KEEL_ERR_CONFIG;
        } else {
                rc = send_command(c, v, &a, id, payload, err, sizeof(err));
                if (rc == KEEL_ERR_ALREADY_STARTED)
                        fprintf(stderr,
                                "%s: schedule %s exists (delete it first, or "
                                "use update): %s\n",
                                prog, a.name, err);
                else if (rc == KEEL_ERR_NOT_FOUND && v->signal)
                        fprintf(stderr, "%s: no schedule %s: %s\n", prog,
                                a.name, err);
                else if (rc)
                        fprintf(stderr, "%s: %s: %s\n", prog, keel_err_name(rc),
                                err);
                keel_client_destroy(c);
        }
        json_decref(payload);
        keel__app_destroy(&app);
        return keel_cli_exit_code(rc);
}

/*
 * test_schedule_e2e.c: schedules on the real Kafka test broker, through
 * orchestrator crashes.
 *
 * keel-orchestrator runs schedule_module.c. The test creates the schedule
 * "sched-<pid>-0" (every second, its action "tick" emitting one record
 * keyed by its own workflow ID to a topic of the test's, 5 actions a run
 * so that it continues as new several times) and kills the orchestrator
 * with SIGKILL after its 3rd and its 7th action, starting it again each
 * time (a restarted orchestrator holds overdue timers back for a few
 * seconds, so occurrences are missed: the latest fires, the others are
 * counted). Then it
 * pauses and triggers the schedule with `keel schedule`, and checks what
 * readers see: every action the schedule's history initiated (across its
 * runs) emitted exactly once (read_committed), no occurrence's ID twice,
 * every second between the first and the last action either fired or
 * counted as skipped or missed in the published state, and `keel schedule
 * list` through keel-projector shows the schedule paused. `keel schedule
 * create` refuses a bad cron expression (exit 2) and an existing name
 * (exit 1); `keel schedule delete` completes the schedule.
 */
#include "cron_int.h"
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_KEYS 512

static e2e_env_t procs;
static char instance[96];
static const char *module;

static pid_t start_orchestrator(void)
{
        const char *extra[] = {"-X", instance, NULL};
        return e2e_start_orchestrator(&procs, "orchestrator.log", module,
                                      extra);
}

/* `keel ARGS...` (NULL-terminated, at most 16) logging to logname: its
 * exit code, or -1. */
static int keel_cmd(const char *logname, const char *const *args)
{
        char bin[600];
        const char *av[20];
        int n = 0;
        snprintf(bin, sizeof(bin), "%s/keel",
                 keel_test_env("KEEL_TEST_BIN_DIR"));
        av[n++] = bin;
        while (*args && n < 18)
                av[n++] = *args++;
        av[n] = NULL;
        return e2e_run(&procs, logname, (char *const *)av, 60000);
}

/* Whether <workdir>/<logname> has a line holding both a and b. */
static int log_has(const char *logname, const char *a, const char *b)
{
        char path[700], line[2048];
        FILE *f;
        int found = 0;
        snprintf(path, sizeof(path), "%s/%s", procs.workdir, logname);
        if (!(f = fopen(path, "r")))
                return 0;
        while (!found && fgets(line, sizeof(line), f))
                found = strstr(line, a) && strstr(line, b);
        fclose(f);
        return found;
}

/* The records' keys on the ticks topic and how often each came. */
typedef struct keys_s {
        char key[MAX_KEYS][96];
        int count[MAX_KEYS];
        int n;
} keys_t;

static void add_key(keys_t *k, const char *key, size_t len)
{
        for (int i = 0; i < k->n; i++)
                if (strlen(k->key[i]) == len && !memcmp(k->key[i], key, len)) {
                        k->count[i]++;
                        return;
                }
        if (k->n < MAX_KEYS && len < sizeof(k->key[0])) {
                memcpy(k->key[k->n], key, len);
                k->key[k->n][len] = '\0';
                k->count[k->n++] = 1;
        }
}

static void on_record(void *opaque, const rd_kafka_message_t *m)
{
        if (m->key)
                add_key(opaque, m->key, m->key_len);
}

/* The last state the schedule published in the watcher's events (a new
 * reference), or NULL. */
static json_t *last_state(const e2e_wf_t *wf)
{
        const json_t *ev, *st = NULL;
        size_t i;
        json_array_foreach(wf->events, i, ev)
        {
                const json_t *rec = json_object_get(ev, "record");
                if (!strcmp(json_string_value(json_object_get(ev, "type")),
                            "keel.history.MarkerRecorded") &&
                    !strcmp(
                        json_string_value(json_object_get(rec, "marker_name")),
                        "state"))
                        st = rec;
        }
        return st ? json_loads(
                        json_string_value(json_object_get(st, "details")), 0,
                        NULL)
                  : NULL;
}

/* done() for the watcher: the trigger's action started and closed. */
static int trigger_done(e2e_watch_t *w, void *opaque)
{
        json_t *st = last_state(&w->wfs[0]);
        int done = st &&
                   json_integer_value(json_object_get(st, "triggered")) == 1 &&
                   json_array_size(json_object_get(st, "running")) == 0 &&
                   json_is_true(json_object_get(st, "paused"));
        (void)opaque;
        json_decref(st);
        return done;
}

/* done() for the watcher: the schedule initiated *(int *)want actions. */
static int initiated(e2e_watch_t *w, void *want)
{
        int n = 0;
        while (e2e_wf_event(&w->wfs[0], "ChildWorkflowInitiated", NULL, n))
                n++;
        return n >= *(int *)want;
}

static int closed(e2e_watch_t *w, void *opaque)
{
        (void)opaque;
        return w->wfs[0].closes > 0;
}

/* "YYYYMMDDTHHMMSSZ" as seconds since the epoch, or -1. */
static int64_t seconds_of(const char *s)
{
        int y, mo, d, h, mi, sec;
        if (strlen(s) != 16 ||
            sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &y, &mo, &d, &h, &mi, &sec) != 6)
                return -1;
        return ((keel__days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 +
               sec;
}

static void test_schedule_through_orchestrator_crashes(void)
{
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        e2e_watch_t *w;
        keys_t *keys = calloc(1, sizeof(*keys));
        keys_t *started = calloc(1, sizeof(*started));
        json_t *in, *st;
        pid_t orch, proj;
        char name[64], prefix[80], id[128], topic[96], url[64];
        char pf[700], err[1024];
        int port, kills = 0, twice = 0, unnamed = 0;
        int64_t lo = -1, hi = -1;
        const json_t *ev;
        size_t i;

        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&procs, "schedule"), KEEL_OK);
        module = keel_test_env("KEEL_TEST_SCHEDULE_MODULE");
        snprintf(name, sizeof(name), "sched-%d-0", (int)getpid());
        snprintf(prefix, sizeof(prefix), "schedule/sched-%d-", (int)getpid());
        snprintf(id, sizeof(id), "schedule/%s", name);
        snprintf(topic, sizeof(topic), "schedule.ticks.%d", (int)getpid());
        snprintf(instance, sizeof(instance), "kafka.group.instance.id=%s",
                 name);
        keel_config_set(cfg, "bootstrap", procs.bootstrap, NULL, NULL, 0);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(e2e_create_topic(procs.bootstrap, topic, 3), 0);
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        orch = start_orchestrator();
        snprintf(pf, sizeof(pf), "%s/projector.port", procs.workdir);
        proj = e2e_start_projector(&procs, "projector.log", pf, NULL);

        /* A bad cron expression is a usage error; nothing is sent. */
        {
                const char *a[] = {"schedule",      "create", "--name",
                                   "bad",           "--cron", "61 * * * *",
                                   "--type",        "tick",   "--bootstrap",
                                   procs.bootstrap, NULL};
                CU_ASSERT_EQUAL(keel_cmd("cli.log", a), 2);
                CU_ASSERT(log_has("cli.log", "spec.cron '61 * * * *'",
                                  "minute field: 61 is out of range 0-59"));
        }

        /* every second, 5 actions a run */
        in = json_pack("{s{si} s{ss s{ss}} si}", "spec", "interval_ms", 1000,
                       "action", "workflow_type", "tick", "input", "topic",
                       topic, "actions_per_run", 5);
        CU_ASSERT_EQUAL(keel_client_start(client, id, "keel.schedule", in, NULL,
                                          NULL, err, sizeof(err)),
                        KEEL_OK);
        json_decref(in);
        w = e2e_watch_new(procs.bootstrap, prefix, 1, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        /* killed after the 3rd action, and after the 7th; paused after
         * the 11th */
        for (int k = 0; k < 3; k++) {
                int want = 3 + 4 * k;
                CU_ASSERT(
                    e2e_watch_until(w, e2e_now_ms() + 60000, initiated, &want));
                if (k == 2)
                        break;
                e2e_stop(orch, SIGKILL);
                orch = start_orchestrator();
                kills++;
        }

        /* paused, then an action on demand */
        {
                const char *p[] = {
                    "schedule",    "pause",         "--name", name,
                    "--note",      "checking",      "--wait", "30",
                    "--bootstrap", procs.bootstrap, NULL};
                const char *t[] = {"schedule",    "trigger",       "--name",
                                   name,          "--wait",        "30",
                                   "--bootstrap", procs.bootstrap, NULL};
                CU_ASSERT_EQUAL(keel_cmd("cli.log", p), 0);
                CU_ASSERT_EQUAL(keel_cmd("cli.log", t), 0);
        }
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 60000, trigger_done, NULL));

        /* the actions the schedule's runs initiated, each once */
        json_array_foreach(w->wfs[0].events, i, ev)
        {
                const json_t *rec = json_object_get(ev, "record");
                const char *kid;
                if (strcmp(json_string_value(json_object_get(ev, "type")),
                           "keel.history.ChildWorkflowInitiated"))
                        continue;
                kid = json_string_value(
                    json_object_get(rec, "child_workflow_id"));
                add_key(started, kid, strlen(kid));
        }
        /* what they emitted, read_committed */
        CU_ASSERT(e2e_read_topic(procs.bootstrap, topic, "read_committed",
                                 30000, on_record, keys));
        for (int k = 0; k < started->n; k++) {
                const char *key = started->key[k];
                int seen = 0;
                for (int j = 0; j < keys->n; j++)
                        if (!strcmp(keys->key[j], key))
                                seen = keys->count[j];
                if (started->count[k] != 1 || seen != 1) {
                        if (twice++ < 5)
                                fprintf(stderr,
                                        "%s: initiated %d times, emitted "
                                        "%d times\n",
                                        key, started->count[k], seen);
                } else if (!strstr(key, "-trigger-")) {
                        int64_t s = seconds_of(key + strlen(name) + 1);
                        if (s < 0 || strncmp(key, name, strlen(name)))
                                unnamed++;
                        if (s >= 0 && (lo < 0 || s < lo))
                                lo = s;
                        if (s > hi)
                                hi = s;
                }
        }
        st = last_state(&w->wfs[0]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(st);
        {
                json_int_t fired =
                    json_integer_value(json_object_get(st, "fired"));
                json_int_t skipped =
                    json_integer_value(json_object_get(st, "skipped"));
                json_int_t missed =
                    json_integer_value(json_object_get(st, "missed"));
                int64_t grid = hi - lo + 1;
                printf("\n  %d actions (%d keys on %s), seconds %lld to %lld: "
                       "%lld occurrences; fired %lld, skipped %lld, missed "
                       "%lld; %d kills, %d seq violations\n",
                       started->n, keys->n, topic, (long long)lo, (long long)hi,
                       (long long)grid, (long long)fired, (long long)skipped,
                       (long long)missed, kills, w->seq_violations);
                CU_ASSERT_EQUAL(twice, 0);
                CU_ASSERT_EQUAL(unnamed, 0);
                CU_ASSERT_EQUAL(keys->n, started->n);
                CU_ASSERT_EQUAL(fired, started->n);
                CU_ASSERT(started->n >= 6);
                /* the trigger's, and one per fired second */
                CU_ASSERT(grid >= fired - 1);
                /* every second between the first and the last fired, or
                 * counted as skipped or missed */
                CU_ASSERT(grid - (fired - 1) <= skipped + missed);
                /* the orchestrator was away for more than a second */
                CU_ASSERT(missed >= 1);
                CU_ASSERT_EQUAL(
                    json_integer_value(json_object_get(st, "triggered")), 1);
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_object_get(st, "note")), "checking");
        }
        json_decref(st);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        /* it continued as new (5 actions a run) */
        CU_ASSERT(e2e_wf_event(&w->wfs[0], "WorkflowContinuedAsNew", NULL, 1) !=
                  NULL);

        /* keel schedule list through keel-projector: paused */
        port = e2e_read_port(pf, e2e_now_ms() + 60000);
        CU_ASSERT_FATAL(port > 0);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
        for (int64_t end = e2e_now_ms() + 60000; e2e_now_ms() < end;
             e2e_sleep_ms(500)) {
                const char *l[] = {"schedule", "list", "--projector",
                                   url,        "-X",   "timeout.ms=60000",
                                   NULL};
                if (keel_cmd("list.log", l) == 0 &&
                    log_has("list.log", name, " yes "))
                        break;
        }
        CU_ASSERT(log_has("list.log", name, " yes "));
        CU_ASSERT(log_has("list.log", "every 1s", "SKIP"));

        /* a name in use is refused; a CLI-made schedule; deletes */
        {
                const char *c[] = {"schedule",    "create",
                                   "--name",      name,
                                   "--every",     "1h",
                                   "--type",      "tick",
                                   "--bootstrap", procs.bootstrap,
                                   NULL};
                const char *d[] = {"schedule",    "delete",        "--name",
                                   name,          "--wait",        "30",
                                   "--bootstrap", procs.bootstrap, NULL};
                CU_ASSERT_EQUAL(keel_cmd("cli.log", c), 1);
                CU_ASSERT(log_has("cli.log", "exists", name));
                CU_ASSERT_EQUAL(keel_cmd("cli.log", d), 0);
        }
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 60000, closed, NULL));
        CU_ASSERT(e2e_wf_event(&w->wfs[0], "WorkflowCompleted", NULL, 0) !=
                  NULL);

        e2e_stop(orch, SIGTERM);
        e2e_stop(proj, SIGTERM);
        e2e_watch_destroy(w);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
        free(keys);
        free(started);
}

static CU_TestInfo tests[] = {
    {"test_schedule_through_orchestrator_crashes",
     test_schedule_through_orchestrator_crashes},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("schedule_e2e", tests)

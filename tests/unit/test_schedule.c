/*
 * test_schedule.c: schedules (sdk/src/schedule.c) in the test environment,
 * on its virtual clock, which starts at 2026-01-01T00:00:00Z.
 *
 * A schedule is the built-in workflow type keel.schedule with the ID
 * schedule/<name>; the registries here register only the actions:
 * "tick" emits one record (key: its workflow ID) to the topic "ticks" and
 * completes, so keel_testenv_emitted() shows how often each occurrence
 * ran; "slow" does the same and then sleeps input "ms" (default 12
 * minutes) before completing.
 */
#include "keel/keel.h"
#include "keel/replay.h"
#include "keel/testing.h"
#include "keel_test.h"
#include "schedule_int.h"

#include <stdio.h>
#include <string.h>

#define T0     1767225600000LL /* 2026-01-01T00:00:00Z */
#define MIN_MS 60000LL
#define DAY_MS 86400000LL

static keel_err_t tick(keel_wf_t *wf, const json_t *input, json_t **result)
{
        keel_emit(wf, "ticks", keel_wf_id(wf), json_incref((json_t *)input));
        *result = json_pack("{ss}", "id", keel_wf_id(wf));
        return KEEL_OK;
}

static keel_err_t slow(keel_wf_t *wf, const json_t *input, json_t **result)
{
        json_int_t ms = json_integer_value(json_object_get(input, "ms"));
        keel_emit(wf, "ticks", keel_wf_id(wf), json_incref((json_t *)input));
        if (keel_sleep(wf, ms ? ms : 12 * MIN_MS) == KEEL_ERR_CANCELLED)
                return KEEL_ERR_CANCELLED;
        *result = json_pack("{ss}", "id", keel_wf_id(wf));
        return KEEL_OK;
}

static keel_testenv_t *env_new(keel_registry_t **reg)
{
        keel_testenv_t *env;
        *reg = keel_registry_new();
        CU_ASSERT_EQUAL(keel_workflow_register(*reg, "tick", tick), KEEL_OK);
        CU_ASSERT_EQUAL(keel_workflow_register(*reg, "slow", slow), KEEL_OK);
        env = keel_testenv_new(*reg, T0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        return env;
}

/* Start schedule `name` with the spec (JSON text), the action's type and
 * an overlap policy (NULL: the default), paused or not. */
static int create(keel_testenv_t *env, const char *name, const char *spec,
                  const char *type, const char *overlap, int paused)
{
        char id[256];
        json_t *in = json_pack(
            "{so s{ss s{ss}} sb}", "spec", json_loads(spec, 0, NULL), "action",
            "workflow_type", type, "input", "from", name, "paused", paused);
        if (overlap)
                json_object_set_new(in, "overlap", json_string(overlap));
        snprintf(id, sizeof(id), "schedule/%s", name);
        return keel_testenv_start(env, id, "keel.schedule", in);
}

/* The schedule's published state (a new reference), or NULL. */
static json_t *state(keel_testenv_t *env, const char *name)
{
        char id[256];
        snprintf(id, sizeof(id), "schedule/%s", name);
        return keel_testenv_state(env, id);
}

static json_int_t state_int(keel_testenv_t *env, const char *name,
                            const char *key)
{
        json_t *st = state(env, name);
        json_int_t v = json_integer_value(json_object_get(st, key));
        json_decref(st);
        return v;
}

/* Whether the schedule's state field key is the string want (or null for
 * want NULL). */
static int state_is(keel_testenv_t *env, const char *name, const char *key,
                    const char *want)
{
        json_t *st = state(env, name);
        const json_t *v = json_object_get(st, key);
        int ok = want ? json_is_string(v) && !strcmp(json_string_value(v), want)
                      : json_is_null(v);
        if (!ok) {
                char *s = json_dumps(st, JSON_COMPACT);
                fprintf(stderr, "\n%s: %s is not %s in %s\n", name, key,
                        want ? want : "null", s ? s : "?");
                free(s);
        }
        json_decref(st);
        return ok;
}

/* The action ID of occurrence `at` of schedule name. */
static const char *action_id(const char *name, int64_t at, char *buf,
                             size_t size)
{
        char ts[32];
        keel__time_compact(at, ts);
        snprintf(buf, size, "%s-%s", name, ts);
        return buf;
}

/* How many records the actions emitted with key `key`; and in *total,
 * how many with a key starting with prefix. */
static int emitted(keel_testenv_t *env, const char *key, const char *prefix,
                   int *total)
{
        const json_t *all = keel_testenv_emitted(env), *r;
        size_t i;
        int n = 0;
        if (total)
                *total = 0;
        json_array_foreach(all, i, r)
        {
                const char *k = json_string_value(json_object_get(r, "key"));
                if (!k)
                        continue;
                n += key && !strcmp(k, key);
                if (total && prefix && !strncmp(k, prefix, strlen(prefix)))
                        (*total)++;
        }
        return n;
}

/* The running actions in the state, as one comma-separated string. */
static void running_ids(keel_testenv_t *env, const char *name, char *buf,
                        size_t size)
{
        json_t *st = state(env, name);
        const json_t *v;
        size_t i, len = 0;
        buf[0] = '\0';
        json_array_foreach(json_object_get(st, "running"), i, v) len +=
            (size_t)snprintf(buf + len, size - len, "%s%s", i ? "," : "",
                             json_string_value(v));
        json_decref(st);
}

/* ---- the rules of the input -------------------------------------------- */

static void spec_refused(const char *spec, const char *says)
{
        keel__sched_spec_t s;
        char err[500] = "";
        json_t *j = json_loads(spec, JSON_DECODE_ANY, NULL);
        CU_ASSERT_EQUAL(keel__sched_spec_parse(j, &s, err, sizeof(err)),
                        KEEL_ERR_INVALID_ARG);
        if (!strstr(err, says)) {
                fprintf(stderr, "\n%s: '%s' lacks '%s'\n", spec, err, says);
                CU_FAIL("wrong message");
        }
        json_decref(j);
}

static void input_refused(const char *input, const char *says)
{
        keel__schedule_t s;
        char err[500] = "";
        json_t *j = json_loads(input, JSON_DECODE_ANY, NULL);
        CU_ASSERT_PTR_NOT_NULL(j);
        CU_ASSERT_EQUAL(keel__schedule_parse(j, &s, err, sizeof(err)),
                        KEEL_ERR_INVALID_ARG);
        if (!strstr(err, says)) {
                fprintf(stderr, "\n%s: '%s' lacks '%s'\n", input, err, says);
                CU_FAIL("wrong message");
        }
        json_decref(j);
}

static void test_schedule_input_rules(void)
{
        keel__schedule_t s;
        keel__sched_spec_t sp;
        char err[500] = "", buf[32];
        int64_t ms = 0, last = 0;
        json_t *j;

        spec_refused("[]", "spec must be an object");
        spec_refused("{}", "neither");
        spec_refused("{\"cron\":\"* * * * *\",\"interval_ms\":60000}", "both");
        spec_refused("{\"cron\":\"61 * * * *\"}",
                     "spec.cron '61 * * * *': minute field: 61 is out of "
                     "range 0-59");
        spec_refused("{\"cron\":5}", "spec.cron must be a string");
        spec_refused("{\"interval_ms\":999}", "from 1000 (1 s)");
        spec_refused("{\"interval_ms\":\"60s\"}", "must be an integer");
        spec_refused("{\"interval_ms\":60000,\"offset_ms\":60000}",
                     "offset_ms must be an integer from 0 to interval_ms - 1");
        spec_refused("{\"cron\":\"@daily\",\"offset_ms\":5}",
                     "offset_ms goes with interval_ms");
        spec_refused("{\"every\":\"5m\"}", "unknown field 'every'");

        input_refused("42", "is an object");
        input_refused("{\"action\":{\"workflow_type\":\"t\"}}",
                      "spec is missing");
        input_refused("{\"spec\":{\"cron\":\"@daily\"}}",
                      "action must be an object");
        input_refused("{\"spec\":{\"cron\":\"@daily\"},\"action\":{}}",
                      "action.workflow_type (a string) is missing");
        input_refused("{\"spec\":{\"cron\":\"@daily\"},\"action\":{"
                      "\"workflow_type\":\"t\",\"task_queue\":\"q\"}}",
                      "action: unknown field 'task_queue'");
        input_refused("{\"spec\":{\"cron\":\"@daily\"},\"action\":{"
                      "\"workflow_type\":\"keel.schedule\"}}",
                      "does not start schedules");
        input_refused("{\"spec\":{\"cron\":\"@daily\"},\"action\":{"
                      "\"workflow_type\":\"t\"},\"overlap\":\"NEVER\"}",
                      "overlap must be SKIP, BUFFER_ONE or ALLOW_ALL");
        input_refused("{\"spec\":{\"cron\":\"@daily\"},\"action\":{"
                      "\"workflow_type\":\"t\"},\"paused\":1}",
                      "paused must be true or false");
        input_refused("{\"spec\":{\"cron\":\"@daily\"},\"action\":{"
                      "\"workflow_type\":\"t\"},\"actions_per_run\":0}",
                      "actions_per_run must be an integer from 1");
        input_refused("{\"spec\":{\"cron\":\"@daily\"},\"action\":{"
                      "\"workflow_type\":\"t\"},\"colour\":\"red\"}",
                      "unknown field 'colour'");

        j = json_loads("{\"spec\":{\"interval_ms\":3600000,\"offset_ms\":"
                       "900000},\"action\":{\"workflow_type\":\"t\",\"input\":"
                       "[1]},\"overlap\":\"buffer_one\",\"note\":\"n\"}",
                       0, NULL);
        CU_ASSERT_EQUAL_FATAL(keel__schedule_parse(j, &s, err, sizeof(err)),
                              KEEL_OK);
        CU_ASSERT_EQUAL(s.overlap, KEEL__OVERLAP_BUFFER_ONE);
        CU_ASSERT_STRING_EQUAL(s.workflow_type, "t");
        CU_ASSERT_STRING_EQUAL(s.note, "n");
        CU_ASSERT_EQUAL(s.actions_per_run, KEEL__SCHEDULE_ACTIONS_PER_RUN);
        CU_ASSERT(json_is_array(s.action_input));
        /* every hour at a quarter past, from the epoch */
        CU_ASSERT_EQUAL(keel__sched_spec_next(&s.spec, T0), T0 + 15 * MIN_MS);
        CU_ASSERT_EQUAL(keel__sched_spec_next(&s.spec, T0 + 15 * MIN_MS),
                        T0 + 75 * MIN_MS);
        /* occurrences in (T0, T0 + 5 h]: 00:15 .. 04:15 */
        CU_ASSERT_EQUAL(
            keel__sched_spec_between(&s.spec, T0, T0 + 300 * MIN_MS, &last), 5);
        CU_ASSERT_EQUAL(last, T0 + 255 * MIN_MS);
        CU_ASSERT_EQUAL(
            keel__sched_spec_between(&s.spec, T0, T0 + 14 * MIN_MS, &last), 0);
        json_decref(j);

        j = json_pack("{ss}", "cron", "*/5 * * * *");
        CU_ASSERT_EQUAL(keel__sched_spec_parse(j, &sp, err, sizeof(err)),
                        KEEL_OK);
        /* (00:02, 01:00]: 00:05 .. 01:00, 12 of them */
        CU_ASSERT_EQUAL(keel__sched_spec_between(&sp, T0 + 2 * MIN_MS,
                                                 T0 + 60 * MIN_MS, &last),
                        12);
        CU_ASSERT_EQUAL(last, T0 + 60 * MIN_MS);
        json_decref(j);

        CU_ASSERT_EQUAL(keel__duration_parse("90s", &ms), KEEL_OK);
        CU_ASSERT_EQUAL(ms, 90000);
        CU_ASSERT_EQUAL(keel__duration_parse("1h30m", &ms), KEEL_OK);
        CU_ASSERT_EQUAL(ms, 5400000);
        CU_ASSERT_EQUAL(keel__duration_parse("2d", &ms), KEEL_OK);
        CU_ASSERT_EQUAL(ms, 2 * DAY_MS);
        CU_ASSERT_EQUAL(keel__duration_parse("1500ms", &ms), KEEL_OK);
        CU_ASSERT_EQUAL(ms, 1500);
        CU_ASSERT_EQUAL(keel__duration_parse("42", &ms), KEEL_OK);
        CU_ASSERT_EQUAL(ms, 42000);
        CU_ASSERT_EQUAL(keel__duration_parse("", &ms), KEEL_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(keel__duration_parse("m5", &ms), KEEL_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(keel__duration_parse("5x", &ms), KEEL_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(keel__duration_parse("5 m", &ms), KEEL_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(keel__duration_parse("-5s", &ms), KEEL_ERR_INVALID_ARG);
        CU_ASSERT_EQUAL(keel__duration_parse("10mins", &ms),
                        KEEL_ERR_INVALID_ARG);

        CU_ASSERT_EQUAL(
            keel__schedule_check_name("nightly-report_2.v1", err, sizeof(err)),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel__schedule_check_name("a/b", err, sizeof(err)),
                        KEEL_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "not '/'"));
        CU_ASSERT_EQUAL(keel__schedule_check_name("", err, sizeof(err)),
                        KEEL_ERR_INVALID_ARG);

        keel__time_compact(T0 + 5 * MIN_MS + 7000, buf);
        CU_ASSERT_STRING_EQUAL(buf, "20260101T000507Z");
        keel__time_rfc3339(T0 + 59 * DAY_MS + 1234, buf);
        CU_ASSERT_STRING_EQUAL(buf, "2026-03-01T00:00:01.234Z");
}

/* ---- the workflow ------------------------------------------------------- */

/* Every five minutes for a week: 2016 actions, each occurrence's ID once,
 * through the runs it continues as new into, counters carried. */
static void test_schedule_cron_week_fires_each_occurrence_once(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        const json_t *h;
        const json_t *started;
        char id[128];
        int total = 0, wrong = 0;

        CU_ASSERT_EQUAL(create(env, "every5", "{\"cron\":\"*/5 * * * *\"}",
                               "tick", NULL, 0),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 7 * DAY_MS), KEEL_OK);
        for (int k = 1; k <= 7 * 288; k++)
                if (emitted(env,
                            action_id("every5", T0 + k * 5 * MIN_MS, id,
                                      sizeof(id)),
                            NULL, NULL) != 1 &&
                    wrong++ < 5)
                        fprintf(stderr, "\n%s ran %d times\n", id,
                                emitted(env, id, NULL, NULL));
        emitted(env, NULL, "every5-", &total);
        CU_ASSERT_EQUAL(wrong, 0);
        CU_ASSERT_EQUAL(total, 2016);
        CU_ASSERT_EQUAL(state_int(env, "every5", "fired"), 2016);
        CU_ASSERT_EQUAL(state_int(env, "every5", "skipped"), 0);
        CU_ASSERT_EQUAL(state_int(env, "every5", "missed"), 0);
        CU_ASSERT(state_is(env, "every5", "next_fire_at",
                           "2026-01-08T00:05:00.000Z"));
        CU_ASSERT(state_is(env, "every5", "last_fired_at",
                           "2026-01-08T00:00:00.000Z"));
        CU_ASSERT(state_is(env, "every5", "last_action_id",
                           "every5-20260108T000000Z"));
        CU_ASSERT(state_is(env, "every5", "overlap", "SKIP"));
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "schedule/every5"),
                               "running");
        /* it continued as new (50 actions a run), the counters with it */
        h = keel_testenv_history(env, "schedule/every5");
        started = json_object_get(json_array_get(h, 0), "record");
        CU_ASSERT(
            json_is_string(json_object_get(started, "continued_from_run_id")));
        CU_ASSERT(json_array_size(h) < 1000);
        {
                json_t *in = json_loads(
                    json_string_value(json_object_get(started, "input")), 0,
                    NULL);
                json_int_t f = json_integer_value(
                    json_object_get(json_object_get(in, "carry"), "fired"));
                CU_ASSERT(f >= 1950 && f % KEEL__SCHEDULE_ACTIONS_PER_RUN == 0);
                json_decref(in);
        }
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_schedule_interval_with_offset(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        char id[128];
        int total;
        json_t *sa;

        CU_ASSERT_EQUAL(create(env, "quarter",
                               "{\"interval_ms\":3600000,\"offset_ms\":900000}",
                               "tick", NULL, 0),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 180 * MIN_MS),
                        KEEL_OK);
        emitted(env, NULL, "quarter-", &total);
        CU_ASSERT_EQUAL(total, 3);
        CU_ASSERT_EQUAL(
            emitted(env, action_id("quarter", T0 + 15 * MIN_MS, id, sizeof(id)),
                    NULL, NULL),
            1);
        CU_ASSERT_EQUAL(
            emitted(env,
                    action_id("quarter", T0 + 135 * MIN_MS, id, sizeof(id)),
                    NULL, NULL),
            1);
        CU_ASSERT(state_is(env, "quarter", "next_fire_at",
                           "2026-01-01T03:15:00.000Z"));
        CU_ASSERT(state_is(env, "quarter", "last_action_status", "completed"));
        /* the action's input as given */
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(
                json_object_get(json_array_get(keel_testenv_emitted(env), 0),
                                "value"),
                "from")),
            "quarter");
        sa = keel_testenv_search_attributes(env, "schedule/quarter");
        CU_ASSERT(json_is_false(json_object_get(sa, "KeelSchedulePaused")));
        json_decref(sa);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

/* "slow" runs 12 minutes; occurrences come every 5. */
static void test_schedule_overlap_skip(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        char id[128], run[512];
        int total;

        CU_ASSERT_EQUAL(
            create(env, "skip", "{\"cron\":\"*/5 * * * *\"}", "slow", NULL, 0),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 60 * MIN_MS), KEEL_OK);
        /* 00:05 runs to 00:17, 00:20 to 00:32, 00:35 to 00:47, 00:50 on */
        emitted(env, NULL, "skip-", &total);
        CU_ASSERT_EQUAL(total, 4);
        for (int m = 5; m <= 50; m += 15)
                CU_ASSERT_EQUAL(
                    emitted(env,
                            action_id("skip", T0 + m * MIN_MS, id, sizeof(id)),
                            NULL, NULL),
                    1);
        CU_ASSERT_EQUAL(state_int(env, "skip", "fired"), 4);
        CU_ASSERT_EQUAL(state_int(env, "skip", "skipped"), 8);
        running_ids(env, "skip", run, sizeof(run));
        CU_ASSERT_STRING_EQUAL(run, "skip-20260101T005000Z");
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_schedule_overlap_buffer_one(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        static const int started[] = {5, 10, 20, 30, 45};
        char id[128], run[512];
        int total;

        CU_ASSERT_EQUAL(create(env, "buf", "{\"cron\":\"*/5 * * * *\"}", "slow",
                               "BUFFER_ONE", 0),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 60 * MIN_MS), KEEL_OK);
        /* 00:05 runs to 00:17; 00:10 waits for it, runs to 00:29; 00:20
         * to 00:41; 00:30 to 00:53; 00:45 on; 00:55 waits; the rest are
         * skipped while one waits */
        emitted(env, NULL, "buf-", &total);
        CU_ASSERT_EQUAL(total, 5);
        for (size_t i = 0; i < 5; i++)
                CU_ASSERT_EQUAL(
                    emitted(env,
                            action_id("buf", T0 + started[i] * MIN_MS, id,
                                      sizeof(id)),
                            NULL, NULL),
                    1);
        CU_ASSERT_EQUAL(state_int(env, "buf", "fired"), 5);
        CU_ASSERT_EQUAL(state_int(env, "buf", "skipped"), 6);
        CU_ASSERT(state_is(env, "buf", "buffered", "buf-20260101T005500Z"));
        running_ids(env, "buf", run, sizeof(run));
        CU_ASSERT_STRING_EQUAL(run, "buf-20260101T004500Z");
        /* the buffered one starts when 00:45 ends at 01:05 */
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 66 * MIN_MS), KEEL_OK);
        CU_ASSERT_EQUAL(
            emitted(env, action_id("buf", T0 + 55 * MIN_MS, id, sizeof(id)),
                    NULL, NULL),
            1);
        CU_ASSERT(state_is(env, "buf", "buffered", NULL));
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_schedule_overlap_allow_all(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        char run[512];
        int total;

        CU_ASSERT_EQUAL(create(env, "all", "{\"cron\":\"*/5 * * * *\"}", "slow",
                               "ALLOW_ALL", 0),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 60 * MIN_MS), KEEL_OK);
        emitted(env, NULL, "all-", &total);
        CU_ASSERT_EQUAL(total, 12);
        CU_ASSERT_EQUAL(state_int(env, "all", "fired"), 12);
        CU_ASSERT_EQUAL(state_int(env, "all", "skipped"), 0);
        running_ids(env, "all", run, sizeof(run));
        CU_ASSERT_STRING_EQUAL(run, "all-20260101T005000Z,"
                                    "all-20260101T005500Z,"
                                    "all-20260101T010000Z");
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_schedule_pause_resume_trigger(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        json_t *sa;
        char id[128];
        int total;

        CU_ASSERT_EQUAL(
            create(env, "pr", "{\"cron\":\"*/5 * * * *\"}", "tick", NULL, 0),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 12 * MIN_MS), KEEL_OK);
        CU_ASSERT_EQUAL(
            keel_testenv_signal(env, "schedule/pr", "pause",
                                json_pack("{ss}", "note", "maintenance")),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 62 * MIN_MS), KEEL_OK);
        emitted(env, NULL, "pr-", &total);
        CU_ASSERT_EQUAL(total, 2); /* 00:05 and 00:10 */
        {
                json_t *st = state(env, "pr");
                CU_ASSERT(json_is_true(json_object_get(st, "paused")));
                json_decref(st);
        }
        CU_ASSERT(state_is(env, "pr", "next_fire_at", NULL));
        CU_ASSERT(state_is(env, "pr", "note", "maintenance"));
        sa = keel_testenv_search_attributes(env, "schedule/pr");
        CU_ASSERT(json_is_true(json_object_get(sa, "KeelSchedulePaused")));
        json_decref(sa);

        /* a trigger fires now, paused or not */
        CU_ASSERT_EQUAL(
            keel_testenv_signal(env, "schedule/pr", "trigger", NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 63 * MIN_MS), KEEL_OK);
        CU_ASSERT_EQUAL(
            emitted(env, "pr-20260101T010200Z-trigger-1", NULL, NULL), 1);
        CU_ASSERT_EQUAL(state_int(env, "pr", "triggered"), 1);
        CU_ASSERT_EQUAL(state_int(env, "pr", "fired"), 3);

        /* resumed at 01:03: the next is 01:05, nothing counted missed */
        CU_ASSERT_EQUAL(keel_testenv_signal(env, "schedule/pr", "resume", NULL),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 63 * MIN_MS), KEEL_OK);
        CU_ASSERT(
            state_is(env, "pr", "next_fire_at", "2026-01-01T01:05:00.000Z"));
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 70 * MIN_MS), KEEL_OK);
        CU_ASSERT_EQUAL(
            emitted(env, action_id("pr", T0 + 65 * MIN_MS, id, sizeof(id)),
                    NULL, NULL),
            1);
        CU_ASSERT_EQUAL(state_int(env, "pr", "fired"), 5);
        CU_ASSERT_EQUAL(state_int(env, "pr", "missed"), 0);
        sa = keel_testenv_search_attributes(env, "schedule/pr");
        CU_ASSERT(json_is_false(json_object_get(sa, "KeelSchedulePaused")));
        json_decref(sa);
        /* created paused: nothing fires until resumed */
        CU_ASSERT_EQUAL(
            create(env, "held", "{\"cron\":\"* * * * *\"}", "tick", NULL, 1),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 90 * MIN_MS), KEEL_OK);
        emitted(env, NULL, "held-", &total);
        CU_ASSERT_EQUAL(total, 0);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_schedule_update(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        const json_t *rec;
        json_t *st;
        int total;

        CU_ASSERT_EQUAL(
            create(env, "up", "{\"interval_ms\":3600000}", "tick", NULL, 0),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 7 * MIN_MS), KEEL_OK);
        /* every five minutes from now on, with a new input */
        CU_ASSERT_EQUAL(
            keel_testenv_signal(env, "schedule/up", "update",
                                json_pack("{s{ss} s{s{si}} ss}", "spec", "cron",
                                          "*/5 * * * *", "action", "input", "v",
                                          2, "overlap", "ALLOW_ALL")),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 7 * MIN_MS), KEEL_OK);
        CU_ASSERT(
            state_is(env, "up", "next_fire_at", "2026-01-01T00:10:00.000Z"));
        CU_ASSERT(state_is(env, "up", "overlap", "ALLOW_ALL"));
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 10 * MIN_MS), KEEL_OK);
        CU_ASSERT_EQUAL(emitted(env, "up-20260101T001000Z", NULL, NULL), 1);
        rec = json_array_get(keel_testenv_emitted(env), 0);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(rec, "value"), "v")),
                        2);
        /* the action's type stays: only the input was given */
        st = state(env, "up");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(json_object_get(st, "action"),
                                              "workflow_type")),
            "tick");
        json_decref(st);

        /* a bad update is refused, said in the state, and changes nothing */
        CU_ASSERT_EQUAL(keel_testenv_signal(
                            env, "schedule/up", "update",
                            json_pack("{s{ss}}", "spec", "cron", "61 * * * *")),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 20 * MIN_MS), KEEL_OK);
        st = state(env, "up");
        CU_ASSERT(json_is_string(json_object_get(st, "last_error")) &&
                  strstr(json_string_value(json_object_get(st, "last_error")),
                         "update refused: spec.cron '61 * * * *': minute "
                         "field"));
        json_decref(st);
        emitted(env, NULL, "up-", &total);
        CU_ASSERT_EQUAL(total, 3); /* 00:10, 00:15, 00:20 */
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "schedule/up"),
                               "running");
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_schedule_delete_and_cancel(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        json_t *r;
        int total;

        CU_ASSERT_EQUAL(
            create(env, "del", "{\"cron\":\"*/5 * * * *\"}", "slow", NULL, 0),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 6 * MIN_MS), KEEL_OK);
        CU_ASSERT_EQUAL(
            keel_testenv_signal(env, "schedule/del", "delete", NULL), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "schedule/del"),
                               "completed");
        r = keel_testenv_result(env, "schedule/del");
        CU_ASSERT(json_is_true(json_object_get(r, "deleted")));
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "fired")), 1);
        json_decref(r);
        /* the running action was left to finish */
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "del-20260101T000500Z"),
                               "completed");
        emitted(env, NULL, "del-", &total);
        CU_ASSERT_EQUAL(total, 1);
        CU_ASSERT(state_is(env, "del", "next_fire_at", NULL));

        /* a cancel request ends it as cancelled */
        CU_ASSERT_EQUAL(
            create(env, "can", "{\"cron\":\"@hourly\"}", "tick", NULL, 0),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 61 * MIN_MS), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_cancel(env, "schedule/can", "done"),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "schedule/can"),
                               "cancelled");
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static void test_schedule_bad_spec_fails(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        const json_t *h, *f;

        CU_ASSERT_EQUAL(
            create(env, "bad", "{\"cron\":\"0 0 30 2 *\"}", "tick", NULL, 0),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run(env), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "schedule/bad"),
                               "failed");
        h = keel_testenv_history(env, "schedule/bad");
        f = json_object_get(
            json_object_get(json_array_get(h, json_array_size(h) - 1),
                            "record"),
            "failure");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "type")),
                               "InvalidSchedule");
        CU_ASSERT_PTR_NOT_NULL(
            strstr(json_string_value(json_object_get(f, "message")),
                   "spec.cron '0 0 30 2 *': no day matches"));
        /* nor can a program register the built-in type again */
        CU_ASSERT_EQUAL(keel_workflow_register(reg, "keel.schedule", tick),
                        KEEL_ERR_INVALID_ARG);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

/* A small actions_per_run: the runs continue as new every 3 actions, and
 * the counters, the last action and the next occurrence go along. */
static void test_schedule_continue_as_new_keeps_counters(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        json_t *in =
            json_pack("{s{ss} s{ss} si}", "spec", "cron", "*/5 * * * *",
                      "action", "workflow_type", "tick", "actions_per_run", 3);
        const json_t *st, *carry;
        json_t *input;
        int total;

        CU_ASSERT_EQUAL(
            keel_testenv_start(env, "schedule/can3", "keel.schedule", in),
            KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 50 * MIN_MS), KEEL_OK);
        emitted(env, NULL, "can3-", &total);
        CU_ASSERT_EQUAL(total, 10);
        CU_ASSERT_EQUAL(state_int(env, "can3", "fired"), 10);
        CU_ASSERT(
            state_is(env, "can3", "next_fire_at", "2026-01-01T00:55:00.000Z"));
        /* runs of 00:05-00:15, 00:20-00:30, 00:35-00:45, then this one */
        st = json_object_get(
            json_array_get(keel_testenv_history(env, "schedule/can3"), 0),
            "record");
        CU_ASSERT(json_is_string(json_object_get(st, "continued_from_run_id")));
        input = json_loads(json_string_value(json_object_get(st, "input")), 0,
                           NULL);
        carry = json_object_get(input, "carry");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(carry, "fired")), 9);
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(carry, "last_scheduled_ms")),
            T0 + 45 * MIN_MS);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(carry, "last_action_id")),
            "can3-20260101T004500Z");
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(input, "actions_per_run")), 3);
        json_decref(input);
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

/* The recorded histories replay against the code: a run under way, one
 * that continued as new, one whose actions overlapped, one deleted. */
static void test_schedule_replays(void)
{
        keel_registry_t *reg;
        keel_testenv_t *env = env_new(&reg);
        static const char *const ids[] = {"schedule/r1", "schedule/r2",
                                          "schedule/r3"};
        keel_replay_report_t rep;

        CU_ASSERT_EQUAL(
            create(env, "r1", "{\"cron\":\"*/5 * * * *\"}", "tick", NULL, 0),
            KEEL_OK);
        CU_ASSERT_EQUAL(create(env, "r2", "{\"cron\":\"*/5 * * * *\"}", "slow",
                               "BUFFER_ONE", 0),
                        KEEL_OK);
        CU_ASSERT_EQUAL(create(env, "r3", "{\"interval_ms\":300000}", "slow",
                               "ALLOW_ALL", 0),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 10 * 60 * MIN_MS),
                        KEEL_OK);
        keel_testenv_signal(env, "schedule/r2", "pause", NULL);
        keel_testenv_signal(env, "schedule/r2", "trigger", NULL);
        keel_testenv_signal(env, "schedule/r3", "update",
                            json_pack("{ss}", "overlap", "SKIP"));
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 11 * 60 * MIN_MS),
                        KEEL_OK);
        keel_testenv_signal(env, "schedule/r3", "delete", NULL);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, T0 + 12 * 60 * MIN_MS),
                        KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, "schedule/r3"),
                               "completed");
        for (size_t i = 0; i < 3; i++) {
                int rc =
                    keel_replay(reg, keel_testenv_history(env, ids[i]), &rep);
                if (rc)
                        fprintf(stderr, "\n%s: %s\n", ids[i], rep.message);
                CU_ASSERT_EQUAL(rc, KEEL_OK);
                /* r2 has just continued as new, paused */
                CU_ASSERT(rep.events >= (i == 1 ? 2u : 10u));
        }
        keel_testenv_destroy(env);
        keel_registry_destroy(reg);
}

static CU_TestInfo tests[] = {
    {"test_schedule_input_rules", test_schedule_input_rules},
    {"test_schedule_cron_week_fires_each_occurrence_once",
     test_schedule_cron_week_fires_each_occurrence_once},
    {"test_schedule_interval_with_offset", test_schedule_interval_with_offset},
    {"test_schedule_overlap_skip", test_schedule_overlap_skip},
    {"test_schedule_overlap_buffer_one", test_schedule_overlap_buffer_one},
    {"test_schedule_overlap_allow_all", test_schedule_overlap_allow_all},
    {"test_schedule_pause_resume_trigger", test_schedule_pause_resume_trigger},
    {"test_schedule_update", test_schedule_update},
    {"test_schedule_delete_and_cancel", test_schedule_delete_and_cancel},
    {"test_schedule_bad_spec_fails", test_schedule_bad_spec_fails},
    {"test_schedule_continue_as_new_keeps_counters",
     test_schedule_continue_as_new_keeps_counters},
    {"test_schedule_replays", test_schedule_replays},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("schedule", tests)

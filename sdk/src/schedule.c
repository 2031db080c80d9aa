/*
 * schedule.c: the schedule workflow `keel.schedule` and the rules of its
 * input (schedule_int.h).
 *
 * The workflow loops: it computes the next occurrence after the last one
 * it handled, and waits with keel_select() for a timer set for it, the
 * signals pause, resume, trigger, update and delete, and the actions it
 * started (child workflows, abandoned when it closes). An occurrence that
 * is due starts the action, or not, by the overlap policy: SKIP (skip
 * while one runs), BUFFER_ONE (keep one to start when the running one
 * closes) or ALLOW_ALL. When the timer fires late (no orchestrator owned
 * the partition for a while), only the latest occurrence due fires and
 * the ones before it count as missed, Temporal's default catch-up. Every
 * decision depends on the history alone (keel_now(), the signals and
 * closes in log order), so replays take the same path and each
 * occurrence's action ID `<name>-<YYYYMMDDTHHMMSSZ>` is started once. The
 * state it publishes (keel_set_state()) is what the projector serves; its
 * counters go to the next run when it continues as new, which it does
 * after actions_per_run actions once no action it waits for is running.
 * Schedules already running replay this code when it changes: a change to
 * the commands it issues (timers, children, markers, in order) needs
 * keel_patched(), as in any workflow.
 */
#include "schedule_int.h"

#include "client_int.h"
#include "keel/client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY_MS          86400000LL
#define MAX_INTERVAL_MS (3660LL * DAY_MS) /* ten years */
#define CATCHUP_DAYS    400               /* missed occurrences counted */
#define NOTE_MAX        1000
#define PAUSED_ATTR     "KeelSchedulePaused"

/* ---- names, durations, times -------------------------------------------- */

static const char *const overlaps[] = {"SKIP", "BUFFER_ONE", "ALLOW_ALL"};

const char *keel__overlap_name(keel__overlap_t o)
{
        return (unsigned)o < 3 ? overlaps[o] : "SKIP";
}

int keel__overlap_parse(const char *name)
{
        for (int i = 0; name && i < 3; i++)
                if (!strcasecmp(name, overlaps[i]))
                        return i;
        return -1;
}

int keel__schedule_check_name(const char *name, char *err, size_t errsize)
{
        size_t n = name ? strlen(name) : 0;
        if (!n || n > KEEL__SCHEDULE_NAME_MAX) {
                snprintf(err, errsize,
                         "a schedule name is 1 to %d bytes, not %zu",
                         KEEL__SCHEDULE_NAME_MAX, n);
                return KEEL_ERR_INVALID_ARG;
        }
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)name[i]) &&
                    !strchr("._-", name[i])) {
                        snprintf(err, errsize,
                                 "a schedule name holds A-Z, a-z, 0-9, '.', "
                                 "'_' and '-' only, not '%c' (in '%.200s')",
                                 isprint((unsigned char)name[i]) ? name[i]
                                                                 : '?',
                                 name);
                        return KEEL_ERR_INVALID_ARG;
                }
        return KEEL_OK;
}

int keel__duration_parse(const char *s, int64_t *ms)
{
        static const struct {
                const char *unit;
                int64_t ms;
        } units[] = {{"ms", 1},
                     {"s", 1000},
                     {"m", 60000},
                     {"h", 3600000},
                     {"d", DAY_MS}};
        int64_t total = 0;
        const char *p = s;

        if (!s || !*s)
                return KEEL_ERR_INVALID_ARG;
        while (*p) {
                char *end;
                long long v;
                size_t u, n = sizeof(units) / sizeof(units[0]);
                if (!isdigit((unsigned char)*p))
                        return KEEL_ERR_INVALID_ARG;
                errno = 0;
                v = strtoll(p, &end, 10);
                if (errno || v > 1000000000000LL)
                        return KEEL_ERR_INVALID_ARG;
                if (!*end && p == s) { /* a bare number: seconds */
                        total = v * 1000;
                        break;
                }
                for (u = 0; u < n; u++) {
                        size_t l = strlen(units[u].unit);
                        if (!strncmp(end, units[u].unit, l) &&
                            !isalpha((unsigned char)end[l]))
                                break;
                }
                if (u == n)
                        return KEEL_ERR_INVALID_ARG;
                total += v * units[u].ms;
                if (total > 100 * 366 * DAY_MS)
                        return KEEL_ERR_INVALID_ARG;
                p = end + strlen(units[u].unit);
        }
        *ms = total;
        return KEEL_OK;
}

static int64_t floor_div(int64_t a, int64_t b)
{
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* ms since the epoch as calendar fields (UTC). */
static void split(int64_t ms, int64_t *y, int *mo, int *d, int *h, int *mi,
                  int *s, int *frac)
{
        int64_t day = floor_div(ms, DAY_MS), in = ms - day * DAY_MS;
        keel__civil_from_days(day, y, mo, d);
        *h = (int)(in / 3600000);
        *mi = (int)(in / 60000 % 60);
        *s = (int)(in / 1000 % 60);
        *frac = (int)(in % 1000);
}

void keel__time_compact(int64_t ms, char out[32])
{
        int64_t y;
        int mo, d, h, mi, s, f;
        split(ms, &y, &mo, &d, &h, &mi, &s, &f);
        snprintf(out, 32, "%04lld%02d%02dT%02d%02d%02dZ", (long long)y, mo, d,
                 h, mi, s);
}

void keel__time_rfc3339(int64_t ms, char out[32])
{
        int64_t y;
        int mo, d, h, mi, s, f;
        split(ms, &y, &mo, &d, &h, &mi, &s, &f);
        snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y,
                 mo, d, h, mi, s, f);
}

/* ---- the spec ----------------------------------------------------------- */

int keel__sched_spec_parse(const json_t *spec, keel__sched_spec_t *out,
                           char *err, size_t errsize)
{
        const json_t *cron = json_object_get(spec, "cron");
        const json_t *iv = json_object_get(spec, "interval_ms");
        const json_t *off = json_object_get(spec, "offset_ms");
        const char *key;
        const json_t *v;

        memset(out, 0, sizeof(*out));
        if (!json_is_object(spec)) {
                snprintf(err, errsize,
                         "spec must be an object: {\"cron\": \"0 3 * * *\"} "
                         "or {\"interval_ms\": 60000}");
                return KEEL_ERR_INVALID_ARG;
        }
        json_object_foreach((json_t *)spec, key, v)
        {
                if (strcmp(key, "cron") && strcmp(key, "interval_ms") &&
                    strcmp(key, "offset_ms")) {
                        snprintf(err, errsize,
                                 "spec: unknown field '%.100s' (cron, "
                                 "interval_ms, offset_ms)",
                                 key);
                        return KEEL_ERR_INVALID_ARG;
                }
        }
        if (!cron == !iv) {
                snprintf(err, errsize,
                         "spec: give either cron or interval_ms (not %s)",
                         cron ? "both" : "neither");
                return KEEL_ERR_INVALID_ARG;
        }
        if (cron) {
                char why[400];
                if (!json_is_string(cron)) {
                        snprintf(err, errsize, "spec.cron must be a string");
                        return KEEL_ERR_INVALID_ARG;
                }
                if (off) {
                        snprintf(err, errsize,
                                 "spec.offset_ms goes with interval_ms, not "
                                 "cron");
                        return KEEL_ERR_INVALID_ARG;
                }
                if (keel__cron_parse(json_string_value(cron), &out->cron, why,
                                     sizeof(why))) {
                        snprintf(err, errsize, "spec.cron '%.100s': %s",
                                 json_string_value(cron), why);
                        return KEEL_ERR_INVALID_ARG;
                }
                out->is_cron = 1;
                return KEEL_OK;
        }
        if (!json_is_integer(iv) ||
            json_integer_value(iv) < KEEL__SCHEDULE_MIN_INTERVAL_MS ||
            json_integer_value(iv) > MAX_INTERVAL_MS) {
                snprintf(err, errsize,
                         "spec.interval_ms must be an integer from %d (1 s) "
                         "to %lld (ten years)",
                         KEEL__SCHEDULE_MIN_INTERVAL_MS,
                         (long long)MAX_INTERVAL_MS);
                return KEEL_ERR_INVALID_ARG;
        }
        out->interval_ms = json_integer_value(iv);
        if (off && (!json_is_integer(off) || json_integer_value(off) < 0 ||
                    json_integer_value(off) >= out->interval_ms)) {
                snprintf(err, errsize,
                         "spec.offset_ms must be an integer from 0 to "
                         "interval_ms - 1 (%lld)",
                         (long long)out->interval_ms - 1);
                return KEEL_ERR_INVALID_ARG;
        }
        out->offset_ms = off ? json_integer_value(off) : 0;
        return KEEL_OK;
}

int64_t keel__sched_spec_next(const keel__sched_spec_t *s, int64_t after_ms)
{
        int64_t next;
        if (s->is_cron)
                return keel__cron_next(&s->cron, after_ms, &next) ? -1 : next;
        return (floor_div(after_ms - s->offset_ms, s->interval_ms) + 1) *
                   s->interval_ms +
               s->offset_ms;
}

int64_t keel__sched_spec_between(const keel__sched_spec_t *s, int64_t after_ms,
                                 int64_t upto_ms, int64_t *last)
{
        int64_t t, n = 0;
        if (upto_ms - after_ms > CATCHUP_DAYS * DAY_MS)
                after_ms = upto_ms - CATCHUP_DAYS * DAY_MS;
        t = keel__sched_spec_next(s, after_ms);
        if (t < 0 || t > upto_ms)
                return 0;
        if (!s->is_cron) {
                n = (upto_ms - t) / s->interval_ms + 1;
                *last = t + (n - 1) * s->interval_ms;
                return n;
        }
        for (; t >= 0 && t <= upto_ms; t = keel__sched_spec_next(s, t)) {
                n++;
                *last = t;
        }
        return n;
}

/* ---- the input ---------------------------------------------------------- */

/* Whether every key of obj is one of keys (NULL-terminated); if not, the
 * message names it. */
static int known_keys(const json_t *obj, const char *const *keys,
                      const char *what, const char *list, char *err,
                      size_t errsize)
{
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)obj, key, v)
        {
                int ok = 0;
                for (int i = 0; keys[i] && !ok; i++)
                        ok = !strcmp(key, keys[i]);
                if (!ok) {
                        snprintf(err, errsize, "%sunknown field '%.100s' (%s)",
                                 what, key, list);
                        return 0;
                }
        }
        return 1;
}

int keel__schedule_parse(const json_t *input, keel__schedule_t *out, char *err,
                         size_t errsize)
{
        static const char *const top[] = {"spec",   "action", "overlap",
                                          "paused", "note",   "actions_per_run",
                                          "carry",  NULL};
        static const char *const act[] = {"workflow_type", "input", NULL};
        const json_t *v;
        char why[300];

        memset(out, 0, sizeof(*out));
        out->actions_per_run = KEEL__SCHEDULE_ACTIONS_PER_RUN;
        if (!json_is_object(input)) {
                snprintf(err, errsize,
                         "the input of a schedule is an object {\"spec\", "
                         "\"action\", \"overlap\", \"paused\", \"note\"}");
                return KEEL_ERR_INVALID_ARG;
        }
        if (!known_keys(input, top, "",
                        "spec, action, overlap, paused, note, "
                        "actions_per_run",
                        err, errsize))
                return KEEL_ERR_INVALID_ARG;
        out->spec_json = json_object_get(input, "spec");
        if (!out->spec_json) {
                snprintf(err, errsize,
                         "spec is missing: {\"cron\": \"0 3 * * *\"} or "
                         "{\"interval_ms\": 60000}");
                return KEEL_ERR_INVALID_ARG;
        }
        if (keel__sched_spec_parse(out->spec_json, &out->spec, err, errsize))
                return KEEL_ERR_INVALID_ARG;

        out->action = json_object_get(input, "action");
        if (!json_is_object(out->action)) {
                snprintf(err, errsize,
                         "action must be an object {\"workflow_type\": "
                         "\"...\", \"input\": ...}");
                return KEEL_ERR_INVALID_ARG;
        }
        if (!known_keys(out->action, act, "action: ", "workflow_type, input",
                        err, errsize))
                return KEEL_ERR_INVALID_ARG;
        out->workflow_type =
            json_string_value(json_object_get(out->action, "workflow_type"));
        if (!out->workflow_type ||
            keel__check_name(out->workflow_type, "action.workflow_type",
                             KEEL__NAME_MAX_BYTES, why, sizeof(why))) {
                snprintf(err, errsize, "%s",
                         out->workflow_type
                             ? why
                             : "action.workflow_type (a string) is missing");
                return KEEL_ERR_INVALID_ARG;
        }
        if (!strcmp(out->workflow_type, KEEL__SCHEDULE_TYPE)) {
                snprintf(err, errsize,
                         "action.workflow_type: a schedule does not start "
                         "schedules");
                return KEEL_ERR_INVALID_ARG;
        }
        out->action_input = json_object_get(out->action, "input");
        if (!out->action_input)
                out->action_input = json_null();

        v = json_object_get(input, "overlap");
        if (v) {
                int o = keel__overlap_parse(json_string_value(v));
                if (o < 0) {
                        snprintf(err, errsize,
                                 "overlap must be SKIP, BUFFER_ONE or "
                                 "ALLOW_ALL");
                        return KEEL_ERR_INVALID_ARG;
                }
                out->overlap = (keel__overlap_t)o;
        }
        v = json_object_get(input, "paused");
        if (v && !json_is_boolean(v)) {
                snprintf(err, errsize, "paused must be true or false");
                return KEEL_ERR_INVALID_ARG;
        }
        out->paused = json_is_true(v);
        v = json_object_get(input, "note");
        if (v && !json_is_null(v) &&
            (!json_is_string(v) || json_string_length(v) > NOTE_MAX)) {
                snprintf(err, errsize,
                         "note must be a string of at most %d "
                         "bytes",
                         NOTE_MAX);
                return KEEL_ERR_INVALID_ARG;
        }
        out->note = json_string_value(v);
        v = json_object_get(input, "actions_per_run");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                    json_integer_value(v) > 10000) {
                        snprintf(err, errsize,
                                 "actions_per_run must be an integer from 1 "
                                 "to 10000");
                        return KEEL_ERR_INVALID_ARG;
                }
                out->actions_per_run = json_integer_value(v);
        }
        v = json_object_get(input, "carry");
        if (v && !json_is_object(v)) {
                snprintf(err, errsize, "carry must be an object");
                return KEEL_ERR_INVALID_ARG;
        }
        out->carry = v;
        return KEEL_OK;
}

/* ---- the workflow ------------------------------------------------------- */

enum { SIG_PAUSE, SIG_RESUME, SIG_TRIGGER, SIG_UPDATE, SIG_DELETE, N_SIGS };
static const char *const sig_names[N_SIGS] = {"pause", "resume", "trigger",
                                              "update", "delete"};

/* An action the schedule started and waits for. */
typedef struct action_s {
        keel_future_t *f;
        const char *id;
} action_t;

/* The schedule as it stands in this run. Strings and JSON are the run's
 * (arena). */
typedef struct sched_s {
        keel_wf_t *wf;
        const char *name;
        json_t *input;        /* the configuration: the input without carry */
        keel__schedule_t cfg; /* read from input */
        /* over every run */
        json_int_t fired, skipped, missed, triggered;
        int64_t last_sched; /* the last occurrence handled */
        int64_t last_fired; /* when the last action started; -1: never */
        const char *last_action_id, *last_action_status;
        /* this run */
        json_int_t fired_here;
        const char *last_error; /* the last update refused, or NULL */
        const char *buffered;   /* BUFFER_ONE: the action to start next */
        action_t *running;
        size_t n_running, cap_running;
        json_t *published; /* the state last published, or NULL */
} sched_t;

static json_int_t carried(const json_t *carry, const char *key)
{
        return json_integer_value(json_object_get(carry, key));
}

static const char *carried_str(keel_wf_t *wf, const json_t *carry,
                               const char *key)
{
        const char *v = json_string_value(json_object_get(carry, key));
        return v ? keel_strdup(wf, v) : NULL;
}

/* Make in (owned by the run) the configuration, if it is valid. */
static int configure(sched_t *s, json_t *in, char *err, size_t errsize)
{
        keel__schedule_t c;
        if (keel__schedule_parse(in, &c, err, errsize))
                return -1;
        s->input = in;
        s->cfg = c;
        return 0;
}

static int load(sched_t *s, keel_wf_t *wf, const json_t *input, char *err,
                size_t errsize)
{
        const char *id = keel_wf_id(wf);
        size_t plen = strlen(KEEL__SCHEDULE_ID_PREFIX);
        const json_t *carry;
        json_t *in;

        s->wf = wf;
        s->name = strncmp(id, KEEL__SCHEDULE_ID_PREFIX, plen) ? id : id + plen;
        if (!*s->name || strlen(s->name) > KEEL_WORKFLOW_ID_MAX - 48) {
                snprintf(err, errsize,
                         "the schedule's name (its workflow ID without "
                         "'%s') must be 1 to %d bytes",
                         KEEL__SCHEDULE_ID_PREFIX, KEEL_WORKFLOW_ID_MAX - 48);
                return -1;
        }
        if (!json_is_object(input))
                return keel__schedule_parse(input, &s->cfg, err, errsize);
        in = keel_own(wf, json_deep_copy(input));
        carry = json_object_get(input, "carry");
        json_object_del(in, "carry");
        if (configure(s, in, err, errsize))
                return -1;
        if (carry && !json_is_object(carry)) {
                snprintf(err, errsize, "carry must be an object");
                return -1;
        }
        s->fired = carried(carry, "fired");
        s->skipped = carried(carry, "skipped");
        s->missed = carried(carry, "missed");
        s->triggered = carried(carry, "triggered");
        s->last_sched =
            json_is_integer(json_object_get(carry, "last_scheduled_ms"))
                ? carried(carry, "last_scheduled_ms")
                : keel_now(wf);
        s->last_fired = json_is_integer(json_object_get(carry, "last_fired_ms"))
                            ? carried(carry, "last_fired_ms")
                            : -1;
        s->last_action_id = carried_str(wf, carry, "last_action_id");
        s->last_action_status = carried_str(wf, carry, "last_action_status");
        return 0;
}

static json_t *time_or_null(int64_t ms)
{
        char buf[32];
        if (ms < 0)
                return json_null();
        keel__time_rfc3339(ms, buf);
        return json_string(buf);
}

/* Publish the state if it changed; next: the next occurrence, -1: none. */
static void publish(sched_t *s, int64_t next)
{
        json_t *st = json_object(), *running = json_array();
        for (size_t i = 0; i < s->n_running; i++)
                json_array_append_new(running, json_string(s->running[i].id));
        json_object_set_new(st, "spec", json_deep_copy(s->cfg.spec_json));
        json_object_set_new(st, "action", json_deep_copy(s->cfg.action));
        json_object_set_new(st, "overlap",
                            json_string(keel__overlap_name(s->cfg.overlap)));
        json_object_set_new(st, "paused", json_boolean(s->cfg.paused));
        json_object_set_new(
            st, "note", s->cfg.note ? json_string(s->cfg.note) : json_null());
        json_object_set_new(st, "next_fire_at", time_or_null(next));
        json_object_set_new(st, "last_fired_at", time_or_null(s->last_fired));
        json_object_set_new(st, "last_action_id",
                            s->last_action_id ? json_string(s->last_action_id)
                                              : json_null());
        json_object_set_new(st, "last_action_status",
                            s->last_action_status
                                ? json_string(s->last_action_status)
                                : json_null());
        json_object_set_new(st, "fired", json_integer(s->fired));
        json_object_set_new(st, "skipped", json_integer(s->skipped));
        json_object_set_new(st, "missed", json_integer(s->missed));
        json_object_set_new(st, "triggered", json_integer(s->triggered));
        json_object_set_new(st, "running", running);
        json_object_set_new(st, "buffered",
                            s->buffered ? json_string(s->buffered)
                                        : json_null());
        if (s->last_error)
                json_object_set_new(st, "last_error",
                                    json_string(s->last_error));
        keel_own(s->wf, st);
        if (s->published && json_equal(st, s->published))
                return;
        keel_set_state(s->wf, json_incref(st));
        s->published = st;
}

/* Keep the search attribute KeelSchedulePaused in step with the state. */
static void sync_paused(sched_t *s)
{
        const json_t *v =
            json_object_get(keel_wf_search_attributes(s->wf), PAUSED_ATTR);
        if (!json_is_boolean(v) || json_is_true(v) != !!s->cfg.paused)
                keel_upsert_search_attributes(
                    s->wf, json_pack("{sb}", PAUSED_ATTR, s->cfg.paused));
}

static void start_action(sched_t *s, const char *id)
{
        keel_child_options_t o = {.workflow_id = id,
                                  .parent_close_policy =
                                      KEEL_PARENT_CLOSE_ABANDON};
        keel_future_t *f =
            keel_start_child(s->wf, s->cfg.workflow_type,
                             json_deep_copy(s->cfg.action_input), &o);
        if (s->n_running == s->cap_running) {
                size_t cap = s->cap_running ? 2 * s->cap_running : 4;
                action_t *a = keel_alloc(s->wf, cap * sizeof(*a));
                if (s->n_running)
                        memcpy(a, s->running, s->n_running * sizeof(*a));
                s->running = a;
                s->cap_running = cap;
        }
        s->running[s->n_running].f = f;
        s->running[s->n_running++].id = id;
        s->fired++;
        s->fired_here++;
        s->last_fired = keel_now(s->wf);
        s->last_action_id = id;
        s->last_action_status = "running";
        keel_wf_log(s->wf, KEEL_LOG_INFO, "schedule %s: started %s (%s)",
                    s->name, id, s->cfg.workflow_type);
}

/* Occurrence `at` is due (or, trigger, asked for now): start its action
 * as the overlap policy says. */
static void occur(sched_t *s, int64_t at, int trigger)
{
        char ts[32], id[KEEL_WORKFLOW_ID_MAX + 1];
        keel__time_compact(at, ts);
        if (trigger)
                snprintf(id, sizeof(id), "%s-%s-trigger-%lld", s->name, ts,
                         (long long)++s->triggered);
        else
                snprintf(id, sizeof(id), "%s-%s", s->name, ts);
        if (s->cfg.overlap == KEEL__OVERLAP_ALLOW_ALL ||
            (!s->n_running && !s->buffered)) {
                start_action(s, keel_strdup(s->wf, id));
        } else if (s->cfg.overlap == KEEL__OVERLAP_BUFFER_ONE && !s->buffered) {
                s->buffered = keel_strdup(s->wf, id);
        } else {
                s->skipped++;
                keel_wf_log(s->wf, KEEL_LOG_INFO,
                            "schedule %s: skipped %s (%s, %s running)", s->name,
                            id, keel__overlap_name(s->cfg.overlap),
                            s->n_running ? s->running[0].id : "-");
        }
}

/* Action i closed: note how, and start the buffered one if it may. */
static void action_closed(sched_t *s, size_t i)
{
        static const char *const how[][2] = {
            {"ChildWorkflowCancelled", "cancelled"},
            {"ChildWorkflowTerminated", "terminated"},
            {"ChildWorkflowTimedOut", "timed_out"},
            {"ChildWorkflowStartFailed", "start_failed"}};
        int rc = keel_await(s->wf, s->running[i].f, NULL);
        s->last_action_status = "completed";
        if (rc) {
                const keel_failure_t *f = keel_wf_failure(s->wf);
                s->last_action_status = "failed";
                for (size_t k = 0; f && k < sizeof(how) / sizeof(how[0]); k++)
                        if (!strcmp(f->type, how[k][0]))
                                s->last_action_status = how[k][1];
                keel_wf_log(s->wf, KEEL_LOG_WARN, "schedule %s: %s %s: %s",
                            s->name, s->running[i].id, s->last_action_status,
                            f ? f->message : "?");
        }
        memmove(&s->running[i], &s->running[i + 1],
                (s->n_running - i - 1) * sizeof(*s->running));
        s->n_running--;
        if (s->buffered && !s->n_running) {
                const char *id = s->buffered;
                s->buffered = NULL;
                start_action(s, id);
        }
}

/* The configuration with changes (an update's payload) merged in, an
 * action's fields into the action. A new value owned by the run, or NULL
 * with err. */
static json_t *merged(sched_t *s, const json_t *changes, char *err,
                      size_t errsize)
{
        json_t *in, *act;
        if (!json_is_object(changes) || !json_object_size(changes) ||
            json_object_get(changes, "carry")) {
                snprintf(err, errsize,
                         "an update is a non-empty object of spec, action, "
                         "overlap, paused, note, actions_per_run");
                return NULL;
        }
        in = keel_own(s->wf, json_deep_copy(s->input));
        act = json_deep_copy(s->cfg.action);
        if (json_is_object(json_object_get(changes, "action")))
                json_object_update(act, json_object_get(changes, "action"));
        json_object_update(in, (json_t *)changes);
        if (json_is_object(json_object_get(changes, "action")))
                json_object_set(in, "action", act);
        json_decref(act);
        return in;
}

static int same_spec(const keel__sched_spec_t *a, const keel__sched_spec_t *b)
{
        if (a->is_cron != b->is_cron)
                return 0;
        if (!a->is_cron)
                return a->interval_ms == b->interval_ms &&
                       a->offset_ms == b->offset_ms;
        return a->cron.minutes == b->cron.minutes &&
               a->cron.hours == b->cron.hours &&
               a->cron.mdays == b->cron.mdays &&
               a->cron.months == b->cron.months &&
               a->cron.wdays == b->cron.wdays &&
               a->cron.mday_star == b->cron.mday_star &&
               a->cron.wday_star == b->cron.wday_star;
}

/* Take signal sig with its payload p. Returns 1 when the schedule is
 * deleted (*result set). */
static int on_signal(sched_t *s, int sig, const json_t *p, json_t **result)
{
        int64_t now = keel_now(s->wf);
        char err[600];
        const json_t *note = json_object_get(p, "note");
        json_t *in;

        switch (sig) {
        case SIG_PAUSE:
        case SIG_RESUME: {
                json_t *ch = json_pack("{sb}", "paused", sig == SIG_PAUSE);
                int was = s->cfg.paused;
                if (json_is_string(note))
                        json_object_set(ch, "note", (json_t *)note);
                in = merged(s, keel_own(s->wf, ch), err, sizeof(err));
                if (in && !configure(s, in, err, sizeof(err))) {
                        /* occurrences while paused are not missed ones */
                        if (was && !s->cfg.paused && now > s->last_sched)
                                s->last_sched = now;
                        sync_paused(s);
                }
                break;
        }
        case SIG_TRIGGER:
                occur(s, now, 1);
                break;
        case SIG_UPDATE: {
                int was = s->cfg.paused;
                keel__sched_spec_t before = s->cfg.spec;
                in = merged(s, p, err, sizeof(err));
                if (!in || configure(s, in, err, sizeof(err))) {
                        char msg[700];
                        snprintf(msg, sizeof(msg), "update refused: %s", err);
                        s->last_error = keel_strdup(s->wf, msg);
                        keel_wf_log(s->wf, KEEL_LOG_WARN, "schedule %s: %s",
                                    s->name, msg);
                        break;
                }
                s->last_error = NULL;
                /* a new spec counts from now; so does a resume */
                if ((!same_spec(&before, &s->cfg.spec) ||
                     (was && !s->cfg.paused)) &&
                    now > s->last_sched)
                        s->last_sched = now;
                sync_paused(s);
                break;
        }
        case SIG_DELETE:
                publish(s, -1);
                *result = json_pack("{sb sI sI sI sI}", "deleted", 1, "fired",
                                    s->fired, "skipped", s->skipped, "missed",
                                    s->missed, "triggered", s->triggered);
                keel_wf_log(s->wf, KEEL_LOG_INFO, "schedule %s: deleted",
                            s->name);
                return 1;
        }
        return 0;
}

/* The input of the next run: the configuration and the counters. */
static json_t *next_input(const sched_t *s)
{
        json_t *in = json_deep_copy(s->input);
        json_object_set_new(
            in, "carry",
            json_pack(
                "{sI sI sI sI sI sI ss* ss*}", "fired", s->fired, "skipped",
                s->skipped, "missed", s->missed, "triggered", s->triggered,
                "last_scheduled_ms", (json_int_t)s->last_sched, "last_fired_ms",
                (json_int_t)s->last_fired, "last_action_id", s->last_action_id,
                "last_action_status", s->last_action_status));
        return in;
}

keel_err_t keel__schedule_workflow(keel_wf_t *wf, const json_t *input,
                                   json_t **result)
{
        sched_t *s = keel_alloc(wf, sizeof(*s));
        keel_future_t *timer = NULL, *sigs[N_SIGS] = {0};
        int64_t timer_at = -1;
        int wakes = 0;
        char err[600];

        if (load(s, wf, input, err, sizeof(err)))
                return keel_fail(wf, "InvalidSchedule", err, NULL);
        sync_paused(s);
        for (;;) {
                int64_t now = keel_now(wf), next = -1;
                keel_future_t **fs;
                size_t n = 0, ready;

                if ((s->fired_here >= s->cfg.actions_per_run ||
                     wakes >= KEEL__SCHEDULE_WAKES_PER_RUN) &&
                    !s->buffered &&
                    (!s->n_running ||
                     s->cfg.overlap == KEEL__OVERLAP_ALLOW_ALL))
                        return keel_continue_as_new(wf, next_input(s));
                if (!s->cfg.paused) {
                        next =
                            keel__sched_spec_next(&s->cfg.spec, s->last_sched);
                        if (next >= 0 && next <= now) {
                                /* due: the latest occurrence by now fires,
                                 * those before it were missed */
                                int64_t last = next;
                                int64_t k = keel__sched_spec_between(
                                    &s->cfg.spec, s->last_sched, now, &last);
                                if (k > 1) {
                                        s->missed += k - 1;
                                        keel_wf_log(wf, KEEL_LOG_WARN,
                                                    "schedule %s: %lld "
                                                    "occurrences missed",
                                                    s->name,
                                                    (long long)(k - 1));
                                }
                                s->last_sched = last;
                                occur(s, last, 0);
                                continue;
                        }
                }
                if (timer && timer_at != next) {
                        keel_timer_cancel(wf, timer);
                        timer = NULL;
                }
                if (!timer && next >= 0) {
                        timer = keel_timer(wf, next - now);
                        timer_at = next;
                }
                publish(s, next);

                fs = keel_alloc(wf, (1 + N_SIGS + s->n_running) * sizeof(*fs));
                fs[n++] = timer;
                for (int i = 0; i < N_SIGS; i++) {
                        if (!sigs[i])
                                sigs[i] = keel_signal(wf, sig_names[i]);
                        fs[n++] = sigs[i];
                }
                for (size_t i = 0; i < s->n_running; i++)
                        fs[n++] = s->running[i].f;
                if (keel_select(wf, fs, n, &ready) == KEEL_ERR_CANCELLED)
                        return KEEL_ERR_CANCELLED;
                wakes++;
                if (ready == 0) {
                        timer = NULL; /* fired: the loop takes it from here */
                } else if (ready <= N_SIGS) {
                        json_t *p = NULL;
                        keel_await(wf, sigs[ready - 1], &p);
                        sigs[ready - 1] = NULL;
                        if (on_signal(s, (int)ready - 1, p, result))
                                return KEEL_OK;
                } else {
                        action_closed(s, ready - 1 - N_SIGS);
                }
        }
}

/*
 * testenv.c: the in-process test environment (keel/testing.h): the
 * partition state machine driven by a virtual clock, with activities run
 * inline as soon as their tasks come out. Since no handler is running when
 * the machine sends an ActivityCancel, those records are dropped; instead a
 * handler's heartbeat asks the machine whether its attempt was cancelled,
 * which is what a worker's heartbeat learns from them. Records workflows
 * emit (keel_emit()) are kept in the order produced, for
 * keel_testenv_emitted(). Canned activities
 * are a handler of their own (canned_outcome()) reading the outcomes
 * registered for them.
 */
#include "keel/testing.h"

#include "activity_int.h"
#include "machine_int.h"
#include "search_attrs_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_START_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define MAX_STEPS        10000000

typedef struct handler_s {
        char *name;
        keel_activity_fn_t fn;
        void *opaque;
        json_t *canned; /* keel_testenv_register_canned(): the outcomes
                           (owned; also the opaque of canned_outcome()) */
} handler_t;

struct keel_testenv_s {
        keel__machine_t *m;
        keel__out_t out;
        int64_t now;
        handler_t *handlers;
        size_t n_handlers;
        json_t *calls;   /* [{"name":..,"input":..}] */
        json_t *pending; /* tasks not yet run */
        json_t *emitted; /* records emitted, for keel_testenv_emitted() */
        unsigned long cmd_counter;
};

keel_testenv_t *keel_testenv_new(const keel_registry_t *reg, int64_t start_ms)
{
        keel_testenv_t *env = calloc(1, sizeof(*env));
        if (!env)
                return NULL;
        env->m = keel__machine_new(reg);
        env->calls = json_array();
        env->pending = json_array();
        env->emitted = json_array();
        if (!env->m || !env->calls || !env->pending || !env->emitted ||
            keel__out_init(&env->out)) {
                keel_testenv_destroy(env);
                return NULL;
        }
        /* keel_testenv_history() shows closed runs' events too. */
        keel__machine_keep_history(env->m, 1);
        env->now = start_ms ? start_ms : DEFAULT_START_MS;
        return env;
}

void keel_testenv_destroy(keel_testenv_t *env)
{
        if (!env)
                return;
        keel__machine_destroy(env->m);
        keel__out_destroy(&env->out);
        for (size_t i = 0; i < env->n_handlers; i++) {
                free(env->handlers[i].name);
                json_decref(env->handlers[i].canned);
        }
        free(env->handlers);
        json_decref(env->calls);
        json_decref(env->pending);
        json_decref(env->emitted);
        free(env);
}

int keel_testenv_set_config(keel_testenv_t *env, const keel_config_t *cfg)
{
        keel__machine_limits_t lim;
        json_t *by_type;
        int rc = keel__machine_limits_from_config(cfg, &lim, &by_type);
        if (!rc)
                rc = keel__machine_set_limits(env->m, &lim);
        json_decref(by_type);
        return rc;
}

/* Run fn with opaque for `name`, replacing what was registered for it;
 * canned (stolen, may be NULL) is freed with the handler. */
static int install(keel_testenv_t *env, const char *name, keel_activity_fn_t fn,
                   void *opaque, json_t *canned)
{
        handler_t *h = NULL;
        for (size_t i = 0; i < env->n_handlers && !h; i++)
                if (!strcmp(env->handlers[i].name, name))
                        h = &env->handlers[i]; /* a later one replaces it */
        if (!h) {
                char *copy = strdup(name);
                h = copy ? realloc(env->handlers,
                                   (env->n_handlers + 1) * sizeof(*h))
                         : NULL;
                if (!h) {
                        free(copy);
                        json_decref(canned);
                        return KEEL_ERR_NOMEM;
                }
                env->handlers = h;
                h = &env->handlers[env->n_handlers++];
                h->name = copy;
                h->canned = NULL;
        }
        json_decref(h->canned);
        h->fn = fn;
        h->opaque = opaque;
        h->canned = canned;
        return KEEL_OK;
}

int keel_testenv_register_activity(keel_testenv_t *env, const char *name,
                                   keel_activity_fn_t fn, void *opaque)
{
        return install(env, name, fn, opaque, NULL);
}

/* The handler of canned activities: the outcome of this attempt, the last
 * one for attempts beyond the list. */
static int canned_outcome(keel_activity_ctx_t *ctx, const json_t *input,
                          json_t **result)
{
        const json_t *outcomes = keel_activity_opaque(ctx);
        size_t n = json_array_size(outcomes);
        size_t attempt = (size_t)keel_activity_attempt(ctx);
        const json_t *o = json_array_get(
            outcomes, (attempt >= 1 && attempt <= n ? attempt : n) - 1);
        const json_t *f = json_object_get(o, "failure");
        const json_t *details = json_object_get(f, "details");

        (void)input;
        if (json_object_get(o, "timeout"))
                return KEEL_ERR_TIMEOUT; /* a worker that never answers */
        if (f)
                return keel_activity_fail(
                    ctx, json_string_value(json_object_get(f, "type")),
                    json_string_value(json_object_get(f, "message")),
                    details ? json_deep_copy(details) : NULL,
                    json_is_true(json_object_get(f, "non_retryable")));
        *result = json_deep_copy(json_object_get(o, "result"));
        return KEEL_OK;
}

/* One canned outcome: an object with exactly one of "result" (any JSON),
 * "timeout" (true) or "failure" (an object with a string "type", and
 * optionally a string "message", a boolean "non_retryable" and
 * "details"). */
static int canned_valid(const json_t *o)
{
        const json_t *f = json_object_get(o, "failure");
        const json_t *msg = json_object_get(f, "message");
        const json_t *nr = json_object_get(f, "non_retryable");
        size_t known = 0;
        if (!json_is_object(o) || json_object_size(o) != 1)
                return 0;
        if (json_object_get(o, "result"))
                return 1;
        if (json_object_get(o, "timeout"))
                return json_is_true(json_object_get(o, "timeout"));
        if (!json_is_object(f) || !json_is_string(json_object_get(f, "type")) ||
            !*json_string_value(json_object_get(f, "type")) ||
            (msg && !json_is_string(msg)) || (nr && !json_is_boolean(nr)))
                return 0;
        known = 1 + (msg != NULL) + (nr != NULL) +
                (json_object_get(f, "details") != NULL);
        return json_object_size(f) == known;
}

int keel_testenv_register_canned(keel_testenv_t *env, const char *name,
                                 const json_t *outcomes)
{
        json_t *copy;
        size_t i;
        const json_t *o;
        if (!name || !*name || !json_is_array(outcomes) ||
            !json_array_size(outcomes))
                return KEEL_ERR_INVALID_ARG;
        json_array_foreach(outcomes, i, o)
        {
                if (!canned_valid(o))
                        return KEEL_ERR_INVALID_ARG;
        }
        if (!(copy = json_deep_copy(outcomes)))
                return KEEL_ERR_NOMEM;
        return install(env, name, canned_outcome, copy, copy);
}

static int collect_once(keel_testenv_t *env, int *rejected_err, json_t *inbox);

/*
 * Move what the machine produced into the pending tasks, then deliver the
 * commands it sent other workflows (children's starts, cancels and
 * closes), in order, as the orchestrators would from keel.inbox, and what
 * those produce, until none is left. Only the first command's refusal is
 * the caller's (*rejected_err).
 */
static int collect(keel_testenv_t *env, int *rejected_err)
{
        json_t *inbox = json_array();
        int rc;
        if (!inbox)
                return KEEL_ERR_NOMEM;
        rc = collect_once(env, rejected_err, inbox);
        while (!rc && json_array_size(inbox)) {
                json_t *c = json_incref(json_array_get(inbox, 0));
                json_array_remove(inbox, 0);
                rc = keel__machine_command(
                    env->m, json_string_value(json_object_get(c, "type")),
                    json_object_get(c, "record"), env->now, &env->out);
                json_decref(c);
                if (!rc)
                        rc = collect_once(env, NULL, inbox);
        }
        json_decref(inbox);
        return rc;
}

static int collect_once(keel_testenv_t *env, int *rejected_err, json_t *inbox)
{
        size_t i;
        json_t *t;
        if (json_array_extend(inbox, env->out.inbox))
                return KEEL_ERR_NOMEM;
        json_array_foreach(env->out.tasks, i, t)
        {
                if (json_object_get(t, "record_type"))
                        continue; /* an ActivityCancel: see heartbeat() */
                if (json_array_append(env->pending, t))
                        return KEEL_ERR_NOMEM;
        }
        /* What a read_committed consumer of the topics would see: the
         * records as produced, the value as JSON again. */
        json_array_foreach(env->out.emits, i, t)
        {
                json_t *v =
                    json_loads(json_string_value(json_object_get(t, "value")),
                               JSON_DECODE_ANY, NULL);
                json_t *e = json_deep_copy(t);
                if (!v || !e || json_object_set_new(e, "value", v) ||
                    json_array_append_new(env->emitted, e)) {
                        json_decref(e);
                        return KEEL_ERR_NOMEM;
                }
        }
        if (rejected_err && json_array_size(env->out.rejects)) {
                const char *e = json_string_value(json_object_get(
                    json_array_get(env->out.rejects, 0), "error"));
                *rejected_err = e && !strcmp(e, "KEEL_ERR_ALREADY_STARTED")
                                    ? KEEL_ERR_ALREADY_STARTED
                                : e && !strcmp(e, "KEEL_ERR_NOT_FOUND")
                                    ? KEEL_ERR_NOT_FOUND
                                    : KEEL_ERR_INVALID_ARG;
        }
        keel__out_reset(&env->out);
        return KEEL_OK;
}

static int command(keel_testenv_t *env, const char *type, json_t *rec)
{
        int rc, rej = KEEL_OK;
        char cid[32];
        if (!rec)
                return KEEL_ERR_NOMEM;
        snprintf(cid, sizeof(cid), "test-%lu", ++env->cmd_counter);
        json_object_set_new(rec, "command_id", json_string(cid));
        json_object_set_new(rec, "ts", json_integer(env->now));
        rc = keel__machine_command(env->m, type, rec, env->now, &env->out);
        json_decref(rec);
        if (!rc)
                rc = collect(env, &rej);
        return rc ? rc : rej;
}

static char *text(json_t *j)
{
        char *s =
            json_dumps(j ? j : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        return s;
}

int keel_testenv_start(keel_testenv_t *env, const char *id, const char *type,
                       json_t *input)
{
        return keel_testenv_start_ex(env, id, type, input, NULL);
}

/* Set key to v's JSON text, or leave it out for NULL; -1 when out of
 * memory. */
static int set_text(json_t *rec, const char *key, const json_t *v)
{
        char *t;
        int rc;
        if (!v)
                return 0;
        t = text(json_incref((json_t *)v));
        rc = t ? json_object_set_new(rec, key, json_string(t)) : -1;
        free(t);
        return rc;
}

int keel_testenv_start_ex(keel_testenv_t *env, const char *id, const char *type,
                          json_t *input, const keel_start_options_t *opts)
{
        static const keel_start_options_t none = {0};
        char *in = text(input);
        json_t *rec;

        if (!opts)
                opts = &none;
        rec = json_pack("{ss ss ss ss* ss* ss*}", "workflow_id", id,
                        "workflow_type", type, "input", in ? in : "null",
                        "id_reuse_policy", opts->id_reuse_policy,
                        "id_conflict_policy", opts->id_conflict_policy,
                        "signal_name", opts->signal_name);
        free(in);
        if (rec &&
            ((opts->signal_name &&
              set_text(rec, "signal_payload",
                       opts->signal_payload ? opts->signal_payload
                                            : json_null())) ||
             set_text(rec, "search_attributes", opts->search_attributes) ||
             (opts->execution_timeout_ms &&
              json_object_set_new(rec, "execution_timeout_ms",
                                  json_integer(opts->execution_timeout_ms))) ||
             (opts->run_timeout_ms &&
              json_object_set_new(rec, "run_timeout_ms",
                                  json_integer(opts->run_timeout_ms))))) {
                json_decref(rec);
                rec = NULL;
        }
        return command(env, "keel.inbox.StartWorkflow", rec);
}

int keel_testenv_signal(keel_testenv_t *env, const char *id, const char *name,
                        json_t *payload)
{
        char *p = text(payload);
        int rc =
            command(env, "keel.inbox.SignalWorkflow",
                    json_pack("{ss ss ss}", "workflow_id", id, "signal_name",
                              name, "payload", p ? p : "null"));
        free(p);
        return rc;
}

int keel_testenv_cancel(keel_testenv_t *env, const char *id, const char *reason)
{
        return command(env, "keel.inbox.CancelWorkflow",
                       json_pack("{ss ss}", "workflow_id", id, "reason",
                                 reason ? reason : ""));
}

int keel_testenv_terminate(keel_testenv_t *env, const char *id,
                           const char *reason)
{
        return command(env, "keel.inbox.TerminateWorkflow",
                       json_pack("{ss ss}", "workflow_id", id, "reason",
                                 reason ? reason : ""));
}

static const handler_t *find_handler(const keel_testenv_t *env,
                                     const char *name)
{
        for (size_t i = 0; i < env->n_handlers; i++)
                if (!strcmp(env->handlers[i].name, name))
                        return &env->handlers[i];
        return NULL;
}

static const char *tstr(const json_t *task, const char *k)
{
        const char *s = json_string_value(json_object_get(task, k));
        return s ? s : "";
}

static int heartbeat(void *opaque, const json_t *task, const json_t *details)
{
        keel_testenv_t *env = opaque;
        char *d;
        json_t *rec;
        int rc;

        if (keel__machine_activity_cancelled(
                env->m, tstr(task, "workflow_id"), tstr(task, "run_id"),
                tstr(task, "activity_id"),
                (int)json_integer_value(json_object_get(task, "attempt"))))
                return KEEL_ERR_CANCELLED;
        d = json_dumps(details, JSON_COMPACT | JSON_ENCODE_ANY);
        rec = json_pack("{ss ss sI sO sO sO ss}", "workflow_id",
                        json_string_value(json_object_get(task, "workflow_id")),
                        "command_id", "hb", "ts", (json_int_t)env->now,
                        "run_id", json_object_get(task, "run_id"),
                        "activity_id", json_object_get(task, "activity_id"),
                        "attempt", json_object_get(task, "attempt"), "details",
                        d ? d : "null");
        free(d);
        if (!rec)
                return KEEL_ERR_NOMEM;
        rc = keel__machine_command(env->m, "keel.inbox.ActivityHeartbeat", rec,
                                   env->now, &env->out);
        json_decref(rec);
        return rc ? rc : collect(env, NULL);
}

static int run_task(keel_testenv_t *env, json_t *task)
{
        const char *name =
            json_string_value(json_object_get(task, "activity_type"));
        const handler_t *h = find_handler(env, name ? name : "");
        json_t *input =
            json_loads(json_string_value(json_object_get(task, "input")),
                       JSON_DECODE_ANY, NULL);
        const char *type;
        json_t *rec;
        int rc;

        json_array_append_new(env->calls,
                              json_pack("{ss so}", "name", name ? name : "",
                                        "input", input ? input : json_null()));
        rc = keel__activity_run(h ? h->fn : NULL, h ? h->opaque : NULL, task,
                                "testenv", env->now, heartbeat, env, &type,
                                &rec);
        if (rc || !rec)
                return rc;
        rc = keel__machine_command(env->m, type, rec, env->now, &env->out);
        json_decref(rec);
        return rc ? rc : collect(env, NULL);
}

int keel_testenv_run_until(keel_testenv_t *env, int64_t until_ms)
{
        for (long step = 0; step < MAX_STEPS; step++) {
                int64_t due;
                int rc;
                if (json_array_size(env->pending)) {
                        json_t *task =
                            json_incref(json_array_get(env->pending, 0));
                        json_array_remove(env->pending, 0);
                        rc = run_task(env, task);
                        json_decref(task);
                        if (rc)
                                return rc;
                        continue;
                }
                due = keel__machine_next_due(env->m);
                if (due == INT64_MAX || due > until_ms) {
                        if (until_ms != INT64_MAX && until_ms > env->now)
                                env->now = until_ms;
                        return KEEL_OK;
                }
                if (due > env->now)
                        env->now = due;
                if ((rc = keel__machine_tick(env->m, env->now, env->now,
                                             &env->out)) ||
                    (rc = collect(env, NULL)))
                        return rc;
        }
        return KEEL_ERR_TIMEOUT;
}

int keel_testenv_run_before(keel_testenv_t *env, int64_t at_ms)
{
        int rc = keel_testenv_run_until(env, at_ms - 1);
        if (!rc && env->now < at_ms)
                env->now = at_ms;
        return rc;
}

int keel_testenv_run(keel_testenv_t *env)
{
        return keel_testenv_run_until(env, INT64_MAX);
}

int64_t keel_testenv_now(const keel_testenv_t *env)
{
        return env->now;
}

const char *keel_testenv_status(keel_testenv_t *env, const char *id)
{
        keel__run_info_t info;
        return keel__machine_run(env->m, id, &info) ? NULL : info.status;
}

const json_t *keel_testenv_history(keel_testenv_t *env, const char *id)
{
        keel__run_info_t info;
        return keel__machine_run(env->m, id, &info) ? NULL : info.events;
}

json_t *keel_testenv_result(keel_testenv_t *env, const char *id)
{
        const json_t *h = keel_testenv_history(env, id);
        const json_t *last = json_array_get(h, json_array_size(h) - 1);
        if (!last || strcmp(json_string_value(json_object_get(last, "type")),
                            "keel.history.WorkflowCompleted"))
                return NULL;
        return json_loads(json_string_value(json_object_get(
                              json_object_get(last, "record"), "result")),
                          JSON_DECODE_ANY, NULL);
}

json_t *keel_testenv_state(keel_testenv_t *env, const char *id)
{
        const json_t *h = keel_testenv_history(env, id);
        for (size_t i = json_array_size(h); i > 0; i--) {
                const json_t *ev = json_array_get(h, i - 1);
                const json_t *rec = json_object_get(ev, "record");
                if (!strcmp(json_string_value(json_object_get(ev, "type")),
                            "keel.history.MarkerRecorded") &&
                    !strcmp(
                        json_string_value(json_object_get(rec, "marker_name")),
                        "state"))
                        return json_loads(
                            json_string_value(json_object_get(rec, "details")),
                            JSON_DECODE_ANY, NULL);
        }
        return NULL;
}

json_t *keel_testenv_search_attributes(keel_testenv_t *env, const char *id)
{
        const json_t *h = keel_testenv_history(env, id), *ev;
        json_t *set;
        size_t i;

        if (!h || !(set = json_object()))
                return NULL;
        json_array_foreach(h, i, ev)
        {
                if (keel__sa_apply(&set, ev)) {
                        json_decref(set);
                        return NULL;
                }
        }
        return set;
}

size_t keel_testenv_calls(const keel_testenv_t *env, const char *name)
{
        size_t i, n = 0;
        const json_t *c;
        json_array_foreach(env->calls, i, c)
        {
                if (!strcmp(json_string_value(json_object_get(c, "name")),
                            name))
                        n++;
        }
        return n;
}

const json_t *keel_testenv_call_input(const keel_testenv_t *env,
                                      const char *name, size_t idx)
{
        size_t i, n = 0;
        const json_t *c;
        json_array_foreach(env->calls, i, c)
        {
                if (strcmp(json_string_value(json_object_get(c, "name")), name))
                        continue;
                if (n++ == idx)
                        return json_object_get(c, "input");
        }
        return NULL;
}

const json_t *keel_testenv_emitted(const keel_testenv_t *env)
{
        return env->emitted;
}

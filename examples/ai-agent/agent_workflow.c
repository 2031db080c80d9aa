/*
 * agent_workflow.c: the AI agent workflow (agent.h), plain C on keel's
 * workflow API. It reads top to bottom as the agent works: plan, approval,
 * search, write, review, describe, open a pull request, approval, merge,
 * summarize. Every way out goes through finish(), which undoes the tools'
 * changes (the compensation) unless the run completed.
 *
 * Input: {"task": "...", "repo": "owner/name" (default example/service),
 * durations in ms, all optional: "plan_approval_ms" and
 * "action_approval_ms" (each approval's deadline, 15 min),
 * "llm_timeout_ms" and "tool_timeout_ms" (start-to-close, 30 s),
 * "heartbeat_ms" (a model call's heartbeat timeout, 10 s),
 * "retry_initial_ms" (the first retry's delay, 1 s, doubling up to 5
 * attempts); and the fakes' knobs, passed on to the activities:
 * "transient_failures", "slow_ms", "refuse" (agent_llm) and "fail_tool"}.
 *
 * Result: {"status": "completed", "pull_request": n, "title", "summary",
 * "approvals": {"plan": {...}, "action": {...}}}; or, after compensating,
 * {"status": "rejected", "step": "plan"|"action", "by", "comment",
 * "undone": [...]} for a rejection and {"status": "expired", "step",
 * "undone"} when a deadline passed with no decision. A model or tool that
 * fails for good fails the run (ModelFailed, ToolFailed) once the
 * compensation ran; a cancel request ends it as cancelled, also after
 * compensating.
 */
#include "agent.h"

#include <string.h>

#define TOOL_TIMEOUT_MS      30000
#define HEARTBEAT_TIMEOUT_MS 10000
#define RETRY_INITIAL_MS     1000
#define MAX_ATTEMPTS         5
#define REJECTED             1 /* approval(): a person said no */

/* Model errors no retry can fix. */
static const char *const llm_fatal[] = {"ModelRefused", "InvalidRequest"};

/* The fakes' knobs in the workflow's input, passed on as they are. */
static const char *const llm_knobs[] = {"transient_failures", "slow_ms",
                                        "refuse"};
static const char *const tool_knobs[] = {"fail_tool"};

/* A tool's change, to undo if the run does not complete. */
typedef struct change_s {
        const char *tool;
        json_int_t pr;
} change_t;

typedef struct agent_s {
        keel_wf_t *wf;
        const json_t *in;
        const char *task, *repo;
        keel_activity_options_t llm, tool;
        /* what is published (keel_set_state) */
        const char *plan, *last_tool;
        json_int_t pr;
        int64_t deadline; /* of the approval waited for, or 0 */
        /* the changes made, oldest first */
        change_t changes[2];
        size_t n_changes;
        /* how the run ends */
        int cancelled;
        const char *waited_for; /* "plan" or "action" */
        const json_t *approvals[2], *decision;
        const char *fail_type, *fail_step, *fail_cause, *fail_message;
} agent_t;

/* A duration from the input: a non-negative integer, else dflt. */
static int64_t duration(const json_t *in, const char *key, int64_t dflt)
{
        const json_t *v = json_object_get(in, key);
        return json_is_integer(v) && json_integer_value(v) >= 0
                   ? (int64_t)json_integer_value(v)
                   : dflt;
}

static const char *str(const json_t *obj, const char *key)
{
        const char *s = json_string_value(json_object_get(obj, key));
        return s ? s : "";
}

/* Publish where the agent stands: the dashboard's and API's "state". */
static void publish(agent_t *ag, const char *step)
{
        json_t *st =
            json_pack("{ss ss? ss? so}", "step", step, "plan", ag->plan,
                      "last_tool", ag->last_tool, "pull_request",
                      ag->pr ? json_integer(ag->pr) : json_null());
        if (st && ag->deadline)
                json_object_set_new(st, "approval_deadline_ms",
                                    json_integer(ag->deadline));
        keel_set_state(ag->wf, st);
}

static void pass_knobs(const agent_t *ag, json_t *in, const char *const *keys,
                       size_t n)
{
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_object_get(ag->in, keys[i]);
                if (v)
                        json_object_set(in, keys[i], v);
        }
}

/* Keep why the run fails: the failure is replaced by the next one. */
static void note_failure(agent_t *ag, const char *type, const char *step)
{
        const keel_failure_t *f = keel_wf_failure(ag->wf);
        ag->fail_type = type;
        ag->fail_step = step;
        ag->fail_cause = f->type;
        ag->fail_message = f->message;
}

/* One model call; context is stolen. */
static int llm(agent_t *ag, const char *step, json_t *context, json_t **out)
{
        json_t *in = json_pack("{ss ss so}", "step", step, "task", ag->task,
                               "context", context ? context : json_object());
        int rc;
        if (in)
                pass_knobs(ag, in, llm_knobs,
                           sizeof(llm_knobs) / sizeof(llm_knobs[0]));
        rc = keel_activity(ag->wf, "llm", in, &ag->llm, out);
        if (rc == KEEL_ERR_ACTIVITY_FAILED)
                note_failure(ag, "ModelFailed", step);
        return rc;
}

/*
 * Wait for f to end, even through a cancel request: keel tells the
 * activity to stop, and whether it changed anything before it did is
 * known only from how it ends. Sets ag->cancelled if a request came.
 */
static int settle(agent_t *ag, keel_future_t *f, json_t **out)
{
        int rc = keel_await(ag->wf, f, out);
        if (rc == KEEL_ERR_CANCELLED) {
                ag->cancelled = 1;
                rc = keel_await(ag->wf, f, out); /* delivered once only */
        }
        return rc;
}

/* One tool call; in is stolen. A tool that changes things (undoable)
 * runs to its end, and its change is remembered for compensation. */
static int tool(agent_t *ag, const char *name, json_t *in, int undoable,
                json_t **out)
{
        keel_future_t *f;
        int rc;

        if (in) {
                json_object_set_new(in, "repo", json_string(ag->repo));
                pass_knobs(ag, in, tool_knobs,
                           sizeof(tool_knobs) / sizeof(tool_knobs[0]));
        }
        f = keel_activity_async(ag->wf, name, in, &ag->tool);
        rc = undoable ? settle(ag, f, out) : keel_await(ag->wf, f, out);
        if (rc == KEEL_ERR_ACTIVITY_FAILED) {
                note_failure(ag, "ToolFailed", name);
                return rc;
        }
        if (rc)
                return rc;
        ag->last_tool = name;
        if (undoable) {
                json_int_t pr =
                    json_integer_value(json_object_get(*out, "pull_request"));
                ag->changes[ag->n_changes].tool = name;
                ag->changes[ag->n_changes++].pr = pr;
        }
        return ag->cancelled ? KEEL_ERR_CANCELLED : KEEL_OK;
}

/*
 * Wait for a person's decision, signal `name` with {"approved": bool,
 * "by", "comment"}, until `key` ms (from the input) have passed. A signal
 * without a boolean "approved" is logged and ignored; the deadline stays.
 * KEEL_OK (approved), REJECTED, KEEL_ERR_TIMEOUT or KEEL_ERR_CANCELLED.
 */
static int approval(agent_t *ag, const char *name, const char *key,
                    const char *step, const char *what)
{
        ag->waited_for = what;
        ag->deadline =
            keel_now(ag->wf) + duration(ag->in, key, AGENT_APPROVAL_MS);
        publish(ag, step);
        for (;;) {
                int64_t left = ag->deadline - keel_now(ag->wf);
                json_t *p;
                int rc =
                    keel_wait_signal(ag->wf, name, left > 0 ? left : 0, &p);
                const json_t *ok = json_object_get(p, "approved");
                if (rc)
                        return rc;
                if (json_is_boolean(ok)) {
                        ag->deadline = 0;
                        ag->decision = p;
                        return json_is_true(ok) ? KEEL_OK : REJECTED;
                }
                keel_wf_log(ag->wf, KEEL_LOG_WARN,
                            "msg=\"%s without a boolean 'approved' ignored\"",
                            name);
        }
}

/* Undo the changes, newest first. A cancel request does not stop an
 * undo; an undo the request caught before it started runs again. */
static json_t *compensate(agent_t *ag)
{
        json_t *undone = keel_own(ag->wf, json_array());
        if (ag->n_changes)
                publish(ag, "compensating");
        while (ag->n_changes) {
                const change_t *c = &ag->changes[--ag->n_changes];
                int rc = KEEL_ERR_ACTIVITY_FAILED;
                for (int i = 0; i < 2 && rc == KEEL_ERR_ACTIVITY_FAILED; i++) {
                        json_t *in =
                            json_pack("{ss ss sI}", "tool", c->tool, "repo",
                                      ag->repo, "pull_request", c->pr);
                        rc = settle(
                            ag,
                            keel_activity_async(ag->wf, "undo", in, &ag->tool),
                            NULL);
                        if (rc == KEEL_ERR_ACTIVITY_FAILED &&
                            strcmp(keel_wf_failure(ag->wf)->type, "Cancelled"))
                                break;
                }
                if (rc == KEEL_OK)
                        json_array_append_new(undone, json_string(c->tool));
                else
                        keel_wf_log(ag->wf, KEEL_LOG_ERROR,
                                    "msg=\"could not undo %s of pull request "
                                    "%lld\"",
                                    c->tool, (long long)c->pr);
        }
        return undone;
}

/* Every way out but completion: compensate, then end as rc says. */
static keel_err_t finish(agent_t *ag, int rc, json_t **result)
{
        json_t *undone;
        if (rc == KEEL_ERR_CANCELLED)
                ag->cancelled = 1;
        ag->deadline = 0;
        undone = compensate(ag);
        if (ag->cancelled) {
                publish(ag, "cancelled");
                return KEEL_ERR_CANCELLED;
        }
        if (rc == REJECTED) {
                publish(ag, "rejected");
                *result = json_pack(
                    "{ss ss ss ss sO}", "status", "rejected", "step",
                    ag->waited_for, "by", str(ag->decision, "by"), "comment",
                    str(ag->decision, "comment"), "undone", undone);
                return KEEL_OK;
        }
        if (rc == KEEL_ERR_TIMEOUT) {
                publish(ag, "expired");
                *result = json_pack("{ss ss sO}", "status", "expired", "step",
                                    ag->waited_for, "undone", undone);
                return KEEL_OK;
        }
        publish(ag, "failed");
        return keel_fail(ag->wf, ag->fail_type, ag->fail_message,
                         json_pack("{ss ss sO}", "step", ag->fail_step, "cause",
                                   ag->fail_cause, "undone", undone));
}

static void options(agent_t *ag)
{
        const json_t *in = ag->in;
        keel_retry_policy_t retry = {
            .initial_interval_ms =
                duration(in, "retry_initial_ms", RETRY_INITIAL_MS),
            .backoff_coefficient = 2.0,
            .maximum_attempts = MAX_ATTEMPTS};

        ag->tool.task_queue = ag->llm.task_queue = AGENT_QUEUE;
        ag->tool.retry = ag->llm.retry = retry;
        ag->llm.start_to_close_ms =
            duration(in, "llm_timeout_ms", AGENT_LLM_TIMEOUT_MS);
        ag->llm.heartbeat_ms =
            duration(in, "heartbeat_ms", HEARTBEAT_TIMEOUT_MS);
        ag->llm.retry.non_retryable_error_types = llm_fatal;
        ag->llm.retry.non_retryable_error_types_cnt =
            sizeof(llm_fatal) / sizeof(llm_fatal[0]);
        ag->tool.start_to_close_ms =
            duration(in, "tool_timeout_ms", TOOL_TIMEOUT_MS);
}

static keel_err_t agent(keel_wf_t *wf, const json_t *input, json_t **result)
{
        agent_t *ag = keel_alloc(wf, sizeof(*ag));
        json_t *plan, *found, *patch, *review, *desc, *opened, *merged, *sum;
        int rc;

        ag->wf = wf;
        ag->in = input;
        ag->task = json_string_value(json_object_get(input, "task"));
        ag->repo = json_string_value(json_object_get(input, "repo"));
        if (!ag->repo)
                ag->repo = "example/service";
        if (!ag->task || !*ag->task)
                return keel_fail(wf, "InvalidInput",
                                 "the input needs a \"task\" string", NULL);
        options(ag);

        publish(ag, "planning");
        if ((rc = llm(ag, "plan", NULL, &plan)))
                return finish(ag, rc, result);
        ag->plan = str(plan, "text");
        if ((rc = approval(ag, AGENT_SIGNAL_PLAN, "plan_approval_ms",
                           "awaiting_plan_approval", "plan")))
                return finish(ag, rc, result);
        ag->approvals[0] = ag->decision;

        publish(ag, "searching");
        if ((rc = tool(ag, "searchCode", json_pack("{ss}", "query", ag->task),
                       0, &found)))
                return finish(ag, rc, result);
        publish(ag, "writing");
        if ((rc = llm(ag, "write",
                      json_pack("{ss sO}", "plan", ag->plan, "files",
                                json_object_get(found, "files")),
                      &patch)))
                return finish(ag, rc, result);
        publish(ag, "reviewing");
        if ((rc =
                 llm(ag, "review",
                     json_pack("{ss}", "patch", str(patch, "patch")), &review)))
                return finish(ag, rc, result);
        publish(ag, "describing");
        if ((rc = llm(ag, "describe",
                      json_pack("{ss sO}", "patch", str(patch, "patch"),
                                "review", review),
                      &desc)))
                return finish(ag, rc, result);

        publish(ag, "opening_pull_request");
        if ((rc = tool(ag, "openPullRequest",
                       json_pack("{ss ss ss}", "title", str(desc, "title"),
                                 "body", str(desc, "body"), "patch",
                                 str(patch, "patch")),
                       1, &opened)))
                return finish(ag, rc, result);
        ag->pr = json_integer_value(json_object_get(opened, "pull_request"));
        if ((rc = approval(ag, AGENT_SIGNAL_ACTION, "action_approval_ms",
                           "awaiting_action_approval", "action")))
                return finish(ag, rc, result);
        ag->approvals[1] = ag->decision;

        publish(ag, "merging");
        if ((rc = tool(ag, "mergePullRequest",
                       json_pack("{sI}", "pull_request", ag->pr), 1, &merged)))
                return finish(ag, rc, result);
        publish(ag, "summarizing");
        if ((rc = llm(ag, "summarize",
                      json_pack("{sI ss ss}", "pull_request", ag->pr, "title",
                                str(desc, "title"), "commit",
                                str(merged, "commit")),
                      &sum)))
                return finish(ag, rc, result);

        publish(ag, "completed");
        *result = json_pack("{ss sI ss ss s{sO sO}}", "status", "completed",
                            "pull_request", ag->pr, "title", str(desc, "title"),
                            "summary", str(sum, "text"), "approvals", "plan",
                            ag->approvals[0], "action", ag->approvals[1]);
        return KEEL_OK;
}

int agent_register_workflow(keel_registry_t *reg)
{
        return keel_workflow_register(reg, AGENT_WORKFLOW, agent);
}

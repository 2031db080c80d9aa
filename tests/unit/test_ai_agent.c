/*
 * test_ai_agent.c: the AI agent example (examples/ai-agent) in the test
 * environment: the happy path through both approvals, deadlines that pass
 * (and an approval at the very millisecond of its deadline), rejections,
 * the fake model's transient failures retried and its refusals not,
 * compensation when a tool fails for good, and cancellation during an
 * approval wait, a model call and a tool call. Each test checks what a
 * user sees: which activities ran with which inputs, the published state,
 * the result or failure; and that the history replays against the code.
 */
#include "agent.h"
#include "keel/replay.h"
#include "keel/testing.h"
#include "keel_test.h"
#include "machine_int.h"

#include <string.h>

#define MINUTE (60LL * 1000)
#define TASK   "make the retry limit configurable"
#define ID     "agent-1"

static keel_registry_t *reg;

static keel_testenv_t *env_new(void)
{
        keel_testenv_t *env = keel_testenv_new(reg, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(env);
        for (size_t i = 0; i < agent_activities_cnt; i++)
                keel_testenv_register_activity(env, agent_activities[i].name,
                                               agent_activities[i].fn, NULL);
        return env;
}

/* Field k of o as text: "-" when it is not a string. */
static const char *text(const json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "-";
}

/* The agent's input: the task, a repository and the fields of `extra`
 * (stolen; may be NULL). */
static json_t *input(json_t *extra)
{
        json_t *in = json_pack("{ss ss}", "task", TASK, "repo", "acme/api");
        if (extra)
                json_object_update(in, extra);
        json_decref(extra);
        return in;
}

static json_t *decision(int approved, const char *by, const char *comment)
{
        return json_pack("{sb ss ss}", "approved", approved, "by", by,
                         "comment", comment);
}

/* Start ID with input(extra), both approvals already sent (signals wait
 * in order until the workflow asks for them). */
static void start_approved(keel_testenv_t *env, json_t *extra)
{
        CU_ASSERT_EQUAL_FATAL(
            keel_testenv_start(env, ID, AGENT_WORKFLOW, input(extra)), KEEL_OK);
        keel_testenv_signal(env, ID, AGENT_SIGNAL_PLAN,
                            decision(1, "alice", "good plan"));
        keel_testenv_signal(env, ID, AGENT_SIGNAL_ACTION,
                            decision(1, "bob", "ship it"));
}

/* Field `key` of the state ID published last, as text ("-" if none), in
 * a buffer that lasts until the next call. */
static const char *state_str(keel_testenv_t *env, const char *key)
{
        static char buf[512];
        json_t *st = keel_testenv_state(env, ID);
        snprintf(buf, sizeof(buf), "%s", text(st, key));
        json_decref(st);
        return buf;
}

static json_int_t state_int(keel_testenv_t *env, const char *key)
{
        json_t *st = keel_testenv_state(env, ID);
        json_int_t v = json_integer_value(json_object_get(st, key));
        json_decref(st);
        return v;
}

/* The step (input "step") of the i-th model call. */
static const char *llm_step(keel_testenv_t *env, size_t i)
{
        return text(keel_testenv_call_input(env, "llm", i), "step");
}

/* Events of ID whose type is keel.history.<type> and, unless NULL, whose
 * failure type is fail_type. */
static int events(keel_testenv_t *env, const char *type, const char *fail_type)
{
        const json_t *h = keel_testenv_history(env, ID);
        const json_t *ev;
        size_t i;
        int n = 0;
        json_array_foreach(h, i, ev)
        {
                const char *t = text(ev, "type");
                const json_t *f =
                    json_object_get(json_object_get(ev, "record"), "failure");
                if (strncmp(t, "keel.history.", 13) || strcmp(t + 13, type))
                        continue;
                if (fail_type && strcmp(text(f, "type"), fail_type))
                        continue;
                n++;
        }
        return n;
}

/* The record of ID's closing event. */
static const json_t *last_record(keel_testenv_t *env)
{
        const json_t *h = keel_testenv_history(env, ID);
        return json_object_get(json_array_get(h, json_array_size(h) - 1),
                               "record");
}

/* The details of ID's WorkflowFailed, parsed (a new reference). */
static json_t *failure_details(keel_testenv_t *env)
{
        const json_t *f = json_object_get(last_record(env), "failure");
        return json_loads(json_string_value(json_object_get(f, "details")),
                          JSON_DECODE_ANY, NULL);
}

static const char *failure_type(keel_testenv_t *env)
{
        return text(json_object_get(last_record(env), "failure"), "type");
}

/* ID's history replays against the agent code as it is. */
static void assert_replays(keel_testenv_t *env)
{
        keel_replay_report_t r;
        int rc = keel_replay(reg, keel_testenv_history(env, ID), &r);
        if (rc)
                fprintf(stderr, "replay: %s\n", r.message);
        CU_ASSERT_EQUAL(rc, KEEL_OK);
}

/* The i-th undo's input field `key`, as text. */
static const char *undo_str(keel_testenv_t *env, size_t i, const char *key)
{
        return text(keel_testenv_call_input(env, "undo", i), key);
}

static json_int_t undo_pr(keel_testenv_t *env, size_t i)
{
        return json_integer_value(json_object_get(
            keel_testenv_call_input(env, "undo", i), "pull_request"));
}

/* ---- the happy path ---------------------------------------------------- */

static void test_ai_agent_completes_with_both_approvals(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        static const char *const steps[] = {"plan", "write", "review",
                                            "describe", "summarize"};
        json_t *r;
        json_int_t pr;

        CU_ASSERT_EQUAL(
            keel_testenv_start(env, ID, AGENT_WORKFLOW, input(NULL)), KEEL_OK);
        CU_ASSERT_EQUAL(keel_testenv_run_until(env, t0 + MINUTE), KEEL_OK);
        /* the plan waits for a person */
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "running");
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"),
                               "awaiting_plan_approval");
        CU_ASSERT_PTR_NOT_NULL(strstr(state_str(env, "plan"), TASK));
        CU_ASSERT_EQUAL(state_int(env, "approval_deadline_ms"),
                        t0 + AGENT_APPROVAL_MS);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "searchCode"), 0);

        CU_ASSERT_EQUAL(keel_testenv_signal(env, ID, AGENT_SIGNAL_PLAN,
                                            decision(1, "alice", "good plan")),
                        KEEL_OK);
        keel_testenv_run_until(env, t0 + 2 * MINUTE);
        /* the pull request is open and waits for the merge approval */
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"),
                               "awaiting_action_approval");
        CU_ASSERT_STRING_EQUAL(state_str(env, "last_tool"), "openPullRequest");
        pr = state_int(env, "pull_request");
        CU_ASSERT(pr > 0);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 4);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "openPullRequest"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "mergePullRequest"), 0);
        CU_ASSERT_STRING_EQUAL(
            text(keel_testenv_call_input(env, "searchCode", 0), "query"), TASK);
        CU_ASSERT_STRING_EQUAL(
            text(keel_testenv_call_input(env, "openPullRequest", 0), "repo"),
            "acme/api");
        CU_ASSERT_PTR_NOT_NULL(strstr(
            text(keel_testenv_call_input(env, "openPullRequest", 0), "patch"),
            "src/config.c"));

        keel_testenv_signal(env, ID, AGENT_SIGNAL_ACTION,
                            decision(1, "bob", "ship it"));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "completed");
        r = keel_testenv_result(env, ID);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_STRING_EQUAL(text(r, "status"), "completed");
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "pull_request")),
                        pr);
        CU_ASSERT_PTR_NOT_NULL(
            strstr(text(r, "summary"), "Merged pull request #"));
        CU_ASSERT_STRING_EQUAL(
            text(json_object_get(json_object_get(r, "approvals"), "plan"),
                 "by"),
            "alice");
        CU_ASSERT_STRING_EQUAL(
            text(json_object_get(json_object_get(r, "approvals"), "action"),
                 "comment"),
            "ship it");
        json_decref(r);
        /* five model calls in order, three tools, nothing undone */
        CU_ASSERT_EQUAL_FATAL(keel_testenv_calls(env, "llm"), 5);
        for (size_t i = 0; i < 5; i++)
                CU_ASSERT_STRING_EQUAL(llm_step(env, i), steps[i]);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "searchCode"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "mergePullRequest"), 1);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            keel_testenv_call_input(env, "mergePullRequest", 0),
                            "pull_request")),
                        pr);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undo"), 0);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"), "completed");
        CU_ASSERT_STRING_EQUAL(state_str(env, "last_tool"), "mergePullRequest");
        /* both deadlines were called off */
        CU_ASSERT_EQUAL(events(env, "TimerCancelled", NULL), 2);
        CU_ASSERT_EQUAL(events(env, "TimerFired", NULL), 0);
        CU_ASSERT_EQUAL(keel_testenv_now(env), t0 + 2 * MINUTE);
        assert_replays(env);
        keel_testenv_destroy(env);
}

/* ---- deadlines --------------------------------------------------------- */

static void test_ai_agent_plan_approval_expires(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        json_t *r;

        keel_testenv_start(env, ID, AGENT_WORKFLOW, input(NULL));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "completed");
        /* 15 minutes with no decision */
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, AGENT_APPROVAL_MS);
        r = keel_testenv_result(env, ID);
        CU_ASSERT_STRING_EQUAL(text(r, "status"), "expired");
        CU_ASSERT_STRING_EQUAL(text(r, "step"), "plan");
        CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "undone")), 0);
        json_decref(r);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "searchCode"), 0);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undo"), 0);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"), "expired");
        assert_replays(env);
        keel_testenv_destroy(env);
}

static void test_ai_agent_action_approval_expires_and_compensates(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        json_int_t pr;
        json_t *r;

        keel_testenv_start(env, ID, AGENT_WORKFLOW,
                           input(json_pack("{sI}", "action_approval_ms",
                                           (json_int_t)(2 * MINUTE))));
        keel_testenv_signal(env, ID, AGENT_SIGNAL_PLAN,
                            decision(1, "alice", ""));
        keel_testenv_run_until(env, t0 + MINUTE);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"),
                               "awaiting_action_approval");
        /* the overridden deadline is published */
        CU_ASSERT_EQUAL(state_int(env, "approval_deadline_ms"),
                        t0 + 2 * MINUTE);
        pr = state_int(env, "pull_request");
        keel_testenv_run(env);
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, 2 * MINUTE);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "completed");
        r = keel_testenv_result(env, ID);
        CU_ASSERT_STRING_EQUAL(text(r, "status"), "expired");
        CU_ASSERT_STRING_EQUAL(text(r, "step"), "action");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_array_get(json_object_get(r, "undone"), 0)),
            "openPullRequest");
        json_decref(r);
        /* the pull request it opened was closed, nothing merged */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "mergePullRequest"), 0);
        CU_ASSERT_EQUAL_FATAL(keel_testenv_calls(env, "undo"), 1);
        CU_ASSERT_STRING_EQUAL(undo_str(env, 0, "tool"), "openPullRequest");
        CU_ASSERT_EQUAL(undo_pr(env, 0), pr);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 4);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"), "expired");
        assert_replays(env);
        keel_testenv_destroy(env);
}

/* The approval and its deadline at the same virtual millisecond: the one
 * recorded first in the history wins. The test environment fires the
 * timers due at an instant before it takes a signal sent at that instant,
 * so there the deadline wins and the run is over; the orchestrator, which
 * applies the commands of a batch before the timers due by then, records
 * the signal first and the approval wins, at the same timestamp. */
static void test_ai_agent_approval_at_its_deadline(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        int64_t deadline = t0 + AGENT_APPROVAL_MS;
        keel__machine_t *m;
        keel__out_t out;
        keel__run_info_t info;
        json_t *events_before, *sig, *r;
        char err[256];
        size_t i;
        const json_t *ev;
        int fired = 0, cancelled = 0, searched = 0;

        keel_testenv_start(env, ID, AGENT_WORKFLOW, input(NULL));
        keel_testenv_run_until(env, deadline - 1);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"),
                               "awaiting_plan_approval");
        events_before = json_deep_copy(keel_testenv_history(env, ID));

        /* The test environment: the deadline fires at `deadline`, then the
         * approval sent at that same instant finds the run closed. */
        keel_testenv_run_until(env, deadline);
        CU_ASSERT_EQUAL(keel_testenv_now(env), deadline);
        CU_ASSERT_EQUAL(keel_testenv_signal(env, ID, AGENT_SIGNAL_PLAN,
                                            decision(1, "alice", "just now")),
                        KEEL_ERR_NOT_FOUND);
        r = keel_testenv_result(env, ID);
        CU_ASSERT_STRING_EQUAL(text(r, "status"), "expired");
        json_decref(r);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "searchCode"), 0);

        /* The same history on a partition state machine, as the
         * orchestrator runs it: the approval arrives with timestamp
         * `deadline` and is applied before the timer due then. */
        CU_ASSERT_EQUAL_FATAL(keel__out_init(&out), KEEL_OK);
        m = keel__machine_new(reg);
        json_array_foreach(events_before, i, ev)
        {
                CU_ASSERT_EQUAL(keel__machine_restore(m, ev, err, sizeof(err)),
                                KEEL_OK);
        }
        CU_ASSERT_EQUAL(keel__machine_resume(m, deadline, &out), KEEL_OK);
        sig = json_pack("{ss ss sI ss ss}", "workflow_id", ID, "command_id",
                        "approve-at-deadline", "ts", (json_int_t)deadline,
                        "signal_name", AGENT_SIGNAL_PLAN, "payload",
                        "{\"approved\":true,\"by\":\"alice\"}");
        CU_ASSERT_EQUAL(keel__machine_command(m, "keel.inbox.SignalWorkflow",
                                              sig, deadline, &out),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel__machine_tick(m, deadline, deadline, &out),
                        KEEL_OK);
        json_array_foreach(out.history, i, ev)
        {
                const char *t = text(ev, "type");
                fired += !strcmp(t, "keel.history.TimerFired");
                cancelled += !strcmp(t, "keel.history.TimerCancelled");
        }
        json_array_foreach(out.tasks, i, ev)
        {
                searched += !strcmp(text(ev, "activity_type"), "searchCode");
        }
        CU_ASSERT_EQUAL(fired, 0);
        CU_ASSERT_EQUAL(cancelled, 1);
        CU_ASSERT_EQUAL(searched, 1); /* the agent goes on */
        CU_ASSERT_EQUAL(keel__machine_run(m, ID, &info), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(info.status, "running");
        json_decref(sig);
        keel__machine_destroy(m);
        keel__out_destroy(&out);
        json_decref(events_before);
        keel_testenv_destroy(env);
}

/* ---- decisions --------------------------------------------------------- */

static void test_ai_agent_rejection_compensates(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        json_int_t pr;
        json_t *r;

        keel_testenv_start(env, ID, AGENT_WORKFLOW, input(NULL));
        keel_testenv_signal(env, ID, AGENT_SIGNAL_PLAN,
                            decision(1, "alice", ""));
        keel_testenv_run_until(env, t0 + MINUTE);
        pr = state_int(env, "pull_request");
        /* a decision without a boolean "approved" is ignored: the run
         * still waits, with the same deadline */
        keel_testenv_signal(env, ID, AGENT_SIGNAL_ACTION,
                            json_pack("{ss}", "by", "mallory"));
        keel_testenv_run_until(env, t0 + 2 * MINUTE);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "running");
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"),
                               "awaiting_action_approval");
        CU_ASSERT_EQUAL(state_int(env, "approval_deadline_ms"),
                        t0 + AGENT_APPROVAL_MS);

        keel_testenv_signal(env, ID, AGENT_SIGNAL_ACTION,
                            decision(0, "bob", "touches too much"));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "completed");
        r = keel_testenv_result(env, ID);
        CU_ASSERT_STRING_EQUAL(text(r, "status"), "rejected");
        CU_ASSERT_STRING_EQUAL(text(r, "step"), "action");
        CU_ASSERT_STRING_EQUAL(text(r, "by"), "bob");
        CU_ASSERT_STRING_EQUAL(text(r, "comment"), "touches too much");
        CU_ASSERT_EQUAL(json_array_size(json_object_get(r, "undone")), 1);
        json_decref(r);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "mergePullRequest"), 0);
        CU_ASSERT_EQUAL_FATAL(keel_testenv_calls(env, "undo"), 1);
        CU_ASSERT_EQUAL(undo_pr(env, 0), pr);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"), "rejected");
        /* rejected at once: the deadline did not fire */
        CU_ASSERT_EQUAL(keel_testenv_now(env), t0 + 2 * MINUTE);
        CU_ASSERT_EQUAL(events(env, "TimerFired", NULL), 0);
        assert_replays(env);
        keel_testenv_destroy(env);
}

static void test_ai_agent_plan_rejection_ends_run(void)
{
        keel_testenv_t *env = env_new();
        json_t *r;

        keel_testenv_start(env, ID, AGENT_WORKFLOW, input(NULL));
        keel_testenv_signal(env, ID, AGENT_SIGNAL_PLAN,
                            decision(0, "alice", "wrong repository"));
        keel_testenv_run(env);
        r = keel_testenv_result(env, ID);
        CU_ASSERT_STRING_EQUAL(text(r, "status"), "rejected");
        CU_ASSERT_STRING_EQUAL(text(r, "step"), "plan");
        CU_ASSERT_STRING_EQUAL(text(r, "comment"), "wrong repository");
        json_decref(r);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 1);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "searchCode"), 0);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undo"), 0);
        keel_testenv_destroy(env);
}

/* ---- the model's failures ---------------------------------------------- */

static void test_ai_agent_retries_transient_model_failures(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        const json_t *ok;
        json_t *r;

        /* the plan fails twice, the summary once; writing is slow */
        start_approved(env, json_pack("{s{si si} s{si}}", "transient_failures",
                                      "plan", 2, "summarize", 1, "slow_ms",
                                      "write", 30));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "completed");
        r = keel_testenv_result(env, ID);
        CU_ASSERT_STRING_EQUAL(text(r, "status"), "completed");
        json_decref(r);
        /* 5 calls + 3 retries, each retried attempt has the same input */
        CU_ASSERT_EQUAL_FATAL(keel_testenv_calls(env, "llm"), 8);
        CU_ASSERT_STRING_EQUAL(llm_step(env, 0), "plan");
        CU_ASSERT_STRING_EQUAL(llm_step(env, 1), "plan");
        CU_ASSERT_STRING_EQUAL(llm_step(env, 2), "plan");
        CU_ASSERT_STRING_EQUAL(llm_step(env, 3), "write");
        CU_ASSERT_STRING_EQUAL(llm_step(env, 6), "summarize");
        CU_ASSERT_STRING_EQUAL(llm_step(env, 7), "summarize");
        CU_ASSERT(json_equal(keel_testenv_call_input(env, "llm", 0),
                             keel_testenv_call_input(env, "llm", 2)));
        CU_ASSERT_EQUAL(events(env, "ActivityFailed", "ModelOverloaded"), 3);
        CU_ASSERT_EQUAL(events(env, "ActivityRetried", NULL), 3);
        /* the slow call heartbeated */
        CU_ASSERT(events(env, "ActivityHeartbeatRecorded", NULL) >= 1);
        /* backoff: 1 s + 2 s for the plan, 1 s for the summary */
        CU_ASSERT_EQUAL(keel_testenv_now(env) - t0, 4000);
        /* the plan's answer came from its third attempt */
        {
                const json_t *h = keel_testenv_history(env, ID);
                const json_t *ev;
                size_t i;
                ok = NULL;
                json_array_foreach(h, i, ev)
                {
                        if (!ok && !strcmp(json_string_value(
                                               json_object_get(ev, "type")),
                                           "keel.history.ActivityCompleted"))
                                ok = json_object_get(ev, "record");
                }
                CU_ASSERT_PTR_NOT_NULL_FATAL(ok);
                CU_ASSERT_EQUAL(
                    json_integer_value(json_object_get(ok, "attempt")), 3);
        }
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undo"), 0);
        assert_replays(env);
        keel_testenv_destroy(env);
}

static void test_ai_agent_model_refusal_is_not_retried(void)
{
        keel_testenv_t *env = env_new();
        json_t *d;

        start_approved(env, json_pack("{ss}", "refuse", "review"));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "failed");
        CU_ASSERT_STRING_EQUAL(failure_type(env), "ModelFailed");
        d = failure_details(env);
        CU_ASSERT_STRING_EQUAL(text(d, "step"), "review");
        CU_ASSERT_STRING_EQUAL(text(d, "cause"), "ModelRefused");
        CU_ASSERT_EQUAL(json_array_size(json_object_get(d, "undone")), 0);
        json_decref(d);
        /* plan, write, review once: no retry */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 3);
        CU_ASSERT_EQUAL(events(env, "ActivityRetried", NULL), 0);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "openPullRequest"), 0);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"), "failed");
        assert_replays(env);
        keel_testenv_destroy(env);
}

static void test_ai_agent_model_failing_every_attempt_fails_run(void)
{
        keel_testenv_t *env = env_new();
        json_t *d;

        start_approved(
            env, json_pack("{s{si}}", "transient_failures", "summarize", 99));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "failed");
        CU_ASSERT_STRING_EQUAL(failure_type(env), "ModelFailed");
        d = failure_details(env);
        CU_ASSERT_STRING_EQUAL(text(d, "cause"), "ModelOverloaded");
        /* the merge and the pull request were undone, newest first */
        CU_ASSERT_EQUAL(json_array_size(json_object_get(d, "undone")), 2);
        json_decref(d);
        /* 4 calls + 5 attempts at the summary */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 9);
        CU_ASSERT_EQUAL_FATAL(keel_testenv_calls(env, "undo"), 2);
        CU_ASSERT_STRING_EQUAL(undo_str(env, 0, "tool"), "mergePullRequest");
        CU_ASSERT_STRING_EQUAL(undo_str(env, 1, "tool"), "openPullRequest");
        keel_testenv_destroy(env);
}

/* ---- tools ------------------------------------------------------------- */

static void test_ai_agent_tool_failure_compensates(void)
{
        keel_testenv_t *env = env_new();
        json_int_t pr;
        json_t *d;

        start_approved(env, json_pack("{ss}", "fail_tool", "mergePullRequest"));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "failed");
        CU_ASSERT_STRING_EQUAL(failure_type(env), "ToolFailed");
        d = failure_details(env);
        CU_ASSERT_STRING_EQUAL(text(d, "step"), "mergePullRequest");
        CU_ASSERT_STRING_EQUAL(text(d, "cause"), "ToolError");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_array_get(json_object_get(d, "undone"), 0)),
            "openPullRequest");
        json_decref(d);
        /* the merge failed for good at once; the pull request was closed */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "mergePullRequest"), 1);
        pr = json_integer_value(
            json_object_get(keel_testenv_call_input(env, "mergePullRequest", 0),
                            "pull_request"));
        CU_ASSERT_EQUAL_FATAL(keel_testenv_calls(env, "undo"), 1);
        CU_ASSERT_STRING_EQUAL(undo_str(env, 0, "tool"), "openPullRequest");
        CU_ASSERT_EQUAL(undo_pr(env, 0), pr);
        CU_ASSERT_STRING_EQUAL(undo_str(env, 0, "repo"), "acme/api");
        /* no summary of a merge that did not happen */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 4);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"), "failed");
        CU_ASSERT_STRING_EQUAL(state_str(env, "last_tool"), "openPullRequest");
        assert_replays(env);
        keel_testenv_destroy(env);
}

static void test_ai_agent_rejects_input_without_task(void)
{
        keel_testenv_t *env = env_new();
        keel_testenv_start(env, ID, AGENT_WORKFLOW,
                           json_pack("{ss}", "repo", "acme/api"));
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "failed");
        CU_ASSERT_STRING_EQUAL(failure_type(env), "InvalidInput");
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 0);
        keel_testenv_destroy(env);
}

/* ---- cancellation ------------------------------------------------------ */

static void test_ai_agent_cancel_during_approval_wait(void)
{
        keel_testenv_t *env = env_new();
        int64_t t0 = keel_testenv_now(env);
        json_int_t pr;

        keel_testenv_start(env, ID, AGENT_WORKFLOW, input(NULL));
        keel_testenv_signal(env, ID, AGENT_SIGNAL_PLAN,
                            decision(1, "alice", ""));
        keel_testenv_run_until(env, t0 + 5 * MINUTE);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"),
                               "awaiting_action_approval");
        pr = state_int(env, "pull_request");
        CU_ASSERT_EQUAL(keel_testenv_cancel(env, ID, "changed my mind"),
                        KEEL_OK);
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "cancelled");
        CU_ASSERT_EQUAL_FATAL(keel_testenv_calls(env, "undo"), 1);
        CU_ASSERT_STRING_EQUAL(undo_str(env, 0, "tool"), "openPullRequest");
        CU_ASSERT_EQUAL(undo_pr(env, 0), pr);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "mergePullRequest"), 0);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"), "cancelled");
        /* cancelled at once: the deadline did not fire */
        CU_ASSERT_EQUAL(keel_testenv_now(env), t0 + 5 * MINUTE);
        CU_ASSERT_EQUAL(events(env, "TimerFired", NULL), 0);
        CU_ASSERT_EQUAL(keel_testenv_signal(env, ID, AGENT_SIGNAL_ACTION,
                                            decision(1, "bob", "")),
                        KEEL_ERR_NOT_FOUND);
        assert_replays(env);
        keel_testenv_destroy(env);
}

static void test_ai_agent_cancel_during_plan_approval(void)
{
        keel_testenv_t *env = env_new();
        keel_testenv_start(env, ID, AGENT_WORKFLOW, input(NULL));
        keel_testenv_run_until(env, keel_testenv_now(env) + MINUTE);
        keel_testenv_cancel(env, ID, "not needed");
        keel_testenv_run(env);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "cancelled");
        /* nothing was changed, so nothing is undone */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "undo"), 0);
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "searchCode"), 0);
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"), "cancelled");
        keel_testenv_destroy(env);
}

/* A handler that asks to cancel ID while it runs, the way a person would
 * press "cancel" while the model is thinking or a tool working, then does
 * the real work (with the real handler's opaque). */
static struct interrupt_s {
        keel_testenv_t *env;
        keel_activity_fn_t real;
        const char *step; /* only for this model step (NULL: any call) */
        int done;
} interrupt;

static int interrupting(keel_activity_ctx_t *ctx, const json_t *input,
                        json_t **result)
{
        const char *step = text(input, "step");
        if (!interrupt.done &&
            (!interrupt.step || (step && !strcmp(step, interrupt.step)))) {
                interrupt.done = 1;
                CU_ASSERT_EQUAL(keel_testenv_cancel(interrupt.env, ID, "stop"),
                                KEEL_OK);
        }
        return interrupt.real(ctx, input, result);
}

/* Run name through interrupting(), which calls real. */
static void interrupt_in(keel_testenv_t *env, const char *name,
                         keel_activity_fn_t real, const char *step)
{
        interrupt.env = env;
        interrupt.real = real;
        interrupt.step = step;
        interrupt.done = 0;
        keel_testenv_register_activity(env, name, interrupting, NULL);
}

static void test_ai_agent_cancel_during_model_call(void)
{
        keel_testenv_t *env = env_new();

        interrupt_in(env, "llm", agent_llm, "summarize");
        /* slow: the call heartbeats, and its heartbeat learns of the
         * cancel */
        start_approved(env, json_pack("{s{si}}", "slow_ms", "summarize", 20));
        keel_testenv_run(env);
        CU_ASSERT_EQUAL(interrupt.done, 1);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "cancelled");
        /* the summary stopped and was not retried */
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "llm"), 5);
        CU_ASSERT_EQUAL(events(env, "ActivityFailed", "Cancelled"), 1);
        CU_ASSERT_EQUAL(events(env, "ActivityRetried", NULL), 0);
        /* the merge is reverted, then the pull request closed */
        CU_ASSERT_EQUAL_FATAL(keel_testenv_calls(env, "undo"), 2);
        CU_ASSERT_STRING_EQUAL(undo_str(env, 0, "tool"), "mergePullRequest");
        CU_ASSERT_STRING_EQUAL(undo_str(env, 1, "tool"), "openPullRequest");
        CU_ASSERT_EQUAL(undo_pr(env, 0), undo_pr(env, 1));
        CU_ASSERT_STRING_EQUAL(state_str(env, "step"), "cancelled");
        CU_ASSERT_EQUAL(events(env, "WorkflowCancelled", NULL), 1);
        assert_replays(env);
        keel_testenv_destroy(env);
}

static void test_ai_agent_cancel_during_tool_call_undoes_its_change(void)
{
        keel_testenv_t *env = env_new();
        json_t *opened = NULL;

        interrupt_in(env, "openPullRequest", agent_open_pull_request, NULL);
        start_approved(env, NULL);
        keel_testenv_run(env);
        CU_ASSERT_EQUAL(interrupt.done, 1);
        CU_ASSERT_STRING_EQUAL(keel_testenv_status(env, ID), "cancelled");
        /* The tool did not heartbeat, so it finished and opened the pull
         * request; the workflow waited for that and closed it. */
        {
                const json_t *h = keel_testenv_history(env, ID);
                const json_t *ev;
                size_t i;
                json_array_foreach(h, i, ev)
                {
                        const json_t *rec = json_object_get(ev, "record");
                        if (!opened &&
                            !strcmp(text(ev, "type"),
                                    "keel.history.ActivityCompleted") &&
                            strstr(json_string_value(
                                       json_object_get(rec, "result")),
                                   "/pull/"))
                                opened = json_loads(
                                    json_string_value(
                                        json_object_get(rec, "result")),
                                    0, NULL);
                }
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(opened);
        CU_ASSERT_EQUAL_FATAL(keel_testenv_calls(env, "undo"), 1);
        CU_ASSERT_STRING_EQUAL(undo_str(env, 0, "tool"), "openPullRequest");
        CU_ASSERT_EQUAL(undo_pr(env, 0), json_integer_value(json_object_get(
                                             opened, "pull_request")));
        CU_ASSERT_EQUAL(keel_testenv_calls(env, "mergePullRequest"), 0);
        CU_ASSERT_EQUAL(events(env, "WorkflowCancelled", NULL), 1);
        json_decref(opened);
        assert_replays(env);
        keel_testenv_destroy(env);
}

static CU_TestInfo tests[] = {
    {"test_ai_agent_completes_with_both_approvals",
     test_ai_agent_completes_with_both_approvals},
    {"test_ai_agent_plan_approval_expires",
     test_ai_agent_plan_approval_expires},
    {"test_ai_agent_action_approval_expires_and_compensates",
     test_ai_agent_action_approval_expires_and_compensates},
    {"test_ai_agent_approval_at_its_deadline",
     test_ai_agent_approval_at_its_deadline},
    {"test_ai_agent_rejection_compensates",
     test_ai_agent_rejection_compensates},
    {"test_ai_agent_plan_rejection_ends_run",
     test_ai_agent_plan_rejection_ends_run},
    {"test_ai_agent_retries_transient_model_failures",
     test_ai_agent_retries_transient_model_failures},
    {"test_ai_agent_model_refusal_is_not_retried",
     test_ai_agent_model_refusal_is_not_retried},
    {"test_ai_agent_model_failing_every_attempt_fails_run",
     test_ai_agent_model_failing_every_attempt_fails_run},
    {"test_ai_agent_tool_failure_compensates",
     test_ai_agent_tool_failure_compensates},
    {"test_ai_agent_rejects_input_without_task",
     test_ai_agent_rejects_input_without_task},
    {"test_ai_agent_cancel_during_approval_wait",
     test_ai_agent_cancel_during_approval_wait},
    {"test_ai_agent_cancel_during_plan_approval",
     test_ai_agent_cancel_during_plan_approval},
    {"test_ai_agent_cancel_during_model_call",
     test_ai_agent_cancel_during_model_call},
    {"test_ai_agent_cancel_during_tool_call_undoes_its_change",
     test_ai_agent_cancel_during_tool_call_undoes_its_change},
    CU_TEST_INFO_NULL};

static int setup(void)
{
        reg = keel_registry_new();
        return !reg || agent_register_workflow(reg);
}

static int teardown(void)
{
        keel_registry_destroy(reg);
        return 0;
}

KEEL_TEST_MAIN_WITH("ai_agent", tests, setup, teardown)

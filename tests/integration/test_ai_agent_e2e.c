/*
 * test_ai_agent_e2e.c: the AI agent example end to end on the real Kafka
 * test broker. keel-orchestrator (with the payment and agent modules, as
 * a deployment running both would) and keel-agent-worker run as real
 * processes. Two agents get the same task; the test plays the people: it
 * approves each plan once the agent publishes that it waits for one, then
 * approves the first agent's merge and rejects the second's. The first
 * one's plan call fails once with a transient model error and is retried,
 * and its write call is slow enough to heartbeat through Kafka. An
 * independent reader of keel.history (e2e_support.h) sees how each run
 * went; the worker's effect log shows the changes made and undone, once
 * each.
 */
#include "agent.h"
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 2 /* agents: 0 approved, 1 rejected at the merge */

/* Has every agent published the step `opaque`? */
static int all_at(e2e_watch_t *w, void *opaque)
{
        for (int i = 0; i < w->n; i++)
                if (!e2e_wf_published(&w->wfs[i], "step", opaque))
                        return 0;
        return 1;
}

static int count(const e2e_wf_t *wf, const char *type, const char *aid)
{
        int n = 0;
        while (e2e_wf_event(wf, type, aid, n))
                n++;
        return n;
}

/* wf's result (a new reference), or NULL. */
static json_t *result_of(const e2e_wf_t *wf)
{
        const json_t *rec = e2e_wf_event(wf, "WorkflowCompleted", NULL, 0);
        return rec ? json_loads(
                         json_string_value(json_object_get(rec, "result")), 0,
                         NULL)
                   : NULL;
}

/* How often agent i made change `act`, by the worker's effect log; -1
 * if the log cannot be read. */
static int changes(const char *effects, const char *act, e2e_watch_t *w, int i)
{
        int counts[N] = {0};
        return e2e_effects_count(effects, act, w, counts) < 0 ? -1 : counts[i];
}

/* Send signal `name` with a decision to every agent. */
static void decide(keel_client_t *client, e2e_watch_t *w, const char *name,
                   int approve_last)
{
        char err[1024];
        for (int i = 0; i < w->n; i++) {
                int yes = i < w->n - 1 || approve_last;
                json_t *d = json_pack("{sb ss ss}", "approved", yes, "by",
                                      "e2e", "comment", yes ? "ok" : "no");
                int rc = keel_client_signal(client, w->wfs[i].id, NULL, name, d,
                                            10000, err, sizeof(err));
                json_decref(d);
                if (rc)
                        fprintf(stderr, "%s: %s\n", w->wfs[i].id, err);
                CU_ASSERT_EQUAL(rc, KEEL_OK);
        }
}

static void test_ai_agent_e2e_approved_and_rejected(void)
{
        e2e_env_t procs;
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        e2e_watch_t *w;
        e2e_wf_t *ok, *no;
        char prefix[64], effects[600], modules[1100], err[1024];
        const char *plan_aid, *write_aid;
        int64_t t0;
        pid_t orch, worker;
        json_t *r;

        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&procs, "agent-e2e"), KEEL_OK);
        snprintf(procs.worker_bin, sizeof(procs.worker_bin),
                 "%s/keel-agent-worker", keel_test_env("KEEL_TEST_BIN_DIR"));
        snprintf(modules, sizeof(modules), "%s,%s", procs.module,
                 keel_test_env("KEEL_TEST_AGENT_MODULE"));
        snprintf(effects, sizeof(effects), "%s/effects.log", procs.workdir);
        snprintf(prefix, sizeof(prefix), "agent-e2e-%d-", (int)getpid());
        keel_config_set(cfg, "bootstrap", procs.bootstrap, NULL, NULL, 0);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create_queue(&procs, AGENT_QUEUE),
                              KEEL_OK);

        orch =
            e2e_start_orchestrator(&procs, "orchestrator.log", modules, NULL);
        worker = e2e_start_worker(&procs, "worker.log", effects, NULL);
        CU_ASSERT_FATAL(orch > 0 && worker > 0);
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        w = e2e_watch_new(procs.bootstrap, prefix, N, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        ok = &w->wfs[0];
        no = &w->wfs[1];

        t0 = e2e_now_ms();
        for (int i = 0; i < N; i++) {
                /* a minute per approval, retries after 200 ms */
                json_t *in = json_pack("{ss ss si si si}", "task",
                                       "make the retry limit "
                                       "configurable",
                                       "repo", "acme/api", "plan_approval_ms",
                                       60000, "action_approval_ms", 60000,
                                       "retry_initial_ms", 200);
                int rc;
                if (i == 0)
                        json_object_update_new(
                            in, json_pack("{s{si} s{si}}", "transient_failures",
                                          "plan", 1, "slow_ms", "write", 1500));
                rc = keel_client_start(client, w->wfs[i].id, AGENT_WORKFLOW, in,
                                       NULL, NULL, err, sizeof(err));
                json_decref(in);
                if (rc)
                        fprintf(stderr, "%s: %s\n", w->wfs[i].id, err);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        }
        /* The people answer once the agents ask. */
        CU_ASSERT_FATAL(
            e2e_watch_until(w, t0 + 120000, all_at, "awaiting_plan_approval"));
        decide(client, w, AGENT_SIGNAL_PLAN, 1);
        CU_ASSERT_FATAL(e2e_watch_until(w, t0 + 180000, all_at,
                                        "awaiting_action_approval"));
        decide(client, w, AGENT_SIGNAL_ACTION, 0);
        e2e_watch_until(w, t0 + 240000, e2e_watch_all_closed, NULL);
        fprintf(stderr, "both closed in %lld ms: %s, %s\n",
                (long long)(e2e_now_ms() - t0), ok->status, no->status);
        e2e_stop(orch, SIGTERM);
        e2e_stop(worker, SIGTERM);

        CU_ASSERT_EQUAL(w->closed, N);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        CU_ASSERT_EQUAL(ok->closes, 1);
        CU_ASSERT_EQUAL(no->closes, 1);
        CU_ASSERT_STRING_EQUAL(ok->status, "completed");
        CU_ASSERT_STRING_EQUAL(no->status, "rejected");

        /* The first plan call failed once, transiently, and was retried:
         * its second attempt answered. */
        plan_aid = e2e_wf_activity_id(ok, "llm", 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(plan_aid);
        CU_ASSERT_EQUAL(count(ok, "ActivityFailed", plan_aid), 1);
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(
                json_object_get(e2e_wf_event(ok, "ActivityFailed", plan_aid, 0),
                                "failure"),
                "type")),
            "ModelOverloaded");
        CU_ASSERT_EQUAL(count(ok, "ActivityRetried", plan_aid), 1);
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(
                e2e_wf_event(ok, "ActivityCompleted", plan_aid, 0), "attempt")),
            2);
        CU_ASSERT_EQUAL(count(ok, "ActivityFailed", NULL), 1);
        /* the slow write call heartbeated (at 1 s and at its end) */
        write_aid = e2e_wf_activity_id(ok, "llm", 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(write_aid);
        CU_ASSERT(count(ok, "ActivityHeartbeatRecorded", write_aid) >= 1);
        /* five model calls and three tools, nothing undone */
        CU_ASSERT_PTR_NOT_NULL(e2e_wf_activity_id(ok, "llm", 4));
        CU_ASSERT_PTR_NULL(e2e_wf_activity_id(ok, "llm", 5));
        CU_ASSERT_PTR_NOT_NULL(e2e_wf_activity_id(ok, "mergePullRequest", 0));
        CU_ASSERT_PTR_NULL(e2e_wf_activity_id(ok, "undo", 0));
        CU_ASSERT_EQUAL(count(ok, "SignalReceived", NULL), 2);
        CU_ASSERT_EQUAL(count(ok, "TimerCancelled", NULL), 2);
        CU_ASSERT(e2e_wf_published(ok, "step", "completed"));
        r = result_of(ok);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT(json_integer_value(json_object_get(r, "pull_request")) > 0);
        CU_ASSERT_PTR_NOT_NULL(
            strstr(json_string_value(json_object_get(r, "summary")),
                   "Merged pull request #"));
        json_decref(r);

        /* The rejected one closed its pull request and merged nothing. */
        r = result_of(no);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "step")),
                               "action");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_array_get(json_object_get(r, "undone"), 0)),
            "openPullRequest");
        json_decref(r);
        CU_ASSERT_PTR_NULL(e2e_wf_activity_id(no, "mergePullRequest", 0));
        CU_ASSERT(e2e_wf_published(no, "step", "rejected"));

        /* The changes, once each: the rejected agent's pull request was
         * closed again. */
        CU_ASSERT_EQUAL(changes(effects, "openPullRequest", w, 0), 1);
        CU_ASSERT_EQUAL(changes(effects, "mergePullRequest", w, 0), 1);
        CU_ASSERT_EQUAL(changes(effects, "undo", w, 0), 0);
        CU_ASSERT_EQUAL(changes(effects, "openPullRequest", w, 1), 1);
        CU_ASSERT_EQUAL(changes(effects, "mergePullRequest", w, 1), 0);
        CU_ASSERT_EQUAL(changes(effects, "undo", w, 1), 1);
        e2e_watch_destroy(w);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {{"test_ai_agent_e2e_approved_and_rejected",
                               test_ai_agent_e2e_approved_and_rejected},
                              CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("ai_agent_e2e", tests)

/*
 * agent.h: the AI agent example. A coding agent turns a task ("make the
 * retry limit configurable") into a merged pull request, with a human in
 * the loop: a model plans, a person approves the plan (signal approvePlan),
 * the agent searches the code, has the model write, review and describe a
 * patch, opens a pull request, a person approves merging it (signal
 * approveAction), the agent merges it and the model summarizes the work.
 * Five model calls (activity "llm"), three tools (searchCode,
 * openPullRequest, mergePullRequest) and an "undo" tool that the workflow
 * runs to compensate: when the run is rejected, expires, fails or is
 * cancelled, whatever the tools changed is undone, newest first.
 *
 * The model is a fake (agent_llm): deterministic from its input and the
 * attempt, it can fail transiently, refuse, or take its time while
 * heartbeating. The tools stand in for a code host: opening, merging and
 * undoing record a line in the examples' effect log (effects.h) instead,
 * once per idempotency key, so tests and the demo can count every change
 * the agent made and undid.
 */
#ifndef KEEL_EXAMPLE_AGENT_H
#define KEEL_EXAMPLE_AGENT_H

#include "worker_main.h"

#include <keel/keel.h>

#define AGENT_WORKFLOW       "ai-agent"
#define AGENT_QUEUE          "agent"
#define AGENT_SIGNAL_PLAN    "approvePlan"
#define AGENT_SIGNAL_ACTION  "approveAction"
#define AGENT_APPROVAL_MS    (15LL * 60 * 1000) /* each approval's deadline */
#define AGENT_LLM_TIMEOUT_MS 30000              /* a model call */

/* Register the "ai-agent" workflow type. */
int agent_register_workflow(keel_registry_t *reg);

/* ---- activities --------------------------------------------------------- */

/* The fake model. Input {"step": "plan"|"write"|"review"|"describe"|
 * "summarize", "task": "...", "context": {...}} and the knobs the
 * workflow passes on from its own input (each an integer for every step
 * or an object by step): "transient_failures" (the first N attempts fail
 * with the retryable type ModelOverloaded), "slow_ms" (every attempt takes
 * that long, heartbeating at least once a second, and stops when a
 * heartbeat says the workflow was cancelled), and "refuse": a step name
 * (that call fails with ModelRefused, which the workflow never retries). */
int agent_llm(keel_activity_ctx_t *ctx, const json_t *input, json_t **result);

/* The tools; opaque is the effect log (effects.h) the changing ones
 * record their change in, or NULL. Input {"repo", ...}; the tool that the
 * input's "fail_tool" names fails for good (ToolError). */
int agent_search_code(keel_activity_ctx_t *ctx, const json_t *input,
                      json_t **result);
int agent_open_pull_request(keel_activity_ctx_t *ctx, const json_t *input,
                            json_t **result);
int agent_merge_pull_request(keel_activity_ctx_t *ctx, const json_t *input,
                             json_t **result);
/* Input {"tool": "openPullRequest"|"mergePullRequest", "pull_request":
 * n}: close the pull request, or revert its merge. */
int agent_undo(keel_activity_ctx_t *ctx, const json_t *input, json_t **result);

/* The activities by name, to register with a worker or test environment. */
typedef example_activity_t agent_activity_t;
extern const agent_activity_t agent_activities[];
extern const size_t agent_activities_cnt;

#endif

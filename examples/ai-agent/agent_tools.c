/*
 * agent_tools.c: the AI agent's tools (agent.h). They stand in for a code
 * host: a tool that changes something records the change in the effect
 * log (effects.h) under its idempotency key, so a tool run again (a
 * retry, or a worker that died before its result reached keel) makes no
 * second change and answers as the first run did.
 */
#include "agent.h"
#include "effects.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *str(const json_t *obj, const char *key)
{
        const char *s = json_string_value(json_object_get(obj, key));
        return s ? s : "";
}

/* A number the same key always gets (FNV-1a): what the code host would
 * have handed out, again on a repeated attempt. */
static uint32_t stable_number(const char *key)
{
        uint32_t h = 2166136261u;
        for (; *key; key++)
                h = (h ^ (unsigned char)*key) * 16777619u;
        return h;
}

/* The input's "fail_tool" names this tool: fail for good. */
static int broken(keel_activity_ctx_t *ctx, const json_t *input)
{
        if (strcmp(str(input, "fail_tool"), keel_activity_type(ctx)))
                return KEEL_OK;
        return keel_activity_fail(
            ctx, "ToolError", "the tool failed and will not recover",
            json_pack("{ss}", "tool", keel_activity_type(ctx)), 1);
}

int agent_search_code(keel_activity_ctx_t *ctx, const json_t *input,
                      json_t **result)
{
        int rc = broken(ctx, input);
        if (rc)
                return rc;
        /* reads only: nothing to record, nothing to undo */
        *result = json_pack("{ss s[ss]}", "query", str(input, "query"), "files",
                            "src/config.c", "tests/test_config.c");
        return KEEL_OK;
}

int agent_open_pull_request(keel_activity_ctx_t *ctx, const json_t *input,
                            json_t **result)
{
        int n =
            1 + (int)(stable_number(keel_activity_idempotency_key(ctx)) % 9999);
        char url[512];
        int rc = broken(ctx, input);

        if (rc || (rc = example_effect(ctx)))
                return rc;
        snprintf(url, sizeof(url), "https://code.example/%s/pull/%d",
                 str(input, "repo"), n);
        *result = json_pack("{si ss}", "pull_request", n, "url", url);
        return KEEL_OK;
}

int agent_merge_pull_request(keel_activity_ctx_t *ctx, const json_t *input,
                             json_t **result)
{
        json_int_t n =
            json_integer_value(json_object_get(input, "pull_request"));
        char commit[16];
        int rc = broken(ctx, input);

        if (rc)
                return rc;
        if (n <= 0)
                return keel_activity_fail(ctx, "InvalidRequest",
                                          "no pull request to merge", NULL, 1);
        if ((rc = example_effect(ctx)))
                return rc;
        snprintf(commit, sizeof(commit), "%08x",
                 (unsigned)stable_number(keel_activity_idempotency_key(ctx)));
        *result = json_pack("{sI sb ss}", "pull_request", n, "merged", 1,
                            "commit", commit);
        return KEEL_OK;
}

int agent_undo(keel_activity_ctx_t *ctx, const json_t *input, json_t **result)
{
        const char *tool = str(input, "tool");
        const char *what = !strcmp(tool, "openPullRequest")    ? "closed"
                           : !strcmp(tool, "mergePullRequest") ? "reverted"
                                                               : NULL;
        int rc;

        if (!what)
                return keel_activity_fail(ctx, "InvalidRequest",
                                          "nothing to undo for that tool",
                                          json_pack("{ss}", "tool", tool), 1);
        if ((rc = example_effect(ctx)))
                return rc;
        *result =
            json_pack("{ss sO? ss}", "undone", tool, "pull_request",
                      json_object_get(input, "pull_request"), "done", what);
        return KEEL_OK;
}

const agent_activity_t agent_activities[] = {
    {"llm", agent_llm},
    {"searchCode", agent_search_code},
    {"openPullRequest", agent_open_pull_request},
    {"mergePullRequest", agent_merge_pull_request},
    {"undo", agent_undo},
};
const size_t agent_activities_cnt =
    sizeof(agent_activities) / sizeof(agent_activities[0]);

/*
 * agent_llm.c: the AI agent's model, a fake that answers like a model
 * would but from rules, so that runs are reproducible: what it says
 * depends only on its input, and how it fails only on its input and the
 * attempt (agent.h lists the knobs). A real deployment registers a handler
 * that calls its model's API under the same activity name, "llm".
 */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MODEL "fake-llm-1"

static const char *str(const json_t *obj, const char *key)
{
        const char *s = json_string_value(json_object_get(obj, key));
        return s ? s : "";
}

/* A knob for this step: an integer for every step, or an object with one
 * per step; 0 when absent. */
static json_int_t knob(const json_t *in, const char *key, const char *step)
{
        const json_t *v = json_object_get(in, key);
        if (json_is_object(v))
                v = json_object_get(v, step);
        return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* Take ms to answer, heartbeating at least once a second so that a
 * cancelled workflow stops the call. KEEL_OK or KEEL_ERR_CANCELLED. */
static int think(keel_activity_ctx_t *ctx, json_int_t ms)
{
        json_int_t done = 0;
        while (done < ms) {
                json_int_t slice = ms - done < 1000 ? ms - done : 1000;
                struct timespec ts = {(time_t)(slice / 1000),
                                      (long)(slice % 1000) * 1000000L};
                while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                        ; /* interrupted: sleep the rest */
                done += slice;
                if (keel_activity_heartbeat(
                        ctx, json_pack("{sI sI}", "thought_ms", done, "of_ms",
                                       ms)) == KEEL_ERR_CANCELLED)
                        return KEEL_ERR_CANCELLED;
        }
        return KEEL_OK;
}

/* The answer to one step, from the task and the context. */
static json_t *answer(const char *step, const char *task, const json_t *cx)
{
        char buf[2048];

        if (!strcmp(step, "plan")) {
                snprintf(buf, sizeof(buf),
                         "1. Find the code that the task touches: %s\n"
                         "2. Write a patch and review it\n"
                         "3. Open a pull request; merge it once approved",
                         task);
                return json_pack("{ss s[sss]}", "text", buf, "tools",
                                 "searchCode", "openPullRequest",
                                 "mergePullRequest");
        }
        if (!strcmp(step, "write")) {
                const char *file = json_string_value(
                    json_array_get(json_object_get(cx, "files"), 0));
                if (!file)
                        file = "README.md";
                snprintf(buf, sizeof(buf),
                         "--- a/%s\n+++ b/%s\n@@ -1 +1,2 @@\n+/* %s */\n", file,
                         file, task);
                return json_pack("{ss}", "patch", buf);
        }
        if (!strcmp(step, "review"))
                return json_pack("{ss ss}", "verdict", "approve", "notes",
                                 "The patch is small and does what the task "
                                 "asks.");
        if (!strcmp(step, "describe")) {
                char title[80];
                snprintf(title, sizeof(title), "Agent: %.60s", task);
                snprintf(buf, sizeof(buf),
                         "Written by an agent for the task: %s\n\nReview: %s",
                         task, str(json_object_get(cx, "review"), "notes"));
                return json_pack("{ss ss}", "title", title, "body", buf);
        }
        if (!strcmp(step, "summarize")) {
                snprintf(buf, sizeof(buf),
                         "Merged pull request #%lld (\"%s\") as commit %s.",
                         (long long)json_integer_value(
                             json_object_get(cx, "pull_request")),
                         str(cx, "title"), str(cx, "commit"));
                return json_pack("{ss}", "text", buf);
        }
        return NULL;
}

int agent_llm(keel_activity_ctx_t *ctx, const json_t *input, json_t **result)
{
        const char *step = str(input, "step");
        int attempt = keel_activity_attempt(ctx);
        json_t *a;

        if (think(ctx, knob(input, "slow_ms", step)))
                return KEEL_ERR_CANCELLED;
        if (attempt <= knob(input, "transient_failures", step))
                return keel_activity_fail(
                    ctx, "ModelOverloaded",
                    "the model is overloaded (HTTP 529), try again later",
                    json_pack("{si}", "attempt", attempt), 0);
        if (!strcmp(str(input, "refuse"), step))
                return keel_activity_fail(ctx, "ModelRefused",
                                          "the model declined the request",
                                          json_pack("{ss}", "step", step), 0);
        a = answer(step, str(input, "task"), json_object_get(input, "context"));
        if (!a)
                return keel_activity_fail(ctx, "InvalidRequest", "no such step",
                                          NULL, 1);
        json_object_set_new(a, "model", json_string(MODEL));
        json_object_set_new(a, "attempt", json_integer(attempt));
        *result = a;
        return KEEL_OK;
}

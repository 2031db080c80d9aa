/*
 * activity.c: the activity context (keel/activity.h) and running a
 * handler on a task (activity_int.h).
 */
#include "activity_int.h"

#include <stdlib.h>
#include <string.h>

struct keel_activity_ctx_s {
        const json_t *task;
        void *opaque;
        json_t *prev_details;
        keel__heartbeat_fn_t hb;
        void *hb_opaque;
        int failed;
        char *fail_type, *fail_message;
        json_t *fail_details;
        int non_retryable;
};

static const char *tstr(const keel_activity_ctx_t *ctx, const char *k)
{
        const char *s = json_string_value(json_object_get(ctx->task, k));
        return s ? s : "";
}

const char *keel_activity_workflow_id(const keel_activity_ctx_t *ctx)
{
        return tstr(ctx, "workflow_id");
}

const char *keel_activity_run_id(const keel_activity_ctx_t *ctx)
{
        return tstr(ctx, "run_id");
}

const char *keel_activity_id(const keel_activity_ctx_t *ctx)
{
        return tstr(ctx, "activity_id");
}

const char *keel_activity_type(const keel_activity_ctx_t *ctx)
{
        return tstr(ctx, "activity_type");
}

const char *keel_activity_idempotency_key(const keel_activity_ctx_t *ctx)
{
        return tstr(ctx, "idempotency_key");
}

int keel_activity_attempt(const keel_activity_ctx_t *ctx)
{
        return (int)json_integer_value(json_object_get(ctx->task, "attempt"));
}

void *keel_activity_opaque(const keel_activity_ctx_t *ctx)
{
        return ctx->opaque;
}

const json_t *keel_activity_heartbeat_details(const keel_activity_ctx_t *ctx)
{
        return ctx->prev_details;
}

int keel_activity_heartbeat(keel_activity_ctx_t *ctx, json_t *details)
{
        int rc = KEEL_OK;
        if (ctx->hb)
                rc = ctx->hb(ctx->hb_opaque, ctx->task,
                             details ? details : json_null());
        json_decref(details);
        return rc;
}

int keel_activity_fail(keel_activity_ctx_t *ctx, const char *type,
                       const char *message, json_t *details, int non_retryable)
{
        free(ctx->fail_type);
        free(ctx->fail_message);
        json_decref(ctx->fail_details);
        ctx->failed = 1;
        ctx->fail_type = strdup(type && *type ? type : "ActivityFailed");
        ctx->fail_message = strdup(message ? message : "");
        ctx->fail_details = details;
        ctx->non_retryable = non_retryable;
        return KEEL_ERR_ACTIVITY_FAILED;
}

static char *dumps_any(const json_t *j)
{
        return json_dumps(j ? j : json_null(),
                          JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
}

int keel__activity_run(keel_activity_fn_t fn, void *opaque, const json_t *task,
                       const char *worker_id, int64_t now_ms,
                       keel__heartbeat_fn_t hb, void *hb_opaque,
                       const char **type, json_t **rec)
{
        keel_activity_ctx_t ctx;
        json_t *input, *result = NULL;
        const char *hbd;
        char command_id[600];
        int rc;

        *type = NULL;
        *rec = NULL;
        memset(&ctx, 0, sizeof(ctx));
        ctx.task = task;
        ctx.opaque = opaque;
        ctx.hb = hb;
        ctx.hb_opaque = hb_opaque;
        hbd = json_string_value(json_object_get(task, "heartbeat_details"));
        ctx.prev_details = hbd ? json_loads(hbd, JSON_DECODE_ANY, NULL) : NULL;
        if (!ctx.prev_details)
                ctx.prev_details = json_null();
        input = json_loads(tstr(&ctx, "input"), JSON_DECODE_ANY, NULL);
        if (!input)
                rc =
                    keel_activity_fail(&ctx, "InvalidInput",
                                       "the task's input is not JSON", NULL, 1);
        else if (!fn)
                rc = keel_activity_fail(&ctx, "ActivityNotRegistered",
                                        "no handler for this activity type",
                                        NULL, 1);
        else
                rc = fn(&ctx, input, &result);
        json_decref(input);

        snprintf(command_id, sizeof(command_id), "%s/%d",
                 keel_activity_idempotency_key(&ctx),
                 keel_activity_attempt(&ctx));
        if (rc == KEEL_OK) {
                char *text = dumps_any(result);
                *type = "keel.inbox.ActivityCompleted";
                *rec = json_pack("{ss ss sI ss ss si ss ss}", "workflow_id",
                                 keel_activity_workflow_id(&ctx), "command_id",
                                 command_id, "ts", (json_int_t)now_ms, "run_id",
                                 keel_activity_run_id(&ctx), "activity_id",
                                 keel_activity_id(&ctx), "attempt",
                                 keel_activity_attempt(&ctx), "worker_id",
                                 worker_id, "result", text ? text : "null");
                free(text);
        } else if (rc == KEEL_ERR_TIMEOUT && !ctx.failed) {
                /* say nothing */
        } else {
                char *details;
                if (!ctx.failed && rc == KEEL_ERR_CANCELLED)
                        keel_activity_fail(&ctx, "Cancelled",
                                           "the activity was cancelled", NULL,
                                           1);
                else if (!ctx.failed)
                        keel_activity_fail(&ctx, keel_err_name(rc),
                                           keel_err_str(rc), NULL, 0);
                details = dumps_any(ctx.fail_details);
                *type = "keel.inbox.ActivityFailed";
                *rec = json_pack(
                    "{ss ss sI ss ss si ss s{ss ss ss sb}}", "workflow_id",
                    keel_activity_workflow_id(&ctx), "command_id", command_id,
                    "ts", (json_int_t)now_ms, "run_id",
                    keel_activity_run_id(&ctx), "activity_id",
                    keel_activity_id(&ctx), "attempt",
                    keel_activity_attempt(&ctx), "worker_id", worker_id,
                    "failure", "type", ctx.fail_type, "message",
                    ctx.fail_message, "details", details ? details : "null",
                    "non_retryable", ctx.non_retryable);
                free(details);
        }
        json_decref(result);
        json_decref(ctx.prev_details);
        json_decref(ctx.fail_details);
        free(ctx.fail_type);
        free(ctx.fail_message);
        if (*type && !*rec)
                return KEEL_ERR_NOMEM;
        return KEEL_OK;
}

/*
 * onboarding_workflow.c: the onboarding workflow (onboarding.h), plain C
 * on keel's workflow API. Input: {"user": "u-42", "email":
 * "ada@example.com", "plan": optional, default "free",
 * "verify_timeout_ms": optional, default 72 hours, "reminder_interval_ms":
 * optional, default 24 hours, "reminders": optional, default 7,
 * "start_to_close_ms": optional, every activity's start-to-close timeout,
 * default 10 s, "faults": optional, passed on to every activity}.
 *
 * Every wait is a place where a cancel can arrive, and every one of them
 * comes after the provisioning was asked for, so a cancelled onboarding
 * always deprovisions: if the cancel came while provisioning was under
 * way, the worker may have provisioned anyway, and deprovisioning a user
 * with no account changes nothing.
 */
#include "onboarding.h"

#include <string.h>

/* One onboarding run. */
typedef struct onb_s {
        keel_wf_t *wf;
        const char *user, *email;
        const json_t *faults;   /* the input's, or NULL */
        const char *account_id; /* once provisioned */
        keel_activity_options_t opts;
        int64_t verify_ms, interval_ms;
        json_int_t reminders;
} onb_t;

/* An activity's input: `fields` (a new object, returned) with the user
 * and the faults added. */
static json_t *act_input(onb_t *o, json_t *fields)
{
        json_object_set_new(fields, "user", json_string(o->user));
        if (o->faults)
                json_object_set(fields, "faults", (json_t *)o->faults);
        return fields;
}

/* Publish the stage, with the user, the account once known and extra
 * (stolen; may be NULL), for the projector and the dashboard. */
static void stage(onb_t *o, const char *name, json_t *extra)
{
        json_t *st = json_pack("{ss ss}", "stage", name, "user", o->user);
        if (o->account_id)
                json_object_set_new(st, "account_id",
                                    json_string(o->account_id));
        if (extra)
                json_object_update(st, extra);
        json_decref(extra);
        keel_set_state(o->wf, st);
}

static int activity(onb_t *o, const char *name, json_t *fields, json_t **result)
{
        return keel_activity(o->wf, name, act_input(o, fields), &o->opts,
                             result);
}

/* Undo the provisioning, for `reason`. KEEL_OK once deprovisioned;
 * otherwise the workflow fails with DeprovisionFailed: the account is
 * still there and needs a person. */
static int deprovision(onb_t *o, const char *reason)
{
        json_t *in = json_pack("{ss}", "reason", reason);
        stage(o, "deprovisioning", json_pack("{ss}", "reason", reason));
        if (o->account_id)
                json_object_set_new(in, "account_id",
                                    json_string(o->account_id));
        if (activity(o, "deprovisionAccount", in, NULL) == KEEL_OK)
                return KEEL_OK;
        stage(o, "failed", json_pack("{ss}", "reason", "deprovision_failed"));
        return keel_fail(
            o->wf, "DeprovisionFailed", keel_wf_failure(o->wf)->message,
            json_pack("{ss ss}", "user", o->user, "reason", reason));
}

/* A cancel arrived: deprovision, then end as cancelled. */
static int cancelled(onb_t *o)
{
        int rc = deprovision(o, "cancelled");
        if (rc)
                return rc;
        stage(o, "cancelled", NULL);
        return KEEL_ERR_CANCELLED;
}

/* The input's integer field k when present: *v, and 0; -1 when it is
 * present but not a positive integer (or, with zero_ok, not >= 0). */
static int opt_int(const json_t *input, const char *k, int zero_ok, int64_t *v)
{
        const json_t *j = json_object_get(input, k);
        if (!j)
                return 0;
        if (!json_is_integer(j) || json_integer_value(j) < (zero_ok ? 0 : 1))
                return -1;
        *v = json_integer_value(j);
        return 0;
}

/* Read the input into o. KEEL_OK or the workflow's InvalidInput failure. */
static int read_input(onb_t *o, const json_t *input)
{
        int64_t stc = 10000, n = ONBOARDING_REMINDERS;
        o->user = json_string_value(json_object_get(input, "user"));
        o->email = json_string_value(json_object_get(input, "email"));
        o->faults = json_object_get(input, "faults");
        o->verify_ms = ONBOARDING_VERIFY_MS;
        o->interval_ms = ONBOARDING_REMINDER_MS;
        if (!o->user || !*o->user || !o->email || !strchr(o->email, '@') ||
            opt_int(input, "verify_timeout_ms", 0, &o->verify_ms) ||
            opt_int(input, "reminder_interval_ms", 0, &o->interval_ms) ||
            opt_int(input, "reminders", 1, &n) ||
            opt_int(input, "start_to_close_ms", 0, &stc) || n > 365 ||
            (o->faults && !json_is_object(o->faults)))
                return keel_fail(o->wf, "InvalidInput",
                                 "the input needs \"user\", an \"email\" "
                                 "address, and positive durations",
                                 NULL);
        o->reminders = n;
        o->opts = (keel_activity_options_t){
            .task_queue = ONBOARDING_QUEUE,
            .start_to_close_ms = stc,
            .retry = {.initial_interval_ms = ONBOARDING_RETRY_FIRST_MS,
                      .maximum_attempts = ONBOARDING_MAX_ATTEMPTS}};
        return KEEL_OK;
}

/* Seven (or "reminders") emails, one every interval after verified_at. A
 * reminder that cannot be sent is skipped: the account is verified, and a
 * missed reminder is no reason to undo it. Counts in *sent, *failed. */
static int remind(onb_t *o, int64_t verified_at, json_int_t *sent,
                  json_int_t *failed)
{
        for (json_int_t day = 1; day <= o->reminders; day++) {
                int64_t at = verified_at + day * o->interval_ms;
                int rc;
                stage(o, "reminding",
                      json_pack("{sI sI}", "reminders_sent", *sent,
                                "next_reminder_ms", (json_int_t)at));
                /* Until the day's time, so slow emails do not add up. */
                rc = keel_sleep(o->wf, at - keel_now(o->wf));
                if (rc == KEEL_OK)
                        rc = activity(o, "sendEmail",
                                      json_pack("{ss ss sI sI}", "to", o->email,
                                                "template", "reminder", "day",
                                                day, "of", o->reminders),
                                      NULL);
                if (rc == KEEL_ERR_CANCELLED)
                        return rc;
                if (rc == KEEL_OK) {
                        (*sent)++;
                } else {
                        keel_wf_log(o->wf, KEEL_LOG_WARN,
                                    "msg=\"reminder not sent\" day=%lld "
                                    "error=%s",
                                    (long long)day,
                                    keel_wf_failure(o->wf)->type);
                        (*failed)++;
                }
        }
        return KEEL_OK;
}

static keel_err_t onboarding(keel_wf_t *wf, const json_t *input,
                             json_t **result)
{
        onb_t o = {.wf = wf};
        json_t *res, *payload;
        const char *plan;
        json_int_t sent = 0, failed = 0;
        int64_t verified_at;
        int rc;

        if ((rc = read_input(&o, input)))
                return rc;

        plan = json_string_value(json_object_get(input, "plan"));
        stage(&o, "provisioning", NULL);
        rc = activity(&o, "provisionAccount",
                      json_pack("{ss}", "plan", plan ? plan : "free"), &res);
        if (rc == KEEL_ERR_CANCELLED)
                return cancelled(&o);
        if (rc) {
                stage(&o, "failed",
                      json_pack("{ss}", "reason", "provisioning_failed"));
                return keel_fail(wf, "ProvisioningFailed",
                                 keel_wf_failure(wf)->message, NULL);
        }
        o.account_id = json_string_value(json_object_get(res, "account_id"));

        stage(&o, "sending_verification", NULL);
        rc = activity(&o, "sendEmail",
                      json_pack("{ss ss}", "to", o.email, "template", "verify"),
                      NULL);
        if (rc == KEEL_ERR_CANCELLED)
                return cancelled(&o);
        if (rc) {
                /* The failure, before the compensation's calls replace it;
                 * in the run's arena, since deprovisioning may suspend. */
                const keel_failure_t *f = keel_wf_failure(wf);
                const char *type = keel_strdup(wf, f->type);
                const char *msg = keel_strdup(wf, f->message);
                if ((rc = deprovision(&o, "verification_email_failed")))
                        return rc;
                stage(&o, "failed",
                      json_pack("{ss}", "reason", "verification_email_failed"));
                return keel_fail(wf, "VerificationEmailFailed", msg,
                                 json_pack("{ss ss}", "email_failure", type,
                                           "user", o.user));
        }

        stage(&o, "awaiting_verification",
              json_pack("{sI}", "verify_by_ms",
                        (json_int_t)(keel_now(wf) + o.verify_ms)));
        rc = keel_wait_signal(wf, ONBOARDING_SIGNAL, o.verify_ms, &payload);
        if (rc == KEEL_ERR_CANCELLED)
                return cancelled(&o);
        if (rc == KEEL_ERR_TIMEOUT) {
                if ((rc = deprovision(&o, "verification_expired")))
                        return rc;
                stage(&o, "expired", NULL);
                *result = json_pack("{ss ss ss?}", "status", "expired", "user",
                                    o.user, "account_id", o.account_id);
                return KEEL_OK;
        }
        verified_at = keel_now(wf);

        if (remind(&o, verified_at, &sent, &failed) == KEEL_ERR_CANCELLED)
                return cancelled(&o);
        stage(&o, "onboarded",
              json_pack("{sI sI}", "reminders_sent", sent, "reminders_failed",
                        failed));
        *result = json_pack("{ss ss ss? sI sO sI sI}", "status", "onboarded",
                            "user", o.user, "account_id", o.account_id,
                            "verified_at_ms", (json_int_t)verified_at,
                            "verification", payload ? payload : json_null(),
                            "reminders_sent", sent, "reminders_failed", failed);
        return KEEL_OK;
}

int onboarding_register_workflow(keel_registry_t *reg)
{
        return keel_workflow_register(reg, ONBOARDING_WORKFLOW, onboarding);
}

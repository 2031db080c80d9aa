/*
 * onboarding_activities.c: the onboarding example's activities, fakes of
 * an account provisioner and an email provider. Their "side effects" are
 * lines in the effect log (effects.h), keyed by the activity's
 * idempotency key, so a retried attempt or a task run twice makes its
 * effect once. The input's "faults" make them fail (onboarding.h).
 */
#include "onboarding.h"

#include "effects.h"

#include <stdio.h>
#include <string.h>

/* How each activity fails when asked to: for good, or now and then. */
typedef struct fault_s {
        const char *activity;
        const char *fail_type, *fail_message;
        const char *flaky_type, *flaky_message;
} fault_t;

static const fault_t faults[] = {
    {"provisionAccount", "PlanUnavailable", "the plan cannot be provisioned",
     "ProvisionerBusy", "the provisioner is busy"},
    {"sendEmail", "EmailBounced", "the address rejected the message",
     "EmailProviderUnavailable", "the email provider is unavailable"},
    {"deprovisionAccount", "AccountLocked", "the account cannot be removed",
     "ProvisionerBusy", "the provisioner is busy"},
};

/* The failure the input's faults ask of this attempt (its return value),
 * or KEEL_OK; then the effect, made once per idempotency key. */
static int attempt(keel_activity_ctx_t *ctx, const json_t *input)
{
        const char *type = keel_activity_type(ctx);
        const json_t *f =
            json_object_get(json_object_get(input, "faults"), type);
        for (size_t i = 0; f && i < sizeof(faults) / sizeof(faults[0]); i++) {
                if (strcmp(faults[i].activity, type))
                        continue;
                if (json_is_true(json_object_get(f, "fail")))
                        return keel_activity_fail(ctx, faults[i].fail_type,
                                                  faults[i].fail_message, NULL,
                                                  1);
                if (keel_activity_attempt(ctx) <=
                    json_integer_value(json_object_get(f, "flaky")))
                        return keel_activity_fail(ctx, faults[i].flaky_type,
                                                  faults[i].flaky_message, NULL,
                                                  0);
        }
        return example_effect(ctx);
}

static const char *str(const json_t *input, const char *k)
{
        const char *s = json_string_value(json_object_get(input, k));
        return s ? s : "";
}

int onboarding_provision_account(keel_activity_ctx_t *ctx, const json_t *input,
                                 json_t **result)
{
        char account[300];
        int rc = attempt(ctx, input);
        if (rc)
                return rc;
        /* A real provisioner hands out the ID; this one derives it. */
        snprintf(account, sizeof(account), "acct-%s", str(input, "user"));
        *result = json_pack("{ss ss}", "account_id", account, "plan",
                            str(input, "plan"));
        return KEEL_OK;
}

int onboarding_send_email(keel_activity_ctx_t *ctx, const json_t *input,
                          json_t **result)
{
        int rc = attempt(ctx, input);
        if (rc)
                return rc;
        *result = json_pack("{ss ss}", "message_id",
                            keel_activity_idempotency_key(ctx), "template",
                            str(input, "template"));
        return KEEL_OK;
}

int onboarding_deprovision_account(keel_activity_ctx_t *ctx,
                                   const json_t *input, json_t **result)
{
        int rc = attempt(ctx, input);
        if (rc)
                return rc;
        *result = json_pack("{ss sb}", "user", str(input, "user"),
                            "deprovisioned", 1);
        return KEEL_OK;
}

const example_activity_t onboarding_activities[] = {
    {"provisionAccount", onboarding_provision_account},
    {"sendEmail", onboarding_send_email},
    {"deprovisionAccount", onboarding_deprovision_account},
};
const size_t onboarding_activities_cnt =
    sizeof(onboarding_activities) / sizeof(onboarding_activities[0]);

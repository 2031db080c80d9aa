/*
 * onboarding.h: the onboarding example. A workflow provisions a new
 * user's account, sends a verification email and waits up to 72 hours for
 * the signal "verified". Without it the onboarding expires: the account is
 * deprovisioned. With it, seven daily reminder emails follow, one a day on
 * durable timers, and the user is onboarded. A cancel at any point
 * deprovisions the account; so does a verification email that cannot be
 * sent, after which the workflow fails. The workflow publishes its stage
 * with keel_set_state(). Its activities are fakes that record their side
 * effects in an effect log (effects.h) and fail when the input asks them
 * to, like a flaky email provider. README.md in this folder describes the
 * input, the stages and the outcomes.
 */
#ifndef KEEL_EXAMPLE_ONBOARDING_H
#define KEEL_EXAMPLE_ONBOARDING_H

#include "worker_main.h"

#include <keel/keel.h>

#define ONBOARDING_WORKFLOW       "onboarding"
#define ONBOARDING_QUEUE          "onboarding"
#define ONBOARDING_SIGNAL         "verified"
#define ONBOARDING_VERIFY_MS      (72LL * 3600 * 1000)
#define ONBOARDING_REMINDER_MS    (24LL * 3600 * 1000)
#define ONBOARDING_REMINDERS      7
#define ONBOARDING_MAX_ATTEMPTS   5 /* of every activity */
#define ONBOARDING_RETRY_FIRST_MS 1000

/* Register the "onboarding" workflow type. */
int onboarding_register_workflow(keel_registry_t *reg);

/*
 * The activities, for workers and tests. opaque is the effect log they
 * record their side effects in, or NULL. Each takes the "faults" object
 * the workflow passes on from its input: {"<activity>": {"flaky": N,
 * "fail": true}}: the activity fails its first N attempts with a
 * retryable error, or every attempt with a non-retryable one.
 */
/* {"user", "plan"} -> {"account_id", "plan"}. Fails: PlanUnavailable;
 * flaky: ProvisionerBusy. */
int onboarding_provision_account(keel_activity_ctx_t *ctx, const json_t *input,
                                 json_t **result);
/* {"user", "to", "template": "verify"|"reminder", "day"} ->
 * {"message_id", "template"}. Fails: EmailBounced; flaky:
 * EmailProviderUnavailable. */
int onboarding_send_email(keel_activity_ctx_t *ctx, const json_t *input,
                          json_t **result);
/* {"user", "reason", "account_id" if known} -> {"user", "deprovisioned":
 * true}. Deprovisioning a user with no account changes nothing. Fails:
 * AccountLocked; flaky: ProvisionerBusy. */
int onboarding_deprovision_account(keel_activity_ctx_t *ctx,
                                   const json_t *input, json_t **result);

/* The activities by name, to register with a worker or test environment. */
extern const example_activity_t onboarding_activities[];
extern const size_t onboarding_activities_cnt;

#endif

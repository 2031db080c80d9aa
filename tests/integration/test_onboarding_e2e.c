/*
 * test_onboarding_e2e.c: the onboarding example end to end on the real
 * Kafka test broker. keel-orchestrator (with the payment and onboarding
 * modules, as a deployment running both would) and keel-onboarding-worker
 * run as real processes; the workflows' durations come from their input,
 * so a day of reminders takes half a second. Two onboardings: one gets
 * "verified" once the watcher sees it waiting for it (its published stage)
 * and is onboarded after seven reminders on durable timers; the other
 * never does, expires and is deprovisioned. An independent reader of
 * keel.history (e2e_support.h) sees how each closed; the worker's effect
 * log shows which side effects were made, once each.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"
#include "onboarding.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REMINDER_MS 500

/* Has workflow `opaque` published the stage "awaiting_verification"? */
static int awaiting(e2e_watch_t *w, void *opaque)
{
        (void)w;
        return e2e_wf_published(opaque, "stage", "awaiting_verification");
}

/* How many events of type keel.history.<t> wf has. */
static int events_of(const e2e_wf_t *wf, const char *t)
{
        int n = 0;
        while (e2e_wf_event(wf, t, NULL, n))
                n++;
        return n;
}

/* Field k of wf's result, or -1. */
static json_int_t result_int(const e2e_wf_t *wf, const char *k)
{
        const json_t *rec = e2e_wf_event(wf, "WorkflowCompleted", NULL, 0);
        json_t *r = json_loads(
            json_string_value(json_object_get(rec, "result")), 0, NULL);
        json_int_t v = json_is_integer(json_object_get(r, k))
                           ? json_integer_value(json_object_get(r, k))
                           : -1;
        json_decref(r);
        return v;
}

static void test_onboarding_e2e_verified_and_expired(void)
{
        e2e_example_t ex;
        e2e_watch_t *w;
        char prefix[64], id[2][128], err[1024];
        int counts[2], n;
        int64_t t0;

        CU_ASSERT_EQUAL_FATAL(e2e_example_start(&ex, "onboarding-e2e",
                                                "KEEL_TEST_ONBOARDING_MODULE",
                                                "keel-onboarding-worker",
                                                ONBOARDING_QUEUE),
                              KEEL_OK);
        snprintf(prefix, sizeof(prefix), "onb-e2e-%d-", (int)getpid());
        for (int i = 0; i < 2; i++)
                snprintf(id[i], sizeof(id[i]), "%s%d", prefix, i);
        w = e2e_watch_new(ex.env.bootstrap, prefix, 2, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);

        t0 = e2e_now_ms();
        for (int i = 0; i < 2; i++) {
                /* 0 has a minute to verify, 1 three seconds */
                json_t *in = json_pack(
                    "{ss ss ss si si si}", "user", id[i], "email",
                    "ada@example.com", "plan", "pro", "verify_timeout_ms",
                    i == 0 ? 60000 : 3000, "reminder_interval_ms", REMINDER_MS,
                    "reminders", ONBOARDING_REMINDERS);
                int rc =
                    keel_client_start(ex.client, id[i], ONBOARDING_WORKFLOW, in,
                                      NULL, NULL, err, sizeof(err));
                json_decref(in);
                if (rc)
                        fprintf(stderr, "%s: %s\n", id[i], err);
                CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        }
        /* Verify 0 once it waits for it: provisioned, email sent. */
        CU_ASSERT_FATAL(e2e_watch_until(w, t0 + 120000, awaiting, &w->wfs[0]));
        CU_ASSERT_EQUAL(keel_client_signal(ex.client, id[0], NULL,
                                           ONBOARDING_SIGNAL, NULL, 10000, err,
                                           sizeof(err)),
                        KEEL_OK);
        e2e_watch_until(w, t0 + 180000, e2e_watch_all_closed, NULL);
        fprintf(stderr, "both closed in %lld ms: %s, %s\n",
                (long long)(e2e_now_ms() - t0), w->wfs[0].status,
                w->wfs[1].status);
        e2e_example_stop(&ex);

        CU_ASSERT_EQUAL(w->closed, 2);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        CU_ASSERT_EQUAL(w->wfs[0].closes, 1);
        CU_ASSERT_EQUAL(w->wfs[1].closes, 1);
        CU_ASSERT_STRING_EQUAL(w->wfs[0].status, "onboarded");
        CU_ASSERT_STRING_EQUAL(w->wfs[1].status, "expired");
        CU_ASSERT_EQUAL(result_int(&w->wfs[0], "reminders_sent"),
                        ONBOARDING_REMINDERS);
        /* the reminders on durable timers, the verification timer
         * cancelled; the other one's timer fired */
        CU_ASSERT_EQUAL(events_of(&w->wfs[0], "TimerFired"),
                        ONBOARDING_REMINDERS);
        CU_ASSERT_EQUAL(events_of(&w->wfs[0], "TimerCancelled"), 1);
        CU_ASSERT_EQUAL(events_of(&w->wfs[0], "SignalReceived"), 1);
        CU_ASSERT_EQUAL(events_of(&w->wfs[1], "TimerFired"), 1);

        /* The effects, once each: 0 was provisioned and got its 8 emails;
         * 1 was provisioned, got 1 email and was deprovisioned. */
        {
                static const char *const acts[] = {
                    "provisionAccount", "sendEmail", "deprovisionAccount"};
                static const int want[3][2] = {{1, 1}, {8, 1}, {0, 1}};
                for (int a = 0; a < 3; a++) {
                        memset(counts, 0, sizeof(counts));
                        n = e2e_effects_count(ex.effects, acts[a], w, counts);
                        CU_ASSERT_EQUAL(n, want[a][0] + want[a][1]);
                        CU_ASSERT_EQUAL(counts[0], want[a][0]);
                        CU_ASSERT_EQUAL(counts[1], want[a][1]);
                }
        }
        e2e_watch_destroy(w);
}

static CU_TestInfo tests[] = {{"test_onboarding_e2e_verified_and_expired",
                               test_onboarding_e2e_verified_and_expired},
                              CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("onboarding_e2e", tests)

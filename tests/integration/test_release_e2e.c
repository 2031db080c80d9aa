/*
 * test_release_e2e.c: deploying the next release of the payment workflow
 * over running payments, on the real Kafka test broker.
 *
 * Release 1 (libkeel_payment_workflows.so) runs a payment up to its refund
 * window. The orchestrator is stopped and release 3
 * (libkeel_payment_workflows_v3.so) started: its "payment" adds a fraud
 * check before the charge behind keel_patched("fraud-check"), and it adds
 * "payment-saga", whose steps are undone by the saga helper. Then:
 *  - the running payment keeps its path (no fraud check, no
 *    non-determinism) and completes when it gets refundApproved;
 *  - a new payment takes the new path: a patch marker and the check's
 *    timer before the charge;
 *  - a payment-saga cancelled while it waits for "shipped" releases the
 *    stock and refunds the card, in that order, each once;
 *  - every recorded payment history replays against release 3.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"
#include "payment.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int published(e2e_watch_t *w, void *opaque)
{
        const char **what = opaque;
        return e2e_wf_published(e2e_watch_wf(w, what[0]), "stage", what[1]);
}

/* The index in wf's events of the first event of type t (with activity
 * type at, if not NULL), or -1. */
static int index_of(const e2e_wf_t *wf, const char *t, const char *at)
{
        size_t i;
        const json_t *ev;
        char full[128];
        snprintf(full, sizeof(full), "keel.history.%s", t);
        json_array_foreach(wf->events, i, ev)
        {
                const json_t *rec = json_object_get(ev, "record");
                const char *a =
                    json_string_value(json_object_get(rec, "activity_type"));
                if (!strcmp(json_string_value(json_object_get(ev, "type")),
                            full) &&
                    (!at || (a && !strcmp(a, at))))
                        return (int)i;
        }
        return -1;
}

/* Has wf a MarkerRecorded named `name`? */
static int has_marker(const e2e_wf_t *wf, const char *name)
{
        size_t i;
        const json_t *ev;
        json_array_foreach(wf->events, i, ev)
        {
                const char *m = json_string_value(json_object_get(
                    json_object_get(ev, "record"), "marker_name"));
                if (m && !strcmp(m, name))
                        return 1;
        }
        return 0;
}

/* Every worker and module the shared broker's earlier workflows need,
 * with `payment` as the payment module. */
static void modules(char *out, size_t size, const char *payment)
{
        snprintf(out, size, "%s,%s,%s", payment,
                 keel_test_env("KEEL_TEST_ONBOARDING_MODULE"),
                 keel_test_env("KEEL_TEST_AGENT_MODULE"));
}

static void test_release_over_running_payments(void)
{
        e2e_env_t env;
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        e2e_watch_t *w;
        char prefix[64], id[3][128], mods[4096], effects[600], err[1024];
        const char *what[2];
        int counts[3];
        pid_t orch, worker;
        e2e_wf_t *a, *b, *c;

        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&env, "release"), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&env), KEEL_OK);
        keel_config_set(cfg, "bootstrap", env.bootstrap, NULL, NULL, 0);
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        snprintf(prefix, sizeof(prefix), "rel-%d-", (int)getpid());
        for (int i = 0; i < 3; i++)
                snprintf(id[i], sizeof(id[i]), "%s%d", prefix, i);
        w = e2e_watch_new(env.bootstrap, prefix, 3, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        snprintf(effects, sizeof(effects), "%s/effects.log", env.workdir);

        /* Release 1: a payment waits in its refund window. */
        modules(mods, sizeof(mods), env.module);
        orch = e2e_start_orchestrator(&env, "orchestrator-1.log", mods, NULL);
        worker = e2e_start_worker(&env, "worker.log", effects, NULL);
        CU_ASSERT_FATAL(orch > 0 && worker > 0);
        {
                json_t *in = json_pack("{ss si si}", "order", "rel-0", "amount",
                                       1200, "refund_window_ms", 600000);
                CU_ASSERT_EQUAL_FATAL(
                    e2e_start_payment(client, id[0], in, 0, err, sizeof(err)),
                    KEEL_OK);
                json_decref(in);
        }
        what[0] = id[0];
        what[1] = "refund_window";
        CU_ASSERT_FATAL(
            e2e_watch_until(w, e2e_now_ms() + 60000, published, (void *)what));

        /* Release 3 replaces it. */
        CU_ASSERT_EQUAL(e2e_stop(orch, SIGTERM), 0);
        modules(mods, sizeof(mods),
                keel_test_env("KEEL_TEST_PAYMENT_MODULE_V3"));
        orch = e2e_start_orchestrator(&env, "orchestrator-3.log", mods, NULL);
        CU_ASSERT_FATAL(orch > 0);
        {
                json_t *in = json_pack("{ss si si}", "order", "rel-1", "amount",
                                       1300, "refund_window_ms", 0);
                keel_start_options_t o = {.wait_ms = 0};
                CU_ASSERT_EQUAL(keel_client_start(client, id[1],
                                                  PAYMENT_WORKFLOW, in, &o,
                                                  NULL, err, sizeof(err)),
                                KEEL_OK);
                json_decref(in);
                in = json_pack("{ss si}", "order", "rel-2", "amount", 1400);
                CU_ASSERT_EQUAL(keel_client_start(client, id[2], "payment-saga",
                                                  in, &o, NULL, err,
                                                  sizeof(err)),
                                KEEL_OK);
                json_decref(in);
        }
        CU_ASSERT_EQUAL(keel_client_signal(client, id[0], NULL,
                                           "refundApproved", NULL, 0, err,
                                           sizeof(err)),
                        KEEL_OK);
        what[0] = id[2];
        what[1] = "awaiting_shipment";
        CU_ASSERT(
            e2e_watch_until(w, e2e_now_ms() + 60000, published, (void *)what));
        CU_ASSERT_EQUAL(keel_client_cancel(client, id[2], NULL, "changed mind",
                                           0, err, sizeof(err)),
                        KEEL_OK);
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 90000, e2e_watch_all_closed,
                                  NULL));

        a = e2e_watch_wf(w, id[0]);
        b = e2e_watch_wf(w, id[1]);
        c = e2e_watch_wf(w, id[2]);
        fprintf(stderr, "  %s: %s; %s: %s; %s: %s\n", a->id, a->status, b->id,
                b->status, c->id, c->status);
        /* The running payment kept release 1's path. */
        CU_ASSERT_STRING_EQUAL(a->status, "refunded");
        CU_ASSERT_EQUAL(index_of(a, "NonDeterminismDetected", NULL), -1);
        CU_ASSERT_FALSE(has_marker(a, "patch"));
        CU_ASSERT_EQUAL(index_of(a, "TimerStarted", NULL) >
                            index_of(a, "ActivityScheduled", "chargeCard"),
                        1);
        /* The new one took the new path: the check before the charge. */
        CU_ASSERT_STRING_EQUAL(b->status, "completed");
        CU_ASSERT(has_marker(b, "patch"));
        CU_ASSERT(index_of(b, "TimerStarted", NULL) >= 0);
        CU_ASSERT(index_of(b, "TimerStarted", NULL) <
                  index_of(b, "ActivityScheduled", "chargeCard"));
        /* The cancelled saga undid its steps, the last first. */
        CU_ASSERT_STRING_EQUAL(c->status, "WorkflowCancelled");
        CU_ASSERT(index_of(c, "ActivityScheduled", "releaseInventory") >= 0);
        CU_ASSERT(index_of(c, "ActivityScheduled", "releaseInventory") <
                  index_of(c, "ActivityScheduled", "refundCard"));
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        /* The effects, once each (counts per workflow: 0, 1, 2). */
        memset(counts, 0, sizeof(counts));
        CU_ASSERT_EQUAL(e2e_effects_count(effects, "refundCard", w, counts), 2);
        CU_ASSERT_EQUAL(counts[0], 1); /* refundApproved */
        CU_ASSERT_EQUAL(counts[1], 0);
        CU_ASSERT_EQUAL(counts[2], 1); /* compensation */
        memset(counts, 0, sizeof(counts));
        CU_ASSERT_EQUAL(
            e2e_effects_count(effects, "releaseInventory", w, counts), 2);
        CU_ASSERT_EQUAL(counts[0], 1);
        CU_ASSERT_EQUAL(counts[2], 1);
        memset(counts, 0, sizeof(counts));
        CU_ASSERT_EQUAL(e2e_effects_count(effects, "chargeCard", w, counts), 3);
        for (int i = 0; i < 3; i++)
                CU_ASSERT_EQUAL(counts[i], 1);

        e2e_stop(orch, SIGTERM);
        e2e_stop(worker, SIGTERM);
        e2e_watch_destroy(w);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

/* Release 3 replays every payment recorded under release 1. */
static void test_release_replays_recorded_payments(void)
{
        static const char *const names[] = {
            "completed", "refunded", "declined",  "out-of-stock",
            "cancelled", "flaky",    "terminated"};
        keel_registry_t *reg = keel_registry_new();
        char path[1024];

        CU_ASSERT_EQUAL_FATAL(payment_register_v3(reg), KEEL_OK);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                keel_replay_report_t r;
                int rc;
                snprintf(path, sizeof(path), "%s/payment-%s.json",
                         keel_test_env("KEEL_TEST_FIXTURES"), names[i]);
                rc = keel_replay_file(reg, path, &r);
                if (rc)
                        fprintf(stderr, "%s: %s\n", path, r.message);
                CU_ASSERT_EQUAL(rc, KEEL_OK);
        }
        keel_registry_destroy(reg);
}

static CU_TestInfo tests[] = {
    {"test_release_replays_recorded_payments",
     test_release_replays_recorded_payments},
    {"test_release_over_running_payments", test_release_over_running_payments},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("release", tests)

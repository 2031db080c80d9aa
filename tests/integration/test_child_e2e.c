/*
 * test_child_e2e.c: child workflows on the real Kafka test broker, through
 * orchestrator crashes.
 *
 * keel-orchestrator runs child_module.c. KEEL_E2E_CHILD_PARENTS "fanout"
 * workflows (default 100) each start three "square" children, named so
 * that they land on other partitions than their parent, and sum their
 * results; a thread kill -9s the orchestrator KEEL_E2E_CHILD_KILLS times
 * (default 3) meanwhile. Then, as a reader of keel.history sees it: every
 * parent completed once with the right sum, every child completed once
 * with its parent's IDs in its WorkflowStarted, and each parent's history
 * has its three ChildWorkflowInitiated and ChildWorkflowClosed events
 * once each.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KIDS 3

static e2e_env_t procs;
static const char *module;
static char instance[96];
/* The orchestrator, and what kills it (its pid is the live one). */
static e2e_killer_t killer;

static pid_t start_orchestrator(void)
{
        const char *extra[] = {"-X", instance, NULL};
        return e2e_start_orchestrator(&procs, "orchestrator.log", module,
                                      extra);
}

static int count_events(const e2e_wf_t *wf, const char *type)
{
        int n = 0;
        while (e2e_wf_event(wf, type, NULL, n))
                n++;
        return n;
}

static void test_children_through_orchestrator_crashes(void)
{
        int n = e2e_env_int("KEEL_E2E_CHILD_PARENTS", 100);
        int kills = e2e_env_int("KEEL_E2E_CHILD_KILLS", 3);
        int total = n * (1 + KIDS), wrong = 0, bad_kids = 0;
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        e2e_watch_t *w;
        char prefix[64], id[128], err[1024];

        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&procs, "child"), KEEL_OK);
        module = keel_test_env("KEEL_TEST_CHILD_MODULE");
        snprintf(prefix, sizeof(prefix), "child-%d-", (int)getpid());
        snprintf(instance, sizeof(instance), "kafka.group.instance.id=%s",
                 prefix);
        keel_config_set(cfg, "bootstrap", procs.bootstrap, NULL, NULL, 0);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        killer.pid = start_orchestrator();
        killer.restart = start_orchestrator;
        killer.kills = kills;
        killer.min_ms = 700;
        killer.max_ms = 2000;
        CU_ASSERT_EQUAL_FATAL(e2e_killer_start(&killer), 0);

        /* parent i is "<prefix><i>"; its children "<prefix><n + 3i + j>" */
        for (int i = 0; i < n; i++) {
                json_t *kids = json_array(), *in;
                /* The last parents start after the last kill: every kill
                 * happens while workflows are open, however quick the
                 * others are. */
                if (i == n - n / 5) {
                        int64_t until = e2e_now_ms() + 60000;
                        while (killer.done < kills && e2e_now_ms() < until)
                                e2e_sleep_ms(50);
                }
                for (int j = 0; j < KIDS; j++) {
                        snprintf(id, sizeof(id), "%s%d", prefix,
                                 n + KIDS * i + j);
                        json_array_append_new(
                            kids, json_pack("{ss si}", "id", id, "n", i + j));
                }
                in = json_pack("{so si}", "children", kids, "sleep_ms",
                               200 + i % 5 * 100);
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                CU_ASSERT_EQUAL(keel_client_start(client, id, "fanout", in,
                                                  NULL, NULL, err, sizeof(err)),
                                KEEL_OK);
                json_decref(in);
                if (i % 20 == 19)
                        e2e_sleep_ms(200);
        }
        w = e2e_watch_new(procs.bootstrap, prefix, total, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 180000,
                                  e2e_watch_all_closed, NULL));
        e2e_killer_stop(&killer);
        e2e_watch_until(w, e2e_now_ms() + 2000, NULL, NULL);

        for (int i = 0; i < n; i++) {
                const e2e_wf_t *wf = &w->wfs[i];
                const json_t *done =
                    e2e_wf_event(wf, "WorkflowCompleted", NULL, 0);
                json_t *r = done ? json_loads(json_string_value(json_object_get(
                                                  done, "result")),
                                              0, NULL)
                                 : NULL;
                json_int_t want = 0;
                for (int j = 0; j < KIDS; j++)
                        want += (json_int_t)(i + j) * (i + j);
                if (wf->closes != 1 || !r ||
                    json_integer_value(json_object_get(r, "sum")) != want ||
                    count_events(wf, "ChildWorkflowInitiated") != KIDS ||
                    count_events(wf, "ChildWorkflowClosed") != KIDS) {
                        if (wrong++ < 5)
                                fprintf(
                                    stderr,
                                    "%s: closes %d, status %s, %d "
                                    "initiated, %d closed\n",
                                    wf->id, wf->closes, wf->status,
                                    count_events(wf, "ChildWorkflowInitiated"),
                                    count_events(wf, "ChildWorkflowClosed"));
                }
                json_decref(r);
                for (int j = 0; j < KIDS; j++) {
                        const e2e_wf_t *k = &w->wfs[n + KIDS * i + j];
                        const json_t *st =
                            e2e_wf_event(k, "WorkflowStarted", NULL, 0);
                        if (k->closes != 1 || strcmp(k->status, "squared") ||
                            !st ||
                            strcmp(json_string_value(json_object_get(
                                       st, "parent_workflow_id")),
                                   wf->id)) {
                                if (bad_kids++ < 5)
                                        fprintf(stderr,
                                                "%s: closes %d status %s\n",
                                                k->id, k->closes, k->status);
                        }
                }
        }
        printf("\n  %d parents, %d children: %d closed, %d wrong parents, "
               "%d wrong children, %d kills, %d seq violations\n",
               n, n * KIDS, w->closed, wrong, bad_kids, killer.done,
               w->seq_violations);
        CU_ASSERT_EQUAL(w->closed, total);
        CU_ASSERT_EQUAL(wrong, 0);
        CU_ASSERT_EQUAL(bad_kids, 0);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        CU_ASSERT_EQUAL(killer.done, kills);
        e2e_stop(killer.pid, SIGTERM);
        e2e_watch_destroy(w);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

/* Every child of the "policy" test has started. */
static int kids_started(e2e_watch_t *w, void *opaque)
{
        (void)opaque;
        for (int i = 2; i < w->n; i++)
                if (!w->wfs[i].run[0])
                        return 0;
        return 1;
}

/* Parent "<prefix>0" finishes with children under each close policy;
 * parent "<prefix>1" is cancelled with two children: as on the test
 * environment, on Kafka. */
static int two_parents_closed(e2e_watch_t *w, void *opaque)
{
        (void)opaque;
        return w->wfs[0].closes && w->wfs[1].closes && w->wfs[2].closes &&
               w->wfs[3].closes && w->wfs[5].closes && w->wfs[6].closes;
}

static void test_child_close_policies_and_cancel_on_kafka(void)
{
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        e2e_watch_t *w;
        char prefix[64], ids[7][128], err[1024];
        json_t *in;

        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&procs, "child-policy"), KEEL_OK);
        module = keel_test_env("KEEL_TEST_CHILD_MODULE");
        snprintf(prefix, sizeof(prefix), "child-policy-%d-", (int)getpid());
        snprintf(instance, sizeof(instance), "kafka.group.instance.id=%s",
                 prefix);
        for (int i = 0; i < 7; i++)
                snprintf(ids[i], sizeof(ids[i]), "%s%d", prefix, i);
        keel_config_set(cfg, "bootstrap", procs.bootstrap, NULL, NULL, 0);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        killer.pid = start_orchestrator();
        /* 0: children 2 (terminate), 3 (cancel), 4 (abandon);
         * 1: children 5 (terminate), 6 (cancel) */
        in = json_pack("{s[{ss ss}{ss ss}{ss ss}]}", "children", "id", ids[2],
                       "policy", "terminate", "id", ids[3], "policy", "cancel",
                       "id", ids[4], "policy", "abandon");
        CU_ASSERT_EQUAL(keel_client_start(client, ids[0], "keeper", in, NULL,
                                          NULL, err, sizeof(err)),
                        KEEL_OK);
        json_decref(in);
        in = json_pack("{s[{ss ss}{ss ss}]}", "children", "id", ids[5],
                       "policy", "terminate", "id", ids[6], "policy", "cancel");
        CU_ASSERT_EQUAL(keel_client_start(client, ids[1], "keeper", in, NULL,
                                          NULL, err, sizeof(err)),
                        KEEL_OK);
        json_decref(in);
        w = e2e_watch_new(procs.bootstrap, prefix, 7, E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT_FATAL(
            e2e_watch_until(w, e2e_now_ms() + 60000, kids_started, NULL));
        CU_ASSERT_EQUAL(keel_client_signal(client, ids[0], NULL, "finish", NULL,
                                           0, err, sizeof(err)),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_client_cancel(client, ids[1], NULL, "test", 0, err,
                                           sizeof(err)),
                        KEEL_OK);
        CU_ASSERT(
            e2e_watch_until(w, e2e_now_ms() + 60000, two_parents_closed, NULL));
        e2e_watch_until(w, e2e_now_ms() + 1500, NULL, NULL);
        printf("\n  finished parent %s: terminate %s, cancel %s, abandon %s; "
               "cancelled parent %s: children %s, %s\n",
               w->wfs[0].status, w->wfs[2].status, w->wfs[3].status,
               w->wfs[4].closes ? w->wfs[4].status : "running",
               w->wfs[1].status, w->wfs[5].status, w->wfs[6].status);
        CU_ASSERT_STRING_EQUAL(w->wfs[0].status, "finished");
        CU_ASSERT_STRING_EQUAL(w->wfs[2].status, "WorkflowTerminated");
        CU_ASSERT_STRING_EQUAL(w->wfs[3].status, "WorkflowCancelled");
        CU_ASSERT_EQUAL(w->wfs[4].closes, 0); /* abandoned: runs on */
        CU_ASSERT_STRING_EQUAL(w->wfs[1].status, "WorkflowCancelled");
        /* a cancel request to the parent reached both children first */
        CU_ASSERT_STRING_EQUAL(w->wfs[5].status, "WorkflowCancelled");
        CU_ASSERT_STRING_EQUAL(w->wfs[6].status, "WorkflowCancelled");
        for (int i = 0; i < 7; i++)
                CU_ASSERT(w->wfs[i].closes <= 1);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        e2e_stop(killer.pid, SIGTERM);
        e2e_watch_destroy(w);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {
    {"test_children_through_orchestrator_crashes",
     test_children_through_orchestrator_crashes},
    {"test_child_close_policies_and_cancel_on_kafka",
     test_child_close_policies_and_cancel_on_kafka},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("child_e2e", tests)

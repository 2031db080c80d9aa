/*
 * test_continue_e2e.c: continue-as-new and run timeouts on the real Kafka
 * test broker, through orchestrator crashes.
 *
 * keel-orchestrator runs continue_module.c. KEEL_E2E_CONTINUE_WORKFLOWS
 * "counter" workflows (default 100) each take KEEL_E2E_CONTINUE_SIGNALS
 * "add" signals (default 12; the k-th adds k), three per run: after each
 * three a run sleeps 300 ms, while more signals arrive, and continues as
 * new. Meanwhile a thread kill -9s the orchestrator
 * KEEL_E2E_CONTINUE_KILLS times (default 3) and restarts it; the last
 * round of signals waits for the last kill. Then, as a
 * reader of keel.history sees it: every counter completed once, in its
 * fourth run, with the exact sum (no signal lost or taken twice across
 * runs and crashes), each run's seqs 1..n. Five "sleeper" workflows
 * started with a 3 s run timeout, sleeping ten minutes, are terminated by
 * it, naming it.
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLEEPERS 5

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

/* The completed run's result (new reference), or NULL. */
static json_t *result_of(const e2e_wf_t *wf)
{
        const json_t *done = e2e_wf_event(wf, "WorkflowCompleted", NULL, 0);
        return done ? json_loads(
                          json_string_value(json_object_get(done, "result")), 0,
                          NULL)
                    : NULL;
}

static void test_continue_as_new_through_orchestrator_crashes(void)
{
        int n = e2e_env_int("KEEL_E2E_CONTINUE_WORKFLOWS", 100);
        int sigs = e2e_env_int("KEEL_E2E_CONTINUE_SIGNALS", 12);
        int kills = e2e_env_int("KEEL_E2E_CONTINUE_KILLS", 3);
        json_int_t want = (json_int_t)sigs * (sigs + 1) / 2;
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        keel_start_options_t timeout_opts = {0};
        e2e_watch_t *w;
        char prefix[64], id[128], err[1024];
        int wrong = 0, timed_out = 0;

        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&procs, "continue"), KEEL_OK);
        module = keel_test_env("KEEL_TEST_CONTINUE_MODULE");
        snprintf(prefix, sizeof(prefix), "continue-%d-", (int)getpid());
        snprintf(instance, sizeof(instance), "kafka.group.instance.id=%s",
                 prefix);
        keel_config_set(cfg, "bootstrap", procs.bootstrap, NULL, NULL, 0);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&procs), KEEL_OK);
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);
        killer.pid = start_orchestrator();
        killer.restart = start_orchestrator;
        killer.kills = kills;
        killer.min_ms = 1000;
        killer.max_ms = 2500;

        for (int i = 0; i < n; i++) {
                json_t *in =
                    json_pack("{si si si sI si}", "total", 0, "batch", 3,
                              "runs", 0, "until", want, "sleep_ms", 300);
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                CU_ASSERT_EQUAL(keel_client_start(client, id, "counter", in,
                                                  NULL, NULL, err, sizeof(err)),
                                KEEL_OK);
                json_decref(in);
        }
        timeout_opts.run_timeout_ms = 3000;
        for (int i = n; i < n + SLEEPERS; i++) {
                json_t *in = json_integer(600000);
                snprintf(id, sizeof(id), "%s%d", prefix, i);
                CU_ASSERT_EQUAL(keel_client_start(client, id, "sleeper", in,
                                                  &timeout_opts, NULL, err,
                                                  sizeof(err)),
                                KEEL_OK);
                json_decref(in);
        }
        CU_ASSERT_EQUAL_FATAL(e2e_killer_start(&killer), 0);
        /* The signals, round by round: each round reaches a counter while
         * it waits, sleeps or is being continued. */
        for (int k = 1; k <= sigs; k++) {
                /* The last round closes the counters: every kill happens
                 * before it, while they are open (they may be quick to
                 * take the others). */
                if (k == sigs) {
                        int64_t until = e2e_now_ms() + 60000;
                        while (killer.done < kills && e2e_now_ms() < until)
                                e2e_sleep_ms(50);
                }
                for (int i = 0; i < n; i++) {
                        json_t *p = json_pack("{si}", "n", k);
                        snprintf(id, sizeof(id), "%s%d", prefix, i);
                        CU_ASSERT_EQUAL(keel_client_signal(client, id, NULL,
                                                           "add", p, 0, err,
                                                           sizeof(err)),
                                        KEEL_OK);
                        json_decref(p);
                }
                e2e_sleep_ms(150);
        }
        w = e2e_watch_new(procs.bootstrap, prefix, n + SLEEPERS,
                          E2E_WATCH_EVENTS);
        CU_ASSERT_PTR_NOT_NULL_FATAL(w);
        CU_ASSERT(e2e_watch_until(w, e2e_now_ms() + 180000,
                                  e2e_watch_all_closed, NULL));
        e2e_killer_stop(&killer);
        e2e_watch_until(w, e2e_now_ms() + 2000, NULL, NULL);

        for (int i = 0; i < n; i++) {
                const e2e_wf_t *wf = &w->wfs[i];
                json_t *r = result_of(wf);
                if (wf->closes != 1 || !r ||
                    json_integer_value(json_object_get(r, "total")) != want ||
                    json_integer_value(json_object_get(r, "runs")) !=
                        (sigs + 2) / 3) {
                        if (wrong++ < 5)
                                fprintf(stderr, "%s: closes %d, result %s\n",
                                        wf->id, wf->closes,
                                        r ? json_dumps(r, JSON_COMPACT)
                                          : "(none)");
                }
                json_decref(r);
        }
        for (int i = n; i < n + SLEEPERS; i++) {
                const json_t *t =
                    e2e_wf_event(&w->wfs[i], "WorkflowTerminated", NULL, 0);
                const char *reason =
                    json_string_value(json_object_get(t, "reason"));
                timed_out += w->wfs[i].closes == 1 && reason &&
                             strstr(reason, "WorkflowRunTimedOut") != NULL;
        }
        printf("\n  %d counters: %d closed, %d wrong; %d/%d sleepers timed "
               "out; %d kills; %d seq violations\n",
               n, w->closed - SLEEPERS, wrong, timed_out, SLEEPERS, killer.done,
               w->seq_violations);
        CU_ASSERT_EQUAL(w->closed, n + SLEEPERS);
        CU_ASSERT_EQUAL(wrong, 0);
        CU_ASSERT_EQUAL(timed_out, SLEEPERS);
        CU_ASSERT_EQUAL(w->seq_violations, 0);
        CU_ASSERT_EQUAL(killer.done, kills);
        e2e_stop(killer.pid, SIGTERM);
        e2e_watch_destroy(w);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {
    {"test_continue_as_new_through_orchestrator_crashes",
     test_continue_as_new_through_orchestrator_crashes},
    CU_TEST_INFO_NULL,
};

KEEL_TEST_MAIN("continue_e2e", tests)

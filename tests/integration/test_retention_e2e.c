/*
 * test_retention_e2e.c: retention of closed workflows on the real Kafka
 * test broker. keel-orchestrator runs the test's module (type "retained",
 * retention_module.c) with a retention of 2 s for that type
 * (retention.closed.ms.retained) and keel-projector follows keel.history.
 * A workflow that completes is deleted 2 s later: a read_committed reader
 * of keel.history finds its RunDeleted and a tombstone for the key of each
 * of its events and of the RunDeleted, the projector answers 404 for it,
 * and neither a restarted orchestrator nor a projector started afterwards
 * brings it back. A workflow left open is kept. A new start of the
 * deleted ID runs as a new workflow. (The test broker never rolls a
 * segment, so compaction itself is not seen here.)
 */
#include "e2e_support.h"
#include "keel/keel.h"
#include "keel_http.h"
#include "keel_test.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static e2e_env_t env;

/* The number in the file `path` (a port), or -1 by the deadline. */
static int read_port(const char *path, int64_t deadline)
{
        for (; e2e_now_ms() < deadline; e2e_sleep_ms(100)) {
                FILE *f = fopen(path, "r");
                int port = 0;
                if (f && fscanf(f, "%d", &port) != 1)
                        port = 0;
                if (f)
                        fclose(f);
                if (port > 0)
                        return port;
        }
        return -1;
}

/* A projector logging to <name>.log; its port once ready, or -1. */
static int projector_start(const char *name, pid_t *pid)
{
        char bin[600], pf[700], logname[128];
        const char *av[12];
        int port;
        snprintf(bin, sizeof(bin), "%s/keel-projector",
                 keel_test_env("KEEL_TEST_BIN_DIR"));
        snprintf(pf, sizeof(pf), "%s/%s.port", env.workdir, name);
        snprintf(logname, sizeof(logname), "%s.log", name);
        av[0] = bin;
        av[1] = "--bootstrap";
        av[2] = env.bootstrap;
        av[3] = "-X";
        av[4] = "http.listen=127.0.0.1:0";
        av[5] = "--port-file";
        av[6] = pf;
        av[7] = NULL;
        *pid = e2e_spawn(&env, logname, (char *const *)av);
        if (*pid <= 0 || (port = read_port(pf, e2e_now_ms() + 30000)) < 0)
                return -1;
        for (int64_t end = e2e_now_ms() + 60000; e2e_now_ms() < end;
             e2e_sleep_ms(100))
                if (http_status(port, "GET", "/readyz") == 200)
                        return port;
        return -1;
}

/* GET /api/v1/workflows/<id>: the HTTP status, and the workflow's
 * status into st (16 bytes; "" if none). */
static int status_of(int port, const char *id, char *st)
{
        char path[300];
        http_res_t r;
        int code;
        snprintf(path, sizeof(path), "/api/v1/workflows/%s", id);
        r = http_req(port, "GET", path, NULL);
        code = r.status;
        snprintf(st, 16, "%s",
                 r.json && json_string_value(json_object_get(r.json, "status"))
                     ? json_string_value(json_object_get(r.json, "status"))
                     : "");
        http_res_free(&r);
        return code;
}

/* What keel.history holds for one workflow ID. */
typedef struct seen_s {
        char prefix[200]; /* "<ID>/" */
        char run[64];     /* the run whose records are checked */
        int values;       /* records with a value */
        int events;       /* workflow events of run (not RunDeleted) */
        int64_t deleted;  /* the RunDeleted's seq; 0: none */
        int tombstones;   /* of run */
        char stoned[64];  /* stoned[seq]: a tombstone after its value */
        char valued[64];  /* valued[seq]: its value seen */
        int out_of_order; /* a tombstone before its key's value */
} seen_t;

static void see(void *opaque, const rd_kafka_message_t *m)
{
        seen_t *s = opaque;
        size_t pl = strlen(s->prefix);
        char key[300];
        const char *seqs;
        long seq;
        const char *type;
        json_t *rec;

        if (!m->key || m->key_len >= sizeof(key) || m->key_len <= pl)
                return;
        memcpy(key, m->key, m->key_len);
        key[m->key_len] = '\0';
        if (strncmp(key, s->prefix, pl) || !(seqs = strrchr(key, '/')))
                return;
        seq = strtol(seqs + 1, NULL, 10);
        if (!m->payload) {
                if (strncmp(key + pl, s->run, strlen(s->run)))
                        return;
                s->tombstones++;
                if (seq > 0 && seq < 64) {
                        s->stoned[seq] = 1;
                        s->out_of_order += !s->valued[seq];
                }
                return;
        }
        s->values++;
        if (keel_codec_decode(m->payload, m->len, &type, &rec, NULL, 0))
                return;
        if (!strcmp(json_string_value(json_object_get(rec, "run_id")),
                    s->run)) {
                if (seq > 0 && seq < 64)
                        s->valued[seq] = 1;
                if (!strcmp(type, "keel.history.RunDeleted"))
                        s->deleted = seq;
                else
                        s->events++;
        }
        json_decref(rec);
}

static void read_history(seen_t *s, const char *id, const char *run)
{
        memset(s, 0, sizeof(*s));
        snprintf(s->prefix, sizeof(s->prefix), "%s/", id);
        snprintf(s->run, sizeof(s->run), "%s", run);
        CU_ASSERT_FATAL(e2e_read_topic(env.bootstrap, KEEL_TOPIC_HISTORY,
                                       "read_committed", 60000, see, s));
}

static void test_retention_e2e_deleted_and_forgotten(void)
{
        static const char *const orch_args[] = {
            "-X", "retention.closed.ms.retained=2000", NULL};
        const char *module = keel_test_env("KEEL_TEST_RETENTION_MODULE");
        keel_config_t *cfg = keel_config_new();
        keel_client_t *client;
        keel_client_run_t run;
        json_t *input = json_pack("{ss}", "order", "ret");
        char gone[128], kept[128], run_id[KEEL_UUID_SIZE], err[1024];
        pid_t orch, proj, proj2;
        char st[16];
        int port, port2, code, saw_completed = 0;
        int64_t deadline;
        seen_t s, s2;

        signal(SIGPIPE, SIG_IGN);
        CU_ASSERT_EQUAL_FATAL(e2e_env_init(&env, "retention"), KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(e2e_topics_create(&env), KEEL_OK);
        snprintf(gone, sizeof(gone), "ret-%d-gone", (int)getpid());
        snprintf(kept, sizeof(kept), "ret-%d-kept", (int)getpid());
        keel_config_set(cfg, "bootstrap", env.bootstrap, NULL, NULL, 0);
        client = keel_client_new(cfg, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(client);

        orch =
            e2e_start_orchestrator(&env, "orchestrator.log", module, orch_args);
        CU_ASSERT_FATAL(orch > 0);
        port = projector_start("projector", &proj);
        CU_ASSERT_FATAL(port > 0);
        {
                keel_start_options_t opts = {.wait_ms = 30000};
                json_t *sig = json_pack("{sb}", "ok", 1);
                CU_ASSERT_EQUAL_FATAL(
                    keel_client_start(client, gone, "retained", input, &opts,
                                      run_id, err, sizeof(err)),
                    KEEL_OK);
                CU_ASSERT_EQUAL_FATAL(
                    keel_client_start(client, kept, "retained", input, &opts,
                                      NULL, err, sizeof(err)),
                    KEEL_OK);
                CU_ASSERT_EQUAL_FATAL(keel_client_signal(client, gone, NULL,
                                                         "finish", sig, 30000,
                                                         err, sizeof(err)),
                                      KEEL_OK);
                json_decref(sig);
        }

        /* The projector shows it completed, then, 2 s after it closed,
         * forgets it. */
        deadline = e2e_now_ms() + 30000;
        while ((code = status_of(port, gone, st)) != 404 &&
               e2e_now_ms() < deadline) {
                saw_completed |= code == 200 && !strcmp(st, "completed");
                e2e_sleep_ms(100);
        }
        CU_ASSERT_TRUE(saw_completed);
        CU_ASSERT_EQUAL_FATAL(status_of(port, gone, st), 404);
        CU_ASSERT_EQUAL(status_of(port, kept, st), 200);

        /* keel.history, read_committed: the run's events, its RunDeleted,
         * then a tombstone for every one of their keys. */
        read_history(&s, gone, run_id);
        CU_ASSERT_EQUAL(s.events, 3); /* started, signal, completed */
        CU_ASSERT_EQUAL(s.deleted, s.events + 1);
        CU_ASSERT_EQUAL(s.tombstones, s.events + 1);
        for (int i = 1; i <= s.events + 1 && i < 64; i++)
                CU_ASSERT_TRUE(s.stoned[i] && s.valued[i]);
        CU_ASSERT_EQUAL(s.out_of_order, 0);
        CU_ASSERT_EQUAL(
            keel_client_result(client, gone, 0, &run, err, sizeof(err)),
            KEEL_ERR_NOT_FOUND);

        /* A restarted orchestrator restores the partitions and does not
         * bring it back, nor delete it again. */
        e2e_stop(orch, SIGTERM);
        orch = e2e_start_orchestrator(&env, "orchestrator-2.log", module,
                                      orch_args);
        CU_ASSERT_FATAL(orch > 0);
        deadline = e2e_now_ms() + 60000;
        while (e2e_log_count(&env, "orchestrator-2.log", "msg=claimed") <
                   E2E_PARTITIONS &&
               e2e_now_ms() < deadline)
                e2e_sleep_ms(100);
        CU_ASSERT_EQUAL_FATAL(
            e2e_log_count(&env, "orchestrator-2.log", "msg=claimed"),
            E2E_PARTITIONS);
        e2e_sleep_ms(3000); /* past any retention it could restart */
        read_history(&s2, gone, run_id);
        CU_ASSERT_EQUAL(s2.values, s.values);
        CU_ASSERT_EQUAL(s2.tombstones, s.tombstones);
        CU_ASSERT_EQUAL(status_of(port, gone, st), 404);

        /* A projector that reads it all now agrees. */
        port2 = projector_start("projector-2", &proj2);
        CU_ASSERT_FATAL(port2 > 0);
        CU_ASSERT_EQUAL(status_of(port2, gone, st), 404);
        CU_ASSERT_EQUAL(status_of(port2, kept, st), 200);
        {
                http_res_t r = http_req(port2, "GET", "/metrics", NULL);
                CU_ASSERT_PTR_NOT_NULL(
                    r.body ? strstr(r.body, "keel_projector_runs_deleted_total "
                                            "1\n")
                           : NULL);
                CU_ASSERT_PTR_NOT_NULL(
                    r.body ? strstr(r.body, "keel_projector_undecodable_"
                                            "records_total 0\n")
                           : NULL);
                http_res_free(&r);
        }

        /* The ID starts again as a new workflow. */
        {
                keel_start_options_t opts = {.wait_ms = 30000};
                char run2[KEEL_UUID_SIZE];
                CU_ASSERT_EQUAL(keel_client_start(client, gone, "retained",
                                                  input, &opts, run2, err,
                                                  sizeof(err)),
                                KEEL_OK);
                CU_ASSERT_STRING_NOT_EQUAL(run2, run_id);
        }
        deadline = e2e_now_ms() + 30000;
        while (status_of(port, gone, st) != 200 && e2e_now_ms() < deadline)
                e2e_sleep_ms(100);
        CU_ASSERT_EQUAL(status_of(port, gone, st), 200);
        CU_ASSERT_STRING_EQUAL(st, "running");
        CU_ASSERT_EQUAL(status_of(port2, gone, st), 200);

        e2e_stop(proj2, SIGTERM);
        e2e_stop(proj, SIGTERM);
        e2e_stop(orch, SIGTERM);
        json_decref(input);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {{"test_retention_e2e_deleted_and_forgotten",
                               test_retention_e2e_deleted_and_forgotten},
                              CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("retention_e2e", tests)

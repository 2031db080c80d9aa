/*
 * test_chaos_check.c: keel-check, the chaos run's checker, must fail. On
 * a dev broker of its own it writes a crash-free run of payment
 * workflows by hand: each start through keel's client into keel.inbox,
 * the history the test environment gives for it into keel.history (a
 * claim, the events under its epoch, a checkpoint) and the effects of its
 * completed activities into an effect log. keel-check passes that, with a
 * keel-projector reading the same history. Then the tests corrupt the
 * situation one way at a time, as a bug in keel would, and keel-check
 * must exit 1 naming the kind: a history event written again with a valid
 * checkpoint (seq), an effect made twice or missing (effects), an event
 * under an epoch nobody claimed (fencing), a start that got no answer
 * (inbox, closed, count), a run closed with another result than the
 * reference (result), a run nobody started (inbox). Records of a fenced
 * owner are written too: the reader rules ignore them and keel-check
 * counts them without complaint.
 */
#include "e2e_support.h"
#include "history_int.h"
#include "keel/keel.h"
#include "keel_test.h"
#include "payment.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PARTITIONS 12
#define EPOCH      3 /* the hand-written owner's epoch */
#define CLEAN      6 /* workflows of the clean run */

static e2e_env_t env;
static keel_config_t *cfg;
static keel_client_t *client;
static keel_registry_t *reg;
static rd_kafka_t *prod;
static char prefix[64], effects[700];
static int step;
static pid_t broker;
static int64_t epoch_of[PARTITIONS]; /* each partition's owner, 0: none */
static json_t *last;                 /* the figures of the last check */

/* ---- writing by hand --------------------------------------------------- */

static void produce(const char *topic, int32_t p, const char *key,
                    const char *type, const json_t *rec)
{
        unsigned char *buf;
        size_t len;
        char err[512];
        CU_ASSERT_EQUAL_FATAL(
            keel_codec_encode(type, rec, &buf, &len, err, sizeof(err)),
            KEEL_OK);
        CU_ASSERT_EQUAL_FATAL(
            rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
        CU_ASSERT_EQUAL_FATAL(rd_kafka_flush(prod, 10000),
                              RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void claim(int32_t p, int64_t epoch)
{
        char key[64];
        json_t *rec = json_pack("{si sI ss sI}", "partition", (int)p, "epoch",
                                (json_int_t)epoch, "owner", "test_chaos_check",
                                "ts", (json_int_t)0);
        snprintf(key, sizeof(key), "%s%d/%lld", KEEL__KEY_CLAIM, (int)p,
                 (long long)epoch);
        produce(KEEL_TOPIC_HISTORY, p, key, "keel.history.PartitionClaim", rec);
        json_decref(rec);
}

static void checkpoint(int32_t p, int64_t epoch, int events)
{
        char key[64];
        json_t *rec =
            json_pack("{si sI sI si sI}", "partition", (int)p, "epoch",
                      (json_int_t)epoch, "inbox_offset", (json_int_t)-1,
                      "batch_events", events, "ts", (json_int_t)0);
        snprintf(key, sizeof(key), "%s%d/%lld", KEEL__KEY_CHECKPOINT, (int)p,
                 (long long)epoch);
        produce(KEEL_TOPIC_HISTORY, p, key, "keel.history.Checkpoint", rec);
        json_decref(rec);
}

/* One history event ({"type","record"}, borrowed) under epoch. */
static void event(const json_t *ev, int64_t epoch)
{
        json_t *rec = json_deep_copy(json_object_get(ev, "record"));
        const char *id = json_string_value(json_object_get(rec, "workflow_id"));
        char key[600];
        json_object_set_new(rec, "epoch", json_integer(epoch));
        snprintf(key, sizeof(key), "%s/%s/%lld", id,
                 json_string_value(json_object_get(rec, "run_id")),
                 (long long)json_integer_value(json_object_get(rec, "seq")));
        produce(KEEL_TOPIC_HISTORY,
                keel_partition_of(id, strlen(id), PARTITIONS), key,
                json_string_value(json_object_get(ev, "type")), rec);
        json_decref(rec);
}

/* The input of workflow variant v and whether it starts with the signal. */
static json_t *input_of(int v, int *signal)
{
        *signal = v % 3 == 0;
        switch (v % 6) {
        case 2:
                return json_pack("{ss si sb}", "order", "check", "amount", 7,
                                 "decline", 1);
        case 4:
                return json_pack("{ss si sb}", "order", "check", "amount", 8,
                                 "out_of_stock", 1);
        case 5:
                return json_pack("{ss si si si}", "order", "check", "amount", 9,
                                 "flaky", 1, "refund_window_ms", 500);
        default:
                return json_pack("{ss si si}", "order", "check", "amount",
                                 100 + v, "refund_window_ms",
                                 *signal ? 3600000 : 500);
        }
}

/*
 * Workflow `name` of variant v as a crash-free run leaves it: with
 * `start`, its start command in keel.inbox through the client; its
 * history from the test environment, with the inbox command's ID, in one
 * batch of its partition's owner (the first one claims epoch EPOCH); its
 * effects in the effect log. With
 * `result` (borrowed), the run closes with that result instead. Returns
 * the history (a new reference).
 */
static json_t *write_run(const char *name, int v, int start,
                         const json_t *result)
{
        keel_start_options_t o = {0};
        keel_testenv_t *te = keel_testenv_new(reg, 0);
        char id[128], cid[KEEL_UUID_SIZE], err[1024];
        json_t *acts = json_object(), *hist, *ev;
        int signal;
        json_t *in = input_of(v, &signal);
        int32_t p;
        size_t i;
        FILE *fx;

        snprintf(id, sizeof(id), "%s%s", prefix, name);
        p = keel_partition_of(id, strlen(id), PARTITIONS);
        CU_ASSERT_EQUAL_FATAL(keel_client_command_id(cid), KEEL_OK);
        o.command_id = cid;
        o.signal_name = signal ? "refundApproved" : NULL;
        if (start)
                CU_ASSERT_EQUAL_FATAL(
                    keel_client_start(client, id, PAYMENT_WORKFLOW, in, &o,
                                      NULL, err, sizeof(err)),
                    KEEL_OK);
        for (size_t k = 0; k < payment_activities_cnt; k++)
                keel_testenv_register_activity(te, payment_activities[k].name,
                                               payment_activities[k].fn, NULL);
        CU_ASSERT_EQUAL_FATAL(
            keel_testenv_start_ex(te, id, PAYMENT_WORKFLOW, in, &o), KEEL_OK);
        keel_testenv_run(te);
        hist = json_deep_copy(keel_testenv_history(te, id));
        keel_testenv_destroy(te);
        CU_ASSERT_FATAL(json_array_size(hist) > 2);

        if (!epoch_of[p]) {
                claim(p, EPOCH);
                epoch_of[p] = EPOCH;
        }
        fx = fopen(effects, "a");
        CU_ASSERT_PTR_NOT_NULL_FATAL(fx);
        json_array_foreach(hist, i, ev)
        {
                const char *t = json_string_value(json_object_get(ev, "type"));
                json_t *rec = json_object_get(ev, "record");
                const char *aid =
                    json_string_value(json_object_get(rec, "activity_id"));
                if (json_object_get(rec, "command_id"))
                        json_object_set_new(rec, "command_id",
                                            json_string(cid));
                if (!strcmp(t, "keel.history.ActivityScheduled"))
                        json_object_set(acts, aid,
                                        json_object_get(rec, "activity_type"));
                if (!strcmp(t, "keel.history.ActivityCompleted"))
                        fprintf(
                            fx, "%s\t%s/%s/%s\n",
                            json_string_value(json_object_get(acts, aid)), id,
                            json_string_value(json_object_get(rec, "run_id")),
                            aid);
                if (result && !strcmp(t, "keel.history.WorkflowCompleted")) {
                        char *text = json_dumps(result, JSON_COMPACT);
                        json_object_set_new(rec, "result", json_string(text));
                        free(text);
                }
                event(ev, epoch_of[p]);
        }
        fclose(fx);
        checkpoint(p, epoch_of[p], (int)json_array_size(hist));
        json_decref(acts);
        return hist;
}

/* ---- running keel-check ----------------------------------------------------
 */

/* Run keel-check on the run with the given effect log and extra
 * arguments (NULL-terminated; may be NULL); its exit code, with its
 * figures in `last`. */
static int check(const char *effect_log, const char *const extra[])
{
        char json_path[700], log[64], expect[16], line[700];
        const char *argv[32] = {keel_test_env("KEEL_TEST_CHECK"),
                                "--bootstrap",
                                env.bootstrap,
                                "--prefix",
                                prefix,
                                "--expect",
                                expect,
                                "--effects",
                                effect_log,
                                "--json",
                                json_path,
                                "--timeout-ms",
                                "30000"};
        int n = 13, rc;
        FILE *f;

        snprintf(json_path, sizeof(json_path), "%s/check-%d.json", env.workdir,
                 ++step);
        snprintf(log, sizeof(log), "check-%d.log", step);
        snprintf(expect, sizeof(expect), "%d", CLEAN);
        for (int i = 0; extra && extra[i] && n < 31; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        rc = e2e_run(&env, log, (char *const *)argv, 120000);
        snprintf(line, sizeof(line), "%s/%s", env.workdir, log);
        if ((f = fopen(line, "r"))) {
                while (fgets(line, sizeof(line), f))
                        if (strstr(line, "violations total=") ||
                            strstr(line, "VIOLATION"))
                                fprintf(stderr, "    | %s", line);
                fclose(f);
        }
        json_decref(last);
        last = json_load_file(json_path, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL(last);
        return rc;
}

static int64_t violations(const char *kind)
{
        return (int64_t)json_integer_value(
            json_object_get(json_object_get(last, "violations"), kind));
}

static int64_t history_figure(const char *name)
{
        return (int64_t)json_integer_value(
            json_object_get(json_object_get(last, "history"), name));
}

/* ---- set-up ---------------------------------------------------------------
 */

static int setup(void)
{
        const char *queue[] = {"--task-queue", PAYMENT_QUEUE, NULL};
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[512];

        e2e_env_init_local(&env, "check");
        broker = e2e_start_dev_broker_args(&env, PARTITIONS, 300, queue);
        if (broker <= 0)
                return 1;
        snprintf(prefix, sizeof(prefix), "check-%d-", (int)getpid());
        snprintf(effects, sizeof(effects), "%s/effects.log", env.workdir);
        cfg = keel_config_new();
        keel_config_set(cfg, "bootstrap", env.bootstrap, NULL, NULL, 0);
        client = keel_client_new(cfg, err, sizeof(err));
        reg = keel_registry_new();
        payment_register_workflow(reg);
        rd_kafka_conf_set(conf, "bootstrap.servers", env.bootstrap, err,
                          sizeof(err));
        prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        return !client || !prod;
}

static int teardown(void)
{
        json_decref(last);
        if (prod)
                rd_kafka_destroy(prod);
        keel_client_destroy(client);
        keel_config_destroy(cfg);
        keel_registry_destroy(reg);
        /* SIGTERM: `timeout`, which runs the dev broker, passes it on;
         * SIGKILL would leave the broker behind. */
        e2e_stop(broker, SIGTERM);
        e2e_stop_all();
        return 0;
}

/* ---- the tests ------------------------------------------------------------
 */

static void test_chaos_check_passes_a_clean_run(void)
{
        char port_file[700], port[16];
        const char *extra[] = {"--projector", port, NULL};
        pid_t proj;

        for (int v = 0; v < CLEAN; v++) {
                char name[16];
                snprintf(name, sizeof(name), "%d", v);
                json_decref(write_run(name, v, 1, NULL));
        }
        snprintf(port_file, sizeof(port_file), "%s/projector.port",
                 env.workdir);
        proj = e2e_start_projector(&env, "projector.log", port_file, NULL);
        CU_ASSERT_FATAL(proj > 0);
        snprintf(port, sizeof(port), "%d",
                 e2e_read_port(port_file, e2e_now_ms() + 30000));
        CU_ASSERT_FATAL(atoi(port) > 0);

        CU_ASSERT_EQUAL(check(effects, extra), 0);
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(last, "violations_total")), 0);
        CU_ASSERT_EQUAL(
            json_integer_value(json_object_get(last, "workflows_started")),
            CLEAN);
        CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                            json_object_get(last, "projector"), "listed")),
                        CLEAN);
        CU_ASSERT(json_integer_value(json_object_get(
                      json_object_get(last, "effects"), "lines")) > 10);
        e2e_stop(proj, SIGTERM);
}

static void test_chaos_check_finds_a_duplicate_event(void)
{
        char id[128];
        json_t *hist = write_run("dup", 0, 1, NULL);
        int32_t p;

        /* Its third event written again, in a batch of its own with a
         * valid checkpoint. */
        snprintf(id, sizeof(id), "%sdup", prefix);
        p = keel_partition_of(id, strlen(id), PARTITIONS);
        CU_ASSERT_EQUAL(check(effects, NULL), 1); /* 7 started, 6 expected */
        CU_ASSERT_EQUAL(violations("seq"), 0);
        event(json_array_get(hist, 2), epoch_of[p]);
        checkpoint(p, epoch_of[p], 1);
        json_decref(hist);
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        CU_ASSERT(violations("seq") >= 1);
}

static void test_chaos_check_finds_an_effect_made_twice_or_never(void)
{
        char twice[700], never[700], line[1024];
        int64_t before;
        FILE *in, *a, *b;
        int n = 0;

        snprintf(twice, sizeof(twice), "%s/effects-twice.log", env.workdir);
        snprintf(never, sizeof(never), "%s/effects-never.log", env.workdir);
        in = fopen(effects, "r");
        a = fopen(twice, "w");
        b = fopen(never, "w");
        CU_ASSERT_FATAL(in && a && b);
        while (fgets(line, sizeof(line), in)) {
                fputs(line, a);
                if (n == 3)
                        fputs(line, a); /* the fourth effect, made again */
                else
                        fputs(line, b); /* ... or never made */
                n++;
        }
        fclose(in);
        fclose(a);
        fclose(b);
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        before = violations("effects");
        CU_ASSERT_EQUAL(check(twice, NULL), 1);
        CU_ASSERT_EQUAL(violations("effects"), before + 1);
        CU_ASSERT_EQUAL(check(never, NULL), 1);
        CU_ASSERT_EQUAL(violations("effects"), before + 1);
}

static void test_chaos_check_finds_an_unclaimed_or_fenced_writer(void)
{
        char id[128];
        json_t *hist = write_run("fence", 1, 1, NULL);
        json_t *ev = json_deep_copy(json_array_get(hist, 0));
        json_t *rec = json_object_get(ev, "record");
        int64_t fenced_before, applied_before;
        int32_t p;

        snprintf(id, sizeof(id), "%sfence", prefix);
        p = keel_partition_of(id, strlen(id), PARTITIONS);
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        CU_ASSERT_EQUAL(violations("fencing"), 0);
        fenced_before = history_figure("fenced_records");
        applied_before = history_figure("run_events_applied");

        /* An owner that never claimed, under a newer epoch: the reader
         * rules take it (its checkpoint closes the batch). */
        json_object_set_new(
            rec, "seq", json_integer((json_int_t)json_array_size(hist) + 1));
        event(ev, epoch_of[p] + 4);
        checkpoint(p, epoch_of[p] + 4, 1);
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        CU_ASSERT_EQUAL(violations("fencing"), 1);

        /* A new owner claims; the old one writes on: ignored by every
         * reader, counted, never applied. */
        claim(p, epoch_of[p] + 5);
        json_object_set_new(
            rec, "seq", json_integer((json_int_t)json_array_size(hist) + 2));
        event(ev, epoch_of[p] + 4);
        checkpoint(p, epoch_of[p] + 4, 1);
        epoch_of[p] += 5;
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        CU_ASSERT_EQUAL(violations("fencing"), 1);
        CU_ASSERT_EQUAL(history_figure("fenced_records"), fenced_before + 2);
        CU_ASSERT_EQUAL(history_figure("run_events_applied"),
                        applied_before + 1);
        json_decref(ev);
        json_decref(hist);
}

static void test_chaos_check_finds_a_start_without_outcome(void)
{
        char id[128], err[1024];
        int64_t inbox, closed;
        json_t *in = json_pack("{ss si}", "order", "lost", "amount", 1);

        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        inbox = violations("inbox");
        closed = violations("closed");
        snprintf(id, sizeof(id), "%slost", prefix);
        CU_ASSERT_EQUAL_FATAL(keel_client_start(client, id, PAYMENT_WORKFLOW,
                                                in, NULL, NULL, err,
                                                sizeof(err)),
                              KEEL_OK);
        json_decref(in);
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        CU_ASSERT_EQUAL(violations("inbox"), inbox + 1);
        CU_ASSERT_EQUAL(violations("closed"), closed + 1);
        CU_ASSERT(violations("count") >= 1);
}

static void test_chaos_check_finds_a_wrong_result(void)
{
        json_t *lost = json_pack("{ss}", "status", "lost");
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        CU_ASSERT_EQUAL(violations("result"), 0);
        json_decref(write_run("wrong", 0, 1, lost));
        json_decref(lost);
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        CU_ASSERT_EQUAL(violations("result"), 1);
}

static void test_chaos_check_finds_a_run_nobody_started(void)
{
        int64_t inbox;
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        inbox = violations("inbox");
        json_decref(write_run("ghost", 1, 0, NULL));
        CU_ASSERT_EQUAL(check(effects, NULL), 1);
        CU_ASSERT_EQUAL(violations("inbox"), inbox + 1);
}

static CU_TestInfo tests[] = {
    {"test_chaos_check_passes_a_clean_run",
     test_chaos_check_passes_a_clean_run},
    {"test_chaos_check_finds_a_duplicate_event",
     test_chaos_check_finds_a_duplicate_event},
    {"test_chaos_check_finds_an_effect_made_twice_or_never",
     test_chaos_check_finds_an_effect_made_twice_or_never},
    {"test_chaos_check_finds_an_unclaimed_or_fenced_writer",
     test_chaos_check_finds_an_unclaimed_or_fenced_writer},
    {"test_chaos_check_finds_a_start_without_outcome",
     test_chaos_check_finds_a_start_without_outcome},
    {"test_chaos_check_finds_a_wrong_result",
     test_chaos_check_finds_a_wrong_result},
    {"test_chaos_check_finds_a_run_nobody_started",
     test_chaos_check_finds_a_run_nobody_started},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN_WITH("chaos_check", tests, setup, teardown)

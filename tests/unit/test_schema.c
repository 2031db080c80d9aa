/*
 * test_schema.c: the compiled-in schema registry, Parsing Canonical Form
 * and CRC-64-AVRO fingerprints. Fingerprint vectors are the Avro
 * specification's published test data (share/test/data/schema-tests.txt).
 */
#include "keel/codec.h"
#include "keel/error.h"
#include "keel_test.h"

#include <string.h>

static void test_schema_crc64_matches_spec_vectors(void)
{
        static const struct {
                const char *pcf;
                int64_t fp; /* published as signed 64-bit */
        } v[] = {
            {"\"null\"", 7195948357588979594LL},
            {"\"boolean\"", -6970731678124411036LL},
            {"\"int\"", 8247732601305521295LL},
            {"\"long\"", -3434872931120570953LL},
            {"\"string\"", -8142146995180207161LL},
            {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
             1756455273707447556LL},
            {"{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":"
             "\"f1\",\"type\":\"boolean\"}]}",
             7843277075252814651LL},
            {"{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{"
             "\"name\":\"value\",\"type\":[\"null\",\"int\",\"long\","
             "\"PigValue\"]}]}",
             -1759257747318642341LL},
        };
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
                CU_ASSERT_EQUAL(keel_crc64_avro(v[i].pcf, strlen(v[i].pcf)),
                                (uint64_t)v[i].fp);
}

static void test_schema_registry_has_every_record_type(void)
{
        static const char *const want[] = {
            "keel.inbox.StartWorkflow",
            "keel.inbox.SignalWorkflow",
            "keel.inbox.CancelWorkflow",
            "keel.inbox.TerminateWorkflow",
            "keel.inbox.ActivityCompleted",
            "keel.inbox.ActivityFailed",
            "keel.inbox.ActivityHeartbeat",
            "keel.inbox.ChildWorkflowClosed",
            "keel.history.WorkflowStarted",
            "keel.history.WorkflowCompleted",
            "keel.history.WorkflowFailed",
            "keel.history.WorkflowCancelRequested",
            "keel.history.WorkflowCancelled",
            "keel.history.WorkflowTerminated",
            "keel.history.WorkflowContinuedAsNew",
            "keel.history.ActivityScheduled",
            "keel.history.ActivityCompleted",
            "keel.history.ActivityFailed",
            "keel.history.ActivityTimedOut",
            "keel.history.ActivityCancelRequested",
            "keel.history.ActivityHeartbeatRecorded",
            "keel.history.ActivityRetried",
            "keel.history.TimerStarted",
            "keel.history.TimerFired",
            "keel.history.TimerCancelled",
            "keel.history.SignalReceived",
            "keel.history.ChildWorkflowInitiated",
            "keel.history.ChildWorkflowStarted",
            "keel.history.ChildWorkflowClosed",
            "keel.history.MarkerRecorded",
            "keel.history.RecordEmitted",
            "keel.history.PartitionClaim",
            "keel.history.Checkpoint",
            "keel.history.NonDeterminismDetected",
            "keel.history.RunDeleted",
            "keel.tasks.ActivityTask",
            "keel.tasks.ActivityCancel",
            "keel.dlq.DeadLetter",
            "keel.lifecycle.WorkflowStatusChanged",
        };
        uint64_t fp;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                int rc = keel_schema_fingerprint(want[i], &fp);
                if (rc)
                        fprintf(stderr, "missing schema %s\n", want[i]);
                CU_ASSERT_EQUAL(rc, KEEL_OK);
        }
        CU_ASSERT_EQUAL(keel_schema_count(), sizeof(want) / sizeof(want[0]));
        CU_ASSERT_EQUAL(keel_schema_fingerprint("keel.nope", &fp),
                        KEEL_ERR_UNKNOWN_SCHEMA);
}

static void test_schema_fingerprints_are_distinct(void)
{
        size_t n = keel_schema_count();
        for (size_t i = 0; i < n; i++) {
                uint64_t a, b;
                keel_schema_fingerprint(keel_schema_name(i), &a);
                for (size_t k = i + 1; k < n; k++) {
                        keel_schema_fingerprint(keel_schema_name(k), &b);
                        CU_ASSERT_NOT_EQUAL(a, b);
                }
        }
}

static void test_schema_canonical_form_strips_docs_and_defaults(void)
{
        const char *pcf, *text;
        uint64_t fp;
        CU_ASSERT_EQUAL_FATAL(
            keel_schema_canonical("keel.history.TimerFired", &pcf), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(
            pcf, "{\"name\":\"keel.history.TimerFired\",\"type\":\"record\","
                 "\"fields\":[{\"name\":\"workflow_id\",\"type\":\"string\"},"
                 "{\"name\":\"run_id\",\"type\":\"string\"},{\"name\":\"seq\","
                 "\"type\":\"long\"},{\"name\":\"epoch\",\"type\":\"long\"},"
                 "{\"name\":\"ts\",\"type\":\"long\"},{\"name\":\"timer_id\","
                 "\"type\":\"string\"}]}");
        keel_schema_fingerprint("keel.history.TimerFired", &fp);
        CU_ASSERT_EQUAL(fp, keel_crc64_avro(pcf, strlen(pcf)));
        CU_ASSERT_EQUAL(keel_schema_text("keel.history.TimerFired", &text),
                        KEEL_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"doc\""));
        CU_ASSERT_PTR_NULL(strstr(pcf, "doc"));
        CU_ASSERT_PTR_NULL(strstr(pcf, "logicalType"));
}

static void test_schema_every_event_has_header_fields(void)
{
        /* Workflow events carry workflow ID, run ID, seq, epoch, ts. */
        for (size_t i = 0; i < keel_schema_count(); i++) {
                const char *name = keel_schema_name(i), *pcf;
                if (strncmp(name, "keel.history.", 13) ||
                    !strcmp(name, "keel.history.PartitionClaim") ||
                    !strcmp(name, "keel.history.Checkpoint"))
                        continue;
                keel_schema_canonical(name, &pcf);
                CU_ASSERT_PTR_NOT_NULL(strstr(
                    pcf, "\"fields\":[{\"name\":\"workflow_id\",\"type\":"
                         "\"string\"},{\"name\":\"run_id\",\"type\":\"string\""
                         "},{\"name\":\"seq\",\"type\":\"long\"},{\"name\":"
                         "\"epoch\",\"type\":\"long\"},{\"name\":\"ts\","
                         "\"type\":\"long\"}"));
        }
}

static CU_TestInfo tests[] = {
    {"test_schema_crc64_matches_spec_vectors",
     test_schema_crc64_matches_spec_vectors},
    {"test_schema_registry_has_every_record_type",
     test_schema_registry_has_every_record_type},
    {"test_schema_fingerprints_are_distinct",
     test_schema_fingerprints_are_distinct},
    {"test_schema_canonical_form_strips_docs_and_defaults",
     test_schema_canonical_form_strips_docs_and_defaults},
    {"test_schema_every_event_has_header_fields",
     test_schema_every_event_has_header_fields},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("schema", tests)

/*
 * test_log.c: keel's log lines (keel/log.h) as an operator reads them:
 * key=value text by default; with JSON, one object a line whose fields are
 * the message's key=value pairs (quoted values unquoted), or the message
 * whole in "msg" when it is not made of pairs; levels below the threshold
 * are dropped.
 */
#include "keel/log.h"
#include "keel_test.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* What keel_log writes to stderr while fn runs, one line at a time. */
static char lines[4][4096];

static int capture(void (*fn)(void))
{
        FILE *tmp = tmpfile();
        int saved = dup(2), n = 0;
        if (!tmp || saved < 0)
                return -1;
        fflush(stderr);
        dup2(fileno(tmp), 2);
        fn();
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        rewind(tmp);
        memset(lines, 0, sizeof(lines));
        while (n < 4 && fgets(lines[n], sizeof(lines[n]), tmp))
                n++;
        fclose(tmp);
        return n;
}

static void log_kv(void)
{
        keel_log(KEEL_LOG_INFO, "orchestrator",
                 "partition=3 msg=claimed epoch=7 error=\"broker down: "
                 "retrying\" workflow_id=order/42");
        keel_log(KEEL_LOG_DEBUG, "orchestrator", "msg=hidden");
        keel_log(KEEL_LOG_WARN, "kafka", "[thrd:main]: 1/1 brokers are down");
}

static void test_log_kv_text(void)
{
        keel_log_set_json(0);
        keel_log_set_level(KEEL_LOG_INFO);
        CU_ASSERT_EQUAL_FATAL(capture(log_kv), 2);
        CU_ASSERT_PTR_NOT_NULL(strstr(lines[0], "level=info "
                                                "component=orchestrator "
                                                "partition=3 msg=claimed"));
        CU_ASSERT_EQUAL(strncmp(lines[0], "ts=", 3), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(lines[1], "level=warn"));
}

static void test_log_json_fields(void)
{
        json_t *j;
        keel_log_set_json(1);
        keel_log_set_level(KEEL_LOG_INFO);
        CU_ASSERT_EQUAL_FATAL(capture(log_kv), 2);
        j = json_loads(lines[0], 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "level")),
                               "info");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(j, "component")), "orchestrator");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(j, "partition")), "3");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "msg")),
                               "claimed");
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "error")),
                               "broker down: retrying");
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(j, "workflow_id")), "order/42");
        CU_ASSERT_PTR_NOT_NULL(json_object_get(j, "ts"));
        json_decref(j);
        /* Not key=value: the message whole. */
        j = json_loads(lines[1], 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "msg")),
                               "[thrd:main]: 1/1 brokers are down");
        json_decref(j);
        keel_log_set_json(0);
}

static CU_TestInfo tests[] = {{"test_log_kv_text", test_log_kv_text},
                              {"test_log_json_fields", test_log_json_fields},
                              CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("log", tests)

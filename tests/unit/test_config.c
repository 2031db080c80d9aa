/*
 * test_config.c: configuration from defaults, file, environment and
 * flags, with clear errors that name the key.
 */
#include "config_int.h"
#include "keel/config.h"
#include "keel/error.h"
#include "keel_test.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_config_defaults(void)
{
        keel_config_t *cfg = keel_config_new();
        int64_t p;
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "cluster.name"), "keel");
        CU_ASSERT_EQUAL(keel_config_get_int(cfg, "partitions", &p), KEEL_OK);
        CU_ASSERT_EQUAL(p, 12);
        CU_ASSERT_PTR_NULL(keel_config_get(cfg, "kafka.linger.ms"));
        keel_config_destroy(cfg);
        keel_config_destroy(NULL);
}

static void test_config_errors_name_the_key(void)
{
        keel_config_t *cfg = keel_config_new();
        char err[512];
        CU_ASSERT_EQUAL(
            keel_config_set(cfg, "bootstrapp", "x", "flag", err, sizeof(err)),
            KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "'bootstrapp'"));
        CU_ASSERT_EQUAL(keel_config_set(cfg, "partitions", "twelve", "flag",
                                        err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "'partitions'"));
        CU_ASSERT_EQUAL(
            keel_config_set(cfg, "partitions", "0", NULL, err, sizeof(err)),
            KEEL_ERR_CONFIG);
        CU_ASSERT_EQUAL(
            keel_config_set(cfg, "log.level", "loud", NULL, err, sizeof(err)),
            KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "debug"));
        /* librdkafka rejects the property when validating */
        CU_ASSERT_EQUAL(keel_config_set(cfg, "kafka.no.such.property", "1",
                                        "flag", err, sizeof(err)),
                        KEEL_OK);
        CU_ASSERT_EQUAL(keel_config_validate(cfg, err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "kafka.no.such.property"));
        keel_config_destroy(cfg);
}

static void test_config_file_env_and_flags(void)
{
        char path[] = "/tmp/keel-test-config-XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fdopen(fd, "w");
        keel_config_t *cfg = keel_config_new();
        char err[512];

        fprintf(f, "# a comment\n\nbootstrap = file:9092\n"
                   "cluster.name=from-file\n"
                   "kafka.security.protocol = SASL_SSL\n");
        fclose(f);
        CU_ASSERT_EQUAL(keel_config_load_file(cfg, path, err, sizeof(err)),
                        KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "bootstrap"), "file:9092");
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "kafka.security.protocol"),
                               "SASL_SSL");
        /* environment overrides the file */
        setenv("KEEL_CLUSTER_NAME", "from-env", 1);
        setenv("KEEL_KAFKA_LINGER_MS", "7", 1);
        CU_ASSERT_EQUAL(keel_config_load_env(cfg, err, sizeof(err)), KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "cluster.name"),
                               "from-env");
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "kafka.linger.ms"), "7");
        /* flags override both */
        CU_ASSERT_EQUAL(keel_config_set(cfg, "cluster.name", "from-flag",
                                        "flag", err, sizeof(err)),
                        KEEL_OK);
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "cluster.name"),
                               "from-flag");
        CU_ASSERT_EQUAL(keel_config_validate(cfg, err, sizeof(err)), KEEL_OK);
        unsetenv("KEEL_CLUSTER_NAME");
        unsetenv("KEEL_KAFKA_LINGER_MS");
        keel_config_destroy(cfg);

        /* a bad line names the file and line */
        f = fopen(path, "w");
        fprintf(f, "bootstrap = b:1\nnot a setting\n");
        fclose(f);
        cfg = keel_config_new();
        CU_ASSERT_EQUAL(keel_config_load_file(cfg, path, err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2"));
        keel_config_destroy(cfg);
        unlink(path);

        cfg = keel_config_new();
        CU_ASSERT_EQUAL(keel_config_load_file(cfg, path, err, sizeof(err)),
                        KEEL_ERR_IO);
        keel_config_destroy(cfg);
}

/* The value librdkafka holds for name, or "" when unset. */
static const char *conf_get(rd_kafka_conf_t *conf, const char *name)
{
        static char buf[256];
        size_t n = sizeof(buf);
        if (rd_kafka_conf_get(conf, name, buf, &n) != RD_KAFKA_CONF_OK)
                buf[0] = '\0';
        return buf;
}

static void test_config_kafka_properties_go_to_their_kind(void)
{
        keel_config_t *cfg = keel_config_new();
        rd_kafka_conf_t *p, *c;
        char err[256];
        keel_config_set(cfg, "kafka.group.instance.id", "orch-1", NULL, NULL,
                        0);
        keel_config_set(cfg, "kafka.linger.ms", "7", NULL, NULL, 0);
        keel_config_set(cfg, "kafka.client.id", "both", NULL, NULL, 0);
        keel_config_set(cfg, "kafka.consumer.fetch.wait.max.ms", "11", NULL,
                        NULL, 0);
        keel_config_set(cfg, "kafka.producer.batch.num.messages", "99", NULL,
                        NULL, 0);
        p = keel__kafka_conf_new(cfg, KEEL__PRODUCER, err, sizeof(err));
        c = keel__kafka_conf_new(cfg, KEEL__CONSUMER, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_STRING_EQUAL(conf_get(c, "group.instance.id"), "orch-1");
        CU_ASSERT_STRING_EQUAL(conf_get(p, "group.instance.id"), "");
        CU_ASSERT_STRING_EQUAL(conf_get(p, "linger.ms"), "7");
        CU_ASSERT_STRING_EQUAL(conf_get(c, "client.id"), "both");
        CU_ASSERT_STRING_EQUAL(conf_get(p, "client.id"), "both");
        CU_ASSERT_STRING_EQUAL(conf_get(c, "fetch.wait.max.ms"), "11");
        CU_ASSERT_STRING_EQUAL(conf_get(p, "batch.num.messages"), "99");
        CU_ASSERT_NOT_EQUAL(strcmp(conf_get(c, "batch.num.messages"), "99"), 0);
        rd_kafka_conf_destroy(p);
        rd_kafka_conf_destroy(c);
        keel_config_destroy(cfg);
}

/* A config line too long for the reader is an error naming its line; its
 * tail is never read as a line of its own, nor quoted (a secret). */
static void test_config_long_line_is_refused(void)
{
        char path[] = "/tmp/keel-config-XXXXXX", err[512] = "";
        keel_config_t *cfg = keel_config_new();
        int fd = mkstemp(path);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs("kafka.sasl.password = ", f);
        for (int i = 0; i < 4073; i++)
                fputc('p', f);
        fputs("cluster.name=injected\n", f);
        fclose(f);
        CU_ASSERT_EQUAL(keel_config_load_file(cfg, path, err, sizeof(err)),
                        KEEL_ERR_CONFIG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, ":1:"));
        CU_ASSERT_PTR_NULL(strstr(err, "pppp"));
        CU_ASSERT_STRING_EQUAL(keel_config_get(cfg, "cluster.name"), "keel");
        unlink(path);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {
    {"test_config_long_line_is_refused", test_config_long_line_is_refused},
    {"test_config_kafka_properties_go_to_their_kind",
     test_config_kafka_properties_go_to_their_kind},
    {"test_config_defaults", test_config_defaults},
    {"test_config_errors_name_the_key", test_config_errors_name_the_key},
    {"test_config_file_env_and_flags", test_config_file_env_and_flags},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("config", tests)

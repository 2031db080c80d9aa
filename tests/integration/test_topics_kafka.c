/*
 * test_topics_kafka.c: `keel_topics_create` against a real single-node
 * Apache Kafka broker (the kafka fixture): every topic is created with its
 * configuration, a second run finds them all in place, and an existing
 * topic of another shape is an error that says what is wrong.
 */
#include "keel/config.h"
#include "keel/error.h"
#include "keel/topics.h"
#include "keel_test.h"

#include <string.h>

static char bootstrap[256];

static keel_config_t *config(void)
{
        keel_config_t *cfg = keel_config_new();
        FILE *f = fopen(keel_test_env("KEEL_TEST_KAFKA_FILE"), "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fgets(bootstrap, sizeof(bootstrap), f));
        fclose(f);
        bootstrap[strcspn(bootstrap, "\r\n")] = '\0';
        CU_ASSERT_EQUAL_FATAL(
            keel_config_set(cfg, "bootstrap", bootstrap, NULL, NULL, 0),
            KEEL_OK);
        return cfg;
}

typedef struct {
        int created, exists;
} seen_t;

static void on_topic(const keel_topic_spec_t *spec,
                     keel_topic_outcome_t outcome, void *opaque)
{
        seen_t *s = opaque;
        if (outcome == KEEL_TOPIC_CREATED)
                s->created++;
        else
                s->exists++;
        (void)spec;
}

typedef struct {
        keel_topic_info_t t[32];
        int n;
} infos_t;

static void on_info(const keel_topic_info_t *ti, void *opaque)
{
        infos_t *in = opaque;
        if (in->n < 32)
                in->t[in->n++] = *ti;
}

static const keel_topic_info_t *find(const infos_t *in, const char *name)
{
        for (int i = 0; i < in->n; i++)
                if (!strcmp(in->t[i].name, name))
                        return &in->t[i];
        return NULL;
}

static void test_topics_create_then_exists(void)
{
        keel_config_t *cfg = config();
        const char *queues[] = {"payments", "email"};
        seen_t s1 = {0}, s2 = {0};
        infos_t in = {0};
        const keel_topic_info_t *t;
        char err[1024] = "";
        int rc;

        rc = keel_topics_create(cfg, 12, 1, queues, 2, on_topic, &s1, err,
                                sizeof(err));
        if (rc)
                fprintf(stderr, "create: %s\n", err);
        CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        CU_ASSERT_EQUAL(s1.created, 5); /* inbox, history, dlq, 2 queues */
        CU_ASSERT_EQUAL(s1.exists, 0);

        /* Idempotent: the same call again finds everything in place. */
        rc = keel_topics_create(cfg, 12, 1, queues, 2, on_topic, &s2, err,
                                sizeof(err));
        CU_ASSERT_EQUAL(rc, KEEL_OK);
        CU_ASSERT_EQUAL(s2.created, 0);
        CU_ASSERT_EQUAL(s2.exists, 5);

        rc = keel_topics_describe(cfg, on_info, &in, err, sizeof(err));
        CU_ASSERT_EQUAL_FATAL(rc, KEEL_OK);
        t = find(&in, "keel.history");
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_EQUAL(t->partitions, 12);
        CU_ASSERT_STRING_EQUAL(t->cleanup_policy, "compact");
        t = find(&in, "keel.inbox");
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_STRING_EQUAL(t->cleanup_policy, "delete");
        CU_ASSERT_EQUAL(t->retention_ms, 7LL * 24 * 3600 * 1000);
        t = find(&in, "keel.dlq");
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_EQUAL(t->retention_ms, 30LL * 24 * 3600 * 1000);
        CU_ASSERT_PTR_NOT_NULL(find(&in, "keel.tasks.payments"));
        CU_ASSERT_PTR_NOT_NULL(find(&in, "keel.tasks.email"));
        keel_config_destroy(cfg);
}

static void test_topics_wrong_partition_count_is_an_error(void)
{
        keel_config_t *cfg = config();
        const char *queues[] = {"payments"};
        char err[1024] = "";
        int rc = keel_topics_create(cfg, 6, 1, queues, 1, NULL, NULL, err,
                                    sizeof(err));
        CU_ASSERT_EQUAL(rc, KEEL_ERR_MISMATCH);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "12 partitions, not 6"));
        keel_config_destroy(cfg);
}

static void test_topics_new_queue_on_existing_cluster(void)
{
        keel_config_t *cfg = config();
        const char *queues[] = {"payments", "shipping"};
        seen_t s = {0};
        char err[1024] = "";
        int rc = keel_topics_create(cfg, 12, 1, queues, 2, on_topic, &s, err,
                                    sizeof(err));
        CU_ASSERT_EQUAL(rc, KEEL_OK);
        CU_ASSERT_EQUAL(s.created, 1);
        CU_ASSERT_EQUAL(s.exists, 4);
        keel_config_destroy(cfg);
}

static void test_topics_bad_queue_name(void)
{
        keel_config_t *cfg = config();
        const char *queues[] = {"no spaces/allowed"};
        char err[1024] = "";
        CU_ASSERT_EQUAL(keel_topics_create(cfg, 12, 1, queues, 1, NULL, NULL,
                                           err, sizeof(err)),
                        KEEL_ERR_INVALID_ARG);
        keel_config_destroy(cfg);
}

static void test_topics_check_finds_partition_count(void)
{
        keel_config_t *cfg = config();
        int32_t p = 0;
        char err[1024] = "";
        CU_ASSERT_EQUAL(keel_topics_check(cfg, &p, err, sizeof(err)), KEEL_OK);
        CU_ASSERT_EQUAL(p, 12);
        keel_config_destroy(cfg);
}

static CU_TestInfo tests[] = {
    {"test_topics_create_then_exists", test_topics_create_then_exists},
    {"test_topics_wrong_partition_count_is_an_error",
     test_topics_wrong_partition_count_is_an_error},
    {"test_topics_new_queue_on_existing_cluster",
     test_topics_new_queue_on_existing_cluster},
    {"test_topics_bad_queue_name", test_topics_bad_queue_name},
    {"test_topics_check_finds_partition_count",
     test_topics_check_finds_partition_count},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("topics_kafka", tests)

/*
 * test_partition.c: keel's murmur2 partitioner gives the partitions Kafka's
 * Java client gives. The expected values were printed by the Java client
 * (org.apache.kafka.common.utils.Utils.murmur2 / toPositive, 3.9) for these
 * keys; tests/integration checks the same against a live Java producer.
 */
#include "keel/partition.h"
#include "keel_test.h"

#include <string.h>

typedef struct {
        const char *key;
        int32_t hash; /* Utils.murmur2(key.getBytes(UTF_8)) */
} vec_t;

#include "partition_vectors.h"

static void test_partition_murmur2_matches_java(void)
{
        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                int32_t h =
                    keel_murmur2(vectors[i].key, strlen(vectors[i].key));
                if (h != vectors[i].hash)
                        fprintf(stderr, "key '%s': got %d, want %d\n",
                                vectors[i].key, h, vectors[i].hash);
                CU_ASSERT_EQUAL(h, vectors[i].hash);
        }
}

static void test_partition_of_matches_java(void)
{
        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                uint32_t pos = (uint32_t)vectors[i].hash & 0x7fffffffU;
                for (int32_t p = 1; p <= 64; p++)
                        CU_ASSERT_EQUAL(
                            keel_partition_of(vectors[i].key,
                                              strlen(vectors[i].key), p),
                            (int32_t)(pos % (uint32_t)p));
        }
}

static void test_partition_rejects_bad_count(void)
{
        CU_ASSERT_EQUAL(keel_partition_of("a", 1, 0), -1);
        CU_ASSERT_EQUAL(keel_partition_of("a", 1, -3), -1);
}

static void test_partition_spreads_keys(void)
{
        /* 12,000 workflow IDs over 12 partitions: each gets a fair share. */
        int counts[12] = {0};
        char id[64];
        for (int i = 0; i < 12000; i++) {
                snprintf(id, sizeof(id), "order-%d", i);
                counts[keel_partition_of(id, strlen(id), 12)]++;
        }
        for (int p = 0; p < 12; p++)
                CU_ASSERT(counts[p] > 800 && counts[p] < 1200);
}

static CU_TestInfo tests[] = {
    {"test_partition_murmur2_matches_java",
     test_partition_murmur2_matches_java},
    {"test_partition_of_matches_java", test_partition_of_matches_java},
    {"test_partition_rejects_bad_count", test_partition_rejects_bad_count},
    {"test_partition_spreads_keys", test_partition_spreads_keys},
    CU_TEST_INFO_NULL};

KEEL_TEST_MAIN("partition", tests)

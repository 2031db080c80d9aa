/*
 * partition.c: Kafka's murmur2 partitioner (keel/partition.h), bit for bit
 * the Java client's Utils.murmur2 with seed 0x9747b28c.
 */
#include "keel/partition.h"

int32_t keel_murmur2(const void *key, size_t len)
{
        const unsigned char *data = key;
        const uint32_t m = 0x5bd1e995;
        const int r = 24;
        uint32_t h = 0x9747b28cU ^ (uint32_t)len;
        size_t len4 = len / 4;

        for (size_t i = 0; i < len4; i++) {
                size_t o = i * 4;
                uint32_t k = (uint32_t)data[o] | (uint32_t)data[o + 1] << 8 |
                             (uint32_t)data[o + 2] << 16 |
                             (uint32_t)data[o + 3] << 24;
                k *= m;
                k ^= k >> r;
                k *= m;
                h *= m;
                h ^= k;
        }
        /* The Java code falls through from the highest remaining byte. */
        switch (len % 4) {
        case 3:
                h ^= (uint32_t)data[(len & ~(size_t)3) + 2] << 16;
                /* fall through */
        case 2:
                h ^= (uint32_t)data[(len & ~(size_t)3) + 1] << 8;
                /* fall through */
        case 1:
                h ^= (uint32_t)data[len & ~(size_t)3];
                h *= m;
        }
        h ^= h >> 13;
        h *= m;
        h ^= h >> 15;
        return (int32_t)h;
}

int32_t keel_partition_of(const char *workflow_id, size_t len,
                          int32_t partitions)
{
        if (partitions <= 0)
                return -1;
        /* Java's Utils.toPositive: clear the sign bit. */
        return (
            int32_t)(((uint32_t)keel_murmur2(workflow_id, len) & 0x7fffffffU) %
                     (uint32_t)partitions);
}

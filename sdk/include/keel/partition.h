/*
 * keel/partition.h: which partition a workflow lives on.
 *
 * Every workflow-keyed topic uses murmur2 of the workflow ID, exactly as
 * Apache Kafka's Java client's default partitioner does for a keyed record
 * (toPositive(murmur2(key)) % partitions), so a Java or Go producer that
 * sets key = workflow ID lands on the same partition as keel.
 */
#ifndef KEEL_PARTITION_H
#define KEEL_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kafka's murmur2 hash of len bytes (the Java client's Utils.murmur2). */
int32_t keel_murmur2(const void *key, size_t len);

/* The partition of a workflow ID among `partitions` (> 0); -1 if
 * partitions <= 0. */
int32_t keel_partition_of(const char *workflow_id, size_t len,
                          int32_t partitions);

#ifdef __cplusplus
}
#endif
#endif

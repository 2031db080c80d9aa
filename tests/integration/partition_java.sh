#!/usr/bin/env bash
# Kafka's own Java client (kafka-clients, default partitioner) produces
# records keyed by workflow IDs to keel.inbox on the real Kafka test broker;
# each lands on the partition keel computes.
set -uo pipefail
keel=${1:?keel binary}
src=$(cd "$(dirname "$0")/../kafka" && pwd)
b=$(cat "${KEEL_TEST_KAFKA_FILE:?run through ctest}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$keel" topics create --bootstrap "$b" --partitions 12 >/dev/null || {
        echo "FAILED: keel topics create"
        exit 1
}
# Workflow IDs of the shapes users pick: business keys, UUIDs, non-ASCII,
# long, with separators.
{
        for i in $(seq 1 200); do echo "order-$i"; done
        for i in $(seq 1 100); do /usr/bin/python3 -c 'import uuid; print(uuid.uuid4())'; done
        printf 'caf\xc3\xa9-%d\n' 1 2 3
        printf '\xe6\x9d\xb1\xe4\xba\xac/%d\n' 1 2 3
        echo "tenant:42/onboarding/user@example.com"
        printf 'x%.0s' $(seq 1 300); echo
} >"$tmp/ids"
n=$(wc -l <"$tmp/ids")

"$src/partition-check.sh" "$b" keel.inbox 12 <"$tmp/ids" >"$tmp/java" || {
        echo "FAILED: the Java producer"
        exit 1
}
"$keel" partition --partitions 12 <"$tmp/ids" >"$tmp/keel"
if ! diff "$tmp/java" "$tmp/keel" >"$tmp/diff"; then
        echo "FAILED: partitions differ (< java, > keel):"
        head -20 "$tmp/diff"
        echo "0 passed, 1 failed"
        exit 1
fi
[ "$(wc -l <"$tmp/java")" -eq "$n" ] || { echo "FAILED: Java reported $(wc -l <"$tmp/java") of $n"; exit 1; }
# More than one partition was hit, so the comparison means something.
used=$(cut -f2 "$tmp/java" | sort -u | wc -l)
[ "$used" -eq 12 ] || { echo "FAILED: only $used partitions used"; exit 1; }
echo "ok: $n records from Kafka's Java producer landed on keel's partitions ($used partitions)"
echo "1 passed, 0 failed"

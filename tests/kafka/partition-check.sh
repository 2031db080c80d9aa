#!/usr/bin/env bash
# Which partition does Kafka's Java producer (default partitioner) give each key?
#
#   partition-check.sh BOOTSTRAP TOPIC PARTITIONS < keys   produce each key to TOPIC, report
#   partition-check.sh --offline PARTITIONS < keys         compute murmur2 partitions locally
#
# Prints "<key>\t<partition>" per non-empty input line, in input order.
# Exit codes: 0 ok, 1 error, 2 usage, 3 TOPIC does not have PARTITIONS partitions.
# PartitionCheck.java is compiled once per source version into the Kafka cache dir.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if ! { [ $# -eq 2 ] && [ "$1" = --offline ]; } && ! { [ $# -eq 3 ] && [ "${1#-}" = "$1" ]; }; then
    echo "usage: ${0##*/} BOOTSTRAP TOPIC PARTITIONS < keys" >&2
    echo "       ${0##*/} --offline PARTITIONS < keys" >&2
    exit 2
fi

keel_kafka_need_tools java javac
libs=$("$KEEL_KAFKA_SRC/fetch-kafka.sh" | tail -n 1)

src="$KEEL_KAFKA_SRC/PartitionCheck.java"
classes="$KEEL_KAFKA_HOME/partition-check/$(sha256sum "$src" | cut -c1-16)"
if [ ! -f "$classes/PartitionCheck.class" ]; then
    mkdir -p "$KEEL_KAFKA_HOME/partition-check"
    tmp=$(mktemp -d "$KEEL_KAFKA_HOME/partition-check/build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    javac -nowarn -encoding UTF-8 -cp "$libs/*" -d "$tmp" "$src" >&2 \
        || keel_kafka_die "compiling $src failed"
    # Another run may have finished first; either copy is the same.
    mv -T "$tmp" "$classes" 2>/dev/null || true
    rm -rf "$tmp"
    trap - EXIT
fi

exec java -Xmx256m -XX:TieredStopAtLevel=1 \
    -Dlog4j.configuration="file:$KEEL_KAFKA_SRC/log4j-quiet.properties" \
    -cp "$classes:$libs/*" PartitionCheck "$@"

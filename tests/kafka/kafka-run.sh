#!/usr/bin/env bash
# Runs a Java main class from the pinned Kafka release with client-side logging quiet, e.g.
#   kafka-run.sh org.apache.kafka.tools.TopicCommand --bootstrap-server B --create --topic t --partitions 12
#   kafka-run.sh org.apache.kafka.tools.ConsumerGroupCommand --bootstrap-server B --list
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [ $# -lt 1 ]; then
    echo "usage: ${0##*/} MAIN_CLASS [ARGS...]" >&2
    exit 2
fi
keel_kafka_need_tools java
libs=$("$KEEL_KAFKA_SRC/fetch-kafka.sh" | tail -n 1)
exec java -Xmx256m -XX:TieredStopAtLevel=1 \
    -Dlog4j.configuration="file:$KEEL_KAFKA_SRC/log4j-quiet.properties" \
    -cp "$libs/*" "$@"

#!/usr/bin/env bash
# Fetches the pinned Apache Kafka broker, tools and client jars (with their runtime
# dependencies) from Maven Central into ${KEEL_CACHE_DIR:-$HOME/.cache/keel}/kafka-<ver>/libs.
# Does nothing when they are already there. The last line on stdout is the libs directory.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1

pom="$KEEL_KAFKA_SRC/pom.xml"
stamp="$KEEL_KAFKA_HOME/libs.stamp"
want="kafka=$KEEL_KAFKA_VERSION pom=$(sha256sum "$pom" | cut -d' ' -f1)"

fetched() {
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && [ -f "$KEEL_KAFKA_LIBS/kafka_2.13-$KEEL_KAFKA_VERSION.jar" ]
}

if fetched; then
    echo "$KEEL_KAFKA_LIBS"
    exit 0
fi

keel_kafka_need_tools java mvn
mkdir -p "$KEEL_KAFKA_HOME"

# One fetch at a time per cache dir; whoever waited re-checks first.
exec 9>"$KEEL_KAFKA_HOME/.fetch.lock"
flock 9
if fetched; then
    echo "$KEEL_KAFKA_LIBS"
    exit 0
fi

tmp=$(mktemp -d "$KEEL_KAFKA_HOME/libs.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "fetch-kafka: downloading Apache Kafka $KEEL_KAFKA_VERSION jars into $KEEL_KAFKA_LIBS" >&2
log="$KEEL_KAFKA_HOME/fetch.log"
if ! mvn -B -q -f "$pom" "$DEP_PLUGIN:copy-dependencies" \
        -Dkafka.version="$KEEL_KAFKA_VERSION" \
        -DincludeScope=runtime \
        -DoutputDirectory="$tmp" </dev/null >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    keel_kafka_die "mvn failed to fetch Kafka $KEEL_KAFKA_VERSION (full output: $log)"
fi

for jar in "kafka_2.13-$KEEL_KAFKA_VERSION.jar" "kafka-clients-$KEEL_KAFKA_VERSION.jar" \
           "kafka-tools-$KEEL_KAFKA_VERSION.jar"; do
    [ -f "$tmp/$jar" ] || keel_kafka_die "mvn finished but $jar is missing"
done

rm -rf "$KEEL_KAFKA_LIBS"
mv "$tmp" "$KEEL_KAFKA_LIBS"
trap - EXIT
printf '%s\n' "$want" > "$stamp"
echo "$KEEL_KAFKA_LIBS"

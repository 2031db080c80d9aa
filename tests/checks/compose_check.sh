#!/usr/bin/env bash
# docker-compose.yml is valid, and pins the same Apache Kafka release as
# the test broker (tests/kafka/kafka-version).
set -uo pipefail
cd "$(dirname "$0")/../.."
fail=0
if docker-compose -f docker-compose.yml config -q; then
        echo "ok: docker-compose config"
else
        echo "FAILED: docker-compose config"
        fail=1
fi
want=$(tr -d '[:space:]' <tests/kafka/kafka-version)
if grep -q "image: apache/kafka:$want\$" docker-compose.yml; then
        echo "ok: docker-compose.yml pins apache/kafka:$want"
else
        echo "FAILED: docker-compose.yml does not pin apache/kafka:$want"
        fail=1
fi
echo "$((2 - fail)) passed, $fail failed"
exit $fail

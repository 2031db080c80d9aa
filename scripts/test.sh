#!/usr/bin/env bash
# Build keel with -Werror under AddressSanitizer and UndefinedBehaviorSanitizer
# and run the whole test suite: unit tests, integration tests against the
# dev broker and against a real Apache Kafka broker (fetched from Maven
# Central on first use into ~/.cache/keel), and the interoperability checks;
# then the threaded parts under ThreadSanitizer (tests/tsan/run-tsan.sh).
# Extra arguments go to ctest (e.g. -L unit, -R codec); with them, the
# ThreadSanitizer run is skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/setup.sh test
echo "Fetching Apache Kafka $(cat tests/kafka/kafka-version) for the integration tests (cached)"
tests/kafka/fetch-kafka.sh >/dev/null

cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DKEEL_WERROR=ON \
        -DKEEL_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd build-test && ctest --output-on-failure -j"$(nproc)" "$@")

# The threaded parts again under ThreadSanitizer, in a second, smaller
# build (build-tsan/): the projector's HTTP layer, the projector end to
# end and under hostile clients, the worker pool. With the whole suite
# only (no ctest arguments).
if [ $# -eq 0 ]; then
        echo
        echo "==== ThreadSanitizer (build-tsan/): test_proj_http," \
                "test_projector, http_hostile, test_worker ===="
        tests/tsan/run-tsan.sh
fi

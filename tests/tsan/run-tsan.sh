#!/bin/sh
# run-tsan.sh: keel's threaded parts under ThreadSanitizer. Configures a
# KEEL_TSAN build in build-tsan/ beside the default build, builds only what
# these tests need and runs them through ctest:
#
#   test_proj_http   the projector's HTTP server threads over a shared fold
#   test_projector   keel-projector, keel-orchestrator and the payment
#                    worker end to end on the Kafka test broker, each a
#                    TSan build (the reader thread and HTTP threads under
#                    real traffic, the worker pool)
#   http_hostile     keel-projector under 1,000+ concurrent hostile and
#                    slow requests
#   test_worker      the activity worker pool on the dev broker
#
# librdkafka, libmicrohttpd, jansson and libc are not instrumented: TSan
# runs with ignore_noninstrumented_modules=1, so what those libraries do
# inside themselves is not checked (their locking still counts), and with
# tests/tsan.supp, which may name reports inside them only. Every process
# (the tests' children too) writes its reports to build-tsan/tsan-logs/;
# any report fails the run, which then prints them.
#
#   tests/tsan/run-tsan.sh [CTEST_ARGS...]
#
# CC may be set in the environment; KEEL_TSAN_BUILD_DIR overrides the
# build directory.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${KEEL_TSAN_BUILD_DIR:-$src/build-tsan}
tests='test_proj_http test_projector http_hostile test_worker'
# What they run: the test programs and the programs they start.
targets='test_proj_http test_projector test_worker keel_cli keel-projector
keel-orchestrator keel-payment-worker keel_payment_workflows'

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DKEEL_TSAN=ON -DKEEL_WERROR=ON >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
        --target $targets

logs=$build/tsan-logs
rm -rf "$logs"
mkdir -p "$logs"
TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1"
TSAN_OPTIONS="$TSAN_OPTIONS ignore_noninstrumented_modules=1"
TSAN_OPTIONS="$TSAN_OPTIONS suppressions=$src/tests/tsan.supp"
TSAN_OPTIONS="$TSAN_OPTIONS log_path=$logs/tsan"
export TSAN_OPTIONS
unset ASAN_OPTIONS UBSAN_OPTIONS

regex="^($(echo $tests | tr ' ' '|'))\$"
status=0
(cd "$build" && ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" \
        -R "$regex" "$@") || status=$?

if [ -n "$(ls -A "$logs")" ]; then
        echo "run-tsan.sh: ThreadSanitizer reports (build-tsan/tsan-logs/):"
        for f in "$logs"/*; do
                echo "---- $f"
                cat "$f"
        done
        status=1
fi
if [ "$status" -ne 0 ]; then
        echo "run-tsan.sh: FAILED" >&2
        exit 1
fi
echo "run-tsan.sh: no ThreadSanitizer report"

#!/bin/sh
# run-fuzz.sh: fuzz keel's record decoder for a while. Configures a clang
# build with KEEL_FUZZ=ON (and the sanitizers) in build-fuzz/ beside the
# default build, builds tests/fuzz/fuzz_decode and runs it on a scratch
# copy of tests/fuzz/corpus/decode, so the checked-in seed corpus stays
# small. Exits non-zero when libFuzzer finds a crash, a leak or a hang;
# the input that caused it is kept in build-fuzz/fuzz-artifacts/.
#
#   tests/fuzz/run-fuzz.sh [SECONDS]     (default 60)
#
# CC (default clang) and KEEL_FUZZ_BUILD_DIR may be set in the environment.
set -eu

secs=${1:-60}
case $secs in
'' | *[!0-9]*)
        echo "usage: $0 [SECONDS]" >&2
        exit 2
        ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${KEEL_FUZZ_BUILD_DIR:-$src/build-fuzz}
cc=${CC:-clang}
case $(basename "$cc") in
clang*) ;;
*) cc=clang ;; # libFuzzer comes with clang only
esac

cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_FUZZ=ON -DKEEL_SANITIZE=ON \
        -DKEEL_WERROR=ON >/dev/null
if [ ! -d "$build/tests/fuzz" ]; then
        echo "run-fuzz.sh: tests/fuzz is not in the build; tests/CMakeLists.txt" \
                "needs add_subdirectory(fuzz)" >&2
        exit 2
fi
cmake --build "$build" --target fuzz_decode -j "$(nproc 2>/dev/null || echo 2)"

corpus=$(mktemp -d "${TMPDIR:-/tmp}/keel-fuzz-corpus.XXXXXX")
trap 'rm -rf "$corpus"' EXIT INT TERM
cp "$here"/corpus/decode/* "$corpus"/
mkdir -p "$build/fuzz-artifacts"

status=0
"$build/tests/fuzz/fuzz_decode" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/" "$corpus" || status=$?
if [ "$status" -ne 0 ]; then
        echo "run-fuzz.sh: fuzz_decode failed (exit $status); inputs in" \
                "$build/fuzz-artifacts/" >&2
        exit 1
fi
echo "run-fuzz.sh: no crash in ${secs}s"

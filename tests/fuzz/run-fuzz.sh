#!/bin/sh
# run-fuzz.sh: fuzz one of keel's libFuzzer targets for a while. Configures
# a clang build with KEEL_FUZZ=ON (and the sanitizers) in build-fuzz/
# beside the default build, builds every target in tests/fuzz/ and runs
# tests/fuzz/fuzz_TARGET on a scratch copy of tests/fuzz/corpus/TARGET (with
# tests/fuzz/TARGET.dict, if there is one), so the checked-in seed corpus
# stays small. Exits non-zero when libFuzzer finds a crash, a leak or a
# hang; the input that caused it is kept in build-fuzz/fuzz-artifacts/.
#
#   tests/fuzz/run-fuzz.sh [SECONDS [TARGET]]   (default 60 decode)
#   tests/fuzz/run-fuzz.sh --build-only
#
# TARGET is decode, http, json or config. CC (default clang) and
# KEEL_FUZZ_BUILD_DIR may be set in the environment; KEEL_FUZZ_NO_BUILD=1
# skips configuring and building (ctest's fuzz_build did it).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${KEEL_FUZZ_BUILD_DIR:-$src/build-fuzz}
cc=${CC:-clang}
case $(basename "$cc") in
clang*) ;;
*) cc=clang ;; # libFuzzer comes with clang only
esac

build_all() {
        cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER="$cc" \
                -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_FUZZ=ON \
                -DKEEL_SANITIZE=ON -DKEEL_WERROR=ON >/dev/null
        if [ ! -d "$build/tests/fuzz" ]; then
                echo "run-fuzz.sh: tests/fuzz is not in the build;" \
                        "tests/CMakeLists.txt needs add_subdirectory(fuzz)" >&2
                exit 2
        fi
        cmake --build "$build" --target fuzz_targets \
                -j "$(nproc 2>/dev/null || echo 2)"
}

if [ "${1:-}" = --build-only ]; then
        build_all
        exit 0
fi
secs=${1:-60}
target=${2:-decode}
case $secs in
'' | *[!0-9]*)
        echo "usage: $0 [SECONDS [decode|http|json|config]] | --build-only" >&2
        exit 2
        ;;
esac
if [ ! -f "$here/fuzz_$target.c" ] || [ ! -d "$here/corpus/$target" ]; then
        echo "run-fuzz.sh: no target '$target' (fuzz_$target.c and" \
                "corpus/$target/)" >&2
        exit 2
fi
[ "${KEEL_FUZZ_NO_BUILD:-0}" = 1 ] || build_all

corpus=$(mktemp -d "${TMPDIR:-/tmp}/keel-fuzz-$target.XXXXXX")
trap 'rm -rf "$corpus"' EXIT INT TERM
cp "$here/corpus/$target"/* "$corpus"/
mkdir -p "$build/fuzz-artifacts"
set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$target-"
[ -f "$here/$target.dict" ] && set -- "$@" -dict="$here/$target.dict"

status=0
"$build/tests/fuzz/fuzz_$target" "$@" "$corpus" || status=$?
if [ "$status" -ne 0 ]; then
        echo "run-fuzz.sh: fuzz_$target failed (exit $status); inputs in" \
                "$build/fuzz-artifacts/" >&2
        exit 1
fi
echo "run-fuzz.sh: fuzz_$target: no crash in ${secs}s"

#!/usr/bin/env bash
# Install the Debian packages keel needs, only those that are missing.
#   scripts/setup.sh build   what building keel and running the demo need
#   scripts/setup.sh test    that, plus what the test suite needs
#   scripts/setup.sh bench   build's, plus what bench/run.sh needs
# As root it runs apt-get; otherwise it names the apt-get line to run.
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config librdkafka-dev libavro-dev
        libjansson-dev libmicrohttpd-dev kcat curl)
# Tests: CUnit; Java and Maven fetch and run Apache Kafka's broker and its
# Java client; python3-avro checks keel's records against another Avro
# implementation; clang builds the fuzz targets; clang-format checks the
# formatting; docker-compose checks docker-compose.yml; chromium and
# python3-websocket drive the projector's dashboard in a headless browser
# (tests/browser) through the DevTools protocol; valgrind runs the demo's
# processes under memcheck (tests/valgrind).
test_pkgs=(libcunit1-dev openjdk-17-jdk-headless maven python3 python3-avro
        clang clang-format libclang-rt-14-dev docker-compose chromium
        python3-websocket valgrind)
# Benchmarks: wrk loads the projector's HTTP API (bench/run.sh, projector);
# jq reads one figure back between runs.
bench_pkgs=(wrk jq python3)

profile=${1:-build}
case "$profile" in
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) want=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
*)
        echo "usage: scripts/setup.sh build|test|bench" >&2
        exit 2
        ;;
esac

if ! command -v dpkg-query >/dev/null; then
        echo "keel's set-up expects Debian 12 (dpkg-query not found)." >&2
        echo "Install the equivalents of: ${want[*]}" >&2
        exit 1
fi

missing=()
for p in "${want[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
                grep -q "install ok installed"; then
                missing+=("$p")
        fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
        echo "keel needs these Debian packages, which are missing:" >&2
        echo "  ${missing[*]}" >&2
        echo "Install them as root, then run this command again:" >&2
        echo "  sudo apt-get update && sudo $line" >&2
        exit 1
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
$line >/dev/null
echo "Installed."

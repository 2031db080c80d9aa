#!/usr/bin/env bash
# Install a keel build tree into a fresh prefix, as `cmake --install` does
# for a user, then build tests/install/consumer/ outside the tree against
# it: with cc and `pkg-config --cflags --libs keel`, and with
# find_package(keel), linking keel::keel and keel::keel_static. Each program
# must run a workflow to completion and print its result.
#
#   install_consumer.sh BUILD_DIR CC [EXTRA_FLAGS]
#
# EXTRA_FLAGS go to every compile and link: a build with KEEL_SANITIZE
# installs libraries carrying ASan and UBSan, which the programs that
# link them must link too.
set -uo pipefail
if [ $# -lt 2 ]; then
        echo "usage: $0 BUILD_DIR CC [EXTRA_FLAGS]" >&2
        exit 2
fi
build=$(cd "$1" && pwd)
cc=$2
extra=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
# shellcheck source=../support/tally.sh
. "$here/../support/tally.sh"

if ! cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
        cat "$tmp/install.log"
        bad "cmake --install $build --prefix $prefix"
        tally_exit
fi
ok "cmake --install into $prefix"

# GNUInstallDirs decides lib, lib64 or lib/<multiarch>: take it from keel.pc.
pcs=$(find "$prefix" -name keel.pc -path '*/pkgconfig/*')
if [ "$(echo "$pcs" | grep -c .)" -ne 1 ]; then
        bad "expected one installed keel.pc, found: ${pcs:-none}"
        tally_exit
fi
pcdir=$(dirname "$pcs")
libdir=$(dirname "$pcdir")
echo "libdir: $libdir"

missing=
for f in bin/keel bin/keel-orchestrator bin/keel-projector \
        bin/keel-payment-worker include/keel/keel.h include/keel/version.h \
        include/keel/testing.h; do
        [ -e "$prefix/$f" ] || missing="$missing $f"
done
for f in libkeel.so libkeel.a keel/libkeel_payment_workflows.so \
        cmake/keel/keelConfig.cmake cmake/keel/keelConfigVersion.cmake \
        cmake/keel/keelTargets.cmake; do
        [ -e "$libdir/$f" ] || missing="$missing ${libdir#"$prefix"/}/$f"
done
if [ -z "$missing" ]; then
        ok "installed programs, headers, libraries, module, keel.pc, CMake package"
else
        bad "not installed:$missing"
fi

# The version the package files state, which the programs must print.
version=$(PKG_CONFIG_PATH=$pcdir pkg-config --modversion keel 2>&1)
want_result='result: {"greeting":"hello, keel","slept_ms":86400000}'

# run NAME LD_LIBRARY_PATH: runs $tmp/NAME and checks what it prints.
run() {
        local exe=$tmp/$1 out
        if ! out=$(LD_LIBRARY_PATH=$2 "$exe" 2>&1); then
                echo "$out"
                bad "$1 exited non-zero"
                return
        fi
        if [ "$(printf '%s\n' "$out" | sed -n 1p)" != "keel $version" ] ||
                [ "$(printf '%s\n' "$out" | sed -n 2p)" != "$want_result" ]; then
                echo "$out"
                bad "$1 printed something else than 'keel $version' and '$want_result'"
                return
        fi
        ok "$1 ran the workflow: $(printf '%s\n' "$out" | sed -n 2p)"
}

# needs_libkeel EXE: 0 if EXE has libkeel.so.* as a needed library.
needs_libkeel() {
        readelf -d "$1" | grep NEEDED | grep -q 'libkeel\.so'
}

# (a) pkg-config and a plain compiler.
export PKG_CONFIG_PATH=$pcdir
cflags=$(pkg-config --cflags keel) || bad "pkg-config --cflags keel"
libs=$(pkg-config --libs keel) || bad "pkg-config --libs keel"
slibs=$(pkg-config --static --libs keel) || bad "pkg-config --static --libs keel"
echo "pkg-config keel $version: $cflags $libs"
# shellcheck disable=SC2086
if $cc $extra -o "$tmp/pc_shared" "$here/consumer/consumer.c" $cflags $libs \
        >"$tmp/cc.log" 2>&1; then
        ok "cc with pkg-config --cflags --libs keel"
        if needs_libkeel "$tmp/pc_shared" &&
                LD_LIBRARY_PATH=$libdir ldd "$tmp/pc_shared" |
                grep -q "libkeel\.so.* => $libdir/"; then
                ok "pc_shared loads $libdir/libkeel.so"
        else
                bad "pc_shared does not load libkeel.so from $libdir"
        fi
        run pc_shared "$libdir"
else
        cat "$tmp/cc.log"
        bad "cc with pkg-config --cflags --libs keel"
fi
# What linking libkeel.a needs beyond libkeel.so's link line. (Not linked
# here with `pkg-config --static`: that also asks for librdkafka's own
# static dependencies, -llz4 -lzstd ..., whose -dev packages librdkafka-dev
# does not pull in. keel::keel_static below links libkeel.a.)
reqs=$(pkg-config --print-requires keel | tr '\n' ' ')
preqs=$(pkg-config --print-requires-private keel | tr '\n' ' ')
if [ "$reqs" = "jansson " ] && [ "$preqs" = "rdkafka " ] &&
        echo " $slibs " | grep -q -- " -lkeel -lm -lpthread .*-lrdkafka "; then
        ok "keel.pc: Requires jansson, Requires.private rdkafka, Libs.private -lm -lpthread"
else
        bad "keel.pc: Requires '$reqs', Requires.private '$preqs', --static --libs '$slibs'"
fi
unset PKG_CONFIG_PATH

# (b) find_package(keel) in a CMake project.
if cmake -S "$here/consumer" -B "$tmp/cmake" -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$extra" \
        -DCMAKE_EXE_LINKER_FLAGS="$extra" \
        -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON >"$tmp/cmake.log" 2>&1 &&
        cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1; then
        if grep -q "keel_DIR: $libdir/cmake/keel\$" "$tmp/cmake.log"; then
                ok "find_package(keel) found $libdir/cmake/keel"
        else
                grep keel_DIR "$tmp/cmake.log"
                bad "find_package(keel) did not find the installed package"
        fi
        cp "$tmp/cmake/consumer_shared" "$tmp/cmake/consumer_static" "$tmp/"
        if needs_libkeel "$tmp/consumer_shared"; then
                ok "keel::keel links libkeel.so"
        else
                bad "keel::keel does not link libkeel.so"
        fi
        if needs_libkeel "$tmp/consumer_static"; then
                bad "keel::keel_static links libkeel.so"
        fi
        run consumer_shared "$libdir"
        run consumer_static ""
else
        cat "$tmp/cmake.log"
        bad "CMake project with find_package(keel REQUIRED)"
fi
tally_exit

#!/usr/bin/env bash
# cli_install.sh DESCENT - `cmake --install` into a temporary prefix, then
# build examples/quickstart.c against it with pkg-config and with CMake's
# find_package, and run both.
set -eu
build=$(dirname "$1")
if grep -q '^DESCENT_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "cli_install: skipped in a sanitizer build (plain compilers cannot link it)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -1)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 -Wall -Wextra -o "$tmp/qs" examples/quickstart.c \
   $(pkg-config --cflags --libs descent) -fopenmp -lm
(cd "$tmp" && LD_LIBRARY_PATH="$libdir" ./qs)
mkdir "$tmp/proj"
cat >"$tmp/proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(quick C)
find_package(descent REQUIRED)
add_executable(qs $PWD/examples/quickstart.c)
target_link_libraries(qs descent::descent)
CM
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/proj/build" >/dev/null
(cd "$tmp" && LD_LIBRARY_PATH="$libdir" ./proj/build/qs)
echo "cli_install: 2 passed, 0 failed"

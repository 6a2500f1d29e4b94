#!/usr/bin/env bash
# install-deps.sh - install what building, testing and running descent needs
# on Debian/Ubuntu. Idempotent: installs only missing packages, and says so.
#   build:  gcc/make (build-essential), cmake, pkg-config
#   BLAS:   libopenblas-dev (the library's optional CBLAS), liblapacke-dev
#           (exact SVDs in tests and diagnostics)
#   tests:  clang + libomp-dev (second compiler in CI), help2man (the man page)
#           python3-torch, python3-numpy (independent references, tests/torch_*.py)
#   python: python3-sklearn, python3-pytest too (the python package's tests,
#           tests/python; they skip, visibly, without them)
#   MPI:    openmpi-bin, libopenmpi-dev (libdescent_mpi, descent-mpi, the mpi test)
#   lab:    zlib1g-dev (gzip data), gnuplot-nox (plots), npm (fetches the GPT-2 vocabulary and corpora)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-dev liblapacke-dev zlib1g-dev gnuplot-nox
      openmpi-bin libopenmpi-dev)
case "${1:-}" in
    --ci) pkgs+=(clang libomp-dev python3-torch python3-numpy help2man python3-sklearn python3-pytest) ;;
    --python) pkgs+=(python3-numpy python3-torch python3-sklearn python3-pytest) ;;
    --lab) pkgs+=(npm) ;;
    "") ;;
    *) echo "usage: install-deps.sh [--ci|--lab|--python]" >&2; exit 2 ;;
esac
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: not a Debian system; install by hand: ${pkgs[*]}" >&2
    exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from another source (e.g. a Node.js install): accept any npm.
if [ "${1:-}" = "--lab" ] && command -v npm >/dev/null 2>&1; then
    missing=("${missing[@]/npm}")
    read -r -a missing <<<"${missing[*]}"
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

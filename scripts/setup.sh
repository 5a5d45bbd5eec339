#!/usr/bin/env bash
# Installs, with apt, whatever kiln needs that this Debian/Ubuntu machine lacks (DESIGN.md §3).
# Installs nothing when everything is present, so it is cheap to call from every script.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git
  libopenmpi-dev openmpi-bin
  libhdf5-dev
  libyaml-cpp-dev
  nlohmann-json3-dev libsimdjson-dev
  libpcre2-dev
  libcli11-dev
  libxxhash-dev
  libutf8proc-dev
  libfasttext-dev
  libzstd-dev zstd
  libfmt-dev
  libopenblas-openmp-dev  # OpenBLAS on OpenMP: one thread pool with kiln's loops (CMakeLists.txt)
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-dev libomp-dev  # libFuzzer + ASan/UBSan for the parser fuzz targets (scripts/fuzz.sh)
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]} > 0)); then
  echo "kiln setup: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The cuDNN frontend's headers (train.attention: cudnn), from PyPI; a no-op once fetched.
"$(dirname "$0")/fetch_cudnn_frontend.sh"

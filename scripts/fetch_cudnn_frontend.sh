#!/usr/bin/env bash
# Fetches the headers of NVIDIA's cuDNN frontend (the C++ graph API over cuDNN 9, header only)
# into .deps/cudnn-frontend/include, where CMake looks for them: `train.attention: cudnn` is
# built on it. Debian has no package for it; PyPI's nvidia-cudnn-frontend wheel carries the
# headers, so pip downloads the pinned wheel (no install) and its include/ folder is unpacked.
# Does nothing when the headers of this version are already there, or when this machine has
# no CUDA toolkit (nothing would use them). A failed download warns and exits 0: kiln then
# builds without cuDNN attention and refuses `train.attention: cudnn` naming this script.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=1.32.0
target=${KILN_CUDNN_FRONTEND_DIR:-$root/.deps/cudnn-frontend}
stamp="$target/version"

if [[ -f $stamp && $(cat "$stamp") == "$version" && -f $target/include/cudnn_frontend.h ]]; then exit 0; fi
if ! command -v nvcc >/dev/null 2>&1 && [[ ! -x /usr/local/cuda/bin/nvcc ]]; then exit 0; fi

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
python=$(command -v python3 || true)
if [[ -z $python ]] || ! "$python" -m pip download --quiet --no-deps --only-binary=:all: \
       --dest "$download" "nvidia-cudnn-frontend==$version" >"$download/pip.log" 2>&1; then
  echo "fetch_cudnn_frontend: could not download nvidia-cudnn-frontend==$version from PyPI" \
       "($(tail -n 1 "$download/pip.log" 2>/dev/null || echo 'no python3')); building without cuDNN attention" >&2
  exit 0
fi
wheel=$(ls "$download"/nvidia_cudnn_frontend-*.whl | head -n 1)
rm -rf "$target"
mkdir -p "$target"
"$python" - "$wheel" "$target" <<'PY'
import sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as archive:
    headers = [name for name in archive.namelist() if name.startswith("include/")]
    archive.extractall(target, headers)
    for name in archive.namelist():
        if name.endswith("LICENSE.txt") or name.endswith("LICENSE"):
            archive.extract(name, target)
PY
echo "$version" >"$stamp"
echo "fetch_cudnn_frontend: cuDNN frontend $version headers in $target/include"

#!/usr/bin/env bash
# The device checks of BENCHMARKS.md in one command, for a lent GPU machine.
#
# Here, once per checkout (needs pip's index; fetches the packages the
# device image lacks, as wheels for its Python 3.12, and copies the
# Fashion-MNIST files of Debian's dataset-fashion-mnist):
#   bash experiments/device_run.sh --prepare
# There (the device tool's `run`, with carry [".whl", ".fashion"]):
#   bash experiments/device_run.sh
# It installs the carried wheels, then runs
# `python -m experiments.benchmarks.device_check` (its whole table, the
# image step included) and keeps the log in $OUT/device_check.log; its
# arguments go to device_check.
set -euo pipefail
cd "$(dirname "$0")/.."

# Versions as in this checkout's virtualenv when written; the device has
# every other dependency (its image's package list).
WHEELS=(ml-collections==1.1.0 tensorboardX==2.6.5 grain==0.2.18
        array-record portpicker)

if [[ "${1:-}" == "--prepare" ]]; then
  mkdir -p .whl .fashion
  for platform in 2_28 2_27 2_17; do
    platforms+=(--platform "manylinux_${platform}_x86_64")
  done
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 \
    --platform any -d .whl "${WHEELS[@]}"
  cp /usr/share/datasets/fashion-mnist/*.gz .fashion/
  du -sh .whl .fashion
  exit 0
fi

OUT="${OUT:-/tmp/device_run}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
export DRIFT_JAX_FASHION_MNIST="$PWD/.fashion"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
fi
# Arguments go to device_check (e.g. --quick for its smoke sizes).
python3 -m experiments.benchmarks.device_check "$@" 2>&1 \
  | tee "$OUT/device_check.log"

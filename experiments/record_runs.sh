#!/usr/bin/env bash
# Records the short runs whose metrics.jsonl a refactor must leave unchanged:
#   bash experiments/record_runs.sh runs/before      # on the old commit
#   bash experiments/record_runs.sh runs/after       # on the new one
#   python -m experiments.same_metrics \
#     $(for x in a b c d e; do echo --a runs/before/$x/metrics.jsonl \
#       --b runs/after/$x/metrics.jsonl; done)
# (a) the README main job at 300 steps, (b) DMD with the oracle teacher at
# 300 steps, (c) DMD with a trained teacher, (d) feature-space drifting with
# classes and CFG, (e) DMD on the digits; (c)-(e) at runlocal sizes.
set -euo pipefail
OUT=${1:?usage: record_runs.sh OUTDIR}
mkdir -p "$OUT"
run() { name=$1; shift; python -m experiments.main "$@" --workdir "$OUT/$name" > "$OUT/$name.log" 2>&1; echo "$OUT/$name/metrics.jsonl"; }
run a --config configs/toy2d.py:recipe,dataset=checkerboard --config.train.steps=300
run b --config configs/gmm.py:method=dmd --config.train.steps=300
run c --config configs/gmm.py:method=dmd,teacher=train,runlocal
run d --config configs/digits.py:features,conditional,runlocal --config.optim.lr=1e-3  # recorded before the lr default changed
run e --config configs/digits.py:method=dmd,runlocal

#!/usr/bin/env bash
# The two budgets of benchmarks/README §9 that a 2-core CPU cannot run in a session: the 10x budget (300 steps)
# and the 112-px check (8x8 patches, 150 steps). Resumable (each finished run is a JSONL line); on one GPU:
#   DEVICE=cuda JOBS=4 bash benchmarks/bank_budgets.sh
# On a CPU (DEVICE=cpu) it works too, over many hours.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
JOBS=${JOBS:-4}
PY=${PYTHON:-python}
common=(--no-probes --device "$DEVICE" --jobs "$JOBS" --threads 1)
# 10x budget: every init, the bank's sizes plus one off the grid (10x320), both datasets, 2 seeds
$PY benchmarks/quality.py --tag bank300 --steps 300 "${common[@]}" --seeds 2 \
    --inits random select tleg wave wave-bank wave-fit --sizes 4x192 8x384 10x320 16x384
# 112 px, 8x8 patches (a 14x14 grid): Fashion-MNIST, 2 seeds, 150 steps
$PY benchmarks/quality.py --tag bank112 --steps 150 --img-size 112 --patch-size 8 "${common[@]}" --seeds 2 \
    --datasets fashion-mnist --inits random select wave-bank wave-fit --sizes 6x384 16x384 10x320
for tag in bank300 bank112; do
  args=(--report --no-probes --tag "$tag" --device "$DEVICE")
  if [ "$tag" = bank300 ]; then
    args+=(--steps 300 --seeds 2 --inits random select tleg wave wave-bank wave-fit --sizes 4x192 8x384 10x320 16x384)
  else
    args+=(--steps 150 --img-size 112 --patch-size 8 --seeds 2 --datasets fashion-mnist
           --inits random select wave-bank wave-fit --sizes 6x384 16x384 10x320)
  fi
  $PY benchmarks/quality.py "${args[@]}" > /dev/null
done

#!/usr/bin/env bash
# Offline / air-gapped use: pull once on a connected machine, carry the Hugging Face cache, work offline.
#
#   bash examples/offline.sh [NAME] [STEP]
#
#   NAME  a learngene: hf-hub:org/repo[@rev] or a published zoo name     (default dinov2s-learngene, bundled:
#         works with no Hub at all, so the cache step has nothing to do)
#   STEP  online | offline | both                                                         (default both)
#
# wavehub keeps Hub files in the standard Hugging Face cache (HF_HOME, or HF_HUB_CACHE if set), so the
# usual tools work on it (`hf cache ls`, `wavehub cache ls`, `wavehub cache verify`). The bundled
# dinov2s-learngene ships inside the wheel and never needs this.
set -euo pipefail

NAME="${1:-dinov2s-learngene}"
STEP="${2:-both}"
PY="${PYTHON:-python}"                            # the interpreter that has wavehub installed
export HF_HOME="${HF_HOME:-$PWD/runs/hf-home}"    # the portable cache: this folder is what you carry
OUT="${OUT:-runs/offline-model}"                 # the model folder written offline

if [[ "$STEP" == online || "$STEP" == both ]]; then
  echo "== connected machine: cache $NAME in $HF_HOME"
  "$PY" -m wavehub pull "$NAME"
  "$PY" -m wavehub cache ls
  # Carry the cache to the offline machine, e.g.:
  #   tar -C "$HF_HOME" -czf hf-home.tgz .            (here)
  #   mkdir -p ~/hf-home && tar -C ~/hf-home -xzf hf-home.tgz && export HF_HOME=~/hf-home   (there)
fi

if [[ "$STEP" == offline || "$STEP" == both ]]; then
  echo "== offline machine: HF_HUB_OFFLINE=1, everything from $HF_HOME"
  export HF_HUB_OFFLINE=1   # no network at all; a file that is not cached fails at once, naming `wavehub pull`
  # a ready-to-train timm folder (for timm's train.py: --model local-dir:$OUT --pretrained)
  "$PY" -m wavehub pull "$NAME" --depth 4 --width 192 --num-classes 10 --out "$OUT"
  # plain timm, no wavehub import, no network
  "$PY" - "$OUT" <<'PYEOF'
import sys

import timm
import torch

model = timm.create_model(f"local-dir:{sys.argv[1]}", pretrained=True).eval()
cfg = timm.data.resolve_data_config({}, model=model)
with torch.no_grad():
    logits = model(torch.randn(1, *cfg["input_size"]))
print(f"offline model: {sum(p.numel() for p in model.parameters()):,} parameters, "
      f"input {cfg['input_size']}, logits {tuple(logits.shape)}")
PYEOF
fi

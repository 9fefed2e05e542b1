#!/usr/bin/env bash
# Before/after BFCL for SmolLM2-135M fine-tuned on generated data (no BFCL data in training).
#
#   benchmarks/finetune_smollm2.sh [METHOD ...]      (default: lora bitfit prompt_tuning)
#
# Each method trains from its recipe (recipes/<method>_smollm2.yaml) with the CPU budget below,
# then the harness scores the base model and each fine-tuned model on the same BFCL sample with
# the same settings (format hermes, constrained decoding, auto tool choice). The base model is
# exported through the same GGUF path (q8_0) as the fine-tuned ones, so precision is equal.
# Mergeable methods are scored through llama.cpp (model.gguf), prompt tuning through the
# transformers engine (adapter/). Everything resumes: a finished training or evaluation case
# is not redone. Raise STEPS / LIMIT where there is more compute (LIMIT= for full categories).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${OUT:-runs/finetune}
STEPS=${STEPS:-60}
LIMIT=${LIMIT-20}
if (($#)); then METHODS=("$@"); else METHODS=(lora bitfit prompt_tuning); fi
CATEGORIES=(simple_python multiple parallel parallel_multiple irrelevance)
EVAL=(--categories "${CATEGORIES[@]}" --seed 0 --format hermes --constrained --max-tokens 256 --no-progress)
[[ -n "$LIMIT" ]] && EVAL+=(--limit "$LIMIT")
declare -A LR=([lora]=5e-4 [bitfit]=3e-3 [prompt_tuning]=3e-2)
mkdir -p "$OUT"

if [[ ! -f "$OUT/base.gguf" ]]; then
  $BIN/python - "$OUT/base.gguf" <<'EOF'
import sys
from fncall.train.base_model import load_base_model
from fncall.train.gguf_export import export_gguf, template_for
model, _ = load_base_model("smollm2-135m")
export_gguf(model, template_for("smollm2-135m"), sys.argv[1], name="smollm2-135m-base")
EOF
fi
$BIN/fncall eval run --model "$OUT/base.gguf" "${EVAL[@]}" --out "$OUT/eval-base"

for method in "${METHODS[@]}"; do
  run="$OUT/$method"
  if [[ ! -f "$run/report.json" ]]; then
    $BIN/fncall train --config "recipes/${method}_smollm2.yaml" \
      --set train.output_dir="$run" --set train.max_steps="$STEPS" --set train.grad_accum=1 \
      --set train.eval_every=25 --set train.save_every=25 --set train.val_accuracy_examples=4 \
      --set data.generate.examples=800 --set data.generate.max_distractors=2 \
      --set optim.lr="${LR[$method]}" --set train.mixed_precision=bf16 --set train.progress=false
  fi
  model="$run/model.gguf"
  [[ -f "$model" ]] || model="$run/adapter"
  $BIN/fncall eval run --model "$model" "${EVAL[@]}" --out "$OUT/eval-$method"
done

runs=("$OUT/eval-base")
for method in "${METHODS[@]}"; do runs+=("$OUT/eval-$method"); done
$BIN/fncall eval compare "${runs[@]}" --out benchmarks/results/finetune_smollm2.png \
  | tee benchmarks/results/finetune_smollm2.md

#!/usr/bin/env bash
# The checks that need a GPU, for a CUDA machine (CI and the 2-core dev machines have none):
#
#   scripts/gpu_check.sh [OUT]          (default OUT: runs/gpu-check; PY=python3 by default)
#
# 1. the training and transformers-engine tests, which take the GPU when one is there
#    (the tests on the real embedded models are left out: they need the assembled models);
# 2. `fncall train` on the tiny model through `accelerate launch` on the GPU, in bf16 and fp16,
#    LoRA, with the merged model exported;
# 3. `fncall eval run` of that merged checkpoint with the transformers engine on the GPU,
#    constrained (the random model's answers are nonsense; what is checked is that every
#    output is well formed and the run completes and reports).
# GPU_CHECK_CPU=1 runs the same steps on the CPU (to try the script where there is no GPU).
# Each step prints PASS or FAIL; the exit status is the number of failed steps. Logs, reports
# and a summary go to OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${1:-runs/gpu-check}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
failed=0
step() {  # name command...
  local name=$1
  shift
  local start=$SECONDS
  if "$@" >"$OUT/$name.log" 2>&1; then
    echo "PASS $name ($((SECONDS - start)) s)" | tee -a "$OUT/summary.txt"
  else
    echo "FAIL $name ($((SECONDS - start)) s): see $OUT/$name.log" | tee -a "$OUT/summary.txt"
    tail -20 "$OUT/$name.log"
    failed=$((failed + 1))
  fi
}

$PY - <<'EOF' | tee "$OUT/summary.txt"
import torch, transformers, peft, accelerate
print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
      f"accelerate {accelerate.__version__}")
print("cuda:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
import os
if not torch.cuda.is_available() and not os.environ.get("GPU_CHECK_CPU"):
    raise SystemExit("no CUDA device: nothing to check here (GPU_CHECK_CPU=1 to try on the CPU)")
EOF
[[ ${PIPESTATUS[0]} == 0 ]] || exit 1

step tests timeout 420 $PY -m pytest -q -p no:cacheprovider -m "not model" \
  tests/test_train_loop.py tests/test_train_methods.py tests/test_engine_transformers.py

train_config() {  # precision -> config path
  local dir="$OUT/train-$1"
  cat >"$OUT/train-$1.yaml" <<EOF
name: gpu-$1
model: {base: tiny}
data:
  generate: {examples: 64, max_distractors: 1}
  max_seq_len: 700
  validation_fraction: 0.1
  test_fraction: 0.05
  contamination_guard: false
method: {name: lora, rank: 8, alpha: 16}
optim: {lr: 0.005, warmup_steps: 2}
train: {output_dir: $dir, batch_size: 4, max_steps: 40, save_every: 20, eval_every: 20,
        progress: false, mixed_precision: $1}
export: {merged: true, model_card: false}
EOF
  echo "$OUT/train-$1.yaml"
}

check_training() {  # precision: trained on cuda, loss went down, merged model written
  $PY - "$OUT/train-$1" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
report = json.loads((out / "report.json").read_text())
figures = {k: report.get(k) for k in ("device", "mixed_precision", "steps", "first_train_loss",
           "final_train_loss", "best_val_loss", "tokens_per_second")}
print(json.dumps(figures))
with open(out.parent / "summary.txt", "a") as summary:
    summary.write(f"  {out.name}: {json.dumps(figures)}\n")
import os
assert report["device"].startswith("cuda") or os.environ.get("GPU_CHECK_CPU"), report["device"]
assert report["mixed_precision"] == out.name.removeprefix("train-"), report["mixed_precision"]
assert report["steps"] == 40, report["steps"]
assert report["final_train_loss"] < report["first_train_loss"], "the loss did not go down"
assert (Path(report["merged_dir"]) / "config.json").is_file()
EOF
}

train_and_check() {  # precision
  $PY -m accelerate.commands.launch --num_processes 1 --mixed_precision "$1" \
    -m fncall train --config "$(train_config "$1")" && check_training "$1"
}

for precision in bf16 fp16; do
  step "train-$precision" train_and_check $precision
done

step engine-device $PY - "$OUT" <<'EOF'
# Trained folders load onto the GPU; a model object stays where it is.
import os, sys, torch
from fncall.engine import load_engine
from fncall.engine.transformers import TransformersEngine
want = "cpu" if os.environ.get("GPU_CHECK_CPU") else "cuda"
for folder in ("train-bf16/merged", "train-bf16/adapter", "train-fp16/adapter"):
    engine = load_engine(f"{sys.argv[1]}/{folder}", backend="transformers")
    print(engine)
    assert engine.device.startswith(want), engine.device
    assert next(engine.model.parameters()).device.type == want
    text = engine.generate("<|im_start|>user\nhi<|im_end|>\n", max_tokens=8).text
    print(repr(text))
cpu_model = engine.model.to("cpu")
clone = TransformersEngine(cpu_model, tokenizer=engine.tokenizer)
assert clone.device == "cpu" and next(cpu_model.parameters()).device.type == "cpu"
EOF

step eval-transformers bash -c "$PY -m fncall eval run --model $OUT/train-bf16/merged \
  --format hermes --constrained --text-max-tokens 16 --max-tokens 96 \
  --categories simple_python parallel irrelevance --limit 4 --no-progress --out $OUT/eval && \
  $PY - $OUT/eval <<'EOF'
import json, sys
report = json.load(open(sys.argv[1] + '/report.json'))
well = report['well_formed']
print(json.dumps(well))
with open(sys.argv[1] + '/../summary.txt', 'a') as summary:
    summary.write(f'  eval: well formed {json.dumps(well)}, p50 {report[\"latency_s\"]}\n')
assert sum(v['well_formed'] for v in well.values()) == sum(v['cases'] for v in well.values()) == 12
EOF"

echo "$failed step(s) failed" | tee -a "$OUT/summary.txt"
exit "$failed"

#!/usr/bin/env bash
# Full-category BFCL runs of the embedded models: constrained vs unconstrained, and each format.
#
#   benchmarks/eval_full.sh [MODEL ...]     (default: qwen2.5-coder-0.5b smollm2-135m)
#
# For each model, every setting below scores the non-live Python categories and irrelevance
# (1,240 cases) into runs/<short>-<setting>-full; then one comparison table and chart per model
# go to benchmarks/results/eval_full_<short>.{md,png} and each run's report to
# benchmarks/results/eval_full_<short>-<setting>.json.
#
#   constrained     the model's default format (auto: json for both), constrained decoding
#   unconstrained   the same prompt, free generation
#   hermes, pythonic, llama3
#                   that format's prompt and grammar, constrained
#
# Constrained runs stop a plain-text answer after TEXT_TOKENS (32) tokens: the grammar commits to
# text or a call on the first characters and text is never searched for calls, so the scores
# are exactly those of full answers; only the time spent writing prose nobody scores is saved
# (the untuned 135M model answers nearly every question in prose).
#
# Everything resumes: run it again after an interruption and no finished case is redone; the
# table marks runs that are not finished yet. SETTINGS="constrained unconstrained" picks
# settings; LIMIT=20 scores a sample instead (folders then end in -n20). On the 2-core machine a
# qwen case takes ~5 s (2 threads), so one setting is ~2 h; a GPU or a remote endpoint is faster.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${OUT:-runs}
LIMIT=${LIMIT-}
TEXT_TOKENS=${TEXT_TOKENS:-32}
read -r -a SETTINGS <<<"${SETTINGS:-constrained unconstrained hermes pythonic llama3}"
if (($#)); then MODELS=("$@"); else MODELS=(qwen2.5-coder-0.5b smollm2-135m); fi
declare -A SHORT=([qwen2.5-coder-0.5b]=qwen05 [smollm2-135m]=smollm2 [qwen2.5-coder-1.5b]=qwen15)
CATEGORIES=(simple_python multiple parallel parallel_multiple irrelevance)
EVAL=(--categories "${CATEGORIES[@]}" --seed 0 --no-progress)
suffix=full
if [[ -n "$LIMIT" ]]; then EVAL+=(--limit "$LIMIT"); suffix="n$LIMIT"; fi

for model in "${MODELS[@]}"; do
  short=${SHORT[$model]:-$(basename "$model" .gguf)}
  runs=()
  for setting in "${SETTINGS[@]}"; do
    case $setting in
      constrained) flags=(--format auto --constrained --text-max-tokens "$TEXT_TOKENS") ;;
      unconstrained) flags=(--format auto --no-constrained) ;;
      json | hermes | pythonic | llama3)
        flags=(--format "$setting" --constrained --text-max-tokens "$TEXT_TOKENS") ;;
      *) echo "unknown setting '$setting'; accepted: constrained unconstrained json hermes pythonic llama3" >&2; exit 2 ;;
    esac
    run="$OUT/$short-$setting-$suffix"
    $BIN/fncall eval run --model "$model" "${flags[@]}" "${EVAL[@]}" --out "$run" >/dev/null
    cp "$run/report.json" "benchmarks/results/eval_${suffix}_$short-$setting.json"
    runs+=("$run")
  done
  $BIN/fncall eval compare "${runs[@]}" --out "benchmarks/results/eval_${suffix}_$short.png" \
    | tee "benchmarks/results/eval_${suffix}_$short.md"
done

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
# settings; LIMIT=20 scores a sample instead (folders then end in -n20). JOBS=2 runs two settings
# at once, each on half the cores (FNCALL_THREADS): on 2 cores that does ~1.25x the cases per
# hour of one 2-thread process. A qwen case takes ~5 s on 2 cores, so one setting is ~2 h there.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${OUT:-runs}
LIMIT=${LIMIT-}
JOBS=${JOBS:-1}
TEXT_TOKENS=${TEXT_TOKENS:-32}
read -r -a SETTINGS <<<"${SETTINGS:-constrained unconstrained hermes pythonic llama3}"
if (($#)); then MODELS=("$@"); else MODELS=(qwen2.5-coder-0.5b smollm2-135m); fi
declare -A SHORT=([qwen2.5-coder-0.5b]=qwen05 [smollm2-135m]=smollm2 [qwen2.5-coder-1.5b]=qwen15)
CATEGORIES=(simple_python multiple parallel parallel_multiple irrelevance)
EVAL=(--categories "${CATEGORIES[@]}" --seed 0 --no-progress)
suffix=full
if [[ -n "$LIMIT" ]]; then EVAL+=(--limit "$LIMIT"); suffix="n$LIMIT"; fi
export FNCALL_THREADS=${FNCALL_THREADS:-$(($(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1))}

flags_for() {
  case $1 in
    constrained) echo "--format auto --constrained --text-max-tokens $TEXT_TOKENS" ;;
    unconstrained) echo "--format auto --no-constrained" ;;
    json | hermes | pythonic | llama3) echo "--format $1 --constrained --text-max-tokens $TEXT_TOKENS" ;;
    *) return 1 ;;
  esac
}
for setting in "${SETTINGS[@]}"; do
  flags_for "$setting" >/dev/null || {
    echo "unknown setting '$setting'; accepted: constrained unconstrained json hermes pythonic llama3" >&2
    exit 2
  }
done

run_one() {  # model setting
  local short=${SHORT[$1]:-$(basename "$1" .gguf)} run flags
  run="$OUT/$short-$2-$suffix"
  read -r -a flags <<<"$(flags_for "$2")"
  if ! $BIN/fncall eval run --model "$1" "${flags[@]}" "${EVAL[@]}" --out "$run" >/dev/null; then
    echo "$run" >>"$failed"
    return 1
  fi
  cp "$run/report.json" "benchmarks/results/eval_${suffix}_$short-$2.json"
}

failed=$(mktemp)
trap 'rm -f "$failed"' EXIT
for model in "${MODELS[@]}"; do
  for setting in "${SETTINGS[@]}"; do
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
    run_one "$model" "$setting" &
  done
done
wait
if [[ -s "$failed" ]]; then
  echo "unfinished: $(tr '\n' ' ' <"$failed")(see the messages above); run again to resume" >&2
  exit 1
fi

for model in "${MODELS[@]}"; do
  short=${SHORT[$model]:-$(basename "$model" .gguf)}
  runs=()
  for setting in "${SETTINGS[@]}"; do runs+=("$OUT/$short-$setting-$suffix"); done
  $BIN/fncall eval compare "${runs[@]}" --out "benchmarks/results/eval_${suffix}_$short.png" \
    | tee "benchmarks/results/eval_${suffix}_$short.md"
done

#!/usr/bin/env bash
# docs/quality.md, "Harder sets": every set × {real, hashed names} × {v1, v2} × {vector, hybrid} × {en, fr}.
# Build the sets first: python scripts/make_eval_sets.py all out/evalsets. Writes out/ev/<set>-<lang>.json.
# Extra `assetrag eval` options (e.g. --compare lang=en) can follow on the command line.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SETS:-out/evalsets}; O=${OUT:-out/ev}; mkdir -p "$O"
PY=${PYTHON:-python}
run() {  # set-dir queries-file name
  $PY -m assetrag.cli --uri "$O/$3.db" --library "${3//-/_}" --model offline:v1 --runtime onnx eval "$2" \
    --root "$1" --ingest --mode vector --no-understand \
    --compare mode=hybrid --compare model=offline:v2,mode=vector --compare model=offline:v2,mode=hybrid \
    "${@:4}" --json > "$O/$(basename "$2" .jsonl).json"
}
for set in ${ONLY:-samples emoji openclipart}; do
  for lang in en fr; do
    [ -f "$S/$set-$lang.jsonl" ] || continue
    run "$S/$set" "$S/$set-$lang.jsonl" "$set" "$@"
    run "$S/$set-hashed" "$S/$set-hashed-$set-$lang.jsonl" "$set-hashed" "$@"
  done
done

#!/usr/bin/env bash
# docs/quality.md, "Lexical search in Milvus": hybrid search with BM25 in Milvus vs the in-process index, on the
# held-out halves of every set × {real, codepoint, hashed} names × {EN, FR}, offline:v2, Milvus Lite.
# Build the sets first: python scripts/make_eval_sets.py all out/evalsets. Writes out/lex/<name>-<path>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SETS:-out/evalsets}; O=${OUT:-out/lex}; mkdir -p "$O/q"
PY=${PYTHON:-python}
heldout() { grep '"part": "heldout"' "$1" > "$2"; }  # the hashed copies' query files hold both halves
run() {  # set-dir queries-file library lang
  for path in milvus in-process; do
    ASSETRAG_LEXICAL=$path $PY -m assetrag.cli --uri "$O/$3.db" --library "${3//-/_}" --model offline:v2 \
      --runtime onnx eval "$2" --root "$1" --ingest --mode hybrid --no-understand --json > "$O/$3-$4-$path.json"
  done
}
for lang in en fr; do
  for set in samples emoji openclipart; do
    [ -f "$S/heldout-$set-$lang.jsonl" ] || continue
    run "$S/$set" "$S/heldout-$set-$lang.jsonl" "$set" "$lang"
    heldout "$S/$set-hashed-$set-$lang.jsonl" "$O/q/$set-hashed-$lang.jsonl"
    run "$S/$set-hashed" "$O/q/$set-hashed-$lang.jsonl" "$set-hashed" "$lang"
  done
  if [ -f "$S/heldout-emoji-codepoints-$lang.jsonl" ]; then
    run "$S/emoji-codepoints" "$S/heldout-emoji-codepoints-$lang.jsonl" "emoji-codepoints" "$lang"
  fi
done

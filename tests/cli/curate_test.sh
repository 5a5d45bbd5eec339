#!/usr/bin/env bash
# `kiln curate` end to end: the built-in recipe on a generated corpus, the short form with
# evaluation sets, and the errors users meet (bad recipe key, missing input, bad JSON line).
set -euo pipefail
kiln="$1"
root="$(cd "$2/../.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$kiln" corpus --out "$work/corpus.jsonl" --docs 3000 --seed 1 --tasks-out "$work/tasks.jsonl" --tasks 200 > /dev/null

# 1. The quickstart recipe, pointed at this corpus.
"$kiln" curate "$root/recipes/curate-builtin.yaml" --set "input.paths=[$work/corpus.jsonl]" \
  --set "output.dir=$work/curated" --set "decontamination.eval_sets=[$work/tasks.jsonl]" --quiet > "$work/table.txt"
grep -q "near_dedup" "$work/table.txt" || fail "no near_dedup row in the table"
grep -q "P = 0.9235" "$work/table.txt" || fail "the LSH curve is not printed"
[[ -f $work/curated/report.json && -f $work/curated/part-00000.jsonl ]] || fail "missing outputs"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
report = json.load(open(f"{work}/curated/report.json"))
kept = [json.loads(l) for l in open(f"{work}/curated/part-00000.jsonl")]
rejected = [json.loads(l) for l in open(f"{work}/curated/rejected/part-00000.jsonl")]
assert report["documents_in"] == 3000, report["documents_in"]
assert report["documents_out"] == len(kept)
assert len(kept) + len(rejected) == 3000, (len(kept), len(rejected))
assert len(kept) > 0.8 * 3000, f"the built-in corpus should mostly pass, kept {len(kept)}"
assert all(set(d) == {"id", "kind", "text"} for d in kept), "fields of the input record must survive"
assert all("reason" in d and "stage" in d for d in rejected)
explained = sum(c for s in report["stages"] for c in s["dropped"].values())
assert explained == len(rejected), (explained, len(rejected))
# A held-out task written into a document is caught.
tasks = [json.loads(l) for l in open(f"{work}/tasks.jsonl")]
arith = next(t for t in tasks if t["kind"] == "arithmetic")
with open(f"{work}/leak.jsonl", "w") as out:
    out.write(json.dumps({"id": 1, "text": "12 + 30 = 42\n" + arith["prompt"] + arith["answer"] + "\n"}) + "\n")
    out.write(json.dumps({"id": 2, "text": "12 + 31 = 43\nWhat is 5 plus 6? 11\n"}) + "\n")
PY
"$kiln" curate "$root/recipes/curate-builtin.yaml" --set "input.paths=[$work/leak.jsonl]" \
  --set "output.dir=$work/leak" --set "decontamination.eval_sets=[$work/tasks.jsonl]" --quiet > /dev/null
grep -q '"id": 1,.*"reason":"contaminated"' "$work/leak/rejected/part-00000.jsonl" || fail "planted task not decontaminated"
grep -q '"id": 2' "$work/leak/part-00000.jsonl" || fail "clean document dropped"

# 2. Short form with the published defaults, zstd output and rejected records.
"$kiln" curate --input "$work/corpus.jsonl" --out "$work/short" --eval-sets "$work/tasks.jsonl" --keep-rejected \
  --zstd --quiet > /dev/null
[[ -f $work/short/part-00000.jsonl.zst && -f $work/short/report.json && -d $work/short/rejected ]] || fail "short form outputs"
grep -q '"gopher_short_doc"' "$work/short/report.json" || fail "web defaults should drop the short synthetic documents"

# 3. Errors: non-zero exit and a message that names the place and the fix.
expect_error() {  # expect_error PATTERN COMMAND...
  local pattern="$1"; shift
  if "$@" > "$work/out.txt" 2> "$work/err.txt"; then fail "expected failure: $*"; fi
  grep -q -- "$pattern" "$work/err.txt" || { cat "$work/err.txt" >&2; fail "message lacks '$pattern'"; }
}
printf 'input:\n  paths: [%s]\noutput:\n  dir: %s\ngopher_quality:\n  min_doc_wrds: 5\n  max_doc_words: lots\n' \
  "$work/corpus.jsonl" "$work/bad" > "$work/bad.yaml"
expect_error "bad.yaml:6:3: gopher_quality.min_doc_wrds: unknown key. Fix: did you mean \`gopher_quality.min_doc_words\`" \
  "$kiln" curate "$work/bad.yaml"
expect_error "gopher_quality.max_doc_words: expected a number >= 0, found 'lots'" "$kiln" curate "$work/bad.yaml"
expect_error "unknown key \`near_dedup.band\`. Fix: did you mean \`near_dedup.bands\`" \
  "$kiln" curate "$root/recipes/curate-web.yaml" --set near_dedup.band=4
expect_error "input file '$work/nope.jsonl' does not exist" "$kiln" curate --input "$work/nope.jsonl" --out "$work/x"
{ head -3 "$work/corpus.jsonl"; echo '{"id": 9, "text": "broken'; tail -2 "$work/corpus.jsonl"; } > "$work/broken.jsonl"
expect_error "broken.jsonl:4: malformed JSON" "$kiln" curate --input "$work/broken.jsonl" --out "$work/x" --quiet
"$kiln" curate --input "$work/broken.jsonl" --out "$work/skipped" --skip-bad-records --quiet > /dev/null 2>&1
grep -q '"bad_record": 1' "$work/skipped/report.json" || fail "skipped record not counted"
# 4. A record with two "text" keys is refused with file:line and the key (readers disagree on
#    which copy wins), not silently read as one of them.
{ head -2 "$work/corpus.jsonl"; echo '{"id": 9, "text": "first", "text": "second"}'; } > "$work/dupkey.jsonl"
expect_error 'dupkey.jsonl:3: the "text" key appears more than once in the record' \
  "$kiln" curate --input "$work/dupkey.jsonl" --out "$work/dupkey" --quiet
[[ ! -e $work/dupkey/report.json && -z $(ls "$work/dupkey" 2>/dev/null) ]] || fail "a failed run left output: $(ls -A "$work/dupkey")"

# 5. Input files whose names are not UTF-8 (names are bytes on Linux): the run succeeds and
#    every output stays valid UTF-8 JSON (the bad bytes are written as U+FFFD).
odd_jsonl="$work/"$'odd\xff.jsonl'
odd_text="$work/"$'odd\xfe.txt'
head -50 "$work/corpus.jsonl" > "$odd_jsonl"
python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['text'])" "$work/corpus.jsonl" > "$odd_text"
"$kiln" curate "$root/recipes/curate-builtin.yaml" --set "input.paths=[$odd_jsonl, $odd_text]" \
  --set "output.dir=$work/odd" --set "decontamination.enabled=false" --quiet > /dev/null || fail "non-UTF-8 file names"
python3 - "$work/odd" <<'PY' || fail "outputs of a run over non-UTF-8 file names are not valid UTF-8 JSON"
import json, sys
report = json.load(open(f"{sys.argv[1]}/report.json", encoding="utf-8"))
assert report["documents_in"] == 51, report["documents_in"]
for name in ("part-00000.jsonl", "rejected/part-00000.jsonl"):
    for line in open(f"{sys.argv[1]}/{name}", encoding="utf-8"):
        json.loads(line)
PY
echo "curate CLI: OK"

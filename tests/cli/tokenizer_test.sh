#!/usr/bin/env bash
# `kiln tokenizer encode|decode|train|info` end to end through the real binary, on the
# fixtures made by scripts/fixtures/make_tokenizer_fixtures.py, including bad input: each
# must give a clear message and exit 1 (never a crash).
# $1 = kiln binary, $2 = fixtures dir.
set -u
kiln=$1
source "$(dirname "$0")/testlib.sh"
fixtures=$2/tokenizer

contains() { grep -qF -- "$2" "$1"; }
# run NAME ARGS...: runs kiln with stdin from $work/NAME.in when it exists; keeps stdout and
# stderr in $work/NAME.{out,err} and the exit status in $status.
run() {
  local name=$1
  shift
  local input=/dev/null
  [ -f "$work/$name.in" ] && input="$work/$name.in"
  "$kiln" "$@" <"$input" >"$work/$name.out" 2>"$work/$name.err"
  status=$?
}
# refused NAME EXPECTED ARGS...: kiln must exit 1 and say EXPECTED on stderr.
refused() {
  local name=$1 expected=$2
  shift 2
  run "$name" "$@"
  check "$name: exit 1" test "$status" -eq 1
  check "$name: says '$expected'" contains "$work/$name.err" "$expected"
}

# ---- encode: the ids `tokenizers` gives (goldens computed with it) -------------------------
printf "Hello world, it's 2024!" >"$work/gpt2.in"
run gpt2 tokenizer encode --tokenizer "$fixtures/gpt2.json"
check "encode gpt2: exit 0" test "$status" -eq 0
check "encode gpt2: ids" test "$(cat "$work/gpt2.out")" = "695 884 12 333 725 1736 1862 1"

printf "Hello world" >"$work/bos.txt"
run bos tokenizer encode --tokenizer "$fixtures/llama3.json" --input "$work/bos.txt"
check "encode llama3: BOS by default" test "$(cat "$work/bos.out")" = "0 44 704 901"
run nobos tokenizer encode --tokenizer "$fixtures/llama3.json" --input "$work/bos.txt" --no-special
check "encode llama3 --no-special" test "$(cat "$work/nobos.out")" = "44 704 901"

printf '{"text": "Hello world"}\n{"text": "", "other": 1}\n' >"$work/jsonl.in"
run jsonl tokenizer encode --tokenizer "$fixtures/llama3.json" --jsonl
check "encode --jsonl: exit 0" test "$status" -eq 0
check "encode --jsonl: output" test "$(cat "$work/jsonl.out")" = $'{"ids": [0, 44, 704, 901]}\n{"ids": [0]}'

# Invalid UTF-8 is replaced by U+FFFD (as Python's errors="replace") rather than refused.
printf 'ok \xff\xe2\x82 bad' >"$work/invalid.in"
printf 'ok \xef\xbf\xbd\xef\xbf\xbd bad' >"$work/replaced.in"
run invalid tokenizer encode --tokenizer "$fixtures/gpt2.json"
run replaced tokenizer encode --tokenizer "$fixtures/gpt2.json"
check "encode invalid UTF-8: exit 0" test "$status" -eq 0
check "encode invalid UTF-8: as U+FFFD" cmp -s "$work/invalid.out" "$work/replaced.out"

# ---- decode: ids back to the exact bytes --------------------------------------------------
printf 'Mixed 中文, emoji 😀 and\ttabs\r\nlines  <|endoftext|> end\n' >"$work/text.in"
for name in gpt2 gpt2_prefix llama3; do
  run "enc_$name" tokenizer encode --tokenizer "$fixtures/$name.json" --no-special --input "$work/text.in"
  cp "$work/enc_$name.out" "$work/dec_$name.in"
  run "dec_$name" tokenizer decode --tokenizer "$fixtures/$name.json"
  check "decode $name: exit 0" test "$status" -eq 0
done
check "decode(encode(x)) == x (gpt2)" cmp -s "$work/dec_gpt2.out" "$work/text.in"
check "decode(encode(x)) == x (llama3)" cmp -s "$work/dec_llama3.out" "$work/text.in"

# ---- train: a tokenizer that loads and round-trips ----------------------------------------
for i in $(seq 1 50); do
  printf '{"text": "the quick brown fox %d jumps over the lazy dog; don'"'"'t panic. 日本語 %d"}\n' "$i" "$i"
done >"$work/corpus.jsonl"
run train tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --style llama3 --min-frequency 1 \
  --special "<|endoftext|>" "<|begin_of_text|>" --out "$work/trained.json"
check "train: exit 0" test "$status" -eq 0
run info tokenizer info --tokenizer "$work/trained.json"
check "train: vocab size 300" contains "$work/info.out" '"vocab_size": 300'
check "train: eos is the first special" contains "$work/info.out" '"eos_id": 0'
printf 'the lazy fox' >"$work/trained_enc.in"
run trained_enc tokenizer encode --tokenizer "$work/trained.json"
check "trained: BOS first" test "$(cut -d' ' -f1 "$work/trained_enc.out")" = "1"
cp "$work/trained_enc.out" "$work/trained_dec.in"
run trained_dec tokenizer decode --tokenizer "$work/trained.json" --skip-special
check "trained: round trip" test "$(cat "$work/trained_dec.out")" = "the lazy fox"

# ---- help --------------------------------------------------------------------------------
for verb in encode decode train info; do
  run "help_$verb" tokenizer "$verb" --help
  check "$verb --help" test "$status" -eq 0
done

# ---- bad input ---------------------------------------------------------------------------
refused missing_tokenizer "tokenizer '$work/none.json' does not exist" tokenizer encode --tokenizer "$work/none.json"
printf '{"model": {"vocab": {' >"$work/broken.json"
refused malformed "malformed JSON" tokenizer encode --tokenizer "$work/broken.json"
check "malformed: names the file" contains "$work/malformed.err" "$work/broken.json"
sed 's/"normalizer": null/"normalizer": {"type": "NFKC"}/' "$fixtures/gpt2.json" >"$work/nfkc.json"
refused unsupported "normalizer 'NFKC' is not supported" tokenizer encode --tokenizer "$work/nfkc.json"
sed 's/"type": "BPE"/"type": "Unigram"/' "$fixtures/gpt2.json" >"$work/unigram.json"
refused unigram "model type 'Unigram' is not supported" tokenizer encode --tokenizer "$work/unigram.json"
sed 's/"byte_fallback": false/"byte_fallback": true/' "$fixtures/gpt2.json" >"$work/fallback.json"
refused byte_fallback "model.byte_fallback is not supported" tokenizer encode --tokenizer "$work/fallback.json"
printf '{"version": "1.0", "pre_tokenizer": null, "model": {"type": "BPE", "merges": []}}' >"$work/novocab.json"
refused missing_field "field 'model.vocab' is missing" tokenizer encode --tokenizer "$work/novocab.json"
printf '5 999999 7' >"$work/out_of_range.in"
refused out_of_range "token id 999999 (token 2) is out of range" tokenizer decode --tokenizer "$fixtures/gpt2.json"
printf '5 -3' >"$work/negative.in"
refused negative "'-3' (token 2) is not a token id" tokenizer decode --tokenizer "$fixtures/gpt2.json"
printf '5 99999999999' >"$work/huge.in"
refused huge "is not a token id" tokenizer decode --tokenizer "$fixtures/gpt2.json"
refused missing_input "input '$work/none.txt' does not exist" tokenizer encode --tokenizer "$fixtures/gpt2.json" --input "$work/none.txt"
printf '{"text": "fine"}\n{"text": 3}\n' >"$work/bad_jsonl.in"
refused bad_jsonl "line 2: expected an object with a string field 'text'" \
  tokenizer encode --tokenizer "$fixtures/gpt2.json" --jsonl
printf '{"text": "fine"}\n{"text": \n' >"$work/broken_jsonl.in"
refused broken_jsonl "line 2: malformed JSON" tokenizer encode --tokenizer "$fixtures/gpt2.json" --jsonl
refused small_vocab "vocab size 100 is too small" \
  tokenizer train --input "$work/corpus.jsonl" --vocab-size 100 --out "$work/small.json"
refused train_missing_input "$work/none.jsonl" \
  tokenizer train --input "$work/none.jsonl" --vocab-size 300 --out "$work/x.json"

# ---- hostile files (issue 16): named errors, exit 1, no hang, no huge allocation ----------
# Each runs under a timeout (a FIFO or /dev/zero read would never end) and a 2 GB address
# space limit (a 24 GB allocation fails as an internal error, exit 3, instead).
guarded() { (ulimit -v 2000000; timeout 20 "$kiln" "$@"); }
# refused_guarded NAME EXPECTED ARGS...: like refused, through guarded.
refused_guarded() {
  local name=$1 expected=$2
  shift 2
  guarded "$@" </dev/null >"$work/$name.out" 2>"$work/$name.err"
  status=$?
  check "$name: exit 1" test "$status" -eq 1
  check "$name: says '$expected'" contains "$work/$name.err" "$expected"
}
mkfifo "$work/fifo"
mkdir "$work/dir.json"
refused_guarded tok_dir "tokenizer '$work/dir.json' is a directory; expected a regular file" \
  tokenizer encode --tokenizer "$work/dir.json"
refused_guarded tok_fifo "tokenizer '$work/fifo' is a FIFO" tokenizer info --tokenizer "$work/fifo"
refused_guarded tok_zero "tokenizer '/dev/zero' is a character device" tokenizer decode --tokenizer /dev/zero
for verb in encode decode; do
  refused_guarded "${verb}_in_fifo" "input '$work/fifo' is a FIFO" tokenizer $verb --tokenizer "$fixtures/gpt2.json" --input "$work/fifo"
  refused_guarded "${verb}_in_zero" "input '/dev/zero' is a character device" \
    tokenizer $verb --tokenizer "$fixtures/gpt2.json" --input /dev/zero
  refused_guarded "${verb}_in_dir" "input '$work/dir.json' is a directory" \
    tokenizer $verb --tokenizer "$fixtures/gpt2.json" --input "$work/dir.json"
done
sed 's/"<|endoftext|>": 0,/"<|endoftext|>": 400000000,/' "$fixtures/gpt2.json" >"$work/huge_id.json"
check "huge_id fixture edited" contains "$work/huge_id.json" '": 400000000,'
refused_guarded huge_id "the token '<|endoftext|>' has the id 400000000" \
  tokenizer encode --tokenizer "$work/huge_id.json" --input "$work/bos.txt"
sed 's/"<|endoftext|>": 0,/"<|endoftext|>": 1e999,/' "$fixtures/gpt2.json" >"$work/inf.json"
refused_guarded inf_number "field 'model.vocab.<|endoftext|>' holds a number JSON cannot represent" \
  tokenizer encode --tokenizer "$work/inf.json" --input "$work/bos.txt"
printf '\xef\xbb\xbf' | cat - "$fixtures/gpt2.json" >"$work/bom.json"
refused_guarded bom "starts with a UTF-8 byte order mark" tokenizer info --tokenizer "$work/bom.json"
sed 's/"normalizer": null,/"normalizer": null, "normalizer": null,/' "$fixtures/gpt2.json" >"$work/dup.json"
refused_guarded duplicate_key "has the key 'normalizer' twice" tokenizer info --tokenizer "$work/dup.json"

# ---- train --out is written atomically ----------------------------------------------------
# The trained file is renamed over the old one, so a hard link to the old file keeps its bytes.
printf 'old' >"$work/atomic.json"
ln "$work/atomic.json" "$work/atomic_link.json"
run atomic tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --min-frequency 1 --out "$work/atomic.json"
check "train atomic: exit 0" test "$status" -eq 0
check "train atomic: new file" contains "$work/atomic.json" '"model"'
check "train atomic: old inode untouched" test "$(cat "$work/atomic_link.json")" = "old"
check "train atomic: no temporary left" test ! -e "$work/atomic.json.tmp"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]

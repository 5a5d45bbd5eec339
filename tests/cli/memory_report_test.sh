#!/usr/bin/env bash
# kiln train reports peak memory by category: the banner prints it (human-readable) and every
# metrics.jsonl step record carries "memory_peak_bytes"; the numbers are the arenas the
# model's shapes need (worked out here from the recipe and the banner's parameter counts),
# serially and, with MPI, under ZeRO (staging) and a pipeline (links), as the max over ranks.
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"

"$kiln" corpus --out "$work/corpus.jsonl" --docs 600 --seed 3 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --val-fraction 0.05 \
  --quiet >/dev/null
cat >"$work/gpt2.yaml" <<YAML
model: {family: gpt2, d_model: 32, n_layers: 2, n_heads: 4, max_seq_len: 16}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5, val: $work/data/val.h5}
train: {steps: 3, seq_len: 16, batch_size: 4, micro_batch_size: 2, seed: 5, threads: 1}
optim: {lr: 1.0e-3, warmup_steps: 1}
checkpoint: {every_steps: 3}
eval: {every_steps: 3, batches: 1}
YAML

# expect_memory LOG RUN_DIR MODE: MODE serial | zero (dp=2, zero=1) | pipeline (pp=2).
expect_memory() {
  python3 - "$1" "$2/metrics.jsonl" "$3" <<'PY'
import json, re, sys
log, metrics, mode = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
align = lambda b: (b + 63) // 64 * 64
steps = [json.loads(l) for l in open(metrics) if '"loss"' in l]
assert len(steps) == 3, f"{len(steps)} step records"
keys = {"parameters", "gradients", "optimizer_state", "activations", "communication", "pipeline", "kv_cache",
        "workspace", "total"}
for s in steps:
    assert set(s["memory_peak_bytes"]) == keys, s
peak = steps[-1]["memory_peak_bytes"]
numels = [int(n) for n in re.findall(r"rank +\d+: .*? \| (\d+) parameters", log)]
V = int(re.search(r"vocab \d+ \(padded (\d+)\)", log).group(1))
C, L, B, T, F = 32, 2, 2, 16, 128
want = {"kv_cache": 0}
if mode == "zero":
    shard = (numels[0] + 1) // 2
    want.update(parameters=align(4 * numels[0]), optimizer_state=2 * align(4 * shard),
                communication=align(4 * shard), pipeline=0)  # the reduced gradient shard (gathers are in place)
elif mode == "pipeline":
    want.update(parameters=align(4 * max(numels)), communication=0, pipeline=align(4 * B * T * C))
else:
    want.update(parameters=align(4 * numels[0]), optimizer_state=2 * align(4 * numels[0]), communication=0,
                pipeline=0)
    N = B * T  # gpt2: LayerNorm, GELU, 4 heads of 8, no GQA
    per_layer = [N*C, N, N, 3*N*C, N*C, N*4, N*C, N*C, N, N, N*F, N*F, N*C]
    head = [N*C, N, N, N*V, N, N, N, 2*N]
    backward = [N*C, N*C, 3*N*C, N*C, N*F, N*F]
    want["activations"] = sum(align(4 * e) for e in [N, N, N*C] + L * per_layer + head + backward)
want["gradients"] = want["parameters"]
for key, value in want.items():
    assert peak[key] == value, f"{key}: reported {peak[key]}, expected {value}"
assert peak["activations"] > 0 and peak["total"] >= sum(peak[k] for k in want), peak
assert peak["total"] <= sum(peak[k] for k in keys - {"total"}), peak
banner = re.search(r"^memory peak.*$", log, re.M)
assert banner, "no memory line in the banner"
line = banner.group(0)
for key in keys - {"total"}:
    assert re.search(rf"{key} [0-9.]+ (B|KiB|MiB|GiB)", line), f"banner lacks {key}: {line}"
assert re.search(r"; total [0-9.]+ (KiB|MiB)", line), line
if mode != "serial":
    assert "max over 2 ranks" in line, line
PY
}

"$kiln" train "$work/gpt2.yaml" --run-dir "$work/serial" >"$work/serial.log" 2>&1
check "serial run trains" test $? -eq 0
check "serial: banner and metrics.jsonl report the arenas' bytes" expect_memory "$work/serial.log" "$work/serial" serial

if "$kiln" --version | grep -q "MPI: built"; then
  mpi_environment
  timeout 300 mpirun --oversubscribe -np 2 "$kiln" train "$work/gpt2.yaml" --run-dir "$work/zero" \
    --set parallel.dp=2 --set parallel.zero=1 >"$work/zero.log" 2>&1
  check "zero run trains" test $? -eq 0
  check "zero: staging and the optimizer shard are reported" expect_memory "$work/zero.log" "$work/zero" zero
  timeout 300 mpirun --oversubscribe -np 2 "$kiln" train "$work/gpt2.yaml" --run-dir "$work/pp" \
    --set parallel.pp=2 >"$work/pp.log" 2>&1
  check "pipeline run trains" test $? -eq 0
  check "pipeline: the stage links are reported" expect_memory "$work/pp.log" "$work/pp" pipeline
else
  echo "SKIP: kiln built without MPI (zero and pipeline layouts)"
fi
finish

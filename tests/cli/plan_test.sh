#!/usr/bin/env bash
# kiln plan: the table and its JSON (every layout of the GPUs that kiln train accepts, the ones
# that fit first, each part by estimated step time; those that do not fit say by how much),
# bad input named by flag, and the issue's check: for 5 layouts trained on the CPU under
# mpirun, plan's per-rank memory total is within 10% of the high-water mark metrics.jsonl
# reports (memory_peak_bytes.total, the max over ranks); and its bytes sent per group are what
# the communicators counted (the count scripts/bench_parallel.py also checks).
# $1: the kiln binary.
set -uo pipefail
kiln=$1
source "$(dirname "$0")/testlib.sh"

"$kiln" corpus --out "$work/corpus.jsonl" --docs 600 --seed 3 >/dev/null
"$kiln" tokenizer train --input "$work/corpus.jsonl" --vocab-size 300 --out "$work/tok.json" >/dev/null 2>&1
"$kiln" prepare --tokenizer "$work/tok.json" --input "$work/corpus.jsonl" --out "$work/data" --quiet >/dev/null
# Activations are most of a rank's memory at T = 128 (about 3.4 of 5.4 MiB serially).
cat >"$work/gpt2.yaml" <<YAML
model: {family: gpt2, d_model: 64, n_layers: 2, n_heads: 4, max_seq_len: 128}
data: {tokenizer: $work/tok.json, train: $work/data/train.h5}
train: {steps: 2, seq_len: 128, batch_size: 8, micro_batch_size: 2, seed: 5, threads: 1, device: cpu}
optim: {lr: 1.0e-3, warmup_steps: 1}
YAML

# ---- (a) the table and the JSON ---------------------------------------------------------------
# 6 MiB GPUs: some layouts fit, some do not.
"$kiln" plan "$work/gpt2.yaml" --gpus 4 --gpu-memory 0.006 --top 0 --all-micro-batches >"$work/table.txt" 2>"$work/table.err"
check "plan prints a table" test $? -eq 0
"$kiln" plan "$work/gpt2.yaml" --gpus 4 --gpu-memory 0.006 --json >"$work/plan.json" 2>"$work/plan.err"
check "plan --json" test $? -eq 0
check_plan() {
  python3 - "$work/table.txt" "$work/plan.json" <<'PY'
import json, re, sys
table, plan = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
layouts = plan["layouts"]
assert plan["gpus"] == 4 and len(layouts) > 4, (plan["gpus"], len(layouts))
categories = {"parameters", "gradients", "optimizer_state", "activations", "communication", "pipeline", "kv_cache",
              "workspace", "total"}
gpu = 0.006 * 2**30
for l in layouts:
    assert l["dp"] * l["tp"] * l["pp"] * l["cp"] == 4, l
    assert (l["cp"], l["recompute"]) == (1, "none"), l  # not enumerated without --with-cp-and-recompute
    assert set(l["memory_per_rank_bytes"]) == categories, l["memory_per_rank_bytes"].keys()
    assert len(l["stages"]) == l["pp"], l
    total = l["memory_per_rank_bytes"]["total"]
    assert total == max(s["memory_bytes"]["total"] for s in l["stages"]), l
    assert total == sum(v for k, v in l["memory_per_rank_bytes"].items() if k != "total"), l
    assert l["fits"] == (total <= int(gpu)) and l["over_by_bytes"] == max(0, total - int(gpu)), l
    assert set(l["bytes_sent_per_step"]) == {"tp", "cp", "pp", "dp", "embedding"}, l
    assert (l["bytes_sent_per_step"]["tp"] > 0) == (l["tp"] > 1) and (l["bytes_sent_per_step"]["pp"] > 0) == (l["pp"] > 1), l
    assert l["micro_batch_size"] * l["micro_batches"] * l["dp"] == plan["batch_size"], l
    assert abs(l["tokens_per_s"] * l["step_time_s"] - plan["tokens_per_step"]) < 1e-6 * plan["tokens_per_step"], l
fits = [l["fits"] for l in layouts]
assert True in fits and False in fits and fits == sorted(fits, reverse=True), "fitting layouts come first"
for part in (True, False):
    times = [l["step_time_s"] for l in layouts if l["fits"] == part]
    assert all(a <= b * (1 + 1e-9) for a, b in zip(times, times[1:])), f"not ordered by step time: {times}"
rows = [line for line in table.splitlines() if re.match(r"^ +\d+ +\d+ +\d+ +\d+ +\d+ +[01] +(on|off) ", line)]
assert len(rows) == len(layouts), (len(rows), len(layouts))
for row, l in zip(rows, layouts):
    assert row.split()[1:7] == [str(l["dp"]), str(l["tp"]), str(l["pp"]), str(l["cp"]), str(l["zero"]),
                                "on" if l["sequence_parallel"] else "off"], (row, l)
    assert ("fits" in row) == l["fits"] and ("over by" in row) != l["fits"], row
for word in ("assumptions:", "--gpu-memory", "--efficiency", "--nvlink-gbps", "--ib-gbps", "--peak-tflops",
             "TP sent", "DP sent", "tokens/s", "--with-cp-and-recompute"):
    assert word in table, f"the table lacks {word}"
PY
}
check "table and JSON: every layout of 4 GPUs, fitting first, by step time" check_plan

"$kiln" plan "$work/gpt2.yaml" --gpus 4 --top 3 >"$work/top.txt"
check "--top 3 shows 3 rows" grep -q "(3 of [0-9]* layouts shown" "$work/top.txt"
best_micro_batch_only() {
  "$kiln" plan "$work/gpt2.yaml" --gpus 4 --gpu-memory 0.006 --top 0 >"$work/best.txt" || return 1
  python3 - "$work/best.txt" "$work/plan.json" <<'PY'
import json, re, sys
rows = [l.split() for l in open(sys.argv[1]) if re.match(r"^ +\d+ +\d+ +\d+ +\d+ +\d+ +[01] +(on|off) ", l)]
layouts = json.load(open(sys.argv[2]))["layouts"]
key = lambda l: [str(l["dp"]), str(l["tp"]), str(l["pp"]), str(l["cp"]), str(l["zero"]),
                 "on" if l["sequence_parallel"] else "off", l["recompute"]]
first = {}
for l in layouts:
    first.setdefault(tuple(key(l)), f'{l["micro_batch_size"]}x{l["micro_batches"]}')
assert [tuple(r[1:8]) for r in rows] == list(first), "one row per layout, in the plan's order"
assert all(r[8] == first[tuple(r[1:8])] for r in rows), "each with the plan's first micro-batch size"
PY
}
check "the table shows each layout once, with its best micro-batch size" best_micro_batch_only
"$kiln" plan --help >"$work/help.txt"
check "--help" grep -q -- "--gpu-memory" "$work/help.txt"
expect_error "no such recipe" "recipe file '$work/nope.yaml' not found" "$kiln" plan "$work/nope.yaml" --gpus 2
expect_error "--gpus 0" "--gpus: 0 is not a number of GPUs" "$kiln" plan "$work/gpt2.yaml" --gpus 0
expect_error "no --gpus" "needs --gpus N" "$kiln" plan "$work/gpt2.yaml"
expect_error "a layout train refuses, with train's reason" "parallel.tp (from --set parallel.tp=3): 3 does not divide" \
  "$kiln" plan "$work/gpt2.yaml" --layout 1,3,1,0
check "  ... named as the --layout kiln train would refuse" grep -q -- "--layout 1,3,1,0: kiln train would refuse" "$work/err"
expect_error "a malformed layout" "--layout 2,x,1,0: 'x' is not a whole number" "$kiln" plan "$work/gpt2.yaml" --layout 2,x,1,0
expect_error "--gpus against --layout" "--gpus: 8 GPUs, but --layout 2,1,1,0 takes" \
  "$kiln" plan "$work/gpt2.yaml" --layout 2,1,1,0 --gpus 8
sed "s|tokenizer: $work/tok.json|tokenizer: $work/none.json|" "$work/gpt2.yaml" >"$work/no-tokenizer.yaml"
expect_error "no tokenizer to read the vocabulary from" "or --set model.vocab_size=N" \
  "$kiln" plan "$work/no-tokenizer.yaml" --gpus 2
expect_error "--efficiency above 1" "--efficiency: 1.5 is above 1" "$kiln" plan "$work/gpt2.yaml" --gpus 2 --efficiency 1.5

# ---- (b) the estimate against the measured high-water mark -------------------------------------
if ! "$kiln" --version | grep -q "MPI: built"; then echo "SKIP: kiln built without MPI (measured layouts)"; finish; fi
mpi_environment
# estimate_within LAYOUT RUN_DIR: plan's per-rank total within 10% of the run's peak.
estimate_within() {
  "$kiln" plan "$work/gpt2.yaml" --layout "$1" --json >"$work/one.json" || return 1
  python3 - "$work/one.json" "$2/metrics.jsonl" "$1" <<'PY'
import json, sys
estimate = json.load(open(sys.argv[1]))["layouts"][0]["memory_per_rank_bytes"]["total"]
steps = [json.loads(line) for line in open(sys.argv[2]) if '"loss"' in line]
measured = max(s["memory_peak_bytes"]["total"] for s in steps)
error = (estimate - measured) / measured
print(f"      {sys.argv[3]}: estimate {estimate} bytes, measured {measured} ({100 * error:+.2f}%)")
sys.exit(abs(error) > 0.10)
PY
}
# traffic_matches RUN_DIR: every rank's bytes sent per step in each group, as its communicators
# counted them (--traffic-report), equal plan's count for its pipeline stage (the JSON above).
traffic_matches() {
  python3 - "$work/one.json" "$1" <<'PY'
import glob, json, sys
stages = json.load(open(sys.argv[1]))["layouts"][0]["stages"]
reports = [json.load(open(p)) for p in glob.glob(f"{sys.argv[2]}/traffic.rank*.json")]
assert reports, "no traffic reports"
for r in reports:
    sent, model = r["bytes_sent_per_step"], stages[r["pp"]]["bytes_sent_per_step"]
    measured = {"tp": sent["tp"]["total"], "pp": sent["pp"]["total"], "dp": sent["dp"]["total"],
                "embedding": sent.get("embedding", {}).get("total", 0.0)}
    for group, value in measured.items():
        assert abs(value - model[group]) <= 1e-9 * max(1.0, value), f"rank {r['rank']} {group}: {value} sent, plan {model[group]}"
PY
}
for layout in 1,1,1,0 2,1,1,1 1,2,1,0 1,1,2,0 2,2,1,0; do
  IFS=, read -r dp tp pp zero <<<"$layout"
  run="$work/run-$dp$tp$pp$zero"
  timeout 120 mpirun --oversubscribe -np $((dp * tp * pp)) "$kiln" train "$work/gpt2.yaml" --run-dir "$run" \
    --set parallel.dp="$dp" --set parallel.tp="$tp" --set parallel.pp="$pp" --set parallel.zero="$zero" \
    --traffic-report "$run/traffic" >"$run.log" 2>&1
  check "dp $dp tp $tp pp $pp zero $zero trains" test $? -eq 0
  check "dp $dp tp $tp pp $pp zero $zero: plan's memory per rank within 10% of the measured peak" \
    estimate_within "$layout" "$run"
  check "dp $dp tp $tp pp $pp zero $zero: plan's bytes sent per group are what each rank sent" traffic_matches "$run"
done
finish

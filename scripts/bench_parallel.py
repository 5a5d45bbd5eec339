#!/usr/bin/env python3
"""Benchmark (not a test): kiln training under several (dp, tp, pp) layouts on this machine.

For each layout: step time, tokens/s, and the bytes each rank sends per step, measured by
kiln's communicators, beside the analytic count for that layout from `kiln plan RECIPE --layout
dp,tp,pp,zero --json` (trainer/plan/communication_volume.hpp: Megatron-LM's accounting, ring
collectives: an all-reduce of B bytes over n ranks sends 2 (n-1)/n B per rank), so the benchmark
checks the model the planner ranks layouts with:
  TP  per micro-batch, per layer 2 all-reduces of the [b, T, C] activations forward and 2 of
      their gradients backward; plus the vocab-parallel embedding (first stage, forward) and
      the head's input gradient (last stage), and the cross-entropy statistics [b, T] x 3
  PP  per micro-batch one [b, T, C] activation forward (all but the last stage) and one
      gradient backward (all but the first)
  DP  one all-reduce of the rank's gradients (2 (n-1)/n x parameter bytes), or under ZeRO-1 a
      reduce-scatter of the gradients plus an all-gather of the updated parameters
The host scalars (token count, loss, stop flag) travel on the control groups, not counted here.
Every layout with dp > 1 runs twice, parallel.overlap_grad_reduce on and off: the step times
show what starting the gradient buckets during the backward saves (little on 2 shared cores).
On 2 cores the times mean little; the byte counts must match the analysis.

usage: scripts/bench_parallel.py [--steps N] [--kiln PATH]"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYOUTS = [(1, 1, 1, 0), (2, 1, 1, 0), (2, 1, 1, 1), (1, 2, 1, 0), (1, 1, 2, 0), (2, 2, 1, 0), (1, 2, 2, 0), (2, 2, 2, 0)]
MODEL = dict(d_model=64, n_layers=4, n_heads=4, seq_len=64, batch=16, micro=2)


def analytic(kiln, recipe, layout, env):
    """Per pipeline stage, the bytes one rank sends per step in each group, as `kiln plan` counts them."""
    result = subprocess.run([kiln, "plan", recipe, "--layout", ",".join(map(str, layout)), "--json"], check=True,
                            env=env, capture_output=True, text=True)
    stages = json.loads(result.stdout)["layouts"][0]["stages"]
    return [(s["bytes_sent_per_step"]["tp"], s["bytes_sent_per_step"]["pp"], s["bytes_sent_per_step"]["dp"])
            for s in stages]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--kiln", default=os.path.join(ROOT, "build", "trainer", "cli", "kiln"))
    args = parser.parse_args()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               OMPI_MCA_mpi_yield_when_idle="1")
    work = tempfile.mkdtemp(prefix="kiln-bench-parallel-")
    run = lambda *cmd: subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    run(args.kiln, "corpus", "--out", f"{work}/c.jsonl", "--docs", "6000")
    run(args.kiln, "tokenizer", "train", "--input", f"{work}/c.jsonl", "--vocab-size", "512", "--out", f"{work}/t.json")
    run(args.kiln, "prepare", "--tokenizer", f"{work}/t.json", "--input", f"{work}/c.jsonl", "--out", f"{work}/d", "--quiet")
    m = MODEL
    with open(f"{work}/r.yaml", "w") as f:
        f.write(f"""model: {{family: llama, d_model: {m['d_model']}, n_layers: {m['n_layers']}, n_heads: {m["n_heads"]}, tie_embeddings: false, max_seq_len: {m['seq_len']}}}
data: {{tokenizer: {work}/t.json, train: {work}/d/train.h5}}
train: {{steps: {args.steps}, seq_len: {m['seq_len']}, batch_size: {m['batch']}, micro_batch_size: {m['micro']}, threads: 1, device: cpu}}
optim: {{lr: 1.0e-3, warmup_steps: 0, schedule: constant}}
checkpoint: {{every_steps: 0}}
""")
    print(f"llama d_model {m['d_model']}, {m['n_layers']} layers, T {m['seq_len']}, batch {m['batch']} x micro {m['micro']}, "
          f"fp32, {args.steps} steps; bytes sent per rank per step (rank 0 / the last rank), measured vs analytic")
    header = f"{'dp tp pp zero':>13} {'overlap':>7} {'step s':>7} {'tok/s':>8} {'rank':>4} {'TP meas':>10} {'TP model':>10} {'PP meas':>10} {'PP model':>10} {'DP meas':>10} {'DP model':>10}"
    print(header)
    runs = [(layout, overlap) for layout in LAYOUTS for overlap in (("true", "false") if layout[0] > 1 else ("true",))]
    step_times = {}
    for layout, overlap in runs:
        dp, tp, pp, zero = layout
        ranks = dp * tp * pp
        out = f"{work}/run-{dp}{tp}{pp}{zero}-{overlap}"
        cmd = ["mpirun", "--oversubscribe", "-np", str(ranks)] if ranks > 1 else []
        cmd += [args.kiln, "train", f"{work}/r.yaml", "--run-dir", out, "--traffic-report", f"{out}/traffic",
                "--set", f"parallel.dp={dp}", "--set", f"parallel.tp={tp}", "--set", f"parallel.pp={pp}",
                "--set", f"parallel.zero={zero}", "--set", f"parallel.overlap_grad_reduce={overlap}"]
        run(*cmd)
        model = analytic(args.kiln, f"{work}/r.yaml", layout, env)
        steps = [json.loads(line) for line in open(f"{out}/metrics.jsonl") if '"loss"' in line]
        step_s = sum(s["step_s"] for s in steps[1:]) / max(1, len(steps) - 1)
        tokens_s = m["batch"] * m["seq_len"] / step_s
        step_times[(layout, overlap)] = step_s
        reports = sorted((json.load(open(p)) for p in glob.glob(f"{out}/traffic.rank*.json")), key=lambda x: x["rank"])
        for report in (reports[0], reports[-1]) if len(reports) > 1 else reports[:1]:
            sent = report["bytes_sent_per_step"]
            tp_model, pp_model, dp_model = model[report["pp"]]
            pp_meas = sent["pp"]["send"] + sent["pp"]["broadcast"]
            dp_meas = sent["dp"]["total"]
            print(f"{dp:>4}{tp:>3}{pp:>3}{zero:>5} {overlap:>7} {step_s:>7.3f} {tokens_s:>8.0f} {report['rank']:>4} "
                  f"{sent['tp']['total']:>10.0f} {tp_model:>10.0f} {pp_meas:>10.0f} {pp_model:>10.0f} {dp_meas:>10.0f} {dp_model:>10.0f}")
    print("world-group scalars per step (gradient norm, finite flag): 2 x 8-byte all-reduces; "
          "tied embeddings would add an all-reduce of the embedding gradient between first and last stage")
    print("overlap_grad_reduce on vs off (mean step time after the first step):")
    for layout in LAYOUTS:
        if (layout, "false") in step_times:
            on, off = step_times[(layout, "true")], step_times[(layout, "false")]
            print(f"  dp {layout[0]} tp {layout[1]} pp {layout[2]} zero {layout[3]}: on {on:.3f} s, off {off:.3f} s "
                  f"({100 * (off - on) / off:+.1f}% saved)")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks kiln's exports against independent runtimes (DESIGN.md §9, §11):

  kiln -> Hugging Face -> transformers: the exported directory loads with from_pretrained, its
      tokenizer gives kiln's ids, and its next-token log-probabilities equal `kiln score`'s
      within fp32 tolerance (with --reference DIR, also its logits equal the original model's);
      with a chat template, apply_chat_template renders a conversation exactly as kiln does.
  kiln -> GGUF -> llama.cpp (llama-cpp-python): for each --dtypes, the tokenizer agrees, the
      next-token log-probabilities are within the dtype's tolerance of kiln's, and greedy
      continuations of --prompt match kiln's `generate --temperature 0` (for quantised
      dtypes the length of the matching prefix is reported).

Usage:
  python3 scripts/check_export.py --kiln build/trainer/cli/kiln --checkpoint runs/x --work /tmp/check
Needs torch, transformers and llama-cpp-python (pip install llama-cpp-python); exits 1 when a
check fails, printing one line per check.
"""
import argparse
import json
import math
import pathlib
import subprocess
import sys

TEXTS = [
    "The potter fired twelve bowls and seven cups in the kiln.",
    "She glazed the green pots, and they sold them at the market on Sunday.",
    "What is 12 plus 7? The answer is 19.",
]
# The conversation and renderings of tests/chat/chat_template_test.cpp: kiln's templates must
# render exactly what the exported Jinja renders in transformers.
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": " Hello. "}, {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Bye."}]
CHAT_RENDERED = {
    "chatml": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
              "<|im_start|>assistant\n Hello. <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
              "<|im_start|>assistant\nBye.<|im_end|>\n",
    "llama3": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nBye.<|eot_id|>",
}
# Max |log p(kiln) - log p(runtime)| allowed per next token.
# ggml's CPU GELU reads a table of fp16 inputs, which costs GPT-2 about 1e-3 even in F32.
# HF: fp32 vs fp32 with other summation orders, on logits of magnitude ~30 in the test models.
TOLERANCE = {"hf": 5e-4, "f32": 1e-4, "f16": 0.05, "bf16": 0.35, "q8_0": 0.35}
GELU_TABLE_TOLERANCE = 5e-3


def run_bytes(*args):
    result = subprocess.run([str(a) for a in args], capture_output=True)
    if result.returncode != 0:
        sys.exit(f"command failed: {' '.join(map(str, args))}\n{result.stderr.decode(errors='replace')}")
    return result.stdout


def run(*args):
    return run_bytes(*args).decode()


def kiln_scores(args, texts_file):
    out = run(args.kiln, "score", "--checkpoint", args.checkpoint, "--input", texts_file, "--logprobs")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def log_softmax_rows(logits):
    rows = []
    for row in logits:
        peak = max(row)
        total = math.log(sum(math.exp(v - peak) for v in row)) + peak
        rows.append([v - total for v in row])
    return rows


def compare_hf(args, work, texts, scores):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    hf_dir = work / "hf"
    run(args.kiln, "export", "--checkpoint", args.checkpoint, "--format", "hf", "--out", hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    reference = None
    if args.reference:
        reference = AutoModelForCausalLM.from_pretrained(args.reference, dtype=torch.float32).eval()
    worst, worst_logit, ids_ok = 0.0, 0.0, True
    with torch.no_grad():
        for text, score in zip(texts, scores):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids_ok &= len(ids) == score["tokens"]
            logits = model(input_ids=torch.tensor([ids])).logits[0].double()
            logprobs = torch.log_softmax(logits[:-1], -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
            worst = max(worst, max(abs(a - b) for a, b in zip(logprobs.tolist(), score["logprobs"])))
            if reference is not None:
                original = reference(input_ids=torch.tensor([ids])).logits[0].double()
                worst_logit = max(worst_logit, (original - logits).abs().max().item())
    checks = [("hf tokenizer gives kiln's token counts", ids_ok, ""),
              ("hf next-token logprobs = kiln score", worst <= TOLERANCE["hf"], f"max |diff| {worst:.2e}")]
    if reference is not None:
        checks.append(("hf logits = original model's", worst_logit <= TOLERANCE["hf"], f"max |diff| {worst_logit:.2e}"))
    template = getattr(tokenizer, "chat_template", None)
    if template:
        name = "chatml" if "<|im_start|>" in template else "llama3"
        text = tokenizer.apply_chat_template(CHAT, tokenize=False)
        checks.append((f"hf apply_chat_template ({name}) = kiln's rendering", text == CHAT_RENDERED[name], ""))
    return checks


def kiln_greedy(args):
    """Prompt + continuation as bytes (a random model may well emit invalid UTF-8)."""
    out = run_bytes(args.kiln, "generate", "--checkpoint", args.checkpoint, "--prompt", args.prompt,
                    "--temperature", "0", "--max-tokens", args.max_tokens)
    return out[:-1] if out.endswith(b"\n") else out


def llama_greedy(llm, args):
    tokens = llm.tokenize(args.prompt.encode(), add_bos=True, special=True)
    generated = []
    for token in llm.generate(tokens, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
        generated.append(token)
        if token == llm.token_eos() or len(generated) >= int(args.max_tokens):
            break
    return args.prompt.encode() + llm.detokenize(generated)


def compare_gguf(args, work, texts, scores, dtype, kiln_text, family):
    from llama_cpp import Llama
    path = work / f"model-{dtype}.gguf"
    run(args.kiln, "export", "--checkpoint", args.checkpoint, "--format", "gguf", "--dtype", dtype, "--out", path)
    # An F32 KV cache: llama.cpp's default F16 cache would add its own rounding to every dtype.
    llm = Llama(model_path=str(path), n_ctx=args.n_ctx, logits_all=True, verbose=False, n_threads=2, seed=0,
                type_k=0, type_v=0)
    worst, ids_ok = 0.0, True
    for text, score in zip(texts, scores):
        ids = llm.tokenize(text.encode(), add_bos=False, special=False)
        ids_ok &= len(ids) == score["tokens"]
        llm.reset()
        llm.eval(ids)
        rows = log_softmax_rows([list(map(float, llm.scores[i])) for i in range(len(ids) - 1)])
        worst = max(worst, max(abs(rows[i][ids[i + 1]] - score["logprobs"][i]) for i in range(len(ids) - 1)))
    runtime_text = llama_greedy(llm, args)
    same = next((i for i, (a, b) in enumerate(zip(kiln_text, runtime_text)) if a != b),
                min(len(kiln_text), len(runtime_text)))
    exact = kiln_text == runtime_text
    tolerance = TOLERANCE[dtype]
    if family == "gpt2":
        tolerance = max(tolerance, GELU_TABLE_TOLERANCE)
    checks = [(f"gguf {dtype}: llama.cpp tokenizer gives kiln's token counts", ids_ok, ""),
              (f"gguf {dtype}: next-token logprobs", worst <= tolerance, f"max |diff| {worst:.2e}")]
    greedy_ok = exact or dtype in ("bf16", "q8_0")
    checks.append((f"gguf {dtype}: greedy continuation", greedy_ok,
                   "identical" if exact else f"first {same - len(args.prompt.encode())} generated bytes agree"))
    return checks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--reference", help="the Hugging Face directory the checkpoint was imported from")
    parser.add_argument("--prompt", default="The potter")
    parser.add_argument("--max-tokens", default="24")
    parser.add_argument("--n-ctx", type=int, default=0, help="llama.cpp context (0: the model's)")
    parser.add_argument("--dtypes", default="f32,f16,bf16,q8_0")
    parser.add_argument("--texts", help="JSONL with a text field (default: built-in sentences)")
    args = parser.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    texts = TEXTS
    if args.texts:
        texts = [json.loads(line)["text"] for line in pathlib.Path(args.texts).read_text().splitlines() if line.strip()]
    texts_file = work / "texts.jsonl"
    texts_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    scores = kiln_scores(args, texts_file)

    checks = compare_hf(args, work, texts, scores)
    kiln_text = kiln_greedy(args)
    family = json.loads((work / "hf" / "config.json").read_text())["model_type"]
    for dtype in args.dtypes.split(","):
        checks += compare_gguf(args, work, texts, scores, dtype, kiln_text, family)
    failed = 0
    for name, ok, detail in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
        failed += not ok
    print(f"{len(checks) - failed}/{len(checks)} checks passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

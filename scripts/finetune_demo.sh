#!/usr/bin/env bash
# The fine-tuning story end to end, from a clean checkout:
#   1. a transformers-made Llama (random weights, a Llama-3-style tokenizer with chat tokens
#      trained on the built-in corpus) saved as a Hugging Face directory
#   2. kiln import --from hf                  -> runs/sft-hf/base
#   3. the built-in tasks as Llama-3 chats     -> kiln prepare --format chat --template llama3
#   4. kiln train recipes/sft-hf.yaml          (model.init_from: runs/sft-hf/base)
#      --tp 2 runs it under mpirun with parallel.tp = 2 (needs the tensor-parallel trainer)
#   5. kiln export --format hf and --format gguf (f16, q8_0)
#   6. scripts/check_export.py: transformers and llama.cpp agree with kiln
# Usage: scripts/finetune_demo.sh [--steps N] [--tp N] [--skip-check]
# Needs python3 with torch, transformers, tokenizers (and llama-cpp-python for the GGUF checks).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kiln=${KILN:-$root/build/trainer/cli/kiln}
run=runs/sft-hf
steps=300
tp=1
check=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --tp) tp=$2; shift 2 ;;
    --skip-check) check=0; shift ;;
    *) echo "usage: $0 [--steps N] [--tp N] [--skip-check]" >&2; exit 2 ;;
  esac
done
[[ -x $kiln ]] || { echo "build kiln first (scripts/build.sh) or set KILN=path/to/kiln" >&2; exit 1; }
mkdir -p "$run"

echo "== 1. built-in corpus and tasks; a transformers-made Llama in $run/hf-base"
"$kiln" corpus --out "$run/corpus.jsonl" --docs 20000 --tasks-out "$run/tasks.jsonl" --tasks 8000 >/dev/null
python3 - "$run" <<'PY'
import json, pathlib, sys
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM

run = pathlib.Path(sys.argv[1])
pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| "
           r"?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
specials = ["<|end_of_text|>", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
tokenizer = Tokenizer(models.BPE())
tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
tokenizer.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                         special_tokens=[("<|begin_of_text|>", 1)])
tokenizer.decoder = decoders.ByteLevel()
texts = [json.loads(line)["text"] for line in (run / "corpus.jsonl").open()]
tokenizer.train_from_iterator(texts, trainers.BpeTrainer(
    vocab_size=2048, special_tokens=specials, show_progress=False,
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
# The shape recipes/sft-hf.yaml describes.
config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=128, intermediate_size=256,
                     num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                     max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
                     rope_theta=500000.0, bos_token_id=1, eos_token_id=0,
                     rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
torch.manual_seed(0)
model = LlamaForCausalLM(config)
model.save_pretrained(run / "hf-base", safe_serialization=True)
tokenizer.save(str(run / "hf-base" / "tokenizer.json"))
print(f"saved {run / 'hf-base'}: {sum(p.numel() for p in model.parameters())} parameters")
PY

echo "== 2. import"
rm -rf "$run/base"
"$kiln" import --from hf "$run/hf-base" --out "$run/base"

echo "== 3. chat data"
"$kiln" prepare --format chat --template llama3 --seq-len 256 --completion-field answer --val-fraction 0.05 \
  --tokenizer "$run/base/checkpoints/step_00000000/tokenizer.json" --input "$run/tasks.jsonl" --out "$run/data" --quiet

echo "== 4. fine-tune ($steps steps, tp = $tp)"
rm -rf "$run/checkpoints" "$run/metrics.jsonl"
if [[ $tp -eq 1 ]]; then
  "$kiln" train recipes/sft-hf.yaml --set "train.steps=$steps"
else
  [[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  mpirun --oversubscribe -np "$tp" "$kiln" train recipes/sft-hf.yaml --set "train.steps=$steps" --set "parallel.tp=$tp"
fi

echo "== 5. export"
"$kiln" export --checkpoint "$run" --format hf --out "$run/hf"
"$kiln" export --checkpoint "$run" --format gguf --dtype f16 --out "$run/model-f16.gguf"
"$kiln" export --checkpoint "$run" --format gguf --dtype q8_0 --out "$run/model-q8_0.gguf"
"$kiln" generate --checkpoint "$run" --temperature 0 --max-tokens 8 --stop '<|eot_id|>' \
  --prompt $'<|start_header_id|>user<|end_header_id|>\n\nWhat is 12 plus 7?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n'

if [[ $check -eq 1 ]]; then
  echo "== 6. check the exports against transformers and llama.cpp"
  python3 scripts/check_export.py --kiln "$kiln" --checkpoint "$run" --work "$run/check" \
    --prompt $'<|start_header_id|>user<|end_header_id|>\n\nWhat is 12 plus 7?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n'
fi

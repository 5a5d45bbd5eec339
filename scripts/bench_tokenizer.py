#!/usr/bin/env python3
"""Helpers for scripts/bench_tokenizer.sh.

  bench_tokenizer.py corpus OUT.jsonl [--mb 50]   write ~MB of mixed text, one document per line
  bench_tokenizer.py hf TOKENIZER.json DOCS.jsonl  encode with `tokenizers` on one thread; prints
                                                   the same JSON line as kiln_tokenizer_bench
"""
import json
import os
import random
import sys
import time

WORDS = ("time person year way day thing man world life hand part child eye woman place work week case point "
         "government company number group problem fact be have do say get make go know take see come think look "
         "want give use find tell ask seem feel try leave call good new first last long great little own other old "
         "right big high different small large next early young important few public bad same able to of in for "
         "on with at by from up about into over after the and a that I it not he as you this but his they her she "
         "or an will my one all would there their what so if about who get which go me when make can like no just "
         "him know take people into year your some could them see other than then now look only come its over "
         "think also back after use two how our work first well way even new want because any these give most us "
         "internationalization tokenization reproducibility hyperparameter checkpointing").split()
CODE_LINES = [
    "def {name}(self, {arg}, *args, **kwargs):", "    return {arg}.{name}({num}) + self.{arg}",
    "for (std::size_t i = 0; i < {arg}.size(); ++i) {{", "  {arg}[i] = std::max({arg}[i], {num});", "}}",
    "if ({arg} == nullptr) throw std::runtime_error(\"{name} failed\");", "import {name} as {arg}",
    "    # {name}: compute the {arg} of the batch ({num} items)", "const {name} = async ({arg}) => await fetch(`/api/{name}/${{{arg}}}`);",
    "\t\tself.{name}_{arg} = [{num}, {num}, {num}]", "SELECT {arg}, COUNT(*) FROM {name} WHERE id > {num} GROUP BY {arg};",
]
CJK = "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从"
JA = "これはテストですがそのためにはかなり長い文章が必要になりますので日本語の文字をたくさん並べています"


def prose(rng):
    sentences = []
    for _ in range(rng.randint(3, 10)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 20))]
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words)), rng.choice(["don't", "it's", "we're", "I'll", "they've"]))
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 100000)))
        sentences.append(" ".join(words).capitalize() + rng.choice([".", ".", ".", "!", "?"]))
    return " ".join(sentences)


def code(rng):
    lines = []
    for _ in range(rng.randint(5, 30)):
        lines.append(rng.choice(CODE_LINES).format(name=rng.choice(WORDS), arg=rng.choice(WORDS)[:6],
                                                   num=rng.randint(0, 9999)))
    return "\n".join(lines) + "\n"


def cjk(rng):
    if rng.random() < 0.5:
        return "".join(rng.choice(CJK) for _ in range(rng.randint(50, 400))) + "。"
    start = rng.randrange(len(JA))
    return (JA[start:] + JA[:start]) * rng.randint(1, 5)


def numbers(rng):
    rows = []
    for _ in range(rng.randint(5, 40)):
        rows.append(", ".join(f"{rng.uniform(-1000, 1000):.{rng.randint(0, 4)}f}" for _ in range(rng.randint(2, 8))))
    return "\n".join(rows)


def make_corpus(path, megabytes):
    rng = random.Random(7)
    target = megabytes * 1_000_000
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            kind = rng.random()
            parts = []
            for _ in range(rng.randint(2, 8)):
                kind = rng.random()
                parts.append(prose(rng) if kind < 0.55 else code(rng) if kind < 0.8 else cjk(rng) if kind < 0.92
                             else numbers(rng))
            text = "\n\n".join(parts)
            out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
            written += len(text.encode("utf-8"))


def bench_hf(tokenizer_path, docs_path):
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(tokenizer_path)
    with open(docs_path, encoding="utf-8") as f:
        documents = [json.loads(line)["text"] for line in f if line.strip()]
    size = sum(len(d.encode("utf-8")) for d in documents)
    start = time.perf_counter()
    tokens = id_sum = 0
    for document in documents:
        ids = tokenizer.encode(document).ids
        tokens += len(ids)
        id_sum += sum(ids)
    per_doc = time.perf_counter() - start
    start = time.perf_counter()
    tokenizer.encode_batch(documents)
    batch = time.perf_counter() - start
    print(json.dumps({"bytes": size, "seconds": per_doc, "mb_per_s": size / 1e6 / per_doc, "tokens": tokens,
                      "id_sum": id_sum, "batch_seconds": batch, "batch_mb_per_s": size / 1e6 / batch}))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "corpus":
        make_corpus(sys.argv[2], int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--mb" else 50)
    elif len(sys.argv) == 4 and sys.argv[1] == "hf":
        bench_hf(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)

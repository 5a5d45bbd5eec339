#!/usr/bin/env python3
"""Benchmark helper for scripts/bench_curate.sh: kiln curate vs datatrove on the same corpus.

  bench_curate.py generate OUT_DIR MEGABYTES FILES   web-like JSONL with planted answers
  bench_curate.py datatrove CORPUS_DIR WORK_DIR CORES  Gopher quality + repetition + MinHash
  bench_curate.py compare KILN_DIR DATATROVE_DIR DOCS  agreement on kept documents

The corpus mixes clean prose with documents built to fail a Gopher rule (too short,
symbol-heavy, repetitive) and with exact and near copies of earlier documents, so both
tools have real decisions to make.
"""
import glob
import gzip
import json
import os
import random
import sys
import time

STOP = ["the", "be", "to", "of", "and", "that", "have", "with", "a", "in", "is", "it", "for", "on", "as", "was"]


def vocabulary(rng, size=6000):
    syllables = ["ka", "lo", "mi", "ren", "tas", "vor", "bel", "qui", "dan", "sef", "mor", "tel", "pra", "gon", "lis",
                 "nar", "chu", "ves", "ol", "ti", "zar", "pen", "ro", "mal", "und", "er", "ing", "ed", "ly", "ous"]
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def sentence(rng, vocab):
    words = [rng.choice(STOP) if rng.random() < 0.35 else rng.choice(vocab) for _ in range(rng.randint(8, 20))]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ".", "?", "!"])


def prose(rng, vocab, words_target):
    lines, count = [], 0
    while count < words_target:
        line = " ".join(sentence(rng, vocab) for _ in range(rng.randint(1, 4)))
        count += line.count(" ") + 1
        lines.append(line)
    return "\n".join(lines)


def near_copy(rng, text, fraction):
    words = text.split(" ")
    for _ in range(max(1, int(len(words) * fraction))):
        i = rng.randrange(len(words))
        words[i] = words[i] + "s"
    return " ".join(words)


def make_document(rng, vocab, recent):
    kind = rng.random()
    if recent and kind < 0.05:
        return "exact_copy", rng.choice(recent)
    if recent and kind < 0.12:
        return "near_copy", near_copy(rng, rng.choice(recent), rng.choice([0.01, 0.03, 0.06]))
    if kind < 0.17:
        return "short", prose(rng, vocab, rng.randint(5, 40))
    if kind < 0.21:
        line = sentence(rng, vocab)
        return "repetitive", prose(rng, vocab, 60) + ("\n" + line) * rng.randint(8, 20)
    if kind < 0.24:
        return "symbols", prose(rng, vocab, 120) + " " + " ".join("#" + rng.choice(vocab) for _ in range(40))
    return "prose", prose(rng, vocab, rng.randint(80, 700))


def generate(out_dir, megabytes, files):
    rng = random.Random(1234)
    vocab = vocabulary(rng)
    os.makedirs(out_dir, exist_ok=True)
    target = megabytes * 1_000_000
    outs = [open(os.path.join(out_dir, f"part-{i:02d}.jsonl"), "w") for i in range(files)]
    written, doc_id, recent = 0, 0, []
    while written < target:
        kind, text = make_document(rng, vocab, recent)
        line = json.dumps({"id": f"doc-{doc_id}", "kind": kind, "text": text}) + "\n"
        # Contiguous blocks per file keep input order = id order for both tools.
        outs[min(files - 1, written * files // target)].write(line)
        written += len(line)
        doc_id += 1
        if kind == "prose":
            recent.append(text)
            if len(recent) > 2000:
                recent.pop(rng.randrange(len(recent)))
    for out in outs:
        out.close()
    print(f"generated {doc_id} documents, {written / 1e6:.0f} MB in {files} files")


def run_datatrove(corpus_dir, work, cores):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from datatrove.utils.hashing import HashConfig

    # sha1: datatrove 0.10's xxhash path passes str to xxhash, which recent xxhash rejects.
    config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8,
                           hash_config=HashConfig(precision=64, hash_fc="sha1"))
    files = len(glob.glob(os.path.join(corpus_dir, "*.jsonl")))
    logs = os.path.join(work, "logs")
    stages = [
        ("filter", files, [JsonlReader(corpus_dir, glob_pattern="*.jsonl"), GopherQualityFilter(),
                           GopherRepetitionFilter(), JsonlWriter(f"{work}/filtered", compression=None)]),
        ("signatures", files, [JsonlReader(f"{work}/filtered", glob_pattern="*.jsonl"),
                               MinhashDedupSignature(output_folder=f"{work}/signatures", config=config)]),
        ("buckets", config.num_buckets, [MinhashDedupBuckets(input_folder=f"{work}/signatures",
                                                             output_folder=f"{work}/buckets", config=config)]),
        ("cluster", 1, [MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids",
                                            config=config)]),
        ("dedup", files, [JsonlReader(f"{work}/filtered", glob_pattern="*.jsonl"),
                          MinhashDedupFilter(input_folder=f"{work}/remove_ids"),
                          JsonlWriter(f"{work}/kept", compression=None)]),
    ]
    start = time.time()
    for name, tasks, pipeline in stages:
        stage_start = time.time()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=cores, logging_dir=f"{logs}/{name}",
                              skip_completed=False).run()
        print(f"datatrove {name}: {time.time() - stage_start:.1f} s", file=sys.stderr)
    print(json.dumps({"seconds": time.time() - start}))


def kept_ids(pattern):
    ids = set()
    for path in glob.glob(pattern):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as f:
            for line in f:
                ids.add(json.loads(line)["id"])
    return ids


def compare(kiln_dir, datatrove_dir, docs):
    kiln = kept_ids(os.path.join(kiln_dir, "part-*.jsonl"))
    trove = kept_ids(os.path.join(datatrove_dir, "kept", "*.jsonl*"))
    both = len(kiln & trove)
    disagree = len(kiln ^ trove)
    print(json.dumps({"kiln_kept": len(kiln), "datatrove_kept": len(trove), "both_kept": both,
                      "agreement": 1 - disagree / docs, "jaccard_of_kept": both / max(1, len(kiln | trove))}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "generate":
        generate(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif command == "datatrove":
        run_datatrove(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif command == "compare":
        compare(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {command}")

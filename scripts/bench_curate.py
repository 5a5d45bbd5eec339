#!/usr/bin/env python3
"""Benchmark helper for scripts/bench_curate.sh: kiln curate vs datatrove on the same corpus.

  bench_curate.py generate OUT_DIR MEGABYTES FILES   web-like JSONL with planted answers
  bench_curate.py datatrove CORPUS_DIR WORK_DIR CORES  Gopher quality + repetition + MinHash
  bench_curate.py compare KILN_DIR DATATROVE_DIR DOCS  agreement on kept documents
  bench_curate.py agreement CORPUS KILN WORK_DIR CORES  per-rule agreement table (markdown)

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


# ---- per-rule agreement ---------------------------------------------------------------------
# Each rule runs alone in kiln (one stage, normalisation and dedup off) and as the same
# datatrove filter with the same (default, published) parameters; then the four in a chain.
RULES = ["gopher_quality", "gopher_repetition", "c4", "fineweb", "chain"]
KILN_STAGES = ["gopher_quality", "gopher_repetition", "c4", "fineweb"]


def datatrove_filters(rule):
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)
    make = {"gopher_quality": GopherQualityFilter, "gopher_repetition": GopherRepetitionFilter,
            "c4": C4QualityFilter, "fineweb": FineWebQualityFilter}
    return [make[name]() for name in (KILN_STAGES if rule == "chain" else [rule])]


def datatrove_verdicts(args):
    """(id, reason or "") for each record of one slice, every rule."""
    from datatrove.data import Document
    lines, = args
    filters = {rule: datatrove_filters(rule) for rule in RULES}
    out = []
    for line in lines:
        record = json.loads(line)
        verdicts = {}
        for rule, chain in filters.items():
            doc = Document(text=record["text"], id=record["id"])
            reason = ""
            for f in chain:
                result = f.filter(doc)
                if result is not True:
                    reason = f"{f.__class__.__name__}:{result[1] if isinstance(result, tuple) else 'dropped'}"
                    break
            verdicts[rule] = reason
        out.append((record["id"], verdicts))
    return out


def kiln_verdicts(corpus, kiln, work, rule, cores):
    import subprocess
    out = os.path.join(work, f"kiln-{rule}")
    stages = KILN_STAGES if rule == "chain" else [rule]
    recipe = os.path.join(work, f"{rule}.yaml")
    with open(recipe, "w") as f:
        f.write(f"input: {{paths: [{corpus}]}}\noutput: {{dir: {out}, keep_rejected: true}}\n"
                f"run: {{threads: {cores}, progress: false}}\nnormalize: {{enabled: false}}\n"
                "exact_dedup: {enabled: false}\nnear_dedup: {enabled: false}\npii: {enabled: false}\n")
        for stage in KILN_STAGES:
            f.write(f"{stage}: {{enabled: {'true' if stage in stages else 'false'}}}\n")
    start = time.time()
    subprocess.run([kiln, "curate", recipe, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    seconds = time.time() - start
    reasons = {}
    for path in glob.glob(os.path.join(out, "rejected", "part-*.jsonl")):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                reasons[record["id"]] = f"{record['stage']}:{record['reason']}"
    return reasons, seconds


def agreement(corpus, kiln, work, cores):
    from multiprocessing import Pool
    os.makedirs(work, exist_ok=True)
    with open(corpus) as f:
        lines = f.readlines()
    shapes = {}
    for line in lines:
        record = json.loads(line)
        shapes[record["id"]] = record["shape"]
    start = time.time()
    # datatrove's verdicts are kept beside the corpus (they depend on it alone), so re-running
    # after a kiln change costs seconds; delete the file to measure datatrove again.
    cache = os.path.join(work, "datatrove-verdicts.json")
    cached = os.path.exists(cache) and os.path.getmtime(cache) > os.path.getmtime(corpus)
    if cached:
        with open(cache) as f:
            trove = json.load(f)
    else:
        slices = [(lines[i::cores * 4],) for i in range(cores * 4)]
        with Pool(cores) as pool:
            trove = dict(item for part in pool.map(datatrove_verdicts, slices) for item in part)
        with open(cache, "w") as f:
            json.dump(trove, f)
    trove_seconds = time.time() - start
    rows, classes = [], {}
    kiln_seconds = 0.0
    for rule in RULES:
        kiln_reasons, seconds = kiln_verdicts(corpus, kiln, work, rule, cores)
        kiln_seconds += seconds
        docs = len(trove)
        kiln_drops = set(kiln_reasons)
        trove_drops = {doc_id for doc_id, verdicts in trove.items() if verdicts[rule]}
        disagree = kiln_drops ^ trove_drops
        rows.append((rule, docs, len(kiln_drops), len(trove_drops), len(kiln_drops & trove_drops),
                     100.0 * (1 - len(disagree) / docs)))
        counts = {}
        with open(os.path.join(work, f"disagreements-{rule}.jsonl"), "w") as f:
            for doc_id in sorted(disagree):
                key = (shapes[doc_id], kiln_reasons.get(doc_id, "kept"), trove[doc_id][rule] or "kept")
                counts[key] = counts.get(key, 0) + 1
                f.write(json.dumps({"id": doc_id, "shape": key[0], "kiln": key[1], "datatrove": key[2]}) + "\n")
        classes[rule] = counts
    print(f"corpus: {len(trove)} documents ({corpus}); kiln {kiln_seconds:.1f} s for the {len(RULES)} runs, "
          f"datatrove {'cached verdicts' if cached else f'{trove_seconds:.1f} s'}; {cores} cores")
    print()
    print("| rule | docs | kiln drops | datatrove drops | both drop | agreement |")
    print("|---|---:|---:|---:|---:|---:|")
    for rule, docs, kiln_drops, trove_drops, both, percent in rows:
        print(f"| {rule} | {docs} | {kiln_drops} | {trove_drops} | {both} | {percent:.2f}% |")
    print()
    for rule in RULES:
        if not classes[rule]:
            continue
        print(f"disagreements, {rule} (shape, kiln verdict, datatrove verdict: documents):")
        for (shape, kiln_reason, trove_reason), count in sorted(classes[rule].items(), key=lambda kv: -kv[1]):
            print(f"  {shape}, {kiln_reason}, {trove_reason}: {count}")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "generate":
        generate(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif command == "datatrove":
        run_datatrove(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif command == "agreement":
        agreement(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif command == "compare":
        compare(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {command}")

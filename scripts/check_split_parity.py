#!/usr/bin/env python3
"""Split parity: kiln's Split pre-tokenizer against the `tokenizers` library (not run in CI).

For every Split configuration of scripts/fixtures/make_split_fixtures.py (patterns x kinds x
behaviors x invert) it writes the split_base.json fixture with Sequence[Split(...), ByteLevel(
use_regex=false)] as its pre-tokenizer, encodes the fixed inputs plus --random seeded random
strings with `kiln tokenizer encode --jsonl --no-special`, and compares with `tokenizers`'
encode(text, add_special_tokens=False).ids. A configuration kiln refuses to load counts as
refused, one whose ids differ on any input as a mismatch.

Usage: scripts/check_split_parity.py --kiln build/kiln [--random 30] [--seed 1] [--verbose]
Exit status 1 when any configuration is refused or mismatches.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
import make_split_fixtures as grid  # noqa: E402

ALPHABET = list("aabx? \t\n\r.,'$^*\\") + ["é", "e\u0301", "日本", "😀", "\u00a0", "\u3000", "The", "'s", "42"]


def random_inputs(rng, count):
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 16))) for _ in range(count)]


def kiln_ids(kiln, tokenizer_path, texts):
    """Ids per text, or the error kiln gave when it refused the tokenizer."""
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    result = subprocess.run([kiln, "tokenizer", "encode", "--tokenizer", tokenizer_path, "--jsonl", "--no-special"],
                            input=lines.encode(), capture_output=True)
    if result.returncode != 0:
        return None, result.stderr.decode(errors="replace").strip()
    return [json.loads(line)["ids"] for line in result.stdout.decode().splitlines()], None


def describe(step):
    kind, pattern = next(iter(step["pattern"].items()))
    return f"{kind} {pattern!r} {step['behavior']} invert={step['invert']}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", required=True)
    parser.add_argument("--random", type=int, default=30, help="random inputs per configuration")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print every failing configuration")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    base = grid.base_tokenizer_json()
    refused, mismatched = [], []
    bad_patterns = set()
    configurations = list(grid.configurations())
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tokenizer.json")
        for step in configurations:
            text = grid.tokenizer_json_with(base, step)
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            reference = Tokenizer.from_str(text)
            texts = grid.INPUTS + random_inputs(rng, args.random)
            got, error = kiln_ids(args.kiln, path, texts)
            pattern_key = json.dumps(step["pattern"], ensure_ascii=False)
            if error is not None:
                refused.append((step, error))
                bad_patterns.add(pattern_key)
                continue
            for text, ids in zip(texts, got):
                expected = reference.encode(text, add_special_tokens=False).ids
                if ids != expected:
                    mismatched.append((step, text, expected, ids))
                    bad_patterns.add(pattern_key)
                    break
    for step, error in refused[: None if args.verbose else 5]:
        print(f"refused    {describe(step)}: {error.splitlines()[-1]}")
    for step, text, expected, ids in mismatched[: None if args.verbose else 10]:
        print(f"mismatch   {describe(step)} on {text!r}\n  tokenizers {expected}\n  kiln       {ids}")
    patterns = len(grid.REGEX_PATTERNS) + len(grid.STRING_PATTERNS)
    print(f"{len(configurations)} Split configurations ({patterns} patterns x {len(grid.BEHAVIORS)} behaviors x "
          f"invert), {len(grid.INPUTS) + args.random} inputs each: {len(mismatched)} mismatched, "
          f"{len(refused)} refused; patterns with any failure: {len(bad_patterns)} of {patterns}")
    sys.exit(1 if refused or mismatched else 0)


if __name__ == "__main__":
    main()

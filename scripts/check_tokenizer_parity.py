#!/usr/bin/env python3
"""Fuzz parity: kiln's tokenizer CLI against the `tokenizers` library (not run in CI).

For every tokenizer (the committed fixtures, any --tokenizer given, and one freshly trained by
`kiln tokenizer train` in each style) it generates random strings mixing scripts, emoji,
combining marks, whitespace runs, digits, punctuation, contractions and the tokenizer's own
added tokens, and compares `kiln tokenizer encode` with Tokenizer.from_file(p).encode(text).ids
(post-processor applied, the default of both) and with --no-special / add_special_tokens=False.
Random byte strings (mostly invalid UTF-8) go through kiln as raw files; `tokenizers` gets
bytes.decode("utf-8", errors="replace"), which is what kiln does with invalid input.

The Split pre-tokenizer's grid (every pattern kind, behavior and invert, empty matches included)
has its own run: scripts/check_split_parity.py.

Usage: scripts/check_tokenizer_parity.py --kiln build/kiln [--count 3000] [--bytes 100] [--seed 1]
Exit status 1 when any id differs.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "tokenizer")

RANGES = [  # (weight, first, last)
    (30, 0x20, 0x7E), (4, 0x00, 0x1F), (4, 0xA0, 0xFF), (3, 0x100, 0x24F), (3, 0x300, 0x36F),
    (3, 0x370, 0x3FF), (3, 0x400, 0x4FF), (2, 0x590, 0x6FF), (2, 0x900, 0x97F), (1, 0xE00, 0xE7F),
    (4, 0x3040, 0x30FF), (6, 0x4E00, 0x9FFF), (3, 0xAC00, 0xD7A3), (2, 0x2000, 0x206F), (1, 0x2070, 0x2BFF),
    (4, 0x1F300, 0x1FAFF), (1, 0xFE00, 0xFFFD), (1, 0x10000, 0x10FFFF), (1, 0x1D400, 0x1D7FF), (1, 0xFF00, 0xFFEF),
]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u180e", "\u2000",
          "\u2009", "\u200a", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff"]
PIECES = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "'ſ", "n't",
          "don't", "I'M", "the", " the", "The", "hello", "world", "ément", "naïve", "東京", "日本語", "😀", "👍🏽",
          "👨‍👩‍👧", "🇫🇷", "e\u0301", "123", "1234567", "٣٤٥", "१२३", "3.14", "-", "--", "...", "()", "{}", "=>",
          "//", "#", "<", ">", "|", "<|", "|>", "_", "__init__", "0x1F", "İ", "ǅ", "ﬁ", "ß", "K", "\u0345"]


def random_char(rng):
    total = sum(w for w, _, _ in RANGES)
    pick = rng.uniform(0, total)
    for weight, first, last in RANGES:
        if pick < weight:
            while True:
                cp = rng.randint(first, last)
                if not 0xD800 <= cp <= 0xDFFF:
                    return chr(cp)
        pick -= weight
    return "a"


def random_text(rng, specials):
    parts = []
    for _ in range(rng.randint(1, 25)):
        kind = rng.random()
        if kind < 0.3:
            parts.append("".join(random_char(rng) for _ in range(rng.randint(1, 8))))
        elif kind < 0.5:
            parts.append(rng.choice(PIECES))
        elif kind < 0.7:
            parts.append(rng.choice(SPACES) * rng.randint(1, 4 if rng.random() < 0.9 else 60))
        elif kind < 0.8:
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12))))
        elif kind < 0.88 and specials:
            parts.append(rng.choice(specials))
        elif kind < 0.95:
            parts.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ") for _ in range(rng.randint(1, 12))))
        else:
            parts.append("".join(rng.choice("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") for _ in range(rng.randint(1, 6))))
    return "".join(parts)


def random_bytes(rng):
    choice = rng.random()
    if choice < 0.4:
        return bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 64)))
    text = random_text(rng, []).encode("utf-8")
    data = bytearray(text)
    for _ in range(rng.randint(1, 4)):  # corrupt a valid string in a few places
        if data:
            pos = rng.randrange(len(data))
            data[pos:pos + 1] = bytes([rng.choice([0x80, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF])])
    if rng.random() < 0.3 and len(data) > 2:
        data = data[:-1]  # truncate inside a sequence, maybe
    return bytes(data)


def kiln_encode_jsonl(kiln, path, texts, no_special):
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    command = [kiln, "tokenizer", "encode", "--tokenizer", path, "--jsonl"] + (["--no-special"] if no_special else [])
    result = subprocess.run(command, input=lines.encode(), capture_output=True)
    if result.returncode != 0:
        sys.exit(f"kiln failed on {path}: {result.stderr.decode(errors='replace')}")
    return [json.loads(line)["ids"] for line in result.stdout.decode().splitlines()]


def kiln_encode_bytes(kiln, path, data, tmp):
    input_path = os.path.join(tmp, "input.bin")
    with open(input_path, "wb") as out:
        out.write(data)
    result = subprocess.run([kiln, "tokenizer", "encode", "--tokenizer", path, "--input", input_path],
                            capture_output=True)
    if result.returncode != 0:
        sys.exit(f"kiln failed on {path}: {result.stderr.decode(errors='replace')}")
    return [int(x) for x in result.stdout.split()]


def check_tokenizer(kiln, path, args, rng, tmp):
    reference = Tokenizer.from_file(path)
    specials = [t.content for t in reference.get_added_tokens_decoder().values()]
    texts = [random_text(rng, specials) for _ in range(args.count)]
    mismatches = []
    for no_special in (False, True):
        got = kiln_encode_jsonl(kiln, path, texts, no_special)
        for text, ids in zip(texts, got):
            expected = reference.encode(text, add_special_tokens=not no_special).ids
            if ids != expected:
                mismatches.append((text, expected, ids))
        for text in texts[:200]:  # round trip on valid text
            ids = reference.encode(text, add_special_tokens=False).ids
            if reference.decode(ids, skip_special_tokens=False) != text:
                break
    for _ in range(args.bytes):
        data = random_bytes(rng)
        expected = reference.encode(data.decode("utf-8", errors="replace")).ids
        ids = kiln_encode_bytes(kiln, path, data, tmp)
        if ids != expected:
            mismatches.append((data, expected, ids))
    checked = 2 * len(texts) + args.bytes
    print(f"{os.path.basename(path)}: {checked} encodings checked, {len(mismatches)} mismatches")
    for text, expected, ids in mismatches[:5]:
        print(f"  input {text!r}\n    tokenizers {expected}\n    kiln       {ids}")
    return checked, len(mismatches)


def train_with_kiln(kiln, rng, tmp, style):
    corpus = os.path.join(tmp, "corpus.jsonl")
    if not os.path.exists(corpus):
        with open(corpus, "w", encoding="utf-8") as out:
            for _ in range(3000):
                out.write(json.dumps({"text": random_text(rng, [])}) + "\n")
    path = os.path.join(tmp, f"kiln_trained_{style}.json")
    specials = ["<|endoftext|>", "<|begin_of_text|>"] if style == "llama3" else ["<|endoftext|>"]
    subprocess.run([kiln, "tokenizer", "train", "--input", corpus, "--vocab-size", "3000", "--style", style,
                    "--out", path, "--special", *specials], check=True)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", required=True)
    parser.add_argument("--tokenizer", action="append", default=[], help="extra tokenizer.json files")
    parser.add_argument("--count", type=int, default=3000, help="random strings per tokenizer")
    parser.add_argument("--bytes", type=int, default=100, help="random byte strings per tokenizer")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    total_checked = total_mismatches = 0
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(FIXTURES, f) for f in ("gpt2.json", "gpt2_prefix.json", "llama3.json")]
        paths += args.tokenizer
        paths += [train_with_kiln(args.kiln, rng, tmp, style) for style in ("gpt2", "llama3")]
        for path in paths:
            checked, mismatches = check_tokenizer(args.kiln, path, args, rng, tmp)
            total_checked += checked
            total_mismatches += mismatches
    print(f"total: {total_checked} encodings over {len(paths)} tokenizers, {total_mismatches} mismatches")
    sys.exit(1 if total_mismatches else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the hand-made seeds of the safetensors_header and gguf_reader corpora.

kiln's own exports are seeds too (see README.md), but a real export carries the whole
vocabulary and every weight: tens of KB that mutations mostly spend on tensor bytes. These few
hundred bytes each hold one of every structure the readers walk instead: every safetensors dtype
and __metadata__, every GGUF metadata type (arrays included), general.alignment, and F32, F16,
BF16 and Q8_0 tensors. Usage: make_binary_seeds.py CORPUS_DIR (writes CORPUS_DIR/<target>/...).
"""
import json
import struct
import sys
from pathlib import Path

SAFETENSORS_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "I32": 4, "U32": 4,
                           "I64": 8, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "F16": 2, "BF16": 2,
                           "F32": 4, "F64": 8}


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape)]; data bytes are a counting pattern."""
    header, offset, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        count = 1
        for extent in shape:
            count *= extent
        size = count * SAFETENSORS_DTYPE_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        data += bytes((offset + i) % 251 for i in range(size))
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the reference writer pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text + data


def gguf_string(text):
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
                11: "<q", 12: "<d"}


def gguf_value(kind, value):
    if kind == 8:
        return gguf_string(value)
    if kind == 9:
        element_kind, elements = value
        body = b"".join(gguf_value(element_kind, element) for element in elements)
        return struct.pack("<IQ", element_kind, len(elements)) + body
    return struct.pack(GGUF_SCALARS[kind], value)


def gguf(metadata, tensors, alignment=32):
    """metadata: [(key, kind, value)]; tensors: [(name, ne, ggml_type, data bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, kind, value in metadata:
        out += gguf_string(key) + struct.pack("<I", kind) + gguf_value(kind, value)
    offset, data = 0, b""
    for name, ne, ggml_type, payload in tensors:
        out += gguf_string(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        out += struct.pack("<IQ", ggml_type, offset)
        padded = payload + b"\0" * (-len(payload) % alignment)
        data += padded
        offset += len(padded)
    out += b"\0" * (-len(out) % alignment)
    return out + data


def q8_0_block(scale_bits, first):
    return struct.pack("<H", scale_bits) + bytes((first + i) % 256 for i in range(32))


def main():
    corpus = Path(sys.argv[1])
    st = corpus / "safetensors_header"
    st.mkdir(parents=True, exist_ok=True)
    (st / "weights_f32_f16_bf16.safetensors").write_bytes(safetensors(
        [("model.embed_tokens.weight", "F32", [4, 2]), ("lm_head.weight", "F16", [2, 4]),
         ("model.norm.weight", "BF16", [2])], {"format": "pt"}))
    (st / "every_dtype.safetensors").write_bytes(safetensors(
        [(f"t_{dtype.lower()}", dtype, [3]) for dtype in SAFETENSORS_DTYPE_BYTES]))
    (st / "scalar_and_empty.safetensors").write_bytes(safetensors(
        [("scalar", "F64", []), ("empty", "F16", [0, 3])]))

    gg = corpus / "gguf_reader"
    gg.mkdir(parents=True, exist_ok=True)
    every_type = [("general.architecture", 8, "llama"), ("t.u8", 0, 7), ("t.i8", 1, -7),
                  ("t.u16", 2, 700), ("t.i16", 3, -700), ("t.u32", 4, 70000), ("t.i32", 5, -70000),
                  ("t.f32", 6, 0.5), ("t.bool", 7, True), ("t.u64", 10, 1 << 40), ("t.i64", 11, -(1 << 40)),
                  ("t.f64", 12, 0.25), ("t.strings", 9, (8, ["a", "bc"])), ("t.ints", 9, (5, [1, -2, 3]))]
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    f16 = struct.pack("<4H", 0x3C00, 0xC000, 0x3800, 0x7C00)
    bf16 = struct.pack("<2H", 0x3F80, 0xFF80)
    (gg / "every_type.gguf").write_bytes(gguf(every_type, [
        ("token_embd.weight", [2, 2], 0, f32), ("output.weight", [4], 1, f16),
        ("output_norm.weight", [2], 30, bf16), ("blk.0.attn_q.weight", [32, 2], 8,
                                                q8_0_block(0x3C00, 0) + q8_0_block(0x2E66, 100))]))
    (gg / "alignment_64.gguf").write_bytes(gguf(
        [("general.alignment", 4, 64)], [("a", [3], 0, struct.pack("<3f", 1, 2, 3)), ("b", [1], 0, f32[:4])],
        alignment=64))


if __name__ == "__main__":
    main()

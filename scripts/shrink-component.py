#!/usr/bin/env python3
"""Shrinks a Spin component (a WebAssembly component from `cargo build --target
wasm32-wasip2`): runs binaryen's wasm-opt over each core module inside it and drops the
component's own debugging custom sections (its item names and producers).

    shrink-component.py WASM_OPT IN.wasm OUT.wasm

Why a splice: wasm-opt reads core modules only, not components, and cargo has no
post-link hook. A component's binary refers to its core modules by index, never by byte
offset, so replacing a core-module section's bytes (and its length) leaves every other
section valid. wasmtime (the Spin-compatible test host) validates the result on load,
and the whole conformance suite runs against it.

What it saves, hello.wasm for example: 804 KB -> ~500 KB. The function-name section
(180 KB) goes: a panic still logs its message and source location, a trap's backtrace
shows function indexes instead of names. wasm-opt -Os takes ~18% off the code; -Oz
with --low-memory-unused (rustc's wasm keeps its stack and data above 1 MiB, so the
first KiB is never addressed and wasm-opt may fold constant offsets into loads and
stores) ~1.4% more than -Os (dynamodb 536,187 -> 528,975 bytes of core module,
2026-12-04).
"""

import os
import subprocess
import sys
import tempfile

# The features rustc enables for wasm32-wasip2 by default (Rust >= 1.82). wasm-opt
# cannot read them from the module once the `target_features` section is stripped, and
# emits nothing outside them.
FEATURES = [
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-multivalue",
    "--enable-reference-types",
]


def leb(data, i):
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def uleb(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def optimise_core(wasm_opt, module):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.wasm"), os.path.join(tmp, "out.wasm")
        with open(src, "wb") as f:
            f.write(module)
        subprocess.run(
            [wasm_opt, "-Oz", "--low-memory-unused", "--strip-debug", "--strip-producers", *FEATURES, src, "-o", dst],
            check=True,
        )
        with open(dst, "rb") as f:
            return f.read()


def shrink(wasm_opt, data):
    # Magic, then version 0x0d and layer 0x01: a component, not a core module.
    if data[:4] != b"\0asm" or data[6:8] != b"\x01\x00":
        raise SystemExit("shrink-component: not a WebAssembly component")
    out = bytearray(data[:8])
    i = 8
    while i < len(data):
        section = data[i]
        size, start = leb(data, i + 1)
        body = data[start : start + size]
        i = start + size
        if section == 0:  # custom: component-name, producers
            continue
        if section == 1:  # a core module
            body = optimise_core(wasm_opt, body)
        out.append(section)
        out += uleb(len(body))
        out += body
    return bytes(out)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    wasm_opt, src, dst = sys.argv[1:]
    with open(src, "rb") as f:
        data = f.read()
    shrunk = shrink(wasm_opt, data)
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(shrunk)
    os.replace(tmp, dst)


if __name__ == "__main__":
    main()

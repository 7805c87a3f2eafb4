"""Frames per second for each reader parser (pure Python, one core).

    python bench/bench_parsers.py [--frames N]

Each framer is fed a stream of valid frames with 10 % of frames corrupted, in 64-byte
chunks (about what a USB serial adapter hands over per read), and must find every valid one.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from readers.frames import LineCardFramer, Rdm6300Framer, WiegandFramer  # noqa: E402
from readers.frames.base import Framer  # noqa: E402
from readers.frames.osdp import decode_card_read  # noqa: E402
from readers.frames.rdm6300 import build_rdm6300  # noqa: E402
from readers.frames.wiegand import encode_wiegand  # noqa: E402

CHUNK = 64


def stream(
    n: int, make: Callable[[random.Random], bytes], corrupt: Callable[[bytes], bytes]
) -> tuple[bytes, int]:
    rng = random.Random(1)
    frames, good = [], 0
    for i in range(n):
        frame = make(rng)
        if i % 10 == 9:
            frame = corrupt(frame)
        else:
            good += 1
        frames.append(frame)
    return b"".join(frames), good


def run(name: str, framer: Framer, data: bytes, good: int, total: int) -> None:
    start = time.perf_counter()
    found = 0
    for i in range(0, len(data), CHUNK):
        found += len(framer.feed(data[i : i + CHUNK]))
    elapsed = time.perf_counter() - start
    assert found == good, (name, found, good)
    print(f"{name:<12} {total / elapsed:>12,.0f} frames/s   {len(data) / elapsed / 1e6:6.2f} MB/s")


def flip_last_digit(frame: bytes, at: int) -> bytes:
    b = bytearray(frame)
    b[at] = ord("0") if b[at] != ord("0") else ord("1")
    return bytes(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200_000)
    n = parser.parse_args().frames
    print(f"{n:,} frames each, {CHUNK}-byte chunks, Python {sys.version.split()[0]}")

    data, good = stream(
        n,
        lambda r: build_rdm6300(r.randbytes(5).hex()),
        lambda f: flip_last_digit(f, 12),  # bad checksum
    )
    run("rdm6300", Rdm6300Framer(), data, good, n)

    data, good = stream(
        n, lambda r: r.randbytes(7).hex().upper().encode() + b"\r\n", lambda f: b"ZZ" + f
    )
    run("line", LineCardFramer(), data, good, n)

    for bits in (26, 34):
        digits = 7 if bits == 26 else 9

        def make(r: random.Random, b: int = bits, d: int = digits) -> bytes:
            fc, number = r.randrange(1 << (b - 18)), r.randrange(1 << 16)
            return format(encode_wiegand(fc, number, b), f"0{d}X").encode() + b"\r\n"

        def corrupt(f: bytes, d: int = digits) -> bytes:
            return format(int(f[:-2], 16) ^ 1, f"0{d}X").encode() + b"\r\n"  # parity

        data, good = stream(n, make, corrupt)
        run(f"wiegand{bits}", WiegandFramer(bits), data, good, n)

    events = [
        {"format": 1, "length": 26, "data": (encode_wiegand(1, i % 65536, 26) << 6).to_bytes(4)}
        for i in range(n)
    ]
    start = time.perf_counter()
    for event in events:
        decode_card_read(event)
    elapsed = time.perf_counter() - start
    print(f"{'osdp card':<12} {n / elapsed:>12,.0f} reads/s")


if __name__ == "__main__":
    main()

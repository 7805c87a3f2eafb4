"""Hypothesis: arbitrary bytes never crash a parser and never forge a card id.

For every format: the one-frame ``parse_*`` raises nothing but ``FrameError``; a framer
fed any bytes, chopped anyhow, raises nothing and yields only card ids whose correct
frame is really in the input; valid frames mixed into garbage are all recovered.
"""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from readers.errors import FrameError
from readers.frames import (
    LineCardFramer,
    Rdm6300Framer,
    WiegandFramer,
    parse_line,
    parse_rdm6300,
    parse_wiegand,
)
from readers.frames.base import MAX_LINE
from readers.frames.osdp import decode_card_read, decode_keys
from readers.frames.rdm6300 import build_rdm6300
from readers.frames.wiegand import encode_wiegand

fuzz = settings(max_examples=200, deadline=None)

# Bytes weighted towards the ones the parsers care about, so hypothesis finds edge cases.
interesting = st.sampled_from(b"\x02\x03\n\r01aAfF9 \x00\xff")
noisy_bytes = st.lists(st.one_of(interesting, st.integers(0, 255)), max_size=400).map(bytes)


def chopped(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def feed_all(framer: object, chunks: list[bytes]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))  # type: ignore[attr-defined]
    return out


def only_frame_error(fn: object, *args: object) -> None:
    with contextlib.suppress(FrameError):  # any other exception fails the test
        fn(*args)  # type: ignore[operator]


@fuzz
@given(noisy_bytes)
def test_single_frame_parsers_raise_only_frame_error(data: bytes) -> None:
    only_frame_error(parse_rdm6300, data)
    only_frame_error(parse_line, data)
    only_frame_error(parse_wiegand, data, 26)
    only_frame_error(parse_wiegand, data, 34)


@fuzz
@given(noisy_bytes, st.lists(st.integers(0, 1000), max_size=8))
def test_rdm6300_never_forges(data: bytes, cuts: list[int]) -> None:
    framer = Rdm6300Framer()
    cards = feed_all(framer, chopped(data, cuts))
    assert cards == Rdm6300Framer().feed(data)  # chunking does not matter
    for technology, card_id in cards:
        assert technology == "em4100"
        assert build_rdm6300(card_id) in data.upper()


@fuzz
@given(
    st.lists(st.tuples(noisy_bytes, st.binary(min_size=5, max_size=5)), max_size=6),
    st.lists(st.integers(0, 5000), max_size=8),
)
def test_rdm6300_recovers_every_frame_from_garbage(
    parts: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    stream, expected = b"", []
    for garbage, raw in parts:
        stream += garbage + build_rdm6300(raw.hex())
        expected.append(raw.hex().upper())
    got = [card for _, card in feed_all(Rdm6300Framer(), chopped(stream, cuts))]
    it = iter(got)
    assert all(card in it for card in expected)  # in order, extras only if framed in garbage


def _lines(data: bytes) -> set[bytes]:
    # Complete lines only (the tail has no newline yet), at most MAX_LINE long.
    return {
        line.rstrip(b"\r").strip().upper()
        for line in data.split(b"\n")[:-1]
        if len(line) <= MAX_LINE
    }


@fuzz
@given(noisy_bytes, st.lists(st.integers(0, 1000), max_size=8))
def test_line_never_forges(data: bytes, cuts: list[int]) -> None:
    cards = feed_all(LineCardFramer(), chopped(data, cuts))
    assert cards == LineCardFramer().feed(data)
    lines = _lines(data)
    for _, card_id in cards:
        assert card_id.encode() in lines


@fuzz
@given(
    st.sampled_from([26, 34]),
    st.one_of(noisy_bytes, st.lists(st.sampled_from(b"01\n"), max_size=200).map(bytes)),
    st.lists(st.integers(0, 1000), max_size=8),
)
def test_wiegand_never_forges(bits: int, data: bytes, cuts: list[int]) -> None:
    cards = feed_all(WiegandFramer(bits), chopped(data, cuts))
    assert cards == WiegandFramer(bits).feed(data)
    lines = _lines(data)
    for technology, card_id in cards:
        assert technology == "wiegand"
        fc, number = (int(x) for x in card_id.split(":"))
        value = encode_wiegand(fc, number, bits)
        forms = {
            format(value, f"0{bits}b").encode(),
            format(value, f"0{(bits + 3) // 4}X").encode(),
        }
        assert forms & lines


@fuzz
@given(st.sampled_from([26, 34]), st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1))
def test_wiegand_valid_frames_decode(bits: int, fc: int, number: int) -> None:
    fc %= 1 << (bits - 18)
    line = format(encode_wiegand(fc, number, bits), f"0{bits}b").encode() + b"\n"
    assert WiegandFramer(bits).feed(b"junk\n" + line) == [("wiegand", f"{fc}:{number}")]


# --- OSDP card reads and keys (libosdp event dicts) ----------------------------------------

osdp_card_events = st.fixed_dictionaries(
    {
        "format": st.one_of(st.integers(-2, 4), st.none(), st.text(max_size=2)),
        "length": st.one_of(st.integers(-8, 1100), st.none(), st.sampled_from([26, 34])),
        "data": st.one_of(st.binary(max_size=140), st.none(), st.text(max_size=4)),
    }
)


@fuzz
@given(osdp_card_events)
def test_osdp_card_read_raises_only_frame_error_and_never_forges(event: dict) -> None:
    try:
        technology, card_id = decode_card_read(event)
    except FrameError:
        return
    data, length = event["data"], event["length"]
    assert isinstance(data, bytes) and len(data) == (length + 7) // 8
    value = int.from_bytes(data, "big") >> (len(data) * 8 - length)
    if technology == "wiegand":
        fc, number = (int(x) for x in card_id.split(":"))
        assert encode_wiegand(fc, number, length) == value  # parity was right
    else:
        assert technology == "osdp" and int(card_id, 16) == value


@fuzz
@given(st.one_of(st.binary(max_size=20), st.none(), st.text(max_size=3)))
def test_osdp_keys_raise_only_frame_error(data: object) -> None:
    try:
        keys = decode_keys(data)
    except FrameError:
        return
    assert keys and set(keys) <= set("0123456789*#")
    assert isinstance(data, bytes) and len(keys) == len(data)

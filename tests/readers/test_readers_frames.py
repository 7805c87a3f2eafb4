"""The serial framers as pure functions: valid frames in, cards out; everything else counted."""

from __future__ import annotations

import pytest

from readers.errors import FrameError
from readers.frames import (
    LineCardFramer,
    Rdm6300Framer,
    WiegandFramer,
    parse_line,
    parse_rdm6300,
    parse_wiegand,
)
from readers.frames.rdm6300 import build_rdm6300
from readers.frames.wiegand import decode_wiegand, encode_wiegand

# --- RDM6300 -----------------------------------------------------------------------------


def test_rdm6300_frame_from_datasheet() -> None:
    # 0x62 ^ 0xE3 ^ 0x08 ^ 0x6C ^ 0xED = 0x08
    assert parse_rdm6300(b"\x0262E3086CED08\x03") == ("em4100", "62E3086CED")


def test_rdm6300_lowercase_hex_is_normalised() -> None:
    assert parse_rdm6300(b"\x0262e3086ced08\x03") == ("em4100", "62E3086CED")


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x0262E3086CED09\x03", "checksum"),
        (b"\x0262E3086CED08\x04", "framing"),
        (b"\x0262E3086CZD08\x03", "not_hex"),
        (b"\x0262E3086CED08", "length"),
    ],
)
def test_rdm6300_rejects(frame: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_rdm6300(frame)
    assert info.value.reason == reason


def test_rdm6300_framer_resynchronises_and_counts() -> None:
    good1, good2 = build_rdm6300("0A1B2C3D4E"), build_rdm6300("0102030405")
    bad = bytearray(build_rdm6300("1111111111"))
    bad[12] ^= 0x01  # checksum digit off by one
    stream = b"noise" + good1 + bytes(bad) + b"\x02ABC" + good2
    framer = Rdm6300Framer()
    # byte by byte: framing must not depend on how the port chops the stream
    cards = [c for b in stream for c in framer.feed(bytes([b]))]
    assert cards == [("em4100", "0A1B2C3D4E"), ("em4100", "0102030405")]
    assert framer.rejected["checksum"] == 1
    assert framer.rejected["truncated"] == 1
    assert framer.rejected["garbage"] == len(b"noise")
    assert framer.accepted == 2


def test_rdm6300_frame_hidden_after_a_false_start_is_found() -> None:
    # A stray STX 5 bytes before a real frame: the 14-byte window fails, the real one follows.
    framer = Rdm6300Framer()
    assert framer.feed(b"\x02\x41\x41\x41\x41" + build_rdm6300("62E3086CED")) == [
        ("em4100", "62E3086CED")
    ]


# --- line --------------------------------------------------------------------------------


def test_line_framer_cards_and_rejections() -> None:
    framer = LineCardFramer()
    cards = framer.feed(b"04a1b2c3\r\n\nnot-a-card\n0123\nABCDEF0\n" + b"F" * 200 + b"\n")
    cards += framer.feed(b"04a1b2c3d4e5f6\n")
    # 16 digits are a FeliCa IDm, not an ISO 14443A UID: the one card-id rule refuses it
    # here rather than passing on an id the console could not enrol (issue 13)
    cards += framer.feed(b"0102030405060708\n")
    assert cards == [("iso14443a", "04A1B2C3"), ("iso14443a", "04A1B2C3D4E5F6")]
    assert framer.rejected == {"not_hex": 1, "length": 2, "odd_length": 1, "too_long": 1}


def test_line_endless_line_is_capped_and_dropped() -> None:
    framer = LineCardFramer()
    for _ in range(1000):
        assert framer.feed(b"A" * 1000) == []
    assert len(framer._buf) <= framer.max_line
    assert framer.feed(b"\n01020304\n") == [("iso14443a", "01020304")]
    assert framer.rejected["too_long"] == 1


def test_line_split_across_chunks() -> None:
    framer = LineCardFramer("felica")
    assert framer.feed(b"0102030405") == []
    assert framer.feed(b"060708\n") == [("felica", "0102030405060708")]


def test_parse_line_technology() -> None:
    assert parse_line(b" deadbeef01 ", "em4100") == ("em4100", "DEADBEEF01")
    with pytest.raises(FrameError, match="em4100 id has 10"):
        parse_line(b"deadbeef", "em4100")


# --- Wiegand -----------------------------------------------------------------------------


def test_wiegand26_known_frame() -> None:
    # FC 1, card 1: even parity 1 | 00000001 | 0000000000000001 | odd parity 0
    assert encode_wiegand(1, 1, 26) == 0b10000000100000000000000010
    assert parse_wiegand(b"10000000100000000000000010", 26) == ("wiegand", "1:1")
    assert parse_wiegand(b"2020002", 26) == ("wiegand", "1:1")


@pytest.mark.parametrize(("bits", "fc", "number"), [(26, 123, 45678), (34, 4321, 65535)])
def test_wiegand_round_trip(bits: int, fc: int, number: int) -> None:
    value = encode_wiegand(fc, number, bits)
    assert decode_wiegand(value, bits) == f"{fc}:{number}"
    as_bits = format(value, f"0{bits}b").encode()
    as_hex = format(value, "07X" if bits == 26 else "09X").encode()
    assert parse_wiegand(as_bits, bits) == ("wiegand", f"{fc}:{number}")
    assert parse_wiegand(as_hex, bits) == ("wiegand", f"{fc}:{number}")


@pytest.mark.parametrize("flip", [0, 5, 12, 13, 20, 25])
def test_wiegand26_any_single_bit_error_is_a_parity_error(flip: int) -> None:
    value = encode_wiegand(123, 45678, 26) ^ (1 << flip)
    with pytest.raises(FrameError) as info:
        decode_wiegand(value, 26)
    assert info.value.reason == "parity"


def test_wiegand_framer_counts_and_rejects_wrong_length() -> None:
    framer = WiegandFramer(34)
    good = format(encode_wiegand(7, 8, 34), "09X").encode()
    bad = format(encode_wiegand(7, 8, 34) ^ 2, "09X").encode()
    w26 = format(encode_wiegand(7, 8, 26), "026b").encode()
    assert framer.feed(good + b"\r\n" + bad + b"\n" + w26 + b"\n") == [("wiegand", "7:8")]
    assert framer.rejected == {"parity": 1, "format": 1}


def test_wiegand_unsupported_width() -> None:
    with pytest.raises(ValueError):
        WiegandFramer(37)


# --- OSDP card data ------------------------------------------------------------------------


def test_osdp_wiegand_26_left_aligned() -> None:
    from readers.frames.osdp import decode_card_read

    data = (encode_wiegand(123, 45678, 26) << 6).to_bytes(4, "big")
    assert decode_card_read({"format": 1, "length": 26, "data": data}) == ("wiegand", "123:45678")
    broken = (encode_wiegand(123, 45678, 26) ^ 1) << 6
    with pytest.raises(FrameError, match="parity"):
        decode_card_read({"format": 1, "length": 26, "data": broken.to_bytes(4, "big")})


def test_osdp_raw_and_other_wiegand_lengths_are_hex() -> None:
    from readers.frames.osdp import decode_card_read

    assert decode_card_read({"format": 0, "length": 32, "data": b"\x01\x02\x03\xff"}) == (
        "osdp",
        "010203FF",
    )
    # 37-bit Wiegand: not decoded (no standard layout we trust), passed on as raw bits
    assert decode_card_read({"format": 1, "length": 37, "data": b"\xff" * 5}) == (
        "osdp",
        "1FFFFFFFFF",
    )
    with pytest.raises(FrameError, match="length"):
        decode_card_read({"format": 0, "length": 33, "data": b"\x01\x02\x03\x04"})


def test_osdp_keys() -> None:
    from readers.frames.osdp import decode_keys

    assert decode_keys(b"0123456789\x7f\r") == "0123456789*#"
    with pytest.raises(FrameError, match="key"):
        decode_keys(b"12A")

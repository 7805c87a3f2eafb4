"""The one card-id rule (domain.cards): every id a reader or the CLI can produce is an id
the enrolment form accepts, and an id that fits no technology is refused at once."""

from __future__ import annotations

import pytest

from domain.cards import CardIdError, infer_technology, normalise_card_id
from readers.errors import FrameError
from readers.frames.line import parse_line
from readers.frames.osdp import decode_card_read
from readers.frames.rdm6300 import build_rdm6300, parse_rdm6300
from readers.frames.wiegand import decode_wiegand, encode_wiegand


@pytest.mark.parametrize(
    ("raw", "technology"),
    [
        ("012E4CD1A2B3C4D5", "felica"),  # FeliCa IDm, 8 bytes
        ("04A1B2C3D4E5F6", "iso14443a"),  # 7-byte UID: not FeliCa (issue 13)
        ("04a1b2c3", "iso14443a"),  # 4-byte UID
        ("04A1B2C3D4E5F6A7B8C9", "iso14443a"),  # 10-byte UID
        ("0A1B2C3D4E", "em4100"),
        ("123:45678", "wiegand"),
        ("04:A1:B2:C3", "iso14443a"),  # separators as some readers print them
    ],
)
def test_technology_is_recognised_from_the_id(raw: str, technology: str) -> None:
    assert infer_technology(raw) == technology
    assert normalise_card_id(technology, raw)[0] == technology


@pytest.mark.parametrize("raw", ["0102", "0102030405060708090A0B", "XYZ", "", "12345678901"])
def test_ids_fitting_no_technology_are_refused(raw: str) -> None:
    with pytest.raises(CardIdError):
        infer_technology(raw)


def test_named_technology_must_fit() -> None:
    with pytest.raises(CardIdError) as wrong_len:
        normalise_card_id("felica", "04A1B2C3D4E5F6")
    assert wrong_len.value.code == "length" and "16" in str(wrong_len.value)
    with pytest.raises(CardIdError) as unknown:
        normalise_card_id("foo", "04A1B2C3D4E5F6")
    assert unknown.value.code == "unknown_technology"
    with pytest.raises(CardIdError):
        normalise_card_id("wiegand", "70000:1")  # a facility code wider than 16 bits
    assert normalise_card_id("iso14443a", " 04 a1 b2 c3 ") == ("iso14443a", "04A1B2C3")


def _enrollable(card: tuple[str, str]) -> None:
    technology, card_id = card
    assert normalise_card_id(technology, card_id) == (technology, card_id)


def test_what_readers_produce_is_enrollable() -> None:
    _enrollable(parse_rdm6300(build_rdm6300("62E3086CED")))
    for fc, number, bits in ((123, 45678, 26), (65535, 65535, 34), (0, 0, 26)):
        _enrollable(("wiegand", decode_wiegand(encode_wiegand(fc, number, bits), bits)))
    for length in (1, 7, 26, 37, 64, 128, 256):  # OSDP raw reads of any width that fits
        data = b"\xff" * ((length + 7) // 8)
        _enrollable(decode_card_read({"format": 0, "length": length, "data": data}))
    for tech, line in (("felica", b"0102030405060708"), ("iso14443a", b"04a1b2c3d4e5f6")):
        _enrollable(parse_line(line, tech))


def test_readers_refuse_what_could_not_be_enrolled() -> None:
    with pytest.raises(FrameError):  # a 16-digit line from an ISO 14443A reader
        parse_line(b"0102030405060708", "iso14443a")
    with pytest.raises(FrameError, match="length"):  # 257 bits: wider than the card column
        decode_card_read({"format": 0, "length": 257, "data": b"\xff" * 33})

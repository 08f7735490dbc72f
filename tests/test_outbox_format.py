"""The outbox payload format: rows sealed by the release before typed roles
and controls still decode, and new rows are written in that same shape, so
an upgrade (or a step back) never strands a pending message."""

from __future__ import annotations

import pytest

from domain.ids import CaseCode, ChannelName
from domain.messages import Button, ChannelAddress, Media, Menu, Outbound, OutboundKind
from domain.vocabulary import Control, Role
from store.outbox import decode_outbound, encode_outbound

MATRIX = ChannelAddress(ChannelName("matrix"), "@c:x")
WEB = ChannelAddress(ChannelName("web"), "s")
TELEGRAM = ChannelAddress(ChannelName("telegram"), "1")

# Payloads written by `encode_outbound` on main before this change (role in
# ``extra``, control as a bare string), captured byte for byte.
BEFORE = [
    (MATRIX, b'{"text": "Case K7F-3MQ: hallo", "kind": "relay", "case": "K7F-3MQ", '
             b'"control": "case-open", "extra": {"role": "confidant"}, '
             b'"menu": [[["Claim", "tok1"]]]}',
     Outbound(to=MATRIX, text="Case K7F-3MQ: hallo", kind=OutboundKind.RELAY,
              menu=Menu(rows=((Button("Claim", "tok1"),),)), case=CaseCode("K7F-3MQ"),
              control=Control.CASE_OPEN, role=Role.CONFIDANT)),
    (WEB, b'{"text": "Alles is gewist.", "kind": "notice", "case": null, "control": "forget", '
          b'"extra": {"role": "employee"}, "media": {"kind": "document", "filename": "a.pdf", '
          b'"mime_type": "application/pdf", "caption": "cap", "data": "JVBERg=="}}',
     Outbound(to=WEB, text="Alles is gewist.", control=Control.FORGET, role=Role.EMPLOYEE,
              media=Media("document", b"%PDF", "a.pdf", "application/pdf", "cap"))),
    (TELEGRAM, b'{"text": "hi", "kind": "notice", "case": null, "control": null, "extra": {}}',
     Outbound(to=TELEGRAM, text="hi")),
]


@pytest.mark.parametrize(("to", "payload", "expected"), BEFORE)
def test_rows_of_the_previous_release_decode_into_the_typed_fields(
        to: ChannelAddress, payload: bytes, expected: Outbound) -> None:
    decoded = decode_outbound(to, payload)
    assert decoded == expected
    assert decoded.role is expected.role and decoded.control is expected.control


@pytest.mark.parametrize(("to", "payload", "expected"), BEFORE)
def test_new_rows_keep_the_previous_shape(to: ChannelAddress, payload: bytes,
                                          expected: Outbound) -> None:
    """Byte for byte: the release before reads what this one writes."""
    assert encode_outbound(expected) == payload


@pytest.mark.parametrize("role", [*Role, None])
@pytest.mark.parametrize("control", [*Control, None])
def test_every_role_and_control_round_trips(role: Role | None, control: Control | None) -> None:
    out = Outbound(to=MATRIX, text="x", role=role, control=control, case=CaseCode("ABC-DEF"))
    assert decode_outbound(MATRIX, encode_outbound(out)) == out


def test_an_unknown_value_is_delivered_as_a_plain_message() -> None:
    """A value a later release might add must not wedge the row: it is sent
    without the housekeeping it asks for."""
    payload = (b'{"text": "hi", "kind": "notice", "case": null, "control": "case-freeze", '
               b'"extra": {"role": "auditor"}}')
    assert decode_outbound(TELEGRAM, payload) == Outbound(to=TELEGRAM, text="hi")


def test_the_cases_a_message_is_about_ride_under_extra() -> None:
    """Only tagged rows get the new key, under ``extra``, which the release
    before reads past: it delivers the notice as it did before tagging."""
    plain = Outbound(to=WEB, text="New case K7F-3MQ", role=Role.CONFIDANT,
                     menu=Menu(rows=((Button("Claim K7F-3MQ", "tok1"),),)))
    tagged = Outbound(to=WEB, text=plain.text, role=Role.CONFIDANT, menu=plain.menu,
                      about=(CaseCode("K7F-3MQ"), CaseCode("Z9Q-2PL")))
    assert encode_outbound(tagged) == encode_outbound(plain).replace(
        b'"extra": {"role": "confidant"}',
        b'"extra": {"role": "confidant", "about": ["K7F-3MQ", "Z9Q-2PL"]}')
    assert decode_outbound(WEB, encode_outbound(tagged)) == tagged
    assert decode_outbound(WEB, encode_outbound(plain)).about == ()


@pytest.mark.parametrize("about", [b'"K7F-3MQ"', b"[1, null]", b"{}"])
def test_a_malformed_about_is_read_as_none(about: bytes) -> None:
    payload = b'{"text": "hi", "kind": "notice", "case": null, "control": null, ' \
              b'"extra": {"about": ' + about + b"}}"
    assert decode_outbound(TELEGRAM, payload) == Outbound(to=TELEGRAM, text="hi")

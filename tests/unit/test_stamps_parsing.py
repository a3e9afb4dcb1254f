"""Parsing of what clients send: Idempotency-Key, limit and the opaque cursor."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from punchclock.api.stamps import (
    decode_cursor,
    dumps,
    encode_cursor,
    parse_idempotency_key,
    parse_limit,
    rfc3339,
    to_json,
)
from punchclock.errors import InvalidRequest
from punchclock.store import Stamp

visible = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=255)


@given(visible)
def test_any_visible_ascii_key_is_accepted_bare_or_quoted(key: str) -> None:
    """Keys of 1-255 visible ASCII characters pass, as a bare token or a Structured Field string."""
    assert parse_idempotency_key([key]) == key
    if not (key.startswith('"') and key.endswith('"')):
        assert parse_idempotency_key([f'"{key}"']) == key


@pytest.mark.parametrize("raw", [[""], ['""'], ["x" * 256], ["é"], ["a b"], ["a", "b"], ["abc\xa0"], ["\x1fabc"]])
def test_malformed_keys_are_refused(raw: list[str]) -> None:
    """Empty, too long, non-visible-ASCII and repeated keys are a 400 naming the header."""
    with pytest.raises(InvalidRequest) as caught:
        parse_idempotency_key(raw)
    assert caught.value.parameter == "Idempotency-Key"


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_cursor_round_trips(stamp_id: int) -> None:
    """A cursor decodes to the id it was made from."""
    assert decode_cursor(encode_cursor(stamp_id)) == stamp_id


@given(st.text(max_size=40))
def test_garbage_cursor_is_a_400_not_a_crash(cursor: str) -> None:
    """Any string either decodes to an id or raises InvalidRequest naming `before`."""
    try:
        assert decode_cursor(cursor) >= 0
    except InvalidRequest as exc:
        assert exc.parameter == "before"


@pytest.mark.parametrize(("raw", "expected"), [(None, 100), ("1", 1), ("1000", 1000)])
def test_limit_bounds(raw: str | None, expected: int) -> None:
    """limit defaults to 100 and accepts 1 to 1000."""
    assert parse_limit(raw) == expected


def test_stamps_are_rfc3339_utc_with_microseconds() -> None:
    """Receipts carry Z-suffixed UTC with six fractional digits, even on a whole second."""
    assert rfc3339(datetime(2026, 11, 27, 10, 0, tzinfo=UTC)) == "2026-11-27T10:00:00.000000Z"


@given(st.datetimes(timezones=st.just(UTC)))
def test_receipts_render_every_moment_with_six_fraction_digits(moment: datetime) -> None:
    """Whatever the microseconds, a receipt's recorded_at is Z-suffixed UTC with exactly six digits."""
    rendered = json.loads(dumps(to_json(Stamp(1, moment))))["recorded_at"]
    assert rendered == rfc3339(moment)


@given(st.text(max_size=6000) | st.text("0123456789", min_size=4000, max_size=6000))
def test_limit_parsing_answers_any_text_with_a_limit_or_a_400(raw: str) -> None:
    """Whatever text arrives as limit, even thousands of digits, the result is a limit or InvalidRequest."""
    try:
        assert 1 <= parse_limit(raw) <= 1000
    except InvalidRequest as error:
        assert error.parameter == "limit"


huge_ids = st.text("0123456789", min_size=20, max_size=6000)


@given(st.text(max_size=6000) | huge_ids.map(lambda digits: base64.urlsafe_b64encode(f"v1:{digits}".encode()).decode()))
def test_cursor_parsing_answers_any_text_with_an_id_or_a_400(raw: str) -> None:
    """Whatever text arrives as before, the result is an id or InvalidRequest, never another error."""
    try:
        assert decode_cursor(raw) >= 0
    except InvalidRequest as error:
        assert error.parameter == "before"


@pytest.mark.parametrize("cursor", ["djE6MTA=", "djE6M\nTA", "djE6MTA.", "djE6MTA\u00e9"])
def test_only_base64url_as_issued_is_accepted(cursor: str) -> None:
    """Padding and characters a lenient base64 decoder would skip are refused, as the OpenAPI pattern says."""
    with pytest.raises(InvalidRequest):
        decode_cursor(cursor)

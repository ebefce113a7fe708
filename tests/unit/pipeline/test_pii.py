"""PII scrubbing: each kind replaced by a keyed deterministic hash, in bodies and attributes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.logs import LogBatch, LogEntry
from clearsight.pipeline.log_settings import PiiSettings
from clearsight.pipeline.pii import PiiScrubber, load_or_create_secret, luhn_valid

KEY = b"k" * 32
ALL = PiiSettings(enabled=True, ipv4=True, ipv6=True, custom=(("token", "tok_[A-Za-z0-9]{8}"),))


def test_each_kind_is_replaced_by_its_hash() -> None:
    s = PiiScrubber(ALL, KEY)
    out = s.scrub_text("u=bob@example.com ssn 123-45-6789 cc 4111 1111 1111 1111 ip 10.1.2.3 "
                       "v6 2001:db8::1 key tok_abcd1234 at 12:30:45")
    assert "bob@" not in out and "123-45-6789" not in out and "4111" not in out
    assert "10.1.2.3" not in out and "2001:db8" not in out and "tok_abcd1234" not in out
    assert out.startswith("u=<email:") and " at 12:30:45" in out  # a time is not an IPv6 address
    for kind in ("email", "ssn", "card", "ipv4", "ipv6", "token"):
        assert f"<{kind}:" in out
    assert s.replacements == 6


def test_equal_values_correlate_and_the_key_matters() -> None:
    a = PiiScrubber(ALL, KEY)
    t1 = a.scrub_text("from Bob@Example.com")
    t2 = a.scrub_text("to bob@example.com")
    assert t1.split()[1] == t2.split()[1]  # email hashes ignore case
    assert a.scrub_text("4111-1111-1111-1111") == a.scrub_text("4111111111111111")  # separators ignored
    assert a.scrub_text("x@y.org") != a.scrub_text("z@y.org")
    other = PiiScrubber(ALL, b"o" * 32)
    assert other.scrub_text("to bob@example.com") != t2


def test_invalid_values_are_kept() -> None:
    s = PiiScrubber(ALL, KEY)
    for text in ("order 4111 1111 1111 1112", "ssn 000-12-3456 666-12-3456 900-12-3456 123-00-4567",
                 "id4111111111111111", "v 999.1.1.1", "a:b:c", "n 1234567890123"):
        assert s.scrub_text(text) == text
    assert s.replacements == 0


def test_card_found_next_to_other_numbers_and_an_email() -> None:
    s = PiiScrubber(ALL, KEY)
    out = s.scrub_text("12 4111-1111-1111-1111 1@x.com and 2024-01-02 5500 0000 0000 0004")
    assert "4111" not in out and "5500" not in out and "1@x.com" not in out
    assert out.startswith("12 <card:") and "2024-01-02 <card:" in out


def test_kinds_can_be_turned_off() -> None:
    s = PiiScrubber(PiiSettings(enabled=True, email=False, ssn=True, card=False), KEY)
    text = "bob@example.com 4111111111111111 10.0.0.1"
    assert s.scrub_text(text + " 123-45-6789") == text + " " + s.token("ssn", "123-45-6789")


def test_batch_body_and_attributes() -> None:
    batch = LogBatch.from_entries([
        LogEntry((("app", "a"),), 1, "login bob@example.com", attributes=(("user", "bob@example.com"), ("n", "1"))),
        LogEntry((("app", "a"),), 2, "no pii here"),
        LogEntry((("app", "b"),), 3, "multi\nline 123-45-6789"),  # holds the join separator
    ])
    out = PiiScrubber(ALL, KEY).scrub_batch(batch)
    out.check()
    tok = PiiScrubber(ALL, KEY).token("email", "bob@example.com")
    assert out.body == [f"login {tok}", "no pii here", f"multi\nline {PiiScrubber(ALL, KEY).token('ssn', '123-45-6789')}"]
    assert out.attributes(0) == [("user", tok), ("n", "1")]
    assert batch.body[0] == "login bob@example.com"  # the input batch is not changed
    keep_attrs = PiiScrubber(PiiSettings(enabled=True, attributes=False), KEY).scrub_batch(batch)
    assert keep_attrs.attributes(0) == [("user", "bob@example.com"), ("n", "1")]


def test_batch_without_matches_is_returned_as_is() -> None:
    batch = LogBatch.from_entries([LogEntry((("app", "a"),), 1, "plain line")])
    assert PiiScrubber(ALL, KEY).scrub_batch(batch) is batch


def test_secret_generated_once_with_mode_0600(tmp_path: Path) -> None:
    k1 = load_or_create_secret("", tmp_path)
    assert len(k1) == 64
    assert stat.S_IMODE(os.stat(tmp_path / "logs_pii.key").st_mode) == 0o600
    assert load_or_create_secret("", tmp_path) == k1
    assert load_or_create_secret("configured-secret!", tmp_path) == b"configured-secret!"
    with pytest.raises(ValueError, match="at least 16 bytes"):
        load_or_create_secret("short", tmp_path)
    (tmp_path / "logs_pii.key").write_bytes(b"short")
    with pytest.raises(ValueError, match="shorter than 32"):
        load_or_create_secret("", tmp_path)


# --- property tests ---------------------------------------------------------------------------

def _luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        if luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError("unreachable")


cards = st.tuples(st.sampled_from(["4", "51", "37", "6011"]), st.integers(13, 19), st.data()).map(
    lambda t: t)
emails = st.from_regex(r"[a-z0-9._%+\-]{1,12}@[a-z0-9\-]{1,10}(\.[a-z0-9\-]{1,8}){0,2}\.[a-z]{2,6}", fullmatch=True)
ssns = st.from_regex(r"(00[1-9]|[1-578][0-9]{2})-(0[1-9]|[1-9][0-9])-(000[1-9]|[1-9][0-9]{3})", fullmatch=True)
filler = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
separators = st.sampled_from([" ", ", ", "; ", "\t", " | ", "\n", " (", ") ", " \"", "\" "])


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["4", "51", "37", "6011"]))
    length = draw(st.integers(13, 19))
    body = prefix + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=length - len(prefix) - 1,
                                          max_size=length - len(prefix) - 1)))
    digits = _luhn_complete(body)
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4)) if sep else digits


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(parent=FUZZ)
@given(st.lists(st.tuples(filler, st.one_of(emails, ssns, card_numbers()), separators), min_size=1, max_size=5))
def test_never_leaks_a_standalone_secret(parts: list[tuple[str, str, str]]) -> None:
    # filler SEP secret SEP ...: every secret stands alone (separators around it).
    text = "".join(f"{f}{sep}{secret}{sep}" for f, secret, sep in parts)
    s = PiiScrubber(PiiSettings(enabled=True), KEY)
    out = s.scrub_text(text)
    many = s.scrub_many([text, text])
    assert many == [out, out]
    for _, secret, _ in parts:
        if "@" in secret:
            assert secret not in out
        elif len(_digits(secret)) >= 13:  # a card: no digit run of it survives
            assert secret not in out and _digits(secret) not in _digits(out.replace(s.token("card", secret), ""))
        else:
            assert secret not in out


@settings(parent=FUZZ)
@given(st.lists(st.text(max_size=60), max_size=6))
def test_never_crashes_and_one_scan_equals_line_by_line(texts: list[str]) -> None:
    s = PiiScrubber(ALL, KEY)
    assert s.scrub_many(texts) == [s.scrub_text(t) for t in texts]


def test_the_configured_key_is_never_shown_by_the_status_api() -> None:
    from clearsight.api.prometheus_status import config_document, config_flags
    from clearsight.config import load_config

    cfg = load_config(None, env={"CLEARSIGHT_LOGS_PII_SECRET": "very-secret-hmac-key"})
    assert cfg.logs.pii_secret == "very-secret-hmac-key"
    assert config_document(cfg)["logs"]["pii_secret"] == "<secret>"
    assert "very-secret-hmac-key" not in str(config_flags(cfg))

"""The fast address check agrees with email-validator on every address it
accepts, and leaves everything unusual to it (hypothesis: generated from
the grammar of plain addresses and their near misses)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.deliver.addresses import normalized, plain

ATEXT = "abcXYZ019_!#$%&'*+-/=?^`{|}~"
LABEL = st.text("abcdefghijklmnopqrstuvwxyzABCZ0129-", min_size=1, max_size=70)
LOCAL = st.lists(st.text(ATEXT + ".", min_size=0, max_size=30), min_size=1, max_size=3).map(
    ".".join
)
DOMAIN = st.lists(
    st.one_of(LABEL, st.sampled_from(["test", "local", "xn--bcher-kva", "ab--cd"])),
    min_size=1,
    max_size=4,
).map(".".join)


def authority(raw: str) -> str | None:
    try:
        return str(validate_email(raw, check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


@settings(max_examples=400, deadline=None)
@given(LOCAL, DOMAIN)
def test_what_the_fast_path_accepts_email_validator_accepts_alike(local: str, domain: str) -> None:
    raw = f"{local}@{domain}"
    fast = plain(raw)
    if fast is not None:
        assert fast == authority(raw)
    assert (normalized(raw) if authority(raw) else None) == authority(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ada.Lovelace+digest@Example.ORG", "Ada.Lovelace+digest@example.org"),
        ("jörg@example.org", "jörg@example.org"),  # not plain: email-validator decides
        ("user@münchen.example", "user@münchen.example"),
    ],
)
def test_plain_and_international_addresses_are_normalized(raw: str, expected: str) -> None:
    assert normalized(raw) == expected


@pytest.mark.parametrize("raw", ["a..b@x.org", "a@x-.org", "a@x.o1", "x@localhost.test", "@x.org"])
def test_invalid_addresses_are_refused(raw: str) -> None:
    assert plain(raw) is None
    with pytest.raises(EmailNotValidError):
        normalized(raw)

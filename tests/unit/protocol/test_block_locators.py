"""Block locators, permission signatures and the rendezvous probe order."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from tessera.protocol import blocks as B

KEY = B.derive_key("cluster secret")
MD5 = hashlib.md5(b"hello").hexdigest()


def test_parse_and_format_round_trip() -> None:
    text = f"{MD5}+5+A{'ab' * 32}@6a1b2c3d+Kzzzzz+Xfoo@bar_1"
    loc = B.Locator.parse(text)
    assert (loc.md5, loc.size, loc.signature, loc.expiry) == (MD5, 5, "ab" * 32, 0x6A1B2C3D)
    assert loc.hints == ("Kzzzzz", "Xfoo@bar_1")
    assert str(loc) == text
    assert loc.stripped() == f"{MD5}+5"
    assert str(loc.unsigned()) == f"{MD5}+5+Kzzzzz+Xfoo@bar_1"
    assert str(B.Locator.parse(f"{MD5}+5")) == f"{MD5}+5"


@pytest.mark.parametrize(
    "text",
    [
        MD5,  # no size
        f"{MD5}+Kzz+5",  # hint before the size
        f"{MD5}+5+5",  # two sizes
        f"{MD5}+5+kzz",  # lower-case hint
        f"{MD5}+5+K*",  # bad character
        f"{MD5.upper()}+5",  # upper-case hash
        f"{MD5}+5+A{'ab' * 20}@6a1b2c3d",  # a 40-hex (SHA-1) signature
        f"{MD5}+5+A{'ab' * 32}@6a1b",  # short expiry
        f"{MD5}+5+A{'ab' * 32}@6a1b2c3d+A{'ab' * 32}@6a1b2c3d",  # two signatures
        f"{MD5}+{B.MAX_BLOCK_SIZE + 1}",
        "",
    ],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        B.Locator.parse(text)


def test_signature_checks() -> None:
    now = 1_700_000_000
    loc = B.sign(KEY, MD5, 5, "alice", now + 60)
    assert B.check(KEY, B.Locator.parse(str(loc)), "alice", now) == "ok"
    assert B.check(KEY, loc, "bob", now) == "invalid"  # bound to the account
    assert B.check(B.derive_key("other"), loc, "alice", now) == "invalid"
    assert B.check(KEY, loc, "alice", now + 60) == "expired"  # at the expiry: expired
    assert B.check(KEY, loc.unsigned(), "alice", now) == "unsigned"
    bigger = B.Locator(MD5, 6, loc.signature, loc.expiry)  # the size is signed
    assert B.check(KEY, bigger, "alice", now) == "invalid"
    later = B.Locator(MD5, 5, loc.signature, now + 3600)  # so is the expiry
    assert B.check(KEY, later, "alice", now) == "invalid"
    assert loc.expired(now + 60) and not loc.expired(now + 59)


def test_derived_key_differs_from_the_secret() -> None:
    assert B.derive_key("s") != b"s" and len(B.derive_key("s")) == 32
    assert B.derive_key("s") == B.derive_key(b"s")


def test_probe_order_is_keeps_rendezvous_on_one_server() -> None:
    services = [(f"disk{i}", "local") for i in range(5)]
    order = B.probe_order(MD5, services)
    expected = sorted(
        (s for s, _ in services),
        key=lambda s: hashlib.md5((MD5 + s).encode()).hexdigest(),
        reverse=True,
    )
    assert order == expected
    assert B.probe_order(MD5, list(reversed(services))) == order  # input order irrelevant


def test_probe_order_spreads_over_servers_first() -> None:
    services = [(f"a{i}", "A") for i in range(4)] + [("b0", "B"), ("c0", "C")]
    for n in range(200):
        order = B.probe_order(hashlib.md5(str(n).encode()).hexdigest(), services)
        assert sorted(order) == sorted(s for s, _ in services)
        assert {s[0] for s in order[:3]} == {"a", "b", "c"}


def test_probe_order_is_balanced_and_moves_little() -> None:
    services = [(f"disk{i}", "local") for i in range(4)]
    hashes = [hashlib.md5(str(n).encode()).hexdigest() for n in range(4000)]
    first = Counter(B.probe_order(h, services)[0] for h in hashes)
    assert set(first) == {s for s, _ in services}
    assert all(800 <= c <= 1200 for c in first.values()), first
    # Adding a service only moves blocks onto it.
    grown = [*services, ("disk4", "local")]
    for h in hashes:
        old, new = B.probe_order(h, services)[0], B.probe_order(h, grown)[0]
        assert new in (old, "disk4")

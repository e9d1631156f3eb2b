"""peek_whole: a small stream comes back whole; a longer one loses no byte."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tessera.common.streams import from_iterable, peek_whole, read_all


async def _chunks(*chunks: bytes, error: BaseException | None = None) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c
    if error is not None:
        raise error


@pytest.mark.parametrize(
    "chunks",
    [(), (b"",), (b"abc",), (b"ab", b"", b"cd"), (b"x" * 10,), (b"x" * 4, b"y" * 6)],
)
async def test_a_stream_within_the_limit_comes_back_whole(chunks: tuple[bytes, ...]) -> None:
    content, rest = await peek_whole(_chunks(*chunks), 10)
    assert content == b"".join(chunks) and type(content) is bytes
    assert await read_all(rest) == b""


@pytest.mark.parametrize(
    "chunks",
    [(b"x" * 11,), (b"x" * 10, b"y"), (b"a", b"b" * 12, b"c" * 5), (b"a" * 6, b"", b"b" * 6)],
)
async def test_a_longer_stream_is_handed_back_intact(chunks: tuple[bytes, ...]) -> None:
    content, rest = await peek_whole(from_iterable([*chunks, b"tail"]), 10)
    assert content is None
    assert await read_all(rest) == b"".join(chunks) + b"tail"


async def test_errors_of_the_source_propagate() -> None:
    with pytest.raises(ConnectionResetError):
        await peek_whole(_chunks(b"ab", error=ConnectionResetError()), 10)
    content, rest = await peek_whole(_chunks(b"x" * 20, error=ConnectionResetError()), 10)
    assert content is None
    with pytest.raises(ConnectionResetError):
        await read_all(rest)


async def test_a_zero_limit_passes_everything_but_an_empty_stream() -> None:
    assert (await peek_whole(_chunks(), 0))[0] == b""
    content, rest = await peek_whole(_chunks(b"a", b"b"), 0)
    assert content is None and await read_all(rest) == b"ab"

"""The cache of parsed manifests on the metadata read path."""

from __future__ import annotations

import threading

from tessera.meta.sql.rows import _ManifestCache, load_manifest
from tessera.model.manifest import FragmentRef, Manifest, Segment


def _text(n: int, tag: str = "a") -> str:
    segments = tuple(
        Segment(
            8 << 20, "plain", f"{tag}{i:063x}", (FragmentRef(0, f"{i:064x}", 8 << 20, "d0", i),)
        )
        for i in range(n)
    )
    return Manifest(segments).to_json()


def test_a_cached_manifest_is_the_parsed_one_shared() -> None:
    cache = _ManifestCache(budget=1 << 20)
    text = _text(32)
    first = cache.load(text)
    assert first == Manifest.from_json(text)
    assert cache.load(str(text.encode().decode())) is first  # an equal text from another row


def test_small_and_oversized_texts_are_parsed_every_time() -> None:
    cache = _ManifestCache(budget=64 << 10, min_size=1024)
    small = _text(1)
    assert len(small) < 1024
    assert cache.load(small) == cache.load(small)
    assert cache.load(small) is not cache.load(small)
    big = _text(200)
    assert len(big) > (64 << 10) // 4
    assert cache.load(big) is not cache.load(big)


def test_the_budget_bounds_the_texts_kept_oldest_out_first() -> None:
    one = len(_text(32, "x"))
    cache = _ManifestCache(budget=4 * one + 10)  # room for four
    texts = [_text(32, f"{t}") for t in "bcdef"]
    parsed = [cache.load(t) for t in texts[:4]]
    assert all(cache.load(t) is p for t, p in zip(texts[:4], parsed, strict=True))
    assert cache.load(texts[0]) is parsed[0]  # now the most recently used
    cache.load(texts[4])  # evicts texts[1], the least recently used
    assert cache._used <= 4 * one + 10
    assert cache.load(texts[0]) is parsed[0]
    assert cache.load(texts[2]) is parsed[2]
    assert cache.load(texts[1]) is not parsed[1]


def test_concurrent_readers_get_the_right_manifest() -> None:
    cache = _ManifestCache(budget=4 * len(_text(16, "0")) + 10)
    texts = [_text(16, f"{t}") for t in "01234567"]
    want = [Manifest.from_json(t) for t in texts]
    wrong: list[int] = []

    def reader(offset: int) -> None:
        for i in range(400):
            j = (i + offset) % len(texts)
            if cache.load(texts[j]) != want[j]:
                wrong.append(j)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert cache._used <= 4 * len(texts[0]) + 10


def test_none_and_empty_text_are_the_empty_manifest() -> None:
    assert load_manifest(None) == Manifest()
    assert load_manifest("") == Manifest()

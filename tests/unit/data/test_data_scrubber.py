"""Scrubber: finds exactly the corrupt blocks, keeps to its rate, survives failing volumes."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tessera.data.scrubber import MAX_CONSECUTIVE_ERRORS, Scrubber, ScrubStats, TokenBucket
from tessera.data.volume import LocalVolume

MakeVolume = Callable[..., LocalVolume]


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def block_path(vol: LocalVolume, name: str) -> Path:
    return vol.root / "blocks" / name[:3] / name


def damage(vol: LocalVolume, name: str, how: str) -> None:
    path = block_path(vol, name)
    raw = bytearray(path.read_bytes())
    if how == "flip":
        raw[len(raw) // 3] ^= 1
    else:
        del raw[len(raw) // 2 :]
    path.write_bytes(raw)


async def fill(vol: LocalVolume, n: int, rng: random.Random) -> dict[str, int]:
    sizes = {}
    for _ in range(n):
        name = f"{rng.getrandbits(64):016x}"
        size = rng.randint(1, 150_000)
        await vol.put(name, rng.randbytes(size))
        sizes[name] = size
    return sizes


async def test_finds_exactly_the_corrupt_blocks(make_volume: MakeVolume) -> None:
    rng = random.Random(7)
    vols = {vid: make_volume(vid) for vid in ("v0", "v1", "v2")}
    sizes = {vid: await fill(vol, 25, rng) for vid, vol in vols.items()}
    bad = {
        ("v0", sorted(sizes["v0"])[3]),
        ("v0", sorted(sizes["v0"])[17]),
        ("v2", sorted(sizes["v2"])[0]),
        ("v2", sorted(sizes["v2"])[-1]),
    }
    for i, (vid, name) in enumerate(sorted(bad)):
        damage(vols[vid], name, "flip" if i % 2 else "truncate")
    reported: list[tuple[str, str]] = []

    async def on_corrupt(vid: str, name: str) -> None:
        reported.append((vid, name))

    scrubber = Scrubber(vols, rate=float("inf"), on_corrupt=on_corrupt)
    stats = await scrubber.scrub_once()
    assert set(stats.corrupt) == set(reported) == bad and len(reported) == len(bad)
    assert stats.blocks_checked == 75 and stats.errors == 0 and stats.missing == 0
    truncated = {b for i, b in enumerate(sorted(bad)) if i % 2 == 0}
    assert stats.bytes_checked == sum(  # a truncated block's size is unknown (bad footer)
        s for vid in sizes for n, s in sizes[vid].items() if (vid, n) not in truncated
    )
    assert stats.passes == 1 and stats.started is not None and stats.finished is not None
    assert stats.position == {vid: max(sizes[vid]) for vid in vols}
    for vid, name in bad:
        assert await vols[vid].stat(name) is None
        assert name in await vols[vid].quarantined()
    # the next pass sees the quarantined blocks as gone: nothing more to report
    again = await scrubber.scrub_once()
    assert again.corrupt == [] and again.blocks_checked == 75 - len(bad)
    assert again.passes == 2 and len(reported) == len(bad)
    assert scrubber.stats == again


async def test_sync_callback_and_a_failing_callback(make_volume: MakeVolume) -> None:
    vol = make_volume()
    await vol.put("aaa1", b"x" * 1000)
    await vol.put("aaa2", b"y" * 1000)
    damage(vol, "aaa1", "flip")
    damage(vol, "aaa2", "flip")
    seen: list[str] = []

    def on_corrupt(vid: str, name: str) -> None:
        seen.append(name)
        raise RuntimeError("healer is down")

    stats = await Scrubber({"v0": vol}, on_corrupt=on_corrupt).scrub_once()
    assert seen == ["aaa1", "aaa2"]  # a failing callback does not stop the pass
    assert sorted(n for _, n in stats.corrupt) == ["aaa1", "aaa2"]


@pytest.mark.parametrize("nvols", [1, 3])
async def test_keeps_to_its_rate(make_volume: MakeVolume, nvols: int) -> None:
    """Checked bytes (all volumes together) never run ahead of ``burst + rate *
    elapsed``, in fake time."""
    rate, burst = 100_000.0, 150_000.0
    fake = FakeTime()
    rng = random.Random(3)
    vols = {f"v{i}": make_volume(f"v{i}") for i in range(nvols)}
    sizes: dict[str, int] = {}
    checked: list[tuple[float, int]] = []  # (fake time of the check, bytes so far)
    for vol in vols.values():
        sizes.update(await fill(vol, 30 // nvols, rng))
        real_verify = vol.verify

        async def recording_verify(
            name: str, real: Callable[[str], Awaitable[bool | None]] = real_verify
        ) -> bool | None:
            checked.append((fake.now, (checked[-1][1] if checked else 0) + sizes[name]))
            return await real(name)

        vol.verify = recording_verify  # type: ignore[method-assign]
    total = sum(sizes.values())
    start = fake.now
    scrubber = Scrubber(vols, rate=rate, burst=burst, clock=fake.clock, sleep=fake.sleep)
    stats = await scrubber.scrub_once()
    assert stats.bytes_checked == total and stats.blocks_checked == 30
    assert len(checked) == 30
    for when, so_far in checked:
        assert so_far <= burst + rate * (when - start) + 1  # 1 byte: float rounding
    assert stats.started == start and stats.finished == fake.now
    if nvols == 1:  # and it does not dawdle either: it waits only as long as needed
        assert fake.now - start == pytest.approx((total - burst) / rate, rel=1e-9)


async def test_token_bucket_arithmetic() -> None:
    fake = FakeTime()
    bucket = TokenBucket(10.0, 5.0, fake.clock, fake.sleep)
    await bucket.take(5)  # the burst
    assert fake.sleeps == []
    await bucket.take(20)  # bigger than the burst: goes through, then pays its debt
    assert fake.sleeps == [pytest.approx(2.0)]
    fake.now += 100  # a long idle time refills only up to the burst
    await bucket.take(5)
    await bucket.take(1)
    assert fake.sleeps == [pytest.approx(2.0), pytest.approx(0.1)]
    fake.now -= 50  # a clock stepping back gives nothing (not even the 0.1 s slept)
    await bucket.take(1)
    assert fake.sleeps[-1] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        TokenBucket(0, 1, fake.clock, fake.sleep)


class BrokenListing:
    """A volume whose listing fails after ``good`` names."""

    def __init__(self, inner: LocalVolume, good: int) -> None:
        self.inner, self.good = inner, good
        self.emptied = 0

    def __getattr__(self, attr: str) -> object:
        return getattr(self.inner, attr)

    async def blocks(self, prefix: str = "") -> AsyncIterator[str]:
        n = 0
        async for name in self.inner.blocks(prefix):
            if n == self.good:
                raise OSError(5, "Input/output error")
            n += 1
            yield name

    async def empty_trash(self, now: float | None = None) -> int:
        self.emptied += 1
        return await self.inner.empty_trash(now)


async def test_survives_a_volume_whose_listing_fails(make_volume: MakeVolume) -> None:
    rng = random.Random(11)
    good, bad = make_volume("good"), make_volume("bad")
    await fill(good, 10, rng)
    await fill(bad, 10, rng)
    flaky = BrokenListing(bad, good=4)
    scrubber = Scrubber({"bad": flaky, "good": good})  # type: ignore[dict-item]
    stats = await scrubber.scrub_once()
    assert stats.failed_volumes == ["bad"] and stats.errors == 1
    assert stats.blocks_checked == 10 + 4
    assert flaky.emptied == 1  # the trash is still emptied once per pass


async def test_block_errors_are_counted_and_a_dead_volume_given_up(
    make_volume: MakeVolume,
) -> None:
    vol = make_volume()
    for i in range(MAX_CONSECUTIVE_ERRORS + 10):
        await vol.put(f"aaa{i:03d}", b"q")
    real_verify = vol.verify
    calls: list[str] = []

    async def verify(name: str) -> bool | None:
        calls.append(name)
        if name == "aaa001" or len(calls) > 5:
            raise OSError(5, "Input/output error")
        return await real_verify(name)

    vol.verify = verify  # type: ignore[method-assign]
    stats = await Scrubber({"v0": vol}).scrub_once()
    assert stats.blocks_checked == 4  # 0, 2, 3, 4 (1 failed alone; then a dead run)
    assert stats.errors == 1 + MAX_CONSECUTIVE_ERRORS
    assert len(calls) == 5 + MAX_CONSECUTIVE_ERRORS
    assert stats.failed_volumes == ["v0"]


async def test_empties_each_trash_once_per_pass(make_volume: MakeVolume) -> None:
    vols = {vid: make_volume(vid) for vid in ("v0", "v1")}
    for vol in vols.values():
        await vol.put("aaa1", b"1")
        await vol.put("aaa2", b"2")
        await vol.delete("aaa1")
        await vol.delete("aaa2")
    # make one entry per volume due (its deadline in the past)
    for vol in vols.values():
        due = next(p for p in (vol.root / "trash").iterdir() if p.name.startswith("aaa1."))
        due.rename(due.with_name("aaa1.1"))
    stats = await Scrubber(vols).scrub_once()
    assert stats.trash_removed == 2 and stats.blocks_checked == 0
    for vol in vols.values():
        assert await vol.trash_stats() == (1, os.path.getsize(next((vol.root / "trash").iterdir())))
        assert await vol.undelete("aaa2") is True


async def test_volumes_from_a_function_followed_each_pass(make_volume: MakeVolume) -> None:
    current: dict[str, LocalVolume] = {}
    calls = 0

    def volumes() -> dict[str, LocalVolume]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("cluster map unavailable")
        return current

    scrubber = Scrubber(volumes)
    assert (await scrubber.scrub_once()).blocks_checked == 0
    vol = make_volume()
    await vol.put("abc1", b"x")
    current["v0"] = vol
    failed = await scrubber.scrub_once()
    assert failed.errors == 1 and failed.blocks_checked == 0
    assert (await scrubber.scrub_once()).blocks_checked == 1


async def test_run_loops_passes_and_sleeps_between(make_volume: MakeVolume) -> None:
    fake = FakeTime()
    vol = make_volume()
    await vol.put("abc1", b"x")
    passes: list[ScrubStats] = []
    calls = 0

    def volumes() -> dict[str, LocalVolume]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("boom")
        return {"v0": vol}

    async def sleep(seconds: float) -> None:
        passes.append(scrubber.stats)
        if len(passes) == 3:
            raise asyncio.CancelledError
        await fake.sleep(seconds)

    scrubber = Scrubber(volumes, interval=3600, clock=fake.clock, sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        await scrubber.run()
    assert [p.passes for p in passes] == [1, 2, 3]
    assert [p.blocks_checked for p in passes] == [1, 0, 1]
    assert [p.errors for p in passes] == [0, 1, 0]
    assert passes[1].started == passes[0].finished + 3600  # type: ignore[operator]


async def test_run_starts_a_pass_every_interval(make_volume: MakeVolume) -> None:
    """Start to start: the time a pass took (waiting for its rate) is not slept again."""
    fake = FakeTime()
    vol = make_volume()
    for i in range(5):
        await vol.put(f"abc{i}", b"x" * 1000)
    starts: list[float | None] = []
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        if scrubber.stats.finished is not None:  # between passes, not the rate limiter
            starts.append(scrubber.stats.started)
            naps.append(seconds)
            if len(starts) == 3:
                raise asyncio.CancelledError
        await fake.sleep(seconds)

    scrubber = Scrubber({"v0": vol}, rate=1000, burst=0, interval=60, clock=fake.clock, sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        await scrubber.run()
    assert naps == [pytest.approx(55.0)] * 3  # each pass waited 5 s for its 5000 bytes
    assert [s - starts[0] for s in starts] == [0, pytest.approx(60), pytest.approx(120)]  # type: ignore[operator]


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        Scrubber({}, rate=0)
    with pytest.raises(ValueError):
        Scrubber({}, interval=0)


def test_stats_is_a_snapshot() -> None:
    scrubber = Scrubber({})
    snap = scrubber.stats
    snap.corrupt.append(("v", "abc"))
    snap.position["v"] = "abc"
    assert scrubber.stats == ScrubStats()


async def test_passes_never_overlap(make_volume: MakeVolume) -> None:
    vol = make_volume()
    for i in range(3):
        await vol.put(f"abc{i}", b"x")
    active = 0
    most = 0
    real_verify = vol.verify

    async def verify(name: str) -> bool | None:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0)
        try:
            return await real_verify(name)
        finally:
            active -= 1

    vol.verify = verify  # type: ignore[method-assign]
    scrubber = Scrubber({"v0": vol})
    a, b = await asyncio.gather(scrubber.scrub_once(), scrubber.scrub_once())
    assert most == 1
    assert (a.passes, b.passes) == (1, 2) and a.blocks_checked == b.blocks_checked == 3

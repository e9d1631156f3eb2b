"""The server's batched stderr log handler."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
from collections.abc import Iterator
from datetime import datetime

from tessera.server.logs import BatchedStderr, direct_info

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) t\.logs: (.*)$")


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger("t.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_lines_come_out_formatted_in_order_and_all_on_stop() -> None:
    out = io.StringIO()
    handler = BatchedStderr(out, interval=60.0)  # only stop() writes
    logger = _logger(handler)
    for i in range(1000):
        logger.info("request %d of %s", i, "many")
    logger.warning("last")
    assert out.getvalue() == ""
    handler.stop()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1001
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed)
    assert [m.group(2) for m in parsed if m] == [f"request {i} of many" for i in range(1000)] + [
        "last"
    ]
    handler.stop()  # idempotent


def test_lines_are_written_without_stop_within_the_interval() -> None:
    out = io.StringIO()
    handler = BatchedStderr(out, interval=0.01)
    logger = _logger(handler)
    logger.info("soon")
    deadline = time.monotonic() + 10
    while "soon" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "soon" in out.getvalue()
    handler.stop()


def test_a_record_is_formatted_when_it_is_logged() -> None:
    out = io.StringIO()
    handler = BatchedStderr(out, interval=60.0)
    logger = _logger(handler)
    state = ["before"]
    logger.info("%s", state)
    state[0] = "after"
    handler.stop()
    assert "['before']" in out.getvalue()


@contextlib.contextmanager
def root_handler() -> Iterator[tuple[BatchedStderr, io.StringIO]]:
    """A BatchedStderr as the root's only handler (as ``setup_logging`` leaves it).
    Entered in the test's body: pytest adds its capturing handlers to the root
    for each test phase, and those would (rightly) turn the direct path off."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    handler = BatchedStderr(out, interval=60.0)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield handler, out
    finally:
        handler.stop()
        root.handlers[:], level = saved
        root.setLevel(level)


def test_direct_line_reads_as_the_record_would() -> None:
    with root_handler() as (handler, out):
        _direct_line_reads_as_the_record_would(handler, out)


def _direct_line_reads_as_the_record_would(handler: BatchedStderr, out: io.StringIO) -> None:
    logger = logging.getLogger("t.direct.same")
    write = direct_info(logger)
    assert write is not None
    logger.info("via %s", "record")
    write("via direct")
    handler.stop()
    lines = out.getvalue().splitlines()
    assert [re.sub(r",\d{3} ", ",mmm ", line)[19:] for line in lines] == [
        ",mmm INFO t.direct.same: via record",
        ",mmm INFO t.direct.same: via direct",
    ]
    stamps = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f") for line in lines]
    assert abs((stamps[1] - stamps[0]).total_seconds()) < 60


def test_direct_path_refused_when_someone_else_would_see_the_record() -> None:
    with root_handler() as (handler, _):
        _direct_path_refused(handler)


def _direct_path_refused(handler: BatchedStderr) -> None:
    parent = logging.getLogger("t.direct.parent")
    child = logging.getLogger("t.direct.parent.child")
    assert direct_info(child) is not None
    extra = logging.StreamHandler(io.StringIO())
    parent.addHandler(extra)  # a handler on the way
    try:
        assert direct_info(child) is None
    finally:
        parent.removeHandler(extra)
    quiet = logging.Filter("nothing")
    child.addFilter(quiet)  # a filter on the logger itself
    try:
        assert direct_info(child) is None
    finally:
        child.removeFilter(quiet)
    parent.propagate = False  # the root never sees it
    try:
        assert direct_info(child) is None
    finally:
        parent.propagate = True
    handler.setLevel(logging.WARNING)  # the handler drops INFO
    try:
        assert direct_info(child) is None
    finally:
        handler.setLevel(logging.NOTSET)
    root = logging.getLogger()
    root.addHandler(extra)  # two handlers on the root
    try:
        assert direct_info(child) is None
    finally:
        root.removeHandler(extra)
    assert direct_info(child) is not None

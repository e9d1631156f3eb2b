"""The server's batched stderr log handler."""

from __future__ import annotations

import io
import logging
import re
import time

from tessera.server.logs import BatchedStderr

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

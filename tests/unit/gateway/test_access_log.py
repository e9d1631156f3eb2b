"""The access log line, and that a pre-authenticated link's secret never reaches it."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from tessera.gateway.access_log import AccessLog, stamp


def _line(path: str, caplog: pytest.LogCaptureFixture) -> str:
    logger = logging.getLogger("test.access")
    request = make_mocked_request("GET", path)
    response = web.Response(status=200, body=b"abc", headers={"x-amz-request-id": "r1"})
    with caplog.at_level(logging.INFO, logger="test.access"):
        AccessLog(logger, "").log(request, response, 0.002)
    return caplog.records[-1].getMessage()


def test_line_names_method_path_status_and_request(caplog: pytest.LogCaptureFixture) -> None:
    line = _line("/bucket/key?versionId=x", caplog)
    assert '"GET /bucket/key?versionId=x HTTP/1.1" 200' in line
    assert line.endswith("req=r1")


def test_par_secret_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    line = _line("/_tessera/p/par123/s3cr3tvalue/some/key", caplog)
    assert "s3cr3tvalue" not in line
    assert "/_tessera/p/par123/***/some/key" in line


def test_duration_from_the_stamp_is_precise(caplog: pytest.LogCaptureFixture) -> None:
    """With a stamp the line gives perf_counter time since it (microseconds),
    not the whole-millisecond figure the loop clock passes in."""
    logger = logging.getLogger("test.access")
    response = web.Response(status=200, body=b"abc", headers={"x-amz-request-id": "r1"})
    unstamped = make_mocked_request("GET", "/b/k")
    stamped = make_mocked_request("GET", "/b/k")
    stamp(stamped)
    with caplog.at_level(logging.INFO, logger="test.access"):
        AccessLog(logger, "").log(unstamped, response, 0.002)
        AccessLog(logger, "").log(stamped, response, 7.0)
    without, with_stamp = (r.getMessage() for r in caplog.records[-2:])
    assert " 2.000ms " in without
    ms = float(with_stamp.split("ms req=")[0].rsplit(" ", 1)[1])
    assert 0 < ms < 7000  # measured since the stamp, not the 7 s passed in

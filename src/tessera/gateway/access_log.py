"""One line per request on the ``aiohttp.access`` logger, cheaply.

aiohttp's default :class:`~aiohttp.web_log.AccessLogger` interprets a format string
field by field and passes every field again as ``extra``: about 110 us of the
~400 us a small request costs (profiled). This logger builds one line with an
f-string after one level check (a disabled ``aiohttp.access`` logger, with
``log_level`` above INFO, costs nothing more). Even then ``logger.info`` costs
~20 us (a LogRecord, the caller's frame, handler dispatch, formatting): the
server passes a :meth:`AccessLog.direct` writer that queues the finished line
on its log handler when nothing else would see the record.

Line format (the request id is the response's ``x-amz-request-id``)::

    127.0.0.1 "GET /bucket/key?versionId=x HTTP/1.1" 200 4096 1.234ms req=0123abcd

The secret of a pre-authenticated link (``/_tessera/p/<id>/<secret>``) is logged as ``***``.

The duration aiohttp passes is measured on the loop's clock, which under uvloop
ticks in whole milliseconds (a 0.3 ms request logged ``0.000ms``, a 1.2 ms one
``1.000ms`` or ``2.000ms``). When the outermost middleware stamped the request
with :func:`stamp` (the server does), the line gives ``perf_counter`` time from
that stamp to the log call instead: the handler and the response write, to the
microsecond.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import RequestKey
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from tessera.gateway.pars import PREFIX as PAR_PREFIX
from tessera.gateway.pars import redact

_STARTED = RequestKey("tessera.started", float)
"""Request key of the ``perf_counter`` reading :func:`stamp` stores."""


def stamp(request: BaseRequest) -> None:
    """Note that ``request`` starts now, for a precise duration in its line."""
    request[_STARTED] = _time.perf_counter()


class AccessLog(AbstractAccessLogger):
    """Pass as ``access_log_class`` to :class:`aiohttp.web.AppRunner`. aiohttp makes
    one per connection."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._write = self.direct(logger)

    @staticmethod
    def direct(logger: logging.Logger) -> Callable[[str], None] | None:
        """Hook for the server: a function that writes one INFO line of ``logger``
        exactly as ``logger.info`` would, only cheaper, or None to go through
        ``logger.info``. The level is checked before either is called."""
        return None

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        started = request.get(_STARTED)
        if started is not None:
            time = _time.perf_counter() - started
        version = request.version
        path = request.raw_path
        if path.startswith(PAR_PREFIX):
            path = redact(path)  # a logged link would be a usable one
        line = (
            f'{request.remote or "-"} "{request.method} {path} '
            f'HTTP/{version.major}.{version.minor}" {response.status} '
            f"{response.body_length} {time * 1000:.3f}ms "
            f"req={response.headers.get('x-amz-request-id', '-')}"
        )
        if self._write is not None:
            self._write(line)
        else:
            self.logger.info("%s", line)

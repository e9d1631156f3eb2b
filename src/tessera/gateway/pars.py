"""PAR URLs: ``/_tessera/p/<id>/<secret>[/<key>]``, served with no signature.

* Object PAR: ``GET``/``HEAD`` of ``/_tessera/p/<id>/<secret>`` read the object
  (``Range`` and conditional headers honoured), ``PUT`` writes it (streamed,
  ``Content-MD5`` and ``x-amz-checksum-*`` honoured).
* Bucket PAR: the same on ``/_tessera/p/<id>/<secret>/<key>`` for any key of
  its bucket; ``GET /_tessera/p/<id>/<secret>/`` (or without the slash) lists
  keys as JSON when the PAR is listable, with ``prefix``, ``marker`` and
  ``limit`` (1..1000) query parameters: ``{"bucket", "prefix", "objects":
  [{"key", "size", "etag", "last_modified"}], "truncated", "next_marker"}``.
* Calculation PAR: ``GET`` of its URL answers the job's state ``{"job", "args",
  "state": idle|running|done|failed|stopped, "progress", "result", "error",
  "bucket", "expires"}``; ``POST <url>/start`` with a JSON object of job
  arguments starts it (409 Conflict while running), ``POST <url>/stop`` stops it.
* ``DELETE /_tessera/p/<id>/<secret>`` revokes the PAR (proof of possession)
  and answers ``{"id", "revoked": true}``.

Reads and writes go through the S3 handlers (:mod:`tessera.gateway.handlers.objects`)
with the PAR owner's principal; the scope is decided by
:meth:`tessera.core.pars.ParOps.par_target`. The path is parsed from the raw,
still-encoded request target: the id and secret must be plain URL-safe tokens,
and a key holding an encoded slash (``%2F``) or a ``.``/``..`` segment is
refused, so no decoding or normalisation can move a request out of scope.

Errors are JSON ``{"error": {"code", "message", "request_id"}}`` with S3 codes.
Unknown, wrong-secret and revoked links all answer 403 ``AccessDenied`` with
one message (nothing tells them apart); an expired link answers 403
``AccessDenied`` with the message "The pre-authenticated request has expired."
(403 as S3 answers an expired presigned URL; 410 would tell a prober which ids
once existed).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tessera.core.access import ANONYMOUS
from tessera.core.requests import ListRequest
from tessera.core.service import ObjectService
from tessera.gateway import extension as ext
from tessera.gateway.auth import UNSIGNED, AuthContext, signing_headers
from tessera.gateway.body import Body
from tessera.gateway.context import Ctx
from tessera.gateway.errors import not_modified, to_s3_error
from tessera.gateway.handlers import objects
from tessera.gateway.router import Endpoint, parse_query
from tessera.model.errors import NotModified, ParNotFound, TesseraError
from tessera.model.pars import Par
from tessera.protocol.s3.errors import S3Error
from tessera.protocol.s3.headers import format_iso8601

log = logging.getLogger("tessera.gateway.pars")

PREFIX = "/_tessera/p/"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")
_SECRET = re.compile(r"\A(/_tessera/p/[^/?]*/)[^/?]+")
_DROPPED_HEADERS = ("x-amz-acl", "x-amz-grant-")
"""Request headers a PAR write ignores: a link may write data, never grant access."""
MAX_LIST = 1000


def par_url(base: str, par: Par, secret: str) -> str:
    """The link for ``par``: ``<base>/_tessera/p/<id>/<secret>`` (a bucket PAR's
    keys are appended after a ``/``). ``base`` is ``scheme://host[:port]``."""
    return f"{base.rstrip('/')}{PREFIX}{par.id}/{secret}"


def redact(raw_path: str) -> str:
    """``raw_path`` with a PAR secret replaced by ``***`` (for logs: a logged
    link would be a usable one); other paths unchanged."""
    return _SECRET.sub(r"\1***", raw_path, count=1)


def _split(raw_path: str) -> tuple[str, str, str | None]:
    """(id, secret, raw key or None) of a raw PAR path; the raw key is ``""``
    for a trailing slash. Raises ParNotFound for a malformed id or secret."""
    rest = raw_path.split("?", 1)[0][len(PREFIX) :]
    par_id, _, rest = rest.partition("/")
    secret, slash, raw_key = rest.partition("/")
    if not _TOKEN.match(par_id) or not _TOKEN.match(secret):
        raise ParNotFound("The pre-authenticated request does not exist or was revoked.")
    return par_id, secret, raw_key if slash else None


def _key(raw_key: str) -> str:
    if "%2f" in raw_key.lower():
        raise S3Error("AccessDenied", "Encoded slashes are not allowed in PAR keys.", status=403)
    return unquote(raw_key, errors="strict")


async def handle(
    request: web.Request, service: ObjectService, request_id: str
) -> web.StreamResponse:
    """Answer one PAR request; every failure is answered here, as JSON."""
    try:
        answer = await _handle(request, service, request_id)
    except NotModified as e:
        return not_modified(e, request_id)
    except TesseraError as e:
        return _error(request, to_s3_error(e), request_id)
    except S3Error as e:
        return _error(request, e, request_id)
    except UnicodeDecodeError:
        return _error(request, S3Error("InvalidURI", "Couldn't parse the URI."), request_id)
    except (ConnectionError, web.HTTPException):
        raise
    except Exception:
        log.exception("internal error on PAR %s (request %s)", request.method, request_id)
        return _error(request, S3Error("InternalError"), request_id)
    if not answer.prepared:
        answer.headers["x-amz-request-id"] = request_id
    return answer


def _error(request: web.Request, err: S3Error, request_id: str) -> web.Response:
    headers = {"x-amz-request-id": request_id, **err.headers}
    if request.method == "HEAD":
        resp = web.Response(status=err.status, headers=headers)
    else:
        resp = ext.error_response(err.code, err.message, err.status, request_id)
        resp.headers.update(headers)
    if not request.content.is_eof():
        resp.force_close()
    return resp


async def _handle(
    request: web.Request, service: ObjectService, request_id: str
) -> web.StreamResponse:
    par_id, secret, raw_key = _split(request.raw_path)
    method = request.method
    if method == "DELETE":
        if raw_key is not None:
            raise S3Error("MethodNotAllowed", "Revoke a PAR at its own URL.", status=405)
        par = await service.revoke_par_with_secret(par_id, secret)
        return ext.json_response({"id": par.id, "revoked": True})
    par = await service.resolve_par(par_id, secret)
    if par.is_calculation:
        return await _job(request, service, par, raw_key)
    key = None if raw_key is None else _key(raw_key)
    if method == "GET" and not key and (par.key is None or raw_key is not None):
        return await _list(request, service, par)  # ".../" or a bucket PAR's own URL
    if method not in ("GET", "HEAD", "PUT"):
        raise S3Error("MethodNotAllowed", f"{method} is not allowed on a PAR.", status=405)
    action = "write" if method == "PUT" else "read"
    principal, bucket, target = service.par_target(par, action, key)
    headers = signing_headers(request)
    if method == "PUT":
        if headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
            raise S3Error("InvalidRequest", "aws-chunked bodies need SigV4; send the raw body")
        headers = {k: v for k, v in headers.items() if not k.startswith(_DROPPED_HEADERS)}
    op = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject"}[method]
    ctx = Ctx(
        request=request,
        endpoint=Endpoint(op, bucket, target),
        principal=principal,
        service=service,
        body=Body(request, AuthContext(principal, UNSIGNED)),
        headers=headers,
        query={},
        request_id=request_id,
        region=service.options.region,
    )
    if method == "GET":
        return await objects.get_object(ctx)
    if method == "HEAD":
        return await objects.head_object(ctx)
    return await objects.put_object(ctx)


async def _list(request: web.Request, service: ObjectService, par: Par) -> web.StreamResponse:
    principal, bucket, _ = service.par_target(par, "list", None)
    query = dict(parse_query(request.raw_path.partition("?")[2]))
    try:
        limit = int(query.get("limit") or MAX_LIST)
    except ValueError:
        raise S3Error("InvalidArgument", "limit must be an integer") from None
    if not 1 <= limit <= MAX_LIST:
        raise S3Error("InvalidArgument", f"limit must be between 1 and {MAX_LIST}")
    prefix = query.get("prefix", "")
    req = ListRequest(bucket, prefix=prefix, after=query.get("marker", ""), max_keys=limit)
    result = await service.list_objects(principal, req)
    doc: dict[str, Any] = {
        "bucket": bucket,
        "prefix": prefix,
        "objects": [
            {
                "key": v.key,
                "size": v.size,
                "etag": v.etag,
                "last_modified": format_iso8601(v.last_modified),
            }
            for v in result.objects
        ],
        "truncated": result.truncated,
        "next_marker": result.next_after if result.truncated else None,
    }
    return ext.json_response(doc)


async def _job(
    request: web.Request, service: ObjectService, par: Par, action: str | None
) -> web.StreamResponse:
    """A calculation PAR: ``GET`` its URL for the job's state, ``POST .../start``
    (JSON object of job arguments) and ``POST .../stop``."""
    method = request.method
    if method == "GET" and action is None:
        state = await service.par_job_status(par)
    elif method == "POST" and action == "start":
        body = Body(request, AuthContext(ANONYMOUS, UNSIGNED))
        raw = await body.read_document(ext.MAX_JSON)
        try:
            args = json.loads(raw) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise S3Error("MalformedJSON", f"The request body is not valid JSON: {e}") from e
        if not isinstance(args, dict):
            raise S3Error("MalformedJSON", "The job arguments must be a JSON object")
        state = await service.start_par_job(par, args)
    elif method == "POST" and action == "stop":
        state = await service.stop_par_job(par)
    else:
        raise S3Error(
            "MethodNotAllowed",
            "A calculation PAR answers GET <url>, POST <url>/start and POST <url>/stop.",
            status=405,
        )
    doc = state.document() if state else {"job": par.job, "state": "idle"}
    return ext.json_response({**doc, "bucket": par.bucket, "expires": par.expires})

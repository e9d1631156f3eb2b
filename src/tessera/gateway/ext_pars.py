"""Managing PARs through the extension API (signed): create, list, revoke.

* ``POST pars`` with ``{"bucket", "key": str|null, "readable", "writeable",
  "listable", "expires": epoch seconds | "ttl": seconds, "job": name|null}``
  -> the PAR (:func:`par_document`) plus ``url``: the link, built from the
  request's own scheme and host, carrying the secret. This is the only answer
  that holds it.
  A ``job`` (``verify``, ``copy-prefix``) makes a calculation PAR: no key, no
  data permissions (the flags are ignored); see :mod:`tessera.core.par_jobs`.
* ``GET pars?bucket=`` -> ``{"pars": [...]}``: the caller's PARs (of one
  bucket, or all), revoked and recently expired ones included, never secrets.
* ``DELETE pars/{par_id}`` -> ``{"id", "revoked": true}``; only the owner's
  own PARs (another account's answer as unknown: 403 AccessDenied).

The links themselves are served by :mod:`tessera.gateway.pars`.
"""

from __future__ import annotations

from typing import Any

from tessera.gateway.extension import ExtRequest, Route
from tessera.gateway.pars import par_url
from tessera.model.pars import Par
from tessera.protocol.s3.errors import S3Error

TAG = "pars"
DEFAULT_TTL = 3600.0


def par_document(par: Par) -> dict[str, Any]:
    """The JSON form of a PAR (never its secret or the secret's hash)."""
    return {
        "id": par.id,
        "bucket": par.bucket,
        "key": par.key,
        "readable": par.readable,
        "writeable": par.writeable,
        "listable": par.listable,
        "created": par.created,
        "expires": par.expires,
        "revoked": par.revoked,
        "job": par.job,
    }


def _flag(doc: dict[str, Any], name: str, default: bool) -> bool:
    value = doc.get(name, default)
    if not isinstance(value, bool):
        raise S3Error("InvalidArgument", f"{name} must be true or false")
    return value


def _number(doc: dict[str, Any], name: str) -> float | None:
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise S3Error("InvalidArgument", f"{name} must be a number of seconds")
    return float(value)


def _job_name(doc: dict[str, Any]) -> str | None:
    job = doc.get("job")
    if job is not None and not isinstance(job, str):
        raise S3Error("InvalidArgument", "job must be a job name or null")
    return job


async def _create(req: ExtRequest) -> Any:
    doc = await req.json()
    bucket, key = doc.get("bucket"), doc.get("key")
    if not isinstance(bucket, str) or not bucket:
        raise S3Error("InvalidArgument", "bucket must be a bucket name")
    if key is not None and (not isinstance(key, str) or not key):
        raise S3Error("InvalidArgument", "key must be a non-empty string or null")
    expires, ttl = _number(doc, "expires"), _number(doc, "ttl")
    if expires is not None and ttl is not None:
        raise S3Error("InvalidArgument", "give expires or ttl, not both")
    if expires is None:
        expires = req.service.clock.now() + (DEFAULT_TTL if ttl is None else ttl)
    par, secret = await req.service.create_par(
        req.principal,
        bucket,
        key,
        readable=_flag(doc, "readable", True),
        writeable=_flag(doc, "writeable", False),
        listable=_flag(doc, "listable", False),
        expires=expires,
        job=_job_name(doc),
    )
    base = f"{req.request.scheme}://{req.request.host}"
    return {**par_document(par), "url": par_url(base, par, secret)}


async def _list(req: ExtRequest) -> Any:
    pars = await req.service.list_pars(req.principal, req.query.get("bucket") or None)
    return {"pars": [par_document(p) for p in pars]}


async def _revoke(req: ExtRequest) -> Any:
    par = await req.service.revoke_par(req.principal, req.params["par_id"])
    return {"id": par.id, "revoked": True}


ROUTES: list[Route] = [
    Route("POST", "pars", _create, "Create a pre-authenticated request", TAG, body="json"),
    Route("GET", "pars", _list, "The caller's PARs (no secrets)", TAG, query=("bucket",)),
    Route("DELETE", "pars/{par_id}", _revoke, "Revoke one of the caller's PARs", TAG),
]

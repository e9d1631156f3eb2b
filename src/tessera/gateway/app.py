"""The S3 gateway application: one catch-all route that parses the request
into an :class:`~tessera.gateway.router.Endpoint`, authenticates it, runs the
handler, and renders every failure as an S3 error document.

Order per request: request id -> route -> authenticate -> handler. Domain errors
are mapped in :mod:`tessera.gateway.errors`; protocol errors arrive as S3Error;
anything else is logged and answered ``InternalError``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from tessera.common.ids import new_request_id
from tessera.core.access import ANONYMOUS
from tessera.core.service import ObjectService
from tessera.gateway import extension as ext
from tessera.gateway import pars as par_links
from tessera.gateway.admin import ADMIN_KEY, AdminHooks
from tessera.gateway.auth import AuthContext, authenticate, signing_headers
from tessera.gateway.body import Body
from tessera.gateway.context import Ctx
from tessera.gateway.errors import not_modified, to_s3_error
from tessera.gateway.ext_table import ROUTES as EXT_ROUTES
from tessera.gateway.handlers import HANDLERS
from tessera.gateway.router import parse_query, route, split_target, virtual_bucket
from tessera.model.errors import NotModified, TesseraError
from tessera.protocol.s3.errors import S3Error, error_document

log = logging.getLogger("tessera.gateway")


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    region: str = "us-east-1"
    virtual_host_domains: tuple[str, ...] = ()
    """Domains under which ``<bucket>.<domain>`` addresses a bucket (virtual-host style)."""
    max_clock_skew: int = 900
    """Seconds a signed request's date may differ from the server clock."""


SERVICE_KEY: web.AppKey[ObjectService] = web.AppKey("service", ObjectService)
OPTIONS_KEY: web.AppKey[GatewayOptions] = web.AppKey("options", GatewayOptions)


def _error_response(
    request: web.Request, err: S3Error, request_id: str, resource: str
) -> web.Response:
    """The S3 error document for ``err``. When the request body was not read to its
    end the connection is closed after the response: a client that sent
    ``Expect: 100-continue`` never sends the body, and one that does should not
    have to push gigabytes nobody reads before its next request."""
    headers = {"x-amz-request-id": request_id, **err.headers}
    if resource.startswith(ext.PREFIX):
        resp = ext.error_response(err.code, err.message, err.status, request_id)
        resp.headers.update(headers)
    elif request.method == "HEAD" or err.status == 304:
        resp = web.Response(status=err.status, headers=headers)
    else:
        body = error_document(
            err.code, err.message, resource=resource, request_id=request_id, extra=err.extra
        )
        resp = web.Response(
            status=err.status, body=body, content_type="application/xml", headers=headers
        )
    if not request.content.is_eof():
        resp.force_close()
    return resp


async def _expect(request: web.Request) -> web.StreamResponse | None:
    """aiohttp's ``expect_handler``. Its default answers ``100 Continue`` before the
    request is even authenticated; here nothing is sent and :class:`Body` answers
    when the handler starts reading the body. Other expectations get 417."""
    expect = request.headers.get("Expect", "")
    if expect.lower() == "100-continue":
        return None
    err = S3Error("InvalidArgument", f"Unsupported Expect header: {expect}", status=417)
    return _error_response(request, err, new_request_id(), request.path)


def _preflight(request: web.Request) -> S3Error:
    """A CORS preflight (OPTIONS, unauthenticated). Tessera has no CORS
    configuration yet, so every preflight is refused, the way S3 refuses one for a
    bucket without CORS rules."""
    if "Origin" not in request.headers:
        return S3Error("BadRequest", "Insufficient information. Origin request header needed.")
    return S3Error(
        "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", status=403
    )


async def _dispatch(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE_KEY]
    options = request.app[OPTIONS_KEY]
    request_id = new_request_id()
    raw_path = request.raw_path
    resource = raw_path.split("?", 1)[0]
    try:
        if resource == "/_tessera/health":
            return web.json_response({"status": "ok"}, headers={"x-amz-request-id": request_id})
        if resource.startswith(par_links.PREFIX):  # PAR links: no signature, JSON errors
            return await par_links.handle(request, service, request_id)
        if request.method == "OPTIONS":
            raise _preflight(request)
        raw_query = raw_path.partition("?")[2]
        pairs = parse_query(raw_query)
        query = dict(pairs)
        headers = signing_headers(request)
        bucket, key = split_target(request.host, raw_path, options.virtual_host_domains)
        vbucket = virtual_bucket(request.host, options.virtual_host_domains)
        ext_route = None
        if resource.startswith(ext.PREFIX):
            ext_route, params = ext.match(EXT_ROUTES, request.method, resource[len(ext.PREFIX) :])
            if ext_route.public:
                return await _extension(request, ext_route, params, query, None, request_id)
        else:
            # S3 requests are routed before they are authenticated (a malformed
            # request answers its routing error whoever sends it).
            endpoint = route(request.method, bucket, key, query, headers)
        auth = await authenticate(
            request,
            service,
            unquote(resource),
            pairs,
            headers,
            now=time.time(),
            max_skew=options.max_clock_skew,
            v2_resource=resource if vbucket is None else f"/{vbucket}{resource}",
        )
        if ext_route is not None:
            return await _extension(request, ext_route, params, query, auth, request_id)
        ctx = Ctx(
            request=request,
            endpoint=endpoint,
            principal=auth.principal,
            service=service,
            body=Body(request, auth),
            headers=headers,
            query=query,
            request_id=request_id,
            region=options.region,
        )
        response = await HANDLERS[endpoint.op](ctx)
    except NotModified as e:
        return not_modified(e, request_id)
    except TesseraError as e:
        return _error_response(request, to_s3_error(e), request_id, resource)
    except S3Error as e:
        return _error_response(request, e, request_id, resource)
    except UnicodeDecodeError:
        return _error_response(
            request,
            S3Error("InvalidURI", "Couldn't parse the specified URI."),
            request_id,
            resource,
        )
    except (ConnectionError, web.HTTPException):  # client gone, or aiohttp's own answer
        raise
    except Exception:
        log.exception("internal error on %s %s (request %s)", request.method, resource, request_id)
        return _error_response(request, S3Error("InternalError"), request_id, resource)
    if not response.prepared:
        response.headers["x-amz-request-id"] = request_id
    return response


async def _extension(
    request: web.Request,
    route_: ext.Route,
    params: dict[str, str],
    query: dict[str, str],
    auth: AuthContext | None,
    request_id: str,
) -> web.StreamResponse:
    """Run one extension API handler; ``auth`` is None for public routes."""
    if auth is None:
        auth = AuthContext(ANONYMOUS, "UNSIGNED-PAYLOAD")
    req = ext.ExtRequest(
        request=request,
        principal=auth.principal,
        service=request.app[SERVICE_KEY],
        params=params,
        query=query,
        body=Body(request, auth),
        app=request.app,
    )
    answer = await route_.handler(req)
    if not isinstance(answer, web.StreamResponse):
        answer = ext.json_response(answer)
    if not answer.prepared:
        answer.headers["x-amz-request-id"] = request_id
    return answer


def make_app(
    service: ObjectService,
    options: GatewayOptions | None = None,
    *,
    admin: AdminHooks | None = None,
) -> web.Application:
    """The aiohttp application serving the S3 API for ``service`` (and the admin
    endpoints of :mod:`tessera.gateway.admin` that ``admin`` provides)."""
    app = web.Application(client_max_size=1 << 20)
    app[SERVICE_KEY] = service
    app[OPTIONS_KEY] = options or GatewayOptions()
    app[ADMIN_KEY] = admin or AdminHooks()
    app.router.add_route("*", "/{tail:[\\s\\S]*}", _dispatch, expect_handler=_expect)
    return app

"""A FastAPI route that handles simple requests without FastAPI's per-request machinery, same answers.

FastAPI solves a route's dependency graph on every request (cache keys, scope checks, parameter
extraction for each parameter kind) and validates a returned pydantic model a second time before it
serialises it. For a route whose needs are simple — its dependencies are ``async`` functions of the
``Request`` alone (auth checks, ``current_services``, ``APIKeyHeader``), its body is one pydantic model,
it takes no path, query, header or cookie parameter — ``LeanRoute`` does the same work directly:
the dependency graph is compiled once when the route is built, the body is validated by the same
FastAPI field, and a returned instance of the response model is serialised once, by the same serializer.

Anything unusual goes to FastAPI's own handler, which then answers exactly as it always does: a body
that is missing, not JSON, of another content type or invalid (its 422 details are FastAPI's), a
response that is not an instance of the response model, dependency overrides (tests), any route the
compiler does not understand. The route is registered like any APIRoute, so /openapi.json documents
it unchanged.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Optional, cast

from fastapi import Request, Response
from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from lollms_server import shortcuts

if TYPE_CHECKING:
    from fastapi._compat import ModelField
    from fastapi.dependencies.models import Dependant

# FastAPI's internals this module reads (lollms_server/shortcuts.py): checked once, at the first route built; when
# they are not as expected every LeanRoute is served by FastAPI's own handler
SHORTCUT = "api/lean_route.py (routes served without FastAPI's per-request machinery)"
_DEPENDANT_NEEDS = ("call", "name", "dependencies", "path_params", "query_params", "header_params", "cookie_params",
                    "body_params", "request_param_name", "http_connection_param_name", "websocket_param_name",
                    "response_param_name", "background_tasks_param_name", "security_scopes_param_name", "own_oauth_scopes")
# Dependant's other fields (a field not listed in either means a kind of parameter this module would not see)
_DEPENDANT_OTHERS = ("concurrency", "parent_oauth_scopes", "path", "scope", "use_cache")
_ROUTE_NEEDS = ("dependant", "body_field", "response_field", "response_class", "status_code", "path", "methods",
                "dependency_overrides_provider", "response_model_include", "response_model_exclude", "response_model_by_alias",
                "response_model_exclude_unset", "response_model_exclude_defaults", "response_model_exclude_none")
# APIRoute's options this module knows (each honoured here or sending the route to FastAPI's handler): a release with
# another option may change what a route answers, so that release gets FastAPI's handler until this list is checked
_ROUTE_OPTIONS = frozenset({
    "self", "path", "endpoint", "response_model", "status_code", "tags", "dependencies", "summary", "description",
    "response_description", "responses", "deprecated", "name", "methods", "operation_id", "response_model_include",
    "response_model_exclude", "response_model_by_alias", "response_model_exclude_unset", "response_model_exclude_defaults",
    "response_model_exclude_none", "include_in_schema", "response_class", "dependency_overrides_provider", "callbacks",
    "openapi_extra", "generate_unique_id_function", "strict_content_type", "max_body_size", "form_limits"})
_problem: str | None | bool = False  # False: not checked yet
try:
    from fastapi.datastructures import DefaultPlaceholder
    from fastapi.utils import is_body_allowed_for_status_code
except ImportError as exc:
    _problem = f"cannot import: {exc}"


def fastapi_problem() -> str | None:
    """Why FastAPI's internals are not as this module reads them (None: they are). Checked once."""
    global _problem
    if _problem is False:
        try:
            from fastapi._compat import ModelField as Field
            from fastapi.dependencies.models import Dependant as Dep
        except ImportError as exc:
            _problem = f"cannot import: {exc}"
            return _problem
        fields = set(getattr(Dep, "__dataclass_fields__", ()))
        absent = [name for name in _DEPENDANT_NEEDS if name not in fields]
        unknown = sorted(fields.difference(_DEPENDANT_NEEDS, _DEPENDANT_OTHERS))
        init = APIRoute.__init__.__code__
        options = sorted(set(init.co_varnames[:init.co_argcount + init.co_kwonlyargcount]) - _ROUTE_OPTIONS)
        _problem = shortcuts.first(
            f"fastapi.dependencies.models.Dependant has no field {absent[0]}" if absent else None,
            f"fastapi.dependencies.models.Dependant has fields this module does not read: {unknown}" if unknown else None,
            f"fastapi.routing.APIRoute takes options this module does not know: {options}" if options else None,
            shortcuts.missing(Field, "validate", "serialize_json"),
            shortcuts.no_parameters("fastapi._compat.ModelField.validate", Field.validate, "value", "values", "loc"),
            shortcuts.missing(APIRoute, "get_route_handler"))
    return _problem if isinstance(_problem, str) else None


def _checked_plan(route: Any) -> Optional["_Plan"]:
    """The route's plan when FastAPI is shaped as this module reads it, else None (FastAPI's handler serves it)."""
    problem = fastapi_problem() or shortcuts.missing(route, *_ROUTE_NEEDS)
    if problem:
        shortcuts.turned_off(SHORTCUT, "fastapi", problem)
        return None
    try:
        return _plan(route)
    except Exception as exc:  # noqa: BLE001 - an attribute of another shape: FastAPI's own handler for this route
        shortcuts.turned_off(SHORTCUT, "fastapi", f"reading route {route.path} failed: {exc!r}")
        return None

# FastAPI >= 0.16x builds an included route's handler with its router's prefix and dependencies while this is
# set; older versions copy the route instead (then the route itself is the effective one)
_EFFECTIVE: ContextVar[Any] | None = getattr(fastapi_routing, "_effective_route_context_var", None)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class _Dep:
    """One dependency, compiled: ``call(**{request_param: request, sub.name: value of sub, ...})``."""

    name: str | None
    call: Callable[..., Any]
    request_params: tuple[str, ...]  # its parameters typed Request or HTTPConnection
    subs: tuple["_Dep", ...]
    key: Any  # what FastAPI caches the value by: the dependency as declared


def _is_async(call: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(call):
        return True
    dunder = getattr(call, "__call__", None)  # noqa: B004 - an instance with an async __call__ (APIKeyHeader)
    return not inspect.isclass(call) and dunder is not None and inspect.iscoroutinefunction(dunder)


def _simple(dep: Dependant) -> bool:
    """No parameter but the request (as Request or HTTPConnection) and sub-dependencies."""
    return not (dep.path_params or dep.query_params or dep.header_params or dep.cookie_params or dep.body_params
                or dep.websocket_param_name or dep.response_param_name or dep.background_tasks_param_name
                or dep.security_scopes_param_name or dep.own_oauth_scopes)


def _request_params(dep: Dependant) -> tuple[str, ...]:
    return tuple(n for n in (dep.request_param_name, dep.http_connection_param_name) if n)


def _compile(dep: Dependant) -> Optional[_Dep]:
    """The dependency as a _Dep, or None when it is not an async function of the request alone."""
    if dep.call is None or not _simple(dep) or not _is_async(dep.call) or getattr(dep, "use_cache", True) is not True:
        return None
    subs = tuple(_compile(d) for d in dep.dependencies)
    if any(s is None for s in subs):
        return None
    header = _api_key_header(dep.call)
    if header is not None:
        return _Dep(dep.name, header, ("request",), (), dep.call)
    return _Dep(dep.name, dep.call, _request_params(dep), cast(tuple[_Dep, ...], subs), dep.call)


def _api_key_header(call: Any) -> Callable[..., Any] | None:
    """FastAPI's ``APIKeyHeader`` (that class itself), read from the raw headers: the value of the first header of
    that name, through the scheme's own ``check_api_key`` (what its ``__call__`` does with ``request.headers``)."""
    if type(call) is not APIKeyHeader or not callable(getattr(call, "check_api_key", None)):
        return None
    name = call.model.name.lower().encode("latin-1")

    async def read(request: Request) -> Any:
        for key, value in request.scope["headers"]:
            if key == name:
                return call.check_api_key(value.decode("latin-1"))
        return call.check_api_key(None)

    return read


async def _solve(dep: _Dep, request: Request, cache: dict[Any, Any]) -> Any:
    kwargs: dict[str, Any] = {name: request for name in dep.request_params}
    for sub in dep.subs:
        value = await _solve(sub, request, cache)
        if sub.name:
            kwargs[sub.name] = value
    key = dep.key
    if key in cache:  # FastAPI's use_cache default: one call per request
        return cache[key]
    value = cache[key] = await dep.call(**kwargs)
    return value


@dataclass(frozen=True)
class _Plan:
    """What the fast path needs of a route (the effective one: with the prefix and dependencies of its router)."""

    endpoint: Callable[..., Coroutine[Any, Any, Any]]
    request_params: tuple[str, ...]
    deps: tuple[_Dep, ...]
    body_name: str | None
    body_field: ModelField | None
    body_model: type[BaseModel] | None  # the body's model, when the field is that model and nothing more
    response_model: type[BaseModel] | None
    response_field: ModelField | None
    response_serializer: Any  # the response model's own serializer when the field adds nothing to it (_plain_model)
    plain_status: bool  # the route answers 200 (no status_code of its own)
    status_code: int | None
    overrides: Any


def _model_of(field: ModelField | None) -> type[BaseModel] | None:
    annotation = getattr(getattr(field, "field_info", None), "annotation", None)
    return annotation if inspect.isclass(annotation) and issubclass(annotation, BaseModel) else None


def _plain_model(field: ModelField | None) -> type[BaseModel] | None:
    """The field's model when validating the field is validating that model (no constraint or validator of the
    field's own): then ``Model.model_validate_json(raw)`` gives what ``json.loads`` + ``field.validate`` give
    (a body that ``json.loads`` would read differently — another encoding, a BOM — fails it and takes the usual
    steps). (The alias of a body field is its parameter's name: it plays no part in validating the value.)"""
    model = _model_of(field)
    info = getattr(field, "field_info", None)
    if model is None or info is None or getattr(info, "metadata", None) or getattr(info, "discriminator", None) is not None:
        return None
    return model


class JSONBody(Response):
    """``Response(content=body, media_type="application/json")`` with status 200, its headers made directly
    (the same two: content-length, then content-type; Starlette adds no charset to application/json)."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode("latin-1")), (b"content-type", b"application/json")]


def _serializer_of(field: ModelField | None) -> Any:
    """What ``field.serialize_json`` amounts to for a plain model field (by alias, nothing included or excluded):
    the model's serializer, called directly."""
    model = _plain_model(field)
    return model.__pydantic_serializer__ if model is not None else None


def _plan(route: Any) -> Optional[_Plan]:
    dependant: Dependant = route.dependant
    if (dependant.call is None or not inspect.iscoroutinefunction(dependant.call) or not _simple_endpoint(dependant)
            or getattr(route, "is_sse_stream", False) or getattr(route, "is_json_stream", False)
            or getattr(route, "stream_item_field", None) is not None or getattr(route, "_embed_body_fields", True)
            or getattr(route, "max_body_size", None) is not None  # (FastAPI's limit wraps the route's app: hot_lane would skip it)
            or not isinstance(route.response_class, DefaultPlaceholder)
            or route.response_model_include is not None or route.response_model_exclude is not None
            or not route.response_model_by_alias or route.response_model_exclude_unset
            or route.response_model_exclude_defaults or route.response_model_exclude_none):
        return None
    deps = tuple(_compile(d) for d in dependant.dependencies)
    if any(d is None for d in deps):
        return None
    body_field: ModelField | None = route.body_field
    if dependant.body_params and (len(dependant.body_params) != 1 or _model_of(body_field) is None):
        return None
    if route.response_field is not None and _model_of(route.response_field) is None:
        return None
    return _Plan(dependant.call, _request_params(dependant), cast(tuple[_Dep, ...], deps),
                 dependant.body_params[0].name if dependant.body_params else None, body_field, _plain_model(body_field),
                 _model_of(route.response_field), route.response_field, _serializer_of(route.response_field),
                 route.status_code in (None, 200), route.status_code,
                 route.dependency_overrides_provider)


def _simple_endpoint(dep: Dependant) -> bool:
    return not (dep.path_params or dep.query_params or dep.header_params or dep.cookie_params
                or dep.websocket_param_name or dep.response_param_name
                or dep.background_tasks_param_name or dep.security_scopes_param_name)


def _json_content(request: Request) -> bool:
    for name, value in request.scope["headers"]:  # the first content-type header, as request.headers.get() reads it
        if name == b"content-type":
            return value.decode("latin-1").partition(";")[0].strip().lower() == "application/json"
    return False


LANE_SCOPE_KEY = "lollms.lean_lane"  # set by hot_lane.HotLane: it calls the handler without FastAPI's router


class NotLean(Exception):
    """In the hot lane: this request needs FastAPI's own handler. ``body``: what was read of it (None: nothing)."""

    def __init__(self, body: bytes | None) -> None:
        super().__init__("not lean")
        self.body = body


@dataclass(frozen=True)
class Lane:
    """A route's complete handler (with its route class's wrappers) and where FastAPI serves it."""

    route: "LeanRoute"
    path: str
    methods: frozenset[str]
    handler: Handler


class LeanRoute(APIRoute):
    """An APIRoute with the direct handler described above (and FastAPI's as the fallback).

    Subclasses set ``request_class`` and wrap the handler in ``wrap_handler`` (not ``get_route_handler``),
    so the complete handler is known here: ``hot_lane`` serves it without FastAPI's routing.
    """

    fast_path_enabled = True  # a test can switch it off to compare both handlers' answers
    request_class: type[Request] = Request
    lanes: dict[int | None, Lane]

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.lanes = {}
        super().__init__(path, endpoint, **kwargs)

    def wrap_handler(self, handler: Handler) -> Handler:
        return handler

    def raw_json_ok(self, raw: bytes) -> bool:
        """Whether the raw body may be validated without the request class's own ``json()`` (a subclass whose
        ``json()`` checks more says no when that check could fail)."""
        return self.request_class is Request

    def get_route_handler(self) -> Handler:
        slow = super().get_route_handler()
        context = _EFFECTIVE.get() if _EFFECTIVE is not None else None  # see _EFFECTIVE
        effective = context if context is not None and getattr(context, "original_route", None) is self else None
        route = effective if effective is not None else self
        plan = _checked_plan(route)
        handler = self.wrap_handler(self._lean_handler(plan, slow) if plan is not None else self._as_own_request(slow))
        key = id(effective) if effective is not None else None  # the included route's context (one per inclusion)
        if plan is not None:  # or None: the route itself
            self.lanes[key] = Lane(self, route.path, frozenset(route.methods or ()), handler)
        else:
            self.lanes.pop(key, None)
        return handler

    def _request(self, request: Request) -> Request:
        cls = self.request_class
        return request if type(request) is cls else cls(request.scope, request.receive)

    def _as_own_request(self, handler: Handler) -> Handler:
        if self.request_class is Request:
            return handler

        async def handle(request: Request) -> Response:
            return await handler(self._request(request))

        return handle

    def _lean_handler(self, plan: _Plan, slow: Handler) -> Handler:
        async def fall_back(request: Request, body: bytes | None) -> Response:
            if request.scope.get(LANE_SCOPE_KEY):
                raise NotLean(body)
            return await slow(request)

        async def handle(request: Request) -> Response:
            request = self._request(request)
            if not type(self).fast_path_enabled or getattr(plan.overrides, "dependency_overrides", None):
                return await fall_back(request, None)
            body: Any = None
            raw: bytes | None = None
            model: Any = None
            if plan.body_field is not None:
                if not _json_content(request):
                    return await fall_back(request, None)
                raw = await request.body()
                if not raw:
                    return await fall_back(request, raw)
                if plan.body_model is not None and self.raw_json_ok(raw):
                    try:  # parsed and validated in one pass; what it refuses takes the steps below, as always
                        model = plan.body_model.model_validate_json(raw)
                    except ValueError:
                        model = None
                if model is None:
                    try:
                        body = await request.json()
                    except ValueError:  # not JSON (or not UTF-8): FastAPI's handler says so in its own words
                        return await fall_back(request, raw)
            values: dict[str, Any] = {}
            cache: dict[Any, Any] = {}
            for dep in plan.deps:
                value = await _solve(dep, request, cache)
                if dep.name:
                    values[dep.name] = value
            if plan.body_field is not None and plan.body_name is not None:
                if model is None:
                    model, errors = plan.body_field.validate(body, {}, loc=("body",))
                    if errors:
                        return await fall_back(request, raw)  # its RequestValidationError, as always
                values[plan.body_name] = model
            for name in plan.request_params:
                values[name] = request
            result = await plan.endpoint(**values)
            if isinstance(result, Response):
                return result
            return self._serialise(plan, result)

        return handle

    def _serialise(self, plan: _Plan, result: Any) -> Response:
        field = plan.response_field
        if field is None or plan.response_model is None:
            from fastapi.encoders import jsonable_encoder
            from fastapi.responses import JSONResponse

            return JSONResponse(jsonable_encoder(result), **self._status(plan))
        if type(result) is not plan.response_model:  # a dict, a subclass…: validate it as FastAPI does
            value, errors = field.validate(result, {}, loc=("response",))
            if errors:
                from fastapi.exceptions import ResponseValidationError

                raise ResponseValidationError(errors=errors, body=result)
            result = value
        if plan.response_serializer is not None and plan.plain_status:
            return JSONBody(plan.response_serializer.to_json(result, by_alias=True))
        response = Response(content=field.serialize_json(result), media_type="application/json", **self._status(plan))
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        return response

    @staticmethod
    def _status(plan: _Plan) -> dict[str, Any]:
        return {"status_code": plan.status_code} if plan.status_code else {}

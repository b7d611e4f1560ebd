"""tokenize / detokenize / count_tokens through a binding instance's tokenizer."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from lollms_server.api.deps import current_services
from lollms_server.api.strict_json import StrictJSONRoute
from lollms_server.api.models import (
    CountTokensRequest,
    CountTokensResponse,
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
)
from lollms_server.core.bindings.base import Binding
from lollms_server.core.errors import BadRequestError
from lollms_server.core.services import Services

router = APIRouter(prefix="/api/v1", tags=["tokens"], route_class=StrictJSONRoute)


def _binding(services: Services, name: str | None) -> Binding:
    name = name or services.config.default_binding("ttt")
    if not name:
        raise BadRequestError("no binding_name given and no default ttt_binding configured")
    return services.bindings.get(name)


@router.post("/tokenize", response_model=TokenizeResponse, summary="Tokenize text")
async def tokenize(req: TokenizeRequest, services: Services = Depends(current_services)) -> TokenizeResponse:
    tokens = await _binding(services, req.binding_name).tokenize(
        req.text, add_bos=req.add_bos, add_eos=req.add_eos, model_name=req.model_name
    )
    return TokenizeResponse(tokens=tokens, count=len(tokens))


@router.post("/detokenize", response_model=DetokenizeResponse, summary="Turn token ids back into text")
async def detokenize(req: DetokenizeRequest, services: Services = Depends(current_services)) -> DetokenizeResponse:
    return DetokenizeResponse(text=await _binding(services, req.binding_name).detokenize(req.tokens, model_name=req.model_name))


@router.post("/count_tokens", response_model=CountTokensResponse, summary="Count tokens in text")
async def count_tokens(req: CountTokensRequest, services: Services = Depends(current_services)) -> CountTokensResponse:
    n = await _binding(services, req.binding_name).count_tokens(
        req.text, add_bos=req.add_bos, add_eos=req.add_eos, model_name=req.model_name
    )
    return CountTokensResponse(count=n)

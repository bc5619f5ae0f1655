"""/openapi.json as the running service answers: the static routes and bodies of
`service.api.schemas`, with the served model's contract (`service.api.contract`) in place of
the free-form feature maps, the API-key scheme when keys are configured, and links between
the operations (create an item, then read, find similar or delete it; set a profile, then
read it or post events). Rebuilt when a reload serves another model."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.api.auth import HEADER
from service.api.contract import contract_of

REF = "#/components/schemas/"
# (schema, property) -> the contract part that replaces its free-form feature map
PARTS = {
    ("RecommendationRequest", "context"): "Context",
    ("RecommendationRequest", "user_features"): "UserFeatures",
    ("RecommendationRequest", "filter"): "Filter",
    ("ProfileRequest", "features"): "UserFeatures",
    ("ItemIn", "features"): "ItemFeatures",
}
SIMILAR = ("/v1/items/{item_id}/similar", "get")
# (operation, status) -> (parameter, where its value comes from, operations it leads to)
LINKS = {
    ("/v1/items", "put", "202"): (
        "item_id",
        "$request.body#/items/0/item_id",
        [("/v1/items/{item_id}", "get"), SIMILAR, ("/v1/items/{item_id}", "delete")],
    ),
    ("/v1/users/{user_id}", "put", "200"): (
        "user_id",
        "$request.path.user_id",
        [("/v1/users/{user_id}", "get"), ("/v1/users/{user_id}/events", "post")],
    ),
}


def install(app: FastAPI) -> None:
    app.openapi = lambda: document(app)  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    runtime = app.state.runtime
    model = runtime.model if runtime is not None else None
    key = model.version if model is not None else None
    cached = getattr(app.state, "openapi", None)
    if cached is None or cached[0] != key:
        app.state.openapi = cached = (key, _build(app, model))
    return cached[1]


def _build(app: FastAPI, model: Any) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    doc = copy.deepcopy(doc)
    if model is not None:
        _add_contract(doc, model)
    settings = app.state.settings
    if settings.api_keys or settings.admin_api_keys:
        _add_api_keys(doc)
    _add_links(doc)
    return doc


def _add_contract(doc: dict[str, Any], model: Any) -> None:
    schemas = doc["components"]["schemas"]
    contract = contract_of(model)
    schemas.update(contract.json_schemas())
    for (name, prop), part in PARTS.items():
        described = schemas[name]["properties"][prop]
        schemas[name]["properties"][prop] = {
            "$ref": REF + part,
            "description": described.get("description", ""),
        }
        _keep_valid_examples(schemas[name], prop, contract, part)
    for param in doc["paths"][SIMILAR[0]][SIMILAR[1]]["parameters"]:
        if param["name"] == "filter":
            param.pop("schema")
            param["content"] = {"application/json": {"schema": {"$ref": REF + "Filter"}}}


def _keep_valid_examples(schema: dict[str, Any], prop: str, contract: Any, part: str) -> None:
    """A static example's feature map, cut to what this model accepts."""
    for example in schema.get("examples", []):
        for where in (example, *example.get("items", [])):
            if isinstance(where, dict) and isinstance(where.get(prop), dict):
                where[prop] = contract.accepted(part, where[prop])


def _add_api_keys(doc: dict[str, Any]) -> None:
    doc["components"]["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": HEADER}
    }
    for operations in doc["paths"].values():
        for operation in operations.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{"ApiKey": []}]


def _add_links(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    for (path, method, status), (name, value, targets) in LINKS.items():
        ids = [paths[p][m]["operationId"] for p, m in targets]
        paths[path][method]["responses"][status]["links"] = {
            i: {"operationId": i, "parameters": {name: value}} for i in ids
        }

"""The OpenAPI 3.1 document: served without a token, valid, and complete."""

from __future__ import annotations

import re

import jsonschema_rs
import schemathesis
from flask import Flask
from flask.testing import FlaskClient

from diversion.jsonapi import openapi

METHODS = ("get", "post", "put", "patch", "delete")


def _operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def test_the_document_is_served_without_a_token(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == openapi.document(app)


def test_the_document_is_valid_openapi_3_1(app: Flask) -> None:
    document = openapi.document(app)
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.1 meta-schema
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name  # each a JSON Schema 2020-12


def test_every_route_of_the_api_is_documented_and_nothing_else(app: Flask) -> None:
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("api.", "provider_api.")):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(path, method.lower()) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    assert served == {(path, method) for path, method, _ in _operations(openapi.document(app))}


def test_every_answer_is_documented(app: Flask) -> None:
    document = openapi.document(app)
    assert document["security"] == [{"bearer": []}]
    bearer = document["components"]["securitySchemes"]["bearer"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    errors = document["components"]["schemas"]["ErrorBody"]
    assert errors["required"] == ["errors"]
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        label = f"{method.upper()} {path}"
        assert operation["operationId"], label
        success = [code for code in responses if code.startswith("2")]
        assert len(success) == 1, label
        assert responses[success[0]]["content"]["application/json"]["schema"], label
        if path.endswith("openapi.json"):
            assert operation["security"] == [], label
            continue
        provider = path.startswith("/api/v1/provider/")
        if provider:
            assert operation["security"] == [{"providerBearer": []}], label
        assert responses["401"] == {"$ref": f"#/components/responses/{'Provider' if provider else ''}Unauthorized"}, \
            label
        if "{" in path:
            assert responses["404"] == {"$ref": f"#/components/responses/{'Provider' if provider else ''}NotFound"}, \
                label
        if "requestBody" in operation or any(p["in"] == "query" for p in operation.get("parameters", [])):
            assert responses["422"] == {"$ref": "#/components/responses/Unprocessable"}, label
        if "requestBody" in operation:
            assert responses["413"] == {"$ref": "#/components/responses/TooLarge"}, label
    for name in ("Unauthorized", "NotFound", "TooLarge", "Unprocessable", "ProviderUnauthorized",
                 "ProviderNotFound", "Conflict"):
        response = document["components"]["responses"][name]
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


def test_derived_facts_are_not_offered(app: Flask) -> None:
    facts = openapi.document(app)["components"]["schemas"]["FactsIn"]
    assert facts["additionalProperties"] is False
    assert {"age", "previous_diversions", "previous_non_engagement", "offence_age_days"}.isdisjoint(
        facts["properties"])
    assert {"offence", "substances", "user_dealer", "stage"} <= set(facts["properties"])


def test_the_webhooks_are_documented_with_their_headers_and_body(app: Flask) -> None:
    document = openapi.document(app)
    assert set(document["webhooks"]) == {"referralCreated", "referralChanged"}
    for item in document["webhooks"].values():
        operation = item["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"Diversion-Delivery", "Diversion-Event", "Diversion-Timestamp", "Diversion-Signature"}
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/WebhookEvent"}
    event = document["components"]["schemas"]["WebhookEvent"]
    assert set(event["required"]) == {"id", "type", "created_at", "data"}
    assert "HMAC-SHA256" in document["info"]["description"]

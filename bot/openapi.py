"""The intake API's OpenAPI description, generated from the same pydantic models that validate requests.

Served at `/api/openapi.json`, so the description can never drift from what the endpoint accepts.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot.applications.schemas import ApplicationIn, ApplicationOut, FieldError

REF = "#/components/schemas/{model}"


def _schemas(*models: tuple[type[BaseModel], JsonSchemaMode]) -> dict[str, Any]:
    """Component schemas, each model in the mode it is used in (a request body validates, a response
    serialises: `MoneyIn.amount` takes a number or a string, `MoneyOut.amount` is a string)."""
    _, document = models_json_schema(list(models), ref_template=REF)
    schemas: dict[str, Any] = document.get("$defs", {})
    return schemas


def _error(description: str, ref: str = "Error") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def openapi_spec(max_body_bytes: int) -> dict[str, Any]:
    schemas = _schemas(
        (ApplicationIn, "validation"), (ApplicationOut, "serialization"), (FieldError, "serialization")
    )
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    }
    schemas["ValidationErrors"] = {
        "type": "object",
        "required": ["error", "errors"],
        "properties": {
            "error": {"type": "string", "const": "invalid_application"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
        },
    }
    app_json = {"application/json": {"schema": {"$ref": "#/components/schemas/ApplicationOut"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Credit Desk intake API",
            "version": "1",
            "description": (
                "Submit credit applications to Credit Desk. Idempotent by `reference`: sending the same "
                "application again returns the first (200); reusing a reference for different content is "
                f"refused (409). Bodies over {max_body_bytes} bytes are refused (413)."
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/applications": {
                "post": {
                    "operationId": "submitApplication",
                    "summary": "Submit a credit application",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ApplicationIn"}}
                        },
                    },
                    "responses": {
                        "201": {"description": "Created", "content": app_json},
                        "200": {"description": "A repeat of an earlier reference", "content": app_json},
                        "400": _error("The body is not a JSON object"),
                        "401": _error("Missing or wrong bearer token"),
                        "409": _error("The reference names a different application"),
                        "413": _error("The body is too large"),
                        "415": _error("The body is not application/json"),
                        "422": _error("One message per invalid field", "ValidationErrors"),
                        "503": _error("The intake API is not configured"),
                    },
                }
            },
            "/api/applications/{id}": {
                "get": {
                    "operationId": "getApplication",
                    "summary": "Read one application (Federal ID masked)",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": {
                        "200": {"description": "The application", "content": app_json},
                        "401": _error("Missing or wrong bearer token"),
                        "404": _error("No such application"),
                    },
                }
            },
        },
    }

"""Reading what Label Studio sends: a JSON object body and a project id, or a 400 naming the problem."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def project_id(value: object) -> str:
    """Label Studio sends '<id>.<created_at>' to /setup and /predict, a dict or int elsewhere."""
    if isinstance(value, dict):
        value = value.get("id")
    text = str(value).split(".", 1)[0] if value is not None else ""
    if not text.isdigit():
        raise BadRequest(f"missing or invalid project id: {value!r}")
    return text

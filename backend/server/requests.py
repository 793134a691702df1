"""Reading what Label Studio sends: a JSON object body and a project id, or a 400 naming the problem."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest

from backend.storage.layout import PROJECT_ID


def json_body() -> dict:
    """The body as a JSON object; a body that is not one (or nests absurdly deep) is a 400."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest("the request body nests too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def project_id(value: object) -> str:
    """Label Studio sends '<id>.<created_at>' to /setup and /predict, a dict or int elsewhere."""
    if isinstance(value, dict):
        value = value.get("id")
    text = str(value).split(".", 1)[0] if value is not None and not isinstance(value, bool) else ""
    if not PROJECT_ID.fullmatch(text):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise BadRequest(f"missing or invalid project id (a Label Studio project number): {shown}")
    return str(int(text))

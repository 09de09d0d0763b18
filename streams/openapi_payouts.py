"""The OpenAPI paths of the statement lifecycle and auth routes (:mod:`streams.payouts`),
merged into :func:`streams.openapi.openapi_document`."""

from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_ERR = {
    "description": "refused",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": _STR,
                    "code": _STR,
                    "audit_id": _STR,
                    "record": {"$ref": "#/components/schemas/AuditRecord"},
                },
            }
        }
    },
}
_AUTH = {"401": _ERR, "403": _ERR}
_PERIOD = {"type": "string", "pattern": r"^\d{4}-(\d{2}|Q[1-4])$", "example": "2026-11"}


def _p(name: str, where: str, description: str, schema: dict[str, Any] = _STR) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


REP = _p("rep_id", "path", "rep id")
PERIOD = _p("period", "path", "period", _PERIOD)
PERIOD_Q = _p("period", "query", "only this period (default: every closed period)", _PERIOD)
_REC = {"$ref": "#/components/schemas/AuditRecord"}
_STATEMENT = {"$ref": "#/components/schemas/StatementStatus"}
_OUTCOME = {
    "200": _ok({"type": "object", "properties": {"record": _REC}}),
    "202": _ok(
        {"type": "object", "properties": {"command_id": _STR, "audit_id": _STR, "pending": {}}}
    ),
    "400": _ERR,
    "409": _ERR,
    "413": _ERR,
    "422": _ERR,
    **_AUTH,
}


def _names(params: list[dict[str, Any]]) -> dict[str, Any]:
    """400 for a malformed or impossible period, 404 for an unknown rep, where named."""
    out: dict[str, Any] = {}
    if any(p["name"] == "period" for p in params):
        out["400"] = _ERR
    if REP in params:
        out["404"] = _ERR
    return out


def _get(summary: str, schema: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["payouts"],
            "parameters": params,
            "responses": {"200": _ok(schema), **_names(params), **_AUTH},
            "security": [{"bearer": []}],
        }
    }


def _post(summary: str, body: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "tags": ["payouts"],
            "parameters": params,
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": {"type": "object", "properties": body}}},
            },
            "responses": {**_OUTCOME, **_names(params)},
            "security": [{"bearer": []}],
        }
    }


_VERSION = {
    "type": "integer",
    "minimum": 0,
    "maximum": 1_000_000,
    "description": "the statement version you saw",
}
_CMD_ID = {
    "type": "string",
    "pattern": "^[A-Za-z0-9._:-]{1,200}$",
    "description": "optional: resending the same command with the same id applies it once; "
    "the same id for another command on the same statement is a 409 (reused_id)",
}

PAYOUT_SCHEMAS: dict[str, Any] = {
    "AuditRecord": {
        "type": "object",
        "properties": {
            "audit_id": _STR,
            "command_id": _STR,
            "action": _STR,
            "outcome": {"type": "string", "enum": ["applied", "refused"]},
            "code": _STR,
            "message": _STR,
            "rep_id": _STR,
            "period": _STR,
            "actor_id": _STR,
            "actor_role": _STR,
            "at": _STR,
            "state_before": _STR,
            "state_after": _STR,
            "version_before": {"type": "integer"},
            "version_after": {"type": "integer"},
            "reason": _STR,
            "reference": _STR,
            "amounts": {"type": "object", "additionalProperties": _STR},
        },
    },
    "StatementStatus": {
        "type": "object",
        "properties": {
            "rep_id": _STR,
            "period": _STR,
            "status": {
                "type": "string",
                "enum": ["open", "closed", "reviewed", "approved", "paid"],
            },
            "version": {"type": "integer"},
            "reviewed_by": {"type": "string", "nullable": True},
            "approved_by": {"type": "string", "nullable": True},
            "totals": {"type": "object", "additionalProperties": _STR},
            "approved_totals": {"type": "object", "additionalProperties": _STR},
            "paid": {"type": "object", "additionalProperties": _STR},
            "reference": _STR,
            "return_reason": _STR,
        },
    },
}

_LIST = {"type": "array", "items": _STATEMENT}

PAYOUT_PATHS: dict[str, Any] = {
    "/api/me": _get(
        "The caller (null without a token) and whether authentication is on",
        {"type": "object", "properties": {"auth": {"type": "boolean"}, "user": {}}},
        [],
    ),
    "/api/statements": _get(
        "Statements the caller may read, with their lifecycle state",
        {"type": "object", "properties": {"statements": _LIST}},
        [PERIOD_Q, _p("status", "query", "only this state")],
    ),
    "/api/statements/{rep_id}/{period}": _get(
        "A statement's state, exact totals, prior-period adjustments and history",
        _STATEMENT,
        [REP, PERIOD],
    ),
    "/api/statements/{rep_id}/{period}/history": _get(
        "A statement's audit trail (and its period's close)",
        {"type": "object", "properties": {"history": {"type": "array", "items": _REC}}},
        [REP, PERIOD],
    ),
    "/api/statements/{rep_id}/{period}/review": _post(
        "Review (the rep's manager)", {"version": _VERSION, "command_id": _CMD_ID}, [REP, PERIOD]
    ),
    "/api/statements/{rep_id}/{period}/return": _post(
        "Return to closed with a reason (manager; finance from reviewed)",
        {"version": _VERSION, "reason": _STR, "command_id": _CMD_ID},
        [REP, PERIOD],
    ),
    "/api/statements/{rep_id}/{period}/approve": _post(
        "Approve (finance; not the reviewer, not the rep); freezes the exact totals",
        {"version": _VERSION, "command_id": _CMD_ID},
        [REP, PERIOD],
    ),
    "/api/statements/{rep_id}/{period}/pay": _post(
        "Record the payment (finance): amounts must equal the approved totals",
        {
            "version": _VERSION,
            "amounts": {"type": "object", "additionalProperties": _STR},
            "reference": _STR,
            "command_id": _CMD_ID,
        },
        [REP, PERIOD],
    ),
    "/api/periods/{period}/close": _post(
        "Close a period (admin): later deltas become prior-period adjustments",
        {"command_id": _CMD_ID},
        [PERIOD],
    ),
    "/api/plans": {
        "post": {
            "summary": "Publish a plan version (admin): the YAML or JSON text of a plan file",
            "tags": ["payouts"],
            "requestBody": {
                "required": True,
                "content": {"application/yaml": {"schema": {"type": "string"}}},
            },
            "responses": {
                "200": _ok({"type": "object", "properties": {"record": _REC}}),
                "400": _ERR,
                "409": _ERR,
                "413": _ERR,
                **_AUTH,
            },
            "security": [{"bearer": []}],
        }
    },
    "/api/queues": _get(
        "Approval queues: to review (manager), approve and pay (finance)",
        {
            "type": "object",
            "properties": {"review": _LIST, "approve": _LIST, "pay": _LIST},
        },
        [PERIOD_Q],
    ),
    "/api/payouts": _get(
        "Payout history: paid statements, latest first",
        {"type": "object", "properties": {"payouts": _LIST}},
        [PERIOD_Q],
    ),
    "/api/audit": _get(
        "The audit trail (finance, admin)",
        {"type": "object", "properties": {"records": {"type": "array", "items": _REC}}},
        [
            _p("rep", "query", "only this rep"),
            _p("period", "query", "only this period", _PERIOD),
            _p("limit", "query", "at most this many", {"type": "integer"}),
        ],
    ),
}

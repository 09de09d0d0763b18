"""The OpenAPI 3 document of the worker's ``/api`` routes, written by hand.

A test checks that every route the app registers under ``/api`` is described here and
that nothing here is missing from the app.
"""

from __future__ import annotations

from typing import Any

from .openapi_payouts import PAYOUT_PATHS, PAYOUT_SCHEMAS

Money = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "example": "123.45"}
Fraction = {"type": "string", "description": "a decimal fraction as text", "example": "0.8125"}
Period = {"type": "string", "pattern": r"^\d{4}-(\d{2}|Q[1-4])$", "example": "2026-11"}
NullableString = {"type": "string", "nullable": True}

_ERROR = {
    "description": "error",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
        }
    },
}


def _param(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


PERIOD_Q = _param("period", "query", Period, "booked period; default: the current UTC month")
TEAM_Q = _param("team", "query", {"type": "string"}, "only reps of this team (ranks within it)")
REGION_Q = _param("region", "query", {"type": "string"}, "only reps of this region")
LIMIT_Q = _param(
    "limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}, "rows"
)
REP_P = _param("rep_id", "path", {"type": "string"}, "rep id")
CUSTOMER_P = _param("customer_id", "path", {"type": "string"}, "customer id")
LANG_Q = _param("lang", "query", {"type": "string", "enum": ["en", "zh"]}, "language")


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _get(
    summary: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    tag: str = "worker",
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if parameters:
        op["parameters"] = parameters
    return {"get": op}


_NO_SINK = {"404": _ERROR}

SCHEMAS: dict[str, Any] = {
    "LeaderRow": {
        "type": "object",
        "properties": {
            "rank": {"type": "integer"},
            "rep_id": {"type": "string"},
            "name": NullableString,
            "team_id": NullableString,
            "region": NullableString,
            "currency": {"type": "string"},
            "commission": Money,
            "revenue_base": Money,
            "quota": {**Money, "nullable": True, "description": "revenue quota for the period"},
            "attainment": {**Fraction, "nullable": True, "description": "revenue / quota"},
            "change_today": {**Money, "description": "commission booked since 00:00 UTC"},
            "deltas": {"type": "integer"},
        },
    },
    "Leaderboard": {
        "type": "object",
        "properties": {
            "period": Period,
            "team": NullableString,
            "region": NullableString,
            "today_starts": {"type": "string", "format": "date-time"},
            "generated_at": {"type": "string", "format": "date-time"},
            "rows": {"type": "array", "items": _ref("LeaderRow")},
        },
    },
    "Statement": {
        "type": "object",
        "properties": {
            "rep_id": {"type": "string"},
            "period": Period,
            "lang": {"type": "string", "enum": ["en", "zh"]},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "one delta: order, rule, base, rate, earned fraction, "
                    "cause; `explanation` says in words why it has its amount",
                    "properties": {
                        "delta_id": {"type": "string"},
                        "kind": {
                            "type": "string",
                            "enum": ["commission", "adjustment", "accelerator"],
                        },
                        "order_id": NullableString,
                        "customer_id": NullableString,
                        "amount": Money,
                        "currency": {"type": "string"},
                        "occurred_at": {"type": "string", "format": "date-time"},
                        "explanation": {"type": "string"},
                    },
                    "additionalProperties": True,
                },
            },
            "totals": {"type": "object", "additionalProperties": True},
            "offset": {"type": "integer", "description": "statement position of lines[0]"},
            "limit": {
                "type": "integer",
                "nullable": True,
                "description": "the page size asked for (null: every line from offset)",
            },
            "line_count": {"type": "integer", "description": "lines in the whole statement"},
            "days": {
                "type": "array",
                "description": "the whole statement's amounts per UTC day of occurred_at "
                "and currency (the earnings curve), whatever the page",
                "items": {
                    "type": "object",
                    "properties": {
                        "day": {"type": "string", "format": "date"},
                        "currency": {"type": "string"},
                        "amount": Money,
                    },
                },
            },
        },
    },
    "Customer": {
        "type": "object",
        "properties": {
            "customer": {"type": "object", "additionalProperties": True},
            "orders": {"type": "array", "items": {"type": "object"}},
            "favourite_categories": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "category": {"type": "string"},
                        "revenue": Money,
                        "orders": {"type": "integer"},
                    },
                },
            },
            "favourite_products": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string"},
                        "revenue": Money,
                        "quantity": {"type": "string"},
                    },
                },
            },
            "loyalty": {
                "type": "object",
                "properties": {
                    "orders_365d": {"type": "integer"},
                    "tenure_days": {"type": "integer", "nullable": True},
                    "first_order_at": {"type": "string", "nullable": True},
                },
            },
            "open_payments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "order_id": {"type": "string"},
                        "total": Money,
                        "paid": Money,
                        "outstanding": Money,
                    },
                },
            },
            "commission": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "rep_id": {"type": "string"},
                        "currency": {"type": "string"},
                        "amount": Money,
                    },
                },
            },
        },
    },
}


PATHS: dict[str, Any] = {
    "/api/health": _get(
        "Ready to serve (200) or not yet (503)",
        {
            "200": _json({"type": "object", "properties": {"ready": {"type": "boolean"}}}),
            "503": _json({"type": "object"}, "not ready"),
        },
    ),
    "/api/status": _get(
        "Counters of this worker: events in, dead letters, deltas out and stored, plans",
        {"200": _json({"type": "object", "additionalProperties": True})},
    ),
    "/api/leaderboard": _get(
        "Reps ranked by commission booked in a period, with revenue, attainment against "
        "quota and the change since 00:00 UTC",
        {"200": _json(_ref("Leaderboard")), "400": _ERROR, **_NO_SINK},
        [PERIOD_Q, TEAM_Q, REGION_Q, LIMIT_Q],
        "leaderboard",
    ),
    "/api/leaderboard/stream": _get(
        "Server-sent events: a `leaderboard` event (body as /api/leaderboard plus "
        "`version`) at once and after every ledger change",
        {
            "200": {
                "description": "an endless text/event-stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "400": _ERROR,
            **_NO_SINK,
        },
        [PERIOD_Q, TEAM_Q, REGION_Q, LIMIT_Q],
        "leaderboard",
    ),
    "/api/filters": _get(
        "Teams, regions and booked periods to filter the leaderboard by",
        {
            "200": _json(
                {
                    "type": "object",
                    "properties": {
                        "teams": {"type": "array", "items": {"type": "string"}},
                        "regions": {"type": "array", "items": {"type": "string"}},
                        "periods": {"type": "array", "items": Period},
                        "current_period": Period,
                    },
                }
            )
        },
        tag="leaderboard",
    ),
    "/api/totals": _get(
        "Exact per-rep, per-period, per-currency totals from the ledger",
        {
            "200": _json(
                {
                    "type": "object",
                    "properties": {
                        "totals": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "rep_id": {"type": "string"},
                                    "period": Period,
                                    "currency": {"type": "string"},
                                    "amount": Money,
                                },
                            },
                        }
                    },
                }
            ),
            **_NO_SINK,
        },
    ),
    "/api/performance": _get(
        "Performance statistics by rep, team, customer, product, category, region and "
        "time, with the change against the previous period (same query options as "
        "`comstream report performance`)",
        {"200": _json({"type": "object", "additionalProperties": True}), "400": _ERROR},
        [
            _param(
                "by",
                "query",
                {"type": "string", "default": "rep"},
                "dimensions, comma-separated: rep, team, customer, product, category, "
                "region, and optionally a time grain: day, week, month, quarter",
            ),
            PERIOD_Q,
            _param("compare", "query", {"type": "boolean", "default": True}, "change vs previous"),
            *(
                _param(d, "query", {"type": "string"}, f"only this {d}")
                for d in ("rep", "team", "customer", "product", "category", "region")
            ),
        ],
        "bi",
    ),
    "/api/customers/{customer_id}": _get(
        "A customer: CRM facts, orders, favourite categories and products, loyalty, "
        "open payments and the commission generated",
        {"200": _json(_ref("Customer")), "404": _ERROR},
        [CUSTOMER_P],
        "bi",
    ),
    "/api/reps/{rep_id}/statement": _get(
        "A rep's statement for a period, or a page of it: each delta with its "
        "explanation, the totals and the earnings per day",
        {"200": _json(_ref("Statement")), "400": _ERROR, **_NO_SINK},
        [
            REP_P,
            PERIOD_Q,
            LANG_Q,
            _param(
                "offset",
                "query",
                {"type": "integer", "minimum": 0, "default": 0},
                "first line of the page, in statement order (occurred_at, delta_id)",
            ),
            _param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 5000},
                "lines on the page; default: every line from offset",
            ),
        ],
        "bi",
    ),
    "/api/reps/{rep_id}/statement.html": _get(
        "The same statement as a printable HTML page",
        {
            "200": {
                "description": "HTML",
                "content": {"text/html": {"schema": {"type": "string"}}},
            },
            **_NO_SINK,
        },
        [REP_P, PERIOD_Q, LANG_Q],
        "bi",
    ),
    "/api/exceptions": _get(
        "Money to look at (finance, admin): overpaid orders, whose net payments exceed "
        "their total, largest excess first",
        {
            "200": _json(
                {
                    "type": "object",
                    "properties": {
                        "overpaid": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "order_id": {"type": "string"},
                                    "customer_id": {"type": "string"},
                                    "currency": {"type": "string"},
                                    "total": {"type": "string"},
                                    "paid": {"type": "string"},
                                    "excess": {"type": "string"},
                                },
                            },
                        }
                    },
                }
            ),
            **_NO_SINK,
        },
        tag="reconcile",
    ),
    "/api/orders/commission": _get(
        "The ledger's per-order commission sums of one period, each delta id once (what "
        "`comstream reconcile` compares with the order system)",
        {
            "200": _json(
                {
                    "type": "object",
                    "properties": {
                        "period": Period,
                        "rows": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "order_id": {"type": "string"},
                                    "rep_id": {"type": "string"},
                                    "currency": {"type": "string"},
                                    "amount": Money,
                                    "deltas": {"type": "integer"},
                                },
                            },
                        },
                    },
                }
            ),
            "400": _ERROR,
            **_NO_SINK,
        },
        [
            {**PERIOD_Q, "required": True, "description": "the period"},
            {
                "name": "by",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["booked", "origin"]},
                "description": "deltas booked in the period (default) or caused in it, "
                "wherever booked (prior-period adjustments of it included)",
            },
        ],
        "reconcile",
    ),
    "/api/openapi.json": _get(
        "This document",
        {"200": _json({"type": "object"})},
    ),
}


PUBLIC_PATHS = frozenset({"/api/health", "/api/openapi.json"})
"""The routes that need no token (``streams.payouts.ROUTE_POLICY`` agrees: a test)."""

_REFUSED = {
    "401": {"description": "no token, or one that names no active user"},
    "403": {"description": "the caller's role or ownership does not allow it"},
}
_NAMES = {
    "400": {"description": "a malformed or impossible period"},
    "404": {"description": "an unknown rep"},
}


def _with_refusals(paths: dict[str, Any]) -> dict[str, Any]:
    """``paths`` with the refusals of the auth middleware declared on every route that
    needs a token, and those of its name checks on every route that names a rep."""
    out: dict[str, Any] = {}
    for path, ops in paths.items():
        out[path] = {}
        for method, op in ops.items():
            responses = dict(op.get("responses", {}))
            if path not in PUBLIC_PATHS:
                for code, answer in _REFUSED.items():
                    responses.setdefault(code, answer)
            if "{rep_id}" in path:
                for code, answer in _NAMES.items():
                    responses.setdefault(code, answer)
            out[path][method] = {**op, "responses": responses}
    return out


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document (a fresh dict each call)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "comstream worker API",
            "version": "1",
            "description": "Leaderboards, statements, customers and performance from the "
            "commission ledger. Money is a decimal string; instants are ISO 8601 UTC.",
        },
        "paths": _with_refusals({**PATHS, **PAYOUT_PATHS}),
        "components": {
            "schemas": {**SCHEMAS, **PAYOUT_SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

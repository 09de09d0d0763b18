"""The payout workflow in a real browser (docs/payouts.md): each role signs in with the
link ``comstream users add`` prints (``?token=``), the admin closes the period, the
manager reviews, finance approves and records the payment on the queue page, the payout
history lists it, and the rep's page shows the statement's state and history. Script-
shaped free text is shown as text, never run."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from comstream.publish import publish_events
from comstream.replay import replay
from streams.users import new_user, publish_user
from tests.e2e.test_web_ui import _shot, browser  # noqa: F401 - the browser fixture
from tests.integration.test_pipeline import generated, n_dimension_events
from tests.integration.workers import deployment, launch, wait_until

pytestmark = pytest.mark.e2e

P = "2026-11"
R = "rep-004"  # team-east
NASTY = "<img src=x onerror=alert(1)><script>alert(2)</script>'); DROP TABLE audit_log;--"


def _get(base: str, path: str, token: str) -> Any:
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def test_a_period_walks_to_paid_through_the_ui(
    kafka_bootstrap: str,
    tmp_path: Path,
    browser: Any,  # noqa: F811
) -> None:
    settings = deployment(kafka_bootstrap, tmp_path)
    events = generated(orders=40, seed=11)
    expected = replay(events).totals()
    tokens = {}
    for name, role, rep_id, team in (
        ("admin", "admin", None, None),
        ("Mia Manager", "manager", None, "team-east"),
        ("Fay Finance", "finance", None, None),
        (NASTY, "rep", R, "team-east"),
    ):
        user, token = new_user(name, role, rep_id, team)
        publish_user(settings, user)
        tokens[role] = token
    n_dims = n_dimension_events(events)
    publish_events(events[:n_dims], kafka_bootstrap, settings.topics)
    worker = launch(settings)
    base = settings.web_url
    dialogs: list[str] = []

    blocked: list[str] = []  # what the Content-Security-Policy refused, if anything

    def page_as(role: str, path: str) -> Any:
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on(
            "console",
            lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
        )
        if role == "admin":  # the older ?token= form of the sign-in link
            sep = "&" if "?" in path else "?"
            page.goto(f"{base}{path}{sep}token={tokens[role]}")
        else:  # the link `comstream users add` prints: the token in the fragment
            page.goto(f"{base}{path}#token={tokens[role]}")
        return page

    try:

        def totals() -> dict[tuple[str, str, str], Any]:
            body = _get(base, "/api/totals", tokens["admin"])
            if body is None:
                return {}
            from decimal import Decimal

            return {
                (r["rep_id"], r["period"], r["currency"]): Decimal(r["amount"])
                for r in body["totals"]
            }

        def ingested() -> bool:
            status = _get(base, "/api/status", tokens["admin"])
            return status is not None and status["events_in"] >= n_dims

        wait_until(ingested, 60, "CRM ingested")
        publish_events(events[n_dims:], kafka_bootstrap, settings.topics)
        wait_until(lambda: totals() == expected, 180, "stream totals == replay")

        admin = page_as("admin", "/queues")
        admin.wait_for_selector("#close-period")
        assert "token=" not in admin.url  # taken into localStorage, out of the address
        admin.fill("#close-period", P)
        admin.click("#close-button")
        admin.wait_for_selector("#close .notice .ok")
        _shot(admin, "queues-admin")

        manager = page_as("manager", f"/queues?period={P}")
        row = manager.wait_for_selector(f'#queue-review tr[data-rep="{R}"]')
        row.query_selector("button.act-review").click()
        manager.wait_for_selector(f'#queue-review tr[data-rep="{R}"] .notice .ok')
        _shot(manager, "queues-manager")

        finance = page_as("finance", f"/queues?period={P}")
        row = finance.wait_for_selector(f'#queue-approve tr[data-rep="{R}"]')
        row.query_selector("button.act-approve").click()
        finance.wait_for_selector(f'#queue-approve tr[data-rep="{R}"] .notice .ok')
        row = finance.wait_for_selector(f'#queue-pay tr[data-rep="{R}"]', timeout=15_000)
        row.query_selector("input.reference").fill(NASTY)
        row.query_selector("button.act-pay").click()
        finance.wait_for_selector(f'#queue-pay tr[data-rep="{R}"] .notice .ok')
        _shot(finance, "queues-finance")

        finance.goto(f"{base}/payouts")
        cell = finance.wait_for_selector("#payouts td.free-text")
        assert cell.text_content() == NASTY
        _shot(finance, "payouts")

        rep = page_as("rep", f"/reps/{R}?period={P}")
        rep.wait_for_selector("#lifecycle .badge.state-paid")
        assert "token" not in rep.url  # taken out of the address (and history) at once
        assert "token" not in (rep.get_attribute("#printable", "href") or "token")
        with rep.context.expect_page() as printable:
            rep.click("#printable")
        printed = printable.value
        printed.wait_for_selector("h1")
        assert printed.url.startswith("blob:") and "token" not in printed.url
        assert R in (printed.text_content("body") or "")
        steps = rep.eval_on_selector_all(
            "#history tr.audit td:nth-child(3)", "els => els.map(e => e.textContent)"
        )
        assert steps == ["close_period", "review", "approve", "pay"]
        assert rep.text_content("header .who") is not None
        assert NASTY in (rep.text_content("header .who") or "")
        rep.click("#lang-zh")
        rep.wait_for_selector("#lifecycle .badge.state-paid")
        assert rep.text_content("#lifecycle .badge.state-paid") == "已发放"
        _shot(rep, "rep-lifecycle-zh")
        assert dialogs == []  # no script from free text ever ran
        assert blocked == []  # the pages need nothing the security policy refuses
        # the rep may not open the queues
        rep.goto(f"{base}/queues")
        rep.wait_for_selector("main .error")
    finally:
        worker.stop()

"""The sandbox municipality over real HTTP: determinism, test personnummer, each system's contract, faults, reset."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from stdnum.se import personnummer as stdnum_personnummer

from sandbox.app import generate_data
from sandbox.people import TEST_BIRTH_NUMBERS, is_test_personnummer
from sandbox.state import SandboxOptions
from sandbox.testing import running_sandbox

SMALL = {
    "applications": 60,
    "substitutes": 30,
    "open_shifts": 12,
    "homecare_visits": 60,
    "homecare_staff": 10,
    "employees": 40,
}
PURPOSE = {
    "case_id": "EB-202612-0001",
    "purpose": "Handläggning av ekonomiskt bistånd",
    "legal_basis": "11 kap. 11 § SoL",
    "organisation": "Ronneby kommun",
    "case_worker": "robot:ronney",
}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """One sandbox for the module (frozen clock); each test starts from a reset."""
    with running_sandbox(seed=1, time_scale=0) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    """A client of the shared sandbox, reset to seed 1 and default options first."""
    with httpx.Client(base_url=base_url, timeout=10) as c:
        reset = c.post(
            "/admin/reset", json={"seed": 1, "options": SandboxOptions(time_scale=0).model_dump(mode="json")}
        )
        assert reset.status_code == 200, reset.text
        yield c


def snapshot(c: httpx.Client) -> dict[str, Any]:
    """A broad sample of what the systems serve."""
    apps = c.get("/eservice/applications", params={"limit": 1000}).json()["items"]
    return {
        "applications": apps,
        "details": [c.get(f"/eservice/applications/{a['id']}").json() for a in apps[:15]],
        "shifts": c.get("/staffing/shifts", params={"status": "all"}).json(),
        "substitutes": c.get("/staffing/substitutes").json(),
        "visits": c.get("/homecare/visits").json(),
        "staff": c.get("/homecare/staff").json(),
        "history": c.get("/homecare/history").json(),
        "baseline": c.get("/homecare/plans/baseline").json(),
        "schedules": c.get("/scheduling/schedules", params={"status": "all"}).json(),
        "employees": c.get("/scheduling/employees").json(),
        "truth": c.get("/admin/truth").json(),
    }


class TestDeterminism:
    """The same seed gives the same data, over HTTP and in-process; another seed gives other data."""

    def test_same_seed_same_data_different_seed_different(self) -> None:
        with (
            running_sandbox(seed=7, **SMALL) as a,
            running_sandbox(seed=7, **SMALL) as b,
            running_sandbox(seed=8, **SMALL) as other,
            httpx.Client(timeout=10) as http,
        ):
            snaps = []
            for url in (a, b, other):
                http.base_url = httpx.URL(url)
                snaps.append(snapshot(http))
        assert snaps[0] == snaps[1]
        for key in ("applications", "substitutes", "visits", "employees", "truth"):
            assert snaps[0][key] != snaps[2][key], key

    def test_generation_is_independent_of_process_state(self) -> None:
        options = SandboxOptions(**SMALL)
        assert generate_data(3, options) == generate_data(3, options)
        assert generate_data(3, options).applications != generate_data(4, options).applications

    def test_today_moves_the_data(self) -> None:
        data = generate_data(1, SandboxOptions(today="2027-03-10", **SMALL))
        assert {a["month"] for a in data.applications} == {"2027-04"}
        assert data.homecare["date"] == "2027-03-11"


class TestGeography:
    """Each municipality the sandbox plays is made of its own places, not Ronneby's under another code."""

    def test_karlshamn_has_its_own_localities_workplaces_and_employers(self) -> None:
        with (
            running_sandbox(seed=2, tenant="1082", homecare_groups=2, **SMALL) as url,
            httpx.Client(base_url=url, timeout=10) as http,
        ):
            health = http.get("/admin/health").json()
            units = {u["name"] for u in http.get("/staffing/units").json()["items"]}
            groups = http.get("/homecare/groups").json()["items"]
        assert health["tenant"] == "1082" and health["municipality"] == "Karlshamns kommun"
        assert "Hemtjänst Mörrum" in units and not any("Ronneby" in u or "Kallinge" in u for u in units)
        assert [g["name"] for g in groups] == ["Hemtjänst Karlshamn centrum", "Hemtjänst Asarum"]
        assert all(56.1 < g["office"]["lat"] < 56.3 and 14.7 < g["office"]["lon"] < 15.0 for g in groups)

        data = generate_data(2, SandboxOptions(tenant="1082", **SMALL))
        text = json.dumps([data.applications, data.substitutes, data.shifts, data.employees, data.registers])
        assert "Ronneby" not in text and "Kallinge" not in text
        assert "Karlshamn" in text

    def test_a_code_without_a_geography_of_its_own_plays_ronneby_under_its_code(self) -> None:
        options = SandboxOptions(tenant="0180", **SMALL)
        assert options.municipality == "Ronneby kommun"
        assert {g["area"] for g in generate_data(1, options).homecare["groups"]} == {"Ronneby centrum"}
        assert SandboxOptions(tenant="1082", municipality="Karlshamn").municipality == "Karlshamn"


class TestPersonnummer:
    """Every personnummer is a valid test number; the deliberately broken ones are listed and invalid."""

    def test_every_personnummer_is_valid_and_in_the_test_series(self, client: httpx.Client) -> None:
        truth = client.get("/admin/truth").json()
        broken_apps = set(truth["eservice"]["invalid_personnummer"])
        numbers: list[str] = []
        broken: list[str] = []
        for summary in client.get("/eservice/applications", params={"limit": 1000}).json()["items"]:
            app = client.get(f"/eservice/applications/{summary['id']}").json()
            members = [app["applicant"], *([app["co_applicant"]] if app["co_applicant"] else []), *app["children"]]
            for m in members:
                (numbers if is_test_personnummer(m["personnummer"]) else broken).append(m["personnummer"])
            if summary["id"] not in broken_apps:
                assert all(is_test_personnummer(m["personnummer"]) for m in members), summary["id"]
        numbers += [s["personnummer"] for s in client.get("/staffing/substitutes").json()["items"]]
        numbers += [e["personnummer"] for e in client.get("/scheduling/employees").json()["items"]]
        numbers += [c["personnummer"] for c in client.get("/homecare/clients").json()["items"]]
        assert len(numbers) > 2000
        for n in numbers:
            assert stdnum_personnummer.is_valid(n) and int(n[8:11]) in TEST_BIRTH_NUMBERS, n
        assert len(numbers) == len(set(numbers)), "people are unique"
        assert len(broken) == len(broken_apps)
        for n in broken:  # right series, wrong check digit: can belong to nobody
            assert int(n[8:11]) in TEST_BIRTH_NUMBERS and not stdnum_personnummer.is_valid(n)

    def test_no_personnummer_in_any_url(self, client: httpx.Client) -> None:
        paths = list(client.get("/openapi.json").json()["paths"])
        assert "/registers/lookup" in paths
        assert not [p for p in paths if "personnummer" in p.lower() or "pnr" in p.lower()]


class TestRegisters:
    """SSBTEK-like lookups: refused without case id, purpose and legal basis; undeclared incomes show."""

    @pytest.mark.parametrize("missing", ["case_id", "purpose", "legal_basis"])
    def test_refused_without_case_purpose_or_legal_basis(self, client: httpx.Client, missing: str) -> None:
        body = {**PURPOSE, "personnummer": self._adult(client), "period": {"from": "2026-11-01", "to": "2026-11-30"}}
        del body[missing]
        r = client.post("/registers/lookup", json=body)
        assert r.status_code == 400
        assert r.json()["missing"] == [missing]
        blank = client.post("/registers/lookup", json={**body, missing: "  "})
        assert blank.status_code == 400

    def test_personnummer_in_url_refused_header_accepted(self, client: httpx.Client) -> None:
        number = self._adult(client)
        period = {"from": "2026-09-01", "to": "2026-11-30"}
        r = client.post("/registers/lookup", params={"personnummer": number}, json={**PURPOSE, "period": period})
        assert r.status_code == 400 and r.json()["error"] == "personnummer_in_url"
        r = client.post("/registers/lookup", headers={"X-Personnummer": number}, json={**PURPOSE, "period": period})
        assert r.status_code == 200 and r.json()["found"] is True
        assert set(r.json()["sources"]) >= {"forsakringskassan", "arbetsformedlingen", "csn", "skatteverket", "akassa"}
        bad = client.post(
            "/registers/lookup",
            json={
                **PURPOSE,
                "period": period,
                "personnummer": number[:-1] + "0" if number[-1] != "0" else number[:-1] + "1",
            },
        )
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_personnummer"

    def test_undeclared_income_is_in_the_register_and_lookups_are_recorded(self, client: httpx.Client) -> None:
        planted = client.get("/admin/state/registers").json()["scenarios"]["undeclared_income"]
        assert planted, "seed 1 plants undeclared incomes"
        case = planted[0]
        app = client.get(f"/eservice/applications/{case['application_id']}").json()
        r = client.post(
            "/registers/lookup",
            json={
                **PURPOSE,
                "case_id": app["id"],
                "personnummer": case["personnummer"],
                "period": app["income_period"],
            },
        )
        answer = r.json()["sources"][case["source"]]
        if case["source"] == "skatteverket":
            amounts = [row["net"] for row in answer["income"]]
        else:
            amounts = [p["amount"] for p in answer["payments"] if p["type"] == case["type"]]
        assert case["register"] in amounts
        declared = sum(
            i["amount"]
            for i in app["incomes"]
            if i["personnummer"] == case["personnummer"] and i["type"] == case["type"]
        )
        assert declared == case["declared"] != case["register"]
        state = client.get("/admin/state/registers").json()
        assert state["lookups"] == 1 and state["lookups_by_case"] == {app["id"]: 1}
        assert state["writes"][0]["details"]["purpose"] == PURPOSE["purpose"]

    @staticmethod
    def _adult(c: httpx.Client) -> str:
        app = c.get("/eservice/applications/EB-202612-0003").json()
        return str(app["applicant"]["personnummer"])


class TestEservice:
    """Applications and decisions: a decision is written once, replays are harmless, and it reads back."""

    def test_applications_have_what_a_case_needs(self, client: httpx.Client) -> None:
        listing = client.get("/eservice/applications", params={"limit": 1000}).json()
        assert listing["month"] == "2026-12" and listing["total"] == 500
        kinds = {a["kind"] for a in listing["items"]}
        assert kinds == {"new", "reapplication"}
        re_app = next(a for a in listing["items"] if a["kind"] == "reapplication")
        app = client.get(f"/eservice/applications/{re_app['id']}").json()
        assert app["previous_decision"]["month"] == "2026-11"
        assert set(app["costs"]) >= {"rent", "household_electricity", "home_insurance"}
        assert app["attachments"] and all(i["type"] for i in app["incomes"])
        waiting = client.get("/eservice/applications", params={"status": "awaiting_complement"}).json()["items"]
        assert waiting
        complement = client.get(f"/eservice/applications/{waiting[0]['id']}/complements").json()["items"][0]
        assert complement["arrived_at"] is None
        arrived = client.post(f"/admin/eservice/complements/{complement['id']}/arrive").json()
        assert arrived["arrived_at"] == "2026-11-23T07:00:00+01:00"
        assert client.get(f"/eservice/applications/{waiting[0]['id']}").json()["status"] == "submitted"

    def test_decision_write_back_is_idempotent_and_visible_in_admin_state(self, client: httpx.Client) -> None:
        url = "/eservice/applications/EB-202612-0007/decision"
        assert client.get(url).status_code == 404
        decision = {
            "decision": "approved",
            "amount": 7340,
            "month": "2026-12",
            "decided_by": "user:anna",
            "lines": [{"text": "Riksnorm", "amount": 4180}, {"text": "Hyra", "amount": 3160}],
        }
        assert client.post(url, json=decision).status_code == 400  # no idempotency key
        first = client.post(url, json=decision, headers={"Idempotency-Key": "ronney:EB-202612-0007:1"})
        assert first.status_code == 201
        again = client.post(url, json={**decision, "idempotency_key": "ronney:EB-202612-0007:1"})
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        other = client.post(url, json=decision, headers={"Idempotency-Key": "another"})
        assert other.status_code == 409 and other.json()["error"] == "decision_exists"
        changed = client.post(
            url, json={**decision, "amount": 1}, headers={"Idempotency-Key": "ronney:EB-202612-0007:1"}
        )
        assert changed.status_code == 422
        assert client.get(url).json()["amount"] == 7340
        state = client.get("/admin/state/eservice").json()
        assert state["decisions_written"] == {"EB-202612-0007": 1}
        assert state["decision_attempts"]["EB-202612-0007"] == 4
        assert state["write_counts"]["decision.created"] == {"EB-202612-0007": 1}
        wrong = client.post(
            "/eservice/applications/EB-202612-0008/decision",
            json={**decision, "month": "2026-11"},
            headers={"Idempotency-Key": "k"},
        )
        assert wrong.status_code == 422


class TestStaffing:
    """Bookings are conflict-checked: a taken shift or an overlapping booking is a 409."""

    def test_booking_conflicts(self, client: httpx.Client) -> None:
        shifts = client.get("/staffing/shifts").json()["items"]
        subs = client.get("/staffing/substitutes").json()["items"]
        first = shifts[0]
        free = [s for s in subs if not any(_overlap(b, first) for b in s["bookings"])]
        x, y = free[0]["id"], free[1]["id"]
        made = client.post("/staffing/bookings", json={"shift_id": first["id"], "substitute_id": x})
        assert made.status_code == 201
        same = client.post("/staffing/bookings", json={"shift_id": first["id"], "substitute_id": x})
        assert same.status_code == 200 and same.json()["id"] == made.json()["id"]
        taken = client.post("/staffing/bookings", json={"shift_id": first["id"], "substitute_id": y})
        assert taken.status_code == 409 and taken.json()["error"] == "shift_already_booked"
        overlapping = next(s for s in shifts[1:] if _overlap(s, first))
        clash = client.post("/staffing/bookings", json={"shift_id": overlapping["id"], "substitute_id": x})
        assert clash.status_code == 409 and clash.json()["error"] == "substitute_overlap"
        assert client.get(f"/staffing/shifts/{first['id']}").json()["status"] == "booked"
        sub = client.get(f"/staffing/substitutes/{x}").json()
        assert any(b["shift_id"] == first["id"] for b in sub["bookings"])
        state = client.get("/admin/state/staffing").json()
        assert state["bookings_per_shift"] == {first["id"]: 1}
        assert state["double_booked_shifts"] == [] and state["conflicts"] == 2
        cancelled = client.delete(f"/staffing/bookings/{made.json()['id']}").json()
        assert cancelled["status"] == "cancelled"
        assert client.get(f"/staffing/shifts/{first['id']}").json()["status"] == "open"


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    from datetime import datetime

    return datetime.fromisoformat(a["start"]) < datetime.fromisoformat(b["end"]) and datetime.fromisoformat(
        b["start"]
    ) < datetime.fromisoformat(a["end"])


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, Any], str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((json.loads(body), self.headers.get("X-Sandbox-Signature", "")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[dict[str, Any], str]]]]:
    """A local HTTP server recording the webhook POSTs it receives."""
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()
    server.server_close()
    thread.join()


class TestSms:
    """Offers get replies per substitute behaviour when the clock passes their delay; polling and webhook."""

    def _offer_everyone(self, c: httpx.Client) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        shift = c.get("/staffing/shifts").json()["items"][0]
        subs = c.get("/staffing/substitutes").json()["items"]
        for s in subs:
            text = f"Pass {shift['code']} {shift['start'][:16]} på {shift['unit']}. Svara JA {shift['code']} eller NEJ {shift['code']}."
            r = c.post("/sms/messages", json={"to": s["phone"], "text": text, "reference": shift["id"]})
            assert r.status_code == 202
        return shift, subs

    def test_replies_follow_behaviour_and_are_deterministic(self, client: httpx.Client) -> None:
        shift, subs = self._offer_everyone(client)
        assert client.get("/sms/inbound").json()["items"] == []  # nobody answers in no time
        client.post("/admin/clock", json={"advance_minutes": 7 * 60})
        replies = client.get("/sms/inbound").json()["items"]
        behaviour = client.get("/admin/truth").json()["staffing"]["behaviour"]
        messages = client.get("/sms/messages").json()["items"]
        failed = {m["to"] for m in messages if m["status"] == "failed"}
        by_phone = {s["phone"]: s["id"] for s in subs}
        answered = {by_phone[r["from"]] for r in replies}
        expected = {s["id"] for s in subs if behaviour[s["id"]] != "silent" and s["phone"] not in failed}
        assert answered == expected
        assert all(r["text"].strip().split()[0].upper().strip(",") in {"JA", "NEJ"} for r in replies)
        assert any(shift["code"].lower() in r["text"].lower() for r in replies)
        late = [r for r in replies if behaviour[by_phone[r["from"]]] == "late"]
        assert all(r["received_at"] >= "2026-11-23T10:00" for r in late)
        assert [r["seq"] for r in replies] == list(range(1, len(replies) + 1))
        again = client.get("/sms/inbound", params={"after": replies[-1]["seq"]}).json()
        assert again["items"] == [] and again["last_seq"] == replies[-1]["seq"]
        # the same offers after a reset give the same replies
        client.post("/admin/reset", json={"seed": 1})
        self._offer_everyone(client)
        client.post("/admin/clock", json={"advance_minutes": 7 * 60})
        assert [(r["from"], r["text"], r["received_at"]) for r in client.get("/sms/inbound").json()["items"]] == [
            (r["from"], r["text"], r["received_at"]) for r in replies
        ]
        state = client.get("/admin/state/sms").json()
        assert state["sent"] == len(subs) and state["quiet_hours_violations"] == 0

    def test_quiet_hours_are_recorded_and_replies_reach_the_webhook(
        self, client: httpx.Client, webhook: tuple[str, list[tuple[dict[str, Any], str]]]
    ) -> None:
        url, received = webhook
        assert client.put("/sms/webhook", json={"url": url, "secret": "s3cret"}).status_code == 200
        client.post("/admin/clock", json={"set": "2026-11-23T22:15:00+01:00"})
        eager = next(
            sid for sid, kind in client.get("/admin/truth").json()["staffing"]["behaviour"].items() if kind == "eager"
        )
        sub = client.get(f"/staffing/substitutes/{eager}").json()
        shift = client.get("/staffing/shifts").json()["items"][0]
        client.post("/sms/messages", json={"to": sub["phone"], "text": f"Svara JA {shift['code']} eller NEJ"})
        assert client.get("/admin/state/sms").json()["quiet_hours_violations"] == 1
        client.post("/admin/clock", json={"advance_minutes": 30})
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(received) == 1
        payload, signature = received[0]
        assert payload["type"] == "inbound" and payload["message"]["from"] == sub["phone"]
        body = json.dumps(payload).encode()
        assert signature == hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert client.get("/sms/webhook").json()["deliveries"][0]["status"] == 204
        # delivery reports, on request
        client.put("/sms/webhook", json={"url": url, "delivery_reports": True})
        sent = client.post("/sms/messages", json={"to": "070-174 06 99", "text": "Hej"}).json()
        deadline = time.monotonic() + 5
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received[1][0] == {
            "type": "status",
            "message": {"id": sent["id"], "status": "delivered", "updated_at": sent["delivered_at"], "error": None},
        }
        assert received[1][1] == ""  # no secret, no signature


class TestFaults:
    """Latency, error rates, hanging requests, maintenance pages and failures after the write."""

    def test_latency(self, client: httpx.Client) -> None:
        client.post("/admin/faults/eservice", json={"latency_ms": 250, "jitter_ms": 100})
        started = time.monotonic()
        assert client.get("/eservice/applications", params={"limit": 1}).status_code == 200
        assert 0.25 <= time.monotonic() - started < 2
        started = time.monotonic()
        client.get("/registers/lookup")  # other systems are not slowed
        assert time.monotonic() - started < 0.2

    def test_error_rate_is_deterministic_per_seed(self, client: httpx.Client) -> None:
        def run() -> list[int]:
            client.post(
                "/admin/faults/staffing", json={"error_rate": 0.3, "error_status": 503, "retry_after_seconds": 2}
            )
            return [client.get("/staffing/units").status_code for _ in range(100)]

        first = run()
        assert 15 <= first.count(503) <= 45 and set(first) == {200, 503}
        client.post("/admin/reset", json={"seed": 1})
        assert run() == first
        errors = [r for r in (client.get("/staffing/units") for _ in range(30)) if r.status_code == 503]
        assert errors and all(e.headers["Retry-After"] == "2" for e in errors)
        assert client.get("/admin/state/staffing").json()["faults"]["stats"]["error"] >= first.count(503)

    def test_hanging_request_until_client_timeout(self, client: httpx.Client) -> None:
        client.post("/admin/faults/homecare", json={"hang_next": 1})
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get("/homecare/groups", timeout=0.5)
        assert time.monotonic() - started < 3
        assert client.get("/homecare/groups").status_code == 200
        assert client.get("/admin/state/homecare").json()["requests"]["hang"] == 1

    def test_hang_without_a_client_timeout_ends_in_504(self, client: httpx.Client) -> None:
        client.post("/admin/faults/homecare", json={"hang_next": 1, "hang_seconds": 0.3})
        assert client.get("/homecare/groups").status_code == 504

    def test_maintenance_page(self, client: httpx.Client) -> None:
        client.post("/admin/faults/registers", json={"maintenance": True, "retry_after_seconds": 60})
        r = client.post("/registers/lookup", json={})
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        assert "underhåll" in r.text and r.headers["Retry-After"] == "60"
        assert client.get("/admin/health").status_code == 200  # admin is never faulted
        client.delete("/admin/faults/registers")
        assert client.post("/registers/lookup", json={}).status_code == 400

    def test_fail_next_and_failure_after_the_write(self, client: httpx.Client) -> None:
        client.post("/admin/faults/eservice", json={"fail_next": 2, "error_status": 500})
        assert [client.get("/eservice/applications").status_code for _ in range(3)] == [500, 500, 200]
        client.post("/admin/faults/eservice", json={"fail_after_processing_next": 1, "methods": ["POST"]})
        url = "/eservice/applications/EB-202612-0002/decision"
        body = {"decision": "rejected", "amount": 0, "month": "2026-12", "decided_by": "user:anna"}
        assert client.get(url).status_code == 404  # GETs are not affected
        assert client.post(url, json=body, headers={"Idempotency-Key": "k1"}).status_code == 503
        assert client.get(url).json()["decision"] == "rejected"  # the write happened all the same
        assert client.post(url, json=body, headers={"Idempotency-Key": "k1"}).status_code == 200

    def test_path_prefix_and_payroll_settings(self, client: httpx.Client) -> None:
        client.post("/admin/faults/scheduling", json={"fail_next": 5, "path_prefix": "/exports"})
        assert client.get("/scheduling/employees", params={"limit": 1}).status_code == 200
        settings = client.post("/admin/faults/payroll", json={"session_expiry_after": 3, "alt_layout": True}).json()
        assert settings["settings"]["session_expiry_after"] == 3 and settings["settings"]["alt_layout"] is True
        assert client.get("/admin/faults/payroll").json()["settings"]["alt_layout"] is True
        assert client.post("/admin/faults/nosuch", json={}).status_code == 404
        assert client.post("/admin/faults/sms", json={"error_rate": 2}).status_code == 422


class TestReset:
    """A reset regenerates from the seed and forgets writes and faults."""

    def test_reset(self, client: httpx.Client) -> None:
        original = client.get("/eservice/applications/EB-202612-0001").json()
        client.post(
            "/eservice/applications/EB-202612-0001/decision",
            headers={"Idempotency-Key": "x"},
            json={"decision": "rejected", "amount": 0, "month": "2026-12", "decided_by": "user:anna"},
        )
        client.post("/admin/faults/eservice", json={"latency_ms": 10})
        other = client.post("/admin/reset", json={"seed": 2}).json()
        assert other["seed"] == 2
        assert client.get("/eservice/applications/EB-202612-0001").json() != original
        assert client.post("/admin/reset", json={"seed": 1}).status_code == 200
        again = client.get("/eservice/applications/EB-202612-0001").json()
        assert again == original and again["decision"] is None
        state = client.get("/admin/state/eservice").json()
        assert state["writes"] == [] and state["faults"]["settings"]["latency_ms"] == 0
        smaller = client.post("/admin/reset", json={"options": {"applications": 10}}).json()
        assert smaller["counts"]["applications"] == 10
        assert client.post("/admin/reset", json={"options": {"applications": -1}}).status_code == 422


class TestHomecareAndScheduling:
    """Plans are published and read back; schedules are exported as CSV into a drop folder."""

    def test_publish_plan(self, client: httpx.Client) -> None:
        visits = client.get("/homecare/visits").json()
        assert len(visits["items"]) == 300
        assert 56.1 < visits["items"][0]["lat"] < 56.3 and 15.1 < visits["items"][0]["lon"] < 15.5
        assert any(v["staff_count"] == 2 and v["sync"] for v in visits["items"])
        assert len(client.get("/homecare/staff").json()["items"]) == 45
        history = client.get("/homecare/history").json()["items"]
        assert len({h["date"] for h in history}) == 14
        baseline = client.get("/homecare/plans/baseline").json()
        plan = {
            "date": visits["date"],
            "group": visits["group"],
            "published_by": "user:coordinator",
            "assignments": [{k: a[k] for k in ("visit_id", "staff_ids", "start")} for a in baseline["assignments"]],
            "unassigned": baseline["unassigned"],
        }
        assert client.get("/homecare/plans").status_code == 404
        published = client.post("/homecare/plans", json=plan, headers={"Idempotency-Key": "lena:1"})
        assert published.status_code == 201, published.text
        assert client.post("/homecare/plans", json=plan, headers={"Idempotency-Key": "lena:1"}).status_code == 200
        assert client.get("/homecare/plans").json()["plan_id"] == published.json()["plan_id"]
        bad = client.post(
            "/homecare/plans",
            json={**plan, "assignments": plan["assignments"][1:]},
            headers={"Idempotency-Key": "lena:2"},
        )
        assert bad.status_code == 422 and bad.json()["problems"]
        assert client.get("/admin/state/homecare").json()["plans_published"] == 1

    def test_schedules_and_csv_export(self, client: httpx.Client, tmp_path: Path) -> None:
        listing = client.get("/scheduling/schedules", params={"period": "2026-12"}).json()
        assert listing["total"] > 700
        detail = client.get(f"/scheduling/schedules/{listing['items'][0]['schedule_id']}").json()
        assert detail["rows"] and {"date", "start", "end", "break_minutes", "activity_code"} <= set(detail["rows"][0])
        since = client.get("/scheduling/schedules", params={"approved_since": "2026-11-20T00:00:00+01:00"}).json()
        assert 0 < since["total"] < listing["total"]
        r = client.post("/scheduling/exports", json={"folder": str(tmp_path), "period": "2026-12", "malformed_rows": 2})
        assert r.status_code == 201, r.text
        export = r.json()
        files = list(tmp_path.iterdir())
        assert [f.name for f in files] == [export["filename"]]  # no temporary file left behind
        with open(files[0], encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
        assert len(rows) == export["rows"] and export["schedules"] == listing["total"]
        assert len(export["malformed_lines"]) == 2
        assert client.post("/scheduling/exports", json={"folder": "relative"}).status_code == 422
        assert client.get("/admin/state/scheduling").json()["exports"][0]["sha256"] == export["sha256"]


class TestHooks:
    """What sandbox/payroll.py and sandbox/oidc.py rely on in the shared state."""

    def test_store_inspector_reset_hook_and_faults(self) -> None:
        from sandbox.app import create_app

        state = create_app(5, SandboxOptions(**SMALL)).state.sandbox
        assert state.employees is state.data.employees and len(state.employees) == SMALL["employees"]
        store = state.store("payroll", lambda: {"saves": 0})
        store["saves"] += 1
        assert state.store("payroll", dict) == {"saves": 1}
        state.register_inspector("payroll", lambda st: {"saves": st.store("payroll", lambda: {"saves": 0})["saves"]})
        resets: list[int] = []
        state.register_reset_hook(lambda st: resets.append(st.seed))
        state.log.record("payroll", "schedule.saved", "E10001/2026-12", {"rows": 3})
        assert state.inspect("payroll")["saves"] == 1
        assert state.inspect("payroll")["write_counts"] == {"schedule.saved": {"E10001/2026-12": 1}}
        state.set_faults("payroll", state.faults_for("payroll").model_copy(update={"session_expiry_after": 4}))
        assert state.faults_for("payroll").session_expiry_after == 4
        state.reset(6)
        assert resets == [6] and state.inspect("payroll")["saves"] == 0
        assert state.faults_for("payroll").session_expiry_after is None and state.log.entries() == []

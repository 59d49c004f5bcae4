"""The online experiment's server, in-process on the loopback address: what it stores, what it
refuses (4xx, one log line, nothing written), and how it recovers a torn file. No browser."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e '.[web]')")
httpx = pytest.importorskip("httpx", reason="the web extra is not installed")

from bodyscene.errors import BadInput  # noqa: E402
from bodyscene.human_study.plan import PlanConfig, make_plan, read_plan  # noqa: E402
from bodyscene.human_study.responses import RESPONSES_SCHEMA, read_responses  # noqa: E402
from bodyscene.human_study.web.export import trial_key  # noqa: E402
from bodyscene.human_study.web.server import ServerThread, create_app  # noqa: E402
from bodyscene.human_study.web.tokens import RateLimit, load_secret, session_token  # noqa: E402
from conftest import write_toy_manifest  # noqa: E402


@pytest.fixture
def plan(tmp_path):
    manifest = write_toy_manifest(tmp_path / "toy", items_per_split={"val": 1, "test": 2})
    return read_plan(make_plan(manifest, tmp_path / "plan",
                               PlanConfig(n_participants=3, practice_items=1)))


@pytest.fixture
def server(plan, tmp_path):
    data = tmp_path / "data"
    with ServerThread(create_app(plan.dir, data)) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as client:
        yield client, data


def token(plan, pid="P01", session=1) -> str:
    """The session token the server issues (its secret lives in the data folder beside the
    plan, made by whichever of the test and the server comes first)."""
    return session_token(load_secret(plan.dir.parent / "data"), plan.sha256, pid, session)


def start(plan, pid="P01", **changes) -> dict:
    return {"participant": pid, "session": 1, "plan_sha256": plan.sha256,
            "token": token(plan, pid)} | changes


def post(plan, pid="P01", order=0, **changes) -> dict:
    """A well-formed trial as the page sends it, answering with the first offered choice."""
    t = plan.trials(pid).iloc[order]
    choices = t["choices"].split(";")
    body = {"participant": pid, "session": 1, "trial": trial_key(plan.sha256, pid, t["trial_id"]),
            "order": int(t["order"]), "sha256": t["sha256"], "response": choices[0],
            "rt_s": 0.61, "choice_order": choices, "stim_intended_s": 0.2,
            "stim_onset_s": 3.2, "stim_offset_s": 3.4, "stim_duration_s": 0.2, "stim_frames": 12,
            "dropped_frames": 0, "refresh_hz": 60.0, "browser": "Chrome/156.0",
            "screen_px": "1920x1080", "window_px": "1280x800", "software": "bodyscene-web=1",
            "extra": {"attempt": 1}, "token": token(plan, pid)}
    body.update(changes)
    return body


def test_a_trial_is_stored_scored_by_the_plan_and_readable(server, plan):
    client, data = server
    body = post(plan)
    r = client.post("/api/trial", json=body)
    assert r.status_code == 200, r.text
    df = read_responses(data / "P01_s1_bodyscene.csv")
    t = plan.trials("P01").iloc[0]
    assert df["trial_id"].tolist() == [t["trial_id"]]
    assert list(df.columns) == list(RESPONSES_SCHEMA.columns)
    row = df.iloc[0]
    assert row["correct"] == (body["response"] == t["action"])   # scored here, not by the page
    assert row["sha256"] == t["sha256"] and row["plan_sha256"] == plan.sha256
    assert row["phase"] == t["phase"] and int(row["block"]) == t["block"]
    assert row["window_px"] == "1280x800" and row["browser"] == "Chrome/156.0"
    assert "bodyscene-web=1" in row["software"] and row["simulated"] == False  # noqa: E712
    side = [json.loads(x) for x in (data / "P01_s1_bodyscene.web.jsonl").read_text().splitlines()]
    assert side[-1]["trial_id"] == t["trial_id"] and side[-1]["attempt"] == 1
    state = client.get("/api/session/P01", params={"token": token(plan)}).json()
    assert state["done"] == [0] and state["complete"] is False


BAD = {
    "a second answer to an answered trial": (
        409, lambda p: post(p, response=p.trials("P01").iloc[0]["choices"].split(";")[1])),
    "unknown trial": (422, lambda p: post(p, order=1, trial="0" * 16)),
    "wrong sha256": (422, lambda p: post(p, order=1, sha256="0" * 64)),
    "order not the plan's": (422, lambda p: post(p, order=1) | {"order": 0}),
    "response not offered": (422, lambda p: post(p, order=1, response="fly")),
    "choice order not a permutation": (422, lambda p: post(p, order=1, choice_order=["a", "b"])),
    "participant not in the plan": (404, lambda p: post(p, order=1) | {
        "participant": "P99", "token": token(p, "P99")}),
    "unknown field": (422, lambda p: post(p, order=1, evil=1)),
    "a bool for a number": (422, lambda p: post(p, order=1, rt_s=True)),
    "negative rt": (422, lambda p: post(p, order=1, rt_s=-1.0)),
    "session out of range": (422, lambda p: post(p, order=1, session=0,
                                                  token=token(p, "P01", 0))),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_tampered_posts_are_refused_logged_and_never_written(server, plan, case, caplog):
    client, data = server
    assert client.post("/api/trial", json=post(plan)).status_code == 200
    path = data / "P01_s1_bodyscene.csv"
    before = path.read_bytes()
    status, make = BAD[case]
    with caplog.at_level(logging.WARNING, logger="bodyscene.web"):
        r = client.post("/api/trial", json=make(plan))
    assert r.status_code == status, (case, r.text)
    assert path.read_bytes() == before
    assert not (data / "P99_s1_bodyscene.csv").exists()
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "bodyscene.web"]
    assert len(lines) == 1 and lines[0].startswith(f"refused {status} POST /api/trial")
    read_responses(path)  # the file stays valid


@pytest.mark.parametrize("kwargs,status", [
    (dict(content=b" " * 20000, headers={"content-type": "application/json"}), 413),
    (dict(content=iter([b" " * 9000] * 3), headers={"content-type": "application/json"}), 413),
    (dict(content=b"{}", headers={"content-type": "text/plain"}), 415),
    (dict(content=b"{oops", headers={"content-type": "application/json"}), 400),
    (dict(content=b"[1, 2]", headers={"content-type": "application/json"}), 400),
], ids=["oversized", "oversized-chunked", "not-json-type", "bad-json", "not-an-object"])
def test_malformed_bodies_are_refused(server, kwargs, status, caplog):
    client, data = server
    with caplog.at_level(logging.WARNING, logger="bodyscene.web"):
        r = client.post("/api/trial", **kwargs)
    assert r.status_code == status
    assert any(f"refused {status}" in rec.getMessage() for rec in caplog.records)
    assert not list(data.glob("*.csv")) if data.exists() else True


def test_a_torn_last_line_is_cut_and_the_resent_trial_stored_once(plan, tmp_path):
    data = tmp_path / "data"
    with ServerThread(create_app(plan.dir, data)) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.post("/api/trial", json=post(plan)).status_code == 200
    path = data / "P01_s1_bodyscene.csv"
    with open(path, "a") as fh:          # a write cut short by kill -9: no newline
        fh.write("P01,human,1,clap_test00-body,1cdaa4")
    with ServerThread(create_app(plan.dir, data)) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/api/session/P01", params={"token": token(plan)}).json()["done"] == [0]
        assert c.post("/api/trial", json=post(plan, order=1)).status_code == 200
        assert c.post("/api/trial", json=post(plan, order=1)).status_code == 409
    df = read_responses(path)
    assert df["order"].tolist() == [0, 1]


def test_participants_are_assigned_by_a_counter_that_survives_a_restart(plan, tmp_path):
    data = tmp_path / "data"
    with ServerThread(create_app(plan.dir, data)) as srv, httpx.Client(base_url=srv.url) as c:
        first = c.post("/api/assign", json={"recruitment": {"PROLIFIC_PID": "abc"}}).json()
        again = c.post("/api/assign", json={"recruitment": {"PROLIFIC_PID": "abc"}}).json()
        second = c.post("/api/assign", json={"recruitment": {}}).json()
        bad = c.post("/api/assign", json={"recruitment": {"password": "x"}})
    assert first == again == {"participant": "P01", "token": token(plan, "P01")}
    assert second == {"participant": "P02", "token": token(plan, "P02")}
    assert bad.status_code == 422
    with ServerThread(create_app(plan.dir, data)) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.post("/api/assign", json={"recruitment": {}}).json()["participant"] == "P03"
        assert c.post("/api/assign", json={"recruitment": {}}).status_code == 409
        assert c.post("/api/assign", json={"recruitment": {"PROLIFIC_PID": "abc"}}).json() == \
            first


def test_a_session_start_records_recruitment_parameters(server, plan):
    client, data = server
    r = client.post("/api/start", json=start(
        plan, "P02", recruitment={"PROLIFIC_PID": "5f1c", "STUDY_ID": "s9"}, window_px="800x600"))
    assert r.status_code == 200, r.text
    rec = json.loads((data / "P02_s1_bodyscene.web.jsonl").read_text().splitlines()[0])
    assert rec["event"] == "start" and rec["recruitment"]["PROLIFIC_PID"] == "5f1c"
    assert "token" not in rec
    other = client.post("/api/start", json=start(plan, "P02", plan_sha256="0" * 64))
    assert other.status_code == 422


def test_a_site_from_another_plan_is_refused(plan, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "config.json").write_text(json.dumps({"plan_sha256": "f" * 64}))
    with pytest.raises(BadInput, match="another plan"):
        create_app(plan.dir, tmp_path / "data", site=site)


def test_the_counter_skips_a_participant_who_started_by_link(server, plan):
    client, _ = server
    assert client.post("/api/start", json=start(plan, "P01")).status_code == 200
    assert client.post("/api/assign", json={"recruitment": {}}).json()["participant"] == "P02"


FORGED = {
    "no token": (401, lambda p: {k: v for k, v in post(p, order=1).items() if k != "token"}),
    "empty token": (401, lambda p: post(p, order=1, token="")),
    "another participant's token": (403, lambda p: post(p, order=1, token=token(p, "P02"))),
    "another session's token": (403, lambda p: post(p, order=1, token=token(p, "P01", 2))),
    "a made-up token": (403, lambda p: post(p, order=1, token="0" * 32)),
    "a token that is not text": (403, lambda p: post(p, order=1, token=["x"])),
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_posts_are_refused_and_never_written(server, plan, case):
    client, data = server
    assert client.post("/api/trial", json=post(plan)).status_code == 200
    path = data / "P01_s1_bodyscene.csv"
    before, side = path.read_bytes(), (data / "P01_s1_bodyscene.web.jsonl").read_bytes()
    status, make = FORGED[case]
    assert client.post("/api/trial", json=make(plan)).status_code == status
    assert client.post("/api/start", json=start(plan) | {"token": make(plan).get("token")}
                       ).status_code == status
    r = client.get("/api/session/P01", params={"token": make(plan).get("token") or ""})
    assert r.status_code == status
    assert path.read_bytes() == before
    assert (data / "P01_s1_bodyscene.web.jsonl").read_bytes() == side


def test_no_reply_names_a_trial_its_action_or_condition(server, plan):
    """Every reply of the refusal tests (and a stored and a duplicate answer), grepped."""
    client, _ = server
    replies = [client.post("/api/trial", json=post(plan)), client.post("/api/trial",
                                                                         json=post(plan))]
    for status, make in list(BAD.values()) + list(FORGED.values()):
        replies.append(client.post("/api/trial", json=make(plan)))
    manifest = pd.read_csv(plan.manifest)
    secret_words = (set(manifest["trial_id"]) | set(manifest["action"]) |
                    set(manifest["condition"]) | set(manifest["item_id"]))
    assert [r.status_code for r in replies[:2]] == [200, 409]
    for r in replies:
        text = r.text.lower()
        leaked = [w for w in secret_words if str(w).lower() in text]
        assert not leaked, (r.status_code, r.text, leaked)


def test_posts_beyond_the_rate_limit_are_refused_and_not_written(plan, tmp_path):
    data = tmp_path / "data"
    with ServerThread(create_app(plan.dir, data, rate=RateLimit(per_s=0.001, burst=3))) as srv, \
            httpx.Client(base_url=srv.url) as c:
        codes = [c.post("/api/trial", json=post(plan, order=i)).status_code for i in range(5)]
        other = c.post("/api/trial", json=post(plan, "P02")).status_code
        r = c.post("/api/trial", json=post(plan, order=5))
    assert codes == [200, 200, 200, 429, 429] and other == 200     # per token, not global
    assert r.headers["retry-after"] == "1"
    assert read_responses(data / "P01_s1_bodyscene.csv")["order"].tolist() == [0, 1, 2]


def test_the_server_computes_the_lab_flags(plan, tmp_path):
    from bodyscene.human_study.labconfig import Timing

    data = tmp_path / "data"
    timing = Timing(min_rt_s=0.2, response_deadline_s=1.5)
    with ServerThread(create_app(plan.dir, data, timing=timing)) as srv, \
            httpx.Client(base_url=srv.url) as c:
        for order, rt in enumerate([0.05, 0.61, 2.0]):
            assert c.post("/api/trial", json=post(plan, order=order, rt_s=rt)).status_code == 200
    df = pd.read_csv(data / "P01_s1_bodyscene.csv", dtype=str, keep_default_na=False)
    assert df["anticipation"].tolist() == ["true", "false", "false"]
    assert df["timed_out"].tolist() == ["false", "false", "true"]
    assert set(df["timing_mode"]) == {"browser-raf"}
    phases = plan.trials("P01")["phase"].tolist()[:3]
    assert df["practice_round"].tolist() == ["1" if ph == "practice" else "" for ph in phases]
    read_responses(data / "P01_s1_bodyscene.csv")


def test_participant_links_carry_the_token_the_server_accepts(plan, tmp_path, capsys):
    from urllib.parse import parse_qs, urlsplit

    from bodyscene.cli import main

    data = tmp_path / "data"
    assert main(["experiment", "links", "--plan", str(plan.dir), "--data", str(data), "--base",
                 "https://study.example.org"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == list(plan.participants)
    query = parse_qs(urlsplit(lines[0].split("\t")[1]).query)
    assert lines[0].split("\t")[1].startswith("https://study.example.org/?")
    assert query["participant"] == ["P01"] and query["token"] == [token(plan, "P01")]
    assert (data / "web-secret").stat().st_mode & 0o077 == 0      # private to its owner
    with ServerThread(create_app(plan.dir, data)) as srv, httpx.Client(base_url=srv.url) as c:
        r = c.get("/api/session/P01", params={"token": query["token"][0]})
        assert r.status_code == 200
        assert c.post("/api/trial", json=post(plan, token=query["token"][0])).status_code == 200

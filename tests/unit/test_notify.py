"""steps.notify against a real webhook: an http.server on loopback in a thread."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from steps import notify

# what Argo passes: every failed node, in no particular order (a Go map), each with a pod name,
# the list JSON-encoded and then quoted again (argo-workflows v4.1.2
# workflow/controller/operator.go:459-479, strconv.Quote)
NODES = [
    {"displayName": "load(1)", "message": "main: Error (exit code 5): BigQuery unavailable", "templateName": "load",
     "phase": "Failed", "podName": "airtime-daily-1764234000-load-2", "finishedAt": "2026-11-27T09:05:00Z"},
    {"displayName": "airtime-daily-1764234000", "message": "child 'airtime-daily-1764234000-1' failed",
     "templateName": "daily", "phase": "Failed", "podName": "airtime-daily-1764234000",
     "finishedAt": "2026-11-27T09:05:01Z"},
    {"displayName": "load", "message": "No more retries left", "templateName": "load", "phase": "Failed",
     "podName": "airtime-daily-1764234000-load-3", "finishedAt": "2026-11-27T09:05:00Z"},
    {"displayName": "load(0)", "message": "main: Error (exit code 5)", "templateName": "load", "phase": "Failed",
     "podName": "airtime-daily-1764234000-load-1", "finishedAt": "2026-11-27T09:04:00Z"},
]
FAILURES = json.dumps(json.dumps(NODES))

class Webhook:
    """Records JSON bodies; answers the first `fail_first` requests with `fail_status`."""

    def __init__(self, fail_first: int = 0, fail_status: int = 503) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                hook.requests += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = fail_status if hook.requests <= fail_first else 200
                if status == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there any more


def run_notify(monkeypatch: pytest.MonkeyPatch, url: str | None, fmt: str = "slack", status: str = "Failed") -> int:
    if url:
        monkeypatch.setenv("AIRTIME_WEBHOOK_URL", url)
    else:
        monkeypatch.delenv("AIRTIME_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("AIRTIME_WEBHOOK_FORMAT", fmt)
    monkeypatch.setenv("AIRTIME_TIMEZONE", "America/Sao_Paulo")
    return notify.main([
        "--workflow", "airtime-daily-1764234000",
        "--run-date", "",
        "--scheduled-time", "2026-11-27T09:00:00Z",
        "--status", status,
        "--failures", FAILURES,
        "--link", "https://argo.example.com/workflows/airtime/airtime-daily-1764234000",
    ], backoff_seconds=0.01)


def error_lines(captured: str) -> list[dict]:
    lines = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    return [line for line in lines if line["severity"] == "ERROR"]


def test_failure_posts_slack_message_with_workflow_date_step_error_and_link(monkeypatch, webhook, capsys) -> None:
    assert run_notify(monkeypatch, webhook.url) == 0
    (body,) = webhook.bodies
    text = json.dumps(body)
    for expected in ("airtime-daily-1764234000", "2026-11-27", "load", "BigQuery unavailable",
                     "https://argo.example.com/workflows/airtime/airtime-daily-1764234000"):
        assert expected in text
    assert body["text"].startswith("airtime run 2026-11-27 Failed: load failed")
    assert body["blocks"][0]["type"] == "header"


def test_failure_posts_google_chat_card(monkeypatch, webhook) -> None:
    assert run_notify(monkeypatch, webhook.url, fmt="google_chat") == 0
    (body,) = webhook.bodies
    card = body["cardsV2"][0]["card"]
    widgets = {w["decoratedText"]["topLabel"]: w["decoratedText"]["text"]
               for w in card["sections"][0]["widgets"] if "decoratedText" in w}
    assert widgets["Run date"] == "2026-11-27"
    assert widgets["Failed step"] == "load"
    assert "BigQuery unavailable" in widgets["Error"]


def test_failure_always_writes_one_structured_error_line(monkeypatch, webhook, capsys) -> None:
    run_notify(monkeypatch, webhook.url)
    (line,) = error_lines(capsys.readouterr().err)
    assert line["logger"] == "airtime.alert"
    assert line["run_date"] == "2026-11-27"
    assert line["step"] == "load"
    assert line["workflow"] == "airtime-daily-1764234000"
    assert "BigQuery unavailable" in line["message"]


def test_webhook_errors_are_retried_until_it_accepts(monkeypatch) -> None:
    hook = Webhook(fail_first=2, fail_status=503)
    try:
        assert run_notify(monkeypatch, hook.url) == 0
        assert hook.requests == 3
        assert len(hook.bodies) == 1
    finally:
        hook.close()


def test_webhook_client_error_is_not_retried(monkeypatch) -> None:
    hook = Webhook(fail_first=100, fail_status=404)
    try:
        assert run_notify(monkeypatch, hook.url) == 0
        assert hook.requests == 1
    finally:
        hook.close()


def test_webhook_down_exits_zero_and_still_writes_the_error_line(monkeypatch, capsys) -> None:
    assert run_notify(monkeypatch, closed_port_url()) == 0
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1
    assert "webhook delivery failed after 5 attempt(s)" in err


def test_deliver_reports_false_when_the_webhook_never_answers() -> None:
    assert notify.deliver(closed_port_url(), {"text": "x"}, attempts=2, backoff_seconds=0.01) is False


def test_no_webhook_configured_still_writes_the_error_line(monkeypatch, capsys) -> None:
    assert run_notify(monkeypatch, None) == 0
    assert len(error_lines(capsys.readouterr().err)) == 1


def test_succeeded_workflow_sends_nothing(monkeypatch, webhook, capsys) -> None:
    assert run_notify(monkeypatch, webhook.url, status="Succeeded") == 0
    assert webhook.requests == 0
    assert error_lines(capsys.readouterr().err) == []


def test_failures_keep_the_last_attempt_per_step() -> None:
    (failure,) = notify.parse_failures(FAILURES, "airtime-daily-1764234000")
    assert failure == notify.Failure("load", "main: Error (exit code 5): BigQuery unavailable")


def test_failures_are_decoded_as_argo_quotes_them_or_as_a_plain_list() -> None:
    quoted = notify.parse_failures(FAILURES, "airtime-daily-1764234000")
    assert notify.parse_failures(json.dumps(NODES), "airtime-daily-1764234000") == quoted
    # a single decode of Argo's form is a str: the old parser alerted "unknown failed"
    assert isinstance(json.loads(FAILURES), str) and quoted[0].step == "load"


def test_argo_null_means_no_failed_node() -> None:
    # nothing failed: json.Marshal(nil) quoted, the 6-character string "null" (variables.md)
    assert json.dumps(json.dumps(None)) == '"null"'
    assert notify.parse_failures('"null"') == []
    assert notify.parse_failures("null") == []


def test_the_first_step_to_fail_is_named_first() -> None:
    nodes = [
        {"displayName": "verify(0)", "message": "main: Error (exit code 4)", "templateName": "verify",
         "podName": "p2", "finishedAt": "2026-11-27T09:06:00Z"},
        {"displayName": "gate(0)", "message": "main: Error (exit code 3)", "templateName": "gate",
         "podName": "p1", "finishedAt": "2026-11-27T09:05:00Z"},
    ]
    assert [f.step for f in notify.parse_failures(json.dumps(json.dumps(nodes)))] == ["gate", "verify"]


def test_unresolved_or_bad_failures_do_not_break_the_alert() -> None:
    assert notify.parse_failures("{{workflow.failures}}") == []
    assert notify.parse_failures("") == []
    assert notify.parse_failures("not json")[0].step == "unknown"
    assert notify.parse_failures('"not json either"')[0].step == "unknown"


HOSTILE = ("program '<!channel>' & <https://evil.example|Open in Argo> <users/all> <b>bold</b>")


def test_delivered_values_reach_slack_as_text_never_as_mentions_or_links() -> None:
    alert = notify.Alert("wf", "2026-11-27", "Failed", [notify.Failure("ingest", HOSTILE)], "https://argo/x")
    body = json.dumps(notify.slack_payload(alert))
    assert "<!channel>" not in body and "<https://evil" not in body
    assert "&lt;!channel&gt;" in body and "&amp;" in body
    assert "<https://argo/x|Open in Argo>" in body  # our own link still works


def test_delivered_values_reach_google_chat_as_text() -> None:
    alert = notify.Alert("wf", "2026-11-27", "Failed", [notify.Failure("ingest", HOSTILE)], "https://argo/x")
    body = notify.google_chat_payload(alert)
    assert "<users/all>" not in body["text"] and "<https://evil" not in body["text"]
    card = json.dumps(body["cardsV2"])
    assert "<b>" not in card and "&lt;b&gt;" in card and "&lt;users/all&gt;" in card

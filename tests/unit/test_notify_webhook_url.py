"""The webhook URL is the webhook's credential (its path and query): steps.notify checks it
before sending anything, refuses a malformed one with exit 2 naming AIRTIME_WEBHOOK_URL,
and no line it writes (errors, warnings, retries) shows more of it than scheme://host/….
Against a real webhook: an http.server on loopback, port 0."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from airtime.logs import redact_url
from steps import notify
from tests.unit.test_notify import Webhook, closed_port_url, run_notify

SECRET_PATH = "/services/T0SECRET/B0SECRET/XXSECRETXX"
SECRET_QUERY = "key=QSECRET&token=TSECRET"
SECRETS = ("SECRET", "QSECRET", "TSECRET")


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def _host(hook: Webhook) -> str:
    return f"127.0.0.1:{hook.server.server_address[1]}"


def _alert_lines(err: str) -> list[dict]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "airtime.alert"]


def _messages(err: str) -> str:
    """stderr with its JSON lines (notify always logs JSON) decoded: what a reader sees."""
    return "\n".join(json.loads(line)["message"] if line.startswith("{") else line for line in err.splitlines())


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, text
    assert "Traceback" not in text, text


def test_redact_url_keeps_scheme_and_host_only() -> None:
    assert redact_url(f"https://hooks.slack.com{SECRET_PATH}") == "https://hooks.slack.com/…"
    assert redact_url(f"https://chat.googleapis.com/v1/spaces/AAA/messages?{SECRET_QUERY}") \
        == "https://chat.googleapis.com/…"
    assert redact_url(f"hooks.slack.com{SECRET_PATH}") == "hooks.slack.com/…"
    assert redact_url("http://user:SECRETPW@127.0.0.1:8080/x") == "http://127.0.0.1:8080/…"
    assert redact_url("XXSECRETXX") == "…" and redact_url(SECRET_PATH[1:]) == "…"  # a bare secret is never shown


def test_a_webhook_url_without_a_scheme_is_exit_2_after_the_alert_line(monkeypatch, webhook, capsys) -> None:  # noqa: ANN001
    url = f"{_host(webhook)}{SECRET_PATH}?{SECRET_QUERY}"
    assert run_notify(monkeypatch, url) == 2
    err = capsys.readouterr().err
    _assert_no_secret(err)
    assert f"AIRTIME_WEBHOOK_URL ({_host(webhook)}/…) has no scheme" in _messages(err)
    assert len(_alert_lines(err)) == 1  # the alert itself never depends on the webhook
    assert webhook.requests == 0


@pytest.mark.parametrize(("url", "problem"), [
    (f"hooks.slack.com{SECRET_PATH}", "has no scheme"),
    (f"ftp://files.example.com{SECRET_PATH}", "has the scheme 'ftp'"),
    (f"https://{SECRET_PATH}", "has no host"),
    ("http://user:XXSECRETXX@127.0.0.1:9/hook", "carries user info"),
    (f"http://127.0.0.1:99999{SECRET_PATH}", "is not a URL"),
    (f"https://hooks.slack.com{SECRET_PATH} ", "has a space or a control character"),
    (f"https://hooks.slack.com{SECRET_PATH}\x1b[2J", "has a space or a control character"),
])
def test_a_malformed_webhook_url_is_a_config_error_that_hides_its_path(monkeypatch, capsys, url: str,
                                                                     problem: str) -> None:
    assert run_notify(monkeypatch, url) == 2
    err = capsys.readouterr().err
    _assert_no_secret(err)
    assert "AIRTIME_WEBHOOK_URL" in err and problem in err, err


def test_a_succeeded_workflow_with_a_malformed_url_is_exit_2_too(monkeypatch, capsys) -> None:
    assert run_notify(monkeypatch, f"hooks.slack.com{SECRET_PATH}", status="Succeeded") == 2
    _assert_no_secret(capsys.readouterr().err)


def test_a_webhook_with_a_secret_path_gets_the_alert_and_the_log_shows_only_its_host(monkeypatch, webhook,  # noqa: ANN001
                                                                                   capsys) -> None:
    url = f"http://{_host(webhook)}{SECRET_PATH}?{SECRET_QUERY}"
    assert run_notify(monkeypatch, url) == 0
    assert len(webhook.bodies) == 1
    _assert_no_secret(capsys.readouterr().err)


def test_delivery_failures_name_the_webhook_by_its_host_only(monkeypatch, capsys) -> None:  # noqa: ANN001
    refusing = Webhook(fail_first=100, fail_status=404)  # the path is wrong: not retried
    flaky = Webhook(fail_first=100, fail_status=503)  # retried, then given up
    try:
        for hook, attempts in ((refusing, 1), (flaky, 5)):
            url = f"http://{_host(hook)}{SECRET_PATH}?{SECRET_QUERY}"
            assert run_notify(monkeypatch, url) == 0
            err = capsys.readouterr().err
            _assert_no_secret(err)
            assert f"failed after {attempts} attempt(s) to http://{_host(hook)}/…" in _messages(err), err
    finally:
        refusing.close()
        flaky.close()
    down = closed_port_url().replace("/hook", SECRET_PATH)
    assert notify.deliver(down, {"text": "x"}, attempts=2, backoff_seconds=0.01) is False
    assert notify.deliver(f"hooks.slack.com{SECRET_PATH}", {"text": "x"}, attempts=1) is False  # no raise
    _assert_no_secret(capsys.readouterr().err)

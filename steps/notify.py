"""Alert on a failed run: the workflow's exit handler.

Two independent channels, so one being down never hides a failure:
1. one structured ERROR log line (logger `airtime.alert`, with `severity`, `run_date`,
   `step`, `workflow`), always written first; a Cloud Monitoring log-based alert policy
   matches it (docs/alerts.md);
2. a JSON message to the configured webhook (Slack or Google Chat) with the workflow,
   run date, failed step, error summary and a link, retried with backoff on network
   errors, 429 and 5xx.

It exits 0 even when the webhook stays down: the workflow is already Failed and stays
so; a failing exit handler would only add an Error node next to the real failure (and
can replace the workflow's message with its own). The ERROR line, written before any
delivery attempt, still raises the Cloud Monitoring alert; the delivery failure itself
is a WARNING, so each failed run makes exactly one ERROR line.

A webhook URL that cannot be one (no http(s) scheme, no host, a space or control character
in it, user info) is a configuration error, found without the network: after the alert line,
exit 2 and one line naming AIRTIME_WEBHOOK_URL. Unlike a webhook that is down, it would never
deliver a single alert, so it is worth the Error node. The URL's path and query are the
webhook's credential: no line, error or warning ever shows more of it than
`scheme://host/…` (airtime.logs.redact_url).

    python -m steps.notify --workflow NAME --run-date D --status S --failures JSON --link URL
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from airtime import entrypoint, logs
from airtime.errors import AirtimeError, ConfigError
from airtime.logs import redact_url
from airtime.schedule import resolve_run_date
from airtime.settings import Settings

# the alert line alone goes to `airtime.alert`: the log-based alert matches that logger
alert_log = logging.getLogger("airtime.alert")
log = logging.getLogger("airtime.notify")

ATTEMPTS = 5
BACKOFF_SECONDS = 2.0  # doubled after each failed attempt: 2, 4, 8, 16 s
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Failure:
    step: str
    message: str


def decode_failures(text: str) -> list:
    """`{{workflow.failures}}` as Argo sets it: the JSON list of failed nodes, itself quoted
    as a JSON string (argo-workflows v4.1.2 workflow/controller/operator.go:479,
    `strconv.Quote(string(failedNodeBytes))`; docs/variable-flow/variables.md: "consumers must
    JSON-decode twice", and no failed node reads as the 6-character string `"null"`). A plain
    list (decoded once) is taken too. ValueError when it is neither."""
    value = json.loads(text)
    if isinstance(value, str):  # Argo's quoted form: decode the JSON it holds
        value = json.loads(value)
    if value is None:  # json.Marshal of no failures
        return []
    if not isinstance(value, list):
        raise ValueError(f"workflow.failures is a JSON {type(value).__name__}, not a list")
    return value


def _attempt(node: dict) -> int:
    match = re.search(r"\((\d+)\)$", str(node.get("displayName", "")))
    return int(match.group(1)) if match else -1


def parse_failures(text: str, workflow: str = "") -> list[Failure]:
    """The failed steps of `{{workflow.failures}}`, each with its last attempt's message.

    Argo lists every failed node, in no order (a Go map, operator.go:460): the DAG's own node
    (templateName `daily`), each step's Retry node (`load`, "No more retries left") and its
    attempts (`load(0)`, `load(1)`...). Every one has a podName (operator.go:468 builds one for
    any node), so the attempts are told by their `(n)` suffix: the highest number, else the
    latest finishedAt, gives the step's message. The DAG's node (named after the workflow) is
    left out unless nothing else failed."""
    if not text or text.startswith("{{"):
        return []
    try:
        nodes = [n for n in decode_failures(text) if isinstance(n, dict)]
    except ValueError:  # json.JSONDecodeError is one
        return [Failure("unknown", text[:500])]
    for node in nodes:
        node["step"] = node.get("templateName") or re.sub(r"\(\d+\)$", "", str(node.get("displayName", ""))) \
            or "unknown"
    if workflow:  # the workflow's root node (the DAG): its pod name is the workflow's (pod_name.go:55)
        nodes = [n for n in nodes if workflow not in (n.get("podName"), n.get("displayName"))] or nodes
    latest: dict[str, dict] = {}
    for node in sorted(nodes, key=lambda n: (str(n.get("finishedAt") or ""), _attempt(n))):
        kept = latest.get(node["step"])
        if kept is None or _attempt(node) >= _attempt(kept):
            latest[node["step"]] = node
    ordered = sorted(latest.values(), key=lambda n: str(n.get("finishedAt") or ""))
    return [Failure(n["step"], str(n.get("message") or n.get("phase") or "failed")) for n in ordered]


@dataclass(frozen=True)
class Alert:
    workflow: str
    run_date: str
    status: str
    failures: list[Failure]
    link: str

    @property
    def step(self) -> str:
        return self.failures[0].step if self.failures else "unknown"

    @property
    def summary(self) -> str:
        if not self.failures:
            return f"workflow {self.status or 'failed'} (no failed node reported)"
        return "; ".join(f"{f.step}: {f.message}" for f in self.failures)

    @property
    def title(self) -> str:
        return f"airtime run {self.run_date} {self.status or 'Failed'}: {self.step} failed"


# Delivered values (program codes, file names) reach the alert through error messages, so
# every value is made inert before it enters markup: `<!channel>`, `<users/all>` and
# disguised links `<https://evil|Open in Argo>` must show as text, never act.

def slack_text(text: str) -> str:
    """Slack's own escaping: exactly &, < and > as HTML entities
    (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_text(text: str) -> str:
    """Google Chat text messages read `<users/all>` and `<url|text>` and decode no entities
    (https://developers.google.com/workspace/chat/format-messages): angle brackets become
    look-alike quotation marks."""
    return text.replace("<", "\u2039").replace(">", "\u203a")


def slack_payload(alert: Alert) -> dict:
    title, summary = slack_text(alert.title), slack_text(alert.summary)
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{slack_text(value)}"}
        for label, value in (("Workflow", alert.workflow), ("Run date", alert.run_date),
                             ("Failed step", alert.step), ("Status", alert.status))
    ]
    return {
        "text": f"{title}: {summary} {alert.link}",  # notifications and fallbacks
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "fields": fields},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Error*\n```{summary[:2900]}```"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{alert.link}|Open in Argo>"}},
        ],
    }


def google_chat_payload(alert: Alert) -> dict:
    def item(label: str, text: str) -> dict:
        # card text reads a subset of HTML: escaped, a value stays text
        return {"decoratedText": {"topLabel": label, "text": html.escape(text, quote=False)}}

    return {
        "text": chat_text(f"{alert.title}: {alert.summary}"),
        "cardsV2": [{
            "cardId": "airtime-alert",
            "card": {
                "header": {"title": html.escape(alert.title, quote=False),
                           "subtitle": html.escape(alert.workflow, quote=False)},
                "sections": [{"widgets": [
                    item("Workflow", alert.workflow),
                    item("Run date", alert.run_date),
                    item("Failed step", alert.step),
                    item("Error", alert.summary[:4000]),
                    {"buttonList": {"buttons": [
                        {"text": "Open in Argo", "onClick": {"openLink": {"url": alert.link}}},
                    ]}},
                ]}],
            },
        }],
    }


PAYLOADS = {"slack": slack_payload, "google_chat": google_chat_payload}


def check_webhook_url(url: str) -> str:
    """The webhook URL, if it can be one: http or https, a host, nothing a request line
    cannot carry. ConfigError otherwise, showing only redact_url(url): the path is the secret."""
    problem = None
    if re.search(r"[\x00-\x20\x7f-\x9f]", url):
        problem = "has a space or a control character in it"
    else:
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a port that is not one
        except ValueError:
            problem = "is not a URL"
        else:
            if "://" not in url:
                problem = "has no scheme"
            elif parts.scheme.lower() not in ("http", "https"):
                problem = f"has the scheme {parts.scheme!r}, not http or https"
            elif not parts.hostname:
                problem = "has no host"
            elif parts.username is not None or parts.password is not None:
                problem = "carries user info (user:password@): Slack and Chat webhooks carry no password"
    if problem is not None:
        raise ConfigError(f"AIRTIME_WEBHOOK_URL ({redact_url(url)}) {problem}: give the webhook's whole URL,"
                          " https://host/path... as Slack or Google Chat shows it")
    return url


def _redacted(exc: BaseException, url: str) -> str:
    """An error's message without the URL's secret parts (some messages quote the URL)."""
    text = str(exc)
    try:
        parts = urllib.parse.urlsplit(url)
        secrets = [url, parts.netloc, f"{parts.path}?{parts.query}", parts.path, parts.query]
    except ValueError:
        secrets = [url]
    for secret in sorted((s for s in secrets if len(s) > 1), key=len, reverse=True):
        text = text.replace(secret, redact_url(url) if secret == url else "…")
    return text


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, urllib.error.URLError | OSError)  # refused, reset, DNS, timeout


def deliver(url: str, payload: dict, attempts: int = ATTEMPTS, backoff_seconds: float = BACKOFF_SECONDS) -> bool:
    """POST the payload; True once the webhook accepted it."""
    body = json.dumps(payload).encode()
    delay = backoff_seconds
    shown = redact_url(url)
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(url, data=body, method="POST",
                                             headers={"Content-Type": "application/json; charset=utf-8"})
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - configured URL
                response.read()
            return True
        except Exception as exc:  # noqa: BLE001 - classified just below
            why = _redacted(exc, url)
            if not _retryable(exc) or attempt == attempts:
                log.warning("webhook delivery failed after %d attempt(s) to %s: %s", attempt, shown, why)
                return False
            log.warning("webhook attempt %d to %s failed (%s); retrying in %.1fs", attempt, shown, why, delay)
            time.sleep(delay)
            delay *= 2
    return False


def main(argv: list[str] | None = None, *, backoff_seconds: float = BACKOFF_SECONDS) -> int:
    parser = argparse.ArgumentParser(prog="python -m steps.notify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflow", default="")
    parser.add_argument("--run-date", default="")
    parser.add_argument("--scheduled-time", default="")
    parser.add_argument("--status", default="Failed")
    parser.add_argument("--failures", default="")
    parser.add_argument("--link", default="")

    def body(settings: Settings, args: argparse.Namespace) -> int:
        # the URL is checked before anything, and a bad one reported after the alert line,
        # which must never depend on the webhook
        bad_url = None
        try:
            url = check_webhook_url(settings.webhook_url) if settings.webhook_url else None
        except ConfigError as exc:
            url, bad_url = None, exc
        if args.status == "Succeeded":
            if bad_url is not None:
                raise bad_url
            log.info("workflow %s succeeded: nothing to alert", args.workflow)
            return 0
        try:
            run_date = resolve_run_date(args.run_date, args.scheduled_time, settings.timezone).isoformat()
        except AirtimeError:
            run_date = args.run_date or args.scheduled_time or "unknown"
        logs.bind(run_date=run_date, step="notify", workflow=args.workflow or None)
        alert = Alert(args.workflow or "unknown", run_date, args.status, parse_failures(args.failures, args.workflow), args.link)
        alert_log.error("%s: %s", alert.title, alert.summary,
                        extra={"run_date": alert.run_date, "step": alert.step, "workflow": alert.workflow})

        if bad_url is not None:
            raise bad_url
        if not url:
            log.warning("no webhook configured (AIRTIME_WEBHOOK_URL): the log line is the only alert")
            return 0
        deliver(url, PAYLOADS[settings.webhook_format](alert), backoff_seconds=backoff_seconds)
        return 0

    # JSON whatever the settings say: the alert line is what the log-based alert matches
    return entrypoint.run(parser, body, argv, log_format="json")


if __name__ == "__main__":
    sys.exit(main())

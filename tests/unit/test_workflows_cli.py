"""`airtime workflows render|apply`. Apply talks to a real HTTP server on loopback that
stands in for the Kubernetes API server (the true boundary) and records each request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from airtime.errors import ConfigError
from airtime.settings import Settings
from workflows import cli

SETTINGS = dict(
    artifact_bucket="acme-artifacts", source="gs://acme-source/deliveries", workflow_image="registry/airtime:1.2.3",
    workflow_namespace="pipelines", workflow_schedule="0 6 * * *, 0 18 * * *", catchup_days=5,
)


class ApiServer:
    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                url = urlsplit(self.path)
                server.requests.append({"path": url.path, "query": parse_qs(url.query),
                                        "content_type": self.headers["Content-Type"], "body": yaml.safe_load(body)})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body if status == 200 else json.dumps({"kind": "Status", "code": status}).encode())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def client(self):
        from kubernetes import client

        configuration = client.Configuration(host=self.url)
        return client.ApiClient(configuration)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer()
    yield server
    server.close()


def test_render_writes_one_yaml_file_per_resource_from_the_settings(tmp_path: Path) -> None:
    paths = cli.render_command(Settings(**SETTINGS), tmp_path)
    docs = {yaml.safe_load(p.read_text())["kind"]: yaml.safe_load(p.read_text()) for p in paths}
    assert set(docs) == {"ConfigMap", "WorkflowTemplate", "CronWorkflow"}
    # the pods' settings: what the operator set (catchup_days), none of the renderer's own
    assert docs["ConfigMap"]["data"]["AIRTIME_CATCHUP_DAYS"] == "5"
    assert not [k for k in docs["ConfigMap"]["data"] if k.startswith("AIRTIME_WORKFLOW_")]
    assert docs["CronWorkflow"]["spec"]["schedules"] == ["0 6 * * *", "0 18 * * *"]
    assert docs["WorkflowTemplate"]["metadata"]["namespace"] == "pipelines"
    images = {t["container"]["image"] for t in docs["WorkflowTemplate"]["spec"]["templates"] if "container" in t}
    assert images == {"registry/airtime:1.2.3"}


def test_render_refuses_settings_without_buckets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AIRTIME_ARTIFACT_BUCKET"):
        cli.render_command(Settings(source="gs://x/y"), tmp_path)


def test_apply_is_a_server_side_apply_of_each_resource_in_order(api: ApiServer) -> None:
    docs = cli.apply_command(Settings(**SETTINGS), api_client=api.client())
    assert [r["path"] for r in api.requests] == [
        "/api/v1/namespaces/pipelines/configmaps/airtime-daily-settings",  # before the pods that mount it
        "/apis/argoproj.io/v1alpha1/namespaces/pipelines/workflowtemplates/airtime-daily",
        "/apis/argoproj.io/v1alpha1/namespaces/pipelines/cronworkflows/airtime-daily",
    ]
    for request, doc in zip(api.requests, docs, strict=True):
        assert request["content_type"] == "application/apply-patch+yaml"
        assert request["query"]["fieldManager"] == ["airtime"]
        assert request["query"]["force"] == ["true"]
        assert request["body"] == doc


def test_apply_with_out_applies_the_reviewed_files_not_a_fresh_render(api: ApiServer, tmp_path: Path) -> None:
    cli.render_command(Settings(**SETTINGS), tmp_path)
    cron = tmp_path / "cronworkflow-airtime-daily.yaml"
    cron.write_text(cron.read_text().replace("0 18 * * *", "30 18 * * *"))  # a reviewed edit
    cli.apply_command(Settings(), tmp_path, api_client=api.client())  # no buckets needed
    assert [r["path"].rsplit("/", 2)[1] for r in api.requests] == ["configmaps", "workflowtemplates", "cronworkflows"]
    assert api.requests[2]["body"]["spec"]["schedules"] == ["0 6 * * *", "30 18 * * *"]


def test_apply_with_an_empty_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no rendered"):
        cli.apply_command(Settings(), tmp_path, api_client=object())


def test_apply_rejected_by_the_api_server_is_a_config_error() -> None:
    server = ApiServer(status=403)
    try:
        with pytest.raises(ConfigError, match="403"):
            cli.apply_command(Settings(**SETTINGS), api_client=server.client())
    finally:
        server.close()

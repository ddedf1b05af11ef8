"""deploy/ kept honest: files parse, compose and Kubernetes say what the docs say, promtool accepts
the rules and every service's metrics, and every metric the dashboard and the alert rules use is
produced."""

import asyncio
import json
import re
import shutil
import subprocess

import httpx
import pytest
import yaml

from services.common.kafka_admin import TopicMismatch, ensure_topics
from services.common.settings import PROJECT_ROOT, Settings
from services.common.topics import Topics
from tests.integration.kafka_io import wait_ready

DEPLOY = PROJECT_ROOT / "deploy"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package 'prometheus'; `make test` installs it "
    "where it can)",
)


def referenced_metrics() -> set[str]:
    """ews_* and faust_* names used by the alert rules and the dashboard, without histogram
    suffixes."""
    texts = [
        r["expr"]
        for g in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    ]
    dashboard = json.loads((DEPLOY / "grafana" / "ews.json").read_text())
    texts += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    names = set()
    for text in texts:
        for name in re.findall(r"\b((?:ews|faust)_[a-z_]+)", text):
            names.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return names


def test_every_deploy_file_parses():
    files = (
        list(DEPLOY.rglob("*.yml")) + list(DEPLOY.rglob("*.yaml")) + list(DEPLOY.rglob("*.json"))
    )
    assert len(files) >= 7
    for path in files:
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            list(yaml.safe_load_all(path.read_text()))


def test_compose_runs_three_brokers_and_two_workers_per_service_with_replication():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    brokers = [s for s in services if s.startswith("kafka-")]
    assert len(brokers) == 3
    for name in ("ingest", "triggers", "notify"):
        service = services[name]
        assert service["deploy"]["replicas"] == 2
        assert service["environment"]["EWS_TOPIC_REPLICATION_FACTOR"] == 3
        assert service["environment"]["EWS_TOPIC_MIN_INSYNC_REPLICAS"] == 2
        assert service["command"] == ["worker", name]
    assert {"prometheus", "grafana"} <= services.keys()
    assert services["kafka-1"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] == 2


def test_kubernetes_deployments_have_probes_resources_and_scraping():
    docs = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "ews.yaml").read_text()) if d]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"ews-ingest", "ews-triggers", "ews-notify"}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert any(d["kind"] == "PodMonitor" for d in docs)


@needs_promtool
def test_promtool_accepts_the_alert_rules():
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_running_services_produce_every_metric_the_dashboard_and_rules_use(workers, tmp_path):
    (tmp_path / "contacts.yaml").write_text("version: 1\ncontacts: []\n")
    workers.env["EWS_CONTACTS_FILE"] = str(tmp_path / "contacts.yaml")
    started = {s: workers.start(s) for s in ("ingest", "triggers", "notify")}
    await wait_ready(workers, list(started.values()))
    await asyncio.sleep(6)  # the readiness and active-alert gauges are exported by timers
    produced: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as client:
        for service, (_process, port) in started.items():
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            produced |= set(re.findall(r"^# TYPE (\S+) ", text, re.M))
            if PROMTOOL:
                lint = subprocess.run(
                    [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True
                )
                assert lint.returncode == 0, f"{service}: {lint.stdout}{lint.stderr}"
            assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    missing = sorted(referenced_metrics() - produced)
    assert not missing, f"used by deploy/ but produced by no service: {missing}"


async def test_a_topic_that_differs_from_what_ews_needs_is_a_clear_error(
    kafka_bootstrap, namespace
):
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics(
        [NewTopic(Topics(namespace).contacts, 4, 1, topic_configs={"cleanup.policy": "delete"})]
    )
    await admin.close()
    with pytest.raises(
        TopicMismatch,
        match=r"contacts: cleanup.policy is delete, ews needs compact \(kafka-configs.sh",
    ):
        await ensure_topics(Settings(kafka_bootstrap=kafka_bootstrap, topic_namespace=namespace))


def test_the_systemd_unit_restarts_a_worker_on_every_documented_exit_but_a_refused_config(
    tmp_path,
):
    """deploy/systemd/ews@.service: `systemd-analyze verify` accepts it (pointed at this checkout),
    it runs `ews worker %i`, restarts on 70, 75 and 76 (on-failure) and not on 78, the configuration
    refused, which a restart would only repeat."""
    from services.common.exits import EXIT_CONFIG, EXIT_FAILED, EXIT_GAP, EXIT_STALLED

    text = (DEPLOY / "systemd" / "ews@.service").read_text()
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[:1] not in "#;"
    )
    assert settings["ExecStart"].endswith("/.venv/bin/ews worker %i")
    assert settings["Restart"] == "on-failure" and settings["RestartPreventExitStatus"] == str(
        EXIT_CONFIG
    )
    kept = {int(code) for code in settings["RestartPreventExitStatus"].split()}
    assert not kept & {EXIT_FAILED, EXIT_STALLED, EXIT_GAP}
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "ews@ingest.service"
    unit.write_text(text.replace("/opt/ews", str(PROJECT_ROOT)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_tls_proxy_serves_every_api_route_and_no_monitoring_endpoint():
    """deploy/nginx/ews.conf, the documented TLS front: every route the ingest and notify workers
    register reaches its worker through it; /metrics, /healthz and /readyz do not."""
    conf = (DEPLOY / "nginx" / "ews.conf").read_text()
    upstreams = dict(re.findall(r"upstream (\w+) \{ server 127\.0\.0\.1:(\d+); \}", conf))
    locations = dict(re.findall(r"location (/\S*)\s*\{[^}]*?proxy_pass http://(\w+);", conf))
    ports = {"ingest": Settings().ingest_web_port, "notify": Settings().notify_web_port}
    for service, source in (
        ("ingest", PROJECT_ROOT / "services" / "ingest" / "app.py"),
        ("notify", PROJECT_ROOT / "services" / "notify" / "api.py"),
        ("notify", PROJECT_ROOT / "services" / "notify" / "console" / "pages.py"),
    ):
        routes = re.findall(r'@app\.page\("([^"]+)"\)', source.read_text())
        assert routes
        for route in routes:
            served = [p for p in locations if route.startswith(p.rstrip("/")) and p != "/"]
            assert served, f"{route} is not proxied"
            assert upstreams[locations[served[0]]] == str(ports[service]), route
    for endpoint in ("/metrics", "/healthz", "/readyz"):
        assert not [p for p in locations if endpoint.startswith(p.rstrip("/")) and p != "/"]
    assert "location / { return 404; }" in conf and "ssl_certificate " in conf

"""The deployment files stay true to the code: they parse, use real settings, and query real metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from flakeguard.config import QueueDefaults, Settings
from flakeguard.metrics import REGISTRY

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def setting_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif alias is not None:
            names.update(str(choice) for choice in alias.choices)  # type: ignore[union-attr]
    names.update("QUEUE_" + name.upper() for name in QueueDefaults.model_fields)
    return names


def metric_names() -> set[str]:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {
        metric.name + suffix for metric in REGISTRY.collect() for suffix in suffixes.get(metric.type, ("",))
    }


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_files_parse(path: Path) -> None:
    assert [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def test_configured_environment_variables_are_real_settings() -> None:
    known = setting_names()
    configmap = yaml.safe_load((DEPLOY / "k8s" / "configmap.yaml").read_text())
    secret = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    used = (
        set(configmap["data"]) | set(secret["stringData"]) | set(compose["services"]["worker"]["environment"])
    )
    assert used - known == set()


def test_dashboard_and_alerts_query_existing_metrics() -> None:
    known = metric_names()
    queries = [
        target["expr"]
        for panel in json.loads((DEPLOY / "grafana" / "flakeguard.json").read_text())["panels"]
        for target in panel["targets"]
    ]
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    queries += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    referenced = {name for q in queries for name in re.findall(r"flakeguard_[a-z_]+", q)}
    assert referenced, "no FlakeGuard metric referenced"
    assert referenced - known == set()


def test_the_image_runs_the_worker_and_probes_the_health_port() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["flakeguard"]' in dockerfile and 'CMD ["worker"]' in dockerfile
    assert "requirements.lock" in dockerfile
    deployment = yaml.safe_load((DEPLOY / "k8s" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"

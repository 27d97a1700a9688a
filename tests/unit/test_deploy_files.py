"""The deployment files stay true to the code and to the original's deployment contract: they pass
real validators offline (kubernetes-validate against the Kubernetes schemas, dockerfile-utils' linter
for the Dockerfile), use real settings, and query real metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from flakeguard.config import QueueDefaults, Settings
from flakeguard.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30.0"  # the oldest Kubernetes the manifests must run on (schemas ship offline)
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


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


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def container(manifest: str) -> dict[str, Any]:
    spec = load(K8S / manifest)["spec"]["template"]["spec"]
    return dict(spec["containers"][0])


def test_configured_environment_variables_are_real_settings() -> None:
    known = setting_names()
    configmap = load(K8S / "configmap.yaml")
    used = set(configmap["data"])
    for manifest in ("deployment.yaml", "migrate-job.yaml"):
        used |= {item["name"] for item in container(manifest)["env"]}
    for compose in ("docker-compose.yml", "docker-compose.dev.yml"):
        used |= set(load(DEPLOY / compose)["services"]["worker"]["environment"])
    assert used - known == set()


def test_secret_keys_referenced_by_the_manifests_exist_in_the_template() -> None:
    keys = set(load(K8S / "secret.example.yaml")["stringData"])
    referenced = {
        item["valueFrom"]["secretKeyRef"]["key"]
        for manifest in ("deployment.yaml", "migrate-job.yaml")
        for item in container(manifest)["env"]
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert "database-url" in referenced and referenced <= keys


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifests_validate_against_the_schemas(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest_but_the_migration_job() -> None:
    listed = set(load(K8S / "kustomization.yaml")["resources"])
    assert listed == {p.name for p in MANIFESTS} - {"migrate-job.yaml", "secret.example.yaml"}


def test_the_deployment_is_the_originals() -> None:
    deployment = load(K8S / "deployment.yaml")
    assert deployment["metadata"]["name"] == "flakeguard-worker" and deployment["spec"]["replicas"] == 3
    worker = container("deployment.yaml")
    assert worker["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "1500m", "memory": "2Gi"},
    }
    database = next(item for item in worker["env"] if item["name"] == "DATABASE_URL")
    assert database["valueFrom"]["secretKeyRef"] == {"name": "flakeguard-secrets", "key": "database-url"}
    assert {p["containerPort"] for p in worker["ports"]} == {8080, 9090}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": 8080}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": 8080}
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 1001


def test_network_policy_and_autoscaling_on_queue_depth_beside_cpu() -> None:
    pods = load(K8S / "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    policy = load(K8S / "networkpolicy.yaml")
    assert policy["kind"] == "NetworkPolicy" and set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pods.items()
    hpa = load(K8S / "hpa.yaml")
    assert hpa["spec"]["minReplicas"] == 3
    kinds = {m["type"] for m in hpa["spec"]["metrics"]}
    assert kinds == {"Resource", "External"}
    external = {m["external"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "External"}
    adapter = load(DEPLOY / "prometheus" / "prometheus-adapter-values.yaml")
    rules = adapter["rules"]["external"]
    assert external == {rule["name"]["as"] for rule in rules}
    assert all("flakeguard_worker_queue_size" in rule["seriesQuery"] for rule in rules)


def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(str(DEPLOY / "Dockerfile"))
    return parser


def runtime_stage() -> list[dict[str, Any]]:
    structure = dockerfile().structure
    last_from = max(i for i, item in enumerate(structure) if item["instruction"] == "FROM")
    return structure[last_from:]


def test_the_dockerfile_passes_the_linter() -> None:
    node = shutil.which("node")
    linter = ROOT / "tests" / "interop" / "node_modules" / ".bin" / "dockerfile-utils"
    if node is None:
        assert os.environ.get("CI") != "true", "CI must lint the Dockerfile: install node"
        pytest.skip("node is not installed: dockerfile-utils needs it")
    assert linter.exists(), "run `make node-deps` (npm ci in tests/interop) first"
    proc = subprocess.run(
        [str(linter), "lint", str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_the_linter_catches_a_broken_dockerfile(tmp_path: Path) -> None:
    """The check above can fail: the same linter refuses a Dockerfile with errors."""
    linter = ROOT / "tests" / "interop" / "node_modules" / ".bin" / "dockerfile-utils"
    if shutil.which("node") is None or not linter.exists():
        pytest.skip("dockerfile-utils is not installed")
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:3.11-slim\nHEALTHCHECK --interval=soon CMD true\nUSER\n")
    proc = subprocess.run([str(linter), "lint", str(broken)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "invalid duration" in proc.stdout


def test_the_image_runs_as_flakeguard_uid_1001_with_an_exec_form_healthcheck() -> None:
    stage = runtime_stage()
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?( AS runtime)?", stage[0]["value"])
    run = " ".join(item["value"] for item in stage if item["instruction"] == "RUN")
    assert "--uid 1001" in run and re.search(r"useradd .*flakeguard$", run)
    [user] = [item["value"] for item in stage if item["instruction"] == "USER"]
    assert user.split(":")[0] in ("1001", "flakeguard")
    [health] = [item["value"] for item in stage if item["instruction"] == "HEALTHCHECK"]
    exec_form = health.split(" CMD ", 1)[1].strip()
    command = json.loads(exec_form)  # exec form: a JSON array, no shell
    assert command[0] == "python" and "/health" in command[-1]


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


def test_the_image_runs_the_worker_from_the_lock_file() -> None:
    stage = runtime_stage()
    assert [i["value"] for i in stage if i["instruction"] == "ENTRYPOINT"] == ['["flakeguard"]']
    assert [i["value"] for i in stage if i["instruction"] == "CMD"] == ['["worker"]']
    assert "requirements.lock" in (DEPLOY / "Dockerfile").read_text()


def test_compose_monitoring_profile_and_the_dev_and_test_files() -> None:
    compose = load(DEPLOY / "docker-compose.yml")["services"]
    for service, ports in (("prometheus", ["9091:9090"]), ("grafana", ["3001:3000"])):
        assert compose[service]["profiles"] == ["monitoring"] and compose[service]["ports"] == ports
    assert "profiles" not in compose["worker"] and compose["worker"]["command"] == ["worker"]
    dev = load(DEPLOY / "docker-compose.dev.yml")["services"]
    assert "flakeguard worker --reload" in " ".join(dev["worker"]["entrypoint"])
    assert dev["worker"]["build"]["target"] == "dev" and {"postgres", "redis"} <= set(dev)
    test = load(DEPLOY / "docker-compose.test.yml")["services"]
    assert set(test) == {"postgres", "redis"}
    assert test["postgres"]["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert test["postgres"]["ports"] == ["127.0.0.1:5432:5432"]
    assert test["redis"]["ports"] == ["127.0.0.1:6379:6379"]
    prometheus = load(DEPLOY / "prometheus" / "prometheus.yml")
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["worker:9090"]

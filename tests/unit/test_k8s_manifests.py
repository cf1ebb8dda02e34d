"""packaging/k8s/, checked offline: no cluster here, so every manifest must parse, the core
resources must validate against the Kubernetes JSON schemas (kubernetes-validate bundles them),
and the files must agree with each other and with the code: ports, probe paths, the gateway's
inferencehub.toml, the worker's flags and certificates, the HPA's target, selectors.

Each check is a function over a fresh parse of the files. `test_check_passes` runs it on the
files as they are; `test_check_catches` breaks a copy one way and expects that check to fail.
"""

from __future__ import annotations

import copy
import functools
import inspect
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import typer.main
import yaml

from inferencehub.cli import app
from inferencehub.config import GatewaySettings, Settings, load_settings
from inferencehub.errors import ConfigError
from inferencehub.gateway import observe
from inferencehub.gateway.auth import OPEN_HTTP_PATHS
from inferencehub.runtime import is_loopback

K8S = Path(__file__).resolve().parents[2] / "packaging" / "k8s"
# The oldest Kubernetes the manifests target (gRPC probes and h2c appProtocol are GA there)
# and the newest whose schemas the pinned kubernetes-validate bundles.
K8S_VERSIONS = ("1.27", "1.37")
# The public ports are `up`'s defaults; 9000 is `inferencehub worker --listen`'s.
HTTP_PORT = GatewaySettings.model_fields["http_port"].default  # 8000
GRPC_PORT = GatewaySettings.model_fields["grpc_port"].default  # 8001
WORKER_PORT = 9000
GATEWAY, WORKER, ISVC = "inferencehub-gateway", "inferencehub-worker", "inferencehub"
CUSTOM_KINDS = {"Kustomization", "InferenceService", "Certificate", "Issuer"}  # CRDs: no schema
# InferenceService predictor keys that are KServe's, not the PodSpec's.
KSERVE_COMPONENT_KEYS = {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"}
# Kinds that must have been schema-validated (Pod: the InferenceService's predictor).
CORE_KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PersistentVolumeClaim"}
CORE_KINDS |= {"NetworkPolicy", "Pod"}


@dataclass
class Manifests:
    files: dict[str, list[dict[str, Any]]]  # path under packaging/k8s -> its YAML documents
    toml_text: str  # the gateway's inferencehub.toml

    def docs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for path, documents in self.files.items():
            for doc in documents:
                yield path, doc

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for _, d in self.docs() if d["kind"] == kind and d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]


@functools.cache
def _parsed() -> Manifests:
    files = {
        str(p.relative_to(K8S)): [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
        for p in sorted(K8S.rglob("*.yaml"))
    }
    return Manifests(files, (K8S / "inferencehub.toml").read_text())


def manifests() -> Manifests:
    return copy.deepcopy(_parsed())


# --- helpers over pod specs -------------------------------------------------------------------


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "InferenceService":
        predictor = doc["spec"]["predictor"]
        return {k: v for k, v in predictor.items() if k not in KSERVE_COMPONENT_KEYS}
    return doc["spec"]["template"]["spec"]


def only_container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(doc)["containers"]
    assert len(containers) == 1, f"{doc['metadata']['name']}: expected one container"
    return containers[0]


def volume_at(doc: dict[str, Any], mount_path: str) -> dict[str, Any]:
    """The volume mounted at mount_path, or at the directory holding it."""
    mounts = only_container(doc).get("volumeMounts", [])
    for mount in mounts:
        if mount_path == mount["mountPath"] or PurePosixPath(mount_path).parent == PurePosixPath(
            mount["mountPath"]
        ):
            (vol,) = [v for v in pod_spec(doc)["volumes"] if v["name"] == mount["name"]]
            return {**vol, "_mount": mount}
    raise AssertionError(f"{doc['metadata']['name']}: nothing mounted at {mount_path}")


def flag(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's target port as a number; it must be one the container declares."""
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    number = ports.get(port) if isinstance(port, str) else port
    assert number in ports.values(), f"port {port!r} is not a container port ({ports})"
    return number


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def load_gateway_settings(toml_text: str) -> Settings:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "inferencehub.toml"
        path.write_text(toml_text)
        try:
            return load_settings(path)
        except ConfigError as exc:
            raise AssertionError(f"inferencehub.toml: {exc.message}") from None


# --- the checks -------------------------------------------------------------------------------


def check_documents(m: Manifests) -> None:
    assert m.files, "no manifests found"
    for path, doc in m.docs():
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
        assert doc.get("apiVersion") and doc.get("kind"), f"{path}: apiVersion and kind needed"
        if doc["kind"] != "Kustomization":
            assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} has no name"


def check_schemas(m: Manifests) -> None:
    validated = set()
    for path, doc in m.docs():
        if doc["kind"] == "InferenceService":  # its predictor is a PodSpec plus KServe's keys
            doc = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": pod_spec(doc),
            }
        elif doc["kind"] in CUSTOM_KINDS:
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                raise AssertionError(f"{path} ({version}): {exc.message} at {where}") from None
        validated.add(doc["kind"])
    assert validated >= CORE_KINDS, f"only validated {validated}"


def check_kustomizations(m: Manifests) -> None:
    for path in [p for p in m.files if PurePosixPath(p).name == "kustomization.yaml"]:
        (kust,) = m.files[path]
        folder = PurePosixPath(path).parent
        listed = set(kust.get("resources", []))
        present = {
            str(PurePosixPath(p).relative_to(folder))
            for p in m.files
            if PurePosixPath(p).parent == folder and PurePosixPath(p).name != "kustomization.yaml"
        }
        assert listed == present, f"{path} lists {sorted(listed)}, the folder has {sorted(present)}"
        for gen in kust.get("configMapGenerator", []):
            for file in gen["files"]:
                assert (K8S / folder / file).is_file(), f"{path}: {file} does not exist"
    (kust,) = m.files["kustomization.yaml"]
    (gen,) = kust["configMapGenerator"]
    gateway = m.one("Deployment", GATEWAY)
    config_path = flag(only_container(gateway)["args"], "--config")
    vol = volume_at(gateway, config_path)
    assert vol.get("configMap", {}).get("name") == gen["name"], "gateway mounts another ConfigMap"
    assert vol["_mount"].get("subPath") in gen["files"], "gateway mounts another file"


def check_selectors(m: Manifests) -> None:
    templates = {}
    for name in (GATEWAY, WORKER):
        deployment = m.one("Deployment", name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels_match(deployment["spec"]["selector"]["matchLabels"], labels), name
        templates[name] = labels
    for service, target in (("inferencehub", GATEWAY), ("inferencehub-worker", WORKER)):
        selector = m.one("Service", service)["spec"]["selector"]
        chosen = [n for n, labels in templates.items() if labels_match(selector, labels)]
        assert chosen == [target], f"Service {service} selects {chosen}, not {target}"
    policy = m.one("NetworkPolicy", WORKER)["spec"]
    assert labels_match(policy["podSelector"]["matchLabels"], templates[WORKER])
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    assert labels_match(source["podSelector"]["matchLabels"], templates[GATEWAY])
    assert [p["port"] for p in rule["ports"]] == [WORKER_PORT]


def check_ports(m: Manifests) -> None:
    settings = load_gateway_settings(m.toml_text)
    assert (settings.gateway.http_port, settings.gateway.grpc_port) == (HTTP_PORT, GRPC_PORT)
    gateway = only_container(m.one("Deployment", GATEWAY))
    worker = only_container(m.one("Deployment", WORKER))
    assert container_port(gateway, "http") == HTTP_PORT
    assert container_port(gateway, "grpc") == GRPC_PORT
    listen = flag(worker["args"], "--listen")
    assert int(listen.rpartition(":")[2]) == container_port(worker, "grpc") == WORKER_PORT
    for service, container, expected in (
        ("inferencehub", gateway, {HTTP_PORT, GRPC_PORT}),
        ("inferencehub-worker", worker, {WORKER_PORT}),
    ):
        ports = m.one("Service", service)["spec"]["ports"]
        for p in ports:
            assert p["port"] == container_port(container, p["targetPort"]), f"{service} {p}"
        assert {p["port"] for p in ports} == expected, f"Service {service} ports"
    assert m.one("Service", "inferencehub-worker")["spec"].get("clusterIP") == "None"


def check_probes(m: Manifests) -> None:
    for doc in (m.one("Deployment", GATEWAY), m.one("InferenceService", ISVC)):
        container = only_container(doc)
        for probe, path in (
            ("readinessProbe", "/v2/health/ready"),
            ("livenessProbe", "/v2/health/live"),
        ):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{doc['metadata']['name']} {probe}: {get['path']}"
            assert path in OPEN_HTTP_PATHS, f"{path} needs an API key: probes would fail"
            assert container_port(container, get["port"]) == HTTP_PORT
    worker = only_container(m.one("Deployment", WORKER))
    for probe in ("readinessProbe", "livenessProbe"):
        # A kubelet gRPC or HTTP probe cannot pass the worker's mutual TLS.
        assert set(worker[probe]) & {"httpGet", "grpc", "tcpSocket", "exec"} == {"tcpSocket"}
        assert container_port(worker, worker[probe]["tcpSocket"]["port"]) == WORKER_PORT


def check_gateway_config(m: Manifests) -> None:
    settings = load_gateway_settings(m.toml_text)
    assert settings.supervisor.workers == 0 and not settings.supervisor.placement, (
        "the gateway pods must not start local workers"
    )
    (remote,) = settings.gateway.remote_workers
    host, _, port = remote.address.rpartition(":")
    worker_service = m.one("Service", "inferencehub-worker")
    assert host == worker_service["metadata"]["name"], f"remote worker {host} is not the Service"
    assert int(port) in {p["port"] for p in worker_service["spec"]["ports"]}
    gateway = m.one("Deployment", GATEWAY)
    tls = {
        str(getattr(remote, key)): name
        for key, name in (
            ("ca_cert", "ca.crt"),
            ("client_cert", "tls.crt"),
            ("client_key", "tls.key"),
        )
    }
    for path, name in tls.items():
        vol = volume_at(gateway, path)
        assert "secret" in vol and PurePosixPath(path).name == name, (
            f"{path}: not {name} of a Secret"
        )
    assert not is_loopback(settings.gateway.host), "a loopback host is unreachable from the Service"
    # The door needs API keys, read from a Secret in a mode the key store trusts (keys.py).
    assert not settings.gateway.insecure, "the cluster's door must not be open"
    keys = settings.gateway.api_keys_file
    assert keys is not None and keys.name == "keys.json", "gateway.api_keys_file names keys.json"
    vol = volume_at(gateway, str(keys))
    assert vol.get("secret", {}).get("secretName") == "inferencehub-api-keys", f"{keys}: no Secret"
    assert not vol["secret"].get("defaultMode", 0o644) & 0o027, "the key store refuses that mode"


def check_worker(m: Manifests) -> None:
    worker = m.one("Deployment", WORKER)
    args = only_container(worker)["args"]
    assert args[0] == "worker"
    models = volume_at(worker, flag(args, "--models"))
    claim = models["persistentVolumeClaim"]
    assert models["_mount"].get("readOnly") is True and claim.get("readOnly") is True
    m.one("PersistentVolumeClaim", claim["claimName"])
    secrets = {
        volume_at(worker, flag(args, f))["secret"]["secretName"]
        for f in ("--tls-cert", "--tls-key", "--client-ca")
    }
    assert secrets == {"inferencehub-worker-tls"}, secrets
    # Pods behind the one Service name share the data dir, where the routing policies are
    # saved: a change that reached one pod reaches all (tests/e2e/test_workers.py).
    env = {e["name"]: e.get("value") for e in only_container(worker).get("env", [])}
    state = volume_at(worker, f"{env['XDG_DATA_HOME']}/inferencehub")
    assert "persistentVolumeClaim" in state, "the data dir must be shared by the worker pods"
    claim = m.one("PersistentVolumeClaim", state["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "pods on several nodes share it"
    assert not state["_mount"].get("readOnly"), "the worker writes its routing there"
    assert "replicas" not in worker["spec"], (
        "the HPA owns the replicas: re-applying would reset them"
    )


def check_cli_flags(m: Manifests) -> None:
    """Each container's args are a real `inferencehub` command line: known options, values."""
    commands = typer.main.get_group(app).commands
    for doc in (
        m.one("Deployment", GATEWAY),
        m.one("Deployment", WORKER),
        m.one("InferenceService", ISVC),
    ):
        command, *rest = only_container(doc)["args"]
        assert command in commands, f"{doc['metadata']['name']}: no command {command!r}"
        options = {o: p for p in commands[command].params for o in p.opts if o.startswith("--")}
        while rest:
            option = rest.pop(0)
            assert option in options, f"`inferencehub {command}` has no option {option}"
            if not options[option].is_flag:
                assert rest and not rest[0].startswith("--"), f"{option} needs a value"
                rest.pop(0)


def check_hpa(m: Manifests) -> None:
    hpa = m.one("HorizontalPodAutoscaler", WORKER)["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": WORKER}
    m.one("Deployment", hpa["scaleTargetRef"]["name"])
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    by_type = {metric["type"]: metric for metric in hpa["metrics"]}
    name = by_type["External"]["external"]["metric"]["name"]
    assert f'"{name}"' in inspect.getsource(observe), f"the gateway publishes no {name}"
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    requests = only_container(m.one("Deployment", WORKER))["resources"]["requests"]
    assert "cpu" in requests, "CPU utilization is measured against the worker's CPU request"


def check_certificates(m: Manifests) -> None:
    settings = load_gateway_settings(m.toml_text)
    (remote,) = settings.gateway.remote_workers
    server_name = remote.server_name or remote.address.rpartition(":")[0]
    ca = m.one("Certificate", "inferencehub-ca")["spec"]
    assert ca.get("isCA") is True
    issuer = m.one("Issuer", "inferencehub-ca")["spec"]
    assert issuer["ca"]["secretName"] == ca["secretName"]

    mounted = {
        WORKER: flag(only_container(m.one("Deployment", WORKER))["args"], "--tls-cert"),
        GATEWAY: str(remote.client_cert),
    }
    for cert_name, deployment, usage in (
        ("inferencehub-worker", WORKER, "server auth"),
        ("inferencehub-gateway", GATEWAY, "client auth"),
    ):
        cert = m.one("Certificate", cert_name)["spec"]
        secret = volume_at(m.one("Deployment", deployment), mounted[deployment])["secret"]
        assert cert["secretName"] == secret["secretName"], f"{deployment} mounts another Secret"
        assert usage in cert["usages"], f"{cert_name} lacks {usage}"
        assert cert["issuerRef"] == {"name": "inferencehub-ca", "kind": "Issuer"}
    worker_cert = m.one("Certificate", "inferencehub-worker")["spec"]
    assert server_name in worker_cert["dnsNames"], f"the gateway checks {server_name}"


def check_security(m: Manifests) -> None:
    for doc in (
        m.one("Deployment", GATEWAY),
        m.one("Deployment", WORKER),
        m.one("InferenceService", ISVC),
    ):
        name, spec, container = doc["metadata"]["name"], pod_spec(doc), only_container(doc)
        ctx = container.get("securityContext", {})
        pod_ctx = spec.get("securityContext", {})
        assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, name
        assert ctx.get("allowPrivilegeEscalation") is False, name
        assert ctx.get("readOnlyRootFilesystem") is True, name
        assert ctx.get("capabilities", {}).get("drop") == ["ALL"], name
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        tmp = volume_at(doc, "/tmp")
        assert "emptyDir" in tmp and tmp["_mount"]["mountPath"] == "/tmp", f"{name}: /tmp"
        data_home = env.get("XDG_DATA_HOME") or "(XDG_DATA_HOME unset)"
        data = volume_at(doc, data_home)  # writable: a scratch emptyDir or the shared state
        assert {"emptyDir", "persistentVolumeClaim"} & set(data), f"{name}: {data_home}"
        assert data["_mount"]["mountPath"] == data_home and not data["_mount"].get("readOnly")
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name


def check_kserve(m: Manifests) -> None:
    isvc = m.one("InferenceService", ISVC)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    container = only_container(isvc)
    assert container["name"] == "kserve-container", "KServe finds the predictor by this name"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env.get("PROTOCOL") == "v2", "custom predictors set the protocol with PROTOCOL"
    assert env.get("STORAGE_URI"), "the storage initializer needs STORAGE_URI"
    args = container["args"]
    assert args[0] == "up" and flag(args, "--models") == "/mnt/models"
    assert is_loopback(flag(args, "--host")) is False and "--insecure" in args
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http1", HTTP_PORT)


CHECKS = [
    check_documents,
    check_schemas,
    check_kustomizations,
    check_selectors,
    check_ports,
    check_probes,
    check_gateway_config,
    check_worker,
    check_cli_flags,
    check_hpa,
    check_certificates,
    check_security,
    check_kserve,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_check_passes(check: Callable[[Manifests], None]) -> None:
    check(manifests())


# --- each check fails on a broken copy --------------------------------------------------------


def _gateway(m: Manifests) -> dict[str, Any]:
    return only_container(m.one("Deployment", GATEWAY))


def _worker(m: Manifests) -> dict[str, Any]:
    return only_container(m.one("Deployment", WORKER))


def _secret_mode(m: Manifests, volume: str, mode: int) -> None:
    (found,) = [v for v in pod_spec(m.one("Deployment", GATEWAY))["volumes"] if v["name"] == volume]
    found["secret"]["defaultMode"] = mode


def _per_pod(m: Manifests, volume: str) -> None:
    """Turn one of the worker's volumes into a per-pod emptyDir."""
    (found,) = [v for v in pod_spec(m.one("Deployment", WORKER))["volumes"] if v["name"] == volume]
    found.pop("persistentVolumeClaim")
    found["emptyDir"] = {}


def _set_arg(container: dict[str, Any], name: str, value: str) -> None:
    container["args"][container["args"].index(name) + 1] = value


def _set_flag(container: dict[str, Any], old: str, new: str) -> None:
    container["args"][container["args"].index(old)] = new


def _toml(old: str, new: str) -> Callable[[Manifests], None]:
    def mutate(m: Manifests) -> None:
        assert old in m.toml_text
        m.toml_text = m.toml_text.replace(old, new)

    return mutate


BREAKAGES: list[tuple[str, Callable[[Manifests], None], Callable[[Manifests], None]]] = [
    ("doc-without-kind", check_documents, lambda m: m.files["models-pvc.yaml"][0].pop("kind")),
    (
        "misspelt-field",
        check_schemas,
        lambda m: _worker(m).update(readinesProbe=_worker(m).pop("readinessProbe")),
    ),
    (
        "string-replicas",
        check_schemas,
        lambda m: m.one("HorizontalPodAutoscaler", WORKER)["spec"].update(minReplicas="two"),
    ),
    (
        "kserve-container-typo",
        check_schemas,
        lambda m: only_container(m.one("InferenceService", ISVC)).update(argz=[]),
    ),
    (
        "file-not-listed",
        check_kustomizations,
        lambda m: m.files["kustomization.yaml"][0]["resources"].remove("worker-hpa.yaml"),
    ),
    (
        "configmap-renamed",
        check_kustomizations,
        lambda m: m.files["kustomization.yaml"][0]["configMapGenerator"][0].update(name="other"),
    ),
    (
        "selector-mismatch",
        check_selectors,
        lambda m: m.one("Service", "inferencehub")["spec"]["selector"].update(
            {"app.kubernetes.io/component": "worker"}
        ),
    ),
    (
        "deployment-selector",
        check_selectors,
        lambda m: m.one("Deployment", WORKER)["spec"]["selector"]["matchLabels"].update(x="y"),
    ),
    (
        "service-port",
        check_ports,
        lambda m: m.one("Service", "inferencehub")["spec"]["ports"][1].update(port=8002),
    ),
    (
        "unknown-target-port",
        check_ports,
        lambda m: m.one("Service", "inferencehub-worker")["spec"]["ports"][0].update(
            targetPort="h2"
        ),
    ),
    ("listen-port", check_ports, lambda m: _set_arg(_worker(m), "--listen", "0.0.0.0:9001")),
    ("toml-http-port", check_ports, _toml("http_port = 8000", "http_port = 8080")),
    (
        "ready-path",
        check_probes,
        lambda m: _gateway(m)["readinessProbe"]["httpGet"].update(path="/v2/health/readyz"),
    ),
    (
        "probe-port",
        check_probes,
        lambda m: _gateway(m)["livenessProbe"]["httpGet"].update(port="grpc"),
    ),
    (
        "kserve-live-path",
        check_probes,
        lambda m: only_container(m.one("InferenceService", ISVC))["livenessProbe"][
            "httpGet"
        ].update(path="/healthz"),
    ),
    (
        "worker-grpc-probe",
        check_probes,
        lambda m: _worker(m).update(readinessProbe={"grpc": {"port": WORKER_PORT}}),
    ),
    (
        "toml-unknown-key",
        check_gateway_config,
        _toml("[gateway]\n", "[gateway]\nlocal_workers = false\n"),
    ),
    ("toml-local-workers", check_gateway_config, _toml("workers = 0", "workers = 1")),
    (
        "remote-port",
        check_gateway_config,
        _toml("inferencehub-worker:9000", "inferencehub-worker:9001"),
    ),
    ("remote-host", check_gateway_config, _toml("inferencehub-worker:9000", "worker:9000")),
    ("client-key-path", check_gateway_config, _toml("/tls/tls.key", "/certs/tls.key")),
    ("open-door", check_gateway_config, _toml("api_keys_file", "insecure = true\n#")),
    (
        "keys-outside-the-secret",
        check_gateway_config,
        _toml("/etc/inferencehub/keys/keys.json", "/var/lib/inferencehub/keys.json"),
    ),
    ("keys-readable-by-all", check_gateway_config, lambda m: _secret_mode(m, "api-keys", 0o444)),
    ("no-client-ca", check_worker, lambda m: _worker(m)["args"].remove("--client-ca")),
    ("models-writable", check_worker, lambda m: _worker(m)["volumeMounts"][0].pop("readOnly")),
    (
        "state-per-pod",
        check_worker,
        lambda m: _per_pod(m, "data"),
    ),
    (
        "state-one-node",
        check_worker,
        lambda m: m.one("PersistentVolumeClaim", "inferencehub-state")["spec"].update(
            accessModes=["ReadWriteOnce"]
        ),
    ),
    ("renamed-flag", check_cli_flags, lambda m: _set_flag(_worker(m), "--client-ca", "--ca")),
    ("flag-without-value", check_cli_flags, lambda m: _gateway(m)["args"].pop()),
    (
        "worker-replicas",
        check_worker,
        lambda m: m.one("Deployment", WORKER)["spec"].update(replicas=2),
    ),
    (
        "hpa-target",
        check_hpa,
        lambda m: m.one("HorizontalPodAutoscaler", WORKER)["spec"]["scaleTargetRef"].update(
            name=GATEWAY
        ),
    ),
    (
        "hpa-metric-name",
        check_hpa,
        lambda m: m.one("HorizontalPodAutoscaler", WORKER)["spec"]["metrics"][0]["external"][
            "metric"
        ].update(name="inferencehub_queue_length"),
    ),
    ("no-cpu-request", check_hpa, lambda m: _worker(m)["resources"]["requests"].pop("cpu")),
    (
        "worker-dns-name",
        check_certificates,
        lambda m: m.one("Certificate", "inferencehub-worker")["spec"].update(dnsNames=["worker"]),
    ),
    (
        "gateway-usage",
        check_certificates,
        lambda m: m.one("Certificate", "inferencehub-gateway")["spec"]["usages"].remove(
            "client auth"
        ),
    ),
    (
        "gateway-secret",
        check_certificates,
        lambda m: m.one("Certificate", "inferencehub-gateway")["spec"].update(secretName="x"),
    ),
    (
        "writable-root",
        check_security,
        lambda m: _gateway(m)["securityContext"].update(readOnlyRootFilesystem=False),
    ),
    (
        "caps-kept",
        check_security,
        lambda m: _worker(m)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
    ),
    (
        "no-tmp",
        check_security,
        lambda m: only_container(m.one("InferenceService", ISVC))["volumeMounts"].pop(0),
    ),
    (
        "protocol-v1",
        check_kserve,
        lambda m: only_container(m.one("InferenceService", ISVC))["env"][1].update(value="v1"),
    ),
    (
        "kserve-port",
        check_kserve,
        lambda m: only_container(m.one("InferenceService", ISVC))["ports"][0].update(
            containerPort=8080
        ),
    ),
]


@pytest.mark.parametrize(
    ("check", "mutate"), [(c, f) for _, c, f in BREAKAGES], ids=[i for i, _, _ in BREAKAGES]
)
def test_check_catches(
    check: Callable[[Manifests], None], mutate: Callable[[Manifests], None]
) -> None:
    broken = manifests()
    mutate(broken)
    with pytest.raises(AssertionError):
        check(broken)


def test_every_check_has_a_breakage() -> None:
    assert {c for _, c, _ in BREAKAGES} == set(CHECKS)

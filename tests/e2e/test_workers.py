"""Several workers behind one gateway: local replicas balanced by least outstanding requests,
failover while one restarts, per-model placement, and a remote worker over mutual TLS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx
import pytest

from inferencehub.client import connect
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc
from tests.hub import Hub, cmdline, free_tcp_port, running_hub, wait_for
from tests.model_builders import scale_model, slow_batch_model

pytestmark = pytest.mark.e2e

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


def status(hub: Hub) -> dict:
    return httpx.get(f"{hub.http_url}/v1/status", timeout=10).json()


def worker_processes(hub: Hub) -> dict[str, int]:
    """name -> pid of the local workers, from the supervisor's view."""
    return {p["role"]: p["pid"] for p in status(hub)["processes"] if p["role"].startswith("worker")}


def served_by_each(pid: int) -> int:
    """Inferences one worker ran, asked over its own Unix socket."""
    argv = cmdline(pid)
    address = argv[argv.index("--socket") + 1]
    with grpc.insecure_channel(address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        reply = stub.ModelStatistics(pb.ModelStatisticsRequest(name="m"), timeout=10)
    return sum(s.inference_count for s in reply.versions)


def test_replicas_share_the_load_and_cover_for_each_other(tmp_path: Path) -> None:
    root = tmp_path / "models"
    scale_model(root / "m" / "1" / "model.onnx", [1, 2, 3, 4])
    with running_hub(root, tmp_path, "--workers", "2") as hub:
        workers = worker_processes(hub)
        assert set(workers) == {"worker-0", "worker-1"}
        listed = status(hub)["workers"]
        assert [w["name"] for w in listed] == ["worker-0", "worker-1"]
        assert all(w["serving"] and w["models"] == ["m"] for w in listed)
        frame = subprocess.run(
            [sys.executable, "-m", "inferencehub", "status", "--once", "--url", hub.http_url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "worker-0 up" in frame.stdout and "worker-1 up" in frame.stdout, frame.stdout
        with httpx.Client(timeout=30) as client:
            for _ in range(20):
                assert client.post(f"{hub.http_url}/v1/models/m/predict", json=BODY).is_success
        counts = [served_by_each(pid) for pid in workers.values()]
        assert sum(counts) >= 20 and min(counts) >= 5, counts  # both took a share

        # Kill one under load: the other covers, nothing fails, the dead one comes back.
        codes: Counter[int] = Counter()
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    reply = client.post(f"{hub.http_url}/v1/models/m/predict", json=BODY)
                    codes[reply.status_code] += 1

        threads = [threading.Thread(target=load) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: codes[200] >= 10, 30, "the load to flow")
            os.kill(workers["worker-1"], signal.SIGKILL)
            wait_for(
                lambda: (
                    next(p for p in status(hub)["processes"] if p["role"] == "worker-1")["restarts"]
                    == 1
                    and all(w["serving"] for w in status(hub)["workers"])
                ),
                30,
                "worker-1 back",
            )
            back = codes.total()
            wait_for(lambda: codes.total() >= back + 20, 30, "20 more answers after its return")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert codes[200] > 20 and set(codes) == {200}, codes
        metrics = httpx.get(f"{hub.http_url}/metrics", timeout=10).text
        assert "inferencehub_worker_up{address=" in metrics
        assert 'inferencehub_worker_outstanding_requests{worker="worker-1"}' in metrics


def test_placement_puts_each_model_in_its_own_worker(tmp_path: Path) -> None:
    root = tmp_path / "models"
    slow_batch_model(root / "heavy" / "1" / "model.onnx", iterations=20_000)
    scale_model(root / "light" / "1" / "model.onnx", [1, 2, 3, 4])
    config = tmp_path / "hub.toml"
    config.write_text(
        '[[supervisor.placement]]\nmodels = ["heavy"]\n'
        '[[supervisor.placement]]\nmodels = ["light"]\nintra_op_threads = 1\n'
    )
    with running_hub(root, tmp_path, "--config", str(config)) as hub:
        hosted = {w["name"]: w["models"] for w in status(hub)["workers"]}
        assert hosted == {"worker-0": ["heavy"], "worker-1": ["light"]}
        light = httpx.post(f"{hub.http_url}/v1/models/light/predict", json=BODY, timeout=30)
        assert light.json()["outputs"][0]["data"] == [1, 2, 3, 4]
        heavy = httpx.post(f"{hub.http_url}/v1/models/heavy/predict", json=BODY, timeout=30)
        assert heavy.json()["outputs"][0]["data"] == [20_001] * 4
        names = {m["name"] for m in httpx.get(f"{hub.http_url}/v1/models").json()["models"]}
        assert names == {"heavy", "light"}
        # Reloading a model reaches the worker that hosts it, not the other.
        assert httpx.post(f"{hub.http_url}/v2/repository/models/light/load").is_success


def thread_affinities(pid: int) -> set[frozenset[int]]:
    """The CPU sets the threads of a process may run on (one entry if they all agree)."""
    return {
        frozenset(os.sched_getaffinity(int(thread))) for thread in os.listdir(f"/proc/{pid}/task")
    }


def test_a_worker_pinned_to_cpus_runs_every_thread_there(tmp_path: Path) -> None:
    cores = sorted(os.sched_getaffinity(0))
    first, last = cores[0], cores[-1]  # the same one on a one-core machine
    root = tmp_path / "models"
    slow_batch_model(root / "heavy" / "1" / "model.onnx", iterations=20_000)
    scale_model(root / "light" / "1" / "model.onnx", [1, 2, 3, 4])
    config = tmp_path / "hub.toml"
    config.write_text(
        f'[[supervisor.placement]]\nmodels = ["heavy"]\ncpus = [{last}]\n'
        f'[[supervisor.placement]]\nmodels = ["light"]\ncpus = [{first}]\n'
    )
    with running_hub(root, tmp_path, "--config", str(config)) as hub:
        pids = worker_processes(hub)
        heavy = httpx.post(f"{hub.http_url}/v1/models/heavy/predict", json=BODY, timeout=30)
        assert heavy.json()["outputs"][0]["data"] == [20_001] * 4  # ORT's threads exist now
        assert thread_affinities(pids["worker-0"]) == {frozenset({last})}
        assert thread_affinities(pids["worker-1"]) == {frozenset({first})}
        assert f"worker pinned to CPUs {last}" in hub.output()

    # A core this machine does not offer stops `up` with a line that says so.
    config.write_text(f"[[supervisor.placement]]\ncpus = [{max(cores) + 1000}]\n")
    refused = subprocess.run(
        [sys.executable, "-m", "inferencehub", "up", "--models", str(root), "--config",
         str(config), "--http-port", str(free_tcp_port()), "--grpc-port", str(free_tcp_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0
    assert f"cpus [{max(cores) + 1000}] are not available here" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a worker certificate for 127.0.0.1 and a gateway client certificate, all by it;
    plus a second CA's client certificate the worker must refuse."""
    files = {n: directory / f"{n}.pem" for n in ("ca", "ca_key", "other_ca", "other_ca_key")}
    for ca in ("ca", "other_ca"):
        openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={ca}",
            "-keyout", str(files[f"{ca}_key"]), "-out", str(files[ca]),
        )  # fmt: skip
    for name, ca, extension in (
        ("worker", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("gateway", "ca", "extendedKeyUsage=clientAuth"),
        ("intruder", "other_ca", "extendedKeyUsage=clientAuth"),
    ):
        key, csr, cert = (directory / f"{name}.{suffix}" for suffix in ("key", "csr", "crt"))
        openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(key), "-out", str(csr),
        )  # fmt: skip
        (directory / f"{name}.ext").write_text(extension + "\n")
        openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(files[ca]), "-CAkey",
            str(files[f"{ca}_key"]), "-CAcreateserial", "-days", "1", "-out", str(cert),
            "-extfile", str(directory / f"{name}.ext"),
        )  # fmt: skip
        files[f"{name}_key"], files[f"{name}_cert"] = key, cert
    return files


def test_a_remote_worker_over_mutual_tls(tmp_path: Path) -> None:
    root = tmp_path / "models"
    scale_model(root / "m" / "1" / "model.onnx", [1, 2, 3, 4])
    pki = make_pki(tmp_path)
    cli = [sys.executable, "-m", "inferencehub", "worker"]
    plaintext = subprocess.run(
        [*cli, "--listen", "127.0.0.1:0", "--models", str(root)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert plaintext.returncode == 2 and "needs --tls-cert, --tls-key and --client-ca" in (
        plaintext.stderr
    )
    port = free_tcp_port()
    worker_log = tmp_path / "worker.log"

    def start_remote() -> subprocess.Popen[bytes]:
        with worker_log.open("a") as log:
            return subprocess.Popen(
                [
                    *cli, "--listen", f"127.0.0.1:{port}", "--models", str(root),
                    "--tls-cert", str(pki["worker_cert"]), "--tls-key", str(pki["worker_key"]),
                    "--client-ca", str(pki["ca"]),
                ],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "XDG_DATA_HOME": str(tmp_path)},
            )  # fmt: skip

    def predict(hub: Hub) -> httpx.Response:
        return httpx.post(f"{hub.http_url}/v1/models/m/predict", json=BODY, timeout=30)

    remote = start_remote()
    try:
        config = tmp_path / "gateway.toml"
        config.write_text(
            "[supervisor]\nworkers = 0\n"
            "[[gateway.remote_workers]]\n"
            f'address = "127.0.0.1:{port}"\n'
            f'ca_cert = "{pki["ca"]}"\n'
            f'client_cert = "{pki["gateway_cert"]}"\n'
            f'client_key = "{pki["gateway_key"]}"\n'
        )
        with running_hub(root, tmp_path, "--config", str(config)) as hub:
            assert set(worker_processes(hub)) == set()  # no local worker process
            (listed,) = status(hub)["workers"]
            assert listed["address"] == f"127.0.0.1:{port}" and listed["serving"]
            assert predict(hub).json()["outputs"][0]["data"] == [1, 2, 3, 4]

            # The remote worker goes away: requests get a clear 503 at once, and the gateway
            # says so once, not on every one of its per-second refreshes.
            before = len(hub.output())
            remote.send_signal(signal.SIGTERM)
            assert remote.wait(timeout=30) == 0
            wait_for(lambda: not status(hub)["workers"][0]["serving"], what="serving: false")
            away = predict(hub)
            assert away.status_code == 503, away.text
            notice = f"worker 127.0.0.1:{port} does not answer"
            wait_for(lambda: notice in hub.output()[before:], what="the first notice logged")
            # Kept: what is under test is silence over several of the gateway's refreshes
            # (one a second), and no refresh can be observed from outside.
            time.sleep(3.5)
            since = hub.output()[before:]
            assert since.count(notice) == 1, since

            # It comes back on the same address: served again, and the gateway says so.
            remote = start_remote()
            wait_for(lambda: predict(hub).status_code == 200, timeout_s=30, what="served again")
            wait_for(lambda: "answers again" in hub.output()[before:], what="the recovery logged")

        # A client with a certificate from another CA, or none, is refused by the worker.
        for cert, key in ((pki["intruder_cert"], pki["intruder_key"]), (None, None)):
            credentials = grpc.ssl_channel_credentials(
                root_certificates=pki["ca"].read_bytes(),
                private_key=key.read_bytes() if key else None,
                certificate_chain=cert.read_bytes() if cert else None,
            )
            with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
                stub = inference_pb2_grpc.InferenceServiceStub(channel)
                with pytest.raises(grpc.RpcError) as refused:
                    stub.ListModels(pb.ListModelsRequest(), timeout=5)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # Plaintext to the worker's port gets nowhere either.
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            with pytest.raises(grpc.RpcError):
                stub.ListModels(pb.ListModelsRequest(), timeout=5)
    finally:
        if remote.poll() is None:
            remote.send_signal(signal.SIGTERM)
        assert remote.wait(timeout=30) == 0
    assert "worker serving 1 model(s) on 127.0.0.1" in worker_log.read_text()


def test_worker_pods_behind_one_name_agree_on_routing(tmp_path: Path) -> None:
    """A headless Service's pods, as one gRPC target: the gateway's calls take turns among
    them, so a routing change reaches one pod. Pods that share a data dir (a shared volume in
    k8s) adopt it from the saved file, and every request follows the new policy."""
    root = tmp_path / "models"
    scale_model(root / "m" / "1" / "model.onnx", [1, 1, 1, 1])
    scale_model(root / "m" / "2" / "model.onnx", [2, 2, 2, 2])
    pki = make_pki(tmp_path)
    worker_config = tmp_path / "worker.toml"
    worker_config.write_text(
        f'data_dir = "{tmp_path / "shared"}"\n[worker]\nrepository_poll_s = 0.5\n'
    )
    ports = [free_tcp_port(), free_tcp_port()]
    pods = []
    for i, port in enumerate(ports):
        argv = [
            sys.executable, "-m", "inferencehub", "worker", "--listen", f"127.0.0.1:{port}",
            "--models", str(root), "--config", str(worker_config),
            "--tls-cert", str(pki["worker_cert"]), "--tls-key", str(pki["worker_key"]),
            "--client-ca", str(pki["ca"]),
        ]  # fmt: skip
        with (tmp_path / f"pod-{i}.log").open("w") as log:
            pods.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].read_bytes(),
        private_key=pki["gateway_key"].read_bytes(),
        certificate_chain=pki["gateway_cert"].read_bytes(),
    )

    def pod_weights(port: int) -> dict[str, float] | None:
        with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            try:
                reply = stub.ListModels(pb.ListModelsRequest(), timeout=5)
            except grpc.RpcError:
                return None  # not up yet
        return {m.name: dict(m.routing.weights) for m in reply.models}.get("m")

    def served_versions(hub: Hub) -> Counter[str]:
        return Counter(
            httpx.post(f"{hub.http_url}/v1/models/m/predict", json=BODY, timeout=30).headers[
                "x-model-version"
            ]
            for _ in range(20)
        )

    try:
        for port in ports:
            wait_for(lambda port=port: pod_weights(port) == {}, 60, f"the pod on {port}")
        config = tmp_path / "gateway.toml"
        config.write_text(
            "[supervisor]\nworkers = 0\n"
            "[[gateway.remote_workers]]\n"
            f'address = "ipv4:127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"\n'
            'server_name = "localhost"\n'
            f'ca_cert = "{pki["ca"]}"\n'
            f'client_cert = "{pki["gateway_cert"]}"\n'
            f'client_key = "{pki["gateway_key"]}"\n'
        )
        with running_hub(root, tmp_path, "--config", str(config)) as hub:
            assert served_versions(hub) == {"2": 20}  # the default: the highest version
            with connect(hub.http_url) as client:
                client.set_routing("m", split={"1": 100})
                for port in ports:
                    wait_for(lambda port=port: pod_weights(port) == {"1": 100}, 10, f"{port}")
                # The gateway's view follows at its next refresh (1 s), then stays.
                wait_for(lambda: served_versions(hub) == {"1": 20}, 10, "the gateway's view")
                # Kept: the view must survive the next refresh (one a second), which cannot be
                # observed from outside.
                time.sleep(1.5)
                assert served_versions(hub) == {"1": 20}

                client.set_routing("m", reset=True)  # back to model.toml: removes the file
                for port in ports:
                    wait_for(lambda port=port: pod_weights(port) == {}, 10, f"{port} reset")
                wait_for(lambda: served_versions(hub) == {"2": 20}, 10, "the gateway's view")
                time.sleep(1.5)  # kept: past the next refresh, as above
                assert served_versions(hub) == {"2": 20}
    finally:
        for pod in pods:
            pod.send_signal(signal.SIGTERM)
        assert [pod.wait(timeout=30) for pod in pods] == [0, 0]
    logs = [(tmp_path / f"pod-{i}.log").read_text() for i in range(2)]
    # Each change was made on one pod and adopted by the other from the shared file.
    assert sum(log.count("(changed in") for log in logs) == 2, logs


def test_up_without_any_worker_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "inferencehub", "up", "--models", str(tmp_path / "models"),
         "--workers", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "no workers" in done.stderr

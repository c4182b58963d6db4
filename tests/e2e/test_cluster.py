"""The demo on real clusters: a two-node Ray cluster and a Spark standalone cluster give the local run's output.

A module fixture starts, as subprocesses of this test, a Ray head and a second Ray node (``ray start --block``, one
CPU each, token authentication as Ray 2.59+ turns on by default) and a Spark master and worker from the pyspark
distribution (``spark-class ...Master`` / ``...Worker``, one core). The demo's 5% sample then runs twice through
``python -m pipelines.cli run``, each a process of its own (so its ``ray.init`` never meets another runtime, such as
the session's ``ray_session`` one, which this module does not use): once local, once with ``ray.address`` and
``spark.master`` pointing at the clusters, with the same seed. The targets must be equal table by table and row by
row, and the clusters must really have done the work: the pipeline's Ray job ran stage tasks on both nodes, and the
Spark master lists the write as a finished application.

Every process started here is stopped by its process group (never ``ray stop``, which would stop every Ray on
the machine), and then by the unique temporary folder its command line names.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fixtures.digest import sqlite_digest

from connectors.demo import build_demo

pytestmark = [pytest.mark.ray, pytest.mark.spark]

REPO = Path(__file__).resolve().parents[2]
SEED = 11
START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Clusters:
    root: Path  # a short unique folder under /tmp (Ray's socket paths must stay under 107 characters)
    env: dict[str, str]  # what every process here runs with: the Ray token, Spark's home and address
    ray_address: str = ""
    spark_master: str = ""
    spark_ui: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process, at teardown
        proc = subprocess.Popen(
            args, env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        _kill_stragglers(str(self.root))


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _kill_stragglers(marker: str) -> None:
    """SIGKILL any process left whose command line names ``marker`` (a folder only this module's processes use)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _ray_node(clusters: Clusters, name: str, *, head_port: int, head: bool) -> None:
    ports = [
        f"--node-manager-port={_free_port()}",
        f"--object-manager-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--dashboard-agent-grpc-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
    ]
    role = ["--head", f"--port={head_port}", "--include-dashboard=false"] if head else [f"--address={clusters.ray_address}"]
    clusters.start(
        name,
        [
            shutil.which("ray") or "ray", "start", "--block", *role, "--num-cpus=1",
            "--object-store-memory=100000000", "--disable-usage-stats", f"--temp-dir={clusters.root / name}", *ports,
        ],
    )


def _ray_nodes_alive(clusters: Clusters) -> int:
    """Alive nodes, from ``ray status`` (it reads the GCS without starting a driver, so no Ray job is made)."""
    out = subprocess.run(
        [shutil.which("ray") or "ray", "status", f"--address={clusters.ray_address}"],
        env=clusters.env, capture_output=True, text=True, timeout=60, check=False,
    )
    if out.returncode != 0:
        return 0
    active = out.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in out.stdout else ""
    return sum(1 for line in active.splitlines() if "node_" in line)


def _spark_state(clusters: Clusters) -> dict:
    with urllib.request.urlopen(f"{clusters.spark_ui}/json/", timeout=5) as resp:
        return json.load(resp)


def _wait(what: str, ready: Callable[[], bool], clusters: Clusters, logs: list[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        if any(p.poll() is not None for p in clusters.procs):
            break
        time.sleep(1)
    pytest.fail(f"{what} did not come up:\n" + "\n".join(f"--- {n}\n{clusters.log(n)}" for n in logs))


@pytest.fixture(scope="module")
def clusters(local_run: object) -> Iterator[Clusters]:
    """A Ray head and a second Ray node, a Spark master and worker (started after ``local_run``, to overlap it)."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    if not (spark_home / "bin" / "spark-class").exists() or shutil.which("ray") is None:
        pytest.skip("needs the ray CLI and pyspark's bin/spark-class")
    root = Path(tempfile.mkdtemp(prefix="sdbc-", dir="/tmp"))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        # Ray 2.59+ starts `ray start` clusters with token authentication: every node and driver needs the token.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(root / "spark-logs"),
        "SPARK_WORKER_DIR": str(root / "spark-work"),
        "PYSPARK_PYTHON": sys.executable,
    }
    env.pop("RAY_ADDRESS", None)
    c = Clusters(root=root, env=env)
    try:
        head_port = _free_port()
        c.ray_address = f"127.0.0.1:{head_port}"
        master_port, master_ui = _free_port(), _free_port()
        c.spark_master, c.spark_ui = f"spark://127.0.0.1:{master_port}", f"http://127.0.0.1:{master_ui}"
        _ray_node(c, "ray-head", head_port=head_port, head=True)
        spark_class = str(spark_home / "bin" / "spark-class")
        c.start("spark-master", [
            spark_class, "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(master_port), "--webui-port", str(master_ui),
        ])
        c.start("spark-worker", [
            spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
            "--memory", "1g", "--webui-port", str(_free_port()), "--work-dir", str(root / "spark-work"),
            c.spark_master,
        ])
        _wait("the Ray head", lambda: _ray_nodes_alive(c) >= 1, c, ["ray-head"])
        _ray_node(c, "ray-worker", head_port=head_port, head=False)
        _wait("the second Ray node", lambda: _ray_nodes_alive(c) >= 2, c, ["ray-head", "ray-worker"])
        _wait("the Spark worker", lambda: _spark_state(c).get("aliveworkers", 0) >= 1, c,
              ["spark-master", "spark-worker"])
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def _config(tmp: Path, demo: Path, name: str, extra: str = "") -> tuple[Path, Path]:
    target = tmp / f"{name}.sqlite"
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(
        f"source:\n  url: sqlite:///{demo}\ntarget:\n  url: sqlite:///{target}\nruns_dir: {tmp / name}-runs\n"
        f"generation:\n  seed: {SEED}\nreport:\n  enabled: false\n{extra}"
    )
    return cfg, target


def _start_run(cfg: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in env.items() if not k.startswith(("SYNTHDB__RAY", "SYNTHDB__SPARK")) and k != "RAY_ADDRESS"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "run", "--config", str(cfg)],
            cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, stdout=out, stderr=subprocess.STDOUT,
        )


def _finish(proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    try:
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, f"the {what} run failed:\n{log.read_text(errors='replace')[-6000:]}"


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, subprocess.Popen[bytes], Path]]:
    """The demo's 5% sample, and its local-mode run, started at once so that it overlaps the clusters' start."""
    tmp = tmp_path_factory.mktemp("cluster")
    demo = tmp / "demo.sqlite"
    build_demo(demo, fraction=0.05)
    cfg, target = _config(tmp, demo, "local")
    proc = _start_run(cfg, dict(os.environ), tmp / "local.log")
    try:
        yield tmp, demo, proc, target
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _tasks_by_job(node_root: Path) -> dict[str, set[str]]:
    """Per Ray job id, the task names that this node's workers ran (from the markers Ray writes to their logs)."""
    seen: dict[str, set[str]] = {}
    for path in node_root.glob("session_2*/logs/worker-*"):
        if path.suffix not in (".out", ".err"):
            continue
        job = None
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(":job_id:"):
                job = line.removeprefix(":job_id:").strip()
                seen.setdefault(job, set())
            elif line.startswith(":task_name:") and job is not None:
                seen[job].add(line.removeprefix(":task_name:").strip())
    return seen


def test_demo_on_ray_and_spark_clusters_matches_local_mode(
    local_run: tuple[Path, Path, subprocess.Popen[bytes], Path], clusters: Clusters
) -> None:
    tmp, demo, local_proc, local_target = local_run
    _finish(local_proc, tmp / "local.log", "local")
    cfg, cluster_target = _config(
        tmp, demo, "cluster",
        f"ray:\n  address: \"{clusters.ray_address}\"\n"
        f"spark:\n  master: \"{clusters.spark_master}\"\n"
        "  conf:\n    spark.executor.memory: 512m\n    spark.cores.max: \"1\"\n    spark.driver.host: 127.0.0.1\n",
    )
    _finish(_start_run(cfg, clusters.env, tmp / "cluster.log"), tmp / "cluster.log", "cluster")

    reference = sqlite_digest(local_target)
    assert reference and sqlite_digest(cluster_target) == reference

    # Ray: the pipeline's driver is the cluster's first job (01000000: the readiness checks start no driver), and
    # both nodes ran its stage tasks (not only the warm-up).
    for node in ("ray-head", "ray-worker"):
        tasks = _tasks_by_job(clusters.root / node).get("01000000", set())
        assert tasks - {"_warm"}, f"{node} ran no stage task of the pipeline's Ray job (tasks: {tasks})"
    assert _ray_nodes_alive(clusters) == 2
    # Spark: the write ran as an application of the standalone master, and finished.
    apps = _spark_state(clusters).get("completedapps", [])
    assert [a["state"] for a in apps if a.get("name") == "synthdb"] == ["FINISHED"], apps

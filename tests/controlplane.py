"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

The binaries come from scripts/k8s-binaries.sh (built from Go modules, cached outside the
repo). Started the way controller-runtime's envtest starts them: secure port on 127.0.0.1,
a self-signed serving certificate, a service-account signing key and a static admin token.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Self

REPO = Path(__file__).resolve().parent.parent
# What the tests need: CronJob -> Job, garbage collection (owner references), namespaces.
CONTROLLERS = (
    "cronjob-controller",
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "deployment-controller",
    "replicaset-controller",
)


@functools.cache
def binaries_dir() -> Path:
    """Build (first time) or find the cached binaries."""
    output = subprocess.run(
        ["bash", str(REPO / "scripts" / "k8s-binaries.sh")],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(output.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_service_account_key(directory: Path) -> tuple[Path, Path]:
    key, pub = directory / "sa.key", directory / "sa.pub"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
        check=True,
        capture_output=True,
    )
    return key, pub


class ControlPlane:
    def __init__(self, workdir: Path, *, controller_manager: bool = True) -> None:
        self.workdir = workdir
        self.bin = binaries_dir()
        self.with_controller_manager = controller_manager
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = workdir / "kubeconfig"
        self._processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []
        self._args: dict[str, list[str]] = {}

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self._args[name] = args
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [str(self.bin / name), *args], stdout=log, stderr=subprocess.STDOUT
        )
        self._processes.append((name, process, log))
        return process

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        etcd_port, etcd_peer = free_port(), free_port()
        self._spawn(
            "etcd",
            [
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        sa_key, sa_pub = _write_service_account_key(self.workdir)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        certs = self.workdir / "certs"
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                f"--cert-dir={certs}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                "--v=1",
            ],
        )
        self._wait_ready(certs / "apiserver.crt")
        self._write_kubeconfig(certs / "apiserver.crt")
        if self.with_controller_manager:
            self._spawn(
                "kube-controller-manager",
                [
                    f"--kubeconfig={self.kubeconfig}",
                    "--authentication-skip-lookup=true",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    "--leader-elect=false",
                    "--controllers=" + ",".join(CONTROLLERS),
                    f"--service-account-private-key-file={sa_key}",
                    "--concurrent-gc-syncs=5",
                    "--v=1",
                ],
            )

    def _wait_ready(self, ca_file: Path, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process, _ in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: {self.log_tail(name)}")
            if ca_file.exists():
                context = ssl.create_default_context(cafile=str(ca_file))
                request = urllib.request.Request(
                    f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.token}"}
                )
                try:
                    with urllib.request.urlopen(request, context=context, timeout=5) as answer:
                        if answer.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.25)
        raise TimeoutError(f"kube-apiserver not ready: {self.log_tail('kube-apiserver')}")

    def _write_kubeconfig(self, ca_file: Path) -> None:
        self.kubeconfig.write_text(
            f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {self.server}
    certificate-authority: {ca_file}
users:
- name: admin
  user:
    token: {self.token}
contexts:
- name: test
  context: {{cluster: test, user: admin, namespace: default}}
current-context: test
"""
        )

    def restart(self, name: str) -> None:
        """Kill one component (SIGKILL, no graceful shutdown) and start it again."""
        for index, (found, process, log) in enumerate(self._processes):
            if found == name:
                process.kill()
                process.wait()
                log.close()
                del self._processes[index]
                break
        self._spawn(name, self._args[name])
        if name == "kube-apiserver":
            self._wait_ready(self.workdir / "certs" / "apiserver.crt")

    @contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """One component stopped (SIGSTOP: it holds connections and answers nothing, like a
        hung process), then continued."""
        process = next(p for found, p, _ in self._processes if found == name)
        process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            process.send_signal(signal.SIGCONT)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        for _, process, _ in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
        for _, process, log in reversed(self._processes):
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
        self._processes.clear()

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


def have_toolchain() -> bool:
    return shutil.which("go") is not None and shutil.which("openssl") is not None

"""Start, stop and crash the real `sluice` binary; run its admin CLI; build clients for it."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import string
import subprocess
import time
from pathlib import Path

import boto3
import requests
from botocore.config import Config

from .s3raw import RawS3

REPO = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("TEST_SLUICE_BIN", REPO / "target" / "debug" / "sluice"))
READY_TIMEOUT = 30.0
DOMAIN = "s3.localhost"  # virtual-hosted-style domain of the shared test server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_access_key() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(20))


def new_secret_key() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))


def base_env() -> dict[str, str]:
    """The caller's environment without anything that could steer the server or the AWS tools."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLUICE_", "AWS_", "BOTO_")) and k != "TEST_SLUICE_BIN"
    }


def direct_env() -> dict[str, str]:
    """`base_env()` without proxy settings, for client tools that must reach the loopback server
    directly."""
    return {k: v for k, v in base_env().items() if k.lower() not in ("no_proxy", "http_proxy", "all_proxy")}


def s3_client(
    endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1", session=None, **s3_cfg
):
    """Path-style SigV4 client that never retries (errors surface as they are)."""
    cfg = Config(
        s3={"addressing_style": "path", **s3_cfg},
        signature_version="s3v4",
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=120,
    )
    return (session or boto3.session.Session()).client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=cfg,
    )


class SluiceServer:
    """One `sluice serve` process with its own temp root (data dir, master key, logs)."""

    def __init__(
        self,
        root: Path,
        *,
        domains: str | None = None,
        region: str = "us-east-1",
        root_keys: bool = True,
        extra_env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "data"
        self.master_key_file = self.root / "master.key"
        self.port = free_port()
        self.region = region
        self.args = list(args or [])
        self.access_key = new_access_key() if root_keys else None
        self.secret_key = new_secret_key() if root_keys else None
        self.server_env = {
            "SLUICE_ADDRESS": f"127.0.0.1:{self.port}",
            "SLUICE_DATA_DIR": str(self.data_dir),
            "SLUICE_MASTER_KEY_FILE": str(self.master_key_file),
            "SLUICE_REGION": region,
        }
        if root_keys:
            self.server_env["SLUICE_ROOT_ACCESS_KEY"] = self.access_key
            self.server_env["SLUICE_ROOT_SECRET_KEY"] = self.secret_key
        if domains:
            self.server_env["SLUICE_DOMAINS"] = domains
        self.server_env.update(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None

    # -- process lifecycle -------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {**base_env(), **self.server_env}

    def start(self, wait: bool = True) -> "SluiceServer":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not BIN.exists():
            raise RuntimeError(f"sluice binary not found at {BIN} (set TEST_SLUICE_BIN)")
        self.starts += 1
        self.stdout_path = self.root / f"serve-{self.starts}.stdout.log"
        self.stderr_path = self.root / f"serve-{self.starts}.stderr.log"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(BIN), "serve", *self.args],
                env=self.env(),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        if wait:
            self.wait_ready()
        return self

    def logs(self) -> str:
        parts = []
        for p in (self.stdout_path, self.stderr_path):
            if p and p.exists():
                parts.append(f"--- {p.name} ---\n{p.read_text(errors='replace')[-8000:]}")
        return "\n".join(parts)

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path else ""

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path else ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sluice serve exited with {self.proc.returncode} during start-up\n{self.logs()}"
                )
            try:
                r = requests.get(self.endpoint + "/_sluice/health/ready", timeout=1)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"sluice serve not ready after {timeout}s ({last})\n{self.logs()}")

    def stop(self, timeout: float = 15) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL: the crash of a machine as far as this process can tell."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> "SluiceServer":
        self.stop()
        return self.start()

    # -- clients ------------------------------------------------------------------------------
    def client(self, access_key: str | None = None, secret_key: str | None = None, **s3_cfg):
        return s3_client(
            self.endpoint,
            access_key or self.access_key,
            secret_key or self.secret_key,
            self.region,
            **s3_cfg,
        )

    def raw(self, access_key: str | None = None, secret_key: str | None = None) -> RawS3:
        return RawS3(self.port, access_key or self.access_key, secret_key or self.secret_key, self.region)

    # -- admin CLI ----------------------------------------------------------------------------
    def admin(self, *args: str, endpoint: bool = True, creds: tuple[str, str] | None = None,
              check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """`sluice admin ...` against the running server (endpoint=True) or the data dir."""
        return self.cli("admin", *args, endpoint=endpoint, creds=creds, check=check,
                        timeout=timeout, with_config=False)

    def kms(self, *args: str, endpoint: bool = True, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
        """`sluice kms ...` against the running server or (endpoint=False) its data dir."""
        return self.cli("kms", *args, endpoint=endpoint, check=check, timeout=timeout)

    def cli(self, command: str, *args: str, endpoint: bool = True,
            creds: tuple[str, str] | None = None, check: bool = True, timeout: float = 60,
            with_config: bool = True) -> subprocess.CompletedProcess:
        """Any `sluice COMMAND ...` (with this server's config file when `with_config`), signed
        as `creds` (default root) against its endpoint, or offline on its data dir."""
        config = [a for a in self.args if a != "serve"] if with_config else []
        if endpoint:
            ak, sk = creds or (self.access_key, self.secret_key)
            env = {**base_env(), "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk}
            cmd = [str(BIN), *config, command, "--endpoint", self.endpoint, *args]
        else:
            env = self.env()
            cmd = [str(BIN), *config, command, *args]
        cp = subprocess.run(cmd, env=env, cwd=self.root, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
        if check and cp.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {cp.returncode}\nstdout: {cp.stdout}\nstderr: {cp.stderr}")
        return cp

    @staticmethod
    def _json(cp: subprocess.CompletedProcess, what: str):
        try:
            return json.loads(cp.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"{what} did not print JSON: {cp.stdout!r}") from e

    def admin_json(self, *args: str, **kw):
        return self._json(self.admin(*args, **kw), f"admin {' '.join(args)}")

    def kms_json(self, *args: str, **kw):
        return self._json(self.kms(*args, **kw), f"kms {' '.join(args)}")

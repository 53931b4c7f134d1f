"""Replication benchmark (`make bench-replication`): two release-built Sluice servers on loopback,
the source replicating a bucket to the destination through the shipped s3-target plugin.

- Small objects: 2000 x 4 KiB written while the bucket's queue is paused, then resumed; the
  time to drain the queue gives objects/s.
- Large objects: 4 x 64 MiB the same way (each goes as a multipart upload); MB/s.
- Lag under a steady write load: 4 KiB PUTs at a fixed rate for 20 s while replication runs;
  the age of the oldest queued task (`sluice_replication_lag_seconds`) is sampled every 0.25 s.

Writes bench/replication.md and splices it into bench/README.md."""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ["TEST_SLUICE_BIN"] = str(
    Path(os.environ.get("TEST_SLUICE_BIN", REPO / "target" / "release" / "sluice")).resolve())
sys.path.insert(0, str(REPO / "tests" / "python"))

import requests  # noqa: E402

from support.plugins import DIST, plugin_entry  # noqa: E402
from support.server import SluiceServer  # noqa: E402

MIB = 1024 * 1024
WORKERS = 8
SMALL, SMALL_SIZE = 2000, 4096
LARGE, LARGE_SIZE = 4, 64 * MIB
RATE, SECONDS = 200, 20


def metrics(srv) -> dict[str, float]:
    text = requests.get(f"{srv.endpoint}/_sluice/metrics", timeout=10).text
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines()
            if l and not l.startswith("#")}


def drain_time(src, start: float, timeout: float = 600) -> float:
    while time.time() - start < timeout:
        if metrics(src)["sluice_replication_queue_depth"] == 0:
            return time.time() - start
        time.sleep(0.05)
    raise RuntimeError("replication queue did not drain")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="sluice-repl-bench-"))
    dest = SluiceServer(root / "dest", extra_env={"SLUICE_LOG": "warn"}).start()
    src = SluiceServer(root / "src", extra_env={"SLUICE_LOG": "warn"})
    cfg = root / "src.toml"
    cfg.write_text(
        plugin_entry("s3-target", DIST / "s3_target.wasm", world="replication-target",
                     allowed_hosts=[f"127.0.0.1:{dest.port}"], limits={"timeout_ms": 30000})
        + f'[[replication_targets]]\nname = "dest"\nplugin = "s3-target"\n'
          f'endpoint = "http://127.0.0.1:{dest.port}"\nworkers = {WORKERS}\n')
    src.args = ["--config", str(cfg)]
    src.start()
    try:
        src.admin_json("replication", "credentials", "dest", "--access-key", dest.access_key,
                       "--secret-key", dest.secret_key)
        s3, d3 = src.client(), dest.client()
        d3.create_bucket(Bucket="copy")
        s3.create_bucket(Bucket="bench")
        s3.put_bucket_replication(Bucket="bench", ReplicationConfiguration={"Role": "", "Rules": [{
            "ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": "arn:sluice:replication::dest:copy"}}]})

        body = os.urandom(SMALL_SIZE)
        src.admin_json("replication", "pause", "bench")
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: s3.put_object(Bucket="bench", Key=f"s/{i:05d}", Body=body),
                          range(SMALL)))
        src.admin_json("replication", "resume", "bench")
        small_s = drain_time(src, time.time())
        assert d3.head_object(Bucket="copy", Key=f"s/{SMALL - 1:05d}")["ContentLength"] == SMALL_SIZE

        big = os.urandom(LARGE_SIZE)
        src.admin_json("replication", "pause", "bench")
        for i in range(LARGE):
            s3.put_object(Bucket="bench", Key=f"l/{i}", Body=big)
        src.admin_json("replication", "resume", "bench")
        large_s = drain_time(src, time.time())
        assert d3.head_object(Bucket="copy", Key=f"l/{LARGE - 1}")["ContentLength"] == LARGE_SIZE

        # Steady load: RATE PUTs per second for SECONDS, lag sampled meanwhile.
        lags: list[float] = []
        done = threading.Event()

        def sample():
            while not done.is_set():
                lags.append(metrics(src)["sluice_replication_lag_seconds"])
                time.sleep(0.25)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.time()
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            futures = []
            while time.time() - start < SECONDS:
                due = int((time.time() - start) * RATE)
                while sent < due:
                    futures.append(pool.submit(s3.put_object, Bucket="bench", Key=f"r/{sent:06d}",
                                               Body=body))
                    sent += 1
                time.sleep(0.005)
            for f in futures:
                f.result()
        write_s = time.time() - start
        tail_s = drain_time(src, time.time())
        done.set()
        sampler.join()
        m = metrics(src)
        lags.sort()
        p50 = statistics.median(lags)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        table = f"""## Replication (`make bench-replication`)

Two release-built servers on loopback, the source replicating one bucket to the other through
the shipped `s3-target` plugin (SigV4 over `wasi:http`, {WORKERS} workers, 8 MiB parts), both
durable (every acknowledged write fsynced) and sharing the machine's {os.cpu_count()} cores with
the client. {time.strftime('%Y-%m-%d', time.gmtime())}.

| workload | result |
|---|---|
| {SMALL} x 4 KiB, queued then drained | {SMALL / small_s:.0f} objects/s ({small_s:.1f} s) |
| {LARGE} x 64 MiB, queued then drained (multipart) | {LARGE * LARGE_SIZE / MIB / large_s:.0f} MB/s ({large_s:.1f} s) |
| steady {sent / write_s:.0f} PUT/s of 4 KiB for {SECONDS} s | lag p50 {p50:.2f} s, p99 {p99:.2f} s, max {lags[-1]:.2f} s; drained {tail_s:.2f} s after the last write |

Lag is the age of the oldest queued task (`sluice_replication_lag_seconds`), sampled every
0.25 s. Totals: {m['sluice_replication_completed_total']:.0f} objects,
{m['sluice_replication_bytes_total'] / MIB:.0f} MiB carried, {m['sluice_replication_retries_total']:.0f} retries,
{m['sluice_replication_failed_total']:.0f} failed.
"""
        print(table)
        (REPO / "bench" / "replication.md").write_text(table)
        readme = REPO / "bench" / "README.md"
        text = readme.read_text() if readme.exists() else ""
        text = re.sub(r"\n## Replication \(`make bench-replication`\).*?(?=\n## |\Z)", "", text,
                      flags=re.S)
        readme.write_text(text.rstrip("\n") + "\n\n" + table)
    finally:
        src.stop()
        dest.stop()
        import shutil
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Replication benchmark (`make bench-replication`): two release-built Sluice servers on loopback,
the source replicating a bucket to the destination through the shipped s3-target plugin.

- Small objects: 2000 x 4 KiB written while the bucket's queue is paused, then resumed; the
  time to drain the queue gives objects/s.
- Large objects: 4 x 64 MiB the same way (each goes as a multipart upload); MB/s.
- Lag under a steady write load: 4 KiB PUTs at a fixed rate for 20 s while replication runs;
  the age of the oldest queued task (`sluice_replication_lag_seconds`) is sampled every 0.25 s.
- Writes while one of two destinations is down: `sluice-bench` PUTs 4 KiB at c=32 into a bucket
  replicated to the destination and to a target whose endpoint refuses connections, in 10 s
  blocks; each write queues a task that waits, so the backlog grows the whole time. Gives each
  block's ops/s, p99 and queue depth (whether writes slow down as the backlog grows).

Writes bench/replication.md and splices it into bench/README.md."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
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
BACKLOG_BLOCKS, BLOCK_SECONDS = 3, 10
SLUICE_BENCH = Path(os.environ["TEST_SLUICE_BIN"]).parent / "sluice-bench"


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


def splice_into_readme(table: str) -> None:
    """Replaces the Replication section of bench/README.md with `table` where it stands (up to
    the next heading or the `make bench-peers` block's marker), or appends it."""
    readme = REPO / "bench" / "README.md"
    text = readme.read_text() if readme.exists() else ""
    section = re.compile(r"## Replication \(`make bench-replication`\).*?(?=\n## |\n<!-- |\Z)", re.S)
    if section.search(text):
        text = section.sub(lambda _: table.rstrip("\n") + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + table
    readme.write_text(text)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="sluice-repl-bench-"))
    dest = SluiceServer(root / "dest", extra_env={"SLUICE_LOG": "warn"}).start()
    src = SluiceServer(root / "src", extra_env={"SLUICE_LOG": "warn"})
    cfg = root / "src.toml"
    cfg.write_text(
        plugin_entry("s3-target", DIST / "s3_target.wasm", world="replication-target",
                     allowed_hosts=[f"127.0.0.1:{dest.port}", "127.0.0.1:1"],
                     limits={"timeout_ms": 30000})
        + f'[[replication_targets]]\nname = "dest"\nplugin = "s3-target"\n'
          f'endpoint = "http://127.0.0.1:{dest.port}"\nworkers = {WORKERS}\n'
        # Nothing listens on port 1: every delivery to this target fails and is retried.
        + '[[replication_targets]]\nname = "down"\nplugin = "s3-target"\n'
          'endpoint = "http://127.0.0.1:1"\n')
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

        # Writes while one of two destinations is down (last: its tasks never drain).
        s3.create_bucket(Bucket="fan")
        s3.put_bucket_replication(Bucket="fan", ReplicationConfiguration={"Role": "", "Rules": [
            {"ID": dest_id, "Priority": prio, "Status": "Enabled", "Filter": {"Prefix": ""},
             "DeleteMarkerReplication": {"Status": "Disabled"},
             "Destination": {"Bucket": f"arn:sluice:replication::{dest_id}:copy"}}
            for prio, dest_id in ((1, "dest"), (2, "down"))]})
        blocks = []
        for _ in range(BACKLOG_BLOCKS):
            out = subprocess.run(
                [str(SLUICE_BENCH), "--endpoint", src.endpoint, "--access-key", src.access_key,
                 "--secret-key", src.secret_key, "--bucket", "fan", "--op", "put", "--size", "4096",
                 "--concurrency", "32", "--seconds", str(BLOCK_SECONDS), "--keys", "100000000"],
                capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            blocks.append((r["ops_per_sec"], r["p99_ms"], metrics(src)["sluice_replication_queue_depth"]))
        backlog = "; ".join(f"{ops:.0f} ops/s (p99 {p99:.1f} ms), queue {depth:.0f}"
                            for ops, p99, depth in blocks)
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
| 4 KiB PUT c=32 while one of two destinations is down, {BACKLOG_BLOCKS} x {BLOCK_SECONDS} s | {backlog} |

Lag is the age of the oldest queued task (`sluice_replication_lag_seconds`), sampled every
0.25 s. Totals before the last workload: {m['sluice_replication_completed_total']:.0f} objects,
{m['sluice_replication_bytes_total'] / MIB:.0f} MiB carried, {m['sluice_replication_retries_total']:.0f} retries,
{m['sluice_replication_failed_total']:.0f} failed.
"""
        print(table)
        (REPO / "bench" / "replication.md").write_text(table)
        splice_into_readme(table)
    finally:
        src.stop()
        dest.stop()
        import shutil
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

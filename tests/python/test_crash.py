"""Issue item 11, crash safety: kill -9 the server during concurrent PUTs (and after acknowledged
DELETEs), restart on the same data dir, and check that

* every acknowledged PUT reads back byte-exact and every acknowledged DELETE stayed deleted;
* every listed key reads back as exactly one complete write of that key (no partial or mixed
  bodies, nothing unacknowledged-but-corrupt);
* an overwritten key holds the last acknowledged write or the one in flight at the crash;
* body files under DATA_DIR/objects do not accumulate (never more files than listed objects).
"""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from support.server import SluiceServer, s3_client
from support.util import content_for

pytestmark = pytest.mark.slow

CYCLES = 10
THREADS = 16
MIB = 1024 * 1024


def size_for(key: str, gen: int) -> int:
    rng = random.Random(f"size:{key}:{gen}")
    return rng.randint(0, 128 * 1024) if rng.random() < 0.7 else rng.randint(128 * 1024, 3 * MIB)


def body_for(key: str, gen: int) -> bytes:
    """Self-describing body: a header naming (key, generation), then content derived from both."""
    return f"{key}\n{gen}\n".encode() + content_for(f"{key}#{gen}", size_for(key, gen))


def parse_gen(key: str, body: bytes) -> int:
    name, _, rest = body.partition(b"\n")
    assert name == key.encode(), f"{key!r} holds a body written for {name[:80]!r}"
    gen, _, _ = rest.partition(b"\n")
    return int(gen)


class Writers:
    """THREADS threads writing until the server dies; thread t owns hot key hot/t, which it
    overwrites with increasing generations between fresh keys."""

    def __init__(self, endpoint, ak, sk, cycle, hot_gen):
        session = boto3.session.Session()
        self.clients = [s3_client(endpoint, ak, sk, session=session) for _ in range(THREADS)]
        self.cycle = cycle
        self.hot_gen = hot_gen  # key -> last acknowledged generation (shared, per-thread keys)
        self.acked: list[str] = []
        self.in_flight: dict[str, int] = {}
        self.server_errors: list[str] = []
        self.connection_errors = 0
        self.lock = threading.Lock()

    def run(self, bucket, t):
        client = self.clients[t]
        hot = f"hot/{t:02d}"
        i = 0
        while True:
            if i % 3 == 2:
                key, gen = hot, self.hot_gen.get(hot, 0) + 1
            else:
                key, gen = f"c{self.cycle:02d}/t{t:02d}/{i:05d}", 0
            i += 1
            with self.lock:
                self.in_flight[key] = gen
            try:
                client.put_object(Bucket=bucket, Key=key, Body=body_for(key, gen))
            except ClientError as e:
                with self.lock:
                    self.server_errors.append(f"{key}: {e.response.get('Error')}")
                return
            except Exception:  # the server is gone: connection refused/reset/closed
                with self.lock:
                    self.connection_errors += 1
                return
            with self.lock:
                del self.in_flight[key]
                if key == hot:
                    self.hot_gen[hot] = gen
                else:
                    self.acked.append(key)


def list_keys(client, bucket):
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    return keys


def count_body_files(srv: SluiceServer) -> int:
    root = srv.data_dir / "objects"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


@pytest.mark.timeout(540)
def test_kill_9_during_concurrent_puts(tmp_path):
    srv = SluiceServer(tmp_path / "crash")
    srv.start()
    bucket = "crash"
    srv.client().create_bucket(Bucket=bucket)

    live: set[str] = set()        # acknowledged unique keys not deleted since
    deleted: set[str] = set()     # acknowledged deletes
    hot_gen: dict[str, int] = {}  # hot key -> last acknowledged generation
    rng = random.Random(1234)
    totals = {"acked": 0, "interrupted": 0}

    try:
        for cycle in range(CYCLES):
            client = srv.client()
            # Acknowledged deletes of the oldest objects keep the data set (and run time) bounded.
            old = sorted(k for k in live if int(k[1:3]) <= cycle - 3)
            for i in range(0, len(old), 1000):
                resp = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in old[i:i + 1000]]})
                assert not resp.get("Errors"), resp["Errors"]
            live -= set(old)
            deleted |= set(old)

            writers = Writers(srv.endpoint, srv.access_key, srv.secret_key, cycle, hot_gen)
            threads = [threading.Thread(target=writers.run, args=(bucket, t), daemon=True) for t in range(THREADS)]
            for th in threads:
                th.start()
            time.sleep(rng.uniform(0.4, 1.5))
            srv.kill()
            for th in threads:
                th.join(60)
                assert not th.is_alive(), "writer thread hung after the server was killed"
            assert not writers.server_errors, writers.server_errors[:5]
            live |= set(writers.acked)
            totals["acked"] += len(writers.acked)
            totals["interrupted"] += len(writers.in_flight)

            srv.start()
            client = srv.client()
            listed = dict(list_keys(client, bucket))

            missing = [k for k in live if k not in listed]
            assert not missing, f"cycle {cycle}: acknowledged objects lost: {missing[:10]}"
            resurrected = [k for k in deleted if k in listed]
            assert not resurrected, f"cycle {cycle}: deleted objects came back: {resurrected[:10]}"
            for hot, gen in hot_gen.items():
                assert hot in listed, f"cycle {cycle}: acknowledged {hot} lost"

            def verify(key):
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                gen = parse_gen(key, body)
                assert body == body_for(key, gen), f"{key!r}: body is not one complete write"
                assert listed[key] == len(body), f"{key!r}: listed size {listed[key]} != {len(body)}"
                if key.startswith("hot/"):
                    allowed = {hot_gen.get(key, 0), writers.in_flight.get(key)}
                    assert gen in allowed, f"{key}: generation {gen}, expected one of {allowed}"
                else:
                    assert gen == 0
                    assert key in live or key in writers.in_flight, f"{key!r} listed but never written"
                return key

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(verify, listed))
            # An in-flight write that did land is now simply an object like the others.
            live |= {k for k in writers.in_flight if k in listed and not k.startswith("hot/")}
            for hot in [k for k in listed if k.startswith("hot/")]:
                body = client.get_object(Bucket=bucket, Key=hot, Range="bytes=0-63")["Body"].read()
                hot_gen[hot] = parse_gen(hot, body)

            deadline = time.monotonic() + 10
            while count_body_files(srv) > len(listed) and time.monotonic() < deadline:
                time.sleep(0.5)
            files = count_body_files(srv)
            assert files <= len(listed), f"cycle {cycle}: {files} body files for {len(listed)} objects (orphans)"
            print(f"cycle {cycle}: acked {len(writers.acked)}, in flight at kill {len(writers.in_flight)}, "
                  f"listed {len(listed)}, body files {files}")

        assert totals["acked"] > 0 and totals["interrupted"] > 0, totals
    finally:
        srv.stop()

#!/usr/bin/env bash
# Load benchmark: starts a fresh release-built Sluice on a random loopback port with a temp data
# dir, drives it with sluice-bench (SigV4-signed, concurrent) and writes the figures into
# bench/README.md. Run through `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/sluice
BENCH=target/release/sluice-bench
[ -x "$BIN" ] && [ -x "$BENCH" ] || { echo "build first: cargo build --release --workspace" >&2; exit 1; }

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
AK=BENCHROOTACCESSKEY01
SK=bench-root-secret-key-not-for-production-01
SLUICE_ADDRESS=127.0.0.1:$port SLUICE_DATA_DIR=$dir/data SLUICE_MASTER_KEY_FILE=$dir/master.key \
  SLUICE_ROOT_ACCESS_KEY=$AK SLUICE_ROOT_SECRET_KEY=$SK SLUICE_LOG=warn "$BIN" serve >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/_sluice/health/ready" >/dev/null && break
  sleep 0.1
done

run() { "$BENCH" --endpoint "http://127.0.0.1:$port" --access-key "$AK" --secret-key "$SK" "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
rss_mib() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status"; }

run --op create-bucket
put_small=$(run --op put --size 4096 --concurrency 32 --seconds 10 --keys 1000); echo "$put_small"
get_small=$(run --op get --size 4096 --concurrency 32 --seconds 10 --keys 1000); echo "$get_small"
rss_small=$(rss_mib)
big=$((256 * 1024 * 1024))
put_big=$(run --op put --size $big --concurrency 1 --count 4 --keys 4 --seconds 300); echo "$put_big"
get_big=$(run --op get --size $big --concurrency 1 --count 4 --keys 4 --seconds 300); echo "$get_big"
rss_big=$(rss_mib)

# The same large-object runs with SSE-S3 (AES-256-GCM segments), against the plaintext figures.
put_enc=$(run --op put --size $big --concurrency 1 --count 4 --keys 4 --seconds 300 --bucket bench --sse AES256); echo "$put_enc"
get_enc=$(run --op get --size $big --concurrency 1 --count 4 --keys 4 --seconds 300); echo "$get_enc"
put_enc_small=$(run --op put --size 4096 --concurrency 32 --seconds 10 --keys 1000 --sse AES256); echo "$put_enc_small"
get_enc_small=$(run --op get --size 4096 --concurrency 32 --seconds 10 --keys 1000); echo "$get_enc_small"
pct() { python3 -c "import json,sys; a=json.loads(sys.argv[1])[sys.argv[3]]; b=json.loads(sys.argv[2])[sys.argv[3]]; print(round(100*a/b))" "$1" "$2" "$3"; }

# A 1 GiB multipart upload (8 MiB parts) and download through aws-cli, when the test venv has it.
mp_line="(aws-cli not installed: run \`make venv\` first)"
if [ -x .venv/bin/aws ]; then
  awshome="$dir/aws-home"; mkdir -p "$awshome"
  printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$AK" "$SK" > "$awshome/credentials"
  printf '[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 8MB\n  multipart_chunksize = 8MB\n  addressing_style = path\n' > "$awshome/config"
  head -c $((1024 * 1024 * 1024)) /dev/urandom > "$dir/one-gib.bin"
  aws() { HOME="$awshome" AWS_CONFIG_FILE="$awshome/config" AWS_SHARED_CREDENTIALS_FILE="$awshome/credentials" \
    .venv/bin/aws --endpoint-url "http://127.0.0.1:$port" "$@"; }
  t0=$(date +%s.%N)
  aws s3 cp --only-show-errors "$dir/one-gib.bin" s3://bench/one-gib.bin
  t1=$(date +%s.%N)
  aws s3 cp --only-show-errors s3://bench/one-gib.bin "$dir/back.bin"
  t2=$(date +%s.%N)
  cmp -s "$dir/one-gib.bin" "$dir/back.bin" || { echo "1 GiB round trip differs" >&2; exit 1; }
  rm -f "$dir/one-gib.bin" "$dir/back.bin"
  mp_line="aws-cli 1 GiB multipart (8 MiB parts): upload $(python3 -c "print(round(1024/($t1-$t0),1))") MB/s, download $(python3 -c "print(round(1024/($t2-$t1),1))") MB/s; server peak RSS (VmHWM) afterwards $(rss_mib) MiB"
fi

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
fs=$(df -T "$dir" | awk 'NR==2 {print $2}')
{
  cat <<HEAD
# Sluice load benchmark

\`make bench\` builds release binaries, starts a fresh server (temp data dir, durable writes:
every acknowledged PUT is fsynced) and drives it over loopback with \`sluice-bench\`, a
concurrent SigV4-signed load generator (\`bench/src/main.rs\`). This file is rewritten by each run.

Machine: $(nproc) cores ($cpu), $mem RAM, data dir on $fs; $(date -u +%Y-%m-%d).
Load generator and server share the machine's cores.

| workload | concurrency | result | p50 | p99 |
|---|---|---|---|---|
| PUT 4 KiB | 32 | $(field "$put_small" ops_per_sec) ops/s | $(field "$put_small" p50_ms) ms | $(field "$put_small" p99_ms) ms |
| GET 4 KiB | 32 | $(field "$get_small" ops_per_sec) ops/s | $(field "$get_small" p50_ms) ms | $(field "$get_small" p99_ms) ms |
| PUT 256 MiB | 1 | $(field "$put_big" mb_per_sec) MB/s | $(field "$put_big" p50_ms) ms | $(field "$put_big" p99_ms) ms |
| GET 256 MiB | 1 | $(field "$get_big" mb_per_sec) MB/s | $(field "$get_big" p50_ms) ms | $(field "$get_big" p99_ms) ms |

Server-side encryption (SSE-S3: a fresh data key per object, AES-256-GCM over 64 KiB segments),
same runs with \`x-amz-server-side-encryption: AES256\` on the PUTs:

| workload | concurrency | encrypted | share of plaintext |
|---|---|---|---|
| PUT 4 KiB | 32 | $(field "$put_enc_small" ops_per_sec) ops/s | $(pct "$put_enc_small" "$put_small" ops_per_sec) % |
| GET 4 KiB | 32 | $(field "$get_enc_small" ops_per_sec) ops/s | $(pct "$get_enc_small" "$get_small" ops_per_sec) % |
| PUT 256 MiB | 1 | $(field "$put_enc" mb_per_sec) MB/s | $(pct "$put_enc" "$put_big" mb_per_sec) % |
| GET 256 MiB | 1 | $(field "$get_enc" mb_per_sec) MB/s | $(pct "$get_enc" "$get_big" mb_per_sec) % |

Server peak RSS (VmHWM): $rss_small MiB after the 4 KiB runs, $rss_big MiB after the 256 MiB runs
(bodies stream; memory does not grow with object size).

$mp_line

Raw results (JSON lines from sluice-bench):
\`\`\`
$put_small
$get_small
$put_big
$get_big
$put_enc
$get_enc
$put_enc_small
$get_enc_small
\`\`\`
HEAD
  # Plugin call overhead, measured separately by `make bench-plugins`.
  if [ -f bench/plugins.md ]; then echo; cat bench/plugins.md; fi
  if [ -f bench/policy.md ]; then echo; cat bench/policy.md; fi
  if [ -f bench/replication.md ]; then echo; cat bench/replication.md; fi
  # Sluice against Garage and s3s-fs, measured by `make bench-peers`.
  if [ -f bench/peers.md ]; then echo; echo "<!-- bench-peers: begin -->"; cat bench/peers.md; echo "<!-- bench-peers: end -->"; fi
} > bench/README.md
cat bench/README.md

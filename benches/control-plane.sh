#!/usr/bin/env bash
# Control-plane throughput: claims/s and jobs/s for 1, 16 and 64 runners, on
# the embedded SQLite store, on PostgreSQL with one replica and with three
# replicas behind nginx, beside the journal-based server of 0.1 (built from git,
# BASELINE below) measured in the same run.
#
#   benches/control-plane.sh [BASELINE_COMMIT]
#
# The load is control-plane/benches/load.rs (one JSON line per phase). Release
# builds; PostgreSQL runs with its default durability (fsync on), as SQLite
# does (synchronous=FULL) and the journal did (fsync per change). A shared,
# noisy 2-core machine: compare the rows of one run, not runs.
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=${1:-a0fb087}
for tool in nginx setpriv; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
pgbin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
[[ -x $pgbin/initdb ]] || { echo "needs PostgreSQL (sh tests/peers/install.sh)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sortie-cp-bench.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -n ${pg:-} ]]; then
        as_pg "$pgbin/pg_ctl" -D "$pg/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$pg"
    fi
    git worktree remove --force "$work/baseline" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: as nobody then.
as_pg() {
    if [[ $(id -u) == 0 ]]; then setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; else "$@"; fi
}

echo "building (release) ..." >&2
cargo build --release --quiet -p sortie-control-plane
cargo bench --quiet -p sortie-control-plane --bench load --no-run 2>/dev/null
git worktree add --quiet --detach "$work/baseline" "$baseline"
cargo build --release --quiet -p sortie-control-plane \
    --manifest-path "$work/baseline/Cargo.toml" --target-dir target/bench-baseline
journal_cp=$PWD/target/bench-baseline/release/sortie-control-plane
cp=$PWD/target/release/sortie-control-plane

head -c 24 /dev/urandom | base64 >"$work/admin"
head -c 24 /dev/urandom | base64 >"$work/runner"

# start BINARY NAME ARGS...: a control plane; sets $url (and $ca) from its first line.
start() {
    local bin=$1 name=$2
    shift 2
    mkfifo "$work/$name.out"
    "$bin" --listen 127.0.0.1:0 --state-dir "$work/$name" --admin-token-file "$work/admin" \
        --runner-token-file "$work/runner" --ack-window 10m "$@" >"$work/$name.out" 2>/dev/null &
    pids+=($!)
    read -r _ _ url <"$work/$name.out"
    ca=$work/$name/tls/ca.pem
}

load() { # URL CA RUNNERS JOBS: "claims/s jobs/s"
    cargo bench --quiet -p sortie-control-plane --bench load -- "$1" "$2" "$work/admin" "$work/runner" "$3" "$4" |
        python3 -c 'import json, sys
rates = {e["phase"]: e["per_second"] for e in map(json.loads, sys.stdin)}
print("%.0f %.0f" % (rates["claims"], rates["jobs"]))'
}

printf '%-34s %8s %10s %10s\n' server runners claims/s jobs/s
measure() { # NAME URL CA
    local n jobs rates
    for n in 1 16 64; do
        jobs=2000
        ((n == 1)) && jobs=500
        rates=$(load "$2" "$3" "$n" "$jobs")
        # shellcheck disable=SC2086 # two numbers
        printf '%-34s %8s %10s %10s\n' "$1" "$n" $rates
    done
}

start "$journal_cp" journal
measure "journal (0.1, $baseline)" "$url" "$ca"

start "$cp" sqlite
measure "SQLite" "$url" "$ca"

# PostgreSQL: a cluster of this run's own, on a Unix socket, in a directory of
# its own (the server's user cannot enter $work).
pg=$(mktemp -d "${TMPDIR:-/tmp}/sortie-cp-bench-pg.XXXXXX")
if [[ $(id -u) == 0 ]]; then chown nobody:nogroup "$pg"; fi
as_pg "$pgbin/initdb" -D "$pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/log" -w \
    -o "-k $pg -c listen_addresses= -c max_connections=200" start >/dev/null
as_pg "$pgbin/psql" -h "$pg" -U postgres -qc 'CREATE DATABASE one' -c 'CREATE DATABASE three' postgres
db() { echo "host=$pg port=5432 user=postgres dbname=$1"; }

start "$cp" pg1 --database "$(db one)"
measure "PostgreSQL, 1 replica" "$url" "$ca"

port_of() { local p=${1%/}; echo "${p##*:}"; }
start "$cp" pg3a --database "$(db three)"
front_ca=$ca
tls=$work/pg3a/tls
upstreams="server 127.0.0.1:$(port_of "$url");"
for r in pg3b pg3c; do
    start "$cp" "$r" --database "$(db three)" --tls-cert "$tls/server.pem" --tls-key "$tls/server.key"
    upstreams="$upstreams server 127.0.0.1:$(port_of "$url");"
done
front=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream replicas { $upstreams keepalive 128; }
  server {
    listen 127.0.0.1:$front ssl;
    ssl_certificate $tls/server.pem;
    ssl_certificate_key $tls/server.key;
    location / {
      proxy_pass https://replicas;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $front_ca;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$front") 2>/dev/null && break
    sleep 0.1
done
measure "PostgreSQL, 3 replicas + nginx" "https://127.0.0.1:$front/" "$front_ca"

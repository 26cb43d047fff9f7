#!/usr/bin/env bash
# sortie's benchmarks: each scenario beside a baseline measured in the same run.
#
#   benches/run.sh            the default run (a few minutes)
#   benches/run.sh --long     more repetitions, 2 GiB of output, the 200-kill crash test
#   benches/run.sh --crash N  only the crash test, with N kills
#   benches/run.sh --shots    only the rows of whole shots (P1, P2, start-up, a step)
#
# Prints one table: median, min and max of several runs after a warm-up, and the
# ratio to the baseline. These are measurements, not tests: nothing here fails on
# a number. The machine is shared and noisy, so compare ratios, not absolutes.
# Needs curl, python3 and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."

long=false
crash_only=0
shots_only=false
[[ ${1:-} == --long ]] && long=true
[[ ${1:-} == --shots ]] && shots_only=true
[[ ${1:-} == --crash ]] && crash_only=${2:?--crash takes a number of kills}
runs=7
big=$((1024 * 1024 * 1024))
kills=0
if $long; then
    runs=15
    big=$((2 * 1024 * 1024 * 1024))
    kills=200
fi
((crash_only > 0)) && kills=$crash_only
small=$((10 * 1024 * 1024))

for tool in curl python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
cargo build --release --quiet -p sortie -p sortie-control-plane
sortie=$PWD/target/release/sortie
line=$(printf 'x%.0s' $(seq 99))

# shellcheck source=benches/lib.sh
. benches/lib.sh
make_work bench

# --- the reference control plane over TLS, in release ----------------------------
start_control_plane ./target/release/sortie-control-plane
runner="Authorization: Bearer $(cat "$work/runner-token")"
poll() { # poll STATE-DIR [ARGS...]
    local state=$1
    shift
    "$sortie" -q poll --server "$url" --ca-file "$ca" --token-file "$work/runner-token" \
        --state-dir "$state" --runner-id bench "$@"
}

if ((crash_only == 0)); then
# --- P1: an empty shot over TLS, vs curl making the same single request -----------
claim='{"claim_id":"bench","runner":{"id":"bench","tags":[]},"max_jobs":1,"wait_seconds":0}'
curl_claim() {
    curl -sS -o /dev/null --cacert "$ca" -H "$runner" -H 'content-type: application/json' \
        -d "$claim" "${url}v1/claim"
}
mapfile -t t_curl < <(repeat $((runs * 3)) curl_claim)
mapfile -t t_p1 < <(repeat $((runs * 3)) poll "$work/p1")
read -r c_med c_min c_max <<<"$(stats "${t_curl[@]}")"
read -r p1_med p1_min p1_max <<<"$(stats "${t_p1[@]}")"
row "scenario (times in ms)" "median" "min" "max" "vs baseline"
row "curl: one POST v1/claim over TLS" "$c_med" "$c_min" "$c_max" "baseline"
row "P1 sortie: empty shot (claim over TLS, 204, exit)" "$p1_med" "$p1_min" "$p1_max" \
    "$(ratio "$p1_med" "$c_med") x curl (goal <= 0.33)"

# --- P2: a one-job shot: claim, start, one `true` step, log, complete --------------
t_p2=()
enqueue '{"id":"p2-warm","steps":[{"exec":["true"]}]}'
poll "$work/p2" >/dev/null 2>&1 || true
for i in $(seq $((runs * 3))); do
    enqueue "{\"id\":\"p2-$i\",\"steps\":[{\"exec\":[\"true\"]}]}"
    t_p2+=("$(time_ms poll "$work/p2")")
done
read -r p2_med p2_min p2_max <<<"$(stats "${t_p2[@]}")"
row "P2 sortie: one-job shot (a true step)" "$p2_med" "$p2_min" "$p2_max" \
    "$(ratio "$p2_med" "$p1_med") x P1 (goal <= 1.5)"

# --- start-up broken down, by difference ----------------------------------------
mapfile -t t_version < <(repeat $((runs * 3)) "$sortie" --version)
mkdir -p "$work/empty-spool"
mapfile -t t_spool < <(repeat $((runs * 3)) "$sortie" -q poll --server "dir:$work/empty-spool" --state-dir "$work/ps" --runner-id b)
read -r v_med _ _ <<<"$(stats "${t_version[@]}")"
read -r s_med _ _ <<<"$(stats "${t_spool[@]}")"
row "  start-up: process (sortie --version)" "$v_med" "" "" ""
row "  + config, state dir lock, empty spool shot" "$s_med" "" "" \
    "+$(awk -v a="$s_med" -v b="$v_med" 'BEGIN { printf "%.2f", a - b }') ms"
row "  + TLS handshake and the claim (P1)" "$p1_med" "" "" \
    "+$(awk -v a="$p1_med" -v b="$s_med" 'BEGIN { printf "%.2f", a - b }') ms"

# --- a step's overhead: a one-step `true` job vs true ----------------------------
printf '{"id":"t","steps":[{"exec":["true"]}]}' >"$work/true.json"
# The program, not bash's builtin: a process started and waited for.
mapfile -t t_true < <(repeat $((runs * 3)) "$(type -P true)")
mapfile -t t_job < <(repeat $((runs * 3)) "$sortie" -q exec "$work/true.json")
read -r b_med b_min b_max <<<"$(stats "${t_true[@]}")"
read -r j_med j_min j_max <<<"$(stats "${t_job[@]}")"
row "true (/usr/bin/true), run directly" "$b_med" "$b_min" "$b_max" "baseline"
row "sortie exec of a one-step true job" "$j_med" "$j_min" "$j_max" \
    "+$(awk -v a="$j_med" -v b="$b_med" 'BEGIN { printf "%.2f", a - b }') ms"
$shots_only && exit 0

# --- P3/P4: output throughput with 100 secrets, and memory -----------------------
secrets=""
env_secrets=()
for i in $(seq 100); do
    secrets="$secrets\"S$i\":\"env:S$i\","
    env_secrets+=("SORTIE_SECRET_S$i=bench-secret-value-$i-$RANDOM$RANDOM")
done
secrets="{${secrets%,}}"
output_job() { # SIZE ID: a job printing SIZE bytes of 100-byte lines
    printf '{"id":"%s","secrets":%s,"steps":[{"exec":["sh","-c","yes %s | head -c %s"]}]}' \
        "$2" "$secrets" "$line" "$1"
}
spool_prepare() { # SIZE DIR [multiline]: the spool of one job, the last run's output gone
    rm -rf "$2"
    mkdir -p "$2/spool/pending"
    [[ -z ${3:-} ]] || touch "$2/spool/log-multiline"
    output_job "$1" out >"$2/spool/pending/out.json"
}
spool_shot() { # DIR
    env "${env_secrets[@]}" "$sortie" -q poll --server "dir:$1/spool" --state-dir "$1/state" --runner-id bench
}
cp_shot() { # SIZE ID
    enqueue "$(output_job "$1" "$2")"
    env "${env_secrets[@]}" "$sortie" -q poll --server "$url" --ca-file "$ca" \
        --token-file "$work/runner-token" --state-dir "$work/p3cp" --runner-id bench
}
cat_file() { yes "$line" | head -c "$1" >"$work/cat.out"; }
mib=$((big / 1024 / 1024))
tput_runs=$((runs / 2 + 1))
t_cat=()
t_spool=()
t_multi=()
t_cp=()
# What the last run wrote is removed before each timing, not during it.
for i in $(seq "$tput_runs"); do
    rm -f "$work/cat.out"
    t_cat+=("$(time_ms cat_file "$big")")
    spool_prepare "$big" "$work/p3"
    t_spool+=("$(time_ms spool_shot "$work/p3")")
    spool_prepare "$big" "$work/p3" multiline
    t_multi+=("$(time_ms spool_shot "$work/p3")")
    t_cp+=("$(time_ms cp_shot "$big" "p3-$i")")
done
rm -f "$work/cat.out"
curl -sS -o /dev/null --cacert "$ca" -H "$admin" "${url}admin/jobs" # the control plane is still up
mibs() { awk -v ms="$1" -v mib="$mib" 'BEGIN { printf "%.0f", mib / (ms / 1000) }'; }
read -r ca_med ca_min ca_max <<<"$(stats "${t_cat[@]}")"
read -r sp_med sp_min sp_max <<<"$(stats "${t_spool[@]}")"
read -r mu_med mu_min mu_max <<<"$(stats "${t_multi[@]}")"
read -r cpm cpmin cpmax <<<"$(stats "${t_cp[@]}")"
row "throughput (MiB/s of ${mib} MiB of 100-byte lines)" "median" "best" "worst" ""
row "cat of the same stream to a file" "$(mibs "$ca_med")" "$(mibs "$ca_min")" "$(mibs "$ca_max")" "baseline"
row "P3 sortie, 100 secrets masked, to the spool" "$(mibs "$sp_med")" "$(mibs "$sp_min")" "$(mibs "$sp_max")" \
    "$(ratio "$ca_med" "$sp_med") x cat (goal >= 0.5)"
row "P3 the same, spool offering multi-line events" "$(mibs "$mu_med")" "$(mibs "$mu_min")" "$(mibs "$mu_max")" \
    "$(ratio "$ca_med" "$mu_med") x cat (goal >= 0.5)"
row "P3 sortie, 100 secrets, to the control plane (TLS, multi-line)" "$(mibs "$cpm")" "$(mibs "$cpmin")" "$(mibs "$cpmax")" \
    "$(ratio "$ca_med" "$cpm") x cat (goal >= 0.33)"

rss() { # SIZE: peak RSS (KiB) of a spool shot printing SIZE bytes
    rm -rf "$work/m"
    mkdir -p "$work/m/spool/pending"
    output_job "$1" out >"$work/m/spool/pending/out.json"
    env "${env_secrets[@]}" /usr/bin/time -f '%M' -o "$work/rss" "$sortie" -q poll \
        --server "dir:$work/m/spool" --state-dir "$work/m/state" --runner-id bench
    cat "$work/rss"
}
rss_big=$(rss "$big")
rss_small=$(rss "$small")
row "P4 peak RSS (KiB), ${mib} MiB job" "$rss_big" "" "" "goal <= 8192"
row "P4 peak RSS (KiB), 10 MiB job" "$rss_small" "" "" "difference $((rss_big - rss_small)) KiB (goal < 2048)"

# --- masking cost: the same job with 0, 10, 100 and 1,000 registered secrets -----
mask_job() { # N-SECRETS DIR
    local list="" envs=()
    for i in $(seq "$1"); do
        list="$list\"M$i\":\"env:M$i\","
        envs+=("SORTIE_SECRET_M$i=mask-secret-$i-$RANDOM$RANDOM")
    done
    mkdir -p "$2/spool/pending"
    printf '{"id":"mask","secrets":{%s},"steps":[{"exec":["sh","-c","yes %s | head -c %s"]}]}' \
        "${list%,}" "$line" "$big" >"$2/spool/pending/mask.json"
    env "${envs[@]}" "$sortie" -q poll --server "dir:$2/spool" --state-dir "$2/state" --runner-id bench
}
row "masking (MiB/s, ${mib} MiB, to the spool)" "median" "best" "worst" ""
m0=
for n in 0 10 100 1000; do
    t_mask=()
    for _ in $(seq "$tput_runs"); do
        rm -rf "$work/mask"
        t_mask+=("$(time_ms mask_job "$n" "$work/mask")")
    done
    read -r mk_med mk_min mk_max <<<"$(stats "${t_mask[@]}")"
    [[ -z $m0 ]] && m0=$mk_med
    row "  $n secrets" "$(mibs "$mk_med")" "$(mibs "$mk_min")" "$(mibs "$mk_max")" \
        "$(awk -v a="$m0" -v b="$mk_med" 'BEGIN { printf "%+.0f%% time vs 0 secrets (goal <= +25%% at 1000)", (b / a - 1) * 100 }')"
done
rm -rf "$work/mask"

# --- P5: the static binary -------------------------------------------------------
static=$(sh packaging/build-static.sh)
size=$(stat -c %s "$static")
row "P5 static binary (bytes)" "$size" "" "" "$(awk -v s="$size" 'BEGIN { printf "%.2f MiB (goal <= 4, musl)", s / 1048576 }')"

# --- P7: 16 concurrent runners draining 5,000 small jobs -------------------------
jobs=5000
python3 - "$url" "$ca" "$(cat "$work/admin-token")" "$jobs" <<'PY'
import http.client, json, ssl, sys, urllib.parse
url, ca, token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
u = urllib.parse.urlparse(url)
conn = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=ca))
for i in range(n):
    body = json.dumps({"spec": {"id": f"p7-{i}", "steps": [{"exec": ["true"]}]}, "tags": ["p7"]})
    conn.request("POST", "/admin/jobs", body, {"Authorization": f"Bearer {token}"})
    r = conn.getresponse(); r.read()
    assert r.status == 201, r.status
PY
drain() { # RUNNER: shots until one finds no work
    for _ in $(seq 400); do
        "$sortie" -v poll --server "$url" --ca-file "$ca" --token-file "$work/runner-token" \
            --state-dir "$work/p7-$1" --runner-id "p7-$1" --tag p7 --max-jobs 25 2>"$work/p7-$1.err" || true
        grep -q "no work" "$work/p7-$1.err" && return 0
    done
    return 0 # the row below counts what was done and what was not
}
t0=$(now_ns)
drains=()
for r in $(seq 16); do
    drain "$r" &
    drains+=($!)
done
wait "${drains[@]}"
t1=$(now_ns)
read -r done_count dup lost <<<"$(curl -sS --cacert "$ca" -H "$admin" "${url}admin/jobs" | python3 -c '
import json, sys
jobs = [j for j in json.load(sys.stdin)["jobs"] if j["id"].startswith("p7-")]
done = [j for j in jobs if j["phase"] == "done" and j["completion"]["status"] == "succeeded"]
print(len(done), sum(1 for j in jobs if j["attempt"] != 1), len(jobs) - len(done))')"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
row "P7 16 runners draining $jobs jobs" "$(awk -v n="$done_count" -v s="$secs" 'BEGIN { printf "%.0f jobs/s", n / s }')" "" "" \
    "${secs} s; done $done_count, duplicates $dup, lost $lost"

fi

# --- the crash test, long version: kill -9 at random moments, then recover --------
if ((kills > 0)); then
    # A control plane of its own, with a short ack window: a shot killed between its
    # claim and its start leaves the job claimed until the window passes.
    mkfifo "$work/crash-cp.out"
    ./target/release/sortie-control-plane --listen 127.0.0.1:0 --state-dir "$work/crash-cp" \
        --admin-token-file "$work/admin-token" --runner-token-file "$work/runner-token" \
        --ack-window 1s >"$work/crash-cp.out" 2>/dev/null &
    crash_cp=$!
    read -r _ _ url <"$work/crash-cp.out"
    ca=$work/crash-cp/tls/ca.pem
    lost=0
    succeeded=0
    unstarted=0
    broken=0
    for k in $(seq "$kills"); do
        enqueue "{\"id\":\"crash-$k\",\"steps\":[{\"shell\":\"i=0; while [ \$i -lt 30 ]; do echo line \$i; i=\$((i+1)); sleep 0.03; done\"}]}"
        # sortie itself in the background, so that $! is its pid.
        "$sortie" -q poll --server "$url" --ca-file "$ca" --token-file "$work/runner-token" \
            --state-dir "$work/crash" --runner-id bench 2>/dev/null &
        victim=$!
        sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", (r % 1500) / 1000 }')"
        kill -9 "$victim" 2>/dev/null || true
        wait "$victim" 2>/dev/null || true
        for _ in 1 2 3 4 5 6; do
            poll "$work/crash" --wait 2s 2>/dev/null || true
            status=$(curl -sS --cacert "$ca" -H "$admin" "${url}admin/jobs/crash-$k" |
                python3 -c 'import json,sys; j=json.load(sys.stdin); print((j.get("completion") or {}).get("status",""))')
            [[ -n $status ]] && break
        done
        check=$(curl -sS --cacert "$ca" -H "$admin" "${url}admin/jobs/crash-$k/log" | python3 -c '
import json, sys
lines = sys.stdin.buffer.read().splitlines()
events = [json.loads(l) for l in lines]
ok = all(e["seq"] == i for i, e in enumerate(events))
# Lines read at once may share an event (multi-line events): compare the stream.
out = "".join(e["text"] for e in events if e["kind"] == "output")
ok = ok and out == "".join(f"line {i}\n" for i in range(out.count("\n")))
print("ok" if ok else "broken")')
        case "$status" in
            lost) lost=$((lost + 1)) ;;
            succeeded) succeeded=$((succeeded + 1)) ;;
            # killed after the control plane took the start, before a step ran
            interrupted) unstarted=$((unstarted + 1)) ;;
            *) broken=$((broken + 1)) ;;
        esac
        [[ $check == ok ]] || broken=$((broken + 1))
    done
    kill "$crash_cp"
    row "crash test: kill -9 at random moments" "$kills kills" "" "" \
        "lost $lost, succeeded $succeeded, interrupted before a step $unstarted, not terminal or log broken $broken"
fi


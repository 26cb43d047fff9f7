#!/usr/bin/env bash
# Node dispatch: a 3-step job on 32 nodes served by 8 sshd, parallel over 8
# nodes at once, beside baselines measured in the same run:
#   ideal          4 x the same job on one node (32 nodes / 8 at once = 4 rounds)
#   parallel-ssh   Debian's pssh, -p 8, one ssh per node running the 3 commands
#   ansible        ansible-core's ad-hoc shell module, forks 8, the 3 commands
# in three scenarios: short steps; steps that wait 0.5 s; short steps with the
# nodes on one CPU and the tools on the other, as nodes are other machines.
#
#   benches/nodes.sh [RUNS]     (default 5 runs after a warm-up, alternating tools)
#   SORTIE_BIN=PATH benches/nodes.sh [RUNS]   the same with another sortie binary
#
# Needs root (it starts sshd, and creates the user `sortie-bench` whose login
# shell reads no rc file, so that a node's shell start-up is not measured) and
# installs pssh (apt) and ansible-core (pip, into target/bench-peers/) when
# missing. The user's home is /var/lib/sortie-bench. Nothing here fails on a number: compare ratios, not absolutes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib.sh
. benches/lib.sh

runs=${1:-5}
[[ $(id -u) -eq 0 ]] || { echo "run as root: it starts sshd servers" >&2; exit 2; }
command -v parallel-ssh >/dev/null || apt-get install -y -q pssh >/dev/null
venv=target/bench-peers/venv
if [[ ! -x $venv/bin/ansible ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check ansible-core
fi
id sortie-bench >/dev/null 2>&1 || useradd --system --shell /bin/sh --no-create-home sortie-bench
# An empty home of its own; no password, but not locked (sshd without PAM
# refuses a locked account's keys).
install -d -o sortie-bench -m 700 /var/lib/sortie-bench
usermod -p '*' -d /var/lib/sortie-bench sortie-bench
if [[ -n ${SORTIE_BIN:-} ]]; then
    sortie=$(realpath "$SORTIE_BIN") # another build, to compare: each run has its own baselines
else
    cargo build --release --quiet -p sortie
    sortie=$PWD/target/release/sortie
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sortie-nodes-bench.XXXXXX")
chmod 755 "$work"
pids=()
cleanup() {
    ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p /run/sshd "$work/keys"
ssh-keygen -q -t ed25519 -N '' -f "$work/keys/node_key"
install -m 644 "$work/keys/node_key.pub" "$work/authorized_keys"
: >"$work/known_hosts"
ports=()
for i in $(seq 0 7); do
    d=$work/sshd$i
    mkdir "$d"
    ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$d/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $d/pid
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 100
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
    /usr/sbin/sshd -D -f "$d/sshd_config" &
    pids+=($!)
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/host_key.pub")" >>"$work/known_hosts"
    ports+=("$port")
done
for port in "${ports[@]}"; do
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.05; done
done

# The same 32 nodes for every tool: node nN on server N % 8.
{
    for n in $(seq 0 31); do
        printf 'n%02d:\n  hostname: 127.0.0.1:%s\n  username: sortie-bench\n  ssh-key: file:node_key\n' \
            "$n" "${ports[$((n % 8))]}"
    done
} >"$work/nodes.yaml"
: >"$work/pssh-hosts"
{
    echo '[nodes]'
    for n in $(seq 0 31); do
        echo "n$n ansible_host=127.0.0.1 ansible_port=${ports[$((n % 8))]}"
        echo "sortie-bench@127.0.0.1:${ports[$((n % 8))]}" >>"$work/pssh-hosts"
    done
} >"$work/inventory.ini"
ssh_opts="-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$work/known_hosts -o IdentitiesOnly=yes -i $work/keys/node_key"
cpu_ms() { awk '/^cpu / { print ($2 + $3 + $4 + $7 + $8) * 10 }' /proc/stat; }

# time_cpu CMD...: "WALL-MS CPU-MS", CPU-MS being the user and system time of
# CMD and of what it waited for (the tool and its ssh clients: what the
# runner's own host spends; the nodes' side is not in it), from bash's `times`.
time_cpu() {
    local t0 t1
    t0=$(now_ns)
    "$@" >/dev/null 2>&1 || true
    t1=$(now_ns)
    times >"$work/times" # not in a pipe: a forked shell's children are not these
    awk -v a="$t0" -v b="$t1" 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%.3f %.0f", (b - a) / 1e6, (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000 }' "$work/times"
}

# scenario TITLE COMMAND...: one job of these commands as its steps, on one node
# and on 32, and the same commands through parallel-ssh and Ansible.
scenario() {
    local title=$1
    shift
    local steps joined
    steps=$(printf '{"exec": ["sh", "-c", "%s"]},' "$@")
    joined=$(printf '%s; ' "$@")
    for which in all:'name: n.*' one:n00; do
        printf '{"id": "%s", "strategy": "parallel", "nodes": {"filter": "%s", "threadcount": 8}, "steps": [%s]}' \
            "${which%%:*}" "${which#*:}" "${steps%,}" >"$work/${which%%:*}.json"
    done
    sortie_job() { "${pin[@]}" "$sortie" -q exec "$work/$1.json" --nodes "$work/nodes.yaml" --known-hosts "$work/known_hosts" --secrets-dir "$work/keys"; }
    pssh_all() { "${pin[@]}" parallel-ssh -p 8 -h "$work/pssh-hosts" -x "$ssh_opts" -t 120 "$joined"; }
    ansible_all() {
        ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_LOCAL_TEMP=$work/ansible-tmp ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 \
            "${pin[@]}" "$venv/bin/ansible" all -i "$work/inventory.ini" -f 8 -u sortie-bench \
            --private-key "$work/keys/node_key" --ssh-common-args "$ssh_opts" -m shell -a "$joined"
    }
    # One check run of each, whose output must be right before anything is timed.
    sortie_job all | grep -c ': listed$' | grep -qx 32 || { echo "sortie did not run on 32 nodes" >&2; sortie_job all; exit 1; }
    pssh_all | grep -c SUCCESS | grep -qx 32 || { echo "parallel-ssh did not reach 32 nodes" >&2; exit 1; }
    ansible_all | grep -c CHANGED | grep -qx 32 || { echo "ansible did not reach 32 nodes" >&2; exit 1; }
    local t_one=() t_all=() t_pssh=() t_ansible=() c_all=() c_pssh=() h_all=() h_pssh=() c0 w h
    for _ in $(seq "$runs"); do
        t_one+=("$(time_ms sortie_job one)")
        c0=$(cpu_ms)
        read -r w h <<<"$(time_cpu sortie_job all)"
        t_all+=("$w") h_all+=("$h")
        c_all+=($(($(cpu_ms) - c0)))
        c0=$(cpu_ms)
        read -r w h <<<"$(time_cpu pssh_all)"
        t_pssh+=("$w") h_pssh+=("$h")
        c_pssh+=($(($(cpu_ms) - c0)))
        t_ansible+=("$(time_ms ansible_all)")
    done
    local m lo hi ideal sortie_med one_med
    read -r one_med _ _ <<<"$(stats "${t_one[@]}")"
    ideal=$(awk -v a="$one_med" 'BEGIN { printf "%.3f", 4 * a }')
    echo
    row "$title (ms)" "median" "min" "max" "vs ideal"
    read -r m lo hi <<<"$(stats "${t_one[@]}")"
    row "sortie: the same job on one node" "$m" "$lo" "$hi" ""
    row "ideal: 4 x one node" "$ideal" "" "" "1.00"
    read -r m lo hi <<<"$(stats "${t_all[@]}")"
    sortie_med=$m
    row "sortie exec, parallel, threadcount 8" "$m" "$lo" "$hi" "$(ratio "$m" "$ideal") x ideal (goal <= 1.2)"
    read -r m lo hi <<<"$(stats "${t_pssh[@]}")"
    row "parallel-ssh -p 8 (one ssh per node)" "$m" "$lo" "$hi" "$(ratio "$m" "$ideal") x ideal; sortie $(ratio "$sortie_med" "$m") x pssh"
    read -r m lo hi <<<"$(stats "${t_ansible[@]}")"
    row "ansible ad-hoc, forks 8 (shell module)" "$m" "$lo" "$hi" "$(ratio "$m" "$ideal") x ideal"
    read -r m _ _ <<<"$(stats "${c_all[@]}")"
    row "  machine CPU time: sortie, 32 nodes" "$m" "" "" "$(awk -v c="$m" 'BEGIN { printf "%.0f ms a node", c / 32 }')"
    read -r m _ _ <<<"$(stats "${c_pssh[@]}")"
    row "  machine CPU time: parallel-ssh, 32 nodes" "$m" "" "" "$(awk -v c="$m" 'BEGIN { printf "%.0f ms a node", c / 32 }')"
    local h_sortie
    read -r h_sortie _ _ <<<"$(stats "${h_all[@]}")"
    row "  runner-host CPU: sortie and its ssh clients" "$h_sortie" "" "" "$(awk -v c="$h_sortie" 'BEGIN { printf "%.0f ms a node", c / 32 }')"
    read -r m _ _ <<<"$(stats "${h_pssh[@]}")"
    row "  runner-host CPU: parallel-ssh and its ssh clients" "$m" "" "" "$(awk -v c="$m" 'BEGIN { printf "%.0f ms a node", c / 32 }'); sortie $(ratio "$h_sortie" "$m") x pssh"
}

echo "$(nproc) CPUs; sshd, the nodes' sessions and every client share them."
echo "machine CPU: all of it (the nodes' side too); runner-host CPU: the tool and the ssh clients it ran."
pin=() # the tools' command prefix: nothing, until the last scenario
scenario "32 nodes, 8 sshd, 3 short steps, 8 at once" \
    'uname -n' 'cat /proc/loadavg' 'ls /etc >/dev/null && echo listed'
scenario "the same, each step also waits 0.5 s" \
    'uname -n; sleep 0.5' 'cat /proc/loadavg; sleep 0.5' 'ls /etc >/dev/null && sleep 0.5 && echo listed'
# Nodes are other machines: here they share the runner's two CPUs, so what a
# node spends is taken from the runner. The same short steps with the nodes
# (the sshd servers and all they start) on CPU 1 and the tool, with its ssh
# clients, on CPU 0.
if (($(nproc) >= 2)); then
    for pid in "${pids[@]}"; do taskset -apc 1 "$pid" >/dev/null; done
    pin=(taskset -c 0)
    scenario "3 short steps, the nodes on a CPU of their own" \
        'uname -n' 'cat /proc/loadavg' 'ls /etc >/dev/null && echo listed'
fi

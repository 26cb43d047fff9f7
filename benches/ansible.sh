#!/usr/bin/env bash
# What an ansible step costs beyond Ansible: the same play (a copy and a
# command task on the local connection) run by bare ansible-playbook, the
# baseline, and as a sortie `ansible` step, alternating, N times each
# (default 7); the medians and their ratio. Release build; ansible-core from
# tests/peers/install.sh.
#
#   benches/ansible.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
echo "building (release) ..." >&2
cargo build -q --release
export PATH="$PWD/target/test-peers/venv/bin:$PATH"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/play.yml" <<PLAY
- hosts: all
  gather_facts: false
  tasks:
    - copy: {dest: "$dir/out.txt", content: "hello {{ who }}\\n"}
    - command: "true"
PLAY
printf 'all:\n  hosts:\n    local:\n      ansible_connection: local\n      ansible_python_interpreter: "{{ ansible_playbook_python }}"\n' >"$dir/inv.yml"
printf 'who: bench\n' >"$dir/vars.yml"
printf 'id: bench-ansible\noptions:\n  who: bench\nsteps:\n  - ansible:\n      playbook: %s/play.yml\n' "$dir" >"$dir/job.yaml"
ms() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for _ in $(seq "$runs"); do
    echo "bare $(ms ansible-playbook -i "$dir/inv.yml" -e "@$dir/vars.yml" "$dir/play.yml")"
    echo "sortie $(ms target/release/sortie exec "$dir/job.yaml")"
done >"$dir/times"
bare=$(awk '$1 == "bare" { print $2 }' "$dir/times" | median)
step=$(awk '$1 == "sortie" { print $2 }' "$dir/times" | median)
printf 'ansible-playbook (baseline)  %6d ms\n' "$bare"
printf 'sortie ansible step          %6d ms  = %s x\n' "$step" "$(awk -v a="$step" -v b="$bare" 'BEGIN { printf "%.2f", a / b }')"

"""The scheduler's cost and punctuality: idle CPU of the control plane with no
definitions (the baseline), then with N scheduled definitions (yearly crons)
and three every-second ones; and for those, how late each fire time was queued
and whether any second was missed. One JSON line per phase.

    python3 benches/schedules.py BINARY N [N ...]
"""

import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

WINDOW = 20  # seconds of idle CPU measured per phase


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Admin:
    def __init__(self, port, ca, token):
        self.conn = http.client.HTTPSConnection(
            "127.0.0.1", port, context=ssl.create_default_context(cafile=ca)
        )
        self.token = token

    def call(self, method, path, body=None):
        headers = {"authorization": f"Bearer {self.token}", "content-type": "application/json"}
        self.conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        answer = self.conn.getresponse()
        data = answer.read()
        if answer.status >= 300:
            raise SystemExit(f"{method} {path}: {answer.status} {data[:200]!r}")
        return json.loads(data) if data else None


def definition(name, cron):
    return {"name": name, "spec": {"steps": [{"shell": "true"}]}, "tags": ["nobody"],
            "schedule": {"cron": cron, "overlap": True}}


def phase(binary, scheduled):
    work = tempfile.mkdtemp(prefix="sortie-sched-bench.")
    token = "bench-admin-token"
    with open(f"{work}/admin-token", "w") as f:
        f.write(token)
    os.chmod(f"{work}/admin-token", 0o600)
    server = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--state-dir", f"{work}/state",
         "--admin-token-file", f"{work}/admin-token"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = server.stdout.readline().strip().removeprefix("listening on ")
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        admin = Admin(port, f"{work}/state/tls/ca.pem", token)
        for i in range(scheduled):
            admin.call("POST", "/admin/definitions", definition(f"yearly-{i}", f"{i % 60} {i % 24} 1 1 *"))
        if scheduled:
            for i in range(3):
                admin.call("POST", "/admin/definitions", definition(f"every-second-{i}", "* * * * * *"))
        time.sleep(2)
        began, cpu0 = time.time(), cpu_seconds(server.pid)
        time.sleep(WINDOW)
        ended, cpu1 = time.time(), cpu_seconds(server.pid)
        row = {"scheduled": scheduled, "idle_cpu_percent": round(100 * (cpu1 - cpu0) / (ended - began), 1)}
        if scheduled:
            jobs = admin.call("GET", "/admin/jobs?job=every-second-0")["jobs"]
            late, fired = [], set()
            for job in jobs:
                fire_ms = int(job["id"].rsplit(".s", 1)[1])
                fired.add(fire_ms // 1000)
                queued = job["created_at"]
                queued_ms = time.mktime(time.strptime(queued[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                queued_ms = queued_ms * 1000 + int(queued[20:23])
                late.append(queued_ms - fire_ms)
            window = set(range(int(began) + 1, int(ended)))
            row.update({"missed_seconds": len(window - fired),
                        "late_ms_median": round(statistics.median(late)),
                        "late_ms_max": round(max(late))})
        print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        server.wait()


def main():
    binary = sys.argv[1]
    phase(binary, 0)
    for n in sys.argv[2:]:
        phase(binary, int(n))


main()

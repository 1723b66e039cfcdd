#!/usr/bin/env python3
"""One wrk run whose every counted response is checked; prints one JSON object.

    bench/wrk.py URL --conns 64 --seconds 6 [--header H]... [--script FILE] [--body-bytes N]
                 [--cpu PID]... [-- SCRIPT_ARGS...]

The run fails (exit 1, the reason on stderr) when wrk saw any socket error (connect, read,
write, timeout) or any status of 400 and above, when it completed no request, or, with
`--body-bytes N`, when the bytes read do not fit N-byte bodies: every completed response
carries N bytes of body and at most 1 KiB of head, and a response cut off at the end of the
run adds at most one more per connection. A fast error page or a wrong object therefore
cannot count as throughput. A Lua script given with `--script` may report more figures and
failures: every line it prints as `BENCH {json}` is merged into the result; a `"failures"`
count above zero fails the run, a `"checked"` count must equal the responses wrk completed, a
`"counted"` figure replaces the responses in the rate, and `"duplicate"` answers above 1 in
1,000 fail the run.

Output keys: rps, gbps, p50_ms, p99_ms, max_ms, requests, bytes, seconds, and with `--cpu`
cpu_us (CPU time of those processes and their children per completed request, which another
process competing for the cores moves far less than throughput).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HEAD_ALLOWANCE = 1024

# Wraps the user's script (if any) and adds a done() that prints exact totals: wrk's own
# summary rounds bytes to two digits and says nothing of status or failures as numbers.
WRAPPER = """
local user = os.getenv("WRK_PY_SCRIPT")
if user and user ~= "" then dofile(user) end
local user_done = done
function done(summary, latency, requests)
  if user_done then user_done(summary, latency, requests) end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"bytes":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def cpu_ticks(pids):
    """User + system ticks of the processes and their direct children (nginx's workers)."""
    total = 0
    for pid in pids:
        family = [pid]
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                family += [int(c) for c in f.read().split()]
        except OSError:
            pass
        for p in family:
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
    return total


def run(url, conns, seconds, headers=(), script=None, script_args=(), body_bytes=None,
        cpu=(), threads=2):
    """Runs wrk once; returns the result dict or raises RuntimeError naming what was wrong."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as wrapper:
        wrapper.write(WRAPPER)
    env = dict(os.environ, WRK_PY_SCRIPT=os.path.abspath(script) if script else "")
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "-s", wrapper.name]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    ticks0 = cpu_ticks(cpu)
    try:
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    finally:
        os.unlink(wrapper.name)
    ticks1 = cpu_ticks(cpu)
    if out.returncode != 0:
        raise RuntimeError(f"wrk exited {out.returncode}: {out.stderr.strip() or out.stdout.strip()}")
    result = {}
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            result.update(json.loads(line[len("BENCH "):]))
    if "requests" not in result:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}{out.stderr}")

    requests, nbytes = result["requests"], result["bytes"]
    problems = []
    socket = {k: result[k] for k in ("connect", "read", "write", "timeout") if result[k]}
    if socket:
        problems.append(f"socket errors {socket}")
    if result["status"]:
        problems.append(f"{result['status']} responses with status >= 400")
    if requests == 0:
        problems.append("no request completed")
    if body_bytes is not None and requests:
        low, high = requests * body_bytes, (requests + conns) * (body_bytes + HEAD_ALLOWANCE)
        if not low <= nbytes <= high:
            problems.append(
                f"{nbytes} bytes read for {requests} responses: not {body_bytes}-byte bodies "
                f"(expected {low} to {high})")
    if result.get("duplicate", 0) * 1000 > requests:
        problems.append(f"{result['duplicate']} of {requests} answers were `duplicate`: a replay, "
                        "not beats reordered in flight (at most 1 in 1,000)")
    if "checked" in result and result["checked"] != requests:
        problems.append(f"the script checked {result['checked']} responses of {requests}")
    if result.get("failures", 0):
        said = " ".join(line.strip() for line in out.stderr.splitlines() if line.strip())
        problems.append(f"{result['failures']} responses failed the script's check"
                        + (f" ({said})" if said else ""))
    if problems:
        raise RuntimeError(f"{url}: " + "; ".join(problems))

    seconds_run = result["duration_us"] / 1e6
    result.update(
        # A script may count only some responses in the rate (heartbeats: accepted ones).
        rps=result.get("counted", requests) / seconds_run,
        gbps=nbytes * 8 / seconds_run / 1e9,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        seconds=seconds_run,
    )
    for k in ("connect", "read", "write", "timeout", "status", "duration_us", "p50_us",
              "p99_us", "max_us"):
        result.pop(k)
    if cpu:
        hz = os.sysconf("SC_CLK_TCK")
        result["cpu_us"] = (ticks1 - ticks0) / hz * 1e6 / requests
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--conns", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--script")
    parser.add_argument("--body-bytes", type=int)
    parser.add_argument("--cpu", type=int, action="append", default=[])
    args, rest = parser.parse_known_args()
    if rest and rest[0] == "--":
        rest = rest[1:]
    try:
        result = run(args.url, args.conns, f"{args.seconds:g}", args.header, args.script, rest,
                     args.body_bytes, args.cpu, args.threads)
    except RuntimeError as e:
        print(f"wrk.py: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Load test of `nerlstm serve`, on loopback only, bounded in time and in requests.

Starts the server on a free loopback port, then:
1. closed loop: ``--clients`` clients, each on its own keep-alive connection, send one
   sentence a request as fast as answers come, for ``--seconds``: sentences/s and latency;
2. open loop: requests at a fixed ``--rate`` per second for ``--seconds``, each on the next
   free connection: latency percentiles (p50, p99, max) at that load;
and samples the server's RSS every second throughout (start, end, max: flat or growing).
Then stops the server with SIGTERM (it must exit 0) and prints one JSON object.

    python benchmarks/loadtest.py -m model.onnx --clients 32 --seconds 30 --rate 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nerlstm.torch_compat import cpu_description

ROOT = Path(__file__).resolve().parent.parent
MAX_REQUESTS = 2_000_000  # a bound whatever the speed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, all its threads."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sentences_of(path: str, count: int = 2000) -> list[str]:
    """Sentences of a CoNLL file as text, tokens joined by spaces."""
    found, tokens = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip() or line.startswith("-DOCSTART-"):
            if tokens:
                found.append(" ".join(tokens))
                tokens = []
            if len(found) >= count:
                break
            continue
        tokens.append(line.split()[0])
    return found


class Connection:
    """One keep-alive HTTP/1.1 connection, a request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, body: bytes) -> int:
        self.writer.write(b"POST /tag HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                          b"application/json\r\nContent-Length: " + str(len(body)).encode()
                          + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0

    def add(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        self.errors += status != 200

    def summary(self, seconds: float) -> dict:
        ordered = sorted(self.latencies) or [0.0]

        def at(share: float) -> float:
            return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

        return {"requests": len(self.latencies), "errors": self.errors,
                "requests_per_s": len(self.latencies) / seconds,
                "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": ordered[-1] * 1000,
                "mean_ms": statistics.fmean(ordered) * 1000}


async def closed_loop(port: int, bodies: list[bytes], clients: int, seconds: float) -> dict:
    tally = Tally()
    deadline = time.monotonic() + seconds

    async def client(number: int) -> None:
        connection = await Connection.open(port)
        turn = number
        try:
            while time.monotonic() < deadline and len(tally.latencies) < MAX_REQUESTS:
                start = time.monotonic()
                try:
                    status = await connection.post(bodies[turn % len(bodies)])
                except (OSError, asyncio.IncompleteReadError):
                    status = 0
                    connection.close()
                    connection = await Connection.open(port)
                tally.add(status, time.monotonic() - start)
                turn += clients
        finally:
            connection.close()

    start = time.monotonic()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return {"clients": clients, **tally.summary(time.monotonic() - start)}


async def open_loop(port: int, bodies: list[bytes], rate: float, seconds: float,
                    connections: int) -> dict:
    tally = Tally()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(port))
    late = 0

    async def one(body: bytes, due: float) -> None:
        nonlocal late
        connection = await idle.get()
        if time.monotonic() - due > 0.001:
            late += 1  # every connection busy: the wait counts in the latency
        try:
            status = await connection.post(body)
        except (OSError, asyncio.IncompleteReadError):
            status = 0
            connection = await Connection.open(port)
        tally.add(status, time.monotonic() - due)
        idle.put_nowait(connection)

    start = time.monotonic()
    tasks = []
    count = min(int(rate * seconds), MAX_REQUESTS)
    for number in range(count):
        due = start + number / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        tasks.append(asyncio.create_task(one(bodies[number % len(bodies)], due)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return {"rate": rate, "waited_for_a_connection": late,
            **tally.summary(time.monotonic() - start)}


async def sample_rss(pid: int, samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(rss_mib(pid))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def run(args, port: int, pid: int) -> dict:
    bodies = [json.dumps({"text": text}).encode() for text in sentences_of(args.data)]
    samples: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, samples, stop))
    results = {}
    await closed_loop(port, bodies, args.clients, min(2.0, args.seconds))  # warm-up
    after_warmup = len(samples)
    server_cpu, client_cpu = cpu_seconds(pid), own_cpu_seconds()
    closed = await closed_loop(port, bodies, args.clients, args.seconds)
    # CPU time per request: comparable between runs where other processes take a varying
    # share of the cores, as wall-clock rates are not
    requests = max(1, closed["requests"])
    closed["server_cpu_ms_per_request"] = (cpu_seconds(pid) - server_cpu) * 1000 / requests
    closed["client_cpu_ms_per_request"] = (own_cpu_seconds() - client_cpu) * 1000 / requests
    closed["sentences_per_s"] = closed["requests_per_s"]
    results["closed_loop"] = closed
    results["open_loop"] = await open_loop(port, bodies, args.rate, args.seconds, args.clients)
    stop.set()
    await sampler
    samples.append(rss_mib(pid))
    steady = samples[after_warmup:] or samples
    results["server_rss_mib"] = {"after_warmup": steady[0], "end": steady[-1],
                                 "max": max(samples)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, help=".onnx or .pt model to serve")
    parser.add_argument("--data", default=str(ROOT / "data" / "test.txt"),
                        help="a CoNLL file whose sentences are sent")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0, help="per phase (at most 300)")
    parser.add_argument("--rate", type=float, default=200.0, help="open loop, requests/s")
    parser.add_argument("--threads", type=int, default=None, help="the server's --threads")
    args = parser.parse_args()
    args.seconds = min(args.seconds, 300.0)
    port = free_port()
    command = [sys.executable, "-m", "nerlstm", "serve", "-m", args.model, "--host",
               "127.0.0.1", "--port", str(port),
               *(["--threads", str(args.threads)] if args.threads else [])]
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"error: the server did not start: "
                                     f"{server.stderr.read()}") from None
                time.sleep(0.05)
        results = {"cpu": cpu_description()["model"], "model": Path(args.model).name,
                   **asyncio.run(run(args, port, server.pid))}
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        results_code = server.wait(timeout=60)
    results["server_exit_code"] = results_code
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

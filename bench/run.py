#!/usr/bin/python3
"""vmgate benchmarks: vmgate side by side with stunnel and haproxy, in one run.

Every path ends in the same upstream, `vmgate_bench sink` on a unix socket (vmgate's links to
it as to QEMU). The peers are "direct" (the client talks to the sink itself: the baseline of
(a) and (b)), stunnel and haproxy (TLS termination, tcp mode) and vmgate (TLS + SPICE link +
ticket login). All use one EC P-256 certificate and OpenSSL's defaults; the client insists on
TLS 1.3. Each measurement gets a freshly started terminator, so no test inherits another's heap.

  (a) bulk       BYTES over one channel into the sink: MiB/s, terminator CPU-seconds per GiB
  (b) pingpong   64-byte round trips on one channel: median and p99 latency
  (c) handshakes new channels per second (vmgate: each a full SPICE login with its own ticket)
  (d) idle       terminator RSS per idle channel: (RSS_N - RSS_0) / N
  bulk-vnc, pingpong-vnc
                 (a) and (b) as VNC clients: the sink plays QEMU's RFB side for every peer; vmgate
                 logs the client in with VeNCrypt (X509Plain against a sasldb, or X509Vnc with a
                 ticket: --vnc-auth), the others pass the sink's RFB None handshake through; the
                 client's data travels in ClientCutText messages on every path

Prints a Markdown table (vmgate's ratio to each peer in the last columns) and writes every figure
to bench/results-latest.json. Builds nothing: expects vmgate_bench next to the vmgate binary.
"""

import argparse
import contextlib
import dataclasses
import datetime
import functools
import json
import os
import platform
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GIB = 1 << 30
MIB = 1 << 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Descriptors a terminator needs beyond two per channel: listeners, logs, epoll, admin socket.
FD_RESERVE = 64
# Handshake rate the ticket supply is sized for; a faster vmgate just ends its run early.
MAX_TICKETS_PER_SECOND = 2000
TICKET_BATCH = 500
START_TIMEOUT = 15.0
WARMUP_SECONDS = 1.0
CLIENT_CONCURRENCY = 8


@dataclasses.dataclass(frozen=True)
class Sizes:
    bulk_bytes: int
    round_trips: int
    handshake_seconds: float
    burst_channels: int
    idle_channels: tuple


FULL = Sizes(GIB, 20000, 5.0, 2000, (1000, 10000))
QUICK = Sizes(64 * MIB, 2000, 3.0, 400, (100, 1000))
PEERS = ("direct", "stunnel", "haproxy", "vmgate")
VNC_SUFFIX = "-vnc"
TESTS = ("bulk", "pingpong", "handshakes", "burst", "idle", "bulk" + VNC_SUFFIX, "pingpong" + VNC_SUFFIX)
# Making a stock of ticket keys (about 3 ms of one core each, at a lower priority) before a burst.
STOCK_TIMEOUT = 90.0
# The one user vmgate lets in: tickets are issued to it, and for VNC X509Plain it is in the sasldb.
BENCH_USER = "bench"
BENCH_PASSWORD = "bench-password"


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---- processes ------------------------------------------------------------------------------

class Processes:
    """Every process the run starts, each stopped by its own PID, whatever happens."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.running = []

    def start(self, name, argv):
        log_file = open(os.path.join(self.log_dir, name + ".log"), "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        log_file.close()
        proc.log_name = name
        self.running.append(proc)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.running.remove(proc)

    def stop_all(self):
        for proc in list(self.running):
            self.stop(proc)

    def log_tail(self, proc, lines=15):
        with open(os.path.join(self.log_dir, proc.log_name + ".log"), errors="replace") as f:
            return "".join(f.readlines()[-lines:])


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def settle(pid, timeout=10.0):
    """Waits until the process stops using CPU: start-up work (vmgate fills its ticket-key
    pool) must not be billed to the measurement that follows."""
    deadline = time.monotonic() + timeout
    last, quiet = cpu_seconds(pid), 0
    while quiet < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last < 0.005 else 0
        last = now


def wait_until(ready, proc, processes, what):
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{processes.log_tail(proc)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {START_TIMEOUT} s:\n{processes.log_tail(proc)}")
        time.sleep(0.05)


def accepts(family, address):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(address) == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def idle_channels(requested, fd_limit):
    """How many idle channels every peer can hold: a terminator needs two descriptors per channel,
    and stunnel admits at most fd_limit * 125 / 256 clients. One count for all keeps the
    per-channel figures comparable."""
    return min(requested, (fd_limit - FD_RESERVE) // 2, fd_limit * 125 // 256 - FD_RESERVE)


def raise_descriptor_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ---- certificates ---------------------------------------------------------------------------

def make_pki(directory):
    """A CA and a server certificate for 127.0.0.1, both EC P-256; key mode 0600 as vmgate wants."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=vmgate bench CA")
    openssl("req", *ec, "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "cert.pem")
    os.chmod(os.path.join(directory, "key.pem"), 0o600)
    with open(os.path.join(directory, "cert+key.pem"), "w") as combined:  # haproxy's `crt` form
        for name in ("cert.pem", "key.pem"):
            with open(os.path.join(directory, name)) as part:
                combined.write(part.read())
    os.chmod(os.path.join(directory, "cert+key.pem"), 0o600)


# ---- peers ----------------------------------------------------------------------------------

def no_login():
    return []


@dataclasses.dataclass
class Service:
    """A running path to a sink, as a client sees it."""
    pid: int = None                # the terminator whose CPU and memory are measured
    connect: str = ""
    tls: bool = False
    vnc: bool = False              # the client speaks RFB (the tests ending in VNC_SUFFIX)
    tickets: object = None         # n -> [ticket]: vmgate's one-time tickets (handshake test)
    login: object = no_login       # () -> client args for one channel's login (vmgate)
    seats: list = None             # vmgate: the addresses of VMs sink0, sink1, ... (tickets(n, i))

    def client_args(self, ca):
        return ["--connect", self.connect] + (["--tls", "--ca", ca] if self.tls else []) + ["--vnc"] * self.vnc


class Bench:
    def __init__(self, args, work, processes, fd_limit):
        self.args = args
        self.work = work
        self.processes = processes
        self.fd_limit = fd_limit
        self.ca = os.path.join(work, "ca.pem")
        self.cert = os.path.join(work, "cert.pem")
        self.key = os.path.join(work, "key.pem")
        self.sinks = {}
        self.sasldb = None

    def sink(self, protocol, echo):
        """The sink for (raw|spice|rfb, echo or bulk), started on first use and kept: the
        terminators come and go in front of it."""
        if (protocol, echo) not in self.sinks:
            name = f"sink-{protocol}-{'echo' if echo else 'bulk'}"
            path = os.path.join(self.work, name + ".sock")
            argv = [self.args.bench_tool, "sink", "--unix", path, "--protocol", protocol] + ["--echo"] * echo
            proc = self.processes.start(name, argv)
            wait_until(lambda: os.path.exists(path) and accepts(socket.AF_UNIX, path), proc, self.processes, name)
            self.sinks[(protocol, echo)] = path
        return self.sinks[(protocol, echo)]

    @contextlib.contextmanager
    def serve(self, peer, echo, vnc=False, key_stock=None):
        """A fresh start_PEER(sink, vnc) in front of its sink. Every peer of a VNC test reaches the
        RFB sink; of a SPICE test only vmgate needs the SPICE link, the others get the data phase
        at once."""
        protocol = "rfb" if vnc else "spice" if peer == "vmgate" else "raw"
        start = getattr(self, "start_" + peer)
        args = {"key_stock": key_stock} if peer == "vmgate" else {}
        with start(self.sink(protocol, echo), vnc, **args) as service:
            service.vnc = vnc
            if service.pid:
                settle(service.pid, STOCK_TIMEOUT if key_stock else 10.0)
            yield service

    @contextlib.contextmanager
    def start_direct(self, sink, vnc):
        yield Service(connect="unix:" + sink)

    @contextlib.contextmanager
    def terminator(self, name, argv, port):
        proc = self.processes.start(name, argv)
        try:
            wait_until(lambda: accepts(socket.AF_INET, ("127.0.0.1", port)), proc, self.processes, name)
            yield proc
        finally:
            self.processes.stop(proc)

    @contextlib.contextmanager
    def start_stunnel(self, sink, vnc):
        port = free_port()
        config = self.write("stunnel.conf", f"""\
foreground = yes
pid =
syslog = no
debug = warning

[bench]
accept = 127.0.0.1:{port}
connect = {sink}
cert = {self.cert}
key = {self.key}
""")
        with self.terminator("stunnel", [self.args.stunnel, config], port) as proc:
            yield Service(proc.pid, f"127.0.0.1:{port}", True)

    @contextlib.contextmanager
    def start_haproxy(self, sink, vnc):
        port = free_port()
        maxconn = (self.fd_limit - FD_RESERVE) // 2
        config = self.write("haproxy.cfg", f"""\
global
    maxconn {maxconn}

defaults
    mode tcp
    maxconn {maxconn}
    timeout connect 10s
    timeout client 1h
    timeout server 1h

frontend bench
    bind 127.0.0.1:{port} ssl crt {self.work}/cert+key.pem
    default_backend sink

backend sink
    server sink unix@{sink}
""")
        with self.terminator("haproxy", [self.args.haproxy, "-db", "-f", config], port) as proc:
            yield Service(proc.pid, f"127.0.0.1:{port}", True)

    @contextlib.contextmanager
    def start_vmgate(self, sink, vnc, key_stock=None):
        # A console seat is per VM: the SPICE handshake test's client threads each log into a
        # VM of their own (all in front of the one sink), or their logins would take over each
        # other's sessions. The other tests use the first one.
        seats = 1 if vnc else CLIENT_CONCURRENCY
        ports = [free_port() for _ in range(seats)]
        state = os.path.join(self.work, "vmgate")
        shutil.rmtree(state, ignore_errors=True)
        os.makedirs(state, mode=0o700)
        admin = os.path.join(state, "admin.sock")
        protocol = "vnc" if vnc else "spice"
        auth = self.args.vnc_auth if vnc else "ticket"
        sasldb = self.bench_sasldb() if auth == "password" else os.path.join(state, "sasldb2")
        vms = "".join(f"""
[[listener]]
protocol = "{protocol}"
address = "127.0.0.1:{port}"
tls = true
vm = "sink{i}"
auth = ["{auth}"]

[[vm]]
name = "sink{i}"
{protocol} = "unix:{sink}"
  [[vm.allow]]
  users = ["{BENCH_USER}"]
""" for i, port in enumerate(ports))
        config = self.write("vmgate.toml", f"""\
[gateway]
state_dir = "{state}"
audit_log = "{state}/audit.jsonl"
admin_socket = "{admin}"
handshake_timeout = "10s"
{f"ticket_key_stock = {key_stock}" if key_stock is not None else ""}

[tls]
cert = "{self.cert}"
key = "{self.key}"

[sasl]
mech_list = ["PLAIN"]
sasldb = "{sasldb}"
{vms}""")
        with self.terminator("vmgate", [self.args.vmgate, "serve", "--config", config], ports[-1]) as proc:
            wait_until(lambda: os.path.exists(admin), proc, self.processes, "vmgate admin socket")
            def tickets(n, vm=0):
                return fetch_tickets(admin, n, protocol, f"sink{vm}")
            seat_addresses = [f"127.0.0.1:{port}" for port in ports]
            yield Service(proc.pid, seat_addresses[0], True, tickets=tickets, login=self.login(vnc, auth, tickets),
                          seats=seat_addresses)

    @staticmethod
    def login(vnc, auth, tickets):
        """How one client channel logs into vmgate: () -> vmgate_bench arguments."""
        if not vnc:
            return lambda: ["--spice-ticket", tickets(1)[0]]
        if auth == "password":
            return lambda: ["--vnc-user", BENCH_USER, "--vnc-password", BENCH_PASSWORD]
        return lambda: ["--vnc-ticket", tickets(1)[0]]

    def bench_sasldb(self):
        """The sasldb behind VeNCrypt X509Plain: the bench user, made once by Cyrus' own tool
        under vmgate's VNC service name."""
        if not self.sasldb:
            path = os.path.join(self.work, "sasldb2")
            subprocess.run([self.args.saslpasswd2, "-c", "-p", "-f", path, "-a", "vnc", BENCH_USER],
                           input=BENCH_PASSWORD.encode(), check=True, capture_output=True)
            self.sasldb = path
        return self.sasldb

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # ---- clients ----------------------------------------------------------------------------

    def client(self, service, mode, *args, timeout=900):
        argv = [self.args.bench_tool, mode, *service.client_args(self.ca), *map(str, args)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr.strip()}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def bulk(self, peer, vnc=False):
        with self.serve(peer, echo=False, vnc=vnc) as service:
            login = service.login()
            before = cpu_seconds(service.pid) if service.pid else None
            result = self.client(service, "bulk", "--bytes", self.args.sizes.bulk_bytes, *login)
            if service.pid:
                used = cpu_seconds(service.pid) - before
                result["cpu_s_per_gib"] = used / (self.args.sizes.bulk_bytes / GIB)
        return result

    def pingpong(self, peer, vnc=False):
        with self.serve(peer, echo=True, vnc=vnc) as service:
            return self.client(service, "pingpong", "--count", self.args.sizes.round_trips, *service.login())

    def handshakes(self, peer):
        seconds = self.args.sizes.handshake_seconds
        with self.serve(peer, echo=True) as service:
            warmup = self.ticket_args_file(service, WARMUP_SECONDS, "warmup")
            measured = self.ticket_args_file(service, seconds, "measured")
            settle(service.pid)  # issuing thousands of tickets is work of its own
            # Unmeasured first, and straight on after it: vmgate starts with a stock of
            # pre-generated ticket keys, and a short run would measure that stock rather than
            # the rate it sustains.
            self.client(service, "handshakes", "--seconds", WARMUP_SECONDS, "--concurrency", CLIENT_CONCURRENCY, *warmup)
            before = cpu_seconds(service.pid)
            result = self.client(service, "handshakes", "--seconds", seconds, "--concurrency", CLIENT_CONCURRENCY,
                                 *measured)
            used = cpu_seconds(service.pid) - before
            if result["handshakes"]:
                result["cpu_ms_per_handshake"] = used * 1000 / result["handshakes"]
        return result

    def burst(self, peer):
        """(c) again, as a burst: a fixed number of new channels at once, with no warm-up. vmgate
        starts with a stock of that many ticket keys, made before the burst."""
        count = self.args.sizes.burst_channels
        with self.serve(peer, echo=True, key_stock=count) as service:
            logins = self.ticket_args_file(service, None, "burst", count)
            settle(service.pid)
            before = cpu_seconds(service.pid)
            result = self.client(service, "handshakes", "--seconds", 120, "--concurrency", CLIENT_CONCURRENCY,
                                 "--limit", count, *logins)
            used = cpu_seconds(service.pid) - before
            if result["handshakes"]:
                result["cpu_ms_per_handshake"] = used * 1000 / result["handshakes"]
        return result

    def ticket_args_file(self, service, seconds, name, count=None):
        """Lines "HOST:PORT TICKET", VM by VM in turn: client thread t logs into VM t only. As many
        as `count`, or as the fastest rate the run is sized for needs in `seconds`."""
        if not service.tickets:
            return []
        total = count if count is not None else int(seconds * MAX_TICKETS_PER_SECOND)
        per_seat = -(-total // len(service.seats))
        by_seat = [service.tickets(per_seat, i) for i in range(len(service.seats))]
        lines = [f"{address} {tickets[k]}" for k in range(per_seat) for address, tickets in zip(service.seats, by_seat)]
        lines = lines[:total]
        return ["--tickets", self.write(f"tickets-{name}.txt", "\n".join(lines))]

    def idle(self, peer):
        results = {}
        for requested in self.args.sizes.idle_channels:
            channels = idle_channels(requested, self.fd_limit)
            with self.serve(peer, echo=True) as service:
                try:
                    results[str(requested)] = self.idle_once(service, channels)
                except Exception as e:  # the smaller count's figure still stands
                    log(f"  {channels} channels failed: {e}")
                    results[str(requested)] = {"error": str(e)}
        return results

    def idle_once(self, service, channels):
        login = service.login()
        settle(service.pid)
        rss_0 = rss_kib(service.pid)
        argv = [self.args.bench_tool, "idle", *service.client_args(self.ca), "--channels", str(channels),
                "--concurrency", str(CLIENT_CONCURRENCY), "--hold", *login]
        client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            wait_for_line(client, "ready", timeout=900)
            settle(service.pid)
            rss_n = rss_kib(service.pid)
        finally:
            try:
                out, err = client.communicate(timeout=120)  # closes stdin: the client lets go
            except subprocess.TimeoutExpired:
                client.kill()  # holds thousands of channels: never leave it behind
                out, err = client.communicate()
        if client.returncode != 0:
            raise RuntimeError(f"idle client failed:\n{err.strip()}")
        result = json.loads(out.strip().splitlines()[-1])
        result.update(rss_0_kib=rss_0, rss_n_kib=rss_n, kib_per_channel=(rss_n - rss_0) / channels)
        return result


def wait_for_line(proc, expected, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stdout], [], [], 1.0)
        if readable:
            line = proc.stdout.readline()
            if line.strip() == expected:
                return
            if not line:
                raise RuntimeError(f"client ended before \"{expected}\":\n{proc.stderr.read().strip()}")
    raise RuntimeError(f"client not {expected} after {timeout} s")


def fetch_tickets(admin_path, count, protocol, vm):
    """One-time tickets from vmgate's admin socket: JSON lines, many requests per connection."""
    request = json.dumps({"op": "ticket", "user": BENCH_USER, "vm": vm, "ttl_seconds": 600,
                          "protocol": protocol}).encode() + b"\n"
    tickets = []
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(admin_path)
        stream = s.makefile("rwb")
        while len(tickets) < count:
            batch = min(TICKET_BATCH, count - len(tickets))  # bounded, so neither side's buffer fills
            stream.write(request * batch)
            stream.flush()
            for _ in range(batch):
                reply = json.loads(stream.readline())
                if not reply.get("ok"):
                    raise RuntimeError(f"vmgate refused a ticket: {reply}")
                tickets.append(reply["ticket"])
    return tickets


# ---- report ---------------------------------------------------------------------------------

def figure(results, test, peer, *keys):
    value = results.get(test, {}).get(peer)
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def fmt(value):
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def table(results, peers, sizes, fd_limit):
    idle_rows = []
    for n in sizes.idle_channels:
        actual = idle_channels(n, fd_limit)
        label = f"{n:,}" if actual == n else f"{actual:,} (fd limit {fd_limit:,})"
        idle_rows.append((f"(d) RSS per idle channel at {label}, KiB ↓", "idle", str(n), "kib_per_channel"))
    rows = [
        (f"(a) bulk {sizes.bulk_bytes // MIB:,} MiB, MiB/s ↑", "bulk", "mib_per_s"),
        ("(a) terminator CPU, s per GiB ↓", "bulk", "cpu_s_per_gib"),
        (f"(b) ping-pong median of {sizes.round_trips:,}, µs ↓", "pingpong", "median_us"),
        ("(b) ping-pong p99, µs ↓", "pingpong", "p99_us"),
        ("(c) new channels per second ↑", "handshakes", "per_second"),
        ("(c) terminator CPU per new channel, ms ↓", "handshakes", "cpu_ms_per_handshake"),
        (f"(c) burst of {sizes.burst_channels:,} new channels, per second ↑", "burst", "per_second"),
        *idle_rows,
        (f"(a) VNC bulk {sizes.bulk_bytes // MIB:,} MiB, MiB/s ↑", "bulk" + VNC_SUFFIX, "mib_per_s"),
        ("(a) VNC terminator CPU, s per GiB ↓", "bulk" + VNC_SUFFIX, "cpu_s_per_gib"),
        (f"(b) VNC ping-pong median of {sizes.round_trips:,}, µs ↓", "pingpong" + VNC_SUFFIX, "median_us"),
        ("(b) VNC ping-pong p99, µs ↓", "pingpong" + VNC_SUFFIX, "p99_us"),
    ]
    rows = [row for row in rows if row[1] in results]  # the tests not run have no rows
    others = [p for p in peers if p in ("stunnel", "haproxy")] if "vmgate" in peers else []
    header = ["", *peers, *[f"vmgate / {p}" for p in others]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, test, *keys in rows:
        cells = [fmt(figure(results, test, p, *keys)) for p in peers]
        mine = figure(results, test, "vmgate", *keys)
        for p in others:
            theirs = figure(results, test, p, *keys)
            cells.append(f"{mine / theirs:.2f}×" if mine is not None and theirs else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tls_summary(results):
    """What each peer negotiated, grouped: one group when the comparison is like for like."""
    def found(result):
        if "tls" in result:
            return [result["tls"]] if result["tls"] else []
        return [t for sub in result.values() if isinstance(sub, dict) for t in found(sub)]

    seen = {}
    for test in results.values():
        for peer, result in test.items():
            for tls in found(result):
                seen.setdefault(f"{tls['version']} {tls['cipher']} {tls['group']}", set()).add(peer)
    return "; ".join(f"{k} ({', '.join(sorted(v))})" for k, v in seen.items())


def notes(results):
    """Whatever makes a figure less than it seems: failed runs, failed handshakes."""
    def one_line(error):
        return " ".join(error.split())[:200]

    lines = []
    for test, by_peer in results.items():
        for peer, result in by_peer.items():
            if "error" in result:
                lines.append(f"- {test} / {peer} did not run: {one_line(result['error'])}")
                continue
            for n, sub in result.items():
                if isinstance(sub, dict) and "error" in sub:
                    lines.append(f"- {test} / {peer} at {n}: {one_line(sub['error'])}")
            broken = [r for r in result.get("runs", []) if "error" in r]
            if broken:
                lines.append(f"- {test} / {peer}: {len(broken)} of {len(result['runs'])} rounds did not run, "
                             f"first: {one_line(broken[0]['error'])}")
            runs = [r for r in result.get("runs", [result]) if "error" not in r]
            failed = [r for r in runs if r.get("failures")]
            if failed:
                failures = sum(r["failures"] for r in failed)
                attempts = sum(r["failures"] + r["handshakes"] for r in runs)
                lines.append(f"- {test} / {peer}: {failures} of {attempts} new channels failed, "
                             f"first: {failed[0]['first_error']}")
    return "\n".join(lines)


def machine():
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}"


# ---- main -----------------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vmgate", default="build/vmgate", help="vmgate binary (default: %(default)s)")
    parser.add_argument("--bench-tool", help="vmgate_bench binary (default: next to --vmgate)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a sanity run")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of %(default)s")
    parser.add_argument("--tests", default=",".join(TESTS), help="comma-separated subset of %(default)s")
    parser.add_argument("--rounds", type=int, help="runs of (a)-(c) per peer (default: 3, 1 with --quick)")
    parser.add_argument("--json", default=os.path.join(HERE, "results-latest.json"), help="where to write results")
    parser.add_argument("--stunnel", default=shutil.which("stunnel4") or shutil.which("stunnel") or "stunnel4")
    parser.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    parser.add_argument("--vnc-auth", choices=("password", "ticket"), default="password",
                        help="vmgate's VNC login: VeNCrypt X509Plain against a sasldb, or X509Vnc with a "
                             "one-time ticket (default: %(default)s)")
    parser.add_argument("--saslpasswd2", default=shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2")
    args = parser.parse_args()
    args.bench_tool = args.bench_tool or os.path.join(os.path.dirname(os.path.abspath(args.vmgate)), "vmgate_bench")
    args.sizes = QUICK if args.quick else FULL
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.peers = [p for p in PEERS if p in args.peers.split(",")]
    args.tests = [t for t in TESTS if t in args.tests.split(",")]
    if not os.access(args.bench_tool, os.X_OK):
        parser.error(f"{args.bench_tool} not found: build it with `cmake --build build --target vmgate_bench`")
    if "vmgate" in args.peers and not os.access(args.vmgate, os.X_OK):
        log(f"note: {args.vmgate} not found; measuring the other peers only")
        args.peers.remove("vmgate")
    return args


def run_all(bench, args):
    """Each test runs every peer in turn, round after round with the order rotated, so a burst of
    load from elsewhere on the machine hits all peers alike; each figure is the median of the
    rounds. (d) runs once: it is slow and barely load-sensitive."""
    results = {}
    for test in args.tests:
        peers = [p for p in args.peers if not (p == "direct" and test in ("handshakes", "burst", "idle"))]
        rounds = 1 if test == "idle" else args.rounds
        runs = {peer: [] for peer in peers}
        for r in range(rounds):
            for peer in peers[r % len(peers):] + peers[:r % len(peers)]:
                log(f"{test} / {peer}, round {r + 1} of {rounds} ...")
                runs[peer].append(run_one(bench, test, peer))
        results[test] = {peer: median_run(peer_runs) for peer, peer_runs in runs.items()}
    return results


def test_method(bench, test):
    """The Bench method that runs `test`: a VNC test is bulk or pingpong with a VNC client."""
    if test.endswith(VNC_SUFFIX):
        return functools.partial(getattr(bench, test.removesuffix(VNC_SUFFIX)), vnc=True)
    return getattr(bench, test)


def run_one(bench, test, peer):
    try:
        result = test_method(bench, test)(peer)
    except Exception as e:  # one broken peer must not cost the others' figures
        log(f"  failed: {e}")
        return {"error": str(e)}
    log(f"  {json.dumps(result)}")
    return result


def median_run(runs):
    """The figures of several runs of one peer: the median of each number, the rest (TLS
    parameters, the first error) from the first run; every run kept under "runs"."""
    good = [r for r in runs if "error" not in r]
    if len(runs) == 1 or not good:
        return runs[0]
    merged = dict(good[0])
    for key, value in good[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = statistics.median(r[key] for r in good if key in r)
    merged["runs"] = runs
    return merged


def main():
    args = parse_args()
    fd_limit = raise_descriptor_limit()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vmgate-bench-") as work:
        processes = Processes(work)
        try:
            make_pki(work)
            bench = Bench(args, work, processes, fd_limit)
            results = run_all(bench, args)
        finally:
            processes.stop_all()
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "certificate": "EC P-256 (ECDSA), one self-signed CA, for every peer",
        "sizes": dataclasses.asdict(args.sizes),
        "client_concurrency": CLIENT_CONCURRENCY,
        "fd_limit": fd_limit,
        "tls": tls_summary(results),
    }
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    print(f"vmgate bench, {meta['started']}: {meta['machine']}; load average "
          f"{load_before[0]:.1f} before, {meta['load_average_after'][0]:.1f} after.")
    print(f"Certificate {meta['certificate']}; negotiated: {meta['tls']}.\n")
    print(table(results, args.peers, args.sizes, fd_limit))
    if notes(results):
        print("\n" + notes(results))
    print(f"\n↑ higher is better, ↓ lower is better. All figures: {args.json}")


if __name__ == "__main__":
    main()

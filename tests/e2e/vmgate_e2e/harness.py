"""Process harness for vmgate's end-to-end tests.

Everything is real and local: QEMU (TCG, no disk, SeaBIOS screen), the vmgate binary, Cyrus SASL
tools (saslpasswd2, saslauthd), the openssl CLI, and our spice-gtk client (spice_client.py) run
as a subprocess. Only 127.0.0.1 / localhost is used.

Every process started here is registered and stopped by its PID (SIGTERM, then SIGKILL): by the
context managers, by class cleanups, and as a last resort at interpreter exit (a SIGTERM sent to
the test process, e.g. by a ctest timeout, is turned into a normal exit so that this still runs).

Environment:
    VMGATE_BIN         the vmgate binary (set by ctest); default SOURCE/build/vmgate
    VMGATE_SOURCE_DIR  the source tree (set by ctest)
    VMGATE_E2E_KEEP=1  keep the temporary directories for inspection
"""

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

E2E_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/e2e
SOURCE_DIR = os.environ.get("VMGATE_SOURCE_DIR") or os.path.dirname(os.path.dirname(E2E_DIR))
PYTHON = "/usr/bin/python3"  # Debian's python, which has python3-gi (a pyenv python does not)
QEMU = "qemu-system-x86_64"
LOG_TAIL_LINES = 150

# SPICE link protocol constants (spice-protocol.md section 2)
SPICE_MAGIC = b"REDQ"
SPICE_VERSION_MAJOR = 2
SPICE_VERSION_MINOR = 2
LINK_HEADER_SIZE = 16
LINK_REPLY_SIZE = 178
LINK_ERROR_REPLY_SIZE = LINK_HEADER_SIZE + LINK_REPLY_SIZE  # 194
LINK_ERR_OK = 0
LINK_ERR_ERROR = 1
LINK_ERR_INVALID_MAGIC = 2
LINK_ERR_INVALID_DATA = 3
LINK_ERR_VERSION_MISMATCH = 4
LINK_ERR_NEED_SECURED = 5
LINK_ERR_PERMISSION_DENIED = 7


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------

_live_processes = []  # Popen objects not yet stopped
_live_lock = threading.Lock()


def _register(proc):
    with _live_lock:
        _live_processes.append(proc)


def stop_process(proc, term_timeout=5.0, sig=signal.SIGTERM):
    """Stop one process we started, by its PID: SIGTERM (or `sig`), wait, then SIGKILL.

    Returns the exit status (negative for a signal, as Popen does)."""
    if proc is None:
        return None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=term_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with _live_lock:
        if proc in _live_processes:
            _live_processes.remove(proc)
    return proc.returncode


def _stop_all_at_exit():
    with _live_lock:
        procs = list(_live_processes)
    for proc in reversed(procs):
        with contextlib.suppress(Exception):
            stop_process(proc, term_timeout=3.0)


atexit.register(_stop_all_at_exit)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # runs the atexit handler above


if threading.current_thread() is threading.main_thread():
    with contextlib.suppress(ValueError):
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _exit_on_sigterm)


def start_process(argv, log_path, env=None, stdin=subprocess.DEVNULL, cwd=None):
    """Start argv with stdout and stderr appended to log_path; registered for cleanup."""
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(argv, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True)
    finally:
        log.close()
    _register(proc)
    return proc


def read_tail(path, lines=LOG_TAIL_LINES):
    try:
        with open(path, "r", errors="replace") as f:
            content = f.readlines()
    except OSError as exc:
        return "<cannot read %s: %s>" % (path, exc)
    head = "" if len(content) <= lines else "... (%d earlier lines)\n" % (len(content) - lines)
    return head + "".join(content[-lines:])


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a truthy value; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# ports and sockets
# ---------------------------------------------------------------------------------------------

_ports_handed_out = set()


def wait_started(service, ready, timeout, what):
    """Wait until a just-started service is `ready`; stop it (by PID) if it never gets there, so
    a failed start leaves nothing running. Returns the service."""
    try:
        wait_until(ready, timeout, what=what)
    except BaseException:
        service.stop()
        raise
    return service


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (never the same one twice per run)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def _socket_inodes(pid):
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for name in names:
        with contextlib.suppress(OSError):
            target = os.readlink(os.path.join(fd_dir, name))
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def listening_ports(pid):
    """TCP ports in LISTEN state whose sockets belong to process `pid` (read from /proc).

    Used instead of test connections so that waiting for readiness leaves no trace in
    vmgate's audit log."""
    inodes = _socket_inodes(pid)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def is_unix_socket(path):
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# PKI and SASL databases
# ---------------------------------------------------------------------------------------------

class Pki:
    def __init__(self, directory):
        self.dir = directory
        self.ca_cert = os.path.join(directory, "ca-cert.pem")
        self.ca_key = os.path.join(directory, "ca-key.pem")
        self.cert = os.path.join(directory, "server-cert.pem")
        self.key = os.path.join(directory, "server-key.pem")


def _run_checked(argv, input_bytes=None, what=None):
    res = subprocess.run(argv, input=input_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise RuntimeError("%s failed (rc %d): %s\n%s" % (
            what or argv[0], res.returncode, " ".join(argv),
            (res.stdout + res.stderr).decode(errors="replace")))
    return res.stdout.decode(errors="replace")


def make_pki(directory, cn="localhost", san="DNS:localhost,IP:127.0.0.1"):
    """A test CA and a server certificate for `cn` signed by it (openssl CLI). Keys are 0600.

    Returns a Pki with ca_cert, cert and key paths (names as QEMU's x509-dir expects)."""
    os.makedirs(directory, exist_ok=True)
    pki = Pki(directory)
    csr = os.path.join(directory, "server.csr")
    ext = os.path.join(directory, "server.ext")
    old_umask = os.umask(0o077)
    try:
        _run_checked(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                      "-subj", "/CN=vmgate e2e test CA", "-keyout", pki.ca_key, "-out", pki.ca_cert,
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign"], what="openssl CA")
        _run_checked(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/O=vmgate e2e/CN=%s" % cn,
                      "-keyout", pki.key, "-out", csr], what="openssl server key")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=%s\n" % san)
        _run_checked(["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
                      "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", pki.cert],
                     what="openssl sign")
    finally:
        os.umask(old_umask)
    for path in (csr, ext):
        with contextlib.suppress(OSError):
            os.unlink(path)
    os.chmod(pki.key, 0o600)
    os.chmod(pki.ca_key, 0o600)
    for path in (pki.ca_cert, pki.cert):
        os.chmod(path, 0o644)
    _run_checked(["openssl", "verify", "-CAfile", pki.ca_cert, pki.cert], what="openssl verify")
    return pki


def make_sasldb(path, users, realm=None, appname="spice"):
    """Add users {name: password} to the Cyrus sasldb at `path` with the real saslpasswd2.

    Runs `saslpasswd2 -p -c -f PATH [-u REALM] -a spice USER` per user, the password on stdin.
    Without a realm saslpasswd2 uses the host name, as Cyrus does. Can be called again on the
    same file to add users of another realm. Returns path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    for user, password in users.items():
        argv = ["saslpasswd2", "-p", "-c", "-f", path]
        if realm:
            argv += ["-u", realm]
        argv += ["-a", appname, user]
        _run_checked(argv, input_bytes=password.encode(), what="saslpasswd2")
    return path


def sasldb_entries(path):
    """['alice@REALM: userPassword', ...] as listed by sasldblistusers2."""
    out = _run_checked(["sasldblistusers2", "-f", path], what="sasldblistusers2")
    return [line.strip() for line in out.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# private mount namespaces (fake /etc/hosts, /etc/group for one process only)
# ---------------------------------------------------------------------------------------------

def require_private_mounts():
    """Raise unless private_mounts() can work here (root and util-linux's unshare/mount: CI and
    `make test` run as root, so a missing piece is a broken test machine, not a reason to skip)."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        raise RuntimeError("unshare/mount not installed (util-linux)")
    if os.geteuid() != 0:
        raise RuntimeError("a private mount namespace needs root (CAP_SYS_ADMIN): run the e2e tests as root")


def private_mounts(binds):
    """An argv prefix that runs the command after it in a private mount namespace in which each
    file of `binds` {test_file: system_path} is bind-mounted over system_path (e.g. a test
    /etc/hosts). Only that process (and its children) sees the files; the system ones are never
    touched, and the mounts vanish with the process. `unshare` and `sh` exec into the command,
    so the PID of the started process is the command's own PID."""
    script = []
    args = []
    for i, (source, target) in enumerate(binds.items()):
        script.append('mount --bind "${%d}" "${%d}"' % (2 * i + 1, 2 * i + 2))  # ${10}, not $1 then 0
        args += [source, target]
    script.append('shift %d' % len(args))
    script.append('exec "$@"')
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", " && ".join(script), "sh"] + args


# ---------------------------------------------------------------------------------------------
# QEMU
# ---------------------------------------------------------------------------------------------

class Qemu:
    """A TCG QEMU with a QXL display and SPICE, stopped by PID (context manager).

    Default: a unix socket without ticketing (`upstream` = "unix:SOCK"). With tcp_port (and
    usually password): `-object secret,id=pw,data=PW -spice port=N,addr=127.0.0.1,password-secret=pw`
    (`upstream` = "tcp:127.0.0.1:N").

    qmp=True adds a QMP monitor on a unix socket (`qmp_path`; see `qmp()`); spice_extra is
    appended to the generated -spice value (e.g. "seamless-migration=on").
    vmgate_qmp=True adds a second QMP monitor for vmgate's `qmp:` upstream (`vmgate_qmp_path`,
    `qmp_upstream`): QEMU serves one client per -qmp socket, and vmgate keeps its connection."""

    def __init__(self, workdir, name="vm1", tcp_port=None, password=None, spice_opts=None, env=None,
                 wait_port=None, qmp=False, spice_extra=None, vmgate_qmp=False):
        self.workdir = workdir
        self.qmp_path = os.path.join(workdir, "%s.qmp.sock" % name) if qmp else None
        self.vmgate_qmp_path = os.path.join(workdir, "%s.vmgate-qmp.sock" % name) if vmgate_qmp else None
        self.spice_extra = spice_extra
        self.name = name
        self.tcp_port = tcp_port
        self.password = password
        self.spice_opts = spice_opts  # full -spice value, for special setups (TLS, SASL)
        self.env = env
        self.wait_port = wait_port or tcp_port
        self.socket_path = None if (tcp_port or spice_opts) else os.path.join(workdir, "%s.spice.sock" % name)
        self.log_path = os.path.join(workdir, "qemu-%s.log" % name)
        self.proc = None

    @property
    def upstream(self):
        if self.tcp_port:
            return "tcp:127.0.0.1:%d" % self.tcp_port
        return "unix:%s" % self.socket_path

    @property
    def qmp_upstream(self):
        return "qmp:%s" % self.vmgate_qmp_path

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def qmp_argv(self):
        argv = []
        for path in (self.qmp_path, self.vmgate_qmp_path):
            if path:
                argv += ["-qmp", "unix:%s,server=on,wait=off" % path]
        return argv

    def argv(self):
        argv = [QEMU, "-name", self.name, "-machine", "pc,accel=tcg", "-m", "64", "-nodefaults",
                "-no-user-config", "-nic", "none", "-display", "none", "-vga", "qxl"]
        if self.password is not None:
            argv += ["-object", "secret,id=pw,data=%s" % self.password]
        if self.spice_opts:
            spice = self.spice_opts
        elif self.tcp_port:
            spice = "port=%d,addr=127.0.0.1" % self.tcp_port
        else:
            spice = "unix=on,addr=%s" % self.socket_path
        if not self.spice_opts:
            spice += ",password-secret=pw" if self.password is not None else ",disable-ticketing=on"
        if self.spice_extra:
            spice += "," + self.spice_extra
        return argv + self.qmp_argv() + ["-spice", spice]

    def start(self, timeout=20.0):
        for path in (self.socket_path, self.qmp_path, self.vmgate_qmp_path):
            if path and os.path.exists(path):
                os.unlink(path)
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = start_process(self.argv(), self.log_path, env=env)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("QEMU %s exited with %s:\n%s" % (
                    self.name, self.proc.returncode, read_tail(self.log_path)))
            if any(path and not is_unix_socket(path) for path in (self.qmp_path, self.vmgate_qmp_path)):
                return False
            if self.wait_port:
                return self.wait_port in listening_ports(self.proc.pid)
            return self.socket_path is None or is_unix_socket(self.socket_path)
        return wait_started(self, ready, timeout, "QEMU %s SPICE socket" % self.name)

    def stop(self):
        return stop_process(self.proc)

    def qmp(self, command, arguments=None, timeout=30.0):
        """One QMP command on a fresh monitor connection; returns the "return" value or raises
        RuntimeError with QMP's error. Events that arrive meanwhile are skipped."""
        if not self.qmp_path:
            raise RuntimeError("QEMU %s was started without qmp=True" % self.name)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.qmp_path)
            f = s.makefile("rwb")

            def call(message):
                f.write(json.dumps(message).encode() + b"\n")
                f.flush()
                while True:
                    line = f.readline()
                    if not line:
                        raise RuntimeError("QMP of %s closed during %r" % (self.name, message))
                    reply = json.loads(line)
                    if "event" in reply:  # asynchronous events are not the reply
                        continue
                    return reply

            json.loads(f.readline())  # the greeting
            call({"execute": "qmp_capabilities"})
            message = {"execute": command}
            if arguments is not None:
                message["arguments"] = arguments
            reply = call(message)
        if "error" in reply:
            raise RuntimeError("QMP %s %r failed: %r" % (command, arguments, reply["error"]))
        return reply.get("return")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ---------------------------------------------------------------------------------------------
# TOML (just enough for vmgate's configuration)
# ---------------------------------------------------------------------------------------------

def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError("cannot write %r as TOML" % (value,))


def _is_table_array(value):
    return isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value)


def _toml_table(prefix, table, out):
    for key, value in table.items():
        if not isinstance(value, dict) and not _is_table_array(value):
            out.append("%s = %s" % (key, _toml_value(value)))
    for key, value in table.items():
        name = "%s.%s" % (prefix, key) if prefix else key
        if isinstance(value, dict):
            out.append("")
            out.append("[%s]" % name)
            _toml_table(name, value, out)
        elif _is_table_array(value):
            for item in value:
                out.append("")
                out.append("[[%s]]" % name)
                _toml_table(name, item, out)


def to_toml(doc):
    """Serialise nested dicts/lists (tables, arrays of tables, scalars, arrays) to TOML text."""
    out = []
    _toml_table("", doc, out)
    return "\n".join(out).lstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# vmgate
# ---------------------------------------------------------------------------------------------

def _listener(protocol, port, vm, tls, auth, sni_suffix):
    listener = {"protocol": protocol, "address": "127.0.0.1:%d" % port, "tls": tls}
    if sni_suffix is not None:
        listener["route"] = "sni"
        listener["sni_suffix"] = sni_suffix
    if vm is not None:
        listener["vm"] = vm
    if auth is not None:
        listener["auth"] = list(auth)
    return listener


def spice_listener(port, vm=None, tls=True, auth=None, sni_suffix=None):
    """One [[listener]] table for a SPICE listener on 127.0.0.1:port routed to `vm`, or, with
    sni_suffix, a `route = "sni"` listener (the VM is the first label of the TLS server name)."""
    return _listener("spice", port, vm, tls, auth, sni_suffix)


def vnc_listener(port, vm=None, auth=None, sni_suffix=None):
    """One [[listener]] table for a VNC listener (VeNCrypt, always TLS) on 127.0.0.1:port routed
    to `vm`, or, with sni_suffix, a `route = "sni"` listener. `auth`: the ordered subset of
    ["password", "sasl", "ticket", "certificate"] it offers (X509Plain, X509SASL, X509Vnc,
    X509None); None leaves vmgate's default (password, sasl, ticket)."""
    return _listener("vnc", port, vm, True, auth, sni_suffix)


def _vm(name, console, upstream, users, password_file, extra):
    vm = {"name": name, console: upstream}
    if password_file:
        vm["password_file"] = password_file
    vm.update(extra)
    if users:
        vm["allow"] = [{"users": list(users)}]
    return vm


def vm_entry(name, upstream, users=(), password_file=None, **extra):
    """One [[vm]] table; `users` becomes a single [[vm.allow]] rule (none: nobody may connect)."""
    return _vm(name, "spice", upstream, users, password_file, extra)


def vnc_vm_entry(name, upstream, users=(), password_file=None, **extra):
    """One [[vm]] table with a VNC upstream only (`vnc = upstream`, e.g. QemuVnc.upstream);
    otherwise as vm_entry (`spice = ...` in `extra` gives it a SPICE console as well)."""
    return _vm(name, "vnc", upstream, users, password_file, extra)


def gateway_config(pki, listeners, vms, sasl=None, gateway=None, tls=None):
    """A vmgate configuration dict; `tls`: extra [tls] keys (client_ca, client_cert, ...)."""
    config = {"gateway": dict(gateway or {}), "tls": {"cert": pki.cert, "key": pki.key}}
    config["tls"].update(tls or {})
    if sasl is not None:
        config["sasl"] = dict(sasl)
    config["listener"] = list(listeners)
    config["vm"] = list(vms)
    return config


def write_secret(path, text):
    """Write a file readable by its owner only (e.g. an upstream password_file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def vmgate_bin():
    path = os.environ.get("VMGATE_BIN") or os.path.join(SOURCE_DIR, "build", "vmgate")
    return path


def require_vmgate():
    """The vmgate binary path; raise when there is none (set VMGATE_BIN, as ctest does, or build)."""
    path = vmgate_bin()
    if not os.access(path, os.X_OK):
        raise RuntimeError("no vmgate binary at %s: set VMGATE_BIN (ctest does) or build it" % path)
    return path


def vmgate_ticket(config, user, vm, ttl="60s", protocol=None):
    """`vmgate ticket --config FILE --user U --vm V --ttl TTL [--protocol P]` -> the ticket
    (stdout, stripped). protocol "vnc": an 8-character ticket for VNC auth (X509Vnc)."""
    argv = [require_vmgate(), "ticket", "--config", config, "--user", user, "--vm", vm, "--ttl", ttl]
    if protocol is not None:
        argv += ["--protocol", protocol]
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if res.returncode != 0:
        raise RuntimeError("vmgate ticket failed (rc %d): %s\nstdout: %s\nstderr: %s" % (
            res.returncode, " ".join(argv), res.stdout.decode(errors="replace"),
            res.stderr.decode(errors="replace")))
    ticket = res.stdout.decode().strip()
    if not ticket:
        raise RuntimeError("vmgate ticket printed nothing: %s" % " ".join(argv))
    return ticket


class Gateway:
    """`vmgate serve --config FILE` with a generated TOML config (context manager).

    `config` is a dict shaped like the TOML file ({"gateway": {...}, "tls": {...}, "sasl": {...},
    "listener": [...], "vm": [{..., "allow": [...]}]}). The [gateway] keys state_dir, audit_log,
    admin_socket and handshake_timeout ("3s") are filled in when missing."""

    def __init__(self, workdir, config, name="gw", argv_prefix=()):
        self.name = name
        self.argv_prefix = list(argv_prefix)  # e.g. private_mounts(...): runs vmgate under it
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.config = config
        gw = config.setdefault("gateway", {})
        gw.setdefault("state_dir", os.path.join(self.dir, "state"))
        gw.setdefault("audit_log", os.path.join(self.dir, "audit.jsonl"))
        gw.setdefault("admin_socket", os.path.join(self.dir, "admin.sock"))
        gw.setdefault("handshake_timeout", "3s")
        os.makedirs(gw["state_dir"], exist_ok=True)
        self.audit_path = gw["audit_log"]
        self.config_path = os.path.join(self.dir, "vmgate.toml")
        self.log_path = os.path.join(self.dir, "vmgate.log")
        self.proc = None
        self.ports = [int(l["address"].rsplit(":", 1)[1]) for l in config.get("listener", [])]

    # ---- lifecycle -----------------------------------------------------------------------
    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write(to_toml(self.config))
        return self.config_path

    def start(self, timeout=20.0):
        binary = require_vmgate()
        self.write_config()
        with open(self.log_path, "ab") as f:
            f.write(b"==== %s serve --config %s\n" % (binary.encode(), self.config_path.encode()))
        self.proc = start_process(self.argv_prefix + [binary, "serve", "--config", self.config_path],
                                  self.log_path)
        wanted = set(self.ports)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("vmgate serve exited with %s before listening.\nconfig:\n%s\nlog:\n%s" % (
                    self.proc.returncode, to_toml(self.config), read_tail(self.log_path)))
            return wanted <= listening_ports(self.proc.pid)
        try:
            wait_until(ready, timeout, what="vmgate listeners %s" % sorted(wanted))
        except TimeoutError as exc:
            missing = wanted - listening_ports(self.proc.pid)
            self.stop()
            raise RuntimeError("%s; not listening on %s.\nlog:\n%s" % (exc, sorted(missing), read_tail(self.log_path)))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, sig=signal.SIGTERM):
        return stop_process(self.proc, sig=sig)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- CLI ---------------------------------------------------------------------------------
    def ticket(self, user, vm, ttl="60s", protocol=None):
        return vmgate_ticket(self.config_path, user, vm, ttl, protocol)

    # ---- logs --------------------------------------------------------------------------------
    def log_tail(self, lines=LOG_TAIL_LINES):
        return read_tail(self.log_path, lines)

    def audit_lines(self):
        """The complete lines of the audit log. A read can overlap the daemon's write(2) of a
        record, so a last line without its newline is not there yet."""
        try:
            with open(self.audit_path, "r", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return []
        return text[:text.rfind("\n") + 1].splitlines()

    def audit_tail(self, lines=60):
        return "\n".join(self.audit_lines()[-lines:])

    def audit_mark(self):
        """Number of audit lines so far; pass it as `since` to look only at later events."""
        return len(self.audit_lines())

    def audit_events(self, event=None, since=0, **match):
        """Parsed audit records (after line `since`), optionally only `event` and those whose
        fields equal every keyword given (e.g. conn=5, channel="main")."""
        events = []
        for number, line in enumerate(self.audit_lines()[since:], start=since):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise AssertionError("audit line %d is not JSON (%s): %r" % (number + 1, exc, line))
            if event is not None and record.get("event") != event:
                continue
            if any(record.get(k) != v for k, v in match.items()):
                continue
            events.append(record)
        return events

    def wait_audit(self, event=None, since=0, timeout=5.0, count=1, **match):
        """Wait until at least `count` matching records exist; return them all."""
        try:
            return wait_until(lambda: (lambda ev: ev if len(ev) >= count else None)(
                self.audit_events(event, since, **match)), timeout,
                what="%d audit %r record(s) matching %r" % (count, event, match))
        except TimeoutError as exc:
            raise AssertionError("%s\naudit tail:\n%s" % (exc, self.audit_tail()))

    def conns_since(self, since):
        """Connection numbers accepted after audit line `since`, in order."""
        return [e.get("conn") for e in self.audit_events("accept", since)]

    def conn_of_peer_port(self, local_port, since=0, timeout=5.0):
        """The audit connection number whose accept.peer is 127.0.0.1:<local_port>."""
        def find():
            for e in self.audit_events("accept", since):
                if str(e.get("peer", "")).endswith(":%d" % local_port):
                    return e
            return None
        try:
            return wait_until(find, timeout, what="audit accept from port %d" % local_port)["conn"]
        except TimeoutError as exc:
            raise AssertionError("%s\naudit tail:\n%s" % (exc, self.audit_tail()))

    def wait_all_closed(self, since, timeout=8.0):
        """Wait until every connection accepted after `since` has its "close" record; return
        {conn: [close records]} so callers can also check there is exactly one each."""
        def closed():
            conns = self.conns_since(since)
            closes = {}
            for e in self.audit_events("close", since):
                closes.setdefault(e.get("conn"), []).append(e)
            if conns and all(c in closes for c in conns):
                return {c: closes[c] for c in conns}
            return None
        try:
            return wait_until(closed, timeout, what="a close record for every connection")
        except TimeoutError as exc:
            raise AssertionError("%s\naudit since mark:\n%s" % (
                exc, "\n".join(self.audit_lines()[since:])))


# ---------------------------------------------------------------------------------------------
# saslauthd
# ---------------------------------------------------------------------------------------------

class Saslauthd:
    """A private `saslauthd -a sasldb` serving the sasldb at `sasldb_path` (context manager).

    saslauthd's sasldb backend takes no path option: it opens the compile-time default
    /etc/sasldb2 (its minimal SASL utils answer no SASL_CB_GETOPT, so `sasldb_path` is never
    asked for, and -O is not used by this backend). To serve a test database without touching
    /etc, saslauthd runs in a private mount namespace (`unshare -m --propagation private`) in
    which the test file is bind-mounted over /etc/sasldb2. The bind mount is invisible to every
    other process and disappears with saslauthd. Needs root (CAP_SYS_ADMIN) and an existing
    /etc/sasldb2 to mount over; `require()` raises when one of them is missing.

    saslauthd must run in its own process group (start_process does that): on SIGTERM it
    signals its whole process group, which would otherwise include the test runner.
    With -d it logs every request to stderr ("auth success: [user=alice] [service=spice] ...")."""

    SYSTEM_SASLDB = "/etc/sasldb2"

    def __init__(self, workdir, sasldb_path, name="saslauthd"):
        self.sasldb_path = sasldb_path
        self.mux_dir = os.path.join(workdir, name)
        self.mux_path = os.path.join(self.mux_dir, "mux")
        self.log_path = os.path.join(workdir, "%s.log" % name)
        self.proc = None

    @classmethod
    def require(cls):
        """Raise unless a private saslauthd can run here (sasl2-bin installs both the daemon and
        /etc/sasldb2, which its postinst creates; the bind mount needs root)."""
        for tool in ("saslauthd", "testsaslauthd"):
            if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
                raise RuntimeError("%s not installed (Debian package sasl2-bin)" % tool)
        require_private_mounts()
        if not os.path.isfile(cls.SYSTEM_SASLDB):
            raise RuntimeError("%s does not exist (sasl2-bin's postinst creates it), so there is "
                               "nothing to bind-mount the test database over" % cls.SYSTEM_SASLDB)

    def argv(self):
        inner = 'mount --bind "$1" %s && exec saslauthd -a sasldb -m "$2" -n 1 -d' % self.SYSTEM_SASLDB
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", inner, "sh",
                self.sasldb_path, self.mux_dir]

    def start(self, timeout=10.0):
        os.makedirs(self.mux_dir, exist_ok=True)
        self.proc = start_process(self.argv(), self.log_path)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("saslauthd exited with %s:\n%s" % (self.proc.returncode, read_tail(self.log_path)))
            return is_unix_socket(self.mux_path)
        return wait_started(self, ready, timeout, "saslauthd socket %s" % self.mux_path)

    def check(self, user, password, service="spice", realm=None):
        """testsaslauthd against this daemon: True for OK."""
        argv = ["testsaslauthd", "-f", self.mux_path, "-u", user, "-p", password, "-s", service]
        if realm is not None:
            argv += ["-r", realm]
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        return res.returncode == 0 and b"OK" in res.stdout

    def log_text(self):
        return read_tail(self.log_path, 400)

    def log_size(self):
        with contextlib.suppress(OSError):
            return os.path.getsize(self.log_path)
        return 0

    def log_since(self, offset):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def stop(self):
        return stop_process(self.proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ---------------------------------------------------------------------------------------------
# the spice-gtk client, as a subprocess
# ---------------------------------------------------------------------------------------------

class ClientResult:
    def __init__(self, argv, rc, stdout, stderr, elapsed):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        self.result = next((l for l in stdout.splitlines() if l.startswith("RESULT")), "<no RESULT line>")

    def __str__(self):
        return "rc=%s %s (%.2fs)\nstderr:\n%s" % (self.rc, self.result, self.elapsed, self.stderr[-3000:])


def client_env(home, extra=None):
    """Environment for a client process: HOME and XDG_* inside `home`, our package importable,
    plus `extra` variables (e.g. {"SPICE_DEBUG": "1"})."""
    dirs = {"HOME": home,
            "XDG_CONFIG_HOME": os.path.join(home, ".config"),
            "XDG_CACHE_HOME": os.path.join(home, ".cache"),
            "XDG_DATA_HOME": os.path.join(home, ".local", "share"),
            "XDG_STATE_HOME": os.path.join(home, ".local", "state"),
            "XDG_RUNTIME_DIR": os.path.join(home, "runtime")}
    for path in dirs.values():
        os.makedirs(path, exist_ok=True)
    os.chmod(dirs["XDG_RUNTIME_DIR"], 0o700)
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "TZ", "SPICE_DEBUG", "G_MESSAGES_DEBUG")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env.update(dirs)
    env["PYTHONPATH"] = E2E_DIR
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def client_argv(host="localhost", tls_port=None, port=None, uri=None, ca_file=None, username=None,
                password=None, timeout=20.0, unix=None, vv=None, extra=(), argv_prefix=()):
    """argv for the spice-gtk client. vv: a remote-viewer file it opens as remote-viewer does
    (host, ports and CA then come from the file; username/password act as typed-in credentials)."""
    argv = list(argv_prefix) + [PYTHON, "-m", "vmgate_e2e.spice_client", "--timeout", str(timeout)]
    if vv:
        argv += ["--vv", vv]
    if uri:
        argv += ["--uri", uri]
    if unix:
        argv += ["--unix", unix]
    elif host and not uri and not vv:
        argv += ["--host", host]
    if tls_port:
        argv += ["--tls-port", str(tls_port)]
    if port:
        argv += ["--port", str(port)]
    if ca_file:
        argv += ["--ca-file", ca_file]
    if username is not None:
        argv += ["--username", username]
    if password is not None:
        argv += ["--password", password]
    return argv + list(extra)


class RawSocket:
    """What the raw protocol clients (raw_spice, raw_rfb) share: `self.sock` and `self.timeout`
    for every read, closed however the test ends."""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def read_exact(self, n):
        return recv_exact(self.sock, n, self.timeout)


def run_client(home, timeout=20.0, env=None, **kw):
    """Run the spice-gtk client to completion; returns a ClientResult (rc, RESULT line, stderr).
    `env`: extra environment variables; argv_prefix (see client_argv): e.g. private_mounts()."""
    return run_to_completion(ClientResult, client_argv(timeout=timeout, **kw), home, timeout, env)


def run_to_completion(result_class, argv, home, timeout, env):
    """Run a client process to its end (killed 30 s after its own `timeout`); returns
    result_class(argv, rc or "killed", stdout, stderr, elapsed)."""
    t0 = time.monotonic()
    try:
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=E2E_DIR,
                             env=client_env(home, env), timeout=timeout + 30, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        return result_class(argv, "killed", (exc.stdout or b"").decode(errors="replace"),
                            (exc.stderr or b"").decode(errors="replace"), time.monotonic() - t0)
    return result_class(argv, res.returncode, res.stdout.decode(errors="replace"),
                        res.stderr.decode(errors="replace"), time.monotonic() - t0)


class HeldClient:
    """A client started with --hold-stdin: it connects, prints READY after its first frame, and
    keeps the session until finish() closes its stdin (with --roundtrip it then proves the
    session still works both ways). Stopped by PID on cleanup."""

    result_class = ClientResult  # what finish() returns

    def __init__(self, home, roundtrip=True, timeout=20.0, env=None, name="held-client", **kw):
        extra = list(kw.pop("extra", ())) + ["--hold-stdin"] + (["--roundtrip"] if roundtrip else [])
        self._prepare(client_argv(timeout=timeout, extra=extra, **kw), home, timeout, env, name)

    def _prepare(self, argv, home, timeout, env, name):
        self.argv = argv
        self.env = env
        self.home = home
        self.timeout = timeout
        self.proc = None
        self.stderr_path = os.path.join(home, "%s.stderr" % name)
        self.ready_line = None
        self.result = None

    def start(self):
        self.stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr_file, cwd=E2E_DIR, env=client_env(self.home, self.env),
                                     start_new_session=True)
        _register(self.proc)
        self.ready_line = self._readline(self.timeout + 10)
        if not self.ready_line.startswith("READY"):
            out = self.ready_line
            if self.proc.poll() is not None:
                out += self.proc.stdout.read().decode(errors="replace")
            self.stop()
            raise AssertionError("held client did not get its first frame: rc=%s %s\nstderr:\n%s" % (
                self.proc.returncode, out.strip(), read_tail(self.stderr_path, 40)))
        return self

    def _readline(self, timeout):
        box = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return box[0].decode(errors="replace").strip() if box else ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def finish(self, timeout=None):
        """Close stdin (ends the hold), wait; returns a ClientResult (the same one if called again)."""
        if self.result is not None:
            return self.result
        t0 = time.monotonic()
        with contextlib.suppress(BrokenPipeError, OSError, AttributeError):
            self.proc.stdin.close()
        self.proc.stdin = None  # communicate() must not touch the closed pipe
        try:
            out, _ = self.proc.communicate(timeout=timeout or self.timeout + 10)
        except subprocess.TimeoutExpired:
            self.stop()
            out = b""
        self.stderr_file.close()
        with _live_lock:
            if self.proc in _live_processes:
                _live_processes.remove(self.proc)
        self.result = self.result_class(self.argv, self.proc.returncode,
                                   self.ready_line + "\n" + out.decode(errors="replace"),
                                   read_tail(self.stderr_path, 40), time.monotonic() - t0)
        return self.result

    def stop(self):
        stop_process(self.proc, term_timeout=2.0)
        for f in (self.stderr_file, self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                if f is not None:
                    f.close()


# ---------------------------------------------------------------------------------------------
# raw SPICE link messages (for the bad-input and NEED_SECURED tests)
# ---------------------------------------------------------------------------------------------

def link_message(channel_type=1, channel_id=0, connection_id=0, common_caps=(0x0D,), channel_caps=(0x0F,),
                 magic=SPICE_MAGIC, major=SPICE_VERSION_MAJOR, minor=SPICE_VERSION_MINOR,
                 size=None, num_common=None, num_channel=None, caps_offset=18):
    """SpiceLinkHeader + SpiceLinkMess + caps, as spice-gtk sends it (defaults: a SASL-capable
    main channel). Every field can be overridden to build malformed links."""
    import struct
    caps = b"".join(struct.pack("<I", c) for c in list(common_caps) + list(channel_caps))
    body = struct.pack("<IBBIII", connection_id, channel_type, channel_id,
                       len(common_caps) if num_common is None else num_common,
                       len(channel_caps) if num_channel is None else num_channel,
                       caps_offset) + caps
    header = magic + struct.pack("<III", major, minor, len(body) if size is None else size)
    return header + body


def parse_link_reply(data):
    """(magic, major, minor, size, error, rest_of_reply) from the first 20+ bytes of a reply."""
    import struct
    if len(data) < LINK_HEADER_SIZE + 4:
        raise AssertionError("link reply too short: %d bytes: %r" % (len(data), data))
    magic = data[:4]
    major, minor, size = struct.unpack("<III", data[4:16])
    (error,) = struct.unpack("<I", data[16:20])
    return magic, major, minor, size, error, data[20:LINK_HEADER_SIZE + size]


def recv_until_eof(sock, timeout, limit=1 << 20):
    """Read until EOF, a reset, or `timeout` seconds. Returns (data, how, seconds) with how in
    {"eof", "reset", "timeout"}."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    chunks = []
    total = 0
    import ssl as _ssl
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), "timeout", time.monotonic() - t0
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), "timeout", time.monotonic() - t0
        except (ConnectionResetError, BrokenPipeError):
            return b"".join(chunks), "reset", time.monotonic() - t0
        except _ssl.SSLError as exc:
            # an unclean TLS shutdown (TCP FIN without close_notify) is still the server closing
            if "EOF" in str(exc) or "UNEXPECTED_EOF" in str(exc):
                return b"".join(chunks), "eof", time.monotonic() - t0
            raise
        if not chunk:
            return b"".join(chunks), "eof", time.monotonic() - t0
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return b"".join(chunks), "overflow", time.monotonic() - t0


def recv_exact(sock, n, timeout):
    """Exactly n bytes or AssertionError (with what did arrive)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while len(buf) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("timed out reading %d bytes; got %d: %r" % (n, len(buf), buf[:64]))
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            continue
        if not chunk:
            raise AssertionError("connection closed after %d of %d bytes: %r" % (len(buf), n, buf[:64]))
        buf += chunk
    return buf


# ---------------------------------------------------------------------------------------------
# the test case base class
# ---------------------------------------------------------------------------------------------

class E2ETestCase(unittest.TestCase):
    """Gives each test class a temporary directory (`cls.tmp`) and a client HOME inside it, and
    prints the logs of every registered gateway/QEMU/daemon when a test fails or errors."""

    maxDiff = None
    log_sources = None  # [(title, callable returning text)], per class
    needs_vmgate = True  # fail the class early (before starting QEMU) when there is no binary

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.needs_vmgate:
            cls.vmgate = require_vmgate()
        cls.tmp = tempfile.mkdtemp(prefix="vmgate-e2e-%s-" % cls.__name__.lower()[:20])
        os.chmod(cls.tmp, 0o700)
        cls.home = os.path.join(cls.tmp, "home")
        os.makedirs(cls.home)
        cls.log_sources = []
        cls.addClassCleanup(cls._remove_tmp)

    @classmethod
    def _remove_tmp(cls):
        if os.environ.get("VMGATE_E2E_KEEP"):
            print("\n[kept %s]" % cls.tmp, file=sys.stderr)
            return
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers for subclasses -----------------------------------------------------------
    @classmethod
    def start_qemu(cls, name="vm1", **kw):
        qemu = cls.enterClassContext(Qemu(cls.tmp, name, **kw))
        cls.log_sources.append(("QEMU %s log" % name, lambda: read_tail(qemu.log_path, 40)))
        return qemu

    @classmethod
    def start_gateway(cls, config, name="gw", argv_prefix=()):
        gw = Gateway(cls.tmp, config, name, argv_prefix)
        cls.log_sources.append(("vmgate %s log (%s)" % (name, gw.log_path), gw.log_tail))
        cls.log_sources.append(("vmgate %s audit tail" % name, gw.audit_tail))
        cls.enterClassContext(gw)
        cls.addClassCleanup(cls._check_still_running, gw)  # runs before the stop (LIFO)
        return gw

    @staticmethod
    def _check_still_running(gw):
        if gw.proc is not None and gw.proc.poll() is not None:
            raise AssertionError("vmgate %s died during the tests (exit status %s):\n%s" % (
                gw.name, gw.proc.returncode, gw.log_tail()))

    def client(self, **kw):
        """Run the spice-gtk client (see run_client) with this class's HOME."""
        return run_client(self.home, **kw)

    def assertClient(self, result, rc, msg=""):
        self.assertEqual(result.rc, rc, "%s\nclient: %s" % (msg, result))

    def assertClosedOnce(self, gw, since, timeout=8.0):
        """Every connection accepted after audit line `since` has exactly one "close" record,
        each with a non-empty reason. Returns {conn: close record}."""
        closes = gw.wait_all_closed(since, timeout)
        time.sleep(0.2)  # a duplicate close would be written right after the first one
        closes = gw.wait_all_closed(since, timeout)
        for conn, records in closes.items():
            self.assertEqual(len(records), 1, "conn %s has %d close records: %r" % (conn, len(records), records))
            self.assertTrue(records[0].get("reason"), "close without a reason: %r" % records[0])
        return {conn: records[0] for conn, records in closes.items()}

    # ---- failure reporting ---------------------------------------------------------------
    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            self.dump_logs()
        return outcome

    def __init_subclass__(cls, **kwargs):
        # print the logs when a subclass's setUpClass fails too (run() below never sees that)
        super().__init_subclass__(**kwargs)
        if "setUpClass" in cls.__dict__:
            original = cls.__dict__["setUpClass"].__func__

            def setUpClass(klass):
                try:
                    original(klass)
                except BaseException:
                    klass._dump(klass.log_sources, "setUpClass of %s" % klass.__name__)
                    raise
            cls.setUpClass = classmethod(setUpClass)

    def dump_logs(self):
        self._dump(self.log_sources, self.id())

    @staticmethod
    def _dump(log_sources, title_text):
        out = ["", "=" * 30 + " logs for %s " % title_text + "=" * 30]
        for title, source in log_sources or []:
            try:
                text = source()
            except Exception as exc:
                text = "<%r>" % exc
            out.append("---- %s ----" % title)
            out.append(text.rstrip())
        out.append("=" * 80)
        print("\n".join(out), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# live session control: the admin CLI, held clients that end, session audit helpers
# ---------------------------------------------------------------------------------------------

class CliResult:
    def __init__(self, argv, rc, stdout, stderr):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def lines(self):
        return [line for line in self.stdout.splitlines() if line.strip()]

    def __str__(self):
        return "%s\nrc=%s\nstdout:\n%s\nstderr:\n%s" % (" ".join(self.argv), self.rc, self.stdout, self.stderr)


def vmgate_cli(gw, *args, timeout=30.0):
    """`vmgate ARGS... --admin-socket SOCKET` against the running gateway `gw` (its
    [gateway] admin_socket); returns a CliResult (never raises on a non-zero exit)."""
    argv = [require_vmgate()] + list(args) + ["--admin-socket", gw.config["gateway"]["admin_socket"]]
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return CliResult(argv, res.returncode, res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace"))


def sessions_json(gw):
    """`vmgate sessions --json`: the parsed JSON array (AssertionError on a failure or non-array)."""
    res = vmgate_cli(gw, "sessions", "--json")
    if res.rc != 0:
        raise AssertionError("vmgate sessions --json failed: %s" % res)
    try:
        sessions = json.loads(res.stdout)
    except ValueError as exc:
        raise AssertionError("vmgate sessions --json printed no JSON (%s): %s" % (exc, res))
    if not isinstance(sessions, list):
        raise AssertionError("vmgate sessions --json printed no array: %s" % res)
    return sessions


def wait_client_exit(held, timeout):
    """Wait until a HeldClient's process ends on its own (its session was closed from the other
    side) within `timeout` seconds; returns its ClientResult. Raises AssertionError if it is still
    running (it is left to the test's cleanup to stop)."""
    try:
        held.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("held client still running %.1fs after its session should have ended\n"
                             "stderr:\n%s" % (timeout, read_tail(held.stderr_path, 20)))
    return held.finish()


def audit_time(record):
    """The record's "ts" (UTC, ISO 8601 with optional fraction and Z) as seconds since the epoch."""
    import datetime
    text = str(record.get("ts", ""))
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise AssertionError("audit record without a readable ts: %r" % (record,))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


def session_conns(gw, session, since=0):
    """{conn: channel name} of every channel_open record of gateway session `session`."""
    return {e.get("conn"): e.get("channel") for e in gw.audit_events("channel_open", since, session=session)}


class LiveSessionMixin:
    """Assertions about gateway sessions for E2ETestCase subclasses (seats, kills, timeouts,
    reloads). Needs `self.home`, `self.pki` and the test's gateway passed in explicitly."""

    # codes for which vmgate itself closes every channel of the session
    GATEWAY_ENDED = ("taken-over", "window-closed", "idle-timeout", "max-session", "policy-reload", "killed",
                     "gateway-stopping")

    def held(self, name, port, user, password, roundtrip=True, extra=(), timeout=20.0):
        """A started spice-gtk client holding a session (first frame reached) as `user` on the
        TLS listener `port`; stopped by PID at the end of the test."""
        client = HeldClient(self.home, roundtrip=roundtrip, name=name, host="localhost", tls_port=port,
                            ca_file=self.pki.ca_cert, username=user, password=password, extra=extra,
                            timeout=timeout)
        self.addCleanup(client.stop)
        self.log_sources.append(("%s stderr" % name, lambda: read_tail(client.stderr_path, 40)))
        return client.start()

    def main_open(self, gw, since, user, vm, timeout=5.0):
        """The one channel_open record of `user`'s main channel on `vm` after audit line `since`:
        its `session` is the gateway's id (an int >= 1), `spice_session` QEMU's."""
        records = gw.wait_audit("channel_open", since=since, channel="main", user=user, vm=vm, timeout=timeout)
        self.assertEqual(len(records), 1, "one main channel_open for %s on %s: %r" % (user, vm, records))
        record = records[0]
        self.assertIsInstance(record.get("session"), int, record)
        self.assertNotIsInstance(record.get("session"), bool, record)
        self.assertGreaterEqual(record["session"], 1, record)
        self.assertIsInstance(record.get("spice_session"), int, record)
        return record

    def wait_session_channels(self, gw, session, channels=("main", "display", "cursor", "inputs"), timeout=8.0):
        """Wait until channel_open records exist for each of `channels` in gateway session
        `session`; returns {conn: channel}."""
        try:
            return wait_until(lambda: (lambda conns: conns if set(channels) <= set(conns.values()) else None)(
                session_conns(gw, session)), timeout, what="channels %s of session %s" % (channels, session))
        except TimeoutError as exc:
            raise AssertionError("%s; opened: %r" % (exc, session_conns(gw, session)))

    def assertSessionEnded(self, gw, opened, code, timeout=5.0):
        """Exactly one session_end for the session of channel_open record `opened`, with reason
        `code`, its vm/user/realm and a detail; for the codes where vmgate ends the session,
        every channel of the session closed with a reason starting "CODE: ". Returns it."""
        session = opened["session"]
        gw.wait_audit("session_end", session=session, timeout=timeout)
        time.sleep(0.2)  # a second session_end would come right after the first
        ends = gw.audit_events("session_end", session=session)
        self.assertEqual(len(ends), 1, "exactly one session_end for session %s: %r" % (session, ends))
        end = ends[0]
        self.assertEqual((end.get("reason"), end.get("vm"), end.get("user"), end.get("realm")),
                         (code, opened.get("vm"), opened.get("user"), opened.get("realm")), end)
        self.assertTrue(end.get("detail"), "session_end without a detail: %r" % end)
        if code in self.GATEWAY_ENDED:
            conns = session_conns(gw, session)
            self.assertIn("main", conns.values(), conns)

            def closes():
                found = {c: gw.audit_events("close", conn=c) for c in conns}
                return found if all(found.values()) else None
            try:
                found = wait_until(closes, timeout, what="close records of session %s" % session)
            except TimeoutError as exc:
                raise AssertionError("%s\naudit tail:\n%s" % (exc, gw.audit_tail()))
            for conn, records in found.items():
                self.assertEqual(len(records), 1, "conn %s (%s): %r" % (conn, conns[conn], records))
                self.assertTrue(str(records[0].get("reason", "")).startswith(code + ": "),
                                "close of %s channel (conn %s) of a %s session: reason %r" % (
                                    conns[conn], conn, code, records[0].get("reason")))
        return end

    def assertNoSessionEnd(self, gw, opened, since=0):
        ends = gw.audit_events("session_end", since=since, session=opened["session"])
        self.assertEqual(ends, [], "session %s of %s must not have ended" % (opened["session"], opened.get("user")))

    def assertClientClosedPromptly(self, client, timeout=5.0):
        """The held client's process ends within `timeout` s on its own, reporting its channels
        closed (rc 6 ERROR_IO or 7 CLOSED), not a timeout or a hang. Returns its ClientResult."""
        result = wait_client_exit(client, timeout)
        self.assertIn(result.rc, (6, 7), "the client should report its session closed: %s" % result)
        return result


# ---------------------------------------------------------------------------------------------
# VNC: QEMU with -vnc, client certificates, SASL for QEMU's VNC, the gtk-vnc client
# ---------------------------------------------------------------------------------------------

VNC_SPLASH_MS = 1000  # see QemuVnc: makes a guest reset visible to a VNC client


class QmpEvents:
    """Every QMP event of one QEMU, collected by a background thread on a monitor socket of its
    own (QEMU serves one client per -qmp socket, so this cannot share the command socket).
    Events are dicts as QEMU sends them ({"event": "RESET", "data": {...}, "timestamp": {...}})."""

    def __init__(self, path, name="qemu"):
        self.path = path
        self.name = name
        self.sock = None
        self.thread = None
        self._events = []
        self._lock = threading.Lock()

    def start(self, timeout=10.0):
        wait_until(lambda: is_unix_socket(self.path), timeout, what="QMP event socket %s" % self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(self.path)
        reader = self.sock.makefile("rb")
        json.loads(reader.readline())  # greeting
        self.sock.sendall(b'{"execute": "qmp_capabilities"}\n')
        while "return" not in json.loads(reader.readline()):
            pass
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._read, args=(reader,), name="qmp-events-%s" % self.name,
                                       daemon=True)
        self.thread.start()
        return self

    def _read(self, reader):
        while True:
            try:
                line = reader.readline()
            except (OSError, ValueError):
                return
            if not line:
                return
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if "event" in message:
                    with self._lock:
                        self._events.append(message)

    def close(self):
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.sock = None
        if self.thread is not None:
            self.thread.join(timeout=5)

    def mark(self):
        """Number of events so far; pass it as `since` to look only at later ones."""
        with self._lock:
            return len(self._events)

    def events(self, name=None, since=0):
        with self._lock:
            found = list(self._events[since:])
        return [e for e in found if name is None or e.get("event") == name]

    def wait(self, name, since=0, timeout=5.0, count=1):
        """At least `count` events `name` after mark `since`, or AssertionError listing what came."""
        try:
            return wait_until(lambda: (lambda ev: ev if len(ev) >= count else None)(self.events(name, since)),
                              timeout, what="%d QMP %s event(s) from %s" % (count, name, self.name))
        except TimeoutError as exc:
            seen = [e.get("event") for e in self.events(None, since)]
            raise AssertionError("%s; events since mark: %r" % (exc, seen))


class QemuVnc(Qemu):
    """A TCG QEMU with std VGA and a VNC server, always with QMP, stopped by PID (context manager).

    Default: `-vnc unix:SOCK` with security None (`upstream` = "unix:SOCK"). Variants, combinable
    as QEMU allows (rfb-protocol.md section 6, e2e-recipes.md section 4):
        tcp_port=N        `-vnc 127.0.0.1:<N-5900>` (QEMU takes a display number; N >= 5900)
        password=True     `password=on`: nobody gets in until set_vnc_password(); a str also sets
                          it over QMP right after start (as libvirt does)
        tls_pki=Pki       `-object tls-creds-x509,dir=...,endpoint=server,verify-peer=on|off` and
                          `tls-creds=`: VeNCrypt with an X509 subtype (X509None, X509Vnc with a
                          password, X509SASL with sasl); verify_peer=True demands a client
                          certificate signed by the same CA
        sasl_conf_dir=D   `sasl=on` with SASL_CONF_PATH=D (see make_vnc_sasl_conf; QEMU reads
                          D/qemu.conf). Without TLS QEMU offers SASL (20) with DIGEST-MD5 only.
        share=...         `share=allow-exclusive|force-shared|ignore`
        vnc_extra="k=v"   appended to the -vnc value
        listen=False      `-vnc none`: the VNC server runs but listens nowhere (no `socket_path`);
                          only QMP add_client (vmgate_qmp=True, a `qmp:` upstream) reaches it
        vmgate_qmp=True   a QMP socket for vmgate (see Qemu)
        extra_argv=[...]  appended to QEMU's command line (e.g. a -spice display as well)
    The guest is SeaBIOS without disks ("No bootable device.", 720x400 text) started with
    `-boot menu=on,splash-time=VNC_SPLASH_MS`: after a reset SeaBIOS shows "Press ESC for boot
    menu." for that long before the last line comes back, so a reset (Ctrl+Alt+Del from
    vnc_client --send-keys) changes the screen for long enough for VNC to send it; without the
    pause the redrawn screen is identical to the old one before the next display refresh.
    The VNC desktop name (ServerInit) is "QEMU (NAME)". start() returns once the guest shows its
    720x400 text screen (wait_text_screen=False: as soon as the sockets exist).
    `events` (a QmpEvents on a second QMP socket) collects QEMU's events from the start on:
    VNC_CONNECTED / VNC_INITIALIZED / VNC_DISCONNECTED per VNC client (with its address, and
    x509_dname / sasl_username once authenticated), RESET (e.g. from Ctrl+Alt+Del), ..."""

    def __init__(self, workdir, name="vm1", tcp_port=None, password=None, tls_pki=None, verify_peer=False,
                 sasl_conf_dir=None, share=None, vnc_extra=None, env=None, wait_text_screen=True, listen=True,
                 vmgate_qmp=False, extra_argv=()):
        if tcp_port is not None and tcp_port < 5900:
            raise ValueError("QEMU's -vnc takes a display number (port - 5900): port %d < 5900" % tcp_port)
        env = dict(env or {})
        if sasl_conf_dir:
            env["SASL_CONF_PATH"] = sasl_conf_dir
        super().__init__(workdir, name, tcp_port=tcp_port, env=env or None, qmp=True, vmgate_qmp=vmgate_qmp)
        self.socket_path = None if tcp_port or not listen else os.path.join(workdir, "%s.vnc.sock" % name)
        self.listen = listen
        self.extra_argv = list(extra_argv)
        self.password = password
        self.tls_pki = tls_pki
        self.verify_peer = verify_peer
        self.sasl_conf_dir = sasl_conf_dir
        self.share = share
        self.vnc_extra = vnc_extra
        self.wait_text_screen = wait_text_screen
        self.events_path = os.path.join(workdir, "%s.events.sock" % name)
        self.events = None

    def vnc_value(self):
        if self.tcp_port:
            vnc = "127.0.0.1:%d" % (self.tcp_port - 5900)
        elif not self.listen:
            vnc = "none"
        else:
            vnc = "unix:%s" % self.socket_path
        if self.password:
            vnc += ",password=on"
        if self.tls_pki:
            vnc += ",tls-creds=vnctls0"
        if self.sasl_conf_dir:
            vnc += ",sasl=on"
        if self.share:
            vnc += ",share=%s" % self.share
        if self.vnc_extra:
            vnc += "," + self.vnc_extra
        return vnc

    def argv(self):
        argv = [QEMU, "-name", self.name, "-machine", "pc,accel=tcg", "-m", "64", "-nodefaults",
                "-no-user-config", "-nic", "none", "-display", "none", "-vga", "std",
                "-boot", "menu=on,splash-time=%d" % VNC_SPLASH_MS,
                "-qmp", "unix:%s,server=on,wait=off" % self.events_path] + self.qmp_argv()
        if self.tls_pki:
            argv += ["-object", "tls-creds-x509,id=vnctls0,dir=%s,endpoint=server,verify-peer=%s" % (
                self.tls_pki.dir, "on" if self.verify_peer else "off")]
        return argv + ["-vnc", self.vnc_value()] + self.extra_argv

    def start(self, timeout=20.0):
        if os.path.exists(self.events_path):
            os.unlink(self.events_path)
        super().start(timeout)
        try:
            self.events = QmpEvents(self.events_path, self.name).start(timeout)
            if isinstance(self.password, str):
                self.set_vnc_password(self.password)
            if self.wait_text_screen:
                self.wait_screen((720, 400), timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.events is not None:
            self.events.close()
        return super().stop()

    def screen_size(self):
        """(width, height) of the guest display now, from a QMP screendump (works whatever the
        VNC authentication is)."""
        path = os.path.join(self.workdir, "%s.screendump.ppm" % self.name)
        self.qmp("screendump", {"filename": path})
        with open(path, "rb") as f:
            header = f.read(64).split()
        os.unlink(path)
        return int(header[1]), int(header[2])

    def wait_screen(self, size=(720, 400), timeout=20.0):
        """Wait until the guest display has `size`: right after start it is QEMU's 640x480 "Guest
        has not initialized the display" screen, then SeaBIOS's 720x400 text mode."""
        wait_until(lambda: self.screen_size() == tuple(size), timeout,
                   what="QEMU %s display %dx%d" % (self.name, size[0], size[1]))

    def set_vnc_password(self, password, connected=None):
        """QMP set_password for VNC (QEMU uses only its first 8 characters)."""
        arguments = {"protocol": "vnc", "password": password}
        if connected is not None:
            arguments["connected"] = connected
        return self.qmp("set_password", arguments)

    def expire_vnc_password(self, time_spec="now"):
        """QMP expire_password: "now", "never", "+SECONDS" or an absolute epoch time."""
        return self.qmp("expire_password", {"protocol": "vnc", "time": time_spec})

    def query_vnc(self):
        return self.qmp("query-vnc")

    def vnc_clients(self):
        """The clients QEMU's VNC server has right now (query-vnc "clients")."""
        return (self.query_vnc() or {}).get("clients", [])


def make_client_cert(pki, cn="vnc-client", name="client"):
    """A client certificate (extendedKeyUsage clientAuth, subject O=vmgate e2e/CN=cn) signed by
    the CA of `pki` (make_pki). Returns (cert_path, key_path), written as NAME-cert.pem and
    NAME-key.pem (0600) in pki.dir, which QEMU's tls-creds-x509 directory ignores."""
    cert = os.path.join(pki.dir, "%s-cert.pem" % name)
    key = os.path.join(pki.dir, "%s-key.pem" % name)
    csr = os.path.join(pki.dir, "%s.csr" % name)
    ext = os.path.join(pki.dir, "%s.ext" % name)
    old_umask = os.umask(0o077)
    try:
        _run_checked(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/O=vmgate e2e/CN=%s" % cn,
                      "-keyout", key, "-out", csr], what="openssl client key")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=clientAuth\n")
        _run_checked(["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
                      "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", cert], what="openssl sign client")
    finally:
        os.umask(old_umask)
    for path in (csr, ext):
        with contextlib.suppress(OSError):
            os.unlink(path)
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    return cert, key


def make_vnc_sasl_conf(directory, users, mech_list=("scram-sha-256", "digest-md5", "plain"), realm=None):
    """A SASL configuration directory for QEMU's VNC server (QEMU's SASL application name is
    "qemu", so it reads DIR/qemu.conf; pass DIR as QemuVnc(sasl_conf_dir=...)) with a sasldb of
    `users` {name: password}. Over VeNCrypt X509SASL gtk-vnc picks SCRAM-SHA-256; on plain TCP
    QEMU demands an SSF of 56 and only DIGEST-MD5 remains. Returns the directory."""
    os.makedirs(directory, exist_ok=True)
    db = make_sasldb(os.path.join(directory, "sasldb2"), users, realm=realm, appname="qemu")
    with open(os.path.join(directory, "qemu.conf"), "w") as f:
        f.write("mech_list: %s\nsasldb_path: %s\n" % (" ".join(mech_list), db))
    return directory


class VncClientResult(ClientResult):
    """A ClientResult of vnc_client with its RESULT line parsed: `fields` (dict), and `reason`,
    `error`, `name`, `size`, `auth`, `status` (None when absent)."""

    def __init__(self, argv, rc, stdout, stderr, elapsed):
        super().__init__(argv, rc, stdout, stderr, elapsed)
        from . import vnc_client
        try:
            self.fields = vnc_client.parse_result(self.result)
        except ValueError:
            self.fields = {}
        self.ready_line = next((l for l in stdout.splitlines() if l.startswith("READY")), None)

    def __getattr__(self, key):
        if key in ("reason", "error", "name", "size", "auth", "status", "note", "types", "subtypes",
                   "roundtrip", "hold_updates", "frame", "init", "sasl_mech", "shared"):
            return self.__dict__.get("fields", {}).get(key)
        raise AttributeError(key)


def vnc_client_argv(unix=None, host=None, port=None, tls_hostname=None, ca_file=None, client_cert=None,
                    client_key=None, username=None, password=None, sasl_mech=None, auth_type=None, auth_subtype=None,
                    shared=False, timeout=20.0, hold=False, send_keys=False, screenshot=None, verbose=False,
                    extra=(), argv_prefix=()):
    """argv for `python3 -m vmgate_e2e.vnc_client` (see its docstring for every option)."""
    argv = list(argv_prefix) + [PYTHON, "-m", "vmgate_e2e.vnc_client", "--timeout", str(timeout)]
    if unix:
        argv += ["--unix", unix]
    else:
        argv += ["--host", host or "localhost", "--port", str(port)]
    for option, value in (("--tls-hostname", tls_hostname), ("--ca-file", ca_file),
                          ("--client-cert", client_cert), ("--client-key", client_key),
                          ("--username", username), ("--password", password), ("--sasl-mech", sasl_mech),
                          ("--auth-type", auth_type), ("--auth-subtype", auth_subtype),
                          ("--screenshot", screenshot)):
        if value is not None:
            argv += [option, str(value)]
    for flag, on in (("--shared", shared), ("--hold", hold), ("--send-keys", send_keys), ("-v", verbose)):
        if on:
            argv.append(flag)
    return argv + list(extra)


def run_vnc_client(home, timeout=20.0, env=None, **kw):
    """Run the gtk-vnc client to completion; returns a VncClientResult (rc, RESULT fields, stderr).
    `env`: extra environment variables (e.g. {"G_MESSAGES_DEBUG": "all"} with verbose/--debug)."""
    return run_to_completion(VncClientResult, vnc_client_argv(timeout=timeout, **kw), home, timeout, env)


class HeldVncClient(HeldClient):
    """A vnc_client started with --hold: it connects, prints READY after its first full frame and
    keeps the session until finish() closes its stdin (with send_keys it then presses Ctrl+Alt+Del
    and waits for the redraw: both directions still work). Stopped by PID on cleanup. Same
    interface as HeldClient (start, alive, finish, stop, ready_line, stderr_path); finish()
    returns a VncClientResult."""

    result_class = VncClientResult

    def __init__(self, home, send_keys=True, timeout=20.0, env=None, name="held-vnc-client", **kw):
        self._prepare(vnc_client_argv(timeout=timeout, hold=True, send_keys=send_keys, **kw), home, timeout, env,
                      name)


class VncHarnessMixin:
    """VNC helpers for E2ETestCase subclasses: `class T(h.VncHarnessMixin, h.E2ETestCase)`."""

    @classmethod
    def start_vnc_qemu(cls, name="vncvm", **kw):
        """A QemuVnc (see there for the options) stopped with the class; its log is printed on failure."""
        qemu = cls.enterClassContext(QemuVnc(cls.tmp, name, **kw))
        cls.log_sources.append(("QEMU %s log" % name, lambda: read_tail(qemu.log_path, 40)))
        return qemu

    def vnc_client(self, **kw):
        """Run the gtk-vnc client (see run_vnc_client) with this class's HOME."""
        return run_vnc_client(self.home, **kw)

    def held_vnc(self, name="held-vnc", **kw):
        """A started HeldVncClient (first frame reached), stopped by PID at the end of the test."""
        client = HeldVncClient(self.home, name=name, **kw)
        self.addCleanup(client.stop)
        self.log_sources.append(("%s stderr" % name, lambda: read_tail(client.stderr_path, 40)))
        return client.start()

    def assertVncClient(self, result, rc, msg=""):
        self.assertEqual(result.rc, rc, "%s\nvnc client: %s" % (msg, result))

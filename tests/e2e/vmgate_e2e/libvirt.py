"""A private libvirtd for the end-to-end tests (e2e-recipes.md section 5).

libvirtd (the privileged qemu:///system driver) and virtlogd run in a private mount namespace in
which /run/libvirt, /var/lib/libvirt, /etc/libvirt/qemu, /var/log/libvirt and /var/cache/libvirt
are directories of the test: nothing of the host's libvirt state is seen or touched, a host
libvirtd (if any) is not disturbed, and everything vanishes with the test. Clients outside the
namespace reach the daemon at `uri` (qemu+unix:///system?socket=...). The QEMUs libvirt starts
run in the namespace too; their display sockets are under `lib_dir`.

Stopped by PID: the domains are destroyed and undefined first (virsh), then libvirtd and
virtlogd are stopped, then any QEMU libvirt left behind (its pid file) is killed.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid as uuidlib

from . import harness as h

PRIVATE_DIRS = {"run": "/run/libvirt", "lib": "/var/lib/libvirt", "etc-qemu": "/etc/libvirt/qemu",
                "log": "/var/log/libvirt", "cache": "/var/cache/libvirt"}


def require():
    """Raise unless libvirtd, virtlogd and virsh are installed (make test installs them)."""
    for tool in ("libvirtd", "virtlogd", "virsh"):
        if shutil.which(tool) is None:
            raise RuntimeError("%s not installed (Debian: libvirt-daemon-system, libvirt-clients)" % tool)
    h.require_private_mounts()


def domain_xml(name, uuid=None, spice=True, vnc=True, vnc_listen=None):
    """A TCG domain without disk or network. Displays on unix sockets whose paths libvirt picks,
    with ticketing on and no password (passwd='' keeps SPICE's ticketing and VNC's password=on
    without setting one), so nobody but a SKIPAUTH connection gets in. vnc_listen: a TCP address
    instead of the socket (for the exposure warning; such a domain is only defined, never run)."""
    graphics = []
    if spice:
        graphics.append("<graphics type='spice' passwd=''><listen type='socket'/></graphics>")
    if vnc:
        if vnc_listen:
            graphics.append("<graphics type='vnc' port='-1' autoport='yes' passwd=''>"
                            "<listen type='address' address='%s'/></graphics>" % vnc_listen)
        else:
            graphics.append("<graphics type='vnc' passwd=''><listen type='socket'/></graphics>")
    video = "qxl" if spice else "vga"
    return """<domain type='qemu'>
  <name>%s</name>
  <uuid>%s</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    %s
    <video><model type='%s'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
""" % (name, uuid or str(uuidlib.uuid4()), "\n    ".join(graphics), video)


class Libvirtd:
    def __init__(self, workdir, name="libvirtd"):
        self.root = os.path.join(workdir, name)
        self.dirs = {key: os.path.join(self.root, key) for key in PRIVATE_DIRS}
        self.log_path = os.path.join(workdir, "%s.log" % name)
        self.socket = os.path.join(self.dirs["run"], "libvirt-sock")
        self.uri = "qemu+unix:///system?socket=%s" % self.socket
        self.proc = None

    @property
    def lib_dir(self):
        return self.dirs["lib"]

    def start(self, timeout=30.0):
        for d in self.dirs.values():
            os.makedirs(d, exist_ok=True)
        # A bind mount needs its mount point; /run/libvirt exists only once a libvirt service has
        # run, which a fresh container never did. An empty directory there changes nothing else.
        for target in PRIVATE_DIRS.values():
            os.makedirs(target, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        binds = {self.dirs[key]: target for key, target in PRIVATE_DIRS.items()}
        # virtlogd daemonizes (its pid file is visible outside as run/virtlogd.pid) and outlives a
        # restart of libvirtd alone; libvirtd stays in the foreground, so the started process is
        # libvirtd itself.
        script = ("{ kill -0 $(cat /run/libvirt/virtlogd.pid 2>/dev/null) 2>/dev/null || "
                  "virtlogd -d -p /run/libvirt/virtlogd.pid; } && exec libvirtd")
        self.proc = h.start_process(h.private_mounts(binds) + ["sh", "-c", script], self.log_path)
        h.wait_until(lambda: h.is_unix_socket(self.socket) or self.proc.poll() is not None, timeout,
                     what="libvirtd socket %s" % self.socket)
        if self.proc.poll() is not None:
            raise RuntimeError("libvirtd exited with %s:\n%s" % (self.proc.returncode, h.read_tail(self.log_path)))
        self.virsh("version", timeout=60)  # the first call probes QEMU's capabilities (about 4 s)
        return self

    def virsh(self, *args, check=True, timeout=60):
        res = subprocess.run(["virsh", "-c", self.uri] + list(args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=timeout)
        out = res.stdout.decode(errors="replace")
        if check and res.returncode != 0:
            raise RuntimeError("virsh %s failed (%d): %s %s" % (" ".join(args), res.returncode, out,
                                                                 res.stderr.decode(errors="replace")))
        return out

    def define(self, xml):
        path = os.path.join(self.root, "define-%d.xml" % time.monotonic_ns())
        with open(path, "w") as f:
            f.write(xml)
        self.virsh("define", path)

    def domains(self, all_states=True):
        out = self.virsh("list", "--name", *(["--all"] if all_states else []))
        return [line.strip() for line in out.splitlines() if line.strip()]

    def display_socket(self, name, display):
        """The unix socket of a running domain's display ("spice" or "vnc")."""
        for entry in os.listdir(os.path.join(self.lib_dir, "qemu")):
            if entry.startswith("domain-") and entry.endswith("-" + name):
                return os.path.join(self.lib_dir, "qemu", entry, "%s.sock" % display)
        raise AssertionError("no running domain %s under %s" % (name, self.lib_dir))

    def qemu_pids(self):
        pids = []
        qemu_run = os.path.join(self.dirs["run"], "qemu")
        for entry in os.listdir(qemu_run) if os.path.isdir(qemu_run) else []:
            if entry.endswith(".pid"):
                with contextlib.suppress(OSError, ValueError):
                    with open(os.path.join(qemu_run, entry)) as f:
                        pids.append(int(f.read().strip()))
        return pids

    def stop_daemon(self):
        """Stop libvirtd only (its QEMUs keep running, as with a real libvirtd restart)."""
        if self.proc is not None:
            h.stop_process(self.proc)
            self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                for name in self.domains(all_states=False):
                    self.virsh("destroy", name, check=False)
                for name in self.domains():
                    self.virsh("undefine", name, check=False)
        leftovers = self.qemu_pids()
        self.stop_daemon()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        virtlogd_pid = os.path.join(self.dirs["run"], "virtlogd.pid")
        with contextlib.suppress(OSError, ValueError):
            with open(virtlogd_pid) as f:
                os.kill(int(f.read().strip()), signal.SIGTERM)

    def log_tail(self, lines=40):
        return h.read_tail(self.log_path, lines)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

"""`vmgate demo --state-dir DIR`: the self-contained demo must really work and clean up.

It writes DIR/demo.json ({"host", "ca_file", "vms": [{"name", "spice_tls_port", "spice_port",
"spice_ticket_port", "vnc_port"}], "users": [{"name", "password", "vms": [...]}]}) once everything
runs. Each VM must show its console to a user allowed on it (SASL over TLS), the user allowed on no
VM must be refused, and SIGINT must stop the demo and every QEMU it started.

VNC: each VM's vnc_port is a VeNCrypt listener of the demo process. gtk-vnc, given the demo CA
and an allowed user's demo password, must get the first full frame of that VM's console through
it, both the way remote-viewer signs in (gtk-vnc's own choice, X509SASL) and the way the printed
TigerVNC command does (X509Plain), connecting to 127.0.0.1 as the printed commands do.
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import vnc_client  # noqa: E402

DEMO_READY_TIMEOUT = 60.0
DEMO_EXIT_TIMEOUT = 15.0
VNC_HOST = "127.0.0.1"  # what the demo's guide prints for VNC: its listeners are on loopback only


def qemu_pids_under(path):
    """PIDs of qemu-system-* processes whose command line mentions `path` (pgrep -f)."""
    res = subprocess.run(["pgrep", "-f", path], stdout=subprocess.PIPE, text=True)
    pids = []
    for pid in res.stdout.split():
        try:
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith("qemu-system"):
            pids.append(int(pid))
    return pids


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Demo(h.VncHarnessMixin, h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.state_dir = os.path.join(cls.tmp, "demo-state")
        cls.log_path = os.path.join(cls.tmp, "demo.log")
        cls.log_sources.append(("vmgate demo log", lambda: h.read_tail(cls.log_path)))
        cls.demo = h.start_process([cls.vmgate, "demo", "--state-dir", cls.state_dir], cls.log_path)
        cls.qemu_pids = []
        cls.addClassCleanup(cls._kill_leftovers)
        json_path = os.path.join(cls.state_dir, "demo.json")

        def ready():
            if cls.demo.poll() is not None:
                raise RuntimeError("vmgate demo exited with %s before writing demo.json:\n%s"
                                   % (cls.demo.returncode, h.read_tail(cls.log_path)))
            if not os.path.exists(json_path):
                return None
            try:
                with open(json_path) as f:
                    return json.load(f)
            except ValueError:
                return None  # still being written
        cls.info = h.wait_until(ready, DEMO_READY_TIMEOUT, interval=0.2, what=json_path)
        cls.qemu_pids = qemu_pids_under(cls.state_dir)

    @classmethod
    def _kill_leftovers(cls):
        h.stop_process(cls.demo, term_timeout=DEMO_EXIT_TIMEOUT, sig=signal.SIGINT)
        for pid in qemu_pids_under(cls.state_dir) + cls.qemu_pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)

    # ---- helpers ---------------------------------------------------------------------------------
    def connect(self, vm, user, password):
        return self.client(host=self.info.get("host", "localhost"), tls_port=vm["spice_tls_port"],
                           ca_file=self.info["ca_file"], username=user, password=password)

    def users_for(self, vm_name):
        return [u for u in self.info["users"] if vm_name in u.get("vms", [])]

    def vnc_connect(self, vm, **kw):
        user = self.users_for(vm["name"])[0]
        return self.vnc_client(host=VNC_HOST, port=vm["vnc_port"], ca_file=self.info["ca_file"],
                               username=user["name"], password=user["password"], **kw)

    def assertVncFirstFrame(self, result, vm, auth):
        """The first full frame of `vm` itself (QEMU's ServerInit name passes through unchanged),
        reached with VeNCrypt (19) subtype `auth`."""
        self.assertVncClient(result, vnc_client.RC_OK,
                             "%s through VNC port %d" % (vm["name"], vm["vnc_port"]))
        self.assertEqual(result.auth, "%d/%d" % (vnc_client.AUTH_VENCRYPT, auth), result)
        self.assertEqual(result.name, "QEMU (%s)" % vm["name"], result)

    # ---- tests -----------------------------------------------------------------------------------
    def test_a_demo_json_shape(self):
        info = self.info
        self.assertEqual(info.get("host"), "localhost", info)
        self.assertTrue(os.path.isfile(info["ca_file"]), info)
        self.assertGreaterEqual(len(info["vms"]), 2, info)
        for vm in info["vms"]:
            for key in ("name", "spice_tls_port", "spice_port", "spice_ticket_port", "vnc_port"):
                self.assertIn(key, vm)
            self.assertTrue(self.users_for(vm["name"]), "no user is allowed on %s" % vm["name"])
        self.assertTrue([u for u in info["users"] if not u.get("vms")], "no user without any VM")
        ports = [vm[key] for vm in info["vms"]
                 for key in ("spice_tls_port", "spice_port", "spice_ticket_port", "vnc_port")]
        self.assertEqual(len(set(ports)), len(ports), "ports used twice: %s" % info["vms"])
        self.assertGreaterEqual(len(self.qemu_pids), len(info["vms"]),
                                "expected one QEMU per VM with %s in its command line, found %s"
                                % (self.state_dir, self.qemu_pids))

    def test_b_each_vm_shows_its_console_to_an_allowed_user(self):
        for vm in self.info["vms"]:
            user = self.users_for(vm["name"])[0]
            with self.subTest(vm=vm["name"], user=user["name"]):
                r = self.connect(vm, user["name"], user["password"])
                self.assertClient(r, 0, "allowed user %s on %s" % (user["name"], vm["name"]))

    def test_c_user_allowed_nowhere_is_refused(self):
        nobody = [u for u in self.info["users"] if not u.get("vms")][0]
        for vm in self.info["vms"]:
            with self.subTest(vm=vm["name"]):
                self.assertClient(self.connect(vm, nobody["name"], nobody["password"]), 2)

    def test_d_user_refused_on_a_vm_not_theirs(self):
        for vm in self.info["vms"]:
            others = [u for u in self.info["users"] if u.get("vms") and vm["name"] not in u["vms"]]
            for user in others[:1]:
                with self.subTest(vm=vm["name"], user=user["name"]):
                    self.assertClient(self.connect(vm, user["name"], user["password"]), 2)

    def test_e_plain_port_upgrades_to_tls(self):
        vm = self.info["vms"][0]
        user = self.users_for(vm["name"])[0]
        uri = "spice://localhost?port=%d&tls-port=%d" % (vm["spice_port"], vm["spice_tls_port"])
        self.assertClient(self.client(uri=uri, ca_file=self.info["ca_file"], username=user["name"],
                                      password=user["password"]), 0)

    def test_f_ticket_as_the_guide_prints_it(self):
        # `vmgate ticket --config STATE/vmgate.toml ...`, then the ticket-only port
        vm = self.info["vms"][0]
        user = self.users_for(vm["name"])[0]
        ticket = h.vmgate_ticket(os.path.join(self.state_dir, "vmgate.toml"), user["name"], vm["name"])
        self.assertClient(self.client(host="localhost", tls_port=vm["spice_ticket_port"],
                                      ca_file=self.info["ca_file"], password=ticket), 0)

    def test_g_vnc_ports_listen_in_the_demo(self):
        listening = h.listening_ports(self.demo.pid)
        for vm in self.info["vms"]:
            self.assertIn(vm["vnc_port"], listening, "%s: vnc_port not listening in the demo "
                          "process (pid %d)" % (vm["name"], self.demo.pid))

    def test_h_vnc_first_frame_as_remote_viewer_signs_in(self):
        # gtk-vnc's own choice among the default VNC auth (X509Plain, X509SASL, X509Vnc): SASL,
        # with the SCRAM-SHA-256 of the demo's mech_list
        default_auth = {vnc_client.VENCRYPT_X509PLAIN, vnc_client.VENCRYPT_X509SASL, vnc_client.VENCRYPT_X509VNC}
        for vm in self.info["vms"]:
            with self.subTest(vm=vm["name"]):
                r = self.vnc_connect(vm)
                self.assertVncFirstFrame(r, vm, vnc_client.VENCRYPT_X509SASL)
                self.assertEqual({int(t) for t in r.subtypes.split(",")}, default_auth, r)
                self.assertEqual(r.sasl_mech, "SCRAM-SHA-256", r)

    def test_i_vnc_first_frame_with_plain_as_tigervnc_signs_in(self):
        # vncviewer -SecurityTypes X509Plain: user name and password checked by the sasldb
        for vm in self.info["vms"]:
            with self.subTest(vm=vm["name"]):
                r = self.vnc_connect(vm, auth_subtype=vnc_client.VENCRYPT_X509PLAIN)
                self.assertVncFirstFrame(r, vm, vnc_client.VENCRYPT_X509PLAIN)

    def test_z_sigint_stops_demo_and_its_qemus(self):
        self.assertIsNone(self.demo.poll(), "the demo died before SIGINT:\n" + h.read_tail(self.log_path))
        pids = qemu_pids_under(self.state_dir) or self.qemu_pids
        self.assertTrue(pids, "no QEMU of the demo found before SIGINT")
        t0 = time.monotonic()
        os.kill(self.demo.pid, signal.SIGINT)
        try:
            rc = self.demo.wait(timeout=DEMO_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("vmgate demo still running %.0fs after SIGINT" % DEMO_EXIT_TIMEOUT)
        deadline = t0 + DEMO_EXIT_TIMEOUT
        while time.monotonic() < deadline and [p for p in pids if pid_alive(p)]:
            time.sleep(0.1)
        remaining = [p for p in pids if pid_alive(p)]
        self.assertEqual(remaining, [], "QEMU processes left running after the demo exited")
        self.assertEqual(qemu_pids_under(self.state_dir), [], "QEMU processes of the demo still exist")
        self.assertEqual(rc, 0, "vmgate demo exit status after SIGINT (negative: killed by the signal)")


if __name__ == "__main__":
    unittest.main(verbosity=2)

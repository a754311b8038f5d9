"""QMP upstreams (`spice = "qmp:PATH"`, `vnc = "qmp:PATH"`), end to end.

QEMU's own displays let nobody in: SPICE on a unix socket with ticketing on and no password
set, VNC on a unix socket with `password=on` and no password set, or `-vnc none` (no socket at
all). vmgate reaches them through a QMP monitor of its own: per SPICE channel or VNC session a
socketpair, `getfd` with SCM_RIGHTS, `add_client skipauth=true tls=false`. The real spice-gtk
and gtk-vnc clients must get their first frame through vmgate, with every SPICE channel opened
that way; a QEMU that stopped, hangs or starts again must give clear refusals and then work
again, while vmgate keeps running.
"""

import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import vnc_client  # noqa: E402

PASSWORDS = {"alice": "alice-Pw-1"}
X509_PLAIN = 262  # VeNCrypt subtype: user name and password inside certificate TLS
SPICE_CHANNELS = ("main", "display", "inputs", "cursor")


def spice_ticketing_without_password(qemu_dir, name):
    """-spice on a unix socket without disable-ticketing and without a password: spice-server
    refuses every ticket until set_password, but not the connections add_client skips past auth."""
    path = os.path.join(qemu_dir, "%s.spice.sock" % name)
    return path, ["-spice", "unix=on,addr=%s" % path]


def vnc_listener(port, vm):
    return {"protocol": "vnc", "address": "127.0.0.1:%d" % port, "vm": vm}


class QmpUpstreamBase(h.VncHarnessMixin, h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()  # the gtk-vnc client reads the CA in a private mount namespace
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        cls.sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS, appname="vnc")

    @classmethod
    def gateway(cls, listeners, vms, **gateway):
        return cls.start_gateway(h.gateway_config(
            cls.pki, listeners, vms, gateway=gateway,
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": cls.sasldb, "default_realm": ""}))

    def spice(self, port, **kw):
        return self.client(host="localhost", tls_port=port, ca_file=self.pki.ca_cert, username="alice",
                           password=PASSWORDS["alice"], **kw)

    def vnc(self, port, **kw):
        return self.vnc_client(host="localhost", port=port, ca_file=self.pki.ca_cert, username="alice",
                               password=PASSWORDS["alice"], auth_subtype=X509_PLAIN, **kw)

    def assertSpiceSession(self, gw, port, vm):
        """A spice-gtk session through `port`: every channel it opens gets its own QMP add_client
        and one channel_open record. The client holds the session until all of them are open (it
        would otherwise leave right after the first frame, with channels still linking). No
        Ctrl+Alt+Del round trip: the client sees a reset only as a new QXL surface, and these
        QEMUs have std VGA for their VNC display."""
        mark = gw.audit_mark()
        held = h.HeldClient(self.home, roundtrip=False, name="held-spice", host="localhost", tls_port=port,
                            ca_file=self.pki.ca_cert, username="alice", password=PASSWORDS["alice"])
        self.addCleanup(held.stop)
        held.start()
        opened = gw.wait_audit("channel_open", since=mark, vm=vm, count=len(SPICE_CHANNELS))
        self.assertClient(held.finish(), 0)
        channels = [o.get("channel") for o in opened]
        self.assertLessEqual(set(SPICE_CHANNELS), set(channels), opened)
        self.assertEqual(len(channels), len(set(channels)), opened)
        self.assertEqual(len({o.get("session") for o in opened}), 1, opened)
        self.assertClosedOnce(gw, mark)

    def assertVncSession(self, gw, mark, vm):
        opened = gw.wait_audit("channel_open", since=mark, vm=vm, channel="vnc")
        self.assertEqual(len(opened), 1, opened)
        closes = self.assertClosedOnce(gw, mark)
        self.assertEqual([c.get("security") for c in closes.values()], ["X509Plain"], closes)

    def qmp_connections(self, gw, qemu):
        """How many times vmgate's log says it connected to this QEMU's QMP socket."""
        return len(re.findall(r"QMP %s: connected to QEMU" % re.escape(qemu.vmgate_qmp_path), gw.log_tail(100000)))


class QmpUpstream(QmpUpstreamBase):
    """vm1: SPICE (ticketing, no password) and VNC (unix socket, password=on, none set) on one
    QEMU and one QMP socket; vm2: `-vnc none`; novnc: a QEMU without VNC, configured with one."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.vm1_spice, spice_argv = spice_ticketing_without_password(cls.tmp, "vm1")
        cls.vm1 = cls.start_vnc_qemu("vm1", password=True, vmgate_qmp=True, extra_argv=spice_argv)
        cls.vm2 = cls.start_vnc_qemu("vm2", listen=False, vmgate_qmp=True)
        cls.novnc = cls.start_qemu("novnc", vmgate_qmp=True)
        cls.p_spice, cls.p_vnc1, cls.p_vnc2, cls.p_novnc = (h.free_port() for _ in range(4))
        cls.gw = cls.gateway(
            [h.spice_listener(cls.p_spice, "vm1"), vnc_listener(cls.p_vnc1, "vm1"), vnc_listener(cls.p_vnc2, "vm2"),
             vnc_listener(cls.p_novnc, "novnc")],
            [h.vm_entry("vm1", cls.vm1.qmp_upstream, users=["alice"], vnc=cls.vm1.qmp_upstream),
             {"name": "vm2", "vnc": cls.vm2.qmp_upstream, "allow": [{"users": ["alice"]}]},
             {"name": "novnc", "vnc": cls.novnc.qmp_upstream, "allow": [{"users": ["alice"]}]}])

    # ---- QEMU's own displays refuse everyone ---------------------------------------------------
    def test_direct_spice_client_is_refused(self):
        r = self.client(unix=self.vm1_spice, password="any-guess")
        self.assertClient(r, 2, "spice-server with ticketing on and no password must refuse")

    def test_direct_vnc_client_is_refused(self):
        self.assertEqual(self.vm1.query_vnc()["auth"], "vnc")
        r = self.vnc_client(unix=self.vm1.socket_path, password="guess")
        self.assertVncClient(r, vnc_client.RC_AUTH)
        self.assertEqual(r.reason, "Authentication failed")

    # ---- through vmgate ------------------------------------------------------------------------
    def test_spice_first_frame(self):
        r = self.spice(self.p_spice)
        self.assertClient(r, 0)
        self.assertIn("primary=720x400", r.result)

    def test_spice_session_with_every_channel(self):
        self.assertSpiceSession(self.gw, self.p_spice, "vm1")

    def test_vnc_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.vnc(self.p_vnc1)
        self.assertVncClient(r, 0)
        self.assertEqual(r.name, "QEMU (vm1)")
        self.assertVncSession(self.gw, mark, "vm1")

    def test_vnc_none_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.vnc(self.p_vnc2)
        self.assertVncClient(r, 0)
        self.assertEqual((r.name, r.size), ("QEMU (vm2)", "720x400"))
        self.assertVncSession(self.gw, mark, "vm2")

    def test_vnc_of_a_qemu_without_vnc_is_refused_in_words(self):
        """add_client would take the socket and never answer; vmgate asks query-vnc-servers first."""
        mark = self.gw.audit_mark()
        r = self.vnc(self.p_novnc)
        self.assertVncClient(r, vnc_client.RC_AUTH)
        self.assertIn("QEMU has no VNC display: start it with -vnc none", r.reason)
        closes = self.assertClosedOnce(self.gw, mark)
        self.assertIn("QEMU has no VNC display", list(closes.values())[0]["reason"])

    def test_spice_and_vnc_share_one_qmp_connection(self):
        """Both protocols, several times, and QEMU still sees vmgate connect to its monitor once."""
        for _ in range(2):
            self.assertClient(self.spice(self.p_spice), 0)
            self.assertVncClient(self.vnc(self.p_vnc1), 0)
        self.assertEqual(self.qmp_connections(self.gw, self.vm1), 1, self.gw.log_tail())


class QmpUpstreamQemuLifecycle(QmpUpstreamBase):
    """vm3 (SPICE with ticketing and `-vnc none` on one QMP socket) stops, hangs and starts again
    under a running vmgate. handshake_timeout is longer than vmgate's QMP deadline (5 s), so a
    hung QEMU shows as the QMP deadline, not as the handshake's."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _, spice_argv = spice_ticketing_without_password(cls.tmp, "vm3")
        cls.vm3 = cls.start_vnc_qemu("vm3", listen=False, vmgate_qmp=True, extra_argv=spice_argv)
        cls.p_spice, cls.p_vnc = h.free_port(), h.free_port()
        cls.gw = cls.gateway(
            [h.spice_listener(cls.p_spice, "vm3"), vnc_listener(cls.p_vnc, "vm3")],
            [h.vm_entry("vm3", cls.vm3.qmp_upstream, users=["alice"], vnc=cls.vm3.qmp_upstream)],
            handshake_timeout="15s")

    def assertRefusedForQmp(self, mark, words):
        """Every connection since `mark` closed once; the refused one's reason names the qmp:
        upstream and `words`. Returns that close record."""
        closes = self.assertClosedOnce(self.gw, mark)
        refused = [c for c in closes.values() if self.vm3.qmp_upstream in str(c.get("reason"))]
        self.assertTrue(refused, closes)
        self.assertIn(words, refused[0]["reason"])
        self.assertEqual(self.events(mark, "channel_open"), [])
        self.assertIsNone(self.gw.proc.poll(), "vmgate must keep running")
        return refused[0]

    def events(self, mark, event):
        return self.gw.audit_events(event, since=mark)

    def test_qemu_stopped_then_started_again(self):
        self.assertClient(self.spice(self.p_spice), 0)  # vmgate holds a QMP connection now
        live_mark = self.gw.audit_mark()
        live = h.HeldClient(self.home, roundtrip=False, name="held-live", host="localhost", tls_port=self.p_spice,
                            ca_file=self.pki.ca_cert, username="alice", password=PASSWORDS["alice"])
        self.addCleanup(live.stop)
        live.start()
        self.vm3.stop()
        # The live session ends cleanly with its QEMU: the client sees the close, every one of its
        # connections leaves one close record, and its session one session_end.
        h.wait_client_exit(live, timeout=10.0)
        self.assertClosedOnce(self.gw, live_mark)
        self.assertEqual(len(self.gw.wait_audit("session_end", since=live_mark)), 1)

        mark = self.gw.audit_mark()
        r = self.spice(self.p_spice)
        self.assertClient(r, 5, "SPICE: a link error")
        close = self.assertRefusedForQmp(mark, "cannot connect")
        self.assertEqual(close.get("link_error"), "error", close)
        self.assertTrue(close["reason"].startswith("cannot reach the VM's display: "), close)

        mark = self.gw.audit_mark()
        r = self.vnc(self.p_vnc)
        self.assertVncClient(r, vnc_client.RC_AUTH)
        self.assertIn(self.vm3.qmp_upstream, r.reason)  # the SecurityResult reason names it
        self.assertIn("cannot connect", r.reason)
        self.assertRefusedForQmp(mark, "cannot connect")

        self.vm3.start()
        self.assertSpiceSession(self.gw, self.p_spice, "vm3")
        mark = self.gw.audit_mark()
        self.assertVncClient(self.vnc(self.p_vnc), 0)
        self.assertVncSession(self.gw, mark, "vm3")

    def test_hung_qemu_costs_the_qmp_deadline_then_works_again(self):
        self.assertVncClient(self.vnc(self.p_vnc), 0)  # vmgate holds a QMP connection now
        os.kill(self.vm3.pid, signal.SIGSTOP)
        try:
            mark = self.gw.audit_mark()
            t0 = time.monotonic()
            r = self.vnc(self.p_vnc)
            took = time.monotonic() - t0
        finally:
            os.kill(self.vm3.pid, signal.SIGCONT)
        self.assertVncClient(r, vnc_client.RC_AUTH)
        self.assertIn("no answer from QEMU within 5 s (getfd)", r.reason)
        self.assertLess(took, 12.0, "the QMP deadline, not the client's or the handshake's")
        self.assertRefusedForQmp(mark, "no answer from QEMU within 5 s")

        mark = self.gw.audit_mark()
        self.assertVncClient(self.vnc(self.p_vnc), 0)
        self.assertVncSession(self.gw, mark, "vm3")


if __name__ == "__main__":
    unittest.main(verbosity=2)

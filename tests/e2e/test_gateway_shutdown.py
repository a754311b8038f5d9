"""`vmgate serve` stops cleanly on SIGTERM, also with a live SPICE session through it.

A clean stop: exit status 0 within a few seconds, the client's channels closed (the client
notices at once), one audit "close" per connection, and the listening ports gone.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

USER, PASSWORD = "alice", "alice-Shutdown-1"
STOP_WITHIN = 5.0


class GatewayShutdown(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        cls.sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), {USER: PASSWORD})
        cls.vm1 = cls.start_qemu("vm1")

    def start_gateway_for_test(self, name):
        port = h.free_port()
        gw = h.Gateway(self.tmp, h.gateway_config(
            self.pki, [h.spice_listener(port, "vm1")], [h.vm_entry("vm1", self.vm1.upstream, users=[USER])],
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": self.sasldb}), name=name)
        self.log_sources.append(("vmgate %s log" % name, gw.log_tail))
        self.log_sources.append(("vmgate %s audit tail" % name, gw.audit_tail))
        self.enterContext(gw)
        return gw, port

    def sigterm(self, gw):
        t0 = time.monotonic()
        os.kill(gw.proc.pid, signal.SIGTERM)
        try:
            rc = gw.proc.wait(timeout=STOP_WITHIN + 5)
        except subprocess.TimeoutExpired:
            self.fail("vmgate still running %.0fs after SIGTERM" % (STOP_WITHIN + 5))
        return rc, time.monotonic() - t0

    def assertPortClosed(self, port):
        with socket.socket() as s:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0, "port %d still accepts" % port)

    def test_sigterm_idle(self):
        gw, port = self.start_gateway_for_test("gw-idle")
        # No pause: the SIGTERM handler is installed before any port listens.
        rc, seconds = self.sigterm(gw)
        self.assertLessEqual(seconds, STOP_WITHIN)
        self.assertEqual(rc, 0, "exit status after SIGTERM")
        self.assertPortClosed(port)

    def test_sigterm_with_a_live_session(self):
        gw, port = self.start_gateway_for_test("gw-session")
        held = h.HeldClient(self.home, roundtrip=False, host="localhost", tls_port=port,
                            ca_file=self.pki.ca_cert, username=USER, password=PASSWORD)
        self.addCleanup(held.stop)
        held.start()
        self.assertTrue(gw.audit_events("channel_open", channel="display"))
        rc, seconds = self.sigterm(gw)
        # the client must see its session end (it would print rc 0 only after stdin EOF)
        try:
            client_rc = held.proc.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            client_rc = None
        result = held.finish()
        self.assertIn(client_rc, (6, 7),
                      "the client did not notice the gateway going away: %s" % result)
        self.assertClosedOnce(gw, 0, timeout=1.0)
        for close in gw.audit_events("close"):
            self.assertTrue(close.get("reason"), close)
        self.assertPortClosed(port)
        self.assertLessEqual(seconds, STOP_WITHIN)
        self.assertEqual(rc, 0, "exit status after SIGTERM")


if __name__ == "__main__":
    unittest.main(verbosity=2)

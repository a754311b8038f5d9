"""Handshake limits (max_handshakes_per_source, max_handshakes) against a running vmgate.

Clients that connect and never finish their handshake hold a place each; once a source has
max_handshakes_per_source of them, its next connection is closed at once, with an audit record
that says which limit applied, while an established session keeps working. When the stalled
clients go away, the same source gets in again.
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vmgate_e2e import harness as h  # noqa: E402

USER, PASSWORD = "alice", "alice-Limits-1"
PER_SOURCE = 6  # above the four channels a spice-gtk session links at once


class SpiceHandshakeLimits(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), {USER: PASSWORD})
        cls.vm1 = cls.start_qemu("vm1")
        cls.port = h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(cls.port, "vm1")],
            [h.vm_entry("vm1", cls.vm1.upstream, users=[USER])],
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": sasldb, "pwcheck_method": "auxprop"},
            gateway={"handshake_timeout": "20s", "max_handshakes": 16,
                     "max_handshakes_per_source": PER_SOURCE}))

    def stalled(self):
        """A TCP connection that never sends a ClientHello; the gateway counts it as a handshake."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(s.close)
        return s

    def closed_by_peer(self, s, within):
        s.settimeout(within)
        try:
            return s.recv(1) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def test_source_over_its_limit_is_closed_at_once_and_recorded(self):
        mark = self.gw.audit_mark()
        held = [self.stalled() for _ in range(PER_SOURCE)]
        self.gw.wait_audit("accept", since=mark, count=PER_SOURCE)
        extra = self.stalled()
        self.assertTrue(self.closed_by_peer(extra, within=2.0), "the connection over the limit stayed open")
        refusals = [c for c in self.gw.audit_events("close", since=mark)
                    if "max_handshakes_per_source = %d" % PER_SOURCE in c.get("reason", "")]
        self.assertEqual(len(refusals), 1, self.gw.audit_tail())
        self.assertIn("127.0.0.1", refusals[0]["reason"])
        for s in held:
            self.assertFalse(self.closed_by_peer(s, within=0.2), "a stalled client within the limit was closed")
            s.close()
        # their places come back: a real client from the same source gets its first frame
        h.wait_until(lambda: len(self.gw.audit_events("close", since=mark)) >= PER_SOURCE + 1, 10,
                     what="the stalled connections' close records")
        r = self.client(host="localhost", tls_port=self.port, ca_file=self.pki.ca_cert,
                        username=USER, password=PASSWORD)
        self.assertClient(r, 0)

    def test_established_sessions_do_not_count(self):
        # a held session (four channels) is past its handshakes: it takes no place
        held = h.HeldClient(self.home, host="localhost", tls_port=self.port, ca_file=self.pki.ca_cert,
                            username=USER, password=PASSWORD)
        self.addCleanup(held.stop)
        held.start()
        stalled = [self.stalled() for _ in range(PER_SOURCE)]
        time.sleep(0.5)
        for s in stalled:
            self.assertFalse(self.closed_by_peer(s, within=0.2))


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Authentication and authorization through vmgate, end to end.

spice-gtk client --TLS--> vmgate --> QEMU (unix socket without ticketing, or TCP with a password).
Real Cyrus SASL (SCRAM-SHA-256, PLAIN) against a sasldb written by saslpasswd2, one-time tickets
from `vmgate ticket`, and the audit log as the record of what vmgate decided.
"""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

PASSWORDS = {"alice": "alice-Pw-1", "bob": "bob-Pw-2", "mallory": "mallory-Pw-3"}
VM2_QEMU_PASSWORD = "qemu-vm2-secret"


class SpiceAuthBase(h.E2ETestCase):

    def connect(self, port, user=None, password=None, **kw):
        return self.client(host="localhost", tls_port=port, ca_file=self.pki.ca_cert,
                           username=user, password=password, **kw)

    def events(self, gw, mark, event, **match):
        return gw.audit_events(event, since=mark, **match)

    def assertSessionOpened(self, gw, mark, vm, user, mechanism=None, realm=None):
        """After a successful run: auth ok, decision allowed, main+display opened, closes sane."""
        auths = self.events(gw, mark, "auth")
        self.assertTrue(auths, "no auth record")
        for a in auths:
            self.assertEqual(a.get("result"), "ok", a)
            self.assertEqual(a.get("user"), user, a)
            if mechanism == "ticket":
                self.assertIn("ticket", str(a.get("mechanism", "")).lower(), a)
            elif mechanism is not None:
                self.assertEqual(a.get("mechanism"), mechanism, a)
            if realm is not None:
                self.assertEqual(a.get("realm"), realm, a)
        decisions = self.events(gw, mark, "decision")
        self.assertTrue(decisions, "no decision record")
        for d in decisions:
            self.assertIs(d.get("allowed"), True, d)
            self.assertEqual(d.get("vm"), vm, d)
        opened = self.events(gw, mark, "channel_open")
        channels = {o.get("channel") for o in opened}
        self.assertLessEqual({"main", "display"}, channels, opened)
        for o in opened:
            self.assertEqual(o.get("vm"), vm, o)
            self.assertEqual(o.get("user"), user, o)
        for a in self.events(gw, mark, "accept"):
            self.assertIs(a.get("tls"), True, a)
        return self.assertClosedOnce(gw, mark)

    def assertRefused(self, gw, mark, result, auth_failure=True):
        """A refused run: client rc 2, no channel opened, every connection closed once."""
        self.assertClient(result, 2)
        self.assertEqual(self.events(gw, mark, "channel_open"), [], "a channel was opened for a refused client")
        if auth_failure:
            failures = gw.wait_audit("auth", since=mark, result="failure")
            self.assertTrue(all(f.get("reason") for f in failures), failures)
            self.assertEqual(self.events(gw, mark, "auth", result="ok"), [])
        closes = self.assertClosedOnce(gw, mark)
        return closes


class SpiceAuth(SpiceAuthBase):
    """vm1: unix-socket QEMU; vm2: TCP QEMU with a password (password_file). One gateway offers
    SCRAM-SHA-256 only, a second one PLAIN only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        cls.sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS)  # realm = host name
        cls.vm1 = cls.start_qemu("vm1")
        cls.vm2 = cls.start_qemu("vm2", tcp_port=h.free_port(), password=VM2_QEMU_PASSWORD)
        pw_file = h.write_secret(os.path.join(cls.tmp, "vm2.password"), VM2_QEMU_PASSWORD)
        vms = [h.vm_entry("vm1", cls.vm1.upstream, users=["alice"]),
               h.vm_entry("vm2", cls.vm2.upstream, users=["bob"], password_file=pw_file)]
        cls.p_tls1, cls.p_ticket1, cls.p_tls2, cls.p_ticket2 = (h.free_port() for _ in range(4))
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki,
            [h.spice_listener(cls.p_tls1, "vm1"),
             h.spice_listener(cls.p_ticket1, "vm1", auth=["ticket"]),
             h.spice_listener(cls.p_tls2, "vm2"),
             h.spice_listener(cls.p_ticket2, "vm2", auth=["ticket"])],
            vms,
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": cls.sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""}), name="gw-scram")
        cls.p_plain_mech = h.free_port()
        cls.gw_plain = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(cls.p_plain_mech, "vm1")], vms,
            sasl={"mech_list": ["PLAIN"], "sasldb": cls.sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""}), name="gw-plain")

    # ---- SASL ------------------------------------------------------------------------------
    def test_sasl_scram_sha_256_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.p_tls1, "alice", PASSWORDS["alice"])
        self.assertClient(r, 0)
        self.assertIn("primary=720x400", r.result)
        self.assertSessionOpened(self.gw, mark, "vm1", "alice", mechanism="SCRAM-SHA-256",
                                 realm=socket.gethostname())

    def test_sasl_plain_first_frame(self):
        mark = self.gw_plain.audit_mark()
        r = self.connect(self.p_plain_mech, "alice", PASSWORDS["alice"])
        self.assertClient(r, 0)
        self.assertSessionOpened(self.gw_plain, mark, "vm1", "alice", mechanism="PLAIN")

    def test_sasl_wrong_password_refused(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.p_tls1, "alice", "not-the-password")
        self.assertRefused(self.gw, mark, r)
        failure = self.events(self.gw, mark, "auth", result="failure")[0]
        self.assertEqual(failure.get("mechanism"), "SCRAM-SHA-256", failure)

    def test_sasl_plain_wrong_password_refused(self):
        mark = self.gw_plain.audit_mark()
        r = self.connect(self.p_plain_mech, "alice", "not-the-password")
        self.assertRefused(self.gw_plain, mark, r)
        failure = self.events(self.gw_plain, mark, "auth", result="failure")[0]
        self.assertEqual(failure.get("mechanism"), "PLAIN", failure)
        self.assertEqual(failure.get("user"), "alice", failure)

    def test_sasl_unknown_user_refused(self):
        mark = self.gw.audit_mark()
        self.assertRefused(self.gw, mark, self.connect(self.p_tls1, "nobody", "whatever-1"))

    def test_user_allowed_only_on_other_vm_refused(self):
        """bob authenticates fine but is allowed on vm2 only: refused on vm1 with a reason."""
        mark = self.gw.audit_mark()
        r = self.connect(self.p_tls1, "bob", PASSWORDS["bob"])
        self.assertRefused(self.gw, mark, r, auth_failure=False)
        decisions = self.gw.wait_audit("decision", since=mark)
        self.assertTrue(decisions, "no decision record")
        for d in decisions:
            self.assertIs(d.get("allowed"), False, d)
            self.assertEqual(d.get("vm"), "vm1", d)
            self.assertEqual(d.get("user"), "bob", d)
            self.assertTrue(d.get("reason"), d)

    def test_authenticated_user_without_any_rule_refused(self):
        """mallory is in the sasldb but in no allow rule: deny by default."""
        mark = self.gw.audit_mark()
        r = self.connect(self.p_tls1, "mallory", PASSWORDS["mallory"])
        self.assertRefused(self.gw, mark, r, auth_failure=False)
        decisions = self.gw.wait_audit("decision", since=mark)
        self.assertTrue(all(d.get("allowed") is False and d.get("reason") for d in decisions), decisions)

    # ---- upstream TCP + password -------------------------------------------------------------
    def test_tcp_password_upstream_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.p_tls2, "bob", PASSWORDS["bob"])
        self.assertClient(r, 0)
        self.assertSessionOpened(self.gw, mark, "vm2", "bob", mechanism="SCRAM-SHA-256")

    # ---- bytes in the close record -------------------------------------------------------------
    def test_close_record_counts_bytes_both_ways(self):
        mark = self.gw.audit_mark()
        self.assertClient(self.connect(self.p_tls1, "alice", PASSWORDS["alice"]), 0)
        closes = self.assertSessionOpened(self.gw, mark, "vm1", "alice")
        by_channel = {c.get("channel"): c for c in closes.values()}
        self.assertIn("main", by_channel, closes)
        self.assertIn("display", by_channel, closes)
        for name in ("main", "display"):
            c = by_channel[name]
            self.assertGreater(c.get("bytes_from_client", 0), 0, c)
            self.assertGreater(c.get("bytes_to_client", 0), 0, c)
            self.assertEqual(c.get("user"), "alice", c)
            self.assertEqual(c.get("vm"), "vm1", c)
            self.assertIsInstance(c.get("duration_ms"), (int, float), c)
        # the display channel carried a 720x400 picture (compressed, but surely > 1 KiB)
        self.assertGreater(by_channel["display"]["bytes_to_client"], 1024, by_channel["display"])

    # ---- tickets ---------------------------------------------------------------------------------
    def test_ticket_first_frame(self):
        ticket = self.gw.ticket("alice", "vm1", "60s")
        mark = self.gw.audit_mark()
        r = self.connect(self.p_ticket1, password=ticket)
        self.assertClient(r, 0)
        self.assertSessionOpened(self.gw, mark, "vm1", "alice", mechanism="ticket")

    def test_ticket_reuse_refused(self):
        ticket = self.gw.ticket("alice", "vm1", "60s")
        self.assertClient(self.connect(self.p_ticket1, password=ticket), 0)
        mark = self.gw.audit_mark()
        r = self.connect(self.p_ticket1, password=ticket)
        self.assertRefused(self.gw, mark, r)

    def test_ticket_expired_refused(self):
        ticket = self.gw.ticket("alice", "vm1", "1s")
        time.sleep(2.0)
        mark = self.gw.audit_mark()
        self.assertRefused(self.gw, mark, self.connect(self.p_ticket1, password=ticket))

    def test_ticket_for_other_vm_refused(self):
        ticket = self.gw.ticket("bob", "vm2", "60s")
        mark = self.gw.audit_mark()
        r = self.connect(self.p_ticket1, password=ticket)
        self.assertClient(r, 2)
        self.assertEqual(self.events(self.gw, mark, "channel_open"), [])
        # refused either as a failed authentication or as a denied decision, with a reason
        refusals = [e for e in self.events(self.gw, mark, "auth", result="failure")] + \
                   [e for e in self.events(self.gw, mark, "decision") if e.get("allowed") is False]
        self.assertTrue(refusals, "no auth failure or denied decision recorded:\n" + self.gw.audit_tail())
        self.assertTrue(all(e.get("reason") for e in refusals), refusals)
        self.assertClosedOnce(self.gw, mark)
        # control: a ticket for vm2 works on vm2's ticket listener
        mark = self.gw.audit_mark()
        self.assertClient(self.connect(self.p_ticket2, password=self.gw.ticket("bob", "vm2", "60s")), 0)
        self.assertSessionOpened(self.gw, mark, "vm2", "bob", mechanism="ticket")

    def test_forged_ticket_refused(self):
        mark = self.gw.audit_mark()
        self.assertRefused(self.gw, mark, self.connect(self.p_ticket1, password="forged-ticket-123"))


class SpiceAuthRealm(SpiceAuthBase):
    """A sasldb written with `saslpasswd2 -u REALM`; the config names users as alice@REALM."""

    REALM = "EXAMPLE.TEST"
    OTHER = "OTHER.TEST"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        db = os.path.join(cls.tmp, "sasldb2-realm")
        h.make_sasldb(db, {"alice": PASSWORDS["alice"]}, realm=cls.REALM)
        h.make_sasldb(db, {"alice": PASSWORDS["alice"]}, realm=cls.OTHER)
        cls.vm1 = cls.start_qemu("vm1")
        cls.port = h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(cls.port, "vm1")],
            [h.vm_entry("vm1", cls.vm1.upstream, users=["alice@%s" % cls.REALM])],
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": db, "pwcheck_method": "auxprop",
                  "default_realm": ""}), name="gw-realm")

    def test_user_at_realm_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.port, "alice@%s" % self.REALM, PASSWORDS["alice"])
        self.assertClient(r, 0)
        self.assertSessionOpened(self.gw, mark, "vm1", "alice", mechanism="SCRAM-SHA-256", realm=self.REALM)

    def test_same_user_other_realm_refused_by_policy(self):
        """alice@OTHER.TEST has valid credentials, but the rule names alice@EXAMPLE.TEST only."""
        mark = self.gw.audit_mark()
        r = self.connect(self.port, "alice@%s" % self.OTHER, PASSWORDS["alice"])
        self.assertRefused(self.gw, mark, r, auth_failure=False)
        auth = self.gw.wait_audit("auth", since=mark, result="ok")[0]
        self.assertEqual(auth.get("realm"), self.OTHER, auth)
        decisions = self.gw.wait_audit("decision", since=mark)
        self.assertTrue(all(d.get("allowed") is False and d.get("reason") for d in decisions), decisions)

    def test_user_without_realm_not_found(self):
        """Plain "alice" is looked up in the default realm (the host name): not in this sasldb."""
        mark = self.gw.audit_mark()
        self.assertRefused(self.gw, mark, self.connect(self.port, "alice", PASSWORDS["alice"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)

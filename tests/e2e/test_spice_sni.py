"""route = "sni": one listener, the VM chosen by the TLS server name (design.md; spice-protocol.md
7.3; e2e-recipes.md section 3).

spice-gtk (>= 0.40) sends its `host` as SNI unless it is an IP literal. The gateway's certificate
has SAN DNS:*.vms.test (plus localhost and 127.0.0.1, so that the TLS handshake also succeeds for
the name-less and off-suffix cases and the refusal comes from vmgate's routing, not from the
client's hostname check). The names resolve to 127.0.0.1 through a test hosts file bind-mounted
over /etc/hosts in a private mount namespace of the client process only.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

PASSWORDS = {"alice": "alice-Sni-1", "bob": "bob-Sni-2"}
SUFFIX = ".vms.test"
NAMES = ["vm1.vms.test", "vm2.vms.test", "unknown.vms.test"]

RC_AUTH = 2  # a final link result != 0 (policy refusal)
RC_LINK = 5  # a link error reply (routing refusal)


class SpiceSni(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"), cn="gateway.vms.test",
                             san="DNS:*.vms.test,DNS:localhost,IP:127.0.0.1")
        cls.hosts = os.path.join(cls.tmp, "hosts")
        with open(cls.hosts, "w") as f:
            f.write("127.0.0.1 localhost %s\n::1 localhost ip6-localhost\n" % " ".join(NAMES))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS)
        cls.vm1 = cls.start_qemu("vm1")
        cls.vm2 = cls.start_qemu("vm2")
        cls.port = h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(cls.port, sni_suffix=SUFFIX)],
            [h.vm_entry("vm1", cls.vm1.upstream, users=["alice"]),
             h.vm_entry("vm2", cls.vm2.upstream, users=["bob"])],
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""}))

    def connect(self, host, user="alice"):
        return self.client(host=host, tls_port=self.port, ca_file=self.pki.ca_cert, username=user,
                           password=PASSWORDS[user], argv_prefix=h.private_mounts({self.hosts: "/etc/hosts"}))

    def link_records(self, mark):
        links = self.gw.audit_events("link", since=mark)
        self.assertTrue(links, "no link record")
        return links

    def assertRoutingRefused(self, mark, result, reason_part):
        """A link error reply (spice-gtk: ERROR_LINK), no authentication, a close with the reason."""
        self.assertClient(result, RC_LINK)
        closes = self.assertClosedOnce(self.gw, mark)
        for event in ("auth", "decision", "channel_open"):
            self.assertEqual(self.gw.audit_events(event, since=mark), [], "%s record for an unroutable link" % event)
        for close in closes.values():
            self.assertIn(reason_part, close["reason"], close)
            self.assertEqual(close.get("link_error"), "error", close)
        return closes

    # ---- tests -----------------------------------------------------------------------------------
    def test_hosts_file_is_private(self):
        """The test names resolve only inside the client's namespace: the system file is untouched."""
        with open("/etc/hosts") as f:
            self.assertNotIn("vms.test", f.read())

    def test_vm1_by_name_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.connect("vm1.vms.test")
        self.assertClient(r, 0)
        self.assertIn("primary=720x400", r.result)
        links = self.link_records(mark)
        self.assertLessEqual({"main", "display"}, {l.get("channel") for l in links}, links)
        for link in links:  # every channel does its own TLS handshake with the same SNI
            self.assertEqual((link.get("vm"), link.get("server_name")), ("vm1", "vm1.vms.test"), link)
        for d in self.gw.audit_events("decision", since=mark):
            self.assertEqual((d.get("vm"), d.get("allowed")), ("vm1", True), d)
        opened = self.gw.audit_events("channel_open", since=mark)
        self.assertTrue(opened and all(o.get("vm") == "vm1" for o in opened), opened)
        self.assertClosedOnce(self.gw, mark)

    def test_name_is_case_insensitive(self):
        mark = self.gw.audit_mark()
        self.assertClient(self.connect("VM1.VMS.TEST"), 0)
        for link in self.link_records(mark):
            self.assertEqual(link.get("vm"), "vm1", link)

    def test_bob_on_vm2_first_frame(self):
        mark = self.gw.audit_mark()
        self.assertClient(self.connect("vm2.vms.test", "bob"), 0)
        for link in self.link_records(mark):
            self.assertEqual((link.get("vm"), link.get("server_name")), ("vm2", "vm2.vms.test"), link)

    def test_alice_on_vm2_refused(self):
        """alice is allowed on vm1 only: vm2.vms.test routes to vm2 and the policy refuses her."""
        mark = self.gw.audit_mark()
        r = self.connect("vm2.vms.test")
        self.assertClient(r, RC_AUTH)
        decisions = self.gw.wait_audit("decision", since=mark)
        for d in decisions:
            self.assertEqual((d.get("vm"), d.get("user"), d.get("allowed")), ("vm2", "alice", False), d)
            self.assertTrue(d.get("reason"), d)
        self.assertEqual(self.gw.audit_events("channel_open", since=mark), [])
        for link in self.link_records(mark):
            self.assertEqual(link.get("server_name"), "vm2.vms.test", link)
        self.assertClosedOnce(self.gw, mark)

    def test_unknown_vm_name_refused(self):
        mark = self.gw.audit_mark()
        r = self.connect("unknown.vms.test")
        self.assertRoutingRefused(mark, r, "no SPICE VM named")
        for close in self.gw.audit_events("close", since=mark):
            self.assertIn("unknown", close["reason"], close)
        for link in self.link_records(mark):
            self.assertEqual(link.get("server_name"), "unknown.vms.test", link)

    def test_ip_address_sends_no_sni_refused(self):
        mark = self.gw.audit_mark()
        r = self.connect("127.0.0.1")
        self.assertRoutingRefused(mark, r, "SNI")
        for link in self.link_records(mark):
            self.assertEqual(link.get("server_name"), "", link)

    def test_name_outside_suffix_refused(self):
        """localhost passes the certificate check but names no VM under .vms.test."""
        mark = self.gw.audit_mark()
        r = self.connect("localhost")
        self.assertClient(r, RC_LINK)
        self.assertEqual(self.gw.audit_events("auth", since=mark), [])
        closes = self.assertClosedOnce(self.gw, mark)
        for close in closes.values():
            # the reason must let an operator see what went wrong: the name the client sent (or
            # the suffix it lacks), not an empty VM name
            self.assertTrue("localhost" in close["reason"] or SUFFIX in close["reason"],
                            "close reason does not say which server name failed to route: %r" % close)
        for link in self.link_records(mark):
            self.assertEqual(link.get("server_name"), "localhost", link)


if __name__ == "__main__":
    unittest.main(verbosity=2)

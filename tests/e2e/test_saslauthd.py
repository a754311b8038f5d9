"""vmgate with pwcheck_method = "saslauthd": passwords checked by a real saslauthd.

How saslauthd finds the database: `saslauthd -a sasldb` has no path option. Its sasldb backend
calls Cyrus' sasldb code with minimal "utils" that answer no SASL_CB_GETOPT, so `sasldb_path` is
never asked for and the compile-time default /etc/sasldb2 is opened (-O is not used by this
backend; /etc/sasl2/saslauthd.conf does not exist for it). To serve a test database without
touching /etc, the harness runs saslauthd in a private mount namespace
(`unshare -m --propagation private`) where the test sasldb is bind-mounted over /etc/sasldb2;
nobody else sees the mount, and it disappears with the daemon. (-a pam would need a service file
in /etc/pam.d, and -a shadow/getpwent real system accounts: both more invasive.)

To prove that the password really goes through saslauthd, the gateway's own sasldb setting
points at a decoy database in which alice has a different password: only saslauthd's password
may work, and saslauthd's debug log must show the request.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

USER = "alice"
SASLAUTHD_PASSWORD = "alice-Via-Saslauthd-1"
DECOY_PASSWORD = "alice-Decoy-Auxprop-2"


class Saslauthd(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        h.Saslauthd.require()
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        authd_db = h.make_sasldb(os.path.join(cls.tmp, "authd", "sasldb2"),
                                 {USER: SASLAUTHD_PASSWORD, "bob": "bob-Via-Saslauthd-3"})
        decoy_db = h.make_sasldb(os.path.join(cls.tmp, "decoy", "sasldb2"), {USER: DECOY_PASSWORD})
        cls.authd = cls.enterClassContext(h.Saslauthd(cls.tmp, authd_db))
        cls.log_sources.append(("saslauthd log", cls.authd.log_text))
        cls.vm1 = cls.start_qemu("vm1")
        cls.port = h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(cls.port, "vm1")],
            [h.vm_entry("vm1", cls.vm1.upstream, users=[USER])],
            sasl={"mech_list": ["PLAIN"], "pwcheck_method": "saslauthd",
                  "saslauthd_path": cls.authd.mux_path, "sasldb": decoy_db, "default_realm": ""}))

    def connect(self, user, password):
        return self.client(host="localhost", tls_port=self.port, ca_file=self.pki.ca_cert,
                           username=user, password=password)

    def test_daemon_itself_answers(self):
        self.assertTrue(self.authd.check(USER, SASLAUTHD_PASSWORD))
        self.assertFalse(self.authd.check(USER, DECOY_PASSWORD))

    def test_plain_via_saslauthd_first_frame(self):
        mark = self.gw.audit_mark()
        log_mark = self.authd.log_size()
        r = self.connect(USER, SASLAUTHD_PASSWORD)
        self.assertClient(r, 0)
        auths = self.gw.audit_events("auth", since=mark)
        self.assertTrue(auths)
        for a in auths:
            self.assertEqual((a.get("result"), a.get("mechanism"), a.get("user")), ("ok", "PLAIN", USER), a)
        opened = {o.get("channel") for o in self.gw.audit_events("channel_open", since=mark)}
        self.assertLessEqual({"main", "display"}, opened)
        self.assertClosedOnce(self.gw, mark)
        log = self.authd.log_since(log_mark)
        self.assertRegex(log, r"auth success: \[user=%s\] \[service=spice\]" % USER,
                         "saslauthd never saw a successful request for %s (service spice)" % USER)

    def test_wrong_password_refused(self):
        mark = self.gw.audit_mark()
        log_mark = self.authd.log_size()
        r = self.connect(USER, "definitely-wrong")
        self.assertClient(r, 2)
        self.assertRegex(self.authd.log_since(log_mark), r"auth failure: \[user=%s\]" % USER,
                         "the refusal did not come from saslauthd")
        self.gw.wait_audit("auth", since=mark, result="failure")
        self.assertEqual(self.gw.audit_events("auth", since=mark, result="ok"), [])
        self.assertEqual(self.gw.audit_events("channel_open", since=mark), [])
        self.assertClosedOnce(self.gw, mark)

    def test_decoy_sasldb_password_refused(self):
        """The gateway's sasldb is not consulted for passwords when saslauthd is configured."""
        mark = self.gw.audit_mark()
        self.assertClient(self.connect(USER, DECOY_PASSWORD), 2)
        self.assertEqual(self.gw.audit_events("channel_open", since=mark), [])

    def test_saslauthd_user_without_rule_refused(self):
        """bob passes saslauthd but is in no allow rule for vm1."""
        mark = self.gw.audit_mark()
        self.assertClient(self.connect("bob", "bob-Via-Saslauthd-3"), 2)
        decisions = self.gw.wait_audit("decision", since=mark)
        self.assertTrue(all(d.get("allowed") is False and d.get("reason") for d in decisions), decisions)
        self.assertEqual(self.gw.audit_events("channel_open", since=mark), [])

    def test_realm_typed_by_the_client_is_refused_at_authentication(self):
        """alice's password must not make her "alice@partner.org". saslauthd's sasldb backend
        refuses the realm itself; backends that ignore realms (PAM, shadow) are refused by the
        gateway after them (SaslServerSession: saslauthd checks local accounts only)."""
        mark = self.gw.audit_mark()
        self.assertClient(self.connect(USER + "@partner.org", SASLAUTHD_PASSWORD), 2)
        self.gw.wait_audit("auth", since=mark, result="failure")
        self.assertEqual(self.gw.audit_events("auth", since=mark, result="ok"), [])
        self.assertEqual(self.gw.audit_events("decision", since=mark), [])

if __name__ == "__main__":
    unittest.main(verbosity=2)

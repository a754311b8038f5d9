"""VNC consoles through vmgate, end to end (README "TLS client certificates"; docs/configuration.md
[[listener]] protocol = "vnc", [tls] client_cert / client_identity, [[vm]] vnc, seat, idle_timeout,
view_only).

gtk-vnc client (vnc_client.py) --VeNCrypt, TLS--> vmgate --> QEMU's VNC server on a unix socket
(security None; vmgate asks it for a shared session, so several VMs of the gateway can share one
QEMU here). A VNC listener offers VeNCrypt (19) only, with the subtypes of its `auth` in order:

    password     X509Plain (262)  user + password checked by Cyrus (sasldb, service "vnc")
    sasl         X509SASL (263)   SCRAM-SHA-256 / PLAIN; gtk-vnc always picks it when offered
    ticket       X509Vnc (261)    VNC auth with a one-time 8-character `vmgate ticket --protocol vnc`
    certificate  X509None (260)   the TLS client certificate names the user ([tls] client_identity)

Every case checks both what the client saw (exit code and RESULT: first frame, SecurityResult
reason) and the audit records of its one connection: accept (protocol "vnc"), link (channel
"vnc"), auth (mechanism, user, realm; on failure the reason the client was told), decision,
seat_denied / session_replaced, channel_open (view_only, desktop_name), session_end (reason code),
close (security = the subtype, bytes, session).

Ctrl+Alt+Del from the client resets the SeaBIOS guest, which QEMU reports as a RESET event on its
QMP event socket: that is how the tests see whether key input reached QEMU (view-only must not).

Four gateways: `gw` (passwords, SASL, tickets, policy, seats, view-only, idle timeout), `gw_cert`
(client_cert = "optional", identity from the CN), `gw_email` (client_identity = "email"),
`gw_required` (client_cert = "required"); all in front of one QEMU.
"""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import raw_rfb as raw  # noqa: E402
from vmgate_e2e import vnc_client as vc  # noqa: E402

PASSWORDS = {"alice": "alice-Vnc-1", "bob": "bob-Vnc-2", "carol": "carol-Vnc-3"}
QEMU_NAME = "vncvm"
DESKTOP = "QEMU (%s)" % QEMU_NAME
DEFAULT_SUBTYPES = "262,263,261"  # auth = ["password", "sasl", "ticket"], offered in that order
AUTH_FAILED = "authentication failed"
# gtk-vnc runs one more local SASL step on the server's final (here: empty) data before it reads
# SecurityResult; for SCRAM that step fails, so a SCRAM refusal always reads this, never the reason
GTK_VNC_SASL_FAILURE = "Unknown authentication failure"
IDLE = 3  # seconds: idle_timeout of the VM "idle"
CLOSED_WITHIN = 5.0  # seconds for a held client to notice that vmgate ended its session
KEYS_WAIT = 6.0  # seconds a view-only client waits for a redraw after Ctrl+Alt+Del


class VncGateway(h.VncHarnessMixin, h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()  # the client's --ca-file / --client-cert (see vnc_client.py)
        cls.realm = socket.gethostname()  # default_realm = "": the host name, as Cyrus does
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        cls.alice_cert = h.make_client_cert(cls.pki, cn="alice", name="alice")
        cls.carol_cert = h.make_client_cert(cls.pki, cn="carol", name="carol")
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS, appname="vnc")
        cls.sasl = {"mech_list": ["SCRAM-SHA-256", "PLAIN"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                    "default_realm": ""}
        cls.qemu = cls.start_vnc_qemu(QEMU_NAME)
        up = cls.qemu.upstream
        vms = [
            h.vnc_vm_entry("vm1", up, users=["alice"]),
            h.vnc_vm_entry("vm2", up, users=["bob"]),
            h.vnc_vm_entry("take", up, users=["alice", "bob"]),  # seat left at its default: takeover
            h.vnc_vm_entry("deny", up, users=["alice", "bob"], seat="deny"),
            h.vnc_vm_entry("same", up, users=["alice", "bob"], seat="same-user"),
            {"name": "view", "vnc": up, "allow": [{"users": ["alice"], "view_only": True}]},
            h.vnc_vm_entry("idle", up, users=["alice"], idle_timeout="%ds" % IDLE),
            h.vnc_vm_entry("down", "unix:" + os.path.join(cls.tmp, "no-such-vnc.sock"), users=["alice"]),
            # a SPICE console too (never reached: only for issuing a SPICE ticket)
            h.vnc_vm_entry("both", up, users=["alice"], spice="unix:" + os.path.join(cls.tmp, "no-such-spice.sock")),
        ]
        cls.ports = {vm["name"]: h.free_port() for vm in vms}
        cls.spice_ticket_port = h.free_port()
        listeners = [h.vnc_listener(port, name) for name, port in cls.ports.items()]
        listeners.append(h.spice_listener(cls.spice_ticket_port, "both", auth=["ticket"]))
        cls.gw = cls.start_gateway(h.gateway_config(cls.pki, listeners, vms, sasl=cls.sasl), name="gw")

        # client certificates: the same VM "cert" (alice only) behind three [tls] settings
        cert_vm = [h.vnc_vm_entry("cert", up, users=["alice"])]
        client_ca = {"client_ca": cls.pki.ca_cert}
        cls.cert_port, cls.email_port, cls.required_port = h.free_port(), h.free_port(), h.free_port()
        cls.gw_cert = cls.start_gateway(h.gateway_config(
            cls.pki, [h.vnc_listener(cls.cert_port, "cert", auth=["certificate"])], cert_vm, sasl=cls.sasl,
            tls=dict(client_ca, client_cert="optional")), name="gw-cert")
        cls.gw_email = cls.start_gateway(h.gateway_config(
            cls.pki, [h.vnc_listener(cls.email_port, "cert", auth=["certificate"])], cert_vm, sasl=cls.sasl,
            tls=dict(client_ca, client_cert="optional", client_identity="email")), name="gw-email")
        cls.gw_required = cls.start_gateway(h.gateway_config(
            cls.pki, [h.vnc_listener(cls.required_port, "cert", auth=["password"])], cert_vm, sasl=cls.sasl,
            tls=dict(client_ca, client_cert="required")), name="gw-required")

    # ---- helpers ---------------------------------------------------------------------------------
    def connect(self, port, user=None, password=None, cert=None, **kw):
        """The gtk-vnc client against a vmgate VNC listener, trusting the test CA; `user` also
        picks the password from PASSWORDS unless `password` is given; `cert` = (cert, key)."""
        if user is not None and password is None:
            password = PASSWORDS[user]
        if cert is not None:
            kw["client_cert"], kw["client_key"] = cert
        return self.vnc_client(host="localhost", port=port, ca_file=self.pki.ca_cert, username=user,
                               password=password, **kw)

    def hold(self, name, port, user, send_keys=True, **kw):
        """A held gtk-vnc session (READY: first frame) of `user`, stopped by PID at the end."""
        return self.held_vnc(name=name, host="localhost", port=port, ca_file=self.pki.ca_cert, username=user,
                             password=PASSWORDS[user], send_keys=send_keys, **kw)

    def the_conn(self, gw, mark):
        """The one connection accepted after audit line `mark` (a VNC accept record); its number."""
        gw.wait_audit("accept", since=mark)
        time.sleep(0.1)
        accepts = gw.audit_events("accept", since=mark)
        self.assertEqual(len(accepts), 1, "one connection expected: %r" % accepts)
        self.assertEqual((accepts[0].get("protocol"), accepts[0].get("tls")), ("vnc", True), accepts[0])
        return accepts[0]["conn"]

    def records(self, gw, event, conn):
        return gw.audit_events(event, conn=conn)

    def the_close(self, gw, conn, security):
        """The one close record of `conn`, with its VeNCrypt subtype as `security`."""
        gw.wait_audit("close", conn=conn, timeout=8.0)
        time.sleep(0.2)  # a duplicate would follow at once
        closes = self.records(gw, "close", conn)
        self.assertEqual(len(closes), 1, "conn %s: %r" % (conn, closes))
        close = closes[0]
        self.assertEqual((close.get("channel"), close.get("security")), ("vnc", security), close)
        self.assertTrue(close.get("reason"), close)
        return close

    def assertLink(self, gw, conn, vm, certificate_cn=None):
        links = self.records(gw, "link", conn)
        self.assertEqual([(l.get("vm"), l.get("channel")) for l in links], [(vm, "vnc")], links)
        if certificate_cn is None:
            self.assertNotIn("client_certificate", links[0], links[0])
        else:
            self.assertIn("CN=%s" % certificate_cn, str(links[0].get("client_certificate")), links[0])
        return links[0]

    def assertAuthOk(self, gw, conn, vm, user, mechanism):
        """One auth ok record. A bare name is in the default realm whatever proved it (a SASL
        login, a certificate CN, a ticket issued for the bare name)."""
        auths = self.records(gw, "auth", conn)
        self.assertEqual([(a.get("result"), a.get("mechanism"), a.get("user"), a.get("realm"), a.get("vm"),
                           a.get("channel")) for a in auths],
                         [("ok", mechanism, user, self.realm, vm, "vnc")], auths)
        return auths[0]

    def assertAuthFailed(self, gw, conn, vm, mechanism, reason, user=None):
        """One failed auth record: `mechanism`, the `reason` the client was told, a detail; no
        decision follows."""
        auths = self.records(gw, "auth", conn)
        self.assertEqual([(a.get("result"), a.get("mechanism"), a.get("vm"), a.get("channel"), a.get("reason"))
                          for a in auths], [("failure", mechanism, vm, "vnc", reason)], auths)
        self.assertTrue(auths[0].get("detail"), auths[0])
        if user is not None:
            self.assertEqual(auths[0].get("user"), user, auths[0])
        self.assertEqual(self.records(gw, "decision", conn), [], "a decision after a failed authentication")
        return auths[0]

    def assertDecision(self, gw, conn, vm, user, allowed):
        decisions = self.records(gw, "decision", conn)
        self.assertEqual([(d.get("allowed"), d.get("vm"), d.get("channel"), d.get("user"), d.get("realm"))
                          for d in decisions], [(allowed, vm, "vnc", user, self.realm)], decisions)
        self.assertTrue(decisions[0].get("reason"), decisions[0])
        if allowed:
            self.assertTrue(decisions[0].get("rule"), decisions[0])
        return decisions[0]

    def assertOpened(self, gw, conn, vm, user, view_only=False):
        """The one channel_open record of `conn`; returns it (its `session` is the gateway's id)."""
        opened = gw.wait_audit("channel_open", conn=conn)
        self.assertEqual(len(opened), 1, opened)
        o = opened[0]
        self.assertEqual((o.get("vm"), o.get("channel"), o.get("user"), o.get("realm"), o.get("view_only"),
                          o.get("desktop_name")), (vm, "vnc", user, self.realm, view_only, DESKTOP), o)
        self.assertIsInstance(o.get("session"), int, o)
        self.assertNotIsInstance(o.get("session"), bool, o)
        self.assertGreaterEqual(o["session"], 1, o)
        return o

    def assertEnded(self, gw, opened, code, timeout=5.0):
        """Exactly one session_end for `opened`'s session, with reason `code`, its vm/user/realm
        and a detail; the connection's one close record names the session (and, when vmgate ended
        it, starts with "CODE: "). Returns the session_end record."""
        session = opened["session"]
        gw.wait_audit("session_end", session=session, timeout=timeout)
        time.sleep(0.2)
        ends = gw.audit_events("session_end", session=session)
        self.assertEqual(len(ends), 1, "exactly one session_end for session %s: %r" % (session, ends))
        end = ends[0]
        self.assertEqual((end.get("reason"), end.get("vm"), end.get("user"), end.get("realm")),
                         (code, opened["vm"], opened["user"], opened["realm"]), end)
        self.assertTrue(end.get("detail"), end)
        close = gw.wait_audit("close", conn=opened["conn"], timeout=timeout)
        self.assertEqual(len(close), 1, close)
        self.assertEqual(close[0].get("session"), session, close[0])
        if code != "client-closed":
            self.assertTrue(str(close[0].get("reason", "")).startswith(code + ": "),
                            "close of a %s session: %r" % (code, close[0]))
        return end

    def assertNoSessionEnd(self, gw, opened):
        self.assertEqual(gw.audit_events("session_end", session=opened["session"]), [],
                         "session %s of %s must not have ended" % (opened["session"], opened["user"]))

    def assertFirstFrame(self, result, auth):
        self.assertVncClient(result, vc.RC_OK)
        self.assertEqual((result.auth, result.types, result.name, result.size), (auth, "19", DESKTOP, "720x400"),
                         result)
        self.assertRegex(result.frame, r"^\d+\.\d+s$", result)

    def assertSession(self, gw, mark, result, vm, user, mechanism, security, auth, certificate_cn=None, conn=None):
        """A client that got its first frame, and the records of its whole connection (the one
        accepted after audit line `mark`, or `conn`): accept, link, auth ok, decision allowed,
        channel_open, session_end client-closed, close."""
        self.assertFirstFrame(result, auth)
        if conn is None:
            conn = self.the_conn(gw, mark)
        self.assertLink(gw, conn, vm, certificate_cn)
        self.assertAuthOk(gw, conn, vm, user, mechanism)
        self.assertDecision(gw, conn, vm, user, True)
        opened = self.assertOpened(gw, conn, vm, user)
        self.assertEnded(gw, opened, "client-closed")
        close = self.the_close(gw, conn, security)
        self.assertEqual((close.get("vm"), close.get("user"), close.get("session")), (vm, user, opened["session"]),
                         close)
        self.assertGreater(close.get("bytes_from_client", 0), 0, close)
        # handshake and ServerInit are about 100 bytes; the ZRLE 720x400 text screen several hundred more
        self.assertGreater(close.get("bytes_to_client", 0), 256, "a 720x400 picture crossed: %r" % close)
        return opened

    def assertRefused(self, gw, mark, result, reason, security, reason_prefix=False):
        """A client refused in SecurityResult: rc 2 with `reason` (exactly, or as its start), no
        channel, no session, one close record. Returns the connection number."""
        self.assertVncClient(result, vc.RC_AUTH)
        if reason_prefix:
            self.assertTrue(str(result.reason).startswith(reason), "reason %r should start with %r: %s" % (
                result.reason, reason, result))
        else:
            self.assertEqual(result.reason, reason, result)
        self.assertEqual((result.init, result.name), ("-", "-"), "a refused client got ServerInit: %s" % result)
        conn = self.the_conn(gw, mark)
        close = self.the_close(gw, conn, security)
        self.assertNotIn("session", close, close)
        self.assertEqual(gw.audit_events("channel_open", since=mark), [], "a refused client got a channel")
        self.assertEqual(gw.audit_events("session_end", since=mark), [], "a refused client had a session")
        return conn

    # ---- X509Plain (262): Cyrus checks the password ------------------------------------------------
    def test_x509plain_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], "alice", auth_subtype=vc.VENCRYPT_X509PLAIN)
        self.assertEqual(r.subtypes, DEFAULT_SUBTYPES, r)
        self.assertSession(self.gw, mark, r, "vm1", "alice", "X509Plain", "X509Plain", "19/262")

    def test_x509plain_wrong_password_refused(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], "alice", password="not-the-password",
                         auth_subtype=vc.VENCRYPT_X509PLAIN)
        conn = self.assertRefused(self.gw, mark, r, AUTH_FAILED, "X509Plain")
        self.assertAuthFailed(self.gw, conn, "vm1", "X509Plain", AUTH_FAILED, user="alice")

    # ---- X509SASL (263) ------------------------------------------------------------------------------
    def test_sasl_scram_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], "alice")  # gtk-vnc's own choice: 263, SCRAM-SHA-256
        self.assertEqual((r.subtypes, r.sasl_mech), (DEFAULT_SUBTYPES, "SCRAM-SHA-256"), r)
        self.assertSession(self.gw, mark, r, "vm1", "alice", "SCRAM-SHA-256", "X509SASL", "19/263")

    def test_sasl_plain_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], "alice", sasl_mech="PLAIN")
        self.assertEqual(r.sasl_mech, "PLAIN", r)
        self.assertSession(self.gw, mark, r, "vm1", "alice", "PLAIN", "X509SASL", "19/263")

    def test_sasl_scram_wrong_password_refused(self):
        """vmgate ends the exchange with complete = 1 (no data) and SecurityResult "authentication
        failed"; gtk-vnc's SCRAM client fails on the missing server-final message before it reads
        SecurityResult (see GTK_VNC_SASL_FAILURE). The PLAIN case below shows the reason arriving."""
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], "alice", password="not-the-password")
        conn = self.assertRefused(self.gw, mark, r, GTK_VNC_SASL_FAILURE, "X509SASL")
        self.assertTrue(str(r.error).startswith("Failed SASL step"), r)
        self.assertAuthFailed(self.gw, conn, "vm1", "SCRAM-SHA-256", AUTH_FAILED, user="alice")

    def test_sasl_plain_wrong_password_refused(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], "alice", password="not-the-password", sasl_mech="PLAIN")
        conn = self.assertRefused(self.gw, mark, r, AUTH_FAILED, "X509SASL")
        self.assertAuthFailed(self.gw, conn, "vm1", "PLAIN", AUTH_FAILED, user="alice")

    # ---- X509Vnc (261): one-time tickets -------------------------------------------------------------
    def test_vnc_ticket_opens_once(self):
        ticket = self.gw.ticket("alice", "vm1", protocol="vnc")
        self.assertEqual(len(ticket), 8, "a VNC ticket has the 8 characters VNC auth uses: %r" % ticket)
        first_mark = self.gw.audit_mark()
        first = self.connect(self.ports["vm1"], password=ticket, auth_subtype=vc.VENCRYPT_X509VNC)
        self.assertFirstFrame(first, "19/261")
        first_conn = self.the_conn(self.gw, first_mark)
        self.gw.wait_audit("close", conn=first_conn)
        # the same ticket again: refused, and the reason says why
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], password=ticket, auth_subtype=vc.VENCRYPT_X509VNC)
        reason = "ticket refused: ticket already used"
        conn = self.assertRefused(self.gw, mark, r, reason, "X509Vnc")
        self.assertAuthFailed(self.gw, conn, "vm1", "X509Vnc", reason)
        # the records of the first connection (last: the realm of a ticket identity is checked there)
        self.assertSession(self.gw, first_mark, first, "vm1", "alice", "ticket", "X509Vnc", "19/261", conn=first_conn)

    def test_vnc_ticket_for_other_vm_or_expired_refused(self):
        ticket = self.gw.ticket("bob", "vm2", protocol="vnc")
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], password=ticket, auth_subtype=vc.VENCRYPT_X509VNC)
        reason = "ticket refused: ticket is for vm2, not vm1"
        conn = self.assertRefused(self.gw, mark, r, reason, "X509Vnc")
        self.assertAuthFailed(self.gw, conn, "vm1", "X509Vnc", reason)

        ticket = self.gw.ticket("alice", "vm1", ttl="1s", protocol="vnc")
        time.sleep(2.0)
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], password=ticket, auth_subtype=vc.VENCRYPT_X509VNC)
        conn = self.assertRefused(self.gw, mark, r, "ticket refused: ticket expired ", "X509Vnc", reason_prefix=True)
        self.assertAuthFailed(self.gw, conn, "vm1", "X509Vnc", r.reason)

    def test_spice_ticket_not_usable_on_vnc(self):
        ticket = self.gw.ticket("alice", "both")  # --protocol left at its default: spice
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["both"], password=ticket, auth_subtype=vc.VENCRYPT_X509VNC)
        reason = "ticket refused: no VNC ticket matches the response (wrong or unknown ticket)"
        conn = self.assertRefused(self.gw, mark, r, reason, "X509Vnc")
        self.assertAuthFailed(self.gw, conn, "both", "X509Vnc", reason)
        # control: a VNC ticket for the same user and VM opens it
        ticket = self.gw.ticket("alice", "both", protocol="vnc")
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["both"], password=ticket, auth_subtype=vc.VENCRYPT_X509VNC)
        self.assertSession(self.gw, mark, r, "both", "alice", "ticket", "X509Vnc", "19/261")

    # ---- policy and upstream refusals, in SecurityResult ----------------------------------------------
    def test_user_allowed_on_other_vm_refused_with_the_policy_reason(self):
        """bob authenticates (SCRAM) but only vm2 names him: the client reads the policy's reason."""
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], "bob")
        conn = self.assertRefused(self.gw, mark, r, "no allow rule of vm1 names bob@%s" % self.realm, "X509SASL")
        self.assertAuthOk(self.gw, conn, "vm1", "bob", "SCRAM-SHA-256")
        decision = self.assertDecision(self.gw, conn, "vm1", "bob", False)
        self.assertEqual(decision.get("reason"), r.reason, decision)
        # control: bob on vm2
        mark = self.gw.audit_mark()
        self.assertSession(self.gw, mark, self.connect(self.ports["vm2"], "bob"), "vm2", "bob", "SCRAM-SHA-256",
                           "X509SASL", "19/263")

    def test_unreachable_display_refused_with_reason(self):
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["down"], "alice")
        conn = self.assertRefused(self.gw, mark, r, "the display of down cannot be reached: ", "X509SASL",
                                  reason_prefix=True)
        self.assertAuthOk(self.gw, conn, "down", "alice", "SCRAM-SHA-256")
        self.assertDecision(self.gw, conn, "down", "alice", True)
        self.assertEqual(self.gw.audit_events("close", conn=conn)[0].get("reason"), r.reason)
        self.assertEqual([s for s in h.sessions_json(self.gw) if s.get("vm") == "down"], [])

    # ---- seats ---------------------------------------------------------------------------------------
    def test_seat_deny_keeps_the_holder(self):
        mark = self.gw.audit_mark()
        alice = self.hold("deny-alice", self.ports["deny"], "alice", send_keys=True)
        a = self.assertOpened(self.gw, self.the_conn(self.gw, mark), "deny", "alice")
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["deny"], "bob")
        reason = 'the seat of deny is held by alice@%s (session %d, seat = "deny")' % (self.realm, a["session"])
        conn = self.assertRefused(self.gw, mark, r, reason, "X509SASL")
        self.assertAuthOk(self.gw, conn, "deny", "bob", "SCRAM-SHA-256")
        self.assertDecision(self.gw, conn, "deny", "bob", True)
        denied = self.records(self.gw, "seat_denied", conn)
        self.assertEqual([(d.get("vm"), d.get("user"), d.get("realm"), d.get("seat"), d.get("holder"),
                           d.get("holder_session")) for d in denied],
                         [("deny", "bob", self.realm, "deny", "alice@%s" % self.realm, a["session"])], denied)
        self.assertEqual(self.gw.audit_events("session_replaced", since=mark), [])
        # the holder keeps working both ways: Ctrl+Alt+Del reaches the guest, which redraws
        self.assertTrue(alice.alive(), "the holder's client ended when a newcomer was refused")
        self.assertNoSessionEnd(self.gw, a)
        events = self.qemu.events.mark()
        result = alice.finish()
        self.assertVncClient(result, vc.RC_OK, "the holder's session should still work both ways")
        self.assertRegex(result.roundtrip, r"^\d+\.\d+s$", result)
        self.qemu.events.wait("RESET", since=events)
        self.assertEnded(self.gw, a, "client-closed")

    def test_seat_takeover_ends_the_holder(self):
        mark = self.gw.audit_mark()
        alice = self.hold("take-alice", self.ports["take"], "alice", send_keys=False)
        a = self.assertOpened(self.gw, self.the_conn(self.gw, mark), "take", "alice")
        mark = self.gw.audit_mark()
        t0 = time.monotonic()
        r = self.connect(self.ports["take"], "bob")
        self.assertFirstFrame(r, "19/263")
        conn = self.the_conn(self.gw, mark)
        b = self.assertOpened(self.gw, conn, "take", "bob")
        self.assertNotEqual(b["session"], a["session"])
        replaced = self.gw.audit_events("session_replaced", since=mark)
        self.assertEqual([(x.get("vm"), x.get("session"), x.get("user"), x.get("by"), x.get("by_session"))
                          for x in replaced],
                         [("take", a["session"], "alice", "bob@%s" % self.realm, b["session"])], replaced)
        end = self.assertEnded(self.gw, a, "taken-over")
        self.assertLess(h.audit_time(end) - h.audit_time(b), 1.0, "the holder's session ended late: %r" % end)
        result = h.wait_client_exit(alice, max(0.5, CLOSED_WITHIN - (time.monotonic() - t0)))
        self.assertIn(result.rc, (vc.RC_IO, vc.RC_CLOSED), "the holder should see its connection closed: %s" % result)
        self.assertEnded(self.gw, b, "client-closed")

    def test_seat_same_user_ticket_takes_over_own_session(self):
        """seat = "same-user": alice may take over her own session. A ticket issued for the bare
        name "alice" is alice in the default realm, as her SASL login is (and as a certificate's
        bare CN is), so it is the same user."""
        mark = self.gw.audit_mark()
        alice = self.hold("same-alice", self.ports["same"], "alice", send_keys=False)
        a = self.assertOpened(self.gw, self.the_conn(self.gw, mark), "same", "alice")
        ticket = self.gw.ticket("alice", "same", protocol="vnc")
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["same"], password=ticket, auth_subtype=vc.VENCRYPT_X509VNC)
        self.assertFirstFrame(r, "19/261")
        b = self.assertOpened(self.gw, self.the_conn(self.gw, mark), "same", "alice")
        self.assertEnded(self.gw, a, "taken-over")
        result = h.wait_client_exit(alice, CLOSED_WITHIN)
        self.assertIn(result.rc, (vc.RC_IO, vc.RC_CLOSED), "the holder should see its connection closed: %s" % result)
        self.assertEnded(self.gw, b, "client-closed")

    # ---- view-only -----------------------------------------------------------------------------------
    def test_view_only_sees_the_screen_but_its_keys_never_reach_qemu(self):
        mark = self.gw.audit_mark()
        events = self.qemu.events.mark()
        # first frame, then Ctrl+Alt+Del: without view-only the guest resets and redraws at once
        r = self.connect(self.ports["view"], "alice", send_keys=True, timeout=KEYS_WAIT)
        self.assertVncClient(r, vc.RC_TIMEOUT, "the view-only client should wait in vain for a redraw")
        self.assertEqual((r.name, r.size), (DESKTOP, "720x400"), r)
        self.assertRegex(r.frame, r"^\d+\.\d+s$", "the view-only client got no frame: %s" % r)
        self.assertIn("no redraw within", r.note, r)
        self.assertEqual([e.get("event") for e in self.qemu.events.events("RESET", since=events)], [],
                         "Ctrl+Alt+Del of a view-only session reached QEMU")
        conn = self.the_conn(self.gw, mark)
        self.assertAuthOk(self.gw, conn, "view", "alice", "SCRAM-SHA-256")
        self.assertDecision(self.gw, conn, "view", "alice", True)
        opened = self.assertOpened(self.gw, conn, "view", "alice", view_only=True)
        self.assertEnded(self.gw, opened, "client-closed")
        self.assertGreater(self.the_close(self.gw, conn, "X509SASL").get("bytes_to_client", 0), 256)
        # control: the same keys from a session that may type do reset the guest
        events = self.qemu.events.mark()
        mark = self.gw.audit_mark()
        r = self.connect(self.ports["vm1"], "alice", send_keys=True)
        self.assertVncClient(r, vc.RC_OK, "Ctrl+Alt+Del round trip without view-only")
        self.qemu.events.wait("RESET", since=events)
        self.assertOpened(self.gw, self.the_conn(self.gw, mark), "vm1", "alice", view_only=False)

    # ---- idle_timeout --------------------------------------------------------------------------------
    def test_idle_timeout_ends_a_session_without_input(self):
        """The client keeps asking for framebuffer updates (and gets the blinking cursor), but
        presses no key: that is not input, and the session ends after idle_timeout."""
        mark = self.gw.audit_mark()
        alice = self.hold("idle-alice", self.ports["idle"], "alice", send_keys=False)
        a = self.assertOpened(self.gw, self.the_conn(self.gw, mark), "idle", "alice")
        end = self.assertEnded(self.gw, a, "idle-timeout", timeout=IDLE + 8)
        lasted = h.audit_time(end) - h.audit_time(a)
        self.assertGreaterEqual(lasted, IDLE - 0.2, "idle_timeout %ds ended the session after %.2fs" % (IDLE, lasted))
        self.assertLessEqual(lasted, IDLE + 3.5, "idle_timeout %ds ended the session after %.2fs" % (IDLE, lasted))
        result = h.wait_client_exit(alice, 3.0)
        self.assertIn(result.rc, (vc.RC_IO, vc.RC_CLOSED), "the client should see its connection closed: %s" % result)
        self.assertNotIn("hold_updates=0 ", result.result + " ", "no updates while held: %s" % result)

    # ---- X509None (260): the client certificate names the user ----------------------------------------
    def test_certificate_identity_first_frame(self):
        mark = self.gw_cert.audit_mark()
        r = self.connect(self.cert_port, cert=self.alice_cert)
        self.assertEqual(r.subtypes, "260", r)
        self.assertSession(self.gw_cert, mark, r, "cert", "alice", "certificate", "X509None", "19/260",
                           certificate_cn="alice")

    def test_certificate_of_user_without_rule_refused(self):
        mark = self.gw_cert.audit_mark()
        r = self.connect(self.cert_port, cert=self.carol_cert)
        conn = self.assertRefused(self.gw_cert, mark, r, "no allow rule of cert names carol@%s" % self.realm,
                                  "X509None")
        self.assertLink(self.gw_cert, conn, "cert", certificate_cn="carol")
        self.assertAuthOk(self.gw_cert, conn, "cert", "carol", "certificate")
        decision = self.assertDecision(self.gw_cert, conn, "cert", "carol", False)
        self.assertEqual(decision.get("reason"), r.reason)

    def test_certificate_without_the_configured_field_refused(self):
        """client_identity = "email", and alice's certificate has a CN but no email address."""
        mark = self.gw_email.audit_mark()
        r = self.connect(self.email_port, cert=self.alice_cert)
        conn = self.assertRefused(self.gw_email, mark, r, "the client certificate names no user: ", "X509None",
                                  reason_prefix=True)
        self.assertGreater(len(r.reason), len("the client certificate names no user: "), r)
        self.assertLink(self.gw_email, conn, "cert", certificate_cn="alice")
        auth = self.assertAuthFailed(self.gw_email, conn, "cert", "X509None", r.reason)
        self.assertIn("CN=alice", auth.get("detail"), auth)

    def test_no_certificate_refused(self):
        mark = self.gw_cert.audit_mark()
        r = self.connect(self.cert_port)
        reason = "this login needs a client certificate"
        conn = self.assertRefused(self.gw_cert, mark, r, reason, "X509None")
        self.assertLink(self.gw_cert, conn, "cert", certificate_cn=None)
        self.assertAuthFailed(self.gw_cert, conn, "cert", "X509None", reason)

    def test_required_certificate_missing_fails_tls(self):
        """client_cert = "required": vmgate fails the TLS handshake of a client without a
        certificate. Under TLS 1.3 the server judges the client's (empty) Certificate only after
        the client has finished its side of the handshake, so gtk-vnc sees the failure on its
        next read (rc 6, "Unable to read from server"), exactly as with QEMU's verify-peer=on
        (test_vnc_harness VncClientCertificate.test_no_client_certificate)."""
        mark = self.gw_required.audit_mark()
        r = self.connect(self.required_port, "alice")
        self.assertVncClient(r, vc.RC_IO, "client_cert = \"required\" and no client certificate")
        self.assertEqual((r.error, r.init, r.name), ("Unable to read from server", "-", "-"), r)
        conn = self.the_conn(self.gw_required, mark)
        for event in ("link", "auth", "decision", "channel_open"):
            self.assertEqual(self.records(self.gw_required, event, conn), [], "%s after a failed TLS handshake" % event)
        close = self.gw_required.wait_audit("close", conn=conn, timeout=8.0)
        self.assertEqual(len(close), 1, close)
        self.assertIn("peer did not return a certificate", close[0].get("reason", ""), close[0])
        self.assertNotIn("session", close[0], close[0])
        # control: with a certificate the same listener lets alice log in with her password
        mark = self.gw_required.audit_mark()
        r = self.connect(self.required_port, "alice", cert=self.alice_cert)
        self.assertSession(self.gw_required, mark, r, "cert", "alice", "X509Plain", "X509Plain", "19/262",
                           certificate_cn="alice")


class VncGatewayTcpUpstream(h.VncHarnessMixin, h.E2ETestCase):
    """A VM whose VNC server listens on loopback TCP with a display password (`password=on`):
    vmgate answers QEMU's VNC authentication with the VM's password_file, read at every
    connection, and only after the client was authorized."""

    QEMU_PASSWORD = "qemu-Vnc"  # 8 characters: all VNC authentication uses

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()
        pki = cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS, appname="vnc")
        cls.qemu = cls.start_vnc_qemu("tcpvm", tcp_port=h.free_port(), password=cls.QEMU_PASSWORD)
        cls.password_file = h.write_secret(os.path.join(cls.tmp, "tcpvm.pass"), cls.QEMU_PASSWORD + "\n")
        vm = h.vnc_vm_entry("tcpvm", cls.qemu.upstream, users=["alice"], password_file=cls.password_file)
        cls.port = h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(pki, [h.vnc_listener(cls.port, "tcpvm")], [vm],
                                                    sasl={"sasldb": sasldb}))

    def connect(self):
        return self.vnc_client(host="localhost", port=self.port, ca_file=self.pki.ca_cert, username="alice",
                               password=PASSWORDS["alice"])

    def test_password_file_answers_qemus_vnc_authentication(self):
        self.assertTrue(self.qemu.upstream.startswith("tcp:127.0.0.1:"), self.qemu.upstream)
        mark = self.gw.audit_mark()
        r = self.connect()
        self.assertVncClient(r, 0, "through vmgate to a password-protected QEMU")
        self.assertEqual(r.name, "QEMU (tcpvm)", r)
        opened = self.gw.wait_audit("channel_open", since=mark)
        self.assertEqual((opened[0].get("vm"), opened[0].get("user")), ("tcpvm", "alice"), opened)

    def test_wrong_password_file_is_a_refusal_with_qemus_reason(self):
        h.write_secret(self.password_file, "wrong-pw\n")
        self.addCleanup(h.write_secret, self.password_file, self.QEMU_PASSWORD + "\n")
        mark = self.gw.audit_mark()
        r = self.connect()
        self.assertVncClient(r, vc.RC_AUTH, "QEMU refuses vmgate's password")
        self.assertTrue(str(r.reason).startswith("the display of tcpvm refused the gateway: "), r)
        close = self.gw.wait_audit("close", since=mark, timeout=8.0)
        self.assertEqual(close[0].get("reason"), r.reason, close)
        self.assertEqual(self.gw.audit_events("channel_open", since=mark), [])


class VncGatewaySniRoute(h.VncHarnessMixin, h.E2ETestCase):
    """route = "sni" on a VNC listener: TigerVNC sends the server name (gtk-vnc does not), so the
    raw RFB client plays that client here. The VM is refused only after authentication."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"), san="DNS:localhost,DNS:*.vms.test,IP:127.0.0.1")
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS, appname="vnc")
        cls.qemu = cls.start_vnc_qemu("snivm")
        vms = [h.vnc_vm_entry("vm1", cls.qemu.upstream, users=["alice"]),
               h.vnc_vm_entry("vm2", cls.qemu.upstream, users=["bob"])]
        cls.port = h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.vnc_listener(cls.port, sni_suffix=".vms.test")], vms, sasl={"sasldb": sasldb}))

    def login(self, server_name, user):
        """X509Plain as `user` with TLS server name `server_name`: (SecurityResult, ServerInit or None)."""
        with raw.RawRfb(port=self.port, timeout=8.0) as r:
            r.vencrypt_x509(raw.VENCRYPT_X509PLAIN, self.pki.ca_cert, server_hostname=server_name)
            r.plain_auth(user, PASSWORDS[user])
            result = r.read_security_result()
            return result, (r.client_init() if result.status == raw.RESULT_OK else None)

    def test_the_server_name_picks_the_vm(self):
        mark = self.gw.audit_mark()
        result, init = self.login("vm1.vms.test", "alice")
        self.assertEqual(result.status, raw.RESULT_OK, result)
        self.assertEqual(init.name, b"QEMU (snivm)", init)
        links = self.gw.wait_audit("link", since=mark)
        self.assertEqual((links[0].get("vm"), links[0].get("server_name")), ("vm1", "vm1.vms.test"), links)
        self.gw.wait_audit("channel_open", since=mark, vm="vm1", user="alice")

    def test_a_vm_the_user_may_not_use_is_refused_with_the_policy_reason(self):
        mark = self.gw.audit_mark()
        result, _ = self.login("vm2.vms.test", "alice")
        self.assertEqual(result.status, raw.RESULT_FAILED, result)
        decision = self.gw.wait_audit("decision", since=mark)[0]
        self.assertEqual((decision.get("vm"), decision.get("allowed")), ("vm2", False), decision)
        self.assertEqual(result.reason.decode(), decision.get("reason"))

    def test_a_name_outside_the_suffix_is_refused_after_authentication(self):
        mark = self.gw.audit_mark()
        result, _ = self.login("localhost", "alice")
        self.assertEqual((result.status, result.reason),
                         (raw.RESULT_FAILED, b'TLS server name "localhost" is not of the form VM.vms.test'))
        self.assertEqual(self.gw.wait_audit("auth", since=mark)[0].get("result"), "ok")
        self.assertEqual(self.gw.audit_events("decision", since=mark), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)

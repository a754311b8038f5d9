"""Seats and live session control through vmgate, end to end (docs/configuration.md [[vm]] seat;
the admin CLI `vmgate sessions`).

A session is one SPICE main channel plus its channels; vmgate numbers each one (the `session` of
its audit records, an integer >= 1) and ends it exactly once with a `session_end` record whose
reason is a fixed code. When vmgate ends a session it closes every channel of it, and the
spice-gtk client holding it sees its channels closed (its process ends with rc 6/7 at once).

    seat = "takeover"   (the default) a newcomer wins; the old session ends "taken-over"
    seat = "deny"       the holder keeps the console; the newcomer's main channel is refused after
                        authentication with the final link result PERMISSION_DENIED (7) and a
                        `seat_denied` record naming the holder
    seat = "same-user"  the holder's own identity may take over; anyone else is refused as by deny

Two QEMUs: qa behind the seat VMs (tests run one after another, each ends its sessions), qb behind
the VMs of the CLI tests. A second user on qa stands by during the kills to show that only the
matching sessions end.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import raw_spice as raw  # noqa: E402

PASSWORDS = {"alice": "alice-Seat-1", "bob": "bob-Seat-2", "carol": "carol-Seat-3", "dave": "dave-Seat-4"}
RC_REFUSED = 2  # a final link result 7 on the main channel makes spice-gtk report ERROR_AUTH
CLOSED_WITHIN = 5.0  # seconds for a held client to notice its session ended


class SpiceSeats(h.LiveSessionMixin, h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS)
        cls.qa = cls.start_qemu("qa")
        cls.qb = cls.start_qemu("qb")
        vms = [
            h.vm_entry("take", cls.qa.upstream, users=["alice", "bob"]),  # seat left at its default
            h.vm_entry("deny", cls.qa.upstream, users=["alice", "bob"], seat="deny"),
            h.vm_entry("same", cls.qa.upstream, users=["alice", "bob"], seat="same-user"),
            h.vm_entry("stand", cls.qa.upstream, users=["dave"]),  # the bystander of the kills
            h.vm_entry("kill", cls.qb.upstream, users=["carol"]),
            h.vm_entry("list", cls.qb.upstream, users=["dave"]),
        ]
        cls.ports = {vm["name"]: h.free_port() for vm in vms}
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(port, name) for name, port in cls.ports.items()], vms,
            sasl={"mech_list": ["SCRAM-SHA-256", "PLAIN"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""}))

    # ---- helpers ---------------------------------------------------------------------------------
    def hold(self, vm, user, name=None, **kw):
        """A held spice-gtk session of `user` on `vm`; returns (client, its main channel_open)."""
        mark = self.gw.audit_mark()
        client = self.held(name or "%s-%s" % (vm, user), self.ports[vm], user, PASSWORDS[user], **kw)
        return client, self.main_open(self.gw, mark, user, vm)

    def finish_ok(self, client, opened):
        """End a held session from the client (after a Ctrl+Alt+Del round trip): rc 0, and the
        session ends "client-closed"."""
        self.assertTrue(client.alive(), "%s's client ended early" % opened["user"])
        result = client.finish()
        self.assertEqual(result.rc, 0, "%s's session should still work both ways: %s" % (opened["user"], result))
        self.assertSessionEnded(self.gw, opened, "client-closed")
        return result

    def refused_newcomer(self, vm, user, holder):
        """`user`'s spice-gtk client on `vm` is refused because `holder` (a main channel_open
        record) holds the seat: rc 2, one seat_denied naming the holder, an allowing decision,
        no channel, a close with link_error permission_denied. Returns the seat_denied record."""
        mark = self.gw.audit_mark()
        r = self.client(host="localhost", tls_port=self.ports[vm], ca_file=self.pki.ca_cert,
                        username=user, password=PASSWORDS[user])
        self.assertClient(r, RC_REFUSED, "%s on %s while %s holds it" % (user, vm, holder["user"]))
        denied = self.gw.wait_audit("seat_denied", since=mark)
        self.assertEqual(len(denied), 1, denied)
        d = denied[0]
        self.assertSeatDenied(d, vm, user, holder)
        conn = d.get("conn")
        auth = self.gw.audit_events("auth", since=mark, conn=conn)
        self.assertEqual([(a.get("result"), a.get("user")) for a in auth], [("ok", user)], auth)
        decisions = self.gw.audit_events("decision", since=mark, conn=conn)
        self.assertEqual([(x.get("channel"), x.get("allowed")) for x in decisions], [("main", True)], decisions)
        self.assertEqual(self.gw.audit_events("channel_open", since=mark), [], "the newcomer got a channel")
        close = self.gw.wait_audit("close", since=mark, conn=conn)
        self.assertEqual(len(close), 1, close)
        self.assertEqual(close[0].get("link_error"), "permission_denied", close[0])
        return d

    def assertSeatDenied(self, record, vm, user, holder):
        self.assertEqual((record.get("vm"), record.get("user")), (vm, user), record)
        self.assertTrue(record.get("realm") is not None, record)
        self.assertIn(record.get("holder"), (holder["user"], "%s@%s" % (holder["user"], holder.get("realm"))),
                      "seat_denied should name the holder: %r" % record)
        self.assertEqual(record.get("holder_session"), holder["session"], record)

    def raw_main_refused(self, vm, user, holder):
        """A raw main link + SASL PLAIN as `user` on `vm`: final result exactly 7, then EOF."""
        mark = self.gw.audit_mark()
        link = raw.RawSpiceLink(self.ports[vm], self.pki.ca_cert)
        self.addCleanup(link.close)
        self.assertEqual(link.link(raw.CHANNEL_MAIN).error, 0, "main link reply")
        self.assertEqual(link.sasl_plain(user, PASSWORDS[user]), (1, 0), "SASL PLAIN as %s" % user)
        self.assertEqual(link.final_result(), h.LINK_ERR_PERMISSION_DENIED, "final link result")
        data, how = link.read_rest()
        self.assertEqual(data, b"", "bytes after the refusing final result")
        conn = self.gw.conn_of_peer_port(link.local_port, since=mark)
        denied = self.gw.wait_audit("seat_denied", since=mark, conn=conn)
        self.assertEqual(len(denied), 1, denied)
        self.assertSeatDenied(denied[0], vm, user, holder)
        close = self.gw.wait_audit("close", since=mark, conn=conn)
        self.assertEqual(close[0].get("link_error"), "permission_denied", close[0])
        link.close()

    def kill(self, *args, expect_rc=0):
        res = h.vmgate_cli(self.gw, "sessions", "kill", *args)
        self.assertEqual(res.rc, expect_rc, "vmgate sessions kill %s: %s" % (" ".join(args), res))
        return res

    # ---- seat = "takeover" -----------------------------------------------------------------------
    def test_takeover_closes_the_first_client_cleanly(self):
        alice, a = self.hold("take", "alice")
        mark = self.gw.audit_mark()
        bob, b = self.hold("take", "bob")  # READY: the newcomer has its first frame
        self.assertNotEqual(b["session"], a["session"], "a new session needs a new id")
        t0 = time.monotonic()
        self.assertClientClosedPromptly(alice, CLOSED_WITHIN)
        self.assertLess(time.monotonic() - t0, CLOSED_WITHIN)
        self.assertSessionEnded(self.gw, a, "taken-over")
        replaced = self.gw.wait_audit("session_replaced", since=mark, vm="take", user="alice")
        self.assertEqual(len(replaced), 1, replaced)
        self.assertNoSessionEnd(self.gw, b)
        self.finish_ok(bob, b)

    # ---- seat = "deny" ---------------------------------------------------------------------------
    def test_deny_keeps_the_holder_and_refuses_the_newcomer(self):
        mark = self.gw.audit_mark()
        alice, a = self.hold("deny", "alice")
        self.wait_session_channels(self.gw, a["session"])
        self.refused_newcomer("deny", "bob", a)
        self.raw_main_refused("deny", "bob", a)
        # the holder's own identity is a newcomer too under "deny"
        self.raw_main_refused("deny", "alice", a)
        self.assertTrue(alice.alive(), "the holder's client ended when a newcomer was refused")
        self.assertNoSessionEnd(self.gw, a)
        self.assertEqual(self.gw.audit_events("session_replaced", since=mark, vm="deny"), [])
        result = self.finish_ok(alice, a)
        self.assertNotIn("hold_updates=0 ", result.result + " ", "the holder stopped getting frames: %s" % result)

    # ---- seat = "same-user" ----------------------------------------------------------------------
    def test_same_user_takes_over_other_user_refused(self):
        alice1, a1 = self.hold("same", "alice", name="same-alice-1")
        self.wait_session_channels(self.gw, a1["session"])
        self.refused_newcomer("same", "bob", a1)
        self.assertTrue(alice1.alive(), "the holder's client ended when bob was refused")
        self.assertNoSessionEnd(self.gw, a1)
        alice2, a2 = self.hold("same", "alice", name="same-alice-2")
        self.assertNotEqual(a2["session"], a1["session"])
        self.assertClientClosedPromptly(alice1, CLOSED_WITHIN)
        self.assertSessionEnded(self.gw, a1, "taken-over")
        self.assertNoSessionEnd(self.gw, a2)
        self.finish_ok(alice2, a2)

    # ---- vmgate sessions kill --------------------------------------------------------------------
    def test_kill_by_user(self):
        dave, d = self.hold("stand", "dave")
        carol, c = self.hold("kill", "carol")
        res = self.kill("--user", "carol")
        self.assertEqual(len(res.lines()), 1, "one line per ended session: %s" % res)
        self.assertClientClosedPromptly(carol, CLOSED_WITHIN)
        self.assertSessionEnded(self.gw, c, "killed")
        mark = self.gw.audit_mark()
        res = self.kill("--user", "carol", expect_rc=1)  # nothing left to match
        self.assertEqual(self.gw.audit_events("session_end", since=mark), [], "a kill that matched nothing ended something")
        self.assertTrue(dave.alive(), "the bystander's client ended")
        self.assertNoSessionEnd(self.gw, d)
        self.finish_ok(dave, d)

    def test_kill_by_id_and_by_vm(self):
        dave, d = self.hold("stand", "dave")
        carol, c = self.hold("kill", "carol", name="kill-carol-1")
        res = self.kill(str(c["session"]))
        self.assertEqual(len(res.lines()), 1, "one line per ended session: %s" % res)
        self.assertClientClosedPromptly(carol, CLOSED_WITHIN)
        self.assertSessionEnded(self.gw, c, "killed")
        mark = self.gw.audit_mark()
        self.kill(str(c["session"]), expect_rc=1)  # that session is gone
        self.assertEqual(self.gw.audit_events("session_end", since=mark), [])

        carol, c2 = self.hold("kill", "carol", name="kill-carol-2")
        res = self.kill("--vm", "kill")
        self.assertEqual(len(res.lines()), 1, "one line per ended session: %s" % res)
        self.assertClientClosedPromptly(carol, CLOSED_WITHIN)
        self.assertSessionEnded(self.gw, c2, "killed")

        self.assertTrue(dave.alive(), "the bystander's client ended")
        self.assertNoSessionEnd(self.gw, d)
        self.finish_ok(dave, d)

    # ---- vmgate sessions --json ------------------------------------------------------------------
    def test_sessions_json_lists_the_live_session(self):
        dave, d = self.hold("list", "dave")
        conns = self.wait_session_channels(self.gw, d["session"])
        time.sleep(0.3)  # let the session's counters move past the handshake
        sessions = h.sessions_json(self.gw)
        self.assertEqual([s.get("id") for s in sessions], [d["session"]], sessions)
        s = sessions[0]
        for key in ("id", "vm", "user", "realm", "mechanism", "source", "since", "channels", "bytes_from_client",
                    "bytes_to_client", "view_only", "rule", "spice_session"):
            self.assertIn(key, s, "sessions --json entry without %r: %r" % (key, s))
        self.assertEqual((s["vm"], s["user"], s["realm"], s["spice_session"], s["view_only"]),
                         ("list", "dave", d["realm"], d["spice_session"], False), s)
        auth = self.gw.audit_events("auth", conn=d["conn"], result="ok")
        self.assertEqual(len(auth), 1, auth)
        self.assertEqual(s["mechanism"], auth[0].get("mechanism"), s)
        self.assertIn("127.0.0.1", str(s["source"]), s)
        self.assertTrue(s["since"], s)
        channels = s["channels"]
        expected = sorted(conns.values())
        if isinstance(channels, int) and not isinstance(channels, bool):
            self.assertEqual(channels, len(expected), s)
        else:
            self.assertIsInstance(channels, list, s)
            names = sorted(c.get("channel") if isinstance(c, dict) else c for c in channels)
            self.assertEqual(names, expected, s)
        for key in ("bytes_from_client", "bytes_to_client"):
            self.assertIsInstance(s[key], int, s)
            self.assertGreater(s[key], 0, s)

        self.finish_ok(dave, d)
        h.wait_until(lambda: h.sessions_json(self.gw) == [], 5.0, interval=0.2,
                     what="an empty `vmgate sessions --json` after the client left")


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Session binding through vmgate, end to end (spice-protocol.md 6.2, 11 step 3; design.md
"Sessions and seats").

A SPICE session is one main channel plus the channels that present its session id (the
connection_id of their link, learnt from SPICE_MSG_MAIN_INIT). vmgate must accept a secondary
channel only if it names a live session on the same VM and authenticates as the session's owner.
spice-gtk never sends the links that probe this, so a raw TLS client (vmgate_e2e.raw_spice) does
the link and SASL PLAIN / ticket exchange byte by byte; real spice-gtk sessions (SCRAM and
tickets) are the sessions being probed. Outcomes are the final link result the raw client reads,
the spice-gtk client's own result, and vmgate's audit records.
"""

import os
import random
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import raw_spice as raw  # noqa: E402

PASSWORDS = {"alice": "alice-Sess-1", "bob": "bob-Sess-2"}


class SpiceSessions(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS)
        cls.vm1 = cls.start_qemu("vm1")
        cls.port, cls.ticket_port = h.free_port(), h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki,
            [h.spice_listener(cls.port, "vm1"), h.spice_listener(cls.ticket_port, "vm1", auth=["ticket"])],
            [h.vm_entry("vm1", cls.vm1.upstream, users=["alice", "bob"])],  # both may use vm1
            sasl={"mech_list": ["SCRAM-SHA-256", "PLAIN"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""}))

    # ---- helpers ---------------------------------------------------------------------------------
    def held(self, name, **kw):
        """A spice-gtk session kept open (first frame reached); stopped at the end of the test."""
        kw.setdefault("username", None)
        client = h.HeldClient(self.home, roundtrip=True, name=name, host="localhost",
                              ca_file=self.pki.ca_cert, **kw)
        self.addCleanup(client.stop)
        self.log_sources.append(("%s stderr" % name, lambda: h.read_tail(client.stderr_path, 40)))
        return client.start()

    def raw(self, port=None):
        link = raw.RawSpiceLink(port or self.port, self.pki.ca_cert)
        self.addCleanup(link.close)
        return link

    def session_of(self, mark, user):
        """The session id vmgate recorded for `user`'s main channel after audit line `mark`."""
        opened = self.gw.wait_audit("channel_open", since=mark, channel="main", user=user)
        self.assertEqual(len(opened), 1, opened)
        session = opened[0].get("spice_session")
        self.assertIsInstance(session, int, opened[0])
        self.assertNotEqual(session, 0, opened[0])
        return session

    def sasl_display_link(self, user, connection_id):
        """Raw display link + SASL PLAIN as `user`; returns (final result, link)."""
        link = self.raw()
        reply = link.link(raw.CHANNEL_DISPLAY, connection_id=connection_id)
        self.assertEqual(reply.error, 0, "display link reply")
        self.assertTrue(reply.has_common(raw.COMMON_CAP_AUTH_SASL), reply.common_caps)
        complete, sasl_result = link.sasl_plain(user, PASSWORDS[user])
        self.assertEqual((complete, sasl_result), (1, 0), "SASL PLAIN as %s must succeed" % user)
        result = link.final_result()
        return result, link

    def assertRefusedChannel(self, link, mark, result, expected, connection_id):
        """Final result `expected`, then EOF; audit: link with that connection id, no
        channel_open, one close with the matching link_error and a reason. Returns the close."""
        self.assertEqual(result, expected, "final link result")
        data, how = link.read_rest()
        self.assertEqual(data, b"", "bytes after a refusing final result")
        self.assertIn(how, ("eof", "reset"))
        conn = self.gw.conn_of_peer_port(link.local_port, since=mark)
        links = self.gw.audit_events("link", since=mark, conn=conn)
        self.assertEqual([l.get("connection_id") for l in links], [connection_id], links)
        self.assertEqual(self.gw.audit_events("channel_open", since=mark, conn=conn), [])
        close = self.gw.wait_audit("close", since=mark, conn=conn)
        self.assertEqual(len(close), 1, close)
        self.assertTrue(close[0].get("reason"), close[0])
        return conn, close[0]

    def unused_session_id(self):
        live = {e.get("spice_session") for e in self.gw.audit_events("channel_open")}
        while True:
            candidate = random.randint(1, 0xFFFFFFFF)
            if candidate not in live:
                return candidate

    # ---- tests -----------------------------------------------------------------------------------
    def test_a_display_link_without_any_session_gets_bad_connection_id(self):
        """No session exists at all: valid credentials, then final result 8, never a channel."""
        connection_id = self.unused_session_id()
        mark = self.gw.audit_mark()
        result, link = self.sasl_display_link("alice", connection_id)
        conn, close = self.assertRefusedChannel(link, mark, result, raw.LINK_ERR_BAD_CONNECTION_ID,
                                                connection_id)
        self.assertEqual(close.get("link_error"), "bad_connection_id", close)
        self.assertIn(str(connection_id), close["reason"], "the close reason should name the unknown id")
        auth = self.gw.audit_events("auth", since=mark, conn=conn)
        self.assertEqual([(a.get("result"), a.get("user"), a.get("mechanism")) for a in auth],
                         [("ok", "alice", "PLAIN")], auth)

    def test_b_other_user_cannot_join_but_owner_can(self):
        mark = self.gw.audit_mark()
        alice = self.held("alice-scram", tls_port=self.port, username="alice", password=PASSWORDS["alice"])
        session = self.session_of(mark, "alice")

        # bob: valid credentials, allowed on vm1, but the session is alice's
        mark_bob = self.gw.audit_mark()
        result, link = self.sasl_display_link("bob", session)
        conn, close = self.assertRefusedChannel(link, mark_bob, result, raw.LINK_ERR_BAD_CONNECTION_ID, session)
        self.assertEqual(close.get("link_error"), "bad_connection_id", close)
        self.assertIn(str(session), close["reason"], close)
        self.assertEqual([a.get("user") for a in self.gw.audit_events("auth", since=mark_bob, conn=conn,
                                                                       result="ok")], ["bob"])
        self.assertTrue(alice.alive(), "alice's session ended when bob tried to join it")

        # alice's own raw display link with her session id: final result 0, a channel of her session
        mark_own = self.gw.audit_mark()
        result, link = self.sasl_display_link("alice", session)
        self.assertEqual(result, 0, "alice's own display link with her session id")
        conn = self.gw.conn_of_peer_port(link.local_port, since=mark_own)
        opened = self.gw.wait_audit("channel_open", since=mark_own, conn=conn)
        self.assertEqual([(o.get("channel"), o.get("spice_session"), o.get("user")) for o in opened],
                         [("display", session, "alice")], opened)
        # (spice-server keeps one display channel 0 per client, so QEMU itself soon drops this
        # second one: its close reason is "upstream closed". That is QEMU's call, not vmgate's.)
        link.close()
        self.gw.wait_audit("close", since=mark_own, conn=conn)

        # alice's spice-gtk session still works both ways (Ctrl+Alt+Del -> guest reset -> redraw)
        self.assertTrue(alice.alive(), "alice's session ended")
        result = alice.finish()
        self.assertEqual(result.rc, 0, "alice's held session after the raw links: %s" % result)
        self.assertEqual(self.gw.audit_events("session_replaced", since=mark), [])

    def test_c_main_link_with_nonzero_connection_id_refused_before_auth(self):
        """A main link with a connection id would put QEMU in migration-target mode (6.2):
        a full-size link error reply BAD_CONNECTION_ID, then close; no authentication at all."""
        connection_id = 0x2A2A2A2A
        mark = self.gw.audit_mark()
        link = self.raw()
        link.send(h.link_message(channel_type=raw.CHANNEL_MAIN, connection_id=connection_id))
        data, how = link.read_rest(timeout=5)
        self.assertIn(how, ("eof", "reset"))
        self.assertEqual(len(data), h.LINK_ERROR_REPLY_SIZE,
                         "expected exactly one 194-byte link error reply, got %d bytes: %r" % (len(data), data[:64]))
        magic, major, minor, size, error, rest = h.parse_link_reply(data)
        self.assertEqual((magic, major, minor, size), (b"REDQ", 2, 2, h.LINK_REPLY_SIZE))
        self.assertEqual(error, raw.LINK_ERR_BAD_CONNECTION_ID)
        self.assertEqual(rest, bytes(h.LINK_REPLY_SIZE - 4), "an error reply is all zero but the code")
        conn = self.gw.conn_of_peer_port(link.local_port, since=mark)
        close = self.gw.wait_audit("close", since=mark, conn=conn)[0]
        self.assertEqual(close.get("link_error"), "bad_connection_id", close)
        self.assertTrue(close.get("reason"), close)
        links = self.gw.audit_events("link", since=mark, conn=conn)
        self.assertEqual([(l.get("channel"), l.get("connection_id")) for l in links], [("main", connection_id)])
        for event in ("auth", "decision", "channel_open"):
            self.assertEqual(self.gw.audit_events(event, since=mark, conn=conn), [],
                             "%s record for a main link refused before authentication" % event)

    def test_d_ticket_session_channels_and_ticket_on_another_session(self):
        ticket = self.gw.ticket("alice", "vm1", "60s")
        mark = self.gw.audit_mark()
        alice = self.held("alice-ticket", tls_port=self.ticket_port, password=ticket)
        session = self.session_of(mark, "alice")

        # every secondary channel spice-gtk opened joined the ticket's session, each one
        # authenticated with the same ticket
        opened = {}
        for channel in ("display", "cursor", "inputs"):
            records = self.gw.wait_audit("channel_open", since=mark, channel=channel)
            self.assertEqual(len(records), 1, records)
            opened[channel] = records[0]
        for channel, record in list(opened.items()) + [("main", self.gw.audit_events(
                "channel_open", since=mark, channel="main")[0])]:
            self.assertEqual((record.get("spice_session"), record.get("user")), (session, "alice"), record)
            auth = self.gw.audit_events("auth", since=mark, conn=record["conn"])
            self.assertEqual([(a.get("result"), a.get("mechanism"), a.get("user")) for a in auth],
                             [("ok", "ticket", "alice")], "%s channel: %r" % (channel, auth))

        # the same ticket on a raw display link naming a different session: refused
        other = session ^ 0x5A5A5A5A or 1
        mark_other = self.gw.audit_mark()
        link = self.raw(self.ticket_port)
        reply = link.link(raw.CHANNEL_DISPLAY, connection_id=other)
        self.assertEqual(reply.error, 0)
        self.assertTrue(reply.has_common(raw.COMMON_CAP_AUTH_SPICE), reply.common_caps)
        self.assertFalse(reply.has_common(raw.COMMON_CAP_AUTH_SASL), "ticket-only listener offers SASL")
        link.ticket(ticket)
        result = link.final_result()
        # The ticket check runs before the session lookup: the ticket is bound to another
        # session, so authentication itself fails (7, PERMISSION_DENIED).
        self.assertEqual(result, h.LINK_ERR_PERMISSION_DENIED)
        conn, close = self.assertRefusedChannel(link, mark_other, result, result, other)
        failures = self.gw.audit_events("auth", since=mark_other, conn=conn, result="failure")
        self.assertEqual(len(failures), 1, failures)
        self.assertEqual(failures[0].get("mechanism"), "ticket", failures[0])
        self.assertIn("another session", failures[0].get("reason", ""), failures[0])
        self.assertEqual(close.get("link_error"), "permission_denied", close)

        # control: the same ticket with its own session id opens a channel of that session
        mark_own = self.gw.audit_mark()
        link = self.raw(self.ticket_port)
        self.assertEqual(link.link(raw.CHANNEL_DISPLAY, connection_id=session).error, 0)
        link.ticket(ticket)
        self.assertEqual(link.final_result(), 0, "the ticket on its own session")
        conn = self.gw.conn_of_peer_port(link.local_port, since=mark_own)
        opened = self.gw.wait_audit("channel_open", since=mark_own, conn=conn)
        self.assertEqual([(o.get("channel"), o.get("spice_session")) for o in opened], [("display", session)])
        link.close()

        result = alice.finish()
        self.assertEqual(result.rc, 0, "the ticket session after the raw links: %s" % result)


if __name__ == "__main__":
    unittest.main(verbosity=2)

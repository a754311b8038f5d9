"""The plain SPICE listener: it answers every link with NEED_SECURED and never carries data.

spice-gtk given both ports (spice://localhost?port=PLAIN&tls-port=TLS) links on the plain port
first, gets NEED_SECURED, reconnects that channel over TLS and authenticates there. A raw client
on the plain port gets exactly the 194-byte NEED_SECURED reply and nothing else, whatever it sends.
"""

import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

USER, PASSWORD = "alice", "alice-Upgrade-1"
HANDSHAKE_TIMEOUT = 3.0
SLACK = 2.0

# channel types (spice-protocol.md 6.1): main, display, inputs, cursor, playback, record, usbredir
CHANNEL_TYPES = (1, 2, 3, 4, 5, 6, 9)


class SpiceUpgrade(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), {USER: PASSWORD})
        cls.vm1 = cls.start_qemu("vm1")
        cls.plain_port, cls.tls_port = h.free_port(), h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki,
            [h.spice_listener(cls.plain_port, "vm1", tls=False),
             h.spice_listener(cls.tls_port, "vm1", tls=True)],
            [h.vm_entry("vm1", cls.vm1.upstream, users=[USER])],
            sasl={"mech_list": ["SCRAM-SHA-256", "PLAIN"], "sasldb": sasldb, "pwcheck_method": "auxprop"}))

    def plain_accepts(self, mark):
        return [a for a in self.gw.audit_events("accept", since=mark) if a.get("tls") is False]

    def assertNeedSecured(self, data):
        self.assertEqual(len(data), h.LINK_ERROR_REPLY_SIZE,
                         "expected exactly the 194-byte NEED_SECURED reply, got %d bytes: %r" % (len(data), data[:256]))
        magic, major, minor, size, error, rest = h.parse_link_reply(data)
        self.assertEqual(magic, b"REDQ")
        self.assertEqual((major, minor), (2, 2))
        self.assertEqual(size, h.LINK_REPLY_SIZE)
        self.assertEqual(error, h.LINK_ERR_NEED_SECURED)
        self.assertEqual(rest, bytes(h.LINK_REPLY_SIZE - 4), "the rest of an error reply must be zero")

    def raw_plain(self, payloads, wait=HANDSHAKE_TIMEOUT + SLACK):
        """Send each payload on a plain connection; return (bytes received, how it ended, conn)."""
        mark = self.gw.audit_mark()
        with socket.create_connection(("127.0.0.1", self.plain_port), timeout=5) as s:
            local_port = s.getsockname()[1]
            for p in payloads:
                try:
                    s.sendall(p)
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server may already have answered and closed
            data, how, seconds = h.recv_until_eof(s, wait)
        conn = self.gw.conn_of_peer_port(local_port, since=mark)
        return data, how, conn, mark

    # ---- a real client upgrades ---------------------------------------------------------------
    def test_client_upgrades_to_tls_and_gets_first_frame(self):
        mark = self.gw.audit_mark()
        uri = "spice://localhost?port=%d&tls-port=%d" % (self.plain_port, self.tls_port)
        r = self.client(uri=uri, ca_file=self.pki.ca_cert, username=USER, password=PASSWORD)
        self.assertClient(r, 0)
        closes = self.assertClosedOnce(self.gw, mark)
        plain = self.plain_accepts(mark)
        self.assertTrue(plain, "the client never tried the plain port; audit:\n" + self.gw.audit_tail())
        for a in plain:
            self.assertEqual(closes[a["conn"]].get("link_error"), "need_secured", closes[a["conn"]])
        plain_conns = {a["conn"] for a in plain}
        for e in self.gw.audit_events(since=mark):
            if e.get("conn") in plain_conns:
                self.assertNotIn(e.get("event"), ("auth", "decision", "channel_open"),
                                 "the plain port went past NEED_SECURED: %r" % e)
        opened = self.gw.audit_events("channel_open", since=mark)
        self.assertLessEqual({"main", "display"}, {o.get("channel") for o in opened}, opened)
        self.assertTrue(all(o.get("conn") not in plain_conns for o in opened), opened)

    # ---- raw clients on the plain port --------------------------------------------------------
    def test_raw_link_gets_exactly_need_secured(self):
        data, how, conn, mark = self.raw_plain([h.link_message()])
        self.assertNeedSecured(data)
        self.assertEqual(how, "eof", "the plain port must close after NEED_SECURED within %ss"
                         % (HANDSHAKE_TIMEOUT + SLACK))
        close = self.assertClosedOnce(self.gw, mark)[conn]
        self.assertEqual(close.get("link_error"), "need_secured", close)

    def test_plain_close_record_counts_the_bytes(self):
        """The audit record of a plain connection says what crossed: the link in, 194 bytes out."""
        link = h.link_message()
        data, how, conn, mark = self.raw_plain([link])
        self.assertNeedSecured(data)
        close = self.assertClosedOnce(self.gw, mark)[conn]
        self.assertEqual(close.get("bytes_to_client"), h.LINK_ERROR_REPLY_SIZE, close)
        self.assertEqual(close.get("bytes_from_client"), len(link), close)

    def test_every_channel_type_gets_need_secured(self):
        for channel_type in CHANNEL_TYPES:
            with self.subTest(channel_type=channel_type):
                link = h.link_message(channel_type=channel_type, connection_id=0 if channel_type == 1 else 0x1234,
                                      channel_caps=())
                data, how, conn, mark = self.raw_plain([link])
                self.assertNeedSecured(data)

    def test_credentials_after_the_link_get_nothing_more(self):
        """A client that ignores NEED_SECURED and pushes a SASL PLAIN exchange in clear gets
        nothing but the one reply: no mechanism list, no result."""
        plain_payload = b"\0alice\0" + PASSWORD.encode() + b"\0"
        follow = (struct.pack("<I", 2) + struct.pack("<I", 5) + b"PLAIN" +
                  struct.pack("<I", len(plain_payload)) + plain_payload)
        data, how, conn, mark = self.raw_plain([h.link_message(), follow, struct.pack("<I", 1) + bytes(128)])
        self.assertNeedSecured(data)
        self.assertClosedOnce(self.gw, mark)
        self.assertEqual(self.gw.audit_events("auth", since=mark), [])
        self.assertEqual(self.gw.audit_events("channel_open", since=mark), [])

    def test_ticket_client_without_auth_selection_gets_only_need_secured(self):
        """A legacy client (no AUTH_SELECTION) sends its 128-byte ticket right after the link."""
        data, how, conn, mark = self.raw_plain([h.link_message(common_caps=(0x02,)) + bytes(128)])
        self.assertNeedSecured(data)

    def test_wrong_magic_on_plain_port_gets_link_error_only(self):
        data, how, conn, mark = self.raw_plain([h.link_message(magic=b"XXXX")])
        self.assertEqual(len(data), h.LINK_ERROR_REPLY_SIZE, data[:256])
        magic, major, minor, size, error, rest = h.parse_link_reply(data)
        self.assertEqual((magic, size, error), (b"REDQ", h.LINK_REPLY_SIZE, h.LINK_ERR_INVALID_MAGIC))
        self.assertEqual(how, "eof")
        close = self.assertClosedOnce(self.gw, mark)[conn]
        self.assertEqual(close.get("link_error"), "invalid_magic", close)


if __name__ == "__main__":
    unittest.main(verbosity=2)

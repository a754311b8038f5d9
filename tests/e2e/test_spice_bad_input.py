"""Malformed, truncated and stalled handshakes against a running vmgate, while a good session runs.

Raw sockets and Python's ssl module (trusting the test CA) play the bad clients. Expected
answers follow spice-server (test_harness.py checks the same inputs against QEMU itself): a full
194-byte link error reply with the SPICE error code, then close. Stalled handshakes must be cut
at handshake_timeout (3 s) plus 2 s of slack. Every connection must leave one audit "close"
with a reason. A spice-gtk session started before the first bad client must survive all of it
and still work both ways at the end (Ctrl+Alt+Del through the inputs channel resets the guest,
whose redraw must come back through the display channel).
"""

import os
import socket
import ssl
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

USER, PASSWORD = "alice", "alice-Bad-Input-1"
HANDSHAKE_TIMEOUT = 3.0
SLACK = 2.0
DEADLINE = HANDSHAKE_TIMEOUT + SLACK
# A stalled connection must not be dropped much before the deadline either: dropping a client
# that is merely slow (a link split across TCP segments) would break real clients.
EARLIEST_TIMEOUT_CLOSE = 1.5

SASL_CAPABLE_MAIN = dict(common_caps=(0x0D,), channel_caps=(0x0F,))  # as spice-gtk sends it


class SpiceBadInput(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), {USER: PASSWORD})
        cls.vm1 = cls.start_qemu("vm1")
        cls.tls_port, cls.plain_port = h.free_port(), h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki,
            [h.spice_listener(cls.tls_port, "vm1"), h.spice_listener(cls.plain_port, "vm1", tls=False)],
            [h.vm_entry("vm1", cls.vm1.upstream, users=[USER])],
            sasl={"mech_list": ["SCRAM-SHA-256", "PLAIN"], "sasldb": sasldb, "pwcheck_method": "auxprop"},
            gateway={"handshake_timeout": "%ds" % HANDSHAKE_TIMEOUT}))
        # the good session, kept open through every bad client below
        cls.held = h.HeldClient(cls.home, roundtrip=True, host="localhost", tls_port=cls.tls_port,
                                ca_file=cls.pki.ca_cert, username=USER, password=PASSWORD)
        cls.addClassCleanup(cls.held.stop)
        cls.held.start()
        cls.log_sources.append(("held client stderr", lambda: h.read_tail(cls.held.stderr_path, 40)))

    # ---- helpers ---------------------------------------------------------------------------------
    def setUp(self):
        self.assertGoodSessionAlive("before " + self._testMethodName)

    def assertGoodSessionAlive(self, when):
        if self._testMethodName.startswith("test_zz"):
            return
        if not self.held.alive():
            result = self.held.finish()
            self.fail("the good spice-gtk session ended %s: %s" % (when, result))

    def tls_connect(self):
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        local_port = raw.getsockname()[1]
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        return ctx.wrap_socket(raw, server_hostname="localhost"), local_port

    def assertLinkError(self, data, error):
        self.assertEqual(len(data), h.LINK_ERROR_REPLY_SIZE,
                         "expected one 194-byte link error reply, got %d bytes: %r" % (len(data), data[:256]))
        magic, major, minor, size, err, rest = h.parse_link_reply(data)
        self.assertEqual((magic, major, minor, size), (b"REDQ", 2, 2, h.LINK_REPLY_SIZE))
        self.assertEqual(err, error, "link error code")
        self.assertEqual(rest, bytes(h.LINK_REPLY_SIZE - 4))

    def closed_record(self, conn, mark, timeout=DEADLINE + 2):
        record = self.gw.wait_audit("close", since=mark, conn=conn, timeout=timeout)[0]
        self.assertTrue(record.get("reason"), record)
        time.sleep(0.1)
        self.assertEqual(len(self.gw.audit_events("close", since=mark, conn=conn)), 1,
                         "more than one close record for conn %s" % conn)
        self.assertEqual(self.gw.audit_events("channel_open", since=mark, conn=conn), [])
        return record

    def send_and_read(self, payload, timeout=DEADLINE):
        """TLS connection: send payload, read until EOF. Returns (data, how, seconds, conn, mark)."""
        mark = self.gw.audit_mark()
        s, local_port = self.tls_connect()
        with s:
            s.sendall(payload)
            data, how, seconds = h.recv_until_eof(s, timeout)
        conn = self.gw.conn_of_peer_port(local_port, since=mark)
        return data, how, seconds, conn, mark

    def tearDown(self):
        self.assertGoodSessionAlive("after " + self._testMethodName)

    # ---- malformed links ---------------------------------------------------------------------------
    def test_wrong_magic(self):
        data, how, _, conn, mark = self.send_and_read(h.link_message(magic=b"XXXX"))
        self.assertLinkError(data, h.LINK_ERR_INVALID_MAGIC)
        self.assertEqual(how, "eof")
        close = self.closed_record(conn, mark)
        self.assertEqual(close.get("link_error"), "invalid_magic", close)

    def test_header_size_over_4096(self):
        data, how, _, conn, mark = self.send_and_read(h.link_message(size=4097) + bytes(64))
        self.assertLinkError(data, h.LINK_ERR_INVALID_DATA)
        self.assertEqual(how, "eof")
        self.assertTrue(self.closed_record(conn, mark).get("link_error"))

    def test_header_size_under_18(self):
        data, how, _, conn, mark = self.send_and_read(h.link_message(size=10))
        self.assertLinkError(data, h.LINK_ERR_INVALID_DATA)
        self.assertEqual(how, "eof")
        self.closed_record(conn, mark)

    def test_caps_count_over_1024(self):
        for field in ("num_common", "num_channel"):
            with self.subTest(field=field):
                data, how, _, conn, mark = self.send_and_read(h.link_message(**{field: 1025}))
                self.assertLinkError(data, h.LINK_ERR_INVALID_DATA)
                self.assertEqual(how, "eof")
                self.assertTrue(self.closed_record(conn, mark).get("link_error"))

    def test_caps_outside_message(self):
        data, how, _, conn, mark = self.send_and_read(h.link_message(num_common=50))
        self.assertLinkError(data, h.LINK_ERR_INVALID_DATA)
        self.closed_record(conn, mark)

    def test_major_version_mismatch(self):
        data, how, _, conn, mark = self.send_and_read(h.link_message(major=3))
        self.assertLinkError(data, h.LINK_ERR_VERSION_MISMATCH)
        self.closed_record(conn, mark)

    def test_garbage_after_link(self):
        """A good link followed by an unknown auth mechanism word: the OK reply, then a link
        error reply INVALID_DATA (what spice-server does), then close."""
        data, how, _, conn, mark = self.send_and_read(
            h.link_message(**SASL_CAPABLE_MAIN) + struct.pack("<I", 0xDEADBEEF) + b"garbage" * 10)
        magic, major, minor, size, error, _ = h.parse_link_reply(data)
        self.assertEqual((magic, error), (b"REDQ", h.LINK_ERR_OK), data[:64])
        self.assertLinkError(data[h.LINK_HEADER_SIZE + size:], h.LINK_ERR_INVALID_DATA)
        self.assertEqual(how, "eof")
        self.closed_record(conn, mark)
        self.assertEqual(self.gw.audit_events("auth", since=mark, conn=conn, result="ok"), [])

    def test_sasl_mechname_too_long(self):
        """SASL selected, then a mechanism name length far beyond any real one: close."""
        mark = self.gw.audit_mark()
        s, local_port = self.tls_connect()
        with s:
            s.sendall(h.link_message(**SASL_CAPABLE_MAIN))
            header = h.recv_exact(s, h.LINK_HEADER_SIZE, 5)
            (size,) = struct.unpack("<I", header[12:16])
            reply = h.recv_exact(s, size, 5)
            (error,) = struct.unpack("<I", reply[:4])
            self.assertEqual(error, h.LINK_ERR_OK)
            s.sendall(struct.pack("<I", 2))                   # SASL
            (mechlist_len,) = struct.unpack("<I", h.recv_exact(s, 4, 5))
            mechlist = h.recv_exact(s, mechlist_len, 5)
            self.assertIn(b"SCRAM-SHA-256", mechlist)
            try:
                s.sendall(struct.pack("<I", 1 << 20) + b"A" * 200)
            except (BrokenPipeError, ConnectionResetError):
                pass
            data, how, seconds = h.recv_until_eof(s, DEADLINE)
        self.assertIn(how, ("eof", "reset"), "still open %.1fs after a 1 MiB mechname length" % seconds)
        conn = self.gw.conn_of_peer_port(local_port, since=mark)
        self.closed_record(conn, mark)
        self.assertEqual(self.gw.audit_events("auth", since=mark, conn=conn, result="ok"), [])

    # ---- truncated / stalled clients -----------------------------------------------------------------
    def test_truncated_header_then_client_closes(self):
        mark = self.gw.audit_mark()
        s, local_port = self.tls_connect()
        s.sendall(h.link_message()[:8])
        time.sleep(0.3)
        s.close()
        conn = self.gw.conn_of_peer_port(local_port, since=mark)
        # the gateway sees the EOF at once; it must not need the handshake deadline to notice
        record = self.closed_record(conn, mark, timeout=HANDSHAKE_TIMEOUT - 0.5)
        self.assertTrue(record.get("reason"))

    def assertCutAtDeadline(self, how, seconds_since_start, data, what):
        self.assertIn(how, ("eof", "reset"), "%s: connection still open after %.1fs (deadline %ss + %ss)"
                      % (what, seconds_since_start, HANDSHAKE_TIMEOUT, SLACK))
        self.assertLessEqual(seconds_since_start, DEADLINE, what)
        self.assertGreaterEqual(seconds_since_start, EARLIEST_TIMEOUT_CLOSE,
                                "%s: closed after only %.2fs; a slow client is not a dead one"
                                % (what, seconds_since_start))
        if data:  # an error reply is allowed, garbage is not
            self.assertLinkError(data, h.parse_link_reply(data)[4])

    def test_half_link_then_silence(self):
        mark = self.gw.audit_mark()
        t0 = time.monotonic()
        s, local_port = self.tls_connect()
        with s:
            link = h.link_message()
            s.sendall(link[:len(link) // 2])
            data, how, _ = h.recv_until_eof(s, DEADLINE + 3)
        self.assertCutAtDeadline(how, time.monotonic() - t0, data, "half a link")
        conn = self.gw.conn_of_peer_port(local_port, since=mark)
        self.closed_record(conn, mark)

    def test_silence_after_sasl_mechlist(self):
        """Link and SASL selection done, then nothing: the auth step has a deadline too."""
        mark = self.gw.audit_mark()
        t0 = time.monotonic()
        s, local_port = self.tls_connect()
        with s:
            s.sendall(h.link_message(**SASL_CAPABLE_MAIN))
            header = h.recv_exact(s, h.LINK_HEADER_SIZE, 5)
            (size,) = struct.unpack("<I", header[12:16])
            h.recv_exact(s, size, 5)
            s.sendall(struct.pack("<I", 2))
            (mechlist_len,) = struct.unpack("<I", h.recv_exact(s, 4, 5))
            h.recv_exact(s, mechlist_len, 5)
            data, how, _ = h.recv_until_eof(s, DEADLINE + 3)
        elapsed = time.monotonic() - t0
        self.assertIn(how, ("eof", "reset"), "still open %.1fs after connect" % elapsed)
        self.assertLessEqual(elapsed, DEADLINE)
        conn = self.gw.conn_of_peer_port(local_port, since=mark)
        self.closed_record(conn, mark)
        self.assertEqual(self.gw.audit_events("auth", since=mark, conn=conn, result="ok"), [])

    def test_tls_client_never_sends_client_hello(self):
        mark = self.gw.audit_mark()
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as s:
            local_port = s.getsockname()[1]
            data, how, _ = h.recv_until_eof(s, DEADLINE + 3)
        elapsed = time.monotonic() - t0
        self.assertIn(how, ("eof", "reset"), "TLS port kept a silent connection %.1fs" % elapsed)
        self.assertLessEqual(elapsed, DEADLINE)
        self.assertGreaterEqual(elapsed, EARLIEST_TIMEOUT_CLOSE)
        conn = self.gw.conn_of_peer_port(local_port, since=mark)
        self.closed_record(conn, mark)

    def test_plain_spice_on_tls_port(self):
        """A cleartext SPICE link where a ClientHello is expected: no SPICE answer, close."""
        mark = self.gw.audit_mark()
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as s:
            local_port = s.getsockname()[1]
            s.sendall(h.link_message())
            data, how, seconds = h.recv_until_eof(s, DEADLINE)
        self.assertIn(how, ("eof", "reset"))
        self.assertNotIn(b"REDQ", data, "a SPICE reply crossed in clear on the TLS port")
        conn = self.gw.conn_of_peer_port(local_port, since=mark)
        self.closed_record(conn, mark)

    def test_half_link_on_plain_port(self):
        mark = self.gw.audit_mark()
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.plain_port), timeout=5) as s:
            local_port = s.getsockname()[1]
            s.sendall(h.link_message()[:20])
            data, how, _ = h.recv_until_eof(s, DEADLINE + 3)
        self.assertCutAtDeadline(how, time.monotonic() - t0, data, "half a link on the plain port")
        conn = self.gw.conn_of_peer_port(local_port, since=mark)
        self.closed_record(conn, mark)

    # ---- the good session survived (runs last: unittest sorts by name) ---------------------------------
    def test_zz_good_session_survived_and_new_sessions_work(self):
        result = self.held.finish()
        self.assertEqual(result.rc, 0, "the held session failed its final round trip: %s" % result)
        self.assertRegex(result.result, r"roundtrip=\d")
        updates = int(result.result.split("hold_updates=")[1].split()[0])
        self.assertGreater(updates, 0, "no display update reached the held client: %s" % result.result)
        self.assertClient(self.client(host="localhost", tls_port=self.tls_port, ca_file=self.pki.ca_cert,
                                      username=USER, password=PASSWORD), 0)
        # every connection this gateway ever accepted was closed exactly once, with a reason
        self.assertClosedOnce(self.gw, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

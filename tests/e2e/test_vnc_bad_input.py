"""Malformed, truncated and stalled RFB handshakes against a running vmgate VNC listener while a
gtk-vnc session runs, and a client that breaks the data phase.

The listener offers what every VNC listener offers (rfb-protocol.md section 8): "RFB 003.008\\n",
security types [19] (VeNCrypt), VeNCrypt 0.2, subtypes [262 X509Plain, 263 X509SASL, 261 X509Vnc].
Raw sockets (vmgate_e2e.raw_rfb, TLS through ssl.MemoryBIO so that a client can half-close and
still read, or stop in the middle of the TLS handshake) play the bad clients. What each one must
receive is the failure the protocol has for the state it is in, then the close:

    version 3.3 (and 3.4-3.6, read as 3.3)   u32 0, u32 length, reason          (section 1.2, 1.3)
    version 3.7                              u8 0, u32 length, reason           (1.2)
    another major version, not RFB at all    nothing (the peer would not read it)
    a security type that was not offered     SecurityResult 1, length, reason   (1.3)
    a VeNCrypt version other than 0.2        the status byte 1, nothing more    (3.1 row 3)
    a subtype that was not offered           SecurityResult 1, length, reason: a client that
                                             reads an ack first reads 0 = refused (3.1 row 7)
    bytes after the subtype, before the ack  the ack (already due), then close: the stream
                                             belongs to TLS from there on
    Plain lengths over 255/1024 (in TLS)     SecurityResult 1, length, reason   (3.3)
    SASL framing errors (in TLS)             no server data (u32 0), complete 1, then
                                             SecurityResult 1, length, reason   (4.2)
    a client that closes mid-message         nothing; closed at once (not at the deadline)

Reasons are UTF-8 text without QEMU's NUL, at most 255 bytes. A refusal closes the connection at
once (well before handshake_timeout would); a stalled client is cut at handshake_timeout (3 s),
at the earliest when it passes and at the latest 2 s later, with the close record saying the
deadline passed. Every connection leaves exactly one audit "close" record with a reason in
words, and a refused client never makes vmgate connect to QEMU (no VNC_CONNECTED event).

The gtk-vnc session held through all of it (Ctrl+Alt+Del round trip at the end) uses a second
listener and VM entry on the same QEMU, because the default seat policy ("takeover") would
otherwise hand the console to the first bad client that gets in (the data-phase one). vmgate
always asks QEMU for a shared session, so the sessions coexist there.
"""

import os
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import raw_rfb as raw  # noqa: E402

USER, PASSWORD = "alice", "alice-Vnc-Bad-1"
HANDSHAKE_TIMEOUT = 3.0
SLACK = 2.0
DEADLINE = HANDSHAKE_TIMEOUT + SLACK
# A refusal is sent at once; one that only comes when the deadline would have cut the client is
# a stall, not a refusal.
PROMPT = HANDSHAKE_TIMEOUT - 0.5
# The deadline starts at accept, after our connect() began: a close before this is too early.
EARLIEST_DEADLINE_CLOSE = HANDSHAKE_TIMEOUT - 0.1

OFFERED_SUBTYPES = [raw.VENCRYPT_X509PLAIN, raw.VENCRYPT_X509SASL, raw.VENCRYPT_X509VNC]
OFFERED_MECHANISMS = {"SCRAM-SHA-256", "PLAIN"}  # [sasl] mech_list default
MAX_REASON = 255

# The failure forms, up to the u32 reason length (see the module docstring).
VERSION_33_FAILURE = struct.pack(">I", 0)                   # u32 security type 0 = invalid
VERSION_37_FAILURE = b"\0"                                  # u8 number of types 0
SECURITY_FAILURE = struct.pack(">I", raw.RESULT_FAILED)     # SecurityResult failed
SASL_FAILURE = struct.pack(">IB", 0, 1) + SECURITY_FAILURE  # no data, complete, failed
VENCRYPT_VERSION_REFUSED = b"\x01"

CLIENT_CLOSED = "client closed the connection during the handshake"

# How far advance() drives the good handshake, in order.
STAGES = ("greeting", "version", "security_type", "vencrypt_version", "subtype", "tls", "mechlist")


class VncBadInput(h.VncHarnessMixin, h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()  # gtk-vnc's --ca-file
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), {USER: PASSWORD}, appname="vnc")
        cls.qemu = cls.start_vnc_qemu("vncvm")
        cls.port, cls.keeper_port = h.free_port(), h.free_port()
        vms = []
        for name in ("vm1", "keeper"):
            vm = h.vm_entry(name, "unix:/unused", users=[USER])
            del vm["spice"]
            vm["vnc"] = cls.qemu.upstream
            vms.append(vm)
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki,
            [{"protocol": "vnc", "address": "127.0.0.1:%d" % cls.port, "vm": "vm1"},
             {"protocol": "vnc", "address": "127.0.0.1:%d" % cls.keeper_port, "vm": "keeper"}],
            vms, sasl={"sasldb": sasldb}, gateway={"handshake_timeout": "%ds" % HANDSHAKE_TIMEOUT}))
        # the good session, kept open through every bad client below
        cls.held = h.HeldVncClient(cls.home, send_keys=True, name="held-vnc", host="localhost",
                                   port=cls.keeper_port, ca_file=cls.pki.ca_cert, username=USER,
                                   password=PASSWORD, auth_subtype=str(raw.VENCRYPT_X509PLAIN))
        cls.addClassCleanup(cls.held.stop)
        cls.log_sources.append(("held gtk-vnc client stderr", lambda: h.read_tail(cls.held.stderr_path, 40)))
        cls.held.start()

    # ---- health of the rest ------------------------------------------------------------------------
    def setUp(self):
        self.assertOthersUnaffected("before")
        self.qemu_mark = self.qemu.events.mark()

    def tearDown(self):
        self.assertOthersUnaffected("after")

    def assertOthersUnaffected(self, when):
        if self.gw.proc.poll() is not None:
            self.fail("vmgate died %s %s (exit status %s):\n%s" % (
                when, self._testMethodName, self.gw.proc.returncode, self.gw.log_tail()))
        if self._testMethodName.startswith("test_zz"):
            return
        if not self.held.alive():
            self.fail("the held gtk-vnc session ended %s %s: %s" % (when, self._testMethodName, self.held.finish()))

    def assertNoUpstream(self):
        """A refused client never made vmgate open QEMU's display."""
        self.assertEqual(self.qemu.events.events("VNC_CONNECTED", since=self.qemu_mark), [],
                         "vmgate connected to QEMU for a client it refused")

    # ---- connections -----------------------------------------------------------------------------
    def connect(self, **kw):
        """A raw RFB connection to the vm1 listener; .mark is the audit line before it."""
        mark = self.gw.audit_mark()
        r = raw.RawRfb(port=self.port, timeout=5.0, **kw)
        r.mark = mark
        self.addCleanup(r.close)
        return r

    def advance(self, r, until, subtype=raw.VENCRYPT_X509PLAIN):
        """Drive the good handshake to `until` (one of STAGES), checking every answer on the way."""
        self.assertEqual(r.read_version(), raw.RFB_38)
        if until == "greeting":
            return
        r.send_version(raw.RFB_38)
        self.assertEqual(r.read_security_types(), ([raw.SEC_VENCRYPT], None))
        if until == "version":
            return
        r.choose(raw.SEC_VENCRYPT)
        self.assertEqual(r.read_exact(2), b"\0\2", "server VeNCrypt version")
        if until == "security_type":
            return
        r.send(b"\0\2")
        self.assertEqual(r.read_u8(), raw.VENCRYPT_VERSION_OK)
        self.assertEqual(r.read_vencrypt_subtypes(), OFFERED_SUBTYPES)
        if until == "vencrypt_version":
            return
        self.assertEqual(r.choose_subtype(subtype, read_ack=True), raw.VENCRYPT_ACK_OK)
        if until == "subtype":
            return
        r.start_tls(self.pki.ca_cert, memory_bio=True)
        if until == "tls":
            return
        self.assertEqual(until, "mechlist")
        self.assertEqual(subtype, raw.VENCRYPT_X509SASL)
        self.assertEqual(set(r.read_sasl_mechlist()), OFFERED_MECHANISMS)

    def raw_session(self, source=None):
        """A whole X509Plain session on the vm1 listener up to ServerInit: (RawRfb, ServerInit)."""
        r = self.connect(source=source)
        self.assertEqual(r.vencrypt_x509(raw.VENCRYPT_X509PLAIN, self.pki.ca_cert, memory_bio=True),
                         OFFERED_SUBTYPES)
        r.plain_auth(USER, PASSWORD)
        result = r.read_security_result()
        self.assertEqual(result.status, raw.RESULT_OK, result)
        init = r.client_init(shared=False)  # vmgate decides QEMU's shared flag itself
        self.assertEqual((init.width, init.height), (720, 400), init)
        return r, init

    # ---- what the client receives, and the audit ---------------------------------------------------
    def assertFailure(self, data, prefix, *words):
        """data is exactly prefix + u32 length + reason: UTF-8 words, no NUL, at most 255 bytes,
        containing every one of `words`. Returns the reason."""
        self.assertGreaterEqual(len(data), len(prefix) + 4, "failure too short: %r" % data)
        self.assertEqual(data[:len(prefix)], prefix, "failure form: %r" % data)
        (length,) = struct.unpack(">I", data[len(prefix):len(prefix) + 4])
        reason = data[len(prefix) + 4:]
        self.assertEqual(length, len(reason), "reason length %d, %d bytes follow: %r" % (length, len(reason), data))
        self.assertTrue(0 < length <= MAX_REASON, "reason length %d" % length)
        self.assertNotIn(b"\0", reason)
        text = reason.decode("utf-8")
        for word in words:
            self.assertIn(word, text)
        return text

    def closed_record(self, r, timeout=DEADLINE + 2):
        """The one audit close record of r's connection: a reason in words, no channel opened,
        nobody authenticated."""
        conn = self.gw.conn_of_peer_port(r.local_port, since=r.mark)
        self.gw.wait_audit("close", since=r.mark, conn=conn, timeout=timeout)
        time.sleep(0.1)  # a duplicate would be written right after the first
        records = self.gw.audit_events("close", since=r.mark, conn=conn)
        self.assertEqual(len(records), 1, "conn %s: %r" % (conn, records))
        record = records[0]
        self.assertRegex(str(record.get("reason")), r"[A-Za-z]{3,} [A-Za-z]{2,}", "reason in words: %r" % record)
        self.assertEqual(self.gw.audit_events("channel_open", since=r.mark, conn=conn), [])
        self.assertEqual(self.gw.audit_events("auth", since=r.mark, conn=conn, result="ok"), [])
        return record

    def refused(self, r, prefix=None, words=(), audit=(), read_timeout=DEADLINE, auth_failure=False):
        """After the bad bytes: what arrives until the server closes must be prefix + reason
        (containing `words`), or nothing when prefix is None; the close comes at once; one close
        record whose reason holds the client's reason (if any) and `audit`, not the deadline.
        auth_failure: the reason is an authentication failure, which the auth record carries (the
        close record has the detail for the log instead). Returns (client reason, close record)."""
        data, how, seconds = h.recv_until_eof(r.sock, read_timeout)
        self.assertEqual(how, "eof", "connection not closed (%s after %.1fs), got %r" % (how, seconds, data[:300]))
        self.assertLess(seconds, PROMPT, "a refusal took %.2fs: the deadline (%ss), not the refusal, closed it"
                        % (seconds, HANDSHAKE_TIMEOUT))
        text = None
        if prefix is None:
            self.assertEqual(data, b"", "nothing can be said in this state, got %r" % data[:300])
        else:
            text = self.assertFailure(data, prefix, *words)
        record = self.closed_record(r)
        reason = record["reason"]
        self.assertNotIn("deadline", reason, record)
        if auth_failure:
            conn = self.gw.conn_of_peer_port(r.local_port, since=r.mark)
            failures = self.gw.audit_events("auth", since=r.mark, conn=conn, result="failure")
            self.assertEqual([f.get("reason") for f in failures], [text], failures)
        elif text is not None:
            self.assertIn(text, reason, "the audit should hold what the client was told")
        for word in audit:
            self.assertIn(word, reason, record)
        self.assertNoUpstream()
        return text, record

    # ---- ProtocolVersion (section 1.1) -------------------------------------------------------------
    def test_old_versions_get_their_failure_form(self):
        for version, prefix, words in ((raw.RFB_33, VERSION_33_FAILURE, ("3.3", "3.8")),
                                       (b"RFB 003.005\n", VERSION_33_FAILURE, ("3.5", "3.8")),
                                       (raw.RFB_37, VERSION_37_FAILURE, ("3.7", "3.8"))):
            with self.subTest(version=version):
                r = self.connect()
                self.advance(r, "greeting")
                r.send_version(version)
                self.refused(r, prefix, words, audit=("protocol error",))

    def test_not_rfb_3_gets_no_bytes(self):
        """Another major version, UltraVNC's repeater 000.000, or no RFB at all: nothing is sent
        (such a peer would not read it), and the close comes at the first impossible byte."""
        for payload in (b"RFB 004.000\n", b"RFB 005.000\n", b"RFB 000.000\n", b"RFB 002.008\n",
                        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n",
                        raw.client_hello(), b"hello there!", b"rfb 003.008\n", b"RFB 003.008\r\n",
                        b"RFB 003.0a8\n", b"\0" * 12, b"\xff" * 64):
            with self.subTest(payload=payload[:24]):
                r = self.connect()
                self.advance(r, "greeting")
                r.send(payload)
                self.refused(r, None, audit=("protocol error",))

    def test_later_minor_and_split_version_are_accepted(self):
        """Apple's 3.889 counts as 3.8; a version that arrives in two writes (gtk-vnc sends "RFB "
        early when the greeting is late, rfb-protocol.md 1.1) is read whole. Then the client goes
        away: closed at once."""
        for parts in ((b"RFB 003.889\n",), (b"RFB ", b"003.008\n"), (b"R", b"FB 003.0", b"08\n")):
            with self.subTest(parts=parts):
                r = self.connect()
                self.advance(r, "greeting")
                for part in parts:
                    r.send(part)
                    time.sleep(0.2)
                self.assertEqual(r.read_security_types(), ([raw.SEC_VENCRYPT], None))
                r.half_close()
                self.refused(r, None, audit=(CLIENT_CLOSED,))

    def test_truncated_version_then_close(self):
        for part in (b"", b"RFB 00", b"RFB 003.008"):
            with self.subTest(part=part):
                r = self.connect()
                self.advance(r, "greeting")
                r.send(part)
                r.half_close()
                self.refused(r, None, audit=(CLIENT_CLOSED,))

    # ---- security type (section 1.2) ---------------------------------------------------------------
    def test_security_type_not_offered(self):
        for chosen in (raw.SEC_INVALID, raw.SEC_NONE, raw.SEC_VNC, 16, raw.SEC_TLS, raw.SEC_SASL, 30, 255):
            with self.subTest(type=chosen):
                r = self.connect()
                self.advance(r, "version")
                r.choose(chosen)
                self.refused(r, SECURITY_FAILURE, ("security type %d" % chosen, "not offered"))

    # ---- VeNCrypt (section 3.1) --------------------------------------------------------------------
    def test_vencrypt_wrong_version(self):
        for major, minor in ((0, 1), (0, 0), (0, 3), (1, 2), (2, 0), (255, 255)):
            with self.subTest(version="%d.%d" % (major, minor)):
                r = self.connect()
                self.advance(r, "security_type")
                r.send(bytes([major, minor]))
                data, how, seconds = h.recv_until_eof(r.sock, DEADLINE)
                self.assertEqual((data, how), (VENCRYPT_VERSION_REFUSED, "eof"),
                                 "the refusing status byte, then close (%.2fs)" % seconds)
                self.assertLess(seconds, PROMPT)
                record = self.closed_record(r)
                self.assertIn("VeNCrypt %d.%d" % (major, minor), record["reason"])
                self.assertNotIn("deadline", record["reason"])
                self.assertNoUpstream()

    def test_vencrypt_subtype_not_offered(self):
        for subtype in (raw.VENCRYPT_PLAIN, raw.VENCRYPT_TLSNONE, raw.VENCRYPT_TLSVNC, raw.VENCRYPT_TLSPLAIN,
                        raw.VENCRYPT_X509NONE, raw.VENCRYPT_TLSSASL, 0, raw.SEC_NONE, raw.SEC_VNC,
                        raw.SEC_VENCRYPT, 265, 0xFFFFFFFF):
            with self.subTest(subtype=subtype):
                r = self.connect()
                self.advance(r, "vencrypt_version")
                r.send(struct.pack(">I", subtype))
                self.refused(r, SECURITY_FAILURE, ("subtype %d" % subtype, "not offered"))

    def test_truncated_vencrypt_then_close(self):
        cases = (("no VeNCrypt version", "security_type", b""),
                 ("half the VeNCrypt version", "security_type", b"\0"),
                 ("no subtype", "vencrypt_version", b""),
                 ("3 of 4 subtype bytes", "vencrypt_version", struct.pack(">I", raw.VENCRYPT_X509PLAIN)[:3]))
        for what, stage, part in cases:
            with self.subTest(what):
                r = self.connect()
                self.advance(r, stage)
                r.send(part)
                r.half_close()
                self.refused(r, None, audit=(CLIENT_CLOSED,))

    def test_tls_bytes_before_the_ack(self):
        """The subtype and a ClientHello in one write: the client cannot have read the ack. It
        still gets the ack (already due), then the close; nothing can follow the ack in clear."""
        for subtype in (raw.VENCRYPT_X509PLAIN, raw.VENCRYPT_X509SASL, raw.VENCRYPT_X509VNC):
            with self.subTest(subtype=subtype):
                r = self.connect()
                self.advance(r, "vencrypt_version")
                r.send(struct.pack(">I", subtype) + raw.client_hello())
                data, how, seconds = h.recv_until_eof(r.sock, DEADLINE)
                self.assertEqual((data, how), (bytes([raw.VENCRYPT_ACK_OK]), "eof"),
                                 "the ack, then close (%.2fs)" % seconds)
                self.assertLess(seconds, PROMPT)
                record = self.closed_record(r)
                self.assertIn("TLS bytes before the VeNCrypt ack", record["reason"])
                self.assertNoUpstream()

    def assertOnlyTlsAlerts(self, data, what):
        """After a failed TLS handshake the server may send a TLS alert; nothing else (certainly
        no RFB in clear)."""
        for content_type, _, payload in raw.tls_records(data):
            self.assertEqual(content_type, 21, "%s: a TLS record other than an alert: %r" % (what, data[:64]))

    def test_no_tls_after_the_ack(self):
        """The ack came, then the client sends no ClientHello but RFB or Plain credentials in
        clear, or half a ClientHello and its FIN: the TLS handshake fails, the connection closes at
        once, and the credentials never reach authentication."""
        hello = raw.client_hello()
        cases = (("Plain credentials in clear", struct.pack(">II", 5, 15) + USER.encode() + PASSWORD.encode(), False),
                 ("an RFB version", raw.RFB_38, False),
                 ("half a ClientHello, then FIN", hello[:len(hello) // 2], True),
                 ("a ClientHello record header only, then FIN", hello[:5], True))
        for what, payload, fin in cases:
            with self.subTest(what):
                r = self.connect()
                self.advance(r, "subtype")
                r.send(payload)
                if fin:
                    r.half_close()
                data, how, seconds = h.recv_until_eof(r.sock, DEADLINE)
                self.assertIn(how, ("eof", "reset"), "%s: still open after %.1fs" % (what, seconds))
                self.assertLess(seconds, PROMPT, what)
                self.assertOnlyTlsAlerts(data, what)
                record = self.closed_record(r)
                self.assertNotIn("deadline", record["reason"])
                conn = self.gw.conn_of_peer_port(r.local_port, since=r.mark)
                self.assertEqual(self.gw.audit_events("auth", since=r.mark, conn=conn), [])
                self.assertNoUpstream()

    # ---- Plain (section 3.3), inside TLS -----------------------------------------------------------
    def test_plain_lengths_over_the_limits(self):
        for ulen, plen, body in ((256, 2, b""), (5, 1025, b""), (256, 2, b"u" * 256 + b"pw"),
                                 (0x7FFFFFFF, 0x7FFFFFFF, b""), (0xFFFFFFFF, 8, b"")):
            with self.subTest(lengths="%d/%d" % (ulen, plen), body=len(body)):
                r = self.connect()
                self.advance(r, "tls", raw.VENCRYPT_X509PLAIN)
                r.send(struct.pack(">II", ulen, plen) + body)
                self.refused(r, SECURITY_FAILURE, ("%d/%d" % (ulen, plen), "255/1024"))
                conn = self.gw.conn_of_peer_port(r.local_port, since=r.mark)
                self.assertEqual(self.gw.audit_events("auth", since=r.mark, conn=conn), [],
                                 "too long credentials must not reach authentication")

    def test_plain_lengths_at_the_limits_reach_authentication(self):
        """255/1024 bytes are not refused as too long: they are checked, and fail as credentials."""
        r = self.connect()
        self.advance(r, "tls", raw.VENCRYPT_X509PLAIN)
        r.plain_auth("u" * 255, "p" * 1024)
        text, record = self.refused(r, SECURITY_FAILURE, auth_failure=True)
        self.assertNotIn("exceed", text)
        conn = self.gw.conn_of_peer_port(r.local_port, since=r.mark)
        failures = self.gw.audit_events("auth", since=r.mark, conn=conn, result="failure")
        self.assertEqual(len(failures), 1, failures)
        self.assertEqual(failures[0].get("mechanism"), "X509Plain", failures[0])

    def test_truncated_plain_then_close(self):
        for what, part in (("half the length header", struct.pack(">II", 5, 15)[:4]),
                           ("lengths, then part of the username", struct.pack(">II", 5, 15) + b"ali"),
                           ("everything but the last password byte",
                            struct.pack(">II", 5, len(PASSWORD)) + USER.encode() + PASSWORD.encode()[:-1])):
            with self.subTest(what):
                r = self.connect()
                self.advance(r, "tls", raw.VENCRYPT_X509PLAIN)
                r.send(part)
                r.half_close()
                self.refused(r, None, audit=(CLIENT_CLOSED,))

    # ---- SASL (section 4.2), inside TLS ------------------------------------------------------------
    def sasl(self):
        r = self.connect()
        self.advance(r, "mechlist", raw.VENCRYPT_X509SASL)
        return r

    def test_sasl_mechname_length_out_of_range(self):
        for length, body in ((0, b""), (101, b"A" * 101), (0x10000, b""), (0xFFFFFFFF, b"PLAIN")):
            with self.subTest(length=length):
                r = self.sasl()
                r.send(struct.pack(">I", length) + body)
                self.refused(r, SASL_FAILURE, ("length %d" % length, "1..100"))

    def test_sasl_mechanism_not_offered(self):
        for name in ("GSSAPI", "DIGEST-MD5", "SCRAM-SHA", "PLAINX", "SCRAM-SHA-256,PLAIN", "A" * 100):
            with self.subTest(name=name[:24]):
                r = self.sasl()
                r.sasl_start(name, b"\0alice\0pw")
                self.refused(r, SASL_FAILURE, ("'%s'" % name, "not offered"))

    def test_sasl_data_over_the_limit(self):
        for what, length in (("64 KiB + 1", 0x10001), ("4 GiB - 1", 0xFFFFFFFF)):
            with self.subTest(what):
                r = self.sasl()
                r.send(struct.pack(">I", 5) + b"PLAIN" + struct.pack(">I", length) + b"\0alice")
                self.refused(r, SASL_FAILURE, ("length %d" % length, "65536"))

    def test_sasl_step_data_over_the_limit(self):
        """The limit holds for STEP messages too: SCRAM client-first is answered, then a STEP
        announces 64 KiB + 1."""
        r = self.sasl()
        r.sasl_start("SCRAM-SHA-256", b"n,,n=%s,r=rOprNGfwEbeRWgbNEkqO" % USER.encode())
        data, complete = r.read_sasl_server_data()
        self.assertEqual(complete, 0, "SCRAM server-first, to be continued")
        self.assertTrue(data.startswith(b"r=rOprNGfwEbeRWgbNEkqO"), data)
        r.send(struct.pack(">I", 0x10001) + b"c=biws")
        self.refused(r, SASL_FAILURE, ("length 65537", "65536"))

    def test_sasl_data_without_nul_padding(self):
        r = self.sasl()
        blob = b"\0" + USER.encode() + b"\0" + PASSWORD.encode()
        r.send(struct.pack(">I", 5) + b"PLAIN" + struct.pack(">I", len(blob)) + blob)
        self.refused(r, SASL_FAILURE, ("NUL",))
        conn = self.gw.conn_of_peer_port(r.local_port, since=r.mark)
        self.assertEqual(self.gw.audit_events("auth", since=r.mark, conn=conn), [],
                         "unpadded data must not reach Cyrus")

    def test_sasl_data_at_the_limit_reaches_authentication(self):
        """64 KiB with the NUL is not refused as too long: Cyrus PLAIN gets it and fails it."""
        r = self.sasl()
        r.sasl_start("PLAIN", b"A" * 0xFFFF)
        text, record = self.refused(r, SASL_FAILURE, auth_failure=True)
        self.assertNotIn("exceeds", text)
        conn = self.gw.conn_of_peer_port(r.local_port, since=r.mark)
        self.assertEqual(len(self.gw.audit_events("auth", since=r.mark, conn=conn, result="failure")), 1)

    def test_truncated_sasl_then_close(self):
        start = struct.pack(">I", 5) + b"PLAIN"
        blob = raw.RawRfb.sasl_data(b"\0alice\0pw")
        for what, part in (("half the mechname length", start[:2]),
                           ("part of the mechname", start[:7]),
                           ("mechname, half the data length", start + blob[:2]),
                           ("mechname, part of the data", start + blob[:8])):
            with self.subTest(what):
                r = self.sasl()
                r.send(part)
                r.half_close()
                self.refused(r, None, audit=(CLIENT_CLOSED,))

    # ---- stalled clients (all at once: they wait for the same deadline) ----------------------------
    def stall_plan(self):
        """[(name, drive(r) -> None, failure prefix allowed at the deadline or None, raw bytes
        expected after the stall point or None)]. drive() brings a fresh connection to its
        stall point; after it nothing more is sent."""
        scram_first = b"n,,n=%s,r=fyko+d2lbbFgONRv9qkxdawL" % USER.encode()

        def nothing(r):
            pass

        def stage(name, subtype=raw.VENCRYPT_X509PLAIN, then=b""):
            def drive(r):
                self.advance(r, name, subtype)
                if then:
                    r.send(then)
            return drive

        def mid_tls(r):
            self.advance(r, "subtype")
            r.send(raw.client_hello())

        def vnc_challenge(r):
            self.advance(r, "tls", raw.VENCRYPT_X509VNC)
            self.assertEqual(len(r.read_exact(16)), 16)

        def mid_scram(r):
            self.advance(r, "mechlist", raw.VENCRYPT_X509SASL)
            r.sasl_start("SCRAM-SHA-256", scram_first)
            data, complete = r.read_sasl_server_data()
            self.assertEqual(complete, 0)

        return [
            ("connects and sends nothing", nothing, None, raw.RFB_38),
            ("half a version", stage("greeting", then=b"RFB 00"), None, b""),
            ("after the version", stage("version"), SECURITY_FAILURE, b""),
            ("after the security type", stage("security_type"), None, b""),
            ("after the VeNCrypt version", stage("vencrypt_version"), SECURITY_FAILURE, b""),
            ("after the ack, no ClientHello", stage("subtype"), None, b""),
            ("mid-TLS handshake", mid_tls, None, None),
            ("after TLS, before the Plain credentials", stage("tls"), SECURITY_FAILURE, b""),
            ("half the Plain credentials", stage("tls", then=struct.pack(">II", 5, 15) + b"al"), SECURITY_FAILURE, b""),
            ("X509Vnc: challenge unanswered", vnc_challenge, SECURITY_FAILURE, b""),
            ("after the SASL mechanism list", stage("mechlist", raw.VENCRYPT_X509SASL), SASL_FAILURE, b""),
            ("mid-SASL: half a mechanism name",
             stage("mechlist", raw.VENCRYPT_X509SASL, struct.pack(">I", 13) + b"SCRAM"), SASL_FAILURE, b""),
            ("mid-SASL: SCRAM server-first unanswered", mid_scram, SASL_FAILURE, b""),
        ]

    def run_stalled(self, name, drive, box):
        """Thread body: connect, drive to the stall point, then wait for the server's close."""
        try:
            t0 = time.monotonic()
            r = self.connect()
            drive(r)
            stalled_at = time.monotonic() - t0
            data, how, _ = h.recv_until_eof(r.sock, DEADLINE + 3)
            box.update(r=r, data=data, how=how, elapsed=time.monotonic() - t0, stalled_at=stalled_at)
        except BaseException as exc:  # reported by the test thread
            box["error"] = exc

    def test_stalled_clients_cut_at_the_deadline(self):
        """Every stage at once: each connection stops there; each must be closed when the 3 s
        deadline passes (not earlier, at most 2 s later), with nothing but the failure its state
        allows, and a close record saying the deadline passed. A session established at the same
        time is not cut: the deadline is for handshakes."""
        plan = self.stall_plan()
        boxes = [{} for _ in plan]
        threads = [threading.Thread(target=self.run_stalled, args=(name, drive, box), daemon=True)
                   for (name, drive, _, _), box in zip(plan, boxes)]
        for t in threads:
            t.start()
        session, _ = self.raw_session()
        established_at = time.monotonic()
        for t in threads:
            t.join(DEADLINE + 15)
        for (name, _, allowed, expected), box, t in zip(plan, boxes, threads):
            with self.subTest(name):
                self.assertFalse(t.is_alive(), "stalled client thread still running")
                if "error" in box:
                    raise box["error"]
                data, how, elapsed = box["data"], box["how"], box["elapsed"]
                self.assertIn(how, ("eof", "reset"), "still open %.1fs after connect" % elapsed)
                self.assertLess(box["stalled_at"], 2.0, "reaching the stall point took too long")
                self.assertGreaterEqual(elapsed, EARLIEST_DEADLINE_CLOSE,
                                        "closed after %.2fs: a slow client is not a dead one" % elapsed)
                self.assertLessEqual(elapsed, DEADLINE, "closed %.2fs after connect" % elapsed)
                if expected is None:  # mid-TLS: the server's flight, whole TLS records, no RFB
                    raw.tls_records(data)
                elif data != expected:
                    self.assertIsNotNone(allowed, "unexpected bytes at the deadline: %r" % data[:300])
                    self.assertTrue(data.startswith(expected), data[:300])
                    self.assertFailure(data[len(expected):], allowed, "deadline")
                record = self.closed_record(box["r"])
                self.assertIn("deadline", record["reason"], record)
                self.assertIn("passed", record["reason"], record)
                self.assertGreaterEqual(record.get("duration_ms", 0), HANDSHAKE_TIMEOUT * 1000 - 50, record)
        # the session established meanwhile outlived the deadline and still works both ways
        time.sleep(max(0.0, established_at + HANDSHAKE_TIMEOUT + 0.5 - time.monotonic()))
        session.framebuffer_update_request(0, 0, 8, 8)
        self.assertGreaterEqual(session.read_framebuffer_update_header(), 1)
        session.half_close()
        data, how, _ = h.recv_until_eof(session.sock, DEADLINE)
        self.assertEqual(how, "eof")
        record = self.gw.wait_audit("close", since=session.mark,
                                    conn=self.gw.conn_of_peer_port(session.local_port, since=session.mark))[0]
        self.assertNotIn("deadline", record["reason"], record)
        self.assertEqual(record.get("user"), USER, record)

    def test_many_stalled_clients_do_not_block_a_good_one(self):
        """48 stalled handshakes at all times (12 from each of 4 loopback addresses, below the
        per-source limit of 32; each replaced when the deadline cuts it) while a raw X509Plain
        session and a gtk-vnc client (X509SASL, SCRAM) get in; every stalled one is cut at the
        deadline."""
        sources = ["127.0.0.%d" % i for i in (2, 3, 4, 5)]
        per_source = 12
        stop = threading.Event()
        results, errors = [], []
        lock = threading.Lock()
        mark = self.gw.audit_mark()
        hello = raw.client_hello()

        def worker(source, kind):
            while not stop.is_set():
                try:
                    t0 = time.monotonic()
                    with raw.RawRfb(port=self.port, timeout=5.0, source=source) as r:
                        if kind >= 1:
                            r.read_version()
                        if kind >= 2:
                            r.send_version(raw.RFB_38)
                            r.read_security_types()
                            r.choose(raw.SEC_VENCRYPT)
                            r.vencrypt_start()
                            r.read_vencrypt_subtypes()
                            r.choose_subtype(raw.VENCRYPT_X509SASL, read_ack=True)
                            r.send(hello)
                        data, how, _ = h.recv_until_eof(r.sock, DEADLINE + 3)
                    with lock:
                        results.append(("%s:%d" % (source, r.local_port), kind, how, time.monotonic() - t0))
                except BaseException as exc:
                    with lock:
                        errors.append("%s kind %d: %r" % (source, kind, exc))
                    return

        threads = [threading.Thread(target=worker, args=(source, i % 3), daemon=True)
                   for source in sources for i in range(per_source)]
        try:
            for t in threads:
                t.start()
            h.wait_until(lambda: len(self.gw.conns_since(mark)) >= len(threads), 5,
                         what="%d stalled connections accepted" % len(threads))
            t0 = time.monotonic()
            session, _ = self.raw_session()
            raw_seconds = time.monotonic() - t0
            session.close()
            result = self.vnc_client(host="localhost", port=self.port, ca_file=self.pki.ca_cert,
                                     username=USER, password=PASSWORD)
        finally:
            stop.set()
            for t in threads:
                t.join(DEADLINE + 10)
        self.assertEqual(errors, [])
        self.assertLess(raw_seconds, 1.5, "a raw X509Plain login took %.2fs among the stalled" % raw_seconds)
        self.assertVncClient(result, 0, "gtk-vnc among %d stalled handshakes" % len(threads))
        self.assertEqual(result.auth, "19/%d" % raw.VENCRYPT_X509SASL, result)
        self.assertGreaterEqual(len(results), len(threads))
        for peer, kind, how, elapsed in results:
            self.assertIn(how, ("eof", "reset"), (peer, kind, elapsed))
            self.assertGreaterEqual(elapsed, EARLIEST_DEADLINE_CLOSE, (peer, kind, elapsed))
            self.assertLessEqual(elapsed, DEADLINE, (peer, kind, elapsed))
        closes = self.gw.wait_all_closed(mark, timeout=DEADLINE + 2)
        by_peer = {e.get("peer"): e["conn"] for e in self.gw.audit_events("accept", mark)
                   if not str(e.get("peer")).startswith("127.0.0.1:")}
        self.assertEqual(len(by_peer), len(results), "accepted stalled connections vs. the clients' count")
        for peer, _, _, _ in results:
            records = closes[by_peer[peer]]
            self.assertEqual(len(records), 1, records)
            self.assertIn("deadline", records[0]["reason"], records[0])

    # ---- data phase --------------------------------------------------------------------------------
    def test_data_phase_unknown_client_message(self):
        """After a whole raw X509Plain login a client message type QEMU does not know (77): vmgate
        ends that connection (QEMU would too) and never passes the byte on."""
        r, init = self.raw_session()
        r.framebuffer_update_request(0, 0, 4, 4)
        self.assertGreaterEqual(r.read_framebuffer_update_header(), 1)
        conn = self.gw.conn_of_peer_port(r.local_port, since=r.mark)
        opened = self.gw.wait_audit("channel_open", since=r.mark, conn=conn)[0]
        r.send(bytes([77]) + bytes(7))
        data, how, seconds = h.recv_until_eof(r.sock, DEADLINE)
        self.assertIn(how, ("eof", "reset"), "still open %.1fs after message type 77" % seconds)
        self.assertLess(seconds, PROMPT)
        records = self.gw.wait_audit("close", since=r.mark, conn=conn)
        time.sleep(0.1)
        records = self.gw.audit_events("close", since=r.mark, conn=conn)
        self.assertEqual(len(records), 1, records)
        self.assertIn("unknown client message type 77", records[0]["reason"], records[0])
        self.assertEqual((records[0].get("user"), records[0].get("session")), (USER, opened["session"]), records[0])
        ends = self.gw.wait_audit("session_end", since=r.mark, session=opened["session"])
        self.assertEqual(len(ends), 1, ends)
        # client-closed: "the main channel ended, from either side" (session/end_reason.hpp)
        self.assertEqual(ends[0].get("reason"), "client-closed", ends[0])
        self.assertIn("unknown client message type 77", ends[0].get("detail", ""), ends[0])
        # QEMU lost that connection only: the held session is its one client again
        self.qemu.events.wait("VNC_DISCONNECTED", since=self.qemu_mark)
        h.wait_until(lambda: len(self.qemu.vnc_clients()) == 1, 5, what="QEMU back to the held client alone")
        self.assertEqual(len(self.qemu.events.events("VNC_CONNECTED", since=self.qemu_mark)), 1)

    # ---- the good session survived (runs last: unittest sorts by name) -----------------------------
    def test_zz_good_sessions_after_the_bad_input(self):
        self.assertTrue(self.held.alive(), "the held gtk-vnc session did not survive the bad input")
        for subtype in (raw.VENCRYPT_X509PLAIN, None):  # None: gtk-vnc's own choice, X509SASL
            with self.subTest(subtype=subtype):
                result = self.vnc_client(host="localhost", port=self.port, ca_file=self.pki.ca_cert,
                                         username=USER, password=PASSWORD,
                                         auth_subtype=None if subtype is None else str(subtype))
                self.assertVncClient(result, 0)
        self.assertTrue(self.held.alive(), "the held gtk-vnc session ended while new clients logged in")
        result = self.held.finish()
        self.assertVncClient(result, 0, "the held session failed its final Ctrl+Alt+Del round trip")
        self.assertRegex(result.roundtrip or "", r"^\d+\.\d+s$", result)
        self.assertGreater(int(result.hold_updates or 0), 0, "no update reached the held client: %s" % result)
        # every connection this gateway ever accepted was closed exactly once, with a reason
        self.assertClosedOnce(self.gw, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Self-test of the VNC test infrastructure against QEMU directly (no vmgate): our gtk-vnc client
(vmgate_e2e.vnc_client), harness.QemuVnc / HeldVncClient / make_client_cert / make_vnc_sasl_conf
and the raw RFB socket (vmgate_e2e.raw_rfb).

If this file fails, the VNC results of the gateway tests say nothing about vmgate. It also pins
down how the reference implementation (QEMU 7.2's VNC server) answers, byte for byte where the
gateway tests will compare: the version string, the single offered security type, SecurityResult
reasons (QEMU counts a trailing NUL), a bare u32 0 for an unsupported version, the VeNCrypt ack 0
for a subtype it did not offer, and which reason strings gtk-vnc hands to its 'vnc-auth-failure'
signal (VNC auth: the server's text; SASL: always "Unknown authentication failure").
"""

import os
import pwd
import socket
import struct
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import raw_rfb as raw  # noqa: E402
from vmgate_e2e import vnc_client  # noqa: E402

VNC_PASSWORD = "vnc-pw-1"
X509_PASSWORD = "vnc-pw-2"
SASL_USERS = {"alice": "sasl-pw-1"}
QEMU_AUTH_FAILED = b"Authentication failed\0"  # QEMU's reason, length counted with the NUL


def process_gone(pid):
    """True if `pid` no longer exists or is a zombie (stopped, waiting to be reaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class VncClientOffline(h.E2ETestCase):
    """What needs no QEMU: the RESULT line format, usage errors, the VNC-auth DES vectors."""
    needs_vmgate = False

    def test_result_line_round_trips(self):
        line = ('RESULT auth-failed rc=2 auth=19/263 types=19,2 subtypes=263 connected=0.010s init=- '
                'frame=- name="QEMU (a \\"b\\")" size=- shared=0 reason="Authentication failed" '
                'error="Unable to read from server"')
        fields = vnc_client.parse_result(line)
        self.assertEqual(fields["status"], "auth-failed")
        self.assertEqual(fields["rc"], "2")
        self.assertEqual(fields["auth"], "19/263")
        self.assertEqual(fields["types"], "19,2")
        self.assertEqual(fields["name"], 'QEMU (a "b")')
        self.assertEqual(fields["reason"], "Authentication failed")
        self.assertEqual(fields["error"], "Unable to read from server")

    def test_usage_errors(self):
        for args in (["--port", "5900"],                       # no --unix/--host
                     ["--unix", "/x", "--client-cert", "/c"]):  # a certificate without its key
            res = subprocess.run([h.PYTHON, "-m", "vmgate_e2e.vnc_client"] + args, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, cwd=h.E2E_DIR, env=h.client_env(self.home), timeout=30)
            self.assertEqual(res.returncode, vnc_client.RC_USAGE, res)
            self.assertTrue(res.stdout.decode().startswith("RESULT usage rc=1"), res.stdout)

    def test_missing_socket_is_connect_error(self):
        r = h.run_vnc_client(self.home, unix=os.path.join(self.tmp, "no-such.sock"), timeout=10)
        self.assertEqual(r.rc, vnc_client.RC_CONNECT, r)
        self.assertIn("No such file or directory", r.error)

    def test_closed_port_is_connect_error(self):
        r = h.run_vnc_client(self.home, host="127.0.0.1", port=h.free_port(), timeout=10)
        self.assertEqual(r.rc, vnc_client.RC_CONNECT, r)
        self.assertIn("Connection refused", r.error)

    def test_vnc_auth_des_vectors(self):
        # rfb-protocol.md section 2, challenge 00 01 .. 0f
        challenge = bytes(range(16))
        for password, response in (("password", "b866924125c8eebb9debc1db61c538e2"),
                                   ("secret", "ee22539f33a5983ec12f9c2edbc995dd"),
                                   ("longerthan8chars", "76543820b2c358fe359083c192fa77c9")):
            self.assertEqual(raw.vnc_auth_response(password, challenge).hex(), response, password)


class ScriptedRfbServer:
    """A one-connection RFB server on a unix socket that plays a fixed script in a thread: for
    what the client must do with answers QEMU never gives (types it does not know, reasons
    without QEMU's NUL, non-ASCII reasons). `script(conn)` gets the accepted socket."""

    def __init__(self, path, script):
        self.path = path
        self.script = script
        self.error = None
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.listener.settimeout(20)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(10)
                self.script(conn)
        except Exception as exc:  # reported by close()
            self.error = exc

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join(timeout=15)
        self.listener.close()
        os.unlink(self.path)
        if self.error is not None and exc[0] is None:
            raise AssertionError("scripted RFB server failed: %r" % (self.error,))
        return False


def greet(conn, types):
    conn.sendall(raw.RFB_38)
    assert h.recv_exact(conn, 12, 10) == raw.RFB_38
    conn.sendall(bytes([len(types)] + list(types)))


class VncClientScripted(h.E2ETestCase):
    """Our client against scripted servers: what it reports for answers QEMU never gives."""
    needs_vmgate = False

    def scripted(self, name, script):
        return ScriptedRfbServer(os.path.join(self.tmp, name), script)

    def test_no_acceptable_type(self):
        def script(conn):
            greet(conn, [16])  # Tight only
            h.recv_until_eof(conn, 10)
        with self.scripted("tight.sock", script) as server:
            r = h.run_vnc_client(self.home, unix=server.path, timeout=10)
        self.assertEqual(r.rc, vnc_client.RC_NO_AUTH, r)
        self.assertEqual((r.status, r.types), ("auth-unsupported", "16"))
        self.assertIn("no acceptable security type", r.note)

    def test_reason_without_nul_and_not_ascii(self):
        reason = "vmgate: alice may not use vm1 now \u2013 gr\u00fc\u00df dich"

        def script(conn):
            greet(conn, [raw.SEC_VNC])
            assert h.recv_exact(conn, 1, 10) == bytes([raw.SEC_VNC])
            conn.sendall(bytes(16))  # challenge
            h.recv_exact(conn, 16, 10)
            text = reason.encode()
            conn.sendall(struct.pack(">II", raw.RESULT_FAILED, len(text)) + text)
        with self.scripted("reason.sock", script) as server:
            r = h.run_vnc_client(self.home, unix=server.path, password="pw", timeout=10)
        self.assertEqual(r.rc, vnc_client.RC_AUTH, r)
        self.assertEqual((r.reason, r.error), (reason, reason))


class VncNoAuth(h.VncHarnessMixin, h.E2ETestCase):
    """A unix-socket VNC server with security None."""
    needs_vmgate = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.qemu = cls.start_vnc_qemu("vncvm1")

    def test_first_frame_name_and_size(self):
        r = self.vnc_client(unix=self.qemu.socket_path)
        self.assertVncClient(r, 0)
        self.assertEqual((r.status, r.auth, r.types, r.name, r.size, r.shared),
                         ("ok", "1", "1", "QEMU (vncvm1)", "720x400", "0"), r)
        self.assertRegex(r.frame, r"^\d+\.\d+s$")

    def test_shared_flag_and_screenshot(self):
        shot = os.path.join(self.tmp, "shot.ppm")
        r = self.vnc_client(unix=self.qemu.socket_path, shared=True, screenshot=shot)
        self.assertVncClient(r, 0)
        self.assertEqual(r.shared, "1")
        with open(shot, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"P6\n720 400\n255\n"), data[:20])
        self.assertEqual(len(data), len(b"P6\n720 400\n255\n") + 720 * 400 * 3)
        self.assertGreater(len(set(data[20:])), 1, "the screenshot is one flat colour")

    def test_send_keys_round_trip(self):
        mark = self.qemu.events.mark()
        r = self.vnc_client(unix=self.qemu.socket_path, send_keys=True)
        self.assertVncClient(r, 0)
        self.assertRegex(r.roundtrip, r"^\d+\.\d+s$")
        # the keys did reach the guest: SeaBIOS reset it on Ctrl+Alt+Del
        reset = self.qemu.events.wait("RESET", since=mark)[0]
        self.assertEqual(reset["data"], {"guest": True, "reason": "guest-reset"})

    def test_held_session(self):
        mark = self.qemu.events.mark()
        held = self.held_vnc(unix=self.qemu.socket_path)
        self.assertTrue(held.ready_line.startswith('READY frame='), held.ready_line)
        self.assertIn('name="QEMU (vncvm1)" size=720x400', held.ready_line)
        self.qemu.events.wait("VNC_INITIALIZED", since=mark)
        h.wait_until(lambda: len(self.qemu.vnc_clients()) == 1, 5, what="QEMU to list the held client")
        self.assertTrue(held.alive())
        self.assertEqual(self.qemu.events.events("VNC_DISCONNECTED", since=mark), [])
        result = held.finish()
        self.assertVncClient(result, 0)
        self.assertRegex(result.roundtrip, r"^\d+\.\d+s$")
        self.qemu.events.wait("VNC_DISCONNECTED", since=mark)
        self.assertEqual(self.qemu.vnc_clients(), [])

    def test_exclusive_client_ends_held_session(self):
        """QEMU's default share policy (allow-exclusive): a shared client stays when another shared
        one comes, and is disconnected by a client with shared-flag 0 (gtk-vnc's and virt-viewer's
        default). The held client then reports the close (rc 7), not a timeout."""
        held = self.held_vnc(unix=self.qemu.socket_path, shared=True, send_keys=False)
        self.assertVncClient(self.vnc_client(unix=self.qemu.socket_path, shared=True), 0)
        self.assertTrue(held.alive())
        self.assertVncClient(self.vnc_client(unix=self.qemu.socket_path, shared=False), 0)
        result = h.wait_client_exit(held, 5.0)
        self.assertVncClient(result, vnc_client.RC_CLOSED)
        self.assertEqual(result.error, "Server closed the connection")

    def test_held_client_stopped_by_pid(self):
        """A held client that a test abandons (here: an exception) is stopped by its PID."""
        held = h.HeldVncClient(self.home, unix=self.qemu.socket_path, name="abandoned")
        try:
            held.start()
            pid = held.proc.pid
            raise RuntimeError("the test fails here")
        except RuntimeError:
            pass
        finally:
            held.stop()
        self.assertTrue(process_gone(pid))
        h.wait_until(lambda: self.qemu.vnc_clients() == [], 5, what="QEMU to drop the stopped client")

    def test_qemu_stopped_by_pid_when_the_block_fails(self):
        with self.assertRaises(RuntimeError):
            with h.QemuVnc(self.tmp, "shortlived", wait_text_screen=False) as q:
                pid = q.pid
                self.assertFalse(process_gone(pid))
                raise RuntimeError("the test fails here")
        self.assertTrue(process_gone(pid))
        self.assertNotIn(q.proc, h._live_processes)

    # ---- QEMU's answers to raw RFB (the reference for the gateway's bad-input tests) ------------
    def raw(self):
        return raw.RawRfb(unix=self.qemu.socket_path)

    def test_raw_version_types_and_server_init(self):
        with self.raw() as r:
            self.assertEqual(r.read_version(), b"RFB 003.008\n")
            r.send_version(raw.RFB_38)
            self.assertEqual(r.read_security_types(), ([raw.SEC_NONE], None))
            r.choose(raw.SEC_NONE)
            result = r.read_security_result()
            self.assertEqual((result.status, result.reason), (raw.RESULT_OK, None))
            init = r.client_init(shared=True)
        self.assertEqual((init.width, init.height, init.bits_per_pixel, init.name),
                         (720, 400, 32, b"QEMU (vncvm1)"))

    def test_raw_unoffered_type(self):
        with self.raw() as r:
            r.read_version()
            r.send_version(raw.RFB_38)
            r.read_security_types()
            r.choose(raw.SEC_VNC)
            result = r.read_security_result()
            self.assertEqual((result.status, result.reason, result.text),
                             (raw.RESULT_FAILED, QEMU_AUTH_FAILED, "Authentication failed"))
            self.assertTrue(r.is_closed_by_server())

    def test_raw_unsupported_version(self):
        with self.raw() as r:
            r.read_version()
            r.send_version(b"RFB 004.000\n")
            self.assertEqual(r.read_rest(), (b"\0\0\0\0", "eof"))  # a bare u32 0, no reason

    def test_raw_version_33_and_37(self):
        with self.raw() as r:
            r.read_version()
            r.send_version(raw.RFB_33)
            self.assertEqual(r.read_security_type_33(), (raw.SEC_NONE, None))
            self.assertEqual(r.client_init().name, b"QEMU (vncvm1)")  # 3.3 None: no SecurityResult
        with self.raw() as r:
            r.read_version()
            r.send_version(raw.RFB_37)
            self.assertEqual(r.read_security_types(), ([raw.SEC_NONE], None))
            r.choose(raw.SEC_NONE)
            self.assertEqual(r.client_init().name, b"QEMU (vncvm1)")  # 3.7 None: no SecurityResult either


class VncPassword(h.VncHarnessMixin, h.E2ETestCase):
    """VNC authentication (type 2) on a unix socket, the password set over QMP set_password."""
    needs_vmgate = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.qemu = cls.start_vnc_qemu("pwvm", password=VNC_PASSWORD)

    def restore_password(self):
        self.qemu.set_vnc_password(VNC_PASSWORD)
        self.qemu.expire_vnc_password("never")

    def test_password(self):
        self.assertEqual(self.qemu.query_vnc()["auth"], "vnc")
        r = self.vnc_client(unix=self.qemu.socket_path, password=VNC_PASSWORD)
        self.assertVncClient(r, 0)
        self.assertEqual((r.auth, r.types, r.name), ("2", "2", "QEMU (pwvm)"))

    def test_wrong_password_reason(self):
        r = self.vnc_client(unix=self.qemu.socket_path, password="wrong-pw")
        self.assertVncClient(r, vnc_client.RC_AUTH)
        # gtk-vnc passes the SecurityResult reason on; it stops at QEMU's NUL
        self.assertEqual((r.status, r.reason, r.error), ("auth-failed", "Authentication failed",
                                                         "Authentication failed"), r)

    def test_missing_password(self):
        r = self.vnc_client(unix=self.qemu.socket_path)
        self.assertVncClient(r, vnc_client.RC_AUTH)
        self.assertIsNone(r.reason, r)
        self.assertIn("asked for a password", r.note)

    def test_password_cut_to_8_characters(self):
        self.addCleanup(self.restore_password)
        self.qemu.set_vnc_password("longpassword123")
        self.assertVncClient(self.vnc_client(unix=self.qemu.socket_path, password="longpass"), 0)
        self.assertVncClient(self.vnc_client(unix=self.qemu.socket_path, password="longpaXX"), vnc_client.RC_AUTH)

    def test_expired_password(self):
        self.addCleanup(self.restore_password)
        self.qemu.expire_vnc_password("now")
        r = self.vnc_client(unix=self.qemu.socket_path, password=VNC_PASSWORD)
        self.assertVncClient(r, vnc_client.RC_AUTH)
        self.assertEqual(r.reason, "Authentication failed")

    def test_raw_vnc_auth(self):
        with raw.RawRfb(unix=self.qemu.socket_path) as r:
            r.read_version()
            r.send_version(raw.RFB_38)
            self.assertEqual(r.read_security_types(), ([raw.SEC_VNC], None))
            r.choose(raw.SEC_VNC)
            r.vnc_auth(VNC_PASSWORD)
            self.assertEqual(r.read_security_result().status, raw.RESULT_OK)
            self.assertEqual(r.client_init().name, b"QEMU (pwvm)")

    def test_raw_vnc_auth_wrong(self):
        with raw.RawRfb(unix=self.qemu.socket_path) as r:
            r.read_version()
            r.send_version(raw.RFB_38)
            r.read_security_types()
            r.choose(raw.SEC_VNC)
            r.vnc_auth("wrong-pw")
            result = r.read_security_result()
            self.assertEqual((result.status, result.reason), (raw.RESULT_FAILED, QEMU_AUTH_FAILED))
            self.assertTrue(r.is_closed_by_server())
        with raw.RawRfb(unix=self.qemu.socket_path) as r:  # 3.7: the failure has no reason
            r.read_version()
            r.send_version(raw.RFB_37)
            r.read_security_types()
            r.choose(raw.SEC_VNC)
            r.vnc_auth("wrong-pw")
            self.assertEqual(r.read_security_result(with_reason=False).status, raw.RESULT_FAILED)
            self.assertEqual(r.read_rest(), (b"", "eof"))


class VncX509(h.VncHarnessMixin, h.E2ETestCase):
    """VeNCrypt X509Vnc (261) on TCP: the client's --ca-file (gtk-vnc has no CA option; the client
    puts it where gtk-vnc looks, in a private mount namespace), name checks, forced subtypes."""
    needs_vmgate = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        cls.port = h.free_port()
        cls.qemu = cls.start_vnc_qemu("x509vm", tcp_port=cls.port, tls_pki=cls.pki, password=X509_PASSWORD)

    def client_kw(self, **kw):
        base = {"host": "localhost", "port": self.port, "ca_file": self.pki.ca_cert, "password": X509_PASSWORD}
        base.update(kw)
        return base

    def test_x509_vnc(self):
        self.assertEqual(self.qemu.query_vnc()["auth"], "vencrypt+x509+vnc")
        r = self.vnc_client(**self.client_kw())
        self.assertVncClient(r, 0)
        self.assertEqual((r.auth, r.types, r.subtypes, r.name), ("19/261", "19", "261", "QEMU (x509vm)"))

    def test_x509_wrong_password_reason(self):
        r = self.vnc_client(**self.client_kw(password="wrong-pw"))
        self.assertVncClient(r, vnc_client.RC_AUTH)
        self.assertEqual(r.reason, "Authentication failed")

    def test_unknown_ca(self):
        other = h.make_pki(os.path.join(self.tmp, "other-pki"))
        r = self.vnc_client(**self.client_kw(ca_file=other.ca_cert))
        self.assertVncClient(r, vnc_client.RC_TLS)
        self.assertEqual(r.error, "The certificate is not trusted")

    def test_ca_file_stays_private(self):
        """Without --ca-file the client sees the system trust only: the test CA given to earlier
        runs was never visible outside their own process."""
        r = self.vnc_client(**self.client_kw(ca_file=None))
        self.assertVncClient(r, vnc_client.RC_TLS)
        self.assertEqual(r.error, "The certificate is not trusted")
        with open(self.pki.ca_cert, "rb") as f:
            ours = f.read()
        for path in ("/etc/pki/CA/cacert.pem", os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".pki/CA/cacert.pem")):
            if os.path.exists(path):
                with open(path, "rb") as f:
                    self.assertNotEqual(f.read(), ours, path)

    def test_tls_hostname_mismatch(self):
        r = self.vnc_client(**self.client_kw(host="127.0.0.1", tls_hostname="other.example"))
        self.assertVncClient(r, vnc_client.RC_TLS)
        self.assertEqual(r.error, "The certificate's owner does not match hostname 'other.example'")

    def test_forced_unoffered_subtype(self):
        r = self.vnc_client(**self.client_kw(auth_subtype=raw.VENCRYPT_X509PLAIN))
        self.assertVncClient(r, vnc_client.RC_PROTOCOL)
        self.assertEqual((r.auth, r.error), ("19/262", "Server refused VeNCrypt auth 262 0"))

    def test_raw_vencrypt_x509_vnc(self):
        with raw.RawRfb(port=self.port) as r:
            r.read_version()
            r.send_version(raw.RFB_38)
            self.assertEqual(r.read_security_types(), ([raw.SEC_VENCRYPT], None))
            r.choose(raw.SEC_VENCRYPT)
            self.assertEqual(r.vencrypt_start(), ((0, 2), 0))
            self.assertEqual(r.read_vencrypt_subtypes(), [raw.VENCRYPT_X509VNC])
            self.assertEqual(r.choose_subtype(raw.VENCRYPT_X509VNC), 1)
            r.start_tls(self.pki.ca_cert, "localhost")
            r.vnc_auth(X509_PASSWORD)
            self.assertEqual(r.read_security_result().status, raw.RESULT_OK)
            self.assertEqual(r.client_init().name, b"QEMU (x509vm)")

    def test_raw_vencrypt_unoffered_subtype(self):
        with raw.RawRfb(port=self.port) as r:
            r.read_version()
            r.send_version(raw.RFB_38)
            r.read_security_types()
            r.choose(raw.SEC_VENCRYPT)
            r.vencrypt_start()
            r.read_vencrypt_subtypes()
            self.assertEqual(r.choose_subtype(raw.VENCRYPT_X509PLAIN), 0)  # ack 0, then close
            self.assertTrue(r.is_closed_by_server())


class VncClientCertificate(h.VncHarnessMixin, h.E2ETestCase):
    """VeNCrypt X509None (260) with verify-peer=on: --client-cert/--client-key."""
    needs_vmgate = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        cls.client_cert, cls.client_key = h.make_client_cert(cls.pki, cn="alice")
        cls.port = h.free_port()
        cls.qemu = cls.start_vnc_qemu("certvm", tcp_port=cls.port, tls_pki=cls.pki, verify_peer=True)

    def test_client_certificate(self):
        r = self.vnc_client(host="localhost", port=self.port, ca_file=self.pki.ca_cert,
                            client_cert=self.client_cert, client_key=self.client_key)
        self.assertVncClient(r, 0)
        self.assertEqual((r.auth, r.subtypes), ("19/260", "260"))

    def test_held_session_shows_certificate_subject(self):
        held = self.held_vnc(host="localhost", port=self.port, ca_file=self.pki.ca_cert, send_keys=False,
                             client_cert=self.client_cert, client_key=self.client_key)
        clients = h.wait_until(self.qemu.vnc_clients, 5, what="QEMU to list the held client")
        self.assertIn("CN=alice", clients[0].get("x509_dname", ""), clients)
        self.assertVncClient(held.finish(), 0)

    def test_no_client_certificate(self):
        r = self.vnc_client(host="localhost", port=self.port, ca_file=self.pki.ca_cert)
        self.assertVncClient(r, vnc_client.RC_IO)  # QEMU ends the TLS handshake
        self.assertEqual(r.error, "Unable to read from server")


class VncSasl(h.VncHarnessMixin, h.E2ETestCase):
    """VeNCrypt X509SASL (263) with a sasldb from make_vnc_sasl_conf, and plain SASL (20)."""
    needs_vmgate = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        conf = h.make_vnc_sasl_conf(os.path.join(cls.tmp, "sasl"), SASL_USERS)
        cls.port = h.free_port()
        cls.qemu = cls.start_vnc_qemu("saslvm", tcp_port=cls.port, tls_pki=cls.pki, sasl_conf_dir=conf)
        cls.plain_port = h.free_port()
        cls.plain_qemu = cls.start_vnc_qemu("saslplainvm", tcp_port=cls.plain_port, sasl_conf_dir=conf)

    def sasl_client(self, **kw):
        base = {"host": "localhost", "port": self.port, "ca_file": self.pki.ca_cert, "username": "alice",
                "password": SASL_USERS["alice"]}
        base.update(kw)
        return self.vnc_client(**base)

    def test_x509_sasl_scram(self):
        r = self.sasl_client()
        self.assertVncClient(r, 0)
        self.assertEqual((r.auth, r.sasl_mech, r.name), ("19/263", "SCRAM-SHA-256", "QEMU (saslvm)"))

    def test_x509_sasl_plain_chosen(self):
        r = self.sasl_client(sasl_mech="PLAIN")
        self.assertVncClient(r, 0)
        self.assertEqual(r.sasl_mech, "PLAIN")

    def test_wrong_password(self):
        r = self.sasl_client(password="wrong-pw")
        self.assertVncClient(r, vnc_client.RC_AUTH)
        # QEMU just closes; gtk-vnc's SASL failures always carry this fixed reason
        self.assertEqual(r.reason, "Unknown authentication failure")

    def test_mechanism_not_offered(self):
        r = self.sasl_client(sasl_mech="CRAM-MD5")
        self.assertVncClient(r, vnc_client.RC_AUTH)
        self.assertIn("no mechanism available", r.error)

    def test_sasl_without_tls(self):
        self.assertEqual(self.plain_qemu.query_vnc()["auth"], "sasl")
        r = self.sasl_client(port=self.plain_port, ca_file=None)
        self.assertVncClient(r, 0)
        self.assertEqual((r.auth, r.sasl_mech), ("20", "DIGEST-MD5"))  # SSF >= 56 without TLS


if __name__ == "__main__":
    unittest.main(verbosity=2)

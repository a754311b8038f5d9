"""Self-test of the e2e harness and of our spice-gtk client, against QEMU directly (no vmgate).

If this file fails, the other e2e results say nothing about vmgate. It also pins down how the
reference implementation (spice-server inside QEMU) answers the raw link messages that
test_spice_bad_input.py and test_spice_upgrade.py send to vmgate.
"""

import os
import socket
import ssl
import struct
import subprocess
import sys
import tomllib
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

PASSWORD = "qemu-pw-1"


class HarnessBasics(h.E2ETestCase):
    needs_vmgate = False


    def test_toml_writer_round_trips(self):
        doc = {"gateway": {"state_dir": "/x", "handshake_timeout": "3s"},
               "tls": {"cert": "c \"quoted\"", "key": "k"},
               "sasl": {"mech_list": ["SCRAM-SHA-256", "PLAIN"], "default_realm": ""},
               "listener": [{"protocol": "spice", "address": "127.0.0.1:1", "tls": True, "vm": "vm1"},
                            {"protocol": "spice", "address": "127.0.0.1:2", "tls": False, "vm": "vm1",
                             "auth": ["ticket"]}],
               "vm": [{"name": "vm1", "spice": "unix:/s", "allow": [{"users": ["alice"]}, {"users": ["b@R"]}]},
                      {"name": "vm2", "spice": "tcp:127.0.0.1:5", "allow": [{"users": ["bob"]}]}]}
        self.assertEqual(tomllib.loads(h.to_toml(doc)), doc)

    def test_make_pki(self):
        pki = h.make_pki(os.path.join(self.tmp, "pki"))
        self.assertEqual(os.stat(pki.key).st_mode & 0o777, 0o600)
        san = subprocess.run(["openssl", "x509", "-in", pki.cert, "-noout", "-ext", "subjectAltName"],
                             stdout=subprocess.PIPE, check=True).stdout.decode()
        self.assertIn("DNS:localhost", san)
        self.assertIn("IP Address:127.0.0.1", san)

    def test_make_sasldb(self):
        path = os.path.join(self.tmp, "sasl", "sasldb2")
        h.make_sasldb(path, {"alice": "pw-a", "bob": "pw-b"})
        h.make_sasldb(path, {"carol": "pw-c"}, realm="EXAMPLE.TEST")
        entries = h.sasldb_entries(path)
        host = socket.gethostname()
        self.assertIn("alice@%s: userPassword" % host, entries)
        self.assertIn("bob@%s: userPassword" % host, entries)
        self.assertIn("carol@EXAMPLE.TEST: userPassword", entries)


class ClientAgainstQemu(h.E2ETestCase):
    """Our client and the raw-link helpers against a unix-socket QEMU and a TLS QEMU."""
    needs_vmgate = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        cls.unix_qemu = cls.start_qemu("unixvm")
        cls.plain_port = h.free_port()
        cls.tls_port = h.free_port()
        # plain port + TLS port, every channel TLS-only: the plain port answers NEED_SECURED
        cls.tls_qemu = cls.start_qemu(
            "tlsvm", password=PASSWORD, wait_port=cls.tls_port,
            spice_opts="port=%d,tls-port=%d,addr=127.0.0.1,x509-dir=%s,tls-channel=default,password-secret=pw"
                       % (cls.plain_port, cls.tls_port, cls.pki.dir))

    def test_unix_socket_first_frame(self):
        r = self.client(unix=self.unix_qemu.socket_path)
        self.assertClient(r, 0)
        self.assertIn("primary=720x400", r.result)
        self.assertIn("display", r.result)

    def test_tls_password(self):
        self.assertClient(self.client(host="localhost", tls_port=self.tls_port, ca_file=self.pki.ca_cert,
                                      password=PASSWORD), 0)

    def test_tls_wrong_password_is_auth_error(self):
        self.assertClient(self.client(host="localhost", tls_port=self.tls_port, ca_file=self.pki.ca_cert,
                                      password="wrong"), 2)

    def test_tls_unknown_ca_is_tls_error(self):
        other = h.make_pki(os.path.join(self.tmp, "other-pki"))
        self.assertClient(self.client(host="localhost", tls_port=self.tls_port, ca_file=other.ca_cert,
                                      password=PASSWORD), 3)

    def test_closed_port_is_connect_error(self):
        self.assertClient(self.client(host="localhost", tls_port=h.free_port(), ca_file=self.pki.ca_cert,
                                      password=PASSWORD, timeout=10), 4)

    def test_plain_client_on_tls_port_is_link_error(self):
        self.assertClient(self.client(host="localhost", port=self.tls_port, password=PASSWORD, timeout=10), 5)

    def test_need_secured_upgrade(self):
        uri = "spice://localhost?port=%d&tls-port=%d" % (self.plain_port, self.tls_port)
        self.assertClient(self.client(uri=uri, ca_file=self.pki.ca_cert, password=PASSWORD), 0)

    def test_held_session_round_trip(self):
        held = h.HeldClient(self.home, unix=self.unix_qemu.socket_path).start()
        try:
            self.assertTrue(held.alive())
            result = held.finish()
        finally:
            held.stop()
        self.assertEqual(result.rc, 0, str(result))
        self.assertRegex(result.result, r"roundtrip=\d")

    # ---- how spice-server answers raw links (the reference for the vmgate tests) -------------
    def raw_unix(self, payload, timeout=3.0):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.unix_qemu.socket_path)
            s.sendall(payload)
            return h.recv_until_eof(s, timeout)

    def assertLinkError(self, data, error):
        self.assertEqual(len(data), h.LINK_ERROR_REPLY_SIZE, data)
        magic, major, minor, size, err, rest = h.parse_link_reply(data)
        self.assertEqual((magic, major, minor, size, err), (b"REDQ", 2, 2, 178, error))
        self.assertEqual(rest, bytes(174))

    def test_reference_wrong_magic(self):
        data, how, _ = self.raw_unix(h.link_message(magic=b"XXXX"))
        self.assertLinkError(data, h.LINK_ERR_INVALID_MAGIC)
        self.assertEqual(how, "eof")

    def test_reference_header_size_too_big(self):
        data, how, _ = self.raw_unix(h.link_message(size=4097))
        self.assertLinkError(data, h.LINK_ERR_INVALID_DATA)

    def test_reference_too_many_caps(self):
        data, how, _ = self.raw_unix(h.link_message(num_common=1025))
        self.assertLinkError(data, h.LINK_ERR_INVALID_DATA)

    def test_reference_header_size_under_18(self):
        data, how, _ = self.raw_unix(h.link_message(size=10))
        self.assertLinkError(data, h.LINK_ERR_INVALID_DATA)

    def test_reference_caps_outside_message(self):
        data, how, _ = self.raw_unix(h.link_message(num_common=50))
        self.assertLinkError(data, h.LINK_ERR_INVALID_DATA)

    def test_reference_version_mismatch(self):
        data, how, _ = self.raw_unix(h.link_message(major=3))
        self.assertLinkError(data, h.LINK_ERR_VERSION_MISMATCH)

    def test_reference_every_channel_type_needs_tls(self):
        for channel_type in (1, 2, 3, 4, 5, 6, 9):
            with socket.create_connection(("127.0.0.1", self.plain_port)) as s:
                s.sendall(h.link_message(channel_type=channel_type, channel_caps=(),
                                         connection_id=0 if channel_type == 1 else 0x1234))
                data, how, _ = h.recv_until_eof(s, 3.0)
            self.assertLinkError(data, h.LINK_ERR_NEED_SECURED)

    def test_reference_unknown_auth_mechanism(self):
        data, how, _ = self.raw_unix(h.link_message(common_caps=(0x09,)) + struct.pack("<I", 0xDEADBEEF))
        magic, major, minor, size, err, _ = h.parse_link_reply(data)
        self.assertEqual(err, h.LINK_ERR_OK)
        rest = data[16 + size:]
        self.assertLinkError(rest, h.LINK_ERR_INVALID_DATA)
        self.assertEqual(how, "eof")

    def test_reference_need_secured(self):
        with socket.create_connection(("127.0.0.1", self.plain_port)) as s:
            s.sendall(h.link_message())
            data, how, _ = h.recv_until_eof(s, 3.0)
        self.assertLinkError(data, h.LINK_ERR_NEED_SECURED)

    def test_reference_wrong_magic_over_tls(self):
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        with socket.create_connection(("127.0.0.1", self.tls_port)) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(h.link_message(magic=b"XXXX"))
            data, how, _ = h.recv_until_eof(s, 3.0)
        self.assertLinkError(data, h.LINK_ERR_INVALID_MAGIC)


class SaslAgainstQemu(h.E2ETestCase):
    """SASL (SCRAM-SHA-256) with a sasldb from make_sasldb(), served by QEMU itself."""
    needs_vmgate = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        conf_dir = os.path.join(cls.tmp, "sasl")
        db = h.make_sasldb(os.path.join(conf_dir, "sasldb2"), {"alice": "sasl-pw"})
        with open(os.path.join(conf_dir, "qemu.conf"), "w") as f:
            f.write("mech_list: scram-sha-256 plain\nsasldb_path: %s\n" % db)
        cls.tls_port = h.free_port()
        cls.start_qemu("saslvm", wait_port=cls.tls_port, env={"SASL_CONF_PATH": conf_dir},
                       spice_opts="tls-port=%d,addr=127.0.0.1,x509-dir=%s,sasl=on,disable-ticketing=on"
                                  % (cls.tls_port, cls.pki.dir))

    def test_scram(self):
        self.assertClient(self.client(host="localhost", tls_port=self.tls_port, ca_file=self.pki.ca_cert,
                                      username="alice", password="sasl-pw"), 0)

    def test_wrong_password(self):
        self.assertClient(self.client(host="localhost", tls_port=self.tls_port, ca_file=self.pki.ca_cert,
                                      username="alice", password="nope"), 2)


class SaslauthdHelper(h.E2ETestCase):
    needs_vmgate = False


    def test_saslauthd_serves_private_sasldb(self):
        h.Saslauthd.require()
        db = h.make_sasldb(os.path.join(self.tmp, "sasldb2"), {"alice": "authd-pw"})
        with open("/etc/sasldb2", "rb") as f:
            system_before = f.read()
        with h.Saslauthd(self.tmp, db) as daemon:
            self.assertTrue(daemon.check("alice", "authd-pw"))
            self.assertFalse(daemon.check("alice", "wrong"))
        with open("/etc/sasldb2", "rb") as f:
            self.assertEqual(f.read(), system_before, "/etc/sasldb2 must be left untouched")


if __name__ == "__main__":
    unittest.main(verbosity=2)

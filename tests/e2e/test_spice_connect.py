"""route = "connect": vmgate as the HTTP CONNECT proxy of spice-gtk (spice-protocol.md 9.3).

spice-gtk told `proxy=http://GATEWAY:PORT` (the .vv key, or SPICE_PROXY) opens every channel with
`CONNECT host:port` to that address; vmgate takes the VM from the host (`vm1` or
`vm1.vms.test` with connect_suffix ".vms.test"), answers 200, and then terminates the SPICE TLS
inside the tunnel like any listener. The client resolves no name: it only connects to the proxy.
A plain SPICE link inside a tunnel gets NEED_SECURED, and anything but a well-formed CONNECT gets
an HTTP error (raw sockets below).
"""

import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

PASSWORDS = {"alice": "alice-Connect-1", "bob": "bob-Connect-2"}
SUFFIX = ".vms.test"
HANDSHAKE_TIMEOUT = 4

RC_AUTH = 2     # a final link result != 0 (policy refusal)
RC_CONNECT = 4  # spice-gtk's ERROR_CONNECT: the proxy refused the tunnel


class SpiceConnect(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # No SAN for the bare VM names: files from `vmgate vv --proxy` pin host-subject instead.
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"), cn="gateway.vms.test",
                             san="DNS:*.vms.test,DNS:localhost,IP:127.0.0.1")
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS)
        cls.vm1 = cls.start_qemu("vm1")
        cls.vm2 = cls.start_qemu("vm2")
        cls.port = h.free_port()
        listener = {"protocol": "spice", "address": "127.0.0.1:%d" % cls.port, "route": "connect",
                    "connect_suffix": SUFFIX}
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [listener],
            [h.vm_entry("vm1", cls.vm1.upstream, users=["alice"]),
             h.vm_entry("vm2", cls.vm2.upstream, users=["bob"])],
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""},
            gateway={"handshake_timeout": "%ds" % HANDSHAKE_TIMEOUT}))
        cls.proxy = "http://127.0.0.1:%d" % cls.port

    def through_proxy(self, host, user="alice", **kw):
        kw.setdefault("tls_port", self.port)
        return self.client(host=host, ca_file=self.pki.ca_cert, username=user, password=PASSWORDS[user],
                           env={"SPICE_PROXY": self.proxy}, **kw)

    def raw(self, request, wait=3.0):
        """Send request bytes to the proxy port; return everything read until the gateway closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=wait) as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk

    def assertHttpRefusal(self, reply, status, text=None):
        head, _, body = reply.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 %d " % status), reply)
        self.assertIn(b"\r\nConnection: close", head, reply)
        length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.startswith(b"Content-Length:")]
        self.assertEqual(length, [len(body)], reply)
        if text:
            self.assertIn(text.encode(), body, reply)
        return head

    def assertRefusedClose(self, mark, status):
        closes = self.assertClosedOnce(self.gw, mark)
        self.assertEqual(len(closes), 1, closes)
        close = next(iter(closes.values()))
        self.assertEqual(close.get("http_status"), status, close)
        self.assertEqual(self.gw.audit_events("auth", since=mark), [])
        return close

    # ---- real clients ----------------------------------------------------------------------------
    def test_spice_proxy_first_frame(self):
        """SPICE_PROXY and host vm1.vms.test: every channel tunnels to vm1, the certificate's
        *.vms.test name matches the host, the client never resolves it."""
        mark = self.gw.audit_mark()
        r = self.through_proxy("vm1.vms.test")
        self.assertClient(r, 0)
        self.assertIn("primary=720x400", r.result)
        connects = self.gw.audit_events("connect", since=mark)
        self.assertGreaterEqual(len(connects), 2, connects)  # main and display at least
        for c in connects:
            self.assertEqual((c.get("host"), c.get("port"), c.get("vm")), ("vm1.vms.test", self.port, "vm1"), c)
        links = self.gw.audit_events("link", since=mark)
        self.assertLessEqual({"main", "display"}, {l.get("channel") for l in links}, links)
        for link in links:
            self.assertEqual((link.get("vm"), link.get("connect_host")), ("vm1", "vm1.vms.test"), link)
        opened = self.gw.audit_events("channel_open", since=mark)
        self.assertTrue(opened and all(o.get("vm") == "vm1" for o in opened), opened)
        self.assertClosedOnce(self.gw, mark)

    def test_vv_proxy_file_first_frame(self):
        """`vmgate vv --proxy`: host=vm2 (a bare VM name no DNS knows), proxy=http://127.0.0.1:PORT,
        host-subject pinning the certificate; opened as remote-viewer opens it."""
        out = os.path.join(self.tmp, "vm2-proxy.vv")
        res = self.run_vmgate(["vv", "vm2", "--proxy", "--user", "bob", "--ca", self.pki.ca_cert,
                               "-c", self.gw.config_path, "--out", out])
        self.assertEqual(res.rc, 0, res)
        with open(out) as f:
            text = f.read()
        self.assertIn("\nhost=vm2\n", text)
        self.assertIn("\nproxy=%s\n" % self.proxy, text)
        self.assertIn("\ntls-port=%d\n" % self.port, text)
        mark = self.gw.audit_mark()
        r = self.client(vv=out, password=PASSWORDS["bob"])
        self.assertClient(r, 0)
        for c in self.gw.audit_events("connect", since=mark):
            self.assertEqual((c.get("host"), c.get("vm")), ("vm2", "vm2"), c)
        for d in self.gw.audit_events("decision", since=mark):
            self.assertEqual((d.get("vm"), d.get("user"), d.get("allowed")), ("vm2", "bob", True), d)

    def test_plain_port_in_tunnel_gets_need_secured_then_tls(self):
        """port= and tls-port= both set: spice-gtk tunnels a plain link first, vmgate answers
        NEED_SECURED, the client tunnels again with TLS and gets its frame."""
        mark = self.gw.audit_mark()
        r = self.through_proxy("vm1.vms.test", port=self.port)
        self.assertClient(r, 0)
        closes = self.assertClosedOnce(self.gw, mark)
        secured = [c for c in closes.values() if c.get("link_error") == "need_secured"]
        self.assertTrue(secured, closes)
        for c in secured:
            self.assertIn("CONNECT tunnel", c["reason"], c)

    def test_policy_still_decides(self):
        """alice may use vm1 only: the tunnel to vm2 opens, the policy refuses her after SASL."""
        mark = self.gw.audit_mark()
        r = self.through_proxy("vm2.vms.test")
        self.assertClient(r, RC_AUTH)
        decisions = self.gw.wait_audit("decision", since=mark)
        for d in decisions:
            self.assertEqual((d.get("vm"), d.get("user"), d.get("allowed")), ("vm2", "alice", False), d)
        self.assertEqual(self.gw.audit_events("channel_open", since=mark), [])

    def test_unknown_vm_is_an_http_404(self):
        mark = self.gw.audit_mark()
        r = self.through_proxy("nope.vms.test")
        self.assertClient(r, RC_CONNECT)
        closes = self.assertClosedOnce(self.gw, mark)
        for close in closes.values():
            self.assertEqual(close.get("http_status"), 404, close)
            self.assertIn("no SPICE VM named \"nope\"", close["reason"], close)
        self.assertEqual(self.gw.audit_events("link", since=mark), [])

    # ---- raw HTTP ---------------------------------------------------------------------------------
    def test_raw_connect_gets_200_and_then_speaks_tls(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"CONNECT VM1:5901 HTTP/1.1\r\nHost: VM1:5901\r\n\r\n")
            reply = b""
            while not reply.endswith(b"\r\n\r\n"):
                chunk = s.recv(1)
                self.assertTrue(chunk, reply)
                reply += chunk
            self.assertEqual(reply, b"HTTP/1.1 200 Connection established\r\n\r\n")

    def test_other_methods_get_405(self):
        mark = self.gw.audit_mark()
        head = self.assertHttpRefusal(self.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 405, "only CONNECT")
        self.assertIn(b"\r\nAllow: CONNECT\r\n", head + b"\r\n")
        self.assertRefusedClose(mark, 405)

    def test_tls_sent_straight_to_the_proxy_gets_400(self):
        """A client that was not told about the proxy starts TLS at once: refused from the first
        bytes, not after the handshake deadline."""
        mark = self.gw.audit_mark()
        started = time.monotonic()
        hello = bytes.fromhex("160301003e0100003a0303") + bytes(32) + b"\x00\x00\x02\x00\x2f\x01\x00"
        self.assertHttpRefusal(self.raw(hello), 400, "HTTP CONNECT proxy")
        self.assertLess(time.monotonic() - started, HANDSHAKE_TIMEOUT - 1)
        self.assertRefusedClose(mark, 400)

    def test_malformed_requests_get_400_431_505(self):
        cases = [(b"CONNECT vm1 HTTP/1.1\r\n\r\n", 400), (b"CONNECT vm1:1 HTTP/2.0\r\n\r\n", 505),
                 (b"CONNECT vm1:1 HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 9000 + b"\r\n\r\n", 431),
                 (b"CONNECT vm1:1 HTTP/1.1\r\n\r\n\x16\x03\x01", 400)]
        for request, status in cases:
            with self.subTest(status=status, request=request[:40]):
                mark = self.gw.audit_mark()
                self.assertHttpRefusal(self.raw(request), status)
                self.assertRefusedClose(mark, status)

    def test_stalled_request_is_cut_at_the_deadline(self):
        mark = self.gw.audit_mark()
        started = time.monotonic()
        self.assertEqual(self.raw(b"CONNECT vm1:1 HTTP/1.1\r\nHost:", wait=HANDSHAKE_TIMEOUT + 5), b"")
        self.assertGreaterEqual(time.monotonic() - started, HANDSHAKE_TIMEOUT - 0.5)
        closes = self.assertClosedOnce(self.gw, mark)
        for close in closes.values():
            self.assertIn("handshake deadline", close["reason"], close)

    # ---- running vmgate --------------------------------------------------------------------
    @classmethod
    def run_vmgate(cls, args):
        argv = [h.require_vmgate()] + list(args)
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return h.CliResult(argv, res.returncode, res.stdout.decode(errors="replace"),
                           res.stderr.decode(errors="replace"))


if __name__ == "__main__":
    unittest.main(verbosity=2)

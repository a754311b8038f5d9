"""Prometheus /metrics and journald logging, end to end.

spice-gtk client --TLS--> vmgate --> QEMU, with [gateway] metrics on a loopback port. Every
scrape is parsed by python3-prometheus-client's own text-format parser, so a malformed line
fails the test; the values must move as the sessions do: connections, authentications by
mechanism and result, decisions by reason, live sessions per VM, relayed bytes, the handshake
histogram. The HTTP side answers 404, 405 and 431 where it should, and a reload moves the
endpoint. Logging: stderr by default (and when JOURNAL_STREAM names another stream); the
journal's native protocol when stderr is the stream JOURNAL_STREAM names, received on a test
socket bound at /run/systemd/journal/socket in vmgate's private mount namespace.
"""

import copy
import http.client
import os
import signal
import socket
import sys
import unittest

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import vnc_client as vc  # noqa: E402

PASSWORDS = {"alice": "alice-Metrics-1", "bob": "bob-Metrics-2"}


def http_request(port, method, path, timeout=10.0, raw=None):
    """(status, content type, body) of one request to 127.0.0.1:port; `raw`: bytes sent as is."""
    if raw is not None:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(raw)
            answer = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        status_line = answer.split(b"\r\n", 1)[0].decode()
        return int(status_line.split()[1]), None, answer
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read().decode()
    finally:
        conn.close()


class Scrape:
    """One /metrics scrape parsed by prometheus_client: families by name, and sample values."""

    def __init__(self, port):
        status, content_type, body = http_request(port, "GET", "/metrics")
        if status != 200:
            raise AssertionError("GET /metrics: %d %s" % (status, body))
        self.content_type = content_type
        self.text = body
        self.families = {f.name: f for f in text_string_to_metric_families(body)}
        self.samples = {}
        for family in self.families.values():
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def value(self, name, **labels):
        """The sample's value; 0 for a labelled child not created yet (counters start there)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def type_of(self, family):
        return self.families[family].type


class Metrics(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS)
        cls.vm1 = cls.start_qemu("vm1")
        cls.port, cls.port_vm2, cls.metrics_port = h.free_port(), h.free_port(), h.free_port()
        cls.listener = "127.0.0.1:%d" % cls.port
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(cls.port, "vm1"), h.spice_listener(cls.port_vm2, "vm2")],
            [h.vm_entry("vm1", cls.vm1.upstream, users=["alice"]),  # bob: no rule names him
             h.vm_entry("vm2", "unix:" + os.path.join(cls.tmp, "absent.sock"), users=["alice"])],
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""},
            gateway={"metrics": "127.0.0.1:%d" % cls.metrics_port}))
        h.wait_until(lambda: cls.metrics_port in h.listening_ports(cls.gw.proc.pid), 10,
                     what="metrics port %d" % cls.metrics_port)

    def scrape(self):
        return Scrape(self.metrics_port)

    def connect(self, user, password, port=None):
        return self.client(host="localhost", tls_port=port or self.port, ca_file=self.pki.ca_cert,
                           username=user, password=password)

    def held(self, user):
        client = h.HeldClient(self.home, roundtrip=True, name="held-" + user, host="localhost",
                              tls_port=self.port, ca_file=self.pki.ca_cert, username=user,
                              password=PASSWORDS[user])
        self.addCleanup(client.stop)
        self.log_sources.append(("held %s stderr" % user, lambda: h.read_tail(client.stderr_path, 40)))
        return client.start()

    def wait_for_value(self, name, wanted, **labels):
        try:
            return h.wait_until(lambda: (lambda s: s if s.value(name, **labels) == wanted else None)(self.scrape()),
                                10, what="%s%r == %s" % (name, labels, wanted))
        except TimeoutError as exc:
            raise AssertionError("%s\nlast scrape:\n%s" % (exc, self.scrape().text))

    # ---- the format --------------------------------------------------------------------------
    def test_scrape_is_prometheus_text_with_every_family_typed(self):
        s = self.scrape()
        self.assertIn("version=0.0.4", s.content_type)
        self.assertTrue(s.content_type.startswith("text/plain"), s.content_type)
        for family, kind in (("vmgate_connections", "counter"), ("vmgate_auth", "counter"),
                             ("vmgate_decisions", "counter"), ("vmgate_sessions_active", "gauge"),
                             ("vmgate_relay_bytes", "counter"), ("vmgate_upstream_errors", "counter"),
                             ("vmgate_handshake_duration_seconds", "histogram")):
            self.assertIn(family, s.families, s.text)
            self.assertEqual(s.type_of(family), kind, family)
        # Idle VMs are listed with 0 live sessions: a dashboard sees a session end, not a gap.
        self.assertEqual(s.value("vmgate_sessions_active", vm="vm2"), 0.0)
        self.assertIn(("vmgate_sessions_active", frozenset({("vm", "vm2")})), s.samples)

    # ---- values follow the sessions ----------------------------------------------------------
    def test_a_session_moves_every_metric_and_its_end_clears_the_gauge(self):
        before = self.scrape()
        client = self.held("alice")
        during = self.wait_for_value("vmgate_sessions_active", 1.0, vm="vm1")
        grew = lambda name, **labels: during.value(name, **labels) - before.value(name, **labels)  # noqa: E731
        # spice-gtk opens main, then display and the other channels: one connection each.
        self.assertGreaterEqual(grew("vmgate_connections_total", protocol="spice", listener=self.listener), 2)
        self.assertGreaterEqual(grew("vmgate_auth_total", protocol="spice", mechanism="SCRAM-SHA-256", result="ok"), 2)
        self.assertGreaterEqual(grew("vmgate_decisions_total", decision="allowed", reason="allowed"), 2)
        self.assertGreaterEqual(grew("vmgate_handshake_duration_seconds_count", protocol="spice"), 2)
        self.assertGreater(grew("vmgate_handshake_duration_seconds_sum", protocol="spice"), 0)
        self.assertEqual(during.value("vmgate_handshake_duration_seconds_bucket", protocol="spice", le="+Inf"),
                         during.value("vmgate_handshake_duration_seconds_count", protocol="spice"))
        self.assertGreater(grew("vmgate_relay_bytes_total", vm="vm1", direction="to_client"), 0)
        result = client.finish()  # the round trip sends input to the VM
        self.assertClient(result, 0)
        after = self.wait_for_value("vmgate_sessions_active", 0.0, vm="vm1")
        self.assertGreater(after.value("vmgate_relay_bytes_total", vm="vm1", direction="to_vm"),
                           before.value("vmgate_relay_bytes_total", vm="vm1", direction="to_vm"))
        self.assertEqual(grew("vmgate_auth_total", protocol="spice", mechanism="SCRAM-SHA-256", result="failed"), 0)

    def test_a_wrong_password_counts_a_failed_authentication(self):
        before = self.scrape()
        self.assertClient(self.connect("alice", "not-the-password"), 2)
        after = self.wait_for_value(
            "vmgate_auth_total", before.value("vmgate_auth_total", protocol="spice", mechanism="SCRAM-SHA-256",
                                              result="failed") + 1,
            protocol="spice", mechanism="SCRAM-SHA-256", result="failed")
        self.assertEqual(after.value("vmgate_sessions_active", vm="vm1"), 0.0)
        self.assertEqual(after.value("vmgate_decisions_total", decision="allowed", reason="allowed"),
                         before.value("vmgate_decisions_total", decision="allowed", reason="allowed"))

    def test_a_user_without_a_rule_counts_a_denied_decision(self):
        before = self.scrape()
        self.assertClient(self.connect("bob", PASSWORDS["bob"]), 2)
        wanted = before.value("vmgate_decisions_total", decision="denied", reason="no_rule") + 1
        after = self.wait_for_value("vmgate_decisions_total", wanted, decision="denied", reason="no_rule")
        self.assertEqual(after.value("vmgate_auth_total", protocol="spice", mechanism="SCRAM-SHA-256", result="ok"),
                         before.value("vmgate_auth_total", protocol="spice", mechanism="SCRAM-SHA-256", result="ok") + 1)
        self.assertNotIn("bob", after.text)  # never a user name in a label

    def test_an_unreachable_display_counts_an_upstream_error(self):
        before = self.scrape()
        self.assertClient(self.connect("alice", PASSWORDS["alice"], port=self.port_vm2), 5)  # error-link
        wanted = before.value("vmgate_upstream_errors_total", protocol="spice", vm="vm2") + 1
        after = self.wait_for_value("vmgate_upstream_errors_total", wanted, protocol="spice", vm="vm2")
        vm2_listener = "127.0.0.1:%d" % self.port_vm2
        self.assertGreater(after.value("vmgate_connections_total", protocol="spice", listener=vm2_listener),
                           before.value("vmgate_connections_total", protocol="spice", listener=vm2_listener))
        self.assertEqual(after.value("vmgate_upstream_errors_total", protocol="spice", vm="vm1"), 0)

    # ---- HTTP --------------------------------------------------------------------------------
    def test_other_paths_are_404_and_other_methods_405(self):
        self.assertEqual(http_request(self.metrics_port, "GET", "/")[0], 404)
        self.assertEqual(http_request(self.metrics_port, "GET", "/metrics/x")[0], 404)
        self.assertEqual(http_request(self.metrics_port, "POST", "/metrics")[0], 405)
        self.assertEqual(http_request(self.metrics_port, "DELETE", "/metrics")[0], 405)
        self.assertEqual(http_request(self.metrics_port, "GET", "/metrics?x=1")[0], 200)

    def test_an_oversized_request_is_cut_and_garbage_is_a_bad_request(self):
        huge = b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n"
        self.assertEqual(http_request(self.metrics_port, None, None, raw=huge)[0], 431)
        self.assertEqual(http_request(self.metrics_port, None, None, raw=b"HELLO\r\n\r\n")[0], 400)
        self.scrape()  # still serving


class VncMetrics(h.VncHarnessMixin, h.E2ETestCase):
    """The same families for VNC: mechanism labels are the VeNCrypt subtype (X509Plain) or the
    SASL mechanism chosen under X509SASL, as the audit log names them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()  # the gtk-vnc client's --ca-file (see vnc_client.py)
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS, appname="vnc")
        cls.qemu = cls.start_vnc_qemu("vncvm")
        cls.port, cls.deny_port, cls.metrics_port = h.free_port(), h.free_port(), h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.vnc_listener(cls.port, "vm1"), h.vnc_listener(cls.deny_port, "deny")],
            [h.vnc_vm_entry("vm1", cls.qemu.upstream, users=["alice"]),
             h.vnc_vm_entry("deny", cls.qemu.upstream, users=["alice", "bob"], seat="deny")],
            sasl={"mech_list": ["SCRAM-SHA-256", "PLAIN"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""},
            gateway={"metrics": "127.0.0.1:%d" % cls.metrics_port}))
        h.wait_until(lambda: cls.metrics_port in h.listening_ports(cls.gw.proc.pid), 10, what="metrics port")

    def connect(self, password, user="alice", port=None, **kw):
        return self.vnc_client(host="localhost", port=port or self.port, ca_file=self.pki.ca_cert, username=user,
                               password=password, **kw)

    def auth(self, scrape, mechanism, result):
        return scrape.value("vmgate_auth_total", protocol="vnc", mechanism=mechanism, result=result)

    def test_vnc_logins_count_by_subtype_and_sasl_mechanism(self):
        before = Scrape(self.metrics_port)
        self.assertVncClient(self.connect(PASSWORDS["alice"], auth_subtype=vc.VENCRYPT_X509PLAIN), vc.RC_OK)
        self.assertVncClient(self.connect("not-the-password", auth_subtype=vc.VENCRYPT_X509PLAIN), vc.RC_AUTH)
        self.assertVncClient(self.connect("not-the-password", sasl_mech="PLAIN"), vc.RC_AUTH)

        def settled():
            s = Scrape(self.metrics_port)
            return s if s.value("vmgate_sessions_active", vm="vm1") == 0 and \
                self.auth(s, "PLAIN", "failed") > self.auth(before, "PLAIN", "failed") else None
        after = h.wait_until(settled, 10, what="the three VNC logins counted")
        for mechanism, result, grew in (("X509Plain", "ok", 1), ("X509Plain", "failed", 1), ("PLAIN", "failed", 1),
                                        ("SCRAM-SHA-256", "failed", 0)):
            self.assertEqual(self.auth(after, mechanism, result) - self.auth(before, mechanism, result), grew,
                             (mechanism, result, after.text))
        grew = lambda name, **labels: after.value(name, **labels) - before.value(name, **labels)  # noqa: E731
        self.assertEqual(grew("vmgate_connections_total", protocol="vnc", listener="127.0.0.1:%d" % self.port), 3)
        self.assertEqual(grew("vmgate_handshake_duration_seconds_count", protocol="vnc"), 1)
        self.assertEqual(grew("vmgate_decisions_total", decision="allowed", reason="allowed"), 1)
        self.assertGreater(grew("vmgate_relay_bytes_total", vm="vm1", direction="to_client"), 0)


    def test_a_seat_held_by_another_counts_a_seat_taken_denial(self):
        before = Scrape(self.metrics_port)
        holder = self.held_vnc(name="held-alice", host="localhost", port=self.deny_port, ca_file=self.pki.ca_cert,
                               username="alice", password=PASSWORDS["alice"], send_keys=False)
        self.assertEqual(Scrape(self.metrics_port).value("vmgate_sessions_active", vm="deny"), 1.0)
        self.assertVncClient(self.connect(PASSWORDS["bob"], user="bob", port=self.deny_port), vc.RC_AUTH)
        wanted = before.value("vmgate_decisions_total", decision="denied", reason="seat_taken") + 1
        h.wait_until(lambda: Scrape(self.metrics_port).value("vmgate_decisions_total", decision="denied",
                                                             reason="seat_taken") == wanted, 10, what="seat_taken")
        holder.finish()


class MetricsReload(h.E2ETestCase):
    """The endpoint follows gateway.metrics on reload; a port that cannot be bound changes nothing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS)
        cls.metrics_port = h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(h.free_port(), "vm1")],
            [h.vm_entry("vm1", "unix:" + os.path.join(cls.tmp, "absent.sock"), users=["alice"])],
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""},
            gateway={"metrics": "127.0.0.1:%d" % cls.metrics_port}))

    def reload_with_metrics(self, address, expect_rc):
        config = copy.deepcopy(self.gw.config)
        config["gateway"]["metrics"] = address
        with open(self.gw.config_path, "w") as f:
            f.write(h.to_toml(config))
        result = h.vmgate_cli(self.gw, "reload")
        self.assertEqual(result.rc, expect_rc, str(result))
        return result

    def listening(self):
        return h.listening_ports(self.gw.proc.pid)

    def test_reload_moves_the_endpoint_and_refuses_a_taken_port(self):
        h.wait_until(lambda: self.metrics_port in self.listening(), 10, what="metrics port")
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        result = self.reload_with_metrics("127.0.0.1:%d" % taken, expect_rc=1)
        self.assertIn("cannot serve metrics on 127.0.0.1:%d (gateway.metrics)" % taken, result.stderr)
        self.assertIn(self.metrics_port, self.listening())
        Scrape(self.metrics_port)

        moved = h.free_port()
        result = self.reload_with_metrics("127.0.0.1:%d" % moved, expect_rc=0)
        self.assertIn("metrics endpoint: http://127.0.0.1:%d/metrics" % moved, result.stdout)
        self.assertIn(moved, self.listening())
        h.wait_until(lambda: self.metrics_port not in self.listening(), 5, what="old metrics port closed")
        Scrape(moved)

        result = self.reload_with_metrics("", expect_rc=0)
        self.assertIn("metrics endpoint: off", result.stdout)
        h.wait_until(lambda: moved not in self.listening(), 5, what="metrics port closed")


def journal_fields(datagram):
    """The fields of one journal native-protocol datagram: KEY=VALUE lines, or KEY, a 64-bit
    little-endian length and the binary value (for values with a newline)."""
    fields, data = {}, datagram
    while data:
        line_end = data.find(b"\n")
        equals = data.find(b"=", 0, line_end if line_end >= 0 else len(data))
        if equals >= 0:
            fields[data[:equals].decode()] = data[equals + 1:line_end].decode(errors="replace")
            data = data[line_end + 1:]
        else:
            key = data[:line_end].decode()
            size = int.from_bytes(data[line_end + 1:line_end + 9], "little")
            fields[key] = data[line_end + 9:line_end + 9 + size].decode(errors="replace")
            data = data[line_end + 9 + size + 1:]
    return fields


class Logging(h.E2ETestCase):
    """Where the daemon's log lines go: the journal only when stderr is the journal's stream."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h.require_private_mounts()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))

    def config(self):
        return h.gateway_config(
            self.pki, [h.spice_listener(h.free_port(), "vm1", auth=["ticket"])],
            [h.vm_entry("vm1", "unix:" + os.path.join(self.tmp, "absent.sock"), users=["alice"])])

    def journal_socket(self, name):
        """A fake /run/systemd for vmgate's namespace, its journal socket bound by the test."""
        run_systemd = os.path.join(self.tmp, name, "run-systemd")
        os.makedirs(os.path.join(run_systemd, "journal"))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(os.path.join(run_systemd, "journal", "socket"))
        sock.settimeout(0.2)
        return run_systemd, sock

    def start(self, name, journal_stream):
        """vmgate with /run/systemd replaced; JOURNAL_STREAM from journal_stream(stat of its stderr)."""
        run_systemd, sock = self.journal_socket(name)
        gw = h.Gateway(self.tmp, self.config(), name)
        open(gw.log_path, "ab").close()  # vmgate's stderr: its device and inode are known now
        st = os.stat(gw.log_path)
        gw.argv_prefix = (["env", "JOURNAL_STREAM=" + journal_stream(st)] +
                          h.private_mounts({run_systemd: "/run/systemd"}))
        self.log_sources.append(("vmgate %s log" % name, gw.log_tail))
        gw.start()
        self.addCleanup(gw.stop)
        return gw, sock

    @staticmethod
    def receive(sock, until, timeout=10.0):
        entries = []

        def arrived():
            try:
                entries.append(journal_fields(sock.recv(1 << 20)))
            except socket.timeout:
                pass
            return any(until(e) for e in entries)
        h.wait_until(arrived, timeout, what="a journal entry")
        return entries

    def test_under_systemd_log_lines_are_journal_entries_with_priorities(self):
        gw, sock = self.start("gw-journal", lambda st: "%d:%d" % (st.st_dev, st.st_ino))
        entries = self.receive(sock, lambda e: e.get("MESSAGE", "").startswith("listening on"))
        listening = [e for e in entries if e.get("MESSAGE", "").startswith("listening on")][0]
        self.assertEqual(listening.get("PRIORITY"), "6", listening)  # info
        self.assertEqual(listening.get("SYSLOG_IDENTIFIER"), "vmgate", listening)
        # A refused reload is an error (3).
        with open(gw.config_path, "a") as f:
            f.write("\nnot toml at all = = =\n")
        os.kill(gw.proc.pid, signal.SIGHUP)
        entries = self.receive(sock, lambda e: e.get("MESSAGE", "").startswith("reload refused"))
        refused = [e for e in entries if e.get("MESSAGE", "").startswith("reload refused")][0]
        self.assertEqual(refused.get("PRIORITY"), "3", refused)
        self.assertNotIn("listening on", h.read_tail(gw.log_path), "journal lines must not go to stderr too")

    def test_an_inherited_journal_stream_of_another_stream_keeps_stderr(self):
        gw, sock = self.start("gw-inherited", lambda st: "%d:%d" % (st.st_dev, st.st_ino + 1))
        h.wait_until(lambda: "listening on" in h.read_tail(gw.log_path), 10, what="log line on stderr")
        with self.assertRaises(socket.timeout):
            sock.settimeout(1.0)
            sock.recv(1 << 20)


if __name__ == "__main__":
    unittest.main()

"""Migration messages never reach the client with the hypervisor's address (spice-protocol.md 8.3,
12 item 19).

QMP `client_migrate_info` makes spice-server send SPICE_MSG_MAIN_MIGRATE_BEGIN (101), or
MIGRATE_BEGIN_SEAMLESS (116) with `seamless-migration=on`, to its connected client at once
(spice_server_migrate_connect); when a migration then completes without the client having
answered, it sends MIGRATE_SWITCH_HOST (111). Each carries the destination host and port. A real
migration to `exec:cat > /dev/null` is enough for the last one (the VM ends paused, QEMU drops
the client 10 s later: MIGRATE_TIMEOUT).

The reference test shows, against QEMU directly, that spice-gtk logs the address it is given
with SPICE_DEBUG=1 ("migrate_begin <size> <host> <port> <sport>"); through vmgate the same log
must never contain the address, and the audit log must have one "migration_blocked" record per
message. The address is 192.0.2.55 (TEST-NET-1, documentation only). As a safety net the clients
run with SPICE_MIG_HOST=127.0.0.1, which spice-gtk uses instead of the received host when it
connects (it still logs the received one first): even if vmgate let the message through, no packet
would go to 192.0.2.55. The reference test uses 127.0.0.1 and a closed port itself.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

PASSWORD = "alice-Migr-1"
HYPERVISOR = "192.0.2.55"
HYPERVISOR_PORT = 5999

MIGRATE_BEGIN = 101
MIGRATE_SWITCH_HOST = 111
MIGRATE_BEGIN_SEAMLESS = 116

DEBUG_ENV = {"SPICE_DEBUG": "1", "SPICE_MIG_HOST": "127.0.0.1"}


class SpiceMigration(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), {"alice": PASSWORD})
        cls.semi = cls.start_qemu("semi", qmp=True)
        cls.seamless = cls.start_qemu("seamless", qmp=True, spice_extra="seamless-migration=on")
        cls.ports = {"semi": h.free_port(), "seamless": h.free_port()}
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(port, vm) for vm, port in cls.ports.items()],
            [h.vm_entry("semi", cls.semi.upstream, users=["alice"]),
             h.vm_entry("seamless", cls.seamless.upstream, users=["alice"])],
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""}))

    # ---- helpers ---------------------------------------------------------------------------------
    def held(self, name, roundtrip=True, env=DEBUG_ENV, **kw):
        client = h.HeldClient(self.home, roundtrip=roundtrip, name=name, env=env, **kw)
        self.addCleanup(client.stop)
        self.log_sources.append(("%s stderr" % name, lambda: h.read_tail(client.stderr_path, 60)))
        return client.start()

    def held_via_gateway(self, vm, name, roundtrip=True):
        return self.held(name, roundtrip=roundtrip, host="localhost", tls_port=self.ports[vm],
                         ca_file=self.pki.ca_cert, username="alice", password=PASSWORD)

    @staticmethod
    def client_log(client):
        with open(client.stderr_path, errors="replace") as f:
            return f.read()

    def main_conn(self, mark):
        opened = self.gw.wait_audit("channel_open", since=mark, channel="main")
        self.assertEqual(len(opened), 1, opened)
        return opened[0]["conn"]

    def migrate_info(self, qemu, host=HYPERVISOR, port=HYPERVISOR_PORT):
        self.assertEqual(qemu.qmp("client_migrate_info", {"protocol": "spice", "hostname": host, "port": port}), {})

    def assertNeverSawHypervisor(self, client):
        log = self.client_log(client)
        self.assertIn("GSpice-DEBUG", log, "SPICE_DEBUG output missing: the check below would prove nothing")
        self.assertNotIn(HYPERVISOR, log, "the client learnt the hypervisor's migration address")
        for marker in ("migrate_begin", "migration message", "migrate_switch"):
            self.assertNotIn(marker, log, "a migration message reached the client")

    def assertBlocked(self, mark, conn, message_type, timeout=8.0):
        records = self.gw.wait_audit("migration_blocked", since=mark, timeout=timeout, message_type=message_type)
        self.assertEqual(len(records), 1, records)
        self.assertEqual((records[0].get("conn"), records[0].get("vm") is not None), (conn, True), records[0])
        return records[0]

    # ---- the reference: QEMU really sends it, and spice-gtk logs the address ---------------------
    def test_a_reference_qemu_sends_migrate_begin_to_a_direct_client(self):
        spice_port, closed_port = h.free_port(), h.free_port()
        qemu = self.enterContext(h.Qemu(self.tmp, "direct", tcp_port=spice_port, qmp=True))
        client = self.held("direct", roundtrip=False, env={"SPICE_DEBUG": "1"}, host="127.0.0.1", port=spice_port)
        self.migrate_info(qemu, "127.0.0.1", closed_port)
        wanted = "migrate_begin 10 127.0.0.1 %d" % closed_port
        h.wait_until(lambda: wanted in self.client_log(client), 10, what="%r in the client's debug log" % wanted)
        self.assertIn("migration message: migrate-begin", self.client_log(client))
        client.stop()

    # ---- through vmgate ------------------------------------------------------------------------------
    def test_b_migrate_begin_dropped(self):
        mark = self.gw.audit_mark()
        client = self.held_via_gateway("semi", "semi-begin")
        conn = self.main_conn(mark)
        self.migrate_info(self.semi)
        record = self.assertBlocked(mark, conn, MIGRATE_BEGIN)
        self.assertEqual(record.get("vm"), "semi", record)
        time.sleep(0.5)
        result = client.finish()  # the session still works both ways (Ctrl+Alt+Del round trip)
        self.assertEqual(result.rc, 0, "session after the blocked MIGRATE_BEGIN: %s" % result)
        self.assertNeverSawHypervisor(client)

    def test_c_migrate_begin_seamless_dropped(self):
        mark = self.gw.audit_mark()
        client = self.held_via_gateway("seamless", "seamless-begin")
        conn = self.main_conn(mark)
        self.migrate_info(self.seamless)
        record = self.assertBlocked(mark, conn, MIGRATE_BEGIN_SEAMLESS)
        self.assertEqual(record.get("vm"), "seamless", record)
        time.sleep(0.5)
        result = client.finish()
        self.assertEqual(result.rc, 0, "session after the blocked MIGRATE_BEGIN_SEAMLESS: %s" % result)
        self.assertNeverSawHypervisor(client)

    def test_d_switch_host_after_completed_migration_dropped(self):
        """Runs last on its VM: the migration leaves the guest paused."""
        mark = self.gw.audit_mark()
        client = self.held_via_gateway("semi", "semi-switch", roundtrip=False)
        conn = self.main_conn(mark)
        self.migrate_info(self.semi)
        self.assertBlocked(mark, conn, MIGRATE_BEGIN)
        self.assertEqual(self.semi.qmp("migrate", {"uri": "exec:cat > /dev/null"}), {})
        status = h.wait_until(lambda: (lambda s: s if s in ("completed", "failed") else None)(
            self.semi.qmp("query-migrate").get("status")), 30, interval=0.2, what="the migration to finish")
        self.assertEqual(status, "completed")
        self.assertBlocked(mark, conn, MIGRATE_SWITCH_HOST)
        # QEMU itself drops the client MIGRATE_TIMEOUT (10 s) after the migration; until then the
        # session is intact.
        self.assertTrue(client.alive(), "the client lost its session right after the migration")
        result = client.finish()
        self.assertEqual(result.rc, 0, "client after the blocked SWITCH_HOST: %s" % result)
        self.assertNeverSawHypervisor(client)
        self.assertEqual(self.gw.audit_events("migration_blocked", since=mark, message_type=MIGRATE_BEGIN_SEAMLESS), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""`vmgate reload` beyond sessions (docs/configuration.md "Reload"): listeners added and
removed on the running daemon, a port that cannot be bound refusing the whole reload, a file
with errors changing nothing, and settings a running process cannot change reported as needing
a restart — again on every later reload, not just the first. No QEMU: the listeners are watched
through /proc, the outcome through the CLI and the `reload` audit records.
"""

import copy
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402


class Reload(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), {"alice": "alice-Reload-1"})
        cls.port = h.free_port()
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(cls.port, "vm1")],
            [h.vm_entry("vm1", "unix:" + os.path.join(cls.tmp, "absent.sock"), users=["alice"])],
            sasl={"mech_list": ["SCRAM-SHA-256", "PLAIN"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""}))

    def setUp(self):
        super().setUp()
        self.original = copy.deepcopy(self.gw.config)
        self.addCleanup(self.restore)

    def restore(self):
        self.write(self.original)
        result = h.vmgate_cli(self.gw, "reload")
        self.assertEqual(result.rc, 0, "restoring the original file: %s" % result)

    def write(self, config):
        with open(self.gw.config_path, "w") as f:
            f.write(h.to_toml(config))

    def reload(self, expect_rc=0):
        mark = self.gw.audit_mark()
        result = h.vmgate_cli(self.gw, "reload")
        self.assertEqual(result.rc, expect_rc, str(result))
        records = self.gw.wait_audit("reload", since=mark)
        self.assertEqual(len(records), 1, records)
        return result, records[0]

    def listening(self):
        return h.listening_ports(self.gw.proc.pid)

    def config_with(self, **changes):
        config = copy.deepcopy(self.original)
        for key, value in changes.items():
            config[key] = value
        return config

    def test_listeners_come_and_go_and_the_kept_one_stays(self):
        extra = h.free_port()
        config = self.config_with()
        config["listener"].append(h.spice_listener(extra, "vm1"))
        self.write(config)
        result, record = self.reload()
        self.assertEqual(record["listeners_added"], ["127.0.0.1:%d" % extra], record)
        self.assertEqual(record["listeners_removed"], [], record)
        self.assertTrue(record["ok"], record)
        self.assertIn("listeners added: 127.0.0.1:%d" % extra, result.stdout)
        self.assertLessEqual({self.port, extra}, self.listening())

        self.write(self.config_with())
        _, record = self.reload()
        self.assertEqual(record["listeners_removed"], ["127.0.0.1:%d" % extra], record)
        h.wait_until(lambda: extra not in self.listening(), 5, what="port %d closed" % extra)
        self.assertIn(self.port, self.listening(), "the kept listener must keep listening")

    def test_a_port_that_cannot_be_bound_refuses_the_whole_reload(self):
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        config = self.config_with()
        config["listener"].append(h.spice_listener(taken, "vm1"))
        self.write(config)
        result, record = self.reload(expect_rc=1)
        self.assertFalse(record["ok"], record)
        self.assertIn("cannot listen on 127.0.0.1:%d" % taken, record["error"])
        self.assertIn("nothing was changed", result.stderr)
        self.assertIn(self.port, self.listening())

    def test_a_file_with_errors_changes_nothing(self):
        with open(self.gw.config_path, "a") as f:
            f.write('\n[[vm]]\nname = "BAD NAME"\nspice = "unix:/x"\n')
        result, record = self.reload(expect_rc=1)
        self.assertFalse(record["ok"], record)
        self.assertIn("vm[1].name", record["error"])
        self.assertIn("nothing was changed", result.stderr)

    def test_sasl_changes_wait_for_a_restart_on_every_reload(self):
        sasl = dict(self.original["sasl"], mech_list=["PLAIN"])
        self.write(self.config_with(sasl=sasl))
        for attempt in (1, 2):
            result, record = self.reload()
            self.assertEqual(record["restart_needed"], ["[sasl]"], "reload %d: %r" % (attempt, record))
            self.assertIn("not applied until restart: [sasl]", result.stdout)
        self.write(self.config_with(gateway=dict(self.original["gateway"], workers=3)))
        _, record = self.reload()
        self.assertEqual(record["restart_needed"], ["gateway.workers"], record)


if __name__ == "__main__":
    unittest.main(verbosity=2)

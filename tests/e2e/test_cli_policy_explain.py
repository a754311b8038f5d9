"""`vmgate policy explain USER VM`: the policy's decision from the configuration file alone.

No daemon and no QEMU: the tests run the real binary on one configuration made with the harness
helpers (and accepted by `vmgate check-config`, so the answers are about a file the daemon would
run), and check the exit code (0 allowed, 1 denied, 2 usage or configuration
error) and the first line ("allowed: REASON" / "denied: REASON"). vmgate runs with
TZ=Europe/Berlin, a zone with DST, so that --at is read as local time of that date.
"""

import datetime
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

from zoneinfo import ZoneInfo

TZ = "Europe/Berlin"
REALM = "EXAMPLE.TEST"
OK, DENIED, USAGE = 0, 1, 2

# 2026-11-23 is a Monday.
MONDAY, WEDNESDAY, FRIDAY, SATURDAY = "2026-11-23", "2026-11-25", "2026-11-27", "2026-11-28"


class PolicyExplain(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.exists("/usr/share/zoneinfo/" + TZ):
            raise RuntimeError("time zone %s not installed (Debian package tzdata)" % TZ)
        pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        upstream = "unix:" + os.path.join(cls.tmp, "vm.spice.sock")  # never connected to
        vms = [
            h.vm_entry("office", upstream, allow=[
                dict(users=["alice"], days=["mon", "tue"], hours="09:00-17:00"),
                dict(users=["night"], days=["fri"], hours="22:00-06:00"),
            ]),
            h.vm_entry("lab", upstream, allow=[
                dict(users=["bob"], sources=["10.0.0.0/8"]),
                dict(users=["carol"], view_only=True),
                dict(users=["dave"], deny_channels=["usbredir"]),
            ]),
            h.vm_entry("admin", upstream, allow=[dict(groups=["unix:root"])]),
            h.vm_entry("dst", upstream, allow=[dict(users=["erin"], hours="03:00-04:00")]),
        ]
        config = h.gateway_config(pki, [h.spice_listener(h.free_port(), "office")], vms,
                                  sasl={"default_realm": REALM},
                                  gateway={"state_dir": os.path.join(cls.tmp, "state"),
                                           "audit_log": os.path.join(cls.tmp, "audit.jsonl"),
                                           "admin_socket": os.path.join(cls.tmp, "admin.sock")})
        cls.config = os.path.join(cls.tmp, "vmgate.toml")
        with open(cls.config, "w") as f:
            f.write(h.to_toml(config))
        check = cls.run_vmgate(["check-config", cls.config])
        if check.returncode != 0:
            raise RuntimeError("the test configuration is not valid:\n%s\n%s" % (check.stderr, h.to_toml(config)))

    @classmethod
    def run_vmgate(cls, args):
        env = dict(os.environ, TZ=TZ)
        return subprocess.run([cls.vmgate] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=30, text=True)

    def explain(self, user, vm, *options, config=None):
        return self.run_vmgate(["policy", "explain", user, vm, "-c", config or self.config] + list(options))

    def assertExplained(self, result, rc, first_line):
        detail = "stdout:\n%s\nstderr:\n%s" % (result.stdout, result.stderr)
        self.assertEqual(result.returncode, rc, detail)
        self.assertEqual(result.stdout.splitlines()[0] if result.stdout else "", first_line, detail)

    def assertUsageError(self, result, *phrases):
        detail = "stdout:\n%s\nstderr:\n%s" % (result.stdout, result.stderr)
        self.assertEqual(result.returncode, USAGE, detail)
        self.assertEqual(result.stdout, "", detail)
        for phrase in phrases:
            self.assertIn(phrase, result.stderr, detail)

    # ---- days and hours (--at, local time) ---------------------------------------------------
    def test_allowed_on_a_listed_day_within_the_hours(self):
        r = self.explain("alice", "office", "--at", MONDAY + " 10:00")
        self.assertExplained(r, OK, "allowed: alice may use office (allow[0], Mon-Tue, 09:00-17:00)")
        self.assertIn("\nrule: office allow[0] (line ", r.stdout)
        self.assertIn("\nat: 2026-11-23 Monday 10:00\n", r.stdout)

    def test_denied_on_another_day(self):
        self.assertExplained(self.explain("alice", "office", "--at", WEDNESDAY + " 10:00"), DENIED,
                             "denied: alice may use office on Mon-Tue 09:00-17:00; today is Wednesday")

    def test_hours_include_the_start_and_exclude_the_end(self):
        self.assertExplained(self.explain("alice", "office", "--at", MONDAY + " 09:00"), OK,
                             "allowed: alice may use office (allow[0], Mon-Tue, 09:00-17:00)")
        self.assertExplained(self.explain("alice", "office", "--at", MONDAY + " 16:59"), OK,
                             "allowed: alice may use office (allow[0], Mon-Tue, 09:00-17:00)")
        self.assertExplained(self.explain("alice", "office", "--at", MONDAY + " 17:00"), DENIED,
                             "denied: alice may use office on Mon-Tue 09:00-17:00; it is 17:00")
        self.assertExplained(self.explain("alice", "office", "--at", MONDAY + " 08:59"), DENIED,
                             "denied: alice may use office on Mon-Tue 09:00-17:00; it is 08:59")

    def test_night_window_belongs_to_the_day_it_opened(self):
        self.assertExplained(self.explain("night", "office", "--at", SATURDAY + " 01:00"), OK,
                             "allowed: night may use office (allow[1], Fri, 22:00-06:00)")
        self.assertExplained(self.explain("night", "office", "--at", SATURDAY + " 22:30"), DENIED,
                             "denied: night may use office on Fri 22:00-06:00; today is Saturday")
        self.assertExplained(self.explain("night", "office", "--at", FRIDAY + " 21:59"), DENIED,
                             "denied: night may use office on Fri 22:00-06:00; it is 21:59")

    def test_at_in_summer_time_is_the_time_typed(self):
        # 2026-07-06 is a Monday in CEST (UTC+2); read with the winter offset it would be 17:30.
        r = self.explain("alice", "office", "--at", "2026-07-06 16:30")
        self.assertExplained(r, OK, "allowed: alice may use office (allow[0], Mon-Tue, 09:00-17:00)")
        self.assertIn("\nat: 2026-07-06 Monday 16:30\n", r.stdout)

    def test_a_local_time_skipped_by_dst_moves_forward(self):
        # Berlin's clocks jump from 02:00 to 03:00 on 2026-03-29: 02:30 does not exist there.
        r = self.explain("erin", "dst", "--at", "2026-03-29 02:30")
        self.assertExplained(r, OK, "allowed: erin may use dst (allow[0], 03:00-04:00)")
        self.assertIn("\nat: 2026-03-29 Sunday 03:30\n", r.stdout)

    def test_without_at_it_is_now_in_local_time(self):
        before = datetime.datetime.now(ZoneInfo(TZ))
        r = self.explain("bob", "lab", "--from", "10.1.2.3")
        after = datetime.datetime.now(ZoneInfo(TZ))
        self.assertExplained(r, OK, "allowed: bob may use lab (allow[0], only from 10.0.0.0/8)")
        at_line = [line for line in r.stdout.splitlines() if line.startswith("at: ")]
        expected = {"at: " + t.strftime("%Y-%m-%d %A %H:%M") for t in (before, after)}
        self.assertEqual(len(at_line), 1, r.stdout)
        self.assertIn(at_line[0], expected)

    # ---- who and which VM --------------------------------------------------------------------
    def test_unknown_vm(self):
        self.assertExplained(self.explain("alice", "vm9", "--at", MONDAY + " 10:00"), DENIED,
                             "denied: no VM named vm9")

    def test_vm_whose_rules_name_someone_else(self):
        r = self.explain("alice", "lab", "--at", MONDAY + " 10:00")
        self.assertExplained(r, DENIED, "denied: no allow rule of lab names alice")
        self.assertNotIn("\nrule: ", r.stdout)

    def test_realms(self):
        self.assertExplained(self.explain("alice@" + REALM, "office", "--at", MONDAY + " 10:00"), OK,
                             "allowed: alice@%s may use office (allow[0], Mon-Tue, 09:00-17:00)" % REALM)
        self.assertExplained(self.explain("alice@OTHER.TEST", "office", "--at", MONDAY + " 10:00"), DENIED,
                             "denied: no allow rule of office names alice@OTHER.TEST")

    def test_unix_group(self):
        # root's primary group is root on every Linux system; nobody's is not.
        self.assertExplained(self.explain("root", "admin"), OK, "allowed: root may use admin (allow[0])")
        self.assertExplained(self.explain("nobody", "admin"), DENIED, "denied: no allow rule of admin names nobody")

    # ---- source address (--from) -------------------------------------------------------------
    def test_source_inside_the_cidr(self):
        r = self.explain("bob", "lab", "--from", "10.200.0.1")
        self.assertExplained(r, OK, "allowed: bob may use lab (allow[0], only from 10.0.0.0/8)")
        self.assertIn("\nfrom: 10.200.0.1\n", r.stdout)

    def test_source_outside_the_cidr(self):
        self.assertExplained(self.explain("bob", "lab", "--from", "192.168.1.5"), DENIED,
                             "denied: bob may use lab only from 10.0.0.0/8; connection from 192.168.1.5")
        self.assertExplained(self.explain("bob", "lab", "--from", "2001:db8::1"), DENIED,
                             "denied: bob may use lab only from 10.0.0.0/8; connection from 2001:db8::1")

    def test_no_source_fails_a_source_limited_rule(self):
        self.assertExplained(self.explain("bob", "lab"), DENIED,
                             "denied: bob may use lab only from 10.0.0.0/8; the connection's source address is unknown")

    # ---- channels (--channel) ----------------------------------------------------------------
    def test_view_only_refuses_input_channels(self):
        r = self.explain("carol", "lab", "--channel", "inputs")
        self.assertExplained(r, DENIED, "denied: view-only access: the inputs channel is refused")
        self.assertIn("\nrule: lab allow[1] (line ", r.stdout)
        self.assertExplained(self.explain("carol", "lab", "--channel", "usbredir"), DENIED,
                             "denied: view-only access: the usbredir channel is refused")

    def test_view_only_allows_watching(self):
        for channel in ([], ["--channel", "main"], ["--channel", "display"]):
            self.assertExplained(self.explain("carol", "lab", *channel), OK,
                                 "allowed: carol may use lab (allow[1], view only)")

    def test_denied_channel(self):
        self.assertExplained(self.explain("dave", "lab", "--channel", "usbredir"), DENIED,
                             "denied: the usbredir channel of lab is denied to dave (allow[2])")
        self.assertExplained(self.explain("dave", "lab", "--channel", "inputs"), OK,
                             "allowed: dave may use lab (allow[2])")

    # ---- --json ------------------------------------------------------------------------------
    def test_json(self):
        r = self.explain("carol", "lab", "--json", "--at", MONDAY + " 10:00", "--channel", "inputs")
        self.assertEqual(r.returncode, DENIED, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1, r.stdout)
        decision = json.loads(lines[0])
        self.assertEqual(set(decision), {"allowed", "reason", "rule", "view_only", "deny_channels", "user",
                                         "realm", "vm", "at"})
        self.assertIs(decision["allowed"], False)
        self.assertEqual(decision["reason"], "view-only access: the inputs channel is refused")
        self.assertTrue(decision["rule"].startswith("lab allow[1] (line "), decision)
        self.assertIs(decision["view_only"], True)
        self.assertEqual(decision["deny_channels"], [])
        self.assertEqual((decision["user"], decision["realm"], decision["vm"]), ("carol", "", "lab"))
        self.assertEqual(decision["at"], "2026-11-23 Monday 10:00")

    # ---- usage and configuration errors ------------------------------------------------------
    def test_malformed_at(self):
        for at in ("2026-11-23", "2026-11-23T10:00", "23.11.2026 10:00", "2026-02-30 10:00", "2026-11-23 24:00"):
            self.assertUsageError(self.explain("alice", "office", "--at", at), "YYYY-MM-DD HH:MM", at)

    def test_malformed_from(self):
        self.assertUsageError(self.explain("bob", "lab", "--from", "10.0.0"), "--from", "10.0.0")
        self.assertUsageError(self.explain("bob", "lab", "--from", "10.0.0.0/8"), "--from")

    def test_unknown_channel(self):
        self.assertUsageError(self.explain("carol", "lab", "--channel", "input"), "--channel", "inputs")

    def test_missing_vm(self):
        r = self.run_vmgate(["policy", "explain", "alice", "-c", self.config])
        self.assertUsageError(r, "VM")

    def test_configuration_errors(self):
        broken = os.path.join(self.tmp, "broken.toml")
        with open(self.config) as f:
            text = f.read()
        with open(broken, "w") as f:
            f.write(text.replace('hours = "09:00-17:00"', 'hours = "9-17"'))
        r = self.explain("alice", "office", config=broken)
        self.assertUsageError(r, broken + ":", "hours", "1 error(s) in " + broken)
        self.assertUsageError(self.explain("alice", "office", config=os.path.join(self.tmp, "missing.toml")),
                              "missing.toml")


if __name__ == "__main__":
    unittest.main(verbosity=2)

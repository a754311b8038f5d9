"""The allow rules' time, day, source and Unix-group conditions, decided by the running gateway with
the real clock (docs/configuration.md [[vm.allow]]; design.md "Configuration").

One QEMU serves several [[vm]] entries (same upstream socket, one fixed listener each), each with
one rule for alice that differs in a single condition. The windows are computed from the current
time when the test starts, in the gateway's time zone. vmgate runs with TZ=Asia/Kolkata (UTC+05:30,
no DST): the machine's own zone is UTC, where a gateway reading UTC instead of local time would go
unnoticed.

Unix groups: vmgate resolves "unix:GROUP" with getgrnam_r (NSS, "files" here). Instead of adding
system accounts, vmgate runs in a private mount namespace in which a copy of /etc/group with two
test groups is bind-mounted over /etc/group; no other process sees it, and it vanishes with vmgate.
"""

import datetime
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

from zoneinfo import ZoneInfo

PASSWORD = "alice-Clock-1"
GATEWAY_TZ = "Asia/Kolkata"
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
STAFF_GROUP, OTHER_GROUP = "vmgate-e2e-staff", "vmgate-e2e-other"

RC_REFUSED = 2  # the final link result 7 makes spice-gtk report ERROR_AUTH
# The rules are written from the hour and day at setup; the class runs in seconds, so starting it
# at least this long before the next hour (midnight included) keeps them true throughout.
HOUR_MARGIN = datetime.timedelta(minutes=2)


def gateway_now():
    return datetime.datetime.now(ZoneInfo(GATEWAY_TZ))


def wait_for_hour_margin():
    """Sleeps past the next hour boundary when it is less than HOUR_MARGIN away."""
    now = gateway_now()
    next_hour = (now + datetime.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    if next_hour - now < HOUR_MARGIN:
        time.sleep((next_hour - now).total_seconds() + 1)


def window(start_hour, length_hours):
    """'HH:00-HH:00' starting at start_hour (mod 24); an end at midnight is written 24:00."""
    start = start_hour % 24
    end = (start + length_hours) % 24
    return "%02d:00-%s" % (start, "24:00" if end == 0 else "%02d:00" % end)


class SpicePolicyTime(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.exists("/usr/share/zoneinfo/" + GATEWAY_TZ):
            raise RuntimeError("time zone %s not installed (Debian package tzdata)" % GATEWAY_TZ)
        h.require_private_mounts()
        wait_for_hour_margin()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), {"alice": PASSWORD})
        cls.qemu = cls.start_qemu("vm1")

        now = gateway_now()
        cls.today = now.weekday()
        cls.hours_out = window(now.hour + 3, 1)   # a one-hour window 3 hours from now
        cls.hours_in = window(now.hour - 1, 3)    # now +-1 h; wraps past midnight late at night
        # 23-hour windows that end before they start (past midnight): all day but one hour
        cls.wrap_in = window(now.hour - 1, 23)    # misses the hour before the previous one
        cls.wrap_out = window(now.hour + 1, 23)   # misses exactly the current hour
        other_days = [DAYS[d] for d in range(7) if d != cls.today]
        rules = {
            "hours-out": {"hours": cls.hours_out},
            "hours-in": {"hours": cls.hours_in},
            "wrap-in": {"hours": cls.wrap_in},
            "wrap-out": {"hours": cls.wrap_out},
            "days-out": {"days": other_days},
            "days-in": {"days": [DAYS[cls.today]]},
            "sources-out": {"sources": ["10.0.0.0/8"]},
            "sources-in": {"sources": ["127.0.0.0/8"]},
        }
        vms = []
        for name, condition in rules.items():
            vms.append({"name": name, "spice": cls.qemu.upstream, "allow": [dict({"users": ["alice"]}, **condition)]})
        group_file = os.path.join(cls.tmp, "group")
        with open("/etc/group") as src, open(group_file, "w") as dst:
            dst.write(src.read().rstrip("\n") + "\n%s:x:64990:carol,alice,dave\n%s:x:64991:bob\n" % (
                STAFF_GROUP, OTHER_GROUP))
        os.chmod(group_file, 0o644)
        prefix = h.private_mounts({group_file: "/etc/group"}) + ["env", "TZ=" + GATEWAY_TZ]
        vms.append({"name": "unix-in", "spice": cls.qemu.upstream, "allow": [{"groups": ["unix:" + STAFF_GROUP]}]})
        vms.append({"name": "unix-out", "spice": cls.qemu.upstream, "allow": [{"groups": ["unix:" + OTHER_GROUP]}]})
        cls.ports = {vm["name"]: h.free_port() for vm in vms}
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki, [h.spice_listener(port, name) for name, port in cls.ports.items()], vms,
            sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""}), argv_prefix=prefix)

    # ---- helpers ---------------------------------------------------------------------------------
    def connect(self, vm):
        return self.client(host="localhost", tls_port=self.ports[vm], ca_file=self.pki.ca_cert,
                           username="alice", password=PASSWORD)

    def refused(self, vm):
        """Connect to `vm`, expect the policy to refuse alice; returns (decision, before, after)."""
        before = gateway_now()
        mark = self.gw.audit_mark()
        r = self.connect(vm)
        after = gateway_now()
        self.assertClient(r, RC_REFUSED)
        self.assertEqual(self.gw.audit_events("channel_open", since=mark), [])
        auth = self.gw.audit_events("auth", since=mark)
        self.assertTrue(auth and all(a.get("result") == "ok" for a in auth), auth)  # credentials were fine
        decisions = self.gw.wait_audit("decision", since=mark)
        self.assertEqual(len(decisions), 1, decisions)
        d = decisions[0]
        self.assertEqual((d.get("vm"), d.get("user"), d.get("allowed")), (vm, "alice", False), d)
        self.assertTrue(d.get("reason"), d)
        closes = self.assertClosedOnce(self.gw, mark)
        for close in closes.values():
            self.assertEqual(close.get("link_error"), "permission_denied", close)
        return d, before, after

    def allowed(self, vm):
        mark = self.gw.audit_mark()
        r = self.connect(vm)
        self.assertClient(r, 0)
        decisions = self.gw.wait_audit("decision", since=mark)
        self.assertTrue(all(d.get("allowed") is True and d.get("vm") == vm for d in decisions), decisions)
        self.assertTrue(self.gw.audit_events("channel_open", since=mark, channel="main"))
        self.assertClosedOnce(self.gw, mark)

    # ---- hours -----------------------------------------------------------------------------------
    def test_hours_window_excluding_now_refused(self):
        d, before, after = self.refused("hours-out")
        self.assertIn(self.hours_out, d["reason"], "the reason should state the window")
        clock = {"it is %02d:%02d" % (t.hour, t.minute) for t in (before, after)}
        self.assertTrue(any(c in d["reason"] for c in clock),
                        "the reason should state the gateway's local time (%s, %s): %r" % (
                            GATEWAY_TZ, " or ".join(sorted(clock)), d["reason"]))

    def test_hours_window_containing_now_first_frame(self):
        self.allowed("hours-in")

    def test_window_past_midnight_containing_now_first_frame(self):
        self.allowed("wrap-in")

    def test_window_past_midnight_excluding_now_refused(self):
        d, _, _ = self.refused("wrap-out")
        self.assertIn(self.wrap_out, d["reason"], "the reason should state the window")

    # ---- days ------------------------------------------------------------------------------------
    def test_days_excluding_today_refused(self):
        d, _, _ = self.refused("days-out")
        self.assertIn(DAY_NAMES[self.today], d["reason"], "the reason should name today")

    def test_days_including_today_first_frame(self):
        self.allowed("days-in")

    # ---- sources ---------------------------------------------------------------------------------
    def test_source_outside_cidr_refused(self):
        d, _, _ = self.refused("sources-out")
        self.assertIn("127.0.0.1", d["reason"], "the reason should name the client's address")
        self.assertIn("10.0.0.0/8", d["reason"], "the reason should name the allowed sources")

    def test_source_inside_cidr_first_frame(self):
        self.allowed("sources-in")

    # ---- Unix groups -----------------------------------------------------------------------------
    def test_unix_group_member_first_frame(self):
        self.allowed("unix-in")

    def test_unix_group_non_member_refused(self):
        d, _, _ = self.refused("unix-out")
        self.assertIn("alice", d["reason"], d)

    def test_system_group_file_untouched(self):
        with open("/etc/group") as f:
            self.assertNotIn(STAFF_GROUP, f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)

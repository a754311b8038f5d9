"""Live session control through vmgate, end to end: sessions that end while they run, channels a
rule does not grant, and configuration reloads (docs/configuration.md [[vm]] idle_timeout,
max_session, [[vm.allow]] hours, view_only, deny_channels; `vmgate reload`, SIGHUP).

Each ended session has exactly one `session_end` record with its reason code, every channel of it
is closed by vmgate with a close reason "CODE: ...", and the spice-gtk client holding it sees its
channels closed at once (its process ends with rc 6/7):

    window-closed   the allow rule's `hours` window ended (vmgate checks once a second)
    idle-timeout    no client bytes on the inputs channel for idle_timeout
    max-session     max_session after the session began, whatever the activity
    policy-reload   a reloaded configuration no longer allows the session's user

view_only / deny_channels: vmgate removes the channels a rule does not grant from the main
channel's CHANNELS_LIST, so spice-gtk never links them, and refuses a link that asks for one
anyway (final result PERMISSION_DENIED, a decision record allowed=false).

Two QEMUs (qa, qb). One gateway serves the timeout and channel tests; the time window and the
reload tests start a gateway of their own (their configuration depends on the test).
The time-window gateway runs with TZ=Asia/Kolkata (UTC+05:30): the machine's zone is UTC, where a
gateway reading UTC instead of local time would go unnoticed.
"""

import datetime
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import raw_spice as raw  # noqa: E402

from zoneinfo import ZoneInfo

PASSWORDS = {"alice": "alice-Live-1", "bob": "bob-Live-2", "carol": "carol-Live-3"}
GATEWAY_TZ = "Asia/Kolkata"
CHANNEL_INPUTS, CHANNEL_CURSOR = 3, 4
RC_REFUSED = 2
CLOSED_WITHIN = 5.0
IDLE, MAX = 3, 4  # seconds: idle_timeout and max_session of the timeout tests
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def hours_until_next_boundary(now, margin=datetime.timedelta(seconds=20)):
    """An `hours` window that contains `now` and ends at the next minute boundary (the one after
    when the next is less than `margin` away). Returns ("HH:MM-HH:MM", end as a datetime).
    An end at midnight is written 24:00; an end past midnight wraps ("23:59-00:01"), as the
    configuration reference defines it."""
    start = now.replace(second=0, microsecond=0)
    end = start + datetime.timedelta(minutes=1)
    if end - now < margin:
        end += datetime.timedelta(minutes=1)
    end_text = "24:00" if (end.hour, end.minute) == (0, 0) else "%02d:%02d" % (end.hour, end.minute)
    return "%02d:%02d-%s" % (start.hour, start.minute, end_text), end


def opened_channels(result):
    """The channel names a finished spice-gtk client reported OPENED (its RESULT line)."""
    m = re.search(r"\bchannels=(\S+)", result.result)
    return [] if not m or m.group(1) == "-" else m.group(1).split(",")


class LiveSession(h.LiveSessionMixin, h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.exists("/usr/share/zoneinfo/" + GATEWAY_TZ):
            raise RuntimeError("time zone %s not installed (Debian package tzdata)" % GATEWAY_TZ)
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"))
        cls.sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS)
        cls.qa = cls.start_qemu("qa")
        cls.qb = cls.start_qemu("qb")
        vms = [
            h.vm_entry("idle", cls.qa.upstream, users=["alice"], idle_timeout="%ds" % IDLE),
            h.vm_entry("busy", cls.qb.upstream, users=["bob"], idle_timeout="%ds" % IDLE),
            h.vm_entry("max", cls.qa.upstream, users=["alice"], max_session="%ds" % MAX),
            {"name": "view", "spice": cls.qa.upstream, "allow": [{"users": ["alice"], "view_only": True}]},
            {"name": "nocursor", "spice": cls.qb.upstream,
             "allow": [{"users": ["alice"], "deny_channels": ["cursor"]}]},
        ]
        cls.ports = {vm["name"]: h.free_port() for vm in vms}
        cls.gw = cls.start_gateway(cls.config(cls.ports, vms))

    @classmethod
    def config(cls, ports, vms):
        return h.gateway_config(
            cls.pki, [h.spice_listener(port, name) for name, port in ports.items()], vms,
            sasl={"mech_list": ["SCRAM-SHA-256", "PLAIN"], "sasldb": cls.sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""})

    # ---- helpers ---------------------------------------------------------------------------------
    def own_gateway(self, name, vms, argv_prefix=()):
        """A gateway for this test only (stopped at its end); returns (gateway, {vm: port})."""
        ports = {vm["name"]: h.free_port() for vm in vms}
        gw = h.Gateway(self.tmp, self.config(ports, vms), name=name, argv_prefix=argv_prefix)
        self.log_sources.append(("vmgate %s log" % name, gw.log_tail))
        self.log_sources.append(("vmgate %s audit tail" % name, gw.audit_tail))
        self.enterContext(gw)
        self.addCleanup(self._check_still_running, gw)  # before the stop (cleanups run LIFO)
        return gw, ports

    def hold(self, gw, ports, vm, user, name=None, **kw):
        mark = gw.audit_mark()
        client = self.held(name or "%s-%s-%s" % (gw.name, vm, user), ports[vm], user, PASSWORDS[user], **kw)
        return client, self.main_open(gw, mark, user, vm)

    def connect(self, port, user):
        return self.client(host="localhost", tls_port=port, ca_file=self.pki.ca_cert, username=user,
                           password=PASSWORDS[user])

    def finish_ok(self, gw, client, opened, roundtrip=True):
        self.assertTrue(client.alive(), "%s's client ended early" % opened["user"])
        result = client.finish()
        self.assertEqual(result.rc, 0, "%s's session should still work%s: %s" % (
            opened["user"], " both ways" if roundtrip else "", result))
        self.assertSessionEnded(gw, opened, "client-closed")
        return result

    def session_ids(self, gw):
        return sorted(s.get("id") for s in h.sessions_json(gw))

    def assertRawChannelRefused(self, gw, port, channel_type, channel, opened):
        """A raw link to `channel` naming the session QEMU gave `opened`'s client, with valid
        credentials: final result exactly 7, a decision allowed=false, no channel, a close with
        link_error permission_denied."""
        mark = gw.audit_mark()
        link = raw.RawSpiceLink(port, self.pki.ca_cert)
        self.addCleanup(link.close)
        reply = link.link(channel_type, connection_id=opened["spice_session"])
        self.assertEqual(reply.error, 0, "%s link reply" % channel)
        self.assertEqual(link.sasl_plain(opened["user"], PASSWORDS[opened["user"]]), (1, 0), "SASL PLAIN")
        self.assertEqual(link.final_result(), h.LINK_ERR_PERMISSION_DENIED, "final result of the %s link" % channel)
        data, how = link.read_rest()
        self.assertEqual(data, b"", "bytes after the refusing final result")
        conn = gw.conn_of_peer_port(link.local_port, since=mark)
        decisions = gw.wait_audit("decision", since=mark, conn=conn)
        self.assertEqual([(d.get("channel"), d.get("allowed")) for d in decisions], [(channel, False)], decisions)
        self.assertEqual(gw.audit_events("channel_open", since=mark, conn=conn), [])
        close = gw.wait_audit("close", since=mark, conn=conn)
        self.assertEqual(close[0].get("link_error"), "permission_denied", close[0])
        link.close()

    def assertReloadRecord(self, gw, since, ok, revoked, kept):
        records = gw.wait_audit("reload", since=since)
        self.assertEqual(len(records), 1, records)
        r = records[0]
        self.assertEqual(r.get("ok"), ok, r)
        self.assertEqual(sorted(r.get("revoked") or []), sorted(revoked), r)
        self.assertEqual(sorted(r.get("kept") or []), sorted(kept), r)
        return r

    # ---- hours window ----------------------------------------------------------------------------
    def test_window_closes_mid_session(self):
        now = datetime.datetime.now(ZoneInfo(GATEWAY_TZ))
        hours, end = hours_until_next_boundary(now)
        end_epoch = end.timestamp()
        gw, ports = self.own_gateway("gw-window", [
            {"name": "win", "spice": self.qa.upstream, "allow": [{"users": ["alice"], "hours": hours}]}],
            argv_prefix=["env", "TZ=" + GATEWAY_TZ])
        alice, a = self.hold(gw, ports, "win", "alice", roundtrip=False)
        time.sleep(max(0.0, end_epoch - 1.5 - time.time()))
        self.assertTrue(alice.alive(), "the session ended before its window (%s) did" % hours)
        self.assertNoSessionEnd(gw, a)
        ended = gw.wait_audit("session_end", session=a["session"], timeout=end_epoch - time.time() + 5)
        late = h.audit_time(ended[0]) - end_epoch
        self.assertGreaterEqual(late, -0.05, "session ended %.2fs before its window %s closed" % (-late, hours))
        self.assertLessEqual(late, 2.5, "session ended %.2fs after its window %s closed" % (late, hours))
        self.assertSessionEnded(gw, a, "window-closed")
        self.assertClientClosedPromptly(alice, 3.0)

    # ---- idle_timeout / max_session ---------------------------------------------------------------
    def test_idle_timeout_ends_a_silent_session_not_a_typing_one(self):
        alice, a = self.hold(self.gw, self.ports, "idle", "alice", roundtrip=False)
        bob, b = self.hold(self.gw, self.ports, "busy", "bob", extra=["--input-every", "0.5"])
        end = self.assertSessionEnded(self.gw, a, "idle-timeout", timeout=IDLE + 8)
        lasted = h.audit_time(end) - h.audit_time(a)
        self.assertGreaterEqual(lasted, IDLE - 0.2, "idle_timeout %ds ended the session after %.2fs" % (IDLE, lasted))
        self.assertLessEqual(lasted, IDLE + 3.5, "idle_timeout %ds ended the session after %.2fs" % (IDLE, lasted))
        self.assertClientClosedPromptly(alice, 3.0)
        # bob presses a key every 0.5 s: well past the idle timeout his session goes on
        time.sleep(max(0.0, h.audit_time(b) + 2 * IDLE + 1 - time.time()))
        self.assertTrue(bob.alive(), "a session with input every 0.5 s ended (idle_timeout %ds)" % IDLE)
        self.assertNoSessionEnd(self.gw, b)
        result = self.finish_ok(self.gw, bob, b)
        sent = int(re.search(r"inputs_sent=(\d+)", result.result).group(1))
        self.assertGreaterEqual(sent, 2 * IDLE, "the busy client sent too few key presses: %s" % result)

    def test_max_session_ends_an_active_session(self):
        alice, a = self.hold(self.gw, self.ports, "max", "alice", roundtrip=False, extra=["--input-every", "0.5"])
        end = self.assertSessionEnded(self.gw, a, "max-session", timeout=MAX + 8)
        lasted = h.audit_time(end) - h.audit_time(a)
        self.assertGreaterEqual(lasted, MAX - 0.2, "max_session %ds ended the session after %.2fs" % (MAX, lasted))
        self.assertLessEqual(lasted, MAX + 2.5, "max_session %ds ended the session after %.2fs" % (MAX, lasted))
        result = self.assertClientClosedPromptly(alice, 3.0)
        sent = int(re.search(r"inputs_sent=(\d+)", result.result).group(1))
        self.assertGreaterEqual(sent, 1, "the client was not active: %s" % result)

    # ---- view_only / deny_channels -----------------------------------------------------------------
    def test_view_only_gets_frames_without_inputs(self):
        mark = self.gw.audit_mark()
        alice, a = self.hold(self.gw, self.ports, "view", "alice", roundtrip=False)  # READY: first frame
        self.wait_session_channels(self.gw, a["session"], ("main", "display"))
        time.sleep(1.0)  # spice-gtk links every listed channel at once after MAIN_CHANNELS_LIST
        self.assertEqual(self.gw.audit_events("link", since=mark, channel="inputs"), [],
                         "spice-gtk linked the inputs channel of a view-only session")
        self.assertNotIn("inputs", session_channel_names(self.gw, a["session"]))
        listed = [s for s in h.sessions_json(self.gw) if s.get("id") == a["session"]]
        self.assertEqual(len(listed), 1, listed)
        self.assertIs(listed[0].get("view_only"), True, listed[0])
        self.assertRawChannelRefused(self.gw, self.ports["view"], CHANNEL_INPUTS, "inputs", a)
        result = self.finish_ok(self.gw, alice, a, roundtrip=False)
        self.assertIn("display", opened_channels(result), result)
        self.assertNotIn("inputs", opened_channels(result), result)

    def test_deny_channels_cursor_hidden_and_refused(self):
        mark = self.gw.audit_mark()
        alice, a = self.hold(self.gw, self.ports, "nocursor", "alice")
        self.wait_session_channels(self.gw, a["session"], ("main", "display", "inputs"))
        time.sleep(1.0)
        self.assertEqual(self.gw.audit_events("link", since=mark, channel="cursor"), [],
                         "spice-gtk linked the cursor channel a rule denies")
        self.assertNotIn("cursor", session_channel_names(self.gw, a["session"]))
        self.assertRawChannelRefused(self.gw, self.ports["nocursor"], CHANNEL_CURSOR, "cursor", a)
        result = self.finish_ok(self.gw, alice, a)  # inputs still work: Ctrl+Alt+Del round trip
        self.assertNotIn("cursor", opened_channels(result), result)

    # ---- reload ------------------------------------------------------------------------------------
    def reload_setup(self, name):
        gw, ports = self.own_gateway(name, [h.vm_entry("ra", self.qa.upstream, users=["alice"]),
                                            h.vm_entry("rb", self.qb.upstream, users=["bob"])])
        alice, a = self.hold(gw, ports, "ra", "alice")
        bob, b = self.hold(gw, ports, "rb", "bob")
        self.assertEqual(self.session_ids(gw), sorted([a["session"], b["session"]]))
        return gw, ports, alice, a, bob, b

    @staticmethod
    def revoke_alice(gw):
        """ra: only carol now (alice loses her rule); rb: bob still allowed, by another rule."""
        gw.config["vm"][0]["allow"] = [{"users": ["carol"]}]
        gw.config["vm"][1]["allow"] = [{"users": ["carol"]}, {"users": ["bob"], "days": ALL_DAYS}]
        gw.write_config()

    def assertOnlyAliceRevoked(self, gw, mark, alice, a, bob, b):
        self.assertClientClosedPromptly(alice, CLOSED_WITHIN)
        self.assertSessionEnded(gw, a, "policy-reload")
        self.assertReloadRecord(gw, mark, True, [a["session"]], [b["session"]])
        self.assertEqual(self.session_ids(gw), [b["session"]], "bob's session keeps its id")
        self.assertTrue(bob.alive(), "bob's client ended on a reload that still allows him")
        self.assertNoSessionEnd(gw, b)
        self.assertEqual([e.get("session") for e in gw.audit_events("session_end", since=mark)], [a["session"]])

    def test_reload_revokes_exactly_the_sessions_that_lost_their_rule(self):
        gw, ports, alice, a, bob, b = self.reload_setup("gw-reload")
        mark = gw.audit_mark()
        self.revoke_alice(gw)
        res = h.vmgate_cli(gw, "reload")
        self.assertEqual(res.rc, 0, "vmgate reload: %s" % res)
        self.assertOnlyAliceRevoked(gw, mark, alice, a, bob, b)
        # the new file is in force: carol reaches ra, alice is refused there
        self.assertClient(self.connect(ports["ra"], "carol"), 0, "carol on ra after the reload")
        self.assertClient(self.connect(ports["ra"], "alice"), RC_REFUSED, "alice on ra after the reload")
        self.assertTrue(bob.alive())
        self.finish_ok(gw, bob, b)

    def test_reload_with_a_bad_file_changes_nothing(self):
        gw, ports, alice, a, bob, b = self.reload_setup("gw-badreload")
        mark = gw.audit_mark()
        self.revoke_alice(gw)  # would end alice's session if it were applied ...
        gw.config["vm"][1]["allow"][1]["days"] = ["frii"]  # ... but the file is invalid
        gw.write_config()
        res = h.vmgate_cli(gw, "reload")
        self.assertEqual(res.rc, 1, "vmgate reload of an invalid file: %s" % res)
        self.assertIn("nothing was changed", res.stdout + res.stderr, res)
        time.sleep(1.0)  # nothing to wait for: give a wrong revocation the time to show
        for record in gw.audit_events("reload", since=mark):
            self.assertFalse(record.get("ok"), record)
            self.assertFalse(record.get("revoked"), record)
        self.assertEqual(gw.audit_events("session_end", since=mark), [])
        self.assertEqual(self.session_ids(gw), sorted([a["session"], b["session"]]))
        self.assertTrue(alice.alive() and bob.alive(), "a client ended after a failed reload")
        # the old configuration is still the one in force: carol may not use ra
        self.assertClient(self.connect(ports["ra"], "carol"), RC_REFUSED, "carol on ra after a failed reload")
        self.finish_ok(gw, alice, a)
        self.finish_ok(gw, bob, b)

    def test_sighup_reloads(self):
        gw, ports, alice, a, bob, b = self.reload_setup("gw-sighup")
        mark = gw.audit_mark()
        self.revoke_alice(gw)
        os.kill(gw.proc.pid, signal.SIGHUP)
        self.assertOnlyAliceRevoked(gw, mark, alice, a, bob, b)
        self.assertIsNone(gw.proc.poll(), "vmgate exited on SIGHUP")
        self.finish_ok(gw, bob, b)


def session_channel_names(gw, session):
    return sorted(h.session_conns(gw, session).values())


if __name__ == "__main__":
    unittest.main(verbosity=2)

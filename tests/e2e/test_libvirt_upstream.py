"""libvirt upstreams and the libvirt inventory, end to end, with a real libvirtd.

A private libvirtd (vmgate_e2e/libvirt.py: qemu:///system driver in a private mount namespace)
runs TCG domains whose SPICE and VNC displays sit on unix sockets with ticketing on and no
password: a direct client is refused by QEMU itself. vmgate gets each SPICE channel and each VNC
session from libvirt (virDomainOpenGraphicsFD with SKIPAUTH), so real spice-gtk and gtk-vnc
clients get their first frame through it. `[libvirt] vms = "all"` makes every domain with a
console a VM: [[vm]] sections without upstreams give them their policy (by name or UUID), domains
defined, started, stopped and undefined later are followed through libvirt's lifecycle events,
`vmgate vms` lists them with their reachability, and a domain whose console listens on a
non-loopback address is warned about at start. A stopped libvirtd gives clear refusals while live
sessions go on, and vmgate recovers when it comes back.
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import libvirt as lv  # noqa: E402
from vmgate_e2e import vnc_client  # noqa: E402

PASSWORDS = {"alice": "alice-Lv-1"}
X509_PLAIN = 262
SPICE_CHANNELS = ("main", "display", "inputs", "cursor")
SUFFIX = ".vms.test"
UUID2 = "6f1c2a3e-58b4-4d3a-9c1e-2b7d9e0f4a51"
RC_LINK = 5  # spice_client: a link error reply


class LibvirtBase(h.VncHarnessMixin, h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        lv.require()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"), cn="gateway.vms.test",
                             san="DNS:*.vms.test,DNS:localhost,IP:127.0.0.1")
        cls.sasldb = h.make_sasldb(os.path.join(cls.tmp, "sasldb2"), PASSWORDS, appname="vnc")
        cls.libvirtd = cls.enterClassContext(lv.Libvirtd(cls.tmp))
        cls.log_sources.append(("libvirtd log", cls.libvirtd.log_tail))

    @classmethod
    def gateway(cls, listeners, vms, **gateway):
        config = h.gateway_config(cls.pki, listeners, vms, gateway=gateway,
                                  sasl={"mech_list": ["SCRAM-SHA-256"], "sasldb": cls.sasldb, "default_realm": ""})
        config["libvirt"] = {"uri": cls.libvirtd.uri, "vms": "all"}
        return cls.start_gateway(config)

    @classmethod
    def run_domain(cls, name, **kw):
        cls.libvirtd.define(lv.domain_xml(name, **kw))
        cls.libvirtd.virsh("start", name)

    def spice(self, port, host="localhost", **kw):
        return self.client(host=host, tls_port=port, ca_file=self.pki.ca_cert, username="alice",
                           password=PASSWORDS["alice"], **kw)

    def vnc(self, port, **kw):
        return self.vnc_client(host="localhost", port=port, ca_file=self.pki.ca_cert, username="alice",
                               password=PASSWORDS["alice"], auth_subtype=X509_PLAIN, **kw)

    def vms(self, gw):
        res = h.vmgate_cli(gw, "vms", "--json")
        self.assertIn(res.rc, (0, 1), res)
        reply = json.loads(res.stdout)
        return reply, {vm["name"]: vm for vm in reply["vms"]}

    def wait_vms(self, gw, predicate, what, timeout=15.0):
        return h.wait_until(lambda: predicate(*self.vms(gw)), timeout, interval=0.3, what=what)

    def assertSpiceSession(self, gw, port, vm):
        """Every channel spice-gtk opens is its own OpenGraphicsFD and channel_open record."""
        mark = gw.audit_mark()
        held = h.HeldClient(self.home, roundtrip=False, name="held-spice", host="localhost", tls_port=port,
                            ca_file=self.pki.ca_cert, username="alice", password=PASSWORDS["alice"])
        self.addCleanup(held.stop)
        held.start()
        opened = gw.wait_audit("channel_open", since=mark, vm=vm, count=len(SPICE_CHANNELS))
        self.assertClient(held.finish(), 0)
        self.assertLessEqual(set(SPICE_CHANNELS), {o.get("channel") for o in opened}, opened)
        self.assertEqual(len({o.get("session") for o in opened}), 1, opened)
        self.assertClosedOnce(gw, mark)

    def assertRefused(self, gw, mark, words):
        closes = self.assertClosedOnce(gw, mark)
        self.assertTrue(any(words in str(c.get("reason")) for c in closes.values()), closes)
        self.assertEqual(gw.audit_events("channel_open", since=mark), [])
        self.assertIsNone(gw.proc.poll(), "vmgate must keep running")


class LibvirtUpstream(LibvirtBase):
    """lv1: SPICE + VNC; lv2: SPICE, its [[vm]] named by UUID; lv3: SPICE, no [[vm]]; lv4: defined,
    never started; exposed: VNC on 0.0.0.0, defined only; late: a [[vm]] whose domain the tests
    define and undefine while vmgate runs."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.run_domain("lv1")
        cls.run_domain("lv2", uuid=UUID2, vnc=False)
        cls.run_domain("lv3", vnc=False)
        cls.libvirtd.define(lv.domain_xml("lv4", vnc=False))
        cls.libvirtd.define(lv.domain_xml("exposed", spice=False, vnc_listen="0.0.0.0"))
        cls.hosts = os.path.join(cls.tmp, "hosts")
        with open(cls.hosts, "w") as f:
            f.write("127.0.0.1 localhost lv2.vms.test lv3.vms.test\n")
        ports = [h.free_port() for _ in range(6)]
        cls.p_spice, cls.p_vnc, cls.p_lv4, cls.p_sni, cls.p_late, cls.p_late_vnc = ports
        allow = [{"users": ["alice"]}]
        cls.gw = cls.gateway(
            [h.spice_listener(cls.p_spice, "lv1"), h.vnc_listener(cls.p_vnc, "lv1"),
             h.spice_listener(cls.p_lv4, "lv4"), h.spice_listener(cls.p_sni, sni_suffix=SUFFIX),
             h.spice_listener(cls.p_late, "late"), h.vnc_listener(cls.p_late_vnc, "late")],
            [{"name": name, "allow": allow} for name in ("lv1", UUID2, "lv4", "late")])

    # ---- QEMU's displays refuse everyone but libvirt's SKIPAUTH connections ---------------------
    def test_direct_clients_are_refused(self):
        r = self.client(unix=self.libvirtd.display_socket("lv1", "spice"), password="any-guess")
        self.assertClient(r, 2, "spice-server with ticketing on and no password must refuse")
        r = self.vnc_client(unix=self.libvirtd.display_socket("lv1", "vnc"), password="guess")
        self.assertVncClient(r, vnc_client.RC_AUTH)

    # ---- through vmgate ---------------------------------------------------------------------------
    def test_spice_session_with_every_channel(self):
        self.assertSpiceSession(self.gw, self.p_spice, "lv1")

    def test_vnc_first_frame(self):
        mark = self.gw.audit_mark()
        r = self.vnc(self.p_vnc)
        self.assertVncClient(r, 0)
        self.assertEqual(r.name, "QEMU (lv1)")
        self.assertEqual(len(self.gw.wait_audit("channel_open", since=mark, vm="lv1", channel="vnc")), 1)
        self.assertClosedOnce(self.gw, mark)

    def test_vm_named_by_uuid_is_reached_by_the_domain_name(self):
        mark = self.gw.audit_mark()
        r = self.spice(self.p_sni, host="lv2.vms.test", argv_prefix=h.private_mounts({self.hosts: "/etc/hosts"}))
        self.assertClient(r, 0)
        self.assertIn("primary=720x400", r.result)
        self.assertTrue(self.gw.wait_audit("channel_open", since=mark, vm=UUID2))

    def test_domain_without_vm_section_is_refused(self):
        mark = self.gw.audit_mark()
        r = self.spice(self.p_sni, host="lv3.vms.test", argv_prefix=h.private_mounts({self.hosts: "/etc/hosts"}))
        self.assertClient(r, RC_LINK)
        self.assertRefused(self.gw, mark, 'libvirt domain "lv3" has no [[vm]] section with allow rules')

    def test_domain_not_running_is_refused_in_words(self):
        mark = self.gw.audit_mark()
        t0 = time.monotonic()
        r = self.spice(self.p_lv4)
        self.assertClient(r, RC_LINK)
        self.assertLess(time.monotonic() - t0, 5.0, "a refusal, not a hang")
        self.assertRefused(self.gw, mark, 'libvirt domain "lv4" is not running (shut off)')

    # ---- inventory ----------------------------------------------------------------------------------
    def test_vms_lists_config_and_inventory_with_reachability(self):
        reply, vms = self.vms(self.gw)
        self.assertEqual(reply["libvirt"], {"uri": self.libvirtd.uri, "inventory": "all", "connected": True,
                                            "problem": ""})
        self.assertLessEqual({"lv1", UUID2, "lv4", "late", "lv3", "exposed"}, set(vms), vms)
        lv1 = vms["lv1"]
        self.assertEqual((lv1["source"], lv1["domain"], lv1["state"], lv1["allow_rules"]),
                         ("config", "lv1", "running", 1), lv1)
        for display in ("spice", "vnc"):
            self.assertEqual(lv1[display], {"upstream": "libvirt:lv1", "reachable": True}, lv1)
        by_uuid = vms[UUID2]
        self.assertEqual((by_uuid["domain"], by_uuid["uuid"]), ("lv2", UUID2), by_uuid)
        self.assertTrue(by_uuid["spice"]["reachable"], by_uuid)
        self.assertIsNone(by_uuid["vnc"], "lv2 has no VNC device")
        self.assertEqual((vms["lv3"]["source"], vms["lv3"]["allow_rules"]), ("libvirt", 0), vms["lv3"])
        self.assertEqual(vms["lv4"]["state"], "shut off")
        self.assertFalse(vms["lv4"]["spice"]["reachable"])
        self.assertIn('libvirt domain "lv4" is not running (shut off)', vms["lv4"]["spice"]["problem"])
        self.assertEqual(vms["exposed"]["source"], "libvirt")
        text = h.vmgate_cli(self.gw, "vms")
        self.assertEqual(text.rc, 1, "some displays are unreachable: %s" % text)
        self.assertIn("lv1 (libvirt domain lv1 ", text.stdout)
        self.assertIn("lv3 (libvirt domain lv3 ", text.stdout)
        self.assertIn("no [[vm]] section: nobody may use it", text.stdout)
        self.assertIn("UNREACHABLE: upstream libvirt:lv4", text.stdout)

    def test_exposed_console_is_warned_about_at_start(self):
        log = self.gw.log_tail(1000)
        self.assertIn("VM exposed: VNC listens on 0.0.0.0, a port libvirt picks: its console can be reached "
                      "from other hosts around vmgate", log)
        self.assertNotIn("VM lv1:", log)

    def test_inventory_follows_domains_defined_and_undefined_later(self):
        _, vms = self.vms(self.gw)
        self.assertNotIn("domain", vms["late"])
        mark = self.gw.audit_mark()
        self.assertClient(self.spice(self.p_late), RC_LINK)
        self.assertRefused(self.gw, mark, 'no libvirt domain "late"')

        self.run_domain("late")
        self.wait_vms(self.gw, lambda reply, vms: vms["late"].get("state") == "running", "late running in vmgate vms")
        self.assertSpiceSession(self.gw, self.p_late, "late")
        self.assertVncClient(self.vnc(self.p_late_vnc), 0)

        self.libvirtd.virsh("destroy", "late")
        self.wait_vms(self.gw, lambda reply, vms: vms["late"].get("state") == "shut off", "late shut off")
        self.libvirtd.virsh("undefine", "late")
        self.wait_vms(self.gw, lambda reply, vms: "domain" not in vms["late"], "late gone from the inventory")
        mark = self.gw.audit_mark()
        self.assertClient(self.spice(self.p_late), RC_LINK)
        self.assertRefused(self.gw, mark, 'no libvirt domain "late"')


class LibvirtdRestart(LibvirtBase):
    """libvirtd stops under a running vmgate and a live session, then comes back."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.run_domain("lvr")
        cls.p_spice, cls.p_vnc = h.free_port(), h.free_port()
        cls.gw = cls.gateway([h.spice_listener(cls.p_spice, "lvr"), h.vnc_listener(cls.p_vnc, "lvr")],
                             [{"name": "lvr", "allow": [{"users": ["alice"]}]}])

    def test_libvirtd_stopped_and_started_again(self):
        held = h.HeldClient(self.home, roundtrip=True, name="held-lvr", host="localhost", tls_port=self.p_spice,
                            ca_file=self.pki.ca_cert, username="alice", password=PASSWORDS["alice"])
        self.addCleanup(held.stop)
        held.start()

        self.libvirtd.stop_daemon()
        reply, _ = self.wait_vms(self.gw, lambda reply, vms: (reply, vms) if not reply["libvirt"]["connected"]
                                 else None, "the inventory to notice libvirtd is gone")
        self.assertIn("libvirt", reply["libvirt"]["problem"])
        mark = self.gw.audit_mark()
        self.assertClient(self.spice(self.p_spice), RC_LINK)
        self.assertRefused(self.gw, mark, "cannot reach the VM's display: upstream libvirt:lvr: ")
        mark = self.gw.audit_mark()
        r = self.vnc(self.p_vnc)
        self.assertVncClient(r, vnc_client.RC_AUTH)
        self.assertIn("libvirt:lvr", r.reason)
        self.assertRefused(self.gw, mark, "upstream libvirt:lvr: ")
        self.assertTrue(held.alive(), "the live session does not depend on libvirtd")

        self.libvirtd.start()
        self.wait_vms(self.gw, lambda reply, vms: reply["libvirt"]["connected"] and vms["lvr"].get("state") == "running",
                      "the inventory back")
        self.assertClient(held.finish(), 0, "the held session still worked both ways")
        self.assertSpiceSession(self.gw, self.p_spice, "lvr")


if __name__ == "__main__":
    unittest.main(verbosity=2)

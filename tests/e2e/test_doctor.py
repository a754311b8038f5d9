"""`vmgate doctor` end to end, on fixture host trees (--root).

setUpClass builds one clean host tree: a real certificate and key made with the openssl CLI, a
sasldb made by saslpasswd2, libvirt's qemu.conf with SPICE SASL on and QEMU's SASL file, a
domain XML on sockets, PAM files, and a fake /proc with a QEMU whose displays are on unix sockets
(and a shell whose arguments merely look like QEMU options). On that tree doctor must find
nothing and exit 0. Each other test copies the tree, plants one problem, and expects doctor to
report it with its id and the exit status of its severity (1 warnings only, 2 errors).
"""

import json
import os
import pwd
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402
from vmgate_e2e import libvirt as lv  # noqa: E402

CERT_NAMES = "DNS:gw.vmgate.test,DNS:*.vms.vmgate.test,IP:127.0.0.1"
QEMU = "/usr/bin/qemu-system-x86_64"
CLEAN_CMDLINE = [QEMU, "-name", "guest=web1,debug-threads=on", "-spice",
                 "unix=on,addr=/run/libvirt/qemu/web1.spice.sock,disable-ticketing=on", "-vnc",
                 "unix:/run/libvirt/qemu/web1.vnc.sock"]
SOCKET_DOMAIN = """<domain type='kvm'>
  <name>web1</name>
  <uuid>4dc3c1ab-9c2e-4e5b-a8f1-0123456789ab</uuid>
  <devices>
    <graphics type='spice'><listen type='socket'/></graphics>
    <graphics type='vnc'><listen type='socket'/></graphics>
  </devices>
</domain>
"""


def openssl_cert(directory, name, days, san=CERT_NAMES):
    """A self-signed server certificate and its key, with the openssl CLI: (cert, key) paths.
    days=0 makes one that expired the moment it was made."""
    key = os.path.join(directory, name + "-key.pem")
    csr = os.path.join(directory, name + ".csr")
    cert = os.path.join(directory, name + "-cert.pem")
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % san)
    h._run_checked(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/O=vmgate e2e/CN=gw.vmgate.test", "-keyout", key, "-out", csr], what="openssl req")
    h._run_checked(["openssl", "x509", "-req", "-in", csr, "-signkey", key, "-days", str(days), "-extfile", ext,
                    "-out", cert], what="openssl x509")
    return cert, key


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def write_cmdline(root, pid, argv):
    write(os.path.join(root, "proc", str(pid), "cmdline"), "".join(a + "\0" for a in argv))


class DoctorFixture(h.E2ETestCase):
    """The clean tree, copies of it, and running doctor on one."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = pwd.getpwuid(os.getuid()).pw_name
        cls.pki = os.path.join(cls.tmp, "pki")
        os.makedirs(cls.pki)
        cls.certs = {name: openssl_cert(cls.pki, name, days, san)
                     for name, days, san in (("good", 365, CERT_NAMES), ("expired", 0, CERT_NAMES),
                                             ("expiring", 10, CERT_NAMES),
                                             ("no-wildcard", 365, "DNS:gw.vmgate.test,IP:127.0.0.1"))}
        cls.clean = os.path.join(cls.tmp, "clean")
        cls.build_clean_tree(cls.clean)
        cls.trees = 0

    @classmethod
    def build_clean_tree(cls, root):
        etc = os.path.join(root, "etc")
        config = {
            "tls": {"cert": "/etc/vmgate/server-cert.pem", "key": "/etc/vmgate/server-key.pem"},
            "sasl": {"sasldb": "/etc/vmgate/sasldb2"},
            "listener": [h.spice_listener(5902, vm="vm1"), h.spice_listener(5900, vm="vm1", tls=False),
                         h.spice_listener(5903, sni_suffix=".vms.vmgate.test"), h.vnc_listener(5901, vm="vm1")],
            "vm": [{"name": "vm1", "spice": "unix:/run/vmgate/vm1.spice.sock", "vnc": "unix:/run/vmgate/vm1.vnc.sock",
                    "allow": [{"users": ["anne"]}]}],
        }
        write(os.path.join(etc, "vmgate", "vmgate.toml"), h.to_toml(config))
        cls.install_cert(root, "good")
        h.make_sasldb(os.path.join(etc, "vmgate", "sasldb2"), {"anne": "anne-Pw-1"})
        os.chmod(os.path.join(etc, "vmgate", "sasldb2"), 0o600)
        write(os.path.join(etc, "libvirt", "qemu.conf"),
              '# vnc_listen = "0.0.0.0"\nspice_listen = "127.0.0.1"\nspice_tls = 1\nspice_sasl = 1\n'
              'cgroup_device_acl = [\n    "/dev/null", "/dev/full"\n]\n')
        write(os.path.join(etc, "sasl2", "qemu-spice.conf"), "mech_list: scram-sha-256\n")
        write(os.path.join(etc, "libvirt", "qemu", "web1.xml"), SOCKET_DOMAIN, 0o600)
        write(os.path.join(etc, "pam.d", "spice"), "@include common-auth\n@include common-account\n")
        write(os.path.join(etc, "pam.d", "vnc"), "@include common-auth\n@include common-account\n")
        write_cmdline(root, 4242, CLEAN_CMDLINE)
        write_cmdline(root, 100, ["/bin/sh", "-c", "-spice", "port=5900"])  # not QEMU: ignored
        os.makedirs(os.path.join(root, "proc", "sys"))

    @classmethod
    def install_cert(cls, root, name):
        cert, key = cls.certs[name]
        shutil.copy(cert, os.path.join(root, "etc", "vmgate", "server-cert.pem"))
        shutil.copy(key, os.path.join(root, "etc", "vmgate", "server-key.pem"))
        os.chmod(os.path.join(root, "etc", "vmgate", "server-cert.pem"), 0o644)
        os.chmod(os.path.join(root, "etc", "vmgate", "server-key.pem"), 0o600)

    def tree(self):
        """A copy of the clean tree for one test to plant a problem in."""
        type(self).trees += 1
        root = os.path.join(self.tmp, "tree%d" % self.trees)
        shutil.copytree(self.clean, root, symlinks=True)
        return root

    def doctor(self, root, *args, user=None):
        argv = [self.vmgate, "doctor", "--root", root, "--user", user or self.user] + list(args)
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return res.returncode, res.stdout.decode(), res.stderr.decode()

    def findings(self, root, expect_status):
        status, out, err = self.doctor(root, "--json")
        report = json.loads(out)
        self.assertEqual(status, expect_status, "%s\n%s" % (out, err))
        self.assertEqual(report["errors"], sum(1 for f in report["findings"] if f["severity"] == "error"))
        self.assertEqual(report["warnings"], sum(1 for f in report["findings"] if f["severity"] == "warning"))
        return report["findings"]

    def assertFinds(self, root, check_id, severity, expect_status, alone=True):
        found = self.findings(root, expect_status)
        ids = [f["id"] for f in found]
        self.assertIn(check_id, ids, found)
        mine = [f for f in found if f["id"] == check_id]
        for f in mine:
            self.assertEqual(f["severity"], severity, f)
            self.assertTrue(f["fix"] and f["problem"] and f["subject"], f)
        if alone:
            self.assertEqual(set(ids), {check_id}, found)
        return mine



class Doctor(DoctorFixture):
    # ---- the clean host ---------------------------------------------------------------------

    def test_clean_tree_has_no_findings(self):
        status, out, err = self.doctor(self.clean)
        self.assertEqual(status, 0, out + err)
        self.assertIn("no problems found", out)
        self.assertIn("1 QEMU process(es)", out)  # the shell in proc/100 is not counted
        self.assertEqual(self.findings(self.clean, 0), [])

    # ---- TLS ----------------------------------------------------------------------------------

    def test_world_readable_key(self):
        root = self.tree()
        key = os.path.join(root, "etc", "vmgate", "server-key.pem")
        os.chmod(key, 0o644)
        [f] = self.assertFinds(root, "tls-key-permissions", "error", 2)
        self.assertEqual(f["subject"], key)
        self.assertIn("chmod 0600 %s" % key, f["fix"])

    @unittest.skipUnless(os.getuid() == 0, "chown to another user needs root")
    def test_key_owned_by_another_user(self):
        root = self.tree()
        key = os.path.join(root, "etc", "vmgate", "server-key.pem")
        nobody = pwd.getpwnam("nobody")
        os.chown(key, nobody.pw_uid, nobody.pw_gid)
        self.assertFinds(root, "tls-key-owner", "error", 2)

    def test_expired_certificate(self):
        root = self.tree()
        self.install_cert(root, "expired")
        [f] = self.assertFinds(root, "tls-cert-expiry", "error", 2)
        self.assertIn("expired", f["problem"])

    def test_certificate_expiring_soon(self):
        root = self.tree()
        self.install_cert(root, "expiring")
        [f] = self.assertFinds(root, "tls-cert-expiry", "warning", 1)
        self.assertIn("day(s)", f["problem"])

    def test_certificate_without_the_sni_wildcard(self):
        root = self.tree()
        self.install_cert(root, "no-wildcard")
        [f] = self.assertFinds(root, "tls-cert-name", "error", 2)
        self.assertIn("*.vms.vmgate.test", f["problem"])

    # ---- SASL and PAM -------------------------------------------------------------------------

    def test_group_readable_sasldb(self):
        root = self.tree()
        sasldb = os.path.join(root, "etc", "vmgate", "sasldb2")
        os.chmod(sasldb, 0o604)
        self.assertFinds(root, "sasldb-permissions", "error", 2)

    def test_saslauthd_without_pam_service(self):
        root = self.tree()
        path = os.path.join(root, "etc", "vmgate", "vmgate.toml")
        with open(path) as f:
            text = f.read()
        write(path, text.replace('sasldb = "/etc/vmgate/sasldb2"',
                                 'pwcheck_method = "saslauthd"\nmech_list = ["PLAIN"]'))
        self.assertEqual(self.findings(root, 0), [])  # both PAM services are there
        os.unlink(os.path.join(root, "etc", "pam.d", "vnc"))
        [f] = self.assertFinds(root, "pam-service-missing", "error", 2)
        self.assertEqual(f["subject"], os.path.join(root, "etc", "pam.d", "vnc"))

    # ---- qemu.conf and QEMU's SASL ------------------------------------------------------------

    def test_qemu_conf_listening_everywhere(self):
        root = self.tree()
        with open(os.path.join(root, "etc", "libvirt", "qemu.conf"), "a") as f:
            f.write('vnc_listen = "0.0.0.0"\n')
        [f] = self.assertFinds(root, "qemu-conf-listen", "error", 2)
        self.assertIn('vnc_listen = "0.0.0.0"', f["problem"])

    def test_qemu_sasl_with_digest_md5(self):
        root = self.tree()
        write(os.path.join(root, "etc", "sasl2", "qemu-spice.conf"), "mech_list: digest-md5\n")
        self.assertFinds(root, "qemu-sasl-digest-md5", "error", 2)

    # ---- running QEMU -------------------------------------------------------------------------

    def test_qemu_spice_on_every_address(self):
        root = self.tree()
        write_cmdline(root, 5000, [QEMU, "-name", "guest=db1", "-spice", "port=5930,disable-ticketing=off"])
        [f] = self.assertFinds(root, "qemu-display-exposed", "error", 2)
        self.assertEqual(f["subject"], "process 5000 (guest db1)")

    def test_qemu_vnc_on_every_address(self):
        root = self.tree()
        write_cmdline(root, 5001, [QEMU, "-vnc", "0.0.0.0:3,password=on"])
        self.assertFinds(root, "qemu-display-exposed", "error", 2)

    def test_qemu_plain_port_beside_tls_port(self):
        root = self.tree()
        write_cmdline(root, 5002, [QEMU, "-spice", "port=5930,tls-port=5931,addr=127.0.0.1"])
        self.assertFinds(root, "qemu-spice-plain-port", "warning", 1)

    def test_qemu_spice_without_ticketing_on_tcp(self):
        root = self.tree()
        write_cmdline(root, 5003, [QEMU, "-spice", "tls-port=5931,addr=127.0.0.1,disable-ticketing=on"])
        self.assertFinds(root, "qemu-spice-no-password", "error", 2)

    # ---- domain XML ---------------------------------------------------------------------------

    def test_domain_listening_on_every_address(self):
        root = self.tree()
        write(os.path.join(root, "etc", "libvirt", "qemu", "db1.xml"),
              SOCKET_DOMAIN.replace("web1", "db1").replace(
                  "<graphics type='vnc'><listen type='socket'/>",
                  "<graphics type='vnc' port='5901'><listen type='address' address='0.0.0.0'/>"))
        [f] = self.assertFinds(root, "domain-display-exposed", "error", 2)
        self.assertIn("domain db1", f["subject"])

    def test_domain_spice_default_mode_any(self):
        root = self.tree()
        write(os.path.join(root, "etc", "libvirt", "qemu", "web1.xml"),
              SOCKET_DOMAIN.replace("<graphics type='spice'><listen type='socket'/>",
                                    "<graphics type='spice' autoport='yes' defaultMode='any'>"
                                    "<listen type='address' address='127.0.0.1'/>"))
        self.assertFinds(root, "domain-spice-default-mode", "warning", 1, alone=False)
        ids = sorted(f["id"] for f in self.findings(root, 1))
        self.assertEqual(ids, ["domain-display-local-tcp", "domain-spice-default-mode"])

    # ---- the command itself -------------------------------------------------------------------

    def test_text_output_names_id_subject_and_fix(self):
        root = self.tree()
        os.chmod(os.path.join(root, "etc", "vmgate", "server-key.pem"), 0o640)
        os.chmod(os.path.join(root, "etc", "vmgate", "sasldb2"), 0o606)
        status, out, err = self.doctor(root)
        self.assertEqual(status, 2, out + err)
        self.assertIn("error sasldb-permissions %s: " % os.path.join(root, "etc", "vmgate", "sasldb2"), out)
        self.assertIn("fix: chown %s: " % self.user, out)
        self.assertRegex(out, r"\d error\(s\), 0 warning\(s\)")

    def test_invalid_config_is_exit_2_with_its_errors(self):
        root = self.tree()
        write(os.path.join(root, "etc", "vmgate", "vmgate.toml"), "[[listener]]\nprotocol = \"rdp\"\n")
        status, out, err = self.doctor(root)
        self.assertEqual(status, 2, out + err)
        self.assertIn("vmgate.toml:2:", err)
        self.assertIn("error(s) in", err)

    def test_unknown_user(self):
        status, out, err = self.doctor(self.clean, user="no-such-user-vmgate")
        self.assertEqual(status, 2, out + err)
        self.assertIn('no user "no-such-user-vmgate"', err)


class DoctorLibvirt(DoctorFixture):
    """--libvirt: the domains of a private libvirtd, read over a read-only connection. One is on
    sockets, one (defined, never started) has VNC on 0.0.0.0."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        lv.require()
        cls.libvirtd = cls.enterClassContext(lv.Libvirtd(cls.tmp))
        cls.log_sources.append(("libvirtd", cls.libvirtd.log_tail))
        cls.libvirtd.define(lv.domain_xml("quiet"))

    def test_domain_on_every_address_over_libvirt(self):
        status, out, err = self.doctor(self.clean, "--libvirt", self.libvirtd.uri)
        self.assertEqual(status, 0, out + err)
        self.assertIn("1 domain(s) on %s" % self.libvirtd.uri, out)
        self.libvirtd.define(lv.domain_xml("open", vnc_listen="0.0.0.0"))
        try:
            status, out, err = self.doctor(self.clean, "--libvirt", self.libvirtd.uri, "--json")
            report = json.loads(out)
            self.assertEqual(status, 2, out + err)
            [f] = report["findings"]
            self.assertEqual(f["id"], "domain-display-exposed")
            self.assertEqual(f["subject"], "domain open (%s)" % self.libvirtd.uri)
            self.assertIn("VNC listens on 0.0.0.0", f["problem"])
        finally:
            self.libvirtd.virsh("undefine", "open")

    def test_unreachable_libvirt(self):
        uri = "qemu+unix:///system?socket=%s" % os.path.join(self.tmp, "no-such.sock")
        status, out, err = self.doctor(self.clean, "--libvirt", uri, "--json")
        self.assertEqual(status, 2, out + err)
        [f] = json.loads(out)["findings"]
        self.assertEqual(f["id"], "libvirt-unreachable")
        self.assertIn("cannot connect", f["problem"])


if __name__ == "__main__":
    unittest.main()

"""`vmgate export iptables|ip6tables|nft|sudoers|sshd`: client-side lockdown from the policy.

No daemon and no QEMU: the real binary exports one policy, and each output goes to the real tool
that reads it: `iptables-restore --test` and `nft -c -f` in a network namespace of their own
(`unshare -n`), `visudo -c -f`, `sshd -t -f` on the export appended to this machine's full
sshd_config. Beyond syntax, the meaning is checked where the tool can say it:

- firewall: the rules are loaded into a fresh network namespace, the gateway ports listen on
  127.0.0.1 there, and processes with each user's and group's IDs connect: allowed ones get in,
  the others are reset (ECONNREFUSED), and ports that are not the gateway's stay untouched;
- sudoers: `sudo -l -U USER -g GROUP COMMAND ARGS` with the export as /etc/sudoers (private mount
  namespace) answers whether exactly that command line is allowed;
- sshd: `sshd -T -C user=...` prints the settings sshd would apply to that user's connection.

User and group names are ones every Debian system has (daemon, nobody, bin, sys; adm, users):
iptables and nft resolve them when they load. The per-VM groups of the sudoers export are added
to a test copy of /etc/group, mounted over the real one for the tool's process only.
Negative checks prove each tool really validates: a deliberately broken file is refused.
"""

import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

TOOLS = ["iptables-restore", "ip6tables-restore", "nft", "visudo", "sudo", "sshd", "ssh-keygen", "unshare", "ip"]
PROBE_TIMEOUT = 60
SYS_UID, ADM_GID, USERS_GID = 3, 4, 100
VM_GROUPS = {"vmgate-vm1": 64001, "vmgate-vm2": 64002}

# Run as root inside the test's network namespace: listens on the given ports of 127.0.0.1, then,
# for each case [uid, gid, groups, port], a child with those IDs connects and reports the outcome.
PROBE = r"""
import json, os, socket, sys
ports, cases = json.loads(sys.argv[1]), json.loads(sys.argv[2])
servers = []
for port in ports:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    servers.append(s)
results = []
for uid, gid, groups, port in cases:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            c = socket.socket()
            c.settimeout(5)
            c.connect(("127.0.0.1", port))
            c.close()
            outcome = "connected"
        except ConnectionRefusedError:
            outcome = "refused"
        except OSError as e:
            outcome = "error: %s" % e
        os.write(w, outcome.encode())
        os._exit(0)
    os.close(w)
    results.append(os.read(r, 200).decode())
    os.close(r)
    os.waitpid(pid, 0)
print(json.dumps(results))
"""


def uid_gid(name):
    import pwd
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


class Export(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise RuntimeError("not installed: %s (Debian packages iptables nftables sudo openssh-server "
                               "iproute2; `make deps`)" % " ".join(missing))
        h.require_private_mounts()  # root, unshare, mount: also what unshare -n needs
        cls.ports = {name: h.free_port() for name in ("plain", "vm1", "vm2", "sni", "other")}
        pki = h.Pki(os.path.join(cls.tmp, "pki"))  # never read: export needs only the policy
        listeners = [
            h.spice_listener(cls.ports["vm1"], "vm1"),
            h.spice_listener(cls.ports["plain"], "vm1", tls=False),
            h.vnc_listener(cls.ports["vm2"], "vm2"),
            h.spice_listener(cls.ports["sni"], sni_suffix=".vms.test"),
        ]
        upstream = "unix:" + os.path.join(cls.tmp, "never.sock")
        vms = [
            h.vm_entry("vm1", upstream, allow=[dict(users=["daemon"], hours="08:00-18:00"),
                                               dict(groups=["unix:adm"])]),
            h.vnc_vm_entry("vm2", upstream, allow=[dict(users=["nobody@EXAMPLE.TEST"]), dict(groups=["crew"])]),
            h.vm_entry("vm3", upstream),
        ]
        config = h.gateway_config(pki, listeners, vms)
        config["groups"] = {"crew": ["bin", "unix:users"]}
        cls.config = cls.write("vmgate.toml", h.to_toml(config))
        # The same policy behind IPv6 listeners, for ip6tables.
        for listener in listeners:
            listener["address"] = listener["address"].replace("127.0.0.1", "[::1]")
        cls.config6 = cls.write("vmgate6.toml", h.to_toml(config))
        with open("/etc/group") as f:
            groups = f.read()
        groups += "".join("%s:x:%d:\n" % item for item in VM_GROUPS.items())
        cls.group_file = cls.write("group", groups)

    @classmethod
    def write(cls, name, text, mode=0o600):
        path = os.path.join(cls.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def run_vmgate(self, *args):
        return subprocess.run([self.vmgate, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=30)

    def export(self, fmt, *options, config=None):
        r = self.run_vmgate("export", fmt, "-c", config or self.config, *options)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        return r.stdout

    def run_tool(self, argv, mounts=None):
        prefix = h.private_mounts(mounts) if mounts else []
        return subprocess.run(prefix + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=PROBE_TIMEOUT)

    def assertTool(self, result, ok, text):
        detail = "rc %d\nstdout:\n%s\nstderr:\n%s\nfile:\n%s" % (result.returncode, result.stdout, result.stderr, text)
        if ok:
            self.assertEqual(result.returncode, 0, detail)
        else:
            self.assertNotEqual(result.returncode, 0, detail)

    def probe(self, load_argv, rules_text, cases, mounts=None):
        """Load rules into a fresh network namespace, then try each (uid, gid, groups, port)."""
        rules = self.write("rules-%d" % abs(hash(rules_text)), rules_text)
        probe = self.write("probe.py", PROBE)
        ports = sorted(self.ports.values())
        script = 'ip link set lo up && %s "$1" && exec "$5" "$2" "$3" "$4"' % " ".join(load_argv)
        r = self.run_tool(["unshare", "-n", "sh", "-c", script, "sh", rules, probe, json.dumps(ports),
                           json.dumps([list(c) for c in cases]), sys.executable], mounts)
        self.assertTool(r, True, rules_text)
        return json.loads(r.stdout)

    def expect_connections(self, load_argv, rules_text, expected, mounts=None):
        cases = [case for case, _ in expected]
        got = self.probe(load_argv, rules_text, cases, mounts)
        self.assertEqual(list(zip(cases, got)), expected, rules_text)

    # ---- iptables ------------------------------------------------------------------------------

    def test_iptables_restore_accepts_the_rules(self):
        text = self.export("iptables")
        self.assertIn("--uid-owner daemon -j ACCEPT", text)
        self.assertIn("--gid-owner users --suppl-groups -j ACCEPT", text)
        path = self.write("rules.v4", text)
        self.assertTool(self.run_tool(["unshare", "-n", "iptables-restore", "--test", path]), True, text)
        broken = text.replace("--uid-owner daemon", "--uid-owner vmgate-no-such-user")
        r = self.run_tool(["unshare", "-n", "iptables-restore", "--test", self.write("broken.v4", broken)])
        self.assertTool(r, False, broken)
        self.assertIn("vmgate-no-such-user", r.stderr)

    def firewall_cases(self, nft):
        p = self.ports
        daemon, nobody, bin_ = uid_gid("daemon"), uid_gid("nobody"), uid_gid("bin")
        sys_ = (SYS_UID, SYS_UID)
        return [
            ((*daemon, [], p["vm1"]), "connected"),
            ((*daemon, [], p["plain"]), "connected"),
            ((*daemon, [], p["sni"]), "connected"),      # shared: reaches vm1 too
            ((*daemon, [], p["vm2"]), "refused"),
            ((*nobody, [], p["vm2"]), "connected"),      # nobody@EXAMPLE.TEST: the realm is dropped
            ((*nobody, [], p["vm1"]), "refused"),
            ((*nobody, [], p["sni"]), "refused"),        # vm2 has no SPICE console behind the SNI port
            ((*bin_, [], p["vm2"]), "connected"),        # [groups] crew
            ((*bin_, [], p["vm1"]), "refused"),
            ((*sys_, [], p["vm1"]), "refused"),
            ((*sys_, [USERS_GID], p["vm2"]), "refused" if nft else "connected"),  # unix:users, supplementary
            ((*sys_, [ADM_GID], p["vm1"]), "refused" if nft else "connected"),    # unix:adm, supplementary
            ((SYS_UID, ADM_GID, [], p["vm1"]), "connected"),                      # unix:adm, primary
            ((*sys_, [], p["other"]), "connected"),      # not a gateway port: untouched
        ]

    def test_iptables_rules_admit_exactly_the_policy(self):
        self.expect_connections(["iptables-restore", "--noflush"], self.export("iptables"), self.firewall_cases(False))

    def test_iptables_by_vm_group_admits_only_the_sudo_groups(self):
        text = self.export("iptables", "--by-vm-group")
        daemon_uid, daemon_gid = uid_gid("daemon")
        p = self.ports
        expected = [
            ((daemon_uid, VM_GROUPS["vmgate-vm1"], [], p["vm1"]), "connected"),
            ((daemon_uid, VM_GROUPS["vmgate-vm1"], [], p["sni"]), "connected"),
            ((daemon_uid, VM_GROUPS["vmgate-vm1"], [], p["vm2"]), "refused"),
            ((daemon_uid, VM_GROUPS["vmgate-vm2"], [], p["vm2"]), "connected"),
            ((daemon_uid, daemon_gid, [], p["vm1"]), "refused"),  # the user's own processes
            ((daemon_uid, daemon_gid, [VM_GROUPS["vmgate-vm1"]], p["vm1"]), "refused"),  # supplementary only
        ]
        self.expect_connections(["iptables-restore", "--noflush"], text, expected, {self.group_file: "/etc/group"})

    def test_ip6tables_for_ipv6_listeners(self):
        text = self.export("ip6tables", config=self.config6)
        self.assertIn("-d ::1 -p tcp --dport %d -m owner --uid-owner daemon -j ACCEPT" % self.ports["vm1"], text)
        path = self.write("rules.v6", text)
        self.assertTool(self.run_tool(["unshare", "-n", "ip6tables-restore", "--test", path]), True, text)
        r = self.run_vmgate("export", "iptables", "-c", self.config6)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("has no IPv4 gateway port", r.stderr)
        self.assertIn("export ip6tables instead", r.stderr)

    # ---- nft -----------------------------------------------------------------------------------

    def test_nft_accepts_the_rules(self):
        text = self.export("nft")
        self.assertIn('meta skuid "daemon" accept', text)
        path = self.write("rules.nft", text)
        self.assertTool(self.run_tool(["unshare", "-n", "nft", "-c", "-f", path]), True, text)
        broken = text.replace('meta skuid "daemon"', 'meta skuid "vmgate-no-such-user"')
        r = self.run_tool(["unshare", "-n", "nft", "-c", "-f", self.write("broken.nft", broken)])
        self.assertTool(r, False, broken)
        self.assertIn("User does not exist", r.stderr)

    def test_nft_rules_admit_exactly_the_policy(self):
        self.expect_connections(["nft", "-f"], self.export("nft"), self.firewall_cases(True))

    def test_nft_file_loads_twice(self):
        """It replaces its own table: loading it again leaves one copy of each rule."""
        text = self.export("nft")
        path = self.write("twice.nft", text)
        r = self.run_tool(["unshare", "-n", "sh", "-c", 'nft -f "$1" && nft -f "$1" && nft list table inet vmgate_client',
                           "sh", path])
        self.assertTool(r, True, text)
        self.assertEqual(r.stdout.count("reject with tcp reset"), 1, r.stdout)
        self.assertEqual(r.stdout.count("skuid"), text.count("skuid"), r.stdout)

    # ---- sudoers -------------------------------------------------------------------------------

    def sudo_allows(self, sudoers, user, group, *command):
        mounts = {sudoers: "/etc/sudoers", self.group_file: "/etc/group"}
        r = self.run_tool(["sudo", "-l", "-U", user, "-g", group, *command], mounts)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        return r.returncode == 0

    def test_visudo_accepts_and_sudo_allows_exactly_the_viewer_command(self):
        odd = "--odd=a,b:c\\d#e*?[f]^"
        text = self.export("sudoers", "--viewer", "/usr/bin/true", "--viewer-arg=" + odd)
        sudoers = self.write("sudoers", text, 0o440)
        self.assertTool(self.run_tool(["visudo", "-c", "-f", sudoers]), True, text)
        broken = self.write("broken-sudoers", text + "daemon ALL = (:vmgate-vm1 NOPASSWD: VMGATE_VM1\n", 0o440)
        self.assertTool(self.run_tool(["visudo", "-c", "-f", broken]), False, text)

        uri = "spice://127.0.0.1?tls-port=%d" % self.ports["vm1"]
        self.assertTrue(self.sudo_allows(sudoers, "daemon", "vmgate-vm1", "/usr/bin/true", odd, uri))
        self.assertTrue(self.sudo_allows(sudoers, "daemon", "vmgate-vm1", "/usr/bin/true", odd,
                                         "spice://vm1.vms.test?tls-port=%d" % self.ports["sni"]))
        self.assertTrue(self.sudo_allows(sudoers, "nobody", "vmgate-vm2", "/usr/bin/true", odd,
                                         "vnc://127.0.0.1:%d" % self.ports["vm2"]))
        # Anything else is refused: another user, another VM's group, one character changed
        # (escaped wildcards match only themselves), an argument missing or added.
        self.assertFalse(self.sudo_allows(sudoers, "nobody", "vmgate-vm1", "/usr/bin/true", odd, uri))
        self.assertFalse(self.sudo_allows(sudoers, "daemon", "vmgate-vm2", "/usr/bin/true", odd, uri))
        self.assertFalse(self.sudo_allows(sudoers, "daemon", "vmgate-vm1", "/usr/bin/true", odd.replace("?", "x"),
                                          uri))
        self.assertFalse(self.sudo_allows(sudoers, "daemon", "vmgate-vm1", "/usr/bin/true",
                                          odd.replace("*", "*more"), uri))
        self.assertFalse(self.sudo_allows(sudoers, "daemon", "vmgate-vm1", "/usr/bin/true", uri))
        self.assertFalse(self.sudo_allows(sudoers, "daemon", "vmgate-vm1", "/usr/bin/true", odd, uri, "--extra"))
        self.assertFalse(self.sudo_allows(sudoers, "daemon", "vmgate-vm1", "/usr/bin/true", odd,
                                          uri.replace("?", "&")))

    # ---- sshd ----------------------------------------------------------------------------------

    def sshd(self, config_text, *args):
        key = os.path.join(self.tmp, "ssh_host_ed25519_key")
        if not os.path.exists(key):
            h._run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], what="ssh-keygen")
        config = self.write("sshd_config", config_text)
        # sshd -t wants its privilege separation directory: a private /run holds one.
        script = 'mount -t tmpfs tmpfs /run && mkdir -m 0755 /run/sshd && exec "$@"'
        return self.run_tool(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                              shutil.which("sshd"), "-f", config, "-h", key, *args])

    def test_sshd_accepts_the_blocks_after_a_full_config(self):
        with open("/etc/ssh/sshd_config") as f:
            full = f.read()
        text = self.export("sshd")
        self.assertTool(self.sshd(full + "\n" + text, "-t"), True, text)
        broken = text.replace("PermitOpen 127.0.0.1:", "PermitOpen 127.0.0.1:x", 1)
        self.assertTool(self.sshd(full + "\n" + broken, "-t"), False, broken)

        def effective(user):
            r = self.sshd(full + "\n" + text, "-T", "-C", "user=%s,host=client.test,addr=192.0.2.7" % user)
            self.assertTool(r, True, text)
            return r.stdout.splitlines()

        p = self.ports
        daemon = effective("daemon")
        self.assertIn("permitopen 127.0.0.1:%d 127.0.0.1:%d 127.0.0.1:%d" % tuple(sorted(
            (p["vm1"], p["plain"], p["sni"]))), daemon)
        self.assertIn("allowtcpforwarding local", daemon)
        self.assertIn("permittty no", daemon)
        self.assertIn("forcecommand /usr/sbin/nologin", daemon)
        self.assertIn("permitopen 127.0.0.1:%d" % p["vm2"], effective("nobody"))
        self.assertIn("permitopen any", effective("sys"))  # no block: the rest of sshd_config decides

    # ---- the command ---------------------------------------------------------------------------

    def test_errors_say_what_to_do(self):
        with open(self.config) as f:
            every = self.write("every.toml", f.read().replace("127.0.0.1:%d" % self.ports["vm2"],
                                                              "0.0.0.0:%d" % self.ports["vm2"]))
        r = self.run_vmgate("export", "nft", "-c", every)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("listener[2] (0.0.0.0:%d)" % self.ports["vm2"], r.stderr)
        self.assertIn("give --host", r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("-d 192.0.2.1 ", self.export("iptables", "--host", "192.0.2.1", config=every))
        r = self.run_vmgate("export", "iptables", "-c", self.config, "--host", "gw.example.com")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--host: iptables and nft rules match IP addresses", r.stderr)
        r = self.run_vmgate("export", "sshd", "-c", self.config, "--viewer", "/bin/x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--viewer and --viewer-arg apply to sudoers", r.stderr)
        r = self.run_vmgate("export", "pf", "-c", self.config)
        self.assertEqual(r.returncode, 2)
        r = self.run_vmgate("export", "--help")
        self.assertEqual(r.returncode, 0)
        for phrase in ("iptables-restore --noflush", "nft -f FILE", "visudo -c -f FILE", "sshd -t", "--by-vm-group"):
            self.assertIn(phrase, r.stdout)

    def test_output_is_deterministic(self):
        for fmt in ("iptables", "nft", "sudoers", "sshd"):
            self.assertEqual(self.export(fmt), self.export(fmt), fmt)


if __name__ == "__main__":
    unittest.main()

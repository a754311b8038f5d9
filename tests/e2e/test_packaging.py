"""packaging/: the systemd unit, sysusers.d and tmpfiles.d entries, the man page, the example.

Real tools, no daemon started: `vmgate systemd-unit` checked by `systemd-analyze verify` (and
compared with packaging/vmgate.service, which must be its output for the default settings),
`systemd-sysusers` and `systemd-tmpfiles` applied to a temporary root, the man page from
`vmgate man` rendered by groff with every warning on and compared with `vmgate --help`,
`cmake --install` into a temporary prefix, and examples/office.toml accepted by
`vmgate check-config` and asked by `vmgate policy explain` who may use which VM when.

systemd is not PID 1 here: `systemd-analyze verify` reads unit files without a manager, so the
unit is verified, but the sandbox is not exercised by starting the service.
"""

import os
import re
import stat
import subprocess
import sys
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

PACKAGING = os.path.join(h.SOURCE_DIR, "packaging")
OFFICE = os.path.join(h.SOURCE_DIR, "examples", "office.toml")
DEFAULT_CONFIG = "/etc/vmgate/vmgate.toml"


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, **kw)


def read(path):
    with open(path) as f:
        return f.read()


def unit_lines(text, key):
    """Values of KEY= in a unit file's text."""
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def without_exec_start(text):
    return [line for line in text.splitlines() if not line.startswith("ExecStart=")]


def listener_config(tmp, name, port, gateway=None):
    """A small valid configuration with one TLS SPICE listener on 127.0.0.1:`port` (the unit
    does not depend on the certificate, so none is made)."""
    pki = types.SimpleNamespace(cert=os.path.join(tmp, "cert.pem"), key=os.path.join(tmp, "key.pem"))
    vm = h.vm_entry("vm1", "unix:" + os.path.join(tmp, "vm1.sock"), allow=[dict(users=["anne"])])
    config = h.gateway_config(pki, [h.spice_listener(port, "vm1")], [vm], gateway=gateway or {})
    path = os.path.join(tmp, name + ".toml")
    with open(path, "w") as f:
        f.write(h.to_toml(config))
    return path


class SystemdUnit(h.E2ETestCase):

    def systemd_unit(self, *args):
        return run([self.vmgate, "systemd-unit"] + list(args))

    def generated(self, *args):
        r = self.systemd_unit(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        return r.stdout

    def verify(self, unit_text):
        """systemd-analyze verify on the text as vmgate.service; its complaints about it."""
        unit_dir = os.path.join(self.tmp, "units-%d" % len(os.listdir(self.tmp)))
        os.makedirs(unit_dir)
        path = os.path.join(unit_dir, "vmgate.service")
        with open(path, "w") as f:
            f.write(unit_text)
        # --man=no: vmgate(1), named by Documentation=, is not installed here.
        r = run(["systemd-analyze", "verify", "--man=no", path])
        # Complaints about other units of this host are not ours.
        ours = [line for line in (r.stdout + r.stderr).splitlines() if "vmgate" in line]
        return r.returncode, ours

    def test_committed_unit_is_the_generated_default(self):
        committed = read(os.path.join(PACKAGING, "vmgate.service"))
        self.assertEqual(self.generated(), committed,
                         "packaging/vmgate.service is stale: regenerate it with `vmgate systemd-unit > "
                         "packaging/vmgate.service`")
        self.assertEqual(unit_lines(committed, "ExecStart"), ["/usr/bin/vmgate serve --config " + DEFAULT_CONFIG])

    def test_unit_passes_systemd_analyze_verify(self):
        # verify wants ExecStart's binary to exist: this build's, instead of /usr/bin/vmgate.
        binary = os.path.abspath(self.vmgate)
        unit = self.generated("--binary", binary)
        self.assertEqual(without_exec_start(unit), without_exec_start(read(os.path.join(PACKAGING, "vmgate.service"))))
        self.assertEqual(self.verify(unit), (0, []))

    def test_verify_notices_a_broken_unit(self):
        # The check above can fail: a misspelt sandbox key and a relative binary are reported.
        unit = self.generated("--binary", os.path.abspath(self.vmgate))
        rc, ours = self.verify(unit.replace("ProtectSystem=strict", "ProtectSystm=strict"))
        self.assertTrue(any("ProtectSystm" in line for line in ours), ours)
        rc, ours = self.verify(unit.replace("ExecStart=/", "ExecStart=./"))
        self.assertTrue(rc != 0 or ours, "a relative ExecStart went unnoticed")

    def test_sandbox_exposure_is_low(self):
        # systemd's own rating of the sandbox (0 = nothing exposed, 10 = everything).
        unit = self.generated("--binary", os.path.abspath(self.vmgate))
        path = os.path.join(self.tmp, "security", "vmgate.service")
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
            f.write(unit)
        r = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", path])
        if "Unknown option" in r.stderr or "unrecognized option" in r.stderr:
            self.skipTest("systemd-analyze security --offline needs systemd 250 or later")
        match = re.search(r"Overall exposure level for vmgate\.service: ([0-9.]+)", r.stdout + r.stderr)
        self.assertIsNotNone(match, r.stdout + r.stderr)
        self.assertLessEqual(float(match.group(1)), 2.0, r.stdout)

    def test_low_port_gets_net_bind_service_and_high_port_not(self):
        low = listener_config(self.tmp, "low", 443)
        high = listener_config(self.tmp, "high", h.free_port())
        low_unit = self.generated("-c", low, "--binary", os.path.abspath(self.vmgate))
        self.assertEqual(unit_lines(low_unit, "CapabilityBoundingSet"), ["CAP_NET_BIND_SERVICE"])
        self.assertEqual(unit_lines(low_unit, "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"])
        self.assertIn("127.0.0.1:443", low_unit)
        self.assertEqual(self.verify(low_unit), (0, []))
        high_unit = self.generated("-c", high)
        self.assertEqual(unit_lines(high_unit, "CapabilityBoundingSet"), [""])
        self.assertEqual(unit_lines(high_unit, "AmbientCapabilities"), [""])
        self.assertNotIn("=CAP_", high_unit)

    def test_config_is_the_one_execstart_runs(self):
        path = listener_config(self.tmp, "named", h.free_port())
        unit = self.generated("-c", path)
        self.assertEqual(unit_lines(unit, "ExecStart"), ["/usr/bin/vmgate serve --config " + os.path.abspath(path)])

    def test_files_elsewhere_become_read_write_paths(self):
        logs = os.path.join(self.tmp, "audit-logs")
        os.makedirs(logs)
        path = listener_config(self.tmp, "elsewhere", h.free_port(),
                               gateway={"audit_log": os.path.join(logs, "audit.jsonl")})
        unit = self.generated("-c", path, "--binary", os.path.abspath(self.vmgate))
        # the harness also puts the admin socket into the temporary directory
        self.assertIn("-" + logs, unit_lines(unit, "ReadWritePaths"))
        self.assertEqual(self.verify(unit), (0, []))

    def test_office_example_needs_nothing_beyond_the_default_unit(self):
        unit = self.generated("-c", OFFICE)
        self.assertEqual(without_exec_start(unit), without_exec_start(read(os.path.join(PACKAGING, "vmgate.service"))))

    def test_invalid_config_is_refused_with_its_errors(self):
        broken = os.path.join(self.tmp, "broken.toml")
        with open(broken, "w") as f:
            f.write('[[listener]]\nprotocol = "spice"\naddress = "0.0.0.0:99999"\n')
        r = self.systemd_unit("-c", broken)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn(broken + ":3:", r.stderr)
        self.assertIn("error(s) in " + broken, r.stderr)
        r = self.systemd_unit("-c", os.path.join(self.tmp, "missing.toml"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.toml", r.stderr)

    def test_path_systemd_would_split_is_refused(self):
        r = self.systemd_unit("--binary", "/opt/my tools/vmgate")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn('--binary: "/opt/my tools/vmgate"', r.stderr)


class SysusersAndTmpfiles(h.E2ETestCase):
    needs_vmgate = False

    def test_sysusers_then_tmpfiles_in_a_fresh_root(self):
        root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(root, "etc"))
        r = run(["systemd-sysusers", "--root=" + root, os.path.join(PACKAGING, "vmgate.sysusers")])
        self.assertEqual(r.returncode, 0, r.stderr)
        users = {line.split(":")[0]: line.split(":") for line in read(os.path.join(root, "etc/passwd")).splitlines()}
        groups = {line.split(":")[0]: line.split(":") for line in read(os.path.join(root, "etc/group")).splitlines()}
        self.assertIn("vmgate", users)
        self.assertIn("vmgate", groups)
        _, _, uid, gid, _, home, shell = users["vmgate"]
        uid, gid = int(uid), int(gid)
        self.assertLess(uid, 1000, "not a system user")
        self.assertGreater(uid, 0)
        self.assertEqual(gid, int(groups["vmgate"][2]))
        self.assertEqual(home, "/var/lib/vmgate")
        self.assertEqual(shell, "/usr/sbin/nologin")

        if os.geteuid() != 0:
            self.skipTest("systemd-tmpfiles needs root to give the directories their owners")
        r = run(["systemd-tmpfiles", "--root=" + root, "--create", os.path.join(PACKAGING, "vmgate.tmpfiles")])
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = {"etc/vmgate": (0o750, 0, gid), "var/lib/vmgate": (0o750, uid, gid),
                    "var/log/vmgate": (0o750, uid, gid), "run/vmgate": (0o750, uid, gid)}
        for path, (mode, owner, group) in expected.items():
            st = os.stat(os.path.join(root, path))
            self.assertTrue(stat.S_ISDIR(st.st_mode), path)
            self.assertEqual((oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid), (oct(mode), owner, group), path)

    def test_unit_and_tmpfiles_agree_on_the_directories(self):
        unit = read(os.path.join(PACKAGING, "vmgate.service"))
        tmpfiles = {fields[1]: fields for fields in (line.split() for line in read(os.path.join(PACKAGING, "vmgate.tmpfiles")).splitlines())
                    if fields and not fields[0].startswith("#")}
        for kind, base in (("RuntimeDirectory", "/run"), ("StateDirectory", "/var/lib"), ("LogsDirectory", "/var/log")):
            (name,) = unit_lines(unit, kind)
            (mode,) = unit_lines(unit, kind + "Mode")
            entry = tmpfiles.get(base + "/" + name)
            self.assertIsNotNone(entry, kind)
            self.assertEqual(entry[2:5], [mode, "vmgate", "vmgate"], kind)


class ManPage(h.E2ETestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = run([cls.vmgate, "man"])
        if r.returncode != 0:
            raise RuntimeError("vmgate man failed: " + r.stderr)
        cls.page = r.stdout
        cls.page_path = os.path.join(cls.tmp, "vmgate.1")
        with open(cls.page_path, "w") as f:
            f.write(cls.page)
        text = run(["groff", "-man", "-Tutf8", "-P", "-cbou", cls.page_path])
        cls.text = text.stdout

    def help_of(self, *command):
        r = run([self.vmgate] + list(command) + ["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    @staticmethod
    def subcommands(help_text):
        """Names listed under "Subcommands:" in CLI11's --help."""
        names, inside = [], False
        for line in help_text.splitlines():
            if line.startswith("Subcommands:"):
                inside = True
            elif inside and re.match(r"  \S", line):  # wrapped descriptions are indented further
                names.append(line.split()[0])
            elif inside and line.strip() and not line.startswith(" "):
                inside = False
        return names

    @staticmethod
    def long_options(help_text):
        return set(re.findall(r"^\s+(?:-\w,)?(--[\w-]+)", help_text, re.M))

    def test_groff_renders_it_without_warnings(self):
        r = run(["groff", "-man", "-ww", "-z", self.page_path])
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_groff_warns_about_a_broken_page(self):
        # The check above can fail: an unknown request and a bad escape are reported.
        broken = os.path.join(self.tmp, "broken.1")
        with open(broken, "w") as f:
            f.write(self.page.replace(".SH FILES", ".SHH FILES").replace("\\-", "\\q", 1))
        r = run(["groff", "-man", "-ww", "-z", broken])
        self.assertNotEqual(r.stderr, "")

    def test_every_command_of_help_has_its_section(self):
        commands = self.subcommands(self.help_of())
        self.assertIn("serve", commands)
        self.assertIn("systemd-unit", commands)
        self.assertNotIn("man", commands)  # hidden
        checked = 0
        for command in commands:
            self.assertIn("\n.SS vmgate " + command.replace("-", "\\-") + "\n", self.page, command)
            for sub in self.subcommands(self.help_of(command)):
                self.assertIn("\n.SS vmgate %s %s\n" % (command.replace("-", "\\-"), sub.replace("-", "\\-")),
                              self.page, command + " " + sub)
                checked += 1
        self.assertGreaterEqual(checked, 3)  # sessions kill, policy explain, users add ...

    def test_every_option_of_help_is_in_the_page(self):
        for command in self.subcommands(self.help_of()):
            for option in self.long_options(self.help_of(command)) - {"--help"}:
                self.assertIn(option.replace("-", "\\-"), self.page, "vmgate %s %s" % (command, option))

    def test_descriptions_are_the_help_text(self):
        # The same words, reflowed: compare word sequences of `vmgate reload --help` and the page.
        help_words = " ".join(self.help_of("reload").split("\n", 2)[1].split())
        first_sentence = help_words.split(". ")[0]
        page_words = " ".join(self.text.split())
        self.assertIn(first_sentence.replace("`", ""), page_words.replace("‐", "-").replace("−", "-"))

    def test_the_rendered_page_has_the_hand_written_sections(self):
        for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "FILES", "SIGNALS",
                        "EXIT STATUS", "SEE ALSO"):
            self.assertRegex(self.text, r"(?m)^%s$" % heading)

    def test_built_page_is_the_current_one(self):
        built = os.path.join(os.path.dirname(os.path.abspath(self.vmgate)), "vmgate.1")
        self.assertTrue(os.path.exists(built), "%s missing: build the target vmgate_man (part of all)" % built)
        self.assertEqual(read(built), self.page)


class Install(h.E2ETestCase):
    """`cmake --install` of this build into a temporary prefix."""

    def test_install_lays_out_the_system(self):
        build = os.path.dirname(os.path.abspath(self.vmgate))
        if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
            self.skipTest("VMGATE_BIN is not in a CMake build directory")
        prefix = os.path.join(self.tmp, "usr")
        r = run(["cmake", "--install", build, "--prefix", prefix])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for path in ("bin/vmgate", "share/man/man1/vmgate.1", "lib/systemd/system/vmgate.service",
                     "lib/sysusers.d/vmgate.conf", "lib/tmpfiles.d/vmgate.conf",
                     "share/doc/vmgate/examples/office.toml", "share/doc/vmgate/README.md",
                     "share/doc/vmgate/configuration.md"):
            self.assertTrue(os.path.isfile(os.path.join(prefix, path)), path)
        unit = read(os.path.join(prefix, "lib/systemd/system/vmgate.service"))
        self.assertEqual(unit_lines(unit, "ExecStart"),
                         ["%s/bin/vmgate serve --config %s" % (prefix, DEFAULT_CONFIG)])
        self.assertEqual(without_exec_start(unit), without_exec_start(read(os.path.join(PACKAGING, "vmgate.service"))))
        self.assertEqual(read(os.path.join(prefix, "lib/sysusers.d/vmgate.conf")),
                         read(os.path.join(PACKAGING, "vmgate.sysusers")))


# 2026-11-23 is a Monday.
DAYS = {"mon": "2026-11-23", "tue": "2026-11-24", "wed": "2026-11-25", "thu": "2026-11-26",
        "fri": "2026-11-27", "sat": "2026-11-28", "sun": "2026-11-29"}
HOURS = ["09:00", "17:59", "18:00", "22:59", "23:00"]


def office_allows(user, vm, day, hhmm):
    """The office as its people describe it (README, design.md): Charlie (and his boss in the
    evening) on vm1, Maggie on vm2 on Mon/Tue, Anne on vm2 on Wed/Thu, Ralph alone on vm3."""
    evening = "18:00" <= hhmm < "23:00"
    return {("charlie", "vm1"): True,
            ("boss", "vm1"): evening,
            ("maggie", "vm2"): day in ("mon", "tue"),
            ("anne", "vm2"): day in ("wed", "thu"),
            ("ralph", "vm3"): True}.get((user, vm), False)


class OfficeExample(h.E2ETestCase):
    """examples/office.toml, the example installed with the package, encodes the office."""

    def vmgate_run(self, *args):
        return run([self.vmgate] + list(args), env=dict(os.environ, TZ="Europe/Berlin"))

    def test_check_config_accepts_it(self):
        r = self.vmgate_run("check-config", OFFICE)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "%s: ok (7 listener(s), 3 VM(s))\n" % OFFICE)

    def test_who_may_use_which_vm_when(self):
        checked = 0
        for user in ("charlie", "boss", "maggie", "anne", "ralph", "mallory"):
            for vm in ("vm1", "vm2", "vm3"):
                for day, date in DAYS.items():
                    for hhmm in HOURS:
                        r = self.vmgate_run("policy", "explain", user, vm, "-c", OFFICE, "--at", date + " " + hhmm)
                        self.assertIn(r.returncode, (0, 1), r.stderr)
                        self.assertEqual(r.returncode == 0, office_allows(user, vm, day, hhmm),
                                         "%s on %s, %s %s: %s" % (user, vm, day, hhmm, r.stdout))
                        checked += 1
        self.assertEqual(checked, 6 * 3 * 7 * len(HOURS))

    def test_anne_brings_no_usb_sticks(self):
        r = self.vmgate_run("policy", "explain", "anne", "vm2", "-c", OFFICE, "--at", DAYS["wed"] + " 10:00",
                            "--channel", "usbredir")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("usbredir", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)

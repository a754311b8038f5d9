"""`vmgate users` and `vmgate vv` end to end.

users: the sasldb of [sasl], shared both ways with the real saslpasswd2 and sasldblistusers2;
passwords on standard input (a pipe, or a pseudo-terminal for the prompts without echo), never
in argv. A user `vmgate users add` made logs in through the gateway with the real spice-gtk.

vv: the remote-viewer connection file `vmgate vv` writes, opened by the spice-gtk client the way
remote-viewer opens it (spice_client.py --vv: GKeyFile, the same SpiceSession properties). The
gateway's certificate names gw.vmgate.test only while the file says host=127.0.0.1, so spice-gtk's
host name check fails and only the file's host-subject can let the TLS handshake through.
"""

import os
import select
import shutil
import socket
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmgate_e2e import harness as h  # noqa: E402

# Everyone here is allowed on both VMs.
PASSWORDS = {"anne": "anne-Pw-1", "ben": "ben-Pw-2", "carl": "carl-Pw-3", "dora": "dora-Pw-4", "gina": "gina-Pw-5"}
CERT_NAME = "gw.vmgate.test"
HOST_SUBJECT = "O=vmgate e2e,CN=%s" % CERT_NAME
PROMPT_TIMEOUT = 10.0


def read_until(fd, wanted, timeout=PROMPT_TIMEOUT):
    """Bytes from a pty master until `wanted` has appeared (AssertionError with what came)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError("no %r on the terminal; it shows %r" % (wanted, seen))
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            chunk = b""
        if not chunk:
            raise AssertionError("the terminal closed before %r; it showed %r" % (wanted, seen))
        seen += chunk
    return seen


def drain(fd):
    """What is left to read on a pty master whose other side is closed."""
    seen = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen


def vv_fields(path):
    """key -> raw (still escaped) value of a .vv file's [virt-viewer] group."""
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "[virt-viewer]", lines
    return dict(line.split("=", 1) for line in lines[1:] if line)


class OperatorTools(h.E2ETestCase):
    """One QEMU (vm1) behind one gateway: vm1 has a SASL listener and a ticket listener; vm2 (no
    QEMU, never connected to) has a SASL listener only. The sasldb starts empty: anne is added
    with `vmgate users add` while the gateway runs."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = h.make_pki(os.path.join(cls.tmp, "pki"), cn=CERT_NAME, san="DNS:%s" % CERT_NAME)
        cls.sasldb = os.path.join(cls.tmp, "sasldb2")
        cls.realm = socket.gethostname()  # the realm saslpasswd2 and Cyrus use without -u
        cls.vm1 = cls.start_qemu("vm1")
        cls.p_sasl, cls.p_ticket, cls.p_vm2 = (h.free_port() for _ in range(3))
        everyone = list(PASSWORDS)
        cls.gw = cls.start_gateway(h.gateway_config(
            cls.pki,
            [h.spice_listener(cls.p_sasl, "vm1"),
             h.spice_listener(cls.p_ticket, "vm1", auth=["ticket"]),
             h.spice_listener(cls.p_vm2, "vm2", auth=["sasl"])],
            [h.vm_entry("vm1", cls.vm1.upstream, users=everyone),
             h.vm_entry("vm2", "unix:%s" % os.path.join(cls.tmp, "vm2.sock"), users=everyone)],
            sasl={"mech_list": ["SCRAM-SHA-256", "PLAIN"], "sasldb": cls.sasldb, "pwcheck_method": "auxprop",
                  "default_realm": ""}))
        cls.config = cls.gw.config_path
        added = cls.run_vmgate(["users", "add", "anne", "-c", cls.config], stdin_text=PASSWORDS["anne"] + "\n")
        if added.rc != 0:
            raise RuntimeError("vmgate users add anne: %s" % added)

    # ---- running vmgate --------------------------------------------------------------------
    @classmethod
    def run_vmgate(cls, args, stdin_text=None, umask=None):
        argv = [h.require_vmgate()] + list(args)
        res = subprocess.run(argv, input=(stdin_text or "").encode(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=30,
                             preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
        return h.CliResult(argv, res.returncode, res.stdout.decode(errors="replace"),
                           res.stderr.decode(errors="replace"))

    def users(self, *args, password=None, config=None, umask=None):
        """`vmgate users ARGS -c CONFIG`, `password` and a newline on stdin (nothing: empty stdin)."""
        stdin_text = None if password is None else password + "\n"
        return self.run_vmgate(["users"] + list(args) + ["-c", config or self.config], stdin_text, umask)

    def vv(self, *args):
        return self.run_vmgate(["vv"] + list(args) + ["-c", self.config])

    def on_terminal(self, args, answers):
        """`vmgate ARGS` with stdin and stderr on a pseudo-terminal: for each (prompt, answer) wait
        for the prompt, then type the answer. Returns (rc, stdout, everything the terminal showed)."""
        master, slave = os.openpty()
        proc = subprocess.Popen([h.require_vmgate()] + list(args), stdin=slave, stdout=subprocess.PIPE,
                                stderr=slave, start_new_session=True)
        os.close(slave)
        screen = b""
        try:
            for prompt, answer in answers:
                screen += read_until(master, prompt)
                os.write(master, answer)
            out, _ = proc.communicate(timeout=30)
            screen += drain(master)
        finally:
            h.stop_process(proc)
            os.close(master)
        return proc.returncode, out.decode(errors="replace"), screen

    # ---- checks ---------------------------------------------------------------------------
    def listed(self, path=None):
        """sasldblistusers2's entries, "user@realm: property"."""
        return h.sasldb_entries(path or self.sasldb)

    def vmgate_list(self, *args):
        res = self.users("list", *args)
        self.assertEqual(res.rc, 0, res)
        return res.lines()

    def login(self, user, password):
        """spice-gtk with a long-lived vm1 file and the credentials a user would type in."""
        return self.client(vv=self.vv_file("%s-login.vv" % user, "vm1"), host=None, username=user,
                           password=password)

    def at(self, user):
        return "%s@%s" % (user, self.realm)

    # ---- users: both ways with saslpasswd2 / sasldblistusers2 -------------------------------
    def test_user_added_by_vmgate_logs_in_with_spice_gtk(self):
        self.assertIn(self.at("anne") + ": userPassword", self.listed())
        mark = self.gw.audit_mark()
        r = self.client(vv=self.vv_file("anne-user.vv", "vm1", "--user", "anne"), host=None,
                        password=PASSWORDS["anne"])
        self.assertClient(r, 0)
        self.assertIn("primary=720x400", r.result)
        auth = self.gw.wait_audit("auth", since=mark, result="ok")[0]
        self.assertEqual((auth.get("user"), auth.get("realm"), auth.get("mechanism")),
                         ("anne", self.realm, "SCRAM-SHA-256"), auth)

    def test_vmgate_adds_saslpasswd2_changes_vmgate_lists_and_deletes(self):
        added = self.users("add", "ben", password=PASSWORDS["ben"])
        self.assertEqual(added.rc, 0, added)
        self.assertEqual(added.stdout, "added %s to %s\n" % (self.at("ben"), self.sasldb))
        self.assertIn(self.at("ben") + ": userPassword", self.listed())
        h.make_sasldb(self.sasldb, {"ben": "ben-changed-by-saslpasswd2"})  # saslpasswd2 -p -c: a new password
        self.assertIn(self.at("ben"), self.vmgate_list())
        self.assertClient(self.login("ben", "ben-changed-by-saslpasswd2"), 0)
        deleted = self.users("del", "ben")
        self.assertEqual(deleted.rc, 0, deleted)
        self.assertNotIn(self.at("ben") + ": userPassword", self.listed())
        self.assertNotIn(self.at("ben"), self.vmgate_list())
        self.assertClient(self.login("ben", "ben-changed-by-saslpasswd2"), 2)

    def test_saslpasswd2_adds_vmgate_lists_changes_and_deletes(self):
        h.make_sasldb(self.sasldb, {"carl": "carl-from-saslpasswd2"})
        self.assertIn(self.at("carl"), self.vmgate_list())
        changed = self.users("passwd", "carl", password=PASSWORDS["carl"])
        self.assertEqual(changed.rc, 0, changed)
        self.assertEqual(changed.stdout, "changed the password of %s in %s\n" % (self.at("carl"), self.sasldb))
        self.assertClient(self.login("carl", PASSWORDS["carl"]), 0)
        self.assertEqual(self.users("del", "carl").rc, 0)
        self.assertFalse([e for e in self.listed() if e.startswith("carl@")], self.listed())

    def test_realms(self):
        added = self.users("add", "dora", "--realm", "EXAMPLE.TEST", password=PASSWORDS["dora"])
        self.assertEqual(added.rc, 0, added)
        self.assertIn("dora@EXAMPLE.TEST: userPassword", self.listed())
        self.assertEqual(self.vmgate_list("--realm", "EXAMPLE.TEST"), ["dora@EXAMPLE.TEST"])
        everyone = self.vmgate_list()
        self.assertEqual(everyone, sorted(everyone))
        self.assertLessEqual({"dora@EXAMPLE.TEST", self.at("anne")}, set(everyone))
        self.assertEqual(self.users("passwd", "dora", password="x").rc, 1, "dora is not in the default realm")
        self.assertEqual(self.users("del", "dora", "--realm", "EXAMPLE.TEST").rc, 0)
        self.assertEqual(self.vmgate_list("--realm", "EXAMPLE.TEST"), [])

    def test_refusals_say_why(self):
        before = self.listed()
        for args, password, rc, words in [
                (("add", "anne"), "other-password", 1, "%s already exists" % self.at("anne")),
                (("passwd", "nobody"), "pw", 1, "%s is not in %s" % (self.at("nobody"), self.sasldb)),
                (("del", "nobody"), None, 1, "%s is not in" % self.at("nobody")),
                (("add", "erin"), None, 1, "no password on standard input"),
                (("add", "erin"), "", 1, "empty passwords are not accepted"),
                (("add", "erin@EXAMPLE.TEST"), "pw", 2, "give the realm with --realm")]:
            res = self.users(*args, password=password)
            self.assertEqual(res.rc, rc, res)
            self.assertIn(words, res.stderr, res)
            self.assertEqual(res.stdout, "", res)
        self.assertEqual(self.listed(), before)
        self.assertClient(self.login("anne", PASSWORDS["anne"]), 0)  # the refused add changed nothing

    def test_no_password_on_the_command_line(self):
        for command in ("add", "passwd"):
            usage = self.run_vmgate(["users", command, "--help"]).stdout
            self.assertNotIn("--pass", usage)
            self.assertNotIn("-p,", usage)
        res = self.users("add", "--password", "in-argv-Pw-9", "frank")
        self.assertEqual(res.rc, 2, res)
        self.assertFalse([e for e in self.listed() if e.startswith("frank@")])

    def test_terminal_prompts_twice_without_echo(self):
        secret = PASSWORDS["gina"].encode()
        rc, out, screen = self.on_terminal(["users", "add", "gina", "-c", self.config],
                                           [(b"New password: ", secret + b"\n"),
                                            (b"Again, to make sure: ", secret + b"\n")])
        self.assertEqual(rc, 0, screen)
        self.assertEqual(out, "added %s to %s\n" % (self.at("gina"), self.sasldb))
        self.assertNotIn(secret, screen, "the password was echoed")
        self.assertIn(self.at("gina") + ": userPassword", self.listed())
        self.assertClient(self.login("gina", secret.decode()), 0)
        self.assertEqual(self.users("del", "gina").rc, 0)

    def test_terminal_answers_that_differ_change_nothing(self):
        rc, out, screen = self.on_terminal(["users", "add", "hank", "-c", self.config],
                                           [(b"New password: ", b"first-Pw-1\n"),
                                            (b"Again, to make sure: ", b"second-Pw-2\n")])
        self.assertEqual(rc, 1, screen)
        self.assertIn(b"the two passwords differ", screen)
        self.assertNotIn(b"first-Pw-1", screen)
        self.assertFalse([e for e in self.listed() if e.startswith("hank@")])

    def test_saslauthd_configuration_is_refused(self):
        config = os.path.join(self.tmp, "saslauthd.toml")
        with open(config, "w") as f:
            f.write(h.to_toml({"sasl": {"pwcheck_method": "saslauthd", "mech_list": ["PLAIN"],
                                        "sasldb": self.sasldb}}))
        before = self.listed()
        for args, password in ((("list",), None), (("add", "ivan"), "pw")):
            res = self.users(*args, password=password, config=config)
            self.assertEqual(res.rc, 1, res)
            self.assertIn('pwcheck_method is "saslauthd"', res.stderr, res)
        self.assertEqual(self.listed(), before)

    def test_file_modes(self):
        fresh = os.path.join(self.tmp, "modes", "sasldb2")
        os.makedirs(os.path.dirname(fresh))
        config = os.path.join(self.tmp, "modes", "vmgate.toml")
        with open(config, "w") as f:
            f.write(h.to_toml({"sasl": {"sasldb": fresh}}))
        self.assertEqual(self.users("add", "jack", password="pw-1", config=config, umask=0).rc, 0)
        self.assertEqual(stat.S_IMODE(os.stat(fresh).st_mode), 0o640, "a new sasldb, whatever the umask")
        os.chmod(fresh, 0o600)
        self.assertEqual(self.users("add", "kate", password="pw-2", config=config, umask=0).rc, 0)
        self.assertEqual(stat.S_IMODE(os.stat(fresh).st_mode), 0o600, "an existing sasldb keeps its mode")
        self.assertEqual(self.vmgate_list_of(config), [self.at("jack"), self.at("kate")])

    def vmgate_list_of(self, config):
        res = self.users("list", config=config)
        self.assertEqual(res.rc, 0, res)
        return res.lines()

    # ---- vv --------------------------------------------------------------------------------
    def vv_file(self, name, *args):
        """`vmgate vv ARGS --ca CA --out TMP/NAME`; returns the path (AssertionError on failure)."""
        path = os.path.join(self.tmp, name)
        res = self.vv(*args, "--ca", self.pki.ca_cert, "--out", path)
        self.assertEqual(res.rc, 0, res)
        return path

    def test_vv_file_without_ticket_stays_valid(self):
        path = self.vv_file("anne.vv", "vm1", "--user", "anne")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        fields = vv_fields(path)
        with open(self.pki.ca_cert) as f:
            ca = f.read()
        self.assertEqual(fields, {"type": "spice", "host": "127.0.0.1", "tls-port": str(self.p_sasl),
                                  "ca": ca.replace("\n", "\\n"), "host-subject": HOST_SUBJECT, "title": "vm1",
                                  "secure-channels": "all", "username": "anne"})
        for attempt in range(2):
            mark = self.gw.audit_mark()
            r = self.client(vv=path, host=None, password=PASSWORDS["anne"])
            self.assertClient(r, 0, "attempt %d" % attempt)
            self.assertEqual(self.gw.wait_audit("channel_open", since=mark, channel="main")[0].get("user"), "anne")
        self.assertTrue(os.path.exists(path))

    def test_vv_host_subject_is_what_lets_spice_gtk_in(self):
        path = self.vv_file("pinned.vv", "vm1", "--user", "anne")
        wrong = os.path.join(self.tmp, "wrong-subject.vv")
        with open(path) as f, open(wrong, "w") as out:
            out.write(f.read().replace("host-subject=" + HOST_SUBJECT, "host-subject=O=vmgate e2e,CN=other.test"))
        self.assertClient(self.client(vv=wrong, host=None, password=PASSWORDS["anne"]), 3)
        self.assertClient(self.client(vv=path, host=None, password=PASSWORDS["anne"]), 0)

    def test_vv_ticket_opens_once(self):
        mark = self.gw.audit_mark()
        path = self.vv_file("ticket.vv", "vm1", "--user", "anne", "--ticket", "--ttl", "2m")
        fields = vv_fields(path)
        self.assertEqual(fields["tls-port"], str(self.p_ticket))
        self.assertEqual(fields["delete-this-file"], "1")
        self.assertTrue(fields["password"])
        issued = self.gw.wait_audit("ticket_issued", since=mark)
        self.assertEqual([(e.get("user"), e.get("vm"), e.get("ttl_s")) for e in issued], [("anne", "vm1", 120)])
        copy = path + ".copy"
        shutil.copy(path, copy)
        r = self.client(vv=path, host=None)
        self.assertClient(r, 0)
        self.assertFalse(os.path.exists(path), "delete-this-file=1: the client deletes the file it read")
        auth = self.gw.wait_audit("auth", since=mark, result="ok")[0]
        self.assertEqual((auth.get("user"), auth.get("mechanism")), ("anne", "ticket"), auth)
        again = self.gw.audit_mark()
        self.assertClient(self.client(vv=copy, host=None), 2)
        self.assertTrue(self.gw.wait_audit("auth", since=again, result="failure"))

    def test_vv_ticket_needs_a_ticket_listener(self):
        mark = self.gw.audit_mark()
        res = self.vv("vm2", "--user", "anne", "--ticket", "--ca", self.pki.ca_cert)
        self.assertEqual(res.rc, 1, res)
        self.assertIn("offers tickets alone", res.stderr)
        self.assertEqual(res.stdout, "")
        time.sleep(0.2)
        self.assertEqual(self.gw.audit_events("ticket_issued", since=mark), [], "no ticket may be issued")

    def test_vv_to_stdout_and_over_an_existing_file(self):
        res = self.vv("vm2", "--ca", self.pki.ca_cert)
        self.assertEqual(res.rc, 0, res)
        self.assertTrue(res.stdout.startswith("[virt-viewer]\ntype=spice\nhost=127.0.0.1\ntls-port=%d\n" % self.p_vm2),
                        res.stdout)
        path = os.path.join(self.tmp, "existing.vv")
        with open(path, "w") as f:
            f.write("old\n")
        os.chmod(path, 0o644)
        self.vv_file("existing.vv", "vm2")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            self.assertNotIn("old", f.read())

    def test_vv_refusals_say_why(self):
        for args, rc, words in [
                (("vm1",), 1, "give --ca FILE"),
                (("vm9", "--ca", self.pki.ca_cert), 1, 'no VM named "vm9"'),
                (("vm1", "--ca", self.pki.cert), 1, "does not verify against the CA"),
                (("vm1", "--ticket", "--ca", self.pki.ca_cert), 2, "--user"),
                (("vm1", "--user", "anne", "--ticket", "--ttl", "soon", "--ca", self.pki.ca_cert), 2, "--ttl")]:
            res = self.vv(*args)
            self.assertEqual(res.rc, rc, res)
            self.assertIn(words, res.stderr, res)
            self.assertEqual(res.stdout, "", res)


if __name__ == "__main__":
    unittest.main(verbosity=2)

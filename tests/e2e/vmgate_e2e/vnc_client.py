"""A headless VNC client for the end-to-end tests, built on gtk-vnc (GVnc 1.0 via GI, the library
virt-viewer and virt-manager use), run as a subprocess like spice_client.py.

    /usr/bin/python3 -m vmgate_e2e.vnc_client (--host H --port P | --unix PATH)
        [--tls-hostname NAME] [--ca-file CA] [--client-cert CERT --client-key KEY]
        [--username U] [--password PW] [--sasl-mech MECH] [--auth-type N] [--auth-subtype N] [--shared]
        [--timeout S] [--hold] [--send-keys] [--screenshot OUT.ppm] [-v]

Success means a real picture arrived: ServerInit (name and size reported), then a framebuffer
update reaching the bottom-right corner of the screen (the first full frame, the same rule as
gtk-vnc's gvnccapture).

Authentication is chosen the way gtk-vnc's own VncDisplay widget (virt-viewer) chooses, so that
the tests see what a real viewer does:
    types     VeNCrypt(19) > TLS(18) > SASL(20) > MSLogonII(113) > MSLogon > ARD(30) > VNC(2) > None(1)
    VeNCrypt  X509SASL(263) > X509Plain(262) > X509Vnc(261) > X509None(260) > TLSSASL(264)
              > TLSPlain(259) > TLSVnc(258) > TLSNone(257)        (QEMU/gtk-vnc numbering; never Plain 256)
--auth-type / --auth-subtype force a number instead (even one that was not offered, which is what
a misbehaving client does). When nothing offered is acceptable the client hangs up, as VncDisplay
does (rc 8).

Credentials are answered from the command line when gtk-vnc asks for them ('vnc-auth-credential'):
password (VNC auth, Plain, SASL), username (Plain, SASL) and clientname (every X509 subtype). A
credential that is asked for but was not given ends the run with rc 2 (virt-viewer would prompt).

SASL: gtk-vnc lets Cyrus SASL pick the mechanism from the server's list (SCRAM-SHA-256 before
DIGEST-MD5 before PLAIN) and has no option to choose one. --sasl-mech MECH makes only that
mechanism's client plugin loadable (SASL_PATH pointing at a directory with just that plugin), so
MECH is what gets used, or the SASL start fails if the server does not offer it.

X509 trust and client certificates: gtk-vnc has no API for a CA file or a client certificate. On
the clientname credential it looks for CA/cacert.pem, CA/cacrl.pem, NAME/clientcert.pem and
NAME/private/clientkey.pem under /etc/pki, then under <home of getpwuid(getuid())>/.pki ($HOME is
not used), and without a CA file it falls back to GnuTLS's system trust. So --ca-file and
--client-cert/--client-key build such a directory and make this process (and only it) see it there:
the client enters a private mount namespace (unshare, root only) and bind-mounts it over /etc/pki
if that exists, else over the passwd home directory. Nothing outside the process changes.

Exit codes (one 'RESULT ...' line is printed on stdout in every case):
    0   ServerInit and the first full frame (and, with --hold/--send-keys, the session stayed healthy)
    1   usage or internal error
    2   authentication failed: gtk-vnc's 'vnc-auth-failure' (reason="..." is the server's
        SecurityResult reason as gtk-vnc passes it on, cut at a NUL; a SASL exchange that breaks
        off, as QEMU's does on a wrong password, always reads "Unknown authentication failure"),
        or a credential was asked for but not given
    3   TLS: handshake failed or the server certificate was refused (untrusted, wrong name, expired)
    4   could not connect (refused, no such socket, name resolution)
    5   protocol error reported by gtk-vnc (bad version, VeNCrypt refused, unsupported subtype, ...)
    6   I/O error on the connection (read/write failed, e.g. a reset)
    7   the server closed the connection (before or after ServerInit)
    8   no offered security type / VeNCrypt subtype is acceptable to the client (it hung up)
    124 timeout (no full frame within --timeout seconds, or no redraw after --send-keys)

RESULT fields: the status word, rc=, auth=TYPE[/SUBTYPE] (what the client chose), types= and
subtypes= (what the server offered, comma separated), connected= init= frame= (seconds since start
for the socket, ServerInit and the first full frame), name="..." (ServerInit desktop name),
size=WxH, shared=0|1, sasl_mech=MECH (the mechanism Cyrus chose, when SASL ran), with --hold
hold_updates=N, with --send-keys roundtrip=; on failure reason="..." (from vnc-auth-failure),
error="..." (gtk-vnc's first vnc-error message) and note="..." (the client's own explanation).
Quoted values are JSON strings; parse_result() in this module reads the line back.

Options for long-lived sessions:
    --hold       after the first frame print 'READY ...', then keep the session until stdin reaches
                 EOF (the test closes the pipe). Framebuffer updates meanwhile are counted
                 (hold_updates=N; the SeaBIOS text cursor blinks about every 0.45 s).
    --send-keys  at the end (after the hold, or right after the first frame), press Ctrl+Alt+Del
                 (KeyEvent messages, X keysyms) and wait until the screen is redrawn: SeaBIOS
                 resets the guest on Ctrl+Alt+Del and prints its screen again. Proves that bytes
                 flow both ways (client -> QEMU keyboard -> guest -> display -> client).
                 A redraw is at least REDRAW_AREA pixels of distinct update rectangles after the
                 keys: the blinking text cursor repaints the same one small rectangle over and over
                 and never adds up to that. The reset must also leave a mark on the screen
                 for a moment: the SeaBIOS screen after a reset is the same as before, and without
                 a pause QEMU redraws it between two display refreshes. harness.QemuVnc therefore
                 starts QEMU with -boot menu=on,splash-time=1000 ("Press ESC for boot menu." for
                 one second, during which the last line is missing).
"""

import argparse
import ctypes
import json
import os
import pwd
import re
import shutil
import socket
import sys
import tempfile
import time

RC_OK = 0
RC_USAGE = 1
RC_AUTH = 2
RC_TLS = 3
RC_CONNECT = 4
RC_PROTOCOL = 5
RC_IO = 6
RC_CLOSED = 7
RC_NO_AUTH = 8
RC_TIMEOUT = 124

STATUS = {RC_OK: "ok", RC_USAGE: "usage", RC_AUTH: "auth-failed", RC_TLS: "tls-error",
          RC_CONNECT: "connect-failed", RC_PROTOCOL: "protocol-error", RC_IO: "io-error",
          RC_CLOSED: "closed", RC_NO_AUTH: "auth-unsupported", RC_TIMEOUT: "timeout"}

# RFB security types and VeNCrypt subtypes (gtk-vnc's VncConnectionAuth / ...AuthVencrypt values)
AUTH_NONE, AUTH_VNC, AUTH_TLS, AUTH_VENCRYPT, AUTH_SASL = 1, 2, 18, 19, 20
AUTH_ARD, AUTH_MSLOGONII, AUTH_MSLOGON = 30, 113, 0xFFFFFFFA
VENCRYPT_PLAIN, VENCRYPT_TLSNONE, VENCRYPT_TLSVNC, VENCRYPT_TLSPLAIN = 256, 257, 258, 259
VENCRYPT_X509NONE, VENCRYPT_X509VNC, VENCRYPT_X509PLAIN = 260, 261, 262
VENCRYPT_X509SASL, VENCRYPT_TLSSASL = 263, 264

# gtk-vnc's VncDisplay preferences (vncdisplay.c, vnc_display_init), first match wins
PREFERRED_TYPES = (AUTH_VENCRYPT, AUTH_TLS, AUTH_SASL, AUTH_MSLOGONII, AUTH_MSLOGON, AUTH_ARD,
                   AUTH_VNC, AUTH_NONE)
PREFERRED_VENCRYPT = (VENCRYPT_X509SASL, VENCRYPT_X509PLAIN, VENCRYPT_X509VNC, VENCRYPT_X509NONE,
                      VENCRYPT_TLSSASL, VENCRYPT_TLSPLAIN, VENCRYPT_TLSVNC, VENCRYPT_TLSNONE)

CRED_PASSWORD, CRED_USERNAME, CRED_CLIENTNAME = 0, 1, 2
CLIENT_NAME = "vmgate-e2e"  # our clientname credential: the NAME/ directory for the client cert

# Encodings we ask for: DesktopResize, DesktopName, LastRect, ZRLE, Hextile, RRE, CopyRect, Raw.
# Not the QEMU extended key event (-258): keys then travel as plain KeyEvent keysyms.
ENCODINGS = [-223, -307, -224, 16, 5, 2, 1, 0]

KEYSYM_CONTROL_L = 0xFFE3
KEYSYM_ALT_L = 0xFFE9
KEYSYM_DELETE = 0xFFFF

REDRAW_AREA = 1024  # --send-keys: pixels of distinct update rectangles that count as a redraw

# gtk-vnc error messages (vncconnection.c) -> exit code; checked in order, first match wins
ERROR_RULES = (
    (re.compile(r"^Unable to connect"), RC_CONNECT),
    (re.compile(r"certificate|handshake|Failed to verify peer|Only x509|TLS|(allocate|initialize) credentials"),
     RC_TLS),
    (re.compile(r"^Server closed the connection"), RC_CLOSED),
    (re.compile(r"^Unable to read from server|^Failed to flush data|^Failed to any flush data"), RC_IO),
)

SASL_PLUGIN_DIR = "/usr/lib/x86_64-linux-gnu/sasl2"
SASL_PLUGINS = {"SCRAM-SHA-256": "scram", "SCRAM-SHA-1": "scram", "PLAIN": "plain", "DIGEST-MD5": "digestmd5",
                "CRAM-MD5": "crammd5", "LOGIN": "login", "ANONYMOUS": "anonymous"}

SASL_MECH_LOG = re.compile(r"Server start negotiation with mech (\S+?)\. ")

MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
CLONE_NEWNS = 0x00020000


class PixelFormat(ctypes.Structure):
    # VncPixelFormat as laid out in C (vncpixelformat.h)
    _fields_ = [("bits_per_pixel", ctypes.c_uint8), ("depth", ctypes.c_uint8),
                ("byte_order", ctypes.c_uint16), ("true_color_flag", ctypes.c_uint8),
                ("red_max", ctypes.c_uint16), ("green_max", ctypes.c_uint16),
                ("blue_max", ctypes.c_uint16), ("red_shift", ctypes.c_uint8),
                ("green_shift", ctypes.c_uint8), ("blue_shift", ctypes.c_uint8)]


def parse_result(line):
    """The RESULT line as a dict: {"status": ..., "rc": "2", "reason": "Authentication failed", ...}.
    Quoted values are JSON strings; the others are left as text."""
    if not line.startswith("RESULT "):
        raise ValueError("not a RESULT line: %r" % line)
    rest = line[len("RESULT "):]
    status, _, rest = rest.partition(" ")
    fields = {"status": status}
    for match in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', rest):
        key, value = match.group(1), match.group(2)
        fields[key] = json.loads(value) if value.startswith('"') else value
    return fields


def quoted(text):
    return json.dumps(text, ensure_ascii=True)


# ---------------------------------------------------------------------------------------------
# X509 files where gtk-vnc looks for them (private mount namespace)
# ---------------------------------------------------------------------------------------------

def libc_call(name, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    func = getattr(libc, name)
    if func(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (name, os.strerror(err)))


def install_x509_files(args):
    """Put --ca-file / --client-cert / --client-key where gtk-vnc looks (see the module docstring),
    visible to this process only. Returns the scratch directory to remove at exit, or None."""
    if not (args.ca_file or args.client_cert):
        return None
    if os.geteuid() != 0:
        raise RuntimeError("--ca-file/--client-cert need root: gtk-vnc only reads /etc/pki or "
                           "~/.pki, which this client replaces in a private mount namespace")
    scratch = tempfile.mkdtemp(prefix="vnc-client-pki-", dir=os.environ.get("HOME") or None)
    pki = os.path.join(scratch, ".pki")
    os.makedirs(os.path.join(pki, "CA"))
    os.makedirs(os.path.join(pki, CLIENT_NAME, "private"))
    if args.ca_file:
        shutil.copyfile(args.ca_file, os.path.join(pki, "CA", "cacert.pem"))
    if args.client_cert:
        shutil.copyfile(args.client_cert, os.path.join(pki, CLIENT_NAME, "clientcert.pem"))
        shutil.copyfile(args.client_key, os.path.join(pki, CLIENT_NAME, "private", "clientkey.pem"))
    # /etc/pki is searched first; if it does not exist, the passwd home's .pki is what counts
    if os.path.isdir("/etc/pki"):
        source, target = pki, "/etc/pki"
    else:
        source, target = scratch, pwd.getpwuid(os.getuid()).pw_dir
    # Before any thread exists (gi is not imported yet), so the whole process is in the namespace.
    libc_call("unshare", ctypes.c_int(CLONE_NEWNS))
    libc_call("mount", None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None)
    libc_call("mount", source.encode(), target.encode(), None, ctypes.c_ulong(MS_BIND), None)
    return scratch


def restrict_sasl_mechanism(mech):
    """--sasl-mech: a scratch directory with only MECH's Cyrus client plugin, made the plugin
    path of this process (SASL_PATH is read when gtk-vnc calls sasl_client_init()). Returns it."""
    plugin = SASL_PLUGINS.get(mech.upper())
    if plugin is None:
        raise RuntimeError("unknown SASL mechanism %r (known: %s)" % (mech, ", ".join(sorted(SASL_PLUGINS))))
    names = [n for n in os.listdir(SASL_PLUGIN_DIR) if n.startswith("lib%s.so" % plugin)]
    if not names:
        raise RuntimeError("no %s plugin in %s (Debian libsasl2-modules)" % (plugin, SASL_PLUGIN_DIR))
    scratch = tempfile.mkdtemp(prefix="vnc-client-sasl-", dir=os.environ.get("HOME") or None)
    for name in names:
        os.symlink(os.path.join(SASL_PLUGIN_DIR, name), os.path.join(scratch, name))
    os.environ["SASL_PATH"] = scratch
    return scratch


# ---------------------------------------------------------------------------------------------
# the client
# ---------------------------------------------------------------------------------------------

class Client:
    """One VNC connection driven by a GLib main loop; the outcome ends up in self.rc."""

    def __init__(self, args, GVnc, GLib, GObject, Gio):
        self.args = args
        self.GVnc, self.GLib, self.GObject, self.Gio = GVnc, GLib, GObject, Gio
        self.t0 = time.monotonic()
        self.loop = GLib.MainLoop()
        self.conn = GVnc.Connection()
        self.rc = None
        self.status_override = None
        self.errors = []           # every vnc-error message, in order
        self.auth_reason = None    # the vnc-auth-failure reason
        self.note = None           # our own explanation (missing credential, no acceptable type)
        self.types = []
        self.subtypes = []
        self.chosen_type = None
        self.chosen_subtype = None
        self.connected_at = None
        self.init_at = None
        self.frame_at = None
        self.roundtrip_at = None
        self.name = None
        self.size = None
        self.phase = "connecting"  # connecting -> holding -> roundtrip -> done
        self.hold_updates = 0
        self.redraw_rects = set()  # distinct update rectangles since --send-keys pressed its keys
        self.redraw_area = 0       # their pixels
        self.request_pending = False
        self.sasl_mech = None      # the mechanism Cyrus picked, from gtk-vnc's debug log
        self.fb = None
        self.timeout_id = None
        self._setup_ctypes()

    # ---- helpers -----------------------------------------------------------------------------
    def log(self, *parts):
        if self.args.verbose:
            print("[%7.3f]" % self.elapsed(), *parts, file=sys.stderr, flush=True)

    def elapsed(self):
        return time.monotonic() - self.t0

    def finish(self, rc, note=None):
        """Decide the outcome (the first decision stands) and leave the main loop."""
        if self.rc is not None:
            return
        self.rc = rc
        if note and not self.note:
            self.note = note
        self.phase = "done"
        self.loop.quit()

    def _setup_ctypes(self):
        # The three auth signals carry GValueArrays of GVnc.ConnectionAuth values, an enum that
        # PyGObject cannot load (MSLOGON = 0xfffffffa is out of range for it), so they are
        # connected at the C level. The framebuffer must wrap a buffer that outlives the call,
        # which GVnc.BaseFramebuffer.new() through GI cannot give, so it is made through ctypes too.
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        self.cptr = get_pointer(self.conn.__gpointer__, None)
        gvnc = ctypes.CDLL("libgvnc-1.0.so.0")
        gobject = ctypes.CDLL("libgobject-2.0.so.0")
        gvnc.vnc_connection_set_auth_type.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        gvnc.vnc_connection_set_auth_subtype.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        gvnc.vnc_connection_set_credential.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
        gvnc.vnc_connection_get_pixel_format.restype = ctypes.c_void_p
        gvnc.vnc_connection_get_pixel_format.argtypes = [ctypes.c_void_p]
        gvnc.vnc_base_framebuffer_new.restype = ctypes.c_void_p
        gvnc.vnc_base_framebuffer_new.argtypes = [ctypes.c_void_p, ctypes.c_uint16, ctypes.c_uint16,
                                                  ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        gvnc.vnc_connection_set_framebuffer.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        gobject.g_value_array_get_nth.restype = ctypes.c_void_p
        gobject.g_value_array_get_nth.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        gobject.g_value_get_enum.restype = ctypes.c_int
        gobject.g_value_get_enum.argtypes = [ctypes.c_void_p]
        gobject.g_signal_connect_data.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                                                  ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        gobject.g_signal_connect_data.restype = ctypes.c_ulong
        self.gvnc, self.gobject = gvnc, gobject
        array_cb = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
        subtype_cb = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p)
        self._callbacks = [array_cb(self.on_choose_type), subtype_cb(self.on_choose_subtype),
                           array_cb(self.on_credential)]  # kept alive as long as the client
        for name, cb in zip((b"vnc-auth-choose-type", b"vnc-auth-choose-subtype", b"vnc-auth-credential"),
                            self._callbacks):
            gobject.g_signal_connect_data(self.cptr, name, ctypes.cast(cb, ctypes.c_void_p), None, None, 0)

    def enum_values(self, value_array):
        """The enum values of a GValueArray as unsigned ints (GValueArray fields: guint n_values first)."""
        count = ctypes.c_uint.from_address(value_array).value
        return [self.gobject.g_value_get_enum(self.gobject.g_value_array_get_nth(value_array, i)) & 0xFFFFFFFF
                for i in range(count)]

    # ---- authentication signals (C level) ---------------------------------------------------
    def on_choose_type(self, _conn, value_array, _data):
        try:
            self.types = self.enum_values(value_array)
            self.log("security types offered", self.types)
            if self.args.auth_type is not None:
                choice = self.args.auth_type
            else:
                choice = next((t for t in PREFERRED_TYPES if t in self.types), None)
            if choice is None:
                self.note = "no acceptable security type in %s" % self.types
                self.status_override = RC_NO_AUTH
                self.conn.shutdown()
                return
            self.chosen_type = choice
            self.gvnc.vnc_connection_set_auth_type(self.cptr, choice)
        except Exception as exc:  # an exception must not vanish inside a C callback
            self.internal_error(exc)

    def on_choose_subtype(self, _conn, auth_type, value_array, _data):
        try:
            self.subtypes = self.enum_values(value_array)
            self.log("subtypes of", auth_type, "offered", self.subtypes)
            if self.args.auth_subtype is not None:
                choice = self.args.auth_subtype
            else:
                preferred = PREFERRED_VENCRYPT if auth_type == AUTH_VENCRYPT else PREFERRED_TYPES
                choice = next((t for t in preferred if t in self.subtypes and t != auth_type), None)
            if choice is None:
                self.note = "no acceptable subtype of %d in %s" % (auth_type, self.subtypes)
                self.status_override = RC_NO_AUTH
                self.conn.shutdown()
                return
            self.chosen_subtype = choice
            self.gvnc.vnc_connection_set_auth_subtype(self.cptr, choice)
        except Exception as exc:
            self.internal_error(exc)

    def on_credential(self, _conn, value_array, _data):
        try:
            wanted = self.enum_values(value_array)
            self.log("credentials wanted", wanted)
            for cred in wanted:
                if cred == CRED_CLIENTNAME:
                    value = CLIENT_NAME
                elif cred == CRED_PASSWORD:
                    value = self.args.password
                elif cred == CRED_USERNAME:
                    value = self.args.username
                else:
                    value = None
                if value is None:
                    what = {CRED_PASSWORD: "password", CRED_USERNAME: "username"}.get(cred, str(cred))
                    self.note = "the server asked for a %s and none was given" % what
                    self.status_override = RC_AUTH
                    self.conn.shutdown()
                    return
                self.gvnc.vnc_connection_set_credential(self.cptr, cred, value.encode())
        except Exception as exc:
            self.internal_error(exc)

    def internal_error(self, exc):
        self.note = "internal error: %r" % (exc,)
        self.status_override = RC_USAGE
        self.conn.shutdown()

    def on_gtk_vnc_log(self, domain, level, message, *_user_data):
        """gtk-vnc's debug messages: the SASL mechanism is only visible there. Printed with --debug."""
        match = SASL_MECH_LOG.search(message)
        if match and self.sasl_mech is None:
            self.sasl_mech = match.group(1)
        if self.args.debug:
            print("gtk-vnc: %s" % message, file=sys.stderr, flush=True)

    # ---- GObject signals ---------------------------------------------------------------------
    def connect_signals(self):
        on = self.GObject.Object.connect  # GVnc.Connection has no connect() of its own, but be explicit
        on(self.conn, "vnc-connected", self.on_connected)
        on(self.conn, "vnc-initialized", self.on_initialized)
        on(self.conn, "vnc-desktop-resize", self.on_resize)
        on(self.conn, "vnc-desktop-rename", self.on_rename)
        on(self.conn, "vnc-framebuffer-update", self.on_update)
        on(self.conn, "vnc-error", self.on_error)
        on(self.conn, "vnc-auth-failure", self.on_auth_failure)
        on(self.conn, "vnc-auth-unsupported", self.on_auth_unsupported)
        on(self.conn, "vnc-disconnected", self.on_disconnected)

    def on_connected(self, conn):
        self.connected_at = self.elapsed()
        self.log("socket connected")

    def on_error(self, conn, message):
        self.log("vnc-error", repr(message))
        self.errors.append(message)

    def on_auth_failure(self, conn, reason):
        self.log("vnc-auth-failure", repr(reason))
        if self.auth_reason is None:
            self.auth_reason = reason

    def on_auth_unsupported(self, conn, auth_type):
        self.log("vnc-auth-unsupported", auth_type)
        self.note = self.note or "gtk-vnc does not support auth type %d" % auth_type
        self.status_override = self.status_override or RC_NO_AUTH

    def on_initialized(self, conn):
        self.init_at = self.elapsed()
        self.name = conn.get_name()
        width, height = conn.get_width(), conn.get_height()
        self.size = (width, height)
        self.log("initialized", repr(self.name), width, height)
        self.make_framebuffer(width, height)
        conn.set_encodings(ENCODINGS)
        conn.framebuffer_update_request(False, 0, 0, width, height)

    def on_resize(self, conn, width, height):
        self.log("desktop-resize", width, height, "phase", self.phase)
        self.size = (width, height)
        self.make_framebuffer(width, height)
        conn.framebuffer_update_request(False, 0, 0, width, height)
        if self.phase == "roundtrip":
            self.roundtrip_done()

    def on_rename(self, conn, name):
        self.log("desktop-rename", repr(name))

    def make_framebuffer(self, width, height):
        stride = width * 4
        buf = ctypes.create_string_buffer(stride * height)
        local = PixelFormat(32, 24, 1234, 1, 255, 255, 255, 16, 8, 0)  # xRGB, little endian
        remote = self.gvnc.vnc_connection_get_pixel_format(self.cptr)
        fb = self.gvnc.vnc_base_framebuffer_new(buf, width, height, stride, remote, ctypes.byref(local))
        self.gvnc.vnc_connection_set_framebuffer(self.cptr, fb)
        self.fb = {"buf": buf, "local": local, "ptr": fb, "width": width, "height": height, "stride": stride}

    def on_update(self, conn, x, y, w, h):
        rect = (x, y, w, h)
        if self.phase == "connecting":
            if self.fb and x + w == self.fb["width"] and y + h == self.fb["height"]:
                self.frame_at = self.elapsed()
                self.log("first full frame")
                if self.args.screenshot:
                    self.write_screenshot(self.args.screenshot)
                self.after_first_frame()
        elif self.phase == "holding":
            self.hold_updates += 1
        elif self.phase == "roundtrip":
            if rect not in self.redraw_rects:
                self.redraw_rects.add(rect)
                self.redraw_area += w * h
            self.log("update after keys", x, y, w, h, "new area", self.redraw_area)
            if self.redraw_area >= REDRAW_AREA:
                self.roundtrip_done()
        # Keep updates coming: one incremental request per batch of rectangles (QEMU answers it
        # when something changes). Sent from an idle callback, i.e. once the message is read.
        if self.phase != "done" and self.fb and not self.request_pending:
            self.request_pending = True
            self.GLib.idle_add(self.request_update)

    def request_update(self):
        self.request_pending = False
        if self.phase != "done" and self.fb and self.conn.is_open():
            self.conn.framebuffer_update_request(True, 0, 0, self.fb["width"], self.fb["height"])
        return False

    def write_screenshot(self, path):
        fb = self.fb
        raw = fb["buf"].raw
        with open(path, "wb") as f:
            f.write(b"P6\n%d %d\n255\n" % (fb["width"], fb["height"]))
            for row in range(fb["height"]):
                line = raw[row * fb["stride"]:(row + 1) * fb["stride"]]
                out = bytearray(fb["width"] * 3)
                out[0::3], out[1::3], out[2::3] = line[2::4], line[1::4], line[0::4]
                f.write(out)

    def on_disconnected(self, conn):
        self.log("disconnected, phase", self.phase)
        if self.rc is not None:
            return
        self.finish(self.classify())

    def classify(self):
        """The exit code for a connection gtk-vnc ended, from what it reported."""
        if self.status_override is not None:
            return self.status_override
        if self.auth_reason is not None:
            return RC_AUTH
        for message in self.errors[:1]:
            for pattern, rc in ERROR_RULES:
                if pattern.search(message):
                    return rc
            return RC_PROTOCOL
        return RC_CLOSED  # ended without any error message

    # ---- phases after the first frame --------------------------------------------------------
    def after_first_frame(self):
        self.cancel_timeout()
        if self.args.hold:
            self.phase = "holding"
            print("READY frame=%.3fs name=%s size=%dx%d" % (
                self.frame_at, quoted(self.name or ""), self.size[0], self.size[1]), flush=True)
            self.GLib.io_add_watch(sys.stdin.fileno(), self.GLib.PRIORITY_DEFAULT,
                                   self.GLib.IOCondition.IN | self.GLib.IOCondition.HUP | self.GLib.IOCondition.ERR,
                                   self.on_stdin)
        else:
            self.end_hold()

    def on_stdin(self, fd, condition):
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if data:
            return True  # only EOF matters
        self.end_hold()
        return False

    def end_hold(self):
        if self.phase == "done":
            return
        if not self.args.send_keys:
            self.finish(RC_OK)
            return
        self.phase = "roundtrip"
        self.redraw_rects.clear()
        self.redraw_area = 0
        self.log("sending Ctrl+Alt+Del")
        for keysym in (KEYSYM_CONTROL_L, KEYSYM_ALT_L, KEYSYM_DELETE):
            self.conn.key_event(True, keysym, 0)
        for keysym in (KEYSYM_DELETE, KEYSYM_ALT_L, KEYSYM_CONTROL_L):
            self.conn.key_event(False, keysym, 0)
        self.timeout_id = self.GLib.timeout_add(int(self.args.timeout * 1000), self.on_roundtrip_timeout)

    def roundtrip_done(self):
        self.roundtrip_at = self.elapsed()
        self.cancel_timeout()
        self.finish(RC_OK)

    def on_roundtrip_timeout(self):
        self.timeout_id = None
        self.finish(RC_TIMEOUT, "no redraw within %ss after Ctrl+Alt+Del" % self.args.timeout)
        return False

    def on_timeout(self):
        self.timeout_id = None
        self.finish(RC_TIMEOUT, "no full frame within %ss" % self.args.timeout)
        return False

    def cancel_timeout(self):
        if self.timeout_id is not None:
            self.GLib.source_remove(self.timeout_id)
            self.timeout_id = None

    # ---- run ---------------------------------------------------------------------------------
    def open(self):
        a = self.args
        if a.shared:
            self.conn.set_shared(True)
        if a.unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(a.unix)
            except OSError as exc:
                sock.close()
                self.errors.append("Unable to connect to %s: %s" % (a.unix, exc.strerror or exc))
                return False
            fd = sock.detach()
            # without a hostname gtk-vnc checks X509 certificates against "localhost"
            return self.conn.open_fd_with_hostname(fd, a.tls_hostname)
        if a.tls_hostname:
            # connect to --host but check the certificate (and name SASL's server) as --tls-hostname
            address = self.Gio.InetSocketAddress.new_from_string(a.host, a.port)
            if address is None:
                self.errors.append("Unable to connect: %s is not an IP address (needed with --tls-hostname)" % a.host)
                return False
            return self.conn.open_addr(address, a.tls_hostname)
        return self.conn.open_host(a.host, str(a.port))

    def run(self):
        self.connect_signals()
        self.timeout_id = self.GLib.timeout_add(int(self.args.timeout * 1000), self.on_timeout)
        if not self.open():
            self.finish(RC_CONNECT)
        else:
            self.loop.run()
        self.close()
        return self.rc

    def close(self):
        """Hang up and let gtk-vnc finish (socket closed, coroutine ended) before the process exits."""
        if self.conn.is_open():
            self.conn.shutdown()
        context = self.GLib.MainContext.default()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and self.conn.is_open():
            context.iteration(False) or time.sleep(0.01)
        deadline = time.monotonic() + 0.1
        while time.monotonic() < deadline and context.pending():
            context.iteration(False)

    def result_line(self):
        def secs(t):
            return "%.3fs" % t if t is not None else "-"
        auth = "-" if self.chosen_type is None else str(self.chosen_type)
        if self.chosen_subtype is not None:
            auth += "/%d" % self.chosen_subtype
        parts = ["RESULT", STATUS.get(self.rc, "rc%s" % self.rc), "rc=%d" % self.rc, "auth=%s" % auth,
                 "types=%s" % (",".join(map(str, self.types)) or "-"),
                 "subtypes=%s" % (",".join(map(str, self.subtypes)) or "-"),
                 "connected=%s" % secs(self.connected_at), "init=%s" % secs(self.init_at),
                 "frame=%s" % secs(self.frame_at),
                 "name=%s" % (quoted(self.name) if self.name is not None else "-"),
                 "size=%s" % ("%dx%d" % self.size if self.size else "-"),
                 "shared=%d" % (1 if self.args.shared else 0)]
        if self.sasl_mech:
            parts.append("sasl_mech=%s" % self.sasl_mech)
        if self.args.hold:
            parts.append("hold_updates=%d" % self.hold_updates)
        if self.args.send_keys:
            parts.append("roundtrip=%s" % secs(self.roundtrip_at))
        if self.auth_reason is not None:
            parts.append("reason=%s" % quoted(self.auth_reason))
        if self.errors:
            parts.append("error=%s" % quoted(self.errors[0]))
        if self.note:
            parts.append("note=%s" % quoted(self.note))
        return " ".join(parts)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m vmgate_e2e.vnc_client",
                                description="headless gtk-vnc client for vmgate e2e tests")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--unix", help="unix socket path")
    p.add_argument("--tls-hostname", help="name the X509 certificate is checked against (default: "
                   "--host, or localhost with --unix); with --host it must be an IP address")
    p.add_argument("--ca-file", help="trusted CA for X509 subtypes (root: private mount namespace)")
    p.add_argument("--client-cert", help="client certificate (PEM) for X509 subtypes")
    p.add_argument("--client-key", help="its private key (PEM)")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--sasl-mech", help="the only SASL mechanism the client may use (e.g. PLAIN)")
    p.add_argument("--auth-type", type=int, help="choose this security type instead of gtk-vnc's preference")
    p.add_argument("--auth-subtype", type=int, help="choose this VeNCrypt subtype instead")
    p.add_argument("--shared", action="store_true", help="ClientInit shared-flag 1 (default 0, as virt-viewer)")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--hold", "--hold-stdin", dest="hold", action="store_true")
    p.add_argument("--send-keys", action="store_true")
    p.add_argument("--screenshot", help="write the first full frame as a PPM file")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true", help="gtk-vnc's protocol debug messages on stderr "
                   "(they include the credentials it is given)")
    args = p.parse_args(argv)
    if bool(args.unix) == bool(args.host):
        p.error("give either --unix PATH or --host HOST --port PORT")
    if args.host and not args.port:
        p.error("--host needs --port")
    if bool(args.client_cert) != bool(args.client_key):
        p.error("--client-cert and --client-key go together")
    return args


def keep_stdout_for_results():
    """GLib's default log handler writes debug and info messages to fd 1. Keep fd 1 for our
    READY/RESULT lines only: Python's stdout moves to a duplicate of it, fd 1 becomes stderr."""
    sys.stdout.flush()
    results = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(results, "w", buffering=1)


def usage_result(message):
    return "RESULT usage rc=%d note=%s" % (RC_USAGE, quoted(message))


def main(argv=None):
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse already printed the usage on stderr
        if exc.code in (0, None):
            raise
        print(usage_result("bad command line"), flush=True)
        return RC_USAGE
    keep_stdout_for_results()
    scratch = []
    try:
        scratch.append(install_x509_files(args))
        if args.sasl_mech:
            scratch.append(restrict_sasl_mechanism(args.sasl_mech))
    except (OSError, RuntimeError) as exc:
        print(usage_result("cannot set up the client: %s" % exc), flush=True)
        return RC_USAGE
    try:
        import gi
        gi.require_version("GVnc", "1.0")
        from gi.repository import GLib, GObject, Gio, GVnc
    except (ImportError, ValueError) as exc:
        print(usage_result("gtk-vnc GI bindings missing (Debian gir1.2-gtk-vnc-2.0): %s" % exc), flush=True)
        return RC_USAGE
    client = Client(args, GVnc, GLib, GObject, Gio)
    # gtk-vnc logs through g_debug() only when its debug flag is on; our handler keeps the
    # messages off stderr unless --debug is given.
    GVnc.util_set_debug(True)
    GLib.log_set_handler("gtk-vnc", GLib.LogLevelFlags.LEVEL_DEBUG, client.on_gtk_vnc_log, None)
    try:
        rc = client.run()
    except Exception as exc:  # report instead of a traceback-only exit
        client.rc, client.note = RC_USAGE, "internal error: %r" % (exc,)
        rc = RC_USAGE
    finally:
        for path in filter(None, scratch):
            shutil.rmtree(path, ignore_errors=True)
    print(client.result_line(), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

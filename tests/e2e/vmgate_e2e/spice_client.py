"""A headless SPICE client for the end-to-end tests, built on spice-gtk (SpiceClientGLib 2.0 via GI).

Run it as a subprocess (spice-gtk keeps global state, and every run should start clean):

    /usr/bin/python3 -m vmgate_e2e.spice_client --host H --tls-port P [--port P] [--uri URI]
        [--vv FILE] --ca-file CA [--username U] --password PW [--timeout S]
        [--hold-stdin] [--roundtrip] [--unix PATH] [-v]

Success means a real picture arrived: the display channel created its primary surface and then
reported a first 'display-invalidate' (pixels drawn into it). That needs the main channel linked
and authenticated, then the display channel, which this client connects itself from
'channel-new' (spice-gtk leaves every non-main channel to the application).

Exit codes (one 'RESULT ...' line is printed on stdout in every case):
    0   first display frame received (and, with --hold-stdin/--roundtrip, the session stayed healthy)
    2   SPICE_CHANNEL_ERROR_AUTH      3  ERROR_TLS      4  ERROR_CONNECT
    5   ERROR_LINK                    6  ERROR_IO       7  channel closed / session disconnected
    124 timeout (no frame within --timeout seconds)
    1   usage or internal error

--vv FILE opens a remote-viewer connection file the way remote-viewer does (virt-viewer's
virt-viewer-file.c and the SPICE session's fill_session): the [virt-viewer] group read with
GKeyFile (type must be spice), then host, port, tls-port, username, password, proxy, ca (the PEM text
itself, as the session's "ca" bytes), host-subject (as "cert-subject") and secure-channels set on
the SpiceSession; with delete-this-file=1 the file is deleted once read. --username/--password
given as well are applied after it, as remote-viewer applies what the user types into its
credentials dialog.

Options beyond the basic ones, used by the tests that need a long-lived session:
    --hold-stdin   after the first frame print 'READY', then keep the session until stdin
                   reaches EOF (the test closes the pipe when it is done with the session).
    --roundtrip    at the end (after the hold), press Ctrl+Alt+Del through the inputs channel and
                   wait until the guest (SeaBIOS) resets, which recreates the QXL primary surface,
                   and draws again: proves that bytes still flow both ways through every hop
                   (client -> inputs channel -> guest -> display channel -> client).
During a hold, display updates are counted (SeaBIOS blinks its text cursor about every 0.27 s)
and reported as hold_updates=N.
    --input-every S  during the hold, press and release Shift through the inputs channel every S
                   seconds (activity for idle timeouts); reported as inputs_sent=N.
"""

import argparse
import ctypes
import os
import sys
import time

import gi

gi.require_version("SpiceClientGLib", "2.0")
from gi.repository import GLib, GObject  # noqa: E402
from gi.repository import SpiceClientGLib as Spice  # noqa: E402

RC_OK = 0
RC_USAGE = 1
RC_AUTH = 2
RC_TLS = 3
RC_CONNECT = 4
RC_LINK = 5
RC_IO = 6
RC_CLOSED = 7
RC_TIMEOUT = 124

EVENT_RC = {
    Spice.ChannelEvent.ERROR_AUTH: RC_AUTH,
    Spice.ChannelEvent.ERROR_TLS: RC_TLS,
    Spice.ChannelEvent.ERROR_CONNECT: RC_CONNECT,
    Spice.ChannelEvent.ERROR_LINK: RC_LINK,
    Spice.ChannelEvent.ERROR_IO: RC_IO,
    Spice.ChannelEvent.CLOSED: RC_CLOSED,
}

# PC XT (set 1) scancodes as spice_inputs_channel_key_press() wants them: an 0xE0-prefixed code
# is written as 0x100 | code.
SCANCODE_CTRL = 0x1D
SCANCODE_ALT = 0x38
SCANCODE_DELETE = 0x153
SCANCODE_SHIFT = 0x2A  # left Shift, for --input-every


VV_GROUP = "virt-viewer"


def gobject_pointer(obj):
    """The C pointer of a GObject, for calls PyGObject cannot marshal."""
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(obj.__gpointer__, None)


def set_session_ca(session, pem_text):
    """session.ca = the PEM bytes with their NUL, as remote-viewer sets it. PyGObject hands an
    empty GByteArray to GObject properties of that type, so this goes through g_object_set."""
    glib = ctypes.CDLL("libglib-2.0.so.0")
    gobject = ctypes.CDLL("libgobject-2.0.so.0")
    glib.g_byte_array_new.restype = ctypes.c_void_p
    glib.g_byte_array_append.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint]
    glib.g_byte_array_unref.argtypes = [ctypes.c_void_p]
    gobject.g_object_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
    data = pem_text.encode() + b"\0"
    array = glib.g_byte_array_new()
    glib.g_byte_array_append(array, data, len(data))
    gobject.g_object_set(gobject_pointer(session), b"ca", array, None)
    glib.g_byte_array_unref(array)


def apply_vv(session, path):
    """Configure session from a .vv file as remote-viewer does (see the module docstring)."""
    keyfile = GLib.KeyFile()
    keyfile.load_from_file(path, GLib.KeyFileFlags.NONE)
    keys = set(keyfile.get_keys(VV_GROUP)[0])  # PyGObject hides g_key_file_has_key

    def has(key):
        return key in keys
    if keyfile.get_string(VV_GROUP, "type") != "spice":
        raise ValueError("%s: type is not spice" % path)
    for key in ("host", "username", "password", "proxy"):
        if has(key):
            session.set_property(key, keyfile.get_string(VV_GROUP, key))
    for key in ("port", "tls-port"):
        if has(key):
            session.set_property(key, str(keyfile.get_integer(VV_GROUP, key)))
    if has("ca"):
        set_session_ca(session, keyfile.get_string(VV_GROUP, "ca"))
    if has("host-subject"):
        session.set_property("cert-subject", keyfile.get_string(VV_GROUP, "host-subject"))
    if has("secure-channels"):
        session.set_property("secure-channels", keyfile.get_string_list(VV_GROUP, "secure-channels"))
    if has("delete-this-file") and keyfile.get_boolean(VV_GROUP, "delete-this-file"):
        os.unlink(path)


def channel_name(channel):
    """'main', 'display', 'inputs', ... from the channel-type property."""
    try:
        return Spice.Channel.type_to_string(channel.get_property("channel-type"))
    except Exception:  # pragma: no cover - only for very old bindings
        return GObject.type_name(channel)


class PrimarySurface(ctypes.Structure):
    # SpiceDisplayPrimary as laid out in C. PyGObject misreads it (the enum 'format' field is
    # typed void in the GIR, which shifts every later field), so it is read through ctypes.
    _fields_ = [
        ("format", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("stride", ctypes.c_int),
        ("shmid", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("marked", ctypes.c_int),
    ]


def primary_size(display_channel):
    """(width, height) of the display channel's primary surface, or None."""
    try:
        c_channel = gobject_pointer(display_channel)
        lib = ctypes.CDLL("libspice-client-glib-2.0.so.8")
        lib.spice_display_channel_get_primary.argtypes = [
            ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(PrimarySurface)]
        lib.spice_display_channel_get_primary.restype = ctypes.c_int
        surface = PrimarySurface()
        if lib.spice_display_channel_get_primary(c_channel, 0, ctypes.byref(surface)) and surface.data:
            return surface.width, surface.height
    except Exception:
        pass
    return None


class Client:
    """One SPICE session driven by a GLib main loop; the outcome ends up in self.rc/self.status."""

    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.loop = GLib.MainLoop()
        self.session = Spice.Session()
        self.rc = None
        self.status = None
        self.error = ""
        self.main_opened_at = None
        self.frame_at = None
        self.primary = None
        self.opened = []          # channel names in the order they reported OPENED
        self.inputs = None
        self.phase = "connecting"  # connecting -> holding -> roundtrip -> done
        self.roundtrip_reset_seen = False
        self.hold_updates = 0
        self.roundtrip_at = None
        self.timeout_id = None
        self.inputs_sent = 0       # --input-every key presses sent during the hold

    # ---- helpers -------------------------------------------------------------------------
    def log(self, *parts):
        if self.args.verbose:
            print("[%7.3f]" % (time.monotonic() - self.t0), *parts, file=sys.stderr, flush=True)

    def finish(self, rc, status, error=""):
        if self.rc is not None:
            return
        self.rc, self.status, self.error = rc, status, error
        self.phase = "done"
        self.loop.quit()

    def elapsed(self):
        return time.monotonic() - self.t0

    # ---- configuration -------------------------------------------------------------------
    def configure(self):
        a, s = self.args, self.session
        if a.vv:
            apply_vv(s, a.vv)
        if a.uri:
            s.set_property("uri", a.uri)
        if a.host:
            s.set_property("host", a.host)
        if a.port:
            s.set_property("port", str(a.port))
        if a.tls_port:
            s.set_property("tls-port", str(a.tls_port))
        if a.unix:
            s.set_property("unix-path", a.unix)
        if a.ca_file:
            s.set_property("ca-file", a.ca_file)
        if a.username is not None:
            s.set_property("username", a.username)
        if a.password is not None:
            s.set_property("password", a.password)
        # No audio, USB redirection or smartcard: the tests are about the console path.
        s.set_property("enable-audio", False)
        s.set_property("enable-usbredir", False)
        GObject.Object.connect(s, "channel-new", self.on_channel_new)
        GObject.Object.connect(s, "disconnected", self.on_disconnected)

    # ---- signal handlers -----------------------------------------------------------------
    def on_channel_new(self, session, channel):
        name = channel_name(channel)
        self.log("channel-new", name, "id", channel.get_property("channel-id"))
        GObject.Object.connect(channel, "channel-event", self.on_channel_event)
        if isinstance(channel, Spice.MainChannel):
            return  # the session connects the main channel itself
        if isinstance(channel, Spice.DisplayChannel):
            GObject.Object.connect(channel, "display-primary-create", self.on_primary_create)
            GObject.Object.connect(channel, "display-invalidate", self.on_invalidate)
        if isinstance(channel, Spice.InputsChannel):
            self.inputs = channel
        # spice_channel_connect(); Spice.Channel.connect shadows GObject.Object.connect.
        if not Spice.Channel.connect(channel):
            self.finish(RC_CONNECT, "connect-failed", "spice_channel_connect(%s) failed" % name)

    def on_channel_event(self, channel, event):
        name = channel_name(channel)
        err = channel.get_error()
        self.log(name, "event", event.value_nick, err.message if err else "")
        if event == Spice.ChannelEvent.OPENED:
            self.opened.append(name)
            if isinstance(channel, Spice.MainChannel) and self.main_opened_at is None:
                self.main_opened_at = self.elapsed()
            return
        rc = EVENT_RC.get(event)
        if rc is None:
            return  # NONE / SWITCHING (e.g. NEED_SECURED upgrade or migration)
        detail = "%s on %s channel" % (event.value_nick, name)
        if err is not None:
            detail += ": " + err.message
        self.finish(rc, event.value_nick, detail)

    def on_disconnected(self, session):
        self.log("session disconnected")
        self.finish(RC_CLOSED, "disconnected", "session disconnected (phase %s)" % self.phase)

    def on_primary_create(self, channel, fmt, width, height, stride, shmid, imgdata):
        self.log("display-primary-create", width, height, "phase", self.phase)
        self.primary = (width, height)
        if self.phase == "roundtrip":
            self.roundtrip_reset_seen = True  # the guest reset recreated the QXL primary surface

    def on_invalidate(self, channel, x, y, w, h):
        self.log("display-invalidate", x, y, w, h, "phase", self.phase)
        if self.phase == "connecting":
            if self.primary is None:
                self.primary = primary_size(channel)
            if self.primary is None:
                return  # pixels without a primary surface are not a frame yet
            self.frame_at = self.elapsed()
            self.after_first_frame()
        elif self.phase == "holding":
            self.hold_updates += 1  # e.g. the blinking text cursor of the SeaBIOS screen
        elif self.phase == "roundtrip" and self.roundtrip_reset_seen:
            self.roundtrip_at = self.elapsed()
            self.finish(RC_OK, "ok")

    # ---- phases after the first frame ----------------------------------------------------
    def after_first_frame(self):
        a = self.args
        if self.timeout_id is not None:
            GLib.source_remove(self.timeout_id)
            self.timeout_id = None
        if a.hold_stdin:
            self.phase = "holding"
            print("READY frame=%.3fs" % self.frame_at, flush=True)
            if a.input_every > 0:
                GLib.timeout_add(int(a.input_every * 1000), self.on_input_tick)
            GLib.io_add_watch(sys.stdin.fileno(), GLib.PRIORITY_DEFAULT,
                              GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR,
                              self.on_stdin)
        else:
            self.end_hold()

    def on_stdin(self, fd, condition):
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if data:
            return True  # ignore anything written; only EOF matters
        self.end_hold()
        return False

    def end_hold(self):
        if self.phase == "done":
            return False
        if not self.args.roundtrip:
            self.finish(RC_OK, "ok")
            return False
        if self.inputs is None:
            self.finish(RC_CLOSED, "no-inputs", "no inputs channel for the round trip")
            return False
        self.phase = "roundtrip"
        self.log("sending Ctrl+Alt+Del")
        Spice.InputsChannel.key_press(self.inputs, SCANCODE_CTRL)
        Spice.InputsChannel.key_press(self.inputs, SCANCODE_ALT)
        Spice.InputsChannel.key_press(self.inputs, SCANCODE_DELETE)
        Spice.InputsChannel.key_release(self.inputs, SCANCODE_DELETE)
        Spice.InputsChannel.key_release(self.inputs, SCANCODE_ALT)
        Spice.InputsChannel.key_release(self.inputs, SCANCODE_CTRL)
        self.timeout_id = GLib.timeout_add(int(self.args.timeout * 1000), self.on_roundtrip_timeout)
        return False

    def on_input_tick(self):
        """--input-every: one Shift press and release while holding (only once the inputs
        channel is open; spice-gtk drops input on a channel that is not ready)."""
        if self.phase != "holding":
            return False
        if self.inputs is not None and "inputs" in self.opened:
            Spice.InputsChannel.key_press(self.inputs, SCANCODE_SHIFT)
            Spice.InputsChannel.key_release(self.inputs, SCANCODE_SHIFT)
            self.inputs_sent += 1
        return True

    def on_roundtrip_timeout(self):
        self.finish(RC_TIMEOUT, "timeout", "no redraw within %ss after Ctrl+Alt+Del" % self.args.timeout)
        return False

    def on_timeout(self):
        self.timeout_id = None
        self.finish(RC_TIMEOUT, "timeout", "no display frame within %ss" % self.args.timeout)
        return False

    # ---- run -----------------------------------------------------------------------------
    def run(self):
        self.configure()
        self.timeout_id = GLib.timeout_add(int(self.args.timeout * 1000), self.on_timeout)
        # spice_session_connect(); Spice.Session.connect shadows GObject.Object.connect.
        if not Spice.Session.connect(self.session):
            self.finish(RC_CONNECT, "connect-failed", "spice_session_connect() returned FALSE")
        else:
            self.loop.run()
        Spice.Session.disconnect(self.session)
        # Let the disconnect reach the sockets before the process exits.
        context = GLib.MainContext.default()
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline and context.pending():
            context.iteration(False)
        return self.rc

    def result_line(self):
        def fmt(t):
            return "%.3fs" % t if t is not None else "-"
        primary = "%dx%d" % self.primary if self.primary else "-"
        line = "RESULT %s rc=%d main_opened=%s frame=%s primary=%s channels=%s" % (
            self.status, self.rc, fmt(self.main_opened_at), fmt(self.frame_at), primary,
            ",".join(self.opened) or "-")
        if self.args.hold_stdin:
            line += " hold_updates=%d" % self.hold_updates
        if self.args.roundtrip:
            line += " roundtrip=%s" % fmt(self.roundtrip_at)
        if self.args.input_every > 0:
            line += " inputs_sent=%d" % self.inputs_sent
        if self.error:
            line += " error=%s" % self.error.replace("\n", " ")
        return line


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m vmgate_e2e.spice_client",
                                description="headless spice-gtk client for vmgate e2e tests")
    p.add_argument("--host")
    p.add_argument("--port", type=int, help="plain SPICE port")
    p.add_argument("--tls-port", type=int, help="TLS SPICE port")
    p.add_argument("--uri", help="spice://HOST?port=P&tls-port=T (applied before --host/--port)")
    p.add_argument("--unix", help="unix socket path (QEMU directly, for harness self-tests)")
    p.add_argument("--vv", metavar="FILE", help="a remote-viewer connection file, read as remote-viewer does")
    p.add_argument("--ca-file")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--hold-stdin", action="store_true")
    p.add_argument("--roundtrip", action="store_true")
    p.add_argument("--input-every", type=float, default=0.0, metavar="SECONDS",
                   help="during a hold, press and release Shift through the inputs channel every "
                        "SECONDS (client bytes on the inputs channel; the SeaBIOS screen ignores them)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if not (args.vv or args.uri or args.unix or (args.host and (args.port or args.tls_port))):
        p.error("give --vv, --uri, --unix, or --host with --port and/or --tls-port")
    return args


def keep_stdout_for_results():
    """GLib's default log handler writes debug and info messages (SPICE_DEBUG=1) to fd 1. Keep
    fd 1 for our READY/RESULT lines only: Python's stdout moves to a duplicate of it, and fd 1
    becomes stderr, where library output belongs."""
    sys.stdout.flush()
    results = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(results, "w", buffering=1)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    keep_stdout_for_results()
    client = Client(args)
    try:
        rc = client.run()
    except Exception as exc:  # report instead of a traceback-only exit
        client.rc, client.status, client.error = RC_USAGE, "internal-error", repr(exc)
        rc = RC_USAGE
    print(client.result_line(), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""A raw RFB (VNC) client socket for tests that need bytes no real viewer sends: wrong version
strings, security types that were not offered, truncated or stalled handshakes, VeNCrypt subtypes
chosen by hand, Plain credentials, a ClientInit with a chosen shared flag.

It speaks the handshake as rfb-protocol.md describes it (all integers big-endian):
    <- "RFB 003.008\\n"          -> version (12 bytes)                                (section 1.1)
    <- u8 n, n x u8 types        (3.7/3.8; n = 0: u32 length + reason, then close)    (1.2)
       u32 type                  (3.3: the server decides; 0 = failure + reason)
    -> u8 chosen type
    VNC auth: <- 16-byte challenge, -> DES response                                   (2)
    VeNCrypt: <- u8 0, u8 2; -> u8 0, u8 2; <- u8 status (0 = OK); <- u8 m, m x u32 subtypes;
              -> u32 subtype; <- u8 ack (1 = OK, TLS/X509 subtypes only); TLS handshake    (3.1)
    Plain:    -> u32 user length, u32 password length, user, password                  (3.3)
    <- u32 SecurityResult (0 OK, 1 failed); failed and 3.8: u32 length + reason          (1.3)
    -> u8 shared flag (ClientInit); <- ServerInit: u16 w, u16 h, 16-byte pixel format,
       u32 name length, name                                                            (5)

Every read has a deadline and reports a closed connection instead of hanging: the read_* methods
raise AssertionError with what did arrive, the *_or_none ones return None on EOF/reset.
"""

import socket
import ssl
import struct
import time

from . import harness as h

RFB_33 = b"RFB 003.003\n"
RFB_37 = b"RFB 003.007\n"
RFB_38 = b"RFB 003.008\n"

SEC_INVALID, SEC_NONE, SEC_VNC, SEC_TLS, SEC_VENCRYPT, SEC_SASL = 0, 1, 2, 18, 19, 20

VENCRYPT_PLAIN = 256
VENCRYPT_TLSNONE, VENCRYPT_TLSVNC, VENCRYPT_TLSPLAIN = 257, 258, 259
VENCRYPT_X509NONE, VENCRYPT_X509VNC, VENCRYPT_X509PLAIN = 260, 261, 262
VENCRYPT_X509SASL, VENCRYPT_TLSSASL = 263, 264  # QEMU/gtk-vnc numbering (rfb-protocol.md 3.2)
VENCRYPT_X509 = (VENCRYPT_X509NONE, VENCRYPT_X509VNC, VENCRYPT_X509PLAIN, VENCRYPT_X509SASL)
VENCRYPT_ANON_TLS = (VENCRYPT_TLSNONE, VENCRYPT_TLSVNC, VENCRYPT_TLSPLAIN, VENCRYPT_TLSSASL)

RESULT_OK, RESULT_FAILED, RESULT_TOO_MANY = 0, 1, 2


def _mirror_bits(byte):
    return int("{:08b}".format(byte)[::-1], 2)


def vnc_auth_response(password, challenge):
    """DES response to a 16-byte VNC-auth challenge (rfb-protocol.md section 2): the password cut
    to 8 bytes and NUL-padded, every key byte bit-mirrored, single DES-ECB on both halves."""
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    try:  # cryptography >= 43 moved TripleDES to the "decrepit" package
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    if isinstance(password, str):
        password = password.encode()
    key = bytes(_mirror_bits(b) for b in password[:8].ljust(8, b"\0"))
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()  # K1 = K2 = K3 is single DES
    return encryptor.update(bytes(challenge)) + encryptor.finalize()


class SecurityResult:
    """A SecurityResult: status (0 OK, 1 failed, None if the server closed instead) and, for a
    failure at 3.8, the reason exactly as sent (`reason`, bytes: QEMU counts a trailing NUL) and
    as text (`text`: trailing NULs dropped, decoded leniently)."""

    def __init__(self, status, reason=None):
        self.status = status
        self.reason = reason
        self.text = None if reason is None else reason.rstrip(b"\0").decode("utf-8", "replace")

    def __repr__(self):
        return "SecurityResult(status=%r, reason=%r)" % (self.status, self.reason)


class ServerInit:
    def __init__(self, width, height, pixel_format, name):
        self.width = width
        self.height = height
        self.pixel_format = pixel_format  # the 16 raw bytes
        self.name = name                  # bytes

    @property
    def bits_per_pixel(self):
        return self.pixel_format[0]

    def __repr__(self):
        return "ServerInit(%dx%d, bpp=%d, name=%r)" % (self.width, self.height, self.bits_per_pixel, self.name)


class RawRfb(h.RawSocket):
    """One RFB connection to a unix socket or host:port. Use as a context manager (closes it)."""

    def __init__(self, unix=None, port=None, host="127.0.0.1", timeout=8.0):
        self.timeout = timeout
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)
            self.local_port = None
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
            self.local_port = self.sock.getsockname()[1]  # to find this connection in audit records
        self.server_version = None

    # ---- low level ---------------------------------------------------------------------------
    def read_u8(self):
        return self.read_exact(1)[0]

    def read_u16(self):
        return struct.unpack(">H", self.read_exact(2))[0]

    def read_u32(self):
        return struct.unpack(">I", self.read_exact(4))[0]

    def read_exact_or_none(self, n):
        """n bytes, or None if the server closed (EOF, reset, TLS EOF) before sending any of them.
        A close in the middle of the n bytes is an AssertionError."""
        deadline = time.monotonic() + self.timeout
        buf = b""
        while len(buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for %d bytes; got %r" % (n, buf))
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            except ssl.SSLError as exc:
                if "EOF" not in str(exc):
                    raise
                chunk = b""
            if not chunk:
                if buf:
                    raise AssertionError("connection closed after %d of %d bytes: %r" % (len(buf), n, buf))
                return None
            buf += chunk
        return buf

    def read_u32_or_none(self):
        data = self.read_exact_or_none(4)
        return None if data is None else struct.unpack(">I", data)[0]

    def read_rest(self, timeout=3.0):
        """Whatever else the server sends until it closes: (data, how) with how in
        {"eof", "reset", "timeout", "overflow"}."""
        data, how, _ = h.recv_until_eof(self.sock, timeout)
        return data, how

    def is_closed_by_server(self, timeout=3.0):
        """True if the server closes the connection within `timeout` without sending anything more."""
        data, how = self.read_rest(timeout)
        return how in ("eof", "reset") and data == b""

    # ---- version and security types ------------------------------------------------------------
    def read_version(self):
        """The server's 12-byte ProtocolVersion (e.g. b"RFB 003.008\\n")."""
        self.server_version = self.read_exact(12)
        return self.server_version

    def send_version(self, version=RFB_38):
        self.send(version)

    def read_reason(self):
        length = self.read_u32()
        if length > 1 << 16:
            raise AssertionError("reason length %d is not plausible" % length)
        return self.read_exact(length)

    def read_security_types(self):
        """3.7/3.8: the offered types as a list, or (if the server sent n = 0) ([], reason bytes).
        Returns (types, reason)."""
        count = self.read_u8()
        if count == 0:
            return [], self.read_reason()
        return list(self.read_exact(count)), None

    def read_security_type_33(self):
        """3.3: (the server's u32 security type, reason bytes if it is 0 = failure)."""
        value = self.read_u32()
        return value, (self.read_reason() if value == SEC_INVALID else None)

    def choose(self, security_type):
        self.send(bytes([security_type]))

    def read_security_result(self, with_reason=True):
        """SecurityResult (section 1.3): status 0 OK, else failure with a reason when `with_reason`
        (3.8). status None: the server closed the connection instead of answering."""
        status = self.read_u32_or_none()
        if status is None or status == RESULT_OK or not with_reason:
            return SecurityResult(status)
        reason = self.read_exact_or_none(4)
        if reason is None:
            return SecurityResult(status, None)
        (length,) = struct.unpack(">I", reason)
        if length > 1 << 16:
            raise AssertionError("reason length %d is not plausible" % length)
        return SecurityResult(status, self.read_exact(length))

    # ---- authentication ------------------------------------------------------------------------
    def vnc_auth(self, password):
        """Read the 16-byte challenge and answer it for `password` (then read_security_result())."""
        challenge = self.read_exact(16)
        self.send(vnc_auth_response(password, challenge))
        return challenge

    def vencrypt_start(self, major=0, minor=2):
        """VeNCrypt version exchange: returns ((server major, minor), status byte); status 0 = OK."""
        server = tuple(self.read_exact(2))
        self.send(bytes([major, minor]))
        status = self.read_exact_or_none(1)
        return server, (None if status is None else status[0])

    def read_vencrypt_subtypes(self):
        count = self.read_u8()
        return [struct.unpack(">I", self.read_exact(4))[0] for _ in range(count)]

    def choose_subtype(self, subtype, read_ack=None):
        """Send the u32 subtype; for TLS/X509 subtypes (or read_ack=True) read the ack byte and
        return it (1 = accepted; None if the server closed instead)."""
        self.send(struct.pack(">I", subtype))
        if read_ack is None:
            read_ack = subtype in VENCRYPT_X509 or subtype in VENCRYPT_ANON_TLS
        if not read_ack:
            return None
        ack = self.read_exact_or_none(1)
        return None if ack is None else ack[0]

    def start_tls(self, ca_file=None, server_hostname="localhost", client_cert=None, client_key=None,
                  verify=True):
        """Switch this connection to TLS (after an accepted X509 subtype). verify=False skips the
        certificate and name checks (for tests about what comes after the handshake)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify:
            ctx.load_verify_locations(cafile=ca_file)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if client_cert:
            ctx.load_cert_chain(client_cert, client_key)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        return self.sock

    def plain_auth(self, username, password):
        """VeNCrypt Plain credentials (then read_security_result())."""
        user = username.encode() if isinstance(username, str) else username
        pw = password.encode() if isinstance(password, str) else password
        self.send(struct.pack(">II", len(user), len(pw)) + user + pw)

    # ---- initialisation ------------------------------------------------------------------------
    def client_init(self, shared=True):
        """Send ClientInit and read ServerInit."""
        self.send(bytes([1 if shared else 0]))
        width, height = struct.unpack(">HH", self.read_exact(4))
        pixel_format = self.read_exact(16)
        length = self.read_u32()
        if length > 1 << 16:
            raise AssertionError("desktop name length %d is not plausible" % length)
        return ServerInit(width, height, pixel_format, self.read_exact(length))

    def handshake_none(self, shared=True):
        """The whole 3.8 handshake with security None: returns ServerInit."""
        self.read_version()
        self.send_version(RFB_38)
        types, reason = self.read_security_types()
        if SEC_NONE not in types:
            raise AssertionError("security None not offered: %r %r" % (types, reason))
        self.choose(SEC_NONE)
        result = self.read_security_result()
        if result.status != RESULT_OK:
            raise AssertionError("SecurityResult for None: %r" % result)
        return self.client_init(shared)

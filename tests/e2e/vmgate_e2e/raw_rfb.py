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

    SASL:     <- u32 len, mechlist; -> u32 len, mechname; -> u32 len, data (+NUL);
              <- u32 len, data (+NUL), u8 complete; (-> STEP ...) <- SecurityResult           (4.2)
    data phase: -> FramebufferUpdateRequest (type 3); <- FramebufferUpdate (type 0)       (5)

Every read has a deadline and reports a closed connection instead of hanging: the read_* methods
raise AssertionError with what did arrive, the *_or_none ones return None on EOF/reset.

TLS: start_tls() wraps the socket in Python's ssl.SSLSocket. start_tls(memory_bio=True) runs TLS
through ssl.MemoryBIO instead (MemoryBioTls), which can also do what an SSLSocket cannot: stop
after the ClientHello (a stalled handshake), and half-close the TCP connection (half_close(): FIN,
no close_notify) while still reading and decrypting what the server sends afterwards.
client_hello() gives the bytes of a ClientHello without any connection (to send them where no
TLS is expected, or too early).
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

VENCRYPT_VERSION_OK = 0   # rfb-protocol.md 3.1 row 3: 0 = OK (non-zero refuses)
VENCRYPT_ACK_OK = 1       # 3.1 row 7: 1 = accepted (QEMU answers 0 to a subtype it did not offer)

MSG_FRAMEBUFFER_UPDATE = 0           # server -> client
MSG_FRAMEBUFFER_UPDATE_REQUEST = 3   # client -> server


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


def tls_client_context(ca_file=None, verify=True, client_cert=None, client_key=None):
    """An ssl.SSLContext for the client side of a VeNCrypt X509 subtype. verify=False skips the
    certificate and name checks (for tests about what comes after the handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile=ca_file)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert:
        ctx.load_cert_chain(client_cert, client_key)
    return ctx


def client_hello(server_hostname="localhost"):
    """The bytes of a TLS ClientHello (what a TLS client sends first), made without a connection."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls_records(data):
    """Split bytes into TLS records: [(content type, version, payload)]. AssertionError if the
    bytes are not a sequence of whole TLS records (e.g. cleartext where TLS was expected)."""
    records = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 5:
            raise AssertionError("truncated TLS record header at %d: %r" % (pos, data[pos:pos + 16]))
        content_type, version, length = struct.unpack(">BHH", data[pos:pos + 5])
        if content_type not in (20, 21, 22, 23) or version >> 8 != 3 or len(data) - pos - 5 < length:
            raise AssertionError("not a TLS record at %d: %r" % (pos, data[pos:pos + 16]))
        records.append((content_type, version, data[pos + 5:pos + 5 + length]))
        pos += 5 + length
    return records


class MemoryBioTls:
    """The client side of TLS on a connected socket, run through ssl.MemoryBIO. Socket-like
    (sendall, recv, settimeout, gettimeout, getsockname, shutdown, close), so RawRfb and
    harness.recv_until_eof use it as they use a socket. Unlike ssl.SSLSocket it can
      * start the handshake and stop after the ClientHello (send_client_hello()),
      * half-close: shutdown(SHUT_WR) sends a TCP FIN without close_notify, and recv() still
        decrypts what the server sends afterwards (b"" after its close_notify; an
        ssl.SSLEOFError, which harness.recv_until_eof counts as EOF, after a bare TCP close).
    `raw` is the underlying socket."""

    def __init__(self, sock, context, server_hostname="localhost"):
        self.raw = sock
        self.timeout = sock.gettimeout()
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.raw.sendall(data)

    def _fill(self):
        """One read from the socket into the TLS engine (socket.timeout propagates)."""
        self.raw.settimeout(self.timeout)
        data = self.raw.recv(65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def client_hello(self):
        """Start the handshake and return the ClientHello without sending it."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read()

    def send_client_hello(self):
        self.raw.sendall(self.client_hello())

    def do_handshake(self):
        """Run (or finish) the handshake; ssl.SSLError on failure, socket.timeout if stuck."""
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()

    def sendall(self, data):
        self.tls.write(data)
        self._flush()

    def recv(self, n):
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
            except ssl.SSLZeroReturnError:  # close_notify
                return b""

    def settimeout(self, timeout):
        self.timeout = timeout

    def gettimeout(self):
        return self.timeout

    def getsockname(self):
        return self.raw.getsockname()

    def shutdown(self, how):
        self.raw.shutdown(how)

    def close(self):
        self.raw.close()


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
    """One RFB connection to a unix socket or host:port. Use as a context manager (closes it).
    `source`: the local address to connect from (e.g. "127.0.0.2", another loopback address,
    for per-source limits)."""

    def __init__(self, unix=None, port=None, host="127.0.0.1", timeout=8.0, source=None):
        self.timeout = timeout
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)
            self.local_port = None
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout,
                                                 source_address=(source, 0) if source else None)
            self.local_port = self.sock.getsockname()[1]  # to find this connection in audit records
        self.server_version = None

    def half_close(self):
        """Send FIN (no more client bytes) but keep reading: what the server sends after it sees
        the end. Under TLS only with start_tls(memory_bio=True) (no close_notify is sent)."""
        if isinstance(self.sock, ssl.SSLSocket):
            raise TypeError("ssl.SSLSocket cannot half-close; use start_tls(memory_bio=True)")
        self.sock.shutdown(socket.SHUT_WR)

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
                  verify=True, memory_bio=False, handshake=True):
        """Switch this connection to TLS (after an accepted X509 subtype). verify=False skips the
        certificate and name checks (for tests about what comes after the handshake).
        memory_bio=True: TLS through MemoryBioTls (half_close() possible); with handshake=False
        it only sends the ClientHello and leaves the handshake there (self.sock.do_handshake()
        finishes it)."""
        ctx = tls_client_context(ca_file, verify, client_cert, client_key)
        if not memory_bio:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
            return self.sock
        tls = MemoryBioTls(self.sock, ctx, server_hostname)
        self.sock = tls
        if handshake:
            tls.do_handshake()
        else:
            tls.send_client_hello()
        return tls

    def vencrypt_x509(self, subtype, ca_file=None, version=RFB_38, **tls_kw):
        """The whole way into an X509 VeNCrypt subtype: version, type 19, VeNCrypt 0.2, the
        subtype, its ack, TLS (start_tls keywords). AssertionError on any other answer. Returns
        the offered subtypes."""
        self.read_version()
        self.send_version(version)
        types, reason = self.read_security_types()
        if SEC_VENCRYPT not in types:
            raise AssertionError("VeNCrypt not offered: %r %r" % (types, reason))
        self.choose(SEC_VENCRYPT)
        server, status = self.vencrypt_start()
        if status != VENCRYPT_VERSION_OK:
            raise AssertionError("VeNCrypt version %r, status %r" % (server, status))
        subtypes = self.read_vencrypt_subtypes()
        ack = self.choose_subtype(subtype, read_ack=True)
        if ack != VENCRYPT_ACK_OK:
            raise AssertionError("VeNCrypt subtype %d of %r: ack %r" % (subtype, subtypes, ack))
        self.start_tls(ca_file, **tls_kw)
        return subtypes

    def plain_auth(self, username, password):
        """VeNCrypt Plain credentials (then read_security_result())."""
        user = username.encode() if isinstance(username, str) else username
        pw = password.encode() if isinstance(password, str) else password
        self.send(struct.pack(">II", len(user), len(pw)) + user + pw)

    # ---- SASL (rfb-protocol.md 4.2) -------------------------------------------------------------
    @staticmethod
    def sasl_data(data):
        """SASL framing of client data: None -> u32 0; bytes -> u32 len+1, the bytes, a NUL."""
        if data is None:
            return struct.pack(">I", 0)
        if isinstance(data, str):
            data = data.encode()
        return struct.pack(">I", len(data) + 1) + data + b"\0"

    def read_sasl_mechlist(self):
        """The server's mechanism list as a list of names."""
        length = self.read_u32()
        if length > 4096:
            raise AssertionError("SASL mechlist length %d is not plausible" % length)
        return self.read_exact(length).decode().split(",")

    def sasl_start(self, mechanism, data=None):
        """The START message: mechanism name, then client data (see sasl_data)."""
        name = mechanism.encode() if isinstance(mechanism, str) else mechanism
        self.send(struct.pack(">I", len(name)) + name + self.sasl_data(data))

    def sasl_step(self, data=None):
        self.send(self.sasl_data(data))

    def read_sasl_server_data(self):
        """(data without its NUL or None for length 0, complete byte)."""
        length = self.read_u32()
        if length > 1 << 20:
            raise AssertionError("SASL server data length %d is not plausible" % length)
        data = self.read_exact(length) if length else None
        if data is not None:
            if data[-1:] != b"\0":
                raise AssertionError("SASL server data without its NUL: %r" % data)
            data = data[:-1]
        return data, self.read_u8()

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

    # ---- data phase ----------------------------------------------------------------------------
    def framebuffer_update_request(self, x=0, y=0, width=1, height=1, incremental=False):
        self.send(struct.pack(">BBHHHH", MSG_FRAMEBUFFER_UPDATE_REQUEST, 1 if incremental else 0,
                              x, y, width, height))

    def read_framebuffer_update_header(self):
        """The message type byte (0 = FramebufferUpdate), the padding, the rectangle count:
        returns the count. AssertionError for another message type."""
        message_type, _, count = struct.unpack(">BBH", self.read_exact(4))
        if message_type != MSG_FRAMEBUFFER_UPDATE:
            raise AssertionError("expected FramebufferUpdate, got message type %d" % message_type)
        return count

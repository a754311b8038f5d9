"""A small raw SPICE link client over TLS (Python ssl), for tests that need links spice-gtk never
sends: a secondary channel with a chosen connection_id, a main channel with a non-zero one.

It speaks the link phase exactly as spice-protocol.md describes it and spice-gtk does it:
    link header + SpiceLinkMess + caps         (section 2.3)
    <- link header + SpiceLinkReply + caps     (2.4; error replies are the full 194 bytes)
    u32 auth mechanism (1 ticket, 2 SASL)      (3.2)
    ticket: 128-byte RSA-OAEP(SHA-1) of password + NUL (section 4)
    SASL PLAIN: mechlist, mechname, client-start with its trailing NUL, server reply + complete,
                u32 SASL result                (5.1, 5.4)
    <- u32 final link result                   (0 OK, 7 permission denied, 8 bad connection id, ...)

Every read has a deadline; a closed connection is reported as None / an EOF marker, never hangs.
"""

import socket
import ssl
import struct
import time

from . import harness as h

CHANNEL_MAIN = 1
CHANNEL_DISPLAY = 2

AUTH_SPICE = 1  # mechanism word for the RSA ticket
AUTH_SASL = 2

COMMON_CAP_AUTH_SELECTION = 1 << 0
COMMON_CAP_AUTH_SPICE = 1 << 1
COMMON_CAP_AUTH_SASL = 1 << 2
COMMON_CAP_MINI_HEADER = 1 << 3
SPICE_GTK_COMMON_CAPS = COMMON_CAP_AUTH_SELECTION | COMMON_CAP_AUTH_SASL | COMMON_CAP_MINI_HEADER  # 0x0D

LINK_ERR_BAD_CONNECTION_ID = 8

# channel caps sent by default: the main channel's as spice-gtk sends them (2.7), none otherwise
DEFAULT_CHANNEL_CAPS = {CHANNEL_MAIN: (0x0F,)}


class LinkReply:
    """The server's answer to the link message."""

    def __init__(self, raw):
        self.raw = raw  # header + reply + caps, exactly as received
        _, self.major, self.minor, self.size, self.error, _ = h.parse_link_reply(raw)
        self.pub_key = raw[20:20 + 162]
        self.num_common, self.num_channel, self.caps_offset = struct.unpack("<III", raw[182:194])
        caps = raw[16 + self.caps_offset:]
        words = [struct.unpack("<I", caps[i:i + 4])[0] for i in range(0, len(caps) - 3, 4)]
        self.common_caps = words[:self.num_common]
        self.channel_caps = words[self.num_common:self.num_common + self.num_channel]

    def has_common(self, bit):
        return bool(self.common_caps) and bool(self.common_caps[0] & bit)


class RawSpiceLink(h.RawSocket):
    """One TLS connection = one SPICE channel. Use as a context manager (closes the socket)."""

    def __init__(self, port, ca_file, server_hostname="localhost", host="127.0.0.1", timeout=8.0):
        self.timeout = timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        self.local_port = raw.getsockname()[1]
        ctx = ssl.create_default_context(cafile=ca_file)
        self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
        self.reply = None

    # ---- low level ---------------------------------------------------------------------------
    def read_u32_or_none(self):
        """A u32, or None if the server closed the connection (EOF/reset) before sending it."""
        deadline = time.monotonic() + self.timeout
        buf = b""
        while len(buf) < 4:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for a u32; got %r" % buf)
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(4 - len(buf))
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return None
            except ssl.SSLError as exc:
                if "EOF" in str(exc):
                    return None
                raise
            if not chunk:
                if buf:
                    raise AssertionError("connection closed inside a u32: %r" % buf)
                return None
            buf += chunk
        return struct.unpack("<I", buf)[0]

    def read_rest(self, timeout=3.0):
        """Whatever else the server sends until it closes (data, how)."""
        data, how, _ = h.recv_until_eof(self.sock, timeout)
        return data, how

    # ---- link ----------------------------------------------------------------------------------
    def link(self, channel_type, connection_id=0, channel_id=0, common_caps=SPICE_GTK_COMMON_CAPS,
             channel_caps=None):
        """Send the link message and read the whole reply (header + reply + caps). Returns a
        LinkReply; reply.error != 0 means a link error reply (always 194 bytes)."""
        if channel_caps is None:
            channel_caps = DEFAULT_CHANNEL_CAPS.get(channel_type, ())
        self.send(h.link_message(channel_type=channel_type, channel_id=channel_id,
                                 connection_id=connection_id, common_caps=(common_caps,),
                                 channel_caps=tuple(channel_caps)))
        header = self.read_exact(h.LINK_HEADER_SIZE)
        (size,) = struct.unpack("<I", header[12:16])
        if header[:4] != h.SPICE_MAGIC or not h.LINK_REPLY_SIZE <= size <= 4096:
            raise AssertionError("bad link reply header: %r" % header)
        self.reply = LinkReply(header + self.read_exact(size))
        return self.reply

    # ---- authentication ------------------------------------------------------------------------
    def sasl_plain(self, user, password, authzid=""):
        """SASL PLAIN (5.4). Returns (complete, sasl_result): complete is the server's flag
        (1 = done), sasl_result the u32 that follows it (0 = OK), or None if the server closed
        the connection instead (how spice-server and vmgate refuse a wrong password)."""
        self.send(struct.pack("<I", AUTH_SASL))
        mechlist_len = self.read_u32_or_none()
        if mechlist_len is None:
            raise AssertionError("connection closed instead of a SASL mechanism list")
        mechlist = self.read_exact(mechlist_len).decode()
        if ",PLAIN," not in "," + mechlist.strip(",") + ",":
            raise AssertionError("PLAIN not offered: %r" % mechlist)
        self.send(struct.pack("<I", 5) + b"PLAIN")
        payload = ("%s\0%s\0%s" % (authzid, user, password)).encode() + b"\0"  # data + trailing NUL
        self.send(struct.pack("<I", len(payload)) + payload)
        out_len = self.read_u32_or_none()
        if out_len is None:
            return None, None
        if out_len:
            self.read_exact(out_len)
        complete = self.read_exact(1)[0]
        if complete != 1:
            return complete, None
        return complete, self.read_u32_or_none()

    def ticket(self, password):
        """Ticket authentication (section 4): mechanism 1 if the server has AUTH_SELECTION, then
        the password + NUL encrypted with RSA-OAEP(SHA-1) under the reply's public key."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
        key = serialization.load_der_public_key(bytes(self.reply.pub_key))
        ciphertext = key.encrypt(password.encode() + b"\0", padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
        assert len(ciphertext) == 128, len(ciphertext)
        word = struct.pack("<I", AUTH_SPICE) if self.reply.has_common(COMMON_CAP_AUTH_SELECTION) else b""
        self.send(word + ciphertext)

    def final_result(self):
        """The final u32 link result (0 OK, 7, 8, ...), or None if the connection closed first."""
        return self.read_u32_or_none()

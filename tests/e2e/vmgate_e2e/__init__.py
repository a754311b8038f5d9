"""End-to-end test support for vmgate: a headless spice-gtk client and a process harness.

Everything here runs real programs (QEMU, spice-gtk through GObject introspection, Cyrus SASL
tools, OpenSSL) on 127.0.0.1 only. Use /usr/bin/python3 (Debian's, which has python3-gi).
"""

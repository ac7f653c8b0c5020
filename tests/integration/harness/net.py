"""Ports, listening sockets and TLS as a client sees them."""

import hashlib
import random
import socket
import ssl

_ports_given = set()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """
    A free TCP port on 127.0.0.1, taken below the kernel's ephemeral range:
    the daemon binds it a moment later (seconds under valgrind), and a port
    from the ephemeral range can meanwhile become the local port of any
    client connection made by a test running in parallel. Never the same
    port twice in one test process. The Daemon class needs none of this: it
    lets the daemon bind port 0 and reads the ports from its ready line.
    """
    low = _ephemeral_low()
    if low > 20000:
        for _ in range(100):
            port = random.randrange(20000, low)
            if port not in _ports_given and port_is_free(port):
                _ports_given.add(port)
                return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def port_is_free(port, host="127.0.0.1") -> bool:
    """True if port can be bound on host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def port_accepts(port, host="127.0.0.1", timeout=0.5) -> bool:
    """True if a TCP connect to host:port (IPv4 or IPv6) succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening(port):
    """[(proto, local address text)] of LISTEN sockets on port, from
    /proc/net/tcp and /proc/net/tcp6."""
    out = []
    for proto, path in (("tcp", "/proc/net/tcp"), ("tcp6", "/proc/net/tcp6")):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            local, state = parts[1], parts[3]
            if state != "0A":
                continue
            addr_hex, port_hex = local.split(":")
            if int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(addr_hex)
            if proto == "tcp":
                addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                addr = socket.inet_ntop(socket.AF_INET6, words)
            out.append((proto, "%s:%d" % (addr, port)))
    return out


def tls_client_context(cafile=None, alpn=None):
    """A TLS client context trusting cafile, or checking nothing without one."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def cert_fingerprint(port, host="127.0.0.1"):
    """SHA-256 (hex) of the DER certificate the TLS server on port presents."""
    with socket.create_connection((host, port), timeout=5) as raw:
        with tls_client_context().wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(path):
    """SHA-256 (hex) of the first certificate in a PEM file."""
    with open(path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()

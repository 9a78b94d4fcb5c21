"""HTTP File Upload (XEP-0363) through the testbed's Prosody, with the C
client of src/base/https.c (driven by build/tests/unit/https_tool): a
slot asked for with a raw iq (slixmpp's own upload helper fails on Python
3.11), the file PUT with the slot's header, fetched back with https_get
and compared byte for byte; and what goes wrong: a file over the
service's 1 MiB limit, a PUT of another length than the slot's (413), a
second PUT (409), no token (401), a download over the caller's limit, a
slot never filled, a certificate for another name, the system's store
that does not hold the testbed's certificate.  No mount: this is the
building block under files with cp."""

import errno
import os
import subprocess
import time
import xml.etree.ElementTree as ET

import xfstest
from xfstest import Peer, TestFailure, note

SERVER = dict(users={"alice": "alicepw", "bob": "bobpw"}, direct_tls=False)
A = "alice@localhost"
B = "bob@localhost"
UPLOAD = "upload.localhost"
NS = "urn:xmpp:http:upload:0"
STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
LIMIT = 1024 * 1024  # http_file_share_size_limit in scripts/testbed


def tool():
    p = xfstest.xmppfs_binary().parent / "tests" / "unit" / "https_tool"
    if not p.exists():
        raise TestFailure(f"{p} is not built")
    return str(p)


def slot(peer, name, size, ctype="application/octet-stream"):
    """(put URL, [header lines], get URL), or the error element."""
    req = ET.Element(f"{{{NS}}}request", filename=name, size=str(size))
    req.set("content-type", ctype)
    r = peer.iq(UPLOAD, "get", req)
    if r is None:
        raise TestFailure("no answer to the slot request")
    if r.get("type") != "result":
        return r.find("{jabber:client}error")
    s = r.find(f"{{{NS}}}slot")
    put = s.find(f"{{{NS}}}put")
    headers = [f"{h.get('name')}: {h.text}" for h in put.findall(f"{{{NS}}}header")]
    return put.get("url"), headers, s.find(f"{{{NS}}}get").get("url")


def run(*args, ca=None, connect=None, timeout=30):
    """https_tool ARGS: (exit status, stdout, stderr)."""
    argv = [tool(), *map(str, args)]
    if ca:
        argv += ["--ca", ca]
    if connect:
        argv += ["--connect", connect]
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    note(f"https_tool {args[0]}: exit {r.returncode} in "
         f"{time.monotonic() - t0:.3f} s {r.stdout.strip()}{r.stderr.strip()}")
    for bad in xfstest.BAD_LOG_PATTERNS:
        if bad in r.stderr:
            raise TestFailure(f"https_tool: {r.stderr}")
    return r.returncode, r.stdout, r.stderr


def put(url, headers, path, ca, connect=None, size=None, ctype=None):
    args = ["put", url, path]
    for h in headers:
        args += ["--header", h]
    if size is not None:
        args += ["--size", size]
    if ctype:
        args += ["--type", ctype]
    return run(*args, ca=ca, connect=connect)


def test_upload_then_download(server, tmp, stack):
    alice = stack.enter_context(Peer(A, "alicepw", server, resource="up"))
    data = os.urandom(300_000)
    src = tmp / "photo.jpg"
    src.write_bytes(data)
    got = slot(alice, "photo.jpg", len(data), "image/jpeg")
    assert isinstance(got, tuple), ET.tostring(got)
    put_url, headers, get_url = got
    note(f"slot: PUT {put_url} GET {get_url}, headers "
         f"{[h.split(':')[0] for h in headers]}")
    assert put_url.startswith(f"https://localhost:{server.https_port}/"), put_url
    rc, out, err = put(put_url, headers, src, server.ca_file,
                       ctype="image/jpeg")
    assert rc == 0, err
    assert out.startswith(f"ok {len(data)} "), out

    # fetched by someone else: the URL is all it takes; by address, as
    # an account with host = 127.0.0.1 would reach it
    dst = tmp / "copy.jpg"
    rc, out, err = run("get", get_url, dst, ca=server.ca_file,
                       connect="127.0.0.1")
    assert rc == 0, err
    assert dst.read_bytes() == data, "the download differs from the upload"


def test_file_of_exactly_the_limit(server, tmp, stack):
    alice = stack.enter_context(Peer(A, "alicepw", server, resource="lim"))
    data = os.urandom(LIMIT)
    src = tmp / "limit.bin"
    src.write_bytes(data)
    put_url, headers, get_url = slot(alice, "limit.bin", LIMIT)
    rc, out, err = put(put_url, headers, src, server.ca_file)
    assert rc == 0, err
    dst = tmp / "limit.out"
    rc, out, err = run("get", get_url, dst, "--max", LIMIT, ca=server.ca_file)
    assert rc == 0, err
    assert dst.read_bytes() == data


def test_over_the_limit(server, tmp, stack):
    """The service refuses a slot for more than 1 MiB, and says its
    limit; a slot for less and a PUT of more gets 413: EFBIG."""
    alice = stack.enter_context(Peer(A, "alicepw", server, resource="over"))
    e = slot(alice, "big.bin", LIMIT + 1)
    assert not isinstance(e, tuple), "a slot for more than the limit"
    assert e.find(f"{STANZAS}not-acceptable") is not None, ET.tostring(e)
    assert e.findtext(f"{{{NS}}}file-too-large/{{{NS}}}max-file-size") == \
        str(LIMIT), ET.tostring(e)

    src = tmp / "big.bin"
    src.write_bytes(os.urandom(LIMIT + 1))
    put_url, headers, _ = slot(alice, "big.bin", 1000)
    rc, out, err = put(put_url, headers, src, server.ca_file)
    assert rc == errno.EFBIG and "HTTP 413" in err, (rc, err)


def test_put_refusals(server, tmp, stack):
    alice = stack.enter_context(Peer(A, "alicepw", server, resource="refuse"))
    src = tmp / "note.txt"
    src.write_bytes(b"twelve bytes")
    put_url, headers, get_url = slot(alice, "note.txt", 12, "text/plain")

    # no token
    rc, out, err = put(put_url, [], src, server.ca_file)
    assert rc == errno.EACCES and "HTTP 401" in err, (rc, err)
    # a header with a line break never leaves the client
    rc, out, err = put(put_url, [headers[0] + "\r\nX-Evil: 1"], src,
                       server.ca_file)
    assert rc == errno.EINVAL, (rc, err)
    # the slot is not filled yet: the server has nothing at its URL
    rc, out, err = run("get", get_url, tmp / "none", ca=server.ca_file)
    assert rc == errno.ENOENT and "HTTP 410" in err, (rc, err)

    rc, out, err = put(put_url, headers, src, server.ca_file)
    assert rc == 0, err
    # once filled, a slot takes no second file
    rc, out, err = put(put_url, headers, src, server.ca_file)
    assert rc == errno.EEXIST and "HTTP 409" in err, (rc, err)
    # a download larger than the caller allows
    rc, out, err = run("get", get_url, tmp / "small", "--max", 11,
                       ca=server.ca_file)
    assert rc == errno.EFBIG, (rc, err)
    # a URL the service never handed out
    rc, out, err = run("get", get_url.rsplit("/", 2)[0] + "/nope/note.txt",
                       tmp / "nope", ca=server.ca_file)
    assert rc == errno.ENOENT and "HTTP 404" in err, (rc, err)


def test_certificate_checks(server, tmp, stack):
    """The testbed's certificate names localhost and 127.0.0.1: reached
    as another address it is refused (under another name Prosody itself
    refuses the handshake: it has no certificate for that name), and
    without its CA file (the system's store) too.  http:// is refused
    before any connection."""
    alice = stack.enter_context(Peer(A, "alicepw", server, resource="cert"))
    src = tmp / "c.txt"
    src.write_bytes(b"x")
    put_url, headers, get_url = slot(alice, "c.txt", 1)
    other = put_url.replace("https://localhost:", "https://127.0.0.2:")
    rc, out, err = put(other, headers, src, server.ca_file, connect="127.0.0.1")
    assert rc == errno.EPERM and "IP address mismatch" in err, (rc, err)
    other = put_url.replace("https://localhost:", "https://upload.example:")
    rc, out, err = put(other, headers, src, server.ca_file, connect="127.0.0.1")
    assert rc in (errno.EPERM, errno.EPROTO), (rc, err)
    rc, out, err = put(put_url, headers, src, None)
    assert rc == errno.EPERM, (rc, err)
    rc, out, err = put(put_url.replace("https:", "http:"), headers, src,
                       server.ca_file)
    assert rc == errno.EPROTONOSUPPORT, (rc, err)
    # and with all that, the slot is still good
    rc, out, err = put(put_url, headers, src, server.ca_file)
    assert rc == 0, err


def test_bob_downloads_alices_file(server, tmp, stack):
    """What one account uploads another fetches, and a slot's URL holds
    the file name percent-encoded."""
    alice = stack.enter_context(Peer(A, "alicepw", server, resource="share"))
    stack.enter_context(Peer(B, "bobpw", server, resource="share"))
    data = b"\x00\x01binary\xff" * 1000
    src = tmp / "a b\u00e9.bin"
    src.write_bytes(data)
    put_url, headers, get_url = slot(alice, "a b\u00e9.bin", len(data))
    assert "%20" in put_url or "+" in put_url, put_url
    rc, out, err = put(put_url, headers, src, server.ca_file)
    assert rc == 0, err
    dst = tmp / "bob.bin"
    rc, out, err = run("get", get_url, dst, ca=server.ca_file)
    assert rc == 0, err
    assert dst.read_bytes() == data

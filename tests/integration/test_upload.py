"""Files with cp (issue 16, item 4): cp FILE contacts/JID/ (or
rooms/ROOM/) uploads FILE to the account's upload service (XEP-0363,
Prosody's http_file_share on upload.localhost, files up to 1 MiB) and
sends its link as a message with out-of-band data (XEP-0066); cp returns
once that is done, or fails with one clear errno.  The other side is
slixmpp, which downloads the link over HTTPS, the certificate checked,
and compares the bytes."""

import errno
import os
import shutil
import ssl
import subprocess
import time
import urllib.request

from xfstest import Mount, Peer, wait_until

DOM = "localhost"
MUC = "conference.localhost"
A = f"alice@{DOM}"
B = f"bob@{DOM}"
OLD = "old@nopep.localhost"  # a host with no upload service
SERVER = dict(users={"alice": "alicepw", "bob": "bobpw", OLD: "old-pw"},
              mutual=[("alice", "bob")], direct_tls=False)
NS_OOB = "jabber:x:oob"
LIMIT = 1024 * 1024  # scripts/testbed's http_file_share_size_limit


def download(server, url):
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return r.read()


def events(m, acct=A):
    with open(m.path(acct, "log"), encoding="utf-8") as f:
        return [l.split("\t", 3) for l in f.read().splitlines()]


def upload_events(m, jid, acct=A):
    return [e[3] for e in events(m, acct) if e[1] == "upload" and e[2] == jid]


def mount(stack, server, tmp, res, user="alice"):
    acct = server.jid(user)
    m = stack.enter_context(Mount(tmp, {acct: server.account(user, resource=res)}))
    m.wait_state(acct, "online", timeout=10)
    return m


def test_cp_sends_a_file_the_other_side_downloads(server, tmp, stack):
    """cp report.pdf contacts/bob/: bob gets the link as the body and as
    OOB, downloads the very bytes; the file is not left in the directory;
    progress and the result are events; the record is in the log."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-up-b"))
    m = mount(stack, server, tmp, "t-up")
    data = os.urandom(900 * 1024)
    src = tmp / "report.pdf"
    src.write_bytes(data)
    since = len(bob.messages)
    t0 = time.monotonic()
    subprocess.run(["cp", str(src), str(m.path(A, "contacts", B)) + "/"], check=True)
    took = time.monotonic() - t0
    got = bob.wait_message(A, None, since=since)
    url = got["body"]
    assert url.startswith("https://"), got
    oob = got["xml"].find(f"{{{NS_OOB}}}x/{{{NS_OOB}}}url")
    assert oob is not None and oob.text == url, got["xml"]
    assert download(server, url) == data
    assert "report.pdf" not in os.listdir(m.path(A, "contacts", B))
    ev = upload_events(m, B)
    assert ev[-1] == f"report.pdf: sent, {url}", ev
    assert any(e.endswith("%") for e in ev), ev  # progress, by tenths
    with open(m.path(A, "contacts", B, "log"), encoding="utf-8") as f:
        assert f.read().rstrip("\n").endswith(url)
    print(f"    # cp of {len(data)} bytes, uploaded and sent: {took:.2f}s")


def test_too_large_and_empty_files_are_refused(server, tmp, stack):
    """Over the service's limit: EFBIG from cp's write, before the
    upload; an empty file: ENODATA at close; nothing reaches bob."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-upbig-b"))
    m = mount(stack, server, tmp, "t-upbig")
    big = tmp / "big.bin"
    big.write_bytes(os.urandom(LIMIT + 1))
    empty = tmp / "empty.txt"
    empty.write_bytes(b"")
    since = len(bob.messages)
    for src, err in ((big, errno.EFBIG), (empty, errno.ENODATA)):
        try:
            shutil.copyfile(src, m.path(A, "contacts", B, src.name))
            raise AssertionError(f"{src.name} taken")
        except OSError as e:
            assert e.errno == err, (src.name, e)
    time.sleep(1)
    assert bob.messages_from(A, since=since) == [], bob.messages_from(A, since=since)
    assert os.listdir(m.path(A, "contacts", B)).count("big.bin") == 0


def test_no_upload_service_is_eopnotsupp(server, tmp, stack):
    """An account whose server has no upload service: EOPNOTSUPP, and a
    line in the events that says so."""
    m = mount(stack, server, tmp, "t-upnone", user=OLD)
    src = tmp / "note.txt"
    src.write_bytes(b"hello\n")
    try:
        shutil.copyfile(src, m.path(OLD, "contacts", B, "note.txt"))
        raise AssertionError("sent without an upload service")
    except OSError as e:
        assert e.errno == errno.EOPNOTSUPP, e
    assert upload_events(m, B, OLD)[-1].startswith("note.txt: not sent: ")


def test_cp_into_a_room(server, tmp, stack):
    """cp into rooms/ROOM/: the room gets the link with OOB; bob, in the
    room, downloads the bytes."""
    room = f"files@{MUC}"
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-uproom-b"))
    bob.join_room(room, "bob")
    m = mount(stack, server, tmp, "t-uproom")
    os.mkdir(m.path(A, "rooms", room))
    data = os.urandom(5000)
    src = tmp / "pic.png"
    src.write_bytes(data)
    since = len(bob.messages)
    shutil.copyfile(src, m.path(A, "rooms", room, "pic.png"))
    got = bob.wait_message(f"{room}/alice", None, since=since)
    oob = got["xml"].find(f"{{{NS_OOB}}}x/{{{NS_OOB}}}url")
    assert oob is not None and oob.text == got["body"], got["xml"]
    assert download(server, got["body"]) == data


# --------------------------------------------------------------------------
# files sent to us (downloads = true)

NS_UPLOAD = "urn:xmpp:http:upload:0"


def send_file(server, peer, to, name, data, mtype="chat"):
    """What a client does to send a file: a slot from upload.localhost,
    the PUT, then the link as body and OOB.  Returns the link."""
    import xml.etree.ElementTree as ET
    req = ET.Element(f"{{{NS_UPLOAD}}}request", filename=name, size=str(len(data)),
                     **{"content-type": "application/octet-stream"})
    r = peer.iq("upload.localhost", "get", req)
    assert r is not None and r.get("type") == "result", ET.tostring(r)
    slot = r.find(f"{{{NS_UPLOAD}}}slot")
    put = slot.find(f"{{{NS_UPLOAD}}}put")
    get = slot.find(f"{{{NS_UPLOAD}}}get").get("url")
    hdrs = {h.get("name"): h.text for h in put.findall(f"{{{NS_UPLOAD}}}header")}
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    rq = urllib.request.Request(put.get("url"), data=data, method="PUT", headers={
        **hdrs, "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(rq, context=ctx, timeout=10) as resp:
        assert resp.status in (200, 201), resp.status
    x = ET.Element(f"{{{NS_OOB}}}x")
    ET.SubElement(x, f"{{{NS_OOB}}}url").text = get
    peer.send_message_with(to, get, [x], mtype=mtype)
    return get


def download_events(m, jid):
    return [e[3] for e in events(m) if e[1] == "download" and e[2] == jid]


def test_files_sent_to_us_are_fetched_once(server, tmp, stack):
    """With downloads = true a file bob sends is fetched into
    contacts/bob/files/NAME, the bytes his; a remount (the archive brings
    the message again) fetches nothing twice; rm removes it; one over
    download_max is not fetched, and the event says why."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-dl-b"))
    m = stack.enter_context(Mount(tmp, {A: server.account(
        "alice", resource="t-dl", downloads="true", download_max=100000)}))
    m.wait_state(A, "online", timeout=10)
    data = os.urandom(50000)
    send_file(server, bob, A, "notes.bin", data)
    p = m.path(A, "contacts", B, "files", "notes.bin")
    wait_until(lambda: os.path.exists(p), timeout=15,
               what=lambda: f"the file fetched; events {download_events(m, B)}")
    with open(p, "rb") as f:
        assert f.read() == data
    assert download_events(m, B) == ["notes.bin, 50000 bytes"], download_events(m, B)
    assert os.listdir(m.path(A, "contacts", B, "files")) == ["notes.bin"]
    m.close()
    m.remount()
    m.wait_state(A, "online", timeout=10)
    time.sleep(2)
    assert os.listdir(m.path(A, "contacts", B, "files")) == ["notes.bin"]
    # too large: not fetched
    url = send_file(server, bob, A, "big.bin", os.urandom(200000))
    wait_until(lambda: any(e.startswith(url) for e in download_events(m, B)),
               timeout=15, what=lambda: f"a refusal; events {download_events(m, B)}")
    assert "big.bin" not in os.listdir(m.path(A, "contacts", B, "files"))
    os.unlink(p)
    assert os.listdir(m.path(A, "contacts", B, "files")) == []


def test_files_are_not_fetched_unless_asked(server, tmp, stack):
    """By default nothing is fetched: the link is a record, files/ stays
    empty."""
    bob = stack.enter_context(Peer(B, "bobpw", server, resource="t-nodl-b"))
    m = mount(stack, server, tmp, "t-nodl")
    url = send_file(server, bob, A, "quiet.bin", b"x" * 100)
    log = m.path(A, "contacts", B, "log")
    wait_until(lambda: os.path.exists(log) and url in open(log).read(), timeout=10,
               what="the link in the log")
    time.sleep(1)
    assert os.listdir(m.path(A, "contacts", B, "files")) == []
    assert download_events(m, B) == []

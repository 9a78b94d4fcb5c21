"""A well-behaved client (issue 6, first part): xmppfs answers disco#info
(XEP-0030), software version (XEP-0092) and ping (XEP-0199), refuses what
it does not implement, and notices a dead link with its own keep-alive
ping.  Real Prosody, slixmpp as the other party."""

import os
import signal
import time
import xml.etree.ElementTree as ET

import xfstest
from xfstest import (LineReader, Mount, Peer, Server, TestFailure, note,
                     wait_until)

SERVER = dict(users={"alice": "alicepw", "bob": "bobpw"},
              mutual=[("alice", "bob")])
A = "alice@localhost"
B = "bob@localhost"
ERR = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


def setup(stack, server, tmp, res, **keys):
    bob = stack.enter_context(Peer(B, "bobpw", server, resource=f"{res}-peer"))
    m = stack.enter_context(
        Mount(tmp, {A: server.account("alice", resource=res, **keys)}))
    m.wait_state(A, "online", timeout=10)
    return m, bob, f"{A}/{res}"


def query(ns, name="query"):
    return ET.Element(f"{{{ns}}}{name}")


def test_answers_disco_version_and_ping(server, tmp, stack):
    m, bob, full = setup(stack, server, tmp, "t-cl-disco")
    r = bob.iq(full, "get", query("http://jabber.org/protocol/disco#info"))
    assert r is not None and r.get("type") == "result", r
    q = r.find("{http://jabber.org/protocol/disco#info}query")
    ident = q.find("{http://jabber.org/protocol/disco#info}identity")
    assert ident is not None and ident.get("category") == "client" \
        and ident.get("name") == "xmppfs", ET.tostring(r)
    feats = {f.get("var") for f in
             q.findall("{http://jabber.org/protocol/disco#info}feature")}
    assert {"http://jabber.org/protocol/disco#info", "jabber:iq:version",
            "urn:xmpp:ping"} <= feats, feats

    r = bob.iq(full, "get", query("jabber:iq:version"))
    assert r is not None and r.get("type") == "result", r
    q = r.find("{jabber:iq:version}query")
    assert q.findtext("{jabber:iq:version}name") == "xmppfs", ET.tostring(r)
    assert q.findtext("{jabber:iq:version}version"), ET.tostring(r)

    t0 = time.monotonic()
    r = bob.iq(full, "get", query("urn:xmpp:ping", "ping"))
    assert r is not None and r.get("type") == "result", r
    note(f"ping answered in {(time.monotonic() - t0) * 1000:.1f} ms")


def test_unknown_requests_get_an_error_never_silence(server, tmp, stack):
    m, bob, full = setup(stack, server, tmp, "t-cl-unknown")
    for itype, ns in (("get", "jabber:iq:last"), ("set", "urn:example:x")):
        r = bob.iq(full, itype, query(ns), timeout=5)
        if r is None:
            raise TestFailure(f"no answer to an {itype} of {ns}")
        assert r.get("type") == "error", ET.tostring(r)
        err = r.find("{jabber:client}error")
        assert err is not None and \
            err.find(f"{ERR}feature-not-implemented") is not None, \
            ET.tostring(r)


@xfstest.waits
def test_keepalive_notices_a_dead_link(tmp, stack):
    """The server stops (SIGSTOP): no FIN, no RST.  With ping_interval = 2
    the ping goes unanswered and the link is dropped within 2 + 5 s; after
    SIGCONT the account comes back on its own."""
    srv = Server(tmp / "srv", users={"alice": "alicepw"})
    srv.start()
    stack.callback(srv.stop)
    m = stack.enter_context(
        Mount(tmp, {A: srv.account("alice", resource="t-cl-ka",
                                   ping_interval="2")}))
    m.wait_state(A, "online", timeout=10)
    pid = int((srv.dir / "testbed.pid").read_text())
    assert str(srv.dir).encode() in open(f"/proc/{pid}/cmdline", "rb").read()
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        kv = wait_until(lambda: (lambda c: c if c.get("state") != "online"
                                 else None)(m.connection(A)),
                        timeout=15, what="the dead link to be noticed")
        took = time.monotonic() - t0
        note(f"dead link noticed after {took:.1f} s: {kv.get('error')}")
        assert "keep-alive" in kv.get("error", ""), kv
        assert took < 2 + 5 + 3, took
    finally:
        os.kill(pid, signal.SIGCONT)
    m.wait_state(A, "online", timeout=30)


# --------------------------------------------------------------------------
# raw: every received stanza as one line; write complete stanzas




def test_raw_shows_what_arrives_one_line_each(server, tmp, stack):
    m, bob, full = setup(stack, server, tmp, "t-cl-raw-read")
    r = stack.enter_context(LineReader(m.path(A, "raw")))
    r.wait_open()
    bob.send_message(A, "first line\nsecond <line> & more")
    bob.send_presence(show="away", status="raw test")
    # other stanzas come too: the archive query made at login is answered
    # with a message and an iq, and the server's answer to our presence probe
    # (bob's earlier presence, with a delay) may come after raw opened. Wait
    # for the peer's message and for the presence carrying the new status.
    def from_bob(kind, text=""):
        return [l for l in r.snapshot()
                if l.startswith(f"<{kind}") and f'from="{bob.jid}"' in l
                and text in l]
    wait_until(lambda: from_bob("message") and from_bob("presence", "raw test"),
               timeout=10, what=lambda: f"a message and a presence from "
                                        f"{bob.jid} in raw: {r.snapshot()!r}"[:2000])
    msg, pres = from_bob("message"), from_bob("presence", "raw test")
    # one stanza per line: the newline of the body is a character reference
    assert "first line&#10;second &lt;line&gt; &amp; more" in msg[0], msg[0]
    root = ET.fromstring(msg[0])  # in the stream's default namespace
    body = root.findtext("body") or root.findtext("{jabber:client}body")
    assert body == "first line\nsecond <line> & more", msg[0]
    proot = ET.fromstring(pres[0])
    ns = "{jabber:client}" if proot.tag.startswith("{") else ""
    assert proot.findtext(f"{ns}status") == "raw test", pres[0]
    assert proot.findtext(f"{ns}show") == "away", pres[0]


def test_raw_write_sends_stanzas(server, tmp, stack):
    m, bob, full = setup(stack, server, tmp, "t-cl-raw-write")
    since = len(bob.messages)
    with open(m.path(A, "raw"), "w") as f:
        f.write(f"<message to='{B}' type='chat'><body>raw one</body></message>\n"
                f"<message to='{B}' type='chat'><body>raw &amp; two</body>"
                "</message>")
    got = bob.wait_messages(A, 2, since, timeout=10)
    assert [g["body"] for g in got[:2]] == ["raw one", "raw & two"], got


def test_raw_refuses_what_is_not_stanzas_and_sends_nothing(server, tmp, stack):
    m, bob, full = setup(stack, server, tmp, "t-cl-raw-bad")
    since = len(bob.messages)
    bad = [
        f"<message to='{B}'><body>unclosed</body>",
        f"<message to='{B}'><body>ok</body></message><foo/>",
        "</stream:stream>",
        f"<message to='{B}'><body>&bogus;</body></message>",
        "<!DOCTYPE x><presence/>",
        "hello",
        f"<message to='{B}'><body>a</body></message>text<presence/>",
    ]
    for b in bad:
        fd = os.open(m.path(A, "raw"), os.O_WRONLY)
        try:
            os.write(fd, b.encode())
            raise TestFailure(f"raw accepted {b!r}")
        except OSError as e:
            assert e.errno == 22, (b, e)  # EINVAL
        finally:
            os.close(fd)
    # the stream is intact and nothing of the above went out: the next
    # message is the first thing bob gets
    with open(m.path(A, "raw"), "w") as f:
        f.write(f"<message to='{B}' type='chat'><body>marker</body></message>")
    got = bob.wait_messages(A, 1, since, timeout=10)
    assert got[0]["body"] == "marker", got
    assert m.connection(A)["state"] == "online"


# --------------------------------------------------------------------------
# iq: write one get/set, read its answer on the same descriptor

def iq_roundtrip(m, xml):
    fd = os.open(m.path(A, "iq"), os.O_RDWR)
    try:
        os.write(fd, xml.encode())
        line = os.read(fd, 65536).decode()
    finally:
        os.close(fd)
    assert line.endswith("\n") and line.count("\n") == 1, line
    return ET.fromstring(line)


def test_iq_round_trips_to_the_server(server, tmp, stack):
    m, bob, full = setup(stack, server, tmp, "t-cl-iq")
    r = iq_roundtrip(m, "<iq type='get' to='localhost'><query xmlns="
                        "'http://jabber.org/protocol/disco#info'/></iq>")
    assert r.get("type") == "result" and r.get("id"), ET.tostring(r)
    feats = {f.get("var") for f in r.iter(
        "{http://jabber.org/protocol/disco#info}feature")}
    assert "urn:xmpp:ping" in feats, feats
    r = iq_roundtrip(m, "<iq type='get' id='mine'><query "
                        "xmlns='jabber:iq:roster'/></iq>")
    assert r.get("type") == "result" and r.get("id") == "mine", ET.tostring(r)
    assert any(i.get("jid") == B for i in r.iter("{jabber:iq:roster}item")), \
        ET.tostring(r)
    r = iq_roundtrip(m, f"<iq type='get' to='{full.replace(A, B)}'>"
                        "<query xmlns='jabber:iq:version'/></iq>")
    assert r.get("type") in ("result", "error"), ET.tostring(r)
    # an error answer is an answer too
    r = iq_roundtrip(m, "<iq type='get' to='localhost'><query "
                        "xmlns='urn:example:nothing'/></iq>")
    assert r.get("type") == "error", ET.tostring(r)


def test_iq_many_in_flight_each_sees_its_own(server, tmp, stack):
    m, bob, full = setup(stack, server, tmp, "t-cl-iq-many")
    fds = [os.open(m.path(A, "iq"), os.O_RDWR) for _ in range(8)]
    try:
        for i, fd in enumerate(fds):
            os.write(fd, f"<iq type='get' id='many-{i}' to='localhost'>"
                         "<ping xmlns='urn:xmpp:ping'/></iq>".encode())
        for i, fd in reversed(list(enumerate(fds))):
            r = ET.fromstring(os.read(fd, 65536).decode())
            assert r.get("id") == f"many-{i}", ET.tostring(r)
    finally:
        for fd in fds:
            os.close(fd)


def test_iq_answer_only_from_whom_it_went_to(server, tmp, stack):
    """An iq's answer is taken only from the JID the request went to (RFC
    6120 §8.1.2.1): bob's forged results with every id alice might use
    are not the answer to her request to a service that never answers;
    the real answer of a later request still comes."""
    m, bob, full = setup(stack, server, tmp, "t-cl-iq-spoof")
    fd = os.open(m.path(A, "iq"), os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(fd, b"<iq type='get' to='silent.localhost'>"
                     b"<ping xmlns='urn:xmpp:ping'/></iq>")
        # xmppfs numbers its requests xfs-iq-N: forge the first 200
        bob.send_raw("".join(
            f"<iq type='result' id='xfs-iq-{i}' to='{full}'/>"
            for i in range(1, 201)))
        # bob's marker after them: when it is in alice's log, the
        # forged answers reached her before it
        bob.send_message(A, "after the forged answers")
        wait_until(lambda: "after the forged answers" in
                   m.read(f"{A}/contacts/{B}/log"),
                   timeout=10, what="bob's marker in alice's log")
        try:
            line = os.read(fd, 65536)
            raise TestFailure(f"a forged answer was taken: {line!r}")
        except BlockingIOError:
            pass
    finally:
        os.close(fd)
    r = iq_roundtrip(m, "<iq type='get' to='localhost'><ping "
                        "xmlns='urn:xmpp:ping'/></iq>")
    assert r.get("type") == "result" and r.get("from") == "localhost", \
        ET.tostring(r)
    assert m.connection(A)["state"] == "online"


def test_iq_refuses_anything_but_one_get_or_set(server, tmp, stack):
    m, bob, full = setup(stack, server, tmp, "t-cl-iq-bad")
    for bad in ("<iq type='result' id='x'/>", "<iq id='y'/>",
                f"<message to='{B}'><body>no</body></message>",
                "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq><iq type='get'/>",
                "<iq type='get'>", "not xml"):
        fd = os.open(m.path(A, "iq"), os.O_RDWR)
        try:
            os.write(fd, bad.encode())
            raise TestFailure(f"iq accepted {bad!r}")
        except OSError as e:
            assert e.errno == 22, (bad, e)  # EINVAL
        finally:
            os.close(fd)
    assert m.connection(A)["state"] == "online"


def test_iq_blocked_read_ends_with_sigint_and_times_out(tmp, stack):
    """No answer (the server is stopped): a blocked read ends on SIGINT at
    once, and a read that waits gets ETIMEDOUT after the account's
    iq_timeout (3 s here; the default, 30 s as SPEC says, is the unit
    test config's)."""
    srv = Server(tmp / "srv", users={"alice": "alicepw"})
    srv.start()
    stack.callback(srv.stop)
    m = stack.enter_context(
        Mount(tmp, {A: srv.account("alice", resource="t-cl-iq-to",
                                   ping_interval="0", iq_timeout="3")}))
    m.wait_state(A, "online", timeout=10)
    pid = int((srv.dir / "testbed.pid").read_text())
    assert str(srv.dir).encode() in open(f"/proc/{pid}/cmdline", "rb").read()
    os.kill(pid, signal.SIGSTOP)
    try:
        import subprocess, sys
        code = ("import os\n"
                f"fd = os.open({str(m.path(A, 'iq'))!r}, os.O_RDWR)\n"
                "os.write(fd, b\"<iq type='get' to='localhost'><ping "
                "xmlns='urn:xmpp:ping'/></iq>\")\n"
                "print('reading', flush=True)\n"
                "os.read(fd, 4096)\n")
        child = subprocess.Popen([sys.executable, "-c", code],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"reading"
        time.sleep(0.2)
        assert child.poll() is None, "the read did not wait for the answer"
        child.send_signal(signal.SIGINT)
        child.wait(5)
        assert b"KeyboardInterrupt" in child.stderr.read()

        fd = os.open(m.path(A, "iq"), os.O_RDWR)
        try:
            os.write(fd, b"<iq type='get' to='localhost'>"
                         b"<ping xmlns='urn:xmpp:ping'/></iq>")
            t0 = time.monotonic()
            try:
                os.read(fd, 4096)
                raise TestFailure("a read without an answer returned data")
            except OSError as e:
                took = time.monotonic() - t0
                assert e.errno == 110, e  # ETIMEDOUT
            note(f"no answer: ETIMEDOUT after {took:.1f} s")
            assert 2.5 < took < 6, took
        finally:
            os.close(fd)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_presence_carries_entity_capabilities(server, tmp, stack):
    """XEP-0115: the presence carries <c hash='sha-1' node ver/>, and ver
    is the hash of what disco#info on node#ver answers (§5.1)."""
    import base64
    import hashlib
    m, bob, full = setup(stack, server, tmp, "t-cl-caps")
    bob.wait_presence(full, timeout=10)
    caps = bob.latest_presences(full)[full]["caps"]
    assert caps.get("hash") == "sha-1" and caps.get("node") and \
        caps.get("ver"), caps
    node = f"{caps['node']}#{caps['ver']}"
    q = ET.Element("{http://jabber.org/protocol/disco#info}query",
                   {"node": node})
    r = bob.iq(full, "get", q)
    ns = "{http://jabber.org/protocol/disco#info}"
    rq = r.find(f"{ns}query")
    assert rq is not None and rq.get("node") == node, ET.tostring(r)
    s = ""
    for i in sorted(rq.findall(f"{ns}identity"),
                    key=lambda i: (i.get("category"), i.get("type"))):
        s += f"{i.get('category')}/{i.get('type')}//{i.get('name')}<"
    for f in sorted(f.get("var") for f in rq.findall(f"{ns}feature")):
        s += f + "<"
    want = base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()
    assert caps["ver"] == want, (caps["ver"], want, s)

"""omemo_peer - an OMEMO 0.3 (eu.siacs.conversations.axolotl) client for
the integration tests: xfstest.Peer (slixmpp) with python3-oldmemo's
backend, the independent implementation xmppfs is tested against.

    bob = OmemoPeer("bob@localhost", "bobpw", server, resource="b1").connect()
    bob.send_encrypted("alice@localhost", "hi")      # to her devices and our others
    bob.wait_decrypted("alice@localhost", "hello")   # {from, id, body, error, ...}

It publishes its device list (merged with the account's other devices)
and its bundle, both with open access, as Conversations does; it builds
sessions from bundles as it needs them and trusts every device (the
trust under test is xmppfs's).  Every message with an <encrypted/> that
reaches it is decrypted into self.decrypted (body None for key
transport; error set, body None, when it cannot be read)."""

import asyncio
import base64
import random
import threading
import time
import xml.etree.ElementTree as ET

import oldmemo.etree
from oldmemo.oldmemo import (NAMESPACE, ContentImpl, EncryptedKeyMaterialImpl,
                             KeyExchangeImpl, Oldmemo)
from omemo.message import Message
from omemo.session import Initiation
from omemo.storage import Just, Nothing, Storage

from xfstest import Peer, wait_until

NS = "eu.siacs.conversations.axolotl"
NODE_DEVICES = NS + ".devicelist"
NODE_BUNDLES = NS + ".bundles:"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
FALLBACK = ("I sent you an OMEMO encrypted message but your client "
            "doesn't seem to support that.")


class MemoryStorage(Storage):
    def __init__(self):
        super().__init__(True)
        self.data = {}

    async def _load(self, key):
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key, value):
        self.data[key] = value

    async def _delete(self, key):
        self.data.pop(key, None)


def fingerprint(identity_key):
    """As xmppfs shows one: 8 groups of 8 lower-case hex digits."""
    h = identity_key.hex()
    return " ".join(h[i:i + 8] for i in range(0, 64, 8))


def _options(access="open"):
    po = ET.Element(f"{{{NS_PUBSUB}}}publish-options")
    x = ET.SubElement(po, "{jabber:x:data}x", type="submit")
    for var, val, typ in (("FORM_TYPE",
                           "http://jabber.org/protocol/pubsub#publish-options",
                           "hidden"),
                          ("pubsub#access_model", access, None)):
        f = ET.SubElement(x, "{jabber:x:data}field", var=var)
        if typ:
            f.set("type", typ)
        ET.SubElement(f, "{jabber:x:data}value").text = val
    return po


class OmemoPeer(Peer):
    def __init__(self, jid, password, server=None, resource="omemo",
                 device_id=None, alone=False, **kw):
        """@alone: publish a device list of this device only (the other
        devices earlier tests left on the server are gone from it), as
        when the user removes the others; else added to the list."""
        super().__init__(jid, password, server, resource=resource, **kw)
        self.alone = alone
        self.device_id = device_id or random.randint(1, 2 ** 31 - 1)
        self.storage = MemoryStorage()
        self.be = None
        self.identity = None
        self.decrypted = []
        self.lists = {}  # bare JID -> [device ids], as last seen

    # -- setup ------------------------------------------------------------

    def connect(self, timeout=10.0):
        super().connect(timeout)
        self._call(self._setup, timeout=30)
        return self

    async def _setup(self):
        from slixmpp.xmlstream.handler import CoroutineCallback
        from slixmpp.xmlstream.matcher import MatchXPath
        self.be = Oldmemo(self.storage)
        await self.be.generate_pre_keys(100)
        b = await self.be.get_bundle(self.bare, self.device_id)
        self.identity = b.identity_key
        self.xmpp.register_handler(CoroutineCallback(
            "omemo encrypted", MatchXPath(f"{{jabber:client}}message/{{{NS}}}encrypted"),
            self._on_encrypted))
        self.xmpp.register_handler(CoroutineCallback(
            "omemo carbon", MatchXPath(
                "{jabber:client}message/{urn:xmpp:carbons:2}sent"),
            self._on_carbon))
        # carbons (XEP-0280): what the account's other clients send
        await self.aiq(None, "set", ET.Element("{urn:xmpp:carbons:2}enable"))
        await self._publish_bundle()
        ids = [] if self.alone else await self._fetch_list(self.bare)
        if self.alone or self.device_id not in ids:
            await self._publish_list(ids + [self.device_id])

    @property
    def fingerprint(self):
        # the identity key oldmemo keeps is Ed25519; clients (and
        # xmppfs) show the Curve25519 form the bundle carries
        return fingerprint(self._bundle_ik()[1:])

    def _bundle_ik(self):
        async def go():
            b = await self.be.get_bundle(self.bare, self.device_id)
            x = oldmemo.etree.serialize_bundle(b)
            return base64.b64decode(x.findtext(f"{{{NS}}}identityKey"))
        return self._call(go)

    # -- PEP --------------------------------------------------------------

    async def _publish(self, node, payload):
        ps = ET.Element(f"{{{NS_PUBSUB}}}pubsub")
        pub = ET.SubElement(ps, f"{{{NS_PUBSUB}}}publish", node=node)
        item = ET.SubElement(pub, f"{{{NS_PUBSUB}}}item", id="current")
        item.append(payload)
        ps.append(_options())
        r = await self.aiq(None, "set", ps)
        assert r is not None and r.get("type") == "result", \
            ET.tostring(r) if r is not None else "no answer"

    async def _publish_bundle(self):
        b = await self.be.get_bundle(self.bare, self.device_id)
        await self._publish(NODE_BUNDLES + str(self.device_id),
                            oldmemo.etree.serialize_bundle(b))

    async def _publish_list(self, ids):
        lst = ET.Element(f"{{{NS}}}list")
        for i in ids:
            ET.SubElement(lst, f"{{{NS}}}device", id=str(i))
        await self._publish(NODE_DEVICES, lst)

    async def _items(self, jid, node):
        ps = ET.Element(f"{{{NS_PUBSUB}}}pubsub")
        ET.SubElement(ps, f"{{{NS_PUBSUB}}}items", node=node)
        r = await self.aiq(jid, "get", ps)
        if r is None or r.get("type") != "result":
            return []
        return list(r.iter(f"{{{NS_PUBSUB}}}item"))

    async def _fetch_list(self, jid):
        it = await self._items(jid, NODE_DEVICES)
        ids = [int(d.get("id")) for i in it[:1]
               for d in i.iter(f"{{{NS}}}device")]
        self.lists[jid] = ids
        return ids

    def publish_device_list(self, ids):
        self._call(self._publish_list, list(ids))

    def devices_of(self, jid):
        return self._call(self._fetch_list, jid)

    # -- sending ----------------------------------------------------------

    async def _encrypt(self, text, targets):
        if text is None:
            content, pkm = await self.be.encrypt_empty()
        else:
            content, pkm = await self.be.encrypt_plaintext(text.encode())
        keys = set()
        for jid, did in targets:
            session = await self.be.load_session(jid, did)
            if session is None:
                items = await self._items(jid, NODE_BUNDLES + str(did))
                b = items[0].find(f"{{{NS}}}bundle") if items else None
                if b is None:
                    continue
                bundle = oldmemo.etree.parse_bundle(b, jid, did)
                session, ekm = await self.be.build_session_active(
                    jid, did, bundle, pkm)
            else:
                ekm = await self.be.encrypt_key_material(session, pkm)
            await self.be.store_session(session)
            # (a session we started carries our key exchange until the
            # other side has answered on it)
            kex = (session.key_exchange
                   if session.initiation is Initiation.ACTIVE
                   and not session.confirmed else None)
            keys.add((ekm, kex))
        msg = Message(NAMESPACE, self.bare, self.device_id, content,
                      frozenset(keys))
        return oldmemo.etree.serialize_message(msg)

    async def _send(self, to, text, only_devices, tamper, with_own):
        ids = await self._fetch_list(to)
        if only_devices is not None:
            ids = [i for i in ids if i in only_devices]
        targets = [(to, i) for i in ids]
        if with_own:
            targets += [(self.bare, i) for i in await self._fetch_list(self.bare)
                        if i != self.device_id]
        enc = await self._encrypt(text, targets)
        if tamper:
            p = enc.find(f"{{{NS}}}payload")
            raw = bytearray(base64.b64decode(p.text))
            raw[0] ^= 0x01
            p.text = base64.b64encode(bytes(raw)).decode()
        m = self.xmpp.make_message(mto=to, mtype="chat",
                                   mbody=FALLBACK if text is not None else None)
        mid = m["id"] or f"omemo-{random.getrandbits(48):x}"
        m["id"] = mid
        m.append(enc)
        m.append(ET.Element("{urn:xmpp:eme:0}encryption",
                            namespace=NS, name="OMEMO"))
        m.append(ET.Element("{urn:xmpp:hints}store"))
        m.send()
        return mid

    def send_encrypted(self, to, text, only_devices=None, tamper=False,
                       with_own=True):
        """Encrypt @text to every device in @to's list (@only_devices:
        those only) and our own others; send it.  Returns the id."""
        return self._call(self._send, to, text, only_devices, tamper, with_own,
                          timeout=20)

    def send_key_transport(self, to):
        return self._call(self._send, to, None, None, False, False, timeout=20)

    # -- receiving --------------------------------------------------------

    async def _on_carbon(self, msg):
        inner = msg.xml.find("{urn:xmpp:carbons:2}sent/"
                             "{urn:xmpp:forward:0}forwarded/{jabber:client}message")
        if inner is not None and inner.find(f"{{{NS}}}encrypted") is not None:
            await self._decrypt(inner, carbon=True)

    async def _on_encrypted(self, msg):
        await self._decrypt(msg.xml, carbon=False)

    async def _decrypt(self, x, carbon):
        frm = (x.get("from") or "").split("/")[0] or self.bare
        rec = {"from": frm, "to": x.get("to"), "id": x.get("id"), "body": None,
               "error": None, "time": time.time(), "carbon": carbon, "xml": x,
               "prekey": False}
        try:
            rec["body"], rec["prekey"] = await self._decrypt_body(x, frm)
        except Exception as e:  # noqa: BLE001 - what failed is the record
            rec["error"] = f"{type(e).__name__}: {e}"
        with self.cond:
            self.decrypted.append(rec)
            self.cond.notify_all()

    async def _decrypt_body(self, x, frm):
        enc = x.find(f"{{{NS}}}encrypted")
        header = enc.find(f"{{{NS}}}header")
        sid = int(header.get("sid"))
        key = next((k for k in header.iter(f"{{{NS}}}key")
                    if int(k.get("rid")) == self.device_id), None)
        if key is None:
            raise LookupError("not encrypted for this device")
        data = base64.b64decode(key.text)
        iv = base64.b64decode(header.findtext(f"{{{NS}}}iv"))
        prekey = key.get("prekey") in ("true", "1")
        if prekey:
            kex, auth = KeyExchangeImpl.parse(data, False)
            session, pkm = await self.be.build_session_passive(
                frm, sid, kex, EncryptedKeyMaterialImpl.parse(auth, frm, sid))
        else:
            session = await self.be.load_session(frm, sid)
            if session is None:
                raise LookupError("no session")
            pkm = await self.be.decrypt_key_material(
                session, EncryptedKeyMaterialImpl.parse(data, frm, sid))
            session.confirm()
        await self.be.store_session(session)
        payload = enc.findtext(f"{{{NS}}}payload")
        if not payload:
            return None, prekey
        text = await self.be.decrypt_plaintext(
            ContentImpl(base64.b64decode(payload), iv), pkm)
        return text.decode(), prekey

    def wait_decrypted(self, frm, body, timeout=10.0, since=0):
        """The first record decrypted from @frm (bare) with @body (None:
        any, error or not) since index @since."""
        def find():
            with self.cond:
                for r in self.decrypted[since:]:
                    if r["from"] == frm and (body is None or r["body"] == body):
                        return r
            return None
        return wait_until(find, timeout=timeout,
                          what=lambda: f"{self.jid}: decrypted {body!r} from {frm};"
                          f" have {[(r['from'], r['body'], r['error']) for r in self.decrypted]}")

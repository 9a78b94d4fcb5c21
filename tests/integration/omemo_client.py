"""omemo_client - an OMEMO 0.3 client built on python-omemo's SessionManager,
for the other side of a test: it behaves as a client of that library does
(automatic replies to pre-key messages, trust decisions, strict parsing of
bundles and lists).  omemo_peer.py is the same library one level down (its
backend alone), where a test controls each key and byte.

OmemoClient is an xfstest.Peer (slixmpp in its own thread and loop) that is
also an OMEMO device of its account, in the legacy namespace
eu.siacs.conversations.axolotl (what Conversations, Dino, Gajim and
libomemo-c speak).  The cryptography is Debian's python3-omemo with the
python3-oldmemo backend, an implementation independent of the C side's
libomemo-c; this module is their XMPP transport and storage.

    alice = OmemoClient("alice@localhost", "alicepw", server).connect()
    bob = OmemoClient("bob@localhost", "bobpw", server).connect()
    mid = alice.send_encrypted("bob@localhost", "hi")
    rec = bob.wait_decrypted("alice@localhost", "hi")
    assert rec["id"] == mid and rec["error"] is None
    alice.disconnect(); bob.disconnect()

What connect() does: logs in (initial presence with entity caps that
announce eu.siacs.conversations.axolotl.devicelist+notify, so that
Prosody sends device list changes of contacts and of the own account),
enables carbons, loads or creates the device (storage_dir keeps it), and
publishes its bundle (node eu.siacs.conversations.axolotl.bundles:ID) and
the account's device list with itself added (node
eu.siacs.conversations.axolotl.devicelist, item "current"), both with
publish-options pubsub#access_model=open.

Every incoming <message> with an <encrypted/> of that namespace -
directly, as a carbon (received or sent by another client of the
account), or from the archive with archive_decrypt() - is decrypted and
appended to self.decrypted (see OmemoClient).  Messages with a body (the
fallback text included) still reach Peer.messages, those without one
(key transport messages, PEP notifications) Peer.bodyless.

Trust is blind by default: every device is trusted when first seen.  With
blind_trust=False new devices are "undecided": decrypting from them
works, encrypting to them raises omemo.StillUndecided until the test
calls set_trust().

Everything the library does runs in the peer's loop under one lock, so
that decryptions, encryptions and device list updates never interleave.

What python-omemo 1.0.2 / oldmemo 1.0.3 do that a test must expect:
- a prekey message is answered at once with an empty message (no
  payload, no body: a "key transport") that completes the session; until
  the peer has decrypted something from a device, every message it sends
  to that device carries the key exchange again (prekey="true");
- it encrypts with a 12-byte IV and puts key (16) || GCM tag (16) in the
  key material; it decrypts any IV length GCM takes (16 works), but not
  the old "tag at the end of the payload" layout (16-byte key material:
  ValueError);
- prekey="false" or "0" on a <key> is read as a prekey message (it tests
  the attribute's presence): send the attribute only when true;
- the sender's device must be in the sender's device list with a bundle
  that parses (else SenderNotFound); a bundle must have its children in
  the order signedPreKeyPublic, signedPreKeySignature, identityKey,
  prekeys, at least one preKeyPublic, 33-byte keys starting with 0x05
  and a signedPreKeyId;
- a message decrypted twice fails the second time (DecryptionFailed: its
  message key is gone).
"""

import asyncio
import base64
import json
import logging
import os
import secrets
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import omemo
import oldmemo
import oldmemo.etree
from oldmemo.oldmemo import NAMESPACE as NS, ContentImpl, PlainKeyMaterialImpl

from xfstest import Peer, TestFailure, _error_condition, wait_until

NODE_DEVICES = f"{NS}.devicelist"
NODE_BUNDLE = f"{NS}.bundles:{{}}"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_OWNER = "http://jabber.org/protocol/pubsub#owner"
NS_DATA = "jabber:x:data"
NS_MAM = "urn:xmpp:mam:2"
NS_FORWARD = "urn:xmpp:forward:0"
FALLBACK = ("I sent you an OMEMO encrypted message but your client "
            "doesn\u2019t seem to support that.")
TRUST_LEVELS = ("trusted", "distrusted", "undecided")

# python-omemo logs its warnings ("Own device id was not included in the
# online device list", every pre key refill...) to stderr; OMEMO_PEER_DEBUG=1
# shows everything
logging.getLogger("omemo").setLevel(
    logging.DEBUG if os.environ.get("OMEMO_PEER_DEBUG") else logging.ERROR)


def fingerprint_of(identity_key):
    """The fingerprint as xmppfs shows it: the Curve25519 form of the
    identity key (32 bytes, no 0x05 prefix) in lower-case hex, 8 groups
    of 8 separated by spaces.  @identity_key: python-omemo's Ed25519
    form."""
    return " ".join(omemo.SessionManager.format_identity_key(identity_key))


def _form(form_type, fields):
    x = ET.Element(f"{{{NS_DATA}}}x", {"type": "submit"})
    for var, val in (("FORM_TYPE", form_type), *fields.items()):
        f = ET.SubElement(x, f"{{{NS_DATA}}}field", {"var": var})
        if var == "FORM_TYPE":
            f.set("type", "hidden")
        ET.SubElement(f, f"{{{NS_DATA}}}value").text = val
    return x


def items_request(node, item_id=None):
    """<pubsub><items node=@node/></pubsub> (one item with @item_id)."""
    ps = ET.Element(f"{{{NS_PUBSUB}}}pubsub")
    it = ET.SubElement(ps, f"{{{NS_PUBSUB}}}items", {"node": node})
    if item_id:
        ET.SubElement(it, f"{{{NS_PUBSUB}}}item", {"id": item_id})
    return ps


def pep_items(peer, owner, node):
    """The items of @owner's PEP @node as any xfstest.Peer may read them:
    [(id, payload element or None)], or the error condition as a string
    ("cancel/item-not-found"), or None on no answer."""
    r = peer.iq(owner, "get", items_request(node))
    if r is None:
        return None
    if r.get("type") != "result":
        return _error_condition(r) or "error"
    return [(i.get("id"), i[0] if len(i) else None)
            for i in r.iter(f"{{{NS_PUBSUB}}}item")]


def device_ids_of(list_elt):
    """Device ids of a <list xmlns=axolotl/> element, in document order,
    keeping only ids that fit 1..2^31-1 (what OMEMO allows)."""
    out = []
    if list_elt is None:
        return out
    for d in list_elt.findall(f"{{{NS}}}device"):
        try:
            i = int(d.get("id", ""))
        except ValueError:
            continue
        if 1 <= i <= 2 ** 31 - 1 and i not in out:
            out.append(i)
    return out


class _Storage(omemo.Storage):
    """python-omemo's key/value storage: a dict, and a JSON file when
    @path is given (rewritten, atomically, on every change: the library
    requires writes to be done before the call returns)."""

    def __init__(self, path=None):
        super().__init__()
        self.path = Path(path) if path else None
        self.data = {}
        if self.path and self.path.exists():
            self.data = json.loads(self.path.read_text())

    async def _load(self, key):
        if key in self.data:
            return omemo.Just(self.data[key])
        return omemo.Nothing()

    async def _store(self, key, value):
        self.data[key] = value
        self._save()

    async def _delete(self, key):
        if self.data.pop(key, None) is not None:
            self._save()

    def _save(self):
        if not self.path:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)


def _manager_class(peer):
    """A SessionManager whose XMPP side is @peer (create() makes the
    instance itself, without arguments: the peer comes in by closure)."""

    class Manager(omemo.SessionManager):
        async def _upload_bundle(self, bundle):
            return await peer._upload_bundle(bundle)

        async def _download_bundle(self, namespace, bare_jid, device_id):
            return await peer._download_bundle(namespace, bare_jid, device_id)

        async def _delete_bundle(self, namespace, device_id):
            return await peer._delete_bundle(namespace, device_id)

        async def _upload_device_list(self, namespace, device_list):
            return await peer._upload_device_list(namespace, device_list)

        async def _download_device_list(self, namespace, bare_jid):
            return await peer._download_device_list(namespace, bare_jid)

        async def _evaluate_custom_trust_level(self, device):
            return peer._evaluate_trust(device)

        async def _make_trust_decision(self, undecided, identifier):
            return await peer._make_trust_decision(self, undecided, identifier)

        async def _send_message(self, message, bare_jid):
            return await peer._send_omemo(message, bare_jid, kind="auto")

    return Manager


class OmemoClient(Peer):
    """An OMEMO 0.3 device of @jid's account on top of xfstest.Peer.

    storage_dir: keep the device (keys, sessions, trust) in
        STORAGE_DIR/omemo.json, so that a later OmemoClient with the same
        storage_dir is the same device; None: in memory only.
    blind_trust: trust every device when first seen (default).
    reset_device_list: publish an empty device list before setting up,
        so that the account's devices are this one only (the devices
        earlier tests of the file left in the list are gone; their
        bundles stay).  Other devices of the account that are online put
        themselves back.
    complete_sessions: leave python-omemo's history synchronisation mode
        after connecting (default), so that it answers every prekey
        message at once with an empty (key transport) message and deletes
        used prekeys; False keeps those answers queued (never sent) and
        the used prekeys hidden.
    Other keyword arguments go to Peer (host, port, verify, direct_tls).

    Lists (under self.cond, oldest first):
      decrypted          every encrypted message seen, decrypted or not:
                         from (full JID as in the stanza), from_bare, to,
                         id, type, source ("direct", "carbon-received",
                         "carbon-sent", "mam"), sid (sender device),
                         for_us (a <key> for this device), prekey (that
                         key is prekey="true"), key_transport (no
                         <payload>), fallback (the <body>), body (the
                         decrypted text; None for key transport or
                         failure), error (None, or "ExceptionName:
                         message"), stamp (delay), time, xml (the
                         <message> holding <encrypted/>), outer (what came
                         on the wire: the same, a carbon or an archive
                         result)
      sent               every encrypted message sent: dicts with kind
                         ("text", "key-transport", or "auto" for the
                         library's own empty messages), to, id, body
                         (None but for "text"), rids (device ids with a
                         key), prekey_rids, errors (devices left out:
                         "jid/id: Exception..."), time, xml
      device_list_events device list notifications: from (bare), ids,
                         time
      bundle_errors      bundles python-omemo asked for and could not
                         have: jid, device, error, time (python-omemo only
                         logs these, then leaves the device out)
    """

    def __init__(self, jid, password, server=None, resource="peer",
                 storage_dir=None, blind_trust=True, complete_sessions=True,
                 reset_device_list=False, **kw):
        super().__init__(jid, password, server, resource=resource, **kw)
        self.storage_path = (Path(storage_dir) / "omemo.json"
                             if storage_dir else None)
        if self.storage_path:
            self.storage_path.parent.mkdir(parents=True, exist_ok=True)
        self.blind_trust = blind_trust
        self.complete_sessions = complete_sessions
        self.reset_device_list = reset_device_list
        self.defend_own_device = True  # re-add ourselves to our list
        self.decrypted = []
        self.sent = []
        self.device_list_events = []
        self.trust_requests = []   # devices _make_trust_decision was asked about
        self.bundle_errors = []    # bundles that could not be used: jid, device, error
        self.carbons_error = None
        self.last_fetch_error = None
        self.device_id = None
        self.identity_key = None   # Ed25519 form, as python-omemo keeps it
        self.fingerprint = None
        self._sm = None
        self._backend = None
        self._lock = None
        self._ready = None
        self._tasks = set()

    # -- login ---------------------------------------------------------------

    def _configure(self, x):
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        x.register_plugin("xep_0115")
        x.register_plugin("xep_0280")
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        x.register_handler(Callback(
            "omemo encrypted", MatchXPath(f"{{jabber:client}}message/{{{NS}}}encrypted"),
            self._on_encrypted))
        x.register_handler(Callback(
            "omemo pep event", MatchXPath(f"{{jabber:client}}message/{{{NS_EVENT}}}event"),
            self._on_pep_event))
        x.add_event_handler("carbon_received",
                            lambda m: self._on_carbon(m, "carbon_received"))
        x.add_event_handler("carbon_sent",
                            lambda m: self._on_carbon(m, "carbon_sent"))

    async def _on_session(self, ev):
        x = self.xmpp
        try:
            await x["xep_0280"].enable(timeout=10)
        except Exception as e:  # noqa: BLE001 - a test may look at it
            self.carbons_error = repr(e)
        # +notify in our caps before the first presence: Prosody then
        # sends the devicelist of every contact (and of our own account)
        # now and whenever it changes
        await x["xep_0030"].add_feature(f"{NODE_DEVICES}+notify")
        await x["xep_0115"].update_caps(broadcast=False)
        await super()._on_session(ev)

    def connect(self, timeout=10.0, omemo_timeout=30.0):
        super().connect(timeout)
        try:
            self._call(self._setup_omemo, timeout=omemo_timeout)
        except BaseException:
            self.disconnect()
            raise
        return self

    def disconnect(self, timeout=10.0):
        """Let the decryptions under way finish (and the empty messages
        they send go out), then close the stream as Peer does."""
        if self.thread and self.loop and self.loop.is_running() and self._tasks:
            async def drain():
                if self._tasks:
                    await asyncio.wait(set(self._tasks), timeout=timeout / 2)
            try:
                self._call(drain, timeout=timeout)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        super().disconnect(timeout)

    async def _setup_omemo(self):
        storage = _Storage(self.storage_path)
        self._backend = oldmemo.Oldmemo(storage)
        cls = _manager_class(self)
        if self.reset_device_list:
            err = await self._publish(NODE_DEVICES, "current",
                                      oldmemo.etree.serialize_device_list({}))
            if err:
                raise TestFailure(f"{self.jid}: emptying the device list: {err}")
        async with self._lock:
            self._sm = await cls.create([self._backend], storage, self.bare,
                                        None, "undecided")
            if self.complete_sessions:
                await self._sm.after_history_sync()
            # a device loaded from storage_dir publishes nothing in
            # create(): put it back in the list, and its bundle back
            await self._sm.ensure_data_consistency()
            own, _ = await self._sm.get_own_device_information()
        self.device_id = own.device_id
        self.identity_key = own.identity_key
        self.fingerprint = fingerprint_of(own.identity_key)
        self._ready.set()

    # -- the XMPP side of python-omemo ----------------------------------------

    async def _publish(self, node, item_id, payload, retry=True):
        """Publish @payload as item @item_id of our PEP @node with
        access_model=open.  None on success, else the error."""
        ps = ET.Element(f"{{{NS_PUBSUB}}}pubsub")
        pub = ET.SubElement(ps, f"{{{NS_PUBSUB}}}publish", {"node": node})
        ET.SubElement(pub, f"{{{NS_PUBSUB}}}item", {"id": item_id}).append(payload)
        opts = ET.SubElement(ps, f"{{{NS_PUBSUB}}}publish-options")
        opts.append(_form(f"{NS_PUBSUB}#publish-options",
                          {"pubsub#access_model": "open"}))
        r = await self.aiq(None, "set", ps)
        if r is None:
            return "no answer"
        if r.get("type") == "result":
            return None
        cond = _error_condition(r) or "error"
        if retry and (cond.endswith("/conflict")
                      or cond.endswith("/precondition-not-met")):
            # a node made by another client with another access model
            err = await self._configure_open(node)
            if err is None and retry:
                return await self._publish(node, item_id, payload, retry=False)
        return cond

    async def _configure_open(self, node):
        ps = ET.Element(f"{{{NS_OWNER}}}pubsub")
        conf = ET.SubElement(ps, f"{{{NS_OWNER}}}configure", {"node": node})
        conf.append(_form(f"{NS_PUBSUB}#node_config",
                          {"pubsub#access_model": "open"}))
        r = await self.aiq(None, "set", ps)
        if r is None:
            return "no answer"
        return None if r.get("type") == "result" else (_error_condition(r) or "error")

    async def _items(self, owner, node):
        """(items, None) or (None, error condition)."""
        r = await self.aiq(owner, "get", items_request(node))
        if r is None:
            return None, "no answer"
        if r.get("type") != "result":
            return None, _error_condition(r) or "error"
        return list(r.iter(f"{{{NS_PUBSUB}}}item")), None

    @staticmethod
    def _pick(items):
        """The item "current" if there is one, else the last."""
        for i in items:
            if i.get("id") == "current":
                return i
        return items[-1] if items else None

    async def _upload_bundle(self, bundle):
        if bundle.namespace != NS:
            raise omemo.UnknownNamespace(bundle.namespace)
        err = await self._publish(NODE_BUNDLE.format(bundle.device_id), "current",
                                  oldmemo.etree.serialize_bundle(bundle))
        if err:
            raise omemo.BundleUploadFailed(err)

    async def _download_bundle(self, namespace, bare_jid, device_id):
        try:
            return await self._download_bundle_(namespace, bare_jid, device_id)
        except omemo.OMEMOException as e:
            with self.cond:
                self.bundle_errors.append({"jid": bare_jid, "device": device_id,
                                           "error": f"{type(e).__name__}: {e}",
                                           "time": time.time()})
            raise

    async def _download_bundle_(self, namespace, bare_jid, device_id):
        if namespace != NS:
            raise omemo.UnknownNamespace(namespace)
        items, err = await self._items(bare_jid, NODE_BUNDLE.format(device_id))
        if err:
            if err.endswith("item-not-found"):
                raise omemo.BundleNotFound(f"{bare_jid}/{device_id}: {err}")
            raise omemo.BundleDownloadFailed(f"{bare_jid}/{device_id}: {err}")
        item = self._pick(items)
        b = item.find(f"{{{NS}}}bundle") if item is not None else None
        if b is None:
            raise omemo.BundleNotFound(f"{bare_jid}/{device_id}: no <bundle/>")
        try:
            return oldmemo.etree.parse_bundle(b, bare_jid, device_id)
        except Exception as e:  # noqa: BLE001 - schema or key errors
            raise omemo.BundleDownloadFailed(
                f"{bare_jid}/{device_id}: bad bundle: {type(e).__name__}: {e}") from e

    async def _delete_bundle(self, namespace, device_id):
        if namespace != NS:
            raise omemo.UnknownNamespace(namespace)
        ps = ET.Element(f"{{{NS_OWNER}}}pubsub")
        ET.SubElement(ps, f"{{{NS_OWNER}}}delete",
                      {"node": NODE_BUNDLE.format(device_id)})
        r = await self.aiq(None, "set", ps)
        if r is None:
            raise omemo.BundleDeletionFailed("no answer")
        cond = _error_condition(r) if r.get("type") != "result" else None
        if cond and not cond.endswith("item-not-found"):
            raise omemo.BundleDeletionFailed(cond)

    async def _upload_device_list(self, namespace, device_list):
        if namespace != NS:
            raise omemo.UnknownNamespace(namespace)
        err = await self._publish(NODE_DEVICES, "current",
                                  oldmemo.etree.serialize_device_list(device_list))
        if err:
            raise omemo.DeviceListUploadFailed(err)

    async def _download_device_list(self, namespace, bare_jid):
        if namespace != NS:
            raise omemo.UnknownNamespace(namespace)
        items, err = await self._items(bare_jid, NODE_DEVICES)
        if err:
            if err.endswith("item-not-found"):
                return {}
            raise omemo.DeviceListDownloadFailed(f"{bare_jid}: {err}")
        item = self._pick(items)
        # not oldmemo.etree.parse_device_list: its schema refuses <list/>
        lst = item.find(f"{{{NS}}}list") if item is not None else None
        return {i: None for i in device_ids_of(lst)}

    def _evaluate_trust(self, device):
        name = device.trust_level_name
        if name == "trusted":
            return omemo.TrustLevel.TRUSTED
        if name == "distrusted":
            return omemo.TrustLevel.DISTRUSTED
        if name == "undecided":
            return (omemo.TrustLevel.TRUSTED if self.blind_trust
                    else omemo.TrustLevel.UNDECIDED)
        raise omemo.UnknownTrustLevel(name)

    async def _make_trust_decision(self, sm, undecided, identifier):
        with self.cond:
            self.trust_requests.extend(
                {"jid": d.bare_jid, "device": d.device_id,
                 "fingerprint": fingerprint_of(d.identity_key)} for d in undecided)
        if self.blind_trust:
            for d in undecided:
                await sm.set_trust(d.bare_jid, d.identity_key, "trusted")
        # else leave them undecided: encrypt() raises StillUndecided

    async def _send_omemo(self, message, bare_jid, kind, body=None,
                          only_devices=None, tamper=False, mid=None,
                          errors=()):
        """Send @message (an omemo.Message) to @bare_jid; returns the
        record appended to self.sent."""
        try:
            enc = oldmemo.etree.serialize_message(message)
            header = enc.find(f"{{{NS}}}header")
            if only_devices is not None:
                keep = {int(i) for i in only_devices}
                for k in list(header.findall(f"{{{NS}}}key")):
                    if int(k.get("rid")) not in keep:
                        header.remove(k)
            if tamper:
                p = enc.find(f"{{{NS}}}payload")
                if p is None:
                    raise ValueError("tamper: no payload to change")
                raw = bytearray(base64.b64decode(p.text))
                raw[len(raw) // 2] ^= 0x01
                p.text = base64.b64encode(bytes(raw)).decode("ascii")
            msg = self.xmpp.make_message(mto=bare_jid, mtype="chat",
                                         mbody=FALLBACK if body is not None else None)
            msg["id"] = mid or os.urandom(8).hex()
            msg.xml.append(enc)
            msg.xml.append(ET.Element("{urn:xmpp:eme:0}encryption", {
                "namespace": NS, "name": "OMEMO"}))
            msg.xml.append(ET.Element("{urn:xmpp:hints}store"))
            keys = header.findall(f"{{{NS}}}key")
            rec = {"kind": kind, "to": bare_jid, "id": msg["id"], "body": body,
                   "rids": [int(k.get("rid")) for k in keys],
                   "prekey_rids": [int(k.get("rid")) for k in keys
                                   if k.get("prekey") in ("true", "1")],
                   "errors": list(errors), "time": time.time(), "xml": msg.xml}
            msg.send()
        except Exception as e:
            if kind == "auto":
                raise omemo.MessageSendingFailed(repr(e)) from e
            raise
        with self.cond:
            self.sent.append(rec)
            self.cond.notify_all()
        return rec

    # -- receiving -------------------------------------------------------------

    def _spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _on_encrypted(self, msg):
        if msg.xml.get("type") == "error":
            return
        self._spawn(self._decrypt_stanza(msg.xml, msg.xml, "direct"))

    def _on_carbon(self, msg, which):
        inner = msg[which]
        if inner.xml.find(f"{{{NS}}}encrypted") is None:
            return
        src = "carbon-received" if which == "carbon_received" else "carbon-sent"
        self._spawn(self._decrypt_stanza(inner.xml, msg.xml, src))

    def _on_pep_event(self, msg):
        ev = msg.xml.find(f"{{{NS_EVENT}}}event")
        items = ev.find(f"{{{NS_EVENT}}}items") if ev is not None else None
        if items is None or items.get("node") != NODE_DEVICES:
            return
        its = items.findall(f"{{{NS_EVENT}}}item")
        if not its:
            return  # a retraction: nothing to learn
        item = next((i for i in its if i.get("id") == "current"), its[-1])
        ids = device_ids_of(item.find(f"{{{NS}}}list"))
        frm = (msg.xml.get("from") or self.bare).split("/")[0]
        with self.cond:
            self.device_list_events.append({"from": frm, "ids": ids,
                                            "time": time.time()})
            self.cond.notify_all()
        self._spawn(self._apply_device_list(frm, ids))

    async def _apply_device_list(self, bare, ids):
        await self._ready.wait()
        async with self._lock:
            try:
                if bare == self.bare:
                    # our own list: a notification may be stale (those
                    # queued while connecting, e.g. the list before we added
                    # ourselves) and python-omemo republishes the list it is
                    # given whenever this device is missing: read the list
                    # as it is now instead
                    dl = await self._download_device_list(NS, bare)
                    if not self.defend_own_device:
                        # keep the test's list as published
                        dl.setdefault(self.device_id, None)
                else:
                    dl = {i: None for i in ids}
                await self._sm.update_device_list(NS, bare, dl)
            except Exception as e:  # noqa: BLE001 - keep the loop going
                with self.cond:
                    self.device_list_events.append({"from": bare, "ids": ids,
                                                    "error": repr(e),
                                                    "time": time.time()})

    async def _decrypt_stanza(self, inner, outer, source, stamp=None):
        """Decrypt one <message> (@inner; @outer is what came on the wire:
        the same, or the carbon or archive result around it) and append
        its record to self.decrypted.  Returns the record."""
        await self._ready.wait()
        enc = inner.find(f"{{{NS}}}encrypted")
        frm = inner.get("from") or self.bare
        header = enc.find(f"{{{NS}}}header")
        mine = None
        try:
            sid = int(header.get("sid"))
        except (AttributeError, TypeError, ValueError):
            sid = None
        if header is not None:
            for k in header.findall(f"{{{NS}}}key"):
                if k.get("rid") == str(self.device_id):
                    mine = k
        body_el = inner.find("{jabber:client}body")
        if stamp is None:
            d = inner.find("{urn:xmpp:delay}delay")
            if d is None:
                d = outer.find("{urn:xmpp:delay}delay")
            stamp = d.get("stamp") if d is not None else None
        rec = {"from": frm, "from_bare": frm.split("/")[0], "to": inner.get("to"),
               "id": inner.get("id"), "type": inner.get("type", "normal"),
               "source": source, "sid": sid,
               "for_us": mine is not None,
               "prekey": mine is not None and mine.get("prekey") in ("true", "1"),
               "key_transport": enc.find(f"{{{NS}}}payload") is None,
               "fallback": body_el.text if body_el is not None else None,
               "body": None, "error": None, "stamp": stamp,
               "time": None, "xml": inner, "outer": outer}
        async with self._lock:
            try:
                message = await oldmemo.etree.parse_message(
                    enc, rec["from_bare"], self.bare, self._sm)
                plaintext, _device, _key = await self._sm.decrypt(message)
                if plaintext is not None:
                    rec["body"] = plaintext.decode("utf-8")
            except Exception as e:  # noqa: BLE001 - the test looks at it
                rec["error"] = f"{type(e).__name__}: {e}"
        rec["time"] = time.time()
        with self.cond:
            self.decrypted.append(rec)
            self.cond.notify_all()
        return rec

    # -- public: sending ---------------------------------------------------------

    def _check_ready(self):
        if self._sm is None:
            raise TestFailure(f"{self.jid}: OMEMO is not set up (connect() first)")

    async def _encrypt(self, to, plaintext, iv_len=12, empty=False):
        """sm.encrypt() for @to and our own other devices, under the
        lock; @iv_len other than 12, or @empty (a key transport message),
        swap the backend's content encryption for this call."""
        b = self._backend

        async def content_iv(pt):
            key = secrets.token_bytes(PlainKeyMaterialImpl.KEY_LENGTH)
            iv = secrets.token_bytes(iv_len)
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
            aes = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
            ct = aes.update(pt) + aes.finalize()
            return ContentImpl(ct, iv), PlainKeyMaterialImpl(key, aes.tag)

        async def content_empty(pt):
            return await b.encrypt_empty()

        swap = content_empty if empty else content_iv if iv_len != 12 else None
        async with self._lock:
            if swap:
                b.encrypt_plaintext = swap
            try:
                msgs, errors = await self._sm.encrypt(frozenset([to]), {NS: plaintext})
            finally:
                if swap:
                    del b.encrypt_plaintext
        message = next(iter(msgs))
        errs = [f"{e.bare_jid}/{e.device_id}: {type(e.exception).__name__}: "
                f"{e.exception}" for e in errors]
        return message, errs

    def send_encrypted(self, to, text, tamper=False, only_devices=None,
                       iv_len=12, mid=None, timeout=20.0):
        """Encrypt @text for every active trusted device of @to (a bare
        JID) and our own other devices, and send it as a chat message with
        <encrypted/>, the EME hint, <store/> and the fallback body.
        tamper: flip a bit of the payload (the GCM tag then fails);
        only_devices: keep the keys of these device ids only (the others
        are dropped from the header after encryption);
        iv_len: length of the AES-GCM IV (12 as python-omemo; 16 as older
        clients);  mid: the stanza id.  Returns the id.  Raises what
        python-omemo raises (NoEligibleDevices, StillUndecided...)."""
        self._check_ready()

        async def go():
            message, errs = await self._encrypt(to, text.encode("utf-8"), iv_len)
            rec = await self._send_omemo(message, to, "text", body=text,
                                         only_devices=only_devices,
                                         tamper=tamper, mid=mid, errors=errs)
            return rec["id"]
        return self._call(go, timeout=timeout)

    def send_key_transport(self, to, only_devices=None, timeout=20.0):
        """Send an OMEMO message without payload (a KeyTransportElement, as
        clients send to complete a session or to forward the ratchet) to
        @to's devices and our other ones.  Returns the id."""
        self._check_ready()

        async def go():
            message, errs = await self._encrypt(to, b"", empty=True)
            rec = await self._send_omemo(message, to, "key-transport",
                                         only_devices=only_devices, errors=errs)
            return rec["id"]
        return self._call(go, timeout=timeout)

    def last_sent(self, mid=None):
        """The record in self.sent of the message with id @mid (default:
        the latest)."""
        with self.cond:
            for r in reversed(self.sent):
                if mid is None or r["id"] == mid:
                    return r
        return None

    # -- public: receiving -----------------------------------------------------

    def records(self, frm=None, since=0):
        """self.decrypted[since:] from @frm (bare or full JID; None: any)."""
        with self.cond:
            return [r for r in self.decrypted[since:]
                    if frm is None or r["from"] == frm or r["from_bare"] == frm]

    def wait_record(self, pred, timeout=10.0, since=0, what=None):
        """Wait for a record of self.decrypted (from index @since) for
        which pred(record) is true; returns it."""
        def check():
            with self.cond:
                for r in self.decrypted[since:]:
                    if pred(r):
                        return r
            return None
        return wait_until(check, timeout=timeout, what=lambda: (
            f"{self.jid} to decrypt {what or 'a matching message'}; has "
            + repr([(r['from'], r['body'], r['error'], r['source'])
                    for r in self.decrypted[since:]])[:2000]))

    def wait_decrypted(self, frm_bare, body=None, timeout=10.0, since=0):
        """Wait for a message from @frm_bare (bare or full JID) that
        decrypted to @body (None: any text); returns its record."""
        return self.wait_record(
            lambda r: (r["from_bare"] == frm_bare or r["from"] == frm_bare)
            and r["error"] is None and r["body"] is not None
            and (body is None or r["body"] == body),
            timeout, since, what=f"{body!r} from {frm_bare}")

    def wait_failed(self, frm_bare, timeout=10.0, since=0, error=None):
        """Wait for an encrypted message from @frm_bare that failed to
        decrypt (its "error" contains @error if given)."""
        return self.wait_record(
            lambda r: (r["from_bare"] == frm_bare or r["from"] == frm_bare)
            and r["error"] is not None and (error is None or error in r["error"]),
            timeout, since, what=f"a failure from {frm_bare}")

    def wait_key_transport(self, frm_bare, timeout=10.0, since=0):
        """Wait for a payload-less message from @frm_bare that decrypted
        (its key material was for us and authenticated)."""
        return self.wait_record(
            lambda r: (r["from_bare"] == frm_bare or r["from"] == frm_bare)
            and r["key_transport"] and r["error"] is None,
            timeout, since, what=f"a key transport message from {frm_bare}")

    def archive_decrypt(self, with_jid=None, page=100, timeout=20.0):
        """Fetch up to @page messages of our own archive (XEP-0313; with
        @with_jid only), decrypt the encrypted ones in order and append
        them to self.decrypted with source "mam".  Returns those records.
        A message decrypted before (live) fails again here: its message
        key is gone."""
        self._check_ready()
        import uuid
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        qid = uuid.uuid4().hex
        got = []

        def on_result(msg):
            r = msg.xml.find(f"{{{NS_MAM}}}result")
            if r is None or r.get("queryid") != qid:
                return
            fwd = r.find(f"{{{NS_FORWARD}}}forwarded")
            inner = fwd.find("{jabber:client}message") if fwd is not None else None
            if inner is not None and inner.find(f"{{{NS}}}encrypted") is not None:
                d = fwd.find("{urn:xmpp:delay}delay")
                got.append((inner, msg.xml, d.get("stamp") if d is not None else None))

        async def go():
            name = f"omemo archive {qid}"
            self.xmpp.register_handler(Callback(
                name, MatchXPath(f"{{jabber:client}}message/{{{NS_MAM}}}result"),
                on_result))
            try:
                q = ET.Element(f"{{{NS_MAM}}}query", {"queryid": qid})
                if with_jid:
                    q.append(_form(NS_MAM, {"with": with_jid}))
                s = ET.SubElement(q, "{http://jabber.org/protocol/rsm}set")
                ET.SubElement(s, "{http://jabber.org/protocol/rsm}max").text = str(page)
                ans = await self.aiq(self.bare, "set", q, timeout=timeout)
                if ans is None or ans.get("type") != "result":
                    raise TestFailure(f"{self.jid}: archive query failed: "
                                      f"{ans if ans is None else _error_condition(ans)}")
            finally:
                self.xmpp.remove_handler(name)
            return [await self._decrypt_stanza(inner, outer, "mam", stamp)
                    for inner, outer, stamp in got]
        return self._call(go, timeout=timeout + 10)

    # -- public: devices and trust -----------------------------------------------

    def devices_of(self, jid, refresh=True, inactive=False, timeout=20.0):
        """{device id: {"fingerprint", "trust", "active"}} of the devices
        of @jid (bare) this peer knows, after downloading @jid's device
        list (@refresh); devices no longer listed only with @inactive;
        devices whose bundle could not be fetched are missing (that is
        python-omemo's get_device_information)."""
        self._check_ready()

        async def go():
            async with self._lock:
                if refresh:
                    await self._sm.refresh_device_list(NS, jid)
                devs = await self._sm.get_device_information(jid)
            out = {}
            for d in devs:
                active = dict(d.active).get(NS, False)
                if active or inactive:
                    out[d.device_id] = {"fingerprint": fingerprint_of(d.identity_key),
                                        "trust": d.trust_level_name,
                                        "active": active}
            return out
        return self._call(go, timeout=timeout)

    def set_trust(self, jid, device_id, level, timeout=20.0):
        """Set the trust of @jid's device @device_id ("trusted",
        "distrusted" or "undecided"; blind trust makes "undecided" count as
        trusted).  Trust belongs to the identity key, as in python-omemo."""
        if level not in TRUST_LEVELS:
            raise ValueError(f"trust level {level!r}: one of {TRUST_LEVELS}")
        self._check_ready()

        async def go():
            async with self._lock:
                devs = await self._sm.get_device_information(jid)
                if not any(d.device_id == device_id for d in devs):
                    await self._sm.refresh_device_list(NS, jid)
                    devs = await self._sm.get_device_information(jid)
                d = next((d for d in devs if d.device_id == device_id), None)
                if d is None:
                    raise TestFailure(f"{self.jid}: no device {device_id} of {jid} "
                                      f"(known: {sorted(x.device_id for x in devs)})")
                await self._sm.set_trust(jid, d.identity_key, level)
        self._call(go, timeout=timeout)

    def fetch_device_list(self, jid=None, timeout=10.0):
        """The device ids in @jid's (default: our) published device list,
        read raw from PEP, without touching what the peer knows; [] for
        none, None when the server refuses (the error is in
        self.last_fetch_error)."""
        self._check_online()

        async def go():
            items, err = await self._items(jid or self.bare, NODE_DEVICES)
            self.last_fetch_error = err
            if err:
                return [] if err.endswith("item-not-found") else None
            item = self._pick(items)
            return device_ids_of(item.find(f"{{{NS}}}list") if item is not None else None)
        return self._call(go, timeout=timeout + 2)

    def fetch_bundle(self, jid, device_id, timeout=10.0):
        """The <bundle/> element published for @jid's @device_id, raw;
        None when there is none or the server refuses
        (self.last_fetch_error)."""
        self._check_online()

        async def go():
            items, err = await self._items(jid, NODE_BUNDLE.format(device_id))
            self.last_fetch_error = err
            if err:
                return None
            item = self._pick(items)
            return item.find(f"{{{NS}}}bundle") if item is not None else None
        return self._call(go, timeout=timeout + 2)

    def publish_device_list(self, ids, defend=None, timeout=10.0):
        """Publish exactly @ids as our account's device list (same node,
        item and access model as always).  @defend: whether this peer puts
        itself back when it later sees the list without it (python-omemo
        does that by itself); default: only if its own id is in @ids."""
        self._check_online()
        if defend is None:
            defend = self.device_id in ids
        self.defend_own_device = defend

        async def go():
            err = await self._publish(
                NODE_DEVICES, "current",
                oldmemo.etree.serialize_device_list({int(i): None for i in ids}))
            if err:
                raise TestFailure(f"{self.jid}: publishing device list {ids}: {err}")
        self._call(go, timeout=timeout + 2)

    def wait_device_list(self, jid, pred, timeout=10.0, since=0):
        """Wait for a device list notification from @jid (bare) whose ids
        satisfy pred(ids) (e.g. lambda ids: 123 in ids); returns the
        event."""
        def check():
            with self.cond:
                for e in self.device_list_events[since:]:
                    if e["from"] == jid and "error" not in e and pred(e["ids"]):
                        return e
            return None
        return wait_until(check, timeout=timeout, what=lambda: (
            f"{self.jid} to see a device list of {jid}; saw "
            + repr([(e['from'], e['ids']) for e in self.device_list_events[since:]])))

    def _check_online(self):
        if self.xmpp is None or not self.loop or not self.loop.is_running():
            raise TestFailure(f"{self.jid}: not connected")

#!/usr/bin/python3
"""omemo_interop - store/omemo_store.c (through omemo_tool) against
python-oldmemo, the OMEMO 0.3 the integration tests' other client
speaks: each side builds a session from the other's bundle, and
messages, answers and key transport go both ways.  Checks the wire
format (0x05 keys, key||tag of 32 bytes, 12-byte IVs, the XEdDSA sign
bit oldmemo puts in its signature), not our stores (test_omemo_store).

    omemo_interop.py OMEMO_TOOL

Exits 77 (skipped) when python3-oldmemo is not installed."""
import asyncio
import base64
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

try:
    import oldmemo.etree
    from oldmemo.oldmemo import (ContentImpl, EncryptedKeyMaterialImpl,
                                 KeyExchangeImpl, Oldmemo)
    from omemo.storage import Just, Nothing, Storage
except ImportError as e:
    print(f"# skipped: {e}")
    sys.exit(77)

NS = "{eu.siacs.conversations.axolotl}"
OUR_JID, THEIR_JID, THEIR_ID = "c@example.org", "py@example.org", 424242


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


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text)


class Tool:
    def __init__(self, exe, directory):
        self.exe, self.dir = exe, directory

    def run(self, *args, stdin=None):
        p = subprocess.run([self.exe, self.dir, *map(str, args)], text=True,
                           input=stdin, capture_output=True)
        if p.returncode:
            raise AssertionError(f"omemo_tool {args[0]}: {p.stderr.strip()}")
        return p.stdout

    def fields(self, *args, stdin=None):
        out = {}
        for line in self.run(*args, stdin=stdin).splitlines():
            name, _, value = line.partition(" ")
            out[name] = value
        return out

    def bundle(self):
        """Our bundle as the XML element oldmemo parses, and our id."""
        lines = [l.split(" ") for l in self.run("bundle").splitlines()]
        f = {l[0]: l[1:] for l in lines if l[0] != "pk"}
        b = ET.Element(NS + "bundle")
        ET.SubElement(b, NS + "signedPreKeyPublic",
                      signedPreKeyId=f["spk"][0]).text = f["spk"][1]
        ET.SubElement(b, NS + "signedPreKeySignature").text = f["sig"][0]
        ET.SubElement(b, NS + "identityKey").text = f["ik"][0]
        pks = ET.SubElement(b, NS + "prekeys")
        for l in lines:
            if l[0] == "pk":
                ET.SubElement(pks, NS + "preKeyPublic",
                              preKeyId=l[1]).text = l[2]
        return b, int(f["id"][0])

    def decrypt(self, sid, prekey, data, content):
        return self.fields("decrypt", THEIR_JID, sid, int(prekey), b64(data),
                           b64(content.initialization_vector),
                           b64(content.ciphertext))


def check(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: {got!r}, wanted {want!r}")
    print(f"ok - {what}")


async def we_answer(tool, be):
    """oldmemo starts from our bundle; we answer."""
    xml, our_id = tool.bundle()
    bundle = oldmemo.etree.parse_bundle(xml, OUR_JID, our_id)
    content, pkm = await be.encrypt_plaintext(b"hello from oldmemo")
    session, ekm = await be.build_session_active(OUR_JID, our_id, bundle, pkm)
    kex, _ = session.key_exchange.serialize(ekm.serialize())
    got = tool.decrypt(THEIR_ID, True, kex, content)
    check("we read its pre-key message", got.get("text"), "hello from oldmemo")
    check("and used a pre-key", got["prekey_used"], "1")

    r = tool.fields("encrypt", THEIR_JID, THEIR_ID, "hello from xmppfs")
    check("our answer is no pre-key message", r["prekey"], "0")
    pkm = await be.decrypt_key_material(
        session, EncryptedKeyMaterialImpl.parse(unb64(r["key"]), OUR_JID,
                                                our_id))
    check("our key element holds key||tag",
          len(pkm.key) + len(pkm.auth_tag), 32)
    check("our IV is 12 bytes", len(unb64(r["iv"])), 12)
    text = await be.decrypt_plaintext(
        ContentImpl(unb64(r["payload"]), unb64(r["iv"])), pkm)
    check("it reads our answer", text, b"hello from xmppfs")

    content, pkm = await be.encrypt_plaintext(b"second from oldmemo")
    ekm = await be.encrypt_key_material(session, pkm)
    got = tool.decrypt(THEIR_ID, False, ekm.serialize(), content)
    check("we read its next message", got.get("text"), "second from oldmemo")

    r = tool.fields("encrypt", THEIR_JID, THEIR_ID)
    check("our key transport has no payload", r["payload"], "-")
    pkm = await be.decrypt_key_material(
        session, EncryptedKeyMaterialImpl.parse(unb64(r["key"]), OUR_JID,
                                                our_id))
    check("it reads our key transport", len(pkm.key), 16)


async def we_start(tool, be):
    """We start from oldmemo's bundle; it answers."""
    await be.generate_pre_keys(100)
    xml = oldmemo.etree.serialize_bundle(
        await be.get_bundle(THEIR_JID, THEIR_ID))
    spk = xml.find(NS + "signedPreKeyPublic")
    lines = [f"ik {xml.find(NS + 'identityKey').text}",
             f"spk {spk.get('signedPreKeyId')} {spk.text}",
             f"sig {xml.find(NS + 'signedPreKeySignature').text}"]
    lines += [f"pk {p.get('preKeyId')} {p.text}"
              for p in xml.iter(NS + "preKeyPublic")]
    tool.run("session", THEIR_JID, THEIR_ID, stdin="\n".join(lines) + "\n")
    print("ok - we build a session from its bundle")

    r = tool.fields("encrypt", THEIR_JID, THEIR_ID, "hi oldmemo, I start")
    check("our first message is a pre-key message", r["prekey"], "1")
    our_id = int(r["sid"])
    kex, auth = KeyExchangeImpl.parse(unb64(r["key"]), False)
    session, pkm = await be.build_session_passive(
        OUR_JID, our_id, kex,
        EncryptedKeyMaterialImpl.parse(auth, OUR_JID, our_id))
    text = await be.decrypt_plaintext(
        ContentImpl(unb64(r["payload"]), unb64(r["iv"])), pkm)
    check("it reads our pre-key message", text, b"hi oldmemo, I start")

    content, pkm = await be.encrypt_plaintext(b"oldmemo answers")
    ekm = await be.encrypt_key_material(session, pkm)
    got = tool.decrypt(THEIR_ID, False, ekm.serialize(), content)
    check("we read its answer", got.get("text"), "oldmemo answers")


async def main(exe):
    with tempfile.TemporaryDirectory() as d:
        await we_answer(Tool(exe, f"{d}/a"), Oldmemo(MemoryStorage()))
        await we_start(Tool(exe, f"{d}/b"), Oldmemo(MemoryStorage()))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

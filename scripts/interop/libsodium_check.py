"""Independent check of docs/protocol.md §9, §21.7 and the §19.5 room_msg frame with libsodium (ctypes) + Python stdlib."""
import base64, ctypes, ctypes.util, hashlib, json, re, sys

so = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
assert so.sodium_init() >= 0
doc = open(sys.argv[1]).read()

def buf(n): return ctypes.create_string_buffer(n)

def keypair(seed):
    pk, sk = buf(32), buf(64)
    assert so.crypto_sign_seed_keypair(pk, sk, seed) == 0
    xpk, xsk = buf(32), buf(32)
    assert so.crypto_sign_ed25519_pk_to_curve25519(xpk, pk) == 0
    assert so.crypto_sign_ed25519_sk_to_curve25519(xsk, sk) == 0
    return pk.raw, sk.raw, xpk.raw, xsk.raw

def call_id(pk):
    cs = hashlib.sha256(b"call-id/v1" + pk).digest()[:4]
    return base64.b32encode(pk + cs).decode().rstrip("=").lower()

a_pk, a_sk, a_xpk, a_xsk = keypair(bytes(range(0, 32)))
b_pk, b_sk, b_xpk, b_xsk = keypair(bytes(range(0x20, 0x40)))
checks = {
    "alice pk": a_pk.hex(), "alice id": call_id(a_pk), "alice xpk": a_xpk.hex(),
    "alice xsk": a_xsk.hex(), "bob pk": b_pk.hex(), "bob id": call_id(b_pk), "bob xpk": b_xpk.hex(),
}
# safety number (§2.5): each party's 30-digit half from its own key and ID, halves sorted
def half(pk):
    h = hashlib.sha512(b"call-safety-number/v2" + pk + call_id(pk).encode()).digest()
    for _ in range(5199):
        h = hashlib.sha512(h + pk).digest()
    return "".join("%05d" % (int.from_bytes(h[5*i:5*i+5], "big") % 100000) for i in range(6))
digits = "".join(sorted([half(a_pk), half(b_pk)]))
checks["safety"] = " ".join(digits[i:i+5] for i in range(0, 60, 5))
checks["alice half"], checks["bob half"] = half(a_pk), half(b_pk)

# torsion (§2.3): Alice's key plus an order-8 point is a valid point but not in the main subgroup
t8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
mixed = buf(32)
assert so.crypto_core_ed25519_add(mixed, a_pk, t8) == 0
assert so.crypto_core_ed25519_is_valid_point(a_pk) == 1
assert so.crypto_core_ed25519_is_valid_point(mixed.raw) == 0, "torsion vector accepted by libsodium"
checks["torsion key"] = mixed.raw.hex()
checks["torsion id"] = call_id(mixed.raw)

# envelope
pt = b'{"call_id":"00112233445566778899aabbccddeeff","reason":"hang-up"}'
nonce = bytes(range(0x40, 0x58))
ts = 1700000000
c = buf(len(pt) + 16)
assert so.crypto_box_easy(c, pt, ctypes.c_ulonglong(len(pt)), nonce, b_xpk, a_xsk) == 0
body = c.raw
msg = (b"call-envelope/v1" + bytes([1]) + a_pk + b_pk + ts.to_bytes(8, "big") + nonce
       + bytes([6]) + b"hangup" + len(body).to_bytes(4, "big") + body)
sig = buf(64)
assert so.crypto_sign_detached(sig, None, msg, ctypes.c_ulonglong(len(msg)), a_sk) == 0
b64 = lambda x: base64.b64encode(x).decode()
env = json.dumps({"v": 1, "from": call_id(a_pk), "to": call_id(b_pk), "ts": ts, "nonce": b64(nonce),
                  "kind": "hangup", "body": b64(body), "sig": b64(sig.raw)}, separators=(",", ":"))
checks.update({"body": body.hex(), "signed": msg.hex(), "sig": sig.raw.hex(), "envelope": env})
# receiver side: Bob opens with libsodium
out = buf(len(body) - 16)
assert so.crypto_box_open_easy(out, body, ctypes.c_ulonglong(len(body)), nonce, a_xpk, b_xsk) == 0
assert out.raw == pt

# signed SDP
sdp = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 "
       "1c:7e:31:9a:0b:44:5d:e2:68:f0:93:aa:17:c6:5b:0d:88:29:4e:f1:3a:b7:60:d5:92:0c:e4:7f:16:a3:bd:58\r\n")
fp = "sha-256 " + re.search(r"a=fingerprint:sha-256 (\S+)", sdp).group(1).upper()
token = bytes.fromhex("00112233445566778899aabbccddeeff")
smsg = (b"call-sdp/v1" + token + bytes([5]) + b"offer" + a_pk + b_pk + (1700000030).to_bytes(8, "big")
        + bytes([len(fp)]) + fp.encode() + hashlib.sha256(sdp.encode()).digest())
ssig = buf(64)
assert so.crypto_sign_detached(ssig, None, smsg, ctypes.c_ulonglong(len(smsg)), a_sk) == 0
sjson = json.dumps({"call_id": token.hex(), "role": "offer", "from": call_id(a_pk), "to": call_id(b_pk),
                    "expires": 1700000030, "fingerprint": fp, "sdp": sdp, "sig": b64(ssig.raw)},
                   separators=(",", ":"))
checks.update({"sdp sha256": hashlib.sha256(sdp.encode()).hexdigest(), "sdp signed": smsg.hex(), "sdp json": sjson})

# rooms (§21.6): room ID, two signed states, one signed message, built from the spec alone
def sign(sk, m):
    sg = buf(64)
    assert so.crypto_sign_detached(sg, None, m, ctypes.c_ulonglong(len(m)), sk) == 0
    return sg.raw
room = bytes(range(0xa0, 0xb0))
room_id = base64.b32encode(room + hashlib.sha256(b"call-room-id/v1" + room).digest()[:4]).decode().rstrip("=").lower()
def state_bytes(version, prev, ts_ms, name, members):
    out = (b"call-room-state/v1" + room + version.to_bytes(8, "big") + prev + ts_ms.to_bytes(8, "big")
           + a_pk + bytes([len(name)]) + name.encode() + bytes([len(members)]))
    for pk, role, mname in members:
        out += pk + bytes([1 if role == "admin" else 0, len(mname)]) + mname.encode()
    return out
def state_json(version, prev, ts_ms, name, members, sg):
    return json.dumps({"room": room_id, "version": version, "prev": b64(prev), "ts_ms": ts_ms, "name": name,
                       "members": [{"id": call_id(pk), "name": n, "role": r} for pk, r, n in members],
                       "signer": call_id(a_pk), "sig": b64(sg)}, separators=(",", ":"), ensure_ascii=False)
m1 = [(a_pk, "admin", "Alice")]
s1 = state_bytes(1, bytes(32), 1700000000000, "Book club", m1)
sig1 = sign(a_sk, s1)
h1 = hashlib.sha256(s1 + sig1).digest()
m2 = sorted(m1 + [(b_pk, "member", "Bob")], key=lambda m: m[0])
s2 = state_bytes(2, h1, 1700000001000, "Book club", m2)
rmsg = (b"call-room-msg/v1" + room + b_pk + (1).to_bytes(8, "big") + (1700000002000).to_bytes(8, "big")
        + bytes([0]) + (2).to_bytes(4, "big") + b"hi")
rsig = sign(b_sk, rmsg)
checks.update({
    "room id": room_id, "room v1 signed": s1.hex(), "room v1 hash": h1.hex(),
    "room v1 json": state_json(1, bytes(32), 1700000000000, "Book club", m1, sig1),
    "room v2 json": state_json(2, h1, 1700000001000, "Book club", m2, sign(a_sk, s2)),
    "room message json": json.dumps({"room": room_id, "sender": call_id(b_pk), "seq": 1, "ts_ms": 1700000002000,
                                     "text": "hi", "sig": b64(rsig)}, separators=(",", ":")),
    "room message id": hashlib.sha256(rmsg + rsig).digest()[:16].hex(),
    # §19.5: the same message in a room_msg frame on a call's data channel
    "room_msg frame": '{"t":"room_msg","msg":' + json.dumps({"room": room_id, "sender": call_id(b_pk), "seq": 1,
        "ts_ms": 1700000002000, "text": "hi", "sig": b64(rsig)}, separators=(",", ":")) + '}',
    # §21.5: the pair token (the smaller key first) and a join announcement
    "pair token": hashlib.sha256(b"call-room-pair/v1" + room + b"".join(
        pk + s for pk, s in sorted([(a_pk, bytes([0x11]) * 16), (b_pk, bytes([0x22]) * 16)]))).digest()[:16].hex(),
    "room_call join": json.dumps({"room": room_id, "session": "11" * 16, "op": "join"}, separators=(",", ":")),
})

bad = [k for k, v in checks.items() if v not in doc]
for k in bad:
    print("MISMATCH", k, checks[k])
print("checked", len(checks), "values;", "OK" if not bad else "FAILED")
sys.exit(1 if bad else 0)

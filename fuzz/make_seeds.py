#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/<target>/ from real packets of the official clients
(PROTOCOL.md §1 and §3). Run from anywhere: python3 fuzz/make_seeds.py
The session scripts use the format of engineio/src/fuzzing.rs (run_session_script)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
RS = b"\x1e"

OPEN = b'0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
PH0 = b'{"_placeholder":true,"num":0}'
PH1 = b'{"_placeholder":true,"num":1}'

engineio_packet = {
    "open": OPEN,
    "message_hello": b"4hello",
    "message_empty": b"4",
    "message_utf8": "4héllo €".encode(),
    "message_socketio_event": b'42["message",1,"2",{"3":[true]}]',
    "ping": b"2",
    "ping_probe": b"2probe",
    "pong": b"3",
    "pong_probe": b"3probe",
    "close": b"1",
    "upgrade": b"5",
    "noop": b"6",
    "binary_base64": b"bAQIDBA==",
    "binary_empty": b"b",
    "bad_type": b"abc",
    "bad_base64": b"b!!!",
}

engineio_payload = {
    "three_messages": b"4test1" + RS + b"4test2" + RS + b"4test3",
    "text_and_binary": b"4hello" + RS + b"bAQIDBA==",
    "message_ping_message": b"4hello" + RS + b"2" + RS + b"4world",
    "pong": b"3",
    "close": b"1",
    "noop_close": b"6" + RS + b"1",
    "socketio_connect": b"40",
    "socketio_binary_event": b"451-[\"hello\"," + PH0 + b"]" + RS + b"bAQI=",
    "error_in_middle": b"4a" + RS + b"abc" + RS + b"4b",
    "trailing_separator": b"4a" + RS,
    "utf8": "4€".encode() + RS + b"4a",
}

socketio_packet = {  # Socket.IO packets, without the Engine.IO "4"
    "connect": b"0",
    "connect_admin": b"0/admin,",
    "connect_auth": b'0{"token":"123"}',
    "connect_admin_auth": b'0/admin,{"token":"abc"}',
    "connect_no_comma": b"0/random",
    "connect_reply": b'0{"sid":"lv_VI97HAXpY6yYWAAAC"}',
    "disconnect_admin": b"1/admin,",
    "event": b'2["foo"]',
    "event_ack_id": b'212["foo"]',
    "event_args": b'2["message",1,"2",{"3":[true]}]',
    "event_with_ack": b'2456["message-with-ack",1,"2",{"3":[false]}]',
    "ack": b'3456[1,"2",{"3":[false]}]',
    "ack_admin": b'3/admin,13["bar"]',
    "ack_12": b'312["bar"]',
    "connect_error": b'4{"message":"Not authorized"}',
    "connect_error_nsp": b'4/random,{"message":"Invalid namespace"}',
    "binary_event": b'51-["hello",' + PH0 + b"]",
    "binary_event_admin": b'52-/admin,["baz",' + PH0 + b"," + PH1 + b"]",
    "binary_event_ack": b'52-789["message-with-ack",' + PH0 + b"," + PH1 + b"]",
    "binary_ack": b"61-15[\"bar\"," + PH0 + b"]",
    "bad_type": b"abc",
    "bad_event_object": b"2{}",
    "bad_ack_id": b'2abc["message-with-ack",1,"2",{"3":[false]}]',
    "bad_connect_string": b'0"x"',
    "bad_event_empty": b"2[]",
    "bad_event_reserved": b'2["disconnect"]',
}

socketio_binary = {  # messages separated by 0x1e; "b" + raw bytes = a binary message
    "one_attachment": b'51-["hello","a",' + PH0 + b"]" + RS + b"b\x01\x02",
    "two_attachments_admin": b'52-/admin,["baz",' + PH0 + b"," + PH1 + b"]" + RS + b"ba" + RS + b"bb",
    "message_back": b'52-["message",' + PH0 + b"," + PH1 + b"]" + RS + b"b\x01\x02\x03" + RS + b"b\x04\x05\x06",
    "binary_ack": b'62-789[' + PH0 + b"," + PH1 + b"]" + RS + b"b\x01" + RS + b"b\x02",
    "zero_attachments": b'50-["x"]' + RS + b'2["y"]',
    "text_between": b'51-["x",' + PH0 + b"]" + RS + b'2["y"]' + RS + b'2["z"]',
    "binary_unexpected": b"b\x01" + RS + b'2["y"]',
    "events": b"0" + RS + b'2["message",1]' + RS + b"3456[1]",
    "eleven_attachments": b'511-["x"]' + RS + (b"b\x00" + RS) * 11 + b"0",
}

OPS = dict(GetBegin=0, GetTake=1, GetEnd=2, PostBegin=3, PostBody=4, WsOpen=5, WsText=6,
           WsBinary=7, WsTake=8, WsClose=9, WsError=10, Send=11, SendVolatile=12, Close=13,
           Tick=14, PostFail=15)


def script(websocket, bound, *ops, v3=False):
    out = bytearray([(1 if websocket else 0) | ((bound - 1) << 1) | (16 if v3 else 0)])
    for op in ops:
        name, *args = op if isinstance(op, tuple) else (op,)
        out.append(OPS[name])
        for a in args:
            if isinstance(a, bytes):
                assert len(a) < 256
                out.append(len(a))
                out += a
            else:
                out.append(a)
    return bytes(out)


def v3_text(*packets):
    """A v3 text payload: `<length>:<packet>` items (lengths in UTF-16 units)."""
    return b"".join(str(len(p.decode().encode("utf-16-le")) // 2).encode() + b":" + p for p in packets)


def post(body):
    return [("PostBegin",), ("PostBody", body)]


PING_TICK = 38  # 38 x 8 ms = 304 ms > ping interval 300 ms
session = {
    "polling_connect_event": script(False, 8, *post(b"40"), "GetBegin", ("Send", 1), "GetTake",
                                    *post(b'42["message",1,"2",{"3":[true]}]'), "GetBegin", ("Send", 2), "GetTake"),
    "polling_ping_rounds": script(False, 8, *[x for _ in range(3) for x in
                                              ["GetBegin", ("Tick", PING_TICK), "GetTake", *post(b"3")]]),
    "polling_ping_timeout": script(False, 8, "GetBegin", ("Tick", PING_TICK), "GetTake", ("Tick", 30), "GetBegin"),
    "polling_upgrade": script(False, 8, "GetBegin", "WsOpen", ("WsText", 0, b"2probe"), ("WsTake", 0), "GetTake",
                              ("WsText", 0, b"5"), ("WsText", 0, b"40"), ("Send", 1), ("WsTake", 0), "GetBegin",
                              "WsOpen", ("Tick", PING_TICK), ("WsTake", 0), ("WsText", 0, b"3")),
    "polling_upgrade_aborted": script(False, 8, "WsOpen", ("WsText", 0, b"4early"), ("WsTake", 0), "WsOpen",
                                      ("WsText", 1, b"2probe"), ("WsTake", 1),
                                      *[x for _ in range(4) for x in [("Tick", PING_TICK), *post(b"3")]],
                                      ("WsTake", 1), "GetBegin", ("Send", 1), "GetTake"),
    "ws_connect_event": script(True, 8, ("WsTake", 0), ("WsText", 0, b"40"), ("WsText", 0, b'42["message",1]'),
                               ("Send", 2), ("WsTake", 0), ("Tick", PING_TICK), ("WsTake", 0), ("WsText", 0, b"3")),
    "ws_binary_event": script(True, 8, ("WsTake", 0), ("WsText", 0, b"40"),
                              ("WsText", 0, b'452-["message",' + PH0 + b"," + PH1 + b"]"),
                              ("WsBinary", 0, b"\x01\x02\x03"), ("WsBinary", 0, b"\x04\x05\x06"),
                              ("Send", 0x83), ("WsTake", 0)),
    "polling_client_close": script(False, 8, "GetBegin", *post(b"1"), "GetTake", "GetBegin"),
    "ws_client_close": script(True, 8, ("WsTake", 0), ("WsText", 0, b"1"), ("WsTake", 0)),
    "ws_ping_timeout": script(True, 8, ("WsTake", 0), ("Tick", PING_TICK), ("WsTake", 0), ("Tick", 30), ("WsTake", 0)),
    "polling_app_close": script(False, 8, ("Send", 2), "Close", ("Send", 1), "GetBegin", "GetTake", "GetBegin"),
    "polling_close_wait": script(False, 8, "Close", ("Tick", 255), ("Tick", 255), ("Tick", 255), "GetBegin"),
    "queue_full": script(False, 2, ("Send", 2), ("Send", 1), "GetBegin"),
    "overlapping_get": script(False, 8, "GetBegin", "GetBegin", "GetTake"),
    "overlapping_post": script(False, 8, "PostBegin", "PostBegin", ("PostBody", b"4a")),
    "polling_parse_error": script(False, 8, "GetBegin", *post(b"abc"), "GetTake"),
    "socketio_parse_error": script(True, 8, ("WsTake", 0), ("WsText", 0, b"4abc"), ("WsTake", 0), ("WsTake", 0)),
    "polling_volatile": script(False, 8, ("SendVolatile", 1), "GetBegin", ("SendVolatile", 1), "GetTake"),
    "polling_binary_payload": script(False, 8, *post(b'40' + RS + b'451-["hello",' + PH0 + b"]" + RS + b"bAQIDBA=="),
                                     "GetBegin", ("Send", 0x81), "GetTake"),
    "post_too_large": script(False, 8, "PostBegin", "PostFail", "GetBegin"),
    # Engine.IO v3 sessions (allow_eio3): the client pings, payloads are length-prefixed.
    "v3_polling_ping_rounds": script(False, 8, *[x for _ in range(3) for x in
                                                 [("Tick", PING_TICK), *post(v3_text(b"2")), "GetBegin", "GetTake"]],
                                    v3=True),
    "v3_polling_no_ping_timeout": script(False, 8, ("Tick", 255), "GetBegin", v3=True),
    "v3_polling_binary": script(False, 8, *post(v3_text(b"40", b'451-["hello",' + PH0 + b"]", b"b4AQID")),
                                "GetBegin", ("Send", 0x81), "GetTake",
                                *post(b"\x00\x02\xff40\x01\x04\xff\x04\x01\x02\x03"), v3=True),
    "v3_polling_pong_is_an_error": script(False, 8, *post(v3_text(b"3")), "GetBegin", v3=True),
    "v3_ws_upgrade": script(False, 8, "GetBegin", "WsOpen", ("WsText", 0, b"2probe"), ("WsTake", 0), ("Tick", 13),
                           "GetTake", ("WsText", 0, b"5"), ("WsText", 0, b"2"), ("WsBinary", 0, b"\x04\x09"),
                           ("Send", 0x81), ("WsTake", 0), ("WsBinary", 0, b"\x07"), ("WsTake", 0), v3=True),
    "ws_probe_error": script(False, 8, "WsOpen", ("WsError", 0), "WsOpen", ("WsClose", 1), "WsOpen",
                             ("WsText", 2, b"\xff"), "GetBegin", "GetEnd"),
}

for target, seeds in [("engineio_packet", engineio_packet), ("engineio_payload", engineio_payload),
                      ("socketio_packet", socketio_packet), ("socketio_binary", socketio_binary),
                      ("session", session)]:
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(target, len(seeds))

"""Host, Origin and Content-Type checks and security headers, with real HTTP requests
against a running WebRTC server on loopback (the attacks of the security issue)."""

import asyncio
import http.client
import json

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from streamnst.live.http_guard import HostPolicy, split_host
from streamnst.live.webrtc import MAX_SDP_CHARS, WebRTCServer

pytestmark = pytest.mark.network


@pytest.fixture
def server():
    s = WebRTCServer("127.0.0.1", 0, allow_hosts=("proxy.example",), connect_timeout=1.0)
    s.start()
    yield s
    s.stop()


def request(server, method, path, host=None, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{server.port}")
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_host_parsing_and_policy():
    assert split_host("LocalHost:8080") == ("localhost", 8080)
    assert split_host("[::1]:99") == ("::1", 99)
    assert split_host("example.com") == ("example.com", None)
    for bad in ("", "::1", "[::1", "a:b", "a:0", "a:70000"):
        assert split_host(bad) is None, bad
    policy = HostPolicy(8080, ("Proxy.Example",))
    assert policy.host_ok("127.0.0.1:8080") and policy.host_ok("localhost:8080")
    assert policy.host_ok("[::1]:8080") and policy.host_ok("proxy.example")
    assert not policy.host_ok("evil.example:8080")  # DNS rebinding
    assert not policy.host_ok("127.0.0.1:9090") and not policy.host_ok("localhost")
    assert not policy.host_ok(None)


def test_rebinding_hosts_are_refused_before_routing(server):
    port = server.port
    for host in (f"evil.example:{port}", f"localhost.evil.example:{port}",
                 f"127.0.0.1:{port + 1}"):
        for method, path in (("GET", "/api/state"), ("GET", "/"), ("POST", "/offer"),
                             ("GET", "/no-such-page")):
            status, _, body = request(server, method, path, host=host,
                                      headers={"Content-Type": "application/json"}, body="{}")
            assert status == 421, (host, path, status)
            assert b"allow-host" in body
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "proxy.example"):
        status, _, body = request(server, "GET", "/api/state", host=host)
        assert status == 200, host
        assert "viewers" in json.loads(body)


def test_cross_site_posts_are_refused(server):
    port = server.port
    simple = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
    status, _, _ = request(server, "POST", "/api/control", headers=simple,
                           body='{"strength": 0.2}')
    assert status == 403
    status, _, _ = request(server, "POST", "/api/control", body='{"strength": 0.2}',
                           headers={"Content-Type": "application/json", "Origin": "null"})
    assert status == 403
    # no Origin (curl, scripts): still JSON only, so a no-cors form post cannot get through
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, _, body = request(server, "POST", "/api/control", body='{"strength": 0.2}',
                                  headers={"Content-Type": ctype})
        assert status == 415 and b"application/json" in body, ctype
    # our own page: same origin, JSON -> reaches the handler (no pipeline attached here)
    status, _, body = request(server, "POST", "/api/control", body='{"strength": 0.2}',
                              headers={"Content-Type": "application/json",
                                       "Origin": f"http://127.0.0.1:{port}"})
    assert status == 400 and b"no pipeline" in body
    status, headers, _ = request(server, "OPTIONS", "/api/control",
                                 headers={"Origin": "http://evil.example",
                                          "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in headers  # we answer no CORS


def test_security_headers_on_pages_and_errors(server):
    for path in ("/", "/viewer.js", "/api/state", "/nothing"):
        status, headers, _ = request(server, "GET", path)
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp
    assert request(server, "GET", "/nothing")[0] == 404


def test_sdp_cap_and_unconnected_peers_are_closed(server):
    big = json.dumps({"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * (MAX_SDP_CHARS // 5)})
    status, _, body = request(server, "POST", "/offer", body=big,
                              headers={"Content-Type": "application/json"})
    assert status == 413, body

    async def offer() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()  # the client goes away: ICE never completes
        return sdp

    sdp = asyncio.run(offer())
    status, _, body = request(server, "POST", "/offer", body=json.dumps(
        {"sdp": sdp, "type": "offer"}), headers={"Content-Type": "application/json"})
    assert status == 200, body
    assert len(server.peers) == 1
    for _ in range(100):  # connect_timeout is 1 s here
        if not server.peers:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert not server.peers and not server.viewers.tracks


def test_token_stays_out_of_the_log_line(caplog):
    from streamnst.live.webrtc import WebRTCSink

    sink = WebRTCSink(host="0.0.0.0", port=0)
    with caplog.at_level("INFO"):
        sink.open(64, 48, 15)
    try:
        assert sink.server.token not in caplog.text
        assert sink.server.token not in sink.name
        assert "token=..." in caplog.text
    finally:
        sink.close()

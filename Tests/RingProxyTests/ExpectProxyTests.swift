// `tcp-request connection expect-proxy layer4 if { src ... }`: the front balancers' connections
// start with a PROXY header (read, checked, never forwarded, its address the client's), every
// other source's connection is proxied as it comes. Config mapping and the engine end to end.
import Glibc
import XCTest
@testable import RingProxy

final class ExpectProxyTests: XCTestCase {
    private func load(_ body: String) throws -> EngineConfig {
        let file = try ConfigParser.parse(text: "\(tcpDefaults)\n\(body)", file: "t.cfg").get()
        return try EngineConfig.load(file).engine
    }

    private func refusal(_ body: String) -> String {
        do {
            _ = try load(body)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    func testConditionsOnTheSourceBecomeTheFrontBalancersNetworks() throws {
        let config = try load("""
            backend b
              server s 127.0.0.1:1
            frontend f
              bind 127.0.0.1:1883
              acl balancers src 10.1.0.0/16 fd00::1
              tcp-request connection expect-proxy layer4 if balancers || { src 192.168.1.5 }
              default_backend b
            """)
        let rule = try XCTUnwrap(config.frontends[0].expectProxy)
        XCTAssertEqual(rule.sources.map(\.description), ["10.1.0.0/16", "fd00::1", "192.168.1.5"])
        XCTAssertTrue(rule.whenMatching)
        XCTAssertFalse(config.frontends[0].acceptProxy)
        let unless = try load("backend b\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:1883\n"
                              + "  tcp-request connection expect-proxy layer4 unless { src 127.0.0.0/8 }\n  default_backend b")
        XCTAssertEqual(unless.frontends[0].expectProxy?.whenMatching, false)
        let always = try load("backend b\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:1883\n"
                              + "  tcp-request connection expect-proxy layer4\n  default_backend b")
        XCTAssertNil(always.frontends[0].expectProxy)
        XCTAssertTrue(always.frontends[0].acceptProxy, "without a condition every connection starts with a header")
    }

    func testOtherConditionsAreRefusedAtTheirLine() {
        let base = "backend b\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:1883\n"
        XCTAssertTrue(refusal(base + "  tcp-request connection expect-proxy layer4 if { src 10.0.0.1 } { src 10.0.0.2 }\n  default_backend b")
            .contains("t.cfg:10: 'tcp-request connection': ringproxy reads 'expect-proxy layer4' conditions on the source address only"))
        XCTAssertTrue(refusal(base + "  tcp-request connection expect-proxy layer4 if !{ src 10.0.0.1 }\n  default_backend b")
            .contains("conditions on the source address only"))
        XCTAssertTrue(refusal(base + "  tcp-request connection expect-proxy layer4 if { src nowhere }\n  default_backend b")
            .contains("'nowhere' is not an IPv4 or IPv6 address or network"))
    }

    func testFrontBalancersSendAHeaderAndOtherClientsDoNot() throws {
        let echo = TestServer.echo()
        defer { echo.stop() }
        let (engine, port) = try startEngine(servers: [echo.port], cores: 1) { config in
            config.frontends[0].expectProxy = ExpectProxyConfig(sources: [AddressPrefix.parse("127.0.0.2")!], whenMatching: true)
        }
        defer { engine.stop(); engine.wait() }
        let balancer = SocketAddress(ipv4: 127, 0, 0, 2, port: 0)
        // From the balancer: the header is read and not forwarded.
        let fd = TestSocket.connect(port: port, from: balancer)
        XCTAssertTrue(TestSocket.writeAll(fd, Array("PROXY TCP4 203.0.113.7 127.0.0.1 40000 1883\r\n".utf8) + [42]))
        XCTAssertEqual(TestSocket.readExactly(fd, 1), [42], "only the byte after the header comes back")
        close(fd)
        XCTAssertEqual(engine.statistics().total[.proxyHeadersReceived], 1)
        // From the balancer without a header: refused, nothing forwarded.
        let bare = TestSocket.connect(port: port, from: balancer)
        XCTAssertTrue(TestSocket.writeAll(bare, Array("hello, no header here\r\n".utf8)))
        XCTAssertTrue(TestSocket.isClosedByPeer(bare))
        close(bare)
        XCTAssertEqual(engine.statistics().total[.proxyRejectedSignature], 1)
        // From anyone else: proxied as it comes, a header-looking line included.
        let client = TestSocket.connect(port: port, from: SocketAddress(ipv4: 127, 0, 0, 3, port: 0))
        let line = Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8)
        XCTAssertTrue(TestSocket.writeAll(client, line))
        XCTAssertEqual(TestSocket.readExactly(client, line.count), line)
        close(client)
        XCTAssertEqual(engine.statistics().total[.proxyHeadersReceived], 1)
    }
}

final class MQTTWebSocketConfigTests: XCTestCase {
    private func parse(_ body: String) -> Result<ConfigFile, ConfigError> {
        ConfigParser.parse(text: "\(tcpDefaults)\n\(body)", file: "t.cfg")
    }

    func testTheExtensionMapsToTheFrontendsWebSocketMode() throws {
        let file = try parse("""
            backend b
              server s 127.0.0.1:18081
            frontend ws
              bind 127.0.0.1:8083
              option mqtt-websocket path /mqtt subprotocol optional
              default_backend b
            frontend plain
              bind 127.0.0.1:8084
              default_backend b
            """).get()
        let config = try EngineConfig.load(file).engine
        XCTAssertEqual(config.frontends[0].webSocket, WebSocketFrontendConfig(path: "/mqtt", requireSubprotocol: false))
        XCTAssertNil(config.frontends[1].webSocket, "the seed's 8083 passthrough stays a passthrough")
    }

    func testBadArgumentsAreRefusedAtTheirLine() {
        let cases: [(String, String)] = [
            ("option mqtt-websocket path mqtt", "t.cfg:10: 'option mqtt-websocket': invalid path 'mqtt' (an absolute path without query, e.g. /mqtt)"),
            ("option mqtt-websocket subprotocol maybe", "t.cfg:10: 'option mqtt-websocket': invalid subprotocol setting 'maybe' (expected 'required' or 'optional')"),
            ("option mqtt-websocket deflate on", "t.cfg:10: 'option mqtt-websocket': unexpected 'deflate' (option mqtt-websocket [path /mqtt] [subprotocol required|optional])"),
        ]
        for (line, expected) in cases {
            let body = "backend b\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:8083\n  \(line)\n  default_backend b"
            switch parse(body) {
            case .success: XCTFail("accepted: \(line)")
            case .failure(let error): XCTAssertEqual(error.diagnostics.first?.description, expected)
            }
        }
    }
}

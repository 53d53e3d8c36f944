// Health check keywords from an haproxy.cfg to the engine's HealthCheckConfig: HAProxy's
// defaults and timeout rules, tcp-check rules, ringproxy's mqtt-check, the PROXY header rule
// for checks, and every form ringproxy does not run refused at its line.
import XCTest
@testable import RingProxy

final class HealthCheckConfigTests: XCTestCase {
    private func load(_ body: String) throws -> EngineConfig {
        let file = try ConfigParser.parse(text: "\(tcpDefaults)\n\(body)", file: "t.cfg").get()
        return try EngineConfig.load(file).engine
    }

    private func errors(_ body: String) -> [String] {
        switch ConfigParser.parse(text: "\(tcpDefaults)\n\(body)", file: "t.cfg") {
        case .failure(let error): return error.diagnostics.map(\.description)
        case .success(let file):
            do {
                _ = try EngineConfig.load(file)
                return []
            } catch {
                return error.diagnostics.map(\.description)
            }
        }
    }

    func testPlainCheckUsesHAProxysDefaults() throws {
        let config = try load("backend b\n  server s 127.0.0.1:1883 check\nfrontend f\n  bind 127.0.0.1:1883\n  default_backend b")
        let check = try XCTUnwrap(config.backends[0].servers[0].check)
        XCTAssertEqual(check.interMs, 2_000)
        XCTAssertEqual(check.fastinterMs, 2_000)
        XCTAssertEqual(check.downinterMs, 2_000)
        XCTAssertEqual(check.rise, 2)
        XCTAssertEqual(check.fall, 3)
        XCTAssertEqual(check.steps, [])
        XCTAssertEqual(check.kind, "layer 4")
        XCTAssertEqual(check.address.port, 1883)
        XCTAssertEqual(check.connectTimeoutMs, 2_000, "without timeout check, inter bounds the connect")
        XCTAssertNil(check.sendProxy)
        XCTAssertNil(config.backends[0].servers[1...].first, "one server")
    }

    func testMQTTCheckIntervalsAddressAndTimeouts() throws {
        let config = try load("""
            backend b
              option mqtt-check
              timeout check 300ms
              default-server inter 100 fastinter 50 downinter 1s rise 2 fall 2
              server s 127.0.0.1:1883 check addr 127.0.0.2 port 1884 observe layer4 error-limit 3 on-error mark-down on-marked-down shutdown-sessions
              server t 127.0.0.1:1885 backup disabled on-marked-up shutdown-backup-sessions
              option allbackups
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """)
        let backend = config.backends[0]
        let check = try XCTUnwrap(backend.servers[0].check)
        XCTAssertEqual(check.kind, "mqtt")
        XCTAssertEqual(check.steps, HealthCheckConfig.mqttSteps)
        XCTAssertEqual(check.address.description, "127.0.0.2:1884")
        XCTAssertEqual(check.interMs, 100)
        XCTAssertEqual(check.fastinterMs, 50)
        XCTAssertEqual(check.downinterMs, 1_000)
        XCTAssertEqual(check.connectTimeoutMs, 100, "min(timeout connect, inter) with timeout check")
        XCTAssertEqual(check.readTimeoutMs, 300)
        XCTAssertEqual(backend.servers[0].observe, ObserveConfig(errorLimit: 3, onError: .markDown))
        XCTAssertTrue(backend.servers[0].shutdownSessionsOnDown)
        XCTAssertNil(backend.servers[1].check)
        XCTAssertTrue(backend.servers[1].backup)
        XCTAssertTrue(backend.servers[1].startsInMaintenance, "disabled servers exist, in maintenance")
        XCTAssertTrue(backend.servers[1].shutdownBackupSessionsOnUp)
        XCTAssertTrue(backend.allBackups)
    }

    func testTCPCheckRulesBecomeSteps() throws {
        let config = try load("""
            backend b
              option tcp-check
              tcp-check comment "an MQTT CONNECT, then a CONNACK with return code 0"
              tcp-check connect port 1884 send-proxy
              tcp-check send-binary 100c00044d5154540402000000
              tcp-check expect binary 20020000 comment connack
              tcp-check send PING
              tcp-check expect string PONG
              server s 127.0.0.1:1883 check
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """)
        let check = try XCTUnwrap(config.backends[0].servers[0].check)
        XCTAssertEqual(check.kind, "tcp-check")
        XCTAssertEqual(check.address.port, 1884)
        XCTAssertEqual(check.sendProxy, .v1)
        XCTAssertEqual(check.steps, [
            .send([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00, 0x00]),
            .expect([0x20, 0x02, 0x00, 0x00]),
            .send(Array("PING".utf8)),
            .expect(Array("PONG".utf8)),
        ])
    }

    func testTCPCheckRulesAreInheritedFromDefaults() throws {
        let file = try ConfigParser.parse(text: """
            defaults
              mode tcp
              timeout connect 5s
              timeout client 60s
              timeout server 60s
              option tcp-check
              tcp-check send PING
              tcp-check expect string PONG
            backend b
              server s 127.0.0.1:1883 check
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """, file: "t.cfg").get()
        let check = try XCTUnwrap(try EngineConfig.load(file).engine.backends[0].servers[0].check)
        XCTAssertEqual(check.steps, [.send(Array("PING".utf8)), .expect(Array("PONG".utf8))])
    }

    func testChecksSendThePROXYHeaderAsHAProxyDecides() throws {
        let config = try load("""
            backend b
              server same 127.0.0.1:1 check send-proxy-v2
              server other-port 127.0.0.1:2 check send-proxy-v2 port 3
              server forced 127.0.0.1:4 check send-proxy-v2 port 5 check-send-proxy
              server plain 127.0.0.1:6 check check-send-proxy
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """)
        let versions = config.backends[0].servers.map { $0.check?.sendProxy }
        XCTAssertEqual(versions, [.v2, nil, .v2, .v1])
    }

    func testFormsRingproxyDoesNotRunAreRefusedAtTheirLine() {
        let frontend = "frontend f\n  bind 127.0.0.1:1883\n  default_backend b"
        let cases: [(String, String)] = [
            ("  tcp-check expect ! binary 20", "t.cfg:7: 'tcp-check expect': negated expects ('!') are not supported by ringproxy (expect what a healthy server sends)"),
            ("  tcp-check expect rstring ^OK", "t.cfg:7: 'tcp-check expect': 'expect rstring' is not supported by ringproxy (use 'expect string <text>' or 'expect binary <hex>')"),
            ("  tcp-check send-binary 2x", "t.cfg:7: 'tcp-check send-binary': invalid hexadecimal string '2x' (an even number of hex digits, e.g. 101000044d515454)"),
            ("  tcp-check send PING\n  tcp-check connect", "t.cfg:8: 'tcp-check connect': 'tcp-check connect' must come before the other tcp-check rules (without it the check connects first anyway)"),
            ("  tcp-check connect ssl", "t.cfg:7: 'tcp-check connect': 'ssl' is not supported by ringproxy (ringproxy reads 'port', 'send-proxy', 'comment' and 'default')"),
            ("  tcp-check sned PING", "t.cfg:7: 'tcp-check': unknown action 'sned' (did you mean 'tcp-check send'?)"),
            ("  server t 127.0.0.1:2 check observe layer7", "t.cfg:7: 'server': 'observe layer7' watches HTTP responses; ringproxy proxies TCP (use 'observe layer4')"),
            ("  server t 127.0.0.1:2 check on-error retry", "t.cfg:7: 'server': invalid on-error action 'retry' (expected 'fastinter', 'fail-check', 'sudden-death', 'mark-down')"),
            ("  option httpchk", "t.cfg:7: 'option httpchk': 'option httpchk' is not supported by ringproxy: check MQTT brokers with 'option mqtt-check' (CONNECT, expect CONNACK 0) or 'option tcp-check' rules"),
        ]
        for (line, expected) in cases {
            let body = "backend b\n\(line)\n  server s 127.0.0.1:1883 check\n\(frontend)"
            XCTAssertEqual(errors(body).first, expected, line)
        }
    }

    func testEverySeedFileWithChecksMapsThem() throws {
        for name in ["balance-roundrobin.cfg", "balance-weighted.cfg", "mqtt-ws.cfg"] {
            let file = try XCTUnwrap(ConfigFixtures.seed(name))
            let config = try EngineConfig.load(file).engine
            XCTAssertTrue(config.backends.flatMap(\.servers).allSatisfy { $0.check != nil }, name)
        }
    }
}

final class ProxyCounterTests: XCTestCase {
    func testCountMatchesTheCases() {
        XCTAssertEqual(ProxyCounter.count, ProxyCounter.allCases.count)
    }
}

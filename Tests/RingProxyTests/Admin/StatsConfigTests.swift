// The stats keywords through the loader: a `mode http` frontend or listen with `stats` lines is a
// stats page (no backend needed), `stats admin` conditions and the global stats socket are read,
// and what the page cannot do is refused at its line. The seed's stats.cfg passes `-c`.
import Foundation
import XCTest
@testable import RingProxy

final class StatsConfigTests: XCTestCase {
    private func load(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> EngineConfig {
        let parsed = try XCTUnwrap(ConfigTestSupport.parse(ConfigTestSupport.preamble + text, file: file, line: line))
        return try EngineConfig.load(parsed).engine
    }

    private func refusals(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        guard let parsed = ConfigTestSupport.parse(ConfigTestSupport.preamble + text, file: file, line: line) else { return [] }
        do {
            _ = try EngineConfig.load(parsed)
            XCTFail("expected refusals", file: file, line: line)
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    func testAStatsListenWithEveryKeywordMapsToAPage() throws {
        let engine = try load("""
            listen stats
              mode http
              bind 127.0.0.1:8404
              bind [::1]:8404
              timeout http-request 3s
              stats enable
              stats uri /admin
              stats refresh 30s
              stats realm Ring\\ Proxy
              stats auth ops:pw1
              stats auth viewer:pw2
              stats hide-version
              stats admin if { src 10.0.0.0/8 192.168.1.5 ::1 }
            frontend mqtt
              bind 127.0.0.1:1883
              default_backend brokers
            backend brokers
              server b1 127.0.0.1:18831
            """)
        XCTAssertEqual(engine.frontends.map(\.name), ["mqtt"])
        XCTAssertEqual(engine.backends.map(\.name), ["brokers"])
        let page = try XCTUnwrap(engine.statsPages.first)
        XCTAssertEqual(page.binds, [try SocketAddress.parse("127.0.0.1:8404"), try SocketAddress.parse("[::1]:8404")])
        XCTAssertEqual(page.uri, "/admin")
        XCTAssertEqual(page.refreshMs, 30_000)
        XCTAssertEqual(page.realm, "Ring Proxy")
        XCTAssertEqual(page.credentials.map(\.user), ["ops", "viewer"])
        XCTAssertTrue(page.hideVersion)
        XCTAssertEqual(page.requestTimeoutMs, 3_000)
        XCTAssertTrue(page.admin.allows([10, 1, 2, 3]))
        XCTAssertTrue(page.admin.allows([192, 168, 1, 5]))
        XCTAssertFalse(page.admin.allows([192, 168, 1, 6]))
        XCTAssertTrue(page.admin.allows([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 9, 9, 9]), "an IPv4-mapped peer matches its IPv4 network")
    }

    func testAdminConditionsTrueAndLocalhostAndDefaults() throws {
        func admin(_ line: String) throws -> StatsAdminRule {
            try XCTUnwrap(try load("frontend s\n  mode http\n  bind 127.0.0.1:8404\n  stats enable\n\(line)").statsPages.first).admin
        }
        XCTAssertEqual(try admin("  stats admin if TRUE\n"), .always)
        XCTAssertEqual(try admin("  stats admin if LOCALHOST\n"), StatsAdminRule.localhost)
        XCTAssertEqual(try admin(""), .never)
        XCTAssertEqual(try XCTUnwrap(try load("frontend s\n  mode http\n  bind 127.0.0.1:8404\n  stats enable\n").statsPages.first).uri, "/haproxy?stats")
    }

    func testWhatThePageCannotDoIsRefusedAtItsLine() {
        XCTAssertEqual(refusals("""
            frontend s
              mode http
              bind 127.0.0.1:8404
              stats enable
              stats admin if { src_port 80 }
              stats admin unless LOCALHOST
              stats scope mqtt
              default_backend brokers
            backend brokers
              mode http
              server b1 127.0.0.1:18831
            """), [
                "haproxy.cfg:22: 'mode': backend 'brokers' is in http mode; ringproxy proxies TCP (MQTT) only",
                "haproxy.cfg:14: 'default_backend': frontend 's' serves the stats page; ringproxy proxies TCP (MQTT) only, never HTTP: it cannot also send requests to 'brokers' (route MQTT from a 'mode tcp' frontend)",
                "haproxy.cfg:18: 'stats admin': condition '{ src_port 80 }' is not supported (stats admin if TRUE | if LOCALHOST | if { src 10.0.0.0/8 192.168.1.5 })",
                "haproxy.cfg:19: 'stats admin': 'unless' is not supported (stats admin if TRUE | if LOCALHOST | if { src 10.0.0.0/8 192.168.1.5 })",
                "haproxy.cfg:20: 'stats scope': not implemented by ringproxy's stats page (the page shows every proxy, with the version unless 'stats hide-version')",
            ])
    }

    func testAnHTTPFrontendWithoutStatsIsStillRefused() {
        XCTAssertEqual(refusals("""
            frontend web
              mode http
              bind 127.0.0.1:8080
            """), ["haproxy.cfg:14: 'mode': frontend 'web' is in http mode; ringproxy proxies TCP (MQTT) only"])
    }

    func testTheGlobalStatsSocketAndTimeoutAreRead() throws {
        let parsed = try XCTUnwrap(ConfigTestSupport.parse("""
            global
              stats socket /run/ringproxy/admin.sock mode 660 level admin
              stats timeout 2m
            frontend mqtt
              bind 127.0.0.1:1883
              timeout client 1m
              default_backend brokers
            backend brokers
              timeout connect 1s
              timeout server 1m
              server b1 127.0.0.1:18831
            """))
        XCTAssertEqual(try EngineConfig.load(parsed).engine.statsSocket,
                       StatsSocketConfig(path: "/run/ringproxy/admin.sock", mode: 0o660, level: .admin, timeoutMs: 120_000))
        XCTAssertEqual(ConfigTestSupport.errors("global\n  stats socket 127.0.0.1:9999 level admin\n"),
                       ["haproxy.cfg:2: 'stats socket': '127.0.0.1:9999' is not a UNIX socket path; only a UNIX stats socket is implemented (stats socket /run/ringproxy/admin.sock mode 600 level admin)"])
        XCTAssertEqual(ConfigTestSupport.errors("global\n  stats socket /a level root\n"),
                       ["haproxy.cfg:2: 'stats socket': unknown level 'root' (user, operator or admin)"])
    }

    func testTheSeedStatsConfigurationPassesTheCheck() throws {
        let binary = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkipError("run `swift build` first") }
        let shared = "/work/shared/seed-configs/stats.cfg"
        let path = FileManager.default.fileExists(atPath: shared) ? shared : ConfigFixtures.seedPath("stats.cfg")
        let (status, output) = try ChildProcess(binary, ["-c", "-f", path]).finish(within: 10)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("Configuration file is valid"), output)
        XCTAssertFalse(output.contains("default_backend"), output)
    }
}

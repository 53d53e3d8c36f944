// What EngineConfig.load does with keywords that parse but need the engine: each one either
// takes effect in the EngineConfig it builds, or is refused with the exact
// `FILE:LINE: 'keyword': message (hint)` of its own line. The stats page is served by a
// `mode http` frontend or listen with nothing else to do; a `stats` line anywhere else is refused.
import XCTest
@testable import RingProxy

final class ConfigLoadingTests: XCTestCase {
    /// The engine configuration `text` (the shared preamble first) loads into; fails the test
    /// when it is refused.
    private func load(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> EngineConfig? {
        guard let parsed = ConfigTestSupport.parse(ConfigTestSupport.preamble + text, file: file, line: line) else { return nil }
        do {
            return try EngineConfig.load(parsed).engine
        } catch {
            XCTFail("unexpected refusals:\n\(error)", file: file, line: line)
            return nil
        }
    }

    /// Asserts that `text` (the shared preamble first: its lines start at 14) parses and that
    /// loading it refuses exactly `expected`.
    private func assertRefusals(_ text: String, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) {
        guard let parsed = ConfigTestSupport.parse(ConfigTestSupport.preamble + text, file: file, line: line) else { return }
        do {
            _ = try EngineConfig.load(parsed)
            XCTFail("expected refusals, but it loaded", file: file, line: line)
        } catch {
            XCTAssertEqual(error.diagnostics.map(\.description), expected, file: file, line: line)
        }
    }

    // MARK: stats

    func testStatsUriWithoutStatsEnableIsRefusedLikeStatsEnable() {
        assertRefusals("""
            frontend mqtt_in
              bind *:1883
              stats uri /stats
              stats realm Brokers
              stats auth admin:secret
              stats refresh 10s
              default_backend brokers
            backend brokers
              server b1 127.0.0.1:18831
            """, [
                "haproxy.cfg:16: 'stats uri': the stats page is served only by a 'mode http' frontend or listen with no other job",
                "haproxy.cfg:17: 'stats realm': the stats page is served only by a 'mode http' frontend or listen with no other job",
                "haproxy.cfg:18: 'stats auth': the stats page is served only by a 'mode http' frontend or listen with no other job",
                "haproxy.cfg:19: 'stats refresh': the stats page is served only by a 'mode http' frontend or listen with no other job",
            ])
    }

    func testAnHTTPFrontendWithStatsBecomesAStatsPageAndNeedsNoBackend() throws {
        let engine = try XCTUnwrap(load("""
            frontend stats
              mode http
              bind 127.0.0.1:8888
              stats enable
              stats uri /stats
              stats refresh 10s
            """))
        XCTAssertEqual(engine.frontends.count, 0)
        XCTAssertEqual(engine.statsPages, [StatsPageConfig(name: "stats", binds: [try SocketAddress.parse("127.0.0.1:8888")], uri: "/stats", refreshMs: 10_000)])
    }

    func testStatsInABackendIsRefusedAtItsLine() {
        assertRefusals("""
            frontend mqtt_in
              bind *:1883
              default_backend brokers
            backend brokers
              stats enable
              stats uri /stats
              server b1 127.0.0.1:18831
            """, [
                "haproxy.cfg:18: 'stats enable': the stats page is served only by a 'mode http' frontend or listen with no other job",
                "haproxy.cfg:19: 'stats uri': the stats page is served only by a 'mode http' frontend or listen with no other job",
            ])
    }

    func testStatsKeywordsRingproxyDoesNotReadAreRefusedInsteadOfIgnored() throws {
        let text = """
            listen mqtt
              bind *:1883
              stats admin if TRUE
              stats scope mqtt
              stats show-node
              stats hide-version
              server b1 127.0.0.1:18831
            """
        XCTAssertEqual(ConfigTestSupport.warnings(ConfigTestSupport.preamble + text), [], "no longer 'ignored' warnings")
        assertRefusals(text, [
            "haproxy.cfg:16: 'stats admin': the stats page is served only by a 'mode http' frontend or listen with no other job",
            "haproxy.cfg:17: 'stats scope': the stats page is served only by a 'mode http' frontend or listen with no other job",
            "haproxy.cfg:18: 'stats show-node': the stats page is served only by a 'mode http' frontend or listen with no other job",
            "haproxy.cfg:19: 'stats hide-version': the stats page is served only by a 'mode http' frontend or listen with no other job",
        ])
    }

    func testStatsInADefaultsSectionIsRefusedOnceAtItsLine() {
        assertRefusals("""
            defaults
              timeout connect 5s
              timeout client 1m
              timeout server 1m
              stats uri /stats
            frontend mqtt_in
              bind *:1883
              default_backend brokers
            backend brokers
              server b1 127.0.0.1:18831
            """, [
                "haproxy.cfg:18: 'stats uri': the stats page is served only by a 'mode http' frontend or listen with no other job",
            ])
    }

    // MARK: bind maxconn

    func testBindMaxconnOnTheOnlyListenerIsTheFrontendsLimit() throws {
        let below = try XCTUnwrap(load("""
            frontend mqtt_in
              bind *:1883 maxconn 500
              default_backend brokers
            backend brokers
              server b1 127.0.0.1:18831
            """))
        XCTAssertEqual(below.frontends[0].maxConnections, 500)
        let above = try XCTUnwrap(load("""
            frontend mqtt_in
              bind *:1883 maxconn 50000
              default_backend brokers
            backend brokers
              server b1 127.0.0.1:18831
            """))
        XCTAssertEqual(above.frontends[0].maxConnections, 20_000, "the frontend's maxconn (from the defaults) is the lower limit")
    }

    func testBindMaxconnOnAFrontendWithSeveralListenersIsRefusedAtItsLine() {
        assertRefusals("""
            frontend two_lines
              bind 127.0.0.1:1883 maxconn 500
              bind 127.0.0.1:1884
              default_backend brokers
            frontend two_addresses
              bind 127.0.0.1:2883,127.0.0.1:2884 maxconn 500
              default_backend brokers
            backend brokers
              server b1 127.0.0.1:18831
            """, [
                "haproxy.cfg:15: 'maxconn': a limit per listener is not implemented yet; frontend 'two_lines' has 2 listening addresses (use the frontend's 'maxconn' to limit them together)",
                "haproxy.cfg:19: 'maxconn': a limit per listener is not implemented yet; frontend 'two_addresses' has 2 listening addresses (use the frontend's 'maxconn' to limit them together)",
            ])
    }

    // MARK: redispatch

    func testOptionRedispatchIsWhatTheEngineDoesOnEveryRetry() throws {
        let engine = try XCTUnwrap(load("""
            frontend mqtt_in
              bind *:1883
              default_backend brokers
            backend brokers
              option redispatch
              retries 2
              server b1 127.0.0.1:18831
              server b2 127.0.0.1:18832
            backend every_retry
              option redispatch 1
              server b1 127.0.0.1:18831
            """))
        XCTAssertEqual(engine.backends.map(\.retries), [2, 3], "each retry goes to the next server (Balancer.next)")
    }
}

final class TuneBufsizeTests: XCTestCase {
    private func load(_ text: String) throws -> EngineConfig {
        try EngineConfig.load(ConfigParser.parse(text: text, file: "haproxy.cfg", environment: [:]).get()).engine
    }

    func testTuneBufsizeBoundsTheCONNECTHeldAndTheDefaultHoldsAnyCONNECTWithoutAWill() throws {
        let body = "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
            + "backend b\n  server s 127.0.0.1:1883\nfrontend f\n  bind 127.0.0.1:18830\n  default_backend b\n"
        XCTAssertEqual(try load(body).frontends[0].connectMaxBytes, 256 * 1024)
        XCTAssertEqual(try load("global\n  tune.bufsize 16384\n" + body).frontends[0].connectMaxBytes, 16_384)
        XCTAssertEqual(try load("global\n  tune.bufsize 1m\n" + body).frontends[0].connectMaxBytes, 1 << 20)
        XCTAssertThrowsError(try load("global\n  tune.bufsize 100\n" + body)) { error in
            XCTAssertTrue("\(error)".contains("haproxy.cfg:2: 'tune.bufsize': 100 is out of range"), "\(error)")
        }
    }
}

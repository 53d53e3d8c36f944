// The public surface a consumer (the command line's `-c`, the engine at start and reload) relies
// on: the diagnostic line format, both parse entry points, lookups, and the model being plain
// Sendable values.
import Foundation
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class ConfigAPITests: XCTestCase {
    func testDiagnosticLineFormat() {
        XCTAssertEqual(
            ConfigDiagnostic(file: "haproxy.cfg", line: 12, keyword: "server", message: "missing address", hint: "expected 'server <name> <address>:<port>'").description,
            "haproxy.cfg:12: 'server': missing address (expected 'server <name> <address>:<port>')")
        XCTAssertEqual(
            ConfigDiagnostic(file: "haproxy.cfg", line: 12, keyword: "", message: "unknown keyword 'balanse' in backend section", hint: "did you mean 'balance'?").description,
            "haproxy.cfg:12: unknown keyword 'balanse' in backend section (did you mean 'balance'?)")
        XCTAssertEqual(
            ConfigDiagnostic(file: "haproxy.cfg", line: 3, keyword: "daemon", message: "ignored").description,
            "haproxy.cfg:3: 'daemon': ignored")
        XCTAssertEqual(
            ConfigDiagnostic(file: "/etc/ringproxy.cfg", line: 0, keyword: "", message: "cannot read the configuration: no such file").description,
            "/etc/ringproxy.cfg: cannot read the configuration: no such file")
    }

    func testConfigErrorDescribesOneProblemPerLine() {
        let error = ConfigError(diagnostics: [
            ConfigDiagnostic(file: "a.cfg", line: 1, keyword: "mode", message: "unknown mode 'x'"),
            ConfigDiagnostic(file: "a.cfg", line: 4, keyword: "bind", message: "missing address"),
        ])
        XCTAssertEqual(error.description, "a.cfg:1: 'mode': unknown mode 'x'\na.cfg:4: 'bind': missing address")
        XCTAssertEqual(error.localizedDescription, error.description)
        XCTAssertEqual(error.warnings, [])
    }

    func testParsingAFileAndItsTextGiveTheSameModel() throws {
        let path = ConfigFixtures.seedPath("seed-full.cfg")
        let fromFile = try ConfigParser.parse(contentsOf: path, environment: [:])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let fromText = try ConfigParser.parse(text: text, file: path, environment: [:]).get()
        XCTAssertEqual(fromFile, fromText)
        XCTAssertEqual(fromFile.frontends.first?.location.file, path)
    }

    func testLookupsByName() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("seed-full.cfg"))
        XCTAssertEqual(config.frontend(named: "mqtt_ws_tls_frontend")?.binds.first?.addresses.first?.port, 8084)
        XCTAssertNil(config.frontend(named: "nope"))
        XCTAssertEqual(config.backend(named: "mqtt_ws_backend")?.server(named: "emqx2")?.address.port, 18082)
        XCTAssertNil(config.backend(named: "mqtt_ws_backend")?.server(named: "emqx9"))
        XCTAssertNil(config.effectiveBackend(named: "nope"))
        XCTAssertEqual(config.effectiveFrontends.map(\.name), config.frontends.map(\.name))
        XCTAssertEqual(config.effectiveBackends.map(\.name), config.backends.map(\.name))
    }

    func testModelIsSendableAcrossTasks() async throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("balance-weighted.cfg"))
        let weights = await Task.detached { config.effectiveBackend(named: "mqtt_backend")?.servers.map(\.weight) ?? [] }.value
        XCTAssertEqual(weights, [5, 2, 3])
    }

    func testSeveralGlobalSectionsMerge() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            global
              maxconn 100
              log stdout local0
            global
              nbthread 2
              log 10.0.0.5:1514 local1
            """))
        XCTAssertEqual(config.global.location?.line, 1)
        XCTAssertEqual(config.global.maxconn, 100)
        XCTAssertEqual(config.global.nbthread, 2)
        XCTAssertEqual(config.global.logTargets.map(\.destination), [.stdout, .udp(host: "10.0.0.5", port: 1514)])
    }

    func testEmptyConfigurationParsesToAnEmptyModel() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("# nothing here\n\n"))
        XCTAssertEqual(config, ConfigFile())
        XCTAssertNil(config.global.location)
    }

    func testEnvironmentDefaultsToTheProcessEnvironment() throws {
        setenv("RINGPROXY_CONFIG_TEST_PORT", "1999", 1)
        defer { unsetenv("RINGPROXY_CONFIG_TEST_PORT") }
        let result = ConfigParser.parse(text: """
            frontend f
              bind "*:${RINGPROXY_CONFIG_TEST_PORT}"
            """, file: "haproxy.cfg")
        let config = try result.get()
        XCTAssertEqual(config.frontends.first?.binds.first?.addresses.first?.port, 1999)
    }

    func testSyslogCodesFollowSyslogOrder() {
        XCTAssertEqual(SyslogFacility.kern.code, 0)
        XCTAssertEqual(SyslogFacility.local0.code, 16)
        XCTAssertEqual(SyslogFacility.local7.code, 23)
        XCTAssertEqual(SyslogLevel.emerg.severity, 0)
        XCTAssertEqual(SyslogLevel.debug.severity, 7)
        XCTAssertLessThan(SyslogLevel.err, SyslogLevel.info)
    }

    func testEditDistanceCountsASwapAsOneEdit() {
        XCTAssertEqual(ConfigKeywords.editDistance("balanse", "balance"), 1)
        XCTAssertEqual(ConfigKeywords.editDistance("tcplgo", "tcplog"), 1)
        XCTAssertEqual(ConfigKeywords.editDistance("", "abc"), 3)
        XCTAssertEqual(ConfigKeywords.editDistance("kitten", "sitting"), 3)
        XCTAssertNil(ConfigKeywords.suggestion(for: "frobnicate", among: ["balance", "bind"]))
        XCTAssertEqual(ConfigKeywords.suggestion(for: "Balance", among: ["balance", "bind"]), "balance")
    }
}

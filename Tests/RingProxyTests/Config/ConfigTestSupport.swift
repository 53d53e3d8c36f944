// Helpers shared by the configuration tests: the seed fixtures (read through paths relative to
// this file, so the tests run from any working directory) and parsing shortcuts that fail the
// test with the parser's own diagnostics when the outcome is not the expected one.
import Foundation
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

enum ConfigFixtures {
    /// Tests/.../Fixtures/seed, next to this file.
    static let seedDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
        .appendingPathComponent("seed")

    static func seedPath(_ name: String) -> String {
        seedDirectory.appendingPathComponent(name).path
    }

    static var seedFileNames: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: seedDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".cfg") }.sorted()
    }

    /// Parses a seed file; fails the test (and returns nil) if it does not parse.
    static func seed(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> ConfigFile? {
        do {
            return try ConfigParser.parse(contentsOf: seedPath(name), environment: [:])
        } catch {
            XCTFail("\(name) did not parse:\n\(error)", file: file, line: line)
            return nil
        }
    }
}

enum ConfigTestSupport {
    /// The global and defaults sections of the seeds (12 lines and a blank one), so that
    /// snippets appended to it are complete configurations; appended text starts on line 14.
    static let preamble = """
        global
          log 127.0.0.1 local3 info
          maxconn 1024000

        defaults
          log global
          mode tcp
          option tcplog
          timeout connect 10000
          timeout client 240s
          timeout server 240s
          maxconn 20000


        """

    /// Parses `text`; fails the test with every diagnostic when it does not parse.
    static func parse(
        _ text: String, environment: [String: String] = [:],
        file: StaticString = #filePath, line: UInt = #line
    ) -> ConfigFile? {
        switch ConfigParser.parse(text: text, file: "haproxy.cfg", environment: environment) {
        case .success(let config):
            return config
        case .failure(let error):
            XCTFail("unexpected configuration errors:\n\(error)", file: file, line: line)
            return nil
        }
    }

    /// The error lines `text` produces; fails the test when it parses.
    static func errors(
        _ text: String, environment: [String: String] = [:],
        file: StaticString = #filePath, line: UInt = #line
    ) -> [String] {
        switch ConfigParser.parse(text: text, file: "haproxy.cfg", environment: environment) {
        case .success:
            XCTFail("expected configuration errors, but it parsed", file: file, line: line)
            return []
        case .failure(let error):
            return error.diagnostics.map(\.description)
        }
    }

    /// Asserts that `text` fails with exactly `expected` as the error's description.
    static func assertErrors(
        _ text: String, _ expected: [String], environment: [String: String] = [:],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let actual = errors(text, environment: environment, file: file, line: line)
        XCTAssertEqual(actual, expected, file: file, line: line)
    }

    /// The warning lines of a configuration that parses.
    static func warnings(
        _ text: String, environment: [String: String] = [:],
        file: StaticString = #filePath, line: UInt = #line
    ) -> [String] {
        parse(text, environment: environment, file: file, line: line)?.warnings.map(\.description) ?? []
    }
}

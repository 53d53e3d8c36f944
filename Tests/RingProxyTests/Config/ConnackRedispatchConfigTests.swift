// `option mqtt-connack-redispatch` (a ringproxy extension) in the configuration: read in
// defaults and backend sections, inherited and turned off with `no option`, ignored with a
// warning in a frontend (as HAProxy treats backend options there); a backend with it needs the
// CONNECT read before connecting.
import XCTest
@testable import RingProxy

final class ConnackRedispatchConfigTests: XCTestCase {
    private func load(_ text: String) throws -> EngineConfig {
        try EngineConfig.load(ConfigParser.parse(text: text, file: "haproxy.cfg", environment: [:]).get()).engine
    }

    func testTheOptionIsReadInABackendAndInheritedFromDefaultsUnlessTurnedOff() throws {
        let config = try load("""
            defaults
              mode tcp
              option mqtt-connack-redispatch
            backend inherits
              server a 127.0.0.1:1883
            backend own
              no option mqtt-connack-redispatch
              server b 127.0.0.1:1884
            frontend f
              bind 127.0.0.1:1883
              default_backend inherits
            frontend g
              bind 127.0.0.1:1884
              default_backend own
            """)
        XCTAssertEqual(config.backends.map(\.name), ["inherits", "own"])
        XCTAssertEqual(config.backends.map(\.connackRedispatch), [true, false])
        XCTAssertTrue(config.backends[0].needsConnect, "the CONNECT is read to be replayed")
        XCTAssertFalse(config.backends[1].needsConnect)
    }

    func testItIsOffByDefaultAndIgnoredWithAWarningInAFrontend() throws {
        let config = try load("backend b\n  server s 127.0.0.1:1883\nfrontend f\n  bind 127.0.0.1:1883\n  default_backend b\n")
        XCTAssertFalse(config.backends[0].connackRedispatch)
        // As HAProxy treats backend options (option redispatch) written in a frontend.
        let warnings = ConfigTestSupport.warnings("""
            frontend f
              bind 127.0.0.1:1883
              option mqtt-connack-redispatch
              default_backend b
            backend b
              server s 127.0.0.1:1883
            """)
        XCTAssertTrue(warnings.contains("haproxy.cfg:3: 'option mqtt-connack-redispatch': ignored in frontend section "
                                        + "(it only applies in a defaults, backend or listen section)"), "\(warnings)")
    }
}

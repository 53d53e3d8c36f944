// `source <addr>[-<addr>]` (HAProxy's keyword; address ranges are a ringproxy extension) and
// `option mqtt-keepalive-timeout` (a ringproxy extension): where each may be written, what a
// server or frontend ends up with, and the exact FILE:LINE error for each mistake.
import XCTest
@testable import RingProxy

final class SourcePoolConfigTests: XCTestCase {
    private func load(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> EngineConfig? {
        guard let parsed = ConfigTestSupport.parse(text, file: file, line: line) else { return nil }
        do {
            return try EngineConfig.load(parsed).engine
        } catch {
            XCTFail("unexpected refusals:\n\(error)", file: file, line: line)
            return nil
        }
    }

    private func pools(_ engine: EngineConfig?) -> [String] {
        engine?.backends.flatMap { $0.servers.map { $0.sourcePool?.description ?? "-" } } ?? []
    }

    private let frontend = "frontend f\n  bind 127.0.0.1:1883\n  default_backend b\n"

    // MARK: source

    func testTheServersOwnSourceWinsOverDefaultServerOverBackendOverDefaults() {
        let engine = load("""
            defaults
              mode tcp
              source 10.0.0.1
            \(frontend)backend b
              source 10.0.1.1-10.0.1.8
              server plain 127.0.0.1:1883
              default-server source 10.0.2.1
              server fromdefault 127.0.0.1:1884
              server own 127.0.0.1:1885 source 10.0.3.1-10.0.3.2
            backend c
              server inherits 127.0.0.1:1886
            """)
        XCTAssertEqual(pools(engine), ["10.0.1.1-10.0.1.8", "10.0.2.1", "10.0.3.1-10.0.3.2", "10.0.0.1"])
        XCTAssertEqual(engine?.backends[0].servers[0].sourcePool?.count, 8)
    }

    func testIPv6PoolsVaryInTheirLast32Bits() {
        let engine = load("""
            \(frontend)backend b
              server a [::1]:1883 source [fd00::10]-[fd00::1:f]
              server b [::1]:1884 source fd00::5
            """)
        XCTAssertEqual(pools(engine), ["fd00::10-fd00::1:f", "fd00::5"])
        XCTAssertEqual(engine?.backends[0].servers[0].sourcePool?.count, 0x1_0000)
    }

    func testPoolAddressesAreConsecutive() throws {
        let pool = try SourcePool.parse("10.0.0.254-10.0.1.2").get()
        XCTAssertEqual((0..<pool.count).map { pool.address(at: $0).description },
                       ["10.0.0.254:0", "10.0.0.255:0", "10.0.1.0:0", "10.0.1.1:0", "10.0.1.2:0"])
    }

    func testSourceMistakesAreErrorsAtTheirLine() {
        ConfigTestSupport.assertErrors("""
            backend b
              source 10.0.0.9-10.0.0.1
              server a 127.0.0.1:1883 source 10.0.0.300
              server b 127.0.0.1:1884 source 10.0.0.1-::2
              server c 127.0.0.1:1885 source 0.0.0.0:1025-65535
              server d 127.0.0.1:1886 source 10.0.0.1:4000
              server e 127.0.0.1:1887 source broker.example
              server f 127.0.0.1:1888 source 10.0.0.1 usesrc clientip
              server g [::1]:1889 source [fd00::1]-[fd01::1]
            backend c
              source 10.0.0.1 usesrc client
              source 10.0.0.1 interface eth0
              source
            frontend f
              bind 127.0.0.1:1883
              source 10.0.0.1
            """, [
                "haproxy.cfg:2: 'source': source range '10.0.0.9-10.0.0.1' is reversed (write the lower address first: '10.0.0.1-10.0.0.9')",
                "haproxy.cfg:3: 'server': invalid source address '10.0.0.300' (an IPv4 or IPv6 address of this host (no host names), e.g. 10.0.0.1 or 10.0.0.1-10.0.0.20)",
                "haproxy.cfg:4: 'server': source range '10.0.0.1-::2' mixes IPv4 and IPv6 (both ends of a range are IPv4, or both IPv6)",
                "haproxy.cfg:5: 'server': source port ranges ('0.0.0.0:1025-65535') are not supported: ringproxy lets the kernel choose the port at connect (IP_BIND_ADDRESS_NO_PORT) "
                    + "(write the address alone; the kernel's ports are net.ipv4.ip_local_port_range, and a range of addresses 'A-B' multiplies them)",
                "haproxy.cfg:6: 'server': a fixed source port ('10.0.0.1:4000') is not supported: ringproxy lets the kernel choose the port at connect (IP_BIND_ADDRESS_NO_PORT) (write the address alone)",
                "haproxy.cfg:7: 'server': invalid source address 'broker.example' (an IPv4 or IPv6 address of this host (no host names), e.g. 10.0.0.1 or 10.0.0.1-10.0.0.20)",
                "haproxy.cfg:8: 'server': 'usesrc' (transparent proxying with the client's address) is not supported by ringproxy (use 'send-proxy-v2' to pass the client's address to the broker)",
                "haproxy.cfg:9: 'server': source range '[fd00::1]-[fd01::1]' spans more than the last 32 bits of an IPv6 address (ringproxy takes at most 2^32 source addresses per pool)",
                "haproxy.cfg:11: 'source': 'usesrc' (transparent proxying with the client's address) is not supported by ringproxy (use 'send-proxy-v2' to pass the client's address to the broker)",
                "haproxy.cfg:12: 'source': 'interface' on 'source' is not supported by ringproxy (choose the interface by the source address)",
                "haproxy.cfg:13: 'source': missing address (expected 'source <address>[-<address>]', e.g. 'source 10.0.0.1-10.0.0.8')",
                "haproxy.cfg:16: 'source': not allowed in frontend section (use it in a defaults, backend or listen section)",
            ])
    }

    func testAPoolOfTheOtherFamilyThanItsServerIsRefusedAtTheServerLine() throws {
        let parsed = try XCTUnwrap(ConfigTestSupport.parse("""
            \(frontend)backend b
              source 10.0.0.1
              server v6 [::1]:1883
            """))
        XCTAssertThrowsError(try EngineConfig.load(parsed)) { error in
            XCTAssertEqual((error as? ConfigError)?.diagnostics.map(\.description),
                           ["haproxy.cfg:6: 'source': server 'b/v6' is IPv6 but its source 10.0.0.1 is not (give IPv6 servers an IPv6 source and IPv4 servers an IPv4 one)"])
        }
    }

    // MARK: option mqtt-keepalive-timeout

    func testKeepAliveTimeoutIsAFrontendOptionWithOptionalBounds() {
        let engine = load("""
            defaults
              mode tcp
              option mqtt-keepalive-timeout min 2s max 10m
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            frontend g
              bind 127.0.0.1:1884
              no option mqtt-keepalive-timeout
              default_backend b
            frontend h
              bind 127.0.0.1:1885
              option mqtt-keepalive-timeout
              default_backend b
            backend b
              server s 127.0.0.1:18831
            """)
        XCTAssertEqual(engine?.frontends.map(\.mqttKeepAliveTimeout), [MQTTKeepAliveBounds(minMs: 2_000, maxMs: 600_000), nil, MQTTKeepAliveBounds()])
    }

    func testKeepAliveTimeoutMistakesAreErrorsAtTheirLine() {
        ConfigTestSupport.assertErrors("""
            frontend f
              bind 127.0.0.1:1883
              option mqtt-keepalive-timeout min 10s max 5s
              option mqtt-keepalive-timeout factor 2
              option mqtt-keepalive-timeout max
              option mqtt-keepalive-timeout min 0
            backend b
              option mqtt-keepalive-timeout
            """, [
                "haproxy.cfg:3: 'option mqtt-keepalive-timeout': 'min' (10s) is above 'max' (5s)",
                "haproxy.cfg:4: 'option mqtt-keepalive-timeout': unexpected 'factor' (option mqtt-keepalive-timeout [min <time>] [max <time>])",
                "haproxy.cfg:5: 'option mqtt-keepalive-timeout': missing time after 'max' (option mqtt-keepalive-timeout [min <time>] [max <time>])",
                "haproxy.cfg:6: 'option mqtt-keepalive-timeout': 'min' must be more than 0 (option mqtt-keepalive-timeout [min <time>] [max <time>])",
                "haproxy.cfg:8: 'option mqtt-keepalive-timeout': not allowed in backend section (use it in a defaults, frontend or listen section)",
            ])
    }
}

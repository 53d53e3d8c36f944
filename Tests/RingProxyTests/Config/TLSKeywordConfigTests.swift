// Every TLS keyword of a bind line and of `global` either reaches TLSBindConfig or is refused at
// its line: the mapping of each, a bind's own keyword over the `ssl-default-bind-*` one, the
// versions as HAProxy derives them from no-*/force-*/ssl-min-ver/ssl-max-ver, and each refusal.
import XCTest
@testable import RingProxy

final class TLSKeywordConfigTests: XCTestCase {
    /// `global` lines, then a frontend whose bind line ends with `options` (line 5 + globals).
    private func text(global: [String], options: String) -> String {
        (["global"] + global.map { "  " + $0 } + [
            "backend b",
            "  server s 127.0.0.1:1883",
            "frontend f",
            "  bind 127.0.0.1:8883 ssl crt server.pem " + options,
            "  default_backend b",
        ]).joined(separator: "\n")
    }

    private func tls(global: [String] = [], _ options: String, file: StaticString = #filePath, line: UInt = #line) throws -> TLSBindConfig {
        let parsed = try ConfigParser.parse(text: text(global: global, options: options), file: "t.cfg").get()
        return try XCTUnwrap(EngineConfig.load(parsed).engine.frontends.first?.tls, file: file, line: line)
    }

    /// The diagnostics, parser's or loader's, of a configuration that must fail.
    private func refusals(global: [String] = [], _ options: String) -> [String] {
        switch ConfigParser.parse(text: text(global: global, options: options), file: "t.cfg") {
        case .failure(let error): return error.diagnostics.map(\.description)
        case .success(let parsed):
            do {
                _ = try EngineConfig.load(parsed)
                return ["accepted"]
            } catch {
                return error.diagnostics.map(\.description)
            }
        }
    }

    func testEachBindKeywordMapsToItsField() throws {
        XCTAssertEqual(try tls("curves X25519:P-256").curves, "X25519:P-256")
        XCTAssertEqual(try tls("ecdhe prime256v1").curves, "prime256v1", "HAProxy's single-curve form")
        XCTAssertEqual(try tls("ecdhe prime256v1 curves X25519").curves, "X25519", "curves wins over ecdhe, as in HAProxy")
        XCTAssertEqual(try tls("sigalgs ECDSA+SHA256").sigalgs, "ECDSA+SHA256")
        XCTAssertEqual(try tls("client-sigalgs ECDSA+SHA384").clientSigalgs, "ECDSA+SHA384")
        XCTAssertEqual(try tls("no-tls-tickets").tickets, false)
        XCTAssertEqual(try tls("no-tls-tickets tls-tickets").tickets, true, "the last word on the line wins")
        XCTAssertEqual(try tls("").tickets, true)
        XCTAssertEqual(try tls("prefer-client-ciphers").preferClientCiphers, true)
        XCTAssertEqual(try tls("").preferClientCiphers, false)
        XCTAssertEqual(try tls("strict-sni").strictSNI, true)
        XCTAssertEqual(try tls("alpn mqtt no-alpn").alpn, [])
        XCTAssertEqual(try tls("alpn mqtt,x-amzn-mqtt-ca").alpn, ["mqtt", "x-amzn-mqtt-ca"])
    }

    func testVersionKeywordsBecomeMinimumAndMaximumAsHAProxyDerivesThem() throws {
        func versions(_ options: String, global: [String] = []) throws -> [TLSProtocolVersion?] {
            let config = try tls(global: global, options)
            return [config.minVersion, config.maxVersion]
        }
        XCTAssertEqual(try versions(""), [.tls12, nil], "TLS 1.2 and up by default")
        XCTAssertEqual(try versions("force-tlsv12"), [.tls12, .tls12])
        XCTAssertEqual(try versions("force-tlsv13"), [.tls13, .tls13])
        XCTAssertEqual(try versions("no-tlsv12"), [.tls13, nil])
        XCTAssertEqual(try versions("no-tlsv13"), [.tls12, .tls12])
        XCTAssertEqual(try versions("no-sslv3 no-tlsv10 no-tlsv11"), [.tls12, nil], "below the floor: nothing to disable")
        XCTAssertEqual(try versions("ssl-min-ver TLSv1.3"), [.tls13, nil])
        XCTAssertEqual(try versions("ssl-max-ver TLSv1.2"), [.tls12, .tls12])
        XCTAssertEqual(try versions("ssl-min-ver TLSv1.2 no-tlsv11"), [.tls12, nil], "an ignored no-* that changes nothing is fine")
        XCTAssertEqual(try versions("", global: ["ssl-default-bind-options no-tlsv12"]), [.tls13, nil])
        XCTAssertEqual(try versions("", global: ["ssl-default-bind-options ssl-min-ver TLSv1.3"]), [.tls13, nil])
        XCTAssertEqual(try versions("", global: ["ssl-default-bind-options force-tlsv12"]), [.tls12, .tls12])
    }

    func testABindsOwnKeywordWinsOverTheGlobalDefault() throws {
        let global = [
            "ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256",
            "ssl-default-bind-ciphersuites TLS_AES_256_GCM_SHA384",
            "ssl-default-bind-curves P-256",
            "ssl-default-bind-sigalgs ECDSA+SHA256",
            "ssl-default-bind-client-sigalgs ECDSA+SHA256",
            "ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets prefer-client-ciphers strict-sni",
            "tune.ssl.cachesize 1000",
            "tune.ssl.lifetime 600",
        ]
        let inherited = try tls(global: global, "")
        XCTAssertEqual(inherited.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256")
        XCTAssertEqual(inherited.ciphersuites, "TLS_AES_256_GCM_SHA384")
        XCTAssertEqual(inherited.curves, "P-256")
        XCTAssertEqual(inherited.sigalgs, "ECDSA+SHA256")
        XCTAssertEqual(inherited.clientSigalgs, "ECDSA+SHA256")
        XCTAssertEqual(inherited.minVersion, .tls13)
        XCTAssertEqual(inherited.tickets, false)
        XCTAssertEqual(inherited.preferClientCiphers, true)
        XCTAssertEqual(inherited.strictSNI, true)
        XCTAssertEqual(inherited.sessionCacheEntriesMax, 1000)
        XCTAssertEqual(inherited.sessionLifetimeS, 600)

        let own = try tls(global: global, "ciphers ECDHE-ECDSA-CHACHA20-POLY1305 ciphersuites TLS_AES_128_GCM_SHA256 curves X25519 "
                          + "sigalgs ECDSA+SHA384 client-sigalgs ECDSA+SHA384 ssl-min-ver TLSv1.2 tls-tickets no-strict-sni")
        XCTAssertEqual(own.ciphers, "ECDHE-ECDSA-CHACHA20-POLY1305")
        XCTAssertEqual(own.ciphersuites, "TLS_AES_128_GCM_SHA256")
        XCTAssertEqual(own.curves, "X25519")
        XCTAssertEqual(own.sigalgs, "ECDSA+SHA384")
        XCTAssertEqual(own.clientSigalgs, "ECDSA+SHA384")
        XCTAssertEqual(own.minVersion, .tls12)
        XCTAssertEqual(own.tickets, true)
        XCTAssertEqual(own.strictSNI, false)
        XCTAssertEqual(try tls(global: global, "ecdhe X25519").curves, "X25519", "the bind's ecdhe over the global curves")
        XCTAssertEqual(try tls(global: ["tune.ssl.lifetime 2m"], "").sessionLifetimeS, 120)
        XCTAssertEqual(try tls(global: ["tune.ssl.cachesize 0"], "").sessionCacheEntriesMax, 0)
    }

    func testTLSKeywordsNotBuiltAreRefusedAtTheirLine() {
        let cases: [(String, String)] = [
            ("npn mqtt", "t.cfg:5: 'bind': NPN is not supported: OpenSSL's TLS 1.3 path has no NPN and clients negotiate with ALPN (use 'alpn')"),
            ("ca-ignore-err all", "t.cfg:5: 'bind': ignoring certificate verification errors is not implemented by ringproxy (fix the client certificates' chains, or use 'verify optional')"),
            ("crt-ignore-err 10", "t.cfg:5: 'bind': ignoring certificate verification errors is not implemented by ringproxy (fix the client certificates, or use 'verify optional')"),
            ("ca-verify-file v.pem", "t.cfg:5: 'bind': 'ca-verify-file' (CAs used for verification but not named to clients) is not implemented by ringproxy (use 'ca-file')"),
            ("allow-0rtt", "t.cfg:5: 'bind': TLS 1.3 early data (0-RTT) is not implemented by ringproxy (remove it: clients then send their data after the handshake)"),
            ("no-ca-names", "t.cfg:5: 'bind': 'no-ca-names' is not implemented by ringproxy: the CA names of 'ca-file' are sent to clients (remove it)"),
            ("generate-certificates", "t.cfg:5: 'bind': generating certificates is not implemented by ringproxy"),
            ("tls-ticket-keys keys.txt", "t.cfg:5: 'bind': shared ticket keys are not implemented by ringproxy: each context draws its own at random, rotated at every reload (remove it)"),
            ("force-tlsv11", "t.cfg:5: 'bind': 'force-tlsv11' is below the TLS 1.2 floor: ringproxy terminates TLS 1.2 and 1.3 only (remove it, or use 'ssl-min-ver TLSv1.2')"),
            ("force-sslv3", "t.cfg:5: 'bind': 'force-sslv3' is below the TLS 1.2 floor: ringproxy terminates TLS 1.2 and 1.3 only (remove it, or use 'ssl-min-ver TLSv1.2')"),
            ("ssl-min-ver TLSv1.0", "t.cfg:5: 'bind': 'ssl-min-ver TLSv1.0' is below the TLS 1.2 floor: ringproxy terminates TLS 1.2 and 1.3 only (use 'ssl-min-ver TLSv1.2' or leave it out)"),
            ("ssl-max-ver TLSv1.1", "t.cfg:5: 'bind': 'ssl-max-ver TLSv1.1' is below the TLS 1.2 floor: ringproxy terminates TLS 1.2 and 1.3 only (use 'ssl-max-ver TLSv1.2' or leave it out)"),
            ("no-tlsv12 no-tlsv13", "t.cfg:5: 'bind': all SSL/TLS versions are disabled (ringproxy terminates TLS 1.2 and 1.3)"),
            ("ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.2", "t.cfg:5: 'bind': 'ssl-min-ver' is above 'ssl-max-ver': all SSL/TLS versions are disabled"),
            ("ssl-max-ver TLSv1.3 no-tlsv13", "t.cfg:5: 'bind': 'no-tlsv13' has no effect once 'ssl-min-ver' or 'ssl-max-ver' is set (on this line): HAProxy ignores it, ringproxy refuses it (use only 'ssl-min-ver' and 'ssl-max-ver')"),
            ("ssl-default-bind-options", "t.cfg:5: 'bind': unknown option 'ssl-default-bind-options'"),
        ]
        for (options, expected) in cases {
            XCTAssertEqual(refusals(options), [expected], options)
        }
        XCTAssertEqual(refusals(global: ["ssl-default-bind-options ssl-min-ver TLSv1.2"], "no-tlsv12"), [
            "t.cfg:6: 'bind': 'no-tlsv12' has no effect once 'ssl-min-ver' or 'ssl-max-ver' is set (by 'ssl-default-bind-options' at line 2): HAProxy ignores it, ringproxy refuses it (use only 'ssl-min-ver' and 'ssl-max-ver')",
        ])
    }

    func testGlobalTLSKeywordsAreReadOrRefusedAtTheirLine() {
        XCTAssertEqual(refusals(global: [
            "ssl-default-bind-options ssl-min-ver TLSv1.0",
            "ssl-default-bind-options force-tlsv10 no-tls-tickets",
            "ssl-default-bind-options no-tickets",
            "ssl-default-bind-options",
            "ssl-default-bind-ciphers",
            "tune.ssl.lifetime 0",
            "tune.ssl.default-dh-param 512",
            "ssl-provider legacy",
            "ssl-engine rdrand",
            "issuers-chain-path /etc/ssl/issuers",
        ], ""), [
            "t.cfg:2: 'ssl-default-bind-options': 'ssl-min-ver TLSv1.0' is below the TLS 1.2 floor: ringproxy terminates TLS 1.2 and 1.3 only (use 'ssl-min-ver TLSv1.2' or leave it out)",
            "t.cfg:3: 'ssl-default-bind-options': 'force-tlsv10' is below the TLS 1.2 floor: ringproxy terminates TLS 1.2 and 1.3 only (remove it, or use 'ssl-min-ver TLSv1.2')",
            "t.cfg:4: 'ssl-default-bind-options': unknown option 'no-tickets' (did you mean 'tls-tickets'?)",
            "t.cfg:5: 'ssl-default-bind-options': missing argument (e.g. 'ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets')",
            "t.cfg:6: 'ssl-default-bind-ciphers': missing argument (expected 'ssl-default-bind-ciphers <list>')",
            "t.cfg:7: 'tune.ssl.lifetime': the lifetime must be at least 1s",
            "t.cfg:8: 'tune.ssl.default-dh-param': value 512 is out of range (allowed: 1024 to 2147483647)",
            "t.cfg:9: 'ssl-provider': loading OpenSSL providers is not supported by ringproxy: it uses the default provider",
            "t.cfg:10: 'ssl-engine': OpenSSL engines are not supported by ringproxy: it uses OpenSSL's default provider",
            "t.cfg:11: 'issuers-chain-path': not implemented by ringproxy: put the chain in the 'crt' file",
        ])
    }

    func testDHParametersAreAcceptedWithAWarningThatSaysWhy() {
        XCTAssertEqual(ConfigTestSupport.warnings("""
            global
              tune.ssl.default-dh-param 2048
              ssl-dh-param-file /etc/haproxy/dhparam.pem
              ssl-default-server-options no-tls-tickets
              ssl-default-bind-options no-sslv3 no-tls-tickets
            frontend f
              bind 127.0.0.1:1883 no-tls-tickets curves X25519
              timeout client 1s
              default_backend b
            backend b
              timeout connect 1s
              timeout server 1s
              server s 127.0.0.1:1884
            """), [
                "haproxy.cfg:2: 'tune.ssl.default-dh-param': has no effect: ringproxy's key exchange is ECDHE (TLS 1.2) or a TLS 1.3 group, never finite-field DH",
                "haproxy.cfg:3: 'ssl-dh-param-file': has no effect: ringproxy's key exchange is ECDHE (TLS 1.2) or a TLS 1.3 group, never finite-field DH",
                "haproxy.cfg:7: 'bind': TLS settings without 'ssl': this listener accepts plain TCP (add 'ssl' to terminate TLS)",
            ])
    }
}

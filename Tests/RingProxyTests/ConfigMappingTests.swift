// What the engine does not do yet is refused at its line, never silently dropped; what the
// seed's MQTT rules mean is recognised.
import XCTest
@testable import RingProxy

final class ConfigMappingTests: XCTestCase {
    private func load(_ body: String) throws -> LoadedConfiguration {
        let text = """
            \(tcpDefaults)
            \(body)
            """
        let file = try ConfigParser.parse(text: text, file: "t.cfg").get()
        return try EngineConfig.load(file)
    }

    private func refusal(_ body: String) -> String {
        do {
            _ = try load(body)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    func testUnbuiltFeaturesAreRefusedAtTheirLine() {
        let cases: [(String, String)] = [
            ("backend b\n  server s 127.0.0.1:1 send-proxy-v2 proxy-v2-options cert-sig\nfrontend f\n  bind 127.0.0.1:1883\n  default_backend b",
             "t.cfg:7: 'proxy-v2-options': 'cert-sig' is not implemented yet (ssl, cert-cn, ssl-cipher and authority are)"),
            ("backend b\n  server s 127.0.0.1:1 send-proxy-v2 proxy-v2-options unique-id\nfrontend f\n  bind 127.0.0.1:1883\n  unique-id-format %[src]\n  default_backend b",
             "t.cfg:10: 'unique-id-format': sample fetches ('%[...]') in unique-id-format are not supported by ringproxy (use %ci %cp %fi %fp %Ts %ms %rt %pid %H %f)"),
            ("backend b\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:1883 accept-proxy\n  bind 127.0.0.1:1884\n  default_backend b",
             "t.cfg:10: 'bind': frontend 'f' has 'accept-proxy' on another bind but not on this one; ringproxy applies it to a whole frontend"),
            ("backend b\n  stick-table type ip size 1k expire 30s store conn_cur\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:1883 accept-proxy\n"
                + "  tcp-request connection track-sc0 src table b\n  default_backend b",
             "t.cfg:11: 'tcp-request connection': per-address limits on an accept-proxy frontend are not supported yet: these rules run before the PROXY header, on the front balancer's address"),
            ("backend b\n  balance uri\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:1883\n  default_backend b",
             "t.cfg:7: 'balance': 'balance uri' is not supported"),
            ("backend b\n  server s 127.0.0.1:1\nbackend c\n  server s 127.0.0.1:2\nfrontend f\n  bind 127.0.0.1:1883\n  use_backend c if { req.len gt 0 }\n  default_backend b",
             "t.cfg:12: 'use_backend': 'req.len' cannot choose a backend"),
            ("backend b\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:8883 ssl crt server.pem accept-proxy\n  default_backend b",
             "t.cfg:9: 'bind': a PROXY header in front of TLS on one listener is not supported yet"),
            ("backend b\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:8883 ssl crt a.pem\n  bind 127.0.0.1:8884 ssl crt b.pem\n  default_backend b",
             "t.cfg:10: 'bind': frontend 'f' terminates TLS with other settings on another bind (line 9)"),
            ("backend b\n  server s 127.0.0.1:1\nfrontend f\n  bind 127.0.0.1:1883\n  log /dev/log local0\n  default_backend b",
             "t.cfg:10: 'log': logging to a unix socket (/dev/log) is not supported yet"),
        ]
        for (body, expected) in cases {
            let message = refusal(body)
            XCTAssertTrue(message.contains(expected), "expected '\(expected)', got: \(message)")
        }
    }

    func testTheSeedsMQTTRulesBecomeRequireMQTTAndAStickTableOnTheClientID() throws {
        let loaded = try load("""
            backend mqtt_backend
              stick-table type string len 16 size 1k expire 10m
              stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)
              server emqx1 127.0.0.1:18831 weight 5
              server emqx2 127.0.0.1:18832 weight 2
            frontend mqtt_servers
              bind *:1883
              tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
              default_backend mqtt_backend
              log 127.0.0.1:5514 local3 info
            """)
        let frontend = loaded.engine.frontends[0]
        XCTAssertTrue(frontend.requireMQTT)
        XCTAssertEqual(frontend.inspectTimeoutMs, 60_000, "no inspect-delay: the CONNECT may take up to timeout client")
        XCTAssertEqual(frontend.binds.map(\.description), ["0.0.0.0:1883"])
        let backend = loaded.engine.backends[0]
        XCTAssertEqual(backend.stickTable, StickTableConfig(keyLengthMax: 16, entriesMax: 1024, expireMs: 600_000))
        XCTAssertEqual(backend.servers.map(\.weight), [5, 2])
        XCTAssertEqual(backend.connectTimeoutMs, 5_000)
        XCTAssertEqual(loaded.engine.log, LogConfig(destination: .syslog(SocketAddress(ipv4: 127, 0, 0, 1, port: 5514)), facility: 19, severity: 6))
        XCTAssertTrue(loaded.notes.contains { $0.contains("wait for the CONNECT") }, "\(loaded.notes)")
    }

    func testSendProxyAndAcceptProxyReachTheEngine() throws {
        let loaded = try load("""
            backend b
              default-server send-proxy
              server s1 127.0.0.1:1
              server s2 127.0.0.1:2 send-proxy-v2
              server s3 127.0.0.1:3 no-send-proxy
            frontend f
              bind 127.0.0.1:1883,[::1]:1883 accept-proxy
              default_backend b
            frontend plain
              bind 127.0.0.1:1884
              default_backend b
            """)
        XCTAssertEqual(loaded.engine.backends[0].servers.map(\.proxyProtocol), [.v1, .v2, nil])
        XCTAssertEqual(loaded.engine.frontends.map(\.acceptProxy), [true, false])
    }

    func testBalanceHashOnTheClientIDIsStatelessStickiness() throws {
        let loaded = try load("""
            backend b
              balance hash req.payload(0,0),mqtt_field_value(connect,client_identifier)
              server s 127.0.0.1:1
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """)
        XCTAssertEqual(loaded.engine.backends[0].balance, .clientIDHash)
        XCTAssertTrue(loaded.engine.backends[0].needsClientID)
    }

    func testBalanceClientIDHashIsTheHashOnTheClientIDUnderAShorterName() throws {
        func backend(balance: String) -> String {
            """
            backend b
              balance \(balance)
              server s 127.0.0.1:1
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """
        }
        let hashForm = try load(backend(balance: "hash req.payload(0,0),mqtt_field_value(connect,client_identifier)"))
        let extended = try load(backend(balance: "clientid-hash"))
        XCTAssertEqual(extended.engine.backends[0].balance, .clientIDHash)
        XCTAssertEqual(extended.engine.backends, hashForm.engine.backends)
        XCTAssertEqual(extended.engine.frontends, hashForm.engine.frontends, "the same CONNECT wait, bounded the same way")
        // The same notes (the CONNECT wait without an inspect-delay), and one saying what it is.
        let note = "t.cfg:7: 'balance clientid-hash' is a ringproxy extension (HAProxy refuses it), "
            + "read as 'balance hash req.payload(0,0),mqtt_field_value(connect,client_identifier)'"
        XCTAssertEqual(extended.notes, [note] + hashForm.notes)
        XCTAssertTrue(hashForm.notes.contains { $0.contains("MQTT rules wait for the CONNECT") }, "\(hashForm.notes)")
    }

    func testBalanceClientIDHashInDefaultsAndListenReachesEveryBackend() throws {
        let loaded = try load("""
            defaults
              balance clientid-hash
            backend b
              server s 127.0.0.1:1
            listen l
              bind 127.0.0.1:1884
              server s 127.0.0.1:2
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """)
        XCTAssertEqual(loaded.engine.backends.map(\.balance), [.clientIDHash, .clientIDHash])
        XCTAssertEqual(loaded.notes.filter { $0.contains("ringproxy extension") }.count, 1, "one note for the one line: \(loaded.notes)")
        let listen = try load("""
            listen l
              bind 127.0.0.1:1884
              balance clientid-hash
              server s 127.0.0.1:2
            """)
        XCTAssertEqual(listen.engine.backends.map(\.balance), [.clientIDHash])
    }

    func testHardStopAfterBoundsStoppingAndRetiredConfigurations() throws {
        let bounded = try load("""
            global
              hard-stop-after 90s
            backend b
              server s 127.0.0.1:1
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """)
        XCTAssertEqual(bounded.engine.drainGraceMs, 90_000)
        XCTAssertTrue(bounded.engine.drainGraceBoundsRetirement)
        let unbounded = try load("""
            backend b
              server s 127.0.0.1:1
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """)
        XCTAssertEqual(unbounded.engine.drainGraceMs, 5_000, "SIGTERM keeps its default grace")
        XCTAssertFalse(unbounded.engine.drainGraceBoundsRetirement, "without hard-stop-after a reload lets connections finish, as HAProxy does")
    }

    func testGraceIsIgnoredSayingWhatRingproxyDoesInstead() throws {
        let loaded = try load("""
            global
              grace 10s
            defaults
              grace 2s
            backend b
              server s 127.0.0.1:1
            frontend f
              bind 127.0.0.1:1883
              grace 3s
              default_backend b
            """)
        let notes = loaded.notes.filter { $0.contains("'grace'") }
        XCTAssertEqual(notes.count, 3, "\(loaded.notes)")
        XCTAssertTrue(notes.allSatisfy { $0.contains("ignored: ringproxy stops listening as soon as a stop is requested") && $0.contains("hard-stop-after") }, "\(notes)")
        XCTAssertEqual(loaded.engine.drainGraceMs, 5_000)
    }

    func testDontlognullIsPerFrontendFromDefaultsUntilANoOptionTurnsItOff() throws {
        let loaded = try load("""
            defaults
              option dontlognull
            backend b
              server s 127.0.0.1:1
            frontend quiet
              bind 127.0.0.1:1883
              default_backend b
            frontend loud
              bind 127.0.0.1:1884
              no option dontlognull
              default_backend b
            listen l
              bind 127.0.0.1:1885
              server s 127.0.0.1:2
            """)
        XCTAssertEqual(loaded.engine.frontends.map(\.name), ["quiet", "loud", "l"])
        XCTAssertEqual(loaded.engine.frontends.map(\.dontLogNull), [true, false, true])
        XCTAssertFalse(loaded.notes.contains { $0.contains("dontlognull") }, "\(loaded.notes)")
        XCTAssertEqual(try load("""
            backend b
              server s 127.0.0.1:1
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """).engine.frontends.map(\.dontLogNull), [false], "HAProxy logs null connections by default")
    }

    func testPROXYv2TLSOptionsBecomeTheServersTLVs() throws {
        let loaded = try load("""
            backend b
              server a 127.0.0.1:1 send-proxy-v2-ssl
              server c 127.0.0.1:2 send-proxy-v2-ssl-cn
              server d 127.0.0.1:3 send-proxy-v2 proxy-v2-options ssl-cipher,authority
            frontend f
              bind 127.0.0.1:1883
              default_backend b
            """)
        XCTAssertEqual(loaded.engine.backends[0].servers.map(\.proxyV2TLVs), [[.ssl], [.ssl, .certCN], [.ssl, .sslCipher, .authority]])
        XCTAssertEqual(loaded.engine.backends[0].servers.map(\.proxyProtocol), [.v2, .v2, .v2])
    }

    func testAFileWithNothingToListenOnIsRefusedByTheCheck() {
        // HAProxy's -c says "will not start (no listener)"; ringproxy's start would refuse it too.
        XCTAssertTrue(refusal("backend b\n  server s 127.0.0.1:1").contains(
            "t.cfg:6: 'frontend': the configuration has no frontend or listen with a bind: ringproxy would listen on nothing"))
    }
}

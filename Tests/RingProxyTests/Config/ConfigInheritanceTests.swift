// HAProxy's inheritance (configuration.txt §4): a proxy starts from the last defaults section
// above it (or the one `from` names), a defaults section resets what earlier ones said, `log
// global` means the global targets, `default-server` sits under every server. The effective
// helpers must give consumers the result without them knowing any of this.
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class ConfigInheritanceTests: XCTestCase {
    private let twoDefaults = """
        global
          log 127.0.0.1 local3 info
          log stderr format raw daemon warning

        defaults
          log global
          mode tcp
          timeout connect 10000
          timeout client 240s
          timeout server 240s
          maxconn 20000
          retries 2
          balance leastconn

        frontend first_in
          bind :1883
          default_backend first

        backend first
          server a 127.0.0.1:18831

        defaults
          mode tcp
          timeout connect 5s
          timeout client 30s
          timeout server 30s

        frontend second_in
          bind 0.0.0.0:1884
          maxconn 500
          default_backend second

        backend second
          timeout server 1m
          server b 127.0.0.1:18832
        """

    func testProxiesTakeTheLastDefaultsSectionAboveThem() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(twoDefaults))
        XCTAssertEqual(config.defaults.count, 2)
        XCTAssertEqual(config.frontends.map(\.defaultsIndex), [0, 1])
        XCTAssertEqual(config.backends.map(\.defaultsIndex), [0, 1])

        let firstIn = try XCTUnwrap(config.effectiveFrontend(named: "first_in"))
        XCTAssertEqual(firstIn.timeouts.clientMs, 240_000)
        XCTAssertEqual(firstIn.maxconn, 20_000)
        let first = try XCTUnwrap(config.effectiveBackend(named: "first"))
        XCTAssertEqual(first.timeouts.connectMs, 10_000)
        XCTAssertEqual(first.timeouts.serverMs, 240_000)
        XCTAssertEqual(first.retries, 2)
        XCTAssertEqual(first.balance.algorithm, .leastconn)

        let secondIn = try XCTUnwrap(config.effectiveFrontend(named: "second_in"))
        XCTAssertEqual(secondIn.timeouts.clientMs, 30_000)
        XCTAssertEqual(secondIn.maxconn, 500, "the proxy's own value wins")
        let second = try XCTUnwrap(config.effectiveBackend(named: "second"))
        XCTAssertEqual(second.timeouts.connectMs, 5_000)
        XCTAssertEqual(second.timeouts.serverMs, 60_000, "the proxy's own value wins")
    }

    func testASecondDefaultsSectionResetsWhatTheFirstSaid() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(twoDefaults))
        let secondIn = try XCTUnwrap(config.effectiveFrontend(named: "second_in"))
        let second = try XCTUnwrap(config.effectiveBackend(named: "second"))
        // The second defaults section says nothing about these: HAProxy's documented defaults
        // apply, not the first section's values.
        XCTAssertEqual(second.retries, 3)
        XCTAssertEqual(second.balance.algorithm, .roundrobin)
        XCTAssertEqual(secondIn.logTargets, [], "no 'log global' in the second defaults section")
        XCTAssertNil(config.effectiveDefaults(at: 1).maxconn)
        XCTAssertEqual(config.effectiveDefaults(at: 0).maxconn, 20_000)
    }

    func testLogGlobalMeansTheGlobalSectionsTargets() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(twoDefaults))
        XCTAssertEqual(config.global.logTargets.map(\.destination), [.udp(host: "127.0.0.1", port: 514), .stderr])
        XCTAssertEqual(config.global.logTargets[1].format, "raw")
        XCTAssertEqual(config.global.logTargets[1].facility, .daemon)
        XCTAssertEqual(config.global.logTargets[1].level, .warning)
        XCTAssertEqual(config.effectiveFrontend(named: "first_in")?.logTargets, config.global.logTargets)
        XCTAssertEqual(config.effectiveBackend(named: "first")?.logTargets, config.global.logTargets)
        XCTAssertEqual(config.defaults[0].settings.logs, [.global(SourceLocation(file: "haproxy.cfg", line: 6))])
    }

    func testProxyLogLinesAddToOrReplaceInheritedTargets() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            global
              log 127.0.0.1 local3
            defaults
              log global
            frontend adds
              bind *:1883
              log [::1]:5514 len 2048 format rfc5424 local0 info notice
              default_backend b
            frontend silent
              bind *:1884
              no log
              default_backend b
            frontend replaces
              bind *:1885
              no log
              log /dev/log local1
              default_backend b
            backend b
              server s 127.0.0.1:18831
            """))
        let global = config.global.logTargets
        let adds = try XCTUnwrap(config.effectiveFrontend(named: "adds")?.logTargets)
        XCTAssertEqual(adds.count, 2)
        XCTAssertEqual(adds[0], global[0])
        XCTAssertEqual(adds[1].destination, .udp(host: "::1", port: 5514))
        XCTAssertEqual(adds[1].maxLengthBytes, 2048)
        XCTAssertEqual(adds[1].format, "rfc5424")
        XCTAssertEqual(adds[1].facility, .local0)
        XCTAssertEqual(adds[1].level, .info)
        XCTAssertEqual(adds[1].minimumLevel, .notice)
        XCTAssertEqual(config.effectiveFrontend(named: "silent")?.logTargets, [])
        XCTAssertEqual(config.effectiveFrontend(named: "replaces")?.logTargets.map(\.destination), [.unixSocket(path: "/dev/log")])
    }

    func testFromNamesTheDefaultsSectionToStartFrom() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            defaults tcp_base
              mode tcp
              timeout connect 3s
              timeout client 1m
              timeout server 1m
            defaults long_lived from tcp_base
              timeout client 1h
              timeout server 1h
            defaults
              mode http
            backend quick from tcp_base
              server a 127.0.0.1:1
            backend sessions from long_lived
              server b 127.0.0.1:2
            backend web
              server c 127.0.0.1:3
            """))
        XCTAssertEqual(config.defaults.map(\.name), ["tcp_base", "long_lived", nil])
        XCTAssertEqual(config.defaults.map(\.parentIndex), [nil, 0, nil])
        XCTAssertEqual(config.backends.map(\.defaultsIndex), [0, 1, 2])

        let quick = try XCTUnwrap(config.effectiveBackend(named: "quick"))
        XCTAssertEqual(quick.mode, .tcp)
        XCTAssertEqual(quick.timeouts.serverMs, 60_000)
        let sessions = try XCTUnwrap(config.effectiveBackend(named: "sessions"))
        XCTAssertEqual(sessions.mode, .tcp, "inherited through long_lived from tcp_base")
        XCTAssertEqual(sessions.timeouts.connectMs, 3_000, "inherited through long_lived from tcp_base")
        XCTAssertEqual(sessions.timeouts.serverMs, 3_600_000)
        let web = try XCTUnwrap(config.effectiveBackend(named: "web"))
        XCTAssertEqual(web.mode, .http)
        XCTAssertNil(web.timeouts.connectMs)
    }

    func testProxiesBeforeAnyDefaultsSectionGetHAProxysDefaults() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            frontend f
              bind *:1883
              default_backend b
            backend b
              server s 127.0.0.1:18831
            """))
        XCTAssertNil(config.frontends[0].defaultsIndex)
        let frontend = try XCTUnwrap(config.effectiveFrontend(named: "f"))
        XCTAssertEqual(frontend.mode, .tcp)
        XCTAssertNil(frontend.maxconn)
        XCTAssertEqual(frontend.timeouts, Timeouts())
        XCTAssertFalse(frontend.tcplog)
        let backend = try XCTUnwrap(config.effectiveBackend(named: "b"))
        XCTAssertEqual(backend.balance, .default)
        XCTAssertEqual(backend.retries, 3)
        XCTAssertFalse(backend.redispatch)
        let server = try XCTUnwrap(backend.servers.first)
        XCTAssertEqual(server.weight, 1)
        XCTAssertEqual(server.interMs, 2000)
        XCTAssertEqual(server.fastinterMs, 2000)
        XCTAssertEqual(server.downinterMs, 2000)
        XCTAssertEqual(server.rise, 2)
        XCTAssertEqual(server.fall, 3)
        XCTAssertFalse(server.check)
        XCTAssertFalse(server.backup)
        XCTAssertNil(server.sendProxy)
    }

    func testDefaultServerLinesSitUnderEveryServer() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            defaults
              default-server inter 3s fall 5 weight 10 check
              option redispatch
            backend b
              server s0 127.0.0.1:18830
              default-server rise 4
              default-server send-proxy maxconn 100
              server s1 127.0.0.1:18831
              server s2 127.0.0.1:18832 weight 20 no-check backup inter 500ms
              server s3 127.0.0.1:18833 send-proxy-v2 disabled
            """))
        let backend = try XCTUnwrap(config.effectiveBackend(named: "b"))
        XCTAssertTrue(backend.redispatch)
        let servers = backend.servers
        XCTAssertEqual(servers.map(\.name), ["s0", "s1", "s2", "s3"])
        XCTAssertEqual(servers.map(\.interMs), [3000, 3000, 500, 3000])
        XCTAssertEqual(servers.map(\.fastinterMs), [3000, 3000, 500, 3000])
        XCTAssertEqual(servers.map(\.fall), [5, 5, 5, 5])
        XCTAssertEqual(servers.map(\.rise), [2, 4, 4, 4], "a default-server line only applies to the servers after it")
        XCTAssertEqual(servers.map(\.weight), [10, 10, 20, 10])
        XCTAssertEqual(servers.map(\.check), [true, true, false, true])
        XCTAssertEqual(servers.map(\.backup), [false, false, true, false])
        XCTAssertEqual(servers.map(\.maxconn), [nil, 100, 100, 100])
        XCTAssertEqual(servers.map(\.sendProxy), [nil, .v1, .v1, .v2])
        XCTAssertEqual(servers.map(\.disabled), [false, false, false, true])
        // The model keeps what each line said.
        XCTAssertEqual(config.backends[0].servers[1].options, ServerOptions())
        XCTAssertEqual(config.backends[0].servers[0].precedingDefaultServer, ServerOptions())
        XCTAssertEqual(config.backends[0].servers[1].precedingDefaultServer.rise, 4)
        XCTAssertEqual(config.backends[0].settings.defaultServer?.rise, 4)
        XCTAssertEqual(config.backends[0].settings.defaultServer?.maxconn, 100)
    }

    func testListenIsOneFrontendAndOneBackendOfTheSameName() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(ConfigTestSupport.preamble + """
            listen mqtt
              bind *:1883,[::]:1883
              balance source
              timeout client 1m
              tcp-request inspect-delay 5s
              tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
              server s1 127.0.0.1:18831 check
              server s2 127.0.0.1:18832 check
            """))
        let frontend = try XCTUnwrap(config.frontend(named: "mqtt"))
        let backend = try XCTUnwrap(config.backend(named: "mqtt"))
        XCTAssertTrue(frontend.isListen)
        XCTAssertTrue(backend.isListen)
        XCTAssertEqual(frontend.defaultBackend, "mqtt")
        XCTAssertEqual(frontend.location, backend.location)
        XCTAssertEqual(frontend.binds.first?.addresses, [BindAddress(host: nil, port: 1883), BindAddress(host: "::", port: 1883)])
        XCTAssertEqual(frontend.tcpRequestRules.count, 1)
        XCTAssertEqual(backend.tcpRequestRules.count, 0, "a listen's content rules run once, in its frontend half")
        XCTAssertEqual(backend.servers.map(\.name), ["s1", "s2"])
        XCTAssertEqual(config.effectiveBackend(named: "mqtt")?.balance.algorithm, .source)
        XCTAssertEqual(config.effectiveFrontend(named: "mqtt")?.timeouts.clientMs, 60_000)
        XCTAssertEqual(config.effectiveFrontend(named: "mqtt")?.inspectDelayMs, 5_000)
        XCTAssertEqual(config.effectiveBackend(named: "mqtt")?.timeouts.serverMs, 240_000)
        XCTAssertEqual(config.warnings, [])
    }

    func testAFrontendAndABackendMayShareAName() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(ConfigTestSupport.preamble + """
            frontend mqtt
              bind *:1883
              default_backend mqtt
            backend mqtt
              server s1 127.0.0.1:18831
            """))
        XCTAssertEqual(config.frontends.map(\.name), ["mqtt"])
        XCTAssertEqual(config.backends.map(\.name), ["mqtt"])
    }

    func testInheritedDefaultBackendAndStatsReachTheFrontend() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(ConfigTestSupport.preamble + """
            defaults
              timeout client 1m
              default_backend brokers
              stats auth admin:secret
            frontend mqtt_in
              bind *:1883
              stats uri /stats
              stats auth viewer:pass
            backend brokers
              timeout connect 1s
              timeout server 1m
              server s1 127.0.0.1:18831
            """))
        let frontend = try XCTUnwrap(config.effectiveFrontend(named: "mqtt_in"))
        XCTAssertEqual(frontend.defaultBackend, "brokers")
        XCTAssertNil(config.frontends[0].defaultBackend, "the section itself says nothing")
        let stats = try XCTUnwrap(frontend.stats)
        XCTAssertTrue(stats.isEnabled, "'stats uri' alone enables the page, as HAProxy documents")
        XCTAssertEqual(stats.uri, "/stats")
        XCTAssertEqual(stats.credentials, [StatsCredential(user: "admin", password: "secret"), StatsCredential(user: "viewer", password: "pass")])
    }

    func testCertificatePathsAreResolvedUnderCrtBaseAndCaBase() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse(ConfigTestSupport.preamble + """
            global
              crt-base /etc/ringproxy/certs
              ca-base /etc/ringproxy/ca/
            frontend mqtts
              bind *:8883 ssl crt server.pem crt /abs/other.pem ca-file clients.pem verify optional alpn mqtt,x-amzn-mqtt-ca
              default_backend brokers
            backend brokers
              server s1 127.0.0.1:8883 ssl ca-file brokers.pem crt client.pem sni str(broker)
            """))
        XCTAssertEqual(config.frontends[0].binds[0].certificates, ["server.pem", "/abs/other.pem"], "the model keeps what was written")
        let bind = try XCTUnwrap(config.effectiveFrontend(named: "mqtts")?.binds.first)
        XCTAssertEqual(bind.certificates, ["/etc/ringproxy/certs/server.pem", "/abs/other.pem"])
        XCTAssertEqual(bind.caFile, "/etc/ringproxy/ca/clients.pem")
        XCTAssertEqual(bind.verify, .optional)
        XCTAssertEqual(bind.alpn, ["mqtt", "x-amzn-mqtt-ca"])
        let server = try XCTUnwrap(config.effectiveBackend(named: "brokers")?.servers.first)
        XCTAssertTrue(server.ssl)
        XCTAssertEqual(server.verify, .required)
        XCTAssertEqual(server.caFile, "/etc/ringproxy/ca/brokers.pem")
        XCTAssertEqual(server.crt, "/etc/ringproxy/certs/client.pem")
        XCTAssertEqual(server.sni, "str(broker)")
        XCTAssertEqual(server.tls?.sni, .fixed("broker"))
        XCTAssertEqual(server.tls?.certificate, "/etc/ringproxy/certs/client.pem")
    }

    func testServerTLSTakesItsLineOverDefaultServerOverTheGlobalDefaults() throws {
        let config = try XCTUnwrap(ConfigTestSupport.parse("""
            global
              ssl-server-verify none
              ssl-default-server-ciphers ECDHE+AESGCM
              ssl-default-server-ciphersuites TLS_AES_256_GCM_SHA384
              ssl-default-server-options ssl-max-ver TLSv1.2 no-tls-tickets
            backend brokers
              default-server ssl no-ssl-reuse alpn mqtt
              server s1 127.0.0.1:8883 sni ssl_fc_sni
              server s2 127.0.0.1:8884 verify required ca-file ca.pem verifyhost broker.example.com ciphers AES256-GCM-SHA384 ssl-reuse
              server s3 127.0.0.1:1883 no-ssl
            """))
        let servers = try XCTUnwrap(config.effectiveBackend(named: "brokers")?.servers)
        let first = try XCTUnwrap(servers[0].tls)
        XCTAssertEqual(first.verify, .none, "ssl-server-verify none")
        XCTAssertEqual(first.sni, .clientSNI)
        XCTAssertEqual(first.ciphers, "ECDHE+AESGCM")
        XCTAssertEqual(first.ciphersuites, "TLS_AES_256_GCM_SHA384")
        XCTAssertEqual(first.maxVersion, .tls12)
        XCTAssertFalse(first.tickets)
        XCTAssertFalse(first.reusesSessions, "default-server no-ssl-reuse")
        XCTAssertEqual(first.alpn, ["mqtt"])
        XCTAssertNil(first.nameToVerify)
        let second = try XCTUnwrap(servers[1].tls)
        XCTAssertEqual(second.verify, .required)
        XCTAssertEqual(second.ciphers, "AES256-GCM-SHA384")
        XCTAssertTrue(second.reusesSessions)
        XCTAssertEqual(second.nameToVerify, "broker.example.com")
        XCTAssertNil(servers[2].tls)
    }
}

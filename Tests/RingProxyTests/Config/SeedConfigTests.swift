// The seed configurations (shared/seed-configs, copied into Fixtures/seed) must parse unchanged,
// and the model must say what each file says: ports, servers, weights, balance kinds, the
// sticky table, TLS files, the stats page, and the global/defaults values they all share.
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class SeedConfigTests: XCTestCase {
    func testEverySeedFileParsesWithoutErrors() throws {
        let names = ConfigFixtures.seedFileNames
        XCTAssertEqual(names.count, 12, "expected the 12 seed files in \(ConfigFixtures.seedDirectory.path)")
        for name in names {
            XCTAssertNotNil(ConfigFixtures.seed(name), name)
        }
    }

    func testEverySeedSharesTheGuidesGlobalAndDefaultsValues() throws {
        for name in ConfigFixtures.seedFileNames {
            let config = try XCTUnwrap(ConfigFixtures.seed(name))
            XCTAssertEqual(config.global.maxconn, 1_024_000, name)
            XCTAssertTrue(config.global.daemon, name)
            XCTAssertEqual(config.global.logTargets.count, 1, name)
            let target = try XCTUnwrap(config.global.logTargets.first)
            XCTAssertEqual(target.destination, .udp(host: "127.0.0.1", port: 514), name)
            XCTAssertEqual(target.facility, .local3, name)
            XCTAssertEqual(target.level, .info, name)
            XCTAssertEqual(target.location, SourceLocation(file: ConfigFixtures.seedPath(name), line: 2), name)

            XCTAssertEqual(config.defaults.count, 1, name)
            let defaults = config.defaults[0].settings
            XCTAssertEqual(defaults.mode, .tcp, name)
            XCTAssertEqual(defaults.maxconn, 20_000, name)
            XCTAssertEqual(defaults.timeouts.connectMs, 10_000, name)
            XCTAssertEqual(defaults.timeouts.clientMs, 240_000, name)
            XCTAssertEqual(defaults.timeouts.serverMs, 240_000, name)
            XCTAssertEqual(defaults.options.tcplog, true, name)
            XCTAssertNil(defaults.options.dontlognull, "the seed comments dontlognull out (\(name))")
            XCTAssertEqual(defaults.logs.count, 1, name)

            // Every proxy inherits them and logs where the global section says.
            for frontend in config.effectiveFrontends {
                XCTAssertEqual(frontend.timeouts.clientMs, 240_000, name)
                XCTAssertEqual(frontend.logTargets, config.global.logTargets, name)
                XCTAssertTrue(frontend.tcplog, name)
            }
            for backend in config.effectiveBackends {
                XCTAssertEqual(backend.mode, .tcp, name)
                XCTAssertEqual(backend.timeouts.connectMs, 10_000, name)
                XCTAssertEqual(backend.timeouts.serverMs, 240_000, name)
                XCTAssertEqual(backend.retries, 3, name)
            }
            XCTAssertTrue(
                config.warnings.contains { $0.keyword == "daemon" && $0.message == "ignored: ringproxy runs in the foreground; use systemd" },
                name)
        }
    }

    func testLeastconnSeedBalancesMQTTToThreeLocalBrokers() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("balance-leastconn.cfg"))
        let backend = try XCTUnwrap(config.effectiveBackend(named: "mqtt_backend"))
        XCTAssertEqual(backend.balance.algorithm, .leastconn)
        XCTAssertEqual(backend.servers.map(\.name), ["emqx1", "emqx2", "emqx3"])
        XCTAssertEqual(backend.servers.map(\.address), [
            ServerAddress(host: "127.0.0.1", port: 18831),
            ServerAddress(host: "127.0.0.1", port: 18832),
            ServerAddress(host: "127.0.0.1", port: 18833),
        ])
        XCTAssertEqual(backend.servers.map(\.check), [false, false, false])
        XCTAssertEqual(backend.servers.map(\.weight), [1, 1, 1])
        XCTAssertEqual(backend.servers.map(\.location.line), [20, 21, 22])

        let frontend = try XCTUnwrap(config.effectiveFrontend(named: "mqtt_servers"))
        XCTAssertEqual(frontend.binds.count, 1)
        XCTAssertEqual(frontend.binds[0].addresses, [BindAddress(host: nil, port: 1883)])
        XCTAssertFalse(frontend.binds[0].ssl)
        XCTAssertEqual(frontend.binds[0].location.line, 25)
        XCTAssertEqual(frontend.defaultBackend, "mqtt_backend")
        XCTAssertEqual(frontend.mode, .tcp)
        XCTAssertEqual(frontend.maxconn, 20_000)
        XCTAssertEqual(config.frontends[0].location, SourceLocation(file: ConfigFixtures.seedPath("balance-leastconn.cfg"), line: 24))
    }

    func testRoundrobinSeedChecksEveryServer() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("balance-roundrobin.cfg"))
        let backend = try XCTUnwrap(config.effectiveBackend(named: "mqtt_backend"))
        XCTAssertEqual(backend.balance.algorithm, .roundrobin)
        XCTAssertEqual(backend.balance.location?.line, 19)
        XCTAssertEqual(backend.servers.map(\.check), [true, true, true])
        XCTAssertEqual(backend.servers.map(\.interMs), [2000, 2000, 2000])
        XCTAssertEqual(backend.servers.map(\.rise), [2, 2, 2])
        XCTAssertEqual(backend.servers.map(\.fall), [3, 3, 3])
    }

    func testSourceSeedHashesTheClientAddress() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("balance-source.cfg"))
        XCTAssertEqual(config.effectiveBackend(named: "mqtt_backend")?.balance.algorithm, .source)
        XCTAssertEqual(config.effectiveBackend(named: "mqtt_backend")?.balance.arguments, [])
    }

    func testWeightedSeedGivesWeightsFiveTwoThree() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("balance-weighted.cfg"))
        let backend = try XCTUnwrap(config.effectiveBackend(named: "mqtt_backend"))
        XCTAssertEqual(backend.balance.algorithm, .roundrobin)
        XCTAssertEqual(backend.servers.map(\.weight), [5, 2, 3])
        XCTAssertEqual(backend.servers.map(\.check), [true, true, true])
        XCTAssertEqual(config.backends[0].servers.map(\.options.weight), [5, 2, 3])
    }

    func testStickySeedKeysTheTableOnTheMQTTClientIdentifier() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("balance-sticky.cfg"))
        let backend = try XCTUnwrap(config.effectiveBackend(named: "mqtt_backend"))
        let table = try XCTUnwrap(backend.stickTable)
        XCTAssertEqual(table.type, .string)
        XCTAssertEqual(table.keyLength, 32)
        // "100k": HAProxy documents k/m/g stick-table size suffixes as 2^10, 2^20, 2^30 factors.
        XCTAssertEqual(table.sizeEntries, 102_400)
        XCTAssertEqual(table.expireMs, 1_800_000)
        XCTAssertEqual(table.location.line, 20)

        XCTAssertEqual(backend.stickRules.count, 1)
        let rule = backend.stickRules[0]
        XCTAssertEqual(rule.kind, .on)
        XCTAssertNil(rule.table)
        XCTAssertNil(rule.condition)
        XCTAssertEqual(rule.location.line, 23)
        XCTAssertEqual(rule.sample.fetch, SampleCall(name: "req.payload", arguments: ["0", "0"]))
        XCTAssertEqual(rule.sample.converters, [SampleCall(name: "mqtt_field_value", arguments: ["connect", "client_identifier"])])
        XCTAssertEqual(rule.sample.text, "req.payload(0,0),mqtt_field_value(connect,client_identifier)")
        // No balance line: HAProxy's default.
        XCTAssertEqual(backend.balance.algorithm, .roundrobin)
        XCTAssertNil(backend.balance.location)
    }

    func testTCPStickySeedRejectsConnectionsThatAreNotMQTT() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("mqtt-tcp-sticky.cfg"))
        let frontend = try XCTUnwrap(config.effectiveFrontend(named: "mqtt_servers"))
        XCTAssertEqual(frontend.tcpRequestRules.count, 1)
        let rule = frontend.tcpRequestRules[0]
        XCTAssertEqual(rule.phase, .content)
        XCTAssertEqual(rule.action, .reject)
        XCTAssertEqual(rule.location.line, 32)
        let condition = try XCTUnwrap(rule.condition)
        XCTAssertEqual(condition.polarity, .unless)
        XCTAssertEqual(condition.text, "{ req.payload(0,0),mqtt_is_valid }")
        XCTAssertEqual(condition.alternatives.count, 1)
        XCTAssertEqual(condition.alternatives[0].count, 1)
        let term = condition.alternatives[0][0]
        XCTAssertFalse(term.negated)
        guard case .anonymous(let acl) = term.kind else {
            return XCTFail("expected an anonymous ACL, got \(term.kind)")
        }
        XCTAssertEqual(acl.sample.fetch, SampleCall(name: "req.payload", arguments: ["0", "0"]))
        XCTAssertEqual(acl.sample.converters, [SampleCall(name: "mqtt_is_valid")])
        XCTAssertEqual(acl.patterns, [])
        XCTAssertNil(acl.matchMethod)

        let backend = try XCTUnwrap(config.effectiveBackend(named: "mqtt_backend"))
        XCTAssertEqual(backend.stickTable?.sizeEntries, 102_400)
        XCTAssertEqual(backend.stickRules.first?.sample.converters.first?.name, "mqtt_field_value")
        XCTAssertEqual(backend.servers.map(\.sendProxy), [nil, nil, nil], "the send-proxy line is commented out")
    }

    func testTCPStickySeedWarnsThatContentRulesRunWithoutInspectDelay() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("mqtt-tcp-sticky.cfg"))
        let path = ConfigFixtures.seedPath("mqtt-tcp-sticky.cfg")
        XCTAssertEqual(config.warnings.map(\.description), [
            "\(path):3: 'daemon': ignored: ringproxy runs in the foreground; use systemd",
            "\(path):20: 'stick on': reads request contents ('req.payload') but backend 'mqtt_backend' sets no 'tcp-request inspect-delay' (HAProxy then evaluates it on whatever bytes have arrived; add e.g. 'tcp-request inspect-delay 5s')",
            "\(path):32: 'tcp-request content': reads request contents ('req.payload') but frontend 'mqtt_servers' sets no 'tcp-request inspect-delay' (HAProxy then evaluates it on whatever bytes have arrived; add e.g. 'tcp-request inspect-delay 5s')",
        ])
    }

    func testTLSSeedTerminatesTLSWithTheServerCertificate() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("mqtt-tls.cfg"))
        let frontend = try XCTUnwrap(config.effectiveFrontend(named: "mqtt_tls_frontend"))
        XCTAssertEqual(frontend.binds.count, 1, "the mutual TLS bind is commented out")
        let bind = frontend.binds[0]
        XCTAssertEqual(bind.addresses, [BindAddress(host: nil, port: 8883)])
        XCTAssertTrue(bind.ssl)
        XCTAssertEqual(bind.certificates, ["certs/server.pem"])
        XCTAssertNil(bind.caFile)
        XCTAssertNil(bind.verify)

        let backend = try XCTUnwrap(config.effectiveBackend(named: "mqtt_backend"))
        XCTAssertEqual(backend.servers.map(\.sendProxy), [.v2, .v2, .v2])
        XCTAssertEqual(backend.servers.map(\.checkSendProxy), [true, true, true])
        XCTAssertEqual(backend.servers.map(\.check), [false, false, false])
        XCTAssertEqual(config.backends[0].servers[0].options.sendProxyV2, true)
        XCTAssertNil(config.backends[0].servers[0].options.sendProxy)
    }

    func testMutualTLSSeedRequiresClientCertificatesSignedByTheCA() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("mqtt-tls-mutual.cfg"))
        let frontend = try XCTUnwrap(config.effectiveFrontend(named: "mqtt_tls_frontend"))
        let bind = try XCTUnwrap(frontend.binds.first)
        XCTAssertEqual(bind.addresses, [BindAddress(host: nil, port: 8883)])
        XCTAssertTrue(bind.ssl)
        XCTAssertEqual(bind.caFile, "certs/cacert.pem")
        XCTAssertEqual(bind.certificates, ["certs/server.pem"])
        XCTAssertEqual(bind.verify, .required)
        XCTAssertEqual(bind.location.line, 28)
    }

    func testWebSocketSeedsForwardToTheWebSocketPorts() throws {
        let plain = try XCTUnwrap(ConfigFixtures.seed("mqtt-ws.cfg"))
        XCTAssertEqual(plain.effectiveFrontend(named: "mqtt_ws_frontend")?.binds.first?.addresses, [BindAddress(host: nil, port: 8083)])
        XCTAssertEqual(plain.effectiveFrontend(named: "mqtt_ws_frontend")?.defaultBackend, "mqtt_ws_backend")
        XCTAssertEqual(plain.effectiveBackend(named: "mqtt_ws_backend")?.servers.map(\.address.port), [18081, 18082, 18083])

        let secure = try XCTUnwrap(ConfigFixtures.seed("mqtt-wss.cfg"))
        let bind = try XCTUnwrap(secure.effectiveFrontend(named: "mqtt_ws_tls_frontend")?.binds.first)
        XCTAssertEqual(bind.addresses, [BindAddress(host: nil, port: 8084)])
        XCTAssertTrue(bind.ssl)
        XCTAssertEqual(bind.certificates, ["certs/server.pem"])
    }

    func testStatsSeedServesTheStatsPageOnPort8888() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("stats.cfg"))
        let frontend = try XCTUnwrap(config.effectiveFrontend(named: "stats"))
        XCTAssertEqual(frontend.mode, .http)
        XCTAssertEqual(frontend.binds.first?.addresses, [BindAddress(host: nil, port: 8888)])
        let stats = try XCTUnwrap(frontend.stats)
        XCTAssertEqual(stats.enabled, true)
        XCTAssertEqual(stats.uri, "/stats")
        XCTAssertEqual(stats.refreshMs, 10_000)
        XCTAssertNil(frontend.defaultBackend)
        XCTAssertEqual(config.warnings.count, 1, "only daemon: \(config.warnings)")
    }

    func testFullSeedHoldsEverySectionOfTheGuide() throws {
        let config = try XCTUnwrap(ConfigFixtures.seed("seed-full.cfg"))
        XCTAssertEqual(config.backends.map(\.name), ["mqtt_backend", "mqtt_tls_backend", "mqtt_ws_backend"])
        XCTAssertEqual(config.frontends.map(\.name), ["mqtt_servers", "mqtt_tls_frontend", "mqtt_ws_frontend", "mqtt_ws_tls_frontend", "stats"])
        XCTAssertEqual(config.frontends.map(\.defaultBackend), ["mqtt_backend", "mqtt_tls_backend", "mqtt_ws_backend", "mqtt_ws_backend", nil])
        XCTAssertEqual(config.frontends.map { $0.binds.first?.addresses.first?.port }, [1883, 8883, 8083, 8084, 8888])
        XCTAssertEqual(config.frontends.map { $0.binds.first?.ssl }, [false, true, false, true, false])
        XCTAssertEqual(config.frontends.map(\.defaultsIndex), [0, 0, 0, 0, 0])

        XCTAssertEqual(config.effectiveBackend(named: "mqtt_backend")?.stickTable?.expireMs, 1_800_000)
        XCTAssertEqual(config.effectiveBackend(named: "mqtt_tls_backend")?.balance.algorithm, .roundrobin)
        XCTAssertEqual(config.effectiveBackend(named: "mqtt_tls_backend")?.servers.map(\.sendProxy), [.v2, .v2, .v2])
        XCTAssertEqual(config.effectiveBackend(named: "mqtt_ws_backend")?.servers.map(\.check), [true, true, true])
        XCTAssertEqual(config.effectiveFrontend(named: "mqtt_servers")?.tcpRequestRules.first?.action, .reject)

        let stats = try XCTUnwrap(config.effectiveFrontend(named: "stats")?.stats)
        XCTAssertEqual(stats.uri, "/stats")
        XCTAssertEqual(stats.refreshMs, 10_000)
        XCTAssertEqual(config.frontend(named: "stats")?.location.line, 67)
    }
}

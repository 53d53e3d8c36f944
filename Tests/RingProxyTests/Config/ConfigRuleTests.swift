// Rules and the structures they carry: conditions (named and anonymous ACLs, `!`, `or`),
// sample expressions (fetch + converter chain), backend selection, stick rules, balance
// arguments, and the address forms of bind and server lines.
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class ConfigRuleTests: XCTestCase {
    private func config(_ body: String, file: StaticString = #filePath, line: UInt = #line) -> ConfigFile? {
        ConfigTestSupport.parse(ConfigTestSupport.preamble + body, file: file, line: line)
    }

    func testUseBackendKeepsItsConditionAsWrittenAndAsStructure() throws {
        let parsed = try XCTUnwrap(config("""
            frontend mqtt_in
              bind *:1883
              tcp-request inspect-delay 5s
              acl is_mqtt req.payload(0,0),mqtt_is_valid
              acl from_lan src 10.0.0.0/8 192.168.0.0/16
              acl is_alice req.payload(0,0),mqtt_field_value(connect,username) -m str -i alice
              use_backend admins if is_mqtt is_alice or !from_lan
              use_backend lan unless !{ req.len gt 0 } || LOCALHOST
              use_backend everyone
              default_backend everyone
            backend admins
              server a 127.0.0.1:1
            backend lan
              server l 127.0.0.1:2
            backend everyone
              server e 127.0.0.1:3
            """))
        let frontend = try XCTUnwrap(parsed.frontend(named: "mqtt_in"))
        XCTAssertEqual(frontend.acls.map(\.name), ["is_mqtt", "from_lan", "is_alice"])
        XCTAssertEqual(frontend.acls[1].expression.patterns, ["10.0.0.0/8", "192.168.0.0/16"])
        XCTAssertEqual(frontend.acls[2].expression.matchMethod, "str")
        XCTAssertEqual(frontend.acls[2].expression.flags, ["-i"])
        XCTAssertEqual(frontend.acls[2].expression.patterns, ["alice"])
        XCTAssertEqual(frontend.acls[2].location.line, 19)

        let rules = frontend.useBackendRules
        XCTAssertEqual(rules.map(\.backend), ["admins", "lan", "everyone"])
        XCTAssertEqual(rules.map(\.location.line), [20, 21, 22])
        let first = try XCTUnwrap(rules[0].condition)
        XCTAssertEqual(first.polarity, .if)
        XCTAssertEqual(first.text, "is_mqtt is_alice or !from_lan")
        XCTAssertEqual(first.alternatives, [
            [ConditionTerm(kind: .named("is_mqtt")), ConditionTerm(kind: .named("is_alice"))],
            [ConditionTerm(negated: true, kind: .named("from_lan"))],
        ])
        let second = try XCTUnwrap(rules[1].condition)
        XCTAssertEqual(second.polarity, .unless)
        XCTAssertEqual(second.text, "!{ req.len gt 0 } || LOCALHOST")
        XCTAssertEqual(second.alternatives.count, 2)
        XCTAssertEqual(second.alternatives[0].first?.negated, true)
        XCTAssertEqual(second.anonymousACLs.map(\.sample.fetch.name), ["req.len"])
        XCTAssertEqual(second.anonymousACLs.first?.patterns, ["gt", "0"])
        XCTAssertEqual(second.alternatives[1], [ConditionTerm(kind: .named("LOCALHOST"))])
        XCTAssertNil(rules[2].condition)
        XCTAssertEqual(parsed.warnings, [])
    }

    func testLoneBangNegatesTheNextTerm() throws {
        let parsed = try XCTUnwrap(config("""
            frontend f
              bind *:1883
              tcp-request inspect-delay 2s
              tcp-request content reject if ! { req.payload(0,0),mqtt_is_valid }
              tcp-request content accept
              default_backend b
            backend b
              server s 127.0.0.1:1
            """))
        let rules = try XCTUnwrap(parsed.frontend(named: "f")?.tcpRequestRules)
        XCTAssertEqual(rules.map(\.action), [.reject, .accept])
        XCTAssertEqual(rules[0].condition?.alternatives.first?.first?.negated, true)
        XCTAssertNil(rules[1].condition)
    }

    func testTCPRequestConnectionRulesMayUseTheSourceAddress() throws {
        let parsed = try XCTUnwrap(config("""
            frontend f
              bind *:1883
              tcp-request connection reject if { src 192.0.2.0/24 }
              default_backend b
            backend b
              server s 127.0.0.1:1
            """))
        let rule = try XCTUnwrap(parsed.frontend(named: "f")?.tcpRequestRules.first)
        XCTAssertEqual(rule.phase, .connection)
        XCTAssertEqual(rule.action, .reject)
        XCTAssertEqual(rule.condition?.anonymousACLs.first?.sample.fetch, SampleCall(name: "src"))
        XCTAssertEqual(rule.condition?.anonymousACLs.first?.patterns, ["192.0.2.0/24"])
    }

    func testSampleExpressionsSplitIntoAFetchAndItsConverters() throws {
        let (expression, type) = try ConditionParser.sample("req.payload(0,0),mqtt_field_value(CONNECT,Client_Identifier)").get()
        XCTAssertEqual(type, .string)
        XCTAssertEqual(expression.fetch, SampleCall(name: "req.payload", arguments: ["0", "0"]))
        XCTAssertEqual(expression.converters, [SampleCall(name: "mqtt_field_value", arguments: ["CONNECT", "Client_Identifier"])])
        XCTAssertEqual(expression.description, "req.payload(0,0),mqtt_field_value(CONNECT,Client_Identifier)")

        XCTAssertEqual(try ConditionParser.sample("req.payload(0,0),mqtt_field_value(1,17)").get().1, .string, "packet and property numbers")
        XCTAssertEqual(try ConditionParser.sample("req.payload(0,0),mqtt_field_value(connack,reason_code)").get().1, .string)
        XCTAssertEqual(try ConditionParser.sample("req.payload(0,0),mqtt_is_valid").get().1, .boolean)
        XCTAssertEqual(try ConditionParser.sample("src").get().1, .ip)
        XCTAssertEqual(try ConditionParser.sample("req.len").get().1, .integer)
    }

    func testSampleSyntaxHandlesNestedParenthesesAndQuotedArguments() throws {
        let expression = try ConditionParser.parseSampleSyntax(#"req.payload(0,4),regsub("(a|b)",'x,y',g),lower()"#).get()
        XCTAssertEqual(expression.converters, [
            SampleCall(name: "regsub", arguments: ["(a|b)", "x,y", "g"]),
            SampleCall(name: "lower"),
        ])
        XCTAssertEqual(
            ConditionParser.parseSampleSyntax("req.payload(0,0"),
            .failure(ConfigValueError(message: "missing ')' in 'req.payload(0,0'", hint: nil)))
        XCTAssertEqual(
            ConditionParser.parseSampleSyntax("src,"),
            .failure(ConfigValueError(message: "trailing ',' in 'src,'", hint: "a converter name must follow the comma")))
        XCTAssertEqual(
            ConditionParser.parseSampleSyntax("req.payload(0,0)x"),
            .failure(ConfigValueError(message: "unexpected 'x' after ')' in 'req.payload(0,0)x'", hint: "separate converters with commas")))
    }

    func testStickRulesKeepTheirTableAndCondition() throws {
        let parsed = try XCTUnwrap(config("""
            backend primary
              stick-table type string len 64 size 1m expire 1h nopurge
              tcp-request inspect-delay 5s
              stick match req.payload(0,0),mqtt_field_value(connect,client_identifier) if { req.len gt 0 }
              stick store-request req.payload(0,0),mqtt_field_value(connect,client_identifier)
              server s1 127.0.0.1:1
            backend secondary
              tcp-request inspect-delay 5s
              stick on src table primary unless LOCALHOST
              server s2 127.0.0.1:2
            """))
        let primary = try XCTUnwrap(parsed.backend(named: "primary"))
        let table = try XCTUnwrap(primary.stickTable)
        XCTAssertEqual(table.keyLength, 64)
        XCTAssertEqual(table.sizeEntries, 1_048_576)
        XCTAssertEqual(table.expireMs, 3_600_000)
        XCTAssertTrue(table.nopurge)
        XCTAssertEqual(primary.stickRules.map(\.kind), [.match, .storeRequest])
        XCTAssertEqual(primary.stickRules[0].condition?.text, "{ req.len gt 0 }")
        XCTAssertEqual(primary.settings.inspectDelayMs, 5_000)

        let secondary = try XCTUnwrap(parsed.backend(named: "secondary"))
        XCTAssertNil(secondary.stickTable)
        XCTAssertEqual(secondary.stickRules.first?.table, "primary")
        XCTAssertEqual(secondary.stickRules.first?.condition?.polarity, .unless)
        XCTAssertEqual(parsed.warnings, [])
    }

    func testStickTableKeyTypesAndDefaultLength() throws {
        let parsed = try XCTUnwrap(config("""
            backend by_ip
              stick-table type ip size 200k expire 30m
              stick on src
              server s 127.0.0.1:1
            backend by_id
              stick-table type string size 10
              server s 127.0.0.1:2
            """))
        XCTAssertEqual(parsed.backend(named: "by_ip")?.stickTable?.type, .ip)
        XCTAssertNil(parsed.backend(named: "by_ip")?.stickTable?.keyLength, "only string and binary keys have a length")
        XCTAssertEqual(parsed.backend(named: "by_ip")?.stickTable?.sizeEntries, 204_800)
        XCTAssertEqual(parsed.backend(named: "by_id")?.stickTable?.keyLength, 32, "HAProxy's default string length")
        XCTAssertNil(parsed.backend(named: "by_id")?.stickTable?.expireMs)
    }

    func testBalanceArgumentsAreKept() throws {
        let parsed = try XCTUnwrap(config("""
            backend hashed
              balance hash req.payload(0,0),mqtt_field_value(connect,client_identifier)
              server s 127.0.0.1:1
            backend header
              balance hdr(Host) use_domain_only
              server s 127.0.0.1:2
            backend drawn
              balance random(2)
              server s 127.0.0.1:3
            backend static
              balance static-rr
              server s 127.0.0.1:4
            backend firstfree
              balance first
              server s 127.0.0.1:5 maxconn 100
            """))
        let hashed = try XCTUnwrap(parsed.effectiveBackend(named: "hashed")?.balance)
        XCTAssertEqual(hashed.algorithm, .hash)
        XCTAssertEqual(hashed.arguments, ["req.payload(0,0),mqtt_field_value(connect,client_identifier)"])
        XCTAssertEqual(hashed.sample?.converters.first?.arguments, ["connect", "client_identifier"])
        XCTAssertEqual(parsed.effectiveBackend(named: "header")?.balance.algorithm, .header)
        XCTAssertEqual(parsed.effectiveBackend(named: "header")?.balance.arguments, ["Host", "use_domain_only"])
        XCTAssertEqual(parsed.effectiveBackend(named: "drawn")?.balance.algorithm, .random)
        XCTAssertEqual(parsed.effectiveBackend(named: "drawn")?.balance.arguments, ["2"])
        XCTAssertEqual(parsed.effectiveBackend(named: "static")?.balance.algorithm, .staticRoundRobin)
        XCTAssertEqual(parsed.effectiveBackend(named: "firstfree")?.balance.algorithm, .first)
        XCTAssertEqual(parsed.effectiveBackend(named: "firstfree")?.servers.first?.maxconn, 100)
    }

    func testBindAddressForms() throws {
        let parsed = try XCTUnwrap(config("""
            frontend f
              bind *:1883
              bind :1884
              bind 0.0.0.0:1885
              bind [::]:1886
              bind :::1887
              bind 127.0.0.1:1888,[::1]:1889 name local accept-proxy
              bind localhost:2000-2010
              bind ipv4@10.1.2.3:1890
              default_backend b
            backend b
              server s 127.0.0.1:1
            """))
        let binds = try XCTUnwrap(parsed.frontend(named: "f")?.binds)
        XCTAssertEqual(binds.map(\.addresses), [
            [BindAddress(host: nil, port: 1883)],
            [BindAddress(host: nil, port: 1884)],
            [BindAddress(host: "0.0.0.0", port: 1885)],
            [BindAddress(host: "::", port: 1886)],
            [BindAddress(host: "::", port: 1887)],
            [BindAddress(host: "127.0.0.1", port: 1888), BindAddress(host: "::1", port: 1889)],
            [BindAddress(host: "localhost", ports: 2000...2010)],
            [BindAddress(host: "10.1.2.3", port: 1890)],
        ])
        XCTAssertEqual(binds[5].name, "local")
        XCTAssertTrue(binds[5].acceptProxy)
        XCTAssertEqual(binds.map { $0.addresses[0].isWildcard }, [true, true, true, true, true, false, false, false])
        XCTAssertEqual(binds.map(\.addresses[0].description), [
            "*:1883", "*:1884", "0.0.0.0:1885", "[::]:1886", "[::]:1887", "127.0.0.1:1888", "localhost:2000-2010", "10.1.2.3:1890",
        ])
        XCTAssertEqual(binds.map(\.location.line), Array(15...22))
    }

    func testServerAddressForms() throws {
        let parsed = try XCTUnwrap(config("""
            backend b
              server v4 127.0.0.1:1883
              server v6 [::1]:1883
              server bare6 ::1:1884
              server named emqx1-cluster.emqx.io:1883
              server pinned ipv4@10.0.0.1:1883 id 7 port 8081 slowstart 30s maxqueue 10
            """))
        let servers = try XCTUnwrap(parsed.backend(named: "b")?.servers)
        XCTAssertEqual(servers.map(\.address), [
            ServerAddress(host: "127.0.0.1", port: 1883),
            ServerAddress(host: "::1", port: 1883),
            ServerAddress(host: "::1", port: 1884),
            ServerAddress(host: "emqx1-cluster.emqx.io", port: 1883),
            ServerAddress(host: "10.0.0.1", port: 1883),
        ])
        XCTAssertEqual(servers[1].address.description, "[::1]:1883")
        XCTAssertEqual(servers[4].options.id, 7)
        XCTAssertEqual(servers[4].options.checkPort, 8081)
        XCTAssertEqual(servers[4].options.slowstartMs, 30_000)
        XCTAssertEqual(servers[4].options.maxqueue, 10)
    }

    func testModeAndStatsSettings() throws {
        let parsed = try XCTUnwrap(config(#"""
            listen stats
              mode http
              bind 127.0.0.1:8404
              stats enable
              stats uri /admin?stats
              stats refresh 5s
              stats realm HAProxy\ Statistics
              stats auth admin1:AdMiN123
              stats auth admin2:AdMiN321
              stats hide-version
            """#))
        let frontend = try XCTUnwrap(parsed.effectiveFrontend(named: "stats"))
        XCTAssertEqual(frontend.mode, .http)
        XCTAssertEqual(frontend.stats, StatsSettings(
            enabled: true, uri: "/admin?stats", refreshMs: 5_000, realm: "HAProxy Statistics",
            credentials: [StatsCredential(user: "admin1", password: "AdMiN123"), StatsCredential(user: "admin2", password: "AdMiN321")],
            hideVersion: true, location: SourceLocation(file: "haproxy.cfg", line: 17),
            lines: ["enable", "uri", "refresh", "realm", "auth", "auth", "hide-version"].enumerated().map {
                StatsLine(keyword: "stats \($1)", location: SourceLocation(file: "haproxy.cfg", line: 17 + $0))
            }))
    }
}

// Per-address limits in HAProxy's syntax: `stick-table ... store conn_cur,conn_rate(10s)`,
// `tcp-request connection track-sc0 src [table <name>]`, and `reject if|unless` on the sc0
// counters. Each form the parser reads, each refusal at its line (the exact text an operator
// reads), and what the engine receives.
import XCTest
#if canImport(RingProxyConfig)
@testable import RingProxyConfig
#else
@testable import RingProxy
#endif

final class AddressLimitConfigTests: XCTestCase {
    private func parse(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> ConfigFile? {
        ConfigTestSupport.parse(text, file: file, line: line)
    }

    private func assertErrors(_ text: String, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) {
        ConfigTestSupport.assertErrors(text, expected, file: file, line: line)
    }

    /// The engine's configuration for `text` (with tcpDefaults, five lines, in front).
    private func load(_ text: String) throws(ConfigError) -> LoadedConfiguration {
        let file = try ConfigParser.parse(text: "\(tcpDefaults)\n\(text)", file: "t.cfg").get()
        return try EngineConfig.load(file)
    }

    /// What loading `text` refuses, one line per problem ("accepted" when nothing is).
    private func refusals(_ text: String) -> [String] {
        do {
            _ = try load(text)
            return ["accepted"]
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    /// A backend holding a table, an echo backend and the start of a frontend: the caller's
    /// lines follow on line 15 (after tcpDefaults' five).
    private func withTable(store: String = "conn_cur,conn_rate(10s)", _ rules: String) -> String {
        """
        backend per_ip
          stick-table type ip size 100k expire 30s store \(store)
        backend b
          server s 127.0.0.1:1
        frontend f
          bind 127.0.0.1:1883
          default_backend b
          tcp-request connection track-sc0 src table per_ip
        \(rules)
        """
    }

    /// A frontend with its own table of `type` and one `tcp-request connection` line, `track`
    /// (line 11, after tcpDefaults' five).
    private func ownTable(type: String = "ip", track: String) -> String {
        """
        backend b
          server s 127.0.0.1:1
        frontend f
          bind 127.0.0.1:1883
          stick-table type \(type) size 1k store conn_cur
          tcp-request connection \(track)
          default_backend b
        """
    }

    // MARK: parsing

    func testStickTableStoresTheConnectionCountersRingproxyMaintains() throws {
        let parsed = try XCTUnwrap(parse("""
            backend per_ip
              stick-table type ip size 100k expire 30s store conn_cur,conn_rate(10s) store conn_cnt
            backend others
              stick-table type ipv6 size 1k store gpc0,gpc_rate(2,1m),http_req_rate(10s),server_id
            """))
        let table = try XCTUnwrap(parsed.backend(named: "per_ip")?.stickTable)
        XCTAssertEqual(table.counters, StickTableCounters(connCur: true, connCnt: true, connRatePeriodMs: 10_000))
        XCTAssertEqual(table.store, ["conn_cur", "conn_rate(10s)", "conn_cnt"])
        XCTAssertEqual(parsed.backend(named: "others")?.stickTable?.counters, StickTableCounters())
        XCTAssertEqual(parsed.backend(named: "others")?.stickTable?.store, ["gpc0", "gpc_rate(2,1m)", "http_req_rate(10s)", "server_id"])
        XCTAssertEqual(parsed.warnings.map(\.description), [
            "haproxy.cfg:4: 'stick-table': 'store gpc0,gpc_rate,http_req_rate' ignored: ringproxy maintains conn_cur, conn_cnt and conn_rate (and the server a 'stick' rule stores) (no rule ringproxy evaluates can read the others)",
        ])
    }

    func testTrackSC0KeepsItsKeyAndTableAndRulesReadTheCountersInEveryForm() throws {
        let parsed = try XCTUnwrap(parse("""
            backend per_ip
              stick-table type ip size 100k expire 30s store conn_cur,conn_cnt,conn_rate(10s)
            frontend f
              bind 127.0.0.1:1883
              acl busy sc0_conn_cur ge 5
              tcp-request connection track-sc0 src table per_ip
              tcp-request connection reject if { sc0_conn_cur gt 10 } || { sc0_conn_rate(per_ip) gt 20 }
              tcp-request connection reject unless { sc_conn_cnt(0) lt 1000 } or busy !{ sc_conn_rate(0,per_ip) le 3 }
            """))
        let rules = try XCTUnwrap(parsed.frontend(named: "f")?.tcpRequestRules)
        XCTAssertEqual(rules.map(\.action), [.trackSC0, .reject, .reject])
        XCTAssertEqual(rules[0].tracking, TCPRequestRule.Tracking(key: SampleExpression(fetch: SampleCall(name: "src"), text: "src"), table: "per_ip"))
        XCTAssertNil(rules[0].condition)
        XCTAssertEqual(rules[1].condition?.alternatives.count, 2)
        XCTAssertEqual(rules[1].condition?.anonymousACLs.map(\.patterns), [["gt", "10"], ["gt", "20"]])
        XCTAssertEqual(rules[2].condition?.polarity, .unless)
        let reads = try XCTUnwrap(rules[2].condition?.samples(acls: parsed.frontend(named: "f")!.acls)).map(SampleRegistry.stickCounterRead)
        XCTAssertEqual(reads, [
            StickCounterRead(counter: .connCnt, table: nil),
            StickCounterRead(counter: .connCur, table: nil),
            StickCounterRead(counter: .connRate, table: "per_ip"),
        ])
        XCTAssertEqual(parsed.warnings.filter { $0.keyword != "frontend" }, [])
    }

    func testAFrontendOrListenTracksInItsOwnStickTable() throws {
        let parsed = try XCTUnwrap(parse("""
            frontend f
              bind 127.0.0.1:1883
              stick-table type ipv6 size 1k expire 1m store conn_cur nopurge
              tcp-request connection track-sc0 src
              tcp-request connection reject if { sc0_conn_cur gt 2 }
            listen l
              bind 127.0.0.1:1884
              stick-table type ip size 1k store conn_rate(1s)
              tcp-request connection track-sc0 src
              tcp-request connection reject if { sc0_conn_rate gt 2 }
              server s 127.0.0.1:1
            """))
        XCTAssertEqual(parsed.frontend(named: "f")?.stickTable?.type, .ipv6)
        XCTAssertEqual(parsed.frontend(named: "f")?.stickTable?.nopurge, true)
        XCTAssertEqual(parsed.effectiveFrontend(named: "f")?.stickTable?.counters.connCur, true)
        XCTAssertEqual(parsed.frontend(named: "l")?.stickTable, parsed.backend(named: "l")?.stickTable, "a listen's two halves share its table")
        XCTAssertEqual(parsed.frontend(named: "l")?.tcpRequestRules.first?.tracking?.table, nil)
    }

    func testASecondTrackSC0IsIgnoredWithAWarningAsHAProxyIgnoresIt() {
        let warnings = ConfigTestSupport.warnings("""
            frontend f
              bind 127.0.0.1:1883
              stick-table type ip size 1k store conn_cur
              tcp-request connection track-sc0 src
              tcp-request connection track-sc0 src
            """)
        XCTAssertEqual(warnings.filter { $0.contains("tcp-request") }, [
            "haproxy.cfg:5: 'tcp-request connection': 'track-sc0' ignored: sc0 is already tracked by the rule at line 4 (HAProxy ignores it too; remove one of them)",
        ])
    }

    // MARK: refused by the parser

    func testStoreOptionsAreCheckedAsHAProxyChecksThem() {
        assertErrors("""
            backend a
              stick-table type ip size 1k store conn_rate
            backend b
              stick-table type ip size 1k store conn_cur(10s)
            backend c
              stick-table type ip size 1k store conn_curr
            backend d
              stick-table type ip size 1k store conn_rate(0)
            backend e
              stick-table type ip size 1k store conn_rate(10x)
            backend f
              stick-table type ip size 1k store conn_rate(10s
            """, [
                "haproxy.cfg:2: 'stick-table': missing argument to store option 'conn_rate' (e.g. 'conn_rate(10s), the period the rate is measured over')",
                "haproxy.cfg:4: 'stick-table': store option 'conn_cur' takes no argument (write 'conn_cur')",
                "haproxy.cfg:6: 'stick-table': unknown store option 'conn_curr' (did you mean 'conn_cur'?)",
                "haproxy.cfg:8: 'stick-table': store option 'conn_rate' needs a period above 0 (e.g. 'conn_rate(10s)')",
                "haproxy.cfg:10: 'stick-table': invalid time '10x' for 'conn_rate': unknown unit 'x' (units are us, ms, s, m, h, d; a bare number is milliseconds)",
                "haproxy.cfg:12: 'stick-table': missing ')' in store option 'conn_rate(10s'",
            ])
    }

    func testTrackingOtherCountersOrWithoutAKeyIsRefused() {
        assertErrors("""
            frontend f
              bind 127.0.0.1:1883
              stick-table type ip size 1k store conn_cur
              tcp-request connection track-sc1 src
              tcp-request connection track-sc2 src
              tcp-request connection track-sc0
              tcp-request connection track-sc0 if { src 10.0.0.1 }
              tcp-request connection track-sc0 src table
              tcp-request connection track-sc0 src tabel per_ip
            """, [
                "haproxy.cfg:4: 'tcp-request connection': action 'track-sc1' is not supported by ringproxy: it tracks one stick counter, sc0 (use 'track-sc0' and the sc0_* fetches)",
                "haproxy.cfg:5: 'tcp-request connection': action 'track-sc2' is not supported by ringproxy: it tracks one stick counter, sc0 (use 'track-sc0' and the sc0_* fetches)",
                "haproxy.cfg:6: 'tcp-request connection': 'track-sc0' needs the key to track (e.g. 'tcp-request connection track-sc0 src')",
                "haproxy.cfg:7: 'tcp-request connection': 'track-sc0' needs the key to track (e.g. 'tcp-request connection track-sc0 src')",
                "haproxy.cfg:8: 'tcp-request connection': missing proxy name after 'table' (e.g. 'table per_ip', a backend holding a 'stick-table')",
                "haproxy.cfg:9: 'tcp-request connection': unexpected 'tabel' after the tracked key (a condition starts with 'if' or 'unless')",
            ])
    }

    func testStickCounterFetchesRingproxyDoesNotEvaluateAreRefusedAtTheirLine() {
        assertErrors("""
            frontend f
              bind 127.0.0.1:1883
              stick-table type ip size 1k store conn_cur,conn_rate(1s)
              tcp-request connection track-sc0 src
              tcp-request connection reject if { sc1_conn_cur gt 1 }
              tcp-request connection reject if { src_conn_rate gt 1 }
              tcp-request connection reject if { sc_conn_cur(1) gt 1 }
              tcp-request connection reject if { sc_conn_cur(3) gt 1 }
              tcp-request connection reject if { sc_conn_cur gt 1 }
              tcp-request connection reject if { sc0_sess_rate gt 1 }
              tcp-request connection reject if { sc0_con_cur gt 1 }
              tcp-request connection reject if { sc0_conn_cur(a,b) gt 1 }
            """, [
                "haproxy.cfg:5: 'tcp-request connection': fetch 'sc1_conn_cur' reads stick counter 1; ringproxy tracks sc0 only (track with 'tcp-request connection track-sc0 src' and read 'sc0_conn_cur')",
                "haproxy.cfg:6: 'tcp-request connection': fetch 'src_conn_rate' looks the address up without tracking it, which ringproxy does not do (track it with 'tcp-request connection track-sc0 src' and read 'sc0_conn_rate', which counts the connection being checked too)",
                "haproxy.cfg:7: 'tcp-request connection': 'sc_conn_cur(1)' reads stick counter 1; ringproxy tracks sc0 only (track with 'tcp-request connection track-sc0 src' and read 'sc_conn_cur(0)')",
                "haproxy.cfg:8: 'tcp-request connection': 'sc_conn_cur' stick counter '3' does not exist (HAProxy has counters 0, 1 and 2)",
                "haproxy.cfg:9: 'tcp-request connection': 'sc_conn_cur' needs a stick counter number and optionally a stick-table name (e.g. sc_conn_cur(0) or sc_conn_cur(0,per_ip))",
                "haproxy.cfg:10: 'tcp-request connection': stick-counter fetch 'sc0_sess_rate' is not supported by ringproxy (ringproxy reads sc0_conn_cur, sc0_conn_rate, sc0_conn_cnt, or sc_conn_cur(0), sc_conn_rate(0), sc_conn_cnt(0))",
                "haproxy.cfg:11: 'tcp-request connection': unknown fetch 'sc0_con_cur' (did you mean 'sc0_conn_cur'?)",
                "haproxy.cfg:12: 'tcp-request connection': 'sc0_conn_cur' takes at most one argument, a stick-table name (e.g. sc0_conn_cur or sc0_conn_cur(per_ip))",
            ])
    }

    func testReadingSC0BeforeTrackingItIsRefused() {
        // HAProxy accepts these and evaluates them on an untracked counter: the `if` never
        // applies (and an `unless` always would).
        assertErrors("""
            frontend f
              bind 127.0.0.1:1883
              stick-table type ip size 1k store conn_cur
              acl busy sc0_conn_cur gt 10
              tcp-request connection reject if { sc0_conn_cur gt 10 }
              tcp-request connection reject if busy
              tcp-request connection track-sc0 src if { sc0_conn_cur gt 1 }
            """, [
                "haproxy.cfg:5: 'tcp-request connection': 'sc0_conn_cur' reads sc0, which no 'tcp-request connection track-sc0' above this line tracks (rules run in order: put 'tcp-request connection track-sc0 src' above this one)",
                "haproxy.cfg:6: 'tcp-request connection': 'sc0_conn_cur' reads sc0, which no 'tcp-request connection track-sc0' above this line tracks (rules run in order: put 'tcp-request connection track-sc0 src' above this one)",
                "haproxy.cfg:7: 'tcp-request connection': 'sc0_conn_cur' reads sc0, which no 'tcp-request connection track-sc0' above this line tracks (rules run in order: put 'tcp-request connection track-sc0 src' above this one)",
            ])
    }

    func testTheTrackedTableMustExistAndStoreWhatTheRulesRead() {
        assertErrors("""
            backend per_ip
              stick-table type ip size 1k store conn_cur
            backend plain
              server s 127.0.0.1:1
            frontend own
              bind 127.0.0.1:1883
              tcp-request connection track-sc0 src
            frontend missing
              bind 127.0.0.1:1884
              tcp-request connection track-sc0 src table per_ipp
            frontend tableless
              bind 127.0.0.1:1885
              tcp-request connection track-sc0 src table plain
            frontend unstored
              bind 127.0.0.1:1886
              tcp-request connection track-sc0 src table per_ip
              tcp-request connection reject if { sc0_conn_cur gt 10 } || { sc0_conn_rate gt 10 }
              tcp-request connection reject if { sc_conn_cnt(0,per_ip) gt 10 }
            """, [
                "haproxy.cfg:7: 'tcp-request connection': frontend 'own' has no 'stick-table' for 'track-sc0' (add 'stick-table type ip size 100k expire 30s store conn_cur,conn_rate(10s)', or name another proxy's with 'table <name>')",
                "haproxy.cfg:10: 'tcp-request connection': no proxy named 'per_ipp' holds a stick-table (did you mean 'per_ip'?)",
                "haproxy.cfg:13: 'tcp-request connection': 'plain' has no 'stick-table' (declare one there, e.g. 'stick-table type ip size 100k expire 30s store conn_cur,conn_rate(10s)')",
                "haproxy.cfg:17: 'tcp-request connection': 'sc0_conn_rate' reads conn_rate, which the stick-table of 'per_ip' does not store (add 'conn_rate(10s)' to its 'store' at line 2; HAProxy accepts this and the rule never matches)",
                "haproxy.cfg:18: 'tcp-request connection': 'sc_conn_cnt' reads conn_cnt, which the stick-table of 'per_ip' does not store (add 'conn_cnt' to its 'store' at line 2; HAProxy accepts this and the rule never matches)",
            ])
    }

    // MARK: what the engine receives

    func testTrackAndRejectRulesBecomeTheFrontendsAddressLimit() throws {
        let loaded = try load(withTable(store: "conn_cur,conn_cnt,conn_rate(10s)", """
              acl busy sc0_conn_cur ge 5
              acl busy sc0_conn_rate 7
              tcp-request connection reject if { sc0_conn_cur gt 10 } || { sc_conn_rate(0,per_ip) gt 20 }
              tcp-request connection reject unless { sc0_conn_cnt(per_ip) -m int lt 1000 }
              tcp-request connection reject if busy !{ sc0_conn_cnt le 3 }
              tcp-request connection reject if !busy
            """))
        let limit = try XCTUnwrap(loaded.engine.frontends[0].addressLimit)
        XCTAssertEqual(limit.table, AddressTableConfig(name: "per_ip", family: .ipv4, entriesMax: 102_400, expireMs: 30_000,
                                                       ratePeriodMs: 10_000, purges: true))
        XCTAssertEqual(limit.rejectRules.map(\.alternatives), [
            [[AddressComparison(.connCur, .gt, 10)], [AddressComparison(.connRate, .gt, 20)]],
            [[AddressComparison(.connCnt, .lt, 1000)]],
            // busy is two lines, so two alternatives, each with the negated term.
            [[AddressComparison(.connCur, .ge, 5), AddressComparison(.connCnt, .le, 3, negated: true)],
             [AddressComparison(.connRate, .eq, 7), AddressComparison(.connCnt, .le, 3, negated: true)]],
            // !(a or b) is !a and !b.
            [[AddressComparison(.connCur, .ge, 5, negated: true), AddressComparison(.connRate, .eq, 7, negated: true)]],
        ])
        XCTAssertEqual(limit.rejectRules.map(\.unless), [false, true, false, false])
        XCTAssertEqual(limit.rejectRules[0].text,
                       "t.cfg:16 'tcp-request connection reject if { sc0_conn_cur gt 10 } || { sc_conn_rate(0,per_ip) gt 20 }'")
    }

    func testOwnTablesOfAFrontendAndAListenMapWithTheirTypeAndNopurge() throws {
        let loaded = try load("""
            backend b
              server s 127.0.0.1:1
            frontend f
              bind 127.0.0.1:1883
              stick-table type ipv6 size 10 store conn_cur nopurge
              tcp-request connection track-sc0 src
              tcp-request connection reject if { sc0_conn_cur gt 2 }
              default_backend b
            listen l
              bind 127.0.0.1:1884
              stick-table type ip size 1k expire 1m store conn_cur
              tcp-request connection track-sc0 src
              server s 127.0.0.1:1
            """)
        XCTAssertEqual(loaded.engine.frontends.map(\.addressLimit?.table), [
            AddressTableConfig(name: "f", family: .ipv6, entriesMax: 10, expireMs: nil, ratePeriodMs: nil, purges: false),
            AddressTableConfig(name: "l", family: .ipv4, entriesMax: 1024, expireMs: 60_000, ratePeriodMs: nil, purges: true),
        ])
        XCTAssertEqual(loaded.engine.frontends[1].addressLimit?.rejectRules, [], "tracking alone counts, and rejects nothing")
    }

    func testAnIPv6ListenerCountingInATypeIPTableIsPointedOut() throws {
        let loaded = try load("""
            backend b
              server s 127.0.0.1:1
            frontend f
              bind [::1]:1883
              stick-table type ip size 1k store conn_cur
              tcp-request connection track-sc0 src
              default_backend b
            """)
        XCTAssertTrue(loaded.notes.contains("frontend 'f' listens on IPv6 but counts addresses in the 'type ip' table of 'f': IPv6 clients are not tracked, as in HAProxy (use 'type ipv6' to track both)"),
                      "\(loaded.notes)")
    }

    func testRulesTheEngineDoesNotEvaluateAreRefusedAtTheirLine() {
        let cases: [(String, String)] = [
            (withTable("  tcp-request connection reject"),
             "t.cfg:14: 'tcp-request connection': 'reject' without a condition refuses every connection (reject if|unless a condition on sc0_conn_cur, sc0_conn_rate, sc0_conn_cnt, or sc_conn_cur(0), sc_conn_rate(0), sc_conn_cnt(0))"),
            (withTable("  tcp-request connection reject if { src 10.0.0.1 }"),
             "t.cfg:14: 'tcp-request connection': 'src' is not supported in a 'tcp-request connection' rule (ringproxy reads sc0_conn_cur, sc0_conn_rate, sc0_conn_cnt, or sc_conn_cur(0), sc_conn_rate(0), sc_conn_cnt(0) here)"),
            (withTable("  tcp-request connection reject if TRUE"),
             "t.cfg:14: 'tcp-request connection': 'TRUE' is not a condition on the tracked address's counters (ringproxy reads sc0_conn_cur, sc0_conn_rate, sc0_conn_cnt, or sc_conn_cur(0), sc_conn_rate(0), sc_conn_cnt(0) here)"),
            (withTable("  tcp-request connection reject if { sc0_conn_cur 1:5 }"),
             "t.cfg:14: 'tcp-request connection': 'sc0_conn_cur' must be compared with one number, e.g. 'gt 10'; lists and ranges of values are not supported (operators: eq, ge, gt, le, lt; a plain number means eq)"),
            (withTable("  tcp-request connection reject if { sc0_conn_cur 1 2 }"),
             "t.cfg:14: 'tcp-request connection': 'sc0_conn_cur' must be compared with one number"),
            (withTable("  tcp-request connection reject if { sc0_conn_cur }"),
             "t.cfg:14: 'tcp-request connection': 'sc0_conn_cur' needs a value to compare with (e.g. '{ sc0_conn_cur gt 10 }'; HAProxy never matches it without one)"),
            (withTable("  tcp-request connection reject if { sc0_conn_cur -m str 5 }"),
             "t.cfg:14: 'tcp-request connection': 'sc0_conn_cur' takes no flags but '-m int' here (write e.g. '{ sc0_conn_cur gt 10 }')"),
            (withTable("  tcp-request connection accept if { sc0_conn_cur lt 2 }"),
             "t.cfg:14: 'tcp-request connection': 'accept' rules are not implemented yet (ringproxy runs 'track-sc0 src', 'reject if|unless <condition on sc0 counters>' and 'expect-proxy layer4' here)"),
            (withTable("  tcp-request content track-sc0 src"),
             "t.cfg:14: 'tcp-request content': only 'tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }' is supported (track addresses with 'tcp-request connection track-sc0 src')"),
            ("""
             backend per_ip
               stick-table type ip size 1k store conn_cur
             backend other
               stick-table type ip size 1k store conn_cur
             backend b
               server s 127.0.0.1:1
             frontend f
               bind 127.0.0.1:1883
               tcp-request connection track-sc0 src table per_ip
               tcp-request connection reject if { sc0_conn_cur(other) gt 1 }
               default_backend b
             """,
             "t.cfg:15: 'tcp-request connection': 'sc0_conn_cur(other)' reads the table of 'other', but sc0 tracks the address in the table of 'per_ip' (read the table sc0 tracks in: 'sc0_conn_cur')"),
            (ownTable(track: "track-sc0 src if { sc0_conn_cur gt 1 }"),
             "'sc0_conn_cur' reads sc0, which no 'tcp-request connection track-sc0' above this line tracks"),
            (ownTable(track: "track-sc0 src if { src 10.0.0.1 }"),
             "t.cfg:11: 'tcp-request connection': a condition on 'track-sc0' is not supported: ringproxy tracks every connection (remove the condition; put conditions on the 'reject' rules)"),
            (ownTable(type: "string", track: "track-sc0 src"),
             "t.cfg:11: 'tcp-request connection': 'track-sc0 src' needs a 'stick-table type ip' or 'type ipv6'; the one of 'f' (line 10) is type string"),
            (ownTable(track: "track-sc0 req.len"),
             "t.cfg:11: 'tcp-request connection': ringproxy tracks the client's address only: 'track-sc0 src', not 'req.len'"),
        ]
        for (body, expected) in cases {
            let found = refusals(body)
            XCTAssertTrue(found.contains { $0.contains(expected) }, "expected '\(expected)', got: \(found)")
        }
    }
}

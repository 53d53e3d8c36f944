// The renderers on a hand-made snapshot: the CSV header is HAProxy 2.6's (compared with a real
// HAProxy's stats page when haproxy is installed), the Prometheus text goes through the
// reference Python parser, the JSON through Foundation's, and the page escapes names and shows
// what the configuration asks.
import Foundation
import XCTest
@testable import RingProxy

final class StatsRendererTests: XCTestCase {
    let snapshot = FakeAdminControl.sample()
    var rates: SessionRates {
        var rates = SessionRates()
        rates.frontends["mqtt<in>"] = SessionRate(current: 5, max: 9)
        rates.servers["brokers/b1"] = SessionRate(current: 4, max: 8)
        return rates
    }

    func testCSVHasHAProxysColumnsAndOneRowPerProxyAndServerWithItsType() throws {
        let lines = StatsCSV.render(snapshot, rates: rates).split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,"))
        XCTAssertEqual(lines.count, 1 + 1 + 3 + 1)
        let columns = StatsCSV.columns
        func field(_ row: String, _ name: String) -> String {
            row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)[columns.firstIndex(of: name)!]
        }
        XCTAssertEqual(lines[1].split(separator: ",", omittingEmptySubsequences: false).count, columns.count + 1, "a trailing comma, as HAProxy")
        XCTAssertEqual([field(lines[1], "svname"), field(lines[1], "type"), field(lines[1], "scur"), field(lines[1], "stot"), field(lines[1], "rate"), field(lines[1], "rate_max"), field(lines[1], "dcon"), field(lines[1], "ereq")],
                       ["FRONTEND", "0", "3", "42", "5", "9", "2", "5"])
        XCTAssertEqual([field(lines[2], "svname"), field(lines[2], "type"), field(lines[2], "status"), field(lines[2], "check_status"), field(lines[2], "rate")],
                       ["b1", "2", "UP", "L4OK", "4"])
        XCTAssertEqual([field(lines[3], "status"), field(lines[3], "chkfail"), field(lines[3], "chkdown"), field(lines[3], "check_desc"), field(lines[3], "weight")],
                       ["DOWN", "3", "1", "Connection refused", "2"])
        XCTAssertEqual([field(lines[4], "status"), field(lines[4], "addr")], ["MAINT", "[::1]:18833"])
        XCTAssertEqual([field(lines[5], "svname"), field(lines[5], "type"), field(lines[5], "act"), field(lines[5], "algo")], ["BACKEND", "1", "2", "roundrobin"])
    }

    func testCSVHeaderEqualsARealHAProxy26StatsPage() throws {
        let haproxy = try requireTool("haproxy")
        _ = try requireTool("curl")
        let dir = try TemporaryDirectory()
        let port = TestSocket.unusedPort()
        try """
            defaults
              mode http
              timeout connect 1s
              timeout client 5s
              timeout server 5s
            frontend stats
              bind 127.0.0.1:\(port)
              stats enable
              stats uri /stats

            """.write(toFile: dir.file("h.cfg"), atomically: true, encoding: .utf8)
        let child = try ChildProcess(haproxy, ["-db", "-f", dir.file("h.cfg")])
        defer { _ = child.finish(within: 0) }
        guard eventually(seconds: 10, { Mosquitto.listening(port) }) else {
            XCTFail("haproxy did not listen: \(child.finish(within: 0).1)")
            return
        }
        let (status, csv) = try shell("curl -s 'http://127.0.0.1:\(port)/stats;csv'")
        XCTAssertEqual(status, 0)
        let theirs = try XCTUnwrap(csv.split(separator: "\n").first)
        XCTAssertEqual(String(theirs) + "\n", StatsCSV.header)
    }

    func testPrometheusTextIsReadByTheReferenceParser() throws {
        _ = try requireTool("python3")
        let (probe, _) = try shell("python3 -c 'import prometheus_client'")
        guard probe == 0 else { throw XCTSkipError("prometheus_client is not installed (scripts/install-deps.sh)") }
        let text = PrometheusText.render(snapshot, rates: rates)
        let dir = try TemporaryDirectory()
        try text.write(toFile: dir.file("metrics.txt"), atomically: true, encoding: .utf8)
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                    print(f"{family.type} {s.name} {labels} {s.value:g}")
            """
        try script.write(toFile: dir.file("parse.py"), atomically: true, encoding: .utf8)
        let (status, output) = try shell("python3 \(dir.file("parse.py")) \(dir.file("metrics.txt"))")
        XCTAssertEqual(status, 0, output)
        let samples = Set(output.split(separator: "\n").map(String.init))
        for expected in [
            "gauge ringproxy_frontend_current_sessions proxy=mqtt<in> 3",
            "counter ringproxy_frontend_sessions_total proxy=mqtt<in> 42",
            "gauge ringproxy_frontend_current_session_rate proxy=mqtt<in> 5",
            "counter ringproxy_frontend_mqtt_rejected_total proxy=mqtt<in>,reason=notConnect 4",
            "gauge ringproxy_server_status proxy=brokers,server=b2,state=DOWN 1",
            "gauge ringproxy_server_status proxy=brokers,server=b2,state=UP 0",
            "gauge ringproxy_server_status proxy=brokers,server=b3,state=MAINT 1",
            "counter ringproxy_server_check_failures_total proxy=brokers,server=b2 3",
            "gauge ringproxy_backend_stick_table_entries proxy=brokers 1",
            "counter ringproxy_engine_accepted_total  42",
            "gauge ringproxy_engine_active  3",
            "gauge ringproxy_process_build_info version=9.9-test 1",
        ] {
            XCTAssertTrue(samples.contains(expected), "missing \(expected) in:\n\(output)")
        }
        for counter in Counter.allCases {
            XCTAssertTrue(text.contains("# HELP ringproxy_engine_\(counter.info.name)"), "\(counter) has no help")
        }
    }

    func testPrometheusLabelsAreEscapedAndHideVersionDropsTheVersion() {
        var odd = snapshot
        odd.frontends[0].name = "a\"b\\c\nd"
        let text = PrometheusText.render(odd, hideVersion: true)
        XCTAssertTrue(text.contains(#"ringproxy_frontend_current_sessions{proxy="a\"b\\c\nd"} 3"#), text)
        XCTAssertTrue(text.contains("ringproxy_process_build_info 1\n"))
        XCTAssertFalse(text.contains("9.9-test"))
    }

    func testJSONIsValidAndNestsServersInTheirBackend() throws {
        let text = StatsJSON.render(snapshot, rates: rates)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(object["schema"] as? String, "ringproxy-stats/1")
        XCTAssertEqual((object["counters"] as? [String: Any])?["accepted"] as? Int, 42)
        let backend = try XCTUnwrap((object["backends"] as? [[String: Any]])?.first)
        let servers = try XCTUnwrap(backend["servers"] as? [[String: Any]])
        XCTAssertEqual(servers.map { $0["state"] as? String }, ["UP", "DOWN", "MAINT"])
        XCTAssertEqual(servers[0]["rate_max"] as? Int, 8)
        XCTAssertEqual((object["frontends"] as? [[String: Any]])?.first?["pxname"] as? String, "mqtt<in>")
        let hidden = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(StatsJSON.render(snapshot, hideVersion: true).utf8)) as? [String: Any])
        XCTAssertTrue(hidden["version"] is NSNull)
    }

    func testThePageEscapesNamesColoursStatesAndFollowsRefreshAndHideVersion() {
        let page = StatsHTML.render(snapshot, rates: rates, options: StatsHTMLOptions(uri: "/stats", refreshMs: 10_000))
        XCTAssertTrue(page.contains("<meta http-equiv=\"refresh\" content=\"10\">"))
        XCTAssertTrue(page.contains("frontend mqtt&lt;in&gt;"))
        XCTAssertFalse(page.contains("mqtt<in>"))
        XCTAssertTrue(page.contains("<tr class=\"UP\"><td class=\"name\">b1</td>"))
        XCTAssertTrue(page.contains("<tr class=\"DOWN\"><td class=\"name\">b2</td>"))
        XCTAssertTrue(page.contains("<tr class=\"MAINT\"><td class=\"name\">b3</td>"))
        XCTAssertTrue(page.contains("<td class=\"status\" data-state=\"MAINT\">"), "the state scripts read from the DOM")
        XCTAssertTrue(page.contains("L4CON (Connection refused)"), "last check shown")
        XCTAssertTrue(page.contains("notConnect"), "not-MQTT reasons shown")
        XCTAssertTrue(page.contains("stick table 1 of 1000 entries"))
        XCTAssertTrue(page.contains("per-core load"))
        XCTAssertTrue(page.contains("9.9-test"))
        XCTAssertFalse(page.contains("<form"), "no admin form unless allowed")
        let hidden = StatsHTML.render(snapshot, options: StatsHTMLOptions(uri: "/stats", hideVersion: true, adminAllowed: true))
        XCTAssertFalse(hidden.contains("9.9-test"))
        XCTAssertFalse(hidden.contains("http-equiv"))
        XCTAssertTrue(hidden.contains("<form method=\"post\" action=\"/stats\">"))
    }

    func testTheSamplerTurnsTotalsIntoRatesAndKeepsTheHighest() {
        var sampler = SessionRateSampler()
        var s = snapshot
        sampler.record(s, nowMs: 0)
        s.frontends[0].sessionsTotal += 30
        sampler.record(s, nowMs: 1_000)
        XCTAssertEqual(sampler.rates.frontend("mqtt<in>"), SessionRate(current: 30, max: 30))
        s.frontends[0].sessionsTotal += 10
        sampler.record(s, nowMs: 2_000)
        XCTAssertEqual(sampler.rates.frontend("mqtt<in>"), SessionRate(current: 10, max: 30))
        s.frontends = []
        sampler.record(s, nowMs: 3_000)
        XCTAssertNil(sampler.rates.frontends["mqtt<in>"], "a proxy gone after a reload goes from the rates")
    }
}

// Per-address limits end to end, real clients on loopback: one address that opens too many
// connections, or opens them too fast, is denied while another address (127.0.0.2) is still
// served; what it closes lets it in again; a denial is counted, logged as PR and warned about;
// the counts stay right across a reload that keeps the table. Each test would fail without the
// mechanism it names (Worker+AddressLimit, Engine/AddressTable).
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class AddressLimitTests: XCTestCase {
    private let otherAddress = SocketAddress(ipv4: 127, 0, 0, 2, port: 0)

    /// `track-sc0 src` in a shared table, then one reject rule on `condition` terms.
    private func limit(_ condition: [[AddressComparison]], ratePeriodMs: Int? = 10_000) -> AddressLimitConfig {
        AddressLimitConfig(table: AddressTableConfig(name: "per_ip", family: .ipv4, entriesMax: 1_000, expireMs: 30_000, ratePeriodMs: ratePeriodMs),
                           rejectRules: [AddressRejectRule(alternatives: condition, text: "test rule")])
    }

    func testTheEleventhConnectionFromOneAddressIsDeniedWhileAnotherAddressIsServed() throws {
        let echo = TestServer.echo()
        let syslog = SyslogReceiver()
        defer { echo.stop() }
        // HAProxy's `reject if { sc0_conn_cur gt 10 }`: the count includes the connection being
        // checked, so 10 are admitted.
        let (engine, port) = try startEngine(servers: [echo.port], cores: 2) {
            $0.frontends[0].addressLimit = self.limit([[AddressComparison(.connCur, .gt, 10)]])
            $0.log = syslog.logConfig
        }
        defer { engine.stop(); engine.wait() }
        var open: [Int32] = []
        defer { open.forEach { close($0) } }
        for i in 0..<10 {
            let fd = TestSocket.connect(port: port)
            assertEchoes(fd, UInt8(i), "connection \(i + 1) from 127.0.0.1")
            open.append(fd)
        }
        assertRefused(port: port, "the eleventh connection from 127.0.0.1 was served")
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.deniedConnections], 1)
        XCTAssertEqual(stats[.untrackedAddresses], 0)
        XCTAssertEqual(stats[.accepted], 10, "a denied connection is not counted as accepted")
        let line = try XCTUnwrap(syslog.receive(count: 1).first, "no log line for the denied connection")
        XCTAssertTrue(line.contains(": 127.0.0.1:"), line)
        XCTAssertTrue(line.contains(" test servers/<NOSRV> -1/-1/"), line)
        XCTAssertTrue(line.contains(" 0 PR "), line)

        assertServed(port: port, from: otherAddress, 42, "127.0.0.2 is another address: it has its own count")

        // One of the ten leaves: its address has room again once the proxy has closed it.
        close(open.removeLast())
        XCTAssertTrue(eventually(seconds: 5) { engine.statistics().total[.active] == 9 })
        let again = TestSocket.connect(port: port)
        assertEchoes(again, 7, "a place freed by a closed connection")
        open.append(again)
        assertRefused(port: port, "ten are open again: the next is denied")
        XCTAssertEqual(engine.statistics().total[.deniedConnections], 2)
    }

    func testABurstBeyondTheRateIsDeniedUntilThePeriodHasPassed() throws {
        let echo = TestServer.echo()
        defer { echo.stop() }
        // `store conn_rate(1s)` and `reject if { sc0_conn_rate gt 5 }`.
        let (engine, port) = try startEngine(servers: [echo.port], cores: 2) {
            $0.frontends[0].addressLimit = self.limit([[AddressComparison(.connRate, .gt, 5)]], ratePeriodMs: 1_000)
        }
        defer { engine.stop(); engine.wait() }
        for i in 0..<5 { assertServed(port: port, UInt8(i), "connection \(i + 1) of the burst") }
        assertRefused(port: port, "the sixth connection within the period was served")
        assertServed(port: port, from: otherAddress, 9, "another address has its own rate")
        // The rate is a sliding window over two periods (denied attempts count in it too):
        // after two quiet periods it is down to this connection.
        usleep(2_100_000)
        assertServed(port: port, 1, "admitted again once the period has passed")
        XCTAssertEqual(engine.statistics().total[.deniedConnections], 1)
    }

    func testAddressCountsSurviveAReloadThatKeepsTheTable() throws {
        let echo = TestServer.echo()
        defer { echo.stop() }
        let (engine, port) = try startEngine(servers: [echo.port], cores: 1) {
            $0.frontends[0].addressLimit = self.limit([[AddressComparison(.connCur, .gt, 3)]])
        }
        defer { engine.stop(); engine.wait() }
        var open: [Int32] = []
        defer { open.forEach { close($0) } }
        for i in 0..<3 {
            let fd = TestSocket.connect(port: port)
            assertEchoes(fd, UInt8(i))
            open.append(fd)
        }
        // Same table settings, another retry count: a new generation sharing the table.
        var next = engine.config
        next.retries = 1
        try engine.reload(next)
        assertRefused(port: port, "the new configuration forgot the three connections still open")
        // A connection of the previous configuration closes and releases into the same table.
        close(open.removeLast())
        XCTAssertTrue(eventually(seconds: 5) { engine.retiredConnections == 2 })
        let admitted = TestSocket.connect(port: port)
        assertEchoes(admitted, 5, "the place a previous connection freed")
        open.append(admitted)
    }

    func testTrackingAndReleasingAnAdmittedConnectionAllocatesNothingOnTheWorker() throws {
        let echo = TestServer.echo()
        defer { echo.stop() }
        let (engine, port) = try startEngine(servers: [echo.port], cores: 1) {
            $0.frontends[0].addressLimit = self.limit([[AddressComparison(.connCur, .gt, 10)], [AddressComparison(.connRate, .gt, 100_000)]])
        }
        defer { engine.stop(); engine.wait() }
        func session(_ i: Int) { assertServed(port: port, from: i % 2 == 0 ? nil : otherAddress, UInt8(truncatingIfNeeded: i)) }
        for i in 0..<20 { session(i) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let before = engine.statistics().total
        for i in 0..<200 { session(i) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let after = engine.statistics().total
        XCTAssertEqual(after[.accepted] - before[.accepted], 200)
        XCTAssertEqual(after[.deniedConnections], 0)
        guard before.threadAllocatedBytes >= 0 else { return try jemallocMissing() }
        XCTAssertEqual(after.threadAllocatedBytes - before.threadAllocatedBytes, 0,
                       "the worker allocated while tracking, judging and releasing 200 connections")
    }
}

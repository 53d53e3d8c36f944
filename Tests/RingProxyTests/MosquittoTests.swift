// MQTT through the proxy with real parts: mosquitto brokers and the mosquitto clients.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class MosquittoTests: XCTestCase {
    func testMosquittoSubscriberReceivesWhatThePublisherSentThroughTheProxy() throws {
        let broker = try Mosquitto()
        defer { broker.stop() }
        let (engine, port) = try startEngine(servers: [broker.port])
        defer { engine.stop(); engine.wait() }
        guard let sub = Tools.which("mosquitto_sub"), let pub = Tools.which("mosquitto_pub") else {
            return XCTFail("mosquitto-clients is not installed")
        }
        let subscriber = try ChildProcess(sub, ["-h", "127.0.0.1", "-p", "\(port)", "-t", "rp/test", "-C", "3", "-W", "15",
                                                "-q", "1", "-i", "rp-sub"])
        XCTAssertTrue(eventually { broker.connectedClientIDs().contains("rp-sub") }, "subscriber never reached the broker")
        usleep(200_000)   // let the SUBSCRIBE settle
        for i in 1...3 {
            let publisher = try ChildProcess(pub, ["-h", "127.0.0.1", "-p", "\(port)", "-t", "rp/test", "-m", "message \(i)",
                                                   "-q", "1", "-i", "rp-pub-\(i)"])
            let (status, output) = publisher.finish(within: 10)
            XCTAssertEqual(status, 0, output)
        }
        let (status, output) = subscriber.finish(within: 15)
        XCTAssertEqual(status, 0, output)
        XCTAssertEqual(output.split(separator: "\n"), ["message 1", "message 2", "message 3"])
        XCTAssertEqual(Set(broker.connectedClientIDs()), ["rp-sub", "rp-pub-1", "rp-pub-2", "rp-pub-3"])
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
    }

    func testTenClientsSpreadRoundRobinOverThreeBrokers() throws {
        let brokers = try (0..<3).map { _ in try Mosquitto() }
        defer { brokers.forEach { $0.stop() } }
        let (engine, port) = try startEngine(servers: brokers.map(\.port), cores: 1)
        defer { engine.stop(); engine.wait() }
        let pub = try XCTUnwrap(Tools.which("mosquitto_pub"))
        for i in 0..<9 {
            let p = try ChildProcess(pub, ["-h", "127.0.0.1", "-p", "\(port)", "-t", "t", "-m", "x", "-i", "spread-\(i)"])
            XCTAssertEqual(p.finish(within: 10).0, 0)
        }
        let perBroker = brokers.map { $0.connectedClientIDs().count }
        XCTAssertEqual(perBroker, [3, 3, 3], "one core, round robin: an even spread")
    }
}

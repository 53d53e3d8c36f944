// CONNACK-aware redispatch (`option mqtt-connack-redispatch`, a ringproxy extension): brokers
// that answer the CONNECT with "server unavailable / busy / use another server" beside real
// mosquitto brokers. With the option, every client lands on a healthy broker and never sees a
// refusal (paho-mqtt, 3.1.1 and 5.0); without it, the refusals reach the clients as they would
// through HAProxy. Pipelined bytes behind the CONNECT follow it to the accepting broker; spent
// retries hand the last refusal to the client.
import Foundation
import Glibc
import MQTTPeek
import XCTest
@testable import RingProxy

extension TestServer {
    /// A broker that reads the CONNECT (after a PROXY v2 header, if one comes) and answers a
    /// 3.x client CONNACK `code311` and a 5.0 client CONNACK `code5` with `reference` as its
    /// Server Reference, written in `pieces` segments. A refusal is followed by a close, as
    /// brokers do; an acceptance by reading to the end, all of it kept in `record`.
    static func refusingBroker(code311: UInt8 = 0x03, code5: UInt8 = 0x88, reference: String? = nil, pieces: Int = 1,
                               record: Locked<[[UInt8]]>? = nil) -> TestServer {
        TestServer { fd in
            guard var (level, bytes) = readConnect(fd) else { return }
            var answer: [UInt8] = [0x20, 0x02, 0x00, code311]
            if level == 5 {
                let properties = reference.map { [0x1C] + MQTTWire.string(Array($0.utf8)) } ?? []
                let body: [UInt8] = [0x00, code5] + MQTTWire.remainingLength(properties.count) + properties
                answer = [0x20] + MQTTWire.remainingLength(body.count) + body
            }
            let size = (answer.count + pieces - 1) / pieces
            var i = 0
            while i < answer.count {
                _ = TestSocket.writeAll(fd, Array(answer[i..<min(i + size, answer.count)]))
                i += size
                if i < answer.count { usleep(20_000) }
            }
            guard let record, answer[3] == 0 else { return }
            _ = TestSocket.readToEnd(fd) { bytes += $0 }
            record.withLock { $0.append(bytes) }
        }
    }

    /// A broker that reads the CONNECT and closes without a CONNACK (with an RST if `reset`).
    static func closingBroker(reset: Bool = false) -> TestServer {
        TestServer { fd in
            guard readConnect(fd) != nil else { return }
            if reset {
                var abort = linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
            }
        }
    }

    static let proxyV2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// Reads until a whole CONNECT is there (behind a PROXY v2 header, if any): its protocol
    /// level and every byte read; nil if none came.
    static func readConnect(_ fd: Int32) -> (UInt8, [UInt8])? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            bytes += chunk[0..<n]
            var skip = 0
            if bytes.starts(with: proxyV2Signature) {
                guard bytes.count >= 16 else { continue }
                skip = 16 + (Int(bytes[14]) << 8 | Int(bytes[15]))
                guard bytes.count >= skip else { continue }
            }
            switch bytes[skip...].withUnsafeBytes({ MQTTPeek.parseConnect($0, connectMaxBytes: 1 << 20) }) {
            case .connect(let packet): return (packet.protocolLevel, bytes)
            case .invalid: return nil
            default: continue
            }
        }
    }
}

final class ConnackRedispatchTests: XCTestCase {
    private func startProxy(servers: [UInt16], option: Bool, retries: Int = 3, cores: Int = 2) throws -> (Engine, UInt16) {
        try startEngine(servers: servers, cores: cores) { config in
            config.backends[0].connackRedispatch = option
            config.backends[0].retries = retries
        }
    }

    /// Reads one CONNACK (any length below 128): its bytes, nil on EOF first.
    private func readConnack(_ fd: Int32) -> [UInt8]? {
        guard let head = TestSocket.readExactly(fd, 2) else { return nil }
        guard let body = TestSocket.readExactly(fd, Int(head[1])) else { return nil }
        return head + body
    }

    /// Refusing brokers between two mosquittos: 0x88/0x03, 0x89 then 0x9F in a row, and 0x9C
    /// naming the second mosquitto, so that a client meets at most two refusals in a row.
    private func refusersAndBrokers() throws -> (servers: [UInt16], refusers: [TestServer], brokers: [Mosquitto]) {
        let brokers = try [Mosquitto(), Mosquitto()]
        let refusers = [TestServer.refusingBroker(code5: 0x88), TestServer.refusingBroker(code5: 0x89),
                        TestServer.refusingBroker(code5: 0x9F),
                        TestServer.refusingBroker(code5: 0x9C, reference: "127.0.0.1:\(brokers[1].port)")]
        let servers = [refusers[0].port, brokers[0].port, refusers[1].port, refusers[2].port, brokers[1].port, refusers[3].port]
        return (servers, refusers, brokers)
    }

    func testWithTheOptionAHundredClientsConnectThroughHealthyBrokersAndNoneSeesARefusal() throws {
        let (servers, refusers, brokers) = try refusersAndBrokers()
        defer { brokers.forEach { $0.stop() }; refusers.forEach { $0.stop() } }
        let (engine, port) = try startProxy(servers: servers, option: true)
        defer { engine.stop(); engine.wait() }
        for version in ["3.1.1", "5"] {
            let codes = try Paho.connectEach(port: port, count: 100, prefix: "redispatch-\(version)", version: version)
            XCTAssertEqual(codes, [0: 100], "MQTT \(version): every client connected, none saw a refusal")
        }
        XCTAssertTrue(eventually {
            let ids = Set(brokers.flatMap { $0.connectedClientIDs() })
            return ["3.1.1", "5"].allSatisfy { v in (0..<100).allSatisfy { ids.contains("redispatch-\(v)-\($0)") } }
        }, "all 200 clients reached a mosquitto")
        XCTAssertGreaterThan(refusers.map(\.accepted).reduce(0, +), 0, "the refusers were asked")
        let stats = engine.statistics().total
        XCTAssertGreaterThan(stats[.redispatchServerUnavailable], 0)
        XCTAssertGreaterThan(stats[.redispatchServerBusy], 0)
        XCTAssertGreaterThan(stats[.redispatchConnectionRate], 0)
        XCTAssertGreaterThan(stats[.redispatchUseAnotherServer], 0)
        XCTAssertEqual(stats[.redispatchReferences], stats[.redispatchUseAnotherServer], "0x9C named the second mosquitto")
        XCTAssertEqual(stats[.connackRefusalsPassed], 0)
        let redispatches = engine.snapshot().backends[0].redispatches
        XCTAssertEqual(Int(redispatches), Int(stats[.redispatchServerUnavailable] + stats[.redispatchServerBusy]
                                              + stats[.redispatchConnectionRate] + stats[.redispatchUseAnotherServer]),
                       "each counted as a redispatch (wredis)")
    }

    func testWithoutTheOptionTheRefusalsReachTheClients() throws {
        let (servers, refusers, brokers) = try refusersAndBrokers()
        defer { brokers.forEach { $0.stop() }; refusers.forEach { $0.stop() } }
        let (engine, port) = try startProxy(servers: servers, option: false)
        defer { engine.stop(); engine.wait() }
        let codes = try Paho.connectEach(port: port, count: 60, prefix: "passed", version: "5")
        XCTAssertEqual(codes.values.reduce(0, +), 60)
        XCTAssertGreaterThan(codes[0] ?? 0, 0, "some went to a mosquitto")
        XCTAssertGreaterThan(60 - (codes[0] ?? 0), 0, "and the others saw their broker's refusal")
        XCTAssertTrue(Set(codes.keys).isSubset(of: [0, 0x88, 0x89, 0x9F, 0x9C]), "\(codes)")
        XCTAssertEqual(engine.statistics().total[.redispatchServerUnavailable], 0)
    }

    func testAPublishPipelinedBehindTheConnectReachesTheAcceptingBroker() throws {
        let refuser = TestServer.refusingBroker()
        let record = Locked<[String]>([])
        let received = Locked<[UInt8]>([])
        let recorder = TestServer.recordingBroker(record, received: received)
        defer { refuser.stop(); recorder.stop() }
        let (engine, port) = try startProxy(servers: [refuser.port, recorder.port], option: true, cores: 1)
        defer { engine.stop(); engine.wait() }
        let publish: [UInt8] = [0x30, 0x0B, 0x00, 0x04] + Array("a/b/".utf8) + Array("hello".utf8)
        var expected: [[UInt8]] = []
        for i in 0..<4 {
            let connect = MQTTWire.connect(clientID: "pipelined-\(i)")
            expected.append(connect + publish)
            let fd = TestSocket.connect(port: port)
            XCTAssertTrue(TestSocket.writeAll(fd, connect + publish), "CONNECT and PUBLISH in one segment")
            XCTAssertEqual(readConnack(fd), [0x20, 0x02, 0x00, 0x00], "only the accepting broker's CONNACK")
            _ = TestSocket.writeAll(fd, MQTTWire.disconnect)
            shutdown(fd, Int32(SHUT_WR))
            _ = TestSocket.readToEnd(fd) { _ in }
            close(fd)
        }
        XCTAssertTrue(eventually { record.withLock { $0.count } == 4 })
        XCTAssertTrue(eventually {
            let bytes = received.withLock { $0 }
            return expected.allSatisfy { e in bytes.indices.contains { bytes[$0...].starts(with: e + MQTTWire.disconnect) } }
        }, "each CONNECT, its PUBLISH and the DISCONNECT, in order, at the recorder")
        XCTAssertGreaterThan(refuser.accepted, 0)
        XCTAssertEqual(engine.statistics().total[.redispatchServerUnavailable], UInt64(refuser.accepted))
    }

    func testWhenTheRetriesAreSpentTheClientGetsTheLastRefusal() throws {
        let refusers = [TestServer.refusingBroker(), TestServer.refusingBroker()]
        defer { refusers.forEach { $0.stop() } }
        let (engine, port) = try startProxy(servers: refusers.map(\.port), option: true, retries: 3, cores: 1)
        defer { engine.stop(); engine.wait() }
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        XCTAssertTrue(TestSocket.writeAll(fd, MQTTWire.connect(clientID: "unlucky")))
        XCTAssertEqual(readConnack(fd), [0x20, 0x02, 0x00, 0x03], "the last broker's refusal, as it sent it")
        XCTAssertTrue(TestSocket.isClosedByPeer(fd))
        XCTAssertTrue(eventually { refusers.map(\.accepted).reduce(0, +) == 4 }, "the first attempt and 3 retries")
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.redispatchServerUnavailable], 3)
        XCTAssertEqual(stats[.connackRefusalsPassed], 1)
        XCTAssertEqual(engine.snapshot().backends[0].retries, 3)
    }

    func testWhenEveryServerClosesBeforeItsCONNACKTheClientSeesTheLastClose() throws {
        let closers = [TestServer.closingBroker(), TestServer.closingBroker()]
        defer { closers.forEach { $0.stop() } }
        let (engine, port) = try startProxy(servers: closers.map(\.port), option: true, retries: 2, cores: 1)
        defer { engine.stop(); engine.wait() }
        let fd = TestSocket.connect(port: port)
        XCTAssertTrue(TestSocket.writeAll(fd, MQTTWire.connect(clientID: "nobody-answers")))
        var rest: [UInt8] = []
        XCTAssertTrue(TestSocket.readToEnd(fd) { rest += $0 }, "closed in order, as the last server closed")
        XCTAssertEqual(rest, [])
        close(fd)
        XCTAssertTrue(eventually { closers.map(\.accepted).reduce(0, +) == 3 })
        XCTAssertEqual(engine.statistics().total[.redispatchServerClosed], 2)
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 }, "nothing left held")
    }

    func testTheAcceptingServerGetsAPROXYHeaderOfItsOwnOnce() throws {
        let record = Locked<[[UInt8]]>([])
        let refuser = TestServer.refusingBroker()
        let accepter = TestServer.refusingBroker(code311: 0, record: record)
        defer { refuser.stop(); accepter.stop() }
        let (engine, port) = try startEngine(servers: [refuser.port, accepter.port], cores: 1) {
            for s in $0.backends[0].servers.indices { $0.backends[0].servers[s].proxyProtocol = .v2 }
            $0.backends[0].connackRedispatch = true
        }
        defer { engine.stop(); engine.wait() }
        for i in 0..<4 {
            let fd = TestSocket.connect(port: port)
            let session = MQTTWire.connect(clientID: "pp2-\(i)")
            XCTAssertTrue(TestSocket.writeAll(fd, session))
            XCTAssertEqual(readConnack(fd), [0x20, 0x02, 0x00, 0x00])
            _ = TestSocket.writeAll(fd, MQTTWire.disconnect)
            shutdown(fd, Int32(SHUT_WR))
            _ = TestSocket.readToEnd(fd) { _ in }
            close(fd)
            XCTAssertTrue(eventually { record.withLock { $0.count } == i + 1 })
            let got = record.withLock { $0[i] }
            XCTAssertTrue(got.starts(with: TestServer.proxyV2Signature), "a header first")
            let header = 16 + (Int(got[14]) << 8 | Int(got[15]))
            XCTAssertEqual(Array(got[header...]), session + MQTTWire.disconnect, "then the CONNECT, once, and what followed it")
        }
        XCTAssertGreaterThan(refuser.accepted, 0)
        let stats = engine.statistics().total
        XCTAssertEqual(stats[.proxyHeadersSent], UInt64(4 + refuser.accepted), "one header per server connection")
    }

    func testTheLogNamesTheAcceptingServerAndMarksTheRedispatch() throws {
        let syslog = SyslogReceiver()
        let refuser = TestServer.refusingBroker()
        let accepter = TestServer.refusingBroker(code311: 0, record: Locked<[[UInt8]]>([]))
        defer { refuser.stop(); accepter.stop() }
        let (engine, port) = try startEngine(servers: [refuser.port, accepter.port], cores: 1) {
            $0.backends[0].connackRedispatch = true
            $0.log = syslog.logConfig
        }
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(MQTTWire.session(port: port, clientID: "logged"))
        let line = try XCTUnwrap(syslog.receive(count: 1).first)
        // HAProxy's %rc with '+': one retry, on another server than the first.
        XCTAssertNotNil(line.range(of: #" test servers/s1 0/\d+/\d+ 4 -- \d+/\d+/\d+/\d+/\+1 0/0 \{logged\}$"#, options: .regularExpression), line)
    }

    func testTLSClientsAreRedispatchedAndSeeOnlyTheAcceptingBrokersCONNACK() throws {
        guard let pub = Tools.which("mosquitto_pub") else { throw XCTSkipError("mosquitto-clients is not installed") }
        let broker = try Mosquitto()
        let refuser = TestServer.refusingBroker()
        defer { broker.stop(); refuser.stop() }
        let (engine, port) = try startEngine(servers: [refuser.port, broker.port], cores: 1) { config in
            config.frontends[0].tls = TLSBindConfig(certificatePaths: [TLSTestCertificates.path("server.pem")])
            config.backends[0].connackRedispatch = true
        }
        defer { engine.stop(); engine.wait() }
        for i in 0..<6 {
            let (status, output) = try ChildProcess(pub, ["-h", "localhost", "-p", "\(port)", "--cafile", TLSTestCertificates.path("ca.pem"),
                                                          "-i", "tls-redispatch-\(i)", "-t", "rp/tls", "-m", "hello", "-q", "1"]).finish(within: 10)
            XCTAssertEqual(status, 0, output)
        }
        XCTAssertTrue(eventually { (0..<6).allSatisfy { broker.connectedClientIDs().contains("tls-redispatch-\($0)") } })
        XCTAssertGreaterThan(refuser.accepted, 0)
        XCTAssertEqual(engine.statistics().total[.redispatchServerUnavailable], UInt64(refuser.accepted))
        XCTAssertEqual(engine.statistics().total[.tlsRecordErrors], 0)
    }

    func testAfterTheCONNACKTheWorkerAllocatesNothingPerPacket() throws {
        // A broker that accepts every CONNECT and then echoes.
        let broker = TestServer { fd in
            guard TestServer.readConnect(fd) != nil, TestSocket.writeAll(fd, [0x20, 0x02, 0x00, 0x00]) else { return }
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 || !TestSocket.writeAll(fd, Array(chunk[0..<n])) { break }
            }
        }
        defer { broker.stop() }
        let (engine, port) = try startProxy(servers: [broker.port], option: true, cores: 1)
        defer { engine.stop(); engine.wait() }
        guard engine.statistics().total.threadAllocatedBytes >= 0 else {
            return try jemallocMissing()
        }
        func session(_ i: Int, messages: Int, size: Int) {
            let fd = TestSocket.connect(port: port)
            defer { close(fd) }
            XCTAssertTrue(TestSocket.writeAll(fd, MQTTWire.connect(clientID: "alloc-\(i)")))
            XCTAssertEqual(readConnack(fd), [0x20, 0x02, 0x00, 0x00])
            echoMessages(fd, messages: messages, size: size)
        }
        for i in 0..<20 { session(i, messages: 5, size: 64) }   // first use of every path
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let before = engine.statistics().total
        for i in 0..<60 { session(i, messages: 40, size: i % 2 == 0 ? 64 : 20_000) }
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        let after = engine.statistics().total
        XCTAssertGreaterThanOrEqual(after[.recvCompletions] - before[.recvCompletions], 60 * 40 * 2)
        XCTAssertEqual(after.threadAllocatedBytes - before.threadAllocatedBytes, 0,
                       "the worker allocated while holding 60 CONNECTs until their CONNACK and relaying after it")
    }

    func testServersThatCloseResetOrAnswerInPiecesAreRedispatched() throws {
        let broker = try Mosquitto()
        defer { broker.stop() }
        let others = [TestServer.closingBroker(), TestServer.closingBroker(reset: true),
                      TestServer.refusingBroker(code5: 0x9D, reference: "elsewhere s2", pieces: 3)]
        defer { others.forEach { $0.stop() } }
        let (engine, port) = try startProxy(servers: [others[0].port, others[1].port, broker.port, others[2].port], option: true, cores: 1)
        defer { engine.stop(); engine.wait() }
        for i in 0..<8 {
            let fd = TestSocket.connect(port: port)
            XCTAssertTrue(TestSocket.writeAll(fd, MQTTWire.connect(clientID: "pieces-\(i)", level: 5)))
            let connack = readConnack(fd)
            XCTAssertEqual(connack.map { Array($0.prefix(4)) }, [0x20, connack?[1] ?? 0, 0x00, 0x00], "client \(i): accepted")
            _ = TestSocket.writeAll(fd, MQTTWire.disconnect)
            close(fd)
        }
        XCTAssertTrue(eventually { (0..<8).allSatisfy { broker.connectedClientIDs().contains("pieces-\($0)") } })
        let stats = engine.statistics().total
        XCTAssertGreaterThan(stats[.redispatchServerClosed], 0, "closed and reset before a CONNACK")
        XCTAssertGreaterThan(stats[.redispatchUseAnotherServer], 0, "a CONNACK in three segments")
        XCTAssertEqual(stats[.redispatchReferences], stats[.redispatchUseAnotherServer], "'s2' names the mosquitto")
    }
}

// Health checks on the rings against real servers on loopback: a dead server is found and
// skipped, a returning one comes back within rise x inter, the MQTT and tcp-check checks read
// what a broker answers, backups take over and give way, observe layer4 reacts to real traffic
// without waiting for a check, and the operator's drain / maint / weight take effect at once.
import CUring
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class HealthCheckTests: XCTestCase {
    private let loopback = SocketAddress(ipv4: 127, 0, 0, 1, port: 0)

    private func check(_ port: UInt16, interMs: Int = 50, rise: Int = 2, fall: Int = 2, steps: [CheckStep] = [],
                       kind: String = "layer 4", readTimeoutMs: Int? = nil) -> HealthCheckConfig {
        HealthCheckConfig(address: loopback.withPort(port), interMs: interMs, rise: rise, fall: fall,
                          readTimeoutMs: readTimeoutMs, steps: steps, kind: kind)
    }

    private func server(_ engine: Engine, _ name: String) -> ServerSnapshot? {
        engine.snapshot().servers.first { $0.name == name }
    }

    func testDeadServerIsMarkedDownAndNoLongerTried() throws {
        let alive = TestServer.echo()
        defer { alive.stop() }
        let deadPort = TestSocket.unusedPort()
        let (engine, port) = try startEngine(servers: [alive.port, deadPort]) { config in
            for (i, p) in [alive.port, deadPort].enumerated() { config.backends[0].servers[i].check = self.check(p) }
        }
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s1")?.status == "DOWN" }, "\(String(describing: server(engine, "s1")))")
        let dead = try XCTUnwrap(server(engine, "s1"))
        XCTAssertEqual(dead.checkStatus, .layer4ConnectionProblem)
        XCTAssertEqual(dead.checkDescription, "Connection refused")
        XCTAssertEqual(dead.downTransitions, 1)
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s0")?.checkStatus == .layer4OK })
        XCTAssertEqual(server(engine, "s0")?.status, "UP")
        let failuresBefore = engine.statistics().total[.connectFailures]
        for i in 0..<20 { XCTAssertTrue(echoRoundTrip(port: port, byte: UInt8(i)), "connection \(i)") }
        XCTAssertEqual(engine.statistics().total[.connectFailures], failuresBefore, "a DOWN server is not even tried")
        XCTAssertEqual(engine.snapshot().backends[0].status, "UP")
        XCTAssertEqual(engine.snapshot().backends[0].activeServers, 1)
    }

    func testReturningServerIsUpWithinRiseTimesInter() throws {
        let first = TestServer.echo()
        let serverPort = first.port
        let other = TestServer.echo()
        defer { other.stop() }
        let (engine, _) = try startEngine(servers: [serverPort, other.port]) { config in
            config.backends[0].servers[0].check = self.check(serverPort, interMs: 50, rise: 3, fall: 2)
        }
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s0")?.checkStatus == .layer4OK })
        first.stop()
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s0")?.status == "DOWN" })
        let back = TestServer.echo(port: serverPort)
        defer { back.stop() }
        let startedMs = cu_now_ms()
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s0")?.status == "UP" })
        // rise 3 x inter 50 ms (+ one interval of phase and a loop tick of slack).
        XCTAssertLessThan(cu_now_ms() - startedMs, 3 * 50 + 50 + 150, "noticed within rise x inter")
        let snap = try XCTUnwrap(server(engine, "s0"))
        XCTAssertEqual(snap.downTransitions, 1)
        XCTAssertGreaterThanOrEqual(snap.checksFailed, 2)
    }

    func testMQTTCheckPassesOnARealBrokerAndFailsOnARefusingOne() throws {
        let broker = try Mosquitto()
        defer { broker.stop() }
        // A broker that answers every CONNECT with CONNACK "not authorized" (3.1.1 code 5).
        let refusing = TestServer { fd in
            _ = TestSocket.readExactly(fd, 14)
            _ = TestSocket.writeAll(fd, [0x20, 0x02, 0x00, 0x05])
            _ = TestSocket.readToEnd(fd) { _ in }
        }
        defer { refusing.stop() }
        let (engine, _) = try startEngine(servers: [broker.port, refusing.port]) { config in
            for (i, p) in [broker.port, refusing.port].enumerated() {
                config.backends[0].servers[i].check = self.check(p, steps: HealthCheckConfig.mqttSteps, kind: "mqtt")
            }
        }
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(eventually(seconds: 5) { self.server(engine, "s1")?.status == "DOWN" })
        let refused = try XCTUnwrap(server(engine, "s1"))
        XCTAssertEqual(refused.checkStatus, .layer7Response)
        XCTAssertEqual(refused.checkCode, 5)
        XCTAssertEqual(refused.checkDescription, "MQTT CONNACK refused: not authorized (5)")
        XCTAssertTrue(eventually(seconds: 5) { self.server(engine, "s0")?.checkStatus == .layer7OK })
        XCTAssertEqual(server(engine, "s0")?.status, "UP")
        XCTAssertEqual(server(engine, "s0")?.checkCode, 0)
        // The broker saw the checks end cleanly: DISCONNECT, not a dropped connection.
        XCTAssertTrue(eventually(seconds: 3) {
            ((try? String(contentsOfFile: broker.logPath, encoding: .utf8)) ?? "").contains("disconnected.")
        }, "mosquitto logs a client that sent DISCONNECT as 'disconnected.'")
    }

    func testTCPCheckSendsAndExpectsBytes() throws {
        func pingServer(answer: [UInt8]) -> TestServer {
            TestServer { fd in
                guard TestSocket.readExactly(fd, 4) == Array("PING".utf8) else { return }
                _ = TestSocket.writeAll(fd, answer)
            }
        }
        let good = pingServer(answer: Array("+PONG\r\n".utf8))
        let bad = pingServer(answer: Array("-ERR\r\n".utf8))
        let silent = TestServer { fd in _ = TestSocket.readToEnd(fd) { _ in } }
        defer { good.stop(); bad.stop(); silent.stop() }
        let steps: [CheckStep] = [.send(Array("PING".utf8)), .expect(Array("PONG".utf8))]
        let (engine, _) = try startEngine(servers: [good.port, bad.port, silent.port]) { config in
            for (i, p) in [good.port, bad.port, silent.port].enumerated() {
                config.backends[0].servers[i].check = self.check(p, interMs: 100, steps: steps, kind: "tcp-check", readTimeoutMs: 100)
            }
        }
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(eventually(seconds: 5) { self.server(engine, "s1")?.status == "DOWN" && self.server(engine, "s2")?.status == "DOWN" })
        XCTAssertEqual(server(engine, "s1")?.checkStatus, .layer7Response)
        XCTAssertEqual(server(engine, "s2")?.checkStatus, .layer7Timeout)
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s0")?.checkStatus == .layer7OK })
        XCTAssertEqual(server(engine, "s0")?.status, "UP")
    }

    func testBackupTakesOverAndGivesWayWhenTheActiveServerReturns() throws {
        let active = TestServer.echo()
        let activePort = active.port
        let backup = TestServer.echo()
        defer { backup.stop() }
        let (engine, port) = try startEngine(servers: [activePort, backup.port]) { config in
            config.backends[0].servers[0].check = self.check(activePort)
            config.backends[0].servers[0].shutdownBackupSessionsOnUp = true
            config.backends[0].servers[1].backup = true
        }
        defer { engine.stop(); engine.wait() }
        for i in 0..<5 { XCTAssertTrue(echoRoundTrip(port: port, byte: UInt8(i))) }
        XCTAssertEqual(backup.accepted, 0, "the backup takes nothing while the active server is up")
        active.stop()
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s0")?.status == "DOWN" })
        let held = TestSocket.connect(port: port)
        defer { close(held) }
        assertEchoes(held, 9, "served by the backup")
        XCTAssertEqual(backup.accepted, 1)
        let back = TestServer.echo(port: activePort)
        defer { back.stop() }
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s0")?.status == "UP" })
        XCTAssertTrue(TestSocket.isClosedByPeer(held, withinSeconds: 3), "on-marked-up shutdown-backup-sessions closes the backup's session")
        XCTAssertTrue(echoRoundTrip(port: port))
        XCTAssertEqual(backup.accepted, 1, "new connections go to the active server again")
        XCTAssertGreaterThanOrEqual(engine.statistics().total[.serverShutdownSessions], 1)
    }

    func testObserveLayer4MarksDownOnRealTrafficWithoutWaitingForACheck() throws {
        let flaky = TestServer.echo()
        let flakyPort = flaky.port
        let steady = TestServer.echo()
        defer { steady.stop() }
        let (engine, port) = try startEngine(servers: [flakyPort, steady.port], cores: 1) { config in
            // One check at start, the next only 60 s later: only real traffic can notice.
            config.backends[0].servers[0].check = self.check(flakyPort, interMs: 60_000)
            config.backends[0].servers[0].observe = ObserveConfig(errorLimit: 1, onError: .markDown)
        }
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s0")?.checkStatus == .layer4OK })
        flaky.stop()
        // Round robin: within two connections one goes to the stopped server, fails over.
        XCTAssertTrue(echoRoundTrip(port: port, byte: 1))
        XCTAssertTrue(echoRoundTrip(port: port, byte: 2))
        let snap = try XCTUnwrap(server(engine, "s0"))
        XCTAssertEqual(snap.status, "DOWN")
        XCTAssertEqual(snap.checkStatus, .layer4OK, "no check ran: the observer marked it")
        XCTAssertEqual(engine.statistics().total[.observedErrorLimits], 1)
        XCTAssertGreaterThanOrEqual(snap.connectErrors, 1)
        XCTAssertGreaterThanOrEqual(snap.redispatches, 1)
    }

    func testOnMarkedDownShutdownSessionsClosesTheDeadServersSessions() throws {
        let doomed = TestServer.echo()
        let other = TestServer.echo()
        defer { other.stop() }
        let (engine, port) = try startEngine(servers: [doomed.port, other.port]) { config in
            config.backends[0].servers[0].check = self.check(doomed.port, fall: 1)
            config.backends[0].servers[0].shutdownSessionsOnDown = true
            config.backends[0].servers[1].weight = 0   // every session on s0
        }
        defer { engine.stop(); engine.wait() }
        let fd = TestSocket.connect(port: port)
        defer { close(fd) }
        assertEchoes(fd, 4)
        doomed.stop()   // the listener goes; the established session's thread stays
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s0")?.status == "DOWN" })
        XCTAssertTrue(TestSocket.isClosedByPeer(fd, withinSeconds: 3), "the session of a DOWN server is closed")
    }

    func testDrainMaintAndWeightTakeEffectAtOnceAndKeepSessions() throws {
        let a = TestServer.echo()
        let b = TestServer.echo()
        defer { a.stop(); b.stop() }
        let (engine, port) = try startEngine(servers: [a.port, b.port], cores: 1)
        defer { engine.stop(); engine.wait() }
        try engine.setServerWeight(backend: "servers", server: "s1", weight: 0)
        let held = TestSocket.connect(port: port)
        defer { close(held) }
        assertEchoes(held, 1)
        XCTAssertEqual(a.accepted, 1)
        try engine.setServerState(backend: "servers", server: "s0", state: .drain)
        XCTAssertEqual(server(engine, "s0")?.status, "DRAIN")
        XCTAssertFalse(echoRoundTrip(port: port), "s0 drains and s1 has weight 0: no server")
        assertEchoes(held, 2, "a draining server keeps its sessions")
        try engine.setServerWeight(backend: "servers", server: "s1", weight: 1)
        XCTAssertTrue(eventually(seconds: 2) { echoRoundTrip(port: port) })
        XCTAssertEqual(a.accepted, 1, "nothing new to the draining server")
        try engine.setServerState(backend: "servers", server: "s0", state: .maint)
        XCTAssertEqual(server(engine, "s0")?.status, "MAINT")
        XCTAssertEqual(server(engine, "s0")?.adminState, .maint)
        try engine.setServerState(backend: "servers", server: "s0", state: .ready)
        XCTAssertEqual(server(engine, "s0")?.status, "no check")
        for _ in 0..<4 { XCTAssertTrue(echoRoundTrip(port: port)) }
        XCTAssertGreaterThan(a.accepted, 1, "ready again")
        XCTAssertThrowsError(try engine.setServerState(backend: "servers", server: "nope", state: .maint))
        XCTAssertThrowsError(try engine.setServerWeight(backend: "servers", server: "s0", weight: 300))
    }

    func testSnapshotCountsSessionsBytesAndErrorsPerProxy() throws {
        let a = TestServer.echo()
        defer { a.stop() }
        let dead = TestSocket.unusedPort()
        let (engine, port) = try startEngine(servers: [a.port, dead], cores: 1)
        defer { engine.stop(); engine.wait() }
        for i in 0..<6 { XCTAssertTrue(echoRoundTrip(port: port, byte: UInt8(i))) }
        XCTAssertTrue(eventually(seconds: 2) { engine.snapshot().frontends[0].bytesIn == 6 })
        let snap = engine.snapshot()
        XCTAssertEqual(snap.frontends[0].sessionsTotal, 6)
        XCTAssertEqual(snap.frontends[0].bytesOut, 6)
        XCTAssertEqual(snap.servers[0].sessionsTotal, 6, "every session ends on s0")
        XCTAssertEqual(snap.servers[0].bytesIn, 6)
        XCTAssertEqual(snap.servers[1].connectErrors, 3, "round robin sent half the first attempts to the dead port")
        XCTAssertEqual(snap.servers[1].redispatches, 3)
        XCTAssertEqual(snap.backends[0].sessionsTotal, 6)
        XCTAssertEqual(snap.servers[0].selected + snap.servers[1].selected, 9)
        XCTAssertEqual(snap.servers[1].status, "no check")
    }

    /// The issue's failover scenario, bounded: three real brokers checked every 100 ms with
    /// fall 2, clients connecting and reconnecting while one broker is killed; no client
    /// session fails (redispatch), and the dead broker is out of rotation within 300 ms.
    func testKillingABrokerLosesNoClientSession() throws {
        let brokers = try (0..<3).map { _ in try Mosquitto() }
        defer { brokers.forEach { $0.stop() } }
        let (engine, port) = try startEngine(servers: brokers.map(\.port)) { config in
            for (i, broker) in brokers.enumerated() {
                config.backends[0].servers[i].check = self.check(broker.port, interMs: 100, rise: 2, fall: 2,
                                                                 steps: HealthCheckConfig.mqttSteps, kind: "mqtt")
            }
        }
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(eventually(seconds: 5) { engine.snapshot().servers.allSatisfy { $0.checkStatus == .layer7OK } })
        // Sessions that started after the kill (a session the broker held when it died is lost
        // with it: only a CONNACK-aware proxy could replay it).
        let failuresAfterKill = Locked(0)
        let sessions = Locked(0)
        let stopAtMs = cu_now_ms() + 1_500
        let killed = Locked(0)
        concurrently(4) { worker in
            var n = 0
            while cu_now_ms() < stopAtMs {
                if worker == 0 && n == 20 && killed.withLock({ $0 }) == 0 {
                    brokers[1].child.signal(SIGKILL)
                    _ = brokers[1].child.finish(within: 5)
                    killed.withLock { $0 = cu_now_ms() }
                }
                let killedAtMs = killed.withLock { $0 }
                if MQTTWire.session(port: port, clientID: "c\(worker)-\(n)") {
                    sessions.withLock { $0 += 1 }
                } else if killedAtMs > 0 {
                    failuresAfterKill.withLock { $0 += 1 }
                }
                n += 1
            }
        }
        XCTAssertGreaterThan(killed.withLock { $0 }, 0)
        XCTAssertEqual(failuresAfterKill.withLock { $0 }, 0, "redispatch keeps every client session started after the broker died")
        XCTAssertGreaterThan(sessions.withLock { $0 }, 50)
        let dead = try XCTUnwrap(server(engine, "s1"))
        XCTAssertEqual(dead.status, "DOWN")
        XCTAssertLessThan(dead.lastChangeSeconds, 5)
    }

    func testStateChangesReachTheSyslogTargetInHAProxysWords() throws {
        let syslog = SyslogReceiver()
        let alive = TestServer.echo()
        defer { alive.stop() }
        let dead = TestSocket.unusedPort()
        let (engine, _) = try startEngine(servers: [alive.port, dead], cores: 1) { config in
            config.log = syslog.logConfig
            config.backends[0].servers[1].check = self.check(dead)
        }
        defer { engine.stop(); engine.wait() }
        let lines = syslog.receive { $0.contains { $0.contains("is DOWN") } }
        let line = try XCTUnwrap(lines.first { $0.contains("is DOWN") })
        XCTAssertTrue(line.hasPrefix("<158>"), "local3.info: \(line)")
        XCTAssertTrue(line.contains("Server servers/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: "), line)
        XCTAssertTrue(line.contains("1 active and 0 backup servers left."), line)
    }

    func testAReloadKeepsADownServerDownAndChecksGoOn() throws {
        let a = TestServer.echo()
        defer { a.stop() }
        let bPort = TestSocket.unusedPort()
        var config: EngineConfig!
        let (engine, port) = try startEngine(servers: [a.port, bPort]) { c in
            for (i, p) in [a.port, bPort].enumerated() { c.backends[0].servers[i].check = self.check(p, interMs: 50) }
            config = c
        }
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s1")?.status == "DOWN" })
        let failedBefore = try XCTUnwrap(server(engine, "s1")).checksFailed
        config.frontends[0].binds = [SocketAddress(ipv4: 127, 0, 0, 1, port: port)]
        try engine.reload(config)
        XCTAssertEqual(server(engine, "s1")?.status, "DOWN", "the new configuration starts from the known state")
        XCTAssertEqual(server(engine, "s1")?.downTransitions, 1)
        let failuresBefore = engine.statistics().total[.connectFailures]
        for i in 0..<10 { XCTAssertTrue(echoRoundTrip(port: port, byte: UInt8(i))) }
        XCTAssertEqual(engine.statistics().total[.connectFailures], failuresBefore, "no attempt to the DOWN server after the reload")
        XCTAssertTrue(eventually(seconds: 2) { (self.server(engine, "s1")?.checksFailed ?? 0) > failedBefore + 2 }, "the new generation checks")
        let back = TestServer.echo(port: bPort)
        defer { back.stop() }
        XCTAssertTrue(eventually(seconds: 3) { self.server(engine, "s1")?.status == "UP" })
        // Checks run once per server for the whole process: two generations, two cores, yet
        // about one check per interval.
        let startedBefore = engine.statistics().total[.checksStarted]
        usleep(1_000_000)
        let perSecond = engine.statistics().total[.checksStarted] - startedBefore
        XCTAssertLessThanOrEqual(perSecond, 2 * 20 + 4, "two servers every 50 ms: about 40 checks a second, not one per core")
        XCTAssertGreaterThanOrEqual(perSecond, 2 * 10, "and they do run")
    }

    func testChecksSendAPROXYHeaderThatRelaysNoClient() throws {
        let headers = Locked<[[UInt8]]>([])
        let server = TestServer { fd in
            if let header = TestSocket.readExactly(fd, 16) { headers.withLock { $0.append(header) } }
        }
        defer { server.stop() }
        let (engine, _) = try startEngine(servers: [server.port], cores: 1) { config in
            var check = self.check(server.port)
            check.sendProxy = .v2
            check.steps = []
            config.backends[0].servers[0].check = check
        }
        defer { engine.stop(); engine.wait() }
        XCTAssertTrue(eventually(seconds: 3) { headers.withLock { $0.count } >= 1 })
        let header = try XCTUnwrap(headers.withLock { $0.first })
        XCTAssertEqual(Array(header[0..<12]), [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A])
        XCTAssertEqual(header[12], 0x20, "version 2, LOCAL: the check relays no client (proxy-protocol.txt 2.2)")
        XCTAssertEqual(Array(header[13..<16]), [0x00, 0x00, 0x00], "UNSPEC, no addresses")
        XCTAssertEqual(server.accepted, headers.withLock { $0.count })
    }
}

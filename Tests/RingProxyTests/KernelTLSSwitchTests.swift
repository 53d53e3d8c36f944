// The relay's switch to kernel TLS, as far as this kernel allows: it has no CONFIG_TLS, so
// with RINGPROXY_KTLS=force (here config.kernelTLS = .force) each established TLS client is
// quiesced, its keys taken, TCP_ULP/TLS_TX/TLS_RX submitted linked on the ring, the kernel's
// ENOENT received and the connection resumed in userspace. Real clients check that every byte
// before and after the attempt arrives intact both ways. On a kernel with kTLS the same tests
// see the switch succeed (`ktls_switched`) and the bytes pass through the kernel's records.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class KernelTLSSwitchTests: XCTestCase {
    private func certificate(_ name: String) -> String { TLSTestCertificates.path(name) }
    private var kernelHasTLS: Bool { TLSKernelOffload.probe.supported }

    private func startTLS(servers: [UInt16], kernelTLS: KernelTLSMode?,
                          _ configure: (inout EngineConfig) -> Void = { _ in }) throws -> (Engine, UInt16) {
        try startEngine(servers: servers) { config in
            config.frontends[0].tls = TLSBindConfig(certificatePaths: [self.certificate("server.pem")])
            config.kernelTLS = kernelTLS
            configure(&config)
        }
    }

    private func requirePython() throws {
        guard (try? ChildProcess("/usr/bin/env", ["python3", "-c", "import ssl"]).finish(within: 10).0) == 0 else {
            throw XCTSkipError("python3 with ssl is needed")
        }
    }

    /// A Python client (argv: port, CA file; `exchange` from TLSClientScripts defined) through
    /// an echo server behind the TLS frontend: its exit status and output, and the engine's
    /// totals once every connection ended.
    private func runEchoClient(_ body: String, kernelTLS: KernelTLSMode?) throws -> (status: Int32, output: String, stats: WorkerStatistics) {
        try requirePython()
        let echo = TestServer.echo()
        defer { echo.stop() }
        let (engine, port) = try startTLS(servers: [echo.port], kernelTLS: kernelTLS)
        defer { engine.stop(); engine.wait() }
        let script = TLSClientScripts.echoExchange + "import os, socket, ssl, sys\n" + body
        let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-c", script, "\(port)", certificate("ca.pem")]).finish(within: 90)
        XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
        return (status, output, engine.statistics().total)
    }

    /// Every attempt ended: switched where the kernel has kTLS, refused at TCP_ULP here; none
    /// lost its keys, gave up or failed, and nothing is left held.
    private func assertAttemptsEnded(_ stats: WorkerStatistics, attempts: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(stats[.ktlsAttempts], attempts, file: file, line: line)
        XCTAssertEqual(stats[kernelHasTLS ? .ktlsSwitched : .ktlsRefused], attempts, file: file, line: line)
        XCTAssertEqual(stats[.ktlsKeysUnavailable] + stats[.ktlsAbandoned] + stats[.ktlsFailed], 0, file: file, line: line)
        XCTAssertEqual(stats[.tlsRecordErrors], 0, file: file, line: line)
        XCTAssertEqual(stats[.buffersInUse], 0, file: file, line: line)
        XCTAssertEqual(stats[.ownedBuffersInUse], 0, file: file, line: line)
    }

    /// Python's ssl client through an echo server, TLS 1.3 then TLS 1.2: a first round trip
    /// (the switch is attempted once the server answers), bulk both ways, then small messages.
    func testAForcedSwitchReachesTheKernelAndEveryByteBeforeAndAfterArrivesIntact() throws {
        let (status, output, stats) = try runEchoClient("""
            ok = True
            for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                ctx = ssl.create_default_context(cafile=sys.argv[2])
                ctx.maximum_version = version
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
                first = exchange(s, b"hello")
                bulk = exchange(s, os.urandom(3 * 1024 * 1024 + 777))
                small = all(exchange(s, os.urandom(n)) for n in (1, 7, 100, 1000, 16384, 16385, 3) * 10)
                print(s.version(), "first", first, "bulk", bulk, "small", small)
                ok = ok and first and bulk and small
                s.close()
            sys.exit(0 if ok else 1)
            """, kernelTLS: .force)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("TLSv1.3 first True bulk True small True"), output)
        XCTAssertTrue(output.contains("TLSv1.2 first True bulk True small True"), output)
        assertAttemptsEnded(stats, attempts: 2)
    }

    /// Clients that send at once, without waiting for an answer: the quiesce meets records in
    /// flight (a cancel races data, OpenSSL may hold half a record). Whatever the outcome of each
    /// attempt, every byte arrives and nothing is left held.
    func testClientsSendingDuringTheQuiesceLoseNothing() throws {
        let (status, output, stats) = try runEchoClient("""
            ctx = ssl.create_default_context(cafile=sys.argv[2])
            results = []
            for i in range(8):
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
                results.append(exchange(s, os.urandom(1024 * 1024 + i)))
                s.close()
            print("intact", results.count(True), "of", len(results))
            sys.exit(0 if all(results) else 1)
            """, kernelTLS: .force)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("intact 8 of 8"), output)
        XCTAssertEqual(stats[.ktlsAttempts], 8)
        let ended = stats[.ktlsSwitched] + stats[.ktlsRefused] + stats[.ktlsKeysUnavailable] + stats[.ktlsAbandoned]
        XCTAssertEqual(ended, 8, "every attempt ended one way or another")
        XCTAssertEqual(stats[.ktlsFailed] + stats[.tlsRecordErrors], 0)
        XCTAssertEqual(stats[.buffersInUse], 0)
        XCTAssertEqual(stats[.ownedBuffersInUse], 0)
    }

    /// paho-mqtt over TLS through ringproxy to mosquitto (in clear, then over TLS as well, where
    /// the switch waits for the broker's handshake): a subscriber and a publisher, messages
    /// around the buffer and record sizes, received in order and intact.
    func testMQTTClientsPublishAndReceiveIntactAcrossAForcedSwitch() throws {
        try requirePython()
        for brokerTLS in [false, true] {
            let broker = try brokerTLS ? Mosquitto(tlsCertificate: "server.pem") : Mosquitto()
            defer { broker.stop() }
            let (engine, port) = try startTLS(servers: [broker.port], kernelTLS: .force) { config in
                guard brokerTLS else { return }
                var tls = ServerTLSConfig()
                tls.caFile = self.certificate("ca.pem")
                tls.sni = .fixed("localhost")
                config.backends[0].servers[0].tls = tls
            }
            defer { engine.stop(); engine.wait() }
            let script = TLSClientScripts.pahoPublishAndReceive(topic: "ktls", clientPrefix: "ktls")
            let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-W", "ignore", "-c", script, "\(port)", certificate("ca.pem")]).finish(within: 40)
            XCTAssertEqual(status, 0, "broker TLS \(brokerTLS): \(output)")
            XCTAssertTrue(output.contains("received 18 of 18 intact"), "broker TLS \(brokerTLS): \(output)")
            XCTAssertTrue(eventually { engine.statistics().total[.active] == 0 })
            assertAttemptsEnded(engine.statistics().total, attempts: 2)
            if brokerTLS { XCTAssertEqual(engine.statistics().total[.serverTLSRecordErrors], 0) }
        }
    }

    /// Without the override this kernel never attempts it (the probe finds no kTLS), and `off`
    /// never attempts it anywhere: the relay stays exactly as it was.
    func testWithoutTheOverrideNoConnectionAttemptsTheSwitchHere() throws {
        for mode in [KernelTLSMode.off, .auto] {
            let (status, output, stats) = try runEchoClient("""
                ctx = ssl.create_default_context(cafile=sys.argv[2])
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
                print("intact" if exchange(s, b"ping") else "CORRUPT"); s.close()
                """, kernelTLS: mode)
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.contains("intact"), output)
            XCTAssertEqual(stats[.ktlsAttempts], mode == .auto && kernelHasTLS ? 1 : 0, "\(mode)")
        }
    }

    func testTheStartUpLineSaysWhereRecordsAreSealed() {
        let missing = (supported: false, reason: "setsockopt(TCP_ULP, \"tls\"): No such file or directory (kernel without CONFIG_TLS)")
        XCTAssertTrue(Engine.kernelTLSSummary(.auto, probe: missing).contains("kernel TLS unavailable (setsockopt(TCP_ULP"))
        XCTAssertTrue(Engine.kernelTLSSummary(.force, probe: missing).contains("RINGPROXY_KTLS=force, diagnostic only"))
        XCTAssertTrue(Engine.kernelTLSSummary(.off, probe: (true, "TCP_ULP tls available")).contains("kernel TLS off"))
        XCTAssertTrue(Engine.kernelTLSSummary(.auto, probe: (true, "TCP_ULP tls available")).contains("hands its keys to kernel TLS"))
    }
}

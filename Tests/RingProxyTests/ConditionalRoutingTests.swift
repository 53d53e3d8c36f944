// Conditional use_backend with real parts: two mosquitto brokers as two backends, paho-mqtt
// clients (MQTT 3.1.1 and 5), the ringproxy binary on a configuration file, and HAProxy 2.6 on
// the same file (only the listening ports differ) beside it: each client must land on the
// broker HAProxy sends it to. Which broker a client reached is read from the broker's log.
import Foundation
import Glibc
import XCTest
@testable import RingProxy

final class ConditionalRoutingTests: XCTestCase {
    /// Ports of one proxy's frontends: by username, by protocol version, by a pattern file,
    /// regex, src and `!`/`or`; and by dst_port without MQTT inspection (two listeners).
    struct Ports {
        var tenant = TestSocket.unusedPort()
        var version = TestSocket.unusedPort()
        var mixed = TestSocket.unusedPort()
        var portA = TestSocket.unusedPort()
        var portB = TestSocket.unusedPort()
    }

    /// One file for both proxies. `listed.txt` is relative: both read it from their working
    /// directory.
    static func configuration(_ ports: Ports, a: UInt16, b: UInt16, log: String = "") -> String {
        """
        \(tcpDefaults)
        frontend fe_tenant
          bind 127.0.0.1:\(ports.tenant)
          \(log)
          tcp-request inspect-delay 5s
          tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
          use_backend be_a if { req.payload(0,0),mqtt_field_value(connect,username) -m beg tenant-a/ }
          default_backend be_b
        frontend fe_version
          bind 127.0.0.1:\(ports.version)
          tcp-request inspect-delay 5s
          tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
          acl mqtt5 req.payload(0,0),mqtt_field_value(connect,protocol_version) -m str 5
          use_backend be_a if mqtt5
          default_backend be_b
        frontend fe_mixed
          bind 127.0.0.1:\(ports.mixed)
          tcp-request inspect-delay 5s
          tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
          acl listed req.payload(0,0),mqtt_field_value(connect,username) -m str -i -f listed.txt
          acl canary req.payload(0,0),mqtt_field_value(connect,client_identifier) -m reg canary-[0-9]+$
          acl second_loopback src 127.0.0.2
          acl second_loopback src 127.0.0.3
          use_backend be_a if listed !canary or second_loopback
          default_backend be_b
        frontend fe_port
          bind 127.0.0.1:\(ports.portA)
          bind 127.0.0.1:\(ports.portB)
          use_backend be_a if { dst_port \(ports.portA) }
          default_backend be_b
        backend be_a
          server a1 127.0.0.1:\(a)
        backend be_b
          server b1 127.0.0.1:\(b)
        """
    }

    /// (frontend port, client id, username, MQTT 5?, source address) per client.
    static func clients(_ ports: Ports, prefix: String) -> [(UInt16, String, String, Bool, String)] {
        [
            (ports.tenant, "\(prefix)-t1", "tenant-a/sensor", false, ""),
            (ports.tenant, "\(prefix)-t2", "tenant-b/sensor", false, ""),
            (ports.tenant, "\(prefix)-t3", "tenant-a", false, ""),
            (ports.tenant, "\(prefix)-t4", "tenant-a/v5", true, ""),
            (ports.version, "\(prefix)-v1", "u", true, ""),
            (ports.version, "\(prefix)-v2", "u", false, ""),
            (ports.mixed, "\(prefix)-m1", "Alice", false, ""),
            (ports.mixed, "\(prefix)-m2", "alice", false, ""),
            (ports.mixed, "\(prefix)-canary-7", "alice", false, ""),
            (ports.mixed, "\(prefix)-m3", "mallory", false, ""),
            (ports.mixed, "\(prefix)-m4", "mallory", false, "127.0.0.3"),
            (ports.mixed, "\(prefix)-canary-8", "bob", false, "127.0.0.2"),
            (ports.portA, "\(prefix)-p1", "u", false, ""),
            (ports.portB, "\(prefix)-p2", "u", false, ""),
        ]
    }

    /// The client ids (without prefix) that should land on broker A.
    static let expectedOnA: Set<String> = ["t1", "t4", "v1", "m1", "m2", "m4", "canary-8", "p1"]

    /// Connects each client with paho-mqtt, waits for its CONNACK, disconnects.
    static func connectClients(_ clients: [(UInt16, String, String, Bool, String)]) throws -> String {
        let cases = clients.map { "[\($0.0), \"\($0.1)\", \"\($0.2)\", \($0.3 ? "True" : "False"), \"\($0.4)\"]" }
        let script = """
            import threading, paho.mqtt.client as mqtt
            for port, cid, user, v5, src in [\(cases.joined(separator: ", "))]:
                done = threading.Event()
                c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
                c.username_pw_set(user, "secret")
                c.on_connect = lambda client, userdata, flags, code, props: done.set()
                c.connect("127.0.0.1", port, 30, bind_address=src)
                c.loop_start()
                ok = done.wait(10)
                c.disconnect()
                c.loop_stop()
                print(cid, "connected" if ok else "no CONNACK", flush=True)
            """
        let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-c", script]).finish(within: 120)
        XCTAssertEqual(status, 0, output)
        return output
    }

    /// The ringproxy binary and two brokers, once paho-mqtt is known to be there.
    private func twoBrokers() throws -> (String, Mosquitto, Mosquitto) {
        try requirePaho()
        let binary = Tools.ringproxy
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkipError("run `swift build` first") }
        let brokerA = try Mosquitto()
        do {
            return (binary, brokerA, try Mosquitto())
        } catch {
            brokerA.stop()
            throw error
        }
    }

    private func requirePaho() throws {
        guard (try? ChildProcess("/usr/bin/env", ["python3", "-c", "import paho.mqtt.client"]).finish(within: 10).0) == 0 else {
            throw XCTSkipError("python3 with paho-mqtt is needed")
        }
    }

    /// Ids (prefix removed) each broker saw connect.
    private func landed(_ broker: Mosquitto, prefix: String) -> Set<String> {
        Set(broker.connectedClientIDs().filter { $0.hasPrefix(prefix + "-") }.map { String($0.dropFirst(prefix.count + 1)) })
    }

    func testRingproxyRoutesByUsernameVersionPatternFileRegexSourceAndPortAsHAProxyDoes() throws {
        let (binary, brokerA, brokerB) = try twoBrokers()
        defer { brokerA.stop(); brokerB.stop() }
        let dir = try TemporaryDirectory()
        try "# tenants with their own broker\n  alice\nCAROL\n\n".write(toFile: dir.file("listed.txt"), atomically: true, encoding: .utf8)
        let syslog = SyslogReceiver()

        let ringPorts = Ports()
        let ringConfig = dir.file("ringproxy.cfg")
        try Self.configuration(ringPorts, a: brokerA.port, b: brokerB.port, log: "log 127.0.0.1:\(syslog.port) local0 info")
            .write(toFile: ringConfig, atomically: true, encoding: .utf8)
        let check = try ChildProcess(binary, ["-c", "-f", ringConfig], currentDirectory: dir.url.path).finish(within: 10)
        XCTAssertEqual(check.0, 0, check.1)
        let ringproxy = try ChildProcess(binary, ["-f", ringConfig, "--cores", "1"], currentDirectory: dir.url.path)
        defer { _ = ringproxy.finish(within: 0) }
        XCTAssertTrue(eventually { Mosquitto.listening(ringPorts.portB) }, "ringproxy did not start")

        let output = try Self.connectClients(Self.clients(ringPorts, prefix: "rp"))
        XCTAssertFalse(output.contains("no CONNACK"), output)
        XCTAssertTrue(eventually { landed(brokerA, prefix: "rp").count + landed(brokerB, prefix: "rp").count == 14 })
        XCTAssertEqual(landed(brokerA, prefix: "rp"), Self.expectedOnA)
        XCTAssertEqual(landed(brokerB, prefix: "rp"), Set(Self.clients(ringPorts, prefix: "").map { String($0.1.dropFirst()) })
            .subtracting(Self.expectedOnA))
        // The connection log names the backend each rule chose.
        let lines = syslog.receive(until: { $0.count >= 4 })
        XCTAssertTrue(lines.contains { $0.contains("fe_tenant be_a/a1") }, lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains { $0.contains("fe_tenant be_b/b1") }, lines.joined(separator: "\n"))

        // HAProxy 2.6 on the same file.
        guard let haproxy = Tools.which("haproxy") else { throw XCTSkipError("haproxy is not installed (scripts/install-bench-deps.sh)") }
        let haPorts = Ports()
        let haConfig = dir.file("haproxy.cfg")
        try (Self.configuration(haPorts, a: brokerA.port, b: brokerB.port) + "\n").write(toFile: haConfig, atomically: true, encoding: .utf8)
        let peer = try ChildProcess(haproxy, ["-db", "-f", haConfig], currentDirectory: dir.url.path)
        defer { _ = peer.finish(within: 0) }
        XCTAssertTrue(eventually { Mosquitto.listening(haPorts.portB) || !peer.process.isRunning }, "haproxy did not start")
        let haOutput = try Self.connectClients(Self.clients(haPorts, prefix: "ha"))
        XCTAssertFalse(haOutput.contains("no CONNACK"), haOutput)
        XCTAssertTrue(eventually { landed(brokerA, prefix: "ha").count + landed(brokerB, prefix: "ha").count == 14 })
        XCTAssertEqual(landed(brokerA, prefix: "ha"), landed(brokerA, prefix: "rp"), "HAProxy sent other clients to broker A")
        XCTAssertEqual(landed(brokerB, prefix: "ha"), landed(brokerB, prefix: "rp"), "HAProxy sent other clients to broker B")
    }

    func testReloadSwapsTheRules() throws {
        let (binary, brokerA, brokerB) = try twoBrokers()
        defer { brokerA.stop(); brokerB.stop() }
        let dir = try TemporaryDirectory()
        let port = TestSocket.unusedPort()
        let path = dir.file("ringproxy.cfg")
        func write(_ pattern: String) throws {
            try """
                \(tcpDefaults)
                frontend f
                  bind 127.0.0.1:\(port)
                  tcp-request inspect-delay 5s
                  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
                  use_backend be_a if { req.payload(0,0),mqtt_field_value(connect,username) -m beg \(pattern) }
                  default_backend be_b
                backend be_a
                  server a1 127.0.0.1:\(brokerA.port)
                backend be_b
                  server b1 127.0.0.1:\(brokerB.port)
                """.write(toFile: path, atomically: true, encoding: .utf8)
        }
        try write("tenant-a/")
        let ringproxy = try ChildProcess(binary, ["-f", path, "--cores", "1"])
        defer { _ = ringproxy.finish(within: 0) }
        XCTAssertTrue(eventually { Mosquitto.listening(port) }, "ringproxy did not start")
        _ = try Self.connectClients([(port, "before-a", "tenant-a/x", false, ""), (port, "before-b", "tenant-b/x", false, "")])
        XCTAssertTrue(eventually { brokerA.connectedClientIDs().contains("before-a") })
        XCTAssertTrue(brokerB.connectedClientIDs().contains("before-b"))

        try write("tenant-b/")
        ringproxy.signal(SIGHUP)
        // The new generation answers once the old listeners are gone; route until it does.
        XCTAssertTrue(eventually(seconds: 15) {
            _ = try? Self.connectClients([(port, "after-b", "tenant-b/x", false, "")])
            return brokerA.connectedClientIDs().contains("after-b")
        }, "after the reload tenant-b goes to backend A")
        _ = try Self.connectClients([(port, "after-a", "tenant-a/x", false, "")])
        XCTAssertTrue(eventually { brokerB.connectedClientIDs().contains("after-a") })
    }
}

// paho-mqtt clients for tests (python3 as the PATH finds it, the one install-deps.sh gave
// paho-mqtt to): many sessions one after the other, each reporting its CONNACK's reason code.
import Foundation
import XCTest

enum Paho {
    /// Skips the test when paho-mqtt is not installed.
    static func requireInstalled() throws {
        guard (try? ChildProcess("/usr/bin/env", ["python3", "-c", "import paho.mqtt.client"]).finish(within: 10).0) == 0 else {
            throw XCTSkipError("paho-mqtt is not installed (pip install paho-mqtt)")
        }
    }

    /// `count` clients (ids `prefix-0` ...) connect one after the other with MQTT `version`
    /// ("3.1.1" or "5"), over TCP or WebSockets (path /mqtt), and disconnect once accepted: how
    /// many got each CONNACK reason code (-1: none). `caFile`: over TLS, to `localhost`, the
    /// server's certificate checked against it.
    static func connectEach(port: UInt16, count: Int, prefix: String, version: String = "3.1.1",
                            websockets: Bool = false, caFile: String? = nil) throws -> [Int: Int] {
        try requireInstalled()
        let script = """
            import json, time, paho.mqtt.client as mqtt
            codes = {}
            for i in range(\(count)):
                got = []
                c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"\(prefix)-{i}",
                                protocol=mqtt.MQTTv5 if "\(version)" == "5" else mqtt.MQTTv311,
                                transport="\(websockets ? "websockets" : "tcp")")
                if \(websockets ? "True" : "False"):
                    c.ws_set_options(path="/mqtt")
                if \(caFile != nil ? "True" : "False"):
                    c.tls_set(ca_certs="\(caFile ?? "")")
                c.on_connect = lambda cl, u, f, rc, p=None: got.append(rc.value)
                c.connect("\(caFile != nil ? "localhost" : "127.0.0.1")", \(port), keepalive=30)
                deadline = time.time() + 5
                while not got and time.time() < deadline:
                    if c.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                        break
                code = got[0] if got else -1
                codes[code] = codes.get(code, 0) + 1
                if code == 0:
                    c.disconnect()
                    c.loop(0.05)
                s = c.socket()
                if s: s.close()
            print(json.dumps(codes))
            """
        let (status, output) = try ChildProcess("/usr/bin/env", ["python3", "-c", script]).finish(within: 120)
        XCTAssertEqual(status, 0, output)
        let line = output.split(separator: "\n").last.map(String.init) ?? "{}"
        let decoded = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Int] ?? [:]
        return Dictionary(uniqueKeysWithValues: decoded.map { (Int($0.key) ?? -2, $0.value) })
    }
}

// What the TLS tests share: throwaway certificates made with the `openssl` command once per test
// process (a CA, server certificates, client certificates good and bad, a CRL), and a loopback
// that runs ringproxy's server session (the custom BIO over a ctls_io) against a standard
// OpenSSL client on memory BIOs, moving the bytes between them by hand.
import CTLS
import Foundation
import Glibc
import XCTest
@testable import RingProxy

/// Python clients the end-to-end TLS tests share.
enum TLSClientScripts {
    /// `exchange(s, data)`: sends `data` over socket `s` in 100,000-byte pieces, reads each piece
    /// back from an echo server (one thread: an SSL object must not be read and written from two
    /// threads at once), and returns whether what came back is `data`.
    static let echoExchange = """
        import hashlib
        def exchange(s, data):
            got = bytearray()
            view = memoryview(data)
            for i in range(0, len(data), 100000):
                chunk = view[i:i + 100000]
                s.sendall(chunk)
                want = len(got) + len(chunk)
                while len(got) < want:
                    piece = s.recv(1 << 16)
                    if not piece: return False
                    got.extend(piece)
            return hashlib.sha256(got).digest() == hashlib.sha256(data).digest()

        """

    /// paho-mqtt over TLS (argv: port, CA file): a subscriber and a publisher on `topic`,
    /// messages of sizes around the buffer and record sizes at QoS 1; prints "received N of 18
    /// intact" when the digests match in order, and exits 0 then.
    static func pahoPublishAndReceive(topic: String, clientPrefix: String) -> String {
        """
        import hashlib, os, ssl, sys, time
        import paho.mqtt.client as mqtt
        got = []
        def client(cid):
            c = mqtt.Client(client_id=cid)
            c.tls_set(ca_certs=sys.argv[2])
            c.connect("127.0.0.1", int(sys.argv[1]))
            return c
        sub = client("\(clientPrefix)-sub"); sub.on_message = lambda c, u, m: got.append(m.payload)
        sub.subscribe("\(topic)", 1); sub.loop_start()
        pub = client("\(clientPrefix)-pub"); pub.loop_start()
        time.sleep(0.5)
        data = [os.urandom(n) for n in (1, 100, 16384, 16385, 65536, 70000, 131072, 200000, 5) * 2]
        for d in data: pub.publish("\(topic)", d, qos=1).wait_for_publish()
        deadline = time.time() + 15
        while len(got) < len(data) and time.time() < deadline: time.sleep(0.05)
        ok = [hashlib.sha256(d).digest() for d in data] == [hashlib.sha256(d).digest() for d in got]
        print("received", len(got), "of", len(data), "intact" if ok else "CORRUPT")
        pub.disconnect(); sub.disconnect()
        sys.exit(0 if ok else 1)
        """
    }
}

enum TLSTestCertificates {
    /// The directory holding ca.pem, server.pem (localhost), second.pem (broker.example.com and
    /// *.mqtt.example.com), client.pem, expired-client.pem, revoked-client.pem + crl.pem,
    /// rogue-client.pem (another CA), expired-server.pem, server-nokey.pem, server-wrongkey.pem.
    static let directory: String = {
        let dir = NSTemporaryDirectory() + "ringproxy-tls-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let child = try! ChildProcess("/bin/bash", ["-c", script, "make-certs", dir])
        let (status, output) = child.finish(within: 60)
        precondition(status == 0, "making test certificates failed: \(output)")
        atexit { try? FileManager.default.removeItem(atPath: TLSTestCertificates.directory) }
        return dir
    }()

    static func path(_ name: String) -> String { directory + "/" + name }

    /// `openssl ca` for the dates (an expired certificate), revocation and the CRL.
    private static let script = #"""
    set -e
    cd "$1"
    cat > ca.cnf <<'CNF'
    [ ca ]
    default_ca = test_ca
    [ test_ca ]
    dir = .
    database = index.txt
    new_certs_dir = .
    serial = serial
    default_md = sha256
    policy = anything
    copy_extensions = copy
    unique_subject = no
    default_crl_days = 30
    [ anything ]
    countryName = optional
    organizationName = optional
    commonName = supplied
    CNF
    : > index.txt; echo 1000 > serial
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    key ca.key
    openssl req -x509 -new -key ca.key -subj "/O=Ringproxy Tests/CN=Test CA" -days 30 -out ca.pem
    key other-ca.key
    openssl req -x509 -new -key other-ca.key -subj "/O=Elsewhere/CN=Other CA" -days 30 -out other-ca.pem
    # leaf NAME SUBJECT SAN CA START END: NAME.pem = certificate, CA certificate, key
    leaf() {
      key $1.key
      openssl req -new -key $1.key -subj "$2" ${3:+-addext "subjectAltName=$3"} -out $1.csr 2>/dev/null
      openssl ca -batch -config ca.cnf -cert $4.pem -keyfile $4.key -in $1.csr -out $1.crt \
        -startdate $5 -enddate $6 -notext 2>/dev/null
      cat $1.crt $4.pem $1.key > $1.pem
    }
    now=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ); later=$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)
    leaf server "/CN=localhost" "DNS:localhost,IP:127.0.0.1" ca $now $later
    leaf second "/CN=broker.example.com" "DNS:broker.example.com,DNS:*.mqtt.example.com" ca $now $later
    leaf client "/C=FR/O=Ringproxy Tests/CN=device-1" "" ca $now $later
    leaf expired-client "/C=FR/O=Ringproxy Tests/CN=device-expired" "" ca 20200101000000Z 20200102000000Z
    leaf revoked-client "/C=FR/O=Ringproxy Tests/CN=device-revoked" "" ca $now $later
    leaf rogue-client "/C=FR/O=Elsewhere/CN=device-rogue" "" other-ca $now $later
    leaf expired-server "/CN=localhost" "DNS:localhost" ca 20200101000000Z 20200102000000Z
    openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -revoke revoked-client.crt 2>/dev/null
    openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -gencrl -out crl.pem 2>/dev/null
    cat server.crt ca.pem > server-nokey.pem
    cat server.crt ca.pem second.key > server-wrongkey.pem
    mkdir crt-dir; cp server.pem crt-dir/1-server.pem; cp second.pem crt-dir/2-second.pem
    cp second.key crt-dir/2-second.key
    """#
}

/// What the standard OpenSSL client on the other end offers.
struct TLSTestClient {
    var caFile: String? = TLSTestCertificates.path("ca.pem")
    var certificateFile: String?
    var minVersion: Int32 = 0
    var maxVersion: Int32 = 0
    var ciphers: String?
    var ciphersuites: String?
    var alpn: String?
    var serverName: String? = "localhost"

    static let tls12: Int32 = 0x0303
    static let tls13: Int32 = 0x0304
}

/// A server session of ours and a client of OpenSSL's, connected by hand. Bytes the server
/// sends collect in `toClient` until fed; bytes the client sends in `toServer`.
final class TLSLoopback {
    let context: TLSContext
    let clientContext: OpaquePointer
    let io = UnsafeMutablePointer<ctls_io>.allocate(capacity: 1)
    let server: TLSSession
    let client: OpaquePointer
    static let bufferBytes = 1 << 17
    let inbound = UnsafeMutableRawPointer.allocate(byteCount: TLSLoopback.bufferBytes, alignment: 16)
    let outbound = UnsafeMutableRawPointer.allocate(byteCount: TLSLoopback.bufferBytes, alignment: 16)
    /// Room the server gets for records per call (small to see WANT_WRITE).
    var outputCapacity = TLSLoopback.bufferBytes
    /// Received bytes the server takes per call (1 = a byte at a time).
    var inputChunkBytes = Int.max
    var toServer: [UInt8] = []
    var toClient: [UInt8] = []
    var wantWrites = 0
    /// OpenSSL's reason when the server side failed.
    var serverError: String?
    var clientFailed = false
    private var cStrings: [UnsafeMutablePointer<CChar>] = []

    init(context: TLSContext, client options: TLSTestClient = TLSTestClient(),
         resuming session: OpaquePointer? = nil) {
        self.context = context
        io.initialize(to: ctls_io())
        var strings: [UnsafeMutablePointer<CChar>] = []
        func c(_ s: String?) -> UnsafeMutablePointer<CChar>? {
            guard let s else { return nil }
            let p = strdup(s)!
            strings.append(p)
            return p
        }
        clientContext = ctls_test_client_ctx_new(c(options.caFile), c(options.certificateFile),
                                                 options.minVersion, options.maxVersion,
                                                 c(options.ciphers), c(options.ciphersuites),
                                                 c(options.alpn))!
        client = ctls_test_client_new(clientContext, c(options.serverName), session)!
        server = context.makeSession(io: io)!
        cStrings = strings
    }

    private var serverFreed = false

    /// Frees the server session now (to measure what it held).
    func freeServer() {
        server.free()
        serverFreed = true
    }

    deinit {
        if !serverFreed { server.free() }
        SSL_free(client)
        ctls_test_client_ctx_free(clientContext)
        io.deallocate()
        inbound.deallocate()
        outbound.deallocate()
        cStrings.forEach { free($0) }
    }

    // MARK: moving bytes

    /// What the client wants to send, appended to `toServer`.
    func drainClient() {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = ctls_test_client_drain(client, &buffer, buffer.count)
            if n == 0 { break }
            toServer += buffer[0..<n]
        }
    }

    func feedClient() {
        ctls_test_client_feed(client, toClient, toClient.count)
        toClient.removeAll()
    }

    /// Runs one server operation over `toServer`, `inputChunkBytes` at a time, with
    /// `outputCapacity` of room: a full `out` is sent (to `toClient`) and the call repeated, as
    /// the worker would. Returns the last result; unused input stays in `toServer`.
    func serverCall(_ operation: (TLSSession) -> TLSResult) -> TLSResult {
        var result = TLSResult.wantRead
        repeat {
            let n = min(inputChunkBytes, toServer.count)
            toServer.withUnsafeBytes { raw in
                if n > 0 { inbound.copyMemory(from: raw.baseAddress!, byteCount: n) }
            }
            TLSRecordIO.setInput(io, inbound, count: n)
            repeat {
                TLSRecordIO.setOutput(io, outbound, capacity: outputCapacity)
                result = operation(server)
                toClient += UnsafeRawBufferPointer(start: outbound, count: io.pointee.out_len)
                if result == .wantWrite { wantWrites += 1 }
            } while result == .wantWrite
            toServer.removeFirst(io.pointee.in_used)
            if result == .error { serverError = TLSSession.lastErrorReason() }
        } while result == .wantRead && !toServer.isEmpty
        return result
    }

    /// Both handshakes to the end (or a failure); the client also reads what the server sent
    /// after its handshake (TLS 1.3 tickets). Returns the server's result.
    @discardableResult
    func handshake() -> TLSResult {
        drainClient()
        for _ in 0..<50 {
            let result = serverCall { $0.handshake() }
            feedClient()
            let step = ctls_test_client_step(client)
            if step < 0 { clientFailed = true }
            drainClient()
            if result == .error || step < 0 {
                if result != .error { _ = serverCall { $0.handshake() } }   // to hear the alert
                else { _ = clientRead() }   // the alert, after a client that thought it was done
                return .error
            }
            if result == .ok && step == 1 && toServer.isEmpty {
                _ = clientRead()
                return .ok
            }
        }
        XCTFail("handshake did not finish")
        return .error
    }

    // MARK: application data

    /// The server seals `plain`; returns the records it produced (also left in `toClient`).
    @discardableResult
    func serverWrite(_ plain: [UInt8]) -> [UInt8] {
        let before = toClient.count
        var offset = 0
        while offset < plain.count {
            var written = 0
            let result = serverCall { session in
                plain.withUnsafeBytes { raw in
                    session.write(from: raw.baseAddress! + offset, count: plain.count - offset,
                                  written: &written)
                }
            }
            offset += written
            if result == .error { XCTFail("server write: \(serverError ?? "")"); break }
        }
        return Array(toClient[before...])
    }

    /// Everything the client can read now (feeding it `toClient` first).
    func clientRead() -> [UInt8] {
        feedClient()
        var plain: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            var n = 0
            let r = ctls_test_client_read(client, &buffer, buffer.count, &n)
            if r < 0 { clientFailed = true }
            if r != 1 { break }
            plain += buffer[0..<n]
        }
        drainClient()   // a KeyUpdate answer, if any
        return plain
    }

    /// The client seals `plain`; returns its records (also left in `toServer`).
    @discardableResult
    func clientWrite(_ plain: [UInt8]) -> [UInt8] {
        XCTAssertEqual(ctls_test_client_write(client, plain, plain.count), 1)
        let before = toServer.count
        drainClient()
        return Array(toServer[before...])
    }

    /// The server decrypts everything in `toServer` in place: plaintext lands at the start of
    /// the very buffer the ciphertext was received into. Returns that plaintext and the result.
    func serverReadInPlace() -> (plain: [UInt8], result: TLSResult) {
        let n = toServer.count
        toServer.withUnsafeBytes { inbound.copyMemory(from: $0.baseAddress!, byteCount: n) }
        toServer.removeAll()
        TLSRecordIO.setInput(io, inbound, count: n)
        TLSRecordIO.setOutput(io, outbound, capacity: outputCapacity)
        var plainBytes = 0
        var result = TLSResult.ok
        while true {
            XCTAssertLessThanOrEqual(plainBytes, io.pointee.in_used, "plaintext overtook ciphertext")
            var count = 0
            result = server.read(into: inbound + plainBytes, capacity: n - plainBytes, count: &count)
            plainBytes += count
            if result != .ok || count == 0 { break }
        }
        toClient += UnsafeRawBufferPointer(start: outbound, count: io.pointee.out_len)
        if result == .error { serverError = TLSSession.lastErrorReason() }
        return (Array(UnsafeRawBufferPointer(start: inbound, count: plainBytes)), result)
    }

    /// The server decrypts `toServer` into a separate buffer, `inputChunkBytes` at a time.
    func serverRead() -> (plain: [UInt8], result: TLSResult) {
        var plain: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        let result = serverCall { session in
            var total = 0
            var r = TLSResult.ok
            while true {
                var count = 0
                r = scratch.withUnsafeMutableBytes {
                    session.read(into: $0.baseAddress!, capacity: $0.count, count: &count)
                }
                total += count
                plain += scratch[0..<count]
                if r != .ok || count == 0 { break }
            }
            return r == .ok && total == 0 ? .wantRead : r
        }
        return (plain, result)
    }

    /// The certificate the client was shown (subject, one line).
    var serverCertificateSubject: String? {
        var buffer = [CChar](repeating: 0, count: 256)
        return ctls_client_subject(client, &buffer, buffer.count) > 0 ? String(cString: buffer) : nil
    }
}

extension TLSBindConfig {
    /// server.pem (localhost), everything else at its default.
    static func testServer(_ files: [String] = ["server.pem"]) -> TLSBindConfig {
        TLSBindConfig(certificatePaths: files.map(TLSTestCertificates.path))
    }
}

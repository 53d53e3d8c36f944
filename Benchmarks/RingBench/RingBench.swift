// ringbench: the load generator of ringproxy's benchmarks. Each thread owns an io_uring and a
// fixed-file table, so one process goes past the open-files limit, and binds its connections
// to many 127.x.y.z source addresses, so it goes past 64 k ports per destination. Workloads:
//   pingpong  N connections, each keeping W small PUBLISH messages in flight; latency per message
//   conn      connection set-up: socket -> connect -> CONNECT -> CONNACK -> DISCONNECT -> close,
//             one linked chain per session, C sessions in flight per thread
//   idle      open N connections (CONNECT/CONNACK each), hold them for the duration
// Each run prints one JSON line of results. Loops are bounded by --seconds.
import ArgumentParser
import CUring
import Glibc
import Histogram

@main
struct RingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ringbench",
        abstract: "io_uring MQTT load generator for ringproxy's benchmarks (prints one JSON line).")

    @Argument(help: "Workload: pingpong, conn, idle.")
    var workload: String

    @Option(help: "host:port to load (IPv4).")
    var target: String

    @Option(help: "Connections (pingpong, idle) or sessions in flight (conn), over all threads.")
    var connections: Int = 100

    @Option(help: "Messages in flight per connection (pingpong).")
    var window: Int = 16

    @Option(help: "Bytes per PUBLISH message (pingpong), at least 8, at most 129.")
    var size: Int = 64

    @Option(help: "Duration of the measured phase, seconds.")
    var seconds: Double = 5

    @Option(help: "Threads, each with its own io_uring.")
    var threads: Int = 1

    @Option(help: "Source addresses to bind, 127.0.0.A-127.0.0.B or a.b.c.d-a.b.c.e (last octet range).")
    var sources: String = "127.0.0.1-127.0.0.1"

    @Option(help: "Client ids to cycle through (conn).")
    var ids: Int = 10_000

    @Flag(help: "Start each pingpong connection with CONNECT/CONNACK (for an MQTT backend behind an MQTT-checking proxy).")
    var mqtt = false

    func run() throws {
        guard ["pingpong", "conn", "idle"].contains(workload) else { throw ValidationError("unknown workload '\(workload)'") }
        guard size >= 8 && size <= 129 else { throw ValidationError("--size must be 8...129") }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let settings = Settings(workload: workload, target: try Address(target), sources: try SourceRange(sources),
                                window: window, size: size, seconds: seconds, ids: ids, mqtt: mqtt || workload == "idle",
                                fileLimit: Int(limit.rlim_cur))
        let perThread = (0..<threads).map { connections / threads + ($0 < connections % threads ? 1 : 0) }
        var results: [ThreadResult] = Array(repeating: ThreadResult(), count: threads)
        results.withUnsafeMutableBufferPointer { out in
            var handles: [pthread_t] = []
            for t in 0..<threads {
                let job = Job(index: t, count: perThread[t], settings: settings, out: out.baseAddress! + t)
                var handle = pthread_t()
                pthread_create(&handle, nil, { raw in
                    let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                    job.out.pointee = ClientThread(job).run()
                    return nil
                }, Unmanaged.passRetained(job).toOpaque())
                handles.append(handle)
            }
            for h in handles { pthread_join(h, nil) }
        }
        var total = ThreadResult()
        for r in results { total.merge(r) }
        let elapsed = max(total.elapsed, 1e-9)
        let p = { (q: Double) in Double(total.latency.valueAtPercentile(q)) / 1000.0 }
        print("{\"workload\":\"\(workload)\",\"connections\":\(total.connections),\"operations\":\(total.operations),"
              + "\"failed\":\(total.failed),\"seconds\":\(fmt(elapsed)),\"per_second\":\(fmt(Double(total.operations) / elapsed)),"
              + "\"p50_us\":\(fmt(p(50))),\"p99_us\":\(fmt(p(99))),\"p999_us\":\(fmt(p(99.9))),\"threads\":\(threads)}")
    }
}

func fmt(_ v: Double) -> String {
    let scaled = (v * 1000).rounded() / 1000
    return "\(scaled)"
}

struct Address {
    var ip: UInt32   // host order
    var port: UInt16
    init(_ text: String) throws {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw ValidationError("--target host:port") }
        var a = in_addr()
        guard inet_pton(AF_INET, String(parts[0]), &a) == 1 else { throw ValidationError("--target needs an IPv4 address") }
        ip = UInt32(bigEndian: a.s_addr)
        self.port = port
    }
    func sockaddr(port override: UInt16? = nil) -> sockaddr_in {
        var s = sockaddr_in()
        s.sin_family = sa_family_t(AF_INET)
        s.sin_port = (override ?? port).bigEndian
        s.sin_addr.s_addr = ip.bigEndian
        return s
    }
}

struct SourceRange {
    var first: UInt32
    var count: Int
    init(_ text: String) throws {
        let ends = text.split(separator: "-").map(String.init)
        var a = in_addr(), b = in_addr()
        guard ends.count == 2, inet_pton(AF_INET, ends[0], &a) == 1, inet_pton(AF_INET, ends[1], &b) == 1 else {
            throw ValidationError("--sources like 127.0.0.1-127.0.0.50")
        }
        first = UInt32(bigEndian: a.s_addr)
        let last = UInt32(bigEndian: b.s_addr)
        guard last >= first else { throw ValidationError("--sources: the range is empty") }
        count = Int(last - first) + 1
    }
}

struct Settings {
    var workload: String
    var target: Address
    var sources: SourceRange
    var window: Int
    var size: Int
    var seconds: Double
    var ids: Int
    var mqtt: Bool
    var fileLimit: Int
}

struct ThreadResult {
    var connections = 0
    var operations = 0
    var failed = 0
    var elapsed: Double = 0
    var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)

    mutating func merge(_ other: ThreadResult) {
        connections += other.connections
        operations += other.operations
        failed += other.failed
        elapsed = max(elapsed, other.elapsed)
        latency.add(other.latency)
    }
}

final class Job {
    let index: Int
    let count: Int
    let settings: Settings
    let out: UnsafeMutablePointer<ThreadResult>
    init(index: Int, count: Int, settings: Settings, out: UnsafeMutablePointer<ThreadResult>) {
        self.index = index
        self.count = count
        self.settings = settings
        self.out = out
    }
}

@inline(__always) func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// MQTT 3.1.1 CONNECT for `id` (clean session, keepalive 60 s).
func connectPacket(_ id: String) -> [UInt8] {
    let bytes = Array(id.utf8)
    return [0x10, UInt8(12 + bytes.count), 0, 4] + Array("MQTT".utf8) + [4, 2, 0, 60, UInt8(bytes.count >> 8), UInt8(bytes.count & 0xff)] + bytes
}

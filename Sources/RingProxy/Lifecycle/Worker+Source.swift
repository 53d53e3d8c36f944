// Worker+Source: server-side source-address pools (`source <addr>[-<addr>]`). A pooled
// connect binds the new server socket to the server's next pool address before connecting,
// inside the connect chain; the port is left to connect (IP_BIND_ADDRESS_NO_PORT), so the
// kernel needs only the 4-tuple to be unique. A full pool is a failed connect like any other
// (retried on the next server), counted per server and logged, never a hang.
import CUring
import Glibc

/// Per server: its pool (first address, size) and this worker's round-robin position; per
/// slot: the address its connect binds to (the kernel copies it at submission, so it lives in
/// the slot, not on the stack). Allocated at start-up; the per-slot table only when a server
/// has a pool.
struct SourcePoolTable {
    let first: UnsafeMutablePointer<SocketAddress>
    /// 0: the server has no pool.
    let count: UnsafeMutablePointer<Int>
    let next: UnsafeMutablePointer<Int>
    let bound: UnsafeMutablePointer<SocketAddress>
    let inUse: Bool

    init(servers: [ServerConfig], slotCount: Int, workerIndex: Int) {
        let n = max(1, servers.count)
        first = .allocate(capacity: n)
        count = .allocate(capacity: n)
        next = .allocate(capacity: n)
        for (g, server) in servers.enumerated() {
            let pool = server.sourcePool
            (first + g).initialize(to: pool?.first ?? server.address)
            (count + g).initialize(to: pool?.count ?? 0)
            // Workers start at different places, so that together they spread too.
            (next + g).initialize(to: pool.map { workerIndex % $0.count } ?? 0)
        }
        inUse = servers.contains { $0.sourcePool != nil }
        bound = .allocate(capacity: inUse ? slotCount : 1)
    }

    func deallocate() {
        first.deallocate()
        count.deallocate()
        next.deallocate()
        bound.deallocate()
    }
}

extension Worker {
    /// Queues setsockopt(IP_BIND_ADDRESS_NO_PORT) and the bind of the socket in `fixed` to the
    /// next address of server `g`'s pool, linked into the connect chain that follows.
    func queueSourceBind(_ slot: Int32, server g: Int, fixed: Int32) {
        let s = Int(slot)
        let size = sourcePools.count[g]
        let i = sourcePools.next[g]
        assert(size > 0 && i < size)
        sourcePools.next[g] = i + 1 == size ? 0 : i + 1
        let address = sourcePools.bound + s
        address.pointee = sourcePools.first[g]
        SourcePool.offset(&address.pointee, by: UInt32(truncatingIfNeeded: i))
        conns[s].sourceError = 0
        var sqe = ring.sqe()
        cu_prep_setsockopt_fixed(sqe, fixed, Int32(IPPROTO_IP), CU_IP_BIND_ADDRESS_NO_PORT, optionOne, Int32(MemoryLayout<Int32>.size))
        // Without it the bind picks the port itself (2-tuple): worse, but still a connection.
        cu_sqe_add_flags(sqe, CU_IOSQE_IO_HARDLINK | CU_IOSQE_CQE_SKIP_SUCCESS)
        io_uring_sqe_set_data64(sqe, UserData(.ignore, slot: slot, generation: conns[s].generation).raw)
        sqe = ring.sqe()
        withUnsafePointer(to: &address.pointee.storage) {
            cu_prep_bind_fixed(sqe, fixed, UnsafeRawPointer($0), address.pointee.length)
        }
        // A failed bind cancels the connect; its completion says why (onSourceBind). Not
        // CQE_SKIP_SUCCESS: a skipped request that fails makes the kernel drop the completions
        // of the requests linked after it (REQ_F_SKIP_LINK_CQES), and the connect's would
        // never come.
        cu_sqe_add_flags(sqe, CU_IOSQE_IO_LINK)
        io_uring_sqe_set_data64(sqe, UserData(.sourceBind, slot: slot, generation: conns[s].generation).raw)
        conns[s].pendingOps += 1
    }

    /// The bind completed. A failure: the connect that follows ends with ECANCELED, which
    /// onConnect must not take for a connect timeout.
    func onSourceBind(_ slot: Int32, result: Int32) {
        let s = Int(slot)
        conns[s].pendingOps -= 1
        if conns[s].phase == .connecting && result < 0 { conns[s].sourceError = UInt8(clamping: -result) }
        finishIfIdle(slot)
    }

    /// The connect's result with a failed bind put in place of the ECANCELED it caused.
    func sourceAdjusted(_ slot: Int32, result: Int32) -> Int32 {
        let error = conns[Int(slot)].sourceError
        return result == -ECANCELED && error != 0 ? -Int32(error) : result
    }

    /// A connect or bind that found no free address/port pair (EADDRNOTAVAIL, or EADDRINUSE
    /// from a bind) on a pooled server: counted on the server and said in the log.
    func noteSourceExhausted(_ slot: Int32, server g: Int, result: Int32) {
        guard sourcePools.count[g] > 0, result == -EADDRNOTAVAIL || result == -EADDRINUSE else { return }
        countServer(g, .sourceExhausted)
        count(.sourceExhausted)
        let s = Int(slot)
        let backend = config.backends[Int(conns[s].backend)]
        let server = backend.servers[Int(conns[s].server)]
        let pool = server.sourcePool.map(\.description) ?? "?"
        warnRateLimited(slot, "server \(backend.name)/\(server.name): source pool \(pool) has no free address and port towards \(server.address) "
                        + "(\(String(cString: strerror(-result)))); add addresses to the pool or widen net.ipv4.ip_local_port_range")
    }
}

extension Engine {
    /// Refuses, before any worker starts, a configuration whose source pools this kernel cannot
    /// bind as the connect chain does (IORING_OP_BIND on a fixed file, Linux 6.11+; the
    /// setsockopt as uring_cmd, 6.7+), or whose pool ends are not addresses of this host.
    static func checkSourcePools(_ config: EngineConfig) throws(EngineError) {
        var checked: [SocketAddress] = []
        for backend in config.backends {
            for server in backend.servers {
                guard let pool = server.sourcePool else { continue }
                for address in [pool.first, pool.address(at: pool.count - 1)] where !checked.contains(address) {
                    checked.append(address)
                    var step: Int32 = 0
                    var copy = address
                    let rc = withUnsafePointer(to: &copy.storage) { cu_probe_bind_fixed(UnsafeRawPointer($0), copy.length, &step) }
                    guard rc < 0 else { continue }
                    let why = String(cString: strerror(-rc))
                    let place = "\(server.source ?? backend.name): server '\(backend.name)/\(server.name)': 'source \(pool)'"
                    switch step {
                    case 2:
                        throw .invalid("\(place) needs setsockopt(IP_BIND_ADDRESS_NO_PORT) over io_uring (Linux 6.7+): \(why)")
                    case 3 where rc == -EADDRNOTAVAIL:
                        throw .invalid("\(place): \(address.hostText) is not an address of this host (\(why))")
                    case 3 where rc == -EINVAL || rc == -EOPNOTSUPP:
                        throw .invalid("\(place) needs IORING_OP_BIND on a fixed file (Linux 6.11+), which this kernel refused: \(why)")
                    case 3:
                        throw .invalid("\(place): binding \(address.hostText) failed: \(why)")
                    default:
                        throw .invalid("\(place): cannot probe io_uring bind: \(why)")
                    }
                }
            }
        }
    }
}

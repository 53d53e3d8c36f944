// BufferPool: one worker's provided-buffer ring (IORING_REGISTER_PBUF_RING). The kernel picks a
// buffer for each recv; the engine queues it on the connection's pipe (linked through `next`),
// sends from it as is, and gives it back here when the send completes. Beside them, owned
// buffers that the kernel never fills: room for bytes the proxy writes itself (a PROXY header,
// an HTTP answer, TLS records), queued on pipes exactly like received ones. Counts what is out.
import CUring
import Glibc

struct BufferPool {
    static let none: UInt16 = 0xFFFF
    static let group: UInt16 = 0

    /// Provided buffers: ids 0..<count, filled by the kernel.
    let count: Int
    /// Owned buffers: ids count..<count+ownedCount, never given to the kernel.
    let ownedCount: Int
    let sizeBytes: Int
    let base: UnsafeMutableRawPointer
    private let ringMemory: UnsafeMutableRawPointer
    private let ringBytes: Int
    private let ringEntries: UInt32
    private let br: UnsafeMutablePointer<io_uring_buf_ring>
    private let mask: Int32
    /// Buffers given back since the last commit.
    private var pendingReturns: Int32 = 0
    /// Per buffer: the next buffer in its pipe's queue, and the bytes it holds.
    let next: UnsafeMutablePointer<UInt16>
    let length: UnsafeMutablePointer<UInt32>
    /// Buffers the kernel filled that have not come back yet.
    private(set) var inUse = 0
    private(set) var inUseMax = 0
    /// Free owned buffers, a stack.
    private let ownedFree: UnsafeMutablePointer<UInt16>
    private var ownedFreeCount: Int
    var ownedInUse: Int { ownedCount - ownedFreeCount }

    init(ring: Ring, count: Int, ownedCount: Int = 0, sizeBytes: Int) throws(RingError) {
        precondition(count > 0 && count <= 32768 && count & (count - 1) == 0, "buffer count must be a power of two <= 32768")
        precondition(ownedCount >= 0 && count + ownedCount < Int(Self.none))
        precondition(sizeBytes >= 512 && sizeBytes <= 1 << 20)
        self.count = count
        self.ownedCount = ownedCount
        self.sizeBytes = sizeBytes
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        ringEntries = UInt32(count)
        ringBytes = (count * MemoryLayout<io_uring_buf>.stride + page - 1) / page * page
        // MAP_NORESERVE: memory becomes resident only as buffers are first used.
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        guard let rm = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, flags, -1, 0), rm != MAP_FAILED,
              let bm = mmap(nil, (count + ownedCount) * sizeBytes, PROT_READ | PROT_WRITE, flags, -1, 0), bm != MAP_FAILED else {
            throw .register("buffer memory", errno)
        }
        ringMemory = rm
        base = bm
        br = rm.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        mask = Int32(count - 1)
        next = .allocate(capacity: count + ownedCount)
        next.initialize(repeating: Self.none, count: count + ownedCount)
        length = .allocate(capacity: count + ownedCount)
        length.initialize(repeating: 0, count: count + ownedCount)
        ownedFree = .allocate(capacity: max(1, ownedCount))
        for i in 0..<ownedCount { ownedFree[i] = UInt16(count + ownedCount - 1 - i) }
        ownedFreeCount = ownedCount

        io_uring_buf_ring_init(br)
        var reg = io_uring_buf_reg()
        reg.ring_addr = UInt64(UInt(bitPattern: rm))
        reg.ring_entries = ringEntries
        reg.bgid = Self.group
        let rc = io_uring_register_buf_ring(ring.ring, &reg, 0)
        if rc < 0 { throw .register("buffer ring", -rc) }
        for bid in 0..<count {
            io_uring_buf_ring_add(br, base + bid * sizeBytes, UInt32(sizeBytes), UInt16(bid), mask, Int32(bid))
        }
        io_uring_buf_ring_advance(br, Int32(count))
    }

    @inline(__always)
    func address(_ bid: UInt16) -> UnsafeMutableRawPointer { base + Int(bid) * sizeBytes }

    /// The kernel handed out `bid` (a recv completion carried it).
    @inline(__always)
    mutating func taken(_ bid: UInt16, bytes: Int32) {
        assert(Int(bid) < count)
        inUse += 1
        if inUse > inUseMax { inUseMax = inUse }
        length[Int(bid)] = UInt32(bytes)
        next[Int(bid)] = Self.none
    }

    /// An owned buffer to write into (length 0, unlinked), or nil when all are out.
    @inline(__always)
    mutating func takeOwned() -> UInt16? {
        guard ownedFreeCount > 0 else { return nil }
        ownedFreeCount -= 1
        let bid = ownedFree[ownedFreeCount]
        length[Int(bid)] = 0
        next[Int(bid)] = Self.none
        return bid
    }

    @inline(__always)
    func isOwned(_ bid: UInt16) -> Bool { Int(bid) >= count }

    /// Gives `bid` back: a provided buffer to the kernel (visible after `commit`), an owned one
    /// to the free stack.
    @inline(__always)
    mutating func give(_ bid: UInt16) {
        if Int(bid) >= count {
            assert(Int(bid) < count + ownedCount && ownedFreeCount < ownedCount)
            ownedFree[ownedFreeCount] = bid
            ownedFreeCount += 1
            return
        }
        assert(inUse > 0)
        io_uring_buf_ring_add(br, address(bid), UInt32(sizeBytes), bid, mask, pendingReturns)
        pendingReturns += 1
        inUse -= 1
    }

    /// Publishes the buffers given back since the last commit, with one store-release.
    @inline(__always)
    mutating func commit() {
        if pendingReturns > 0 {
            io_uring_buf_ring_advance(br, pendingReturns)
            pendingReturns = 0
        }
    }

    var available: Int { count - inUse }

    /// Returns the buffer memory to the system once the ring that used it is gone (a worker
    /// retired by a reload must not keep its touched buffer pages).
    func release() {
        munmap(base, (count + ownedCount) * sizeBytes)
        munmap(ringMemory, ringBytes)
        next.deallocate()
        length.deallocate()
        ownedFree.deallocate()
    }
}

/// Bounds the engine promises, stated once so tests and documentation agree.
public enum EngineBounds {
    /// Most buffers one paused direction of a connection can hold. Each multishot recv is
    /// armed with a byte cap of the room left, so full buffers stop exactly at the threshold;
    /// one partly filled buffer per wake-up may come on top.
    public static func pipeBuffersHeld(pipeBuffersMax: Int) -> Int { pipeBuffersMax + 2 }
}

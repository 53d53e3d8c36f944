// BufferPool: one worker's provided-buffer ring (IORING_REGISTER_PBUF_RING). The kernel picks a
// buffer for each recv; the engine queues it on the connection's pipe (linked through `next`),
// sends from it as is, and gives it back here when the send completes. Counts what is out.
import CUring
import Glibc

struct BufferPool {
    static let none: UInt16 = 0xFFFF
    static let group: UInt16 = 0

    let count: Int
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

    init(ring: Ring, count: Int, sizeBytes: Int) throws(RingError) {
        precondition(count > 0 && count <= 32768 && count & (count - 1) == 0, "buffer count must be a power of two <= 32768")
        precondition(sizeBytes >= 512 && sizeBytes <= 1 << 20)
        self.count = count
        self.sizeBytes = sizeBytes
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        ringEntries = UInt32(count)
        ringBytes = (count * MemoryLayout<io_uring_buf>.stride + page - 1) / page * page
        // MAP_NORESERVE: memory becomes resident only as buffers are first used.
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        guard let rm = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, flags, -1, 0), rm != MAP_FAILED,
              let bm = mmap(nil, count * sizeBytes, PROT_READ | PROT_WRITE, flags, -1, 0), bm != MAP_FAILED else {
            throw .register("buffer memory", errno)
        }
        ringMemory = rm
        base = bm
        br = rm.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        mask = Int32(count - 1)
        next = .allocate(capacity: count)
        next.initialize(repeating: Self.none, count: count)
        length = .allocate(capacity: count)
        length.initialize(repeating: 0, count: count)

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

    /// Gives `bid` back to the kernel (visible after `commit`).
    @inline(__always)
    mutating func give(_ bid: UInt16) {
        assert(Int(bid) < count && inUse > 0)
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
        munmap(base, count * sizeBytes)
        munmap(ringMemory, ringBytes)
        next.deallocate()
        length.deallocate()
    }
}

/// Bounds the engine promises, stated once so tests and documentation agree.
public enum EngineBounds {
    /// Most buffers one paused direction of a connection can hold. Each multishot recv is
    /// armed with a byte cap of the room left, so full buffers stop exactly at the threshold;
    /// one partly filled buffer per wake-up may come on top.
    public static func pipeBuffersHeld(pipeBuffersMax: Int) -> Int { pipeBuffersMax + 2 }
}

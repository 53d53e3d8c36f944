// LinkedQueue: a FIFO of table indexes (pipes or slots) linked through a preallocated array of
// links, so joining, leaving and finding the oldest are O(1) and allocate nothing. The worker
// keeps four: pipes waiting for buffers, pipes paused by backpressure, connections holding
// buffers during their preamble (the last two are who gives way first under pool pressure), and
// TLS handshakes waiting for their client.
// The links are anonymous zero pages, never initialised: an all-zero link is "not listed" (the
// neighbours are stored plus one, 0 meaning none), so a queue costs memory only for the pages of
// indexes that have joined it (a million-connection process has six links per slot over its
// queues, 144 bytes, of which only the preamble queue's is touched by every connection).
import Glibc

struct QueueLink {
    /// Neighbours plus one; 0: none.
    var prevPlusOne: Int32 = 0
    var nextPlusOne: Int32 = 0
    var listed = false
    /// When the index joined (ms on the worker's clock).
    var sinceMs = 0
}

struct LinkedQueue {
    let links: UnsafeMutablePointer<QueueLink>
    let capacity: Int
    private let mappedBytes: Int
    private(set) var head: Int32 = -1
    private(set) var tail: Int32 = -1
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        mappedBytes = (max(1, capacity) * MemoryLayout<QueueLink>.stride + page - 1) / page * page
        guard let memory = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              memory != MAP_FAILED else {
            fatalError("LinkedQueue: mmap of \(mappedBytes) bytes failed: errno \(errno)")
        }
        links = memory.bindMemory(to: QueueLink.self, capacity: max(1, capacity))
    }

    func deallocate() { munmap(UnsafeMutableRawPointer(links), mappedBytes) }

    @inline(__always)
    func contains(_ i: Int) -> Bool { links[i].listed }

    mutating func append(_ i: Int, nowMs: Int) {
        guard !links[i].listed else { return }
        links[i] = QueueLink(prevPlusOne: tail + 1, nextPlusOne: 0, listed: true, sinceMs: nowMs)
        if tail >= 0 { links[Int(tail)].nextPlusOne = Int32(i) + 1 } else { head = Int32(i) }
        tail = Int32(i)
        count += 1
    }

    mutating func remove(_ i: Int) {
        guard links[i].listed else { return }
        let prev = links[i].prevPlusOne - 1
        let next = links[i].nextPlusOne - 1
        if prev >= 0 { links[Int(prev)].nextPlusOne = next + 1 } else { head = next }
        if next >= 0 { links[Int(next)].prevPlusOne = prev + 1 } else { tail = prev }
        links[i] = QueueLink()
        count -= 1
    }

    @inline(__always)
    var first: Int? { head >= 0 ? Int(head) : nil }

    @inline(__always)
    func since(_ i: Int) -> Int { links[i].sinceMs }
}

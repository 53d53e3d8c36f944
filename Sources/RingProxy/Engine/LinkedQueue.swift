// LinkedQueue: a FIFO of table indexes (pipes or slots) linked through a preallocated array of
// links, so joining, leaving and finding the oldest are O(1) and allocate nothing. The worker
// keeps three: pipes waiting for buffers, pipes paused by backpressure, and connections holding
// buffers during their preamble (the last two are who gives way first under pool pressure).

struct QueueLink {
    var prev: Int32 = -1
    var next: Int32 = -1
    var listed = false
    /// When the index joined (ms on the worker's clock).
    var sinceMs = 0
}

struct LinkedQueue {
    let links: UnsafeMutablePointer<QueueLink>
    let capacity: Int
    private(set) var head: Int32 = -1
    private(set) var tail: Int32 = -1
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        links = .allocate(capacity: max(1, capacity))
        links.initialize(repeating: QueueLink(), count: max(1, capacity))
    }

    func deallocate() { links.deallocate() }

    @inline(__always)
    func contains(_ i: Int) -> Bool { links[i].listed }

    /// Appends `i` (no-op when it is already in the queue).
    mutating func append(_ i: Int, nowMs: Int) {
        guard !links[i].listed else { return }
        links[i] = QueueLink(prev: tail, next: -1, listed: true, sinceMs: nowMs)
        if tail >= 0 { links[Int(tail)].next = Int32(i) } else { head = Int32(i) }
        tail = Int32(i)
        count += 1
    }

    /// Removes `i` (no-op when it is not in the queue).
    mutating func remove(_ i: Int) {
        guard links[i].listed else { return }
        let prev = links[i].prev
        let next = links[i].next
        if prev >= 0 { links[Int(prev)].next = next } else { head = next }
        if next >= 0 { links[Int(next)].prev = prev } else { tail = prev }
        links[i] = QueueLink()
        count -= 1
    }

    /// The oldest index, if any.
    @inline(__always)
    var first: Int? { head >= 0 ? Int(head) : nil }

    @inline(__always)
    func since(_ i: Int) -> Int { links[i].sinceMs }
}

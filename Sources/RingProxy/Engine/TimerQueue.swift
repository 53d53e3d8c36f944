// TimerQueue: a worker's deadlines (the timeout scan now; health checks and finer per-connection
// timers as they come), a binary min-heap in one preallocated array. The loop waits no longer
// than the earliest deadline and fires what is due; no SQE per timer, no allocation.

struct TimerQueue {
    struct Entry {
        var dueMs: Int
        /// What to do when it fires: the owner's id (see Worker.fireTimer).
        var id: UInt32
    }

    let capacity: Int
    private let heap: UnsafeMutablePointer<Entry>
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        heap = .allocate(capacity: capacity)
    }

    func deallocate() { heap.deallocate() }

    /// The earliest deadline, if any.
    var nextDueMs: Int? { count > 0 ? heap[0].dueMs : nil }

    /// Adds a deadline; false when the queue is full (the caller's bound was wrong: the
    /// capacity is sized from the configuration at start).
    @discardableResult
    mutating func schedule(id: UInt32, atMs dueMs: Int) -> Bool {
        guard count < capacity else { return false }
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) / 2
            if heap[parent].dueMs <= dueMs { break }
            heap[i] = heap[parent]
            i = parent
        }
        heap[i] = Entry(dueMs: dueMs, id: id)
        return true
    }

    /// Removes and returns the earliest entry if it is due at `nowMs`.
    mutating func popDue(nowMs: Int) -> Entry? {
        guard count > 0, heap[0].dueMs <= nowMs else { return nil }
        let top = heap[0]
        count -= 1
        let last = heap[count]
        var i = 0
        while true {
            let left = 2 * i + 1
            if left >= count { break }
            let right = left + 1
            let child = right < count && heap[right].dueMs < heap[left].dueMs ? right : left
            if heap[child].dueMs >= last.dueMs { break }
            heap[i] = heap[child]
            i = child
        }
        if count > 0 { heap[i] = last }
        return top
    }
}

// Worker+Slots: the connection table's free list. A slot is taken at accept, reset to a fresh
// Connection and two fresh pipes with its generation kept; released once nothing is pending,
// its generation moving on so that a late completion for the old connection is dropped.

import Glibc

extension Worker {
    @inline(__always)
    func allocateSlot() -> Int32? {
        let slot = freeHead
        guard slot >= 0 else { return nil }
        freeHead = conns[Int(slot)].nextFree
        slotsInUse += 1
        let generation = conns[Int(slot)].generation
        conns[Int(slot)] = Connection()
        conns[Int(slot)].generation = generation
        assert(conns[Int(slot)].phase == .free)
        pipes[Int(slot) * 2] = Pipe()
        pipes[Int(slot) * 2 + 1] = Pipe()
        return slot
    }

    @inline(__always)
    func releaseSlot(_ slot: Int32) {
        let s = Int(slot)
        assert(conns[s].pendingOps == 0)
        conns[s].generation &+= 1
        conns[s].phase = .free
        conns[s].nextFree = freeHead
        freeHead = slot
        slotsInUse -= 1
    }
}

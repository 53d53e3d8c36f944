// Worker+Memory: what a worker gives back after its loop (the buffer pool and the tables only
// the loop reads), so that workers a reload retired cost nothing once their last connection
// ended; the rest goes in Worker's deinit.
import CTLS
import Glibc

extension Worker {
    /// After the loop: the buffer pool and the slot tables go back to the system, so workers a
    /// reload retired cost nothing once their last connection ended. Only this thread touched
    /// them; statistics() reads the counters, which stay.
    func releaseMemory() {
        pool.release()
        releaseLoopTables()
        allocatedCounter = nil
    }

    /// The tables only the loop reads (once, from releaseMemory or deinit).
    func releaseLoopTables() {
        guard !memoryReleased else { return }
        conns.deallocate()
        pipes.deallocate()
        gatherHeaders.deallocate()
        gatherVectors.deallocate()
        destinations.deallocate()
        webSocketStates.deallocate()
        replayStates.deallocate()
        if tlsContexts.contains(where: { $0 != nil }) {
            for s in 0..<slotCount where tlsSessions[s] != nil { ctls_free(tlsSessions[s]) }
        }
        tlsSessions.deallocate()
        kernelTLSKeys.deallocate()
        if serverTLSContexts.contains(where: { $0 != nil }) {
            for s in 0..<slotCount where serverTLSSessions[s] != nil { ctls_free(serverTLSSessions[s]) }
        }
        serverTLSSessions.deallocate()
        serverTLSHeld.deallocate()
        timers.deallocate()
        bufferWaiters.deallocate()
        stalledPipes.deallocate()
        preambleHolders.deallocate()
        idleHandshakes.deallocate()
        memoryReleased = true
    }
}

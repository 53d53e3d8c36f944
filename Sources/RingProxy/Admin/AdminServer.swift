// AdminServer: the stats pages and the stats socket on one thread of their own, with plain
// non-blocking sockets and poll(2), never on the workers' rings: the data path does not wait on
// a page, and a page waits on the engine only for AdminControl.snapshot(). Every queue has a
// bound: 64 page connections (the oldest unanswered one goes when a 65th arrives, once it has
// had 100 ms to send its request; up to 512 for as long as a burst is younger), 16 socket
// sessions, an 8 KiB request head (431), a request timeout (408), a 4 KiB command line.
// Reconfigured at reload without closing a listener whose address is unchanged.
import CUring
import Glibc

public struct AdminServerError: Error, CustomStringConvertible {
    public var description: String
}

public final class AdminServer: @unchecked Sendable {
    enum ListenerKind {
        case page(StatsPageConfig)
        case socket(StatsSocketConfig)
    }

    struct Listener {
        var fd: Int32
        var kind: ListenerKind
        /// The configured address (page) or path (socket): what a reload compares.
        var key: String
    }

    private let control: AdminControl
    private let log: Log
    private var mutex = pthread_mutex_t()
    // Guarded by mutex: the thread reads them at each turn of its loop.
    private var listeners: [Listener] = []
    private var retiredFDs: [Int32] = []
    private var stopping = false
    private var wakePipe: [Int32] = [-1, -1]
    private var thread: pthread_t?

    public init(control: AdminControl, log: Log = Log()) {
        self.control = control
        self.log = log
        pthread_mutex_init(&mutex, nil)
        precondition(pipe(&wakePipe) == 0, "pipe failed: \(errno)")
        for fd in wakePipe { Self.makeNonBlocking(fd) }
    }

    deinit {
        stop()
        close(wakePipe[0])
        close(wakePipe[1])
        pthread_mutex_destroy(&mutex)
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }

    /// Opens the listeners and starts the thread. Nothing to serve is fine (a reload may add some).
    public func start(pages: [StatsPageConfig], socket: StatsSocketConfig?) throws(AdminServerError) {
        precondition(thread == nil, "AdminServer started twice")
        try reconfigure(pages: pages, socket: socket)
        var created = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&created, nil, { raw in
            let server = Unmanaged<AdminServer>.fromOpaque(raw!).takeRetainedValue()
            server.run()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = created
    }

    /// Serves `pages` and `socket` from now on: listeners whose address (or path) is unchanged
    /// are kept, new ones opened, the others closed. On an error nothing changes.
    public func reconfigure(pages: [StatsPageConfig], socket: StatsSocketConfig?) throws(AdminServerError) {
        let current = locked { listeners }
        var next: [Listener] = []
        var opened: [Listener] = []
        func fail(_ message: String) -> AdminServerError {
            for listener in opened { close(listener.fd) }
            return AdminServerError(description: message)
        }
        for page in pages {
            for address in page.binds {
                let key = "\(address)"
                // Port 0 binds are kept by the address they got.
                if let kept = current.first(where: { old in (old.key == key || Self.boundAddress(old.fd).map { "\($0)" } == key) && !next.contains { $0.fd == old.fd } }) {
                    next.append(Listener(fd: kept.fd, kind: .page(page), key: key))
                    continue
                }
                let fd = Self.listen(on: address)
                guard fd >= 0 else { throw fail("stats page '\(page.name)': cannot listen on \(address): \(String(cString: strerror(-fd)))") }
                let listener = Listener(fd: fd, kind: .page(page), key: key)
                opened.append(listener)
                next.append(listener)
            }
        }
        if let socket {
            let key = "unix:" + socket.path
            if let kept = current.first(where: { $0.key == key }) {
                chmod(socket.path, mode_t(socket.mode))
                next.append(Listener(fd: kept.fd, kind: .socket(socket), key: key))
            } else {
                let fd = Self.listen(unixPath: socket.path, mode: socket.mode)
                guard fd >= 0 else { throw fail("stats socket \(socket.path): \(String(cString: strerror(-fd)))") }
                let listener = Listener(fd: fd, kind: .socket(socket), key: key)
                opened.append(listener)
                next.append(listener)
            }
        }
        let gone = current.filter { old in !next.contains { $0.fd == old.fd } }
        for listener in gone where listener.key.hasPrefix("unix:") { unlink(String(listener.key.dropFirst(5))) }
        locked {
            listeners = next
            retiredFDs += gone.map(\.fd)
        }
        wake()
        if thread == nil {
            // Not running yet: nobody else will close them.
            let fds = locked { let fds = retiredFDs; retiredFDs = []; return fds }
            for fd in fds { close(fd) }
        }
    }

    /// Closes everything and waits for the thread to end.
    public func stop() {
        let wasRunning = locked { () -> Bool in
            let running = !stopping && thread != nil
            stopping = true
            return running
        }
        wake()
        if wasRunning, let thread { pthread_join(thread, nil) }
        let (all, paths) = locked { () -> ([Int32], [String]) in
            let fds = listeners.map(\.fd) + retiredFDs
            let paths = listeners.filter { $0.key.hasPrefix("unix:") }.map { String($0.key.dropFirst(5)) }
            listeners = []
            retiredFDs = []
            return (fds, paths)
        }
        for fd in all { close(fd) }
        for path in paths { unlink(path) }
    }

    /// The addresses the page listeners are bound to (the port the kernel chose for port 0).
    public var boundAddresses: [SocketAddress] {
        locked { listeners }.compactMap { listener in
            guard case .page = listener.kind else { return nil }
            return Self.boundAddress(listener.fd)
        }
    }

    static func boundAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafeBytes(of: storage) { SocketAddress(raw: $0.baseAddress!, length: length) }
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakePipe[1], &byte, 1)
    }

    // MARK: sockets

    /// A non-blocking TCP listener, or -errno.
    static func listen(on address: SocketAddress) -> Int32 {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -errno }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, address.length) }
        }
        guard rc == 0, Glibc.listen(fd, 1024) == 0 else {
            let error = errno
            close(fd)
            return -error
        }
        return fd
    }

    /// A non-blocking UNIX stream listener at `path` (a stale socket file there is replaced), or -errno.
    static func listen(unixPath path: String, mode: UInt32) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return -ENAMETOOLONG }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { return -EEXIST }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -errno }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, chmod(path, mode_t(mode)) == 0, Glibc.listen(fd, 16) == 0 else {
            let error = errno
            close(fd)
            return -error
        }
        return fd
    }

    /// Non-blocking and close-on-exec (accept4 and pipe2 are not visible from Swift's Glibc).
    static func makeNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    static func nowMs() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return time.tv_sec * 1000 + time.tv_nsec / 1_000_000
    }

    // MARK: the thread

    private func run() {
        var loop = AdminLoop(control: control, log: log)
        while true {
            let (stop, current, retired) = locked { () -> (Bool, [Listener], [Int32]) in
                let retired = retiredFDs
                retiredFDs = []
                return (stopping, listeners, retired)
            }
            // Connections accepted from a closed listener finish their answer.
            for fd in retired { close(fd) }
            if stop { break }
            loop.turn(listeners: current, wakeFD: wakePipe[0])
        }
        loop.closeAll()
    }
}

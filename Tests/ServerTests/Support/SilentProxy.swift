import Foundation
import WharfTestSupport

/// A TCP forwarder between an agent and the server that can turn the connections it holds into a
/// black hole: after `silence()`, what they carry is read and dropped in both directions and
/// nothing is closed — as when a server's host vanishes or a NAT forgets the flow. New
/// connections are forwarded as before. (A small Python asyncio program, stopped by PID.)
final class SilentProxy {
    let port: Int
    private let process = Process()
    private let output = Pipe()

    static let program = """
        import asyncio, signal, sys
        # A child inherits the test process's blocked signals; these two must get through.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGUSR1, signal.SIGTERM])
        target = int(sys.argv[1])
        flows = []

        async def pump(reader, writer, flow):
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    if flow["silent"]:
                        continue
                    writer.write(data)
                    await writer.drain()
            except Exception:
                pass
            if not flow["silent"]:
                writer.close()

        async def handle(client_reader, client_writer):
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
            flow = {"silent": False}
            flows.append(flow)
            await asyncio.gather(pump(client_reader, server_writer, flow), pump(server_reader, client_writer, flow))

        def silence():
            for flow in flows:
                flow["silent"] = True
            print("silent", flush=True)

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, silence)
            print(server.sockets[0].getsockname()[1], flush=True)
            await asyncio.Event().wait()

        asyncio.run(main())
        """

    /// Starts a proxy in front of `targetPort` on 127.0.0.1.
    init(targetPort: Int) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", Self.program, "\(targetPort)"]
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        let line = output.fileHandleForReading.availableLine()
        guard let port = Int(line) else {
            process.terminate()
            throw ProxyError(message: "the proxy did not start: \(line.debugDescription)")
        }
        self.port = port
    }

    var endpoint: String { "tcp://127.0.0.1:\(port)" }

    /// Every connection open now goes silent; returns once the proxy says so.
    func silence() throws {
        kill(process.processIdentifier, SIGUSR1)
        let line = output.fileHandleForReading.availableLine()
        guard line == "silent" else { throw ProxyError(message: "the proxy did not go silent: \(line.debugDescription)") }
    }

    /// SIGTERM, then SIGKILL after 5 s; polls rather than `waitUntilExit`, which can spin on Linux.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for attempt in 0..<300 where process.isRunning {
            if attempt == 250 { kill(process.processIdentifier, SIGKILL) }
            usleep(20_000)
        }
    }

    deinit { stop() }

    struct ProxyError: Error { var message: String }
}

private extension FileHandle {
    /// The first line written, without its newline (empty at end of file).
    func availableLine() -> String {
        var bytes: [UInt8] = []
        while true {
            let chunk = readData(ofLength: 1)
            guard let byte = chunk.first, byte != UInt8(ascii: "\n") else { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

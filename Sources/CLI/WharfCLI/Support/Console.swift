import Foundation

/// Writes the CLI's output with one `write` per call, unbuffered, so progress shows as it
/// happens even when stdout is a pipe, and so stdout and stderr lines never interleave mid-line.
enum Console {
    /// Writes a line to stdout.
    static func out(_ line: String) {
        write(Data((line + "\n").utf8), to: .standardOutput)
    }

    /// Writes a line to stderr.
    static func err(_ line: String) {
        write(Data((line + "\n").utf8), to: .standardError)
    }

    /// Writes bytes as they are to stdout (the server's JSON, a job's log).
    static func raw(_ data: Data) {
        write(data, to: .standardOutput)
    }

    /// Writes the server's JSON body, ending it with a newline.
    static func json(_ data: Data) {
        var data = data
        if data.last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
        write(data, to: .standardOutput)
    }

    /// Writes a small JSON object the CLI makes itself, for commands whose server answer has no body.
    static func jsonObject(_ object: [String: String]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        json(try encoder.encode(object))
    }

    private static func write(_ data: Data, to handle: FileHandle) {
        guard !data.isEmpty else { return }
        try? handle.write(contentsOf: data)
    }
}

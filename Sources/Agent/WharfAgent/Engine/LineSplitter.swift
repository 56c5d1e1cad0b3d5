/// Splits a byte stream into display lines: capped in length, without ANSI escapes or carriage returns.
///
/// Compose v2 draws progress with escape sequences and `\r`; a job log wants plain lines.
struct LineSplitter {
    /// The longest line kept, in bytes; the rest of a longer line is replaced by " …".
    static let defaultMaxLineBytes = 4096

    private let maxLineBytes: Int
    private var current: [UInt8] = []
    private var overflowed = false
    private var escape = EscapeState.none

    private enum EscapeState { case none, started, csi, osc }

    init(maxLineBytes: Int = LineSplitter.defaultMaxLineBytes) {
        self.maxLineBytes = maxLineBytes
    }

    /// Feeds bytes; calls `emit` for every complete line.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, emit: (String) -> Void) {
        for byte in bytes {
            switch escape {
            case .started:
                // ESC [ starts a control sequence, ESC ] an operating system command;
                // any other byte ends a two-byte escape.
                escape = byte == 0x5B ? .csi : (byte == 0x5D ? .osc : .none)
                continue
            case .csi:
                if (0x40...0x7E).contains(byte) { escape = .none }
                continue
            case .osc:
                if byte == 0x07 { escape = .none }
                if byte == 0x1B { escape = .started }
                continue
            case .none:
                break
            }
            switch byte {
            case 0x1B:
                escape = .started
            case 0x0A:
                flush(emit)
            case 0x0D:
                continue
            default:
                if current.count < maxLineBytes {
                    current.append(byte)
                } else {
                    overflowed = true
                }
            }
        }
    }

    /// Emits what is left after the stream ended without a final newline.
    mutating func finish(emit: (String) -> Void) {
        if !current.isEmpty || overflowed { flush(emit) }
    }

    private mutating func flush(_ emit: (String) -> Void) {
        var line = String(decoding: current, as: UTF8.self)
        if overflowed { line += " …" }
        current.removeAll(keepingCapacity: true)
        overflowed = false
        emit(line)
    }
}

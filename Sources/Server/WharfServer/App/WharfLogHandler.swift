#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Writes what `StreamLogHandler` writes (standard error, the same line format), but formats a
/// logger's metadata when a line is written instead of each time an entry is set.
///
/// `StreamLogHandler` formats the whole metadata whenever it changes; Hummingbird sets a request id
/// on every request's logger, so every webhook call paid for formatting a line that is rarely
/// written (about 4 % of a hot call's CPU in a profile). `wharf-server` bootstraps with this.
public struct WharfLogHandler: LogHandler {
    private var stream: StreamLogHandler
    public var metadata: Logger.Metadata = [:]

    /// Sets `TZ` to `:/etc/localtime` when it is unset; call it first thing, before threads read the
    /// environment. Lines keep the machine's local time, but glibc reads the zone file once instead
    /// of `stat`-ing `/etc/localtime` for every line it timestamps (what it does while `TZ` is unset).
    public static func pinLocalTimeZone() {
        if getenv("TZ") == nil { setenv("TZ", ":/etc/localtime", 0) }
    }

    public init(label: String) {
        stream = StreamLogHandler.standardError(label: label)
    }

    /// Writes to `output` instead of standard error.
    init(label: String, output: any TextOutputStream & Sendable) {
        stream = StreamLogHandler(label: label, stream: output, metadataProvider: nil)
    }

    public var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            // The entry's own metadata wins over the logger's (wharf-server sets no metadata provider).
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        stream.log(event: event)
    }
}

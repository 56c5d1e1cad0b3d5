import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's basics plus the client's address.
public struct WharfRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The contract's body limit: 1 MiB.
    public var maxUploadSize: Int { 1 << 20 }

    /// The client's IP address as text, for the job record and rate limits.
    public var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}

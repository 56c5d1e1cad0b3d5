import Foundation
import Synchronization

/// Addresses the server publishes, some of them known only once its listeners are bound.
public final class ServerSettings: Sendable {
    private let configuration: ServerConfiguration
    private let boundHTTP = Mutex<String?>(nil)
    /// The endpoint the ROUTER really bound.
    public let zmqEndpoint: String
    /// The server's CURVE public key (Z85), given to enrolling agents.
    public let serverPublicKey: String

    init(configuration: ServerConfiguration, zmqEndpoint: String, serverPublicKey: String) {
        self.configuration = configuration
        self.zmqEndpoint = zmqEndpoint
        self.serverPublicKey = serverPublicKey
    }

    func setHTTP(_ url: String) { boundHTTP.withLock { $0 = url } }

    /// The base URL webhook URLs are built on, without a trailing slash.
    public var publicURL: String {
        let url = configuration.publicURL ?? boundHTTP.withLock { $0 } ?? "http://127.0.0.1:\(configuration.httpPort)"
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    /// The endpoint agents should connect to.
    public var agentEndpoint: String {
        if let configured = configuration.zmqPublicEndpoint { return configured }
        // A wildcard bind is reachable at the public URL's host.
        if zmqEndpoint.hasPrefix("tcp://0.0.0.0:"), let host = URL(string: publicURL)?.host {
            return "tcp://\(host):" + zmqEndpoint.split(separator: ":").last!
        }
        return zmqEndpoint
    }
}

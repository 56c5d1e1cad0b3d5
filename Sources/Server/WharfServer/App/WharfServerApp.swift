import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import WharfProtocol
import ZeroMQ

/// Builds and runs `wharf-server`: the store, the link to agents and the HTTP API, under one service group.
public struct WharfServerApp: Sendable {
    public let configuration: ServerConfiguration
    public let logger: Logger

    /// Makes the app.
    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until SIGTERM or SIGINT: then stops accepting, finishes in-flight requests and exits.
    /// Queued jobs are on disk and go out when the server next runs.
    public func run() async throws {
        MemoryTrim.keepFreedPages()
        let directory = try ServerDataDirectory(url: configuration.dataDirectory)
        let store = try SQLiteStore(path: directory.databasePath)
        let serverKeys = try directory.serverKeys()
        let adminToken = try directory.adminToken()
        logger.info("admin token", metadata: ["path": "\(directory.adminTokenURL.path)"])
        let keys = AgentKeyRegistry(keys: try await store.agentKeys().mapValues(\.environmentId))
        let context = try ZMQContext(maxSockets: 65_536)
        let dispatcher = try Dispatcher(
            store: store, keys: keys, context: context, serverKeys: serverKeys, bind: configuration.zmqBind,
            logger: logger
        )
        logger.info("agent link listening", metadata: ["endpoint": "\(dispatcher.endpoint)"])
        let settings = ServerSettings(configuration: configuration, zmqEndpoint: dispatcher.endpoint, serverPublicKey: serverKeys.publicKey.z85)
        let api = API(store: store, dispatcher: dispatcher, keys: keys, settings: settings, adminToken: adminToken, logger: logger, metrics: WharfMetrics(),
                      webhookRateLimit: configuration.webhookRateLimit)
        let serverName = "wharf"
        let app = Application(
            responder: api.makeResponder(),
            server: api.makeHTTPServer(serverName: serverName),
            configuration: .init(address: .hostname(configuration.httpHost, port: configuration.httpPort), serverName: serverName),
            services: [DispatcherService(dispatcher: dispatcher),
                       Housekeeping(store: store, dispatcher: dispatcher,
                                    settings: .init(jobRetention: configuration.jobRetention, agentLostAfter: configuration.agentLostAfter),
                                    logger: logger)],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.httpPort
                let host = configuration.httpHost == "0.0.0.0" ? "127.0.0.1" : configuration.httpHost
                let http = "http://\(host):\(port)"
                settings.setHTTP(http)
                do {
                    try directory.writeEndpoints(http: http, zmq: dispatcher.endpoint)
                } catch {
                    logger.error("could not write endpoints.json", metadata: ["error": "\(error)"])
                }
                logger.info("HTTP API listening", metadata: ["url": "\(http)", "public.url": "\(settings.publicURL)"])
            },
            logger: logger
        )
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        do {
            try await store.writeJoinCounts()
        } catch {
            logger.warning("could not write the counts of calls that joined queued jobs", metadata: ["error": "\(error)"])
        }
        logger.info("stopped; queued jobs stay on disk")
    }
}

/// Runs the dispatcher as a service that stops on graceful shutdown.
struct DispatcherService: Service {
    let dispatcher: Dispatcher

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await dispatcher.run()
        }
        await dispatcher.shutdown()
    }
}

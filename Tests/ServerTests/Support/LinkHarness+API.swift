import Foundation
import Logging
@testable import WharfServer

extension LinkHarness {
    /// The real API on this harness's store and dispatcher, as `wharf-server` builds it.
    ///
    /// - Parameters:
    ///   - limiters: the webhook calls' rate limits; nil lifts them.
    ///   - logLevel: above `debug` the API has its webhook lane (`API.makeWebhookLane`).
    func makeAPI(publicURL: String, adminToken: String = "admin-token", limiters: WebhookLimiters? = nil,
                 label: String, logLevel: Logger.Level = .info) -> API {
        var configuration = ServerConfiguration(dataDirectory: directory)
        configuration.publicURL = publicURL
        configuration.webhookRateLimit = nil
        let settings = ServerSettings(configuration: configuration, zmqEndpoint: dispatcher.endpoint,
                                      serverPublicKey: serverKeys.publicKey.z85)
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return API(store: store, dispatcher: dispatcher, keys: keys, settings: settings,
                   adminToken: adminToken, logger: logger, metrics: WharfMetrics(), webhookLimiters: limiters)
    }
}

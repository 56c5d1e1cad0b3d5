import Prometheus

/// The server's Prometheus metrics: webhook calls by outcome, jobs by state, connected agents.
///
/// One registry per server (not the global MetricsSystem), so several servers can live in one
/// test process. Labels come from small fixed sets.
public final class WharfMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    /// The outcomes a webhook call is counted under.
    public static let webhookOutcomes = ["accepted", "coalesced", "ignored", "not_found", "bad_request",
                                         "rate_limited", "too_large", "failed"]

    private let webhookCalls: [String: Counter]
    private let jobs: [String: Gauge]
    private let agents: Gauge
    private let environments: Gauge

    /// Makes the metrics with every label set present from the start (zeroes, not gaps).
    public init() {
        var calls: [String: Counter] = [:]
        for outcome in Self.webhookOutcomes {
            calls[outcome] = registry.makeCounter(descriptor: Self.name("webhook_calls", unit: "total", "Webhook calls by outcome."),
                                                  labels: [("outcome", outcome)])
        }
        webhookCalls = calls
        var jobs: [String: Gauge] = [:]
        for state in JobState.allCases {
            jobs[state.rawValue] = registry.makeGauge(descriptor: Self.name("jobs", "Jobs in the store by state."),
                                                      labels: [("state", state.rawValue)])
        }
        self.jobs = jobs
        agents = registry.makeGauge(descriptor: Self.name("agents_connected", "Agents connected now."))
        environments = registry.makeGauge(descriptor: Self.name("environments", "Environments in the store."))
    }

    private static func name(_ metric: String, unit: String = "", _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "wharf", metricName: metric, unitName: unit, helpText: help)
    }

    /// Counts one webhook call.
    public func webhookCall(_ outcome: String) {
        (webhookCalls[outcome] ?? webhookCalls["failed"])?.increment()
    }

    /// Sets the gauges read from the store and the dispatcher, then renders the text format.
    func render(jobCounts: [JobState: Int], connectedAgents: Int, environmentCount: Int) -> [UInt8] {
        for state in JobState.allCases { jobs[state.rawValue]?.set(Double(jobCounts[state] ?? 0)) }
        agents.set(Double(connectedAgents))
        environments.set(Double(environmentCount))
        return registry.emitToBuffer()
    }
}

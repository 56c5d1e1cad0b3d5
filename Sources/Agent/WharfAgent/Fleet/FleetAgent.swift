import WharfProtocol

/// The link protocol of one simulated agent, without sockets: what it sends in answer to what.
///
/// It speaks as `AgentRuntime` does — hello on connect and on `hello_required`, an ack for every
/// job — but runs nothing: right after the ack it sends a `succeeded` result with the planned
/// images. Results are kept until `result_ack` and sent again after `resultResendInterval`.
struct FleetAgent {
    /// When the fleet saw one job, in seconds since 1970 (the clock other processes can compare).
    struct JobTimes {
        var jobId: String
        var received: Double
        var resultSent: Double
        var resultAcked: Double = 0
        var resultWentOut = false
    }

    /// What one incoming message led to.
    struct Reaction {
        var replies: [AgentMessage] = []
        /// The server welcomed this agent (again).
        var welcomed = false
        /// The server forgot this agent's session and wants a hello.
        var unwelcomed = false
        /// Send a hello now.
        var sendHello = false
        /// A job's result was acknowledged: its timings are complete.
        var finished: JobTimes?
        /// A job arrived for the first time.
        var newJob = false
        var error: String?
    }

    let index: Int
    let name: String
    let environmentId: String
    var welcomed = false
    private var pending: [String: (result: JobResult, sentAt: Double)] = [:]
    private var times: [String: JobTimes] = [:]
    /// Jobs whose result the server acknowledged lately: sent again (the server's resend timer fired
    /// while its acknowledgement was on the way), they are answered again but not counted again.
    private var acknowledged: Set<String> = []
    private var acknowledgedOrder: [String] = []
    private static let acknowledgedMemory = 256

    init(index: Int, name: String, environmentId: String) {
        self.index = index
        self.name = name
        self.environmentId = environmentId
    }

    /// The hello for a new connection or a server that asked for one: it carries unacknowledged results.
    func hello(hostname: String, version: String) -> AgentMessage {
        .hello(AgentHello(agentVersion: version, hostname: hostname, dockerVersion: "simulated", composeFlavour: "plugin",
                          composeVersion: "simulated", edge: false, holding: [],
                          results: pending.values.map(\.result).sorted { $0.jobId < $1.jobId }))
    }

    /// Handles one server message at `now` (seconds since 1970).
    mutating func receive(_ message: ServerMessage, now: Double) -> Reaction {
        var reaction = Reaction()
        switch message {
        case .welcome:
            reaction.welcomed = !welcomed
            welcomed = true
            for id in pending.keys { pending[id]?.sentAt = now }
        case .helloRequired:
            reaction.unwelcomed = welcomed
            welcomed = false
            reaction.sendHello = true
        case .pong, .cancel:
            break
        case .job(let spec):
            if let held = pending[spec.id] {
                // Already answered and not yet acknowledged: the result goes again, the job does not run again.
                reaction.replies = [.ack(jobId: spec.id), .result(held.result)]
                pending[spec.id]?.sentAt = now
                break
            }
            let result = JobResult(
                jobId: spec.id, state: .succeeded,
                services: spec.images.keys.sorted().map {
                    ServiceResult(name: $0, image: spec.images[$0]!, imageId: "sha256:simulated", containers: spec.kind == .remove ? 0 : 1)
                })
            reaction.replies = [.ack(jobId: spec.id), .result(result)]
            pending[spec.id] = (result, now)
            if times[spec.id] == nil, !acknowledged.contains(spec.id) {
                reaction.newJob = true
                times[spec.id] = JobTimes(jobId: spec.id, received: now, resultSent: now)
            }
        case .resultAck(let id):
            pending[id] = nil
            if var entry = times.removeValue(forKey: id) {
                entry.resultAcked = now
                reaction.finished = entry
                if acknowledged.insert(id).inserted {
                    acknowledgedOrder.append(id)
                    if acknowledgedOrder.count > Self.acknowledgedMemory { acknowledged.remove(acknowledgedOrder.removeFirst()) }
                }
            }
        case .error(let code, let text):
            reaction.error = "\(code): \(text)"
        }
        return reaction
    }

    /// Marks the result of `jobId` as sent at `now` (the fleet calls this once the first send went out;
    /// later resends do not move it).
    mutating func resultSent(_ jobId: String, at now: Double) {
        if let entry = times[jobId], !entry.resultWentOut {
            times[jobId]!.resultSent = now
            times[jobId]!.resultWentOut = true
        }
    }

    /// Results due to be sent again at `now`.
    mutating func dueResults(now: Double, after interval: Double) -> [JobResult] {
        var due: [JobResult] = []
        for (id, entry) in pending where now - entry.sentAt >= interval {
            pending[id]?.sentAt = now
            due.append(entry.result)
        }
        return due
    }

    var owesResults: Bool { !pending.isEmpty }
}

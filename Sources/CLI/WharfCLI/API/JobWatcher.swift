import Foundation

/// Follows a job until it ends by polling it and its log, reporting each state change and only
/// the log text not shown before.
struct JobWatcher {
    var feed: any JobFeed
    /// How often to ask; the issue asks for about 300 ms.
    var interval: Duration = .milliseconds(300)
    /// When to give up waiting (the job goes on on the server); nil waits for ever.
    var timeout: Duration?
    /// Called with the job each time its state changes, the first time with its state when watching began.
    var onState: (JobInfo) -> Void = { _ in }
    /// Called with log text not passed before.
    var onLog: (String) -> Void = { _ in }
    /// Called when the server cannot be asked for a while (`isPassing`), once per outage.
    var onLostContact: (CLIError) -> Void = { _ in }
    /// How long to keep asking a server that cannot be reached when there is no `timeout`.
    var retryFor: Duration = .seconds(120)

    /// The exit status when the watch ends with the job not final: EX_TEMPFAIL, so that a script
    /// tells "still running, or the server away for now" from a deploy that failed (1).
    static let notFinalExitStatus: Int32 = 75

    /// A failure that may pass: the server restarting, or a proxy in front of it answering for it.
    static func isPassing(_ error: CLIError) -> Bool {
        error.code == "unreachable" || error.code == "degraded" || ["http_502", "http_503", "http_504"].contains(error.code)
    }

    /// Polls until the job is final; returns it and its JSON. A server that cannot be reached for a
    /// while is asked again, at longer intervals, until the timeout (or `retryFor`) ends the watch.
    func watch(_ jobId: String) async throws -> (JobInfo, Data) {
        let clock = ContinuousClock()
        let start = clock.now
        var lastState: String?
        var shown = 0
        var lostSince: ContinuousClock.Instant?
        var pause = interval
        while true {
            let job: JobInfo, data: Data, text: String
            do {
                (job, data) = try await feed.job(id: jobId)
                text = try await feed.log(id: jobId)
            } catch let error as CLIError where Self.isPassing(error) {
                let now = clock.now
                if lostSince == nil {
                    lostSince = now
                    onLostContact(error)
                }
                let givingUp = timeout.map { now - start >= $0 } ?? (now - lostSince! >= retryFor)
                if givingUp {
                    throw CLIError(code: "unreachable", message: "\(error.message); stopped waiting for job \(jobId), which goes on on the server: "
                                   + "`wharf jobs logs \(jobId) --follow` follows it", exitCode: Self.notFinalExitStatus)
                }
                pause = min(pause * 2, .seconds(5))
                try await Task.sleep(for: pause)
                continue
            }
            lostSince = nil
            pause = interval
            let log = Array(text.utf8)
            // A log that shrank (it never should) is shown again from the start.
            if log.count < shown { shown = 0 }
            let fresh = log.count > shown ? String(decoding: log[shown...], as: UTF8.self) : ""
            shown = log.count
            let changed = job.state != lastState
            lastState = job.state
            // A new running state comes before the lines it produced; a final state after them.
            if changed, !job.isFinal { onState(job) }
            if !fresh.isEmpty { onLog(fresh) }
            if changed, job.isFinal { onState(job) }
            if job.isFinal { return (job, data) }
            if let timeout, clock.now - start >= timeout {
                throw CLIError(code: "timeout", message: "job \(jobId) is still \(job.state) after \(DurationParser.format(timeout)); "
                               + "it goes on on the server: `wharf jobs logs \(jobId) --follow` follows it", exitCode: Self.notFinalExitStatus)
            }
            try await Task.sleep(for: interval)
        }
    }

    /// Throws the job's error when it did not succeed.
    static func requireSuccess(_ job: JobInfo) throws {
        guard job.state != "succeeded" else { return }
        let what = job.state == "rolled_back" ? "was rolled back" : job.state == "failed" ? "failed" : "ended \(job.state)"
        let reason = job.error?.message ?? "the agent gave no reason"
        throw CLIError(code: job.error?.code ?? job.state, message: "\(job.kind) job \(job.id) \(what): \(reason)")
    }
}

/// Prints a watched job's progress for people: state changes and indented log lines.
struct ProgressPrinter {
    /// Progress goes to stderr when stdout is kept for JSON.
    var toStandardError: Bool
    /// When the command began waiting: the API's times have whole seconds only, too coarse for fast jobs.
    let started = ContinuousClock.now

    func line(_ text: String) {
        if toStandardError { Console.err(text) } else { Console.out(text) }
    }

    func state(_ job: JobInfo) {
        var text = "job \(job.id): \(job.state.replacingOccurrences(of: "_", with: " "))"
        if job.isFinal { text += " (waited \(DurationParser.format(ContinuousClock.now - started)))" }
        if let coalesced = job.coalesced, coalesced > 0, !job.isFinal { text += " (\(coalesced) later request\(coalesced == 1 ? "" : "s") joined it)" }
        line(text)
    }

    func log(_ text: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        for entry in lines { line("  | " + entry) }
    }

    func watcher(feed: any JobFeed, timeout: Duration?) -> JobWatcher {
        JobWatcher(feed: feed, timeout: timeout, onState: state, onLog: log, onLostContact: lostContact)
    }

    func lostContact(_ error: CLIError) {
        // Always on stderr: a note, not the job's progress.
        Console.err("warning: \(error.message); asking again")
    }
}

import Foundation
import Hummingbird
import WharfProtocol

extension API {
    struct WebhookURL: Encodable, Sendable { var url: String }
    struct Accepted: Encodable, Sendable { var job: Job; var statusUrl: String }
    struct Ignored: Encodable, Sendable { var ignored: String }

    /// Adds the webhook routes; returns the public call's handler, which `WharfResponder` also
    /// reaches without the router.
    func addWebhookRoutes(to router: Router<WharfRequestContext>) -> @Sendable (Request, WharfRequestContext) async throws -> Response {
        let limiters = webhookLimiters

        /// A new token for the stack (201); with `keepExisting`, a stack that has one answers it (200).
        @Sendable func enable(_ stackId: String, keepExisting: Bool) async throws -> JSONBody<WebhookURL> {
            let token = WebhookToken.generate().rawValue
            do {
                let (stack, changed) = try await store.setWebhookToken(stackId: stackId, token: token, keepExisting: keepExisting,
                                                                       publicURL: settings.publicURL)
                return JSONBody(WebhookURL(url: stack.webhook!.url), status: changed ? .created : .ok)
            } catch let error as StoreError where error.code == "edge_environment" {
                throw APIError.edgeEnvironment
            } catch {
                throw Self.apiError(error)
            }
        }
        // Enabling is idempotent: the URL already pasted into a registry or CI job keeps working
        // (a new one is what `rotate` is for).
        router.post("/api/stacks/{id}/webhook") { _, context in try await enable(try context.parameters.require("id"), keepExisting: true) }
        router.post("/api/stacks/{id}/webhook/rotate") { _, context in
            let id = try context.parameters.require("id")
            let stack = try await mapped { try await store.stack(id: id, publicURL: settings.publicURL) }
            guard stack.webhook != nil else {
                // An edge stack never has one: say why, as enabling would.
                if try await mapped({ try await store.environment(id: stack.environmentId) }).type == .edge { throw APIError.edgeEnvironment }
                throw APIError(status: .notFound, code: "not_found", message: "This stack has no webhook to rotate; enable one first.")
            }
            return try await enable(id, keepExisting: false)
        }
        router.delete("/api/stacks/{id}/webhook") { _, context in
            let id = try context.parameters.require("id")
            _ = try await mapped { try await store.setWebhookToken(stackId: id, token: nil, publicURL: settings.publicURL) }
            return Response(status: .noContent)
        }
        @Sendable func call(_ request: Request, _ context: WharfRequestContext) async throws -> Response {
            do {
                let (response, outcome) = try await trigger(request, context)
                metrics.webhookCall(outcome)
                return response
            } catch let error as APIError {
                switch error.status {
                case .notFound: metrics.webhookCall("not_found")
                case .badRequest: metrics.webhookCall("bad_request")
                case .tooManyRequests: metrics.webhookCall("rate_limited")
                case .contentTooLarge: metrics.webhookCall("too_large")
                default: metrics.webhookCall("failed")
                }
                throw error
            } catch {
                metrics.webhookCall("failed")
                throw error
            }
        }
        router.post("/api/stacks/webhooks/{token}", use: call)

        /// The public trigger; returns the response and the outcome it is counted under.
        @Sendable func trigger(_ request: Request, _ context: WharfRequestContext) async throws -> (Response, String) {
            let raw = try context.parameters.require("token")
            if let limiters, case .limited(let retryAfter) = limiters.address.acquire(context.clientAddress) {
                throw APIError.rateLimited(retryAfter: retryAfter)
            }
            // Unknown, disabled and rotated tokens all get the same 404.
            guard let token = WebhookToken(raw),
                  let (stack, pins) = try await mapped({ try await store.stack(webhookToken: token.rawValue, publicURL: settings.publicURL) }) else {
                throw APIError.notFound
            }
            if let limiters, case .limited(let retryAfter) = limiters.token.acquire(token.rawValue) {
                throw APIError.rateLimited(retryAfter: retryAfter)
            }
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            var trigger = try WebhookTrigger.parse(request: request, body: body)
            if trigger.source == .registry, !trigger.eventIds.isEmpty {
                // Events this stack has had are not run again, also when they come with new ones.
                let received = try await mapped { try await store.receivedRegistryEvents(stackId: stack.id, ids: trigger.eventIds) }
                trigger.leaveOut(received: received)
            }
            // A new job whose agent is connected and whose stack is idle is claimed as it is queued.
            // A registry's event ids are recorded for this stack with the job (`JobRequest.eventIds`);
            // the job's transaction refuses ids another delivery recorded since the read above, and
            // the call is planned again without them (each turn leaves out at least one event).
            let enqueued: Enqueued
            while true {
                let jobRequest: JobRequest
                switch try Self.prepare(trigger, stack: stack, pins: pins, remoteAddr: context.clientAddress, userAgent: request.headers[.userAgent]) {
                case .ignored(let reason):
                    return (try JSONBody(Ignored(ignored: reason)).response(from: request, context: context), "ignored")
                case .deploy(let prepared):
                    jobRequest = prepared
                }
                do {
                    enqueued = try await store.enqueueJob(stackId: stack.id, request: jobRequest, claimingFor: dispatcher.connectedAgents)
                } catch let error as StoreError where error == .eventAlreadyReceived {
                    return (try JSONBody(Ignored(ignored: "event already received")).response(from: request, context: context), "ignored")
                } catch let raced as RegistryEventsRaced {
                    trigger.leaveOut(received: raced.ids)
                    continue
                } catch {
                    throw Self.apiError(error)
                }
                break
            }
            let job = enqueued.job
            // A call that joined a queued job is in that job's `coalesced` count; only new jobs make a line at info.
            context.logger.log(level: job.coalesced > 0 ? .debug : .info, "webhook accepted", metadata: [
                "stack.id": "\(stack.id)", "job.id": "\(job.id)", "source": "\(trigger.source.rawValue)", "coalesced": "\(job.coalesced)"])
            // A joined job was queued, and its environment marked, by the call that made it: a join
            // makes nothing new dispatchable, so it does not wake the dispatcher for an empty round.
            dispatcher.handOver(enqueued, environmentId: stack.environmentId)
            let statusURL = "/api/jobs/\(job.id)"
            let outcome = job.coalesced > 0 ? "coalesced" : "accepted"
            if let wait = trigger.wait, wait > 0 {
                let ended = try await dispatcher.waitForFinish(jobId: job.id, timeout: .seconds(wait))
                switch ended.state {
                case .succeeded: return (try JSONBody(Accepted(job: ended, statusUrl: statusURL)).response(from: request, context: context), outcome)
                case .failed, .rolledBack:
                    return (try JSONBody(Accepted(job: ended, statusUrl: statusURL), status: .internalServerError).response(from: request, context: context), outcome)
                default: break
                }
            }
            return (Response.json(JobJSON.accepted(job, statusURL: statusURL), status: .accepted, headers: [.location: statusURL]), outcome)
        }
        return call
    }

    /// Takes a webhook call without a body where it was read (`WebhookLane`): the same token,
    /// limits, trigger, plan, job and count as `trigger`, without a task or the router.
    /// - A call that joins its stack's queued deploy in memory is answered at once (`.accepted`).
    /// - One that needs the store's writer (a new job, or a change to the queued one) goes to the
    ///   next group commit (`.later`). Once that has committed, the job is handed to the
    ///   dispatcher on the writer's thread, and `later` gets what logs, counts and makes the 202,
    ///   which the lane runs on the event loop. If the store failed the call, `later` gets nil and
    ///   the router takes the call as it came: nothing of it was written, so it runs it again and
    ///   answers the error (or a 202, if the failure has passed).
    /// - `.passOn` leaves a call to the router now: a token not in the cache, a bad query, `wait`,
    ///   registry event ids, an ignored call, a limit reached.
    ///
    /// The limits' tokens taken here are given back whenever the router is to answer. A join is
    /// logged at debug only, so a server logging at debug or below answers every call through
    /// `trigger` (`makeWebhookLane`). The lane's log lines have no request id.
    func takeOnLane(token raw: Substring, query: Substring?, headers: HTTPFields, clientAddress: String,
                    later: @escaping WebhookLane.Later) -> WebhookLane.Take {
        guard let token = WebhookToken(raw),
              let (stack, pins) = store.cachedStack(webhookToken: token.rawValue, publicURL: settings.publicURL),
              let trigger = try? WebhookTrigger.parse(query: WebhookTrigger.decodeQuery(query.map(String.init)),
                                                     contentType: headers[.contentType], body: [UInt8](),
                                                     userAgent: headers[.userAgent]),
              (trigger.wait ?? 0) <= 0, trigger.eventIds.isEmpty,
              case .deploy(let request)? = try? Self.prepare(trigger, stack: stack, pins: pins, remoteAddr: clientAddress,
                                                            userAgent: headers[.userAgent])
        else { return .passOn }
        let limiters = webhookLimiters
        if let limiters {
            guard case .allowed = limiters.address.acquire(clientAddress) else { return .passOn }
            guard case .allowed = limiters.token.acquire(token.rawValue) else {
                limiters.address.refund(clientAddress)
                return .passOn
            }
        }
        // As `trigger` after a join: counted, not logged above debug, nothing handed to the dispatcher.
        if let job = store.joinQueuedDeploy(stackId: stack.id, request: request) {
            metrics.webhookCall("coalesced")
            return .accepted(Self.accepted(job))
        }
        let (logger, metrics, dispatcher) = (self.logger, self.metrics, self.dispatcher)
        let (stackId, environmentId, source) = (stack.id, stack.environmentId, trigger.source.rawValue)
        store.enqueueJob(stackId: stackId, request: request, claimingFor: dispatcher.connectedAgents) { outcome in
            guard case .success(let enqueued) = outcome else {
                if let limiters {
                    limiters.address.refund(clientAddress)
                    limiters.token.refund(token.rawValue)
                }
                return later(nil)
            }
            // As `trigger` after the store: the job handed to the dispatcher at once; logged,
            // counted and answered on the event loop.
            dispatcher.handOver(enqueued, environmentId: environmentId)
            let job = enqueued.job
            later {
                logger.log(level: job.coalesced > 0 ? .debug : .info, "webhook accepted", metadata: [
                    "stack.id": "\(stackId)", "job.id": "\(job.id)", "source": "\(source)", "coalesced": "\(job.coalesced)"])
                metrics.webhookCall(job.coalesced > 0 ? "coalesced" : "accepted")
                return Self.accepted(job)
            }
        }
        return .later
    }

    /// A webhook call's 202 for `job`: its JSON and its status URL.
    static func accepted(_ job: Job) -> WebhookLane.Accepted {
        let statusURL = "/api/jobs/\(job.id)"
        return WebhookLane.Accepted(body: JobJSON.accepted(job, statusURL: statusURL), location: statusURL)
    }

    /// What a webhook call asks for, worked out from its stack and the call alone (no store read
    /// or write): the job request, or why the call is ignored.
    enum Prepared {
        case ignored(String)
        case deploy(JobRequest)
    }

    static func prepare(_ trigger: WebhookTrigger, stack: Stack, pins: [String: String], remoteAddr: String,
                        userAgent: String?) throws -> Prepared {
        if let reason = trigger.ignored { return .ignored(reason) }
        let deploy = try plan(for: stack, variables: trigger.variables, pins: pins)
        var images = deploy.images
        // Only the services a tag or a push names: behind a deploy that is still open, the store
        // plans the variables again on that deploy's env (`JobRequest.apply(to:env:compose:)`).
        var targeted = Set<String>()
        if !trigger.targets.isEmpty {
            var matched = false
            for target in trigger.targets {
                for service in deploy.resolved.services where target.repository.matches(image: service.image) {
                    images[service.name] = try retag(service, target.tag)
                    targeted.insert(service.name)
                    matched = true
                }
            }
            if !matched {
                return .ignored("no service of this stack uses \(trigger.targets.map(\.description).joined(separator: ", "))")
            }
        } else if let tag = trigger.tag {
            for service in deploy.resolved.services {
                images[service.name] = try retag(service, tag)
                targeted.insert(service.name)
            }
        }
        // A registry's event ids, recorded for the stack with its job: "a repeated event `id` is not run twice".
        let eventIds = trigger.source == .registry ? trigger.eventIds : []
        var params = trigger.variables
        if let tag = trigger.tag { params["tag"] = tag }
        if !trigger.pull { params["pullimage"] = "false" }
        if !trigger.targets.isEmpty {
            params["image"] = trigger.targets.map { "\($0.repository):\($0.tag)" }.joined(separator: ", ")
        }
        return .deploy(JobRequest(
            kind: .deploy, variables: trigger.variables,
            plan: images.keys.sorted().map { PlannedService(name: $0, image: images[$0]!) },
            targeted: targeted, pull: trigger.pull,
            trigger: JobTrigger(source: trigger.source.rawValue, remoteAddr: remoteAddr, userAgent: userAgent, params: params),
            eventIds: eventIds))
    }

    static func retag(_ service: ResolvedService, _ tag: String) throws -> String {
        do {
            return try ComposeFile.plan(services: [service], tag: tag, repository: nil)[0].image
        } catch {
            throw APIError(status: .badRequest, code: "invalid_tag", message: error.message)
        }
    }
}

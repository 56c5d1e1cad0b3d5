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
        let limiters = webhookRateLimit.map { rate in
            (token: RateLimiter(.init(rate: rate, burst: max(1, Int(rate * 2)))),
             address: RateLimiter(.init(rate: rate * 2.5, burst: max(1, Int(rate * 5)))))
        }

        @Sendable func enable(_ stackId: String) async throws -> JSONBody<WebhookURL> {
            let token = WebhookToken.generate().rawValue
            do {
                let stack = try await store.setWebhookToken(stackId: stackId, token: token, publicURL: settings.publicURL)
                return JSONBody(WebhookURL(url: stack.webhook!.url), status: .created)
            } catch let error as StoreError where error.code == "edge_environment" {
                throw APIError.edgeEnvironment
            } catch {
                throw Self.apiError(error)
            }
        }
        router.post("/api/stacks/{id}/webhook") { _, context in try await enable(try context.parameters.require("id")) }
        router.post("/api/stacks/{id}/webhook/rotate") { _, context in
            let id = try context.parameters.require("id")
            let stack = try await mapped { try await store.stack(id: id, publicURL: settings.publicURL) }
            guard stack.webhook != nil else {
                throw APIError(status: .notFound, code: "not_found", message: "This stack has no webhook to rotate; enable one first.")
            }
            return try await enable(id)
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
            let trigger = try WebhookTrigger.parse(request: request, body: body)
            if let reason = trigger.ignored {
                return (try JSONBody(Ignored(ignored: reason)).response(from: request, context: context), "ignored")
            }
            let deploy = try await plan(for: stack, variables: trigger.variables, pins: pins)
            var images = deploy.images
            var targeted = deploy.changed
            if !trigger.targets.isEmpty {
                var matched = false
                for target in trigger.targets {
                    for service in deploy.resolved.services where target.repository.matches(image: service.image) {
                        images[service.name] = try Self.retag(service, target.tag)
                        targeted.insert(service.name)
                        matched = true
                    }
                }
                if !matched {
                    return (try JSONBody(Ignored(ignored: "no service of this stack uses \(trigger.targets.map(\.description).joined(separator: ", "))"))
                        .response(from: request, context: context), "ignored")
                }
            } else if let tag = trigger.tag {
                for service in deploy.resolved.services {
                    images[service.name] = try Self.retag(service, tag)
                    targeted.insert(service.name)
                }
            }
            if trigger.source == .registry, !trigger.eventIds.isEmpty {
                let fresh = try await mapped { try await store.recordRegistryEvents(trigger.eventIds) }
                if fresh.isEmpty {
                    return (try JSONBody(Ignored(ignored: "event already received")).response(from: request, context: context), "ignored")
                }
            }
            var params = trigger.variables
            if let tag = trigger.tag { params["tag"] = tag }
            if !trigger.pull { params["pullimage"] = "false" }
            for target in trigger.targets { params["image"] = "\(target.repository):\(target.tag)" }
            // A new job whose agent is connected and whose stack is idle is claimed as it is queued.
            let enqueued = try await mapped {
                try await store.enqueueJob(stackId: stack.id, request: JobRequest(
                    kind: .deploy, variables: trigger.variables,
                    plan: images.keys.sorted().map { PlannedService(name: $0, image: images[$0]!) },
                    targeted: targeted, pull: trigger.pull,
                    trigger: JobTrigger(source: trigger.source.rawValue, remoteAddr: context.clientAddress,
                                        userAgent: request.headers[.userAgent], params: params)),
                    claimingFor: dispatcher.connectedAgents)
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

    static func retag(_ service: ResolvedService, _ tag: String) throws -> String {
        do {
            return try ComposeFile.plan(services: [service], tag: tag, repository: nil)[0].image
        } catch {
            throw APIError(status: .badRequest, code: "invalid_tag", message: error.message)
        }
    }
}

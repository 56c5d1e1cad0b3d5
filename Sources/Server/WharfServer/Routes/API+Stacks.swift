import Foundation
import Hummingbird
import WharfProtocol

extension API {
    struct CreateStack: ClosedJSONBody {
        var name: String; var environmentId: String; var compose: String; var env: [String: String]?
        /// Seconds; nil (left out or `null`) is the default, `Stack.defaultHealthTimeout`. A number,
        /// not an `Int`, so that 1.5 or 1e20 is refused by `checkHealthTimeout` naming the field
        /// (the decoder's error for them does not say which field it is).
        var healthTimeout: Double?
        enum CodingKeys: String, CodingKey, CaseIterable { case name, environmentId, compose, env, healthTimeout }
    }
    /// A field left out (or `null`) keeps the stack's value.
    struct UpdateStack: ClosedJSONBody {
        var compose: String?; var env: [String: String]?; var healthTimeout: Double?
        enum CodingKeys: String, CodingKey, CaseIterable { case compose, env, healthTimeout }
    }
    struct Redeploy: ClosedJSONBody {
        var pullImage: Bool?
        enum CodingKeys: String, CodingKey, CaseIterable { case pullImage }
    }
    struct StackAndJob: Encodable, Sendable { var stack: Stack; var job: Job }
    struct StackBody: Encodable, Sendable { var stack: Stack }
    struct StackList: Encodable, Sendable { var stacks: [Stack] }
    struct JobOnly: Encodable, Sendable { var job: Job }
    struct Forgotten: Encodable, Sendable { var forgotten: String; var endedJobs: [String] }
    struct RenderRequest: ClosedJSONBody {
        var compose: String; var env: [String: String]?
        enum CodingKeys: String, CodingKey, CaseIterable { case compose, env }
    }
    struct RenderedService: Encodable, Sendable { var name: String; var image: String }
    struct Rendered: Encodable, Sendable { var config: String; var services: [RenderedService] }

    /// `[a-z0-9][a-z0-9_-]*`, at most 63 characters: a valid compose project name.
    static func isValidStackName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 63 else { return false }
        func allowed(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 48 && c <= 57) }
        return allowed(first) && name.utf8.allSatisfy { allowed($0) || $0 == 95 || $0 == 45 }
    }

    /// The whole seconds of a health timeout a caller sends (nil for none); 400 `invalid_health_timeout`
    /// for one that is not a whole number in `Stack.healthTimeoutRange`.
    static func checkHealthTimeout(_ value: Double?) throws -> Int? {
        guard let value else { return nil }
        let range = Stack.healthTimeoutRange
        let whole = value.rounded() == value
        if whole, value >= Double(range.lowerBound), value <= Double(range.upperBound) { return Int(value) }
        let shown = whole && abs(value) < 1e15 ? String(Int(value)) : String(value)
        throw APIError(status: .badRequest, code: "invalid_health_timeout",
                       message: "healthTimeout is a whole number of seconds from \(range.lowerBound) to \(range.upperBound), not \(shown).")
    }

    /// Checks an env a caller sends for a stack: 400 `invalid_variable` for a variable a stack cannot
    /// have (`StackVariables`), 422 `stack_too_large` past the link's limits (`StackLimits`).
    /// Checked on what a caller sends, not on a stack's stored env, which a server before these
    /// checks may have taken (variables that webhook calls merge in are checked by the store).
    static func checkGivenEnv(_ env: [String: String]) throws {
        if let name = env.keys.sorted().first(where: { StackVariables.isReserved($0) }) {
            throw APIError(status: .badRequest, code: "invalid_variable", message: StackVariables.reservedMessage(name))
        }
        do throws(ComposeError) {
            try StackLimits.check(env: env)
        } catch {
            throw APIError(status: .unprocessableContent, code: error.code.rawValue, message: error.message)
        }
    }

    /// Resolves a compose file, answering 422 with compose's problem and place.
    static func resolve(_ compose: String, env: [String: String]) throws -> ResolvedCompose {
        for name in env.keys where !Interpolation.isValidVariableName(name) {
            throw APIError(status: .badRequest, code: "invalid_variable",
                           message: "'\(name.prefix(64))' is not a valid variable name: use letters, digits and _, not starting with a digit.")
        }
        for (name, value) in env where value.utf8.contains(0) {
            throw APIError(status: .badRequest, code: "invalid_variable",
                           message: "The value of \(name) contains a NUL character, which no process environment can hold.")
        }
        do {
            // Memoised: parsing YAML is the costliest step of a webhook call.
            return try ComposeCache.shared.resolve(compose, environment: env)
        } catch {
            throw APIError(status: .unprocessableContent, code: error.code.rawValue, message: error.message)
        }
    }

    static func planned(_ services: [ResolvedService]) -> [PlannedService] {
        services.map { PlannedService(name: $0.name, image: $0.image) }
    }

    /// What a deploy of `stack` with `variables` on top of its env runs, service by service.
    struct DeployPlan {
        var resolved: ResolvedCompose
        var images: [String: String]

        var planned: [PlannedService] { images.keys.sorted().map { PlannedService(name: $0, image: images[$0]!) } }
    }

    /// The compose file with the stack's env and `variables`; an image pinned by an earlier trigger
    /// stays unless the variables change that service's image.
    /// `pins`: the stack's pinned images when the caller has them already; read from the store otherwise.
    func plan(for stack: Stack, compose: String? = nil, env: [String: String]? = nil, variables: [String: String] = [:],
              pins knownPins: [String: String]? = nil) async throws -> DeployPlan {
        let compose = compose ?? stack.compose
        let pins: [String: String]
        if compose != stack.compose {
            pins = [:]
        } else if let knownPins {
            pins = knownPins
        } else {
            pins = try await mapped { try await store.pins(stackId: stack.id) }
        }
        return try Self.plan(for: stack, compose: compose, env: env, variables: variables, pins: pins)
    }

    /// `plan(for:…)` with the stack's pins given (ignored when `compose` is not the stack's): no store read.
    static func plan(for stack: Stack, compose: String? = nil, env: [String: String]? = nil, variables: [String: String] = [:],
                     pins: [String: String]) throws -> DeployPlan {
        let baseEnv = env ?? stack.env
        return try plan(for: stack, compose: compose, from: baseEnv,
                        to: variables.isEmpty ? baseEnv : baseEnv.merging(variables) { _, new in new }, pins: pins)
    }

    /// The deploy of `compose` with the env `newEnv`: a service whose image `newEnv` changes from
    /// what `baseEnv` gives it runs the new one; any other keeps its pinned image, if any.
    static func plan(for stack: Stack, compose: String?, from baseEnv: [String: String], to newEnv: [String: String],
                     pins: [String: String]) throws -> DeployPlan {
        let compose = compose ?? stack.compose
        let pins = compose == stack.compose ? pins : [:]
        let base = try Self.resolve(compose, env: baseEnv)
        let resolved = newEnv == baseEnv ? base : try Self.resolve(compose, env: newEnv)
        var images: [String: String] = [:]
        for service in resolved.services {
            let before = base.services.first { $0.name == service.name }?.image
            if before != service.image {
                images[service.name] = service.image
            } else {
                images[service.name] = pins[service.name] ?? service.image
            }
        }
        return DeployPlan(resolved: resolved, images: images)
    }

    /// What an edit (`PUT`) of `current` with `body` deploys. The env given replaces the stack's:
    /// the deploy runs with it alone. A pinned image stays unless the new env changes its service's
    /// image, or the compose file is new.
    func edit(_ current: Stack, _ body: UpdateStack) async throws
        -> (compose: String, env: [String: String], composeChanged: Bool, deploy: DeployPlan) {
        let compose = body.compose ?? current.compose
        if let given = body.env { try Self.checkGivenEnv(given) }
        let env = body.env ?? current.env
        let composeChanged = compose != current.compose
        let pins = composeChanged ? [:] : try await mapped { try await store.pins(stackId: current.id) }
        let deploy = try Self.plan(for: current, compose: compose, from: composeChanged ? env : current.env, to: env, pins: pins)
        return (compose, env, composeChanged, deploy)
    }

    /// A deploy's resolved config with its images, pinned ones included.
    static func rendered(_ deploy: DeployPlan) throws -> Rendered {
        var resolved = deploy.resolved
        let pinned = deploy.resolved.services.compactMap { service -> ResolvedService? in
            guard let image = deploy.images[service.name], image != service.image else { return nil }
            return try? ResolvedService(name: service.name, image: image)
        }
        if !pinned.isEmpty {
            do throws(ComposeError) {
                resolved = try resolved.applying(pinned)
            } catch {
                throw APIError(status: .unprocessableContent, code: error.code.rawValue, message: error.message)
            }
        }
        return Rendered(config: resolved.yaml, services: resolved.services.map { RenderedService(name: $0.name, image: $0.image) })
    }

    func addStackRoutes(to router: Router<WharfRequestContext>) {
        router.post("/api/stacks") { request, context in
            let body = try await request.decodeJSON(CreateStack.self, context: context)
            guard Self.isValidStackName(body.name) else {
                throw APIError(status: .badRequest, code: "invalid_name",
                               message: "A stack name is 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter or digit.")
            }
            let healthTimeout = try Self.checkHealthTimeout(body.healthTimeout)
            let env = body.env ?? [:]
            try Self.checkGivenEnv(env)
            let resolved = try Self.resolve(body.compose, env: env)
            let (stack, job) = try await mapped {
                try await store.createStack(name: body.name, environmentId: body.environmentId, compose: body.compose, env: env,
                                            healthTimeout: healthTimeout, plan: Self.planned(resolved.services),
                                            trigger: JobTrigger(source: "api", remoteAddr: context.clientAddress,
                                                                userAgent: request.headers[.userAgent]),
                                            publicURL: settings.publicURL)
            }
            context.logger.info("stack created", metadata: ["stack.id": "\(stack.id)", "job.id": "\(job.id)"])
            dispatcher.notifyQueued(environmentId: stack.environmentId)
            return JSONBody(StackAndJob(stack: stack, job: job), status: .created)
        }
        router.get("/api/stacks") { request, _ in
            let environmentId = request.uri.queryParameters["environmentId"].map(String.init)
            if environmentId?.isEmpty == true {
                throw APIError(status: .badRequest, code: "invalid_query",
                               message: "environmentId must not be empty; leave it out for every environment's stacks.")
            }
            return JSONBody(StackList(stacks: try await mapped {
                try await store.stacks(environmentId: environmentId, publicURL: settings.publicURL)
            }))
        }
        router.get("/api/stacks/{id}") { _, context in
            let id = try context.parameters.require("id")
            return JSONBody(StackBody(stack: try await mapped { try await store.stack(id: id, publicURL: settings.publicURL) }))
        }
        router.put("/api/stacks/{id}") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decodeJSON(UpdateStack.self, context: context)
            let healthTimeout = try Self.checkHealthTimeout(body.healthTimeout)
            let current = try await mapped { try await store.stack(id: id, publicURL: settings.publicURL) }
            let (compose, env, composeChanged, deploy) = try await edit(current, body)
            // An edit is the stack's new definition, written at once: its deploy is planned on it, not
            // on the deploys still open ahead of it, whose success then leaves the edit in place.
            let job = try await mapped {
                try await store.updateStack(id: id, compose: compose, env: env, healthTimeout: healthTimeout,
                                            clearPins: composeChanged, request: JobRequest(
                    kind: .deploy, compose: compose, plan: deploy.planned, pull: true,
                    trigger: JobTrigger(source: "api", remoteAddr: context.clientAddress, userAgent: request.headers[.userAgent]),
                    coalesce: false, followsOpenDeploys: false))
            }
            dispatcher.notifyQueued(environmentId: current.environmentId)
            let stack = try await mapped { try await store.stack(id: id, publicURL: settings.publicURL) }
            return JSONBody(StackAndJob(stack: stack, job: job))
        }
        router.delete("/api/stacks/{id}") { request, context in
            let id = try context.parameters.require("id")
            switch request.uri.queryParameters["forget"].map(String.init) {
            case nil, "false": break
            case "true":
                // For a node that is gone: no remove job, containers left alone (`forgetStack`).
                let ended = try await mapped { try await store.forgetStack(id: id) }
                context.logger.notice("stack forgotten", metadata: ["stack.id": "\(id)", "jobs.ended": "\(ended.count)"])
                return try JSONBody(Forgotten(forgotten: id, endedJobs: ended)).response(from: request, context: context)
            case let value?:
                throw APIError(status: .badRequest, code: "invalid_query", message: "forget must be true or false, not '\(value.prefix(32))'.")
            }
            let stack = try await mapped { try await store.stack(id: id, publicURL: settings.publicURL) }
            let job = try await mapped {
                try await store.enqueueJob(stackId: id, request: JobRequest(
                    kind: .remove, plan: stack.services.map { PlannedService(name: $0.name, image: $0.image) }, pull: false,
                    trigger: JobTrigger(source: "api", remoteAddr: context.clientAddress, userAgent: request.headers[.userAgent]),
                    coalesce: false))
            }
            dispatcher.notifyQueued(environmentId: stack.environmentId)
            return try JSONBody(JobOnly(job: job), status: .accepted).response(from: request, context: context)
        }
        router.post("/api/stacks/{id}/redeploy") { request, context in
            let id = try context.parameters.require("id")
            var request = request
            let buffer = try await request.collectBody(upTo: context.maxUploadSize)
            let body = buffer.readableBytes > 0 ? try await request.decodeJSON(Redeploy.self, context: context) : Redeploy()
            let stack = try await mapped { try await store.stack(id: id, publicURL: settings.publicURL) }
            let deploy = try await plan(for: stack)
            let job = try await mapped {
                try await store.enqueueJob(stackId: id, request: JobRequest(
                    kind: .deploy, plan: deploy.planned, targeted: [], pull: body.pullImage ?? true,
                    trigger: JobTrigger(source: "api", remoteAddr: context.clientAddress, userAgent: request.headers[.userAgent])))
            }
            dispatcher.notifyQueued(environmentId: stack.environmentId)
            return JSONBody(JobOnly(job: job), status: .accepted)
        }
        router.get("/api/stacks/{id}/config") { _, context in
            let id = try context.parameters.require("id")
            let stack = try await mapped { try await store.stack(id: id, publicURL: settings.publicURL) }
            return JSONBody(try Self.rendered(try await plan(for: stack)))
        }
        // What `PUT` with this body would deploy, written nowhere: the Edit page's preview. Unlike
        // `/api/compose/render`, it keeps the images a webhook pinned, as the update would.
        router.post("/api/stacks/{id}/config") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decodeJSON(UpdateStack.self, context: context)
            // Not rendered, but refused as `PUT` would refuse it (400: not an error of the file or its env).
            _ = try Self.checkHealthTimeout(body.healthTimeout)
            let current = try await mapped { try await store.stack(id: id, publicURL: settings.publicURL) }
            do {
                return JSONBody(try Self.rendered(try await edit(current, body).deploy))
            } catch var error as APIError where error.status == .badRequest {
                error.status = .unprocessableContent  // As `/api/compose/render`: 422 for any error of the file and its env.
                throw error
            }
        }
        router.post("/api/compose/render") { request, context in
            let body = try await request.decodeJSON(RenderRequest.self, context: context)
            // The contract: 422 on any error of the compose file and its env, a bad or reserved
            // variable name too (POST/PUT of a stack refuse those with 400).
            let resolved: ResolvedCompose
            do {
                try Self.checkGivenEnv(body.env ?? [:])
                resolved = try Self.resolve(body.compose, env: body.env ?? [:])
            } catch var error as APIError where error.status == .badRequest {
                error.status = .unprocessableContent
                throw error
            }
            return JSONBody(Rendered(config: resolved.yaml, services: resolved.services.map { RenderedService(name: $0.name, image: $0.image) }))
        }
    }
}

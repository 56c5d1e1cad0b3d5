import Foundation
import Hummingbird
import WharfProtocol
import ZeroMQ

extension API {
    /// `type` is read as text, so that a type Wharf does not know is refused naming the ones it does.
    struct CreateEnvironment: Decodable { var name: String; var type: String? }
    struct EnvironmentCreated: Encodable, Sendable { var environment: Environment; var joinToken: String }
    struct EnvironmentList: Encodable, Sendable { var environments: [Environment] }
    struct EnvironmentBody: Encodable, Sendable { var environment: Environment }
    struct JoinToken: Encodable, Sendable { var joinToken: String }
    struct Enrol: Decodable { var joinToken: String; var publicKey: String; var hostname: String?; var version: String? }
    struct Enrolled: Encodable, Sendable { var environmentId: String; var serverPublicKey: String; var endpoint: String }

    /// Fills in the live link status.
    func live(_ environment: Environment) async -> Environment {
        var environment = environment
        if environment.status != .pending {
            environment.status = await dispatcher.isConnected(environment.id) ? .connected : .disconnected
        }
        return environment
    }

    func addEnvironmentRoutes(to router: Router<WharfRequestContext>) {
        router.post("/api/environments") { request, context in
            let body = try await request.decodeJSON(CreateEnvironment.self, context: context)
            let type = try body.type.map { text in
                guard let type = EnvironmentType(rawValue: text) else {
                    throw APIError(status: .badRequest, code: "invalid_json",
                                   message: "The field `type` must be \(EnvironmentType.allCases.map { "`\($0.rawValue)`" }.joined(separator: " or ")), not '\(text.prefix(32))'.")
                }
                return type
            }
            let name = body.name.trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.count <= 64, !name.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) else {
                throw APIError(status: .badRequest, code: "invalid_name",
                               message: "An environment name is 1 to 64 printable characters.")
            }
            let (environment, token) = try await mapped {
                try await store.createEnvironment(name: name, type: type ?? .agent)
            }
            context.logger.info("environment created", metadata: ["env.id": "\(environment.id)", "env.type": "\(environment.type.rawValue)"])
            return JSONBody(EnvironmentCreated(environment: environment, joinToken: token), status: .created)
        }
        router.get("/api/environments") { _, _ in
            var environments: [Environment] = []
            for environment in try await mapped({ try await store.environments() }) {
                environments.append(await live(environment))
            }
            return JSONBody(EnvironmentList(environments: environments))
        }
        router.get("/api/environments/{id}") { _, context in
            let id = try context.parameters.require("id")
            return JSONBody(EnvironmentBody(environment: await live(try await mapped { try await store.environment(id: id) })))
        }
        router.delete("/api/environments/{id}") { _, context in
            let id = try context.parameters.require("id")
            try await mapped { try await store.deleteEnvironment(id: id) }
            keys.remove(environmentId: id)
            await dispatcher.forget(environmentId: id)
            return Response(status: .noContent)
        }
        router.post("/api/environments/{id}/join-token") { _, context in
            let id = try context.parameters.require("id")
            let token = try await mapped { try await store.createJoinToken(environmentId: id) }
            return JSONBody(JoinToken(joinToken: token), status: .created)
        }
        router.post("/api/agents/enrol") { request, context in
            let body = try await request.decodeJSON(Enrol.self, context: context)
            guard let key = try? CurveKey(z85: body.publicKey) else {
                throw APIError(status: .badRequest, code: "invalid_key", message: "publicKey must be a 40-character Z85 CURVE public key.")
            }
            let environment = try await mapped {
                try await store.enrol(joinToken: body.joinToken, publicKey: key.z85,
                                      hostname: String((body.hostname ?? "").prefix(255)), version: String((body.version ?? "").prefix(64)))
            }
            keys.enrol(key: key, environmentId: environment.id)
            // The agent enrolled before (if any) is no longer believed; stop sending it anything now.
            await dispatcher.revalidate(environmentId: environment.id)
            context.logger.info("agent enrolled", metadata: ["env.id": "\(environment.id)", "agent.hostname": "\(body.hostname ?? "")"])
            return JSONBody(Enrolled(environmentId: environment.id, serverPublicKey: settings.serverPublicKey, endpoint: settings.agentEndpoint))
        }
    }
}

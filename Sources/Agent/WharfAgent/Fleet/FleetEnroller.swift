import Foundation
import ZeroMQ

/// Creates a fleet's environments and enrols a fresh CURVE key for each, over the HTTP API.
///
/// Agents already in the roster whose environment still exists are reused as they are; an
/// environment that exists without a usable key here gets a new join token and a new key.
struct FleetEnroller: Sendable {
    let configuration: FleetConfiguration
    let hostname: String

    private struct EnvironmentList: Decodable {
        struct Item: Decodable { var id: String; var name: String }
        var environments: [Item]
    }
    private struct Created: Decodable {
        struct Item: Decodable { var id: String }
        var environment: Item
        var joinToken: String
    }
    private struct JoinToken: Decodable { var joinToken: String }
    private struct Enrolled: Decodable { var environmentId: String; var serverPublicKey: String; var endpoint: String }

    /// Returns the roster for every agent of the configuration, enrolling the ones that need it,
    /// and how many were enrolled now.
    func enrol() async throws -> (FleetRoster, enrolled: Int) {
        let url = FleetRoster.url(in: configuration.dataDirectory, prefix: configuration.prefix, first: configuration.first)
        let session = AgentHTTPClient(timeout: .seconds(60), responseLimit: 256 << 20)
        let existing = try await call(session, "GET", "/api/environments", as: EnvironmentList.self).environments
        let idsByName = Dictionary(existing.map { ($0.name, $0.id) }, uniquingKeysWith: { first, _ in first })
        var stored: [String: FleetMember] = [:]
        var server: (key: String, endpoint: String)?
        if let roster = FleetRoster.load(from: url), roster.server == configuration.server {
            for member in roster.members where idsByName[member.name] == member.environmentId {
                stored[member.name] = member
            }
            server = (roster.serverPublicKey, roster.endpoint)
        }
        let indices = Array(configuration.first..<(configuration.first + configuration.count))
        var members: [Int: FleetMember] = [:]
        var missing: [(index: Int, existingId: String?)] = []
        for index in indices {
            let name = configuration.name(index)
            if let member = stored[name] { members[index] = member } else { missing.append((index, idsByName[name])) }
        }
        var fresh: (key: String, endpoint: String)?
        try await withThrowingTaskGroup(of: (FleetMember, String, String).self) { group in
            var next = 0
            func startOne() {
                guard next < missing.count else { return }
                let item = missing[next]
                next += 1
                group.addTask { try await enrolOne(session, index: item.index, existingId: item.existingId) }
            }
            for _ in 0..<max(1, configuration.enrolConcurrency) { startOne() }
            while let (member, key, endpoint) = try await group.next() {
                members[member.index] = member
                fresh = (key, endpoint)
                startOne()
            }
        }
        guard let link = fresh ?? server else {
            throw FleetError("no agent was enrolled and the roster \(url.path) does not say where the server's link is")
        }
        let roster = FleetRoster(server: configuration.server, serverPublicKey: link.key, endpoint: link.endpoint,
                                 members: indices.compactMap { members[$0] })
        try roster.save(to: url)
        return (roster, missing.count)
    }

    private func enrolOne(_ session: AgentHTTPClient, index: Int, existingId: String?) async throws -> (FleetMember, String, String) {
        let name = configuration.name(index)
        let environmentId: String
        let joinToken: String
        if let existingId {
            environmentId = existingId
            joinToken = try await call(session, "POST", "/api/environments/\(existingId)/join-token", as: JoinToken.self).joinToken
        } else {
            let created = try await call(session, "POST", "/api/environments", body: ["name": name, "type": "agent"], as: Created.self)
            environmentId = created.environment.id
            joinToken = created.joinToken
        }
        let pair = try CurveKeyPair.generate()
        let enrolled = try await call(session, "POST", "/api/agents/enrol", body: [
            "joinToken": joinToken, "publicKey": pair.publicKey.z85, "hostname": "\(hostname)/\(name)",
            "version": configuration.agentVersion,
        ], bearer: false, as: Enrolled.self)
        guard enrolled.environmentId == environmentId else {
            throw FleetError("enrolling \(name) gave environment \(enrolled.environmentId), expected \(environmentId)")
        }
        let member = FleetMember(index: index, name: name, environmentId: environmentId, secretKey: pair.secretKey.z85)
        return (member, enrolled.serverPublicKey, enrolled.endpoint)
    }

    private func call<T: Decodable>(_ session: AgentHTTPClient, _ method: String, _ path: String, body: [String: String]? = nil,
                                    bearer: Bool = true, as type: T.Type) async throws -> T {
        let base = configuration.server.hasSuffix("/") ? String(configuration.server.dropLast()) : configuration.server
        let headers = bearer ? [(name: "Authorization", value: "Bearer \(configuration.adminToken)")] : []
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await session.json(method, base + path, body: body, headers: headers, as: T.self)
            } catch let error as AgentHTTPStatusError {
                throw FleetError("\(method) \(path): \(error)")
            } catch let error as AgentHTTPError where error.code == .badResponse {
                throw FleetError("\(method) \(path): \(error.message)")
            } catch let error as AgentHTTPError {
                // Only reads are repeated: a repeated creation or enrolment could half-succeed twice.
                if method == "GET", error.code != .invalidURL, attempt < 3 {
                    try await Task.sleep(for: .milliseconds(200 * attempt))
                    continue
                }
                throw FleetError("\(method) \(path): cannot reach \(configuration.server): \(error.message)")
            }
        }
    }
}

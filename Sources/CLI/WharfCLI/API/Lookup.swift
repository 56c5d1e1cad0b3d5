import Foundation

/// Finds environments and stacks by name or id, as users address them.
struct Lookup: Sendable {
    let client: APIClient

    /// Every environment, and the server's JSON.
    func environments() async throws -> ([EnvironmentInfo], Data) {
        let (list, data) = try await client.call(EnvironmentList.self, "GET", "/api/environments")
        return (list.environments, data)
    }

    /// The environment whose id or name is `nameOrId` (an id wins over a name).
    func environment(_ nameOrId: String) async throws -> EnvironmentInfo {
        let (all, _) = try await environments()
        if let match = all.first(where: { $0.id == nameOrId }) ?? all.first(where: { $0.name == nameOrId }) {
            return match
        }
        let known = all.map(\.name).sorted()
        throw CLIError(code: "not_found", message: "no environment named '\(nameOrId)'"
                       + (known.isEmpty ? "; add one with `wharf env add NAME`" : " (known: \(known.joined(separator: ", ")))"))
    }

    /// Stacks, on one environment or on all, and the server's JSON.
    func stacks(environmentId: String? = nil) async throws -> ([StackInfo], Data) {
        let query = environmentId.map { "?environmentId=\(Path.escape($0))" } ?? ""
        let (list, data) = try await client.call(StackList.self, "GET", "/api/stacks" + query)
        return (list.stacks, data)
    }

    /// The stack whose id or name is `nameOrId`, on `environment` (a name or id) when given.
    /// A name used on several environments is refused as ambiguous, naming them.
    func stack(_ nameOrId: String, environment: String?) async throws -> StackInfo {
        let scope = try await environment.asyncMap { try await self.environment($0) }
        let (stacks, _) = try await stacks(environmentId: scope?.id)
        if let match = stacks.first(where: { $0.id == nameOrId }) { return match }
        let named = stacks.filter { $0.name == nameOrId }
        if named.count == 1 { return named[0] }
        if named.isEmpty {
            let place = scope.map { " on environment \($0.name)" } ?? ""
            throw CLIError(code: "not_found", message: "no stack named '\(nameOrId)'\(place); `wharf stack ls` lists them")
        }
        let (environments, _) = try await environments()
        let names = named.map { stack in environments.first { $0.id == stack.environmentId }?.name ?? stack.environmentId }
        throw CLIError(code: "ambiguous", message: "stack '\(nameOrId)' exists on several environments (\(names.sorted().joined(separator: ", "))); choose one with --env-name, or use the stack's id")
    }
}

extension Optional {
    func asyncMap<U>(_ transform: (Wrapped) async throws -> U) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

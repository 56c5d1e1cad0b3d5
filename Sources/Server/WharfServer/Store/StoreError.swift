/// A store failure with a stable code the HTTP edge maps to the contract's errors.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `not_found`, `name_taken`, `environment_in_use`, `unauthorized`, `conflict`, `stack_removing`, `database`,
    /// `event_already_received` (a job request whose registry events its stack has all seen), or
    /// `data_directory` (a key or token file of the data dir that is there but unusable; start-up stops).
    public var code: String
    public var message: String

    public var description: String { "\(code): \(message)" }

    static func notFound(_ what: String) -> StoreError { StoreError(code: "not_found", message: "\(what) not found") }
    static let eventAlreadyReceived = StoreError(code: "event_already_received", message: "event already received")
    static let stackRemoving = StoreError(code: "stack_removing", message: "the stack is being removed: no deploy can be queued behind its remove")
}

import Foundation
import Hummingbird
import WharfProtocol

extension API {
    struct JobBody: Encodable, Sendable { var job: Job }
    struct JobList: Encodable, Sendable { var jobs: [Job] }

    func addJobRoutes(to router: Router<WharfRequestContext>) {
        router.get("/api/jobs") { request, _ in
            let query = request.uri.queryParameters
            var state: JobState?
            if let raw = query["state"] {
                guard let parsed = JobState(rawValue: String(raw)) else {
                    throw APIError(status: .badRequest, code: "invalid_state",
                                   message: "state must be one of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")).")
                }
                state = parsed
            }
            var limit = 100
            if let raw = query["limit"] {
                guard let parsed = Int(raw), (1...1000).contains(parsed) else {
                    throw APIError(status: .badRequest, code: "invalid_limit", message: "limit must be a number from 1 to 1000.")
                }
                limit = parsed
            }
            let stackId = query["stackId"].map(String.init)
            // Empty, it would match no stack: a script's unset variable is told so, not "no jobs".
            if stackId?.isEmpty == true {
                throw APIError(status: .badRequest, code: "invalid_query", message: "stackId must not be empty; leave it out for every stack's jobs.")
            }
            return JSONBody(JobList(jobs: try await mapped { try await store.jobs(stackId: stackId, state: state, limit: limit) }))
        }
        router.get("/api/jobs/{id}") { _, context in
            let id = try context.parameters.require("id")
            return JSONBody(JobBody(job: try await mapped { try await store.job(id: id).job }))
        }
        router.get("/api/jobs/{id}/log") { _, context in
            let id = try context.parameters.require("id")
            let text = try await mapped { try await store.jobLog(jobId: id) }
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}

import Foundation
import NIOCore
import WharfProtocol

/// Writes a `Job` as JSON straight into bytes: what `JSONBody` (a `JSONEncoder` with sorted keys,
/// unescaped slashes and ISO 8601 dates) writes for it, without building the encoder's tree. The
/// webhook's 202 carries the whole job, and the generic encoder was a tenth of a hot call's CPU.
/// `JobJSONTests` checks it against `JSONBody` for jobs of every shape.
enum JobJSON {
    /// `{"job": Job, "statusUrl": String}`, the webhook's answer.
    static func accepted(_ job: Job, statusURL: String) -> ByteBuffer {
        var out = JSONWriter(capacity: 768, escapesSlashes: false)
        out.raw("{\"job\":")
        out.job(job)
        out.raw(",\"statusUrl\":")
        out.string(statusURL)
        out.raw("}")
        return ByteBuffer(bytes: out.bytes)
    }
}

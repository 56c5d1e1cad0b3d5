import Foundation
import WharfProtocol

// The models as `JSONEncoder` (sorted keys) writes them, straight into bytes: the webhook's 202
// (`JobJSON`) and the job columns (`JSONColumn`). `JobJSONTests` compares them byte for byte.
extension JSONWriter {
    mutating func job(_ job: Job) {
        // Keys in the encoder's sorted order.
        raw("{\"coalesced\":"); int(job.coalesced)
        raw(",\"createdAt\":"); date(job.createdAt)
        raw(",\"environmentId\":"); string(job.environmentId)
        raw(",\"error\":")
        if let error = job.error { self.error(error) } else { raw("null") }
        raw(",\"finishedAt\":"); date(job.finishedAt)
        raw(",\"id\":"); string(job.id)
        raw(",\"kind\":"); string(job.kind.rawValue)
        raw(",\"plan\":"); plan(job.plan)
        raw(",\"result\":")
        if let result = job.result { outcome(result) } else { raw("null") }
        raw(",\"stackId\":"); string(job.stackId)
        raw(",\"startedAt\":"); date(job.startedAt)
        raw(",\"state\":"); string(job.state.rawValue)
        raw(",\"trigger\":"); trigger(job.trigger)
        raw("}")
    }

    mutating func plan(_ plan: JobPlan) {
        raw("{\"services\":[")
        for (index, service) in plan.services.enumerated() {
            if index > 0 { raw(",") }
            raw("{\"image\":"); string(service.image); raw(",\"name\":"); string(service.name); raw("}")
        }
        raw("]}")
    }

    mutating func error(_ error: JobError) {
        raw("{\"code\":"); string(error.code); raw(",\"message\":"); string(error.message); raw("}")
    }

    mutating func outcome(_ outcome: JobOutcome) {
        raw("{\"services\":[")
        for (index, service) in outcome.services.enumerated() {
            if index > 0 { raw(",") }
            raw("{\"containers\":"); int(service.containers)
            raw(",\"image\":"); string(service.image)
            raw(",\"imageId\":"); string(service.imageId)
            raw(",\"name\":"); string(service.name); raw("}")
        }
        raw("]}")
    }

    /// A stack's services (`imageId` left out when unknown, as the synthesized encoder does).
    mutating func services(_ services: [StackService]) {
        raw("[")
        for (index, service) in services.enumerated() {
            if index > 0 { raw(",") }
            raw("{\"containers\":"); int(service.containers)
            raw(",\"image\":"); string(service.image)
            if let imageId = service.imageId { raw(",\"imageId\":"); string(imageId) }
            raw(",\"name\":"); string(service.name); raw("}")
        }
        raw("]")
    }

    mutating func trigger(_ trigger: JobTrigger) {
        raw("{\"params\":"); object(trigger.params)
        if let remoteAddr = trigger.remoteAddr { raw(",\"remoteAddr\":"); string(remoteAddr) }
        raw(",\"source\":"); string(trigger.source)
        if let userAgent = trigger.userAgent { raw(",\"userAgent\":"); string(userAgent) }
        raw("}")
    }

    /// `null`, or the date as `2026-11-29T17:46:00Z` (whole seconds, UTC), as `.iso8601` writes it.
    mutating func date(_ value: Date?) {
        guard let value else { return raw("null") }
        var seconds = time_t(value.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // `number` with leading zeros to `width` digits (wider numbers in full), digit by digit.
        func digits(_ number: Int32, _ width: Int) {
            guard number >= 0, number < 10_000, width <= 4 else {
                // Not a date's field this century: as before, through a string.
                var text = Array(String(number).utf8)
                while text.count < width { text.insert(UInt8(ascii: "0"), at: 0) }
                return append(contentsOf: text)
            }
            let count = max(width, number >= 1000 ? 4 : number >= 100 ? 3 : number >= 10 ? 2 : 1)
            var divisor: Int32 = [1, 10, 100, 1000][count - 1]
            while divisor > 0 {
                append(UInt8(ascii: "0") + UInt8(number / divisor % 10))
                divisor /= 10
            }
        }
        append(UInt8(ascii: "\""))
        digits(parts.tm_year + 1900, 4); append(UInt8(ascii: "-"))
        digits(parts.tm_mon + 1, 2); append(UInt8(ascii: "-"))
        digits(parts.tm_mday, 2); append(UInt8(ascii: "T"))
        digits(parts.tm_hour, 2); append(UInt8(ascii: ":"))
        digits(parts.tm_min, 2); append(UInt8(ascii: ":"))
        digits(parts.tm_sec, 2)
        raw("Z\"")
    }
}

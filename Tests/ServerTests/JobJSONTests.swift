import Foundation
import NIOCore
import Testing
import WharfProtocol
@testable import WharfServer

/// The webhook's hand-written 202 body against what the API's `JSONEncoder` writes for the same job.
struct JobJSONTests {
    static let tricky = ["", "plain", "a/b:c", "quote \" and \\ back", "line\nbreak\r\t\u{8}\u{c}", "\u{1}\u{1f}\u{7f}",
                         "ünïcödé ✓ 🚢", "\u{2028}", "</script>"]

    static func jobs() -> [Job] {
        var jobs: [Job] = []
        for (index, text) in tricky.enumerated() {
            let created = Date(timeIntervalSince1970: 1_795_974_418.987 + Double(index) * 86_399.5)
            jobs.append(Job(
                id: "job_\(index)", stackId: "stk_\(text)", environmentId: "env_1", kind: index % 2 == 0 ? .deploy : .remove,
                state: JobState.allCases[index % JobState.allCases.count],
                trigger: JobTrigger(source: "webhook", remoteAddr: index % 3 == 0 ? nil : "127.0.0.1",
                                    userAgent: index % 2 == 0 ? text : nil,
                                    params: index == 0 ? [:] : ["tag": "v\(index)", "K\(text)": text, "a": "1"]),
                coalesced: index * 1_000, createdAt: created,
                startedAt: index % 2 == 0 ? nil : created.addingTimeInterval(0.4),
                finishedAt: index % 3 == 0 ? nil : created.addingTimeInterval(61.999),
                plan: JobPlan(services: (0..<(index % 3)).map { PlannedService(name: "s\($0)\(text)", image: "r/\(text):v\($0)") }),
                error: index % 4 == 1 ? JobError(code: "pull_failed", message: text) : nil,
                result: index % 4 == 2 ? JobOutcome(services: [ServiceResult(name: text, image: "r/x:1", imageId: "sha256:\(text)", containers: index)]) : nil))
        }
        return jobs
    }

    @Test(arguments: jobs())
    func writesWhatTheEncoderWrites(_ job: Job) throws {
        let fast = JobJSON.accepted(job, statusURL: "/api/jobs/\(job.id)")
        let reference = try JSONBody<API.Accepted>.encode(API.Accepted(job: job, statusUrl: "/api/jobs/\(job.id)"))
        let fastObject = try JSONSerialization.jsonObject(with: Data(buffer: fast)) as? NSDictionary
        let referenceObject = try JSONSerialization.jsonObject(with: reference) as? NSDictionary
        #expect(fastObject != nil && fastObject == referenceObject, "\(String(buffer: fast))\n\(String(decoding: reference, as: UTF8.self))")
        if job.trigger.params.count <= 1 {
            // Without a map of free-form keys the bytes are the same too (key order included).
            #expect(String(buffer: fast) == String(decoding: reference, as: UTF8.self))
        }
        // And it reads back as the same job.
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        struct Envelope: Decodable { var job: Job; var statusUrl: String }
        let back = try decoder.decode(Envelope.self, from: Data(buffer: fast))
        #expect(back.job.id == job.id && back.job.trigger == job.trigger && back.job.plan == job.plan
                && back.job.error == job.error && back.job.result == job.result && back.statusUrl == "/api/jobs/\(job.id)")
        #expect(back.job.createdAt == Date(timeIntervalSince1970: job.createdAt.timeIntervalSince1970.rounded(.down)))
    }

    @Test func mergedImagesKeepEveryPushedRepositoryOnceWithItsNewestTag() {
        #expect(JobTrigger.mergedImages("127.0.0.1:5000/demo/db:2", "docker.io/myorg/app:2") == "127.0.0.1:5000/demo/db:2, docker.io/myorg/app:2")
        #expect(JobTrigger.mergedImages("127.0.0.1:5000/demo/db:2, docker.io/myorg/app:2", "127.0.0.1:5000/demo/db:3")
                == "docker.io/myorg/app:2, 127.0.0.1:5000/demo/db:3")
        #expect(JobTrigger.mergedImages("127.0.0.1:5000/demo/db", "127.0.0.1:5000/demo/db") == "127.0.0.1:5000/demo/db")
    }
}

/// Ids are the prefix, `_` and 20 lower-case hex digits from the system's CSPRNG.
@Test func identifiersArePrefixedRandomHex() {
    let ids = (0..<2_000).map { _ in Identifier.make("job") }
    #expect(ids.allSatisfy { $0.wholeMatch(of: /job_[0-9a-f]{20}/) != nil })
    #expect(Set(ids).count == ids.count)
    // Every hex digit turns up in both positions of a byte.
    let digits = Set(ids.flatMap { $0.dropFirst(4) })
    #expect(digits == Set("0123456789abcdef"))
    // And the 20 digits are drawn apart: every pair of positions shows (nearly) all 256 pairs of
    // digits, which a digit copied or derived from another would not (2,000 ids miss more than 16 of
    // 256 pairs with a negligible chance; about 0.1 are missed on average).
    let hexDigits = ids.map { Array($0.utf8.dropFirst(4)) }
    for first in 0..<20 {
        for second in (first + 1)..<20 {
            let pairs = Set(hexDigits.map { UInt16($0[first]) << 8 | UInt16($0[second]) })
            #expect(pairs.count >= 240, "positions \(first) and \(second): \(pairs.count) pairs of digits")
        }
    }
}

/// The job columns' hand-written JSON is byte for byte what the store's `JSONEncoder` wrote before
/// (so rows written by either compare equal), and reads back the same.
@Test(arguments: JobJSONTests.jobs())
func columnsAreWrittenAsTheEncoderWritesThem(_ job: Job) throws {
    let env = Dictionary(uniqueKeysWithValues: JobJSONTests.tricky.enumerated().map { ("K\($0.offset)\($0.element)", $0.element) })
    for (fast, generic) in [(JSONColumn.encode(job.plan), JSONColumn.genericEncode(job.plan)),
                            (JSONColumn.encode(job.trigger), JSONColumn.genericEncode(job.trigger)),
                            (JSONColumn.encode(job.trigger.params), JSONColumn.genericEncode(job.trigger.params)),
                            (JSONColumn.encode(env), JSONColumn.genericEncode(env))] + resultColumns(job) {
        #expect(fast == generic)
    }
    #expect(JSONColumn.decode(JobPlan.self, JSONColumn.encode(job.plan)) == job.plan)
    #expect(JSONColumn.decode(JobTrigger.self, JSONColumn.encode(job.trigger)) == job.trigger)
    #expect(JSONColumn.decode([String: String].self, JSONColumn.encode(env)) == env)
}

/// The columns' reader gives what `JSONDecoder` gives, or gives up: for every shape the store
/// writes, for foreign JSON (spaces, numbers, `\u` escapes) and for broken text.
@Test(arguments: JobJSONTests.jobs())
func columnsReadAsTheDecoderReadsThem(_ job: Job) throws {
    let env = Dictionary(uniqueKeysWithValues: JobJSONTests.tricky.enumerated().map { ("K\($0.offset)\($0.element)", $0.element) })
    let planText = JSONColumn.encode(job.plan), triggerText = JSONColumn.encode(job.trigger), envText = JSONColumn.encode(env)
    let fastPlan = ColumnJSONReader.read(planText)?.plan, fastTrigger = ColumnJSONReader.read(triggerText)?.trigger
    #expect(fastPlan == nil || fastPlan == JSONColumn.genericDecode(JobPlan.self, planText))
    #expect(fastTrigger == nil || fastTrigger == JSONColumn.genericDecode(JobTrigger.self, triggerText))
    #expect(JSONColumn.decode(JobPlan.self, planText) == job.plan && JSONColumn.decode(JobTrigger.self, triggerText) == job.trigger)
    if !triggerText.contains("\\u") {
        #expect(fastPlan == job.plan && fastTrigger == job.trigger, "only a \\u escape makes it give up: \(triggerText)")
    }
    let fastEnv = ColumnJSONReader.read(envText)?.strings
    #expect(fastEnv == nil || fastEnv == env, "a \\u escape may make it give up, never read otherwise")
    #expect(JSONColumn.decode([String: String].self, envText) == env)
}

@Test func theColumnReaderGivesUpOnWhatItDoesNotKnow() {
    for text in ["{\"a\": \"1\"}", "{\"a\":1}", "{\"a\":\"\\u0041\"}", "{\"a\":\"1\"", "{\"a\":\"1\",}", "{\"a\":\"1\"}x",
                 "{\"a\":\"1\",\"a\":\"2\"}", "{\"services\":[{\"name\":\"w\"}]}", "[", "", "nul", "{\"a\":\"\\q\"}"] {
        let value = ColumnJSONReader.read(text)
        #expect(value?.strings == nil && value?.plan == nil && value?.trigger == nil, "\(text)")
    }
    #expect(ColumnJSONReader.read("{\"a\":\"x\\/y\\\"z\\n\"}")?.strings == ["a": "x/y\"z\n"])
    #expect(JSONColumn.decode([String: String].self, "{\"a\": 1}") == nil)
    #expect(JSONColumn.decode([String: String].self, "{ \"a\" : \"\\u00e9\" }") == ["a": "é"])
    #expect(ColumnJSONReader.read("{\"services\":[]}")?.plan == JobPlan(services: []))
}

/// The columns a finished job writes, hand-written and generic.
func resultColumns(_ job: Job) -> [(String, String)] {
    let outcome = job.result ?? JobOutcome(services: [])
    let services = outcome.services.enumerated().map {
        StackService(name: $0.element.name, image: $0.element.image, imageId: $0.offset % 2 == 0 ? $0.element.imageId : nil,
                     containers: $0.element.containers)
    } + [StackService(name: job.id, image: "a/b", imageId: nil, containers: -1)]
    let error = job.error ?? JobError(code: "x/y", message: job.stackId)
    return [(JSONColumn.encode(outcome), JSONColumn.genericEncode(outcome)),
            (JSONColumn.encode(services), JSONColumn.genericEncode(services)),
            (JSONColumn.encode(error), JSONColumn.genericEncode(error))]
}

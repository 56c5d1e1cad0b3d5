import WharfProtocol
import Yams

/// The dotted place of a value in a compose document, e.g. `services.web.command[1]`.
struct ComposePath: CustomStringConvertible, Sendable {
    private let text: String

    static let root = ComposePath(text: "")

    func key(_ key: String) -> ComposePath {
        ComposePath(text: text.isEmpty ? key : "\(text).\(key)")
    }

    func index(_ index: Int) -> ComposePath {
        ComposePath(text: "\(text)[\(index)]")
    }

    var description: String { text.isEmpty ? "(top level)" : text }
}

/// The YAML tree work behind ``ComposeFile``: parsing, expansion, interpolation and output.
enum ComposeYAML {
    /// Parses one YAML document; `nil` when the text holds none.
    static func parse(_ text: String) throws(ComposeError) -> Node? {
        do {
            return try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw syntaxError(error)
        } catch {
            throw ComposeError(code: .invalidCompose, message: "invalid YAML: \(error)")
        }
    }

    /// The most nodes a compose file may have once its aliases are expanded.
    static let maxNodes = 100_000

    /// Refuses documents whose aliases expand past `maxNodes` ("billion laughs"), counting with an
    /// early exit so that the check itself stays cheap (Yams shares aliased nodes until they are copied).
    static func checkSize(_ root: Node) throws(ComposeError) {
        var budget = maxNodes
        func visit(_ node: Node) -> Bool {
            budget -= 1
            guard budget >= 0 else { return false }
            switch node {
            case .scalar, .alias: return true
            case .sequence(let sequence): return sequence.allSatisfy(visit)
            case .mapping(let mapping): return mapping.allSatisfy { visit($0.key) && visit($0.value) }
            }
        }
        guard visit(root) else {
            throw ComposeError(code: .invalidCompose,
                               message: "the compose file expands to more than \(maxNodes) YAML nodes (are aliases nested too deep?)")
        }
    }

    static func serialize(_ node: Node) throws(ComposeError) -> String {
        do {
            return try Yams.serialize(node: node, indent: 2, width: -1, allowUnicode: true)
        } catch {
            throw ComposeError(code: .invalidCompose, message: "the resolved compose file could not be written as YAML: \(error)")
        }
    }

    /// Expands merge keys (`<<`) and drops anchors, so the output shows every value where it applies.
    ///
    /// Yams has already replaced each alias by a copy of its anchored node.
    static func expand(_ node: Node, at path: ComposePath) throws(ComposeError) -> Node {
        switch node {
        case .scalar(let scalar):
            return .scalar(copy(scalar, string: scalar.string))
        case .sequence(let sequence):
            var items: [Node] = []
            for (index, item) in sequence.enumerated() {
                items.append(try expand(item, at: path.index(index)))
            }
            return .sequence(Node.Sequence(items, retag(sequence.tag), sequence.style, sequence.mark))
        case .alias:
            return node
        case .mapping(let mapping):
            let explicitKeys = Set(mapping.keys.filter { !isMergeKey($0) })
            var seen = Set<Node>()
            var pairs: [(Node, Node)] = []
            for (key, value) in mapping {
                let keyText = key.scalar?.string ?? "?"
                guard isMergeKey(key) else {
                    pairs.append((try expand(key, at: path), try expand(value, at: path.key(keyText))))
                    continue
                }
                // Explicit keys win over merged ones; among merged mappings the first one wins.
                for source in try mergeSources(value, at: path.key(keyText)) {
                    for (mergedKey, mergedValue) in source where !explicitKeys.contains(mergedKey) {
                        guard seen.insert(mergedKey).inserted else { continue }
                        pairs.append((mergedKey, mergedValue))
                    }
                }
            }
            return .mapping(Node.Mapping(pairs, retag(mapping.tag), mapping.style, mapping.mark))
        }
    }

    private static func mergeSources(_ value: Node, at path: ComposePath) throws(ComposeError) -> [Node.Mapping] {
        let invalid = ComposeError(
            code: .invalidCompose,
            message: "\(path): a merge key (<<) needs a mapping or a list of mappings",
            path: path.description,
            line: value.mark?.line,
            column: value.mark?.column
        )
        switch try expand(value, at: path) {
        case .mapping(let mapping):
            return [mapping]
        case .sequence(let sequence):
            var sources: [Node.Mapping] = []
            for item in sequence {
                guard case .mapping(let mapping) = item else { throw invalid }
                sources.append(mapping)
            }
            return sources
        default:
            throw invalid
        }
    }

    /// Interpolates every scalar value (never a key) that holds a `$`.
    static func interpolate(
        _ node: Node,
        at path: ComposePath,
        environment: [String: String],
        unset: inout [String]
    ) throws(ComposeError) -> Node {
        switch node {
        case .scalar(let scalar):
            guard scalar.string.contains("$") else { return node }
            let value: String
            do {
                value = try Interpolation.interpolate(scalar.string, environment: environment, unsetVariables: &unset)
            } catch {
                throw ComposeError(
                    code: error.code == .missingVariable ? .missingVariable : .invalidTemplate,
                    message: "\(path): \(error.message)",
                    path: path.description,
                    line: scalar.mark?.line,
                    column: scalar.mark?.column,
                    cause: error
                )
            }
            return .scalar(stringScalar(value, like: scalar))
        case .sequence(let sequence):
            var items: [Node] = []
            for (index, item) in sequence.enumerated() {
                items.append(try interpolate(item, at: path.index(index), environment: environment, unset: &unset))
            }
            return .sequence(Node.Sequence(items, retag(sequence.tag), sequence.style, sequence.mark))
        case .mapping(let mapping):
            var pairs: [(Node, Node)] = []
            for (key, value) in mapping {
                let keyPath = path.key(key.scalar?.string ?? "?")
                pairs.append((key, try interpolate(value, at: keyPath, environment: environment, unset: &unset)))
            }
            return .mapping(Node.Mapping(pairs, retag(mapping.tag), mapping.style, mapping.mark))
        case .alias:
            return node
        }
    }

    /// Writes each literal `$` of a value as `$$`, as `docker compose config` does, so compose reads back the same value.
    static func escapeDollars(_ node: Node) -> Node {
        switch node {
        case .scalar(let scalar):
            guard scalar.string.contains("$") else { return node }
            return .scalar(copy(scalar, string: scalar.string.replacingDollars()))
        case .sequence(let sequence):
            return .sequence(Node.Sequence(sequence.map(escapeDollars), retag(sequence.tag), sequence.style, sequence.mark))
        case .mapping(let mapping):
            let pairs = mapping.map { ($0.key, escapeDollars($0.value)) }
            return .mapping(Node.Mapping(pairs, retag(mapping.tag), mapping.style, mapping.mark))
        case .alias:
            return node
        }
    }

    /// A scalar holding the string `value`, quoted when a plain scalar would read back as another type.
    ///
    /// A value that held `$…` was a string in the YAML compose read, so after interpolation it
    /// stays one: `${REPLICAS:-2}` becomes `"2"`, which compose casts where it expects a number.
    static func stringScalar(_ value: String, like original: Node.Scalar? = nil) -> Node.Scalar {
        let tagName = original?.tag.description ?? ""
        var style = original?.style ?? .any
        let isString = tagName.isEmpty || tagName == "!" || tagName == Tag.Name.str.rawValue
        if isString, style == .plain || style == .any, Resolver.default.resolveTag(of: Node(value)) != .str {
            style = .doubleQuoted
        }
        let tag = tagName.isEmpty ? Tag(.str) : Tag(Tag.Name(rawValue: tagName))
        return Node.Scalar(value, tag, style, original?.mark)
    }

    /// The key and value of the entry whose key is the string `key`.
    static func entry(_ key: String, in mapping: Node.Mapping) -> (key: Node, value: Node)? {
        mapping.first { $0.key.scalar?.string == key }
    }

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar = node else { return false }
        return node.tag.description == Tag.Name.null.rawValue
    }

    private static func isMergeKey(_ node: Node) -> Bool {
        guard case .scalar = node else { return false }
        return node.tag.description == Tag.Name.merge.rawValue
    }

    /// A copy without the anchor, with a tag object of its own (Yams resolves tags in place).
    private static func copy(_ scalar: Node.Scalar, string: String) -> Node.Scalar {
        Node.Scalar(string, retag(scalar.tag), scalar.style, scalar.mark)
    }

    private static func retag(_ tag: Tag) -> Tag {
        Tag(Tag.Name(rawValue: tag.description))
    }

    private static func syntaxError(_ error: YamlError) -> ComposeError {
        func context(_ context: YamlError.Context?) -> String {
            guard let context else { return "" }
            return " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
        }
        func located(_ problem: String, _ mark: Mark, _ detail: String) -> ComposeError {
            ComposeError(
                code: .invalidCompose,
                message: "invalid YAML at line \(mark.line), column \(mark.column): \(problem)\(detail)",
                line: mark.line,
                column: mark.column,
                cause: error
            )
        }
        switch error {
        case .composer(_, "but found another document", let mark, _):
            return located("the compose file must hold one YAML document, but another one starts here", mark, "")
        case .scanner(let ctx, let problem, let mark, _), .parser(let ctx, let problem, let mark, _),
            .composer(let ctx, let problem, let mark, _):
            return located(problem, mark, context(ctx))
        case .duplicatedKeysInMapping(let duplicates, let ctx):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return located("the key \(keys) appears more than once in the same mapping", ctx.mark, "")
        case .reader(let problem, _, _, _):
            return ComposeError(code: .invalidCompose, message: "invalid YAML: \(problem)", cause: error)
        default:
            return ComposeError(code: .invalidCompose, message: "invalid YAML: \(error)", cause: error)
        }
    }
}

extension String {
    fileprivate func replacingDollars() -> String {
        var result = ""
        result.reserveCapacity(utf8.count + 4)
        for character in self {
            if character == "$" { result += "$$" } else { result.append(character) }
        }
        return result
    }
}

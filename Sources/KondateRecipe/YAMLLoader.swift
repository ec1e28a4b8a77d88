import CYaml
import Foundation

/// Reads one YAML document into a located `YAMLNode` tree, defensively.
///
/// Yams' own composer is not used: it reports a duplicate key at its first occurrence, hashes whole
/// subtrees when checking duplicates (exponential with aliases) and has no depth or alias-expansion
/// bounds. This composer reads libyaml's events (the parser Yams bundles) and enforces:
/// a size limit, UTF-8 without NUL bytes, a nesting-depth limit, a bound on nodes produced by alias
/// expansion (billion laughs), only core-schema tags, scalar keys, no duplicate keys, one document.
public struct YAMLLoader {
    public struct Limits: Sendable {
        public var maxBytes = 16 << 20
        public var maxDepth = 64
        public var maxAliasExpansion = 100_000
        public var maxNodes = 2_000_000
        public init() {}
    }

    public var limits = Limits()
    public init() {}

    /// Parses `data` read from `file` (display name). Returns nil when errors were reported.
    public func load(data: Data, file: String, into diagnostics: inout DiagnosticSet) -> YAMLNode? {
        let start = SourceLocation(file: file, line: 1, column: 1)
        if data.count > limits.maxBytes {
            diagnostics.error(.fileUnreadable,
                              "file is \(data.count) bytes; recipes are limited to \(limits.maxBytes) bytes", at: start)
            return nil
        }
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) {
            diagnostics.error(.notUTF8, "file is UTF-16; save the recipe as UTF-8", at: start)
            return nil
        }
        if Self.looksLikeUTF16(bytes) {
            diagnostics.error(.notUTF8, "file looks like UTF-16 (every other byte is zero); save the recipe as UTF-8", at: start)
            return nil
        }
        if let nul = bytes.firstIndex(of: 0) {
            diagnostics.error(.binaryFile, "file contains a NUL byte: it looks binary, not a YAML recipe",
                              at: Self.location(ofByte: nul, in: bytes, file: file))
            return nil
        }
        if let bad = Self.firstInvalidUTF8(bytes) {
            diagnostics.error(.notUTF8, "file is not valid UTF-8 (bad byte 0x\(String(bytes[bad], radix: 16, uppercase: true))); save it as UTF-8",
                              at: Self.location(ofByte: bad, in: bytes, file: file))
            return nil
        }
        if let (offset, depth) = Self.flowDepthExceeding(limits.maxDepth, in: bytes) {
            diagnostics.error(.tooDeep, "nesting deeper than \(limits.maxDepth) levels (\(depth) here)",
                              at: Self.location(ofByte: offset, in: bytes, file: file))
            return nil
        }
        var composer = EventComposer(file: file, limits: limits)
        composer.lastLine = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).count - (bytes.last == 0x0A ? 1 : 0)
        let root = bytes.withUnsafeBufferPointer { composer.compose($0) }
        diagnostics.append(contentsOf: composer.diagnostics)
        if composer.diagnostics.hasErrors { return nil }
        guard let root else {
            diagnostics.error(.emptyFile, "recipe is empty; a recipe is a YAML mapping such as 'name: my-model'", at: start)
            return nil
        }
        if root.isNull {
            diagnostics.error(.emptyFile, "recipe is empty; a recipe is a YAML mapping such as 'name: my-model'", at: start)
            return nil
        }
        return root
    }

    /// Parses a YAML fragment given on the command line (`--set path=VALUE`).
    public func loadFragment(_ text: String, location: SourceLocation, into diagnostics: inout DiagnosticSet) -> YAMLNode? {
        var composer = EventComposer(file: location.file, limits: limits, origin: location)
        let bytes = Array(text.utf8)
        let node = bytes.withUnsafeBufferPointer { composer.compose($0) }
        diagnostics.append(contentsOf: composer.diagnostics)
        if composer.diagnostics.hasErrors { return nil }
        return node ?? YAMLNode(.scalar("", quoted: false), at: location)
    }

    static func location(ofByte offset: Int, in bytes: [UInt8], file: String) -> SourceLocation {
        var line = 1, column = 1
        var i = 0
        while i < offset, i < bytes.count {
            if bytes[i] == 0x0A { line += 1; column = 1 } else if bytes[i] & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        return SourceLocation(file: file, line: line, column: column)
    }

    /// UTF-16 text without a byte-order mark: mostly ASCII, so zeros fill the odd (or even) positions.
    static func looksLikeUTF16(_ bytes: [UInt8]) -> Bool {
        let sample = bytes.prefix(1024)
        guard sample.count >= 4 else { return false }
        var evenZeros = 0, oddZeros = 0
        for (i, b) in sample.enumerated() where b == 0 { if i % 2 == 0 { evenZeros += 1 } else { oddZeros += 1 } }
        let half = sample.count / 2
        return max(evenZeros, oddZeros) * 10 >= half * 8 && min(evenZeros, oddZeros) * 10 <= half
    }

    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b < 0x80 { i += 1; continue }
            let len: Int
            if b >= 0xC2 && b <= 0xDF { len = 2 } else if b >= 0xE0 && b <= 0xEF { len = 3 } else if b >= 0xF0 && b <= 0xF4 { len = 4 } else { return i }
            if i + len > n { return i }
            for k in 1..<len where bytes[i + k] & 0xC0 != 0x80 { return i }
            if b == 0xE0 && bytes[i + 1] < 0xA0 { return i }
            if b == 0xED && bytes[i + 1] > 0x9F { return i }
            if b == 0xF0 && bytes[i + 1] < 0x90 { return i }
            if b == 0xF4 && bytes[i + 1] > 0x8F { return i }
            i += len
        }
        return nil
    }

    /// Flow collections (`[[[[…`) nest without indentation; find them before libyaml builds its stacks.
    /// Quotes and comments are skipped; block nesting is bounded later by the composer.
    static func flowDepthExceeding(_ limit: Int, in bytes: [UInt8]) -> (Int, Int)? {
        var depth = 0
        var i = 0
        var quote: UInt8 = 0
        var lineStart = true
        var previous: UInt8 = 0x0A
        while i < bytes.count {
            let c = bytes[i]
            if quote != 0 {
                if c == quote {
                    if quote == 0x27, i + 1 < bytes.count, bytes[i + 1] == 0x27 { i += 2; continue }
                    quote = 0
                } else if c == 0x5C, quote == 0x22 { i += 1 }
            } else {
                switch c {
                case 0x23 where previous == 0x20 || previous == 0x09 || lineStart || previous == 0x0A:
                    while i < bytes.count, bytes[i] != 0x0A { i += 1 }
                    previous = 0x0A
                    lineStart = true
                    continue
                case 0x22 where depth > 0, 0x27 where depth > 0: quote = c
                case 0x5B, 0x7B:
                    depth += 1
                    if depth > limit { return (i, depth) }
                case 0x5D, 0x7D: depth = max(0, depth - 1)
                default: break
                }
            }
            lineStart = c == 0x0A
            previous = c
            i += 1
        }
        return nil
    }
}

/// Builds `YAMLNode`s from libyaml's event stream.
private struct EventComposer {
    let file: String
    let limits: YAMLLoader.Limits
    /// For fragments: positions are reported relative to this location (same line).
    let origin: SourceLocation?
    var diagnostics = DiagnosticSet()
    var anchors: [String: (node: YAMLNode, count: Int)] = [:]
    var aliasExpanded = 0
    var nodes = 0
    var parser = yaml_parser_t()
    var failed = false
    /// Number of lines in the file, so errors at the end of input point at its last line.
    var lastLine = Int.max

    init(file: String, limits: YAMLLoader.Limits, origin: SourceLocation? = nil) {
        self.file = file
        self.limits = limits
        self.origin = origin
    }

    mutating func compose(_ buffer: UnsafeBufferPointer<UInt8>) -> YAMLNode? {
        guard yaml_parser_initialize(&parser) == 1 else {
            diagnostics.error(.fileUnreadable, "could not initialise the YAML parser", at: nil)
            return nil
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, buffer.baseAddress ?? UnsafePointer(bitPattern: 1), buffer.count)

        guard var event = next(), event.type == YAML_STREAM_START_EVENT else { return nil }
        yaml_event_delete(&event)
        guard var docStart = next() else { return nil }
        if docStart.type == YAML_STREAM_END_EVENT { yaml_event_delete(&docStart); return nil }
        yaml_event_delete(&docStart)
        guard var first = next() else { return nil }
        let root = node(from: &first, depth: 1)
        if failed { return nil }
        guard var docEnd = next() else { return nil }
        yaml_event_delete(&docEnd)
        guard var end = next() else { return nil }
        if end.type != YAML_STREAM_END_EVENT {
            diagnostics.error(.yamlSyntax, "a recipe is a single YAML document; found a second one ('---')",
                              at: location(end.start_mark))
            yaml_event_delete(&end)
            return nil
        }
        yaml_event_delete(&end)
        return root
    }

    func location(_ mark: yaml_mark_t) -> SourceLocation {
        if let origin {
            return SourceLocation(file: origin.file, line: origin.line, column: origin.column + Int(mark.column))
        }
        let line = Int(mark.line) + 1
        if line > lastLine, lastLine > 0 { return SourceLocation(file: file, line: lastLine, column: 1) }
        return SourceLocation(file: file, line: line, column: Int(mark.column) + 1)
    }

    mutating func next() -> yaml_event_t? {
        if failed { return nil }
        var event = yaml_event_t()
        if yaml_parser_parse(&parser, &event) != 1 {
            failed = true
            let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
            var message = "YAML syntax error: \(problem)"
            let context = parser.context.map { String(cString: $0) }
            if let context { message += " (\(context) at line \(parser.context_mark.line + 1))" }
            // At the end of input, point at where the unclosed construct began.
            let atEnd = Int(parser.problem_mark.line) + 1 >= lastLine && problem.contains("end of stream")
            diagnostics.error(.yamlSyntax, message, at: location(atEnd && context != nil ? parser.context_mark : parser.problem_mark))
            return nil
        }
        return event
    }

    static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int) -> String {
        guard let pointer else { return "" }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    static func cString(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }

    /// Core-schema tags only: a recipe never constructs application objects.
    mutating func checkTag(_ tag: String?, at loc: SourceLocation, allowed: Set<String>) -> Bool {
        guard let tag, tag != "!" else { return true }
        if allowed.contains(tag) { return true }
        diagnostics.error(.unsupportedTag, "tag '\(tag)' is not supported; recipes use plain YAML values (remove the tag)", at: loc)
        return false
    }

    static let scalarTags: Set<String> = ["tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                                          "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"]

    mutating func count(_ n: Int, at loc: SourceLocation) -> Bool {
        nodes += n
        if nodes > limits.maxNodes {
            diagnostics.error(.tooLarge, "document has more than \(limits.maxNodes) nodes", at: loc)
            failed = true
            return false
        }
        return true
    }

    /// Consumes the events of one node, starting with `event` (which this function frees).
    mutating func node(from event: inout yaml_event_t, depth: Int) -> YAMLNode? {
        defer { yaml_event_delete(&event) }
        let loc = location(event.start_mark)
        let before = nodes
        let isCollection = event.type == YAML_SEQUENCE_START_EVENT || event.type == YAML_MAPPING_START_EVENT
        if isCollection, depth > limits.maxDepth {
            diagnostics.error(.tooDeep, "nesting deeper than \(limits.maxDepth) levels", at: loc)
            failed = true
            return nil
        }
        switch event.type {
        case YAML_ALIAS_EVENT:
            let name = Self.cString(event.data.alias.anchor) ?? ""
            guard let target = anchors[name] else {
                diagnostics.error(.yamlSyntax, "alias '*\(name)' refers to no anchor defined before it", at: loc)
                failed = true
                return nil
            }
            aliasExpanded += target.count
            if aliasExpanded > limits.maxAliasExpansion {
                diagnostics.error(.aliasBomb,
                                  "aliases expand to more than \(limits.maxAliasExpansion) nodes; refusing to expand (a 'billion laughs' document?)",
                                  at: loc)
                failed = true
                return nil
            }
            guard count(target.count, at: loc) else { return nil }
            return target.node
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            let text = Self.string(s.value, length: Int(s.length))
            let tag = Self.cString(s.tag)
            guard checkTag(tag, at: loc, allowed: Self.scalarTags) else { failed = true; return nil }
            let quoted = s.style != YAML_PLAIN_SCALAR_STYLE || tag == "tag:yaml.org,2002:str"
            let node = YAMLNode(.scalar(text, quoted: quoted), at: loc)
            guard count(1, at: loc) else { return nil }
            register(Self.cString(s.anchor), node, count: nodes - before)
            return node
        case YAML_SEQUENCE_START_EVENT:
            let anchor = Self.cString(event.data.sequence_start.anchor)
            guard checkTag(Self.cString(event.data.sequence_start.tag), at: loc, allowed: ["tag:yaml.org,2002:seq"]) else {
                failed = true; return nil
            }
            guard count(1, at: loc) else { return nil }
            var items: [YAMLNode] = []
            while true {
                guard var e = next() else { return nil }
                if e.type == YAML_SEQUENCE_END_EVENT { yaml_event_delete(&e); break }
                guard let child = node(from: &e, depth: depth + 1) else { return nil }
                items.append(child)
            }
            let node = YAMLNode(.sequence(items), at: loc)
            register(anchor, node, count: nodes - before)
            return node
        case YAML_MAPPING_START_EVENT:
            let anchor = Self.cString(event.data.mapping_start.anchor)
            guard checkTag(Self.cString(event.data.mapping_start.tag), at: loc, allowed: ["tag:yaml.org,2002:map"]) else {
                failed = true; return nil
            }
            guard count(1, at: loc) else { return nil }
            var entries: [YAMLEntry] = []
            var seen: [String: SourceLocation] = [:]
            while true {
                guard var keyEvent = next() else { return nil }
                if keyEvent.type == YAML_MAPPING_END_EVENT { yaml_event_delete(&keyEvent); break }
                let keyLoc = location(keyEvent.start_mark)
                let isScalarKey = keyEvent.type == YAML_SCALAR_EVENT
                guard let keyNode = node(from: &keyEvent, depth: depth + 1) else { return nil }
                guard isScalarKey, let key = keyNode.scalarText else {
                    diagnostics.error(.yamlSyntax, "mapping keys must be plain names, not \(keyNode.kindName)", at: keyLoc)
                    failed = true
                    return nil
                }
                guard var valueEvent = next() else { return nil }
                guard let value = node(from: &valueEvent, depth: depth + 1) else { return nil }
                if key == "<<" {
                    diagnostics.error(.yamlSyntax, "YAML merge keys ('<<') are not supported; use 'extends' to inherit a recipe",
                                      at: keyLoc)
                    failed = true
                    return nil
                }
                if let first = seen[key] {
                    diagnostics.error(.duplicateKey, "duplicate key '\(key)'", at: keyLoc,
                                      notes: [DiagnosticNote("first defined here", at: first)])
                    continue
                }
                seen[key] = keyLoc
                entries.append(YAMLEntry(key: key, keyLocation: keyLoc, value: value))
            }
            let node = YAMLNode(.mapping(entries), at: loc)
            register(anchor, node, count: nodes - before)
            return node
        default:
            diagnostics.error(.yamlSyntax, "unexpected YAML event", at: loc)
            failed = true
            return nil
        }
    }

    mutating func register(_ anchor: String?, _ node: YAMLNode, count: Int) {
        guard let anchor else { return }
        anchors[anchor] = (node, count)
    }
}

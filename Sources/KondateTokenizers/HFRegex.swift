import Foundation

/// A backtracking regex matcher for the patterns in tokenizer.json files (`Split` and `Replace` with
/// `{"Regex": …}`), with Oniguruma's semantics: leftmost-first alternation, greedy/lazy/possessive
/// quantifiers, look-ahead, Unicode `\s \d \w \p{…}`. Unsupported syntax (look-behind, back-references,
/// scripts, POSIX brackets, nested classes) throws instead of matching differently.
final class HFRegex: Sendable {
    indirect enum Node: Sendable {
        case char(UInt32, caseless: Bool)
        case set(CharSet)
        case any
        case seq([Node])
        case alt([Node])
        case repetition(Node, min: Int, max: Int, kind: Quantifier)
        case look(Node, negative: Bool)
        case textStart, textEnd, textEndBeforeNewline, lineStart, lineEnd, wordBoundary, notWordBoundary
    }

    enum Quantifier: Sendable { case greedy, lazy, possessive }

    struct CharSet: Sendable {
        enum Item: Sendable {
            case range(UInt32, UInt32)
            case whitespace(Bool)  // negated?
            case digit(Bool)
            case word(Bool)
            case category(UInt32, Bool)
        }
        var items: [Item] = []
        var negated = false
        var caseless = false

        func contains(_ c: UInt32) -> Bool {
            var hit = test(c)
            if !hit && caseless {
                let f = HFUnicode.fold(c)
                hit = test(f)
                if !hit, f >= 97, f <= 122 { hit = test(f - 32) }
                if !hit, c == 0x73 || c == 0x53 { hit = test(0x17F) }
                if !hit, c == 0x6B || c == 0x4B { hit = test(0x212A) }
            }
            return hit != negated
        }

        private func test(_ c: UInt32) -> Bool {
            for item in items {
                switch item {
                case .range(let lo, let hi): if c >= lo && c <= hi { return true }
                case .whitespace(let neg): if HFUnicode.isWhitespace(c) != neg { return true }
                case .digit(let neg): if (HFUnicode.categoryBit(c) == 1 << 8) != neg { return true }
                case .word(let neg): if HFUnicode.isOnigWord(c) != neg { return true }
                case .category(let mask, let neg): if (HFUnicode.categoryBit(c) & mask != 0) != neg { return true }
                }
            }
            return false
        }
    }

    let pattern: String
    private let root: Node
    /// Matches can only start at 0 (`\A…`).
    private let anchored: Bool
    /// Every match starts with one of these characters (nil: unknown or possibly empty); lets the
    /// search skip start positions without running the matcher.
    private let firstChars: Set<UInt32>?

    /// Compiles `pattern`; throws a message naming the unsupported construct.
    init(_ pattern: String) throws {
        self.pattern = pattern
        var parser = Parser(Array(pattern.unicodeScalars).map(\.value))
        root = try parser.parseAll()
        anchored = HFRegex.isAnchored(root)
        firstChars = HFRegex.firstSet(root)
    }

    /// A literal pattern (what `tokenizers` builds from `{"String": …}`).
    init(literal: String) {
        pattern = literal
        let scalars = literal.unicodeScalars.map { Node.char($0.value, caseless: false) }
        root = .seq(scalars)
        anchored = false
        firstChars = HFRegex.firstSet(root)
    }

    private static func isAnchored(_ node: Node) -> Bool {
        switch node {
        case .textStart: return true
        case .seq(let nodes): return nodes.first.map(isAnchored) ?? false
        case .alt(let nodes): return !nodes.isEmpty && nodes.allSatisfy(isAnchored)
        default: return false
        }
    }

    private static func firstSet(_ node: Node) -> Set<UInt32>? {
        switch node {
        case .char(let c, let caseless): return caseless ? nil : [c]
        case .seq(let nodes): return nodes.first.flatMap(firstSet)
        case .alt(let nodes):
            var all = Set<UInt32>()
            for n in nodes {
                guard let f = firstSet(n) else { return nil }
                all.formUnion(f)
            }
            return nodes.isEmpty ? nil : all
        case .repetition(let inner, let min, _, _): return min >= 1 ? firstSet(inner) : nil
        default: return nil
        }
    }

    /// All non-overlapping matches as byte ranges of `bytes`, like Oniguruma's `find_iter`
    /// (an empty match right after the previous match is skipped).
    func matches(in bytes: [UInt8]) -> [(Int, Int)] {
        var scalars = [UInt32]()
        var offsets = [Int]()
        scalars.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        bytes.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count {
                let (c, len) = HFUnicode.decode(p, i)
                scalars.append(c)
                offsets.append(i)
                i += len
            }
        }
        offsets.append(bytes.count)
        var result = [(Int, Int)]()
        var searchFrom = 0
        var lastEnd: Int? = nil
        let matcher = Matcher(s: scalars, anchored: anchored, firstChars: firstChars)
        while searchFrom <= scalars.count {
            guard let (start, end) = matcher.search(root, from: searchFrom) else { break }
            if start == end && lastEnd == end {
                searchFrom += 1
                continue
            }
            result.append((offsets[start], offsets[end]))
            searchFrom = end
            lastEnd = end
        }
        return result
    }

    private struct Matcher {
        let s: [UInt32]
        let anchored: Bool
        let firstChars: Set<UInt32>?

        func search(_ root: Node, from: Int) -> (Int, Int)? {
            var start = from
            while start <= s.count {
                if anchored && start > 0 { return nil }
                if let first = firstChars, start == s.count || !first.contains(s[start]) {
                    start += 1
                    continue
                }
                var end = -1
                if match(root, start, { e in end = e; return true }) { return (start, end) }
                start += 1
            }
            return nil
        }

        private func isWord(_ i: Int) -> Bool { i >= 0 && i < s.count && HFUnicode.isOnigWord(s[i]) }

        private func isSingle(_ node: Node) -> Bool {
            switch node {
            case .char, .set, .any: return true
            default: return false
            }
        }

        /// Single-character nodes: whether `c` matches.
        private func single(_ node: Node, _ c: UInt32) -> Bool? {
            switch node {
            case .char(let x, let caseless): return caseless ? HFUnicode.fold(c) == HFUnicode.fold(x) : c == x
            case .set(let set): return set.contains(c)
            case .any: return c != 0x0A
            default: return nil
            }
        }

        func match(_ node: Node, _ i: Int, _ k: (Int) -> Bool) -> Bool {
            switch node {
            case .char, .set, .any:
                guard i < s.count, single(node, s[i]) == true else { return false }
                return k(i + 1)
            case .seq(let nodes):
                return sequence(nodes, 0, i, k)
            case .alt(let nodes):
                for n in nodes where match(n, i, k) { return true }
                return false
            case .repetition(let inner, let min, let max, let kind):
                if isSingle(inner) {
                    // A run of single characters: count it once, then back off.
                    var count = 0
                    while count < max, i + count < s.count, single(inner, s[i + count]) == true { count += 1 }
                    if count < min { return false }
                    switch kind {
                    case .possessive: return k(i + count)
                    case .greedy:
                        var c = count
                        while c >= min { if k(i + c) { return true }; c -= 1 }
                        return false
                    case .lazy:
                        for c in min...count where k(i + c) { return true }
                        return false
                    }
                }
                if kind == .possessive {
                    var end = i
                    var count = 0
                    while count < max {
                        var next = -1
                        guard match(inner, end, { e in next = e; return true }), next != end else { break }
                        end = next
                        count += 1
                    }
                    return count >= min && k(end)
                }
                return repeatGeneral(inner, min, max, kind == .greedy, 0, i, k)
            case .look(let inner, let negative):
                let found = match(inner, i, { _ in true })
                return found != negative && k(i)
            case .textStart: return i == 0 && k(i)
            case .textEnd: return i == s.count && k(i)
            case .textEndBeforeNewline: return (i == s.count || (i == s.count - 1 && s[i] == 0x0A)) && k(i)
            case .lineStart: return (i == 0 || s[i - 1] == 0x0A) && k(i)
            case .lineEnd: return (i == s.count || s[i] == 0x0A) && k(i)
            case .wordBoundary: return isWord(i - 1) != isWord(i) && k(i)
            case .notWordBoundary: return isWord(i - 1) == isWord(i) && k(i)
            }
        }

        private func sequence(_ nodes: [Node], _ index: Int, _ i: Int, _ k: (Int) -> Bool) -> Bool {
            if index == nodes.count { return k(i) }
            return match(nodes[index], i) { j in sequence(nodes, index + 1, j, k) }
        }

        /// Each iteration of a group repetition nests a call; past this many the loop stops, so a
        /// pathological input cannot overflow the stack (worker threads have small stacks).
        private static let maxGroupIterations = 2_000

        private func repeatGeneral(_ inner: Node, _ min: Int, _ max: Int, _ greedy: Bool, _ count: Int, _ i: Int,
                                   _ k: (Int) -> Bool) -> Bool {
            let max = Swift.min(max, Matcher.maxGroupIterations)
            if greedy {
                if count < max && match(inner, i, { j in
                    // An empty iteration ends the loop (as Oniguruma's empty-check does).
                    j != i && repeatGeneral(inner, min, max, greedy, count + 1, j, k)
                }) { return true }
                return count >= min && k(i)
            }
            if count >= min && k(i) { return true }
            return count < max && match(inner, i, { j in j != i && repeatGeneral(inner, min, max, greedy, count + 1, j, k) })
        }
    }

    /// Groups nest at most this deep, and a pattern has at most this many characters: the parser and
    /// the matcher recurse over the tree, so a hostile tokenizer.json cannot overflow the stack.
    static let maxGroupDepth = 64
    static let maxPatternLength = 65_536

    private struct Parser {
        let p: [UInt32]
        var i = 0
        var caseless = false
        var depth = 0

        init(_ p: [UInt32]) { self.p = p }

        struct Unsupported: Error, CustomStringConvertible {
            var description: String
        }

        func fail(_ what: String) -> Unsupported { Unsupported(description: what) }

        mutating func parseAll() throws -> Node {
            guard p.count <= HFRegex.maxPatternLength else {
                throw fail("a pattern of \(p.count) characters (the limit is \(HFRegex.maxPatternLength))")
            }
            let node = try parseAlternation()
            if i < p.count { throw fail("unbalanced ')' at \(i)") }
            return node
        }

        mutating func parseAlternation() throws -> Node {
            var branches = [try parseSequence()]
            while i < p.count && p[i] == 0x7C {  // |
                i += 1
                branches.append(try parseSequence())
            }
            return branches.count == 1 ? branches[0] : .alt(branches)
        }

        mutating func parseSequence() throws -> Node {
            var items = [Node]()
            while i < p.count && p[i] != 0x7C && p[i] != 0x29 {
                let atom = try parseAtom()
                items.append(try parseQuantifier(atom))
            }
            return items.count == 1 ? items[0] : .seq(items)
        }

        mutating func parseQuantifier(_ atom: Node) throws -> Node {
            guard i < p.count else { return atom }
            var min = 0, max = Int.max
            switch p[i] {
            case 0x2A: min = 0; i += 1  // *
            case 0x2B: min = 1; i += 1  // +
            case 0x3F: min = 0; max = 1; i += 1  // ?
            case 0x7B:  // {n}, {n,}, {n,m}
                guard let (lo, hi, next) = parseBraces(i) else { return atom }
                min = lo; max = hi; i = next
            default: return atom
            }
            var kind = Quantifier.greedy
            if i < p.count && p[i] == 0x3F { kind = .lazy; i += 1 } else if i < p.count && p[i] == 0x2B { kind = .possessive; i += 1 }
            if i < p.count && (p[i] == 0x2A || p[i] == 0x2B || p[i] == 0x3F) { throw fail("nested quantifier") }
            return .repetition(atom, min: min, max: max, kind: kind)
        }

        func parseBraces(_ start: Int) -> (Int, Int, Int)? {
            var j = start + 1
            func number() -> Int? {
                var v = 0, digits = 0
                while j < p.count, p[j] >= 0x30, p[j] <= 0x39 { v = v * 10 + Int(p[j] - 0x30); j += 1; digits += 1 }
                return digits > 0 ? v : nil
            }
            let lo = number()
            var hi = lo
            if j < p.count && p[j] == 0x2C { j += 1; hi = number() ?? Int.max }
            guard j < p.count, p[j] == 0x7D, let low = lo, let high = hi, low <= high else { return nil }
            return (low, high, j + 1)
        }

        mutating func parseAtom() throws -> Node {
            let c = p[i]
            switch c {
            case 0x28:  // (
                i += 1
                depth += 1
                defer { depth -= 1 }
                guard depth <= HFRegex.maxGroupDepth else { throw fail("groups nested deeper than \(HFRegex.maxGroupDepth)") }
                var negativeLook: Bool? = nil
                let saved = caseless
                if i < p.count && p[i] == 0x3F {  // (?
                    i += 1
                    guard i < p.count else { throw fail("truncated group") }
                    switch p[i] {
                    case 0x3A: i += 1  // (?:
                    case 0x3D: i += 1; negativeLook = false  // (?=
                    case 0x21: i += 1; negativeLook = true  // (?!
                    case 0x3E: i += 1  // (?> atomic: treated as a plain group below
                        throw fail("atomic group (?>…)")
                    case 0x3C:  // (?<name> or look-behind
                        if i + 1 < p.count && (p[i + 1] == 0x3D || p[i + 1] == 0x21) { throw fail("look-behind") }
                        while i < p.count && p[i] != 0x3E { i += 1 }
                        i += 1
                    default:
                        // Flags: (?i) or (?i: … ), (?-i: … ).
                        var on = true
                        var flag = caseless
                        while i < p.count && p[i] != 0x3A && p[i] != 0x29 {
                            switch p[i] {
                            case 0x2D: on = false
                            case 0x69: flag = on
                            default: throw fail("group flag '\(Character(Unicode.Scalar(p[i]) ?? "?"))'")
                            }
                            i += 1
                        }
                        guard i < p.count else { throw fail("truncated group") }
                        if p[i] == 0x29 {  // (?i) applies to the rest of the enclosing group
                            i += 1
                            caseless = flag
                            return .seq([])
                        }
                        i += 1
                        caseless = flag
                    }
                }
                let inner = try parseAlternation()
                guard i < p.count, p[i] == 0x29 else { throw fail("missing ')'") }
                i += 1
                caseless = saved
                if let negative = negativeLook { return .look(inner, negative: negative) }
                return inner
            case 0x5B:
                return .set(try parseClass())
            case 0x2E: i += 1; return .any
            case 0x5E: i += 1; return .lineStart
            case 0x24: i += 1; return .lineEnd
            case 0x5C:
                return try parseEscape(inClass: false).node
            default:
                i += 1
                return .char(c, caseless: caseless)
            }
        }

        /// An escape: either a node (outside classes) or a class item / single character.
        mutating func parseEscape(inClass: Bool) throws -> (node: Node, item: CharSet.Item?, char: UInt32?) {
            i += 1
            guard i < p.count else { throw fail("trailing backslash") }
            let c = p[i]
            i += 1
            func item(_ it: CharSet.Item) -> (Node, CharSet.Item?, UInt32?) {
                var set = CharSet(); set.items = [it]
                return (.set(set), it, nil)
            }
            func literal(_ v: UInt32) -> (Node, CharSet.Item?, UInt32?) { (.char(v, caseless: caseless), nil, v) }
            switch c {
            case 0x73: return item(.whitespace(false))  // \s
            case 0x53: return item(.whitespace(true))
            case 0x64: return item(.digit(false))  // \d
            case 0x44: return item(.digit(true))
            case 0x77: return item(.word(false))  // \w
            case 0x57: return item(.word(true))
            case 0x70, 0x50:  // \p{…} \P{…}
                guard i < p.count, p[i] == 0x7B else { throw fail("\\p without braces") }
                var j = i + 1
                var negated = c == 0x50
                if j < p.count && p[j] == 0x5E { negated.toggle(); j += 1 }
                var name = ""
                while j < p.count && p[j] != 0x7D { name.unicodeScalars.append(Unicode.Scalar(p[j]) ?? " "); j += 1 }
                guard j < p.count else { throw fail("unterminated \\p{") }
                i = j + 1
                guard let mask = HFUnicode.categoryMask(named: name) else { throw fail("property \\p{\(name)}") }
                return item(.category(mask, negated))
            case 0x6E: return literal(0x0A)
            case 0x72: return literal(0x0D)
            case 0x74: return literal(0x09)
            case 0x66: return literal(0x0C)
            case 0x76: return literal(0x0B)
            case 0x61: return literal(0x07)
            case 0x65: return literal(0x1B)
            case 0x30: return literal(0)
            case 0x78, 0x75:  // \xHH, \x{H…}, \uHHHH
                var value: UInt32 = 0
                var digits = 0
                let braced = c == 0x78 && i < p.count && p[i] == 0x7B
                if braced { i += 1 }
                let limit = braced ? 8 : (c == 0x78 ? 2 : 4)
                while i < p.count, digits < limit, let d = hexValue(p[i]) { value = value * 16 + d; i += 1; digits += 1 }
                if braced { guard i < p.count, p[i] == 0x7D else { throw fail("unterminated \\x{") }; i += 1 }
                guard digits > 0 else { throw fail("empty hex escape") }
                return literal(value)
            case 0x41 where !inClass: return (.textStart, nil, nil)
            case 0x7A where !inClass: return (.textEnd, nil, nil)
            case 0x5A where !inClass: return (.textEndBeforeNewline, nil, nil)
            case 0x62 where !inClass: return (.wordBoundary, nil, nil)
            case 0x42 where !inClass: return (.notWordBoundary, nil, nil)
            default:
                let isAlnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                if isAlnum { throw fail("escape \\\(Character(Unicode.Scalar(c) ?? "?"))") }
                return literal(c)
            }
        }

        func hexValue(_ c: UInt32) -> UInt32? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x41 + 10
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }

        mutating func parseClass() throws -> CharSet {
            i += 1  // [
            var set = CharSet()
            set.caseless = caseless
            if i < p.count && p[i] == 0x5E { set.negated = true; i += 1 }
            var first = true
            while i < p.count && (p[i] != 0x5D || first) {
                first = false
                var lo: UInt32
                if p[i] == 0x5B { throw fail("nested or POSIX class inside [...]") }
                if p[i] == 0x26 && i + 1 < p.count && p[i + 1] == 0x26 { throw fail("class intersection &&") }
                if p[i] == 0x5C {
                    let e = try parseEscape(inClass: true)
                    if let it = e.item { set.items.append(it); continue }
                    guard let v = e.char else { throw fail("escape in class") }
                    lo = v
                } else {
                    lo = p[i]
                    i += 1
                }
                // A range a-b (a '-' before ']' is literal).
                if i + 1 < p.count && p[i] == 0x2D && p[i + 1] != 0x5D {
                    i += 1
                    var hi: UInt32
                    if p[i] == 0x5C {
                        let e = try parseEscape(inClass: true)
                        guard let v = e.char else { throw fail("class range ending in a class escape") }
                        hi = v
                    } else {
                        hi = p[i]
                        i += 1
                    }
                    guard lo <= hi else { throw fail("reversed class range") }
                    set.items.append(.range(lo, hi))
                } else {
                    set.items.append(.range(lo, lo))
                }
            }
            guard i < p.count else { throw fail("unterminated [...]") }
            i += 1  // ]
            return set
        }
    }
}

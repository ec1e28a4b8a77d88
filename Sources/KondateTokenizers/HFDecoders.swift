import Foundation

/// A tokenizer.json decoder: `decode_chain` over the tokens, joined at the end.
indirect enum HFDecoder: Sendable {
    case byteLevel
    case metaspace(replacement: Unicode.Scalar, prependScheme: HFPrependScheme)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case replace(HFPattern, content: String)
    case sequence([HFDecoder])

    func decode(_ tokens: [String]) -> String {
        decodeChain(tokens).joined()
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            // Each token's characters back to bytes (a token with an unmapped character keeps its
            // UTF-8), then one lossy UTF-8 decode of everything.
            var bytes = [UInt8]()
            for token in tokens {
                var mapped = [UInt8]()
                var ok = true
                for c in token.unicodeScalars {
                    guard let b = HFUnicode.scalarToByte[c.value] else { ok = false; break }
                    mapped.append(b)
                }
                bytes += ok ? mapped : Array(token.utf8)
            }
            return [HFUnicode.lossyString(bytes)]
        case .metaspace(let replacement, let prependScheme):
            // The first token loses every replacement character unless the scheme is "never".
            return tokens.enumerated().map { i, token in
                var out = String.UnicodeScalarView()
                for c in token.unicodeScalars {
                    if c == replacement {
                        if i == 0 && prependScheme != .never { continue }
                        out.append(" ")
                    } else {
                        out.append(c)
                    }
                }
                return String(out)
            }
        case .byteFallback:
            var out = [String]()
            var pending = [UInt8]()
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    out += Array(repeating: "\u{FFFD}", count: pending.count)
                }
                pending.removeAll()
            }
            for token in tokens {
                if let b = HFDecoder.byteToken(token) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                let chars = Array(token.unicodeScalars)
                var startCut = 0
                for i in 0..<min(start, chars.count) {
                    if chars[i] == content { startCut = i + 1 } else { break }
                }
                var stopCut = chars.count
                for i in 0..<min(stop, chars.count) {
                    let index = chars.count - i - 1
                    if chars[index] == content { stopCut = index } else { break }
                }
                guard startCut < stopCut else { return "" }
                var out = String.UnicodeScalarView()
                out.append(contentsOf: chars[startCut..<stopCut])
                return String(out)
            }
        case .replace(let pattern, let content):
            return tokens.map { token in
                var t = HFText(bytes: Array(token.utf8), orig: nil)
                HFNormalizer.replace(&t, pattern, Array(content.utf8))
                return String(decoding: t.bytes, as: UTF8.self)
            }
        case .sequence(let items):
            var current = tokens
            for item in items { current = item.decodeChain(current) }
            return current
        }
    }

    /// The byte of a `<0xHH>` token (6 bytes; parsed like Rust's `u8::from_str_radix(_, 16)`).
    static func byteToken(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x41 + 10
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        if u[3] == 0x2B { return hex(u[4]) }  // from_str_radix accepts a leading '+'
        guard let hi = hex(u[3]), let lo = hex(u[4]) else { return nil }
        return hi * 16 + lo
    }
}

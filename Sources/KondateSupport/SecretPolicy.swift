import Foundation

/// Where an API key may go, and which environment variables a recipe may name as one (docs/security.md).
/// A recipe, a parent it extends, a `--set` or a downloaded release's manifest is text from someone
/// else: none of them alone can make Kondate send a secret of this machine elsewhere.
public enum SecretPolicy {
    /// The environment variable in which the user names further variables a judge may read, separated
    /// by commas (a recipe cannot set it).
    public static let allowVariable = "KONDATE_ALLOW_KEY_ENV"

    /// Whether a recipe may name `variable` as the judge's key: names ending in `_API_KEY` (OPENAI_API_KEY,
    /// JUDGE_API_KEY…), or names the user listed in KONDATE_ALLOW_KEY_ENV.
    public static func keyVariableAllowed(_ variable: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        let allowed = (environment[allowVariable] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if allowed.contains(variable) { return true }
        guard variable.hasSuffix("_API_KEY"), let first = variable.unicodeScalars.first, ("A"..."Z").contains(first) else { return false }
        return variable.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    /// Why an API key may not go to `url`, or nil when it may: only over https, or over plain http to a
    /// loopback address (a server on this machine), so that no key crosses a network in clear.
    public static func refusalToSendKey(to url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            return "'\(url)' is not a URL"
        }
        if scheme == "https" { return nil }
        let host = (components.host ?? "").lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if host == "localhost" || host == "::1" || host.hasPrefix("127.") { return nil }
        return "\(url) is plain http to \(host.isEmpty ? "no host" : host): the API key would cross the network in clear; " +
            "use https, or run the judge on this machine (http://127.0.0.1:PORT)"
    }
}

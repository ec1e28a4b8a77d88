import KondateRecipe
import KondateSupport

/// One line of the comparison of two plans (`kondate diff` of recipes): the value on each side,
/// formatted and as JSON, and the relative change of a number.
public struct PlanDelta: Sendable {
    public var name: String
    public var old: String
    public var new: String
    public var oldJSON: JSON
    public var newJSON: JSON
    public var relative: Double?

    public static func number(_ name: String, _ a: Double, _ b: Double, _ show: (Double) -> String) -> PlanDelta {
        PlanDelta(name: name, old: show(a), new: show(b), oldJSON: .double(a), newJSON: .double(b), relative: a != 0 && a != b ? (b - a) / a : nil)
    }

    public static func rows(_ a: Plan, _ b: Plan) -> [PlanDelta] {
        var rows: [PlanDelta] = [
            number("parameters", Double(a.parameters.total), Double(b.parameters.total)) { Format.count($0) },
            number("training tokens", Double(a.trainingTokens), Double(b.trainingTokens)) { Format.count($0) },
            number("steps", Double(a.steps), Double(b.steps)) { Format.grouped(Int(saturating: $0)) },
            number("tokens per step", Double(a.tokensPerStep), Double(b.tokensPerStep)) { Format.grouped(Int(saturating: $0)) },
            number("devices", Double(a.world), Double(b.world)) { Format.grouped(Int(saturating: $0)) },
            PlanDelta(name: "layout (t×p×d)", old: layout(a), new: layout(b), oldJSON: .string(layout(a)), newJSON: .string(layout(b)), relative: nil),
            number("memory per device", a.memory.peak.total, b.memory.peak.total) { Format.bytes($0) },
        ]
        if let ca = a.cost, let cb = b.cost {
            rows.append(number("model FLOPs", ca.modelFlops, cb.modelFlops) { Format.scientific($0) })
            rows.append(number("estimated time", ca.seconds, cb.seconds) { Format.duration($0) })
            rows.append(number("device-hours", ca.deviceHours, cb.deviceHours) { Format.grouped(Int(saturating: $0.rounded())) })
        }
        return rows
    }

    public static func layout(_ p: Plan) -> String {
        "\(p.recipe.parallel.tensor)×\(p.recipe.parallel.pipeline)×\(p.recipe.parallel.data)"
    }
}

import Foundation
import KondateEval
import KondateMPI
import KondateRecipe
import KondateSupport
import KondateTraining

/// How a failure reaches the user: one diagnostic with a code from the catalogue, and an exit status
/// (docs/runs.md, "Exit statuses"): 1 for what the user fixes (the recipe, an input file, the machine),
/// 2 for a bug in Kondate. Errors are values all the way up; this is the one place that names them.
public enum FailureReport {
    public static func of(_ error: any Error) -> (diagnostic: Diagnostic, status: Int32) {
        func user(_ code: DiagnosticCode, _ message: String, at location: SourceLocation? = nil) -> (Diagnostic, Int32) {
            (Diagnostic(.error, code, message, at: location), 1)
        }
        switch error {
        case let e as KondateError:
            return (e.diagnostic, e.exitStatus)
        case let e as FileError:
            let code: DiagnosticCode = switch e.kind {
            case .tokenizer: .tokenizerFile
            case .checkpoint: .checkpointFile
            case .model, .safetensors: .modelFile
            }
            return user(code, e.description)
        case let e as TrainingError:
            return user(.numerics, e.description)
        case let e as MPIError:
            return user(.mpi, e.description)
        case let e as JudgeError:
            return user(.judge, e.message)
        case let e as EvalError:
            return user(.inputData, e.message, at: e.file.isEmpty ? nil : SourceLocation(file: e.file, line: e.line ?? 1, column: 1))
        case let e as TensorBoardError:
            return user(.disk, e.description)
        case let e as CocoaError where e.code.rawValue >= CocoaError.fileWriteUnknown.rawValue && e.code.rawValue <= CocoaError.fileWriteVolumeReadOnly.rawValue:
            return user(.disk, e.localizedDescription)
        case let e as CocoaError where e.code.rawValue >= CocoaError.fileNoSuchFile.rawValue && e.code.rawValue <= CocoaError.fileReadUnknownStringEncoding.rawValue:
            return user(.inputData, e.localizedDescription)
        case let e as POSIXError:
            return user(.disk, "\(e.code): \(e.localizedDescription)")
        default:
            return (KondateError.bug("\(type(of: error)): \(error)").diagnostic, 2)
        }
    }
}

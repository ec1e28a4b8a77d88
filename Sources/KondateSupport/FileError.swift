/// A problem with a file Kondate reads or writes: which file, what is wrong with it, and what kind of
/// file it is. The one "path + reason" error of the libraries below the recipe language (tokenizers,
/// checkpoints, model directories, safetensors); the CLI turns its kind into a diagnostic code.
public struct FileError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// A tokenizer.json or SentencePiece model.
        case tokenizer
        /// A training checkpoint directory.
        case checkpoint
        /// A Hugging Face model directory (config.json and weights).
        case model
        /// A safetensors file.
        case safetensors
    }

    public var kind: Kind
    public var path: String
    public var reason: String

    public init(_ kind: Kind, _ path: String, _ reason: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

import Foundation

/// How llm-jp-eval v1.3 turns a generated text and a gold answer into the strings it scores
/// (`get_evaluation_result` in `src/llm_jp_eval/utils.py`):
///
/// ```python
/// y_pred = normalize(generated.split("\n\n")[0]).strip()
/// y_true = normalize(sample["output"])
/// def normalize(input_str): return unicodedata.normalize("NFKC", input_str)
/// ```
///
/// The prediction is cut at the first blank line (`"\n\n"`, so single newlines survive: the multi-line
/// answers of chabsa and wiki_* keep their lines for `set_f1`), NFKC-normalized, then stripped of
/// surrounding whitespace. The gold answer is only NFKC-normalized. NFKC here is Foundation's
/// `precomposedStringWithCompatibilityMapping`.
public enum AnswerPostprocessing {
    /// `unicodedata.normalize("NFKC", text)`.
    public static func normalize(_ text: String) -> String {
        text.precomposedStringWithCompatibilityMapping
    }

    /// The scored prediction: the text before the first `"\n\n"`, NFKC-normalized and stripped.
    public static func prediction(fromGenerated generated: String) -> String {
        let firstBlock = PythonText.split(PythonText.codePoints(generated), on: ["\n", "\n"])[0]
        let normalized = normalize(PythonText.string(firstBlock))
        return PythonText.string(PythonText.strip(PythonText.codePoints(normalized)))
    }

    /// The scored gold answer: NFKC only.
    public static func gold(_ answer: String) -> String {
        normalize(answer)
    }
}

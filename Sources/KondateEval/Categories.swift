/// llm-jp-eval v1.3's task categories and its overall average.
///
/// Source: `post_process_score_results` in llm-jp-eval's `src/llm_jp_eval/utils.py` (v1.3.x), which maps
/// each category to `"<dataset>_<metric>"` score keys, sets every category to the mean of its keys' scores
/// and `AVG` to the mean of the category scores; it does so only when `target_dataset` is `"all"`. The
/// same categories, the same one-metric-per-dataset choice (COMET for translation) and the exclusion of
/// JSTS from the average are documented by the llm-jp Open Japanese LLM Leaderboard, which scores with
/// llm-jp-eval ("The calculation of the average score (AVG) includes only the scores of datasets marked
/// with a ⭐"; JSTS "is supported by llm-jp-eval, but it is not included in the evaluation score average").
///
/// JSTS (`jsts_pearson`, `jsts_spearman`) belongs to no category. MT is scored with `comet_wmt22`, which
/// Kondate does not compute; supply COMET scores from elsewhere to get an MT category, or read the result's
/// `isComplete` to see that it is missing.
public enum LLMJPCategories {
    /// One category: its name, what llm-jp-eval calls the task, and the score keys averaged into it.
    public struct Category: Sendable, Equatable {
        public let name: String
        public let task: String
        /// `"<dataset>_<metric>"` keys, the way llm-jp-eval names dataset scores.
        public let scoreKeys: [String]
    }

    /// The category table of llm-jp-eval v1.3, in its order.
    public static let table: [Category] = [
        Category(name: "NLI", task: "Natural language inference",
                 scoreKeys: ["jamp_exact_match", "janli_exact_match", "jnli_exact_match", "jsem_exact_match",
                             "jsick_exact_match"]),
        Category(name: "QA", task: "Question answering", scoreKeys: ["jemhopqa_char_f1", "niilc_char_f1"]),
        Category(name: "RC", task: "Reading comprehension", scoreKeys: ["jsquad_char_f1"]),
        Category(name: "MC", task: "Multiple choice question answering", scoreKeys: ["jcommonsenseqa_exact_match"]),
        Category(name: "EL", task: "Entity linking", scoreKeys: ["chabsa_set_f1"]),
        Category(name: "FA", task: "Fundamental analysis",
                 scoreKeys: ["wiki_reading_char_f1", "wiki_ner_set_f1", "wiki_dependency_set_f1", "wiki_pas_set_f1",
                             "wiki_coreference_set_f1"]),
        Category(name: "MR", task: "Mathematical reasoning", scoreKeys: ["mawps_exact_match"]),
        Category(name: "MT", task: "Machine translation",
                 scoreKeys: ["alt-e-to-j_comet_wmt22", "alt-j-to-e_comet_wmt22", "wikicorpus-e-to-j_comet_wmt22",
                             "wikicorpus-j-to-e_comet_wmt22"]),
        Category(name: "HE", task: "Human examination", scoreKeys: ["mmluen_exact_match", "jmmlu_exact_match"]),
    ]

    /// Score keys llm-jp-eval reports but averages into no category.
    public static let uncategorized = ["jsts_pearson", "jsts_spearman"]

    /// The metric whose score feeds a dataset's category (`"jsquad"` → `"char_f1"`), nil for datasets
    /// outside every category.
    public static func categoryMetric(forDataset dataset: String) -> String? {
        for category in table {
            for key in category.scoreKeys where key.hasPrefix(dataset + "_") {
                let metric = String(key.dropFirst(dataset.count + 1))
                if Metrics.names.contains(metric) || Metrics.modelBasedNames.contains(metric) { return metric }
            }
        }
        return nil
    }

    /// Per-category scores and their average.
    public struct Report: Sendable, Equatable {
        /// Every category of `table`, in order, with the mean of the scores found for it (nil when none
        /// of its keys had a score).
        public var categories: [(name: String, score: Double?)]
        /// The mean of the category scores that exist (nil when none does).
        public var average: Double?
        /// Whether every category has a score, i.e. whether `average` is llm-jp-eval's `AVG`.
        public var isComplete: Bool

        /// The score of one category.
        public func score(of category: String) -> Double? {
            categories.first { $0.name == category }?.score ?? nil
        }

        public static func == (a: Report, b: Report) -> Bool {
            a.average == b.average && a.isComplete == b.isComplete && a.categories.count == b.categories.count
                && zip(a.categories, b.categories).allSatisfy { $0.name == $1.name && $0.score == $1.score }
        }
    }

    /// Category scores and the average from dataset scores keyed `"<dataset>_<metric>"` (other keys are
    /// ignored). Each category is the plain mean of the keys present, the average the plain mean of the
    /// categories; with every key present this is llm-jp-eval's computation.
    public static func report(_ scores: [String: Double]) -> Report {
        let categories: [(name: String, score: Double?)] = table.map { category in
            let values = category.scoreKeys.compactMap { scores[$0] }
            return (category.name, values.isEmpty ? nil : values.reduce(0, +) / Double(values.count))
        }
        let present = categories.compactMap(\.score)
        return Report(categories: categories,
                      average: present.isEmpty ? nil : present.reduce(0, +) / Double(present.count),
                      isComplete: present.count == table.count)
    }
}

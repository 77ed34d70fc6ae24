//! Building a consensus from the experts' answers: canonical comparison of their final answers,
//! the grouping, and the rule that says when a query is decided. Pure functions over the query's
//! events; the consensus service folds the events, asks a semantic method (embeddings, a judge)
//! about the pairs these leave undecided, and appends what these return.

mod canonical;
mod compare;
mod decide;
mod events;
mod judge;
mod numbers;
mod pieces;
mod polarity;
mod quantity;
mod question;
mod tokens;
mod words;

pub use canonical::{Canon, canonicalize};
pub use compare::{Contradiction, SameBy, Verdict, compare};
pub use decide::{Decision, Progress, decide, default_quorum, may_decide_now, undecided_pairs};
pub use events::{
    ConsensusFailed, ConsensusReached, Dissent, FailureReason, GroupingInfo, Judged, Link,
};
pub use judge::{equivalence_prompt, judge_prompt, parse_equivalence};
pub use numbers::same_value;
pub use question::QuestionTerms;

/// How the answers of a query group: the winning group first.
#[derive(Clone, Debug, PartialEq)]
pub struct Grouping {
    /// Groups of indexes into the answers, heaviest first (ties: the earliest answer first).
    pub groups: Vec<Vec<usize>>,
    /// The winning group's representative answer (index into the answers).
    pub representative: usize,
    /// Why each pair in the winning group is one, as (index, index, rule), the smaller index first.
    pub links: Vec<(usize, usize, SameBy)>,
}

/// One expert's answer, as a strategy sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub expert: String,
    /// The final answer compared (the whole reply when it named none).
    pub text: String,
    pub weight: f64,
}

/// Two answers, by their texts, that a semantic method found to mean the same.
#[derive(Clone, Debug, PartialEq)]
pub struct SamePair {
    pub a: String,
    pub b: String,
    pub by: SameBy,
}

/// Every pair of a query's answers compared: offline first, then what a semantic method settled.
#[derive(Clone, Debug)]
pub struct Comparisons {
    n: usize,
    verdicts: Vec<Verdict>,
}

impl Comparisons {
    /// Compares every pair of `answers` offline, then takes each pair in `semantic` as the same,
    /// unless a contradiction forbids it (a hard one always; a difference of names unless a
    /// judge found them the same).
    pub fn new(question: &str, answers: &[Answer], tolerance: f64, semantic: &[SamePair]) -> Self {
        let terms = QuestionTerms::new(question);
        let canon: Vec<Canon> = answers
            .iter()
            .map(|a| canonicalize(&a.text, &terms))
            .collect();
        let n = answers.len();
        let mut verdicts = vec![Verdict::Unknown; n * n];
        for i in 0..n {
            for j in 0..n {
                verdicts[i * n + j] = if i == j {
                    Verdict::Same(SameBy::Canonical)
                } else if j < i {
                    verdicts[j * n + i]
                } else {
                    let offline = compare(&canon[i], &canon[j], tolerance);
                    let settled = semantic.iter().find(|p| {
                        (p.a == answers[i].text && p.b == answers[j].text)
                            || (p.b == answers[i].text && p.a == answers[j].text)
                    });
                    match (offline, settled) {
                        (Verdict::Unknown, Some(p)) => Verdict::Same(p.by),
                        (Verdict::Contradicts(Contradiction::Names), Some(p))
                            if p.by == SameBy::Judge =>
                        {
                            Verdict::Same(p.by)
                        }
                        (v, _) => v,
                    }
                };
            }
        }
        Comparisons { n, verdicts }
    }

    pub fn verdict(&self, i: usize, j: usize) -> Verdict {
        self.verdicts[i * self.n + j]
    }

    fn same(&self, i: usize, j: usize) -> bool {
        matches!(self.verdict(i, j), Verdict::Same(_))
    }

    /// A contradiction no chain of sameness may bridge.
    fn contradicts(&self, i: usize, j: usize) -> bool {
        matches!(self.verdict(i, j), Verdict::Contradicts(c) if c.is_hard())
    }
}

/// Groups `answers` by `comparisons`: two groups join when an answer of one is the same as an
/// answer of the other and no answer of one contradicts one of the other for good (a hard
/// contradiction). So an answer that gives two names (`water (H₂O)`) joins the answers that give
/// either, while a yes and a no never share a group whatever lies between them. Pairs are taken
/// in order, so the same answers always group the same way. Groups are ordered by total weight,
/// then by their earliest answer; the representative is the member the same as most others, then
/// the shortest.
pub fn group(answers: &[Answer], comparisons: &Comparisons) -> Grouping {
    let n = answers.len();
    let mut group_of: Vec<usize> = (0..n).collect();
    for i in 0..n {
        for j in i + 1..n {
            let (gi, gj) = (group_of[i], group_of[j]);
            if gi == gj || !comparisons.same(i, j) {
                continue;
            }
            let of = |g: usize| -> Vec<usize> { (0..n).filter(|&k| group_of[k] == g).collect() };
            let (a, b) = (of(gi), of(gj));
            let blocked = a
                .iter()
                .any(|&x| b.iter().any(|&y| comparisons.contradicts(x, y)));
            if !blocked {
                for g in group_of.iter_mut().filter(|g| **g == gj) {
                    *g = gi;
                }
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in 0..n {
        match groups.iter_mut().find(|g| group_of[g[0]] == group_of[i]) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    let weight = |g: &Vec<usize>| g.iter().map(|&i| answers[i].weight).sum::<f64>();
    groups.sort_by(|a, b| weight(b).total_cmp(&weight(a)).then(a[0].cmp(&b[0])));
    let best: &[usize] = groups.first().map_or(&[], Vec::as_slice);
    let links_of = |i: usize| {
        best.iter()
            .filter(|&&j| j != i && comparisons.same(i, j))
            .count()
    };
    let representative = best
        .iter()
        .copied()
        .min_by_key(|&i| {
            (
                std::cmp::Reverse(links_of(i)),
                answers[i].text.chars().count(),
                i,
            )
        })
        .unwrap_or(0);
    let mut links = Vec::new();
    for (x, &i) in best.iter().enumerate() {
        for &j in &best[x + 1..] {
            if let Verdict::Same(by) = comparisons.verdict(i, j) {
                links.push((i, j, by));
            }
        }
    }
    Grouping {
        groups,
        representative,
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(texts: &[(&str, f64)]) -> Vec<Answer> {
        texts
            .iter()
            .enumerate()
            .map(|(i, (t, w))| Answer {
                expert: format!("e{i}"),
                text: (*t).to_owned(),
                weight: *w,
            })
            .collect()
    }

    fn grouped(question: &str, a: &[Answer]) -> Grouping {
        group(a, &Comparisons::new(question, a, 0.0, &[]))
    }

    #[test]
    fn canonical_answers_group_by_weight() {
        let q = "What is the capital of France?";
        let a = answers(&[("Paris", 1.0), ("paris.", 1.0), ("Lyon", 1.0)]);
        assert_eq!(grouped(q, &a).groups, vec![vec![0, 1], vec![2]]);
        // Weight decides over count.
        let a = answers(&[("Paris", 1.0), ("Paris", 1.0), ("Lyon", 3.0)]);
        assert_eq!(grouped(q, &a).groups[0], vec![2]);
    }

    #[test]
    fn paraphrases_group_and_contradictions_stay_apart() {
        let a = answers(&[
            ("The capital of France is Paris.", 1.0),
            ("Paris is the capital of France", 1.0),
            ("The capital of France is not Paris.", 1.0),
            ("The capital of France is Lyon.", 1.0),
        ]);
        let g = grouped("What is the capital of France?", &a);
        assert_eq!(g.groups[0], vec![0, 1]);
        assert_eq!(g.groups.len(), 3, "{:?}", g.groups);
    }

    #[test]
    fn the_plainest_answer_represents_its_group() {
        let a = answers(&[
            (
                "It's Paris, which has been the French capital for centuries.",
                1.0,
            ),
            ("The capital of France is Paris.", 1.0),
            ("Paris", 1.0),
        ]);
        let g = grouped("What is the capital of France?", &a);
        assert_eq!(g.groups, vec![vec![0, 1, 2]]);
        assert_eq!(a[g.representative].text, "Paris");
        assert_eq!(g.links.len(), 3);
    }

    #[test]
    fn a_semantic_method_settles_only_what_no_contradiction_forbids() {
        let q = "Which country has the largest economy?";
        let a = answers(&[("USA", 1.0), ("The United States", 1.0), ("China", 1.0)]);
        let by = |x: &str, y: &str, by| SamePair {
            a: x.into(),
            b: y.into(),
            by,
        };
        let same = [by("USA", "The United States", SameBy::Embeddings)];
        let g = group(&a, &Comparisons::new(q, &a, 0.0, &same));
        assert_eq!(g.groups[0], vec![0, 1]);
        // Names differ: embeddings may not merge them, a judge may.
        let a = answers(&[("Holland", 1.0), ("The Netherlands", 1.0)]);
        let emb = [by("Holland", "The Netherlands", SameBy::Embeddings)];
        assert_eq!(
            group(&a, &Comparisons::new(q, &a, 0.0, &emb)).groups.len(),
            2
        );
        let judge = [by("Holland", "The Netherlands", SameBy::Judge)];
        assert_eq!(
            group(&a, &Comparisons::new(q, &a, 0.0, &judge))
                .groups
                .len(),
            1
        );
        // A hard contradiction: nobody merges it.
        let a = answers(&[("8", 1.0), ("9", 1.0)]);
        let judge = [by("8", "9", SameBy::Judge)];
        let q = "How many planets are there?";
        assert_eq!(
            group(&a, &Comparisons::new(q, &a, 0.0, &judge))
                .groups
                .len(),
            2
        );
    }

    #[test]
    fn the_judge_is_asked_about_each_pair_and_read_strictly() {
        let pairs = vec![
            ("USA".to_owned(), "The United States".to_owned()),
            ("USA".to_owned(), "China".to_owned()),
        ];
        let prompt = equivalence_prompt("Largest economy?", &pairs);
        assert!(
            prompt.contains("1. A: USA\n   B: The United States"),
            "{prompt}"
        );
        assert!(prompt.contains("2. A: USA\n   B: China"), "{prompt}");
        assert_eq!(
            parse_equivalence(&["[true, false]"], 2),
            Some(vec![true, false])
        );
        assert_eq!(
            parse_equivalence(
                &["no array", "Pair 1 [sic] ... Final answer: [false,true]"],
                2
            ),
            Some(vec![false, true])
        );
        assert_eq!(
            parse_equivalence(&["[true]"], 2),
            None,
            "one verdict per pair"
        );
        assert_eq!(parse_equivalence(&["[1, 0]"], 2), None);
    }

    #[test]
    fn the_judge_sees_the_question_and_every_answer_by_expert() {
        let a = answers(&[("Lyon", 1.0), ("Paris", 1.0)]);
        let prompt = judge_prompt("Capital of France?", &[a[1].clone(), a[0].clone()]);
        assert!(prompt.contains("Question: Capital of France?"), "{prompt}");
        let e0 = prompt.find("- e0: Lyon").expect("e0's answer");
        let e1 = prompt.find("- e1: Paris").expect("e1's answer");
        assert!(e0 < e1, "answers by expert, whatever order they came in");
    }
}

//! Building a consensus from the experts' answers: the strategies that group answers, and the rule
//! that says when a query is decided. Pure functions over the query's events; the consensus service
//! folds the events and appends what these return.

mod decide;
mod normalize;
mod similarity;

use serde::{Deserialize, Serialize};

pub use decide::{Decision, Progress, decide, default_quorum};
pub use normalize::normalize;
pub use similarity::similarity;

use crate::query::Strategy;

/// How the answers of a query group: the winning group first.
#[derive(Clone, Debug, PartialEq)]
pub struct Grouping {
    /// Groups of indexes into the answers, heaviest first (ties: the earliest answer first).
    pub groups: Vec<Vec<usize>>,
    /// The winning group's representative answer (index into the answers).
    pub representative: usize,
}

/// One expert's answer, as a strategy sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub expert: String,
    pub text: String,
    pub weight: f64,
}

/// Groups `answers` by `strategy`. `judge` groups as `similarity` does: the judge's merge is an
/// expert call the service makes on top.
pub fn group(strategy: Strategy, answers: &[Answer]) -> Grouping {
    match strategy {
        Strategy::Majority => group_by(answers, |a, b| normalize(a) == normalize(b)),
        Strategy::Similarity | Strategy::Judge => {
            group_by(answers, |a, b| similarity(a, b) >= similarity::SAME)
        }
    }
}

/// Greedy grouping: each answer joins the first group whose first answer it matches. Groups are
/// ordered by total weight, then by their first answer's position (the earliest wins a tie). The
/// representative is the group's most central answer: the one most similar to the others.
fn group_by(answers: &[Answer], same: impl Fn(&str, &str) -> bool) -> Grouping {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|g| same(&answers[g[0]].text, &a.text))
        {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    let weight = |g: &Vec<usize>| g.iter().map(|&i| answers[i].weight).sum::<f64>();
    groups.sort_by(|a, b| weight(b).total_cmp(&weight(a)).then(a[0].cmp(&b[0])));
    let representative = groups.first().map_or(0, |g| central(answers, g));
    Grouping {
        groups,
        representative,
    }
}

fn central(answers: &[Answer], group: &[usize]) -> usize {
    let score = |i: usize| {
        group
            .iter()
            .filter(|&&j| j != i)
            .map(|&j| similarity(&answers[i].text, &answers[j].text))
            .sum::<f64>()
    };
    *group
        .iter()
        .max_by(|&&a, &&b| score(a).total_cmp(&score(b)).then(b.cmp(&a)))
        .expect("a group is never empty")
}

/// The data of `quorum.consensus.reached`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsensusReached {
    pub answer: String,
    pub strategy: Strategy,
    /// The winning group's share of the answering experts' weight, 0 to 1.
    pub agreement: f64,
    pub majority: Vec<String>,
    pub dissent: Vec<Dissent>,
    /// Under the `judge` strategy: who merged the answers into `answer`, or why it could not (the
    /// most central answer of the largest group stands then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<Judged>,
    /// The saga (`saga/<id>`) the agreed answer started, when it is a tool plan the query lets a
    /// consensus propose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saga: Option<String>,
}

/// The judge's part in a consensus: its provenance, and its error when it gave no merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub expert: String,
    pub provider: String,
    pub model: String,
    pub latency_ms: u64,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the judge is asked: the question and every answer, by expert, and to reply with the
/// merged answer alone (it becomes the consensus answer as it comes).
pub fn judge_prompt(question: &str, answers: &[Answer]) -> String {
    let mut sorted: Vec<&Answer> = answers.iter().collect();
    sorted.sort_by(|a, b| a.expert.cmp(&b.expert));
    let mut prompt = String::from(
        "You judge a panel of experts. Merge their answers to the question into one answer that \
         keeps what they agree on. Reply with the merged answer only.\n\nQuestion: ",
    );
    prompt.push_str(question);
    prompt.push_str("\n\nAnswers:\n");
    for a in sorted {
        prompt.push_str(&format!("- {}: {}\n", a.expert, a.text));
    }
    prompt
}

/// Why no consensus was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Every expert answered or failed, and no group reached the quorum.
    NoQuorum,
    /// The deadline passed before the quorum was reached.
    Deadline,
    /// No expert answered.
    AllFailed,
}

/// The data of `quorum.consensus.failed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsensusFailed {
    pub reason: FailureReason,
    pub strategy: Strategy,
    /// The best group's share of the answering experts' weight (0 when none answered).
    pub agreement: f64,
    pub dissent: Vec<Dissent>,
}

/// An expert outside the majority: its answer, or why it had none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dissent {
    pub expert: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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

    #[test]
    fn majority_groups_normalised_exact_answers_by_weight() {
        let a = answers(&[("Paris", 1.0), ("paris.", 1.0), ("Lyon", 1.0)]);
        let g = group(Strategy::Majority, &a);
        assert_eq!(g.groups, vec![vec![0, 1], vec![2]]);
        // Weight decides over count.
        let a = answers(&[("Paris", 1.0), ("Paris", 1.0), ("Lyon", 3.0)]);
        assert_eq!(group(Strategy::Majority, &a).groups[0], vec![2]);
    }

    #[test]
    fn similarity_groups_paraphrases_and_separates_contradictions() {
        let a = answers(&[
            ("The capital of France is Paris.", 1.0),
            ("Paris is the capital of France", 1.0),
            ("The capital of France is not Paris.", 1.0),
            ("The capital of France is Lyon.", 1.0),
        ]);
        let g = group(Strategy::Similarity, &a);
        assert_eq!(g.groups[0], vec![0, 1]);
        assert_eq!(g.groups.len(), 3, "{:?}", g.groups);
        assert!(g.representative == 0 || g.representative == 1);
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

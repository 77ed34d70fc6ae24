//! When a query is decided, and what the decision says.
//!
//! A query waits until every expert asked has answered or failed, or until its deadline. Then the
//! winning group reaches the quorum (k of the n asked) or it does not. Waiting for the rest after the
//! quorum is met is deliberate: the dissent is part of the result.

use super::{Answer, ConsensusFailed, ConsensusReached, Dissent, FailureReason, group};
use crate::query::Strategy;

/// What is known of a query so far.
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    /// The experts asked (n).
    pub asked: &'a [String],
    /// Answers that must agree (k).
    pub quorum: usize,
    pub strategy: Strategy,
    /// Answers in the order they were recorded; an expert's first answer counts.
    pub answers: &'a [Answer],
    /// (expert, why) for each expert that failed.
    pub failures: &'a [(String, String)],
    pub deadline_passed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Not yet: experts are still pending and the deadline has not passed.
    Wait,
    Reached(ConsensusReached),
    Failed(ConsensusFailed),
}

/// The simple majority of `n` experts: more than half.
pub fn default_quorum(n: usize) -> usize {
    n / 2 + 1
}

pub fn decide(p: &Progress<'_>) -> Decision {
    let mut answers: Vec<Answer> = Vec::new();
    for a in p.answers {
        if !answers.iter().any(|b| b.expert == a.expert) {
            answers.push(a.clone());
        }
    }
    // By expert, so that the same answers give the same decision whatever order they came in.
    answers.sort_by(|a, b| a.expert.cmp(&b.expert));
    let mut failures = p.failures.to_vec();
    failures.sort();
    let done =
        |e: &String| answers.iter().any(|a| &a.expert == e) || failures.iter().any(|(f, _)| f == e);
    let pending: Vec<&String> = p.asked.iter().filter(|e| !done(e)).collect();
    if !pending.is_empty() && !p.deadline_passed {
        return Decision::Wait;
    }
    let grouping = group(p.strategy, &answers);
    let best: &[usize] = grouping.groups.first().map_or(&[], Vec::as_slice);
    let total: f64 = answers.iter().map(|a| a.weight).sum();
    let agreement = if total > 0.0 {
        best.iter().map(|&i| answers[i].weight).sum::<f64>() / total
    } else {
        0.0
    };
    let mut dissent: Vec<Dissent> = answers
        .iter()
        .enumerate()
        .filter(|(i, _)| !best.contains(i))
        .map(|(_, a)| Dissent {
            expert: a.expert.clone(),
            answer: Some(a.text.clone()),
            error: None,
        })
        .collect();
    dissent.extend(failures.iter().map(|(e, why)| Dissent {
        expert: e.clone(),
        answer: None,
        error: Some(why.clone()),
    }));
    dissent.extend(pending.iter().map(|e| Dissent {
        expert: (*e).clone(),
        answer: None,
        error: Some("no answer before the deadline".into()),
    }));
    // Rounded so that the same inputs always serialize to the same bytes.
    let agreement = (agreement * 1e6).round() / 1e6;
    if !best.is_empty() && best.len() >= p.quorum.max(1) {
        return Decision::Reached(ConsensusReached {
            answer: answers[grouping.representative].text.clone(),
            strategy: p.strategy,
            agreement,
            majority: best.iter().map(|&i| answers[i].expert.clone()).collect(),
            dissent,
            judge: None,
            saga: None,
        });
    }
    let reason = if answers.is_empty() && pending.is_empty() {
        FailureReason::AllFailed
    } else if pending.is_empty() {
        FailureReason::NoQuorum
    } else {
        FailureReason::Deadline
    };
    Decision::Failed(ConsensusFailed {
        reason,
        strategy: p.strategy,
        agreement,
        dissent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("e{i}")).collect()
    }

    fn answer(i: usize, text: &str) -> Answer {
        Answer {
            expert: format!("e{i}"),
            text: text.into(),
            weight: 1.0,
        }
    }

    fn progress<'a>(
        asked: &'a [String],
        answers: &'a [Answer],
        failures: &'a [(String, String)],
        deadline_passed: bool,
    ) -> Progress<'a> {
        Progress {
            asked,
            quorum: 2,
            strategy: Strategy::Majority,
            answers,
            failures,
            deadline_passed,
        }
    }

    #[test]
    fn two_of_three_with_one_down_is_reached_and_lists_the_failure() {
        let asked = names(3);
        let answers = [answer(0, "Paris"), answer(1, "paris")];
        let failures = [("e2".to_owned(), "timeout".to_owned())];
        match decide(&progress(&asked, &answers, &failures, false)) {
            Decision::Reached(r) => {
                assert_eq!(r.answer, "Paris");
                assert_eq!(r.majority, ["e0", "e1"]);
                assert_eq!(r.agreement, 1.0);
                assert_eq!(r.dissent[0].expert, "e2");
                assert_eq!(r.dissent[0].error.as_deref(), Some("timeout"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn it_waits_for_the_rest_until_the_deadline() {
        let asked = names(3);
        let answers = [answer(0, "Paris"), answer(1, "Paris")];
        assert_eq!(
            decide(&progress(&asked, &answers, &[], false)),
            Decision::Wait
        );
        match decide(&progress(&asked, &answers, &[], true)) {
            Decision::Reached(r) => {
                assert_eq!(
                    r.dissent[0].error.as_deref(),
                    Some("no answer before the deadline")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn all_failed_no_quorum_and_deadline_are_told_apart() {
        let asked = names(3);
        let failures: Vec<(String, String)> = asked
            .iter()
            .map(|e| (e.clone(), "server".to_owned()))
            .collect();
        let reason = |d: Decision| match d {
            Decision::Failed(f) => f.reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(decide(&progress(&asked, &[], &failures, false))),
            FailureReason::AllFailed
        );
        let split = [answer(0, "Paris"), answer(1, "Lyon"), answer(2, "Nice")];
        assert_eq!(
            reason(decide(&progress(&asked, &split, &[], false))),
            FailureReason::NoQuorum
        );
        let one = [answer(0, "Paris")];
        assert_eq!(
            reason(decide(&progress(&asked, &one, &[], true))),
            FailureReason::Deadline
        );
    }

    #[test]
    fn an_experts_first_answer_counts() {
        let asked = names(2);
        let answers = [answer(0, "Paris"), answer(0, "Lyon"), answer(1, "Paris")];
        match decide(&progress(&asked, &answers, &[], false)) {
            Decision::Reached(r) => assert_eq!(r.majority, ["e0", "e1"]),
            other => panic!("{other:?}"),
        }
    }
}

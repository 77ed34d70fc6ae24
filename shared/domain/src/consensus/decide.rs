//! When a query is decided, and what the decision says.
//!
//! A query is decided when every expert asked has answered or failed, when its deadline passes,
//! or, if it decides early, as soon as a quorum of the answers received agree (the experts still
//! pending are named, and their answers are recorded as late). Then the winning group reaches the
//! quorum (k of the n asked) or it does not.

use super::{
    Answer, Comparisons, ConsensusFailed, ConsensusReached, Dissent, FailureReason, GroupingInfo,
    Link, SamePair, Verdict, group,
};
use crate::query::Strategy;

/// What is known of a query so far.
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    pub question: &'a str,
    /// The experts asked (n).
    pub asked: &'a [String],
    /// Answers that must agree (k).
    pub quorum: usize,
    pub strategy: Strategy,
    /// Decide as soon as a quorum of the answers received agree, rather than wait for all.
    pub early: bool,
    /// Relative tolerance for comparing numbers.
    pub tolerance: f64,
    /// Answers in the order they were recorded; an expert's first answer counts.
    pub answers: &'a [Answer],
    /// (expert, why) for each expert that failed.
    pub failures: &'a [(String, String)],
    pub deadline_passed: bool,
    /// Pairs a semantic method found the same (see [`undecided_pairs`]).
    pub semantic: &'a [SamePair],
}

/// A decision is made once per query and moved straight into an event: boxing the large variant
/// would buy nothing.
#[allow(clippy::large_enum_variant)]
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

/// Each expert's first answer, by expert: the same answers give the same decision whatever order
/// they came in.
fn distinct(answers: &[Answer]) -> Vec<Answer> {
    let mut out: Vec<Answer> = Vec::new();
    for a in answers {
        if !out.iter().any(|b| b.expert == a.expert) {
            out.push(a.clone());
        }
    }
    out.sort_by(|a, b| a.expert.cmp(&b.expert));
    out
}

/// The experts asked that have neither answered nor failed.
fn pending<'a>(p: &Progress<'a>) -> Vec<&'a String> {
    let done = |e: &String| {
        p.answers.iter().any(|a| &a.expert == e) || p.failures.iter().any(|(f, _)| f == e)
    };
    p.asked.iter().filter(|e| !done(e)).collect()
}

/// Whether the answers in hand may decide the query now.
fn may_decide(p: &Progress<'_>, answered: usize, pending: usize) -> bool {
    pending == 0 || p.deadline_passed || (p.early && answered >= p.quorum.max(1))
}

/// Whether the answers in hand may decide the query now: every expert asked has answered or
/// failed, the deadline has passed, or an early query has a quorum of answers.
pub fn may_decide_now(p: &Progress<'_>) -> bool {
    may_decide(p, distinct(p.answers).len(), pending(p).len())
}

/// The pairs of distinct answer texts that the offline rules leave for a semantic method to
/// decide (unknown, or different only in names), when the query may be decided now; `None` while
/// it must wait anyway, so that no method is asked for nothing.
pub fn undecided_pairs(p: &Progress<'_>) -> Option<Vec<(String, String)>> {
    let answers = distinct(p.answers);
    if !may_decide(p, answers.len(), pending(p).len()) {
        return None;
    }
    let comparisons = Comparisons::new(p.question, &answers, p.tolerance, &[]);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for i in 0..answers.len() {
        for j in i + 1..answers.len() {
            let open = matches!(
                comparisons.verdict(i, j),
                Verdict::Unknown | Verdict::Contradicts(super::Contradiction::Names)
            );
            let pair = (answers[i].text.clone(), answers[j].text.clone());
            let seen = pairs
                .iter()
                .any(|(a, b)| (a, b) == (&pair.0, &pair.1) || (b, a) == (&pair.0, &pair.1));
            if open && pair.0 != pair.1 && !seen {
                pairs.push(pair);
            }
        }
    }
    Some(pairs)
}

pub fn decide(p: &Progress<'_>) -> Decision {
    let answers = distinct(p.answers);
    let mut failures = p.failures.to_vec();
    failures.sort();
    let pending = pending(p);
    if !may_decide(p, answers.len(), pending.len()) {
        return Decision::Wait;
    }
    let all_in = pending.is_empty() || p.deadline_passed;
    let comparisons = Comparisons::new(p.question, &answers, p.tolerance, p.semantic);
    let grouping = group(&answers, &comparisons);
    let best: &[usize] = grouping.groups.first().map_or(&[], Vec::as_slice);
    let reached = !best.is_empty() && best.len() >= p.quorum.max(1);
    if !reached && !all_in {
        return Decision::Wait;
    }
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
    if all_in {
        dissent.extend(pending.iter().map(|e| Dissent {
            expert: (*e).clone(),
            answer: None,
            error: Some("no answer before the deadline".into()),
        }));
    }
    // Rounded so that the same inputs always serialize to the same bytes.
    let agreement = (agreement * 1e6).round() / 1e6;
    if reached {
        let links = grouping
            .links
            .iter()
            .map(|&(i, j, by)| Link {
                a: answers[i].expert.clone(),
                b: answers[j].expert.clone(),
                by,
            })
            .collect();
        return Decision::Reached(ConsensusReached {
            answer: answers[grouping.representative].text.clone(),
            strategy: p.strategy,
            agreement,
            majority: best.iter().map(|&i| answers[i].expert.clone()).collect(),
            dissent,
            judge: None,
            saga: None,
            grouping: Some(GroupingInfo {
                method: "canonical".into(),
                links,
                ..GroupingInfo::default()
            }),
            pending: if all_in {
                Vec::new()
            } else {
                pending.into_iter().cloned().collect()
            },
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
            question: "What is the capital of France?",
            asked,
            quorum: 2,
            strategy: Strategy::Majority,
            early: false,
            tolerance: 0.0,
            answers,
            failures,
            deadline_passed,
            semantic: &[],
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

    #[test]
    fn an_early_query_is_decided_when_a_quorum_agrees() {
        let asked = names(3);
        let answers = [
            answer(0, "Paris"),
            answer(1, "The capital of France is Paris."),
        ];
        let mut p = progress(&asked, &answers, &[], false);
        p.early = true;
        match decide(&p) {
            Decision::Reached(r) => {
                assert_eq!(r.answer, "Paris");
                assert_eq!(r.pending, ["e2"]);
                assert!(r.dissent.is_empty(), "a pending expert is not a dissenter");
            }
            other => panic!("{other:?}"),
        }
        // Two answers that disagree: wait for the third.
        let split = [answer(0, "Paris"), answer(1, "Lyon")];
        let mut p = progress(&asked, &split, &[], false);
        p.early = true;
        assert_eq!(decide(&p), Decision::Wait);
        // One answer cannot make a quorum of two: nothing to ask a semantic method yet.
        let one = [answer(0, "Paris")];
        let mut p = progress(&asked, &one, &[], false);
        p.early = true;
        assert_eq!(undecided_pairs(&p), None);
    }

    #[test]
    fn only_pairs_the_offline_rules_leave_open_go_to_a_semantic_method() {
        let asked = names(3);
        let answers = [
            answer(0, "Paris"),
            answer(1, "The capital of France is Paris."),
            answer(2, "The City of Light"),
        ];
        let p = progress(&asked, &answers, &[], false);
        let pairs = undecided_pairs(&p).expect("all answered");
        assert_eq!(pairs.len(), 2, "{pairs:?}");
        assert!(
            pairs
                .iter()
                .all(|(a, b)| a == "The City of Light" || b == "The City of Light")
        );
    }
}

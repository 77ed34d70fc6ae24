//! `quorum bench consensus`: how well each way of grouping answers decides the labelled sets in
//! `eval/consensus.jsonl` (questions with 3-5 answers written as models write, each labelled with
//! the group a careful grader puts it in). For each method: pairwise precision and recall of
//! "these two answers are the same", how many pairs of different answers it merged, and the share
//! of sets decided right (a consensus naming the true majority when one exists, none when it
//! does not). The methods of before final answers (exact normalized text, word-set overlap) run
//! beside them as the baseline. Needs no stack: the semantic methods are asked over HTTP.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use quorum_consensus::judge::Judge;
use quorum_consensus::semantic::Semantic;
use quorum_domain::consensus::{
    self, Answer, Comparisons, Decision, Progress, SamePair, default_quorum,
};
use quorum_domain::query::Strategy;
use quorum_experts::embeddings::{Embedder, EmbeddingsConfig};
use quorum_experts::provider::openai::OpenAiConfig;
use quorum_experts::{ExpertConfig, ProviderConfig};
use serde::{Deserialize, Serialize};

mod legacy;
use legacy::evaluate_legacy;
mod report;

/// The shipped labelled sets: the ones the rules were developed against, and a held-out set
/// written apart from them.
const SHIPPED: &str = include_str!("../../../../eval/consensus.jsonl");
const HOLDOUT: &str = include_str!("../../../../eval/consensus-holdout.jsonl");

#[derive(Debug, clap::Args)]
pub struct ConsensusBenchArgs {
    /// Labelled sets to use instead of the shipped ones (JSON lines, as `eval/README.md` says).
    #[arg(long, value_name = "FILE")]
    pub sets: Option<PathBuf>,
    /// An OpenAI-compatible embeddings endpoint to measure, up to its version segment
    /// (`http://127.0.0.1:11434/v1`).
    #[arg(long, value_name = "URL")]
    pub embeddings_url: Option<String>,
    /// The embeddings model.
    #[arg(long, default_value = "text-embedding-3-small")]
    pub embeddings_model: String,
    /// Cosine similarity at or above which two answers are the same.
    #[arg(long, default_value_t = 0.85)]
    pub embeddings_threshold: f64,
    /// An OpenAI-compatible chat completions endpoint whose model judges equivalence.
    #[arg(long, value_name = "URL")]
    pub judge_url: Option<String>,
    /// The judge's model.
    #[arg(long, default_value = "gpt-4o-mini")]
    pub judge_model: String,
}

/// One labelled set.
#[derive(Clone, Debug, Deserialize)]
pub struct Set {
    pub id: String,
    pub category: String,
    pub question: String,
    pub answers: Vec<Labelled>,
    #[serde(default)]
    pub tolerance: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Labelled {
    pub text: String,
    pub group: String,
}

/// The figures of one method over every set.
#[derive(Debug, Serialize)]
pub struct MethodReport {
    pub method: String,
    pub sets: usize,
    pub decided_right: usize,
    pub share_right: f64,
    /// Of the pairs the method put together, the share that truly are the same.
    pub pair_precision: f64,
    /// Of the pairs that truly are the same, the share the method put together.
    pub pair_recall: f64,
    /// Pairs of different answers (different labels) the method put in one group.
    pub false_merges: usize,
    /// Calls made to a semantic method, and how long they took in all.
    pub calls: usize,
    pub call_ms: u64,
    /// The sets decided wrong, with what went wrong.
    pub wrong: Vec<Miss>,
}

#[derive(Debug, Serialize)]
pub struct Miss {
    pub id: String,
    pub category: String,
    pub expected: String,
    pub got: String,
}

#[derive(Debug, Serialize)]
pub struct ConsensusReport {
    pub collections: Vec<Collection>,
}

/// The figures of every method on one collection of sets.
#[derive(Debug, Serialize)]
pub struct Collection {
    pub name: String,
    pub sets: usize,
    pub methods: Vec<MethodReport>,
}

/// The collections to measure: the file given, or both shipped ones.
pub fn load(args: &ConsensusBenchArgs) -> anyhow::Result<Vec<(String, Vec<Set>)>> {
    match &args.sets {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(vec![(path.display().to_string(), parse_sets(&text)?)])
        }
        None => Ok(vec![
            ("eval/consensus.jsonl".into(), parse_sets(SHIPPED)?),
            (
                "eval/consensus-holdout.jsonl (held out)".into(),
                parse_sets(HOLDOUT)?,
            ),
        ]),
    }
}

/// Reads labelled sets, one JSON object a line; blank lines are passed over.
pub fn parse_sets(text: &str) -> anyhow::Result<Vec<Set>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let set: Set = serde_json::from_str(l).with_context(|| format!("line {}", i + 1))?;
            anyhow::ensure!(
                set.answers.len() >= 2,
                "line {}: a set needs at least two answers",
                i + 1
            );
            Ok(set)
        })
        .collect()
}

pub async fn run(args: &ConsensusBenchArgs) -> anyhow::Result<ConsensusReport> {
    let embedder = args.embeddings_url.as_ref().map(|url| {
        Embedder::new(EmbeddingsConfig {
            base_url: url.clone(),
            model: args.embeddings_model.clone(),
            api_key_env: "OPENAI_API_KEY".into(),
            timeout: Duration::from_secs(60),
            retry: Default::default(),
            threshold: args.embeddings_threshold,
        })
    });
    let judge = args.judge_url.as_ref().map(|url| {
        Judge::new(ExpertConfig {
            name: "judge".into(),
            provider: ProviderConfig::Openai(OpenAiConfig {
                base_url: url.clone(),
                model: args.judge_model.clone(),
                api_key_env: "OPENAI_API_KEY".into(),
                structured_output: true,
                max_tokens: None,
            }),
            weight: 1.0,
            timeout: Duration::from_secs(120),
            breaker: Default::default(),
            retry: Default::default(),
            rate_per_second: None,
            concurrency: 4,
        })
    });
    let mut collections = Vec::new();
    for (name, sets) in load(args)? {
        let mut methods = vec![
            evaluate_legacy(&sets, "before: exact normalized text", legacy::same_text),
            evaluate_legacy(&sets, "before: word-set overlap", legacy::similar),
            evaluate(&sets, "canonical", Strategy::Majority, &Semantic::none()).await,
        ];
        if let Some(e) = &embedder {
            let semantic = Semantic {
                embedder: Some(e),
                judge: None,
            };
            methods.push(evaluate(&sets, "embeddings", Strategy::Similarity, &semantic).await);
        }
        if let Some(j) = &judge {
            let semantic = Semantic {
                embedder: None,
                judge: Some(j),
            };
            methods.push(evaluate(&sets, "judge", Strategy::Judge, &semantic).await);
        }
        collections.push(Collection {
            name,
            sets: sets.len(),
            methods,
        });
    }
    Ok(ConsensusReport { collections })
}

/// What a set's labels say the decision must be: the experts of the true majority, or none.
fn expected(set: &Set) -> Option<Vec<String>> {
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, a) in set.answers.iter().enumerate() {
        groups.entry(&a.group).or_default().push(expert(i));
    }
    let quorum = default_quorum(set.answers.len());
    groups.into_values().find(|g| g.len() >= quorum)
}

fn expert(i: usize) -> String {
    format!("e{i}")
}

fn answers(set: &Set) -> Vec<Answer> {
    set.answers
        .iter()
        .enumerate()
        .map(|(i, a)| Answer {
            expert: expert(i),
            text: a.text.clone(),
            weight: 1.0,
        })
        .collect()
}

/// Tallies pairwise agreement between `groups` (indexes into the set's answers) and the labels.
#[derive(Default)]
struct Pairs {
    true_pos: usize,
    false_pos: usize,
    false_neg: usize,
}

impl Pairs {
    fn add(&mut self, set: &Set, groups: &[Vec<usize>]) {
        let group_of = |i: usize| groups.iter().position(|g| g.contains(&i));
        let n = set.answers.len();
        for i in 0..n {
            for j in i + 1..n {
                let truly = set.answers[i].group == set.answers[j].group;
                let said = group_of(i) == group_of(j);
                match (truly, said) {
                    (true, true) => self.true_pos += 1,
                    (false, true) => self.false_pos += 1,
                    (true, false) => self.false_neg += 1,
                    (false, false) => {}
                }
            }
        }
    }

    fn precision(&self) -> f64 {
        share(self.true_pos, self.true_pos + self.false_pos)
    }

    fn recall(&self) -> f64 {
        share(self.true_pos, self.true_pos + self.false_neg)
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        (part as f64 / whole as f64 * 1e4).round() / 1e4
    }
}

fn describe(majority: &Option<Vec<String>>) -> String {
    match majority {
        Some(m) => format!("consensus of {}", m.join(",")),
        None => "no consensus".into(),
    }
}

struct Tally {
    method: String,
    sets: usize,
    right: usize,
    pairs: Pairs,
    calls: usize,
    call_time: Duration,
    wrong: Vec<Miss>,
}

impl Tally {
    fn new(method: &str) -> Self {
        Tally {
            method: method.into(),
            sets: 0,
            right: 0,
            pairs: Pairs::default(),
            calls: 0,
            call_time: Duration::ZERO,
            wrong: Vec::new(),
        }
    }

    fn record(&mut self, set: &Set, groups: &[Vec<usize>], got: Option<Vec<String>>) {
        self.sets += 1;
        self.pairs.add(set, groups);
        let want = expected(set);
        if want == got {
            self.right += 1;
        } else {
            self.wrong.push(Miss {
                id: set.id.clone(),
                category: set.category.clone(),
                expected: describe(&want),
                got: describe(&got),
            });
        }
    }

    fn report(self) -> MethodReport {
        MethodReport {
            method: self.method,
            sets: self.sets,
            decided_right: self.right,
            share_right: share(self.right, self.sets),
            pair_precision: self.pairs.precision(),
            pair_recall: self.pairs.recall(),
            false_merges: self.pairs.false_pos,
            calls: self.calls,
            call_ms: self.call_time.as_millis() as u64,
            wrong: self.wrong,
        }
    }
}

/// Decides every set as the consensus service does: the offline rules, then `semantic` for the
/// pairs they leave open, then the decision with the default quorum.
async fn evaluate(
    sets: &[Set],
    method: &str,
    strategy: Strategy,
    semantic: &Semantic<'_>,
) -> MethodReport {
    let mut tally = Tally::new(method);
    for set in sets {
        let answers = answers(set);
        let asked: Vec<String> = answers.iter().map(|a| a.expert.clone()).collect();
        let tolerance = set.tolerance.unwrap_or(0.0);
        let progress = |same| all_answered(set, &asked, &answers, strategy, same);
        let pairs = consensus::undecided_pairs(&progress(&[])).unwrap_or_default();
        let mut same = Vec::new();
        if !pairs.is_empty() && (semantic.embedder.is_some() || semantic.judge.is_some()) {
            let started = Instant::now();
            same = semantic.settle(strategy, &set.question, &pairs).await.0;
            tally.calls += 1;
            tally.call_time += started.elapsed();
        }
        let comparisons = Comparisons::new(&set.question, &answers, tolerance, &same);
        let groups = consensus::group(&answers, &comparisons).groups;
        let got = match consensus::decide(&progress(&same)) {
            Decision::Reached(r) => {
                let mut m = r.majority;
                m.sort();
                Some(m)
            }
            _ => None,
        };
        tally.record(set, &groups, got);
    }
    tally.report()
}

/// A set as a query whose experts have all answered.
fn all_answered<'a>(
    set: &'a Set,
    asked: &'a [String],
    answers: &'a [Answer],
    strategy: Strategy,
    semantic: &'a [SamePair],
) -> Progress<'a> {
    Progress {
        question: &set.question,
        asked,
        quorum: default_quorum(asked.len()),
        strategy,
        early: false,
        tolerance: set.tolerance.unwrap_or(0.0),
        answers,
        failures: &[],
        deadline_passed: false,
        semantic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_sets_read_and_say_what_they_expect() {
        let sets = parse_sets(SHIPPED).expect("the shipped sets");
        assert!(sets.len() >= 50);
        let paris = sets.iter().find(|s| s.id == "paris-three-ways").unwrap();
        assert_eq!(
            expected(paris),
            Some(vec!["e0".into(), "e1".into(), "e2".into()])
        );
        assert!(sets.iter().any(|s| expected(s).is_none()));
        assert!(parse_sets(HOLDOUT).expect("the held-out sets").len() >= 50);
    }

    /// The offline rules decide at least 95 % of the shipped sets right and put no two answers
    /// of different meaning together, on either collection.
    #[tokio::test]
    async fn the_offline_rules_meet_their_figures() {
        let sets = parse_sets(SHIPPED).unwrap();
        let r = evaluate(&sets, "canonical", Strategy::Majority, &Semantic::none()).await;
        assert!(r.share_right >= 0.95, "{r:#?}");
        assert_eq!(r.false_merges, 0, "{r:#?}");
        let before = evaluate_legacy(&sets, "before", legacy::same_text);
        assert!(r.decided_right > before.decided_right * 5, "{before:#?}");
        let holdout = parse_sets(HOLDOUT).unwrap();
        let r = evaluate(&holdout, "canonical", Strategy::Majority, &Semantic::none()).await;
        assert_eq!(r.false_merges, 0, "{r:#?}");
    }
}

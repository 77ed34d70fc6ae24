//! The semantic methods that decide what the offline rules leave open: whether two differently
//! worded answers mean the same. `similarity` asks an embeddings endpoint (one batched call per
//! query: every distinct answer in it); `judge` asks the judge expert (one call per query: every
//! open pair in it). `majority` uses the offline rules alone. A method that fails leaves the
//! offline rules to decide, and the consensus says why.

use std::collections::BTreeSet;

use quorum_domain::consensus::{GroupingInfo, SameBy, SamePair};
use quorum_domain::query::Strategy;
use quorum_experts::embeddings::{Embedder, cosine};

use crate::judge::Judge;

/// The methods this service has configured.
pub struct Semantic<'a> {
    pub embedder: Option<&'a Embedder>,
    pub judge: Option<&'a Judge>,
}

impl Semantic<'_> {
    /// No method: the offline rules alone.
    pub fn none() -> Self {
        Semantic {
            embedder: None,
            judge: None,
        }
    }

    /// The method `strategy` uses here: a judge query asks the judge (or embeddings when no judge
    /// is configured), a similarity query asks embeddings; otherwise the offline rules alone.
    fn method(&self, strategy: Strategy) -> Method<'_> {
        match (strategy, self.judge, self.embedder) {
            (Strategy::Judge, Some(j), _) => Method::Judge(j),
            (Strategy::Judge | Strategy::Similarity, _, Some(e)) => Method::Embeddings(e),
            _ => Method::Canonical,
        }
    }

    /// Whether `strategy` asks a method here about the pairs the offline rules leave open: when it
    /// does not, they need not be found.
    pub fn asks(&self, strategy: Strategy) -> bool {
        !matches!(self.method(strategy), Method::Canonical)
    }

    /// Asks the method of `strategy` about `pairs`: the pairs it found the same, and the
    /// provenance the consensus records (its links are filled in by the decision).
    pub async fn settle(
        &self,
        strategy: Strategy,
        question: &str,
        pairs: &[(String, String)],
    ) -> (Vec<SamePair>, GroupingInfo) {
        match self.method(strategy) {
            Method::Canonical => (Vec::new(), info("canonical", None, None)),
            Method::Embeddings(e) => {
                let mut info = info(
                    "embeddings",
                    Some(e.config().model.clone()),
                    Some(e.config().threshold),
                );
                if pairs.is_empty() {
                    return (Vec::new(), info);
                }
                match embedded_same(e, pairs).await {
                    Ok(same) => (same, info),
                    Err(why) => {
                        info.error = Some(why);
                        (Vec::new(), info)
                    }
                }
            }
            Method::Judge(j) => {
                let mut info = info("judge", Some(j.model().to_owned()), None);
                if pairs.is_empty() {
                    return (Vec::new(), info);
                }
                match j.equivalent(question, pairs).await {
                    Ok(verdicts) => {
                        let same = pairs
                            .iter()
                            .zip(verdicts)
                            .filter(|(_, same)| *same)
                            .map(|((a, b), _)| pair(a, b, SameBy::Judge))
                            .collect();
                        (same, info)
                    }
                    Err(why) => {
                        info.error = Some(why);
                        (Vec::new(), info)
                    }
                }
            }
        }
    }
}

enum Method<'a> {
    Canonical,
    Embeddings(&'a Embedder),
    Judge(&'a Judge),
}

fn info(method: &str, model: Option<String>, threshold: Option<f64>) -> GroupingInfo {
    GroupingInfo {
        method: method.into(),
        model,
        threshold,
        ..GroupingInfo::default()
    }
}

fn pair(a: &str, b: &str, by: SameBy) -> SamePair {
    SamePair {
        a: a.to_owned(),
        b: b.to_owned(),
        by,
    }
}

/// Embeds every distinct text of `pairs` in one call, and keeps the pairs at or above the
/// threshold.
async fn embedded_same(
    embedder: &Embedder,
    pairs: &[(String, String)],
) -> Result<Vec<SamePair>, String> {
    let texts: Vec<String> = pairs
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let vectors = embedder
        .embed(&texts)
        .await
        .map_err(|e| format!("{:?}: {}", e.class, e.message).to_lowercase())?;
    let vector = |t: &String| &vectors[texts.binary_search(t).expect("every text embedded")];
    let threshold = embedder.config().threshold;
    Ok(pairs
        .iter()
        .filter(|(a, b)| cosine(vector(a), vector(b)) >= threshold)
        .map(|(a, b)| pair(a, b, SameBy::Embeddings))
        .collect())
}

#[cfg(test)]
mod tests {
    use quorum_experts::embeddings::EmbeddingsConfig;

    use super::*;

    #[test]
    fn only_a_strategy_with_a_configured_method_asks_about_open_pairs() {
        let none = Semantic::none();
        for s in [Strategy::Majority, Strategy::Similarity, Strategy::Judge] {
            assert!(!none.asks(s), "{s:?} with no method configured");
        }
        let config: EmbeddingsConfig = serde_json::from_value(serde_json::json!({
            "base_url": "http://127.0.0.1:9/v1",
            "model": "m",
        }))
        .expect("an embeddings config");
        let embedder = Embedder::new(config);
        let methods = Semantic {
            embedder: Some(&embedder),
            judge: None,
        };
        assert!(!methods.asks(Strategy::Majority));
        assert!(methods.asks(Strategy::Similarity));
        // A judge query falls back to embeddings when no judge is configured.
        assert!(methods.asks(Strategy::Judge));
    }
}

//! What the judge expert is asked, and how its verdicts are read.

use super::Answer;

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

/// What the judge is asked to decide which pairs of answers mean the same: one call for every
/// pair the offline rules left open.
pub fn equivalence_prompt(question: &str, pairs: &[(String, String)]) -> String {
    let mut prompt = String::from(
        "Experts answered the question below. For each numbered pair of answers, decide whether \
         answer A means what answer B means and B means what A means, as answers to this \
         question (wording, detail and confidence do not matter; a different entity, number or \
         a yes against a no does). Your final answer is a JSON array of true or false, one per \
         pair, in order, for example [true, false].\n\nQuestion: ",
    );
    prompt.push_str(question);
    prompt.push_str("\n\nPairs:\n");
    for (i, (a, b)) in pairs.iter().enumerate() {
        prompt.push_str(&format!("{}. A: {a}\n   B: {b}\n", i + 1));
    }
    prompt
}

/// Reads the judge's verdicts on `n` pairs: the first JSON array of booleans, of length `n`, in
/// any of `texts` (its final answer first, then its whole reply). `None` when there is none.
pub fn parse_equivalence(texts: &[&str], n: usize) -> Option<Vec<bool>> {
    texts.iter().find_map(|text| {
        text.match_indices('[').find_map(|(start, _)| {
            let end = text[start..].find(']')? + start;
            let verdicts: Vec<bool> = serde_json::from_str(&text[start..=end]).ok()?;
            (verdicts.len() == n).then_some(verdicts)
        })
    })
}

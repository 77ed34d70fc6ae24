//! What two answers must share to be "the same" in a majority vote.

/// Lowercase, whitespace collapsed, surrounding punctuation and quotes removed: `"Paris."` and
/// `paris` are one answer.
pub fn normalize(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ").to_lowercase();
    joined
        .trim_matches(|c: char| {
            c.is_ascii_punctuation() || c == '“' || c == '”' || c == '‘' || c == '’'
        })
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_space_and_punctuation_do_not_count() {
        assert_eq!(normalize("  Paris.  "), "paris");
        assert_eq!(normalize("\"New   York\"!"), "new york");
        assert_ne!(normalize("not Paris"), normalize("Paris"));
    }
}

//! The words the canonical comparison knows: what carries no answer, what hedges, negates,
//! affirms or denies, what ends a clause, and one spelling per unit.

/// Words that carry no answer: articles, copulas and auxiliaries, pronouns, prepositions, hedges.
pub(super) const STOP: &[&str] = &[
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "am", "it", "its", "this",
    "that", "these", "those", "they", "there", "he", "she", "we", "you", "of", "in", "on", "at",
    "to", "for", "by", "with", "from", "and", "or", "as", "than", "has", "have", "had", "do",
    "does", "did", "can", "could", "will", "would", "shall", "should", "may", "might", "must",
    "answer", "final", "which", "what", "who", "whom", "whose", "so", "called", "known", "named",
    "just", "well", "also", "very", "here", "per", "option",
];
/// Words that qualify an answer without changing it.
pub(super) const HEDGES: &[&str] = &[
    "i",
    "me",
    "my",
    "think",
    "believe",
    "guess",
    "probably",
    "likely",
    "most",
    "approximately",
    "about",
    "around",
    "roughly",
    "nearly",
    "almost",
    "maybe",
    "perhaps",
    "exactly",
    "precisely",
    "pretty",
    "quite",
    "fairly",
    "sure",
    "certain",
    "certainly",
    "confident",
    "say",
    "would",
    "estimate",
    "estimated",
    "some",
    "though",
    "although",
    "however",
    "actually",
    "generally",
    "typically",
    "usually",
    "answer",
    "simply",
    "basically",
    "essentially",
    "really",
    "highly",
    "definitely",
    "clearly",
    "obviously",
    "indeed",
    "overall",
    "short",
    "brief",
    "briefly",
    "often",
    "commonly",
    "widely",
    "better",
    "sometimes",
];
/// Negations; `nor` is not one, since the `neither` before it already denies.
pub(super) const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nothing", "nobody", "neither", "nope",
];
pub(super) const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "correct",
    "true",
    "right",
    "absolutely",
    "affirmative",
    "definitely",
    "certainly",
    "indeed",
    "sure",
];
pub(super) const NO: &[&str] = &[
    "no",
    "nope",
    "nah",
    "false",
    "incorrect",
    "wrong",
    "negative",
    "never",
];
/// The words a yes/no question starts with.
pub(super) const AUXILIARIES: &[&str] = &[
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should",
    "has", "have", "had", "may", "might", "must", "shall",
];
/// Words that end a clause before them: what follows is a reason, not the answer.
pub(super) const CLAUSE_WORDS: &[&str] =
    &["because", "since", "but", "though", "although", "while"];

/// One spelling per unit: `percent` is `%`, `degrees Celsius` is `°c`.
pub(super) fn unit(word: &str) -> Option<&'static str> {
    Some(match word {
        "%" | "percent" | "pct" | "percentage" => "%",
        "°c" | "celsius" | "centigrade" => "°c",
        "°f" | "fahrenheit" => "°f",
        "km" | "kilometer" | "kilometre" => "km",
        "m" | "meter" | "metre" => "m",
        "cm" | "centimeter" | "centimetre" => "cm",
        "kg" | "kilogram" | "kilo" => "kg",
        "g" | "gram" => "g",
        "mi" | "mile" => "mi",
        "$" | "dollar" | "usd" => "$",
        "€" | "euro" | "eur" => "€",
        "£" | "pound" | "gbp" => "£",
        "h" | "hr" | "hour" => "h",
        "min" | "minute" => "min",
        "sec" | "second" => "s",
        "°" | "degree" => "°",
        _ => return None,
    })
}

/// A light stem: plural `-s` off words of four letters or more (`legs`, `degrees`), so a
/// restatement in the singular still matches. Applied to question and answer alike.
pub(super) fn stem(word: &str) -> String {
    if word.len() > 3
        && word.ends_with('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
        && !word.ends_with("is")
        && word.chars().all(char::is_alphabetic)
    {
        word[..word.len() - 1].to_owned()
    } else {
        word.to_owned()
    }
}

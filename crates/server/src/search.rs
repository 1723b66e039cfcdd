//! Search over film titles, Vietnamese with or without diacritics: "mua do" finds "Mưa đỏ".
//!
//! Both the query and the titles are folded ([`fold`]): canonical decomposition (Unicode
//! Standard Annex #15, NFD) splits every accented letter into its base letter and combining
//! marks, the marks (general category M) are dropped, `đ`/`Đ` (a letter of its own, with no
//! decomposition) becomes `d`, and the rest is lowercased. A film matches when every word of
//! the query is found in its Vietnamese or English title.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The longest query accepted, in characters: a title is at most 200 (the catalog's bound),
/// and nobody types more than a few words to find one.
pub const MAX_QUERY_CHARS: usize = 100;

/// `text` without diacritics, lowercased, with its whitespace runs as single spaces.
pub fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.nfd().filter(|c| !is_combining_mark(*c)) {
        match c {
            'đ' | 'Đ' => folded.push('d'),
            c => folded.extend(c.to_lowercase()),
        }
    }
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A query, folded once and split into words.
#[derive(Debug)]
pub struct Query {
    words: Vec<String>,
}

impl Query {
    pub fn new(text: &str) -> Self {
        Self {
            words: fold(text)
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether every word of the query occurs in one of `titles` (an empty query matches
    /// nothing: it is a prompt, not a listing).
    pub fn matches<'a>(&self, titles: impl IntoIterator<Item = &'a str>) -> bool {
        if self.is_empty() {
            return false;
        }
        titles
            .into_iter()
            .map(fold)
            .any(|title| self.words.iter().all(|word| title.contains(word.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_removes_vietnamese_diacritics_and_case() {
        assert_eq!(fold("Mưa Đỏ"), "mua do");
        assert_eq!(fold("Mưa đỏ"), "mua do");
        assert_eq!(fold("  Địa   đạo\tCủ Chi "), "dia dao cu chi");
        assert_eq!(fold("Hồn Papa, Da Con Gái"), "hon papa, da con gai");
        // Precomposed (NFC) and decomposed (NFD) input fold alike.
        assert_eq!(fold("M\u{1b0}a"), fold("Mu\u{31b}a"));
        assert_eq!(fold("Ữ ậ ắ ẻ ỗ ợ ỳ"), "u a a e o o y");
    }

    #[test]
    fn every_word_must_occur_in_one_title() {
        let titles = ["Mưa đỏ", "Red Rain"];
        for query in ["mua do", "Mưa Đỏ", "MUA", "đỏ", "do mua", "red", "rain red"] {
            assert!(Query::new(query).matches(titles), "{query}");
        }
        for query in ["mua xuan", "", "   ", "red mua", "dox"] {
            assert!(!Query::new(query).matches(titles), "{query}");
        }
    }
}

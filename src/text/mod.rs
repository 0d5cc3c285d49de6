//! scikit-learn's analyzer (`CountVectorizer.build_analyzer()`), with Python's text semantics.
//!
//! preprocess (`lower`, then `strip_accents`) → tokenize (`token_pattern`) → stop words → word
//! n-grams; or preprocess → white-space normalisation → `char` / `char_wb` n-grams. Features are
//! handed to a callback as `&str` slices of a scratch buffer, so analysing allocates nothing per
//! feature.

pub mod spans;
pub mod unicode;
#[allow(dead_code)]
mod unicode_tables;

use crate::artifact::schema::{Analyzer as Params, AnalyzerKind, StripAccents, TokenPattern};
use crate::error::{Error, Result};
use unicode::{is_space, Unicode};

/// Reusable buffers for one analysis at a time.
#[derive(Default)]
pub struct Scratch {
    lowered: String,
    stripped: String,
    normalized: String,
    ngram: String,
    spans: Vec<(usize, usize)>,
    starts: Vec<usize>,
}

/// A validated analyzer.
#[derive(Debug, Clone)]
pub struct Analyzer {
    kind: AnalyzerKind,
    min_n: usize,
    max_n: usize,
    lowercase: bool,
    strip_accents: StripAccents,
    min_token_chars: usize,
    stop_words: Vec<String>,
    /// The Unicode of the Python the model was exported from.
    unicode: Unicode,
}

impl Analyzer {
    /// Checks the parameters read from an artifact; `unicode`: its Unicode version's tables.
    pub fn new(p: &Params, unicode: Unicode) -> Result<Self> {
        let (min_n, max_n) = p.ngram_range;
        if min_n < 1 || min_n > max_n || max_n > 64 {
            return Err(Error::Corrupt(format!(
                "ngram_range ({min_n}, {max_n}) is invalid"
            )));
        }
        if !p.stop_words.windows(2).all(|w| w[0] < w[1]) {
            return Err(Error::Corrupt("stop_words are not sorted and unique".into()));
        }
        Ok(Analyzer {
            kind: p.kind,
            min_n: min_n as usize,
            max_n: max_n as usize,
            lowercase: p.lowercase,
            strip_accents: p.strip_accents,
            min_token_chars: match p.token_pattern {
                TokenPattern::TwoOrMoreWordChars => 2,
                TokenPattern::OneOrMoreWordChars => 1,
            },
            stop_words: p.stop_words.clone(),
            unicode,
        })
    }

    /// Calls `emit` with every feature of `doc`, in scikit-learn's order. Each kind's n-grams are
    /// out of line: V8 compiles a wasm function whole on its first call, and a first `predict`
    /// compiled all three (and twice: vocabulary and hashing) inlined into the vectorizer's. They
    /// call `emit` through a `dyn`: one copy of each instead of one per caller (2.4 KB of wasm).
    #[inline(never)]
    pub fn for_each_feature(&self, doc: &str, s: &mut Scratch, mut emit: impl FnMut(&str)) {
        let Scratch {
            lowered,
            stripped,
            normalized,
            ngram,
            spans,
            starts,
        } = s;
        if self.kind == AnalyzerKind::Word {
            let text = self.word_tokens(doc, lowered, stripped, spans);
            return self.word_ngrams(text, spans, ngram, &mut emit);
        }
        let text = self.preprocess(doc, lowered, stripped);
        match self.kind {
            AnalyzerKind::Word => {}
            AnalyzerKind::Char => {
                let text = normalize_white_spaces(text, normalized);
                char_ngrams(text, self.min_n, self.max_n, starts, &mut emit);
            }
            AnalyzerKind::CharWb => {
                let text = normalize_white_spaces(text, normalized);
                self.char_wb_ngrams(text, ngram, starts, &mut emit);
            }
        }
    }

    /// For a word analyzer whose n-grams are at most pairs (`ngram_range` (1, 1), (1, 2) or
    /// (2, 2)), `(unigrams, pairs)`: whether its features are the tokens, and the pairs of
    /// consecutive tokens joined by a space. `None` for any other analyzer.
    pub fn word_pairs(&self) -> Option<(bool, bool)> {
        (self.kind == AnalyzerKind::Word && self.max_n <= 2).then_some((self.min_n == 1, self.max_n == 2))
    }

    /// Calls `emit` with every token of `doc` (stop words removed), in order: the words of a word
    /// analyzer's n-grams, for a caller that joins them itself ([`Analyzer::word_pairs`]).
    #[inline(never)]
    pub fn for_each_token(&self, doc: &str, s: &mut Scratch, mut emit: impl FnMut(&str)) {
        let text = self.word_tokens(doc, &mut s.lowered, &mut s.stripped, &mut s.spans);
        for &(a, b) in &s.spans {
            emit(span(text, a, b));
        }
    }

    /// `doc` preprocessed, and the byte spans of its tokens in it (stop words removed).
    #[inline(never)]
    fn word_tokens<'a>(
        &self,
        doc: &'a str,
        lowered: &'a mut String,
        stripped: &'a mut String,
        spans: &mut Vec<(usize, usize)>,
    ) -> &'a str {
        let text = self.preprocess(doc, lowered, stripped);
        self.tokens(text, spans);
        text
    }

    /// `_preprocess`: `doc.lower()` then the accent function, borrowing `doc` when nothing applies.
    fn preprocess<'a>(&self, doc: &'a str, lowered: &'a mut String, stripped: &'a mut String) -> &'a str {
        let text: &str = if self.lowercase {
            lowered.clear();
            self.unicode.lower_into(doc, lowered);
            lowered
        } else {
            doc
        };
        match self.strip_accents {
            StripAccents::None => text,
            StripAccents::Unicode => {
                stripped.clear();
                self.unicode.strip_accents_unicode_into(text, stripped);
                stripped
            }
            StripAccents::Ascii => {
                stripped.clear();
                self.unicode.strip_accents_ascii_into(text, stripped);
                stripped
            }
        }
    }

    /// The analyzer's output as owned strings, like `build_analyzer()(doc)`.
    pub fn analyze(&self, doc: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_feature(doc, &mut Scratch::default(), |f| out.push(f.to_owned()));
        out
    }

    /// Byte spans of the tokens of `text` (`token_pattern.findall`), stop words removed.
    ///
    /// `\b\w\w+\b` and `\b\w+\b` match exactly the maximal runs of word characters of at least
    /// 2 (resp. 1) characters: the pattern is greedy and `\b` forbids starting or ending inside a run.
    /// A byte loop while the text is ASCII (a token's chars are then its bytes), the char loop from
    /// the first other byte on: decoding chars and `is_word`'s range check were 9 % of a `predict`.
    fn tokens(&self, text: &str, spans: &mut Vec<(usize, usize)>) {
        spans.clear();
        let b = text.as_bytes();
        let mut i = 0;
        loop {
            while let Some(&c) = b.get(i) {
                match BYTE_CLASS[usize::from(c)] {
                    OTHER => i += 1,
                    WORD => break,
                    _ => return self.tokens_from(text, i, None, spans),
                }
            }
            if i == b.len() {
                return;
            }
            let start = i;
            while let Some(&c) = b.get(i) {
                match BYTE_CLASS[usize::from(c)] {
                    WORD => i += 1,
                    OTHER => break,
                    _ => return self.tokens_from(text, i, Some((start, i - start)), spans),
                }
            }
            self.push_token(text, start, i, i - start, spans);
        }
    }

    /// [`Analyzer::tokens`] from byte `from` of `text` on (a char boundary), char by char, with
    /// the run of word chars that ends at `from` (start byte, chars). Out of line: a `predict` on
    /// ASCII text never calls it.
    #[inline(never)]
    fn tokens_from(
        &self,
        text: &str,
        from: usize,
        mut run: Option<(usize, usize)>,
        spans: &mut Vec<(usize, usize)>,
    ) {
        for (i, c) in span(text, from, text.len()).char_indices() {
            if self.unicode.is_word(c) {
                run = Some(match run {
                    Some((start, n)) => (start, n + 1),
                    None => (from + i, 1),
                });
            } else if let Some((start, n)) = run.take() {
                self.push_token(text, start, from + i, n, spans);
            }
        }
        if let Some((start, n)) = run {
            self.push_token(text, start, text.len(), n, spans);
        }
    }

    /// Inlined, the stop-word search out of line: a token's span is checked (char boundaries)
    /// only when there are stop words to compare it with.
    #[inline]
    fn push_token(
        &self,
        text: &str,
        start: usize,
        end: usize,
        chars: usize,
        spans: &mut Vec<(usize, usize)>,
    ) {
        if chars < self.min_token_chars
            || !self.stop_words.is_empty() && self.is_stop_word(span(text, start, end))
        {
            return;
        }
        spans.push((start, end));
    }

    #[inline(never)]
    fn is_stop_word(&self, token: &str) -> bool {
        self.stop_words
            .binary_search_by(|w| w.as_str().cmp(token))
            .is_ok()
    }

    /// `_word_ngrams`: unigrams first (when min_n == 1), then each n in window order, joined by " ".
    #[inline(never)]
    fn word_ngrams(
        &self,
        text: &str,
        spans: &[(usize, usize)],
        buf: &mut String,
        emit: &mut dyn FnMut(&str),
    ) {
        let mut n = self.min_n;
        if n == 1 {
            for &(a, b) in spans {
                emit(span(text, a, b));
            }
            n = 2;
        }
        let bytes = text.as_bytes();
        while n <= self.max_n.min(spans.len()) {
            for window in spans.windows(n) {
                // Tokens one space apart are already joined in `text`: no copy (most bigrams).
                if window
                    .windows(2)
                    .all(|p| p[1].0 == p[0].1 + 1 && bytes.get(p[0].1) == Some(&b' '))
                {
                    emit(span(text, window[0].0, window[n - 1].1));
                    continue;
                }
                buf.clear();
                for (k, &(a, b)) in window.iter().enumerate() {
                    if k > 0 {
                        buf.push(' ');
                    }
                    buf.push_str(span(text, a, b));
                }
                emit(buf);
            }
            n += 1;
        }
    }

    /// `_char_wb_ngrams`: n-grams inside each white-space separated word padded with one space.
    #[inline(never)]
    fn char_wb_ngrams(
        &self,
        text: &str,
        padded: &mut String,
        starts: &mut Vec<usize>,
        emit: &mut dyn FnMut(&str),
    ) {
        for word in text.split(is_space).filter(|w| !w.is_empty()) {
            padded.clear();
            padded.push(' ');
            padded.push_str(word);
            padded.push(' ');
            char_starts(padded, starts);
            let w_len = starts.len() - 1;
            for n in self.min_n..=self.max_n {
                // Python slicing clips: a padded word shorter than n is emitted whole, once.
                let mut offset = 0;
                emit(span(padded, starts[0], starts[n.min(w_len)]));
                while offset + n < w_len {
                    offset += 1;
                    emit(span(padded, starts[offset], starts[offset + n]));
                }
                if offset == 0 {
                    break;
                }
            }
        }
    }
}

/// [`BYTE_CLASS`] of an ASCII byte that is not a word char.
const OTHER: u8 = 0;
/// [`BYTE_CLASS`] of an ASCII word char (`[0-9A-Za-z_]`).
const WORD: u8 = 1;
/// [`BYTE_CLASS`] of a byte of a non-ASCII char.
const NON_ASCII: u8 = 2;

/// The class of each byte, from the same table as [`Unicode::is_word`].
static BYTE_CLASS: [u8; 256] = {
    let mut class = [NON_ASCII; 256];
    let mut i = 0;
    while i < 128 {
        class[i] = if unicode_tables::WORD_ASCII >> i & 1 == 1 {
            WORD
        } else {
            OTHER
        };
        i += 1;
    }
    class
};

/// [`Analyzer::word_pairs`] of analyzer parameters (the writer's choice of layout).
pub fn word_pairs(p: &Params) -> Option<(bool, bool)> {
    let (min_n, max_n) = p.ngram_range;
    (p.kind == AnalyzerKind::Word && max_n <= 2).then_some((min_n == 1, max_n == 2))
}

/// `re.compile(r"\s\s+").sub(" ", text)`: runs of two or more white spaces become one space;
/// a single white space (a tab, say) is kept as it is.
fn normalize_white_spaces<'a>(text: &'a str, out: &'a mut String) -> &'a str {
    let mut chars = text.chars().peekable();
    let mut needs = false;
    while let Some(c) = chars.next() {
        if is_space(c) && chars.peek().is_some_and(|&d| is_space(d)) {
            needs = true;
            break;
        }
    }
    if !needs {
        return text;
    }
    out.clear();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_space(c) && chars.peek().is_some_and(|&d| is_space(d)) {
            while chars.peek().is_some_and(|&d| is_space(d)) {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Byte offset of every char of `text`, plus `text.len()`: code-point indexing as Python does.
fn char_starts(text: &str, starts: &mut Vec<usize>) {
    starts.clear();
    starts.extend(text.char_indices().map(|(i, _)| i));
    starts.push(text.len());
}

/// `&text[a..b]` for the spans this module made, all on char boundaries. Not `&text[a..b]`: its
/// failure message formats chars and ranges, 4 KB of `skedge/lite` for a panic that cannot happen.
#[inline]
fn span(text: &str, a: usize, b: usize) -> &str {
    match text.get(a..b) {
        Some(s) => s,
        None => off_char_boundary(),
    }
}

#[cold]
#[inline(never)]
fn off_char_boundary() -> ! {
    panic!("a token span off a char boundary")
}

/// `_char_ngrams`: every code-point window of each length, shortest first.
#[inline(never)]
fn char_ngrams(text: &str, min_n: usize, max_n: usize, starts: &mut Vec<usize>, emit: &mut dyn FnMut(&str)) {
    char_starts(text, starts);
    let len = starts.len() - 1;
    let mut n = min_n;
    if n == 1 {
        for i in 0..len {
            emit(span(text, starts[i], starts[i + 1]));
        }
        n = 2;
    }
    while n <= max_n.min(len) {
        for i in 0..=len - n {
            emit(span(text, starts[i], starts[i + n]));
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word analyzer's features by the definition (runs of `is_word` chars, their count in
    /// chars, bigrams joined by one space), for texts that leave the ASCII fast paths anywhere.
    #[test]
    fn ascii_fast_paths_match_the_char_definition() {
        for (pattern, min_chars) in [
            (TokenPattern::TwoOrMoreWordChars, 2),
            (TokenPattern::OneOrMoreWordChars, 1),
        ] {
            let params = Params {
                kind: AnalyzerKind::Word,
                ngram_range: (1, 3),
                lowercase: false,
                strip_accents: StripAccents::None,
                token_pattern: pattern,
                stop_words: vec!["the".into()],
            };
            let analyzer = Analyzer::new(&params, Unicode::BASE).expect("valid");
            for text in [
                "",
                " ",
                "a",
                "ab cd  ef\tgh , ij",
                "café au lait",
                "é",
                "ab é cd",
                "naïve x  y",
                "x²y z",
                "the cat, the  hat",
                "abc€ def",
                "€abc def",
                "end in é",
                "日本語 テキスト ab",
                "a b c d",
            ] {
                let mut tokens = Vec::new();
                let mut run = String::new();
                for c in text.chars().chain([' ']) {
                    if Unicode::BASE.is_word(c) {
                        run.push(c);
                    } else if !run.is_empty() {
                        let t = std::mem::take(&mut run);
                        if t.chars().count() >= min_chars && t != "the" {
                            tokens.push(t);
                        }
                    }
                }
                let mut want: Vec<String> = tokens.clone();
                for n in 2..=3 {
                    want.extend(tokens.windows(n).map(|w| w.join(" ")));
                }
                assert_eq!(analyzer.analyze(text), want, "{text:?} ({min_chars})");
            }
        }
    }
}

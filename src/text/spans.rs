//! The analyzer once more, reporting where each feature came from in the original text.
//!
//! [`Analyzer::for_each_feature_span`] emits the same features in the same order as
//! [`Analyzer::for_each_feature`], each with the `[start, end)` span of the ORIGINAL text it was
//! made from, in UTF-16 code units (what JavaScript strings index). It exists for explanations;
//! the hot path never runs it.
//!
//! The map from analysed text back to the input is built one input character at a time: each
//! character is preprocessed on its own (`lower`, then `strip_accents`) and every byte of its
//! output points back to it. Both steps act character by character (`İ` lowers to two characters,
//! `ﬁ` decomposes to `fi`, combining marks are dropped), except Python's final-sigma rule, which
//! picks between two letters of the same length. So the pieces have the lengths of the
//! whole-string output, which is the text actually analysed; if they ever did not (a future table
//! change), every character maps to the whole input rather than to a wrong place.
//! `char`/`char_wb` white-space normalisation then maps the one space left of a run to the run.

use super::Analyzer;
use crate::artifact::schema::AnalyzerKind;
use crate::text::unicode::is_space;

/// `[start, end)` in UTF-16 code units of the original text.
pub type Span = (u32, u32);

/// Analysed text with, for every byte that starts a character, the span of the input it came from.
struct Mapped {
    text: String,
    src: Vec<Span>,
}

impl Mapped {
    /// The input span of the analysed bytes `[a, b)` (char boundaries); empty ranges give a
    /// zero-width span where they sit.
    fn span(&self, a: usize, b: usize) -> Span {
        if a >= b {
            let at = match self.src.get(a) {
                Some(&(s, _)) => s,
                None => self.src.last().map_or(0, |&(_, e)| e),
            };
            return (at, at);
        }
        let mut last = b - 1;
        while last > a && !self.text.is_char_boundary(last) {
            last -= 1;
        }
        (self.src[a].0, self.src[last].1)
    }
}

impl Analyzer {
    /// Calls `emit(feature, span)` for every feature of `doc`, in the order and with the values
    /// of [`Analyzer::for_each_feature`]; `span` is the `[start, end)` of `doc` in UTF-16 code
    /// units that the feature was made from. Padding spaces of `char_wb` n-grams are not in the
    /// input: they are left out of the span (a feature of padding only gets a zero-width span).
    pub fn for_each_feature_span(&self, doc: &str, mut emit: impl FnMut(&str, Span)) {
        let mapped = self.preprocess_mapped(doc);
        match self.kind {
            AnalyzerKind::Word => self.word_spans(&mapped, &mut emit),
            AnalyzerKind::Char => char_spans(&normalize_mapped(mapped), self.min_n, self.max_n, &mut emit),
            AnalyzerKind::CharWb => self.char_wb_spans(&normalize_mapped(mapped), &mut emit),
        }
    }

    /// `_preprocess(doc)` with the input span of each output byte.
    fn preprocess_mapped(&self, doc: &str) -> Mapped {
        let (mut lowered, mut stripped) = (String::new(), String::new());
        let text = self.preprocess(doc, &mut lowered, &mut stripped).to_owned();
        let mut src: Vec<Span> = Vec::with_capacity(text.len());
        let (mut l1, mut s1) = (String::new(), String::new());
        let mut buf = [0u8; 4];
        let mut at = 0u32;
        let mut aligned = true;
        for c in doc.chars() {
            let width = c.len_utf16() as u32;
            let piece = self.preprocess(c.encode_utf8(&mut buf), &mut l1, &mut s1);
            aligned &= text.is_char_boundary(src.len());
            src.resize(src.len() + piece.len(), (at, at + width));
            at += width;
        }
        if !aligned || src.len() != text.len() {
            debug_assert!(false, "per-character preprocessing changed lengths for {doc:?}");
            src = vec![(0, at); text.len()];
        }
        Mapped { text, src }
    }

    fn word_spans(&self, m: &Mapped, emit: &mut impl FnMut(&str, Span)) {
        let mut tokens = Vec::new();
        self.tokens(&m.text, &mut tokens);
        let text = m.text.as_str();
        let mut n = self.min_n;
        if n == 1 {
            for &(a, b) in &tokens {
                emit(&text[a..b], m.span(a, b));
            }
            n = 2;
        }
        let mut buf = String::new();
        while n <= self.max_n.min(tokens.len()) {
            for window in tokens.windows(n) {
                buf.clear();
                for (k, &(a, b)) in window.iter().enumerate() {
                    if k > 0 {
                        buf.push(' ');
                    }
                    buf.push_str(&text[a..b]);
                }
                emit(&buf, m.span(window[0].0, window[n - 1].1));
            }
            n += 1;
        }
    }

    fn char_wb_spans(&self, m: &Mapped, emit: &mut impl FnMut(&str, Span)) {
        let text = m.text.as_str();
        let mut padded = String::new();
        let mut starts = Vec::new();
        // Byte offsets in `text` of each character of the current word, plus its end.
        let mut word: Vec<usize> = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some(&(i, c)) = chars.peek() {
            if is_space(c) {
                chars.next();
                continue;
            }
            word.clear();
            let mut end = i;
            while let Some(&(j, d)) = chars.peek() {
                if is_space(d) {
                    break;
                }
                word.push(j);
                end = j + d.len_utf8();
                chars.next();
            }
            word.push(end);
            padded.clear();
            padded.push(' ');
            padded.push_str(&text[i..end]);
            padded.push(' ');
            super::char_starts(&padded, &mut starts);
            let w_len = starts.len() - 1;
            // Padded characters [p, q) without the pads are word characters [p-1, q-1).
            let span = |p: usize, q: usize| {
                let (p, q) = (p.max(1) - 1, q.min(w_len - 1) - 1);
                if p >= q {
                    m.span(word[p.min(word.len() - 1)], word[p.min(word.len() - 1)])
                } else {
                    m.span(word[p], word[q])
                }
            };
            for n in self.min_n..=self.max_n {
                let mut offset = 0;
                let first = n.min(w_len);
                emit(&padded[starts[0]..starts[first]], span(0, first));
                while offset + n < w_len {
                    offset += 1;
                    emit(
                        &padded[starts[offset]..starts[offset + n]],
                        span(offset, offset + n),
                    );
                }
                if offset == 0 {
                    break;
                }
            }
        }
    }
}

/// `normalize_white_spaces` on mapped text: a run of two or more white spaces becomes one space
/// spanning the whole run.
fn normalize_mapped(m: Mapped) -> Mapped {
    let Mapped { text, src } = m;
    let mut out = String::with_capacity(text.len());
    let mut out_src = Vec::with_capacity(src.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_space(c) && chars.peek().is_some_and(|&(_, d)| is_space(d)) {
            let start = src[i].0;
            let mut end = src[i].1;
            while let Some(&(j, d)) = chars.peek() {
                if !is_space(d) {
                    break;
                }
                end = src[j].1;
                chars.next();
            }
            out.push(' ');
            out_src.push((start, end));
        } else {
            out.push(c);
            out_src.resize(out_src.len() + c.len_utf8(), src[i]);
        }
    }
    Mapped {
        text: out,
        src: out_src,
    }
}

/// `_char_ngrams` with spans.
fn char_spans(m: &Mapped, min_n: usize, max_n: usize, emit: &mut impl FnMut(&str, Span)) {
    let text = m.text.as_str();
    let mut starts = Vec::new();
    super::char_starts(text, &mut starts);
    let len = starts.len() - 1;
    let mut n = min_n;
    if n == 1 {
        for i in 0..len {
            emit(&text[starts[i]..starts[i + 1]], m.span(starts[i], starts[i + 1]));
        }
        n = 2;
    }
    while n <= max_n.min(len) {
        for i in 0..=len - n {
            emit(&text[starts[i]..starts[i + n]], m.span(starts[i], starts[i + n]));
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::schema::{Analyzer as Params, StripAccents, TokenPattern};

    fn analyzer(
        kind: AnalyzerKind,
        ngram_range: (u32, u32),
        lowercase: bool,
        strip: StripAccents,
    ) -> Analyzer {
        Analyzer::new(
            &Params {
                kind,
                ngram_range,
                lowercase,
                strip_accents: strip,
                token_pattern: TokenPattern::TwoOrMoreWordChars,
                stop_words: vec!["the".into()],
            },
            crate::text::unicode::Unicode::BASE,
        )
        .unwrap()
    }

    fn utf16_slice(s: &str, (a, b): Span) -> String {
        let units: Vec<u16> = s.encode_utf16().collect();
        String::from_utf16(&units[a as usize..b as usize]).unwrap()
    }

    const TEXTS: &[&str] = &[
        "",
        "The quick brown fox",
        "  Hello,   WORLD!\t\tit's   fine  ",
        "İstanbul ΣΊΣΥΦΟΣ café naïve ﬁne",
        "emoji 😀😀 smile 😀 and e\u{301}toile",
        "a b c d e",
        "x",
        "\u{2028}tabs\u{3000}\u{3000}and\u{a0}spaces\u{85}",
    ];

    #[test]
    fn same_features_as_for_each_feature() {
        for kind in [AnalyzerKind::Word, AnalyzerKind::Char, AnalyzerKind::CharWb] {
            for ngram in [(1, 1), (1, 3), (2, 4), (3, 5)] {
                for lowercase in [false, true] {
                    for strip in [StripAccents::None, StripAccents::Ascii, StripAccents::Unicode] {
                        let a = analyzer(kind, ngram, lowercase, strip);
                        for text in TEXTS {
                            let want = a.analyze(text);
                            let mut got = Vec::new();
                            a.for_each_feature_span(text, |f, _| got.push(f.to_owned()));
                            assert_eq!(got, want, "{kind:?} {ngram:?} {lowercase} {strip:?} {text:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn word_spans_point_at_the_original_text() {
        // "İ" lowers to two characters, "i" and a combining dot that is not a word character.
        let a = analyzer(AnalyzerKind::Word, (1, 2), true, StripAccents::None);
        let text = "😀 İstanbul CAFÉ, the Best";
        let mut got = Vec::new();
        a.for_each_feature_span(text, |f, s| got.push((f.to_owned(), utf16_slice(text, s))));
        let got: Vec<(&str, &str)> = got.iter().map(|(f, s)| (f.as_str(), s.as_str())).collect();
        assert_eq!(
            got,
            [
                ("stanbul", "stanbul"),
                ("café", "CAFÉ"),
                ("best", "Best"),
                ("stanbul café", "stanbul CAFÉ"),
                ("café best", "CAFÉ, the Best"),
            ]
        );
    }

    #[test]
    fn spans_survive_accent_stripping_and_compatibility_decomposition() {
        let a = analyzer(AnalyzerKind::Word, (1, 1), true, StripAccents::Unicode);
        let text = "CAFÉ nai\u{308}ve ﬁne";
        let mut got = Vec::new();
        a.for_each_feature_span(text, |f, s| got.push((f.to_owned(), s)));
        // "ﬁ" is one UTF-16 unit that decomposes into "fi"; the combining diaeresis is dropped.
        assert_eq!(
            got,
            [
                ("cafe".to_owned(), (0, 4)),
                ("naive".to_owned(), (5, 11)),
                ("fine".to_owned(), (12, 15))
            ]
        );
    }

    #[test]
    fn a_unigram_span_analyses_to_its_feature() {
        for lowercase in [false, true] {
            for strip in [StripAccents::None, StripAccents::Ascii, StripAccents::Unicode] {
                let a = analyzer(AnalyzerKind::Word, (1, 1), lowercase, strip);
                for text in TEXTS {
                    a.for_each_feature_span(text, |f, s| {
                        assert_eq!(a.analyze(&utf16_slice(text, s)), [f], "{text:?} {s:?}");
                    });
                }
            }
        }
    }

    #[test]
    fn char_spans_cover_white_space_runs_and_skip_padding() {
        let a = analyzer(AnalyzerKind::Char, (2, 2), false, StripAccents::None);
        let text = "a  \tb";
        let mut got = Vec::new();
        a.for_each_feature_span(text, |f, s| got.push((f.to_owned(), s)));
        assert_eq!(got, [("a ".to_owned(), (0, 4)), (" b".to_owned(), (1, 5))]);

        let a = analyzer(AnalyzerKind::CharWb, (1, 2), false, StripAccents::None);
        let text = "😀b";
        let mut got = Vec::new();
        a.for_each_feature_span(text, |f, s| got.push((f.to_owned(), s)));
        assert_eq!(
            got,
            [
                (" ".to_owned(), (0, 0)),
                ("😀".to_owned(), (0, 2)),
                ("b".to_owned(), (2, 3)),
                (" ".to_owned(), (3, 3)),
                (" 😀".to_owned(), (0, 2)),
                ("😀b".to_owned(), (0, 3)),
                ("b ".to_owned(), (2, 3)),
            ]
        );
    }
}

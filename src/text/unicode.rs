//! Python's Unicode semantics, as scikit-learn's text vectorizers see them.
//!
//! Rust's own `char` methods follow whatever Unicode version the toolchain
//! ships and differ from CPython in details (`\w` includes `No` digits such as
//! `'²'` in Python, `str.isspace()` includes U+001C..U+001F, `str.lower()` has
//! its own Final_Sigma rule, ...). Everything here instead reads tables that
//! `scripts/gen_unicode.py` measured from CPython's `unicodedata` and `str`
//! methods (see [`UNICODE_VERSION`]), and the changes of the later versions
//! that other Pythons have ([`Unicode`]); `tests/unicode.rs` checks every code
//! point of each version against digests of that Python's own output.

use super::unicode_tables as t;

/// `unicodedata.unidata_version` of the Python the base tables came from, e.g. `"14.0.0"`.
pub const UNICODE_VERSION: &str = t::UNICODE_VERSION;

/// The Unicode of a model's text analysis: that of the Python it was exported from (the artifact's
/// `unicode_version`), whose `\w`, `str.lower()` and NFKD follow its `unicodedata`. The base
/// tables, or those and what each later version up to this one changes: the characters it assigns
/// join `\w` and get a `lower()` or a stripping, and characters join or leave the Final_Sigma sets
/// (gen_unicode.py checks that nothing else changes, and that white space is the same in every
/// version).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unicode {
    /// 0: the base tables; `i`: those and the changes of `LATER[..i]`.
    later: usize,
}

impl Unicode {
    /// The base tables' version ([`UNICODE_VERSION`]).
    pub const BASE: Unicode = Unicode { later: 0 };

    /// The tables of `unicodedata.unidata_version` `version`, if skedge has them.
    pub fn of(version: &str) -> Option<Unicode> {
        if version == t::UNICODE_VERSION {
            return Some(Unicode::BASE);
        }
        let i = t::LATER.iter().position(|&(v, _)| v == version)?;
        Some(Unicode { later: i + 1 })
    }

    /// Every version skedge reads, the base first.
    pub fn all() -> impl Iterator<Item = Unicode> {
        (0..=t::LATER.len()).map(|later| Unicode { later })
    }

    /// [`Unicode::all`] with the Python each comes from, for messages:
    /// `"14.0.0 (Python 3.11), 15.0.0 (Python 3.12), ..."`.
    pub fn supported() -> String {
        let mut out = String::new();
        for u in Unicode::all() {
            if !out.is_empty() {
                out += ", ";
            }
            out += &format!("{} (Python {})", u.version(), u.python());
        }
        out
    }

    /// `unicodedata.unidata_version` of these tables.
    pub fn version(self) -> &'static str {
        self.entry().0
    }

    /// `major.minor` of the CPython these tables were measured from.
    pub fn python(self) -> &'static str {
        self.entry().1
    }

    fn entry(self) -> (&'static str, &'static str) {
        let base = (t::UNICODE_VERSION, t::PYTHON_VERSION);
        self.later
            .checked_sub(1)
            .and_then(|i| t::LATER.get(i))
            .copied()
            .unwrap_or(base)
    }

    /// Whether `cp` is in what the later versions up to this one add to a range table.
    #[inline]
    fn added(self, later: Later<(u32, u32)>, cp: u32) -> bool {
        later.iter().take(self.later).any(|ranges| in_ranges(ranges, cp))
    }

    /// Whether `cp` is in a set that later versions may also shrink: the base's ranges (`first`,
    /// `len`), then each version up to this one adding (`added`) and taking out (`left`) code points.
    fn in_set(
        self,
        (first, len): (&[u32], &[u16]),
        added: Later<(u32, u32)>,
        left: Later<(u32, u32)>,
        cp: u32,
    ) -> bool {
        let changes = added.iter().zip(left).take(self.later);
        changes.fold(in_columns(first, len, cp), |member, (added, left)| {
            in_ranges(added, cp) || (member && !in_ranges(left, cp))
        })
    }

    /// `cp`'s entry in what the later versions up to this one map (at most one maps it).
    fn mapped(self, later: Later<(u32, &'static str)>, cp: u32) -> Option<&'static str> {
        later.iter().take(self.later).find_map(|map| {
            let j = map.binary_search_by_key(&cp, |&(k, _)| k).ok()?;
            map.get(j).map(|&(_, text)| text)
        })
    }

    /// Python `re` `\w` for str patterns: `c.isalnum() or c == '_'`.
    #[inline]
    pub fn is_word(self, c: char) -> bool {
        let cp = u32::from(c);
        if cp < 128 {
            return ascii_bit(t::WORD_ASCII, cp);
        }
        in_columns(t::WORD_FIRST, t::WORD_LEN, cp) || (self.later != 0 && self.added(t::LATER_WORD, cp))
    }

    /// Appends Python's `s.lower()` to `out`.
    ///
    /// This is the full case mapping (U+0130 becomes `"i\u{307}"`) plus CPython's
    /// `handle_capital_sigma`: U+03A3 becomes final sigma U+03C2 when preceded by
    /// a cased char and not followed by one, skipping case-ignorable chars in
    /// both directions, with "cased" and "case-ignorable" as CPython defines them.
    pub fn lower_into(self, s: &str, out: &mut String) {
        if s.is_ascii() {
            let start = out.len();
            out.push_str(s);
            if let Some(tail) = out.get_mut(start..) {
                tail.make_ascii_lowercase();
            }
            return;
        }
        self.lower_non_ascii_into(s, out);
    }

    /// [`Unicode::lower_into`] of a text that is not all ASCII. Out of line: V8 compiles a wasm
    /// function whole on its first call, and a first `predict` on ASCII text need not compile this.
    #[inline(never)]
    fn lower_non_ascii_into(self, s: &str, out: &mut String) {
        out.reserve(s.len());
        for (i, c) in s.char_indices() {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else if c == CAPITAL_SIGMA {
                out.push(if self.is_final_sigma(s, i) {
                    FINAL_SIGMA
                } else {
                    SMALL_SIGMA
                });
            } else if !lower_char_into(c, out) {
                match self.mapped(t::LATER_LOWER, u32::from(c)) {
                    Some(lower) => out.push_str(lower),
                    None => out.push(c),
                }
            }
        }
    }

    /// Appends scikit-learn's `strip_accents_unicode(s)`: NFKD, then drop the
    /// chars with `unicodedata.combining(c) != 0`.
    pub fn strip_accents_unicode_into(self, s: &str, out: &mut String) {
        if s.is_ascii() {
            out.push_str(s);
            return;
        }
        out.reserve(s.len());
        for c in s.chars() {
            if c.is_ascii() {
                out.push(c);
                continue;
            }
            match self.stripped(c) {
                Stripped::Same => out.push(c),
                Stripped::Text(text) => out.push_str(text),
                Stripped::Char(d) => out.push(d),
                Stripped::Hangul(jamo) => out.extend(jamo.into_iter().flatten()),
            }
        }
    }

    /// Appends scikit-learn's `strip_accents_ascii(s)`: NFKD, then
    /// `encode('ASCII', 'ignore')`.
    pub fn strip_accents_ascii_into(self, s: &str, out: &mut String) {
        if s.is_ascii() {
            out.push_str(s);
            return;
        }
        for c in s.chars() {
            if c.is_ascii() {
                out.push(c);
                continue;
            }
            // A non-ASCII char that NFKD leaves alone, a Hangul syllable (jamo
            // only) and a non-ASCII single-char result contribute nothing.
            match self.stripped(c) {
                Stripped::Text(text) => out.extend(text.chars().filter(char::is_ascii)),
                Stripped::Char(d) if d.is_ascii() => out.push(d),
                Stripped::Same | Stripped::Char(_) | Stripped::Hangul(_) => {}
            }
        }
    }

    /// `strip_accents_unicode(c)` for one char: the base tables, then this version's additions.
    fn stripped(self, c: char) -> Stripped {
        match stripped(c) {
            Stripped::Same if self.later != 0 => self
                .mapped(t::LATER_STRIP, u32::from(c))
                .map_or(Stripped::Same, Stripped::Text),
            other => other,
        }
    }

    /// Python's "cased" for the Final_Sigma rule (cased and not case-ignorable).
    fn is_sigma_cased(self, c: char) -> bool {
        let base = (t::SIGMA_CASED_FIRST, t::SIGMA_CASED_LEN);
        let (added, left) = (t::LATER_SIGMA_CASED, t::LATER_SIGMA_CASED_LEFT);
        self.in_set(base, added, left, u32::from(c))
    }

    /// Python's "case-ignorable", as skipped by the Final_Sigma rule.
    fn is_case_ignorable(self, c: char) -> bool {
        let base = (t::CASE_IGNORABLE_FIRST, t::CASE_IGNORABLE_LEN);
        let (added, left) = (t::LATER_CASE_IGNORABLE, t::LATER_CASE_IGNORABLE_LEFT);
        self.in_set(base, added, left, u32::from(c))
    }

    /// CPython's `handle_capital_sigma` for the U+03A3 at byte offset `i` of `s`:
    /// `\p{cased} \p{case-ignorable}* U+03A3 !(\p{case-ignorable}* \p{cased})`.
    fn is_final_sigma(self, s: &str, i: usize) -> bool {
        let before = s.get(..i).unwrap_or_default();
        let cased_before = before
            .chars()
            .rev()
            .find(|&c| !self.is_case_ignorable(c))
            .is_some_and(|c| self.is_sigma_cased(c));
        if !cased_before {
            return false;
        }
        let after = s.get(i + CAPITAL_SIGMA.len_utf8()..).unwrap_or_default();
        !after
            .chars()
            .find(|&c| !self.is_case_ignorable(c))
            .is_some_and(|c| self.is_sigma_cased(c))
    }
}

/// GREEK CAPITAL LETTER SIGMA, the one char whose `lower()` depends on context.
const CAPITAL_SIGMA: char = '\u{3A3}';
/// GREEK SMALL LETTER SIGMA.
const SMALL_SIGMA: char = '\u{3C3}';
/// GREEK SMALL LETTER FINAL SIGMA.
const FINAL_SIGMA: char = '\u{3C2}';

/// First precomposed Hangul syllable (U+AC00).
const HANGUL_S_BASE: u32 = 0xAC00;
/// Number of precomposed Hangul syllables.
const HANGUL_S_COUNT: u32 = 11172;
/// First leading consonant jamo.
const HANGUL_L_BASE: u32 = 0x1100;
/// First vowel jamo.
const HANGUL_V_BASE: u32 = 0x1161;
/// One before the first trailing consonant jamo (index 0 means "no trailing").
const HANGUL_T_BASE: u32 = 0x11A7;
/// Trailing consonant choices per syllable, including "none".
const HANGUL_T_COUNT: u32 = 28;
/// Syllables per leading consonant (vowels × trailing choices).
const HANGUL_N_COUNT: u32 = 588;

/// Bit `cp` (< 128) of a 128-bit set, with 64-bit shifts: a u128 shift is a libcall in wasm.
#[inline]
fn ascii_bit(set: u128, cp: u32) -> bool {
    let half = if cp < 64 { set as u64 } else { (set >> 64) as u64 };
    (half >> (cp & 63)) & 1 != 0
}

/// Python `str.isspace()`: what `\s`, `str.split()` and re `\s\s+` use (the same in every
/// version [`Unicode`] reads).
#[inline]
pub fn is_space(c: char) -> bool {
    let cp = u32::from(c);
    if cp < 128 {
        return ascii_bit(t::SPACE_ASCII, cp);
    }
    in_ranges(t::SPACE, cp)
}

/// Whether `cp` lies in one of the sorted, disjoint ranges `first[i] ..= first[i] + len[i]`.
#[inline]
fn in_columns(first: &[u32], len: &[u16], cp: u32) -> bool {
    let i = first.partition_point(|&f| f <= cp);
    match i.checked_sub(1).map(|i| (first.get(i), len.get(i))) {
        Some((Some(&f), Some(&n))) => cp - f <= u32::from(n),
        _ => false,
    }
}

/// Whether `cp` lies in one of the sorted, disjoint, inclusive `ranges`.
#[inline]
fn in_ranges(ranges: &[(u32, u32)], cp: u32) -> bool {
    let i = ranges.partition_point(|&(_, last)| last < cp);
    matches!(ranges.get(i), Some(&(first, _)) if first <= cp)
}

/// One table of each later version, in `LATER`'s order.
type Later<T> = &'static [&'static [T]];

/// Appends `chr(c).lower()` (context-free) for a non-ASCII `c` from the base tables, if they map
/// it; false if they give `c` itself (which a later version may map).
fn lower_char_into(c: char, out: &mut String) -> bool {
    let cp = u32::from(c);
    let runs = t::LOWER_RUNS;
    let i = runs.partition_point(|&(first, ..)| first <= cp);
    if let Some(&(first, count, stride, delta)) = i.checked_sub(1).and_then(|j| runs.get(j)) {
        let offset = cp - first;
        let stride = u32::from(stride);
        let on_run = offset.checked_rem(stride) == Some(0)
            && offset.checked_div(stride).is_some_and(|k| k < u32::from(count));
        if on_run {
            if let Some(lower) = cp.checked_add_signed(delta).and_then(char::from_u32) {
                out.push(lower);
                return true;
            }
        }
    }
    if let Ok(j) = t::LOWER_MULTI.binary_search_by_key(&cp, |&(k, _)| k) {
        if let Some(&(_, lower)) = t::LOWER_MULTI.get(j) {
            out.push_str(lower);
            return true;
        }
    }
    false
}

/// What `strip_accents_unicode` turns one char into.
enum Stripped {
    /// The char itself.
    Same,
    /// A single other char.
    Char(char),
    /// Any other string, possibly empty (combining marks).
    Text(&'static str),
    /// The jamo of a Hangul syllable (the trailing one may be absent).
    Hangul([Option<char>; 3]),
}

/// `strip_accents_unicode(c)` for one char, from the tables.
fn stripped(c: char) -> Stripped {
    let cp = u32::from(c);
    let s_index = cp.wrapping_sub(HANGUL_S_BASE);
    if s_index < HANGUL_S_COUNT {
        let l = char::from_u32(HANGUL_L_BASE + s_index / HANGUL_N_COUNT);
        let v = char::from_u32(HANGUL_V_BASE + (s_index % HANGUL_N_COUNT) / HANGUL_T_COUNT);
        let t_index = s_index % HANGUL_T_COUNT;
        let t = if t_index == 0 {
            None
        } else {
            char::from_u32(HANGUL_T_BASE + t_index)
        };
        return Stripped::Hangul([l, v, t]);
    }
    let Some(&block) = t::STRIP_INDEX.get((cp >> t::STRIP_SHIFT) as usize) else {
        return Stripped::Same;
    };
    let low = (cp & ((1 << t::STRIP_SHIFT) - 1)) as usize;
    let slot = (usize::from(block) << t::STRIP_SHIFT) | low;
    let stored = usize::from(t::STRIP_BLOCKS.get(slot).copied().unwrap_or(0));
    // Stored as `id + (1 << STRIP_SHIFT) - low` (0: unchanged), so that code points whose outputs
    // run on with them store one value, which compresses (gen_unicode.py's `strip_trie`).
    let Some(k) = (stored + low).checked_sub((1 << t::STRIP_SHIFT) + 1) else {
        return Stripped::Same;
    };
    if let Some(&single) = t::STRIP_SINGLE.get(k) {
        return char::from_u32(single).map_or(Stripped::Same, Stripped::Char);
    }
    let k = k - t::STRIP_SINGLE.len();
    match (t::STRIP_OFFSETS.get(k), t::STRIP_OFFSETS.get(k + 1)) {
        (Some(&start), Some(&end)) => t::STRIP_BLOB
            .get(usize::from(start)..usize::from(end))
            .map_or(Stripped::Same, Stripped::Text),
        _ => Stripped::Same,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(s: &str) -> String {
        let mut out = String::new();
        Unicode::BASE.lower_into(s, &mut out);
        out
    }

    fn strip_unicode(s: &str) -> String {
        let mut out = String::new();
        Unicode::BASE.strip_accents_unicode_into(s, &mut out);
        out
    }

    fn strip_ascii(s: &str) -> String {
        let mut out = String::new();
        Unicode::BASE.strip_accents_ascii_into(s, &mut out);
        out
    }

    #[test]
    fn version_is_recorded() {
        assert_eq!(UNICODE_VERSION, "14.0.0");
        assert_eq!(Unicode::of("14.0.0"), Some(Unicode::BASE));
        assert_eq!(
            Unicode::of("15.1.0").map(|u| (u.version(), u.python())),
            Some(("15.1.0", "3.13"))
        );
        assert_eq!(Unicode::of("18.0.0"), None);
        assert_eq!(
            Unicode::supported(),
            "14.0.0 (Python 3.11), 15.0.0 (Python 3.12), 15.1.0 (Python 3.13), 16.0.0 (Python 3.14), \
             17.0.0 (Python 3.15)"
        );
    }

    /// A later version's characters are word characters, lowered or stripped only in that version,
    /// and one leaves the case-ignorable set (from the generated changes; tests/unicode.rs checks
    /// every code point and the Final_Sigma contexts against Python).
    #[test]
    fn later_versions_add_their_characters() {
        let (base, v15) = (Unicode::BASE, Unicode::of("15.0.0").expect("15.0.0"));
        let nag_mundari = '\u{1E4D0}'; // Unicode 15.0
        assert!(!base.is_word(nag_mundari) && v15.is_word(nag_mundari));
        let modifier_a = '\u{1E030}'; // MODIFIER LETTER CYRILLIC SMALL A, NFKD U+0430
        let (mut a, mut b) = (String::new(), String::new());
        base.strip_accents_unicode_into(&modifier_a.to_string(), &mut a);
        v15.strip_accents_unicode_into(&modifier_a.to_string(), &mut b);
        assert_eq!((a.as_str(), b.as_str()), ("\u{1E030}", "\u{430}"));
        assert!(base.is_word('é') && v15.is_word('é') && !v15.is_word('€'));

        let (v15_1, v16) = (
            Unicode::of("15.1.0").expect("15.1.0"),
            Unicode::of("16.0.0").expect("16.0.0"),
        );
        let garay = "\u{10D50}\u{10D51}"; // GARAY CAPITAL LETTER A, CA (Unicode 16.0)
        let (mut a, mut b) = (String::new(), String::new());
        v15_1.lower_into(garay, &mut a);
        v16.lower_into(garay, &mut b);
        assert_eq!((a.as_str(), b.as_str()), (garay, "\u{10D70}\u{10D71}"));
        // U+1171E became a spacing mark in 16.0: no longer skipped before a final sigma.
        let (mut a, mut b) = (String::new(), String::new());
        v15_1.lower_into("\u{391}\u{1171E}\u{3A3}", &mut a);
        v16.lower_into("\u{391}\u{1171E}\u{3A3}", &mut b);
        assert_eq!(
            (a.as_str(), b.as_str()),
            ("\u{3B1}\u{1171E}\u{3C2}", "\u{3B1}\u{1171E}\u{3C3}")
        );
        // U+0295 became an uncased letter (Lo) in 17.0: a sigma after it is no longer final.
        let v17 = Unicode::of("17.0.0").expect("17.0.0");
        let (mut a, mut b) = (String::new(), String::new());
        v16.lower_into("\u{295}\u{3A3}", &mut a);
        v17.lower_into("\u{295}\u{3A3}", &mut b);
        assert_eq!((a.as_str(), b.as_str()), ("\u{295}\u{3C2}", "\u{295}\u{3C3}"));
        let beria_erfe = '\u{16EA0}'; // BERIA ERFE CAPITAL LETTER ARKAB (Unicode 17.0)
        assert!(!v16.is_word(beria_erfe) && v17.is_word(beria_erfe));
    }

    #[test]
    fn word_chars() {
        for c in [
            '_', 'a', 'Z', '0', '9', 'é', 'ß', 'Ж', '中', '²', '½', '①', 'ª', '٣',
        ] {
            assert!(Unicode::BASE.is_word(c), "{c:?} should be a word char");
        }
        // U+0301 COMBINING ACUTE ACCENT is Mn: not alphanumeric in Python.
        for c in [' ', '-', '\'', '.', '\u{301}', '\u{200B}', '\u{200D}', '€', '😀'] {
            assert!(!Unicode::BASE.is_word(c), "{c:?} should not be a word char");
        }
    }

    #[test]
    fn space_chars() {
        for c in [
            ' ', '\t', '\n', '\u{B}', '\u{C}', '\r', '\u{1C}', '\u{1D}', '\u{1E}', '\u{1F}', '\u{85}',
            '\u{A0}', '\u{1680}', '\u{2009}', '\u{2028}', '\u{202F}', '\u{3000}',
        ] {
            assert!(is_space(c), "{c:?} should be space");
        }
        for c in ['a', '\u{0}', '\u{200B}', '\u{FEFF}', '\u{180E}', '_'] {
            assert!(!is_space(c), "{c:?} should not be space");
        }
    }

    #[test]
    fn lower_basic() {
        assert_eq!(lower("Hello WORLD 123"), "hello world 123");
        assert_eq!(lower("İ"), "i\u{307}");
        assert_eq!(lower("İSTANBUL"), "i\u{307}stanbul");
        assert_eq!(lower("ÀÉÎ ẞ Ω K Å"), "àéî ß ω k å");
        assert_eq!(lower("ǅ Ⅻ Ⓐ 𐐀"), "ǆ ⅻ ⓐ 𐐨");
    }

    #[test]
    fn lower_final_sigma() {
        assert_eq!(lower("ΟΔΟΣ"), "οδος");
        assert_eq!(lower("ΟΔΟΣ ΟΔΟΣ."), "οδος οδος.");
        assert_eq!(lower("Σ"), "σ");
        assert_eq!(lower("ΣΑ"), "σα");
        assert_eq!(lower("ΑΣΑ"), "ασα");
        assert_eq!(lower("ΑΣ\u{AD}Α"), "ασ\u{AD}α");
        assert_eq!(lower("A\u{301}Σ"), "a\u{301}ς");
        assert_eq!(lower("AΣb"), "aσb");
        assert_eq!(lower("ΣΣ"), "σς");
        assert_eq!(lower("1Σ"), "1σ");
    }

    #[test]
    fn strip_unicode_cases() {
        assert_eq!(strip_unicode("é"), "e");
        assert_eq!(strip_unicode("cafe\u{301}"), "cafe");
        assert_eq!(strip_unicode("ﬁ"), "fi");
        assert_eq!(strip_unicode("Å"), "A");
        assert_eq!(strip_unicode("한"), "\u{1112}\u{1161}\u{11AB}");
        assert_eq!(strip_unicode("하"), "\u{1112}\u{1161}");
        assert_eq!(strip_unicode("①½"), "11\u{2044}2");
        assert_eq!(strip_unicode("plain ascii"), "plain ascii");
        assert_eq!(strip_unicode("中"), "中");
    }

    #[test]
    fn strip_ascii_cases() {
        assert_eq!(strip_ascii("Å"), "A");
        assert_eq!(strip_ascii("naïve café"), "naive cafe");
        assert_eq!(strip_ascii("ﬁ"), "fi");
        assert_eq!(strip_ascii("한"), "");
        assert_eq!(strip_ascii("中 x"), " x");
        assert_eq!(strip_ascii("Straße"), "Strae");
    }

    #[test]
    fn appends_to_existing() {
        let mut out = String::from(">");
        let u = Unicode::BASE;
        u.lower_into("AB", &mut out);
        u.lower_into("ΑΣ", &mut out);
        u.strip_accents_unicode_into("é", &mut out);
        u.strip_accents_ascii_into("ü", &mut out);
        assert_eq!(out, ">abαςeu");
    }
}

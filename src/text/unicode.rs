//! TEMPORARY stub (replaced by the generated Python-exact tables).
#![allow(missing_docs)]
pub const UNICODE_VERSION: &str = "14.0.0";
pub fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}
pub fn lower_into(s: &str, out: &mut String) {
    out.push_str(&s.to_lowercase())
}
pub fn strip_accents_unicode_into(s: &str, out: &mut String) {
    out.push_str(s)
}
pub fn strip_accents_ascii_into(s: &str, out: &mut String) {
    out.extend(s.chars().filter(|c| c.is_ascii()))
}

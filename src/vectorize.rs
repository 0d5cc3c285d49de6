//! From analyzer features to the sparse row scikit-learn feeds its classifier.
//!
//! counts (`CountVectorizer` vocabulary or `HashingVectorizer`'s `FeatureHasher`) → `binary` →
//! transforms (`TfidfTransformer`, `normalize`, `FeatureUnion` weights). Rows are kept as scipy's
//! CSR rows are: ascending columns, explicit zeros kept (a hashing collision of +1 and -1 leaves a
//! stored 0, which `binary=True` turns into 1).

use crate::artifact::layout::{self, Data, Slice};
use crate::artifact::schema::v3::{
    self, Counts as CountsParams, FeatureBlock, Norm, Transform as TransformParams,
};
use crate::error::{Error, Result};
use crate::text::unicode::Unicode;
use crate::text::{Analyzer, Scratch};

/// A sparse row: `(column, value)` in ascending column order.
pub type Row = Vec<(u32, f64)>;

/// `vocabulary_` read in place from the artifact (FORMAT.md §2, "Vocabulary"): an open-addressing
/// table built at pack time and the terms front-coded in blocks, both sections of the model's
/// bytes. Loading checks their sizes and builds nothing.
///
/// A slot holds `column + 1` in its low bits and high bits of the term's hash ([`term_hash`])
/// above them, so a probe reads the term bytes only when those match: misses (most bigrams) never
/// touch them. A hit is confirmed by comparing the query with the stored term, so a term not in
/// the vocabulary never matches. The table has a non-power-of-two size (load factor about
/// [`LOAD_PERCENT`] %): the home slot of hash `h` is `(h mod 2^32) · slots >> 32`, then linear
/// probing, wrapping at the end, for at most `max_probe` steps.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    count: u32,
    /// The index: of every term, or with `pairs`, of the words.
    terms: Terms,
    pairs: Option<Pairs>,
}

/// The table and the front-coded blocks of a [`Vocabulary`]'s index: term `i` is its `i`-th
/// indexed term (a column, or with word pairs a word's rank).
#[derive(Debug, Clone)]
struct Terms {
    count: u32,
    slots: u32,
    col_mask: u32,
    max_probe: u32,
    block_terms: u32,
    table: Slice,
    block_offsets: Slice,
    blocks: Slice,
}

/// Terms a [`Vocabulary`] found lately, each with its column, in a direct-mapped table of at most
/// `RECENT_ENTRIES` (4,096) entries indexed by the term's hash: `[length, column (u32 LE), term
/// bytes]`, length 0 when empty (allocated by [`Vectorizer::recent`] at load). Texts
/// repeat their words, so most lookups end in one 32-byte entry instead of a table slot and a
/// block walk elsewhere in the artifact; a term is matched by its bytes, never by its hash.
#[derive(Debug, Default)]
pub struct Recent {
    entries: Vec<[u8; RECENT_BYTES]>,
}

/// Entries of a vocabulary's [`Recent`] (128 KB), a power of two; fewer for a vocabulary with
/// fewer terms. Against 1,024: `predict` p50 −8 % and `predictBatch` +6–9 % on texts the table had
/// not seen, warm and first loads unchanged (benches/PROFILE.md, "Recently found terms, again").
const RECENT_ENTRIES: usize = 4096;
/// [`Recent`] entries one model allocates in all (256 KB: a word and a char vectorizer). An
/// artifact can declare any number of vectorizers, over the same sections even: a table each
/// would make a few bytes of manifest allocate 128 KB. Vectorizers past the budget look terms up
/// without one.
pub const RECENT_BUDGET: usize = 2 * RECENT_ENTRIES;
const RECENT_BYTES: usize = 32;
/// Longest term a [`Recent`] entry holds.
const RECENT_TERM: usize = RECENT_BYTES - 5;

/// Table load factor of `skedge pack`, in percent.
pub const LOAD_PERCENT: u64 = 75;
/// Terms per front-coded block written by `skedge pack`.
pub const BLOCK_TERMS: u32 = 16;
/// The same for the words of a word pairs vocabulary ([`pack_pairs`]): every token looks a word
/// up, and each lookup the recent table does not answer walks the word's block. Against 16, on
/// SST-2's 13,331 words: `predictBatch` about 5 % faster natively and in wasm, for 21 KB
/// (benches/PROFILE.md, "Smaller blocks for the words").
pub const WORD_BLOCK_TERMS: u32 = 4;
/// The largest `block_terms` a reader accepts: a hit walks at most this many terms.
pub const MAX_BLOCK_TERMS: u32 = 256;
/// The largest `max_probe` a reader accepts: a lookup reads at most this many slots (a hostile
/// table cannot make each feature cost a scan of the table). Linear probing at load 0.75 stays
/// far below it; `skedge pack` refuses a table that does not.
pub const MAX_PROBE: u32 = 4096;

/// A vocabulary laid out by [`pack_vocabulary`]: the sections' bytes and parameters.
#[derive(Debug, Clone)]
pub struct PackedVocabulary {
    /// Number of terms.
    pub count: u32,
    /// The table, u32 little-endian slots.
    pub table: Vec<u8>,
    /// Longest probe distance.
    pub max_probe: u32,
    /// Terms per block.
    pub block_terms: u32,
    /// Block starts and the end, u32 little-endian.
    pub block_offsets: Vec<u8>,
    /// Front-coded blocks.
    pub blocks: Vec<u8>,
}

fn col_mask(count: u32) -> u32 {
    // Columns are stored + 1 (0 is an empty slot).
    u32::MAX >> count.saturating_add(1).leading_zeros()
}

#[inline]
fn home(h: u64, slots: u32) -> usize {
    (((h & 0xffff_ffff) * u64::from(slots)) >> 32) as usize
}

/// Lays out `vocabulary_` (terms concatenated in column order, and their lengths) with the
/// default load factor and block size.
pub fn pack_vocabulary(terms: &[u8], lengths: &[u32]) -> Result<PackedVocabulary> {
    pack_vocabulary_with(terms, lengths, LOAD_PERCENT, BLOCK_TERMS)
}

/// [`pack_vocabulary`] with a chosen load factor (percent, 1..=100) and block size.
pub fn pack_vocabulary_with(
    terms: &[u8],
    lengths: &[u32],
    load_percent: u64,
    block_terms: u32,
) -> Result<PackedVocabulary> {
    let offsets = term_offsets(terms, lengths)?;
    let term = |col: usize| &terms[offsets[col]..offsets[col + 1]];
    let n = lengths.len();
    let count = u32::try_from(n)
        .ok()
        .filter(|&c| c < u32::MAX / 2)
        .ok_or_else(|| Error::Corrupt("too many vocabulary terms".into()))?;
    let mask = col_mask(count);
    let slots = u32::try_from(n as u64 * 100 / load_percent.clamp(1, 100) + 1)
        .map_err(|_| Error::Corrupt("vocabulary table too large".into()))?;
    let mut table = vec![0u32; slots as usize];
    let mut max_probe = 0u32;
    for col in 0..n {
        let t = term(col);
        let h = term_hash(t);
        let tag = (h >> 32) as u32 & !mask;
        let mut i = home(h, slots);
        let mut distance = 0u32;
        while table[i] != 0 {
            let other = (table[i] & mask) as usize - 1;
            if table[i] & !mask == tag && term(other) == t {
                return Err(Error::Corrupt(format!(
                    "vocabulary term at column {col} is duplicated"
                )));
            }
            i = if i + 1 == table.len() { 0 } else { i + 1 };
            distance += 1;
        }
        table[i] = tag | (col as u32 + 1);
        max_probe = max_probe.max(distance);
    }
    if max_probe > MAX_PROBE {
        return Err(Error::Corrupt(format!(
            "vocabulary table probe distance {max_probe} exceeds {MAX_PROBE}"
        )));
    }
    let block_terms = block_terms.clamp(1, MAX_BLOCK_TERMS);
    let mut blocks = Vec::new();
    let mut block_offsets = Vec::new();
    for col in 0..n {
        if col % block_terms as usize == 0 {
            block_offsets.extend_from_slice(&offset_u32(blocks.len())?.to_le_bytes());
        }
        let t = term(col);
        let shared = if col % block_terms as usize == 0 {
            0
        } else {
            let previous = term(col - 1);
            previous.iter().zip(t).take_while(|(a, b)| a == b).count()
        };
        let suffix = t.len() - shared;
        let p = shared.min(NIBBLE_ESCAPE as usize) as u8;
        let s = suffix.min(NIBBLE_ESCAPE as usize) as u8;
        blocks.push(p << 4 | s);
        if p == NIBBLE_ESCAPE {
            layout::push_varint(&mut blocks, shared as u32);
        }
        if s == NIBBLE_ESCAPE {
            layout::push_varint(&mut blocks, suffix as u32);
        }
        blocks.extend_from_slice(&t[shared..]);
    }
    block_offsets.extend_from_slice(&offset_u32(blocks.len())?.to_le_bytes());
    Ok(PackedVocabulary {
        count,
        table: table.iter().flat_map(|s| s.to_le_bytes()).collect(),
        max_probe,
        block_terms,
        block_offsets,
        blocks,
    })
}

/// Where each term of a blob starts, and the end.
fn term_offsets(terms: &[u8], lengths: &[u32]) -> Result<Vec<usize>> {
    let mut offsets = Vec::with_capacity(lengths.len() + 1);
    let mut end: u64 = 0;
    offsets.push(0usize);
    for &len in lengths {
        end += u64::from(len);
        if end > terms.len() as u64 {
            break;
        }
        offsets.push(end as usize);
    }
    if end != terms.len() as u64 || offsets.len() != lengths.len() + 1 {
        return Err(Error::Corrupt(format!(
            "vocabulary lengths add up to {end} bytes but the term blob has {}",
            terms.len()
        )));
    }
    Ok(offsets)
}

/// A vocabulary laid out as words and word pairs by [`pack_pairs`].
#[derive(Debug, Clone)]
pub struct PackedPairs {
    /// Number of terms.
    pub count: u32,
    /// The words' index.
    pub words: PackedVocabulary,
    /// Each word's column, u32 little-endian.
    pub columns: Vec<u8>,
    /// Per column, a word's number of pairs or a pair's second word's rank, u16 LE.
    pub seconds: Vec<u8>,
}

impl PackedPairs {
    /// Bytes of its sections.
    pub fn size(&self) -> usize {
        self.words.size() + self.columns.len() + self.seconds.len()
    }
}

impl PackedVocabulary {
    /// Bytes of its sections.
    pub fn size(&self) -> usize {
        self.table.len() + self.block_offsets.len() + self.blocks.len()
    }
}

/// Lays out `vocabulary_` (as [`pack_vocabulary_with`]) as words and word pairs, when every term
/// with a space is two of its words (terms without a space) joined by one space and comes right
/// after its first word or another pair of it, with second words in ascending column order: the
/// `vocabulary_` `CountVectorizer` fits with a word `ngram_range` of (1, 2). `None` otherwise,
/// or when no term has a space.
pub fn pack_pairs(
    terms: &[u8],
    lengths: &[u32],
    load_percent: u64,
    block_terms: u32,
) -> Result<Option<PackedPairs>> {
    let offsets = term_offsets(terms, lengths)?;
    let term = |col: usize| &terms[offsets[col]..offsets[col + 1]];
    let space = |t: &[u8]| t.iter().position(|&b| b == b' ');
    let n = lengths.len();
    let (mut words, mut word_lengths, mut ranks) = (Vec::new(), Vec::new(), std::collections::HashMap::new());
    let mut columns = Vec::new();
    for col in 0..n {
        let t = term(col);
        if space(t).is_none() {
            ranks.insert(t, ranks.len() as u32);
            words.extend_from_slice(t);
            word_lengths.push(t.len() as u32);
            columns.extend_from_slice(&offset_u32(col)?.to_le_bytes());
        }
    }
    if ranks.len() == n || ranks.len() != word_lengths.len() {
        return Ok(None); // no pair, or a duplicated word (refused by the plain layout)
    }
    let mut seconds = vec![0u32; n];
    let mut first: Option<(usize, u32)> = None; // the current word's column, the last second's rank + 1
    for col in 0..n {
        let t = term(col);
        let Some(i) = space(t) else {
            first = Some((col, 0));
            continue;
        };
        let (a, b) = (&t[..i], &t[i + 1..]);
        let Some((c, next)) = first.as_mut() else {
            return Ok(None);
        };
        match ranks.get(b) {
            Some(&r) if term(*c) == a && r >= *next => {
                seconds[col] = r;
                seconds[*c] += 1;
                *next = r + 1;
            }
            _ => return Ok(None),
        }
    }
    // Ranks and runs in u16: more words, or a word with more pairs, keep the plain layout.
    let Ok(seconds) = seconds
        .iter()
        .map(|&x| u16::try_from(x))
        .collect::<std::result::Result<Vec<u16>, _>>()
    else {
        return Ok(None);
    };
    let seconds = seconds.iter().flat_map(|x| x.to_le_bytes()).collect();
    Ok(Some(PackedPairs {
        count: offset_u32(n)?,
        words: pack_vocabulary_with(&words, &word_lengths, load_percent, block_terms)?,
        columns,
        seconds,
    }))
}

fn offset_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Corrupt("vocabulary terms exceed 4 GiB".into()))
}

/// Terms of a block whose suffix positions [`Vocabulary::holds`] keeps.
const TAIL: usize = 16;

/// A nibble of 15 in a block's length byte: the value follows as a LEB128 varint.
const NIBBLE_ESCAPE: u8 = 15;

/// The next front-coded term of a block: `(prefix length, suffix)`.
#[inline]
fn next_term<'a>(b: &mut &'a [u8]) -> Option<(usize, &'a [u8])> {
    let (prefix, suffix_len, start) = lengths_at(b, 0)?;
    let suffix = b.get(start..)?.get(..suffix_len)?;
    *b = &b[start + suffix_len..];
    Some((prefix, suffix))
}

impl Terms {
    /// Checks the manifest's vocabulary against its sections (sizes only: nothing is decoded).
    fn new(v: v3::Vocabulary, data: &Data) -> Result<Self> {
        let table = data.slice(v.table, 4, "vocabulary table")?;
        let block_offsets = data.slice(v.block_offsets, 4, "vocabulary block offsets")?;
        let blocks = data.slice(v.blocks, 1, "vocabulary blocks")?;
        let slots = (table.len() / 4) as u32;
        if v.count >= u32::MAX / 2 || slots <= v.count {
            return Err(Error::Corrupt(format!(
                "vocabulary of {} terms in a table of {slots} slots",
                v.count
            )));
        }
        if !(1..=MAX_BLOCK_TERMS).contains(&v.block_terms) || v.max_probe > slots.min(MAX_PROBE) {
            return Err(Error::Corrupt(format!(
                "vocabulary block_terms {} or max_probe {} out of range",
                v.block_terms, v.max_probe
            )));
        }
        let n_blocks = u64::from(v.count).div_ceil(u64::from(v.block_terms));
        if block_offsets.len() as u64 != (n_blocks + 1) * 4 {
            return Err(Error::Corrupt(format!(
                "{n_blocks} vocabulary blocks but {} block offset bytes",
                block_offsets.len()
            )));
        }
        Ok(Terms {
            count: v.count,
            slots,
            col_mask: col_mask(v.count),
            max_probe: v.max_probe,
            block_terms: v.block_terms,
            table,
            block_offsets,
            blocks,
        })
    }

    /// The block holding column `col` and the term's position in it.
    #[inline]
    fn block(&self, col: u32) -> Option<(&[u8], u32)> {
        if col >= self.count {
            return None;
        }
        let (b, k) = ((col / self.block_terms) as usize, col % self.block_terms);
        let offsets = self.block_offsets.bytes();
        let start = layout::u32_at(offsets, b)? as usize;
        let end = layout::u32_at(offsets, b + 1)? as usize;
        Some((self.blocks.bytes().get(start..end)?, k))
    }

    /// The bytes of term `col` (`None` past the end or in a damaged block).
    fn term(&self, col: usize) -> Option<Vec<u8>> {
        let (mut b, k) = self.block(u32::try_from(col).ok()?)?;
        let mut term = Vec::new();
        for _ in 0..=k {
            let (prefix, suffix) = next_term(&mut b)?;
            if prefix > term.len() {
                return None;
            }
            term.truncate(prefix);
            term.extend_from_slice(suffix);
        }
        Some(term)
    }

    /// Whether column `col` holds `q`, comparing each byte of `q` with one stored byte at most
    /// and copying nothing. A first pass reads the lengths of the block's terms up to `col`'s
    /// (one dependent load per term, no data-dependent branch); a second goes back from `col`'s
    /// term: its bytes from its shared prefix on are its own suffix, the ones before come from the
    /// term before it, and so on down to the block's first term. Blocks longer than [`TAIL`] terms
    /// (hand-made artifacts: `skedge pack` writes 16) are walked forward up to their last
    /// [`TAIL`] terms, keeping the common prefix of `q` and the current term. Out of line:
    /// inlined into [`Terms::get`], its registers spilled those of the probe loop.
    #[inline(never)]
    fn holds(&self, col: u32, q: &[u8]) -> bool {
        let Some((block, k)) = self.block(col) else {
            return false;
        };
        let terms = k as usize + 1;
        let (mut at, mut lcp, mut len) = (0usize, 0usize, 0usize);
        for _ in TAIL..terms {
            let Some((prefix, suffix_len, start)) = lengths_at(block, at) else {
                return false;
            };
            if prefix > len || suffix_len > block.len() - start {
                return false;
            }
            at = start + suffix_len;
            // Past the common prefix the new term keeps the old one's mismatch with `q`.
            if prefix <= lcp {
                lcp = prefix + common_prefix(&block[start..at], &q[prefix..]);
            }
            len = prefix + suffix_len;
        }
        let tail = terms.min(TAIL);
        let (mut prefixes, mut starts) = ([0u32; TAIL], [0u32; TAIL]);
        for j in 0..tail {
            let Some((prefix, suffix_len, start)) = lengths_at(block, at) else {
                return false;
            };
            // A suffix past the block's end is not checked here: the next term's length byte
            // is then missing, or (the last term) the comparison below finds its bytes missing.
            if prefix > len {
                return false;
            }
            // Both fit: a block is at most u32::MAX bytes (its offsets are u32), and a prefix is
            // at most the length of the term before it.
            prefixes[j] = prefix as u32;
            starts[j] = start as u32;
            at = start + suffix_len;
            len = prefix + suffix_len;
        }
        if len != q.len() {
            return false;
        }
        // `need`: how many leading bytes of the current term must still match `q`.
        let mut need = q.len();
        for j in (0..tail).rev() {
            let prefix = prefixes[j] as usize;
            if prefix < need {
                let start = starts[j] as usize;
                // In range: `need` is at most this term's length (checked in the first pass).
                match (block.get(start..start + (need - prefix)), q.get(prefix..need)) {
                    (Some(stored), Some(wanted)) if same(stored, wanted) => {}
                    _ => return false,
                }
                need = prefix;
            }
        }
        need <= lcp
    }

    /// The index of `q`.
    #[inline]
    fn get(&self, q: &[u8]) -> Option<u32> {
        self.get_hashed(q, term_hash(q))
    }

    /// [`Terms::get`], first asking `recent` ([`cached`]). With word pairs, these are words and
    /// `recent` holds their ranks: a vectorizer looks up either features or words, never both.
    /// Out of line: the one copy for both.
    #[inline(never)]
    fn get_recent(&self, q: &[u8], recent: &mut Recent) -> Option<u32> {
        cached(q, recent, |q, h| self.get_hashed(q, h))
    }

    /// [`Terms::get`] out of line, for the paths that are not a prediction's.
    #[inline(never)]
    fn find(&self, q: &[u8]) -> Option<u32> {
        self.get(q)
    }

    /// [`Terms::get`] of a term whose [`term_hash`] is `h`.
    #[inline]
    fn get_hashed(&self, q: &[u8], h: u64) -> Option<u32> {
        let tag = (h >> 32) as u32 & !self.col_mask;
        let table = self.table.bytes();
        let probes = self.max_probe as usize + 1;
        let at = home(h, self.slots) * 4;
        // Usually the probes end before the table does: one run of whole slots, a pointer walk
        // with no index to wrap or bounds to check per slot.
        if let Some(run) = table.get(at..at + probes * 4) {
            return self.probe(run, tag, q).flatten();
        }
        self.probe_wrapping(table, at, probes, tag, q)
    }

    /// The slots from byte `at` to the table's end, then from its start, `probes` in all.
    #[cold]
    #[inline(never)]
    fn probe_wrapping(&self, table: &[u8], at: usize, probes: usize, tag: u32, q: &[u8]) -> Option<u32> {
        let head = table.get(at..).unwrap_or_default();
        let wrapped = probes.saturating_sub(head.len() / 4);
        let tail = table.get(..(wrapped * 4).min(table.len())).unwrap_or_default();
        match self.probe(head, tag, q) {
            Some(found) => found,
            None => self.probe(tail, tag, q).flatten(),
        }
    }

    /// Probes the slots of `run` in order: `Some` of the answer at a hit or an empty slot, `None`
    /// when the run ends first.
    #[inline(always)]
    fn probe(&self, run: &[u8], tag: u32, q: &[u8]) -> Option<Option<u32>> {
        for slot in run.chunks_exact(4) {
            let slot = u32::from_le_bytes([slot[0], slot[1], slot[2], slot[3]]);
            if slot == 0 {
                return Some(None);
            }
            if slot & !self.col_mask == tag {
                let col = (slot & self.col_mask).wrapping_sub(1);
                if self.holds(col, q) {
                    return Some(Some(col));
                }
            }
        }
        None
    }
}

/// The word pairs of a [`Vocabulary`] (FORMAT.md §2, "Word pairs"): its terms with a space are
/// each two of its words joined by one space, stored as the rank of the second word after the
/// column of the first: a pair costs two bytes instead of its bytes and a table slot, and is
/// found without hashing or comparing its bytes. The first word's pairs are the columns right
/// after it (sorted terms put `w x` between `w` and any other term), their second words in
/// ascending rank, so a pair is a binary search in that run.
#[derive(Debug, Clone)]
struct Pairs {
    /// u32 per word rank: the word's column.
    columns: Slice,
    /// u16 per column: a word's number of pairs, a pair's second word's rank.
    seconds: Slice,
}

impl Pairs {
    fn column(&self, rank: u32) -> Option<u32> {
        layout::u32_at(self.columns.bytes(), rank as usize)
    }

    #[inline]
    fn second(&self, col: usize) -> Option<u32> {
        // `col` can come from a hand-made `columns` entry: no overflow on 32-bit targets.
        let at = col.checked_mul(2)?;
        let b = self.seconds.bytes().get(at..at.checked_add(2)?)?;
        Some(u32::from(u16::from_le_bytes([b[0], b[1]])))
    }

    /// The column of the pair of words `first`, `second` (ranks), if the vocabulary has it.
    fn pair(&self, count: u32, first: u32, second: u32) -> Option<u32> {
        let c = self.column(first)?;
        let pairs = self.second(c as usize)?;
        // Columns c+1 ..= c+pairs, clamped: a hand-made run cannot reach past the vocabulary.
        let lo = u64::from(c) + 1;
        let hi = (lo + u64::from(pairs)).min(u64::from(count));
        let key = u16::try_from(second).ok()?;
        let bytes = self.seconds.bytes();
        // The run's second ranks, two bytes each.
        let run = bytes.get(usize::try_from(lo * 2).ok()?..usize::try_from(hi * 2).ok()?)?;
        let (run, _) = run.as_chunks::<2>();
        // std's search halves without a jump (its direction is a select) and without bounds
        // checks. Its answer on a hand-made unsorted run is unspecified: a found index is tested
        // again, so a pair the run does not store never matches.
        let i = run.binary_search_by(|r| u16::from_le_bytes(*r).cmp(&key)).ok()?;
        (run.get(i).map(|r| u16::from_le_bytes(*r)) == Some(key)).then(|| (lo as usize + i) as u32)
    }
}

impl Vocabulary {
    /// Checks the manifest's vocabulary against its sections (sizes only: nothing is decoded).
    #[inline(never)]
    pub fn new(v: v3::Vocabulary, data: &Data) -> Result<Self> {
        Ok(Vocabulary {
            count: v.count,
            terms: Terms::new(v, data)?,
            pairs: None,
        })
    }

    /// The same, for a vocabulary of words and word pairs, whose features come from the tokens
    /// of a word analyzer of n-grams up to 2 (`word_analyzer`; refused otherwise).
    #[inline(never)]
    pub fn with_pairs(p: v3::Pairs, word_analyzer: bool, data: &Data) -> Result<Self> {
        // Sizes first, from the manifest: nothing to drop on the way out. `seconds` holds
        // `2 · count` bytes in a u32 length, so columns stay below 2^31 (hits shift them by one).
        let words = u64::from(p.words.count);
        if !word_analyzer
            || p.width != 2
            || words > u64::from(p.count)
            || u64::from(p.columns.len) != words * 4
            || u64::from(p.seconds.len) != u64::from(p.count) * 2
        {
            return Err(Error::Corrupt(
                "vocabulary pairs: sections or analyzer do not fit".into(),
            ));
        }
        Ok(Vocabulary {
            count: p.count,
            pairs: Some(Pairs {
                columns: data.slice(p.columns, 4, "vocabulary words")?,
                seconds: data.slice(p.seconds, 2, "vocabulary pairs")?,
            }),
            terms: Terms::new(p.words, data)?,
        })
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when there are no terms.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes of the term of column `col` (`None` past the end or in a damaged block).
    pub fn term(&self, col: usize) -> Option<Vec<u8>> {
        let Some(p) = &self.pairs else {
            return self.terms.term(col);
        };
        let col = u32::try_from(col).ok().filter(|&c| c < self.count)?;
        // The word whose column is the last at or before `col`.
        let (mut lo, mut hi) = (0u32, self.terms.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match p.column(mid)? <= col {
                true => lo = mid + 1,
                false => hi = mid,
            }
        }
        let first = lo.checked_sub(1)?;
        let c = p.column(first)?;
        let mut term = self.terms.term(first as usize)?;
        if c < col {
            if col - c > p.second(c as usize)? {
                return None;
            }
            term.push(b' ');
            term.extend(self.terms.term(p.second(col as usize)? as usize)?);
        }
        Some(term)
    }

    /// Whether column `col` holds `q`.
    pub fn holds(&self, col: u32, q: &[u8]) -> bool {
        match &self.pairs {
            None => self.terms.holds(col, q),
            Some(_) => self.get_bytes(q) == Some(col),
        }
    }

    /// `vocabulary_.get(term)`.
    #[inline]
    pub fn get(&self, term: &str) -> Option<u32> {
        self.get_bytes(term.as_bytes())
    }

    #[inline]
    fn get_bytes(&self, q: &[u8]) -> Option<u32> {
        let Some(p) = &self.pairs else {
            return self.terms.get(q);
        };
        match q.iter().position(|&b| b == b' ') {
            None => p.column(self.terms.find(q)?),
            Some(i) => {
                let first = self.terms.find(&q[..i])?;
                p.pair(self.count, first, self.terms.find(&q[i + 1..])?)
            }
        }
    }

    /// [`Vocabulary::get`], first asking `recent` (terms this vocabulary found lately, by their
    /// bytes), which it then remembers the term in when found.
    #[inline]
    pub fn get_recent(&self, term: &str, recent: &mut Recent) -> Option<u32> {
        match &self.pairs {
            None => self.terms.get_recent(term.as_bytes(), recent),
            // Word pairs without a word analyzer's tokens: a hand-made artifact, not worth a cache.
            Some(_) => self.get_bytes(term.as_bytes()),
        }
    }
}

/// `miss(q, term_hash(q))`, remembered in `recent` by the bytes of `q`.
#[inline(always)]
fn cached(q: &[u8], recent: &mut Recent, miss: impl Fn(&[u8], u64) -> Option<u32>) -> Option<u32> {
    let h = term_hash(q);
    if q.len() > RECENT_TERM {
        return miss(q, h);
    }
    // The table's length is a power of two, or 0 (a hashing vectorizer's, or one past the model's
    // budget): then every index misses and the lookup passes through.
    let mask = recent.entries.len().wrapping_sub(1);
    let Some(e) = recent.entries.get_mut((h >> 48) as usize & mask) else {
        return miss(q, h);
    };
    if usize::from(e[0]) == q.len() && same(&e[5..5 + q.len()], q) {
        return Some(u32::from_le_bytes([e[1], e[2], e[3], e[4]]));
    }
    let col = miss(q, h)?;
    e[0] = q.len() as u8;
    e[1..5].copy_from_slice(&col.to_le_bytes());
    e[5..5 + q.len()].copy_from_slice(q);
    Some(col)
}

/// The lengths of the front-coded term at byte `at` of a block and where its suffix starts
/// (`prefix, suffix length, suffix start`, the start at most `b.len()`, an escaped suffix length
/// at most what is left of `b`): one byte when neither
/// nibble is escaped (all the terms of the SST-2 vocabulary but one in 40).
#[inline]
fn lengths_at(b: &[u8], at: usize) -> Option<(usize, usize, usize)> {
    let lengths = *b.get(at)?;
    if lengths < NIBBLE_ESCAPE << 4 && lengths & 0xf != NIBBLE_ESCAPE {
        return Some((usize::from(lengths >> 4), usize::from(lengths & 0xf), at + 1));
    }
    escaped_lengths(b, at)
}

#[cold]
#[inline(never)]
fn escaped_lengths(b: &[u8], at: usize) -> Option<(usize, usize, usize)> {
    let (&lengths, mut rest) = b.get(at..)?.split_first()?;
    let prefix = match lengths >> 4 {
        NIBBLE_ESCAPE => layout::varint(&mut rest)? as usize,
        p => usize::from(p),
    };
    let suffix = match lengths & 0xf {
        NIBBLE_ESCAPE => layout::varint(&mut rest)? as usize,
        s => usize::from(s),
    };
    // A suffix longer than the rest of the block is damage; refusing it here keeps the sums of
    // lengths in [`Vocabulary::holds`] from overflowing.
    (suffix <= rest.len()).then_some((prefix, suffix, b.len() - rest.len()))
}

/// `a == b`, for the short slices of a term: words, the last one overlapping the one before
/// (in wasm, `==` on slices is a call to a byte loop).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if word(&a[i..]) != word(&b[i..]) {
                return false;
            }
            i += 8;
        }
        return word(&a[n - 8..]) == word(&b[n - 8..]);
    }
    let quad = |x: &[u8], i: usize| u32::from_le_bytes([x[i], x[i + 1], x[i + 2], x[i + 3]]);
    let pair = |x: &[u8], i: usize| u16::from_le_bytes([x[i], x[i + 1]]);
    match n {
        4..=7 => quad(a, 0) == quad(b, 0) && quad(a, n - 4) == quad(b, n - 4),
        2..=3 => pair(a, 0) == pair(b, 0) && pair(a, n - 2) == pair(b, n - 2),
        _ => a.first() == b.first(),
    }
}

/// Length of the common prefix of `a` and `b`, a word at a time.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (mut a, mut b) = (&a[..n], &b[..n]);
    let mut done = 0;
    while a.len() >= 8 {
        let x = word(a) ^ word(b);
        if x != 0 {
            return done + (x.trailing_zeros() / 8) as usize;
        }
        (a, b, done) = (&a[8..], &b[8..], done + 8);
    }
    let x = short_word(a) ^ short_word(b);
    done + ((x.trailing_zeros() / 8) as usize).min(a.len())
}

/// The vocabulary table's hash: FxHash over 8-byte little-endian words, then a final mix so the
/// low bits (the table index) depend on every byte. Terms are short, so this runs in a few
/// instructions where a general-purpose hash spends most of its time in setup. It is part of the format
/// (FORMAT.md §2): the stored table is laid out with it.
#[inline]
pub fn term_hash(term: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = term.len() as u64;
    let mut words = term.chunks_exact(8);
    for w in &mut words {
        h = (h.rotate_left(5) ^ word(w)).wrapping_mul(K);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        h = (h.rotate_left(5) ^ short_word(tail)).wrapping_mul(K);
    }
    h ^ (h >> 29) ^ (h >> 47)
}

/// The first 8 bytes as a little-endian word (one unaligned load).
#[inline]
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Fewer than 8 bytes as a little-endian word, zero-padded: three loads at most, where a
/// variable-length copy is a call to a byte loop in wasm.
#[inline]
fn short_word(mut b: &[u8]) -> u64 {
    let (mut w, mut shift) = (0u64, 0);
    if let [x0, x1, x2, x3, rest @ ..] = b {
        w = u64::from(u32::from_le_bytes([*x0, *x1, *x2, *x3]));
        (b, shift) = (rest, 32);
    }
    if let [x0, x1, rest @ ..] = b {
        w |= u64::from(u16::from_le_bytes([*x0, *x1])) << shift;
        (b, shift) = (rest, shift + 16);
    }
    if let [x0, ..] = b {
        w |= u64::from(*x0) << shift;
    }
    w
}

/// MurmurHash3 x86_32, as `sklearn.utils.murmurhash3_32(..., positive=False)`.
pub fn murmurhash3_32(key: &[u8], seed: u32) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = key.chunks_exact(4);
    for b in &mut blocks {
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, &byte) in tail.iter().enumerate() {
            k |= u32::from(byte) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= key.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h as i32
}

/// How features become columns.
#[derive(Debug, Clone)]
enum Counter {
    Vocabulary(Vocabulary),
    Hashing { n_features: u32, alternate_sign: bool },
}

/// A transform of a sparse row (FORMAT.md, `TRANSFORM`).
#[derive(Debug, Clone)]
pub enum Transform {
    /// `TfidfTransformer.transform` without its norm.
    Tfidf {
        /// `sublinear_tf`.
        sublinear_tf: bool,
        /// `idf_`.
        idf: Option<Idf>,
        /// numpy's log where it differs from `libm::log`, sorted by argument.
        log_exceptions: Vec<(u32, f64)>,
    },
    /// `normalize`.
    Normalize(Norm),
    /// A constant weight.
    Scale(f64),
    /// A column mask: the kept input columns (u32, strictly ascending), renumbered 0..k.
    Select(Slice),
    /// `x_j · (1 / scale[j])`, `scale` f64 per column.
    ColumnScale(Slice),
    /// `np.clip(x, min, max)` on every stored value.
    Clip {
        /// The lower bound.
        min: f64,
        /// The upper bound.
        max: f64,
    },
}

/// `np.clip`'s bounds as the engine takes them: finite and `min <= max` (numpy gives `max` when
/// they cross; this refuses them instead). The message names no value: formatting an f64 is
/// 9 KB of gzipped wasm that `skedge/lite` has no other use for (`skedge pack` names them).
pub fn check_clip(min: f64, max: f64) -> Result<()> {
    if min.is_finite() && max.is_finite() && min <= max {
        Ok(())
    } else {
        Err(Error::Corrupt("clip bounds must be finite, min <= max".into()))
    }
}

impl Transform {
    /// Checks a transform against the width of the row it applies to.
    pub fn new(p: TransformParams, width: u64, data: &Data) -> Result<Self> {
        Ok(match p {
            TransformParams::Tfidf {
                sublinear_tf,
                idf,
                log_exceptions,
            } => {
                let idf = idf.map(|i| Idf::new(i, width, data)).transpose()?;
                if !log_exceptions.windows(2).all(|w| w[0].0 < w[1].0) {
                    return Err(Error::Corrupt("log_exceptions are not sorted".into()));
                }
                Transform::Tfidf {
                    sublinear_tf,
                    idf,
                    log_exceptions,
                }
            }
            TransformParams::Normalize { norm } => Transform::Normalize(norm),
            TransformParams::Scale { factor } => {
                crate::classify::check_finite(&[factor], "scale factor")?;
                Transform::Scale(factor)
            }
            TransformParams::Select {
                n_features_in,
                support,
            } => {
                let support = data.slice(support, 4, "selected columns")?;
                if u64::from(n_features_in) != width || support.len() as u64 / 4 > width {
                    return Err(Error::Corrupt(format!(
                        "a column selection of {} columns out of {n_features_in} applies to {width} columns",
                        support.len() / 4
                    )));
                }
                // The columns are not read at load: unsorted or out-of-range ones (a hand-made
                // artifact) drop features, never panic.
                Transform::Select(support)
            }
            TransformParams::ColumnScale { scale } => {
                let scale = data.slice(scale, 8, "column scale")?;
                if scale.len() as u64 / 8 != width {
                    return Err(Error::Corrupt(format!(
                        "column scale has {} values for {width} columns",
                        scale.len() / 8
                    )));
                }
                Transform::ColumnScale(scale)
            }
            TransformParams::Clip { min, max } => {
                check_clip(min, max)?;
                Transform::Clip { min, max }
            }
        })
    }

    /// Number of columns out of the transform, given `width` in.
    pub fn out_width(&self, width: u64) -> u64 {
        match self {
            Transform::Select(support) => support.len() as u64 / 4,
            _ => width,
        }
    }

    /// The output column of input column `col` (`None` when a selection drops it).
    pub fn forward(&self, col: u32) -> Option<u32> {
        match self {
            Transform::Select(support) => select_rank(support.bytes(), col),
            _ => Some(col),
        }
    }

    /// The input column of output column `col`.
    pub fn back(&self, col: u32) -> Option<u32> {
        match self {
            Transform::Select(support) => layout::u32_at(support.bytes(), col as usize),
            _ => Some(col),
        }
    }

    /// Applies the transform in place to `row[start..]`, whose columns are shifted by `offset`
    /// from the ones `idf`, `scale` and the selection are indexed by. A selection drops entries.
    /// Fails only on a count past [`LOG_CHECKED`] under `sublinear_tf`.
    pub fn apply(&self, row: &mut Row, start: usize, offset: u32) -> Result<()> {
        if let Transform::Select(support) = self {
            // scipy's X[:, mask] keeps every stored entry of a kept column (explicit zeros too),
            // in column order: the support is ascending, so the order is kept.
            let mut kept = start;
            for i in start..row.len() {
                let (col, x) = row[i];
                if let Some(new) = select_rank(support.bytes(), col - offset) {
                    row[kept] = (new + offset, x);
                    kept += 1;
                }
            }
            row.truncate(kept);
            return Ok(());
        }
        let row = &mut row[start..];
        match self {
            Transform::Tfidf {
                sublinear_tf,
                idf,
                log_exceptions,
            } => {
                if *sublinear_tf {
                    for (_, x) in row.iter_mut() {
                        *x = log_count(*x, log_exceptions)? + 1.0;
                    }
                }
                if let Some(idf) = idf {
                    idf.scale(row, offset);
                }
            }
            Transform::Normalize(Norm::L2) => {
                // sklearn's _inplace_csr_row_normalize_l2: sequential sum of squares, sqrt, divide.
                let mut sum = 0.0;
                for &(_, x) in row.iter() {
                    sum += x * x;
                }
                if sum != 0.0 {
                    let norm = sum.sqrt();
                    for (_, x) in row.iter_mut() {
                        *x /= norm;
                    }
                }
            }
            Transform::Normalize(Norm::L1) => {
                let mut sum = 0.0;
                for &(_, x) in row.iter() {
                    sum += x.abs();
                }
                if sum != 0.0 {
                    for (_, x) in row.iter_mut() {
                        *x /= sum;
                    }
                }
            }
            Transform::Scale(w) => {
                for (_, x) in row.iter_mut() {
                    *x *= w;
                }
            }
            Transform::ColumnScale(scale) => {
                // inplace_csr_column_scale(X, 1 / scale_): X.data *= (1 / scale_)[X.indices]. The
                // reciprocal first, as numpy computes it, never x / scale.
                for (j, x) in row.iter_mut() {
                    let s = layout::f64_at(scale.bytes(), (*j - offset) as usize).unwrap_or(f64::NAN);
                    *x *= 1.0 / s;
                }
            }
            Transform::Clip { min, max } => {
                // np.clip(X.data, min, max, out=X.data): stored values only (explicit zeros
                // included, already within a MaxAbsScaler's [-1, 1]); a NaN stays NaN, as
                // numpy's, where f64::clamp would need min <= max checked again and f64::max
                // would drop the NaN.
                for (_, x) in row.iter_mut() {
                    if *x < *min {
                        *x = *min;
                    } else if *x > *max {
                        *x = *max;
                    }
                }
            }
            Transform::Select(_) => {}
        }
        Ok(())
    }
}

/// The position of `col` in the ascending u32 list `support` (binary search in place).
fn select_rank(support: &[u8], col: u32) -> Option<u32> {
    let (mut lo, mut hi) = (0usize, support.len() / 4);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let c = layout::u32_at(support, mid)?;
        match c.cmp(&col) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(mid as u32),
        }
    }
    None
}

/// `idf_` in place: distinct values and one narrow index per column (FORMAT.md §2).
#[derive(Debug, Clone)]
pub struct Idf {
    values: Slice,
    index: Slice,
    width: u8,
}

impl Idf {
    /// Checks sizes against the number of columns and that every distinct value is finite (a
    /// few hundred values; the per-column indices are not read).
    pub fn new(i: v3::Idf, width: u64, data: &Data) -> Result<Self> {
        // Index bytes for `width` columns: whole bytes, or packed bits and three bytes of padding
        // (every index is then read as one little-endian u32).
        let w = i.index_width;
        let expected = match w {
            1 | 2 | 4 => Some(width * u64::from(w)),
            _ if w & v3::IDF_PACKED != 0 && matches!(w & !v3::IDF_PACKED, 9..=15 | 17..=24) => {
                Some((width * u64::from(w & !v3::IDF_PACKED)).div_ceil(8) + 3)
            }
            _ => None,
        };
        let values = data.slice(i.values, 8, "idf values")?;
        let index = data.slice(i.index, 1, "idf index")?;
        if expected != Some(index.len() as u64) {
            return Err(Error::Corrupt(format!(
                "idf index of width {w} has {} bytes for {width} columns",
                index.len()
            )));
        }
        let distinct: Vec<f64> = values
            .bytes()
            .chunks_exact(8)
            .filter_map(|c| layout::f64_at(c, 0))
            .collect();
        crate::classify::check_finite(&distinct, "idf")?;
        Ok(Idf {
            values,
            index,
            width: w,
        })
    }

    /// `idf_[col]`. An index past the distinct values (damage the checksum did not catch: a
    /// hand-made artifact) reads as NaN, never a panic.
    #[inline]
    pub fn get(&self, col: usize) -> f64 {
        let (index, values) = (self.index.bytes(), self.values.bytes());
        match self.width {
            1 => idf_at::<1>(index, values, col),
            2 => idf_at::<2>(index, values, col),
            4 => idf_at::<4>(index, values, col),
            w => idf_packed(index, values, u32::from(w & !v3::IDF_PACKED), col),
        }
    }

    /// `x *= idf_[col - offset]` for each entry: the width matched and the sections found once
    /// per row, not per entry.
    fn scale(&self, row: &mut [(u32, f64)], offset: u32) {
        fn scale_with<const W: usize>(index: &[u8], values: &[u8], row: &mut [(u32, f64)], offset: u32) {
            for (j, x) in row {
                *x *= idf_at::<W>(index, values, (*j - offset) as usize);
            }
        }
        let (index, values) = (self.index.bytes(), self.values.bytes());
        match self.width {
            1 => scale_with::<1>(index, values, row, offset),
            2 => scale_with::<2>(index, values, row, offset),
            4 => scale_with::<4>(index, values, row, offset),
            w => {
                for (j, x) in row {
                    *x *= idf_packed(
                        index,
                        values,
                        u32::from(w & !v3::IDF_PACKED),
                        (*j - offset) as usize,
                    );
                }
            }
        }
    }
}

/// [`Idf::get`] with the index width `W` known: entry `col` of `index` (little-endian) picks a
/// distinct value.
#[inline(always)]
fn idf_at<const W: usize>(index: &[u8], values: &[u8], col: usize) -> f64 {
    col.checked_mul(W)
        .and_then(|at| index.get(at..at.checked_add(W)?))
        .map(|x| x.iter().rev().fold(0, |i, &byte| i << 8 | usize::from(byte)))
        .and_then(|i| layout::f64_at(values, i))
        .unwrap_or(f64::NAN)
}

/// [`Idf::get`] of indices of `bits` bits (9..=24), packed: index `col` is bits
/// `col · bits ..` of `index` read as little-endian.
#[inline(never)]
fn idf_packed(index: &[u8], values: &[u8], bits: u32, col: usize) -> f64 {
    col.checked_mul(bits as usize)
        .and_then(|bit| Some((bit % 8, layout::u32_at_byte(index, bit / 8)?)))
        .map(|(shift, word)| (word >> shift) as usize & ((1 << bits) - 1))
        .and_then(|i| layout::f64_at(values, i))
        .unwrap_or(f64::NAN)
}

/// The largest count whose `log` the exporter compares between numpy and `libm` when it records
/// `log_exceptions` (FORMAT.md §1; `LN_TABLE_SIZE` of scripts/skedge/interchange.py).
pub const LOG_CHECKED: u32 = 1 << 20;

/// numpy's `log` of a count: the exporter recorded where numpy and `libm` disagree up to
/// [`LOG_CHECKED`]. A larger count is refused: numpy's value there is unknown (on a host with
/// AVX-512 one count in a hundred differs in the last bit).
fn log_count(x: f64, exceptions: &[(u32, f64)]) -> Result<f64> {
    if x > f64::from(LOG_CHECKED) {
        return Err(Error::CountTooLarge {
            count: x as u64,
            limit: LOG_CHECKED,
        });
    }
    if x >= 1.0 && x.fract() == 0.0 {
        let k = x as u32;
        if let Ok(i) = exceptions.binary_search_by_key(&k, |&(k, _)| k) {
            return Ok(exceptions[i].1);
        }
    }
    Ok(libm::log(x))
}

/// One vectorizer with the transforms of its branch.
#[derive(Debug, Clone)]
pub struct Vectorizer {
    /// The analyzer.
    pub analyzer: Analyzer,
    counter: Counter,
    binary: bool,
    transforms: Vec<Transform>,
    width: u64,
}

impl Vectorizer {
    /// Checks a feature block read from an artifact whose text follows `unicode`.
    pub fn new(block: FeatureBlock, data: &Data, unicode: Unicode) -> Result<Self> {
        let analyzer = Analyzer::new(&block.analyzer, unicode)?;
        let counter = match block.counts {
            CountsParams::Vocabulary(v) => Counter::Vocabulary(Vocabulary::new(v, data)?),
            CountsParams::Pairs(p) => {
                Counter::Vocabulary(Vocabulary::with_pairs(p, analyzer.word_pairs().is_some(), data)?)
            }
            CountsParams::Hashing {
                n_features,
                alternate_sign,
            } => {
                if n_features == 0 || n_features > i32::MAX as u32 {
                    return Err(Error::Corrupt(format!("n_features {n_features} is out of range")));
                }
                Counter::Hashing {
                    n_features,
                    alternate_sign,
                }
            }
        };
        let mut v = Vectorizer {
            analyzer,
            counter,
            binary: block.binary,
            transforms: Vec::new(),
            width: 0,
        };
        let (transforms, width) = transforms(block.transforms, v.n_columns(), data)?;
        v.transforms = transforms;
        v.width = width;
        Ok(v)
    }

    /// Number of columns this block produces: the counter's, less what its selections drop.
    pub fn n_features(&self) -> u64 {
        self.width
    }

    /// Number of columns of the counter (`len(vocabulary_)` or `n_features`), before any
    /// selection.
    pub fn n_columns(&self) -> u64 {
        match &self.counter {
            Counter::Vocabulary(v) => v.len() as u64,
            Counter::Hashing { n_features, .. } => u64::from(*n_features),
        }
    }

    /// The block's output column of counter column `col` (`None` when a selection drops it).
    pub fn column(&self, col: u32) -> Option<u32> {
        self.transforms.iter().try_fold(col, |c, t| t.forward(c))
    }

    /// The counter column of the block's output column `col`.
    pub fn source_column(&self, col: u32) -> Option<u32> {
        self.transforms.iter().rev().try_fold(col, |c, t| t.back(c))
    }

    /// A [`Recent`] for this vectorizer's lookups, its entries taken from `budget`: for a
    /// vocabulary, `RECENT_ENTRIES` (4,096) or the power of two at or above its number of terms,
    /// whichever is smaller, if the budget has them; empty otherwise, and for hashing.
    pub fn recent(&self, budget: &mut usize) -> Recent {
        let n = match &self.counter {
            Counter::Vocabulary(v) => v.len().max(1).next_power_of_two().min(RECENT_ENTRIES),
            Counter::Hashing { .. } => 0,
        };
        if n > *budget {
            return Recent::default();
        }
        *budget -= n;
        Recent {
            entries: vec![[0; RECENT_BYTES]; n],
        }
    }

    /// The vocabulary, when there is one.
    pub fn vocabulary(&self) -> Option<&Vocabulary> {
        match &self.counter {
            Counter::Vocabulary(v) => Some(v),
            Counter::Hashing { .. } => None,
        }
    }

    /// `transform([doc])`, appended to `row` with columns shifted by `offset`. `hits` is scratch.
    pub fn transform_into(
        &self,
        doc: &str,
        scratch: &mut Scratch,
        recent: &mut Recent,
        hits: &mut Vec<u32>,
        offset: u32,
        row: &mut Row,
    ) -> Result<()> {
        // Each feature as `column << 1 | negative`: columns are below 2^31 (a vocabulary's count
        // and `n_features` are checked at load), and sorting u32 keys is cheaper than pairs.
        hits.clear();
        match &self.counter {
            Counter::Vocabulary(vocab) => match (&vocab.pairs, self.analyzer.word_pairs()) {
                // Each token looked up once, its pairs by the two words' ranks.
                (Some(p), Some((unigrams, pairs))) => {
                    let mut previous = None;
                    self.analyzer.for_each_token(doc, scratch, |t| {
                        let rank = vocab.terms.get_recent(t.as_bytes(), recent);
                        if let Some(r) = rank {
                            if let Some(col) = p.column(r).filter(|_| unigrams) {
                                hits.push(col << 1);
                            }
                            if let Some(col) = previous.and_then(|a| p.pair(vocab.count, a, r)) {
                                hits.push(col << 1);
                            }
                        }
                        previous = rank.filter(|_| pairs);
                    })
                }
                // Word pairs with another analyzer are refused at load.
                (Some(_), None) => {}
                (None, _) => self.analyzer.for_each_feature(doc, scratch, |f| {
                    if let Some(col) = vocab.terms.get_recent(f.as_bytes(), recent) {
                        hits.push(col << 1);
                    }
                }),
            },
            Counter::Hashing {
                n_features,
                alternate_sign,
            } => self.analyzer.for_each_feature(doc, scratch, |f| {
                let h = murmurhash3_32(f.as_bytes(), 0);
                // _hashing_transform: abs(h) % n_features, with abs(i32::MIN) defined by sklearn.
                let col = if h == i32::MIN {
                    (i32::MAX as u32 - (n_features - 1)) % n_features
                } else {
                    h.unsigned_abs() % n_features
                };
                hits.push(col << 1 | u32::from(*alternate_sign && h < 0));
            }),
        }
        // Counts and ±1 sums are small integers: exact in any order, so an unstable sort is fine.
        hits.sort_unstable();
        let start = row.len();
        let mut last = None;
        for &key in hits.iter() {
            let (col, v) = (key >> 1, if key & 1 == 1 { -1.0 } else { 1.0 });
            match row.last_mut() {
                Some((_, x)) if last == Some(col) => *x += v,
                _ => row.push((col + offset, v)),
            }
            last = Some(col);
        }
        if self.binary {
            for (_, x) in row[start..].iter_mut() {
                *x = 1.0;
            }
        }
        for t in &self.transforms {
            t.apply(row, start, offset)?;
        }
        Ok(())
    }
}

/// Checks transforms in order, each against the width the previous one leaves; returns them
/// and the final width.
pub fn transforms(
    params: Vec<TransformParams>,
    mut width: u64,
    data: &Data,
) -> Result<(Vec<Transform>, u64)> {
    let mut out = Vec::with_capacity(params.len());
    for p in params {
        let t = Transform::new(p, width, data)?;
        width = t.out_width(width);
        out.push(t);
    }
    Ok((out, width))
}

#[cfg(test)]
mod word_tests {
    use super::*;

    #[test]
    fn term_hash_sees_every_byte() {
        let base: Vec<u8> = (1..=21).collect();
        for n in 0..=20 {
            let a = &base[..n];
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x80;
                assert_ne!(term_hash(a), term_hash(&b), "n={n} i={i}");
            }
        }
        assert_eq!(short_word(&[1, 2, 3, 4, 5, 6, 7]), 0x0007_0605_0403_0201);
        assert_eq!(short_word(&[]), 0);
    }
}

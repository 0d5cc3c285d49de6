//! The publish pointer (FORMAT.md §5): which content-addressed artifact a model's alias names at
//! the edge, and the exact bytes its Ed25519 signature covers. The publisher (`scripts/skedge/
//! publish.py`) fills the fields; `skedge sign-pointer` signs and `skedge verify-pointer` checks,
//! so one encoder defines the signed bytes.

use serde::{Deserialize, Serialize};

use crate::artifact::{COLUMN_FORMAT_VERSION, FORMAT_VERSION, LEGACY_FORMAT_VERSION};
use crate::error::Quoted;
use crate::hex;
use crate::integrity::base64;
use crate::{Error, Result};

/// Pointer documents this build reads and writes.
pub const POINTER_VERSION: u32 = 1;

/// First line of the signed message: a signature over a pointer is never one over an artifact.
const DOMAIN: &str = "skedge-pointer\n";

/// One `pointers/<model>/<alias>.json` document. Field order is the JSON order and the order of
/// the signed lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    /// [`POINTER_VERSION`].
    pub pointer_version: u32,
    /// Registered model name.
    pub model: String,
    /// The alias this pointer follows (`production`).
    pub alias: String,
    /// Model version the alias named at publish time.
    pub version: String,
    /// MLflow run id of that version (empty outside a registry).
    pub run_id: String,
    /// Lowercase hex sha256 of the artifact bytes.
    pub sha256: String,
    /// Artifact size in bytes.
    pub size: u64,
    /// Subresource-integrity string of the artifact (`sha256-<base64>`).
    pub integrity: String,
    /// Key of the artifact under the destination: `blobs/sha256/<sha256>.skedge`.
    pub blob: String,
    /// Key of its manifest: `blobs/sha256/<sha256>.manifest.json`.
    pub manifest: String,
    /// The artifact's format version.
    pub format_version: u32,
    /// 1 for the first pointer of a model and alias, then the previous one's plus 1.
    pub generation: u64,
    /// sha256 of the previous pointer's artifact (empty for generation 1).
    pub previous_sha256: String,
    /// The previous pointer's generation (0 for generation 1).
    pub previous_generation: u64,
    /// RFC 3339 UTC time of publication.
    pub published_at: String,
    /// Lowercase hex Ed25519 signature of [`Pointer::signed_message`], or null when unsigned.
    pub signature: Option<String>,
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as the publisher writes it (a leap second allowed, as RFC 3339 does).
fn is_utc_seconds(s: &str) -> bool {
    const SHAPE: &[u8; 20] = b"dddd-dd-ddTdd:dd:ddZ";
    let b = s.as_bytes();
    let two = |at: usize| (b[at] - b'0') * 10 + (b[at + 1] - b'0');
    b.len() == SHAPE.len()
        && b.iter().zip(SHAPE).all(|(&c, &t)| match t {
            b'd' => c.is_ascii_digit(),
            _ => c == t,
        })
        && (1..=12).contains(&two(5))
        && (1..=31).contains(&two(8))
        && two(11) <= 23
        && two(14) <= 59
        && two(17) <= 60
}

/// Whether `integrity` is `sha256-<base64>` (standard, padded) of the digest whose lowercase hex
/// is `sha256`.
fn integrity_matches(integrity: &str, sha256: &str) -> bool {
    let digest = hex::decode::<32>(sha256);
    digest.is_some_and(|d| integrity.strip_prefix("sha256-") == Some(base64(&d).as_str()))
}

impl Pointer {
    /// Refuses a pointer whose fields contradict each other or could not be signed unambiguously.
    pub fn check(&self) -> Result<()> {
        let bad = |why: String| Err(Error::PointerInvalid(why));
        if self.pointer_version != POINTER_VERSION {
            return bad(format!(
                "pointer_version {} (this build reads {POINTER_VERSION})",
                self.pointer_version
            ));
        }
        if !hex::is_lower(&self.sha256, 64) {
            return bad(format!(
                "sha256 {} is not 64 lowercase hex digits",
                Quoted(&self.sha256)
            ));
        }
        // The blob's and the manifest's keys, and the integrity, are derived from the sha256.
        let keyed = |key: &str, suffix: &str| {
            key.strip_prefix("blobs/sha256/")
                .and_then(|k| k.strip_suffix(suffix))
                == Some(self.sha256.as_str())
        };
        if !keyed(&self.blob, ".skedge") {
            return bad(format!(
                "blob {} is not blobs/sha256/<sha256>.skedge",
                Quoted(&self.blob)
            ));
        }
        if !keyed(&self.manifest, ".manifest.json") || !integrity_matches(&self.integrity, &self.sha256) {
            return bad(format!(
                "manifest {} or integrity {} does not match the sha256",
                Quoted(&self.manifest),
                Quoted(&self.integrity)
            ));
        }
        // A follower reads up to `size` bytes of blob: no more than wasm32's memory holds, no fewer
        // than an artifact's header.
        if !(24..=u64::from(u32::MAX)).contains(&self.size) {
            return bad(format!(
                "size {} is not an artifact's (24 bytes to 4 GiB)",
                self.size
            ));
        }
        // They name the pointer's own key, `pointers/<model>/<alias>.json`.
        let names = |s: &str| !(s.is_empty() || s == "." || s == ".." || s.bytes().any(|b| b == b'/'));
        if !names(&self.model) || !names(&self.alias) {
            return bad(format!(
                "model {} or alias {} cannot name a pointer",
                Quoted(&self.model),
                Quoted(&self.alias)
            ));
        }
        if self.generation == 0 || self.previous_generation >= self.generation {
            return bad(format!(
                "generation {} after previous_generation {}: generations start at 1 and only grow",
                self.generation, self.previous_generation
            ));
        }
        if (self.previous_generation == 0) != self.previous_sha256.is_empty()
            || !(self.previous_sha256.is_empty() || hex::is_lower(&self.previous_sha256, 64))
        {
            return bad(format!(
                "previous_sha256 {} does not match previous_generation {}",
                Quoted(&self.previous_sha256),
                self.previous_generation
            ));
        }
        for (name, value) in self.text_fields() {
            if value.chars().any(char::is_control) {
                return bad(format!("{name} contains a control character"));
            }
        }
        if !is_utc_seconds(&self.published_at) {
            return bad(format!(
                "published_at {} is not RFC 3339 UTC to the second (2026-12-03T00:00:00Z)",
                Quoted(&self.published_at)
            ));
        }
        // Last, so that only a well-formed pointer says so: a follower that cannot read the
        // artifact refuses before fetching it, and tells its operator to upgrade.
        if [LEGACY_FORMAT_VERSION, FORMAT_VERSION, COLUMN_FORMAT_VERSION]
            .map(u32::from)
            .contains(&self.format_version)
        {
            Ok(())
        } else {
            Err(Error::UnsupportedFormatVersion {
                found: self.format_version,
                supported: COLUMN_FORMAT_VERSION,
            })
        }
    }

    /// Refuses a pointer of another model or alias than the ones a follower follows (`None`:
    /// any): a pointer signed with the fleet's key is valid for every key of the destination,
    /// so another model's, a `staging` one or a challenger's copied onto the followed key would
    /// otherwise be served. The message names the pointer's model and alias, then the followed
    /// ones (a name not pinned shown as the pointer's).
    pub fn check_names(&self, model: Option<&str>, alias: Option<&str>) -> Result<()> {
        let (model, alias) = (model.unwrap_or(&self.model), alias.unwrap_or(&self.alias));
        if model == self.model && alias == self.alias {
            return Ok(());
        }
        Err(Error::PointerInvalid(format!(
            "it is the pointer of model {} alias {}, not of the followed model {} alias {}",
            Quoted(&self.model),
            Quoted(&self.alias),
            Quoted(model),
            Quoted(alias)
        )))
    }

    fn text_fields(&self) -> [(&'static str, &str); 9] {
        [
            ("model", &self.model),
            ("alias", &self.alias),
            ("version", &self.version),
            ("run_id", &self.run_id),
            ("integrity", &self.integrity),
            ("blob", &self.blob),
            ("manifest", &self.manifest),
            ("previous_sha256", &self.previous_sha256),
            ("published_at", &self.published_at),
        ]
    }

    /// The signed bytes: `skedge-pointer\n`, then one `name=value\n` line per field except
    /// `signature`, in field order, values as in the JSON (numbers in decimal). No value holds a
    /// control character ([`Pointer::check`]), so the lines cannot be confused.
    pub fn signed_message(&self) -> Result<Vec<u8>> {
        self.check()?;
        let lines = [
            ("pointer_version", self.pointer_version.to_string()),
            ("model", self.model.clone()),
            ("alias", self.alias.clone()),
            ("version", self.version.clone()),
            ("run_id", self.run_id.clone()),
            ("sha256", self.sha256.clone()),
            ("size", self.size.to_string()),
            ("integrity", self.integrity.clone()),
            ("blob", self.blob.clone()),
            ("manifest", self.manifest.clone()),
            ("format_version", self.format_version.to_string()),
            ("generation", self.generation.to_string()),
            ("previous_sha256", self.previous_sha256.clone()),
            ("previous_generation", self.previous_generation.to_string()),
            ("published_at", self.published_at.clone()),
        ];
        let mut out = DOMAIN.as_bytes().to_vec();
        for (name, value) in lines {
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        Ok(out)
    }

    /// Signs with an Ed25519 secret key, replacing any signature.
    #[cfg(feature = "crypto")]
    pub fn sign(&mut self, secret: &[u8; crate::artifact::crypto::KEY_LEN]) -> Result<()> {
        let signature = crate::artifact::crypto::sign(secret, &self.signed_message()?);
        self.signature = Some(hex::encode(&signature));
        Ok(())
    }

    /// Checks the fields and the signature against any of `public_keys` (several during a key
    /// rotation). `SIGNATURE_MISSING` when unsigned, `SIGNATURE_INVALID` when no key verifies,
    /// in messages that name the pointer, not an artifact.
    #[cfg(feature = "crypto")]
    pub fn verify(&self, public_keys: &[[u8; crate::artifact::crypto::KEY_LEN]]) -> Result<()> {
        use crate::artifact::crypto::{verify, SIGNATURE_LEN};
        let message = self.signed_message()?;
        let text = self.signature.as_deref().ok_or(Error::PointerSignatureMissing)?;
        let verified = hex::is_lower(text, 2 * SIGNATURE_LEN)
            && hex::decode::<SIGNATURE_LEN>(text)
                .is_some_and(|s| public_keys.iter().any(|key| verify(key, &message, &s)));
        if verified {
            Ok(())
        } else {
            Err(Error::PointerSignatureInvalid {
                keys: public_keys.len(),
            })
        }
    }
}

#[cfg(all(test, feature = "crypto"))]
mod tests {
    use super::*;
    use crate::artifact::crypto::public_key;

    fn pointer() -> Pointer {
        let sha = "ab".repeat(32);
        Pointer {
            pointer_version: 1,
            model: "sentiment".into(),
            alias: "production".into(),
            version: "2".into(),
            run_id: "r1".into(),
            blob: format!("blobs/sha256/{sha}.skedge"),
            manifest: format!("blobs/sha256/{sha}.manifest.json"),
            sha256: sha,
            size: 24,
            integrity: crate::integrity::of_sha256(&[0xab; 32]),
            format_version: 3,
            generation: 2,
            previous_sha256: "cd".repeat(32),
            previous_generation: 1,
            published_at: "2026-12-03T00:00:00Z".into(),
            signature: None,
        }
    }

    #[test]
    fn signed_message_is_the_documented_lines() {
        let text = String::from_utf8(pointer().signed_message().unwrap()).unwrap();
        assert!(text.starts_with("skedge-pointer\npointer_version=1\nmodel=sentiment\nalias=production\n"));
        assert!(text.ends_with("previous_generation=1\npublished_at=2026-12-03T00:00:00Z\n"));
        assert_eq!(text.lines().count(), 16);
    }

    #[test]
    fn sign_then_verify_and_any_change_fails() {
        let secret = [7u8; 32];
        let mut p = pointer();
        let missing = p.verify(&[public_key(&secret)]).unwrap_err();
        assert_eq!(missing, Error::PointerSignatureMissing);
        assert_eq!(missing.code(), "SIGNATURE_MISSING");
        assert!(
            missing.to_string().starts_with("pointer is not signed"),
            "{missing}"
        );
        p.sign(&secret).unwrap();
        p.verify(&[public_key(&secret)]).unwrap();
        let mut q = p.clone();
        q.generation = 3;
        assert_eq!(
            q.verify(&[public_key(&secret)]),
            Err(Error::PointerSignatureInvalid { keys: 1 })
        );
        let invalid = p.verify(&[public_key(&[8u8; 32])]).unwrap_err();
        assert_eq!(invalid, Error::PointerSignatureInvalid { keys: 1 });
        assert_eq!(invalid.code(), "SIGNATURE_INVALID");
        assert!(
            invalid
                .to_string()
                .starts_with("pointer signature does not verify"),
            "{invalid}"
        );
    }

    #[test]
    fn check_names_refuses_another_model_or_alias() {
        let p = pointer();
        p.check_names(None, None).unwrap();
        p.check_names(Some("sentiment"), None).unwrap();
        p.check_names(None, Some("production")).unwrap();
        p.check_names(Some("sentiment"), Some("production")).unwrap();
        let refused = |model, alias| match p.check_names(model, alias) {
            Err(Error::PointerInvalid(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(Some("sentiment"), Some("staging")),
            "it is the pointer of model \"sentiment\" alias \"production\", not of the followed \
             model \"sentiment\" alias \"staging\""
        );
        assert_eq!(
            refused(Some("other"), None),
            "it is the pointer of model \"sentiment\" alias \"production\", not of the followed \
             model \"other\" alias \"production\""
        );
        assert!(refused(None, Some("Production")).ends_with("model \"sentiment\" alias \"Production\""));
        // A caller's name is cut in the message, as every quoted value is.
        let long = "m".repeat(10_000);
        assert!(refused(Some(&long), None).len() < 400);
    }

    #[test]
    fn refuses_inconsistent_fields() {
        let mut p = pointer();
        p.previous_generation = 2;
        assert!(matches!(p.signed_message(), Err(Error::PointerInvalid(_))));
        let mut p = pointer();
        p.model = "a\nsha256=x".into();
        assert!(matches!(p.signed_message(), Err(Error::PointerInvalid(_))));
        let mut p = pointer();
        p.blob = "blobs/other".into();
        assert!(matches!(p.signed_message(), Err(Error::PointerInvalid(_))));
        let mut p = pointer();
        p.manifest = format!("blobs/sha256/{}.manifest.json", "cd".repeat(32));
        assert!(matches!(p.signed_message(), Err(Error::PointerInvalid(_))));
        let mut p = pointer();
        p.integrity = crate::integrity::of_sha256(&[0xcd; 32]);
        assert!(matches!(p.signed_message(), Err(Error::PointerInvalid(_))));
        for (model, alias) in [
            ("", "production"),
            ("..", "production"),
            ("a/b", "production"),
            ("m", "."),
            ("m", ""),
        ] {
            let mut p = pointer();
            (p.model, p.alias) = (model.into(), alias.into());
            assert!(
                matches!(p.signed_message(), Err(Error::PointerInvalid(_))),
                "{model:?} {alias:?}"
            );
        }
        for size in [0, 23, 1 << 32, u64::MAX] {
            let mut p = pointer();
            p.size = size;
            assert!(
                matches!(p.signed_message(), Err(Error::PointerInvalid(_))),
                "{size}"
            );
        }
        for published_at in [
            "",
            "2026-12-03",
            "2026-12-03T00:00:00",
            "2026-12-03T00:00:00.5Z",
            "2026-12-03T00:00:00+00:00",
            "2026-12-03 00:00:00Z",
            "2026-13-03T00:00:00Z",
            "2026-12-00T00:00:00Z",
            "2026-12-03T24:00:00Z",
            "2026-12-03T00:60:00Z",
            "2026-12-03T00:00:61Z",
            "2026-12-0xT00:00:00Z",
            "+026-12-03T00:00:00Z",
        ] {
            let mut p = pointer();
            p.published_at = published_at.into();
            assert!(
                matches!(p.signed_message(), Err(Error::PointerInvalid(_))),
                "{published_at:?}"
            );
        }
        for format_version in [0, 1, 5, 1 << 16, u32::MAX] {
            let mut p = pointer();
            p.format_version = format_version;
            assert_eq!(
                p.check(),
                Err(Error::UnsupportedFormatVersion {
                    found: format_version,
                    supported: COLUMN_FORMAT_VERSION
                })
            );
        }
        let mut p = pointer();
        (p.model, p.alias) = ("sentiment.v2".into(), "...".into());
        p.published_at = "2016-12-31T23:59:60Z".into();
        p.check().unwrap();
        for format_version in [2, 3, 4] {
            p.format_version = format_version;
            p.check().unwrap();
        }
    }
}

//! The `Idempotency-Key` value: what a client may send, and why a value is refused.

use std::fmt;

/// The longest key accepted, in bytes (characters, since keys are ASCII).
pub const MAX_KEY_LEN: usize = 255;

/// A validated idempotency key: a UUID (any version, any case) or a slug of ASCII
/// letters, digits, `-` and `_`, 1 to 255 characters long.
///
/// The text is kept exactly as sent: keys are opaque and case-sensitive, so a client
/// that retries with the same bytes always finds its record.
///
/// ```
/// use lambda_idempotency::key::{IdempotencyKey, KeyError, KeyKind};
///
/// let key = IdempotencyKey::parse("3F2504E0-4F89-41D3-9A0C-0305E82C3301")?;
/// assert_eq!(key.kind(), KeyKind::Uuid);
/// assert_eq!(IdempotencyKey::parse("order_42-retry")?.kind(), KeyKind::Slug);
///
/// let err = IdempotencyKey::parse("abc def").unwrap_err();
/// assert_eq!(err, KeyError::InvalidCharacter { position: 4, character: ' ' });
/// assert_eq!(err.to_string(), "the idempotency key has an invalid character ' ' at position 4 (allowed: ASCII letters, digits, '-' and '_')");
/// # Ok::<(), KeyError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    text: String,
    kind: KeyKind,
}

/// Which of the accepted shapes a key has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// `8-4-4-4-12` hexadecimal digits, any version, any case.
    Uuid,
    /// Any other run of ASCII letters, digits, `-` and `_`.
    Slug,
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is present but has no characters.
    #[error("the idempotency key is empty")]
    Empty,
    /// The key is longer than [`MAX_KEY_LEN`] bytes.
    #[error("the idempotency key is {len} bytes long; the maximum is {max}")]
    TooLong {
        /// Length of the key in bytes.
        len: usize,
        /// The maximum, [`MAX_KEY_LEN`].
        max: usize,
    },
    /// The value starts with `"` (a Structured Field string, as the IETF draft
    /// writes keys) but is not a well-formed one.
    #[error("the idempotency key is not a valid quoted string: {reason}")]
    MalformedString {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A character outside ASCII letters, digits, `-` and `_`.
    #[error(
        "the idempotency key has an invalid character {character:?} at position {position} (allowed: ASCII letters, digits, '-' and '_')"
    )]
    InvalidCharacter {
        /// 1-based position of the first offending character.
        position: usize,
        /// The offending character (U+FFFD when the bytes were not UTF-8).
        character: char,
    },
}

impl IdempotencyKey {
    /// Validates a key.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        if text.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong {
                len: text.len(),
                max: MAX_KEY_LEN,
            });
        }
        if let Some((index, character)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(KeyError::InvalidCharacter {
                position: index + 1,
                character,
            });
        }
        let kind = if is_uuid(text) {
            KeyKind::Uuid
        } else {
            KeyKind::Slug
        };
        Ok(Self {
            text: text.to_owned(),
            kind,
        })
    }

    /// Validates a key given as raw bytes (an HTTP header value need not be UTF-8).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(text),
            Err(e) => {
                if bytes.len() > MAX_KEY_LEN {
                    return Err(KeyError::TooLong {
                        len: bytes.len(),
                        max: MAX_KEY_LEN,
                    });
                }
                let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
                // Report an earlier bad character if there is one, else the invalid byte.
                Self::parse(valid).and_then(|_| {
                    Err(KeyError::InvalidCharacter {
                        position: valid.chars().count() + 1,
                        character: char::REPLACEMENT_CHARACTER,
                    })
                })
            }
        }
    }

    /// Validates an `Idempotency-Key` header value: the key itself (`8e03978e-…`), or
    /// the form draft-ietf-httpapi-idempotency-key-header defines, a Structured Field
    /// string (RFC 8941: `"8e03978e-…"`), whose key is its content. Spaces around the
    /// value are ignored, as a Structured Field parser ignores them. So a client that
    /// follows the draft and one that does not send the same key.
    ///
    /// ```
    /// use lambda_idempotency::key::{IdempotencyKey, KeyError};
    ///
    /// let quoted = IdempotencyKey::parse_header(br#""8e03978e-40d5-43e8-bc93-6894a57f9324""#)?;
    /// let bare = IdempotencyKey::parse_header(b"8e03978e-40d5-43e8-bc93-6894a57f9324")?;
    /// assert_eq!(quoted, bare);
    /// assert_eq!(quoted.as_str(), "8e03978e-40d5-43e8-bc93-6894a57f9324");
    /// assert!(matches!(
    ///     IdempotencyKey::parse_header(br#""unterminated"#),
    ///     Err(KeyError::MalformedString { .. })
    /// ));
    /// # Ok::<(), KeyError>(())
    /// ```
    pub fn parse_header(bytes: &[u8]) -> Result<Self, KeyError> {
        let trimmed = bytes.trim_ascii();
        let Some(rest) = trimmed.strip_prefix(b"\"") else {
            return Self::parse_bytes(bytes);
        };
        let malformed = |reason: &'static str| KeyError::MalformedString { reason };
        let Some(end) = rest.iter().position(|b| *b == b'"' || *b == b'\\') else {
            return Err(malformed("the quoted string has no closing '\"'"));
        };
        if rest[end] == b'\\' {
            // An escaped '"' or '\\' is valid in a Structured Field string, but neither
            // character is valid in a key.
            return Err(malformed(
                "the quoted string has an escape ('\\'); a key has only letters, digits, '-' and '_'",
            ));
        }
        match &rest[end + 1..] {
            [] => {}
            [b';', ..] => {
                return Err(malformed("Structured Field parameters are not accepted"));
            }
            _ => return Err(malformed("characters follow the closing '\"'")),
        }
        Self::parse_bytes(&rest[..end])
    }

    /// A key built by this crate from characters it knows are valid (a hash).
    pub(crate) fn from_valid_slug(text: String) -> Self {
        debug_assert!(Self::parse(&text).is_ok(), "{text:?}");
        Self {
            text,
            kind: KeyKind::Slug,
        }
    }

    /// The key exactly as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the key is a UUID or a slug.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({:?})", self.text)
    }
}

impl std::str::FromStr for IdempotencyKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_of_any_version_and_case() {
        for text in [
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
            "018f6b1e-7c4a-7d3e-8a9b-0123456789ab",
            "00000000-0000-0000-0000-000000000000",
        ] {
            let key = IdempotencyKey::parse(text).unwrap();
            assert_eq!(key.kind(), KeyKind::Uuid, "{text}");
            assert_eq!(key.as_str(), text, "kept as sent");
        }
    }

    #[test]
    fn accepts_slugs_up_to_255() {
        for text in ["a", "A-b_9", "order-42", &"x".repeat(255), "3f2504e0_4f89"] {
            assert_eq!(IdempotencyKey::parse(text).unwrap().kind(), KeyKind::Slug);
        }
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(IdempotencyKey::parse(""), Err(KeyError::Empty));
        assert_eq!(IdempotencyKey::parse_bytes(b""), Err(KeyError::Empty));
    }

    #[test]
    fn rejects_over_255() {
        assert_eq!(
            IdempotencyKey::parse(&"x".repeat(256)),
            Err(KeyError::TooLong { len: 256, max: 255 })
        );
        assert_eq!(
            IdempotencyKey::parse_bytes(&[0xff; 300]),
            Err(KeyError::TooLong { len: 300, max: 255 })
        );
    }

    #[test]
    fn names_the_first_bad_character_and_its_position() {
        let cases: &[(&str, usize, char)] = &[
            (" abc", 1, ' '),
            ("abc ", 4, ' '),
            ("a#b", 2, '#'),
            ("a|b", 2, '|'),
            ("a.b", 2, '.'),
            ("a/b", 2, '/'),
            ("ключ", 1, 'к'),
            ("ab\u{0}", 3, '\u{0}'),
            ("ab\ncd", 3, '\n'),
            ("é", 1, 'é'),
            ("{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", 1, '{'),
        ];
        for (text, position, character) in cases {
            assert_eq!(
                IdempotencyKey::parse(text),
                Err(KeyError::InvalidCharacter {
                    position: *position,
                    character: *character
                }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_a_bad_character() {
        assert_eq!(
            IdempotencyKey::parse_bytes(b"ab\xffcd"),
            Err(KeyError::InvalidCharacter {
                position: 3,
                character: char::REPLACEMENT_CHARACTER
            })
        );
        assert_eq!(
            IdempotencyKey::parse_bytes(b"a b\xff"),
            Err(KeyError::InvalidCharacter {
                position: 2,
                character: ' '
            })
        );
        assert_eq!(
            IdempotencyKey::parse_bytes(b"order-1").unwrap().as_str(),
            "order-1"
        );
    }

    #[test]
    fn malformed_uuids_are_still_fine_slugs_or_errors() {
        assert_eq!(
            IdempotencyKey::parse("3f2504e0-4f89-11d3-9a0c-0305e82c330")
                .unwrap()
                .kind(),
            KeyKind::Slug
        );
        assert_eq!(
            IdempotencyKey::parse("3f2504e0-4f89-11d3-9a0c-0305e82c330g")
                .unwrap()
                .kind(),
            KeyKind::Slug
        );
    }
}

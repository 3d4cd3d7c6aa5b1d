//! Secrets (raw API keys, webhook secrets, gateway passphrases) wrapped so that `Debug` and
//! `Display` print a mask: a stray `{:?}` in a log line cannot leak them.

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the few places that must use it (hashing, signing).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("****")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_and_display_are_masked() {
        let s = super::Secret::new("sk_test_abc");
        assert!(!format!("{s:?}{s}").contains("abc"));
        assert_eq!(s.expose(), "sk_test_abc");
    }
}

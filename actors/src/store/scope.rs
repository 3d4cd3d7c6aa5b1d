//! A project and mode, and the names of its keys (`cp:{prj}:<mode>:…`).

use calmony_protocol::Mode;

/// A project and mode: the boundary no request crosses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub project: String,
    pub mode: Mode,
}

impl Scope {
    pub fn new(project: impl Into<String>, mode: Mode) -> Self {
        Self {
            project: project.into(),
            mode,
        }
    }

    /// `cp:{prj}:<mode>:<rest>`.
    pub fn key(&self, rest: &str) -> String {
        format!("cp:{{{}}}:{}:{}", self.project, self.mode.as_str(), rest)
    }

    /// The scope of one of its keys, and the rest of the key: the inverse of [`Scope::key`].
    pub fn of_key(key: &str) -> Option<(Scope, &str)> {
        let (project, rest) = key.strip_prefix("cp:{")?.split_once("}:")?;
        let (mode, rest) = rest.split_once(':')?;
        Some((Scope::new(project, Mode::parse(mode)?), rest))
    }

    /// The record key of an object: `cp:{prj}:<mode>:obj:<id>`.
    pub fn record(&self, id: &str) -> String {
        self.key(&format!("obj:{id}"))
    }

    /// The prefix of record keys, for scripts that build them from ids.
    pub fn record_prefix(&self) -> String {
        self.key("obj:")
    }

    /// The project's event stream, read by the webhook dispatcher.
    pub fn event_stream(&self) -> String {
        self.key("events")
    }

    pub fn livemode(&self) -> bool {
        self.mode.livemode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gives_back_its_scope_and_the_rest() {
        let scope = Scope::new("prj_1", Mode::Live);
        let key = scope.key("obj:evt_1");
        let (back, rest) = Scope::of_key(&key).expect("a scope's key");
        assert_eq!((back, rest), (scope, "obj:evt_1"));
        assert!(Scope::of_key("cp:payments:commands").is_none());
        assert!(Scope::of_key("cp:{prj_1}:nomode:x").is_none());
    }
}

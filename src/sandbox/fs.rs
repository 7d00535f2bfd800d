//! The filesystem view, with Landlock: after set-up a switch reads only
//! the files it still reads and writes only in its own runtime directory;
//! every other path is refused (`EACCES`), for reading too. Descriptors
//! it already holds or is sent (TAPs over SCM_RIGHTS) are not affected:
//! Landlock checks paths when they are opened.
//!
//! The daemon is also scoped (Landlock ABI 6): it cannot signal processes
//! outside its sandbox nor connect to abstract Unix sockets made outside
//! it. `run` with an embedded switch is not scoped: it passes signals on
//! to its container, which it forked before confining itself.
//!
//! Every access right the kernel knows (up to the ABI this was written
//! and tested against, `V7`) is handled, best effort: an older kernel
//! enforces what it has, and the report says which ABI was in force.

use landlock::{
    path_beneath_rules, Access, AccessFs, CompatLevel, Compatible, LandlockStatus, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use super::{Paths, Role};

/// The newest ABI whose rights were reviewed for this list.
const VETTED: ABI = ABI::V7;

/// Restricts the calling thread (and the threads it starts later).
pub fn restrict(role: Role, paths: &Paths) -> Result<String, String> {
    let why = |e: landlock::RulesetError| format!("landlock: {e}");
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(VETTED))
        .map_err(why)?;
    if role == Role::Daemon {
        ruleset = ruleset.scope(Scope::from_all(VETTED)).map_err(why)?;
    }
    let status = ruleset
        .create()
        .map_err(why)?
        .add_rules(path_beneath_rules(&paths.read, AccessFs::from_read(VETTED)))
        .map_err(why)?
        .add_rules(path_beneath_rules(&paths.write, AccessFs::from_all(VETTED)))
        .map_err(why)?
        .restrict_self()
        .map_err(why)?;
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi as u32,
        LandlockStatus::NotEnabled => return Err("landlock: not enabled in this kernel".into()),
        LandlockStatus::NotImplemented => return Err("landlock: not in this kernel".into()),
    };
    let enforced = match status.ruleset {
        RulesetStatus::FullyEnforced => "",
        RulesetStatus::PartiallyEnforced => " (partly: an older kernel)",
        RulesetStatus::NotEnforced => return Err("landlock: not enforced".into()),
    };
    let list = |v: &[std::path::PathBuf]| {
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    Ok(format!(
        "landlock ABI {abi}{enforced}: reads {}, writes {}{}",
        list(&paths.read),
        list(&paths.write),
        if role == Role::Daemon {
            ", no signals or abstract sockets outside"
        } else {
            ""
        }
    ))
}

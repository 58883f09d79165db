//! Where this Mac's power comes from, and whether its lid is open: what a helper's owner
//! may lend on ("only while plugged in", "only while the lid is open").
//!
//! On a Mac, `pmset -g batt` says the source on its first line ("Now drawing from 'AC
//! Power'" or "'Battery Power'"), and `ioreg -r -k AppleClamshellState -d 1` says the lid
//! (`"AppleClamshellState" = Yes` when closed). On Linux, `/sys/class/power_supply`
//! (a `Mains` supply's `online`) and `/proc/acpi/button/lid/*/state`. A machine that says
//! nothing (a desktop, a virtual machine) is taken as plugged in with its lid open.

use std::path::{Path, PathBuf};

/// What the machine says now; `None` where it says nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Power {
    pub on_battery: Option<bool>,
    pub lid_closed: Option<bool>,
}

/// The folder Linux lists power supplies in. `KINDLING_POWER_SUPPLIES` points elsewhere:
/// the tests' stand-in for a power cable pulled out, which no test machine can do.
fn supplies_dir() -> PathBuf {
    std::env::var_os("KINDLING_POWER_SUPPLIES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/sys/class/power_supply"))
}

/// Reads the power source and the lid now (a few milliseconds; on a Mac two small
/// commands, so callers off the async runtime's threads).
pub fn read() -> Power {
    if cfg!(target_os = "macos") && std::env::var_os("KINDLING_POWER_SUPPLIES").is_none() {
        Power {
            on_battery: run(&["pmset", "-g", "batt"]).and_then(|t| pmset_on_battery(&t)),
            lid_closed: run(&["ioreg", "-r", "-k", "AppleClamshellState", "-d", "1"])
                .and_then(|t| ioreg_lid_closed(&t)),
        }
    } else {
        Power {
            on_battery: linux_on_battery(&supplies_dir()),
            lid_closed: linux_lid_closed(Path::new("/proc/acpi/button/lid")),
        }
    }
}

fn run(argv: &[&str]) -> Option<String> {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `pmset -g batt`: on battery or not, from its first line.
pub fn pmset_on_battery(text: &str) -> Option<bool> {
    let first = text.lines().next()?;
    let source = first
        .strip_prefix("Now drawing from '")?
        .split('\'')
        .next()?;
    Some(source == "Battery Power")
}

/// `ioreg -r -k AppleClamshellState`: the lid closed or not (absent on a Mac without one).
pub fn ioreg_lid_closed(text: &str) -> Option<bool> {
    let line = text
        .lines()
        .find(|l| l.contains("\"AppleClamshellState\""))?;
    let value = line.split('=').nth(1)?.trim();
    match value {
        "Yes" => Some(true),
        "No" => Some(false),
        _ => None,
    }
}

/// On battery when the machine has a mains supply and none is online.
pub fn linux_on_battery(dir: &Path) -> Option<bool> {
    let read = |p: PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let mut mains = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if read(entry.path().join("type")).as_deref() == Some("Mains") {
            mains.push(read(entry.path().join("online")).as_deref() == Some("1"));
        }
    }
    (!mains.is_empty()).then(|| !mains.iter().any(|on| *on))
}

/// The lid closed when every lid ACPI lists says `state: closed`.
pub fn linux_lid_closed(dir: &Path) -> Option<bool> {
    let mut states = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let text = std::fs::read_to_string(entry.path().join("state")).ok()?;
        states.push(text.split(':').nth(1)?.trim() == "closed");
    }
    (!states.is_empty()).then(|| states.iter().all(|c| *c))
}

/// What the owner allows a helper to lend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LendWhen {
    /// Not while it runs on battery.
    pub plugged_in: bool,
    /// Not while its lid is closed.
    pub lid_open: bool,
}

impl Default for LendWhen {
    /// Plugged in only (lending works the machine hard); lid closed or not.
    fn default() -> Self {
        LendWhen {
            plugged_in: true,
            lid_open: false,
        }
    }
}

impl LendWhen {
    /// Why this Mac does not lend now (for the other Mac's owner), or `None` when it does.
    pub fn why_not(&self, now: &Power) -> Option<String> {
        if self.plugged_in && now.on_battery == Some(true) {
            return Some(
                "it runs on battery, and its owner lends it only while it is plugged in. Plug it in, or serve without it"
                    .into(),
            );
        }
        if self.lid_open && now.lid_closed == Some(true) {
            return Some(
                "its lid is closed, and its owner lends it only while the lid is open. Open it, or serve without it"
                    .into(),
            );
        }
        None
    }

    /// Whether anything is asked of the power source or the lid at all.
    pub fn watches(&self) -> bool {
        self.plugged_in || self.lid_open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shapes `pmset -g batt` and `ioreg` print on macOS 10.12 to 15 (as quoted by
    // public projects that parse them; none recorded on our own Macs yet).
    const ON_AC: &str = "Now drawing from 'AC Power'\n -InternalBattery-0 (id=22806627)\t83%; charging; 1:00 remaining present: true\n";
    const ON_BATTERY: &str = "Now drawing from 'Battery Power'\n -InternalBattery-0 (id=22806627)\t78%; discharging; 5:05 remaining present: true\n";
    const DESKTOP: &str = "Now drawing from 'AC Power'\n";

    #[test]
    fn pmset_says_battery_or_mains() {
        assert_eq!(pmset_on_battery(ON_AC), Some(false));
        assert_eq!(pmset_on_battery(ON_BATTERY), Some(true));
        assert_eq!(pmset_on_battery(DESKTOP), Some(false));
        assert_eq!(pmset_on_battery(""), None);
        assert_eq!(pmset_on_battery("pmset: garbage"), None);
    }

    #[test]
    fn ioreg_says_the_lid() {
        let closed = "+-o IOPMrootDomain  <class IOPMrootDomain>\n    {\n      \"AppleClamshellState\" = Yes\n      \"AppleClamshellCausesSleep\" = Yes\n    }\n";
        assert_eq!(ioreg_lid_closed(closed), Some(true));
        assert_eq!(
            ioreg_lid_closed(&closed.replace("State\" = Yes", "State\" = No")),
            Some(false)
        );
        assert_eq!(ioreg_lid_closed(""), None);
    }

    #[test]
    fn linux_supplies_and_lid() {
        let t = tempfile::tempdir().unwrap();
        let write = |p: &str, text: &str| {
            let path = t.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        assert_eq!(linux_on_battery(t.path()), None, "no supply: a desktop");
        write("BAT0/type", "Battery\n");
        assert_eq!(
            linux_on_battery(t.path()),
            None,
            "a battery alone says nothing"
        );
        write("AC/type", "Mains\n");
        write("AC/online", "1\n");
        assert_eq!(linux_on_battery(t.path()), Some(false));
        write("AC/online", "0\n");
        assert_eq!(linux_on_battery(t.path()), Some(true));
        write("lid/LID0/state", "state:      closed\n");
        assert_eq!(linux_lid_closed(&t.path().join("lid")), Some(true));
        write("lid/LID0/state", "state:      open\n");
        assert_eq!(linux_lid_closed(&t.path().join("lid")), Some(false));
    }

    #[test]
    fn lending_stops_on_what_the_owner_asked_only() {
        let battery = Power {
            on_battery: Some(true),
            lid_closed: Some(true),
        };
        let why = LendWhen::default().why_not(&battery).unwrap();
        assert!(why.contains("plugged in"), "{why}");
        let any = LendWhen {
            plugged_in: false,
            lid_open: false,
        };
        assert_eq!(any.why_not(&battery), None);
        let lid = LendWhen {
            plugged_in: false,
            lid_open: true,
        };
        assert!(lid.why_not(&battery).unwrap().contains("lid is closed"));
        assert_eq!(
            LendWhen::default().why_not(&Power::default()),
            None,
            "a machine that says nothing lends"
        );
    }
}

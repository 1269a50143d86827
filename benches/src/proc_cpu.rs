//! CPU time of another process, read from Linux's `/proc/<pid>/stat` (user + system time of all
//! its threads), for the `call-cpu` tool. The parser is separate from the file read so it can be
//! tested on crafted lines.

use std::time::Duration;

use thiserror::Error;

/// `/proc/<pid>/stat` is one line of at most a few hundred bytes; anything longer is not it.
const MAX_STAT_LEN: usize = 4096;

/// Why a CPU time could not be read.
#[derive(Debug, Error)]
pub enum ProcCpuError {
    /// The file could not be read (the process is gone, or this is not Linux).
    #[error("could not read /proc/{pid}/stat: {source} (has the process exited? this tool needs Linux /proc)")]
    Read {
        /// The process.
        pid: u32,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The line is longer than any `stat` line.
    #[error("/proc stat line is {0} bytes, more than the {MAX_STAT_LEN} expected")]
    TooLong(usize),
    /// The `(comm)` field's closing parenthesis is missing.
    #[error("/proc stat line has no `)` closing the command name")]
    NoCommand,
    /// Fewer fields than `utime` and `stime` need.
    #[error("/proc stat line has {0} fields after the command name; utime and stime need 13")]
    TooFewFields(usize),
    /// `utime` or `stime` is not a number.
    #[error("/proc stat field {field} is not a tick count: {value:?}")]
    NotANumber {
        /// `utime` or `stime`.
        field: &'static str,
        /// The text found.
        value: String,
    },
}

/// User and system CPU time of a process, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    /// `utime`: user mode.
    pub user: u64,
    /// `stime`: kernel mode.
    pub system: u64,
}

impl CpuTicks {
    /// User plus system time, in seconds, for `ticks_per_second` (`getconf CLK_TCK`).
    pub fn seconds(self, ticks_per_second: u64) -> f64 {
        (self.user + self.system) as f64 / ticks_per_second.max(1) as f64
    }

    /// Time spent since `earlier`, saturating at zero.
    pub fn since(self, earlier: CpuTicks) -> CpuTicks {
        CpuTicks {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// Parses one `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
/// itself hold spaces and `)`, so fields are counted from the *last* `)`.
pub fn parse_stat(line: &str) -> Result<CpuTicks, ProcCpuError> {
    if line.len() > MAX_STAT_LEN {
        return Err(ProcCpuError::TooLong(line.len()));
    }
    let rest = line
        .rfind(')')
        .map(|i| &line[i + 1..])
        .ok_or(ProcCpuError::NoCommand)?;
    // After the command: state(3) ppid(4) ... utime(14) stime(15), i.e. indices 11 and 12.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    if fields.len() < 13 {
        return Err(ProcCpuError::TooFewFields(fields.len()));
    }
    let number = |field: &'static str, value: &str| {
        value.parse::<u64>().map_err(|_| ProcCpuError::NotANumber {
            field,
            value: value.chars().take(32).collect(),
        })
    };
    Ok(CpuTicks {
        user: number("utime", fields[11])?,
        system: number("stime", fields[12])?,
    })
}

/// Reads the CPU time of process `pid` so far.
pub fn read(pid: u32) -> Result<CpuTicks, ProcCpuError> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|source| ProcCpuError::Read { pid, source })?;
    parse_stat(line.trim_end())
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 if it cannot be asked (the value on every
/// common Linux build).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// CPU seconds per wall-clock second between two readings.
pub fn cpu_per_second(spent: CpuTicks, ticks_per_second: u64, wall: Duration) -> f64 {
    spent.seconds(ticks_per_second) / wall.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real line from this machine (`cat /proc/self/stat`), utime 7 and stime 3.
    const LINE: &str = "12345 (call) S 1 12345 12345 0 -1 4194560 512 0 0 0 7 3 0 0 20 0 9 0 \
                        1000 100000000 2000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 \
                        1 0 0 0 0 0 0 0 0 0 0 0 0 0";

    #[test]
    fn reads_utime_and_stime() {
        assert_eq!(parse_stat(LINE).unwrap(), CpuTicks { user: 7, system: 3 });
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let line = LINE.replace("(call)", "(a) 9 9 (b c)");
        assert_eq!(parse_stat(&line).unwrap(), CpuTicks { user: 7, system: 3 });
    }

    #[test]
    fn broken_lines_give_typed_errors() {
        assert!(matches!(
            parse_stat("12 call S"),
            Err(ProcCpuError::NoCommand)
        ));
        assert!(matches!(
            parse_stat("12 (call) S 1 2"),
            Err(ProcCpuError::TooFewFields(3))
        ));
        let line = LINE.replace(" 7 3 ", " x 3 ");
        assert!(matches!(
            parse_stat(&line),
            Err(ProcCpuError::NotANumber { field: "utime", .. })
        ));
        let long = format!("{LINE}{}", " 0".repeat(MAX_STAT_LEN));
        assert!(matches!(parse_stat(&long), Err(ProcCpuError::TooLong(_))));
    }

    #[test]
    fn this_process_has_a_readable_cpu_time() {
        let t = read(std::process::id()).expect("own /proc stat");
        let busy: u64 = (0..2_000_000u64).fold(0, |a, b| a ^ b.wrapping_mul(31));
        std::hint::black_box(busy);
        let later = read(std::process::id()).expect("own /proc stat");
        assert!(later.user >= t.user && later.system >= t.system);
    }

    #[test]
    fn per_second_divides_by_the_wall_time() {
        let spent = CpuTicks {
            user: 30,
            system: 20,
        };
        let r = cpu_per_second(spent, 100, Duration::from_secs(10));
        assert!((r - 0.05).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn any_line_parses_or_fails_without_panicking(line in ".{0,600}") {
            let _ = parse_stat(&line);
        }

        #[test]
        fn any_command_name_keeps_the_fields(comm in "[ -~]{0,16}", u in 0u64..1 << 40, s in 0u64..1 << 40) {
            let line = format!("1 ({comm}) S 1 1 1 0 -1 0 0 0 0 0 {u} {s} 0 0 20 0 1 0 1 1 1");
            prop_assert_eq!(parse_stat(&line).unwrap(), CpuTicks { user: u, system: s });
        }
    }
}

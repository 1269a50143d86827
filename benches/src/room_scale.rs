//! The pure parts of the `room-scale` tool (how join time, CPU and uplink grow with the members
//! of a room call): reading the lines `call join` prints on stderr, the Goertzel check of a
//! member's mix, and the report maths (per-run figures → median and range over runs, ratios
//! against the 2-member room). The process handling is in `src/bin/room-scale.rs`.

use thiserror::Error;

/// A member counts as heard when its smoothed level is at least this (the engine's own
/// "speaking" threshold, `call_cli::engine::mix::SPEAKING_DBFS`; silence reads -100).
pub const HEARD_DBFS: f32 = -50.0;

/// Lines longer than this are not ones `call join` prints for at most 10 members (a `levels:`
/// entry is under 40 bytes; a name is at most a few hundred).
pub const MAX_LINE: usize = 16 * 1024;

/// Why a stderr line could not be read.
#[derive(Debug, Error, PartialEq)]
pub enum LineError {
    /// Longer than [`MAX_LINE`].
    #[error("line of {0} bytes, more than the {MAX_LINE} a `call join` line can be")]
    TooLong(usize),
    /// Not a `levels:` line.
    #[error("not a `levels:` line")]
    NotLevels,
    /// A `levels:` entry is not `NAME LEVEL dBFS`.
    #[error("`levels:` entry {0:?} is not `NAME LEVEL dBFS`")]
    BadEntry(String),
}

/// The call ID in a `NAME is in the call (ID)` line, if it is one.
pub fn connected_id(line: &str) -> Option<&str> {
    const MARK: &str = " is in the call (";
    if line.len() > MAX_LINE {
        return None;
    }
    let at = line.rfind(MARK)?;
    let id = line[at + MARK.len()..].strip_suffix(')')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(id)
}

/// The members and levels (dBFS) of a `levels: *Bob -12 dBFS, Carol -13 dBFS` line (the star
/// marks the active speaker and is dropped). Names are taken as printed.
pub fn parse_levels(line: &str) -> Result<Vec<(String, f32)>, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong(line.len()));
    }
    let rest = line.strip_prefix("levels: ").ok_or(LineError::NotLevels)?;
    rest.split(", ")
        .map(|entry| {
            let bad = || LineError::BadEntry(entry.chars().take(64).collect());
            let body = entry.strip_suffix(" dBFS").ok_or_else(bad)?;
            let (name, db) = body.rsplit_once(' ').ok_or_else(bad)?;
            let db: f32 = db.parse().map_err(|_| bad())?;
            let name = name.strip_prefix('*').unwrap_or(name);
            if name.is_empty() || !db.is_finite() {
                return Err(bad());
            }
            Ok((name.to_owned(), db))
        })
        .collect()
}

/// Whether a `levels:` line shows at least `others` members, all at or above [`HEARD_DBFS`].
pub fn hears_all(levels: &[(String, f32)], others: usize) -> bool {
    levels.len() >= others && levels.iter().all(|(_, db)| *db >= HEARD_DBFS)
}

/// The send bitrate (kbit/s of RTP payload, all peers together) in the once-a-second stats line
/// (`… | 26.3 kbps up, 29.2 kbps down | …`), if the line has one.
pub fn uplink_kbps(line: &str) -> Option<f64> {
    if line.len() > MAX_LINE {
        return None;
    }
    let before = &line[..line.find(" kbps up")?];
    let number = before.rsplit(|c: char| c.is_whitespace()).next()?;
    number.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Power of `samples` (48 kHz) at `freq` Hz (Goertzel), as the conference tests measure it.
pub fn tone_power(samples: &[i16], freq: f64) -> f64 {
    media::codec::pcm::tone_power(samples, 48_000.0, freq)
}

/// Whether a mix whose tone powers are `powers` (one per member, in member order) holds every
/// other member's tone (at least 2 % of the strongest, as `call-cli/tests/join_cli.rs` asks)
/// and not member `own`'s (under 1 %).
pub fn mix_hears_all(powers: &[f64], own: usize) -> bool {
    let top = powers.iter().copied().fold(0.0f64, f64::max);
    top > 0.0
        && powers.iter().enumerate().all(|(j, &p)| {
            if j == own {
                p < top * 0.01
            } else {
                p > top * 0.02
            }
        })
}

/// The median (mean of the two middle values for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// The smallest and largest value; `None` when empty.
pub fn range(values: &[f64]) -> Option<(f64, f64)> {
    let v = values.iter().copied().filter(|x| !x.is_nan());
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    (lo <= hi).then_some((lo, hi))
}

/// What one run of an `n`-member room measured, per member.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// Members in the room.
    pub members: usize,
    /// Per member: seconds from its process start to the last other member connected.
    pub connected_s: Vec<f64>,
    /// Per member: seconds from its process start to the first `levels:` line with every other
    /// member heard; `None` if that never came.
    pub heard_s: Vec<Option<f64>>,
    /// Per member: CPU (user + system) over the steady window, in cores.
    pub cpu_cores: Vec<f64>,
    /// Per member: median send bitrate (RTP payload, kbit/s) of its stats lines in the window.
    pub uplink_kbps: Vec<f64>,
    /// Per member: whether its mix held every other member's tone and not its own.
    pub mix_ok: Vec<bool>,
    /// Per member: whether the process ended by itself with status 0.
    pub exit_ok: Vec<bool>,
}

impl RunFigures {
    /// p50 of the members' connection times.
    pub fn connected_p50(&self) -> Option<f64> {
        median(&self.connected_s)
    }

    /// The slowest member's connection time.
    pub fn connected_max(&self) -> Option<f64> {
        range(&self.connected_s).map(|r| r.1)
    }

    /// p50 of the members' "heard everyone" times, `None` if any member never heard everyone.
    pub fn heard_p50(&self) -> Option<f64> {
        self.heard_all_times().and_then(|v| median(&v))
    }

    /// The slowest member's "heard everyone" time, `None` if any member never heard everyone.
    pub fn heard_max(&self) -> Option<f64> {
        self.heard_all_times().and_then(|v| range(&v)).map(|r| r.1)
    }

    fn heard_all_times(&self) -> Option<Vec<f64>> {
        self.heard_s.iter().copied().collect()
    }

    /// Mean CPU per member, cores.
    pub fn cpu_per_member(&self) -> f64 {
        mean(&self.cpu_cores)
    }

    /// CPU of all members together, cores.
    pub fn cpu_all(&self) -> f64 {
        self.cpu_cores.iter().sum()
    }

    /// Mean uplink per member, kbit/s of payload.
    pub fn uplink_per_member(&self) -> f64 {
        mean(&self.uplink_kbps)
    }

    /// Whether every member heard every other (mix check) and ended cleanly.
    pub fn all_ok(&self) -> bool {
        self.mix_ok.iter().all(|&m| m) && self.exit_ok.iter().all(|&e| e)
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// A figure over several runs: median and range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median over the runs.
    pub median: f64,
    /// Smallest run.
    pub min: f64,
    /// Largest run.
    pub max: f64,
}

impl Spread {
    /// Over `values` (NaN ignored); `None` when there is none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let (min, max) = range(values)?;
        Some(Spread {
            median: median(values)?,
            min,
            max,
        })
    }

    /// `median (min–max)` with `decimals` decimals.
    pub fn text(&self, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

/// One row of the report: every run of one room size and media.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Members in the room.
    pub members: usize,
    /// Runs aggregated.
    pub runs: usize,
    /// p50 over members of start → every other member connected, s.
    pub connected_p50: Option<Spread>,
    /// Slowest member's start → every other member connected, s.
    pub connected_max: Option<Spread>,
    /// p50 over members of start → every other member heard, s (runs where everyone was).
    pub heard_p50: Option<Spread>,
    /// Slowest member's start → every other member heard, s.
    pub heard_max: Option<Spread>,
    /// Runs in which some member never saw everyone heard in its `levels:` lines.
    pub heard_missing: usize,
    /// CPU per member, cores.
    pub cpu_per_member: Option<Spread>,
    /// CPU of the whole room, cores.
    pub cpu_all: Option<Spread>,
    /// Uplink per member, kbit/s of RTP payload.
    pub uplink: Option<Spread>,
    /// Runs in which every member's mix held every other tone and every process ended cleanly.
    pub runs_ok: usize,
}

impl Row {
    /// Aggregates the runs of one room size (all with `runs[i].members` equal).
    pub fn of(runs: &[RunFigures]) -> Row {
        let over = |f: &dyn Fn(&RunFigures) -> Option<f64>| {
            let v: Vec<f64> = runs.iter().filter_map(f).collect();
            Spread::of(&v)
        };
        Row {
            members: runs.first().map_or(0, |r| r.members),
            runs: runs.len(),
            connected_p50: over(&|r| r.connected_p50()),
            connected_max: over(&|r| r.connected_max()),
            heard_p50: over(&|r| r.heard_p50()),
            heard_max: over(&|r| r.heard_max()),
            heard_missing: runs.iter().filter(|r| r.heard_p50().is_none()).count(),
            cpu_per_member: over(&|r| Some(r.cpu_per_member())),
            cpu_all: over(&|r| Some(r.cpu_all())),
            uplink: over(&|r| Some(r.uplink_per_member())),
            runs_ok: runs.iter().filter(|r| r.all_ok()).count(),
        }
    }

    /// Median CPU per member over `reference`'s (the 2-member room's).
    pub fn cpu_ratio(&self, reference: &Row) -> Option<f64> {
        ratio(self.cpu_per_member, reference.cpu_per_member)
    }

    /// Median uplink per member over `reference`'s.
    pub fn uplink_ratio(&self, reference: &Row) -> Option<f64> {
        ratio(self.uplink, reference.uplink)
    }

    /// Median uplink per member divided by the streams it sends (one per other member).
    pub fn uplink_per_stream(&self) -> Option<f64> {
        let others = self.members.checked_sub(1).filter(|&o| o > 0)?;
        Some(self.uplink?.median / others as f64)
    }
}

fn ratio(a: Option<Spread>, b: Option<Spread>) -> Option<f64> {
    let (a, b) = (a?.median, b?.median);
    (b > 0.0).then(|| a / b)
}

/// The report's table header (markdown).
pub const TABLE_HEADER: &str = "| members | runs | start → all connected, p50 / max s | start → all heard, p50 / max s | CPU per member, cores | × 2 members | CPU of the room, cores | uplink per member, kbit/s payload | × 2 members | per stream | runs where all heard all |\n|---:|---:|---|---|---|---:|---|---|---:|---:|---:|";

/// The report's table line of `row`, ratios against `reference` (the 2-member room).
pub fn table_line(row: &Row, reference: &Row) -> String {
    let spread = |s: Option<Spread>, d: usize| s.map_or("–".to_owned(), |s| s.text(d));
    let number = |x: Option<f64>, d: usize| x.map_or("–".to_owned(), |x| format!("{x:.d$}"));
    let heard = match row.heard_missing {
        0 => format!(
            "{} / {}",
            spread(row.heard_p50, 2),
            spread(row.heard_max, 2)
        ),
        k => format!(
            "{} / {} ({k} run(s) without)",
            spread(row.heard_p50, 2),
            spread(row.heard_max, 2)
        ),
    };
    format!(
        "| {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |",
        row.members,
        row.runs,
        spread(row.connected_p50, 2),
        spread(row.connected_max, 2),
        heard,
        spread(row.cpu_per_member, 3),
        number(row.cpu_ratio(reference), 2),
        spread(row.cpu_all, 2),
        spread(row.uplink, 1),
        number(row.uplink_ratio(reference), 2),
        number(row.uplink_per_stream(), 1),
        row.runs_ok,
        row.runs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_connected_line_gives_the_members_id() {
        let id = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx";
        assert_eq!(
            connected_id(&format!("Member02 is in the call ({id})")),
            Some(id)
        );
        assert_eq!(connected_id("Member02 left the call (Lost)"), None);
        assert_eq!(
            connected_id("joined the call of room Scale (3 members)"),
            None
        );
        assert_eq!(connected_id("x is in the call (a b)"), None);
    }

    #[test]
    fn a_levels_line_gives_every_member_and_drops_the_speaker_star() {
        let l = parse_levels("levels: *Member02 -12 dBFS, Member03 -100 dBFS").unwrap();
        assert_eq!(
            l,
            vec![
                ("Member02".to_owned(), -12.0),
                ("Member03".to_owned(), -100.0)
            ]
        );
        assert!(!hears_all(&l, 2), "-100 dBFS is silence");
        let l = parse_levels("levels: *A B -11 dBFS, C -13 dBFS").unwrap();
        assert_eq!(l[0].0, "A B", "a name with a space");
        assert!(hears_all(&l, 2));
        assert!(!hears_all(&l, 3), "a member not listed yet is not heard");
    }

    #[test]
    fn broken_levels_lines_give_typed_errors() {
        assert_eq!(parse_levels("[ 2.0s] rtt"), Err(LineError::NotLevels));
        assert!(matches!(
            parse_levels("levels: Bob -12"),
            Err(LineError::BadEntry(_))
        ));
        assert!(matches!(
            parse_levels("levels: Bob loud dBFS"),
            Err(LineError::BadEntry(_))
        ));
        assert!(matches!(
            parse_levels("levels: -12 dBFS"),
            Err(LineError::BadEntry(_))
        ));
        let long = format!("levels: {}", "a".repeat(MAX_LINE));
        assert!(matches!(parse_levels(&long), Err(LineError::TooLong(_))));
    }

    #[test]
    fn the_uplink_is_read_from_the_stats_line() {
        let line = "[  2.0s] rtt 0.9 ms (rtcp) | rx 100 pkts, lost 0 (0.0%), jitter 0.6 ms | 26.3 kbps up, 29.2 kbps down | level -15.1 dBFS";
        assert_eq!(uplink_kbps(line), Some(26.3));
        assert_eq!(uplink_kbps("levels: Bob -12 dBFS"), None);
        assert_eq!(uplink_kbps("|kbps up"), None);
    }

    fn sine(freq: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 48_000.0).sin())
            .collect()
    }

    #[test]
    fn the_mix_check_finds_the_other_tones_and_not_ones_own() {
        let tones = [500.0, 800.0, 1100.0];
        // Member 0's mix: tones 1 and 2.
        let (a, b) = (sine(tones[1], 48_000), sine(tones[2], 48_000));
        let mix: Vec<i16> = a.iter().zip(&b).map(|(x, y)| (x + y) as i16).collect();
        let p: Vec<f64> = tones.iter().map(|&f| tone_power(&mix, f)).collect();
        assert!(mix_hears_all(&p, 0), "{p:?}");
        assert!(!mix_hears_all(&p, 1), "member 1 would hear itself: {p:?}");
        // Only tone 1: member 0 misses member 2.
        let one: Vec<i16> = a.iter().map(|x| *x as i16).collect();
        let p: Vec<f64> = tones.iter().map(|&f| tone_power(&one, f)).collect();
        assert!(!mix_hears_all(&p, 0), "{p:?}");
        assert!(!mix_hears_all(&[0.0, 0.0, 0.0], 0), "silence hears nobody");
    }

    #[test]
    fn median_and_range() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(range(&[3.0, f64::NAN, 1.0]), Some((1.0, 3.0)));
        assert_eq!(range(&[]), None);
    }

    fn run(members: usize, cpu: f64, uplink: f64, heard: Option<f64>) -> RunFigures {
        RunFigures {
            members,
            connected_s: (0..members).map(|i| 1.0 + i as f64).collect(),
            heard_s: (0..members).map(|i| heard.map(|h| h + i as f64)).collect(),
            cpu_cores: vec![cpu; members],
            uplink_kbps: vec![uplink; members],
            mix_ok: vec![true; members],
            exit_ok: vec![true; members],
        }
    }

    #[test]
    fn rows_take_medians_over_runs_and_ratios_against_two_members() {
        let two = Row::of(&[run(2, 0.02, 30.0, Some(2.0)), run(2, 0.04, 30.0, Some(2.0))]);
        let mut bad = run(4, 0.10, 90.0, None);
        bad.mix_ok[3] = false;
        let four = Row::of(&[
            run(4, 0.06, 90.0, Some(3.0)),
            run(4, 0.09, 93.0, Some(4.0)),
            bad,
        ]);
        assert_eq!(four.runs, 3);
        let cpu = four.cpu_per_member.unwrap();
        assert!((cpu.median - 0.09).abs() < 1e-12 && cpu.min == 0.06 && cpu.max == 0.10);
        assert!((four.cpu_all.unwrap().median - 0.36).abs() < 1e-12);
        assert!((four.cpu_ratio(&two).unwrap() - 3.0).abs() < 1e-9);
        assert!((four.uplink_ratio(&two).unwrap() - 3.0).abs() < 1e-9);
        assert!((four.uplink_per_stream().unwrap() - 30.0).abs() < 1e-9);
        // Members connect 1, 2, 3, 4 s after their start: p50 2.5, max 4.
        assert_eq!(four.connected_p50.unwrap().median, 2.5);
        assert_eq!(four.connected_max.unwrap().median, 4.0);
        // The run where someone never heard everyone is left out of the heard figures.
        assert_eq!(four.heard_missing, 1);
        assert_eq!(four.heard_max.unwrap().min, 6.0);
        assert_eq!(four.heard_max.unwrap().max, 7.0);
        assert_eq!(four.runs_ok, 2);
        let line = table_line(&four, &two);
        assert!(
            line.starts_with("| 4 | 3 | 2.50 (2.50–2.50) / 4.00 (4.00–4.00) |"),
            "{line}"
        );
        assert!(
            line.contains("(1 run(s) without)") && line.ends_with("| 2/3 |"),
            "{line}"
        );
        assert_eq!(
            line.matches('|').count(),
            TABLE_HEADER.lines().next().unwrap().matches('|').count()
        );
    }

    proptest! {
        #[test]
        fn any_line_parses_or_fails_without_panicking(line in ".{0,300}") {
            let _ = parse_levels(&line);
            let _ = connected_id(&line);
            let _ = uplink_kbps(&line);
            let _ = parse_levels(&format!("levels: {line}"));
        }

        #[test]
        fn printed_levels_are_read_back(entries in proptest::collection::vec(("[A-Za-z][A-Za-z0-9 ]{0,12}", -100i32..0), 1..10)) {
            let line = format!("levels: {}", entries.iter().enumerate().map(|(i, (n, db))| {
                format!("{}{n} {db} dBFS", if i == 0 { "*" } else { "" })
            }).collect::<Vec<_>>().join(", "));
            let read = parse_levels(&line).unwrap();
            prop_assert_eq!(read.len(), entries.len());
            for ((name, db), (n, d)) in read.iter().zip(&entries) {
                prop_assert_eq!(name, n);
                prop_assert_eq!(*db, *d as f32);
            }
        }
    }
}

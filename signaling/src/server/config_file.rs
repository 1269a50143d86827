//! `call-signaling --config FILE`: every command-line flag as a TOML key, below the environment
//! and the command line.
//!
//! Distance from the wire: none; the binary reads the file once at start. Keys are the long
//! flag names without `--` (`listen`, `turn-listen`, `mailbox-ttl`, …), values TOML strings,
//! numbers or booleans, arrays for the repeatable flags. Precedence: a flag on the command
//! line, then its environment variable, then the file, then the built-in default. This is done
//! by turning the file's keys that neither the command line nor the environment set into
//! `--key=value` arguments and parsing again, so every value goes through the same clap parser
//! and checks as a flag would.
//!
//! The TURN shared secret is refused in a file that group or others may read (use mode 0600,
//! or `turn-secret-file`), and so is a `redis` URL with a password in it. Unknown keys are
//! refused with their name.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// Largest config file read, bytes.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// Keys whose values are secrets: accepted only from a file nobody else may read.
const SECRET_KEYS: &[&str] = &["turn-secret"];

/// Flags that make no sense in a file.
const NOT_IN_FILE: &[&str] = &["config", "help", "version"];

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be opened or read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error(
        "the config file {path} is larger than {MAX_CONFIG_BYTES} bytes; is it the right file?"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not TOML.
    #[error("the config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said (line and column included).
        message: String,
    },
    /// A key that is no flag of the server.
    #[error(
        "unknown key `{key}` in the config file {path}: keys are the long flag names without \
         `--` (see call-signaling --help){hint}"
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// A suggestion (`; did you mean …?`) or nothing.
        hint: String,
    },
    /// A key that exists but cannot be set in a file.
    #[error("`{key}` cannot be set in the config file {path}; give it on the command line")]
    NotInFile {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A value of the wrong TOML type.
    #[error("`{key}` in the config file {path} must be {expected}")]
    BadType {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A secret in a file that group or others may read.
    #[error(
        "`{key}` in the config file {path} is a secret, but the file may be read by group or \
         others (mode {mode:03o}): chmod 600 it, or {elsewhere}"
    )]
    SecretInSharedFile {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The file's permission bits.
        mode: u32,
        /// Where else the secret can go.
        elsewhere: &'static str,
    },
}

/// The arguments the file at `path` contributes to `cmd`, given what the command line and the
/// environment already set (`matches`, parsed without the file): `--key=value` for every key
/// whose flag (and every flag it conflicts with) was set by neither. Put them before the
/// command-line arguments and parse again.
pub fn file_args(
    cmd: &Command,
    matches: &ArgMatches,
    path: &Path,
) -> Result<Vec<OsString>, ConfigFileError> {
    let text = read_limited(path)?;
    let table: toml::Table =
        text.parse()
            .map_err(|err: toml::de::Error| ConfigFileError::Syntax {
                path: path.to_owned(),
                message: err.to_string().trim_end().to_owned(),
            })?;
    let mut args = Vec::new();
    for (key, value) in &table {
        let arg = find_arg(cmd, path, key)?;
        if SECRET_KEYS.contains(&key.as_str()) || (key == "redis" && has_password(value)) {
            check_private(path, key)?;
        }
        let set_above = |a: &Arg| {
            matches!(
                matches.value_source(a.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        if set_above(arg) || cmd.get_arg_conflicts_with(arg).into_iter().any(set_above) {
            tracing::debug!(%key, "config file value overridden by the command line or environment");
            continue;
        }
        push_value(&mut args, path, key, arg, value)?;
    }
    Ok(args)
}

fn read_limited(path: &Path) -> Result<String, ConfigFileError> {
    let read_err = |source| ConfigFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

fn find_arg<'c>(cmd: &'c Command, path: &Path, key: &str) -> Result<&'c Arg, ConfigFileError> {
    if NOT_IN_FILE.contains(&key) {
        return Err(ConfigFileError::NotInFile {
            path: path.to_owned(),
            key: key.to_owned(),
        });
    }
    if let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(key)) {
        return Ok(arg);
    }
    let dashed = key.replace('_', "-").to_ascii_lowercase();
    let hint = cmd
        .get_arguments()
        .filter_map(Arg::get_long)
        .find(|long| *long == dashed || long.trim_start_matches("no-") == dashed)
        .map(|long| format!("; did you mean `{long}`?"))
        .unwrap_or_default();
    Err(ConfigFileError::UnknownKey {
        path: path.to_owned(),
        key: key.to_owned(),
        hint,
    })
}

/// A `redis://user:password@host` URL (user information before the host).
fn has_password(value: &toml::Value) -> bool {
    value.as_str().is_some_and(|url| {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        rest.split('/')
            .next()
            .is_some_and(|authority| authority.contains('@'))
    })
}

#[cfg(unix)]
fn check_private(path: &Path, key: &str) -> Result<(), ConfigFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|source| ConfigFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigFileError::SecretInSharedFile {
            path: path.to_owned(),
            key: key.to_owned(),
            mode,
            elsewhere: if key == "redis" {
                "give the URL in the environment (CALL_SIGNALING_REDIS) instead"
            } else {
                "put the secret in a file of its own and set `turn-secret-file`"
            },
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _key: &str) -> Result<(), ConfigFileError> {
    Ok(())
}

/// Appends `--key=value` (or `--key` for a switch, once per element for a repeatable flag).
fn push_value(
    args: &mut Vec<OsString>,
    path: &Path,
    key: &str,
    arg: &Arg,
    value: &toml::Value,
) -> Result<(), ConfigFileError> {
    let bad = |expected| ConfigFileError::BadType {
        path: path.to_owned(),
        key: key.to_owned(),
        expected,
    };
    if !arg.get_action().takes_values() {
        match value {
            toml::Value::Boolean(true) => args.push(format!("--{key}").into()),
            toml::Value::Boolean(false) => {}
            _ => return Err(bad("true or false")),
        }
        return Ok(());
    }
    let repeatable = matches!(arg.get_action(), ArgAction::Append);
    match value {
        toml::Value::Array(items) if repeatable => {
            for item in items {
                let text = scalar(item).ok_or_else(|| bad("an array of strings or numbers"))?;
                args.push(format!("--{key}={text}").into());
            }
        }
        toml::Value::Array(_) => return Err(bad("a single value, not an array")),
        other => {
            let text = scalar(other).ok_or_else(|| bad("a string, a number or a boolean"))?;
            args.push(format!("--{key}={text}").into());
        }
    }
    Ok(())
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// A command shaped like the server's: a value, a switch, a repeatable flag, a secret and
    /// its file alternative.
    fn command() -> Command {
        Command::new("t")
            .arg(Arg::new("config").long("config"))
            .arg(Arg::new("listen").long("listen").default_value("d"))
            .arg(
                Arg::new("rate")
                    .long("rate")
                    .value_parser(clap::value_parser!(f64))
                    .default_value("20"),
            )
            .arg(
                Arg::new("no_turn")
                    .long("no-turn")
                    .action(ArgAction::SetTrue),
            )
            .arg(Arg::new("url").long("turn-url").action(ArgAction::Append))
            .arg(Arg::new("turn_secret").long("turn-secret"))
            .arg(
                Arg::new("turn_secret_file")
                    .long("turn-secret-file")
                    .conflicts_with("turn_secret"),
            )
            .arg(Arg::new("redis").long("redis"))
            .arg(Arg::new("cert").long("tls-cert").requires("key"))
            .arg(Arg::new("key").long("tls-key").requires("cert"))
    }

    fn file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        f
    }

    /// Parses `argv` with the file's arguments in front, as the binary does.
    fn parse(text: &str, mode: u32, argv: &[&str]) -> Result<ArgMatches, String> {
        let f = file(text, mode);
        // Lenient, as in the binary: the file may complete what the command line started.
        let first = command()
            .ignore_errors(true)
            .try_get_matches_from(argv)
            .unwrap();
        let extra = file_args(&command(), &first, f.path()).map_err(|e| e.to_string())?;
        let mut full: Vec<OsString> = argv.iter().map(OsString::from).collect();
        full.splice(1..1, extra);
        command()
            .try_get_matches_from(full)
            .map_err(|e| e.to_string())
    }

    fn one<'m>(m: &'m ArgMatches, id: &str) -> &'m String {
        m.get_one::<String>(id).unwrap()
    }

    #[test]
    fn file_values_are_used_and_flags_override_them() {
        let text = "listen = \"from-file\"\nrate = 5\nno-turn = true\nturn-url = [\"a\", \"b\"]\n";
        let m = parse(text, 0o644, &["t"]).unwrap();
        assert_eq!(one(&m, "listen"), "from-file");
        assert_eq!(m.get_one::<f64>("rate"), Some(&5.0));
        assert!(m.get_flag("no_turn"));
        let urls: Vec<_> = m.get_many::<String>("url").unwrap().collect();
        assert_eq!(urls, ["a", "b"]);

        let m = parse(text, 0o644, &["t", "--listen", "flag", "--turn-url", "c"]).unwrap();
        assert_eq!(one(&m, "listen"), "flag");
        let urls: Vec<_> = m.get_many::<String>("url").unwrap().collect();
        assert_eq!(urls, ["c"], "a repeatable flag replaces the file's list");
        assert_eq!(m.get_one::<f64>("rate"), Some(&5.0));

        let m = parse("no-turn = false\n", 0o644, &["t"]).unwrap();
        assert!(!m.get_flag("no_turn"));

        // A flag that needs another one the file gives.
        let m = parse("tls-key = \"k\"\n", 0o644, &["t", "--tls-cert", "c"]).unwrap();
        assert_eq!(one(&m, "key"), "k");
        assert!(parse("", 0o644, &["t", "--tls-cert", "c"]).is_err());
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = parse("listen = \"x\"\nlisten-adress = 1\n", 0o644, &["t"]).unwrap_err();
        assert!(err.contains("unknown key `listen-adress`"), "{err}");
        let err = parse("turn_url = [\"x\"]\n", 0o644, &["t"]).unwrap_err();
        assert!(err.contains("did you mean `turn-url`?"), "{err}");
        let err = parse("config = \"other.toml\"\n", 0o644, &["t"]).unwrap_err();
        assert!(err.contains("`config` cannot be set"), "{err}");
    }

    #[test]
    fn wrong_types_and_bad_toml_are_refused() {
        for (text, want) in [
            ("no-turn = \"yes\"\n", "must be true or false"),
            ("listen = [\"a\"]\n", "not an array"),
            ("listen = { a = 1 }\n", "must be a string"),
            ("turn-url = [[1]]\n", "array of strings"),
            ("listen = \n", "not valid TOML"),
            ("[server]\nlisten = \"a\"\n", "unknown key `server`"),
        ] {
            let err = parse(text, 0o644, &["t"]).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        // Values go through the flag's own parser.
        let err = parse("rate = \"fast\"\n", 0o644, &["t"]).unwrap_err();
        assert!(err.contains("fast") && err.contains("--rate"), "{err}");
        let err = parse(&"# x\n".repeat(20_000), 0o644, &["t"]).unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_needs_a_private_file() {
        let err = parse("turn-secret = \"s3cret\"\n", 0o644, &["t"]).unwrap_err();
        assert!(
            err.contains("chmod 600") && !err.contains("s3cret"),
            "{err}"
        );
        assert!(parse("turn-secret = \"s3cret\"\n", 0o640, &["t"]).is_err());
        let m = parse("turn-secret = \"s3cret\"\n", 0o600, &["t"]).unwrap();
        assert_eq!(one(&m, "turn_secret"), "s3cret");
    }

    #[cfg(unix)]
    #[test]
    fn a_redis_url_with_a_password_needs_a_private_file() {
        let with = "redis = \"redis://:pw@10.0.0.5:6379/0\"\n";
        let err = parse(with, 0o644, &["t"]).unwrap_err();
        assert!(
            err.contains("CALL_SIGNALING_REDIS") && !err.contains("pw@"),
            "{err}"
        );
        assert_eq!(
            one(&parse(with, 0o600, &["t"]).unwrap(), "redis"),
            "redis://:pw@10.0.0.5:6379/0"
        );
        let without = "redis = \"redis://10.0.0.5:6379/0\"\n";
        assert_eq!(
            one(&parse(without, 0o644, &["t"]).unwrap(), "redis"),
            "redis://10.0.0.5:6379/0"
        );
    }

    #[test]
    fn a_flag_also_overrides_the_file_values_it_conflicts_with() {
        let m = parse(
            "turn-secret-file = \"/f\"\n",
            0o600,
            &["t", "--turn-secret", "cli"],
        )
        .unwrap();
        assert_eq!(one(&m, "turn_secret"), "cli");
        assert!(m.get_one::<String>("turn_secret_file").is_none());
    }
}
